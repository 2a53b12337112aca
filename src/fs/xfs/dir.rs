//! Directories, every form: shortform (entries inline in the inode), block (one `XDB3`/`XD2B`
//! block holding entries and their hash index), and leaf/node/B+tree-mapped directories (data
//! blocks `XDD3`/`XD2D` below 32 GiB of directory address space; the leaf, node and free-index
//! blocks above are only hash indexes and are skipped).

use super::bmap::{self, Extent};
use super::inode::{FMT_BTREE, FMT_EXTENTS, FMT_LOCAL, Inode};
use super::{Ctx, be16, be32, be64, corrupt, crc_ok};
use crate::fs::FsError;

const XDB3: u32 = 0x5844_4233;
const XDD3: u32 = 0x5844_4433;
const XD2B: u32 = 0x5844_3242;
const XD2D: u32 = 0x5844_3244;
const HDR_V4: usize = 16;
const HDR_V5: usize = 64;
const CRC_OFF: usize = 4;
/// Directory data lives below this byte offset; leaf/node/free blocks above it.
const LEAF_OFFSET: u64 = 32 << 30;
/// Most directory bytes read for one directory.
const MAX_DIR_BYTES: u64 = 4 << 30;
const FREE_TAG: u16 = 0xffff;

/// Callback for each entry: `(name, inode number, ftype)`; return `false` to stop.
pub(crate) type Visit<'v> = dyn FnMut(&[u8], u64, u8) -> bool + 'v;

/// Call `visit` for each entry of directory `dir` except `.` and `..`.
pub(crate) fn for_each_entry(ctx: &Ctx, dir: &Inode, visit: &mut Visit<'_>) -> Result<(), FsError> {
    match dir.format {
        FMT_LOCAL => shortform(dir, ctx.sb.ftype, visit),
        FMT_EXTENTS | FMT_BTREE => blocks(ctx, dir, visit),
        other => Err(corrupt(
            format!("xfs inode {}", dir.ino),
            format!("directory in di_format {other}"),
        )),
    }
}

/// Shortform: `count`, `i8count`, parent, then `namelen, offset[2], name, [ftype], ino` entries.
/// Inode numbers are 8 bytes wide when `i8count` is non-zero, else 4.
fn shortform(dir: &Inode, ftype: bool, visit: &mut Visit<'_>) -> Result<(), FsError> {
    let here = || format!("xfs inode {} shortform directory", dir.ino);
    let len = usize::try_from(dir.size).unwrap_or(usize::MAX);
    let b = dir.fork.get(..len).ok_or_else(|| {
        corrupt(
            here(),
            format!(
                "di_size = {} exceeds the {}-byte fork",
                dir.size,
                dir.fork.len()
            ),
        )
    })?;
    let short = || corrupt(here(), "entry runs past di_size");
    let count = *b.first().ok_or_else(short)?;
    let inosize = if *b.get(1).ok_or_else(short)? != 0 {
        8
    } else {
        4
    };
    let mut pos = 2 + inosize;
    for _ in 0..count {
        let namelen = usize::from(*b.get(pos).ok_or_else(short)?);
        if namelen == 0 {
            return Err(corrupt(here(), format!("zero-length name at byte {pos}")));
        }
        let name = b.get(pos + 3..pos + 3 + namelen).ok_or_else(short)?;
        pos += 3 + namelen;
        let ft = if ftype {
            pos += 1;
            *b.get(pos - 1).ok_or_else(short)?
        } else {
            0
        };
        let ino = if inosize == 8 {
            be64(b, pos)
        } else {
            be32(b, pos).map(u64::from)
        }
        .ok_or_else(short)?;
        pos += inosize;
        if !visit(name, ino, ft) {
            break;
        }
    }
    Ok(())
}

