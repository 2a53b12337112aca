//! The account's request gate: `GetSnapshotBlock` and `ListSnapshotBlocks` are limited per
//! account and region as well as per snapshot (by default 1,000 and 50 requests per second), so
//! every snapshot a process reads from one account and region goes through one gate, process-wide
//! (an AMI of four volumes or `sweep --parallel 4` asks no more than one snapshot may).
//!
//! The gate is adaptive (AIMD): a throttling answer (`RequestThrottledException`,
//! `ServiceQuotaExceededException`, `ThrottlingException`) to a request sent after the last cut
//! cuts the rate to `BETA` times the lower of the rate and the rate of requests that succeeded
//! (in the last second; in a gate younger than a second, since it started), at most once per
//! `MIN_GAP`. Throttles of requests sent before the last cut were answered by it. Without
//! throttles the rate grows back while requests wait for turns (a rate nobody uses is not
//! raised): `FAST` times `RECOVER` of the configured rate per second while under `NEAR` of the
//! rate the last cut was made at, `RECOVER` from there to that rate, and above it `RECOVER`
//! doubling every `ACCEL` without a cut, up to `MAX_ACCEL` times (a process whose neighbours
//! finished takes their share back in seconds, not minutes). It starts at `START` of the
//! configured rate and doubles every `DOUBLING` until the first throttle or the configured rate
//! (slow start). Several processes or machines sharing an account's quota so settle under it
//! without being told about each other: each one's share of the successes is its share of the
//! quota, and each throttle costs the one process it reached a small cut.
//!
//! Turns are spaced evenly and never more than the rate fall in any window of
//! `ACCOUNT_WINDOW` (a second plus a margin for the jitter of the network between here and the
//! service, whose one-second windows are measured where the requests arrive). Priorities are the
//! snapshot gates' (a reader waiting goes before read-ahead, read-ahead before the sweep).

use super::rate::{Permit, Priority, RateLimiter};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The window in which at most the gate's rate of requests start: a second and a margin for
/// the network's jitter (20 ms; 50 ms cost a one-volume scan 5% of its request rate, and the
/// adaptive cut answers what jitter the margin does not cover).
pub(crate) const ACCOUNT_WINDOW: Duration = Duration::from_millis(1020);
/// A throttle cuts the rate to this share of the lower of the rate and the rate achieved.
const BETA: f64 = 0.85;
/// Throttles within this long of a cut do not cut again (a few round trips: the cut shows in
/// the service's counts only once the requests sent at the old rate are answered).
const MIN_GAP: Duration = Duration::from_millis(250);
/// Share of the configured rate given back per second without a throttle.
const RECOVER: f64 = 0.01;
/// Under `NEAR` of the rate the last cut was made at, the rate grows `FAST` times quicker (what
/// the cut gave away is given back soon); from there up to that rate at `RECOVER`; above it at
/// `RECOVER` doubling every `ACCEL` without a cut, at most `MAX_ACCEL` times.
const NEAR: f64 = 0.9;
const FAST: f64 = 4.0;
const ACCEL: Duration = Duration::from_secs(1);
const MAX_ACCEL: f64 = 16.0;
/// The rate never falls below this share of the configured rate (nor below 1 per second).
const FLOOR: f64 = 0.02;
/// `GetSnapshotBlock` starts at this share of the configured rate and doubles every `DOUBLING`
/// until it reaches it or is throttled (slow start): processes that start together do not ask
/// for several times the quota at once. (A quarter doubling each second cost a one-volume scan
/// a second: 1.77 s where it took 0.71 s before the gate, with 663 requests at 1,000/s. Three
/// quarters, doubling every 250 ms, reach the rate after a tenth of a second; processes that
/// start together are throttled in their first second and cut at once.)
const START: f64 = 0.75;
/// How often the rate doubles in slow start: a few round trips, so a throttle answers a
/// doubling before the next.
const DOUBLING: Duration = Duration::from_millis(250);
/// Requests in flight through one account gate (the memory budget caps the bodies).
const IN_FLIGHT: usize = 4096;

