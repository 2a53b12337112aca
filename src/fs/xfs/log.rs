//! The internal log, as the kernel's log recovery finds it (xfs_log_recover.c): the head (the
//! first block of the newest cycle, moved back over holes left by out-of-order iclog writes and
//! over a torn last record), the tail (from the last record's `h_tail_lsn`), whether the last
//! record is a clean-unmount record, and the records from tail to head with their data unpacked
//! (each 512-byte block's first word restored from the header's, or for records over 32 KiB the
//! extended headers', cycle data) and their CRCs checked. A bad CRC in one of the last eight
//! records is a torn write: the head moves back to it, as the kernel's `xlog_verify_head` does;
//! anywhere else it is an error.
//!
//! Limits: an external log device is not read (the volume holds none); a log that does not fit
//! in the volume, a record longer than 256 KiB or a header that does not parse is an error.
//! Reads are bounded by the log's size; nothing is allocated by an on-disk count beyond one
//! record.

use super::{Ctx, be32, be64, corrupt, crc32c_update, le32};
use crate::fs::FsError;

pub(crate) const BB: u64 = 512;
const HEADER_MAGIC: u32 = 0xfeed_babe;
const VERSION_2: u32 = 0x2;
const HEADER_CYCLE_SIZE: u64 = 32 * 1024;
/// Cycle-data words per header block.
const CYCLE_WORDS: usize = (HEADER_CYCLE_SIZE / BB) as usize;
const MAX_RECORD: u64 = 256 * 1024;
/// Blocks searched back from the head for holes and the last record: the kernel's
/// XLOG_TOTAL_REC_SHIFT (8 iclogs of 256 KiB).
const SCAN_BBS: u64 = 8 * MAX_RECORD / BB;
/// Records at the head a bad CRC may be a torn write in (XLOG_MAX_ICLOGS).
const MAX_ICLOGS: usize = 8;
/// Offset of h_crc in the record header, and the two lengths the kernel checksums it over
/// (with and without the i386 padding word).
const CRC_OFF: usize = 32;
const REC_SIZES: [usize; 2] = [328, 324];
pub(crate) const UNMOUNT_TRANS: u8 = 0x20;

/// The log's place on the volume.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogArea {
    /// Byte offset of the log's first block.
    pub(crate) base: u64,
    /// Length in 512-byte blocks.
    pub(crate) nbb: u64,
}

impl LogArea {
    /// The internal log of `ctx`'s filesystem: `None` for an external log. Fails when the log
    /// claims more than the volume holds.
    pub(crate) fn of(ctx: &Ctx) -> Result<Option<LogArea>, FsError> {
        let sb = &ctx.sb;
        if sb.logstart == 0 {
            return Ok(None);
        }
        let base = sb.fsb_offset(sb.logstart).ok_or_else(|| {
            corrupt(
                "xfs log",
                format!("sb_logstart = {} is outside the filesystem", sb.logstart),
            )
        })?;
        let bytes = u64::from(sb.logblocks) << sb.blocklog;
        let end = base.checked_add(bytes);
        if end.is_none_or(|e| e > ctx.src.len()) || bytes < 2 * BB {
            return Err(corrupt(
                "xfs log",
                format!(
                    "sb_logblocks = {} at byte {base}: the log does not fit in the volume of {} bytes",
                    sb.logblocks,
                    ctx.src.len()
                ),
            ));
        }
        Ok(Some(LogArea {
            base,
            nbb: bytes / BB,
        }))
    }

    /// Byte range of the log on the volume.
    pub(crate) fn range(&self) -> std::ops::Range<u64> {
        self.base..self.base + self.nbb * BB
    }
}

/// Reads log blocks (wrapping at the end of the log).
pub(crate) struct LogReader<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) area: LogArea,
}

