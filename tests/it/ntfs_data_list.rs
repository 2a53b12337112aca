//! A file whose `$DATA` run list outgrew its MFT record, on a volume ntfs-3g wrote
//! (testdata/ntfs/data-attrlist.sh): the tail of the run list is in `$DATA` extents in other
//! records, named by the base record's `$ATTRIBUTE_LIST` (`ntfsinfo -F` shows them). The `ntfs`
//! crate connects extents by instance number, which differs between records, so it stopped at
//! the first extent (an error on the file; a compressed one was refused); the reader assembles
//! the run list from the list itself. Uncompressed and LZNT1-compressed: the file read by the
//! reader has ntfs-3g's SHA-256 (`ntfscat`), its tail (the key pair) read by offset too, and the
//! scan finds the key at the file's path, complete, exit 1.

use crate::common::{rule_paths, scan_json_unchecked, sh, testdata};
use amiscan::fs::probe::FsKind;
use amiscan::source::{FileSource, MemSource, SharedSource};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

/// Build the volume in `mode`, and check the file at `path` read whole, by offset, and scanned.
fn spread_file_is_read_whole(mode: &str, path: &str) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let script = testdata().join("ntfs/data-attrlist.sh");
    sh(&format!("bash '{}' . {mode}", script.display()), dir.path());
    // ntfs-3g did split it: an attribute list, and $DATA extents in two records or more.
    let info = std::fs::read_to_string(dir.path().join("info.txt")).unwrap();
    assert!(info.contains("$ATTRIBUTE_LIST"), "{info}");
    let records: BTreeSet<&str> = info
        .lines()
        .filter_map(|l| l.strip_prefix("Dumping attribute $DATA (0x80) from mft record "))
        .collect();
    assert!(records.len() >= 2, "$DATA in {records:?}:\n{info}");
    let truth = crate::ntfs::sums(&dir.path().join("truth.txt"));
    let pair = std::fs::read(dir.path().join("pair")).unwrap();

    let img: SharedSource = Arc::new(FileSource::open(&dir.path().join("vol.img")).unwrap());
    let fs = amiscan::fs::open(FsKind::Ntfs, img).unwrap();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    let e = walk
        .files
        .iter()
        .find(|e| e.display_path() == path)
        .expect("the file is listed");
    let reader = fs.reader().unwrap();
    let mut whole = Vec::new();
    reader
        .open_file(e)
        .unwrap()
        .read_to_end(&mut whole)
        .unwrap();
    assert_eq!(
        e.size,
        whole.len() as u64,
        "the listed size is the stream's"
    );
    assert_eq!(
        hex::encode(Sha256::digest(&whole)),
        truth[path],
        "amiscan's read (left) and ntfscat's (right)"
    );
    assert!(whole.ends_with(&pair));
    // By offset: the key pair at the end, past the first extent.
    let mut s = reader.open_seekable(e).unwrap().unwrap();
    s.seek(SeekFrom::End(-(pair.len() as i64))).unwrap();
    let mut tail = Vec::new();
    s.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, pair);

    let (code, t) = scan_json_unchecked(&dir.path().join("vol.img"), &[]);
    assert_eq!(t["complete"], true, "{t:#}");
    assert!(
        rule_paths(&t, "-").contains(&("aws-access-key-pair".to_string(), path.to_string())),
        "the key at the end of the file is found at its path\n{t:#}"
    );
    assert_eq!(code, 1, "{t:#}");
    let secret = String::from_utf8_lossy(&pair);
    let secret = secret
        .lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key = "))
        .unwrap();
    assert!(!t.to_string().contains(secret), "the secret is printed");
}

#[test]
fn a_data_run_list_spread_over_extension_records_is_read_whole() {
    spread_file_is_read_whole("plain", "/big/fragmented.dat");
}

