//! The gate every `GetSnapshotBlock` attempt passes: at most `concurrency` requests in flight,
//! start times on a schedule spaced `1/rps` apart, never more than `rps` starts in any window
//! of one second (the service's per-snapshot quota), and three priorities: urgent requests (a
//! reader is waiting for the block) go before read-ahead ones (blocks named by a hint or ahead
//! of a stream), which go before the background sweep of a full scan. A walk that reads one directory after another does not
//! queue behind the blocks fetched ahead of the content scan, and the sweep only fills the
//! turns nobody else wants.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// Priority of a background sweep request (lowest).
pub(crate) const SWEEP: u8 = 0;
/// Priority of a read-ahead or hinted request.
pub(crate) const AHEAD: u8 = 1;
/// Priority of a request a reader waits for (highest).
pub(crate) const URGENT: u8 = 2;

/// A request's priority, which may be raised while it waits (`fetch_max`).
pub(crate) type Priority = Arc<AtomicU8>;

/// A request waiting for its turn; its priority may be raised while it waits.
struct Waiter {
    tx: oneshot::Sender<Permit>,
    priority: Priority,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiter>,
    in_flight: usize,
    /// The earliest time the next request may start.
    next: Option<Instant>,
    /// Whether a dispatcher task is handing out turns.
    dispatching: bool,
    /// When the turns of the last window were given (at most `rps` of them), oldest first.
    recent: VecDeque<Instant>,
    /// Turns allowed in one window (0: unpaced, only the cap on requests in flight holds).
    rps: usize,
    /// Spacing of the turns: the window over `rps`.
    interval: Duration,
}

impl Queue {
    /// Whether a turn given at `now` keeps the starts of every one-second window within
    /// `rps`; if not, when it will.
    fn window(&mut self, now: Instant, window: Duration) -> Result<(), Instant> {
        if self.rps == 0 {
            return Ok(());
        }
        while self.recent.front().is_some_and(|&t| t + window <= now) {
            self.recent.pop_front();
        }
        match self.recent.front() {
            Some(&t) if self.recent.len() >= self.rps => Err(t + window),
            _ => Ok(()),
        }
    }

    fn given(&mut self, now: Instant) {
        if self.rps == 0 {
            return;
        }
        while self.recent.len() >= self.rps {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
    }
}

struct Shared {
    /// The window in which at most `rps` turns are given (one second for the per-snapshot
    /// quota; a little more for the account's, as a margin for network jitter).
    window: Duration,
    max_in_flight: usize,
    queue: Mutex<Queue>,
    /// Signalled when a request in flight ends.
    freed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A request's right to be in flight; dropping it frees the place.
pub(crate) struct Permit {
    shared: Arc<Shared>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut q = self.shared.lock();
            q.in_flight = q.in_flight.saturating_sub(1);
        }
        self.shared.freed.notify_one();
    }
}

/// Concurrency cap, request pacing and priority in one queue.
pub(crate) struct RateLimiter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("window", &self.shared.window)
            .field("max_in_flight", &self.shared.max_in_flight)
            .finish()
    }
}

impl RateLimiter {
    /// A gate for `rps` requests per second (at least 1) and `concurrency` in flight (at least 1).
    pub(crate) fn new(rps: u32, concurrency: usize) -> Self {
        Self::with_window(rps, concurrency, Duration::from_secs(1))
    }

    /// A gate for `rps` requests (at least 1) in any `window`, and `concurrency` in flight.
    pub(crate) fn with_window(rps: u32, concurrency: usize, window: Duration) -> Self {
        let rps = rps.max(1) as usize;
        RateLimiter {
            shared: Arc::new(Shared {
                window,
                max_in_flight: concurrency.max(1),
                queue: Mutex::new(Queue {
                    rps,
                    interval: window / u32::try_from(rps).unwrap_or(u32::MAX),
                    ..Queue::default()
                }),
                freed: Notify::new(),
            }),
        }
    }

    /// A gate that only caps the requests in flight (at least 1), in priority order.
    pub(crate) fn unpaced(concurrency: usize) -> Self {
        RateLimiter {
            shared: Arc::new(Shared {
                window: Duration::from_secs(1),
                max_in_flight: concurrency.max(1),
                queue: Mutex::new(Queue::default()),
                freed: Notify::new(),
            }),
        }
    }

    /// Change the rate to `rps` turns per window (at least 1; fractions of a turn slow the
    /// spacing): the adaptive account gate's multiplicative decrease and additive increase.
    pub(crate) fn set_rate(&self, rps: f64) {
        let rps = if rps.is_finite() { rps.max(1.0) } else { 1.0 };
        let mut q = self.shared.lock();
        // Whole turns per window, at least one; the spacing takes the fraction into account.
        q.rps = (rps.floor() as usize).max(1);
        q.interval = self.shared.window.div_f64(rps);
    }

    /// Whether requests are waiting for a turn (the rate, not the demand, is what holds them).
    pub(crate) fn has_waiters(&self) -> bool {
        !self.shared.lock().waiting.is_empty()
    }

