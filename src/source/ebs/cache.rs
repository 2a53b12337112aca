//! A bounded LRU cache of whole blocks, where blocks a sequential reader has left behind can be
//! marked first to evict, the most recently left behind first. At most a quarter of the cache
//! holds such blocks: beyond that they are dropped at once, so a scan going through a volume
//! larger than the cache does not keep the cache full of blocks it has finished with.

use std::collections::{BTreeMap, HashMap};

/// An immutable, shared block of bytes (the buffer the body was read into: no second copy).
pub(crate) type Block = std::sync::Arc<Vec<u8>>;

/// Stamps of blocks in use start here; demoted blocks get stamps below it, so they go first.
/// Demoted stamps count down from here, so the block demoted last has the lowest stamp and goes
/// first: a forward reader's block just behind it is the one it will not come back to, while a
/// block left behind long ago by another pass (a package check reading a file that the content
/// scan reads again later) stays until no newer demoted block is left.
const USED: u64 = 1 << 62;
/// Stamps of done blocks (a plan is on and every page of the block it names has been read)
/// are a use's stamp less this: they go after the demoted blocks and before the blocks in use,
/// the least recently used first. Demoted stamps count down from here.
const DONE: u64 = 1 << 61;
/// The stamp of a pinned block: fetched by the background sweep and not read yet. It is in no
/// eviction order: it stays until it is read (or the sweep that fetched it is replaced).
const PINNED: u64 = u64::MAX;

/// Least-recently-used cache holding at most `capacity` blocks, at most `capacity / 4` (at least
/// one) of them demoted. Pinned blocks (fetched by the sweep, not read yet) are never evicted.
#[derive(Debug)]
pub(crate) struct BlockCache {
    capacity: usize,
    /// Blocks held with a demoted stamp.
    demoted: usize,
    /// Blocks held pinned.
    pinned: usize,
    tick: u64,
    /// The last stamp given to a demoted block (below [`DONE`]); each demotion takes the one below.
    low: u64,
    /// Blocks held with a done stamp.
    done: usize,
    /// Per listed block the plan names (sorted by block), its pages the plan reads and those
    /// not read yet (one bit per 128th of the block), while a plan is on (see
    /// [`BlockCache::set_plan`]).
    plan: Option<Vec<(u64, u128, u128)>>,
    /// Blocks a page of which the plan names was read a second time while a plan was on
    /// (filesystem metadata: MFT records, inode tables, read by the walk and again to open each
    /// file): never done until the plans end.
    hot: std::collections::HashSet<u64>,
    map: HashMap<u64, (Block, u64)>,
    order: BTreeMap<u64, u64>,
    /// Buffers of evicted blocks nobody else held, for the next fetches (see
    /// [`BlockCache::spare`]).
    spares: Vec<Vec<u8>>,
    /// The pool shared by every cache of a memory budget, where evicted buffers go instead.
    pool: Option<std::sync::Arc<BufferPool>>,
}

/// Buffers of evicted blocks shared by all the caches of a memory budget: a cache that shrinks
/// (its snapshot went idle) hands its buffers to the next snapshot read instead of back to the
/// allocator. (glibc raises its mmap threshold once a half-MiB buffer is freed, so later ones
/// come from its heaps, where freed buffers of one volume were not all reused by the next:
/// four volumes in a row peaked 70 MiB higher than one.) At most `most` are kept.
#[derive(Debug)]
pub(crate) struct BufferPool {
    most: usize,
    free: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    pub(crate) fn new(most: usize) -> Self {
        BufferPool {
            most,
            free: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Option<Vec<u8>> {
        super::lock(&self.free).pop()
    }

    fn give(&self, buf: Vec<u8>) {
        let mut free = super::lock(&self.free);
        if free.len() < self.most {
            free.push(buf);
        }
    }

    /// Buffers kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        super::lock(&self.free).len()
    }
}

/// Most buffers of evicted blocks kept for reuse.
const SPARES: usize = 16;

impl BlockCache {
    pub(crate) fn new(capacity: usize) -> Self {
        BlockCache {
            capacity,
            demoted: 0,
            pinned: 0,
            tick: USED,
            low: DONE,
            done: 0,
            plan: None,
            hot: std::collections::HashSet::new(),
            map: HashMap::new(),
            order: BTreeMap::new(),
            spares: Vec::new(),
            pool: None,
        }
    }

