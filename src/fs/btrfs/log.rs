//! The log tree: what was fsynced after the last commit of a volume that was not unmounted
//! cleanly (a snapshot of a running instance). The superblock's `log_root` is a root tree of
//! logs, one `ROOT_ITEM` per subvolume with fsynced inodes (key `TREE_LOG`, `ROOT_ITEM`,
//! subvolume id); each log tree holds the logged inodes' `INODE_ITEM`, `INODE_REF` and
//! `EXTENT_DATA` items. The log is not replayed into the trees (renames, deletions and
//! directory changes are not applied): each logged regular file is read from its logged
//! extents, as its own entry, so what was fsynced is scanned; the volume says the log was not
//! replayed.

use super::items::{Inode, RootItem};
use super::tree::Trees;
use super::{EXTENT_DATA_KEY, INODE_ITEM_KEY, Key, ROOT_ITEM_KEY, le16};
use std::collections::BTreeMap;

/// The objectid of log roots in the log root tree (`BTRFS_TREE_LOG_OBJECTID`, -6).
const TREE_LOG: u64 = u64::MAX - 5;
const INODE_REF_KEY: u8 = 12;
/// Most items read from all the log trees together (the log root tree's own count apart: it
/// holds one item per subvolume log), most log trees, most logged files.
const MAX_ITEMS: usize = 1 << 20;
const MAX_TREES: usize = 1 << 12;
const MAX_FILES: usize = 1 << 16;

/// One regular file the log holds.
pub struct LogFile {
    /// The subvolume it belongs to.
    pub subvol: u64,
    pub objectid: u64,
    pub inode: Inode,
    /// Its name in a directory, from its first `INODE_REF`.
    pub name: Option<Vec<u8>>,
    /// Its `EXTENT_DATA` items, as in an fs tree.
    pub extents: Vec<(Key, Vec<u8>)>,
    /// The log tree it is in (root block, level): it holds the checksums of its extents.
    pub tree: (u64, u8),
}

/// What a log tree says of one inode: its `INODE_ITEM`, a name, its extents.
type Logged = (Option<Inode>, Option<Vec<u8>>, Vec<(Key, Vec<u8>)>);

/// What the log holds: its files, how many log trees, and what could not be read.
#[derive(Default)]
pub struct Log {
    pub files: Vec<LogFile>,
    pub trees: usize,
    pub errors: Vec<String>,
}

/// Read the log rooted at `root` (level `level`).
pub fn read(trees: &Trees, root: u64, level: u8) -> Log {
    let mut log = Log::default();
    let all = |t: &Trees, r: u64, l: u8, limit: usize| {
        t.range(
            r,
            l,
            Key::new(0, 0, 0),
            Key::new(u64::MAX, u8::MAX, u64::MAX),
            limit,
        )
    };
    // Hostile log roots may all point to one big tree: the budget is for all of them.
    let mut budget = MAX_ITEMS;
    let top = match all(trees, root, level, MAX_TREES.saturating_mul(2)) {
        Ok(f) => f,
        Err(e) => {
            log.errors.push(e.to_string());
            return log;
        }
    };
    log.errors
        .extend(top.errors.iter().map(ToString::to_string));
    for (key, data) in top
        .items
        .iter()
        .filter(|(k, _)| k.objectid == TREE_LOG && k.ty == ROOT_ITEM_KEY)
        .take(MAX_TREES)
    {
        let subvol = key.offset;
        let Some(r) = RootItem::parse(data).filter(|r| r.level < super::tree::MAX_LEVEL) else {
            log.errors
                .push(format!("log of subvolume {subvol}: malformed ROOT_ITEM"));
            continue;
        };
        if budget == 0 {
            log.errors.push(format!(
                "log of subvolume {subvol}: more than {MAX_ITEMS} items in the logs, not read"
            ));
            continue;
        }
        log.trees += 1;
        let found = match all(trees, r.bytenr, r.level, budget) {
            Ok(f) => f,
            Err(e) => {
                log.errors.push(format!("log of subvolume {subvol}: {e}"));
                continue;
            }
        };
        log.errors.extend(
            found
                .errors
                .iter()
                .map(|e| format!("log of subvolume {subvol}: {e}")),
        );
        budget = budget.saturating_sub(found.items.len());
        let mut inodes: BTreeMap<u64, Logged> = BTreeMap::new();
        for (k, d) in found.items {
            let slot = inodes.entry(k.objectid).or_default();
            match k.ty {
                INODE_ITEM_KEY => slot.0 = Inode::parse(&d),
                // index (8), name length (2), name.
                INODE_REF_KEY if slot.1.is_none() => {
                    slot.1 = le16(&d, 8)
                        .and_then(|n| d.get(10..10usize.saturating_add(usize::from(n))))
                        .map(<[u8]>::to_vec);
                }
                EXTENT_DATA_KEY => slot.2.push((k, d)),
                _ => {}
            }
        }
        for (objectid, (inode, name, extents)) in inodes {
            let Some(inode) = inode.filter(|i| i.mode & 0o170_000 == 0o100_000) else {
                continue;
            };
            if log.files.len() >= MAX_FILES {
                log.errors.push(format!(
                    "more than {MAX_FILES} logged files: the rest not read"
                ));
                return log;
            }
            log.files.push(LogFile {
                subvol,
                objectid,
                inode,
                name,
                extents,
                tree: (r.bytenr, r.level),
            });
        }
    }
    log
}
