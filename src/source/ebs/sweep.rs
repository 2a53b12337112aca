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
        // Per listed block the plan names, the pages of it the plan reads.
        let mut pages: Vec<(u64, u128)> = Vec::new();
        {
            let tokens = lock(&inner.tokens);
            for r in plan {
                let end = r.end.min(len);
                if r.start >= end {
                    continue;
                }
                let range = r.start / bs..=(end - 1) / bs;
                pages.extend(tokens.range(range).map(|(&i, _)| {
                    let from = r.start.max(i * bs) - i * bs;
                    let to = end.min((i + 1) * bs) - i * bs;
                    (i, page_mask(bs, from, to))
                }));
            }
        }
        pages.sort_unstable_by_key(|&(b, _)| b);
        pages.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                kept.1 |= next.1;
            }
            same
        });
        let blocks: Vec<u64> = pages.iter().map(|&(b, _)| b).collect();
        let generation = inner.sweep_gen.fetch_add(1, Ordering::Relaxed) + 1;
        let budget = lock(&inner.cache).capacity() / 2;
        let on = budget > 0 && !blocks.is_empty();
        // A first plan names everything the scan will read: its sweep never makes the cache
        // evict; a plan that replaces one may. Off before the pins are released, so no fetch
        // still in flight pins a block after.
        let refines = inner.sweeping.swap(on, Ordering::Relaxed);
        {
            let mut cache = lock(&inner.cache);
            cache.set_plan((!blocks.is_empty()).then_some(pages));
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
        if on {
            inner.ended.store(false, Ordering::Relaxed);
            if !refines {
                inner.memory.scan_starts();
            }
        } else {
            // Nothing (more) to read in bulk (every file was scanned during the walk, or the
            // plan does not touch this source): streams no longer read ahead of reads that
            // stay in a block. The scan goes on (its volume checks): its share of the memory
            // budget stays until `scan_ended`.
            inner.eager.store(false, Ordering::Relaxed);
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
                    // Every fetch in flight will land in the cache (a reader's too).
                    let all = lock(&self.inflight).len();
                    let mut cache = lock(&self.cache);
                    let inflight = self.sweep_inflight.load(Ordering::Relaxed);
                    let cap = cache.capacity();
                    // The share of the memory budget may have changed since the plan. A first
                    // plan's sweep takes the room of the blocks done with, never of those with
                    // something left to read, and leaves a quarter of the cache for what the
                    // walk reads that it has not fetched yet.
                    let room = cache.pinned() + inflight < cap / 2
                        && (!fill_only || cache.len() - cache.done() + all + cap / 4 < cap);
                    // A done block goes now rather than when the fetch lands: its buffer takes
                    // the body, and the cache and the bodies in flight stay within the share.
                    if room && fill_only && cache.len() + all >= cap {
                        cache.drop_done();
                    }
                    room
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

/// The pages (128ths) of a block of `bs` bytes that bytes `from..to` of it (block-relative,
/// `from < to <= bs`) touch, one bit each.
pub(super) fn page_mask(bs: u64, from: u64, to: u64) -> u128 {
    let page = (bs / 128).max(1);
    let first = (from / page).min(127);
    let last = (to.saturating_sub(1) / page).min(127);
    let upto = if last >= 127 {
        u128::MAX
    } else {
        (1u128 << (last + 1)) - 1
    };
    upto & !((1u128 << first) - 1)
}

#[cfg(test)]
mod tests {
    use super::page_mask;

    #[test]
    fn a_byte_range_maps_onto_the_pages_it_touches() {
        let bs = 512 * 1024;
        assert_eq!(page_mask(bs, 0, 1), 1);
        assert_eq!(page_mask(bs, 0, 4096), 1);
        assert_eq!(page_mask(bs, 4095, 4097), 0b11);
        assert_eq!(page_mask(bs, 8192, 3 * 4096), 0b100);
        assert_eq!(page_mask(bs, 0, bs), u128::MAX);
        assert_eq!(page_mask(bs, bs - 1, bs), 1 << 127);
        // A block smaller than 128 bytes: one byte per page, the rest in the last.
        assert_eq!(page_mask(64, 3, 5), 0b11000);
    }
}
