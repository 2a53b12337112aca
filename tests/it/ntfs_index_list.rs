//! A directory whose `$I30` `$INDEX_ALLOCATION` outgrew its MFT record, on a volume ntfs-3g
//! wrote (testdata/ntfs/index-attrlist.sh: 3,000 files of 1 KiB in /many, 512-byte clusters):
//! the tail of the allocation's run list is in `$INDEX_ALLOCATION` extents in other records,
//! named by the base record's `$ATTRIBUTE_LIST` (`ntfsinfo -F` shows them). The `ntfs` crate
//! read the allocation up to its first extent ("VCN … exceeds the boundaries"): the directory
//! was an error and its files were not scanned. The reader lists it itself
//! (src/fs/ntfs/index.rs): its listing is ntfs-3g's (`ntfsls`), and the key in one of its files
//! is found, the scan complete. Its blocks broken (a torn update sequence, entry lengths of 0
//! and past the block, no `INDX` signature): an error on the directory; bit flips in them:
//! never a panic.

use crate::common::{rule_paths, scan_json_unchecked, sh, testdata};
use amiscan::fs::probe::FsKind;
use amiscan::source::{FileSource, MemSource, SharedSource};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// Build the volume in `dir`; the record number of /many.
fn build(dir: &Path) -> u64 {
    let script = testdata().join("ntfs/index-attrlist.sh");
    sh(&format!("bash '{}' .", script.display()), dir);
    // ntfs-3g did split it: an attribute list, and $INDEX_ALLOCATION in two records or more.
    let info = std::fs::read_to_string(dir.join("info.txt")).unwrap();
    assert!(info.contains("Dumping attribute $ATTRIBUTE_LIST"), "{info}");
    let records: BTreeSet<&str> = info
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Dumping attribute $INDEX_ALLOCATION (0xa0) from mft record ")
        })
        .collect();
    assert!(
        records.len() >= 2,
        "$INDEX_ALLOCATION in {records:?}:\n{info}"
    );
    info.lines()
        .find_map(|l| l.strip_prefix("Dumping Inode "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

/// The names amiscan lists in /many of `src`.
fn listed(src: SharedSource) -> Result<BTreeSet<String>, String> {
    let fs = amiscan::fs::open(FsKind::Ntfs, src).map_err(|e| e.to_string())?;
    let reader = fs.reader().map_err(|e| e.to_string())?;
    let list = reader.list_dir(b"/many").map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            e.display_path().strip_prefix("/many/").unwrap().to_string()
        })
        .collect())
}

#[test]
fn a_directory_index_spread_over_extension_records_is_listed_whole() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    build(dir.path());
    let truth: BTreeSet<String> = std::fs::read_to_string(dir.path().join("ls.txt"))
        .unwrap()
        .lines()
        .filter(|l| *l != "." && *l != "..")
        .map(str::to_string)
        .collect();
    assert_eq!(truth.len(), 3000, "ntfsls lists {} names", truth.len());
    let img: SharedSource = Arc::new(FileSource::open(&dir.path().join("vol.img")).unwrap());
    let names = listed(img.clone()).unwrap();
    assert_eq!(
        names, truth,
        "amiscan's listing (left) and ntfsls's (right)"
    );
    let fs = amiscan::fs::open(FsKind::Ntfs, img).unwrap();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    assert_eq!(
        walk.files
            .iter()
            .filter(|e| e.display_path().starts_with("/many/"))
            .count(),
        3000
    );

    let (code, t) = scan_json_unchecked(&dir.path().join("vol.img"), &[]);
    assert_eq!(t["complete"], true, "{t:#}");
    assert!(
        rule_paths(&t, "-").contains(&(
            "aws-access-key-pair".to_string(),
            "/many/01234.bin".to_string()
        )),
        "the key in a file of the directory is found at its path\n{t:#}"
    );
    assert_eq!(code, 1, "{t:#}");
    let pair = std::fs::read_to_string(dir.path().join("pair")).unwrap();
    let secret = pair
        .lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key = "))
        .unwrap();
    assert!(!t.to_string().contains(secret), "the secret is printed");
}