    /// Evicted buffers go to `pool` (shared with the other caches of a budget) from now on.
    pub(crate) fn use_pool(&mut self, pool: std::sync::Arc<BufferPool>) {
        for b in self.spares.drain(..) {
            pool.give(b);
        }
        self.pool = Some(pool);
    }

    /// An empty buffer (with the capacity it had) from a block the cache dropped, to fetch the
    /// next block into. The allocator then need not find room for a new half-MiB buffer, from
    /// whichever thread's arena, for every block: reusing them kept the peak memory of an EBS
    /// scan 40 to 50 MiB lower than freeing and allocating.
    pub(crate) fn spare(&mut self) -> Option<Vec<u8>> {
        let mut b = match &self.pool {
            Some(p) => p.take()?,
            None => self.spares.pop()?,
        };
        b.clear();
        Some(b)
    }

    /// The block, marking it recently used, and whether it was pinned until now (a read
    /// releases the pin).
    pub(crate) fn get(&mut self, index: u64) -> Option<(Block, bool)> {
        let (block, stamp) = self.map.get(&index)?;
        let (block, was_pinned) = (block.clone(), *stamp == PINNED);
        let to = self.fresh(index);
        self.restamp(index, to);
        Some((block, was_pinned))
    }

    /// Mark the block recently used without reading it (a hint named it: it will be read
    /// soon). A pinned block stays pinned; `false` if the block is not held.
    pub(crate) fn touch(&mut self, index: u64) -> bool {
        match self.map.get(&index) {
            None => false,
            Some((_, PINNED)) => true,
            Some(_) => {
                let to = self.fresh(index);
                self.restamp(index, to);
                true
            }
        }
    }

    /// Give held block `index` the stamp `to` (a use at the next tick, [`PINNED`], or a
    /// demoted stamp), keeping the counts and the eviction order right.
    fn restamp(&mut self, index: u64, to: u64) {
        let Some((_, stamp)) = self.map.get_mut(&index) else {
            return;
        };
        let from = std::mem::replace(stamp, to);
        self.forget(from);
        self.place(index, to);
    }

    /// Count held block `index`'s new stamp `to` and put it in the eviction order.
    fn place(&mut self, index: u64, to: u64) {
        match to {
            PINNED => self.pinned += 1,
            t if t < DONE => {
                self.demoted += 1;
                self.order.insert(t, index);
            }
            t if t < USED => {
                self.done += 1;
                self.tick = t + (USED - DONE);
                self.order.insert(t, index);
            }
            t => {
                self.tick = t;
                self.order.insert(t, index);
            }
        }
    }

    /// Take a stamp a block no longer has out of the counts and the eviction order.
    fn forget(&mut self, stamp: u64) {
        if stamp == PINNED {
            self.pinned -= 1;
        } else {
            self.order.remove(&stamp);
            self.uncount(stamp);
        }
    }

    /// Take an unpinned stamp out of the demoted or done count.
    fn uncount(&mut self, stamp: u64) {
        if stamp < DONE {
            self.demoted -= 1;
        } else if stamp < USED {
            self.done -= 1;
        }
    }