    /// Wait for a turn: the waiters of the highest priority (as it is when the turn comes) go
    /// first, in arrival order. `None` if the runtime is shutting down. Must be called inside a
    /// tokio runtime.
    pub(crate) async fn acquire(&self, priority: Priority) -> Option<Permit> {
        let (tx, rx) = oneshot::channel();
        let spawn = {
            let mut q = self.shared.lock();
            let now = Instant::now();
            if q.waiting.is_empty()
                && q.in_flight < self.shared.max_in_flight
                && q.next.is_none_or(|n| n <= now)
                && q.window(now, self.shared.window).is_ok()
            {
                q.in_flight += 1;
                q.next = Some(now + q.interval);
                q.given(now);
                return Some(Permit {
                    shared: self.shared.clone(),
                });
            }
            q.waiting.push_back(Waiter { tx, priority });
            !std::mem::replace(&mut q.dispatching, true)
        };
        if spawn {
            tokio::spawn(dispatch(self.shared.clone()));
        }
        rx.await.ok()
    }
}

/// How far behind its schedule the dispatcher may catch up. Its timer fires a millisecond
/// late, and, on a machine whose cores are busy scanning, its thread may not run for 5 to 10
/// ms: the turns it missed are given when it runs (and the per-second window allows them).
/// Turns keep their place on the schedule, `interval` apart, so a long stretch of time never
/// sees more than one turn per interval, plus this much; a short one sees a burst of at most
/// this much.
const CATCH_UP: Duration = Duration::from_millis(25);

/// Hand out turns until nobody waits.
async fn dispatch(shared: Arc<Shared>) {
    loop {
        match next_turn(&shared) {
            Turn::Done => return,
            Turn::Full => shared.freed.notified().await,
            Turn::Wait(at) => tokio::time::sleep_until(at).await,
            Turn::Given => {}
        }
    }
}

enum Turn {
    /// Nobody waits; the dispatcher ends.
    Done,
    /// Every place is taken; wait for one to be freed.
    Full,
    /// The next turn is not due yet.
    Wait(Instant),
    /// A waiter got its permit (or had left, and the place was freed again).
    Given,
}

