//! The filesystems' fuzz entry points (here, above `scan`, as they walk a filesystem the way the
//! scan does), shared by the fuzz targets (`fuzz/fuzz_targets/`) and the
//! mutation test (`tests/it/mutations.rs`) so both drive the readers the same way. Errors are
//! expected; a panic, a hang or an unbounded allocation is a bug. Only with the `fuzzing`
//! feature: not part of the API.

use crate::fs::probe::FsKind;
use crate::fs::tarfs::TarFs;
use crate::fs::{EntryKind, Filesystem};
use crate::source::{MemSource, SharedSource};
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

/// `img` as a filesystem of `kind`: its open problems, a walk of every directory, every file
/// (the first 1000) read to its end or 16 MiB with its content key asked, and the files the
/// sweep for unreached inodes finds (the first 100) read likewise.
pub fn read_fs(kind: FsKind, img: Vec<u8>) {
    let src: SharedSource = Arc::new(MemSource::new(img, "fuzz"));
    let Ok(fs) = crate::fs::open(kind, src) else {
        return;
    };
    let _ = fs.open_problems();
    let Ok(reader) = fs.reader() else { return };
    let walk = crate::scan::walk::walk(fs.as_ref(), 2);
    let mut buf = vec![0u8; 64 * 1024];
    for f in walk.files.iter().take(1000) {
        let _ = reader.content_key(f);
        if let Ok(mut r) = reader.open_file(f) {
            let mut total = 0usize;
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || total > 16 << 20 {
                    break;
                }
                total += n;
            }
        }
    }
    let swept = fs.unreached(&|_| false).and_then(Result::ok);
    let deleted = fs.deleted().and_then(Result::ok);
    let all = swept
        .into_iter()
        .flatten()
        .chain(deleted.into_iter().flatten());
    for e in all.flatten().take(200) {
        if e.kind == EntryKind::File
            && let Ok(mut r) = reader.open_file(&e)
        {
            let _ = std::io::copy(&mut (&mut r).take(16 << 20), &mut std::io::sink());
        }
    }
}

/// The offsets of the tree blocks of the btrfs image `image` (a trusted base image: they carry
/// its filesystem id at 0x20), and its node size: where the btrfs fuzz target and the mutation
/// test patch it.
pub fn btrfs_tree_blocks(image: &[u8]) -> (Vec<usize>, usize) {
    let fsid = image[0x10020..0x10030].to_vec();
    let node = u32::from_le_bytes(image[0x10094..0x10098].try_into().unwrap()) as usize;
    let blocks = (0..image.len() / node)
        .map(|i| i * node)
        .filter(|&o| o != 0x10000 && image[o + 0x20..o + 0x30] == fsid[..])
        .collect();
    (blocks, node)
}

/// `data` as a tar archive: its open problems, every directory listed (10,000 at most), every
/// file read to its end or 16 MiB and seeked in (as a zip inside is read), every link target.
pub fn read_tar(data: &[u8]) {
    let fs = TarFs::open(Arc::new(MemSource::new(data.to_vec(), "fuzz.tar")));
    let _ = fs.open_problems();
    let Ok(r) = fs.reader() else { return };
    let mut dirs = vec![b"/".to_vec()];
    let mut listed = 0usize;
    while let Some(d) = dirs.pop() {
        listed += 1;
        if listed > 10_000 {
            break;
        }
        let Ok(entries) = r.list_dir(&d) else {
            continue;
        };
        for e in entries.into_iter().flatten() {
            match e.kind {
                EntryKind::Dir => dirs.push(e.path.clone()),
                EntryKind::File => {
                    if let Ok(mut f) = r.open_file(&e) {
                        let _ = std::io::copy(&mut (&mut f).take(1 << 24), &mut std::io::sink());
                    }
                    if let Ok(Some(mut f)) = r.open_seekable(&e) {
                        let _ = f.seek(SeekFrom::End(-3));
                        let _ = f.read(&mut [0u8; 16]);
                    }
                }
                EntryKind::Symlink => {
                    let _ = r.read_link(&e);
                }
                EntryKind::Special => {}
            }
        }
    }
}