    /// The stamp of a use now: a done stamp when a plan is on and the block holds none of the
    /// plan's pages left to read (and is not hot), else an ordinary one. A block the plan does
    /// not name keeps its class: done if the plan left it out when it came
    /// ([`BlockCache::set_plan`]), in use if a reader fetched it since (metadata outside the
    /// plan, which may be read again).
    fn fresh(&self, index: u64) -> u64 {
        let done = match &self.plan {
            None => false,
            Some(p) => match p.binary_search_by_key(&index, |&(b, _, _)| b) {
                Ok(i) => p[i].2 == 0 && !self.hot.contains(&index),
                Err(_) => self
                    .map
                    .get(&index)
                    .is_some_and(|(_, s)| (DONE..USED).contains(s)),
            },
        };
        if done {
            self.tick + 1 - (USED - DONE)
        } else {
            self.tick + 1
        }
    }

    /// The stamp of a block a new plan may have left out: done if the plan is on, does not name
    /// it and it is not hot; else [`BlockCache::fresh`].
    fn replanned(&self, index: u64) -> u64 {
        let left_out = self.plan.as_ref().is_some_and(|p| {
            p.binary_search_by_key(&index, |&(b, _, _)| b).is_err() && !self.hot.contains(&index)
        });
        if left_out {
            self.tick + 1 - (USED - DONE)
        } else {
            self.fresh(index)
        }
    }

    /// The plan's pages of block `index` not read yet: all when no plan is on (nothing is known
    /// to be done), none for a block the plan does not name.
    fn left(&self, index: u64) -> u128 {
        match &self.plan {
            None => u128::MAX,
            Some(p) => p
                .binary_search_by_key(&index, |&(b, _, _)| b)
                .map_or(0, |i| p[i].2),
        }
    }

    /// A new plan (`None`: no plan): per listed block it names, the pages (128ths of the
    /// block) it will read. While a plan is on, a block whose pages have all been read
    /// ([`BlockCache::mark_read`]), or held and left out by the plan, is done, unless it is hot
    /// (a page of it was read twice: metadata the scan comes back to): it goes before every
    /// block still to be read, so the cache keeps what the scan has not read yet (a block holds
    /// many small files, found by the walk in directory order, not all at once). Held blocks
    /// are restamped in their order.
    pub(crate) fn set_plan(&mut self, plan: Option<Vec<(u64, u128)>>) {
        match plan {
            Some(p) => self.plan = Some(p.into_iter().map(|(b, m)| (b, m, m)).collect()),
            None => {
                self.plan = None;
                self.hot = std::collections::HashSet::new();
            }
        }
        let held: Vec<(u64, u64)> = self.order.range(DONE..).map(|(s, i)| (*s, *i)).collect();
        for (_, i) in held {
            let to = self.replanned(i);
            self.restamp(i, to);
        }
    }

    /// The reader has read `pages` of block `index` (bits as in [`BlockCache::set_plan`]): once
    /// none of the plan's pages are left, the held block is done (unless pinned or demoted).
    /// True if it became done now.
    pub(crate) fn mark_read(&mut self, index: u64, pages: u128) -> bool {
        let Some(p) = &mut self.plan else {
            return false;
        };
        let Ok(i) = p.binary_search_by_key(&index, |&(b, _, _)| b) else {
            return false;
        };
        let (_, planned, left) = &mut p[i];
        if pages & *planned & !*left != 0 && self.hot.insert(index) {
            // Done until now: in use again.
            if let Some((_, stamp)) = self.map.get(&index)
                && (DONE..USED).contains(stamp)
            {
                let to = self.fresh(index);
                self.restamp(index, to);
            }
            return false;
        }
        if *left == 0 {
            return false;
        }
        *left &= !pages;
        if *left == 0
            && let Some((_, stamp)) = self.map.get(&index)
            && *stamp >= USED
            && *stamp != PINNED
        {
            let to = self.fresh(index);
            self.restamp(index, to);
            return to < USED;
        }
        false
    }

    /// Whether block `index` has pages the plan reads left to read (true when no plan is on).
    pub(crate) fn to_read(&self, index: u64) -> bool {
        self.left(index) != 0
    }

