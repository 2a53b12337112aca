//! Exponential backoff with full jitter, the small generator it draws from, and the clock of a
//! snapshot's retry budget.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The time a snapshot has spent retrying: wall-clock time during which at least one of its
/// blocks is being retried after a failure that was not throttling (the union of those
/// intervals, so sixty blocks failing together for ten seconds spend ten seconds, not ten
/// minutes). [`super::EbsOptions::retry_budget`] bounds it.
#[derive(Debug, Default)]
pub(crate) struct RetryClock(Mutex<ClockState>);

#[derive(Debug, Default)]
struct ClockState {
    /// Blocks being retried now.
    retrying: usize,
    /// Since when some block has been retried, while `retrying > 0`.
    since: Option<Instant>,
    /// Closed intervals so far.
    spent: Duration,
}

impl RetryClock {
    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A block starts being retried; the guard marks the end of it.
    pub(crate) fn start(&self) -> Retrying<'_> {
        let mut s = self.state();
        if s.retrying == 0 {
            s.since = Some(Instant::now());
        }
        s.retrying += 1;
        Retrying(self)
    }

    /// Time spent retrying so far.
    pub(crate) fn spent(&self) -> Duration {
        let s = self.state();
        s.spent + s.since.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

/// One block being retried (see [`RetryClock::start`]).
pub(crate) struct Retrying<'a>(&'a RetryClock);

impl Drop for Retrying<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.retrying = s.retrying.saturating_sub(1);
        if s.retrying == 0
            && let Some(t) = s.since.take()
        {
            s.spent += t.elapsed();
        }
    }
}

/// A lock-free SplitMix64 generator seeded from the clock: good enough for jitter.
#[derive(Debug)]
pub(crate) struct Jitter(AtomicU64);

impl Jitter {
    pub(crate) fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x1234_5678, |d| d.as_nanos() as u64);
        Jitter(AtomicU64::new(seed))
    }

    pub(crate) fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The wait before retry number `retry` (1 = first retry): uniform in
/// `[0, min(max, base * 2^(retry-1))]` ("full jitter").
pub(crate) fn backoff(jitter: &Jitter, base: Duration, max: Duration, retry: u32) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let ceiling = base.checked_mul(1u32 << exp).unwrap_or(max).min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(jitter.next_u64() % nanos.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_exponential_ceiling_and_the_cap() {
        let j = Jitter::new();
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for retry in 1..40 {
            let ceiling = base.saturating_mul(1 << (retry - 1).min(30)).min(max);
            for _ in 0..50 {
                assert!(backoff(&j, base, max, retry) <= ceiling);
            }
        }
        assert_eq!(backoff(&j, Duration::ZERO, max, 3), Duration::ZERO);
    }

    /// Overlapping retries count once; the clock stops when none is left.
    #[test]
    fn the_retry_clock_counts_overlapping_retries_once() {
        let c = RetryClock::default();
        assert_eq!(c.spent(), Duration::ZERO);
        let a = c.start();
        let b = c.start();
        std::thread::sleep(Duration::from_millis(20));
        drop(a);
        let mid = c.spent();
        assert!(mid >= Duration::from_millis(20));
        drop(b);
        let end = c.spent();
        assert!(end >= mid);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(c.spent(), end, "stopped with no block retrying");
        // A new retry starts a new interval from there.
        let again = c.start();
        assert!(c.spent() >= end);
        drop(again);
    }
}
