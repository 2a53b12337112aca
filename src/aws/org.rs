//! The accounts a fleet command works in: the caller's own, the member accounts of an
//! organisation (`--org-role ROLE`: Organizations `ListAccounts`, from the management account or
//! a delegated administrator, then STS `AssumeRole` of `ROLE` in each), or a given list
//! (`--accounts ID,... --org-role ROLE`).
//!
//! The public API is small so every fleet command (sweep, audit, inventory) enumerates accounts
//! the same way: [`member_accounts`] gives each account with the [`AwsOptions`] that act in it,
//! [`account_region_configs`] gives an SDK configuration per (account, region). Only `ACTIVE`
//! accounts are listed (suspended or closing ones cannot be assumed into). Credentials are
//! assumed lazily by the SDK and refreshed before they expire: an account whose role cannot be
//! assumed fails its own calls, which the commands report per account, never silently.

use super::{AwsError, AwsOptions, AwsSession};

/// Region for the global calls (Organizations, STS) when none is configured.
const GLOBAL_REGION: &str = "us-east-1";

/// Which accounts to work in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSelection {
    /// The account of the credentials (no role assumed beyond `--role-arn`).
    Caller,
    /// Every active member account of the organisation, through `role_name` in each.
    Organization {
        /// Role name (optionally with a path: `path/Name`).
        role_name: String,
    },
    /// These accounts, through `role_name` in each.
    Accounts {
        /// 12-digit account ids.
        ids: Vec<String>,
        /// Role name.
        role_name: String,
    },
}

/// One account to work in.
#[derive(Debug, Clone)]
pub struct MemberAccount {
    /// The 12-digit id; `None` for [`AccountSelection::Caller`].
    pub account_id: Option<String>,
    /// Its name in the organisation, when listed.
    pub name: Option<String>,
    /// Options acting in the account (the base options plus the member role).
    pub options: AwsOptions,
}

/// One account in one region, with its SDK configuration (for clients of any service).
#[derive(Debug, Clone)]
pub struct AccountRegion {
    /// The account (`None`: the caller's own).
    pub account_id: Option<String>,
    /// The region.
    pub region: String,
    /// Credentials (the member role, assumed on first use), region and endpoint.
    pub config: aws_config::SdkConfig,
}

/// The ARN of `role_name` in `account` (partition from the region: `aws-cn`, `aws-us-gov`, `aws`).
pub fn role_arn(account: &str, role_name: &str, region: Option<&str>) -> String {
    let partition = match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    };
    format!(
        "arn:{partition}:iam::{account}:role/{}",
        role_name.trim_start_matches('/')
    )
}

fn valid_account(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

fn runtime() -> Result<tokio::runtime::Runtime, AwsError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AwsError::Runtime(e.to_string()))
}

/// `ListAccounts` (every page): `(id, name)` of each `ACTIVE` account, sorted by id.
pub async fn list_active_accounts(
    client: &aws_sdk_organizations::Client,
) -> Result<Vec<(String, Option<String>)>, AwsError> {
    use aws_sdk_organizations::error::ProvideErrorMetadata;
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    // A bound: organisations have at most a few thousand accounts (20 per page).
    for _ in 0..10_000 {
        let page = client
            .list_accounts()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| match &e {
                aws_sdk_organizations::error::SdkError::ServiceError(ctx)
                    if matches!(
                        ctx.err().code(),
                        Some("AccessDeniedException" | "AWSOrganizationsNotInUseException")
                    ) =>
                {
                    AwsError::AccessDenied {
                        action: "organizations:ListAccounts",
                        message: format!(
                            "{}: {} (call from the management account or a delegated administrator)",
                            ctx.err().code().unwrap_or(""),
                            ctx.err().message().unwrap_or("")
                        ),
                    }
                }
                _ => AwsError::Api {
                    operation: "ListAccounts",
                    message: crate::source::ebs::error_chain(&e),
                },
            })?;
        for a in page.accounts() {
            // `State` replaces the older `Status`; either says ACTIVE for a usable account.
            let active = a
                .state()
                .map(|s| s.as_str() == "ACTIVE")
                .or_else(|| a.status().map(|s| s.as_str() == "ACTIVE"))
                .unwrap_or(true);
            if let Some(id) = a.id().filter(|_| active) {
                out.push((id.to_string(), a.name().map(str::to_string)));
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => {
                out.sort();
                out.dedup_by(|a, b| a.0 == b.0);
                return Ok(out);
            }
        }
    }
    Err(AwsError::Api {
        operation: "ListAccounts",
        message: "more than 10,000 pages".into(),
    })
}

/// The account of the base credentials (STS `GetCallerIdentity`).
pub async fn caller_account(base: &AwsOptions) -> Result<String, AwsError> {
    let mut o = base.clone();
    o.region = Some(o.region.clone().unwrap_or_else(|| GLOBAL_REGION.into()));
    let conf = super::sdk_config(&o).await?;
    let mut b = aws_sdk_sts::config::Builder::from(&conf);
    if let Some(u) = &o.endpoint_url {
        b = b.endpoint_url(u);
    }
    let out = aws_sdk_sts::Client::from_conf(b.build())
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::Api {
            operation: "GetCallerIdentity",
            message: crate::source::ebs::error_chain(&e),
        })?;
    out.account().map(str::to_string).ok_or(AwsError::Api {
        operation: "GetCallerIdentity",
        message: "no account in the answer".into(),
    })
}

