//! Streaming reads of regular files (extents in order, holes and unwritten extents as zeros, at
//! most 1 MiB per read; a seek forward skips extents, a seek back walks the map again from the
//! start) and symlink targets (inline, or remote blocks with an `XSLM` header on v5).

use super::bmap::{self, Extent, Extents};
use super::inode::{FMT_LOCAL, Inode};
use super::{Ctx, be32, be64, corrupt, crc_ok};
use crate::fs::FsError;
use std::io::{Read, Seek, SeekFrom};

/// Largest single read from the volume.
const CHUNK: usize = 1 << 20;
/// Longest symlink target XFS allows.
const SYMLINK_MAXLEN: u64 = 1024;
const XSLM: u32 = 0x5853_4c4d;
const SLM_HDR: usize = 56;

/// A `Read` over a regular file's content.
pub(crate) struct FileReader<'a> {
    ctx: &'a Ctx,
    /// The inode, to walk its block map again after a seek back.
    inode: Inode,
    ino: u64,
    size: u64,
    pos: u64,
    /// `None` for a file with no block map (an empty local-format file).
    extents: Option<Extents<'a>>,
    current: Option<Extent>,
}

impl<'a> FileReader<'a> {
    pub(crate) fn new(ctx: &'a Ctx, inode: Inode) -> Result<FileReader<'a>, FsError> {
        inode.check_not_realtime()?;
        let extents = Self::extents(ctx, &inode)?;
        Ok(FileReader {
            ctx,
            ino: inode.ino,
            size: inode.size,
            pos: 0,
            extents,
            current: None,
            inode,
        })
    }

    fn extents(ctx: &'a Ctx, inode: &Inode) -> Result<Option<Extents<'a>>, FsError> {
        if inode.format == FMT_LOCAL {
            Ok(None)
        } else {
            Extents::new(ctx, inode).map(Some)
        }
    }

    /// Fill `buf` (already capped to the file end and `CHUNK`) from file byte `self.pos`.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, FsError> {
        let sb = &self.ctx.sb;
        let block = self.pos >> sb.blocklog;
        // Skip extents that end before the current block.
        while self
            .current
            .is_none_or(|e| e.startoff + e.blockcount <= block)
        {
            match self
                .extents
                .as_mut()
                .map(Extents::next_extent)
                .transpose()?
                .flatten()
            {
                Some(e) => self.current = Some(e),
                None => {
                    // Past the last extent: the rest of the file is a hole.
                    self.current = None;
                    buf.fill(0);
                    return Ok(buf.len());
                }
            }
        }
        let Some(ext) = self.current else {
            return Ok(0);
        };
        // Extents end below 2^54 blocks; saturate rather than overflow past u64 on 64 KiB blocks.
        let bs = u64::from(sb.blocksize);
        let ext_start = ext.startoff.saturating_mul(bs);
        let ext_end = (ext.startoff + ext.blockcount).saturating_mul(bs);
        if self.pos < ext_start {
            let n = usize::try_from(ext_start - self.pos)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            buf[..n].fill(0);
            return Ok(n);
        }
        let n = usize::try_from(ext_end - self.pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let dst = &mut buf[..n];
        if ext.unwritten {
            dst.fill(0);
            return Ok(n);
        }
        let here = || format!("xfs inode {} data at file offset {}", self.ino, self.pos);
        let disk = sb
            .fsb_offset(ext.startblock)
            .and_then(|o| o.checked_add(self.pos - ext_start))
            .ok_or_else(|| corrupt(here(), "extent outside the filesystem"))?;
        self.ctx.read(disk, dst, &here)?;
        Ok(n)
    }
}

/// The byte ranges of a regular file that hold data (written extents), within its size; `None`
/// for a file without a block map (its few bytes sit in the inode).
pub(crate) fn data_ranges(
    ctx: &Ctx,
    inode: &Inode,
) -> Result<Option<Vec<std::ops::Range<u64>>>, FsError> {
    if inode.format == FMT_LOCAL {
        return Ok(None);
    }
    let bs = u64::from(ctx.sb.blocksize);
    let mut out = Vec::new();
    let mut extents = Extents::new(ctx, inode)?;
    while let Some(e) = extents.next_extent()? {
        if e.unwritten {
            continue;
        }
        let start = e.startoff.saturating_mul(bs).min(inode.size);
        let end = e
            .startoff
            .saturating_add(e.blockcount)
            .saturating_mul(bs)
            .min(inode.size);
        if start < end {
            out.push(start..end);
        }
    }
    Ok(Some(out))
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.size.saturating_sub(self.pos);
        let want = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buf.len())
            .min(CHUNK);
        if want == 0 {
            return Ok(0);
        }
        let n = self.fill(&mut buf[..want]).map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| std::io::Error::other("seek before the start of the file"))?;
        let block = pos >> self.ctx.sb.blocklog;
        // The extents are walked forward only: back before the current one (or back once the
        // walk went past the last), start the walk again.
        let behind = match self.current {
            Some(e) => block < e.startoff,
            None => pos < self.pos,
        };
        if behind {
            self.extents = Self::extents(self.ctx, &self.inode).map_err(std::io::Error::other)?;
            self.current = None;
        }
        self.pos = pos;
        Ok(pos)
    }
}