    /// Evict the first done (or demoted) block, if there is one, to make room for a block
    /// being fetched; false if every block held has something left to read.
    pub(crate) fn drop_done(&mut self) -> bool {
        match self.order.first_key_value() {
            Some((&stamp, _)) if stamp < USED => self.evict_first(),
            _ => false,
        }
    }

    /// Blocks held that are done (see [`BlockCache::set_plan`]).
    pub(crate) fn done(&self) -> usize {
        self.done
    }

    /// Whether the block is held (without touching its recency).
    pub(crate) fn contains(&self, index: u64) -> bool {
        self.map.contains_key(&index)
    }

    /// Blocks held.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Blocks held pinned.
    pub(crate) fn pinned(&self) -> usize {
        self.pinned
    }

    /// Insert a block fetched ahead by the background sweep: it is never evicted before it is
    /// read ([`BlockCache::get`]) or [`BlockCache::unpin_all`]. The sweep keeps the pinned blocks
    /// under its budget, a part of the capacity, so the others always leave room. A block
    /// already held is left as it is.
    pub(crate) fn insert_pinned(&mut self, index: u64, block: Block) {
        if self.capacity == 0 || self.map.contains_key(&index) {
            return;
        }
        self.map.insert(index, (block, PINNED));
        self.pinned += 1;
        while self.map.len() > self.capacity {
            if !self.evict_first() {
                break;
            }
        }
    }

    /// Release every pin (the sweep that fetched them ended): the blocks are demoted, as
    /// nobody is known to want them.
    pub(crate) fn unpin_all(&mut self) {
        let mut held: Vec<u64> = self
            .map
            .iter()
            .filter(|(_, (_, s))| *s == PINNED)
            .map(|(i, _)| *i)
            .collect();
        held.sort_unstable();
        for i in held {
            self.demote(i);
        }
    }

    /// Pin the lowest `most` held blocks `keep` accepts (a new sweep's plan, read from the
    /// lowest up: they will be read) and release the others, which become ordinary blocks as
    /// recently used as now: an eviction then takes a block the plan does not need soon.
    pub(crate) fn repin(&mut self, keep: impl Fn(u64) -> bool, most: usize) {
        let mut held: Vec<(u64, u64)> = self.map.iter().map(|(i, (_, s))| (*i, *s)).collect();
        held.sort_unstable();
        let mut kept = 0usize;
        for (i, stamp) in held {
            let pin = kept < most && keep(i);
            kept += usize::from(pin);
            match (stamp == PINNED, pin) {
                (true, false) => {
                    let to = self.replanned(i);
                    self.restamp(i, to);
                }
                (false, true) => self.restamp(i, PINNED),
                _ => {}
            }
        }
    }

    /// Insert, evicting the least recently used blocks beyond capacity.
    pub(crate) fn insert(&mut self, index: u64, block: Block) {
        if self.capacity == 0 {
            return;
        }
        let stamp = self.fresh(index);
        if let Some((_, old)) = self.map.insert(index, (block, stamp)) {
            self.forget(old);
        }
        self.place(index, stamp);
        while self.map.len() > self.capacity {
            if !self.evict_first() {
                break;
            }
        }
    }

    /// Drop the block first in line; false if the cache is empty.
    fn evict_first(&mut self) -> bool {
        let Some((stamp, victim)) = self.order.pop_first() else {
            return false;
        };
        self.uncount(stamp);
        if let Some((block, _)) = self.map.remove(&victim)
            && let Ok(buf) = std::sync::Arc::try_unwrap(block)
        {
            match &self.pool {
                Some(p) => p.give(buf),
                None if self.spares.len() < self.spares_max() => self.spares.push(buf),
                None => {}
            }
        }
        true
    }

