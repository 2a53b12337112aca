//! tar archives as a filesystem (`amiscan::fs::tarfs`): the input is the archive. Seeds are
//! real archives from GNU tar (ustar, GNU long names and sparse headers, pax with sparse 1.0,
//! hard and symbolic links). Indexing it, listing every directory, reading every file to its
//! end (also seeking, as a zip inside is read) and every link target must give entries or
//! errors, never a panic, a hang or unbounded allocation.
#![no_main]
use amiscan::fs::tarfs::TarFs;
use amiscan::fs::{EntryKind, Filesystem};
use amiscan::source::MemSource;
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
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
        let Ok(entries) = r.list_dir(&d) else { continue };
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
});