/// Counters of one account gate, for the report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AccountStats {
    /// The account (`default` when not named).
    pub account: String,
    /// The region (`-` when the client has none).
    pub region: String,
    /// The configured `GetSnapshotBlock` rate (requests per second).
    pub limit_rps: u32,
    /// The gate's rate now (the adaptive cut).
    pub current_rps: f64,
    /// `GetSnapshotBlock` requests sent through the gate.
    pub requests: u64,
    /// Of those, answered with throttling.
    pub throttles: u64,
    /// `ListSnapshotBlocks` requests sent through the gate.
    pub list_requests: u64,
    /// Of those, answered with throttling.
    pub list_throttles: u64,
    /// Multiplicative decreases made.
    pub cuts: u64,
    /// `GetSnapshotBlock` requests per second from the first to the last one.
    pub achieved_rps: f64,
}

/// One adaptive limiter (one API of one account).
struct Adaptive {
    limiter: RateLimiter,
    ceiling: f64,
    state: Mutex<Aimd>,
    requests: AtomicU64,
    throttles: AtomicU64,
}

#[derive(Debug)]
struct Aimd {
    rate: f64,
    /// Doubling each second, not yet throttled nor at the configured rate.
    slow_start: bool,
    /// The rate when the last cut was made.
    cut_from: Option<f64>,
    /// How many times `RECOVER` the rate grows by above `cut_from` (doubles every `ACCEL`).
    accel: f64,
    last_cut: Option<Instant>,
    last_grow: Instant,
    /// When recent requests succeeded (the last second's), for the achieved rate.
    ok: VecDeque<Instant>,
    cuts: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Adaptive {
    fn new(rps: u32, slow_start: bool) -> Self {
        let rps = rps.max(1);
        let ceiling = f64::from(rps);
        let rate = if slow_start {
            (ceiling * START).max(1.0)
        } else {
            ceiling
        };
        let limiter = RateLimiter::with_window(rps, IN_FLIGHT, ACCOUNT_WINDOW);
        limiter.set_rate(rate);
        Adaptive {
            limiter,
            ceiling,
            state: Mutex::new(Aimd {
                rate,
                slow_start: slow_start && rate < ceiling,
                cut_from: None,
                accel: 1.0,
                last_cut: None,
                last_grow: Instant::now(),
                ok: VecDeque::new(),
                cuts: 0,
                first: None,
                last: None,
            }),
            requests: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Aimd> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn acquire(&self, priority: Priority) -> Option<Permit> {
        self.grow();
        let p = self.limiter.acquire(priority).await?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut s = self.lock();
        s.first.get_or_insert(now);
        s.last = Some(now);
        Some(p)
    }

    /// Slow start, or additive increase while requests wait for turns (see the module doc).
    fn grow(&self) {
        let now = Instant::now();
        let mut s = self.lock();
        let dt = now.saturating_duration_since(s.last_grow);
        if dt < Duration::from_millis(100) || s.rate >= self.ceiling {
            if s.rate >= self.ceiling {
                s.last_grow = now;
            }
            return;
        }
        s.last_grow = now;
        let secs = dt.as_secs_f64();
        if s.slow_start {
            s.rate = (s.rate * 2f64.powf(secs / DOUBLING.as_secs_f64())).min(self.ceiling);
            s.slow_start = s.rate < self.ceiling;
        } else {
            // A rate the demand does not reach is not raised: when the demand comes back it
            // would start above what the account last allowed.
            if !self.limiter.has_waiters() {
                return;
            }
            let step = match s.cut_from {
                Some(from) if s.rate < NEAR * from => RECOVER * FAST,
                Some(from) if s.rate < from => RECOVER,
                _ => {
                    let step = RECOVER * s.accel;
                    s.accel = (s.accel * 2f64.powf(secs / ACCEL.as_secs_f64())).min(MAX_ACCEL);
                    step
                }
            };
            s.rate = (s.rate + self.ceiling * step * secs).min(self.ceiling);
        }
        self.limiter.set_rate(s.rate);
    }

    fn succeeded(&self) {
        let now = Instant::now();
        let mut s = self.lock();
        while s
            .ok
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) > Duration::from_secs(1))
        {
            s.ok.pop_front();
        }
        s.ok.push_back(now);
    }

    /// Multiplicative decrease for a request sent at `sent` and throttled: at most once per
    /// `MIN_GAP`, and not for a request sent before the last cut.
    fn throttled(&self, sent: Instant) {
        self.throttles.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut s = self.lock();
        if s.last_cut
            .is_some_and(|t| sent < t || now.saturating_duration_since(t) < MIN_GAP)
        {
            return;
        }
        while s
            .ok
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) > Duration::from_secs(1))
        {
            s.ok.pop_front();
        }
        // The successes of the last second, once there was a second to count them in; before,
        // the rate of successes since the first request (over at least a tenth of a second).
        let age = s
            .first
            .map_or(Duration::ZERO, |f| now.saturating_duration_since(f));
        let achieved = if age >= Duration::from_secs(1) {
            s.ok.len() as f64
        } else {
            s.ok.len() as f64 / age.max(Duration::from_millis(100)).as_secs_f64()
        };
        let floor = (self.ceiling * FLOOR).max(1.0);
        s.cut_from = Some(s.rate.min(achieved.max(floor)));
        s.rate = (BETA * s.rate.min(achieved)).max(floor);
        s.slow_start = false;
        s.accel = 1.0;
        s.last_cut = Some(now);
        s.last_grow = now;
        s.cuts += 1;
        self.limiter.set_rate(s.rate);
    }
}

