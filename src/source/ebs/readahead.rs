//! Read-ahead: sequential readers are told apart by thread; a reader that continues its last
//! read gets the next listed blocks fetched ahead of it, and the blocks it moved past are the
//! first the cache drops. While a sweep is on, what a stream reads ahead is pinned like the
//! sweep's blocks (see `sweep.rs`).

use super::{Inner, Want, lock};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Recent sequential streams remembered for prefetch detection.
const STREAMS: usize = 32;

/// A forward reader: its thread, the block its run of reads started in, and the blocks of its
/// last read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stream {
    thread: std::thread::ThreadId,
    start: u64,
    first: u64,
    last: u64,
}

impl Inner {
    /// Start fetches of the next `n` listed blocks after `after` that are neither cached nor
    /// in flight.
    pub(super) fn prefetch_after(self: &Arc<Self>, after: u64, n: usize) {
        // While a sweep is on, what a stream reads ahead is kept like the sweep's blocks,
        // until it is read: the cache is then plain LRU, and must not drop it first.
        let sweeping = self.sweeping.load(Ordering::Relaxed);
        let (want, n) = if !sweeping {
            (Want::Ahead, n)
        } else {
            let all = lock(&self.inflight).len();
            // Pinned blocks never take more than three quarters of the cache: the rest is
            // left to the blocks being read, or readers would evict each other's blocks.
            let cache = lock(&self.cache);
            let cap = cache.capacity();
            let held = cache.pinned() + self.sweep_inflight.load(Ordering::Relaxed);
            if held >= cap - cap / 4 {
                return;
            }
            // Nor does it take the room of a block with something left to read (see
            // `BlockCache::set_plan`): that block would be fetched again; and, as the sweep
            // of a first plan, it leaves a quarter of the cache to what the walk reads.
            let busy = cache.len() - cache.done() + all;
            (Want::Sweep, n.min((cap - cap / 4).saturating_sub(busy)))
        };
        if n == 0 {
            return;
        }
        let mut next: Vec<u64> = lock(&self.tokens)
            .range(after.saturating_add(1)..)
            .take(n)
            .map(|(i, _)| *i)
            .collect();
        if sweeping {
            // The plan names everything the scan will read: past it (a stream reading the
            // start of `$LogFile` or of the journal) or in a block done with, read-ahead would
            // fetch what nobody reads.
            let all = lock(&self.inflight).len();
            let mut cache = lock(&self.cache);
            next.retain(|&b| cache.to_read(b) && !cache.contains(b));
            // The done blocks whose room it takes go now: their buffers take the bodies, and
            // the cache and the bodies in flight stay within the share.
            let over = (cache.len() + all + next.len()).saturating_sub(cache.capacity());
            for _ in 0..over {
                if !cache.drop_done() {
                    break;
                }
            }
        }
        for b in next {
            // As for the sweep, a block fetched before is fetched again only when a reader
            // asks for it: the stream may be a volume check reading a file the content scan
            // read long ago, not the content scan going forward.
            if sweeping && lock(&self.requested).contains_key(&b) {
                continue;
            }
            let _ = self.start(b, want);
        }
    }

    /// Remember a read of blocks `first..=last` by this thread, and return how many listed blocks
    /// to fetch ahead of it: none unless it continues one of the thread's recent streams (starts
    /// in the block where its last read ended, or in the next). (A read-ahead that starts at 2
    /// blocks and doubles was tried: it fetched 18% fewer blocks in a `--quick` scan but made
    /// the walk 20% slower.) The blocks the stream has moved past are marked first to evict: a reader going
    /// forward through the volume will not come back to them, while the blocks read earlier
    /// (directories, inode tables, package lists) will be read again by the content scan.
    /// Streams are told apart by thread, so one content worker moving on never demotes the block
    /// another is still reading; and the block a stream started in is kept, as the reader whose
    /// share of the files ends in it (the content scan splits its file list between threads)
    /// may not have reached it yet.
    pub(super) fn note_sequential(&self, first: u64, last: u64) -> usize {
        let me = std::thread::current().id();
        let mut s = lock(&self.streams);
        let continued = s
            .iter()
            .position(|x| x.thread == me && (first == x.last || first == x.last.saturating_add(1)));
        if let Some(prev) = continued.and_then(|pos| s.remove(pos)) {
            let sweeping = self.sweeping.load(Ordering::Relaxed);
            let behind = prev.first.max(prev.start.saturating_add(1))..first;
            // (Blocks are pinned only while a sweep is on, so none is pinned here.)
            if !behind.is_empty() && !sweeping {
                let mut cache = lock(&self.cache);
                for b in behind {
                    cache.demote(b);
                }
            }
            // Read ahead when the stream moves into a block it had not reached. Reads that
            // stay in one block (a walk reading inodes or a directory) fetch more only when the
            // caller will read most of the snapshot anyway (a full scan: the blocks after the
            // walk's are file data it reads soon); a --quick scan's would be fetched for nothing.
            let eager = self.eager.load(Ordering::Relaxed);
            // After the scan (a lookup reading a file or two that the scan read), nothing:
            // 16 blocks fetched ahead of a file of one or two.
            let ahead = if self.ended.load(Ordering::Relaxed) {
                0
            } else if last > prev.last || (eager && !sweeping) {
                self.prefetch_window()
            } else {
                0
            };
            s.push_back(Stream {
                thread: me,
                start: prev.start,
                first,
                last,
            });
            return ahead;
        }
        if s.len() >= STREAMS {
            s.pop_front();
        }
        s.push_back(Stream {
            thread: me,
            start: first,
            first,
            last,
        });
        0
    }

    /// Blocks read ahead of a stream, and fetched at the start of a full scan: at most
    /// `prefetch_blocks` and half the cache, and at most a twentieth of the listed blocks (at
    /// least one), so that on a small volume (a 48 MiB Windows disk lists 21 blocks) what is read
    /// ahead and never read stays within 5% of the blocks fetched: 16 blocks fetched at the
    /// start before the volume was even probed were `$MFTMirr` and `$LogFile` blocks for 6 of
    /// its 21 (1.40× the blocks needed).
    pub(super) fn prefetch_window(&self) -> usize {
        let cap = lock(&self.cache).capacity();
        let listed = usize::try_from(self.ctx.counters.blocks_listed.load(Ordering::Relaxed))
            .unwrap_or(usize::MAX);
        self.ctx
            .opts
            .prefetch_blocks
            .min(cap / 2)
            .min((listed / 20).max(1))
    }
}
