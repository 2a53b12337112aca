//! A bounded LRU cache of whole blocks, where blocks a sequential reader has left behind can be
//! marked first to evict.

use std::collections::{BTreeMap, HashMap};

/// An immutable, shared block of bytes.
pub(crate) type Block = std::sync::Arc<[u8]>;

/// Stamps of blocks in use start here; demoted blocks get stamps below it, so they go first.
const USED: u64 = 1 << 62;

/// Least-recently-used cache holding at most `capacity` blocks.
#[derive(Debug)]
pub(crate) struct BlockCache {
    capacity: usize,
    tick: u64,
    /// Stamps of demoted blocks (below [`USED`]), in the order they were demoted.
    low: u64,
    map: HashMap<u64, (Block, u64)>,
    order: BTreeMap<u64, u64>,
}

impl BlockCache {
    pub(crate) fn new(capacity: usize) -> Self {
        BlockCache {
            capacity,
            tick: USED,
            low: 0,
            map: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// The block, marking it recently used.
    pub(crate) fn get(&mut self, index: u64) -> Option<Block> {
        self.tick += 1;
        let tick = self.tick;
        let (block, stamp) = self.map.get_mut(&index)?;
        self.order.remove(stamp);
        *stamp = tick;
        self.order.insert(tick, index);
        Some(block.clone())
    }

    /// Whether the block is held (without touching its recency).
    pub(crate) fn contains(&self, index: u64) -> bool {
        self.map.contains_key(&index)
    }

    /// Insert, evicting the least recently used blocks beyond capacity.
    pub(crate) fn insert(&mut self, index: u64, block: Block) {
        if self.capacity == 0 {
            return;
        }
        self.tick += 1;
        if let Some((_, old)) = self.map.insert(index, (block, self.tick)) {
            self.order.remove(&old);
        }
        self.order.insert(self.tick, index);
        while self.map.len() > self.capacity {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            self.map.remove(&victim);
        }
    }

    /// Mark the block first to evict (a sequential reader moved past it): demoted blocks go
    /// before every other block, the earliest demoted first. A later `get` restores it.
    pub(crate) fn demote(&mut self, index: u64) {
        let Some((_, stamp)) = self.map.get_mut(&index) else {
            return;
        };
        if *stamp < USED {
            return;
        }
        self.order.remove(stamp);
        self.low = (self.low + 1) % USED;
        *stamp = self.low;
        self.order.insert(self.low, index);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blk(b: u8) -> Block {
        vec![b; 4].into()
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
}
