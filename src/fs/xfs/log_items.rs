//! Log items replayed into an in-memory overlay of the volume's 512-byte blocks, as the kernel's
//! pass 2 does (xfs_buf_item_recover.c, xfs_inode_item_recover.c, xfs_icreate_item.c):
//!
//! - buffer items (XFS_LI_BUF): the logged 128-byte chunks copied where the data map says;
//!   for an inode buffer (XFS_BLF_INODE_BUF) only each inode's `di_next_unlinked`; on v5 a
//!   buffer whose own LSN is not older than the transaction is left alone; a buffer cancelled
//!   anywhere in the log (XFS_BLF_CANCEL, counted in pass 1) is not replayed until its last
//!   cancel record; a replayed v5 block's CRC is recomputed (the kernel's write verifiers do
//!   it on writeback). Dquot buffers are not replayed (quota blocks are not read);
//! - inode items (XFS_LI_INODE): the host-order log dinode converted to the on-disk core, the
//!   data and attribute forks per `ilf_fields` (inline data and extent lists copied, a btree
//!   root converted from its in-core to its on-disk form), the inode's CRC recomputed; skipped
//!   when the on-disk inode's LSN is newer, or (v4) its flush counter is;
//! - inode-create items (XFS_LI_ICREATE): the inode chunk initialised;
//! - intents (EFI, RUI, CUI, BUI, attribute, mapping exchange) are not replayed: the ones whose
//!   done item is not in the log are counted.
//!
//! Limits: only little-endian log items (what x86 and arm64 write); the overlay is capped at
//! [`MAX_OVERLAY_BLOCKS`] blocks.

use super::{Ctx, be16, be32, be64, corrupt, crc32c_update};
use crate::fs::FsError;
use crate::source::{SharedSource, Source, SourceError};
use std::collections::{BTreeMap, HashMap, HashSet};

use super::log::{BB, Ends, LogArea, LogReader};
use super::log_trans::{Item, Trans, for_each_committed};
use crate::bytes::{le16, le32, le64};

const LI_EFI: u16 = 0x1236;
const LI_IUNLINK: u16 = 0x1238;
const LI_INODE: u16 = 0x123b;
const LI_BUF: u16 = 0x123c;
const LI_DQUOT: u16 = 0x123d;
const LI_QUOTAOFF: u16 = 0x123e;
const LI_ICREATE: u16 = 0x123f;
const LI_LAST: u16 = 0x124f;

const BLF_INODE_BUF: u16 = 0x1;
const BLF_CANCEL: u16 = 0x2;
const BLF_DQUOT_BUF: u16 = 0x4 | 0x8 | 0x10;
const BLF_CHUNK: usize = 128;
const BLF_MAX_MAP: usize = 17;

const ILOG_DDATA: u32 = 0x002;
const ILOG_DEXT: u32 = 0x004;
const ILOG_DBROOT: u32 = 0x008;
const ILOG_ADATA: u32 = 0x040;
const ILOG_AEXT: u32 = 0x080;
const ILOG_ABROOT: u32 = 0x100;
const ILOG_DFORK: u32 = ILOG_DDATA | ILOG_DEXT | ILOG_DBROOT;
const ILOG_AFORK: u32 = ILOG_ADATA | ILOG_AEXT | ILOG_ABROOT;

const DINODE_MAGIC: u16 = 0x494e;
const DIFLAG2_BIGTIME: u64 = 0x8;
const DIFLAG2_NREXT64: u64 = 0x10;
const NULL_LSN: u64 = u64::MAX;

/// Most 512-byte blocks the overlay holds (1 GiB).
pub(crate) const MAX_OVERLAY_BLOCKS: usize = 1 << 21;

/// What replaying the log did.
#[derive(Clone, Debug, Default)]
pub struct LogReplay {
    /// Committed transactions replayed.
    pub transactions: u64,
    /// Buffer items replayed (skipped ones not counted).
    pub buffers: u64,
    /// Inode items replayed.
    pub inodes: u64,
    /// Inode chunks initialised.
    pub inode_chunks: u64,
    /// Buffer and inode items not replayed: cancelled or older than the block on disk.
    pub skipped: u64,
    /// Intents whose done item is not in the log, by kind (`"BUI"`, `"EFI"`, ...): the kernel
    /// finishes them at mount; amiscan does not.
    pub pending_intents: BTreeMap<&'static str, u64>,
    /// Set when the head was moved back over records that fail their CRC: what was dropped.
    pub torn: Option<String>,
}

/// The volume with the replayed blocks laid over it.
pub(crate) struct Replayed {
    pub(crate) src: SharedSource,
    pub(crate) blocks: BTreeMap<u64, Box<[u8]>>,
}

