//! Tree blocks and B-tree walks. A tree block is read through the chunk map, its checksum
//! verified (crc32c and sha256; xxhash64 and blake2b volumes are read unverified and the report
//! says so), its header checked against what pointed to it (address, filesystem id, level,
//! generation), and then its items or key pointers are bounds-checked before use. A `DUP`
//! block whose first copy is damaged is read from the second, with a warning.
//!
//! Walks are bounded: the level must drop by one at each step down (so a pointer back up the
//! tree cannot loop), a query reads each block once (a second pointer to one is an error) and
//! at most [`MAX_BLOCKS`] blocks, and returns at most the
//! items its caller allows. A child that cannot be read becomes an error in the result and
//! the rest of the range is still returned.

use super::chunk::ChunkMap;
pub use super::csum::{MAX_LEVEL, csum_matches};
use super::superblock::Superblock;
use super::{Key, corrupt, le32, le64};
use crate::fs::FsError;
use crate::source::SharedSource;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Size of a tree block header.
const HEADER: usize = 0x65;
/// Size of a leaf item header and of a node key pointer.
const ITEM: usize = 25;
const KEY_PTR: usize = 33;
/// Most tree blocks one query reads.
pub const MAX_BLOCKS: usize = 1 << 18;
/// What one query has spent: blocks it may still read, and the blocks it has reached.
struct Walk {
    budget: usize,
    seen: HashSet<u64>,
}

/// Tree blocks kept in the shared cache before it is emptied.
const CACHE_BLOCKS: usize = 2048;

/// The items a range query found, and the subtrees it could not read.
#[derive(Default)]
pub struct Found {
    pub items: Vec<(Key, Vec<u8>)>,
    pub errors: Vec<FsError>,
}

/// The chunk map, the superblock and a cache of tree blocks: what every tree read needs.
pub struct Trees {
    /// Every device at hand by devid (this one included).
    pub devices: std::collections::BTreeMap<u64, SharedSource>,
    pub sb: Superblock,
    pub chunks: ChunkMap,
    /// The checksum tree's root block and level (`None`: the root tree has none).
    pub csum_root: Option<(u64, u8)>,
    /// Data sectors of files with checksums read without one (no checksum item found).
    unsummed: AtomicU64,
    cache: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
    warnings: Mutex<Vec<String>>,
}

/// A tree block that passed its checks.
pub struct Block {
    pub level: u8,
    pub bytes: Arc<Vec<u8>>,
    nritems: usize,
}