/// The accounts `sel` names, each with the options that act in it. The caller's own account,
/// when listed (the management account is in `ListAccounts`), is worked in with the base
/// credentials: no role is assumed into it.
pub fn member_accounts(
    base: &AwsOptions,
    sel: &AccountSelection,
) -> Result<Vec<MemberAccount>, AwsError> {
    let (ids, role_name): (Vec<(String, Option<String>)>, &str) = match sel {
        AccountSelection::Caller => {
            return Ok(vec![MemberAccount {
                account_id: None,
                name: None,
                options: base.clone(),
            }]);
        }
        AccountSelection::Accounts { ids, role_name } => {
            if let Some(bad) = ids.iter().find(|i| !valid_account(i)) {
                return Err(AwsError::Api {
                    operation: "--accounts",
                    message: format!("{bad:?} is not a 12-digit account id"),
                });
            }
            let mut ids = ids.clone();
            ids.sort();
            ids.dedup();
            (
                ids.into_iter().map(|i| (i, None)).collect(),
                role_name.as_str(),
            )
        }
        AccountSelection::Organization { role_name } => {
            let mut o = base.clone();
            o.region = Some(o.region.clone().unwrap_or_else(|| GLOBAL_REGION.into()));
            let listed = runtime()?.block_on(async move {
                let conf = super::sdk_config(&o).await?;
                let mut b = aws_sdk_organizations::config::Builder::from(&conf);
                if let Some(u) = &o.endpoint_url {
                    b = b.endpoint_url(u);
                }
                list_active_accounts(&aws_sdk_organizations::Client::from_conf(b.build())).await
            })?;
            (listed, role_name.as_str())
        }
    };
    let b = base.clone();
    let me = runtime()?.block_on(async move { caller_account(&b).await })?;
    Ok(ids
        .into_iter()
        .map(|(id, name)| {
            let mut options = base.clone();
            if id != me {
                options.member_role_arn = Some(role_arn(&id, role_name, base.region.as_deref()));
            }
            MemberAccount {
                account_id: Some(id),
                name,
                options,
            }
        })
        .collect())
}

/// An SDK configuration for every (account, region) of `sel`: `regions`, or each account's
/// enabled regions (`DescribeRegions` in that account). Accounts or regions that cannot be
/// listed are returned as `account: why` messages, next to the configurations that could be
/// made.
pub fn account_region_configs(
    base: &AwsOptions,
    sel: &AccountSelection,
    regions: Option<&[String]>,
) -> Result<(Vec<AccountRegion>, Vec<String>), AwsError> {
    let accounts = member_accounts(base, sel)?;
    let (out, errors) = region_configs(&accounts, regions)?;
    Ok((
        out,
        errors
            .into_iter()
            .map(|e| match e.region {
                Some(r) => format!("{} {r}: {}", e.account, e.message),
                None => format!("{}: {}", e.account, e.message),
            })
            .collect(),
    ))
}

/// An account or one of its regions that [`region_configs`] could not make a configuration for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRegionError {
    /// The account id (`caller` for the caller's own account).
    pub account: String,
    /// The region (`None`: the account's regions could not be listed).
    pub region: Option<String>,
    /// Why.
    pub message: String,
}

/// [`account_region_configs`] for accounts already listed by [`member_accounts`] (a command that
/// also needs the list itself, such as the organisation-wide inventory, lists them once).
pub fn region_configs(
    accounts: &[MemberAccount],
    regions: Option<&[String]>,
) -> Result<(Vec<AccountRegion>, Vec<AccountRegionError>), AwsError> {
    let rt = runtime()?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for a in accounts {
        let label = a.account_id.clone().unwrap_or_else(|| "caller".into());
        let listed = match regions {
            Some(r) => Ok(r.to_vec()),
            None => {
                let mut o = a.options.clone();
                o.region = Some(o.region.clone().unwrap_or_else(|| GLOBAL_REGION.into()));
                AwsSession::new(&o).and_then(|s| {
                    let ec2 = s.ec2_client().clone();
                    s.run(async move { super::ec2ops::list_regions(&ec2).await })
                })
            }
        };
        let regs = match listed {
            Ok(r) => r,
            Err(e) => {
                errors.push(AccountRegionError {
                    account: label,
                    region: None,
                    message: e.to_string(),
                });
                continue;
            }
        };
        for r in regs {
            let mut o = a.options.clone();
            o.region = Some(r.clone());
            match rt.block_on(async move { super::sdk_config(&o).await }) {
                Ok(config) => out.push(AccountRegion {
                    account_id: a.account_id.clone(),
                    region: r,
                    config,
                }),
                Err(e) => errors.push(AccountRegionError {
                    account: label.clone(),
                    region: Some(r),
                    message: e.to_string(),
                }),
            }
        }
    }
    Ok((out, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_and_account_lists() {
        assert_eq!(
            role_arn("123456789012", "Scan", Some("eu-west-1")),
            "arn:aws:iam::123456789012:role/Scan"
        );
        assert_eq!(
            role_arn("123456789012", "/sec/Scan", Some("cn-north-1")),
            "arn:aws-cn:iam::123456789012:role/sec/Scan"
        );
        let bad = AccountSelection::Accounts {
            ids: vec!["12345".into()],
            role_name: "Scan".into(),
        };
        assert!(member_accounts(&AwsOptions::default(), &bad).is_err());
    }
}