impl Source for Replayed {
    fn len(&self) -> u64 {
        self.src.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        self.src.read_at(offset, buf)?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset.saturating_add(buf.len() as u64);
        for (&bb, data) in self.blocks.range(offset / BB..end.div_ceil(BB)) {
            let (bs, be) = (bb * BB, bb * BB + BB);
            let (s, e) = (bs.max(offset), be.min(end));
            if s >= e {
                continue;
            }
            let src = data.get((s - bs) as usize..(e - bs) as usize);
            let dst = buf.get_mut((s - offset) as usize..(e - offset) as usize);
            if let (Some(src), Some(dst)) = (src, dst) {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }
    fn describe(&self) -> String {
        self.src.describe()
    }
    fn prefetch(&self, offset: u64, len: u64) {
        self.src.prefetch(offset, len);
    }
    fn remote(&self) -> bool {
        self.src.remote()
    }
    fn will_read_most(&self) {
        self.src.will_read_most();
    }
    fn will_read(&self, plan: &[std::ops::Range<u64>]) {
        self.src.will_read(plan);
    }
    fn scan_ended(&self) {
        self.src.scan_ended();
    }
    fn ready(&self, offset: u64, len: u64) -> bool {
        self.src.ready(offset, len)
    }
}

/// Replay state: the overlay, the cancelled buffers, the open intents.
pub(crate) struct Replayer<'a> {
    ctx: &'a Ctx,
    pub(crate) blocks: BTreeMap<u64, Box<[u8]>>,
    cancels: HashMap<(u64, u16), u32>,
    intents: HashMap<u16, HashSet<u64>>,
    pub(crate) stats: LogReplay,
    uuid: [u8; 16],
}

fn bad(item: &str, m: impl Into<String>) -> FsError {
    corrupt(format!("xfs log {item} item"), m)
}
/// Store a CRC32C of `buf` (with the field zeroed) at `off`, little-endian.
fn set_crc(buf: &mut [u8], off: usize) {
    if buf.len() < off + 4 {
        return;
    }
    buf[off..off + 4].fill(0);
    let crc = !crc32c_update(!0, buf);
    buf[off..off + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Where a v5 metadata block keeps its LSN, UUID and CRC, by its magic.
fn self_describing(buf: &[u8]) -> Option<(usize, usize, usize)> {
    let m32 = be32(buf, 0)?;
    Some(match m32 {
        // short-form btree blocks: free space, inodes, rmap, refcount
        0x4142_3342 | 0x4142_3343 | 0x4941_4233 | 0x4649_4233 | 0x524d_4233 | 0x5233_4643 => {
            (24, 32, 52)
        }
        0x424d_4133 => (32, 40, 64),                            // BMA3
        0x5841_4746 => (208, 64, 216),                          // XAGF
        0x5841_464c => (24, 8, 32),                             // XAFL
        0x5841_4749 => (320, 296, 312),                         // XAGI
        0x5853_4c4d => (48, 16, 12),                            // XSLM
        0x5844_4233 | 0x5844_4433 | 0x5844_4633 => (16, 24, 4), // XDB3 XDD3 XDF3
        0x5846_5342 => (240, 32, 224),                          // XFSB
        _ => match be16(buf, 8)? {
            0x3ebe | 0x3df1 | 0x3dff | 0x3bee => (24, 32, 12), // da3 node, dir3 leaf, attr3 leaf
            _ => return None,
        },
    })
}

impl<'a> Replayer<'a> {
    pub(crate) fn new(ctx: &'a Ctx) -> Result<Self, FsError> {
        // The UUID v5 metadata carries: sb_meta_uuid when the META_UUID feature is set.
        let sb = ctx.read_vec(0, 512, &|| "xfs superblock".into())?;
        let meta = be32(&sb, 216).unwrap_or(0) & 0x4 != 0 && ctx.sb.crc();
        let off = if meta { 248 } else { 32 };
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(sb.get(off..off + 16).unwrap_or(&[0; 16]));
        Ok(Replayer {
            ctx,
            blocks: BTreeMap::new(),
            cancels: HashMap::new(),
            intents: HashMap::new(),
            stats: LogReplay::default(),
            uuid,
        })
    }

    fn read_buf(&self, bb: u64, n: u64) -> Result<Vec<u8>, FsError> {
        let vol_bbs = self.ctx.src.len() / BB;
        if n == 0 || bb.checked_add(n).is_none_or(|e| e > vol_bbs) {
            return Err(corrupt(
                "xfs log",
                format!("a logged buffer at block {bb} (+{n}) is outside the volume"),
            ));
        }
        let mut out = self.ctx.read_vec(bb * BB, (n * BB) as usize, &|| {
            format!("xfs block {bb} (log replay)")
        })?;
        for (&b, data) in self.blocks.range(bb..bb + n) {
            let s = ((b - bb) * BB) as usize;
            if let Some(d) = out.get_mut(s..s + BB as usize) {
                d.copy_from_slice(data);
            }
        }
        Ok(out)
    }

    fn write_buf(&mut self, bb: u64, data: &[u8]) -> Result<(), FsError> {
        for (i, chunk) in data.chunks(BB as usize).enumerate() {
            self.blocks.insert(bb + i as u64, chunk.into());
        }
        if self.blocks.len() > MAX_OVERLAY_BLOCKS {
            return Err(corrupt(
                "xfs log",
                format!(
                    "the replayed blocks exceed {} MiB",
                    MAX_OVERLAY_BLOCKS / 2048
                ),
            ));
        }
        Ok(())
    }

    fn cancelled(&self, blkno: u64, len: u16) -> bool {
        self.cancels.contains_key(&(blkno, len))
    }

    /// Pass 1: count the cancel records.
    pub(crate) fn pass1(&mut self, t: &Trans) -> Result<(), FsError> {
        for item in t.items.iter().filter(|i| i.kind() == LI_BUF) {
            let f = BufFmt::parse(item)?;
            if f.flags & BLF_CANCEL != 0 {
                *self.cancels.entry((f.blkno, f.len)).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    /// Pass 2: replay one committed transaction.
    pub(crate) fn pass2(&mut self, t: &Trans) -> Result<(), FsError> {
        self.stats.transactions += 1;
        // The kernel's order: buffers and inode creates, other items, inode buffers, cancels.
        let mut order: Vec<&Item> = Vec::with_capacity(t.items.len());
        let (mut others, mut inode_bufs, mut cancels) = (Vec::new(), Vec::new(), Vec::new());
        for item in &t.items {
            match item.kind() {
                LI_BUF => {
                    let f = BufFmt::parse(item)?;
                    if f.flags & BLF_CANCEL != 0 {
                        cancels.insert(0, item);
                    } else if f.flags & BLF_INODE_BUF != 0 {
                        inode_bufs.insert(0, item);
                    } else {
                        order.push(item);
                    }
                }
                LI_ICREATE => order.push(item),
                k if (LI_EFI..=LI_LAST).contains(&k) => others.push(item),
                0 if item.regions.is_empty() => {}
                k => return Err(bad("log", format!("unknown log item type {k:#x}"))),
            }
        }
        order.extend(others);
        order.extend(inode_bufs);
        order.extend(cancels);
        for item in order {
            match item.kind() {
                LI_BUF => self.buffer(item, t.lsn)?,
                LI_INODE => self.inode(item, t.lsn)?,
                LI_ICREATE => self.icreate(item)?,
                LI_DQUOT | LI_QUOTAOFF | LI_IUNLINK => {}
                k => self.intent(item, k)?,
            }
        }
        Ok(())
    }

    fn intent(&mut self, item: &Item, kind: u16) -> Result<(), FsError> {
        let fmt = item.regions.first().map_or(&[][..], Vec::as_slice);
        let id = le64(fmt, 8).ok_or_else(|| bad("intent", "format shorter than 16 bytes"))?;
        // Intents are even, their done items the next odd type (EFI 0x1236 / EFD 0x1237, ...).
        if (kind - LI_EFI).is_multiple_of(2) && kind != LI_IUNLINK {
            self.intents.entry(kind).or_default().insert(id);
        } else if let Some(set) = self.intents.get_mut(&(kind - 1)) {
            set.remove(&id);
        }
        Ok(())
    }

    /// The pending intents, by name.
    pub(crate) fn finish(&mut self) {
        for (&k, ids) in &self.intents {
            if ids.is_empty() {
                continue;
            }
            let name = match k {
                LI_EFI => "EFI (extent free)",
                0x1240 => "RUI (reverse mapping)",
                0x1242 => "CUI (refcount)",
                0x1244 => "BUI (file mapping)",
                0x1246 => "ATTRI (extended attribute)",
                0x1248 => "XMI (mapping exchange)",
                0x124a => "EFI (realtime extent free)",
                0x124c => "RUI (realtime reverse mapping)",
                _ => "CUI (realtime refcount)",
            };
            *self.stats.pending_intents.entry(name).or_insert(0) += ids.len() as u64;
        }
    }

    /// The LSN of a v5 block (`None`: replay regardless, as `xlog_recover_get_buf_lsn`).
    fn buf_lsn(&self, buf: &[u8]) -> Option<u64> {
        if !self.ctx.sb.crc() || be16(buf, 0) == Some(DINODE_MAGIC) {
            return None;
        }
        let (lsn, uuid, _) = self_describing(buf)?;
        if buf.get(uuid..uuid + 16)? != self.uuid {
            return None;
        }
        be64(buf, lsn).filter(|&l| l != 0 && l != NULL_LSN)
    }

    fn buffer(&mut self, item: &Item, lsn: u64) -> Result<(), FsError> {
        let f = BufFmt::parse(item)?;
        if let Some(n) = self.cancels.get_mut(&(f.blkno, f.len)) {
            if f.flags & BLF_CANCEL != 0 {
                *n -= 1;
                if *n == 0 {
                    self.cancels.remove(&(f.blkno, f.len));
                }
            }
            self.stats.skipped += 1;
            return Ok(());
        }
        if f.flags & BLF_CANCEL != 0 || f.flags & BLF_DQUOT_BUF != 0 {
            return Ok(());
        }
        let mut buf = self.read_buf(f.blkno, u64::from(f.len))?;
        if self.buf_lsn(&buf).is_some_and(|l| l >= lsn) {
            self.stats.skipped += 1;
            return Ok(());
        }
        if f.flags & BLF_INODE_BUF != 0 {
            self.inode_buffer(&f, item, &mut buf)?;
        } else {
            f.apply(item, &mut buf)?;
            if self.ctx.sb.crc()
                && let Some((_, _, crc)) = self_describing(&buf)
            {
                set_crc(&mut buf, crc);
            }
        }
        self.write_buf(f.blkno, &buf)?;
        self.stats.buffers += 1;
        Ok(())
    }

    /// An inode buffer: only the logged `di_next_unlinked` fields are replayed.
    fn inode_buffer(&self, f: &BufFmt, item: &Item, buf: &mut [u8]) -> Result<(), FsError> {
        let isize = usize::from(self.ctx.sb.inodesize);
        let mut logged = vec![false; buf.len()];
        let mut copy = buf.to_vec();
        f.apply_to(item, &mut copy, &mut logged)?;
        for (i, ino) in buf.chunks_mut(isize).enumerate() {
            let at = i * isize + 96;
            if logged.get(at..at + 4).is_some_and(|l| l.iter().all(|&b| b)) {
                let next = copy.get(at..at + 4).unwrap_or(&[0; 4]);
                if next == [0; 4] {
                    return Err(bad("inode buffer", "a logged di_next_unlinked of 0"));
                }
                if let Some(d) = ino.get_mut(96..100) {
                    d.copy_from_slice(next);
                }
                if self.ctx.sb.crc() {
                    set_crc(ino, 100);
                }
            }
        }
        Ok(())
    }

    fn icreate(&mut self, item: &Item) -> Result<(), FsError> {
        let r = item.regions.first().map_or(&[][..], Vec::as_slice);
        let sb = &self.ctx.sb;
        let field = |o| be32(r, o).ok_or_else(|| bad("inode-create", "format too short"));
        let (agno, agbno, count, isize, length, generation) = (
            field(4)?,
            field(8)?,
            field(12)?,
            field(16)?,
            field(20)?,
            field(24)?,
        );
        if agno >= sb.agcount
            || agbno == 0
            || agbno >= sb.agblocks
            || isize != u32::from(sb.inodesize)
            || count == 0
            || length == 0
            || u64::from(agbno) + u64::from(length) > u64::from(sb.agblocks)
            || count >> sb.inopblog != length
        {
            return Err(bad(
                "inode-create",
                format!("chunk of {count} inodes at AG {agno} block {agbno} ({length} blocks)"),
            ));
        }
        let bb_per_fsb = u64::from(sb.blocksize) / BB;
        let daddr = (u64::from(agno) * u64::from(sb.agblocks) + u64::from(agbno)) * bb_per_fsb;
        let nbb = u64::from(length) * bb_per_fsb;
        // Any cancelled cluster buffer in the chunk: the chunk was freed later, skip it.
        if self
            .cancels
            .keys()
            .any(|&(b, l)| b >= daddr && b + u64::from(l) <= daddr + nbb)
        {
            self.stats.skipped += 1;
            return Ok(());
        }
        let mut buf = vec![0u8; (nbb * BB) as usize];
        let first = (u64::from(agno) << (u32::from(sb.agblklog) + u32::from(sb.inopblog)))
            | (u64::from(agbno) << sb.inopblog);
        for (i, ino) in buf.chunks_mut(usize::from(sb.inodesize)).enumerate() {
            ino[0..2].copy_from_slice(&DINODE_MAGIC.to_be_bytes());
            ino[4] = if sb.crc() { 3 } else { 2 };
            ino[92..96].copy_from_slice(&generation.to_be_bytes());
            ino[96..100].copy_from_slice(&u32::MAX.to_be_bytes());
            if sb.crc() {
                ino[152..160].copy_from_slice(&(first + i as u64).to_be_bytes());
                ino[160..176].copy_from_slice(&self.uuid);
                set_crc(ino, 100);
            }
        }
        self.write_buf(daddr, &buf)?;
        self.stats.inode_chunks += 1;
        Ok(())
    }

    fn inode(&mut self, item: &Item, lsn: u64) -> Result<(), FsError> {
        let fmt = item.regions.first().map_or(&[][..], Vec::as_slice);
        let short = || bad("inode", "format too short");
        // 56 bytes, or 52 from a 32-bit kernel (no padding before ilf_ino).
        let (fields, blkno, len, boffset) = match fmt.len() {
            56 => (le32(fmt, 4), le64(fmt, 40), le32(fmt, 48), le32(fmt, 52)),
            52 => (le32(fmt, 4), le64(fmt, 36), le32(fmt, 44), le32(fmt, 48)),
            n => return Err(bad("inode", format!("format of {n} bytes"))),
        };
        let (fields, blkno, len, boffset) = (
            fields.ok_or_else(short)?,
            blkno.ok_or_else(short)?,
            len.ok_or_else(short)?,
            boffset.ok_or_else(short)? as usize,
        );
        let len16 = u16::try_from(len).map_err(|_| bad("inode", "ilf_len too large"))?;
        if self.cancelled(blkno, len16) {
            self.stats.skipped += 1;
            return Ok(());
        }
        let sb = &self.ctx.sb;
        let isize = usize::from(sb.inodesize);
        let mut buf = self.read_buf(blkno, u64::from(len))?;
        let dip = buf
            .get_mut(boffset..boffset.saturating_add(isize))
            .ok_or_else(|| bad("inode", format!("ilf_boffset {boffset} past the buffer")))?;
        let ld = item
            .regions
            .get(1)
            .ok_or_else(|| bad("inode", "no log dinode"))?;
        let ino = le64(fmt, if fmt.len() == 56 { 16 } else { 12 }).unwrap_or(0);
        if be16(dip, 0) != Some(DINODE_MAGIC) || le16(ld, 0) != Some(DINODE_MAGIC) {
            return Err(bad("inode", format!("inode {ino}: no inode magic")));
        }
        let v3 = sb.crc();
        let core = if v3 { 176 } else { 100 };
        if ld.len() > if v3 { 176 } else { 96 } || ld.len() < 96 {
            return Err(bad(
                "inode",
                format!("inode {ino}: log dinode of {} bytes", ld.len()),
            ));
        }
        if v3 {
            let disk = be64(dip, 112).unwrap_or(0);
            if disk != 0 && disk != NULL_LSN && disk > lsn {
                self.stats.skipped += 1;
                return Ok(());
            }
        } else {
            let (logged, disk) = (le16(ld, 30).unwrap_or(0), be16(dip, 30).unwrap_or(0));
            if logged < disk && !(disk == 0xffff && logged < 0x7fff) {
                self.stats.skipped += 1;
                return Ok(());
            }
        }
        let forkoff = usize::from(*ld.get(82).unwrap_or(&0)) * 8;
        if forkoff > isize - core {
            return Err(bad(
                "inode",
                format!("inode {ino}: di_forkoff past the inode"),
            ));
        }
        log_dinode_to_disk(ld, dip, lsn, v3);
        let lit = isize - core;
        let dsize = if forkoff != 0 { forkoff } else { lit };
        let mut next = 2;
        if fields & ILOG_DFORK != 0 {
            let src = item
                .regions
                .get(next)
                .ok_or_else(|| bad("inode", "no data fork"))?;
            next += 1;
            let dst = &mut dip[core..core + dsize];
            copy_fork(fields & ILOG_DFORK == ILOG_DBROOT, src, dst, v3)
                .map_err(|m| bad("inode", format!("inode {ino} data fork: {m}")))?;
        }
        if fields & ILOG_AFORK != 0 {
            let src = item
                .regions
                .get(next)
                .ok_or_else(|| bad("inode", "no attribute fork"))?;
            if forkoff == 0 {
                return Err(bad(
                    "inode",
                    format!("inode {ino}: attribute fork without di_forkoff"),
                ));
            }
            let dst = &mut dip[core + forkoff..isize];
            copy_fork(fields & ILOG_AFORK == ILOG_ABROOT, src, dst, v3)
                .map_err(|m| bad("inode", format!("inode {ino} attribute fork: {m}")))?;
        }
        if v3 {
            set_crc(dip, 100);
        }
        self.write_buf(blkno, &buf)?;
        self.stats.inodes += 1;
        Ok(())
    }
}

/// Copy a logged fork into the inode: inline data and extents as they are, a btree root from
/// its in-core form (a long-format btree block header, keys, pointers at the in-core maximum)
/// to the on-disk one (level, numrecs, keys, pointers at the on-disk maximum).
fn copy_fork(broot: bool, src: &[u8], dst: &mut [u8], v5: bool) -> Result<(), String> {
    if !broot {
        let d = dst
            .get_mut(..src.len())
            .ok_or_else(|| format!("{} bytes logged for a fork of {}", src.len(), 0))?;
        d.copy_from_slice(src);
        return Ok(());
    }
    let hdr = if v5 { 72 } else { 24 };
    if src.len() < hdr || dst.len() < 4 {
        return Err("btree root too short".into());
    }
    let rmax = (src.len() - hdr) / 16;
    let dmax = (dst.len() - 4) / 16;
    let numrecs = usize::from(be16(src, 6).unwrap_or(0));
    if numrecs > rmax || numrecs > dmax {
        return Err(format!("btree root of {numrecs} records"));
    }
    dst[0..4].copy_from_slice(&src[4..8]);
    dst[4..4 + 8 * numrecs].copy_from_slice(&src[hdr..hdr + 8 * numrecs]);
    let (fp, tp) = (hdr + 8 * rmax, 4 + 8 * dmax);
    dst[tp..tp + 8 * numrecs].copy_from_slice(&src[fp..fp + 8 * numrecs]);
    Ok(())
}

/// The host-order (little-endian) log dinode `ld` written into the on-disk core `dip`, as
/// `xfs_log_dinode_to_disk` does (di_next_unlinked and di_crc are not the log's).
fn log_dinode_to_disk(ld: &[u8], dip: &mut [u8], lsn: u64, v3: bool) {
    let swap = |dip: &mut [u8], off: usize, w: usize| {
        if let (Some(s), Some(d)) = (ld.get(off..off + w), dip.get_mut(off..off + w)) {
            d.copy_from_slice(s);
            d.reverse();
        }
    };
    let flags2 = if v3 { le64(ld, 120).unwrap_or(0) } else { 0 };
    let ts = |dip: &mut [u8], off: usize| {
        if flags2 & DIFLAG2_BIGTIME != 0 {
            swap(dip, off, 8);
        } else {
            swap(dip, off, 4);
            swap(dip, off + 4, 4);
        }
    };
    for (off, w) in [
        (0, 2),
        (2, 2),
        (4, 1),
        (5, 1),
        (6, 2),
        (8, 4),
        (12, 4),
        (16, 4),
        (20, 2),
        (22, 2),
        (56, 8),
        (64, 8),
        (72, 4),
        (82, 1),
        (83, 1),
        (84, 4),
        (88, 2),
        (90, 2),
        (92, 4),
    ] {
        swap(dip, off, w);
    }
    for off in [32, 40, 48] {
        ts(dip, off);
    }
    if v3 {
        swap(dip, 104, 8);
        ts(dip, 144);
        swap(dip, 120, 8);
        swap(dip, 128, 4);
        swap(dip, 152, 8);
        dip[112..120].copy_from_slice(&lsn.to_be_bytes());
        dip[132..144].fill(0);
        if let Some(u) = ld.get(160..176) {
            dip[160..176].copy_from_slice(u);
        }
    } else {
        swap(dip, 30, 2);
    }
    if flags2 & DIFLAG2_NREXT64 != 0 {
        swap(dip, 24, 8);
        swap(dip, 76, 4);
        swap(dip, 80, 2);
    } else {
        if v3 {
            dip[24..32].fill(0);
        }
        swap(dip, 76, 4);
        swap(dip, 80, 2);
    }
}

/// A buffer item's format: flags, length and start (512-byte blocks), dirty map.
struct BufFmt {
    flags: u16,
    len: u16,
    blkno: u64,
    map: Vec<u32>,
}

impl BufFmt {
    fn parse(item: &Item) -> Result<BufFmt, FsError> {
        let r = item.regions.first().map_or(&[][..], Vec::as_slice);
        let short = || bad("buffer", "format too short");
        let map_size = le32(r, 16).ok_or_else(short)? as usize;
        if map_size > BLF_MAX_MAP {
            return Err(bad("buffer", format!("blf_map_size = {map_size}")));
        }
        let map = (0..map_size)
            .map(|i| le32(r, 20 + 4 * i).ok_or_else(short))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BufFmt {
            flags: le16(r, 4).ok_or_else(short)?,
            len: le16(r, 6).ok_or_else(short)?,
            blkno: le64(r, 8).ok_or_else(short)?,
            map,
        })
    }

    fn bit(&self, n: usize) -> bool {
        self.map.get(n / 32).is_some_and(|w| w >> (n % 32) & 1 != 0)
    }

    /// Copy the logged chunks into `buf` (`xlog_recover_do_reg_buffer`).
    fn apply(&self, item: &Item, buf: &mut [u8]) -> Result<(), FsError> {
        let mut logged = vec![false; buf.len()];
        self.apply_to(item, buf, &mut logged)
    }

    fn apply_to(&self, item: &Item, buf: &mut [u8], logged: &mut [bool]) -> Result<(), FsError> {
        let nbits = self.map.len() * 32;
        let (mut bit, mut i) = (0usize, 1usize);
        loop {
            let Some(start) = (bit..nbits).find(|&b| self.bit(b)) else {
                return Ok(());
            };
            let mut n = (start..nbits).take_while(|&b| self.bit(b)).count();
            let region = item.regions.get(i).ok_or_else(|| {
                bad(
                    "buffer",
                    format!("block {}: fewer regions than the map", self.blkno),
                )
            })?;
            n = n.min(region.len() / BLF_CHUNK);
            if n == 0 {
                return Err(bad("buffer", "a region shorter than a chunk"));
            }
            let (s, e) = (start * BLF_CHUNK, (start + n) * BLF_CHUNK);
            let dst = buf.get_mut(s..e).ok_or_else(|| {
                bad(
                    "buffer",
                    format!("block {}: chunk past the buffer", self.blkno),
                )
            })?;
            dst.copy_from_slice(&region[..n * BLF_CHUNK]);
            if let Some(l) = logged.get_mut(s..e) {
                l.fill(true);
            }
            i += 1;
            bit = start + n;
        }
    }
}

/// Replay the internal log in memory: `None` when there is nothing to replay (clean, zeroed or
/// external), else the replayed blocks (by 512-byte block of the volume) and what was done.
/// Two passes over the records, as the kernel's: the cancel records first, then the items.
#[allow(clippy::type_complexity)]
pub(crate) fn replay(
    ctx: &Ctx,
) -> Result<Option<(std::collections::BTreeMap<u64, Box<[u8]>>, LogReplay)>, FsError> {
    let Some(area) = LogArea::of(ctx)? else {
        return Ok(None);
    };
    let reader = LogReader { ctx, area };
    let Ends::Dirty { head, tail, torn } = reader.find_ends()? else {
        return Ok(None);
    };
    let mut r = Replayer::new(ctx)?;
    r.stats.torn = torn.map(|(blk, n)| {
        format!(
            "the log record at block {blk} fails its CRC (a write torn by the snapshot, or damage): it and the {} record(s) after it were not replayed, as the kernel truncates the log there",
            n.saturating_sub(1)
        )
    });
    for_each_committed(&reader, tail, head, &mut |t| r.pass1(&t))?;
    for_each_committed(&reader, tail, head, &mut |t| r.pass2(&t))?;
    r.finish();
    Ok(Some((r.blocks, r.stats)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(regions: Vec<Vec<u8>>) -> Item {
        let mut it = Item::default();
        it.regions = regions;
        it
    }

    /// A buffer format: flags, 8 blocks at `blkno`, the given map words.
    fn buf_fmt(flags: u16, blkno: u64, map: &[u32]) -> Vec<u8> {
        let mut f = vec![0u8; 20 + 4 * map.len()];
        f[0..2].copy_from_slice(&LI_BUF.to_le_bytes());
        f[4..6].copy_from_slice(&flags.to_le_bytes());
        f[6..8].copy_from_slice(&8u16.to_le_bytes());
        f[8..16].copy_from_slice(&blkno.to_le_bytes());
        f[16..20].copy_from_slice(&(map.len() as u32).to_le_bytes());
        for (i, w) in map.iter().enumerate() {
            f[20 + 4 * i..24 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        f
    }

    #[test]
    fn logged_chunks_land_where_the_map_says_even_when_a_run_spans_regions() {
        // Chunks 1..4 dirty (one run of 3), logged as two regions of 1 and 2 chunks; chunk 33.
        let fmt = buf_fmt(0, 16, &[0b1110, 0b10]);
        let it = item(vec![fmt, vec![1; 128], vec![2; 256], vec![3; 128]]);
        let f = BufFmt::parse(&it).unwrap();
        let mut buf = vec![0u8; 4096 + 512];
        f.apply(&it, &mut buf).unwrap();
        assert!(buf[..128].iter().all(|&b| b == 0));
        assert!(buf[128..256].iter().all(|&b| b == 1));
        assert!(buf[256..512].iter().all(|&b| b == 2));
        assert!(buf[512..33 * 128].iter().all(|&b| b == 0));
        assert!(buf[33 * 128..34 * 128].iter().all(|&b| b == 3));
        // A map naming more chunks than there are regions is an error, not a panic.
        let it = item(vec![buf_fmt(0, 16, &[0b101]), vec![1; 128]]);
        assert!(BufFmt::parse(&it).unwrap().apply(&it, &mut buf).is_err());
        // A chunk past the buffer.
        let it = item(vec![
            buf_fmt(0, 16, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            vec![1; 128],
        ]);
        assert!(BufFmt::parse(&it).unwrap().apply(&it, &mut buf).is_err());
        // A map larger than any buffer's.
        assert!(BufFmt::parse(&item(vec![buf_fmt(0, 0, &[0; 18])])).is_err());
    }

    #[test]
    fn the_log_dinode_is_converted_to_disk_order() {
        let mut ld = vec![0u8; 176];
        ld[0..2].copy_from_slice(&DINODE_MAGIC.to_le_bytes());
        ld[2..4].copy_from_slice(&0o100644u16.to_le_bytes());
        ld[4] = 3;
        ld[5] = 2;
        ld[8..12].copy_from_slice(&1000u32.to_le_bytes());
        ld[40..44].copy_from_slice(&1_700_000_000i32.to_le_bytes()); // legacy mtime seconds
        ld[56..64].copy_from_slice(&12345u64.to_le_bytes());
        ld[76..80].copy_from_slice(&3u32.to_le_bytes());
        ld[96..100].copy_from_slice(&7u32.to_le_bytes()); // di_next_unlinked: not the log's
        ld[152..160].copy_from_slice(&99u64.to_le_bytes());
        let mut dip = vec![0xaau8; 512];
        dip[96..100].copy_from_slice(&u32::MAX.to_be_bytes());
        log_dinode_to_disk(&ld, &mut dip, 0x0000_0002_0000_0010, true);
        assert_eq!(be16(&dip, 0), Some(DINODE_MAGIC));
        assert_eq!(be16(&dip, 2), Some(0o100644));
        assert_eq!(dip[4..6], [3, 2]);
        assert_eq!(be32(&dip, 8), Some(1000));
        assert_eq!(be32(&dip, 40), Some(1_700_000_000));
        assert_eq!(be64(&dip, 56), Some(12345));
        assert_eq!(be32(&dip, 76), Some(3));
        assert_eq!(be32(&dip, 96), Some(u32::MAX));
        assert_eq!(be64(&dip, 112), Some(0x0000_0002_0000_0010));
        assert_eq!(be64(&dip, 152), Some(99));
        assert_eq!(be64(&dip, 24), Some(0));
    }

    #[test]
    fn a_btree_root_is_converted_from_its_in_core_form() {
        // In-core v5 root of 2 records in a 72 + 4 * 16 byte block: keys at 72, pointers at
        // 72 + 4 * 8; the on-disk fork of 68 bytes holds 4 records: pointers at 4 + 4 * 8.
        let mut src = vec![0u8; 72 + 64];
        src[4..6].copy_from_slice(&1u16.to_be_bytes());
        src[6..8].copy_from_slice(&2u16.to_be_bytes());
        src[72..80].copy_from_slice(&10u64.to_be_bytes());
        src[80..88].copy_from_slice(&20u64.to_be_bytes());
        src[104..112].copy_from_slice(&1000u64.to_be_bytes());
        src[112..120].copy_from_slice(&2000u64.to_be_bytes());
        let mut dst = vec![0u8; 68];
        copy_fork(true, &src, &mut dst, true).unwrap();
        assert_eq!(be16(&dst, 0), Some(1));
        assert_eq!(be16(&dst, 2), Some(2));
        assert_eq!((be64(&dst, 4), be64(&dst, 12)), (Some(10), Some(20)));
        assert_eq!((be64(&dst, 36), be64(&dst, 44)), (Some(1000), Some(2000)));
        // More records than fit: an error.
        src[6..8].copy_from_slice(&9u16.to_be_bytes());
        assert!(copy_fork(true, &src, &mut dst, true).is_err());
        // Inline data longer than the fork: an error.
        assert!(copy_fork(false, &[0; 69], &mut dst, true).is_err());
    }
}
