//! What every snapshot a process reads shares: one tokio runtime, and one memory budget for the
//! blocks held in memory (`--memory-mb`, default 256 MiB).
//!
//! The budget is split three ways: nine sixteenths for the block caches of all the snapshots
//! open, an eighth for the bodies of the `GetSnapshotBlock` requests in flight (a process-wide
//! cap on requests in flight, in priority order), and the rest is left for the blocks readers
//! hold while they copy out of them and what the allocator keeps (glibc's heaps hold freed
//! half-MiB buffers: four volumes scanned in a row peaked at 329 MiB with three quarters for
//! the caches, and 282–296 MiB with five eighths). A single snapshot read with the default
//! budget gets a 144 MiB cache (it had 192 MiB before there was a budget; blocks read through
//! go first, so the one-volume bench fetches as many blocks with 144 as with 160 MiB) and 64
//! requests in flight.
//!
//! The caches' share goes to the snapshots by their demand: the blocks their readers asked
//! for, counted each `REBALANCE` and smoothed (each period's count plus half the weight before,
//! so a snapshot that stops asking loses half its weight every period). Each snapshot gets
//! [`IDLE_BLOCKS`] and a part of the rest in proportion to its weight (at most its own
//! `cache_bytes`; what a ceiling leaves goes to the others). An AMI's volumes are scanned one
//! after another, so the volume being scanned gets nearly the whole cache while the others keep
//! a few blocks; a `sweep --parallel 4` splits it by what each reads. Opening the next volumes
//! (a few blocks each) no longer takes a share from the one being scanned: with shares by
//! "read within the last second", it dropped from 272 blocks to 80 while three volumes were
//! opened, and the blocks it had fetched ahead were fetched again (1.27× the blocks needed in
//! one CI run). Shares are recomputed when a snapshot joins, when one idle for a second is read
//! again, every `REBALANCE` while one is read, and when one is closed; a cache over its new
//! share evicts at once.

use super::cache::{BlockCache, BufferPool};
use super::rate::RateLimiter;
use super::{BLOCK_SIZE, EbsError, lock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Blocks an idle snapshot's cache keeps.
pub const IDLE_BLOCKS: usize = 16;
/// A snapshot not read for this long is idle: reading it again recomputes the shares at once.
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
    /// Blocks its readers asked for since the last rebalance.
    asked: Arc<AtomicU64>,
    /// Its demand, smoothed: the blocks asked in each period plus half the weight before.
    weight: f64,
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
            pool: Arc::new(BufferPool::new(Self::caches_part(bytes))),
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

    /// Blocks all the caches hold together: nine sixteenths of the budget.
    pub fn cache_blocks(&self) -> usize {
        Self::caches_part(self.bytes)
    }

    fn caches_part(bytes: u64) -> usize {
        usize::try_from(bytes / 16 * 9 / BLOCK_SIZE).unwrap_or(usize::MAX)
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
        let asked = Arc::new(AtomicU64::new(0));
        lock(cache).use_pool(self.pool.clone());
        lock(&self.members).push(Member {
            id,
            cache: Arc::downgrade(cache),
            ceiling,
            asked: asked.clone(),
            weight: 0.0,
        });
        self.rebalance();
        Membership {
            budget: self.clone(),
            id,
            last,
            asked,
        }
    }

    /// Give each cache its share now (see the module doc).
    fn rebalance(&self) {
        self.last_rebalance.store(since_epoch(), Ordering::Relaxed);
        let mut members = lock(&self.members);
        for m in members.iter_mut() {
            m.weight = m.weight / 2.0 + m.asked.swap(0, Ordering::Relaxed) as f64;
        }
        let caps = shares(
            self.cache_blocks(),
            &members
                .iter()
                .map(|m| (m.weight, m.ceiling))
                .collect::<Vec<_>>(),
        );
        for (m, cap) in members.iter().zip(caps) {
            if let Some(cache) = m.cache.upgrade() {
                lock(&cache).set_capacity(cap);
            }
        }
    }
}

/// Each member's share of `total` blocks given its (weight, ceiling): [`IDLE_BLOCKS`] each (at
/// most its ceiling), and the rest in proportion to the weights, none above its ceiling, what a
/// ceiling cuts off going to the others. With no weight anywhere (nothing read yet) the rest is
/// shared equally.
fn shares(total: usize, members: &[(f64, usize)]) -> Vec<usize> {
    let mut cap: Vec<usize> = members.iter().map(|&(_, c)| c.min(IDLE_BLOCKS)).collect();
    let mut left = total.saturating_sub(cap.iter().sum());
    let equal = members.iter().all(|&(w, _)| w <= 0.0);
    let weight = |i: usize| if equal { 1.0 } else { members[i].0.max(0.0) };
    // Members that can still grow; each round hands out what is left by weight, and ends when
    // nothing is left or no member's ceiling cut its part.
    let mut open: Vec<usize> = (0..members.len())
        .filter(|&i| cap[i] < members[i].1 && weight(i) > 0.0)
        .collect();
    while left > 0 && !open.is_empty() {
        let sum: f64 = open.iter().map(|&i| weight(i)).sum();
        let mut given = 0;
        let mut capped = false;
        for &i in &open {
            let part = (left as f64 * weight(i) / sum) as usize;
            let room = members[i].1 - cap[i];
            let g = part.min(room);
            capped |= part >= room;
            cap[i] += g;
            given += g;
        }
        left -= given;
        open.retain(|&i| cap[i] < members[i].1);
        if !capped {
            break;
        }
    }
    cap
}