/// The directory's index blocks broken: each an error naming the directory, the scan
/// incomplete; never a panic, never part of the directory listed as if it were all.
#[test]
fn a_broken_spread_directory_index_is_an_error_on_the_directory() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let many = build(dir.path());
    let img = std::fs::read(dir.path().join("vol.img")).unwrap();
    // /many's INDX blocks: 4 KiB, their first entry's key naming /many as its parent.
    let blocks: Vec<usize> = (0..img.len() / 512)
        .map(|s| s * 512)
        .filter(|&o| {
            img.get(o..o + 4) == Some(b"INDX")
                && img.get(o + 0x18..o + 0x1C).map(|h| {
                    let first = u32::from_le_bytes(h.try_into().unwrap()) as usize;
                    let key = o + 0x18 + first + 16;
                    u64::from_le_bytes(img[key..key + 8].try_into().unwrap()) & 0xFFFF_FFFF_FFFF
                }) == Some(many)
        })
        .collect();
    assert!(blocks.len() >= 20, "{} blocks of /many", blocks.len());
    // One past the first extent (the crate never read those), and the first.
    for (n, &at) in [blocks[blocks.len() - 1], blocks[0]].iter().enumerate() {
        let first = u32::from_le_bytes(img[at + 0x18..at + 0x1C].try_into().unwrap()) as usize;
        let entry = at + 0x18 + first;
        for mode in ["torn", "zero-length", "overrun", "signature"] {
            let mut b = img.clone();
            match mode {
                "torn" => b[at + 1022] ^= 0xFF,
                "zero-length" => b[entry + 8..entry + 10].copy_from_slice(&0u16.to_le_bytes()),
                "overrun" => b[entry + 8..entry + 10].copy_from_slice(&0xFFF0u16.to_le_bytes()),
                _ => b[at..at + 4].copy_from_slice(b"JUNK"),
            }
            let err = listed(Arc::new(MemSource::new(b.clone(), "broken")))
                .err()
                .unwrap_or_else(|| panic!("{mode} in block {n}: listed"));
            assert!(err.contains("/many"), "{mode} in block {n}: {err}");
            if n == 0 && mode == "torn" {
                let path = dir.path().join("broken.img");
                std::fs::write(&path, &b).unwrap();
                let (code, t) = scan_json_unchecked(&path, &[]);
                assert_eq!(t["complete"], false, "{t:#}");
                let errors = t["volumes"][0]["errors"].as_array().unwrap();
                assert!(
                    errors.iter().any(|e| e["path"] == "/many"
                        && e["message"].as_str().is_some_and(|m| m.contains("torn"))),
                    "{errors:#?}"
                );
                // Incomplete (3), unless a file of the directory was found by the record
                // sweep with the key in it (1: the first matching row wins).
                let found = !t["findings"].as_array().unwrap().is_empty();
                assert_eq!(code, if found { 1 } else { 3 }, "{t:#}");
                std::fs::remove_file(&path).unwrap();
            }
        }
    }

    // Seeded bit flips in /many's blocks: the listing returns (a list or an error naming the
    // directory), never a panic or a hang, and never more names than the blocks hold.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..120 {
        let mut b = img.clone();
        for _ in 0..1 + i % 3 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let at = blocks[(x >> 40) as usize % blocks.len()];
            b[at + (x >> 20) as usize % 4096] ^= 1 << ((x >> 8) % 8);
        }
        let src: SharedSource = Arc::new(MemSource::new(b, "flipped"));
        let Ok(fs) = amiscan::fs::open(FsKind::Ntfs, src) else {
            continue;
        };
        let reader = fs.reader().unwrap();
        match reader.list_dir(b"/many") {
            Ok(list) => assert!(list.len() <= 3000, "{i}: {} entries", list.len()),
            Err(e) => assert!(e.to_string().contains("/many"), "{i}: {e}"),
        }
    }
}
