//! What every snapshot a process reads shares: one tokio runtime, and one memory budget for the
//! blocks held in memory (`--memory-mb`, default 256 MiB).
//!
//! The budget is split three ways: five eighths for the block caches of all the snapshots
//! open, an eighth for the bodies of the `GetSnapshotBlock` requests in flight (a process-wide
//! cap on requests in flight, in priority order), and the rest is left for the blocks readers
//! hold while they copy out of them and what the allocator keeps (glibc's heaps hold freed
//! half-MiB buffers: four volumes scanned in a row peaked at 329 MiB with three quarters for
//! the caches). A single snapshot read with the default budget gets a 160 MiB cache (it had
//! 192 MiB before there was a budget) and 64 requests in flight.
//!
//! The caches' share goes to the snapshots being read: a snapshot read in the last second is
//! active; each active one gets an equal share (at most its own `cache_bytes`), and an idle one
//! keeps [`IDLE_BLOCKS`]. An AMI's volumes are scanned one after another, so the volume being
//! scanned gets nearly the whole cache while the others keep a few blocks; a `sweep --parallel
//! 4` splits it four ways. Shares are recomputed when a snapshot becomes active, every
//! `REBALANCE` while one is read, and when one is closed; a cache over its new share evicts at
//! once.

use super::cache::{BlockCache, BufferPool};
use super::rate::RateLimiter;
use super::{BLOCK_SIZE, EbsError, lock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Blocks an idle snapshot's cache keeps.
pub const IDLE_BLOCKS: usize = 16;
/// A snapshot read within this long is active.
const ACTIVE: Duration = Duration::from_secs(1);
/// Shares are recomputed at most this often while snapshots are read.
const REBALANCE: Duration = Duration::from_millis(250);
/// Threads of the process's runtime (the work is I/O; hashing goes to its blocking pool).
const RUNTIME_THREADS: usize = 2;

/// The process's tokio runtime for the EBS direct APIs (and the AWS session's other calls).
pub(crate) fn runtime() -> Result<tokio::runtime::Handle, EbsError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("amiscan-aws")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(|rt| rt.handle().clone())
    .map_err(|e| EbsError::Runtime(e.clone()))
}

fn since_epoch() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let e = *EPOCH.get_or_init(Instant::now);
    u64::try_from(e.elapsed().as_millis()).unwrap_or(u64::MAX)
}

struct Member {
    id: u64,
    cache: Weak<Mutex<BlockCache>>,
    /// The snapshot's own ceiling (`cache_bytes`), in blocks.
    ceiling: usize,
    /// When it was last read (ms since the epoch; 0 = never).
    last: Arc<AtomicU64>,
}