    /// Mark the block first to evict (a sequential reader moved past it): demoted blocks go
    /// before every other block, the latest demoted first, and beyond `capacity / 4` of them the
    /// latest is dropped at once. Demoting a demoted block again makes it the latest. A later
    /// `get` restores it.
    pub(crate) fn demote(&mut self, index: u64) {
        if !self.map.contains_key(&index) {
            return;
        }
        // One stamp per demotion: 2^62 of them outlast any scan.
        let Some(low) = self.low.checked_sub(1) else {
            return;
        };
        self.low = low;
        self.restamp(index, low);
        // Over the quarter: drop the latest demoted (this one, for a forward reader).
        while self.demoted > (self.capacity / 4).max(1) {
            if !self.evict_first() {
                break;
            }
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// A new capacity (the snapshot's share of the memory budget changed): evict down to it at
    /// once. Pinned blocks past three quarters of it are released first, the highest (read last)
    /// first, as the sweep keeps them under that much.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        let most = capacity - capacity / 4;
        if self.pinned > most {
            let mut held: Vec<u64> = self
                .map
                .iter()
                .filter(|(_, (_, s))| *s == PINNED)
                .map(|(i, _)| *i)
                .collect();
            held.sort_unstable();
            for i in held.into_iter().skip(most) {
                let to = self.fresh(i);
                self.restamp(i, to);
            }
        }
        while self.demoted > (capacity / 4).max(1) || self.map.len() > capacity {
            if !self.evict_first() {
                break;
            }
        }
        self.spares.truncate(self.spares_max());
    }

    /// Buffers kept for reuse: [`SPARES`], or an eighth of a small cache.
    fn spares_max(&self) -> usize {
        SPARES.min(self.capacity / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blk(b: u8) -> Block {
        vec![b; 4].into()
    }

    #[test]
    fn a_touched_block_is_kept_over_older_ones() {
        let mut c = BlockCache::new(2);
        c.insert(1, blk(1));
        c.insert(2, blk(2));
        assert!(c.touch(1));
        assert!(!c.touch(7));
        c.insert(3, blk(3));
        assert!(c.contains(1) && c.contains(3) && !c.contains(2));
        // A demoted block touched is in use again; a pinned one stays pinned.
        c.demote(3);
        assert!(c.touch(3));
        c.insert(4, blk(4));
        assert!(c.contains(3) && c.contains(4) && !c.contains(1));
        let mut p = BlockCache::new(2);
        p.insert_pinned(1, blk(1));
        assert!(p.touch(1));
        assert_eq!(p.pinned(), 1);
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut c = BlockCache::new(2);
        c.insert(1, blk(1));
        c.insert(2, blk(2));
        assert!(c.get(1).is_some());
        c.insert(3, blk(3));
        assert!(c.contains(1) && c.contains(3) && !c.contains(2));
        // A demoted block goes first, even before older ones.
        c.demote(3);
        c.insert(4, blk(4));
        assert!(c.contains(1) && c.contains(4) && !c.contains(3));
        // A block read again after it was demoted is in use again.
        c.demote(1);
        assert!(c.get(1).is_some());
        c.insert(5, blk(5));
        assert!(c.contains(1) && c.contains(5) && !c.contains(4));
        let mut z = BlockCache::new(0);
        z.insert(1, blk(1));
        assert!(!z.contains(1));
    }

    /// Regression (issue #6): blocks a package check read in order early in the scan were
    /// demoted, and the content scan's own demotions came after them, so the early ones were
    /// evicted first and fetched a second time when the content scan reached them.
    #[test]
    fn the_latest_demoted_block_goes_first() {
        let mut c = BlockCache::new(8);
        for i in 1..=8 {
            c.insert(i, blk(i as u8));
        }
        // Left behind early by one pass (2), then by the forward reader (3, then 4).
        c.demote(2);
        c.demote(3);
        c.insert(9, blk(9));
        assert!(!c.contains(3), "the block demoted last goes first");
        c.demote(4);
        c.insert(10, blk(10));
        assert!(!c.contains(4));
        assert!((5..=10).all(|i| c.contains(i)) && c.contains(1) && c.contains(2));
        // Demoted again, a block becomes the latest.
        c.demote(6);
        c.demote(2);
        c.insert(11, blk(11));
        assert!(!c.contains(2) && c.contains(6));
    }

    /// At most a quarter of the cache holds demoted blocks, even with room to spare: a scan
    /// that has finished with a block does not keep it.
    #[test]
    fn demoted_blocks_take_at_most_a_quarter() {
        let mut c = BlockCache::new(16);
        for i in 0..8 {
            c.insert(i, blk(i as u8));
        }
        for i in 0..6 {
            c.demote(i);
        }
        // Four kept (the earliest demoted), the later two dropped as they were demoted.
        assert!((0..4).all(|i| c.contains(i)));
        assert!(!c.contains(4) && !c.contains(5));
        assert!(c.contains(6) && c.contains(7));
        // Read again, a block is in use and no longer counts as demoted.
        assert!(c.get(0).is_some());
        c.demote(6);
        assert!(c.contains(6) && c.contains(1));
    }

    /// A smaller share evicts at once, the pins past three quarters of it first, and keeps fewer
    /// buffers for reuse; a larger one lets the cache grow again.
    #[test]
    fn a_new_capacity_evicts_down_to_it() {
        let mut c = BlockCache::new(16);
        for i in 0..4 {
            c.insert_pinned(i, blk(i as u8));
        }
        for i in 10..20 {
            c.insert(i, vec![0; 4].into());
        }
        assert_eq!(c.len(), 14);
        c.set_capacity(4);
        assert_eq!(c.len(), 4);
        assert_eq!(c.pinned(), 3);
        assert!((0..3).all(|i| c.contains(i)), "the lowest pins stay");
        assert!(c.spares.is_empty(), "a cache of 4 keeps no spare buffer");
        // With a pool, evicted buffers go there, for any cache of the budget.
        let pool = std::sync::Arc::new(BufferPool::new(3));
        let mut a = BlockCache::new(4);
        a.use_pool(pool.clone());
        for i in 0..9 {
            a.insert(i, vec![0; 4].into());
        }
        assert_eq!(pool.len(), 3, "at most `most` kept");
        let mut b = BlockCache::new(4);
        b.use_pool(pool.clone());
        assert!(b.spare().is_some());
        assert_eq!(pool.len(), 2);
        c.set_capacity(32);
        for i in 30..50 {
            c.insert(i, blk(1));
        }
        assert_eq!(c.len(), 24);
    }

    /// A swept block stays until it is read, however full the cache gets; read, it is an
    /// ordinary block again. Releasing the pins demotes what was never read.
    #[test]
    fn pinned_blocks_stay_until_read() {
        let mut c = BlockCache::new(4);
        c.insert_pinned(1, blk(1));
        c.insert_pinned(2, blk(2));
        assert_eq!(c.pinned(), 2);
        for i in 10..20 {
            c.insert(i, blk(i as u8));
        }
        assert!(c.contains(1) && c.contains(2), "a pinned block was evicted");
        assert_eq!(c.map.len(), 4);
        let (_, was) = c.get(1).unwrap();
        assert!(was);
        assert_eq!(c.pinned(), 1);
        let (_, again) = c.get(1).unwrap();
        assert!(!again);
        // Pinning a block already held changes nothing.
        c.insert_pinned(1, blk(9));
        assert_eq!(c.pinned(), 1);
        // Now 1 is an ordinary block: inserts evict it in turn.
        for i in 20..24 {
            c.insert(i, blk(i as u8));
        }
        assert!(!c.contains(1) && c.contains(2));
        c.unpin_all();
        assert_eq!(c.pinned(), 0);
        c.insert(30, blk(30));
        assert!(!c.contains(2), "an unpinned block is demoted, first to go");
        // A cache of pinned blocks only grows past its capacity rather than drop one.
        let mut full = BlockCache::new(2);
        for i in 0..3 {
            full.insert_pinned(i, blk(i as u8));
        }
        assert!((0..3).all(|i| full.contains(i)));
    }

    /// While a plan is on, a block whose planned pages have all been read (or that the plan
    /// does not name) goes before the blocks with something left to read, however recently it
    /// was used; a block a page of which is read twice (metadata) is never done; without a
    /// plan the cache is plain LRU again.
    #[test]
    fn blocks_read_through_go_before_blocks_with_pages_left() {
        let mut c = BlockCache::new(4);
        c.set_plan(Some((1..=6).map(|b| (b, 0b11)).collect()));
        for i in 1..=4 {
            c.insert(i, blk(i as u8));
        }
        assert!(c.to_read(1) && !c.to_read(9));
        // 2 read in part, then 1 read through: 1 is done, the most recently used or not.
        c.get(2).unwrap();
        assert!(!c.mark_read(2, 0b01));
        c.get(1).unwrap();
        assert!(c.mark_read(1, 0b11), "read through: done now");
        assert_eq!(c.done(), 1);
        assert!(!c.to_read(1));
        c.insert(5, blk(5));
        assert!(!c.contains(1) && (2..=5).all(|i| c.contains(i)));
        // 3's first page read twice: hot, kept as in use even once read through.
        c.mark_read(3, 0b01);
        c.mark_read(3, 0b01);
        c.mark_read(3, 0b10);
        assert_eq!(c.done(), 0);
        // 2 read through: done, and the next to go (not 4, the least recently used).
        c.mark_read(2, 0b10);
        c.insert(6, blk(6));
        assert!(!c.contains(2) && c.contains(4) && c.contains(3));
        // A block the plan does not name lands in use (a reader fetched it: metadata).
        c.insert(9, blk(9));
        assert_eq!(c.done(), 0);
        assert!(c.contains(9) && !c.contains(4));
        // A new plan that leaves held blocks out makes them done, bar the hot ones.
        c.set_plan(Some(vec![(5, 1)]));
        assert_eq!(c.done(), 2, "6 and 9 are done, 3 is hot, 5 is left to read");
        c.insert(7, blk(7));
        assert!(!c.contains(6) && c.contains(9) && c.contains(3) && c.contains(5));
        // Without a plan, plain LRU: nothing is done.
        c.set_plan(None);
        assert_eq!(c.done(), 0);
        assert!(c.to_read(7));
        c.get(3).unwrap();
        c.insert(8, blk(8));
        assert!(!c.contains(9), "held in the order it had");
        c.insert(10, blk(10));
        assert!(c.contains(3) && !c.contains(5));
    }

    /// A new plan keeps the pins of the held blocks it reads, the lowest first up to the limit,
    /// and releases the others as ordinary blocks (not demoted: they may still be read).
    #[test]
    fn a_new_plan_repins_what_it_reads() {
        let mut c = BlockCache::new(8);
        c.insert_pinned(1, blk(1));
        c.insert_pinned(2, blk(2));
        for i in 3..=6 {
            c.insert(i, blk(i as u8));
        }
        c.demote(6);
        // The plan reads 2, 4, 5, 6; at most 2 pinned.
        c.repin(|b| [2, 4, 5, 6].contains(&b), 2);
        assert_eq!(c.pinned(), 2);
        // 6 is in the plan but past the limit: it stays as it was, demoted.
        assert_eq!(c.demoted, 1);
        for i in 10..30 {
            c.insert(i, blk(i as u8));
        }
        assert!(
            c.contains(2) && c.contains(4),
            "the plan's lowest blocks stay"
        );
        assert!(!c.contains(1) && !c.contains(5) && !c.contains(6));
        c.unpin_all();
        assert_eq!(c.pinned(), 0);
    }
}
