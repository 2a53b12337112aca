//! ext2/3/4: base images made by the real `mke2fs` (and `debugfs`), listed one per line in the
//! file named by `AMISCAN_FUZZ_EXT4_BASES` (built by `fuzz/build-ext4-bases.sh`, which
//! `fuzz/run.sh` runs): extents with an index level, an htree directory, symlinks, a block-map
//! ext2, inline data, and journals holding committed transactions that need recovery. The first
//! input byte picks the base; the rest are patches to its non-zero sectors (superblock, group
//! descriptors, inode tables, directory, extent, indirect and journal blocks). Opening the
//! filesystem, listing every directory, reading every file to its end and every link target
//! through the public `amiscan::fs` API must give entries or errors, never a panic, a hang or
//! unbounded allocation.
#![no_main]
use amiscan::fs::probe::FsKind;
use amiscan::fs::{Entry, EntryKind};
use amiscan::source::{SharedSource, Source, SourceError};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, OnceLock};

struct Base {
    image: Vec<u8>,
    /// Offsets of the sectors that are not all zero.
    sectors: Vec<usize>,
}

fn bases() -> &'static [Base] {
    static B: OnceLock<Vec<Base>> = OnceLock::new();
    B.get_or_init(|| {
        let list = std::env::var("AMISCAN_FUZZ_EXT4_BASES")
            .expect("set AMISCAN_FUZZ_EXT4_BASES to a list of ext4 images (fuzz/run.sh does)");
        let list = std::fs::read_to_string(list).expect("base list readable");
        let out: Vec<Base> = list
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|path| {
                let image = std::fs::read(path.trim()).expect("base image readable");
                let sectors = image
                    .chunks_exact(512)
                    .enumerate()
                    .filter(|(_, s)| s.iter().any(|&b| b != 0))
                    .map(|(i, _)| i * 512)
                    .collect();
                Base { image, sectors }
            })
            .collect();
        assert!(!out.is_empty(), "no base image listed");
        out
    })
}

/// A base image with patched sectors laid over it (copying the whole image for every input
/// would cost more than the walk).
struct Patched {
    base: &'static [u8],
    /// Patched sectors by byte offset.
    sectors: HashMap<usize, [u8; 512]>,
}

impl Source for Patched {
    fn len(&self) -> u64 {
        self.base.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let start = usize::try_from(offset).ok();
        let Some(src) = start.and_then(|s| self.base.get(s..s.checked_add(buf.len())?)) else {
            return Err(SourceError::OutOfBounds {
                what: "fuzz".into(),
                offset,
                len: buf.len() as u64,
                size: self.len(),
            });
        };
        buf.copy_from_slice(src);
        let start = start.unwrap_or(0);
        for (&at, sector) in &self.sectors {
            // Overlap of [at, at + 512) with [start, start + len).
            let lo = at.max(start);
            let hi = (at + 512).min(start + buf.len());
            if lo < hi {
                buf[lo - start..hi - start].copy_from_slice(&sector[lo - at..hi - at]);
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "fuzz".into()
    }
}

/// Bytes read from files in one run, at most.
const READ_BUDGET: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let all = bases();
    let b = &all[usize::from(pick) % all.len()];
    let mut patched = Patched {
        base: &b.image,
        sectors: HashMap::new(),
    };
    // Patches: [sector index: u16][offset in sector: u16][len: u8][bytes].
    while rest.len() >= 5 {
        let sector =
            b.sectors[usize::from(u16::from_le_bytes([rest[0], rest[1]])) % b.sectors.len()];
        let off = usize::from(u16::from_le_bytes([rest[2], rest[3]])) % 512;
        let len = usize::from(rest[4]).min(rest.len() - 5).min(512 - off);
        let s = patched.sectors.entry(sector).or_insert_with(|| {
            let mut s = [0u8; 512];
            s.copy_from_slice(&b.image[sector..sector + 512]);
            s
        });
        s[off..off + len].copy_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
    }
    let src: SharedSource = Arc::new(patched);
    let Ok(fs) = amiscan::fs::open(FsKind::Ext4, src) else {
        return;
    };
    let Ok(reader) = fs.reader() else { return };
    let mut budget = READ_BUDGET;
    let mut buf = vec![0u8; 64 * 1024];
    let mut read_all = |entry: &Entry, budget: &mut usize| {
        if let Ok(mut r) = reader.open_file(entry) {
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || n > *budget {
                    break;
                }
                *budget -= n;
            }
        }
    };
    // The walk itself (directory loops, depth) is bounded here; everything the reader does
    // for one call must be bounded by the library.
    let mut stack = vec![(b"/".to_vec(), 0usize)];
    let mut listed = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        listed += 1;
        if listed > 2000 {
            break;
        }
        let Ok(entries) = reader.list_dir(&dir) else {
            continue;
        };
        for e in entries.into_iter().flatten().take(10_000) {
            match e.kind {
                EntryKind::Dir if depth < 32 => stack.push((e.path.clone(), depth + 1)),
                EntryKind::File => {
                    read_all(&e, &mut budget);
                    // The same file found by path (no inode number): resolves the parents.
                    if budget > 0 && listed < 50 {
                        read_all(&Entry { ino: 0, ..e }, &mut budget);
                    }
                }
                EntryKind::Symlink => {
                    let _ = reader.read_link(&e);
                    let _ = reader.read_link(&Entry { ino: 0, ..e });
                }
                _ => {}
            }
        }
    }
});