/// Give the next turn if it is due: to the first waiter of the highest priority.
fn next_turn(shared: &Arc<Shared>) -> Turn {
    let mut q = shared.lock();
    loop {
        if q.waiting.is_empty() {
            q.dispatching = false;
            return Turn::Done;
        }
        if q.in_flight >= shared.max_in_flight {
            return Turn::Full;
        }
        let now = Instant::now();
        let floor = now.checked_sub(CATCH_UP).unwrap_or(now);
        let slot = q.next.map_or(now, |n| n.max(floor));
        if slot > now {
            return Turn::Wait(slot);
        }
        if let Err(at) = q.window(now, shared.window) {
            return Turn::Wait(at);
        }
        let mut pick = 0;
        let mut best = None;
        for (i, w) in q.waiting.iter().enumerate() {
            let p = w.priority.load(Ordering::Relaxed);
            if best.is_none_or(|b| p > b) {
                (pick, best) = (i, Some(p));
                if p >= URGENT {
                    break;
                }
            }
        }
        let Some(w) = q.waiting.remove(pick) else {
            continue;
        };
        if w.tx.is_closed() {
            continue;
        }
        q.in_flight += 1;
        q.next = Some(slot + q.interval);
        q.given(now);
        drop(q);
        // A receiver gone meanwhile drops the permit, which frees the place again.
        let _ = w.tx.send(Permit {
            shared: shared.clone(),
        });
        return Turn::Given;
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

    /// A runtime on tokio's paused clock: time moves only by `advance`, or to the next timer
    /// when every task waits.
    fn paused() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    /// Tasks that each take a turn, record when, and leave.
    fn takers(
        lim: &Arc<RateLimiter>,
        n: usize,
    ) -> (Vec<tokio::task::JoinHandle<()>>, Arc<Mutex<Vec<Instant>>>) {
        let times = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..n)
            .map(|_| {
                let (lim, times) = (lim.clone(), times.clone());
                tokio::spawn(async move {
                    let _p = lim.acquire(Arc::default()).await.unwrap();
                    times.lock().unwrap().push(Instant::now());
                })
            })
            .collect();
        (tasks, times)
    }

    async fn settle() {
        for _ in 0..200 {
            tokio::task::yield_now().await;
        }
    }

    /// The dispatcher's thread held up for 20 ms (a machine busy scanning): the 20 turns due
    /// meanwhile are given when it runs, not lost.
    #[test]
    fn a_late_dispatcher_gives_the_turns_it_missed() {
        paused().block_on(async {
            let lim = Arc::new(RateLimiter::new(1000, 64));
            let (_tasks, times) = takers(&lim, 40);
            settle().await;
            assert_eq!(
                times.lock().unwrap().len(),
                1,
                "the first finds the gate free"
            );
            tokio::time::advance(Duration::from_millis(20)).await;
            settle().await;
            let n = times.lock().unwrap().len();
            assert!((20..=21).contains(&n), "{n} turns after 20 ms");
        });
    }

    /// Turns made up after a late run never put more than `rps` starts in one second: the
    /// per-snapshot quota holds in every window, not just on average.
    #[test]
    fn no_second_sees_more_than_rps_starts() {
        paused().block_on(async {
            let lim = Arc::new(RateLimiter::new(100, 64));
            let (tasks, times) = takers(&lim, 250);
            settle().await;
            // Late by 35 ms: the turns of 10, 20 and 30 ms are given at 35; then on time, the
            // schedule alone would put 103 starts in the second from 35 ms.
            tokio::time::advance(Duration::from_millis(35)).await;
            for t in tasks {
                t.await.unwrap();
            }
            let mut t = times.lock().unwrap().clone();
            t.sort();
            for (i, &from) in t.iter().enumerate() {
                let within = t[i..]
                    .iter()
                    .take_while(|&&x| x < from + Duration::from_secs(1))
                    .count();
                assert!(
                    within <= 100,
                    "{within} starts in the second from start {i}"
                );
            }
            // Still paced: 250 turns at 100 per second take about 2.5 s.
            let span = t[t.len() - 1] - t[0];
            assert!(span >= Duration::from_millis(2400), "{span:?}");
        });
    }

    #[test]
    fn never_exceeds_the_rate() {
        runtime().block_on(async {
            let lim = RateLimiter::new(200, 64);
            let start = Instant::now();
            for _ in 0..41 {
                let _p = lim.acquire(Arc::default()).await.unwrap();
            }
            // 41 slots at 5 ms spacing: the last starts at least 200 ms in.
            assert!(start.elapsed() >= Duration::from_millis(200));
        });
    }

    /// Requests queued ahead for read-ahead do not delay one a reader waits for, and one whose
    /// priority is raised while it waits moves up too; the background sweep goes last.
    #[test]
    fn higher_priorities_go_first() {
        runtime().block_on(async {
            // One turn every 200 ms: the order is decided long before the second turn.
            let lim = Arc::new(RateLimiter::new(5, 64));
            let order = Arc::new(Mutex::new(Vec::new()));
            let prios: Vec<Priority> = [AHEAD, SWEEP, AHEAD, AHEAD, SWEEP]
                .into_iter()
                .map(|p| Arc::new(AtomicU8::new(p)))
                .collect();
            let mut tasks = Vec::new();
            for (i, prio) in prios.iter().enumerate() {
                let (lim, order, prio) = (lim.clone(), order.clone(), prio.clone());
                tasks.push(tokio::spawn(async move {
                    let _p = lim.acquire(prio).await;
                    order.lock().unwrap().push(i);
                }));
                // Each task queues before the next is spawned.
                tokio::task::yield_now().await;
            }
            prios[3].fetch_max(URGENT, Ordering::Relaxed);
            let (l, o) = (lim.clone(), order.clone());
            let urgent = tokio::spawn(async move {
                let _p = l.acquire(Arc::new(AtomicU8::new(URGENT))).await;
                o.lock().unwrap().push(99);
            });
            for t in tasks {
                t.await.unwrap();
            }
            urgent.await.unwrap();
            // 0 found the gate free; then the raised one, the urgent one, read-ahead, sweep.
            assert_eq!(*order.lock().unwrap(), vec![0, 3, 99, 2, 1, 4]);
        });
    }

    /// A lower rate spaces the turns further apart and lets fewer into one window; a higher
    /// one brings them back.
    #[test]
    fn the_rate_can_be_changed() {
        paused().block_on(async {
            let lim = Arc::new(RateLimiter::with_window(100, 64, Duration::from_secs(1)));
            lim.set_rate(10.0);
            let (tasks, times) = takers(&lim, 25);
            for t in tasks {
                t.await.unwrap();
            }
            let mut t = times.lock().unwrap().clone();
            t.sort();
            // 25 turns at 10 per second: about 2.4 s.
            assert!(
                t[24] - t[0] >= Duration::from_millis(2300),
                "{:?}",
                t[24] - t[0]
            );
            lim.set_rate(1000.0);
            let start = Instant::now();
            let (tasks, _) = takers(&lim, 50);
            for t in tasks {
                t.await.unwrap();
            }
            assert!(start.elapsed() < Duration::from_millis(1000));
        });
    }

    #[test]
    fn caps_the_requests_in_flight() {
        runtime().block_on(async {
            let lim = Arc::new(RateLimiter::new(1000, 2));
            let a = lim.acquire(Arc::default()).await.unwrap();
            let _b = lim.acquire(Arc::default()).await.unwrap();
            let l = lim.clone();
            let third = tokio::spawn(async move { l.acquire(Arc::default()).await.is_some() });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!third.is_finished(), "a third request went in flight");
            drop(a);
            assert!(third.await.unwrap());
        });
    }
}
