//! Log records to transactions, as the kernel's `xlog_recover_process_data` reassembles them:
//! each record's op headers, in order, from the tail to the head; a transaction starts at an op
//! with XLOG_START_TRANS (its LSN is that record's), its first region is the transaction header,
//! then each item is a format region (whose `size` field counts the item's regions) and its data
//! regions; a region cut at a record's end continues in an op with XLOG_WAS_CONT_TRANS; the
//! transaction counts at its XLOG_COMMIT_TRANS op. Ops of transactions that started before the
//! tail are skipped; transactions not committed by the head are dropped.
//!
//! Limits: the log items (the format structures) are in the byte order of the machine that
//! wrote them; little-endian logs are read, a big-endian one is refused. The bytes held in open
//! transactions are capped ([`MAX_PENDING`]).

use super::log::{BB, LogReader, UNMOUNT_TRANS};
use super::{be32, corrupt};
use crate::fs::FsError;
use std::collections::HashMap;

const START_TRANS: u8 = 0x01;
const COMMIT_TRANS: u8 = 0x02;
const CONTINUE_TRANS: u8 = 0x04;
const WAS_CONT_TRANS: u8 = 0x08;
const END_TRANS: u8 = 0x10;
const CLIENT_TRANSACTION: u8 = 0x69;
const CLIENT_LOG: u8 = 0xaa;
const TRANS_MAGIC: u32 = 0x5452_414e; // "TRAN"
const TRANS_HEADER_LEN: usize = 16;
/// XLOG_MAX_REGIONS_IN_ITEM: a 64 KiB buffer's 128-byte chunks, every other one, plus one.
const MAX_REGIONS: u16 = 257;
/// Bytes held in transactions not yet committed.
pub(crate) const MAX_PENDING: usize = 512 << 20;

/// One logged item: its regions (the first is the format structure).
#[derive(Debug, Default)]
pub(crate) struct Item {
    total: u16,
    pub(crate) regions: Vec<Vec<u8>>,
}

impl Item {
    /// The item type (`XFS_LI_*`), from the format region.
    pub(crate) fn kind(&self) -> u16 {
        self.regions
            .first()
            .and_then(|r| r.get(..2))
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    }
}

/// A committed transaction.
#[derive(Debug)]
pub(crate) struct Trans {
    /// LSN of the record it started in.
    pub(crate) lsn: u64,
    header: Vec<u8>,
    pub(crate) items: Vec<Item>,
    bytes: usize,
}

impl Trans {
    fn add(&mut self, region: &[u8]) -> Result<(), FsError> {
        if region.is_empty() {
            return Ok(());
        }
        if self.items.is_empty() {
            if region.len() > TRANS_HEADER_LEN {
                return Err(bad("a transaction header longer than 16 bytes"));
            }
            if let Some(m) = region.get(..4) {
                let m = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
                if m == TRANS_MAGIC.swap_bytes() {
                    return Err(corrupt(
                        "xfs log",
                        "the log was written by a big-endian machine: its items are not read",
                    ));
                }
                if m != TRANS_MAGIC {
                    return Err(bad(&format!("transaction header magic {m:#x}")));
                }
            }
            self.header = region.to_vec();
            self.items.push(Item::default());
            return Ok(());
        }
        let full = self
            .items
            .last()
            .is_some_and(|i| i.total != 0 && usize::from(i.total) == i.regions.len());
        if full {
            self.items.push(Item::default());
        }
        let item = self.items.last_mut().ok_or_else(|| bad("no item"))?;
        if item.total == 0 {
            let size = region
                .get(2..4)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .ok_or_else(|| bad("an item format region shorter than 4 bytes"))?;
            if size == 0 || size > MAX_REGIONS {
                return Err(bad(&format!("an item of {size} regions")));
            }
            item.total = size;
        }
        if item.regions.len() >= usize::from(item.total) {
            return Err(bad("more regions than the item declares"));
        }
        item.regions.push(region.to_vec());
        self.bytes += region.len();
        Ok(())
    }

    fn add_continued(&mut self, region: &[u8]) -> Result<(), FsError> {
        if self.items.is_empty() {
            if self.header.len() + region.len() > TRANS_HEADER_LEN {
                return Err(bad("a continued transaction header longer than 16 bytes"));
            }
            self.header.extend_from_slice(region);
            self.items.push(Item::default());
            return Ok(());
        }
        let last = self
            .items
            .last_mut()
            .and_then(|i| i.regions.last_mut())
            .ok_or_else(|| bad("a continuation with no region to continue"))?;
        last.extend_from_slice(region);
        self.bytes += region.len();
        Ok(())
    }
}

fn bad(what: &str) -> FsError {
    corrupt("xfs log", format!("bad transaction: {what}"))
}

