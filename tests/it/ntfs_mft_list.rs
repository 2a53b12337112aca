//! An `$MFT` that needs an attribute list: its `$DATA` run list no longer fits in record 0, so
//! it is split over `$DATA` extents in other records that record 0's `$ATTRIBUTE_LIST` names.
//! The volume is written by ntfs-3g (testdata/ntfs/mft-attrlist.sh: a small volume whose MFT
//! grows hole by hole until `ntfsinfo -i 0` shows the list and extents in records 15 and 17).
//! The oracle is ntfs-3g's view of the finished image: every file, with its SHA-256, is what
//! the reader walks and reads, and the full scan (its record sweep reads `$MFT`'s bitmap and
//! every record in use) is complete. A list broken as hostile metadata would break it
//! (testdata/ntfs/mft-attrlist-break.py: an extent that names record 0 itself, two extents
//! over the same VCN) is an error naming record 0 and the scan is incomplete: no panic, no
//! hang, and the records the first extent maps are still read.

use crate::common::{scan_json_unchecked, sh, testdata};
use amiscan::fs::probe::FsKind;
use amiscan::source::{FileSource, SharedSource};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Build the volume in `dir` (vol.img, mft.txt, truth.txt) and check that ntfs-3g did split
/// `$MFT`'s `$DATA` over an attribute list.
fn build(dir: &Path) -> BTreeMap<String, String> {
    let script = testdata().join("ntfs/mft-attrlist.sh");
    sh(&format!("bash '{}' .", script.display()), dir);
    let info = std::fs::read_to_string(dir.join("mft.txt")).unwrap();
    assert!(
        info.contains("Dumping attribute $ATTRIBUTE_LIST (0x20) from mft record 0"),
        "ntfs-3g wrote no attribute list for $MFT:\n{info}"
    );
    let extents = info
        .lines()
        .filter(|l| l.starts_with("Dumping attribute $DATA (0x80) from mft record"))
        .collect::<Vec<_>>();
    assert!(
        extents.len() >= 2 && extents.iter().any(|l| !l.contains("mft record 0 ")),
        "$MFT's $DATA is not split over extension records: {extents:?}"
    );
    let truth = crate::ntfs::sums(&dir.join("truth.txt"));
    assert!(truth.len() > 5000, "{} files", truth.len());
    truth
}

/// The walk's files and their SHA-256 as the reader reads them, and the walk's errors.
fn read_all(img: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let img: SharedSource = Arc::new(FileSource::open(img).unwrap());
    let fs = amiscan::fs::open(FsKind::Ntfs, img).unwrap();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    let reader = fs.reader().unwrap();
    let mut errors: Vec<String> = walk
        .errors
        .iter()
        .map(|e| format!("{:?}: {}", e.path, e.message))
        .collect();
    let mut got = BTreeMap::new();
    for e in &walk.files {
        let mut h = Sha256::new();
        match reader.open_file(e) {
            Ok(mut r) => match std::io::copy(&mut r, &mut h) {
                Ok(_) => {
                    got.insert(e.display_path(), hex::encode(h.finalize()));
                }
                Err(err) => errors.push(format!("{}: {err}", e.display_path())),
            },
            Err(err) => errors.push(err.to_string()),
        }
    }
    (got, errors)
}

#[test]
fn an_mft_that_needs_an_attribute_list_is_read_whole() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let truth = build(dir.path());
    let img = dir.path().join("vol.img");
    let (got, errors) = read_all(&img);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(got, truth, "amiscan's view (left) and ntfs-3g's (right)");

    // The whole scan, its record sweep over $MFT's bitmap too: complete, nothing unread.
    let (code, t) = scan_json_unchecked(&img, &[]);
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(t["volumes"][0]["errors"], serde_json::json!([]), "{t:#}");
    assert_eq!(code, 0, "{t:#}");
}

#[test]
fn a_broken_mft_attribute_list_is_an_error_naming_record_0() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let truth = build(dir.path());
    let fix = testdata().join("ntfs/mft-attrlist-break.py");
    for mode in ["self", "overlap"] {
        sh(
            &format!(
                "cp --sparse=always vol.img {mode}.img && python3 '{}' {mode}.img {mode}",
                fix.display()
            ),
            dir.path(),
        );
        let img = dir.path().join(format!("{mode}.img"));
        let (got, errors) = read_all(&img);
        // The files whose records the intact extents map are read as ntfs-3g read them
        // before the damage; the others are errors that say why.
        assert!(!got.is_empty(), "{mode}: nothing read");
        for (path, sum) in &got {
            assert_eq!(truth.get(path), Some(sum), "{mode}: {path}");
        }
        assert!(got.len() < truth.len(), "{mode}: every file read");
        assert!(!errors.is_empty(), "{mode}: no error");
        for e in &errors {
            assert!(e.contains("MFT record 0"), "{mode}: {e}");
        }

        let (code, t) = scan_json_unchecked(&img, &[]);
        assert_eq!(t["complete"], false, "{mode}: {t:#}");
        assert_eq!(code, 3, "{mode}: {t:#}");
        let report = t["volumes"][0].to_string();
        assert!(report.contains("MFT record 0"), "{mode}: {report}");
        std::fs::remove_file(&img).unwrap();
    }
}