/// One memory budget for the blocks of every snapshot sharing it (see the module doc).
pub struct MemoryBudget {
    bytes: u64,
    inflight: RateLimiter,
    /// Buffers of evicted blocks, for any of the caches.
    pool: Arc<BufferPool>,
    members: Mutex<Vec<Member>>,
    next_id: AtomicU64,
    last_rebalance: AtomicU64,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl MemoryBudget {
    /// A budget of `bytes` (at least 8 MiB) of its own.
    pub fn new(bytes: u64) -> Arc<MemoryBudget> {
        let bytes = bytes.max(8 << 20);
        Arc::new(MemoryBudget {
            bytes,
            inflight: RateLimiter::unpaced(Self::inflight_blocks(bytes)),
            // Up to the caches' part: what a cache gives back going idle is what the next one
            // read takes (it refills from the pool before allocating), so blocks held and
            // pooled together stay within what the caches were allowed.
            pool: Arc::new(BufferPool::new(
                usize::try_from(bytes / 8 * 5 / BLOCK_SIZE).unwrap_or(usize::MAX),
            )),
            members: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            last_rebalance: AtomicU64::new(0),
        })
    }

    /// The process's budget, made with `bytes` the first time it is asked for.
    pub fn process(bytes: u64) -> Arc<MemoryBudget> {
        static B: OnceLock<Arc<MemoryBudget>> = OnceLock::new();
        B.get_or_init(|| MemoryBudget::new(bytes)).clone()
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Requests in flight at once, process-wide: an eighth of the budget (64 for 256 MiB).
    fn inflight_blocks(bytes: u64) -> usize {
        usize::try_from(bytes / 8 / BLOCK_SIZE)
            .unwrap_or(usize::MAX)
            .max(4)
    }

    /// Blocks all the caches hold together: five eighths of the budget.
    pub fn cache_blocks(&self) -> usize {
        usize::try_from(self.bytes / 8 * 5 / BLOCK_SIZE).unwrap_or(usize::MAX)
    }

    /// The gate on the requests in flight (their bodies).
    pub(crate) fn inflight(&self) -> &RateLimiter {
        &self.inflight
    }

    /// Share the budget with `cache` (at most `ceiling` blocks); the membership ends when dropped.
    pub(crate) fn join(
        self: &Arc<Self>,
        cache: &Arc<Mutex<BlockCache>>,
        ceiling: usize,
    ) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let last = Arc::new(AtomicU64::new(0));
        lock(cache).use_pool(self.pool.clone());
        lock(&self.members).push(Member {
            id,
            cache: Arc::downgrade(cache),
            ceiling,
            last: last.clone(),
        });
        self.rebalance();
        Membership {
            budget: self.clone(),
            id,
            last,
        }
    }

    /// Give each cache its share now.
    fn rebalance(&self) {
        let now = since_epoch();
        self.last_rebalance.store(now, Ordering::Relaxed);
        let active_ms = u64::try_from(ACTIVE.as_millis()).unwrap_or(u64::MAX);
        let members = lock(&self.members);
        let is_active = |m: &Member| {
            let l = m.last.load(Ordering::Relaxed);
            l != 0 && now.saturating_sub(l) < active_ms
        };
        let mut active = members.iter().filter(|m| is_active(m)).count();
        let all = active == 0;
        if all {
            active = members.len();
        }
        let idle = members.len() - active;
        let total = self.cache_blocks();
        let share = (total.saturating_sub(IDLE_BLOCKS * idle) / active.max(1)).max(IDLE_BLOCKS);
        for m in members.iter() {
            let Some(cache) = m.cache.upgrade() else {
                continue;
            };
            let cap = if all || is_active(m) {
                share
            } else {
                IDLE_BLOCKS
            };
            lock(&cache).set_capacity(cap.min(m.ceiling));
        }
    }
}

/// A snapshot's share of a [`MemoryBudget`].
pub(crate) struct Membership {
    budget: Arc<MemoryBudget>,
    id: u64,
    last: Arc<AtomicU64>,
}

impl Membership {
    /// The snapshot is being read: recompute the shares when it was idle, or every `REBALANCE`.
    /// Call it with no lock held.
    pub(crate) fn touch(&self) {
        let now = since_epoch().max(1);
        let prev = self.last.swap(now, Ordering::Relaxed);
        let active_ms = u64::try_from(ACTIVE.as_millis()).unwrap_or(u64::MAX);
        let every = u64::try_from(REBALANCE.as_millis()).unwrap_or(u64::MAX);
        let was_idle = prev == 0 || now.saturating_sub(prev) >= active_ms;
        let due = now.saturating_sub(self.budget.last_rebalance.load(Ordering::Relaxed)) >= every;
        if was_idle || due {
            self.budget.rebalance();
        }
    }

    pub(crate) fn budget(&self) -> &MemoryBudget {
        &self.budget
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        lock(&self.budget.members).retain(|m| m.id != self.id);
        self.budget.rebalance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Arc<Mutex<BlockCache>> {
        Arc::new(Mutex::new(BlockCache::new(0)))
    }

    /// The snapshot being read gets the caches' share less what the idle ones keep; two being
    /// read split it; a closed one gives its share back; no share is above its own ceiling.
    #[test]
    fn the_snapshots_being_read_share_the_budget() {
        let b = MemoryBudget::new(64 << 20);
        assert_eq!(b.cache_blocks(), 80);
        let (c1, c2, c3) = (cache(), cache(), cache());
        let m1 = b.join(&c1, 1000);
        let m2 = b.join(&c2, 1000);
        let m3 = b.join(&c3, 20);
        // None read yet: equal shares, the third at its ceiling.
        assert_eq!(lock(&c1).capacity(), 80 / 3);
        assert_eq!(lock(&c3).capacity(), 20);
        m1.touch();
        assert_eq!(lock(&c1).capacity(), 80 - 2 * IDLE_BLOCKS);
        assert_eq!(lock(&c2).capacity(), IDLE_BLOCKS);
        m2.touch();
        assert_eq!(lock(&c1).capacity(), (80 - IDLE_BLOCKS) / 2);
        assert_eq!(lock(&c2).capacity(), (80 - IDLE_BLOCKS) / 2);
        drop(m2);
        assert_eq!(lock(&c1).capacity(), 80 - IDLE_BLOCKS);
        m3.touch();
        assert_eq!(lock(&c3).capacity(), 20);
        assert_eq!(lock(&c1).capacity(), 40);
        let total: usize = [&c1, &c3].iter().map(|c| lock(c).capacity()).sum();
        assert!(total <= b.cache_blocks());
    }
}
