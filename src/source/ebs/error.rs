//! Typed errors of the EBS source and how SDK errors map onto them.

use aws_sdk_ebs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ebs::operation::get_snapshot_block::GetSnapshotBlockError;
use aws_sdk_ebs::operation::list_snapshot_blocks::ListSnapshotBlocksError;

/// Why a snapshot could not be opened or a block could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EbsError {
    /// No such snapshot in this account and region.
    #[error("snapshot {snapshot} not found: {message}")]
    SnapshotNotFound {
        /// Snapshot id.
        snapshot: String,
        /// The service's message.
        message: String,
    },
    /// IAM does not allow an EBS direct API action.
    #[error(
        "access denied to snapshot {snapshot}: the credentials lack permission for {action} ({message})"
    )]
    AccessDenied {
        /// Snapshot id.
        snapshot: String,
        /// The missing action: `ebs:ListSnapshotBlocks` or `ebs:GetSnapshotBlock`.
        action: &'static str,
        /// The service's message.
        message: String,
    },
    /// The snapshot is encrypted and its KMS key may not be used by these credentials.
    #[error(
        "snapshot {snapshot} is encrypted and the KMS key may not be used by these credentials (kms:Decrypt is needed on the key): {message}"
    )]
    KmsAccessDenied {
        /// Snapshot id.
        snapshot: String,
        /// The service's message.
        message: String,
    },
    /// The EBS direct APIs serve only the account's own snapshots.
    #[error(
        "the EBS direct APIs do not serve snapshot {snapshot}: it is public, from AWS Marketplace or owned by another account ({message}); copy the AMI into your account first (`aws ec2 copy-image`, or `amiscan scan --copy` once available) and scan the copy"
    )]
    NotServed {
        /// Snapshot id.
        snapshot: String,
        /// The service's message.
        message: String,
    },
    /// The snapshot is still being created.
    #[error("snapshot {snapshot} is not completed yet: {message}")]
    NotCompleted {
        /// Snapshot id.
        snapshot: String,
        /// The service's message.
        message: String,
    },
    /// Another service error, after retries where they apply.
    #[error("{operation} on snapshot {snapshot} failed: {message}")]
    Api {
        /// Snapshot id.
        snapshot: String,
        /// `ListSnapshotBlocks` or `GetSnapshotBlock`.
        operation: &'static str,
        /// Code and message, or the transport error.
        message: String,
    },
    /// The service answered something this client cannot use (bad sizes, too many pages, ...).
    #[error("unexpected answer for snapshot {snapshot}: {message}")]
    Protocol {
        /// Snapshot id.
        snapshot: String,
        /// What was wrong.
        message: String,
    },
    /// A block could not be read after every attempt.
    #[error("snapshot {snapshot}: block {block} unreadable after {attempts} attempts: {last}")]
    BlockUnreadable {
        /// Snapshot id.
        snapshot: String,
        /// Block index.
        block: u64,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The runtime for the requests could not be created.
    #[error("cannot start the EBS runtime: {0}")]
    Runtime(String),
}

/// What to do after a failed attempt.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Try again after a backoff; `throttle` when the service asked us to slow down.
    Retry {
        /// Throttled rather than failed.
        throttle: bool,
        /// For the final error message.
        message: String,
    },
    /// The block token expired: re-list, then retry.
    ExpiredToken(String),
    /// Give up at once.
    Fatal(EbsError),
}

/// The EBS direct API operations, for messages and the IAM action names.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    List,
    Get,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::List => "ListSnapshotBlocks",
            Op::Get => "GetSnapshotBlock",
        }
    }
    pub(crate) fn action(self) -> &'static str {
        match self {
            Op::List => "ebs:ListSnapshotBlocks",
            Op::Get => "ebs:GetSnapshotBlock",
        }
    }
}

/// The `Reason` member of the typed errors that have one.
pub(crate) trait Reason {
    fn reason_str(&self) -> Option<&str>;
}

/// The two EBS read errors have the same exception variants, each with a `reason`: one mapping.
macro_rules! impl_reason {
    ($($ty:ty),+) => {$(
        impl Reason for $ty {
            fn reason_str(&self) -> Option<&str> {
                match self {
                    Self::AccessDeniedException(e) => Some(e.reason().as_str()),
                    Self::ValidationException(e) => e.reason().map(|r| r.as_str()),
                    Self::ResourceNotFoundException(e) => e.reason().map(|r| r.as_str()),
                    Self::RequestThrottledException(e) => e.reason().map(|r| r.as_str()),
                    Self::ServiceQuotaExceededException(e) => e.reason().map(|r| r.as_str()),
                    _ => None,
                }
            }
        }
    )+};
}

impl_reason!(ListSnapshotBlocksError, GetSnapshotBlockError);

