//! XFS: a base image made by the real `mkfs.xfs` (path in `AMISCAN_FUZZ_XFS_BASE`, built by
//! `fuzz/run.sh`) with the input applied as patches to its non-zero sectors (the metadata), so
//! mutations land on superblocks, AG headers, inodes, directories and extent maps. Opening,
//! walking every directory, reading every file and the files the unreached sweep finds
//! (`amiscan::fuzzing::read_fs`) must give entries or errors, never a panic, a hang or
//! unbounded allocation.
//!
//! An input whose first byte is odd fuzzes the log instead: the rest of it is written over the
//! start of the internal log (record headers, cycle data, op headers, transactions, log items),
//! so opening replays whatever log it makes.
#![no_main]
use amiscan::fs::probe::FsKind;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Base {
    image: Vec<u8>,
    /// Offsets of the sectors that are not all zero.
    sectors: Vec<usize>,
}

fn base() -> &'static Base {
    static B: OnceLock<Base> = OnceLock::new();
    B.get_or_init(|| {
        let path = std::env::var("AMISCAN_FUZZ_XFS_BASE")
            .expect("set AMISCAN_FUZZ_XFS_BASE to an XFS image (fuzz/run.sh does)");
        let image = std::fs::read(path).expect("base image readable");
        let sectors = (0..image.len() / 512)
            .map(|i| i * 512)
            .filter(|&o| image[o..o + 512].iter().any(|&b| b != 0))
            .collect();
        Base { image, sectors }
    })
}

fuzz_target!(|data: &[u8]| {
    let b = base();
    let mut img = b.image.clone();
    if let Some((&mode, log)) = data.split_first()
        && mode & 1 == 1
    {
        if let Some(at) = log_offset(&img) {
            let n = log.len().min(img.len().saturating_sub(at));
            img[at..at + n].copy_from_slice(&log[..n]);
        }
        amiscan::fuzzing::read_fs(FsKind::Xfs, img);
        return;
    }
    // Patches: [sector index: u16][offset in sector: u16][len: u8][bytes].
    let mut rest = data;
    while rest.len() >= 5 {
        let sector = usize::from(u16::from_le_bytes([rest[0], rest[1]])) % b.sectors.len();
        let off = usize::from(u16::from_le_bytes([rest[2], rest[3]])) % 512;
        let len = usize::from(rest[4]).min(rest.len() - 5).min(512 - off);
        let at = b.sectors[sector] + off;
        img[at..at + len].copy_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
    }
    amiscan::fuzzing::read_fs(FsKind::Xfs, img);
});

/// Byte offset of the internal log: sb_logstart (AG-encoded) in bytes.
fn log_offset(img: &[u8]) -> Option<usize> {
    let be32 = |o: usize| Some(u32::from_be_bytes(img.get(o..o + 4)?.try_into().ok()?));
    let blocksize = u64::from(be32(4)?);
    let logstart = u64::from_be_bytes(img.get(48..56)?.try_into().ok()?);
    let agblocks = u64::from(be32(84)?);
    let agblklog = u32::from(*img.get(124)?);
    let agno = logstart.checked_shr(agblklog)?;
    let agbno = logstart & ((1u64 << agblklog.min(63)) - 1);
    usize::try_from((agno * agblocks + agbno).checked_mul(blocksize)?).ok()
}