/// Walk the records in `[tail, head)` and hand every committed transaction to `commit`, in
/// commit order. Returns the number of transactions committed.
pub(crate) fn for_each_committed(
    log: &LogReader,
    tail: u64,
    head: u64,
    commit: &mut dyn FnMut(Trans) -> Result<(), FsError>,
) -> Result<u64, FsError> {
    let nbb = log.area.nbb;
    let mut open: HashMap<u32, Trans> = HashMap::new();
    let mut committed = 0u64;
    let mut at = tail;
    let mut walked = 0u64;
    while at != head {
        let h = log
            .header(at)?
            .ok_or_else(|| corrupt("xfs log", format!("no record header at block {at}")))?;
        walked += h.hblks + h.len.div_ceil(BB);
        if walked > nbb {
            return Err(corrupt("xfs log", "records from the tail overrun the head"));
        }
        let data = log.record_data(&h)?.ok_or_else(|| {
            corrupt(
                "xfs log",
                format!("the record at block {} fails its CRC", h.blk),
            )
        })?;
        let ctx = |m: String| corrupt(format!("xfs log record at block {}", h.blk), m);
        let mut off = 0usize;
        let mut ops = h.num_ops;
        while off < data.len() && ops > 0 {
            ops -= 1;
            let hdr = data
                .get(off..off + 12)
                .ok_or_else(|| ctx("an op header past the record's end".into()))?;
            let tid = be32(hdr, 0).unwrap_or(0);
            let len = usize::try_from(be32(hdr, 4).unwrap_or(0)).unwrap_or(usize::MAX);
            let (client, flags) = (hdr[8], hdr[9]);
            let region = off
                .checked_add(12)
                .and_then(|s| data.get(s..s.checked_add(len)?))
                .ok_or_else(|| ctx(format!("an op of {len} bytes past the record's end")))?;
            off += 12 + len;
            if client != CLIENT_TRANSACTION && client != CLIENT_LOG {
                return Err(ctx(format!("op client id {client:#x}")));
            }
            let Some(trans) = open.get_mut(&tid) else {
                if flags & START_TRANS != 0 {
                    open.insert(
                        tid,
                        Trans {
                            lsn: h.lsn,
                            header: Vec::new(),
                            items: Vec::new(),
                            bytes: 0,
                        },
                    );
                }
                continue; // a transaction that started before the tail
            };
            let mut f = flags & !END_TRANS;
            if f & WAS_CONT_TRANS != 0 {
                f &= !CONTINUE_TRANS;
            }
            match f {
                0 | CONTINUE_TRANS => trans.add(region)?,
                WAS_CONT_TRANS => trans.add_continued(region)?,
                COMMIT_TRANS => {
                    if let Some(t) = open.remove(&tid) {
                        committed += 1;
                        commit(t)?;
                    }
                }
                UNMOUNT_TRANS => {
                    open.remove(&tid);
                }
                _ => return Err(ctx(format!("op flags {flags:#x} for transaction {tid:#x}"))),
            }
            if open.values().map(|t| t.bytes).sum::<usize>() > MAX_PENDING {
                return Err(corrupt(
                    "xfs log",
                    format!("open transactions hold more than {MAX_PENDING} bytes"),
                ));
            }
        }
        at = h.next(nbb);
    }
    Ok(committed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::xfs::log::tests::{op, record, volume};
    use crate::fs::xfs::log::{Ends, LogArea};

    fn header_region() -> Vec<u8> {
        let mut h = TRANS_MAGIC.to_le_bytes().to_vec();
        h.extend_from_slice(&[0; 12]);
        h
    }

    #[test]
    fn a_region_continued_in_the_next_record_is_reassembled() {
        // Record 1: start, header, the item's format region and the first half of its data;
        // record 2: the rest of the data and the commit.
        let mut fmt = vec![0u8; 8];
        fmt[0..2].copy_from_slice(&0x123cu16.to_le_bytes());
        fmt[2..4].copy_from_slice(&2u16.to_le_bytes());
        let mut d1 = op(7, START_TRANS, &[]);
        d1.extend(op(7, 0, &header_region()));
        d1.extend(op(7, 0, &fmt));
        d1.extend(op(7, CONTINUE_TRANS, b"first half "));
        let mut d2 = op(7, WAS_CONT_TRANS, b"second half");
        d2.extend(op(7, COMMIT_TRANS, &[]));
        let mut log = record(1, 0, 0, 4, &d1);
        let second = (log.len() / 512) as u32;
        log.extend(record(1, second, 0, 2, &d2));
        let ctx = volume(&log, 0);
        let reader = LogReader {
            ctx: &ctx,
            area: LogArea::of(&ctx).unwrap().unwrap(),
        };
        let Ends::Dirty { head, tail, .. } = reader.find_ends().unwrap() else {
            panic!("clean")
        };
        let mut got = Vec::new();
        let n = for_each_committed(&reader, tail, head, &mut |t| {
            got.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(got[0].items.len(), 1);
        assert_eq!(got[0].items[0].kind(), 0x123c);
        assert_eq!(got[0].items[0].regions[1], b"first half second half");
        assert_eq!(got[0].lsn, 1 << 32);
    }
}
