//! The account-level quota of the EBS direct APIs: `GetSnapshotBlock` and `ListSnapshotBlocks`
//! are limited per account (across all its snapshots) as well as per snapshot. Above the quota
//! the service answers HTTP 400 `RequestThrottledException` with reason `ACCOUNT_THROTTLED`
//! (the API reference's error for it). Here the quota holds in every sliding one-second window
//! of the requests accepted; throttled requests do not count against it.
//!
//! Every request is logged by the second it arrived in (since the server started), so tests can
//! check the rate clients kept to: received, throttled, per API.

use crate::EbsErrorSpec;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Requests per second allowed for the whole account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountQuota {
    /// `GetSnapshotBlock` requests per second.
    pub get_rps: u32,
    /// `ListSnapshotBlocks` requests per second.
    pub list_rps: u32,
}

/// The requests that arrived in one second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondLog {
    /// Seconds since the server started.
    pub second: u64,
    /// `GetSnapshotBlock` requests received.
    pub get_received: u64,
    /// Of those, throttled for the account quota.
    pub get_throttled: u64,
    /// `ListSnapshotBlocks` requests received.
    pub list_received: u64,
    /// Of those, throttled for the account quota.
    pub list_throttled: u64,
}

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Get,
    List,
}

#[derive(Debug)]
pub(crate) struct Quota {
    started: Instant,
    limit: Option<AccountQuota>,
    get: VecDeque<Instant>,
    list: VecDeque<Instant>,
    log: BTreeMap<u64, SecondLog>,
}

impl Quota {
    pub(crate) fn new() -> Self {
        Quota {
            started: Instant::now(),
            limit: None,
            get: VecDeque::new(),
            list: VecDeque::new(),
            log: BTreeMap::new(),
        }
    }

    pub(crate) fn set(&mut self, limit: Option<AccountQuota>) {
        self.limit = limit;
    }

    pub(crate) fn log(&self) -> Vec<SecondLog> {
        self.log.values().copied().collect()
    }

    /// Log a request arrived at `at`; the throttling answer if it is over the quota.
    pub(crate) fn admit(&mut self, api: Api, at: Instant) -> Option<EbsErrorSpec> {
        let second = at.saturating_duration_since(self.started).as_secs();
        let limit = self.limit.map(|q| match api {
            Api::Get => q.get_rps,
            Api::List => q.list_rps,
        });
        let window = match api {
            Api::Get => &mut self.get,
            Api::List => &mut self.list,
        };
        while window
            .front()
            .is_some_and(|&t| at.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        let over = limit.is_some_and(|n| window.len() >= n as usize);
        if !over {
            window.push_back(at);
        }
        let e = self.log.entry(second).or_insert(SecondLog {
            second,
            ..SecondLog::default()
        });
        match api {
            Api::Get => {
                e.get_received += 1;
                e.get_throttled += u64::from(over);
            }
            Api::List => {
                e.list_received += 1;
                e.list_throttled += u64::from(over);
            }
        }
        over.then(|| EbsErrorSpec {
            status: 400,
            error_type: "RequestThrottledException".into(),
            message: "The request was throttled: the account's request rate is exceeded".into(),
            reason: Some("ACCOUNT_THROTTLED".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over the quota in a sliding second, requests are throttled and do not count; a second
    /// later they are accepted again. Every request is logged by its second.
    #[test]
    fn throttles_above_the_quota_in_any_second() {
        let mut q = Quota::new();
        let t0 = q.started;
        assert!(q.admit(Api::Get, t0).is_none(), "no quota set");
        q.set(Some(AccountQuota {
            get_rps: 3,
            list_rps: 1,
        }));
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(q.admit(Api::Get, ms(100)).is_none());
        assert!(q.admit(Api::Get, ms(200)).is_none());
        let e = q.admit(Api::Get, ms(300)).unwrap();
        assert_eq!(
            (e.status, e.reason.as_deref()),
            (400, Some("ACCOUNT_THROTTLED"))
        );
        assert!(q.admit(Api::List, ms(300)).is_none());
        assert!(q.admit(Api::List, ms(400)).is_some());
        // At 1.0 s the request of 0 s has left the window; at 1.1 s the one of 0.1 s.
        assert!(q.admit(Api::Get, ms(1000)).is_none());
        assert!(q.admit(Api::Get, ms(1050)).is_some());
        assert!(q.admit(Api::Get, ms(1100)).is_none());
        let log = q.log();
        assert_eq!(log.len(), 2);
        assert_eq!(
            (
                log[0].get_received,
                log[0].get_throttled,
                log[0].list_received,
                log[0].list_throttled
            ),
            (4, 1, 2, 1)
        );
        assert_eq!(
            (log[1].second, log[1].get_received, log[1].get_throttled),
            (1, 3, 1)
        );
    }
}