/// Block, leaf, node and B+tree directories: walk the data blocks in order.
fn blocks(ctx: &Ctx, dir: &Inode, visit: &mut Visit<'_>) -> Result<(), FsError> {
    let sb = &ctx.sb;
    let fsb_per_db = u64::from(sb.dirblksize >> sb.blocklog);
    let extents = bmap::collect(ctx, dir, LEAF_OFFSET >> sb.blocklog)?;
    let mut done: Option<u64> = None;
    let mut bytes = 0u64;
    for ext in extents.iter().filter(|e| !e.unwritten) {
        let first = ext.startoff / fsb_per_db;
        let last = (ext.startoff + ext.blockcount - 1) / fsb_per_db;
        for db in first..=last {
            if done.is_some_and(|d| db <= d) {
                continue;
            }
            done = Some(db);
            bytes += u64::from(sb.dirblksize);
            if bytes > MAX_DIR_BYTES {
                return Err(corrupt(
                    format!("xfs inode {}", dir.ino),
                    "directory larger than 4 GiB",
                ));
            }
            let buf = read_dir_block(ctx, dir.ino, &extents, db, fsb_per_db)?;
            if !data_block(&buf, ctx, dir.ino, db, visit)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Assemble directory block `db` from the file blocks that map it.
fn read_dir_block(
    ctx: &Ctx,
    ino: u64,
    extents: &[Extent],
    db: u64,
    fsb_per_db: u64,
) -> Result<Vec<u8>, FsError> {
    let sb = &ctx.sb;
    let here = || format!("xfs inode {ino} directory block {db}");
    let mut buf = vec![0u8; sb.dirblksize as usize];
    for (j, chunk) in buf.chunks_mut(sb.blocksize as usize).enumerate() {
        let lblk = db * fsb_per_db + j as u64;
        let idx = extents.partition_point(|e| e.startoff + e.blockcount <= lblk);
        let ext = extents
            .get(idx)
            .filter(|e| e.startoff <= lblk && !e.unwritten)
            .ok_or_else(|| corrupt(here(), "directory block partly unmapped"))?;
        let off = sb
            .fsb_offset(ext.startblock + (lblk - ext.startoff))
            .ok_or_else(|| corrupt(here(), "block outside the filesystem"))?;
        ctx.read(off, chunk, &here)?;
    }
    Ok(buf)
}

/// Visit the entries of one data block (`XDB3`/`XD2B` block form or `XDD3`/`XD2D`). Returns
/// `false` when the visitor asked to stop.
fn data_block(
    buf: &[u8],
    ctx: &Ctx,
    ino: u64,
    db: u64,
    visit: &mut Visit<'_>,
) -> Result<bool, FsError> {
    let here = || format!("xfs inode {ino} directory block {db}");
    let v5 = ctx.sb.crc();
    let magic = be32(buf, 0).unwrap_or(0);
    let (block_form, hdr) = match (magic, v5) {
        (XDB3, true) => (true, HDR_V5),
        (XDD3, true) => (false, HDR_V5),
        (XD2B, false) => (true, HDR_V4),
        (XD2D, false) => (false, HDR_V4),
        _ => {
            return Err(corrupt(
                here(),
                format!("magic = {magic:#010x}: not a directory data block"),
            ));
        }
    };
    if v5 {
        if !crc_ok(buf, CRC_OFF) {
            return Err(corrupt(here(), "crc mismatch"));
        }
        let owner = be64(buf, 40).unwrap_or(0);
        if owner != ino {
            return Err(corrupt(
                here(),
                format!("owner = {owner}: block belongs to another inode"),
            ));
        }
    }
    let end = if block_form {
        // Tail: leaf entry count and stale count; the leaf entries (8 bytes each) precede it.
        let count = u64::from(be32(buf, buf.len() - 8).unwrap_or(u32::MAX));
        let leaf_bytes = count.saturating_mul(8).saturating_add(8);
        usize::try_from(leaf_bytes)
            .ok()
            .and_then(|l| buf.len().checked_sub(l))
            .filter(|&e| e >= hdr)
            .ok_or_else(|| {
                corrupt(
                    here(),
                    format!("block tail count = {count}: larger than the block"),
                )
            })?
    } else {
        buf.len()
    };
    let mut pos = hdr;
    while pos < end {
        let bad = |why: &str| corrupt(here(), format!("entry at byte {pos}: {why}"));
        if be16(buf, pos) == Some(FREE_TAG) {
            let len = usize::from(be16(buf, pos + 2).unwrap_or(0));
            if len < 8 || len % 8 != 0 || pos + len > end {
                return Err(bad(&format!("free space length {len} invalid")));
            }
            pos += len;
            continue;
        }
        let child = be64(buf, pos).ok_or_else(|| bad("truncated"))?;
        let namelen = usize::from(*buf.get(pos + 8).ok_or_else(|| bad("truncated"))?);
        if namelen == 0 {
            return Err(bad("zero-length name"));
        }
        let ft_len = usize::from(ctx.sb.ftype);
        let size = (8 + 1 + namelen + ft_len + 2).div_ceil(8) * 8;
        if pos + size > end {
            return Err(bad("runs past the end of the data"));
        }
        let name = buf
            .get(pos + 9..pos + 9 + namelen)
            .ok_or_else(|| bad("truncated"))?;
        let ft = if ctx.sb.ftype {
            buf.get(pos + 9 + namelen).copied().unwrap_or(0)
        } else {
            0
        };
        pos += size;
        if name == b"." || name == b".." {
            continue;
        }
        if !visit(name, child, ft) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::xfs::inode::tests::v3_inode;
    use crate::fs::xfs::set_crc;
    use crate::fs::xfs::superblock::{Superblock, tests::v5_sb};
    use crate::fs::xfs::tests::Mem;
    use std::sync::Arc;

    fn ctx() -> Ctx {
        Ctx {
            src: Arc::new(Mem(vec![0; 4096])),
            sb: Superblock::parse(&v5_sb()).unwrap(),
        }
    }

    fn list(ctx: &Ctx, dir: &Inode) -> Result<Vec<(String, u64, u8)>, FsError> {
        let mut out = Vec::new();
        for_each_entry(ctx, dir, &mut |n, i, f| {
            out.push((String::from_utf8_lossy(n).into_owned(), i, f));
            true
        })?;
        Ok(out)
    }

    fn sf_dir(fork: &[u8]) -> Inode {
        let mut raw = v3_inode(128, 0o040755, FMT_LOCAL, fork);
        raw[56..64].copy_from_slice(&(fork.len() as u64).to_be_bytes());
        set_crc(&mut raw, 100);
        Inode::parse(&raw, 128, true).unwrap()
    }

    #[test]
    fn shortform_with_4_and_8_byte_inode_numbers() {
        // count 2, i8count 0, parent 128; "a" ftype 1 -> 131; "bc" ftype 2 -> 132.
        let fork = [
            2, 0, 0, 0, 0, 128, 1, 0, 0x60, b'a', 1, 0, 0, 0, 131, 2, 0, 0x70, b'b', b'c', 2, 0, 0,
            0, 132,
        ];
        let got = list(&ctx(), &sf_dir(&fork)).unwrap();
        assert_eq!(got, vec![("a".into(), 131, 1), ("bc".into(), 132, 2)]);
        let fork = [
            1, 1, 0, 0, 0, 0, 0, 0, 0, 128, 1, 0, 0x60, b'z', 1, 0, 0, 0, 1, 0, 0, 0, 5,
        ];
        let got = list(&ctx(), &sf_dir(&fork)).unwrap();
        assert_eq!(got, vec![("z".into(), (1 << 32) | 5, 1)]);
    }

    #[test]
    fn shortform_truncated_entry_is_corrupt() {
        let fork = [
            2, 0, 0, 0, 0, 128, 1, 0, 0x60, b'a', 1, 0, 0, 0, 131, 9, 0, 0x70, b'b',
        ];
        assert_eq!(
            list(&ctx(), &sf_dir(&fork)).unwrap_err().to_string(),
            "xfs inode 128 shortform directory: corrupt: entry runs past di_size"
        );
        let fork = [1, 0, 0, 0, 0, 128, 0, 0, 0x60];
        assert_eq!(
            list(&ctx(), &sf_dir(&fork)).unwrap_err().to_string(),
            "xfs inode 128 shortform directory: corrupt: zero-length name at byte 6"
        );
    }

    /// An `XDD3` data block of 4096 bytes owned by inode 128 with entries `.`, `name` -> 200.
    fn data(name: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(&XDD3.to_be_bytes());
        b[40..48].copy_from_slice(&128u64.to_be_bytes());
        let mut pos = HDR_V5;
        for (n, ino) in [(&b"."[..], 128u64), (name, 200)] {
            b[pos..pos + 8].copy_from_slice(&ino.to_be_bytes());
            b[pos + 8] = n.len() as u8;
            b[pos + 9..pos + 9 + n.len()].copy_from_slice(n);
            b[pos + 9 + n.len()] = 1;
            pos += (12 + n.len()).div_ceil(8) * 8;
        }
        b[pos..pos + 2].copy_from_slice(&FREE_TAG.to_be_bytes());
        b[pos + 2..pos + 4].copy_from_slice(&((4096 - pos) as u16).to_be_bytes());
        set_crc(&mut b, CRC_OFF);
        b
    }

    fn visit_block(buf: &[u8]) -> Result<Vec<Vec<u8>>, FsError> {
        let mut out = Vec::new();
        data_block(buf, &ctx(), 128, 0, &mut |n, _, _| {
            out.push(n.to_vec());
            true
        })?;
        Ok(out)
    }

    #[test]
    fn data_block_entries_and_errors() {
        assert_eq!(
            visit_block(&data(b"hello")).unwrap(),
            vec![b"hello".to_vec()]
        );
        let mut b = data(b"hello");
        b[100] ^= 1;
        assert_eq!(
            visit_block(&b).unwrap_err().to_string(),
            "xfs inode 128 directory block 0: corrupt: crc mismatch"
        );
        let mut b = data(b"hello");
        b[106..108].copy_from_slice(&4001u16.to_be_bytes()); // free space past the block end
        set_crc(&mut b, CRC_OFF);
        assert_eq!(
            visit_block(&b).unwrap_err().to_string(),
            "xfs inode 128 directory block 0: corrupt: entry at byte 104: free space length 4001 invalid"
        );
        let mut b = data(b"hello");
        b[0] = 0;
        assert_eq!(
            visit_block(&b).unwrap_err().to_string(),
            "xfs inode 128 directory block 0: corrupt: magic = 0x00444433: not a directory data block"
        );
        let mut b = data(b"hello");
        b[47] = 1;
        set_crc(&mut b, CRC_OFF);
        assert!(
            visit_block(&b)
                .unwrap_err()
                .to_string()
                .contains("owner = 1: block belongs to another inode")
        );
    }
}