impl Trees {
    pub fn new(
        devices: std::collections::BTreeMap<u64, SharedSource>,
        sb: Superblock,
        chunks: ChunkMap,
    ) -> Self {
        Trees {
            devices,
            sb,
            chunks,
            csum_root: None,
            unsummed: AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The source of device `devid`.
    pub(super) fn device(&self, devid: u64) -> Result<&SharedSource, FsError> {
        self.devices
            .get(&devid)
            .ok_or_else(|| super::incompatible(format!("btrfs device {devid}"), "not at hand"))
    }

    /// Warnings gathered so far (a damaged `DUP` copy read from its mirror, data sectors read
    /// without a checksum).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self
            .warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let n = self.unsummed.load(Ordering::Relaxed);
        if n > 0 {
            w.push(format!(
                "btrfs: {n} data sectors of files with checksums have no checksum item and were read unverified"
            ));
        }
        w
    }

    /// Count `n` data sectors read without a checksum.
    pub(super) fn count_unsummed(&self, n: u64) {
        self.unsummed.fetch_add(n, Ordering::Relaxed);
    }

    /// Read `len` bytes at logical `logical` from the first copy that can be read, never across
    /// a chunk's end (the caller splits).
    pub fn read_logical(&self, logical: u64, buf: &mut [u8]) -> Result<(), FsError> {
        let (copies, left) = self.chunks.map(logical, buf.len() as u64)?;
        if (buf.len() as u64) > left {
            return Err(corrupt(
                format!("btrfs logical address {logical}"),
                format!("{} bytes run past the end of their chunk", buf.len()),
            ));
        }
        let mut last = None;
        for (dev, phys) in copies {
            match self.device(dev)?.read_at(phys, buf) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(super::io(&format!("btrfs data (devid {dev})"), phys, e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            corrupt(
                format!("btrfs logical address {logical}"),
                "chunk has no copy",
            )
        }))
    }

    /// Read and check the tree block at `logical`, expected at `level` (and, when the parent
    /// says, written in transaction `generation`).
    pub fn block(
        &self,
        logical: u64,
        level: u8,
        generation: Option<u64>,
    ) -> Result<Block, FsError> {
        if let Some(b) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&logical)
            .cloned()
        {
            return self.check(logical, b, level, generation);
        }
        let ctx = || format!("btrfs tree block {logical}");
        let n = self.sb.nodesize as usize;
        let (copies, left) = self
            .chunks
            .map(logical, n as u64)
            .map_err(|e| e.with_block(logical))?;
        if left < n as u64 {
            return Err(corrupt(ctx(), "runs past the end of its chunk").with_block(logical));
        }
        let mut first_err: Option<FsError> = None;
        for (i, (dev, phys)) in copies.iter().enumerate() {
            let mut buf = vec![0u8; n];
            let r = self
                .device(*dev)
                .and_then(|d| {
                    d.read_at(*phys, &mut buf)
                        .map_err(|e| super::io(&ctx(), *phys, e))
                })
                .and_then(|()| self.verify(logical, &buf).map_err(|e| e.with_offset(*phys)));
            match r {
                Ok(()) => {
                    if let Some(e) = &first_err {
                        self.warn(format!("{e}; read copy {} of the block instead", i + 1));
                    }
                    let b = Arc::new(buf);
                    let mut c = self
                        .cache
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if c.len() >= CACHE_BLOCKS {
                        c.clear();
                    }
                    c.insert(logical, b.clone());
                    drop(c);
                    return self.check(logical, b, level, generation);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err
            .unwrap_or_else(|| corrupt(ctx(), "no copy to read"))
            .with_block(logical))
    }

    /// Add a warning (at most 1,000, each once).
    pub(super) fn warn(&self, w: String) {
        let mut ws = self
            .warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ws.len() < 1000 && !ws.contains(&w) {
            ws.push(w);
        }
    }

    /// What can be checked of a block from its bytes alone: checksum, address, filesystem id.
    fn verify(&self, logical: u64, b: &[u8]) -> Result<(), FsError> {
        let ctx = || format!("btrfs tree block {logical}");
        if let Some(false) = csum_matches(self.sb.csum, b) {
            return Err(corrupt(
                ctx(),
                format!("{} checksum mismatch", self.sb.csum.name()),
            ));
        }
        if le64(b, 0x30) != Some(logical) {
            return Err(corrupt(
                ctx(),
                format!(
                    "header names address {} (a stale or misplaced block)",
                    le64(b, 0x30).unwrap_or(0)
                ),
            ));
        }
        if b.get(0x20..0x30) != Some(self.sb.meta_fsid.as_slice()) {
            return Err(corrupt(
                ctx(),
                "belongs to another filesystem (fsid differs)",
            ));
        }
        Ok(())
    }

    /// What depends on who pointed to the block: level, generation, item count.
    fn check(
        &self,
        logical: u64,
        bytes: Arc<Vec<u8>>,
        level: u8,
        generation: Option<u64>,
    ) -> Result<Block, FsError> {
        let ctx = || format!("btrfs tree block {logical}");
        let b = &bytes;
        let got_level = *b.get(0x64).unwrap_or(&0xff);
        if got_level != level {
            return Err(
                corrupt(ctx(), format!("level {got_level}, expected {level}")).with_block(logical),
            );
        }
        if let Some(g) = generation
            && le64(b, 0x50) != Some(g)
        {
            return Err(corrupt(
                ctx(),
                format!(
                    "written in transaction {}, its parent expects {g} (a stale block)",
                    le64(b, 0x50).unwrap_or(0)
                ),
            )
            .with_block(logical));
        }
        let nritems = le32(b, 0x60).unwrap_or(0) as usize;
        let per = if level == 0 { ITEM } else { KEY_PTR };
        if nritems.saturating_mul(per) > b.len().saturating_sub(HEADER) {
            return Err(corrupt(ctx(), format!("{nritems} items do not fit")).with_block(logical));
        }
        Ok(Block {
            level,
            bytes,
            nritems,
        })
    }

    /// The item with the greatest key at or before `key` in the tree rooted at `root` (level
    /// `level`), found by one descent; `None` when every key is after it.
    pub fn last_at_or_before(
        &self,
        root: u64,
        level: u8,
        key: Key,
    ) -> Result<Option<(Key, Vec<u8>)>, FsError> {
        let mut logical = root;
        let mut b = self.block(root, level, None)?;
        // Each step reads a block one level down (`check` holds it to that level).
        loop {
            let body = b.bytes.get(HEADER..).unwrap_or(&[]);
            if b.level == 0 {
                let mut best = None;
                for i in 0..b.nritems {
                    match Key::parse(body, i * ITEM) {
                        Some(k) if k <= key => best = Some((i, k)),
                        _ => break,
                    }
                }
                let Some((i, k)) = best else {
                    return Ok(None);
                };
                let at = i * ITEM;
                let (Some(off), Some(size)) = (le32(body, at + 17), le32(body, at + 21)) else {
                    return Ok(None);
                };
                let (off, size) = (off as usize, size as usize);
                let data = off
                    .checked_add(size)
                    .and_then(|end| body.get(off..end))
                    .ok_or_else(|| {
                        corrupt(
                            format!("btrfs tree block {logical}"),
                            format!("item {i} data lies outside the block"),
                        )
                        .with_block(logical)
                    })?;
                return Ok(Some((k, data.to_vec())));
            }
            let mut best = None;
            for i in 0..b.nritems {
                let at = i * KEY_PTR;
                match (
                    Key::parse(body, at),
                    le64(body, at + 17),
                    le64(body, at + 25),
                ) {
                    (Some(k), Some(ptr), Some(g)) if k <= key => best = Some((ptr, g)),
                    _ => break,
                }
            }
            let Some((ptr, generation)) = best else {
                return Ok(None);
            };
            let child = self.block(ptr, b.level - 1, Some(generation))?;
            logical = ptr;
            b = child;
        }
    }

    /// Every item with a key in `min..=max` in the tree rooted at `root` (level `level`): at most
    /// `max_items` (more is an error in the result). The outer error means the root itself
    /// could not be read.
    pub fn range(
        &self,
        root: u64,
        level: u8,
        min: Key,
        max: Key,
        max_items: usize,
    ) -> Result<Found, FsError> {
        let mut found = Found::default();
        let mut walk = Walk {
            budget: MAX_BLOCKS,
            seen: HashSet::from([root]),
        };
        let top = self.block(root, level, None)?;
        self.walk(top, root, &min, &max, max_items, &mut walk, &mut found);
        Ok(found)
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        b: Block,
        logical: u64,
        min: &Key,
        max: &Key,
        max_items: usize,
        walk: &mut Walk,
        out: &mut Found,
    ) {
        let ctx = || format!("btrfs tree block {logical}");
        let body = b.bytes.get(HEADER..).unwrap_or(&[]);
        if b.level == 0 {
            let mut prev: Option<Key> = None;
            for i in 0..b.nritems {
                let at = i * ITEM;
                let Some(key) = Key::parse(body, at) else {
                    break;
                };
                if prev.is_some_and(|p| p >= key) {
                    out.errors
                        .push(corrupt(ctx(), "leaf keys out of order").with_block(logical));
                    return;
                }
                prev = Some(key);
                if key < *min {
                    continue;
                }
                if key > *max {
                    return;
                }
                let (Some(off), Some(size)) = (le32(body, at + 17), le32(body, at + 21)) else {
                    break;
                };
                let (off, size) = (off as usize, size as usize);
                let Some(data) = off.checked_add(size).and_then(|end| body.get(off..end)) else {
                    out.errors.push(
                        corrupt(ctx(), format!("item {i} data lies outside the block"))
                            .with_block(logical),
                    );
                    continue;
                };
                if out.items.len() >= max_items {
                    out.errors.push(corrupt(
                        ctx(),
                        format!("more than {max_items} items in one range: not read further"),
                    ));
                    walk.budget = 0;
                    return;
                }
                out.items.push((key, data.to_vec()));
            }
            return;
        }
        let mut ptrs = Vec::with_capacity(b.nritems);
        for i in 0..b.nritems {
            let at = i * KEY_PTR;
            let (Some(key), Some(ptr), Some(generation)) = (
                Key::parse(body, at),
                le64(body, at + 17),
                le64(body, at + 25),
            ) else {
                break;
            };
            if ptrs
                .last()
                .is_some_and(|(k, _, _): &(Key, u64, u64)| *k >= key)
            {
                out.errors
                    .push(corrupt(ctx(), "node keys out of order").with_block(logical));
                return;
            }
            ptrs.push((key, ptr, generation));
        }
        for (i, (key, ptr, generation)) in ptrs.iter().enumerate() {
            if *key > *max {
                return;
            }
            if let Some((next, _, _)) = ptrs.get(i + 1)
                && *next <= *min
            {
                continue;
            }
            if walk.budget == 0 {
                out.errors.push(corrupt(
                    ctx(),
                    format!("more than {MAX_BLOCKS} tree blocks for one query: not read further"),
                ));
                return;
            }
            // In one tree a block has one parent: a second pointer to it (a hostile node
            // pointing at the same child again and again) would repeat its items, and repeat
            // them again at every level above.
            if !walk.seen.insert(*ptr) {
                out.errors.push(
                    corrupt(
                        ctx(),
                        format!("points again at tree block {ptr}: not read twice"),
                    )
                    .with_block(logical),
                );
                continue;
            }
            walk.budget -= 1;
            match self.block(*ptr, b.level - 1, Some(*generation)) {
                Ok(child) => {
                    if child.nritems > 0
                        && Key::parse(child.bytes.get(HEADER..).unwrap_or(&[]), 0)
                            .is_some_and(|first| first < *key)
                    {
                        out.errors.push(
                            corrupt(
                                format!("btrfs tree block {ptr}"),
                                "first key is below the key that points to it",
                            )
                            .with_block(*ptr),
                        );
                        continue;
                    }
                    self.walk(child, *ptr, min, max, max_items, walk, out);
                }
                Err(e) => out.errors.push(e),
            }
            if walk.budget == 0 {
                return;
            }
        }
    }
}
