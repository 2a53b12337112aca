//! The account-level quota of the EBS direct APIs: `GetSnapshotBlock` and `ListSnapshotBlocks`
//! are limited per account (across all its snapshots) as well as per snapshot. Above the quota
//! the service answers HTTP 400 `RequestThrottledException` with reason `ACCOUNT_THROTTLED`
//! (the API reference's error for it). Here the quota holds in every sliding one-second window
//! of the requests accepted; throttled requests do not count against it.
//!
//! The quota is per account *and region*, as the service's is: requests signed for different
//! regions count in different windows.
//!
//! Every request is logged by the second it arrived in (since the server started), so tests can
//! check the rate clients kept to: received, throttled, per API. Each `GetSnapshotBlock`'s arrival
//! time and region are kept too ([`BlockRequest`]), for checks of every sliding one-second window.

use crate::EbsErrorSpec;
use std::collections::{BTreeMap, HashMap, VecDeque};
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

/// One `GetSnapshotBlock` request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRequest {
    /// Time since the server started.
    pub at: Duration,
    /// The region of its SigV4 scope (empty when unsigned).
    pub region: String,
    /// Throttled for the account quota.
    pub throttled: bool,
}

/// At most this many [`BlockRequest`]s are kept (the first ones), so a long-running server's
/// log stays bounded.
const MAX_BLOCK_REQUESTS: usize = 1 << 20;

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Api {
    Get,
    List,
}

#[derive(Debug)]
pub(crate) struct Quota {
    started: Instant,
    limit: Option<AccountQuota>,
    /// Accepted requests of the last second, by API and region.
    windows: HashMap<(Api, String), VecDeque<Instant>>,
    log: BTreeMap<u64, SecondLog>,
    blocks: Vec<BlockRequest>,
}

impl Quota {
    pub(crate) fn new() -> Self {
        Quota {
            started: Instant::now(),
            limit: None,
            windows: HashMap::new(),
            log: BTreeMap::new(),
            blocks: Vec::new(),
        }
    }

    pub(crate) fn set(&mut self, limit: Option<AccountQuota>) {
        self.limit = limit;
    }

    pub(crate) fn log(&self) -> Vec<SecondLog> {
        self.log.values().copied().collect()
    }

    pub(crate) fn block_requests(&self) -> Vec<BlockRequest> {
        self.blocks.clone()
    }

    /// Log a request signed for `region` arrived at `at`; the throttling answer if it is over
    /// the quota of that region.
    pub(crate) fn admit(&mut self, api: Api, region: &str, at: Instant) -> Option<EbsErrorSpec> {
        let second = at.saturating_duration_since(self.started).as_secs();
        let limit = self.limit.map(|q| match api {
            Api::Get => q.get_rps,
            Api::List => q.list_rps,
        });
        let window = self.windows.entry((api, region.to_string())).or_default();
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
                if self.blocks.len() < MAX_BLOCK_REQUESTS {
                    self.blocks.push(BlockRequest {
                        at: at.saturating_duration_since(self.started),
                        region: region.to_string(),
                        throttled: over,
                    });
                }
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
        assert!(q.admit(Api::Get, "r", t0).is_none(), "no quota set");
        q.set(Some(AccountQuota {
            get_rps: 3,
            list_rps: 1,
        }));
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(q.admit(Api::Get, "r", ms(100)).is_none());
        assert!(q.admit(Api::Get, "r", ms(200)).is_none());
        let e = q.admit(Api::Get, "r", ms(300)).unwrap();
        assert_eq!(
            (e.status, e.reason.as_deref()),
            (400, Some("ACCOUNT_THROTTLED"))
        );
        assert!(q.admit(Api::List, "r", ms(300)).is_none());
        assert!(q.admit(Api::List, "r", ms(400)).is_some());
        // At 1.0 s the request of 0 s has left the window; at 1.1 s the one of 0.1 s.
        assert!(q.admit(Api::Get, "r", ms(1000)).is_none());
        assert!(q.admit(Api::Get, "r", ms(1050)).is_some());
        assert!(q.admit(Api::Get, "r", ms(1100)).is_none());
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

    /// Each region has its own quota; every block request is kept with its time and region.
    #[test]
    fn regions_have_their_own_quota_and_block_requests_are_kept() {
        let mut q = Quota::new();
        q.set(Some(AccountQuota {
            get_rps: 1,
            list_rps: 1,
        }));
        let t0 = q.started;
        let ms = |n| t0 + Duration::from_millis(n);
        assert!(q.admit(Api::Get, "us-east-1", ms(10)).is_none());
        assert!(q.admit(Api::Get, "us-west-2", ms(20)).is_none());
        assert!(q.admit(Api::Get, "us-east-1", ms(30)).is_some());
        assert!(q.admit(Api::List, "us-east-1", ms(40)).is_none());
        let b = q.block_requests();
        let got: Vec<(u128, &str, bool)> = b
            .iter()
            .map(|r| (r.at.as_millis(), r.region.as_str(), r.throttled))
            .collect();
        assert_eq!(
            got,
            [
                (10, "us-east-1", false),
                (20, "us-west-2", false),
                (30, "us-east-1", true)
            ]
        );
    }
}
