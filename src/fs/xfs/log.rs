//! The internal log: find its head and check that the last record before it is a clean-unmount
//! record. A dirty log (committed changes not yet written back) is refused: amiscan does not
//! replay XFS logs, and reading the stale metadata could miss or garble files.

use super::{Ctx, be32, incompatible};
use crate::fs::FsError;

const BB: u64 = 512;
const HEADER_MAGIC: u32 = 0xfeed_babe;
const VERSION_2: u32 = 0x2;
const HEADER_CYCLE_SIZE: u32 = 32 * 1024;
const UNMOUNT_TRANS: u8 = 0x20;
/// How far back from the head the last record header may start (a record is at most 256 KiB of
/// data plus its header blocks).
const MAX_RECORD_BBS: u64 = 1024;

/// `Ok` when the internal log is clean (or there is none to check), else `Incompatible`.
pub(crate) fn check_clean(ctx: &Ctx) -> Result<(), FsError> {
    let sb = &ctx.sb;
    if sb.logstart == 0 {
        // External log device: not part of this volume, nothing to check.
        return Ok(());
    }
    let dirty = |why: String| {
        incompatible(
            "xfs log",
            format!(
                "the log is dirty (the filesystem was not cleanly unmounted) and could not be replayed: {why}; amiscan does not replay XFS logs"
            ),
        )
    };
    let base = sb.fsb_offset(sb.logstart).ok_or_else(|| {
        dirty(format!(
            "sb_logstart = {} is outside the filesystem",
            sb.logstart
        ))
    })?;
    let nbb = (u64::from(sb.logblocks) << sb.blocklog) / BB;
    if nbb < 2 {
        return Err(dirty(format!(
            "sb_logblocks = {} is too small",
            sb.logblocks
        )));
    }
    let block = |bb: u64| -> Result<Vec<u8>, FsError> {
        ctx.read_vec(base.saturating_add((bb % nbb) * BB), BB as usize, &|| {
            format!("xfs log block {}", bb % nbb)
        })
    };
    // A block's cycle: the header's h_cycle for a record header, else its first word.
    let cycle = |bb: u64| -> Result<u32, FsError> {
        let b = block(bb)?;
        let first = be32(&b, 0).unwrap_or(0);
        Ok(if first == HEADER_MAGIC {
            be32(&b, 4).unwrap_or(0)
        } else {
            first
        })
    };
    let first = cycle(0)?;
    if first == 0 {
        return Ok(()); // a zeroed log (xfs_repair -L, or never written): nothing to replay
    }
    // The head is the first block whose cycle differs from block 0's; binary search over the
    // invariant cycle(lo) == first, cycle(hi) != first.
    let head = if cycle(nbb - 1)? == first {
        nbb
    } else {
        let (mut lo, mut hi) = (0u64, nbb - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if cycle(mid)? == first {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    };
    // The last record header before the head.
    let mut found = None;
    for back in 1..=MAX_RECORD_BBS.min(nbb) {
        let bb = (head + nbb - back) % nbb;
        let b = block(bb)?;
        if be32(&b, 0) == Some(HEADER_MAGIC) {
            found = Some((bb, b));
            break;
        }
    }
    let (rh, hdr) = found.ok_or_else(|| {
        dirty(format!(
            "no log record header before the head at block {head}"
        ))
    })?;
    let version = be32(&hdr, 8).unwrap_or(0);
    let len = u64::from(be32(&hdr, 12).unwrap_or(0));
    let num_ops = be32(&hdr, 40).unwrap_or(0);
    let h_size = be32(&hdr, 320).unwrap_or(0);
    let hblks = if version & VERSION_2 != 0 && h_size > HEADER_CYCLE_SIZE {
        u64::from(h_size.div_ceil(HEADER_CYCLE_SIZE))
    } else {
        1
    };
    let after = (rh + hblks + len.div_ceil(BB)) % nbb;
    if after != head % nbb {
        return Err(dirty(format!(
            "the last record (block {rh}) does not end at the head (block {head})"
        )));
    }
    let op_flags = block(rh + hblks)?.get(9).copied().unwrap_or(0);
    if num_ops != 1 || op_flags & UNMOUNT_TRANS == 0 {
        return Err(dirty(format!(
            "the last record (block {rh}) is not an unmount record"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::xfs::superblock::{Superblock, tests::v5_sb};
    use crate::fs::xfs::tests::Mem;
    use std::sync::Arc;

    /// A 16-block volume whose log is blocks 2..4 and starts with an unmount record whose op
    /// header carries `op_flags`.
    fn check(op_flags: u8, zeroed: bool) -> Result<(), FsError> {
        let mut vol = vec![0u8; 16 * 4096];
        let base = 2 * 4096;
        if !zeroed {
            let h = &mut vol[base..base + 512];
            h[0..4].copy_from_slice(&HEADER_MAGIC.to_be_bytes());
            h[4..8].copy_from_slice(&1u32.to_be_bytes());
            h[8..12].copy_from_slice(&VERSION_2.to_be_bytes());
            h[12..16].copy_from_slice(&512u32.to_be_bytes());
            h[40..44].copy_from_slice(&1u32.to_be_bytes());
            h[320..324].copy_from_slice(&HEADER_CYCLE_SIZE.to_be_bytes());
            vol[base + 512..base + 516].copy_from_slice(&1u32.to_be_bytes());
            vol[base + 512 + 9] = op_flags;
        }
        let mut sb = Superblock::parse(&v5_sb()).unwrap();
        sb.logstart = 2;
        sb.logblocks = 2;
        check_clean(&Ctx {
            src: Arc::new(Mem(vol)),
            sb,
        })
    }

    #[test]
    fn clean_zeroed_and_dirty_logs() {
        check(UNMOUNT_TRANS, false).unwrap();
        check(0, true).unwrap();
        assert_eq!(
            check(0, false).unwrap_err().to_string(),
            "xfs log: unsupported: the log is dirty (the filesystem was not cleanly unmounted) and \
             could not be replayed: the last record (block 0) is not an unmount record; amiscan \
             does not replay XFS logs"
        );
    }
}
