//! btrfs: a base image made by the real `mkfs.btrfs --rootdir` (path in
//! `AMISCAN_FUZZ_BTRFS_BASE`, built by `fuzz/run.sh`; metadata `single`, so each tree block has
//! one copy) with the input applied as patches to its tree blocks, whose crc32c is then made
//! valid again, so mutations reach the parsers behind the checksum: headers, keys, item
//! offsets, chunk items, root items, directory entries and file extents. Opening, walking every
//! directory, reading every file and the files the unreached sweep finds
//! (`amiscan::fuzzing::read_fs`, which tests/it/mutations.rs drives too) must give entries
//! or errors, never a panic, a hang or unbounded allocation.
#![no_main]
use amiscan::fs::probe::FsKind;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Base {
    image: Vec<u8>,
    node: usize,
    /// Offsets of the tree blocks (they carry the filesystem id at 0x20).
    blocks: Vec<usize>,
}

fn base() -> &'static Base {
    static B: OnceLock<Base> = OnceLock::new();
    B.get_or_init(|| {
        let path = std::env::var("AMISCAN_FUZZ_BTRFS_BASE")
            .expect("set AMISCAN_FUZZ_BTRFS_BASE to a btrfs image (fuzz/run.sh does)");
        let image = std::fs::read(path).expect("base image readable");
        let (blocks, node) = amiscan::fuzzing::btrfs_tree_blocks(&image);
        Base {
            image,
            node,
            blocks,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let b = base();
    let mut img = b.image.clone();
    // Patches: [block index: u8][offset in block: u16][len: u8][bytes].
    let mut rest = data;
    while rest.len() >= 4 && !b.blocks.is_empty() {
        let block = b.blocks[usize::from(rest[0]) % b.blocks.len()];
        let off = 0x20 + usize::from(u16::from_le_bytes([rest[1], rest[2]])) % (b.node - 0x20);
        let len = usize::from(rest[3]).min(rest.len() - 4).min(b.node - off);
        img[block + off..block + off + len].copy_from_slice(&rest[4..4 + len]);
        let c = crc32c(&img[block + 0x20..block + b.node]);
        img[block..block + 4].copy_from_slice(&c.to_le_bytes());
        rest = &rest[4 + len..];
    }
    amiscan::fuzzing::read_fs(FsKind::Btrfs, img);
});

/// CRC-32C (Castagnoli), bit by bit: fuzz inputs patch a few blocks.
fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
        }
    }
    !c
}