/// The same volume with its list broken (testdata/ntfs/data-attrlist-break.py): an extent one
/// cluster off (a gap), an extent in a record of another file, the same extent twice. Each is
/// an error on the file, the scan incomplete (exit 3), never a panic or part of the file read as
/// if it were all of it.
#[test]
fn a_broken_data_attribute_list_is_an_error_on_the_file() {
    const PATH: &str = "/big/fragmented.dat";
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let script = testdata().join("ntfs/data-attrlist.sh");
    sh(&format!("bash '{}' . plain", script.display()), dir.path());
    let info = std::fs::read_to_string(dir.path().join("info.txt")).unwrap();
    let base: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("Dumping Inode "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let brk = testdata().join("ntfs/data-attrlist-break.py");
    for mode in ["vcn", "foreign", "repeat"] {
        sh(
            &format!(
                "cp --sparse=always vol.img {mode}.img && python3 '{}' {mode}.img {base} {mode}",
                brk.display()
            ),
            dir.path(),
        );
        let img = dir.path().join(format!("{mode}.img"));
        let src: SharedSource = Arc::new(FileSource::open(&img).unwrap());
        let fs = amiscan::fs::open(FsKind::Ntfs, src).unwrap();
        let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
        let reader = fs.reader().unwrap();
        // Listed and not read, or not listed (the crate's own walk of the list fails): an error
        // naming the file either way.
        let read = walk
            .files
            .iter()
            .find(|e| e.display_path() == PATH)
            .map(|e| reader.open_file(e).map(|_| ()));
        match read {
            Some(r) => {
                let err = r.err().unwrap_or_else(|| panic!("{mode}: the file opened"));
                assert!(err.to_string().contains("attribute list"), "{mode}: {err}");
            }
            None => assert!(
                walk.errors
                    .iter()
                    .any(|e| e.path.as_deref() == Some(PATH) || e.message.contains(PATH)),
                "{mode}: {:?}",
                walk.errors
            ),
        }
        let (code, t) = scan_json_unchecked(&img, &[]);
        assert_eq!(t["complete"], false, "{mode}: {t:#}");
        assert_eq!(code, 3, "{mode}: {t:#}");
        let errors = t["volumes"][0]["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["path"] == PATH
                    || e["message"].as_str().is_some_and(|m| m.contains(PATH))),
            "{mode}: {errors:#?}"
        );
        std::fs::remove_file(&img).unwrap();
    }

    // Random bit flips in the list's entries: nothing panics or hangs, and every read of the
    // file that succeeds gives ntfs-3g's bytes (never part of them as if they were all).
    let img = std::fs::read(dir.path().join("vol.img")).unwrap();
    let truth = crate::ntfs::sums(&dir.path().join("truth.txt"))[PATH].clone();
    let mut head = vec![0x10, 0, 0, 0, 0x20, 0, 0, 0x1a];
    head.extend_from_slice(&[0; 8]);
    head.extend_from_slice(&base.to_le_bytes()[..6]);
    let at = img
        .windows(head.len())
        .position(|w| w == head.as_slice())
        .expect("the attribute list");
    let mut len = 0usize;
    while let Some(e) = img.get(at + len..at + len + 6) {
        let ty = u32::from_le_bytes(e[..4].try_into().unwrap());
        let n = usize::from(u16::from_le_bytes([e[4], e[5]]));
        if ty == 0 || ty == u32::MAX || n < 26 {
            break;
        }
        len += n;
    }
    assert!(len >= 4 * 32, "{len} bytes of list");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut read = 0;
    for i in 0..150 {
        let mut b = img.clone();
        for _ in 0..1 + i % 3 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            b[at + (x >> 33) as usize % len] ^= 1 << ((x >> 20) % 8);
        }
        let src: SharedSource = Arc::new(MemSource::new(b, "mutated"));
        let Ok(fs) = amiscan::fs::open(FsKind::Ntfs, src) else {
            continue;
        };
        let reader = fs.reader().unwrap();
        let Ok(list) = reader.list_dir(b"/big") else {
            continue;
        };
        for e in list.into_iter().flatten() {
            if e.display_path() != PATH {
                continue;
            }
            let Ok(mut r) = reader.open_file(&e) else {
                continue;
            };
            let mut h = Sha256::new();
            if std::io::copy(&mut r, &mut h).is_ok() {
                assert_eq!(hex::encode(h.finalize()), truth, "mutation {i}");
                read += 1;
            }
        }
    }
    // Flips in fields the read does not use (padding, the other attributes' entries) leave it
    // readable.
    assert!(read > 0);
}

#[test]
fn an_lznt1_stream_spread_over_extension_records_is_read_whole() {
    spread_file_is_read_whole("compressed", "/packed/fragmented.log");
}
