//! Remote-source planning for a full scan: what the source is told it will read, so it fetches
//! ahead of the scan (the EBS sweep). Before the walk, the filesystem's allocation map; after it,
//! the files left to read, in physical order, cut to the allocated space. Hints only: a plan
//! that cannot be made costs speed, never a read.

use crate::fs;
use crate::fs::Entry;
use crate::fs::probe::FsKind;
use crate::source::SharedSource;
use std::ops::Range;

/// Give `source` the allocation map of its `kind` filesystem (read on the caller's thread), so
/// it fetches the blocks the scan will read in the background whenever the walk leaves the
/// request quota idle. `None` if the map cannot be read: the scan only loses that head start.
pub(super) fn prefetch_allocated(kind: FsKind, source: &SharedSource) -> Option<Vec<Range<u64>>> {
    let plan = fs::allocated(kind, source).and_then(Result::ok)?;
    source.will_read(&plan);
    Some(plan)
}

/// Tell `source` to sweep just what is left after the walk, `later` (read in physical order),
/// within the `allocated` space when known (a sparse file's byte range spans blocks it does not
/// have).
pub(super) fn sweep_remaining(
    source: &SharedSource,
    later: &[Entry],
    allocated: Option<&[Range<u64>]>,
) {
    let mut plan: Vec<Range<u64>> = later
        .iter()
        .filter(|e| e.phys != 0 && e.size != 0)
        .map(|e| e.phys..e.phys.saturating_add(e.size))
        .collect();
    plan.sort_unstable_by_key(|r| r.start);
    if let Some(allocated) = allocated {
        plan = within(&plan, allocated);
    }
    source.will_read(&plan);
}

/// The parts of `ranges` inside `within` (sorted, disjoint).
fn within(ranges: &[Range<u64>], within: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    for r in ranges {
        let from = within.partition_point(|w| w.end <= r.start);
        for w in within[from..].iter().take_while(|w| w.start < r.end) {
            out.push(r.start.max(w.start)..r.end.min(w.end));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// The remote plan after a walk keeps only what lies in the allocated space.
    #[test]
    fn a_plan_is_cut_to_the_allocated_space() {
        let allocated = [0..10, 20..30, 40..50];
        assert_eq!(
            super::within(&[5..25, 8..9, 30..40, 45..100], &allocated),
            [5..10, 20..25, 8..9, 45..50]
        );
    }
}