/// A snapshot's share of a [`MemoryBudget`].
pub(crate) struct Membership {
    budget: Arc<MemoryBudget>,
    id: u64,
    last: Arc<AtomicU64>,
    asked: Arc<AtomicU64>,
}

impl Membership {
    /// The snapshot's readers ask for `blocks` blocks: recompute the shares when it was idle,
    /// or every `REBALANCE`. Call it with no lock held.
    pub(crate) fn touch(&self, blocks: u64) {
        self.asked.fetch_add(blocks, Ordering::Relaxed);
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

    /// The snapshot's scan ended (its sweep plan was ended): it asks for nothing more soon, so
    /// its share goes to the others now rather than as its weight fades. Read again, it starts
    /// from nothing, as a snapshot just opened does.
    pub(crate) fn rest(&self) {
        self.last.store(0, Ordering::Relaxed);
        self.asked.store(0, Ordering::Relaxed);
        {
            let mut members = lock(&self.budget.members);
            if let Some(m) = members.iter_mut().find(|m| m.id == self.id) {
                m.weight = 0.0;
            }
        }
        self.budget.rebalance();
    }

    /// The snapshot's scan starts its plan (the first sweep of a full scan): it will read at
    /// least a cache's worth soon, so it gets that much demand now, on top of what it asked,
    /// and the shares are recomputed at once. The other volumes of the AMI, opened just before
    /// (a few blocks each: partition table, probes), counted as much demand as the one being
    /// scanned until its reads piled up over the next periods, and split its share meanwhile.
    /// The head start fades like any demand (half each period).
    pub(crate) fn scan_starts(&self) {
        let total = self.budget.cache_blocks() as f64;
        {
            let mut members = lock(&self.budget.members);
            if let Some(m) = members.iter_mut().find(|m| m.id == self.id) {
                m.weight += total;
            }
        }
        self.budget.rebalance();
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

    /// Shares follow what each snapshot's readers ask for: nothing asked yet, equal shares;
    /// the snapshot being scanned keeps nearly all when the others are opened (a few blocks
    /// each); two read alike split it; a closed one gives its share back; no share is above
    /// its own ceiling, and what a ceiling leaves goes to the others.
    #[test]
    fn the_snapshots_being_read_share_the_budget_by_demand() {
        let b = MemoryBudget::new(64 << 20);
        assert_eq!(b.cache_blocks(), 72);
        let (c1, c2, c3) = (cache(), cache(), cache());
        let m1 = b.join(&c1, 1000);
        let m2 = b.join(&c2, 1000);
        let m3 = b.join(&c3, 20);
        // None read yet: equal shares, the third at its ceiling.
        assert_eq!(lock(&c3).capacity(), 20);
        assert_eq!(lock(&c1).capacity(), 26);
        m1.asked.store(400, Ordering::Relaxed);
        m2.asked.store(2, Ordering::Relaxed);
        b.rebalance();
        let (a1, a2, a3) = (
            lock(&c1).capacity(),
            lock(&c2).capacity(),
            lock(&c3).capacity(),
        );
        assert!(a1 >= 72 - 2 * IDLE_BLOCKS - 1, "{a1}");
        assert!(a2 == IDLE_BLOCKS && a3 == IDLE_BLOCKS, "{a2} {a3}");
        // The second asks as much as the first now did: after a few periods they split it.
        for _ in 0..4 {
            m1.asked.store(200, Ordering::Relaxed);
            m2.asked.store(200, Ordering::Relaxed);
            b.rebalance();
        }
        let (a1, a2) = (lock(&c1).capacity(), lock(&c2).capacity());
        assert!(a1.abs_diff(a2) <= 4, "{a1} {a2}");
        // The first's scan ends: the second gets its share at once.
        m1.rest();
        assert!(lock(&c2).capacity() >= 72 - 2 * IDLE_BLOCKS - 1);
        assert_eq!(lock(&c1).capacity(), IDLE_BLOCKS);
        m1.asked.store(100, Ordering::Relaxed);
        drop(m2);
        assert!(lock(&c1).capacity() >= 72 - IDLE_BLOCKS - 1);
        // A ceiling cuts a share, and the rest goes to the others.
        assert_eq!(
            shares(80, &[(1.0, 1000), (3.0, 20)]),
            vec![IDLE_BLOCKS + 44, 20]
        );
        assert_eq!(shares(80, &[(0.0, 1000), (0.0, 1000)]), vec![40, 40]);
        m3.touch(1);
        let total: usize = [&c1, &c3].iter().map(|c| lock(c).capacity()).sum();
        assert!(total <= b.cache_blocks());
        drop(m1);
    }

    /// A volume whose scan starts gets nearly the whole share at once, though the AMI's other
    /// volumes, opened just before, asked for as many blocks as it had.
    #[test]
    fn a_scan_that_starts_is_not_split_by_the_volumes_opened_before() {
        let b = MemoryBudget::new(256 << 20);
        let caches: Vec<_> = (0..4).map(|_| cache()).collect();
        let ms: Vec<_> = caches.iter().map(|c| b.join(c, 1000)).collect();
        for m in &ms {
            m.asked.store(6, Ordering::Relaxed);
        }
        b.rebalance();
        assert_eq!(b.cache_blocks(), 288);
        assert!(
            lock(&caches[0]).capacity() <= 90,
            "{}",
            lock(&caches[0]).capacity()
        );
        ms[0].scan_starts();
        assert!(
            lock(&caches[0]).capacity() >= 288 * 3 / 4,
            "{}",
            lock(&caches[0]).capacity()
        );
        assert!(
            caches[1..]
                .iter()
                .all(|c| lock(c).capacity() <= IDLE_BLOCKS + 4)
        );
    }
}
