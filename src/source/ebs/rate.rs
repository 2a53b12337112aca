//! A pacing rate limiter: request slots spaced `1/rps` apart, so no window of time ever sees more
//! than `rps` requests per second (plus one).

use std::time::Duration;
use tokio::time::Instant;

/// Hands out start times no closer than `interval`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    next: std::sync::Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `rps` requests per second (at least 1).
    pub(crate) fn new(rps: u32) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / rps.max(1),
            next: std::sync::Mutex::new(None),
        }
    }

    /// Wait for the next free slot.
    pub(crate) async fn acquire(&self) {
        let slot = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_exceeds_the_rate() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let lim = RateLimiter::new(200);
            let start = Instant::now();
            for _ in 0..41 {
                lim.acquire().await;
            }
            // 41 slots at 5 ms spacing: the last starts at least 200 ms in.
            assert!(start.elapsed() >= Duration::from_millis(200));
        });
    }
}