/// The request gate of one account and region (see the module doc).
pub struct AccountGate {
    account: String,
    region: String,
    get: Adaptive,
    list: Adaptive,
}

impl std::fmt::Debug for AccountGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountGate")
            .field("account", &self.account)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// What a request through the gate came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Answered (whatever the answer, but throttling).
    Ok,
    /// Throttled.
    Throttled,
    /// No answer to learn from (timeout, dropped connection, 5xx).
    Other,
}

impl AccountGate {
    fn new(account: &str, region: &str, get_rps: u32, list_rps: u32) -> Self {
        AccountGate {
            account: account.into(),
            region: region.into(),
            get: Adaptive::new(get_rps, true),
            list: Adaptive::new(list_rps, false),
        }
    }

    /// The process's gate for `account` and `region` at `endpoint` (a different endpoint is a
    /// different service), made with these rates the first time it is asked for.
    pub fn shared(
        account: &str,
        region: &str,
        endpoint: &str,
        get_rps: u32,
        list_rps: u32,
    ) -> Arc<AccountGate> {
        static GATES: OnceLock<Mutex<HashMap<String, Arc<AccountGate>>>> = OnceLock::new();
        let key = format!("{account}\n{region}\n{endpoint}");
        // A key may name the credentials after the account: `ACCOUNT|...` shows as ACCOUNT.
        let account = account.split('|').next().unwrap_or(account);
        let mut gates = GATES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gates
            .entry(key)
            .or_insert_with(|| Arc::new(AccountGate::new(account, region, get_rps, list_rps)))
            .clone()
    }

    /// A turn for a `GetSnapshotBlock` request. `None` if the runtime is shutting down.
    pub(crate) async fn get(&self, priority: Priority) -> Option<Permit> {
        self.get.acquire(priority).await
    }

    /// A turn for a `ListSnapshotBlocks` request.
    pub(crate) async fn list(&self, priority: Priority) -> Option<Permit> {
        self.list.acquire(priority).await
    }

    /// Learn from the answer to a `GetSnapshotBlock` request sent at `sent`.
    pub(crate) fn got(&self, a: Answer, sent: Instant) {
        match a {
            Answer::Ok => self.get.succeeded(),
            Answer::Throttled => self.get.throttled(sent),
            Answer::Other => {}
        }
    }

