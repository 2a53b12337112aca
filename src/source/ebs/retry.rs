//! Exponential backoff with full jitter, and the small generator it draws from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
}