/// The target of symlink `inode`: inline in the fork, or in up to a few remote blocks.
pub(crate) fn read_symlink(ctx: &Ctx, inode: &Inode) -> Result<Vec<u8>, FsError> {
    let here = || format!("xfs inode {} symlink", inode.ino);
    if inode.size == 0 || inode.size > SYMLINK_MAXLEN {
        return Err(corrupt(
            here(),
            format!("di_size = {}: not in 1..={SYMLINK_MAXLEN}", inode.size),
        ));
    }
    let len = inode.size as usize;
    if inode.format == FMT_LOCAL {
        return inode
            .fork
            .get(..len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| corrupt(here(), "inline target longer than the fork"));
    }
    let sb = &ctx.sb;
    let mut out = Vec::with_capacity(len);
    for ext in bmap::collect(ctx, inode, 16)? {
        for i in 0..ext.blockcount.min(16) {
            if out.len() >= len {
                break;
            }
            let here_blk = || format!("xfs inode {} symlink block {}", inode.ino, ext.startoff + i);
            let off = sb
                .fsb_offset(ext.startblock + i)
                .ok_or_else(|| corrupt(here_blk(), "block outside the filesystem"))?;
            let buf = ctx.read_vec(off, sb.blocksize as usize, &here_blk)?;
            let data = if sb.crc() {
                remote_data(&buf, inode.ino, out.len()).map_err(|m| corrupt(here_blk(), m))?
            } else {
                &buf[..]
            };
            let take = data.len().min(len - out.len());
            out.extend_from_slice(&data[..take]);
        }
    }
    if out.len() != len {
        return Err(corrupt(
            here(),
            format!("target has {} of {len} bytes", out.len()),
        ));
    }
    Ok(out)
}

/// The data of a v5 remote symlink block after checking its `XSLM` header.
fn remote_data(buf: &[u8], ino: u64, offset: usize) -> Result<&[u8], String> {
    let magic = be32(buf, 0).unwrap_or(0);
    if magic != XSLM {
        return Err(format!("magic = {magic:#010x}, expected XSLM"));
    }
    if !crc_ok(buf, 12) {
        return Err("sl_crc mismatch".into());
    }
    let owner = be64(buf, 32).unwrap_or(0);
    if owner != ino {
        return Err(format!(
            "sl_owner = {owner}: block belongs to another inode"
        ));
    }
    let got_off = be32(buf, 4).unwrap_or(0) as usize;
    if got_off != offset {
        return Err(format!("sl_offset = {got_off}, expected {offset}"));
    }
    let bytes = be32(buf, 8).unwrap_or(0) as usize;
    buf.get(SLM_HDR..SLM_HDR.saturating_add(bytes))
        .ok_or_else(|| format!("sl_bytes = {bytes}: past the end of the block"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::xfs::set_crc;

    fn slm(data: &[u8], ino: u64, offset: u32) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(&XSLM.to_be_bytes());
        b[4..8].copy_from_slice(&offset.to_be_bytes());
        b[8..12].copy_from_slice(&(data.len() as u32).to_be_bytes());
        b[32..40].copy_from_slice(&ino.to_be_bytes());
        b[SLM_HDR..SLM_HDR + data.len()].copy_from_slice(data);
        set_crc(&mut b, 12);
        b
    }

    #[test]
    fn remote_symlink_block_checks() {
        let b = slm(b"/a/long/target", 140, 0);
        assert_eq!(remote_data(&b, 140, 0).unwrap(), b"/a/long/target");
        assert_eq!(
            remote_data(&b, 141, 0).unwrap_err(),
            "sl_owner = 140: block belongs to another inode"
        );
        assert_eq!(
            remote_data(&b, 140, 5).unwrap_err(),
            "sl_offset = 0, expected 5"
        );
        let mut bad = b.clone();
        bad[60] ^= 1;
        assert_eq!(remote_data(&bad, 140, 0).unwrap_err(), "sl_crc mismatch");
        let mut bad = b;
        bad[8..12].copy_from_slice(&5000u32.to_be_bytes());
        set_crc(&mut bad, 12);
        assert_eq!(
            remote_data(&bad, 140, 0).unwrap_err(),
            "sl_bytes = 5000: past the end of the block"
        );
    }
}