    /// Learn from the answer to a `ListSnapshotBlocks` request sent at `sent`.
    pub(crate) fn listed(&self, a: Answer, sent: Instant) {
        match a {
            Answer::Ok => self.list.succeeded(),
            Answer::Throttled => self.list.throttled(sent),
            Answer::Other => {}
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> AccountStats {
        let g = self.get.lock();
        let achieved = match (g.first, g.last) {
            (Some(a), Some(b)) if b > a => {
                self.get.requests.load(Ordering::Relaxed).saturating_sub(1) as f64
                    / (b - a).as_secs_f64()
            }
            _ => 0.0,
        };
        AccountStats {
            account: self.account.clone(),
            region: self.region.clone(),
            limit_rps: self.get.ceiling as u32,
            current_rps: g.rate,
            requests: self.get.requests.load(Ordering::Relaxed),
            throttles: self.get.throttles.load(Ordering::Relaxed),
            list_requests: self.list.requests.load(Ordering::Relaxed),
            list_throttles: self.list.throttles.load(Ordering::Relaxed),
            cuts: g.cuts,
            achieved_rps: achieved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// A gate whose first request was `age` ago and `ok` of whose requests succeeded since.
    fn gate_with(age: Duration, ok: usize) -> AccountGate {
        let g = AccountGate::new("a", "r", 1000, 50);
        g.get.lock().first = Some(Instant::now() - age);
        for _ in 0..ok {
            g.get.succeeded();
        }
        g
    }

    /// A throttle cuts to BETA of the lower of the rate and the rate achieved (a process whose
    /// share is a third of the quota goes under a third at once); throttles of requests sent
    /// before the cut, or within MIN_GAP of it, do not cut again; a later one does.
    #[test]
    fn a_throttle_cuts_to_the_achieved_rate_once_per_round() {
        // A young gate: 150 successes in its first half second are 300/s.
        let g = gate_with(Duration::from_millis(500), 150);
        assert_eq!(g.stats().current_rps, 1000.0 * START);
        let before = Instant::now();
        g.got(Answer::Throttled, Instant::now());
        let cut = g.stats().current_rps;
        assert!((cut - 300.0 * BETA).abs() < 30.0, "{cut}");
        assert_eq!(
            g.get.lock().cut_from.map(f64::round),
            Some((cut / BETA).round())
        );
        // Sent before the cut: already answered by it.
        g.got(Answer::Throttled, before);
        // Sent after it, but within MIN_GAP.
        g.got(Answer::Throttled, Instant::now());
        assert_eq!(g.stats().current_rps, cut);
        assert_eq!((g.stats().cuts, g.stats().throttles), (1, 3));
        // A request sent after the cut and throttled MIN_GAP later cuts again.
        g.get.lock().last_cut = Some(Instant::now() - MIN_GAP);
        g.got(Answer::Throttled, Instant::now());
        assert!(g.stats().current_rps < cut);
        assert_eq!(g.stats().cuts, 2);
        // A gate a second old counts the successes of the last second: 200 of them.
        let g = gate_with(Duration::from_secs(3), 200);
        g.got(Answer::Throttled, Instant::now());
        assert_eq!(g.stats().current_rps, 200.0 * BETA);
        // A throttle before any success cuts to the floor.
        let g = gate_with(Duration::ZERO, 0);
        g.got(Answer::Throttled, Instant::now());
        assert_eq!(g.stats().current_rps, 1000.0 * FLOOR);
        // The list gate is separate.
        assert_eq!(g.list.lock().rate, 50.0);
    }

    /// After a cut the rate grows only while requests wait for turns: FAST times RECOVER under
    /// NEAR of the rate cut from, RECOVER up to it, then RECOVER doubling every ACCEL.
    #[test]
    fn the_rate_grows_back_while_requests_wait() {
        runtime().block_on(async {
            let g = Arc::new(gate_with(Duration::from_secs(3), 200));
            g.got(Answer::Throttled, Instant::now());
            let cut = g.stats().current_rps;
            // Nobody waits: no growth.
            g.get.lock().last_grow = Instant::now() - Duration::from_millis(500);
            g.get.grow();
            assert_eq!(g.stats().current_rps, cut);
            // Requests wait (more than the rate allows in the next half second).
            let mut waiting = vec![];
            for _ in 0..400 {
                let g = g.clone();
                waiting.push(tokio::spawn(async move { g.get(Arc::default()).await }));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(g.get.limiter.has_waiters());
            let grow_over = |dt: Duration| {
                let before = g.stats().current_rps;
                g.get.lock().last_grow = Instant::now() - dt;
                g.get.grow();
                g.stats().current_rps - before
            };
            // Under NEAR of 200: four percent of the ceiling per second.
            let d = grow_over(Duration::from_millis(250));
            assert!((d - 1000.0 * RECOVER * FAST * 0.25).abs() < 2.0, "{d}");
            // From NEAR of 200 to 200: one percent.
            g.get.lock().rate = 185.0;
            let d = grow_over(Duration::from_millis(500));
            assert!((d - 1000.0 * RECOVER * 0.5).abs() < 1.0, "{d}");
            // Above 200: one percent, doubling each second without a cut, up to MAX_ACCEL.
            g.get.lock().rate = 300.0;
            let d = grow_over(Duration::from_secs(1));
            assert!((d - 1000.0 * RECOVER).abs() < 1.0, "{d}");
            let d = grow_over(Duration::from_secs(1));
            assert!((d - 2.0 * 1000.0 * RECOVER).abs() < 1.0, "{d}");
            g.get.lock().accel = MAX_ACCEL;
            g.get.lock().rate = 300.0;
            let d = grow_over(Duration::from_secs(1));
            assert!((d - MAX_ACCEL * 1000.0 * RECOVER).abs() < 1.0, "{d}");
            assert_eq!(g.get.lock().accel, MAX_ACCEL);
            // A cut starts the doubling again.
            g.get.lock().last_cut = None;
            g.got(Answer::Throttled, Instant::now());
            assert_eq!(g.get.lock().accel, 1.0);
            for w in waiting {
                w.abort();
            }
        });
    }

    /// Unthrottled, the rate doubles every quarter of a second from START of the configured
    /// rate, and stops at it.
    #[test]
    fn the_rate_starts_low_and_doubles_to_the_configured_rate() {
        runtime().block_on(async {
            let g = AccountGate::new("a", "r", 1000, 50);
            assert_eq!(g.stats().current_rps, 1000.0 * START);
            tokio::time::sleep(Duration::from_millis(120)).await;
            g.get.grow();
            // Doubled in part (or, on a slow machine, all the way).
            let grown = g.stats().current_rps;
            assert!(grown > 1000.0 * START && grown <= 1000.0, "{grown}");
            assert_eq!(g.get.lock().slow_start, grown < 1000.0);
            tokio::time::sleep(Duration::from_millis(300)).await;
            g.get.grow();
            assert_eq!(g.stats().current_rps, 1000.0);
            assert!(!g.get.lock().slow_start);
        });
    }

    #[test]
    fn the_rate_never_falls_under_the_floor() {
        runtime().block_on(async {
            let g = AccountGate::new("a", "r", 100, 50);
            for _ in 0..40 {
                g.got(Answer::Throttled, Instant::now());
                g.get.lock().last_cut = None;
            }
            assert_eq!(g.stats().current_rps, 2.0);
        });
    }

    /// One gate per account, region and endpoint, whatever rates later callers give.
    #[test]
    fn the_gate_is_shared_per_account_region_and_endpoint() {
        let a = AccountGate::shared("111", "us-east-1", "http://x", 10, 5);
        let b = AccountGate::shared("111", "us-east-1", "http://x", 99, 5);
        let c = AccountGate::shared("111", "eu-west-1", "http://x", 10, 5);
        let d = AccountGate::shared("222", "us-east-1", "http://x", 10, 5);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c) && !Arc::ptr_eq(&a, &d));
        assert_eq!(b.stats().limit_rps, 10);
    }
}
