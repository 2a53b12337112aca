//! The sweep of a full scan ([`Source::will_read`](crate::source::Source::will_read)): the
//! listed blocks of the caller's plan fetched in the background, lowest priority, ascending,
//! with at most half the cache pinned or in flight for it. A new plan ends the last; an empty
//! one ends the sweep.

use super::{Inner, Want, lock};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Inner {
    /// Sweep the listed blocks of `plan` (see [`Source::will_read`](crate::source::Source::will_read)),
    /// ending the sweep before; an empty plan only ends it.
    pub(super) fn plan_sweep(self: &Arc<Self>, plan: &[std::ops::Range<u64>]) {
        let inner = self;
        let (bs, len) = (inner.block_size, inner.len);
        let mut blocks: Vec<u64> = Vec::new();
        {
            let tokens = lock(&inner.tokens);
            for r in plan {
                let end = r.end.min(len);
                if r.start >= end {
                    continue;
                }
                let range = r.start / bs..=(end - 1) / bs;
                blocks.extend(tokens.range(range).map(|(i, _)| *i));
            }
        }
        blocks.sort_unstable();
        blocks.dedup();
        let generation = inner.sweep_gen.fetch_add(1, Ordering::Relaxed) + 1;
        let budget = lock(&inner.cache).capacity() / 2;
        let on = budget > 0 && !blocks.is_empty();
        // A first plan names everything the scan will read: its sweep never makes the cache
        // evict; a plan that replaces one may. Off before the pins are released, so no fetch
        // still in flight pins a block after.
        let refines = inner.sweeping.swap(on, Ordering::Relaxed);
        {
            let mut cache = lock(&inner.cache);
            if blocks.is_empty() {
                cache.unpin_all();
            } else {
                // Blocks already held that the plan reads stay, but a quarter of the cache is
                // left to the blocks being read.
                let most = cache.capacity() - cache.capacity() / 4;
                cache.repin(|b| blocks.binary_search(&b).is_ok(), most);
            }
        }
        inner.sweep_wake.notify_waiters();
        if plan.is_empty() {
            // The scan that made the plan ended: what is read after it (a lookup of a few
            // paths) is not most of the snapshot, so streams no longer read ahead of reads that
            // stay in a block, and its share of the memory budget goes to the snapshots still
            // being read.
            inner.eager.store(false, Ordering::Relaxed);
            inner.memory.rest();
        }
        if !on {
            return;
        }
        inner
            .handle
            .spawn(inner.clone().sweep(generation, blocks, !refines));
    }

    /// Fetch `blocks` (ascending) in the background, lowest priority, keeping the blocks
    /// pinned or in flight under half the cache (as large as the snapshot's share of the
    /// memory budget is now); ends when a newer sweep starts.
    ///
    /// With `fill_only` (a first plan: every block it names may be read again), it also never
    /// makes the cache evict: it stops while the cache is full.
    async fn sweep(self: Arc<Self>, generation: u64, blocks: Vec<u64>, fill_only: bool) {
        for b in blocks {
            loop {
                if self.sweep_gen.load(Ordering::Relaxed) != generation {
                    return;
                }
                let woken = self.sweep_wake.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                let room = {
                    let cache = lock(&self.cache);
                    let inflight = self.sweep_inflight.load(Ordering::Relaxed);
                    // The share of the memory budget may have changed since the plan.
                    cache.pinned() + inflight < cache.capacity() / 2
                        && (!fill_only || cache.len() + inflight < cache.capacity())
                };
                if room {
                    break;
                }
                woken.await;
            }
            // A first plan names blocks the walk has read already (and the cache may have
            // dropped since): a block fetched before is not fetched again. A later plan names
            // what is left to read, so a block it names that the cache dropped is fetched again
            // here rather than by a reader waiting for it.
            if !fill_only || !lock(&self.requested).contains_key(&b) {
                let _ = self.start(b, Want::Sweep);
            }
        }
    }
}