/// Map a service answer (code, message, reason, status) to what to do.
pub(crate) fn classify_service(
    snapshot: &str,
    op: Op,
    code: Option<&str>,
    message: Option<&str>,
    reason: Option<&str>,
    status: u16,
) -> Failure {
    let message = message.unwrap_or("").to_string();
    let describe = || {
        format!(
            "{} (HTTP {status}{}): {message}",
            code.unwrap_or("unknown error"),
            reason.map(|r| format!(", reason {r}")).unwrap_or_default()
        )
    };
    let snapshot = snapshot.to_string();
    match code {
        Some(
            "RequestThrottledException"
            | "ThrottlingException"
            | "ServiceQuotaExceededException"
            | "ConcurrentLimitExceededException",
        ) => Failure::Retry {
            throttle: true,
            message: describe(),
        },
        _ if status == 429 => Failure::Retry {
            throttle: true,
            message: describe(),
        },
        Some("InternalServerException") => Failure::Retry {
            throttle: false,
            message: describe(),
        },
        _ if status >= 500 => Failure::Retry {
            throttle: false,
            message: describe(),
        },
        Some("ValidationException") if reason == Some("INVALID_BLOCK_TOKEN") => {
            Failure::ExpiredToken(describe())
        }
        Some("ValidationException")
            if message.contains("pending") || message.contains("not in the completed") =>
        {
            Failure::Fatal(EbsError::NotCompleted { snapshot, message })
        }
        Some("ResourceNotFoundException") => {
            Failure::Fatal(EbsError::SnapshotNotFound { snapshot, message })
        }
        Some("AccessDeniedException") => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("not authorized to perform") || lower.contains("explicit deny") {
                Failure::Fatal(EbsError::AccessDenied {
                    snapshot,
                    action: op.action(),
                    message,
                })
            } else if reason == Some("DEPENDENCY_ACCESS_DENIED") || lower.contains("kms") {
                Failure::Fatal(EbsError::KmsAccessDenied { snapshot, message })
            } else if reason == Some("UNAUTHORIZED_ACCOUNT") {
                Failure::Fatal(EbsError::NotServed { snapshot, message })
            } else {
                Failure::Fatal(EbsError::AccessDenied {
                    snapshot,
                    action: op.action(),
                    message,
                })
            }
        }
        _ => Failure::Fatal(EbsError::Api {
            snapshot,
            operation: op.name(),
            message: describe(),
        }),
    }
}

/// Map an SDK error of either operation.
pub(crate) fn classify<E>(snapshot: &str, op: Op, err: &SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + Reason + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            classify_service(
                snapshot,
                op,
                e.code(),
                e.message(),
                e.reason_str(),
                ctx.raw().status().as_u16(),
            )
        }
        SdkError::ConstructionFailure(_) => Failure::Fatal(EbsError::Api {
            snapshot: snapshot.into(),
            operation: op.name(),
            message: format!("cannot build the request: {}", error_chain(err)),
        }),
        SdkError::DispatchFailure(d) if d.is_user() => Failure::Fatal(EbsError::Api {
            snapshot: snapshot.into(),
            operation: op.name(),
            message: error_chain(err),
        }),
        // Timeouts, connection resets and refused connections, truncated or garbled answers.
        _ => Failure::Retry {
            throttle: false,
            message: error_chain(err),
        },
    }
}

/// An error and its sources on one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    let mut depth = 0;
    while let Some(e) = cur {
        if depth >= 8 {
            break;
        }
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
        depth += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_action_or_the_cause() {
        let f = classify_service(
            "snap-1",
            Op::Get,
            Some("AccessDeniedException"),
            Some("User: x is not authorized to perform: ebs:GetSnapshotBlock"),
            Some("UNAUTHORIZED_ACCOUNT"),
            403,
        );
        assert!(
            matches!(f, Failure::Fatal(EbsError::AccessDenied { action, .. }) if action == "ebs:GetSnapshotBlock")
        );
        let f = classify_service(
            "snap-1",
            Op::List,
            Some("AccessDeniedException"),
            Some("denied"),
            Some("DEPENDENCY_ACCESS_DENIED"),
            403,
        );
        assert!(matches!(
            f,
            Failure::Fatal(EbsError::KmsAccessDenied { .. })
        ));
        let f = classify_service(
            "snap-1",
            Op::List,
            Some("AccessDeniedException"),
            Some("denied"),
            Some("UNAUTHORIZED_ACCOUNT"),
            403,
        );
        let Failure::Fatal(e @ EbsError::NotServed { .. }) = f else {
            panic!("{f:?}")
        };
        assert!(e.to_string().contains("copy the AMI"));
    }

    #[test]
    fn throttles_and_5xx_are_retried() {
        for (code, status, throttle) in [
            (Some("RequestThrottledException"), 400, true),
            (Some("ServiceQuotaExceededException"), 402, true),
            (Some("InternalServerException"), 500, false),
            (Some("ServiceUnavailable"), 503, false),
            (None, 502, false),
            (None, 429, true),
        ] {
            let f = classify_service("s", Op::Get, code, None, None, status);
            assert!(
                matches!(f, Failure::Retry { throttle: t, .. } if t == throttle),
                "{code:?} {status}: {f:?}"
            );
        }
    }
}