/// A record header's fields.
#[derive(Clone, Debug)]
pub(crate) struct RecHeader {
    pub(crate) blk: u64,
    pub(crate) lsn: u64,
    pub(crate) tail_lsn: u64,
    pub(crate) len: u64,
    pub(crate) num_ops: u32,
    /// Header blocks (1, or more for a v2 record over 32 KiB).
    pub(crate) hblks: u64,
    raw: Vec<u8>,
}

impl RecHeader {
    /// The block after this record.
    pub(crate) fn next(&self, nbb: u64) -> u64 {
        (self.blk + self.hblks + self.len.div_ceil(BB)) % nbb
    }
}

/// Where replay starts and ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ends {
    /// Nothing to replay: zeroed, or the last record is an unmount record.
    Clean,
    /// Records from `tail` up to (not including) `head` are to be replayed; `torn`: the head
    /// was moved back over records that fail their CRC (first bad block, records dropped).
    Dirty {
        head: u64,
        tail: u64,
        torn: Option<(u64, usize)>,
    },
}

impl LogReader<'_> {
    fn read(&self, bb: u64, n: u64) -> Result<Vec<u8>, FsError> {
        let nbb = self.area.nbb;
        let mut out = vec![0u8; usize::try_from(n * BB).unwrap_or(0)];
        let mut done = 0u64;
        while done < n {
            let at = (bb + done) % nbb;
            let run = (n - done).min(nbb - at);
            let s = usize::try_from(done * BB).unwrap_or(0);
            let e = usize::try_from((done + run) * BB).unwrap_or(0);
            let buf = out
                .get_mut(s..e)
                .ok_or_else(|| corrupt("xfs log", "read out of range"))?;
            self.ctx.read(self.area.base + at * BB, buf, &|| {
                format!("xfs log block {at}")
            })?;
            done += run;
        }
        Ok(out)
    }

    /// A block's cycle: h_cycle for a record header, else the stamped first word.
    fn cycle(&self, bb: u64) -> Result<u32, FsError> {
        let b = self.read(bb % self.area.nbb, 1)?;
        let first = be32(&b, 0).unwrap_or(0);
        Ok(if first == HEADER_MAGIC {
            be32(&b, 4).unwrap_or(0)
        } else {
            first
        })
    }

    /// The first block in `[start, start+n)` whose cycle is `cycle`.
    fn first_with_cycle(&self, start: u64, n: u64, cycle: u32) -> Result<Option<u64>, FsError> {
        for i in 0..n {
            if self.cycle(start + i)? == cycle {
                return Ok(Some(start + i));
            }
        }
        Ok(None)
    }

    /// Parse the record header at `bb` (`None`: no header magic there).
    pub(crate) fn header(&self, bb: u64) -> Result<Option<RecHeader>, FsError> {
        let bb = bb % self.area.nbb;
        let raw = self.read(bb, 1)?;
        if be32(&raw, 0) != Some(HEADER_MAGIC) {
            return Ok(None);
        }
        let bad = |m: String| corrupt(format!("xfs log record at block {bb}"), m);
        let version = be32(&raw, 8).unwrap_or(0);
        if version == 0 || version & !3 != 0 {
            return Err(bad(format!("h_version = {version:#x}")));
        }
        let len = u64::from(be32(&raw, 12).unwrap_or(0));
        if len == 0 || len > MAX_RECORD {
            return Err(bad(format!("h_len = {len}")));
        }
        let h_size = u64::from(be32(&raw, 320).unwrap_or(0));
        let hblks = if version & VERSION_2 != 0 && h_size > HEADER_CYCLE_SIZE {
            if h_size > MAX_RECORD {
                return Err(bad(format!("h_size = {h_size}")));
            }
            h_size.div_ceil(HEADER_CYCLE_SIZE)
        } else {
            1
        };
        if len.div_ceil(BB) > hblks * CYCLE_WORDS as u64 {
            return Err(bad(format!(
                "h_len = {len} needs more cycle data than {hblks} header blocks hold"
            )));
        }
        if hblks + len.div_ceil(BB) > self.area.nbb {
            return Err(bad("the record is longer than the log".into()));
        }
        Ok(Some(RecHeader {
            blk: bb,
            lsn: be64(&raw, 16).unwrap_or(0),
            tail_lsn: be64(&raw, 24).unwrap_or(0),
            len,
            num_ops: be32(&raw, 40).unwrap_or(0),
            hblks,
            raw,
        }))
    }

    /// The last record header at or before `bb` (searching back at most `SCAN_BBS` blocks).
    fn last_header_before(&self, bb: u64) -> Result<RecHeader, FsError> {
        let nbb = self.area.nbb;
        for back in 1..=SCAN_BBS.min(nbb) {
            if let Some(h) = self.header((bb + nbb - back) % nbb)? {
                return Ok(h);
            }
        }
        Err(corrupt(
            "xfs log",
            format!("no log record header before the head at block {bb}"),
        ))
    }

    /// The head as `xlog_find_head` finds it (before CRC verification).
    fn find_head(&self) -> Result<Option<u64>, FsError> {
        let nbb = self.area.nbb;
        let first = self.cycle(0)?;
        if first == 0 {
            return Ok(None); // zeroed log
        }
        let last = self.cycle(nbb - 1)?;
        let (mut head, stop) = if first == last {
            (nbb, last.wrapping_sub(1))
        } else {
            // cycle(lo) == first, cycle(hi) == last: the head is the first block of `last`.
            let (mut lo, mut hi) = (0u64, nbb - 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.cycle(mid)? == last {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            (hi, last)
        };
        // Out-of-order iclog writes leave holes of the older cycle before the head.
        let window = SCAN_BBS.min(nbb);
        if head >= window {
            if let Some(b) = self.first_with_cycle(head - window, window, stop)? {
                head = b;
            }
        } else {
            let tail_part = window - head;
            if let Some(b) =
                self.first_with_cycle(nbb - tail_part, tail_part, stop.wrapping_sub(1))?
            {
                head = b;
            } else if let Some(b) = self.first_with_cycle(0, head, stop)? {
                head = b;
            }
        }
        let head = head % nbb;
        // A last record that does not end at the head is incomplete: the head is its start.
        let h = self.last_header_before(head)?;
        Ok(Some(if h.next(nbb) != head { h.blk } else { head }))
    }

    /// The record at `h` with its data unpacked; `Err` names what is wrong with it, `Ok(None)`
    /// when its CRC does not match.
    pub(crate) fn record_data(&self, h: &RecHeader) -> Result<Option<Vec<u8>>, FsError> {
        let nbb = self.area.nbb;
        let hdrs = self.read(h.blk, h.hblks)?;
        let mut data = self.read((h.blk + h.hblks) % nbb, h.len.div_ceil(BB))?;
        data.truncate(usize::try_from(h.len).unwrap_or(0));
        let stored = le32(&h.raw, CRC_OFF).unwrap_or(0);
        if stored != 0 {
            let ok = REC_SIZES.iter().any(|&n| {
                let head = h.raw.get(..n).unwrap_or(&[]);
                let mut crc = crc32c_update(!0, head.get(..CRC_OFF).unwrap_or(&[]));
                crc = crc32c_update(crc, &[0; 4]);
                crc = crc32c_update(crc, head.get(CRC_OFF + 4..).unwrap_or(&[]));
                for j in 1..h.hblks {
                    let s = usize::try_from(j * BB).unwrap_or(0);
                    // sizeof(xlog_rec_ext_header): xh_cycle and 64 words of cycle data
                    crc = crc32c_update(crc, hdrs.get(s..s + 4 + 4 * CYCLE_WORDS).unwrap_or(&[]));
                }
                crc = crc32c_update(crc, &data);
                !crc == stored
            });
            if !ok {
                return Ok(None);
            }
        }
        for i in 0..usize::try_from(h.len.div_ceil(BB)).unwrap_or(0) {
            let (j, k) = (i / CYCLE_WORDS, i % CYCLE_WORDS);
            let src = if j == 0 {
                44 + 4 * k
            } else {
                j * 512 + 4 + 4 * k
            };
            let word = hdrs.get(src..src + 4).map(<[u8]>::to_vec);
            if let (Some(w), Some(dst)) = (word, data.get_mut(i * 512..i * 512 + 4)) {
                dst.copy_from_slice(&w);
            }
        }
        Ok(Some(data))
    }

    /// Head and tail, the last records' CRCs checked (a torn write moves the head back).
    pub(crate) fn find_ends(&self) -> Result<Ends, FsError> {
        let nbb = self.area.nbb;
        let Some(mut head) = self.find_head()? else {
            return Ok(Ends::Clean);
        };
        let mut torn: Option<(u64, usize)> = None;
        for _ in 0..=MAX_ICLOGS {
            let last = self.last_header_before(head)?;
            let tail = (last.tail_lsn & 0xffff_ffff) % nbb;
            if last.num_ops == 1 {
                // An unmount record ending at the head: clean.
                let op = self.read((last.blk + last.hblks) % nbb, 1)?;
                let flags = self.record_data(&last)?.and_then(|d| d.get(9).copied());
                if flags.or(op.get(9).copied()).unwrap_or(0) & UNMOUNT_TRANS != 0 {
                    return Ok(Ends::Clean);
                }
            }
            // The records from the tail to the head; the first bad CRC among the last eight
            // moves the head back to it.
            let mut recs = Vec::new();
            let mut at = tail;
            let mut walked = 0u64;
            while at != head {
                let h = self.header(at)?.ok_or_else(|| {
                    corrupt(
                        "xfs log",
                        format!("no record header at block {at} between the tail ({tail}) and the head ({head})"),
                    )
                })?;
                walked += h.hblks + h.len.div_ceil(BB);
                if walked > nbb {
                    return Err(corrupt("xfs log", "records from the tail overrun the head"));
                }
                at = h.next(nbb);
                recs.push(h);
            }
            let skip = recs.len().saturating_sub(MAX_ICLOGS);
            let mut first_bad = None;
            for (i, h) in recs.iter().enumerate().skip(skip) {
                if self.record_data(h)?.is_none() {
                    first_bad = Some((i, h.blk));
                    break;
                }
            }
            match first_bad {
                Some((_, blk)) if blk == tail => {
                    return Err(corrupt(
                        "xfs log",
                        format!("the record at the tail (block {tail}) fails its CRC"),
                    ));
                }
                Some((i, blk)) => {
                    let dropped = recs.len() - i + torn.map_or(0, |t| t.1);
                    torn = Some((blk, dropped));
                    head = blk;
                }
                None => return Ok(Ends::Dirty { head, tail, torn }),
            }
        }
        Err(corrupt("xfs log", "too many torn records at the head"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fs::xfs::superblock::{Superblock, tests::v5_sb};
    use crate::fs::xfs::tests::Mem;
    use std::sync::Arc;

    /// A record header block with CRC over `data` (one header block).
    pub(crate) fn record(cycle: u32, blk: u32, tail: u32, num_ops: u32, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[0..4].copy_from_slice(&HEADER_MAGIC.to_be_bytes());
        h[4..8].copy_from_slice(&cycle.to_be_bytes());
        h[8..12].copy_from_slice(&VERSION_2.to_be_bytes());
        h[12..16].copy_from_slice(&(data.len() as u32).to_be_bytes());
        h[16..24].copy_from_slice(&((u64::from(cycle) << 32) | u64::from(blk)).to_be_bytes());
        h[24..32].copy_from_slice(&((u64::from(cycle) << 32) | u64::from(tail)).to_be_bytes());
        h[40..44].copy_from_slice(&num_ops.to_be_bytes());
        h[320..324].copy_from_slice(&(HEADER_CYCLE_SIZE as u32).to_be_bytes());
        let mut packed = data.to_vec();
        packed.resize(data.len().div_ceil(512) * 512, 0);
        for i in 0..packed.len() / 512 {
            h[44 + 4 * i..48 + 4 * i].copy_from_slice(&packed[i * 512..i * 512 + 4]);
            packed[i * 512..i * 512 + 4].copy_from_slice(&cycle.to_be_bytes());
        }
        let mut crc = crc32c_update(!0, &h[..32]);
        crc = crc32c_update(crc, &[0; 4]);
        crc = crc32c_update(crc, &h[36..328]);
        crc = crc32c_update(crc, &packed[..data.len()]);
        h[32..36].copy_from_slice(&(!crc).to_le_bytes());
        h.extend_from_slice(&packed);
        h
    }

    /// A 64-block volume of 4 KiB blocks whose log is blocks 8..16 (64 log blocks), holding
    /// `log` from its start; the rest of the log has cycle `rest`.
    pub(crate) fn volume(log: &[u8], rest: u32) -> Ctx {
        let mut vol = vec![0u8; 64 * 4096];
        let base = 8 * 4096;
        for b in 0..64 {
            vol[base + b * 512..base + b * 512 + 4].copy_from_slice(&rest.to_be_bytes());
        }
        vol[base..base + log.len()].copy_from_slice(log);
        let mut sb = Superblock::parse(&v5_sb()).unwrap();
        sb.logstart = 8;
        sb.logblocks = 8;
        Ctx {
            src: Arc::new(Mem(vol)),
            sb,
        }
    }

    fn ends(ctx: &Ctx) -> Result<Ends, FsError> {
        let area = LogArea::of(ctx)?.unwrap();
        LogReader { ctx, area }.find_ends()
    }

    /// An op header (big-endian tid/len, client, flags) and its region.
    pub(crate) fn op(tid: u32, flags: u8, region: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&tid.to_be_bytes());
        o.extend_from_slice(&(region.len() as u32).to_be_bytes());
        o.push(0x69);
        o.push(flags);
        o.extend_from_slice(&[0, 0]);
        o.extend_from_slice(region);
        o
    }

    #[test]
    fn clean_zeroed_and_dirty_logs() {
        let unmount = record(1, 0, 0, 1, &op(1, UNMOUNT_TRANS, &[0; 8]));
        assert_eq!(ends(&volume(&unmount, 0)).unwrap(), Ends::Clean);
        assert_eq!(ends(&volume(&[], 0)).unwrap(), Ends::Clean);
        let mut log = record(1, 0, 0, 1, &op(1, 0x01, &[]));
        log.extend(record(1, 2, 0, 1, &op(1, 0x02, &[])));
        assert_eq!(
            ends(&volume(&log, 0)).unwrap(),
            Ends::Dirty {
                head: 4,
                tail: 0,
                torn: None
            }
        );
    }

    #[test]
    fn a_torn_last_record_moves_the_head_back() {
        let mut log = record(1, 0, 0, 1, &op(1, 0x01, &[]));
        let second = log.len();
        log.extend(record(1, 2, 0, 1, &op(1, 0x02, &[])));
        log[second + 512 + 6] ^= 0xff; // op length of the second record
        assert_eq!(
            ends(&volume(&log, 0)).unwrap(),
            Ends::Dirty {
                head: 2,
                tail: 0,
                torn: Some((2, 1))
            }
        );
    }

    #[test]
    fn a_log_larger_than_the_volume_is_an_error() {
        let mut ctx = volume(&[], 0);
        ctx.sb.logblocks = u32::MAX;
        let e = LogArea::of(&ctx).unwrap_err().to_string();
        assert!(e.contains("does not fit in the volume"), "{e}");
    }
}
