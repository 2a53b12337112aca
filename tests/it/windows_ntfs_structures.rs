//! NTFS structures issue 15 names that the Windows disks of tests/it/ntfs.rs do not hold, on a
//! volume written by ntfs-3g (testdata/ntfs/ntfs-features.sh): a directory of 10,000 entries,
//! a file whose 60 streams overflow its MFT record (an `$ATTRIBUTE_LIST`, which `ntfsinfo`
//! shows), long names with DOS (8.3) aliases, and a file compressed by WOF as CompactOS leaves
//! it. The oracle is ntfs-3g's view: every file and stream it reads, with its SHA-256, is what
//! the reader walks and reads, each name once; the WOF file, which ntfs-3g cannot read either,
//! is an error on that file and the scan is incomplete (exit 3), never its bytes scanned as if
//! they were the file.

use crate::common::{scan_json_unchecked, sh, testdata};
use amiscan::fs::probe::FsKind;
use amiscan::source::{FileSource, SharedSource};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

const WOF: &str = "/Windows/System32/notepad.exe";

#[test]
fn big_directories_attribute_lists_dos_names_and_wof_files_are_handled() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let script = testdata().join("ntfs/ntfs-features.sh");
    sh(&format!("bash '{}' .", script.display()), dir.path());
    let listing = std::fs::read_to_string(dir.path().join("attrlist.txt")).unwrap();
    assert!(
        listing.contains("$ATTRIBUTE_LIST"),
        "ntfs-3g wrote no attribute list: {listing}"
    );
    let truth = crate::ntfs::sums(&dir.path().join("truth.txt"));
    assert_eq!(
        truth
            .keys()
            .filter(|p| p.starts_with("/Windows/WinSxS/Manifests/"))
            .count(),
        10_000
    );
    assert_eq!(
        truth
            .keys()
            .filter(|p| p.starts_with("/Users/alice/Documents/report.docx:"))
            .count(),
        60
    );

    let img: SharedSource = Arc::new(FileSource::open(&dir.path().join("vol.img")).unwrap());
    let fs = amiscan::fs::open(FsKind::Ntfs, img).unwrap();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    let reader = fs.reader().unwrap();
    let mut got = BTreeMap::new();
    let mut wof_error = None;
    for e in &walk.files {
        let path = e.display_path();
        assert!(
            !got.contains_key(&path),
            "{path} walked twice (a DOS name listed as a second entry?)"
        );
        if path == WOF {
            wof_error = Some(reader.open_file(e).err().expect("the WOF file is not read"));
            got.insert(path, String::new());
            continue;
        }
        let mut h = Sha256::new();
        std::io::copy(&mut reader.open_file(e).unwrap(), &mut h).unwrap();
        got.insert(path, hex::encode(h.finalize()));
    }
    assert!(
        wof_error.as_ref().unwrap().to_string().contains("WOF"),
        "{wof_error:?}"
    );
    // The WOF file's compressed data is a stream of its own, listed as one.
    let mut want = truth.clone();
    want.insert(WOF.to_string(), String::new());
    got.remove(&format!("{WOF}:WofCompressedData"))
        .expect("the WofCompressedData stream is listed");
    assert_eq!(got, want, "amiscan's view (left) and ntfs-3g's (right)");
    // No 8.3 alias anywhere, as a file or on the way to one.
    assert!(
        !walk.files.iter().any(|e| e.display_path().contains('~')),
        "a DOS name was walked"
    );
    // A name looked up in any case, through the 10,000-entry index.
    let listed = reader.list_dir(b"/WINDOWS/winsxs/manifests").unwrap();
    assert_eq!(listed.len(), 10_000);

    // The scan: every file but the WOF one scanned, the scan incomplete (exit 3) and saying
    // which file and why.
    let (code, t) = scan_json_unchecked(&dir.path().join("vol.img"), &[]);
    assert_eq!(t["complete"], false, "{t:#}");
    assert_eq!(code, 3, "{t:#}");
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["path"], WOF);
    assert!(
        errors[0]["message"].as_str().unwrap().contains("WOF"),
        "{errors:#?}"
    );
    assert_eq!(
        t["volumes"][0]["files_scanned"].as_u64(),
        Some(truth.len() as u64 + 1),
        "every file and stream but the WOF file's content"
    );
}

/// An EFS-encrypted file (its `$STANDARD_INFORMATION` says so, as Windows records it;
/// testdata/ntfs/efs-flag.py sets the flag, which no Linux tool writes and `ntfsinfo` reads
/// back): not read, an error naming it, the scan incomplete; its neighbour is read (and its key
/// makes the exit code 1: findings win over incomplete, README's table).
#[test]
fn an_efs_encrypted_file_is_reported_not_read() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let flag = testdata().join("ntfs/efs-flag.py");
    sh(
        &format!(
            "truncate -s 8M vol.img && mkntfs -Q -q -F vol.img >/dev/null 2>&1 && mkdir -p m && \
             source '{}' && ntfs_mount vol.img m && trap 'umount m' EXIT && mkdir -p m/Users/alice && \
             for f in sealed plain; do printf 'aws_access_key_id = AKIA%s\\naws_secret_access_key = %s\\n' \
               \"$(tr -dc 'A-Z2-7' </dev/urandom | head -c 16)\" \"$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)\" \
               > m/Users/alice/$f.txt; done && ntfs_umount m && trap - EXIT && \
             rec=$(ntfsinfo -f -F /Users/alice/sealed.txt vol.img 2>/dev/null | sed -n 's/^Dumping Inode \\([0-9]*\\).*/\\1/p') && \
             python3 '{}' vol.img \"$rec\" && \
             ntfsinfo -f -F /Users/alice/sealed.txt vol.img 2>/dev/null | grep 'File attributes:.*ENCRYPTED' >/dev/null",
            testdata().join("ntfs/mount.sh").display(),
            flag.display()
        ),
        dir.path(),
    );
    let (code, t) = scan_json_unchecked(&dir.path().join("vol.img"), &[]);
    assert_eq!(t["complete"], false, "{t:#}");
    assert_eq!(code, 1, "{t:#}");
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["path"], "/Users/alice/sealed.txt");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("EFS"),
        "{errors:#?}"
    );
    let found: Vec<&str> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "aws-access-key-pair")
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["/Users/alice/plain.txt"], "{t:#}");
}

/// An `$MFT` in many pieces (issue 15: "an `$MFT` that is itself fragmented"): ntfs-3g fills a
/// 24 MiB volume with 100 KiB files and one that takes the rest (the MFT zone too), half the
/// 100 KiB files are deleted, and 3,000 small files then make the MFT grow into those holes.
/// `ntfsinfo` shows the MFT's `$DATA` in many runs; every file ntfs-3g reads, with its SHA-256,
/// is what the reader walks and reads.
#[test]
fn a_fragmented_mft_is_read_whole() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mount = testdata().join("ntfs/mount.sh");
    sh(
        &format!(
            r#"source '{}'
truncate -s 24M vol.img && mkntfs -Q -q -F vol.img >/dev/null 2>&1 && mkdir -p m
ntfs_mount vol.img m
trap 'mountpoint -q m && umount m' EXIT
for i in $(seq -w 1 100); do head -c 100000 /dev/urandom > m/a$i.bin; done
dd if=/dev/zero of=m/fill bs=1M 2>/dev/null || true
for i in $(seq -w 1 2 100); do rm m/a$i.bin; done
mkdir m/small
for i in $(seq -w 1 3000); do printf 'small file %s\r\n' "$i" > m/small/s$i.txt || break; done
(cd m && find . -type f -print0 | sort -z | xargs -0 sha256sum | sed 's#  \./#  /#') > truth.txt
ntfs_umount m
trap - EXIT
ntfsinfo -v -i 0 vol.img 2>/dev/null > mft.txt
"#,
            mount.display()
        ),
        dir.path(),
    );
    // The runs of the MFT's $DATA: the first run list ntfsinfo prints.
    let info = std::fs::read_to_string(dir.path().join("mft.txt")).unwrap();
    let runs = info
        .split("Runlist:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("0x"))
        .count();
    assert!(runs >= 5, "the MFT is in {runs} runs:\n{info}");
    let truth = crate::ntfs::sums(&dir.path().join("truth.txt"));
    assert!(truth.len() > 1000, "{} files", truth.len());

    let img: SharedSource = Arc::new(FileSource::open(&dir.path().join("vol.img")).unwrap());
    let fs = amiscan::fs::open(FsKind::Ntfs, img).unwrap();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    let reader = fs.reader().unwrap();
    let got: BTreeMap<String, String> = walk
        .files
        .iter()
        .map(|e| {
            let mut h = Sha256::new();
            std::io::copy(&mut reader.open_file(e).unwrap(), &mut h).unwrap();
            (e.display_path(), hex::encode(h.finalize()))
        })
        .collect();
    assert_eq!(got, truth, "amiscan's view (left) and ntfs-3g's (right)");
}

/// A file with more alternate data streams than the reader lists (1,024; ntfs-3g writes 1,030,
/// spread over extension records by an attribute list): the first 1,024 are listed and read,
/// and an error on the file says the others were not, so the scan is incomplete (exit 3).
/// Before, the others were left out without a word.
#[test]
fn streams_past_the_limit_are_an_error_on_the_file() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    sh(
        &format!(
            "source '{}' && ntfs_new vol.img m 16M && mkdir -p m/Users/alice && \
             printf 'plain\\r\\n' > m/Users/alice/many.txt && \
             python3 -c 'import os,sys\nfor i in range(1030): os.setxattr(sys.argv[1], \"user.s%04d\" % i, b\"stream %d\" % i)' \
               m/Users/alice/many.txt && \
             ls m/Users/alice >/dev/null && ntfs_umount m && trap - EXIT && \
             ntfsinfo -f -F /Users/alice/many.txt vol.img > info.txt 2>&1",
            testdata().join("ntfs/mount.sh").display(),
        ),
        dir.path(),
    );
    let info = std::fs::read_to_string(dir.path().join("info.txt")).unwrap();
    assert!(
        info.matches("Dumping attribute $DATA").count() == 1031 && info.contains("$ATTRIBUTE_LIST"),
        "ntfs-3g did not write the streams:\n{}",
        &info[..info.len().min(3000)]
    );

    let img: SharedSource = Arc::new(FileSource::open(&dir.path().join("vol.img")).unwrap());
    let fs = amiscan::fs::open(FsKind::Ntfs, img).unwrap();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    let streams = walk
        .files
        .iter()
        .filter(|e| e.display_path().starts_with("/Users/alice/many.txt:"))
        .count();
    assert_eq!(streams, 1024);
    assert_eq!(walk.errors.len(), 1, "{:?}", walk.errors);
    assert!(
        walk.errors[0]
            .message
            .contains("more than 1024 alternate data streams"),
        "{:?}",
        walk.errors
    );

    let (code, t) = scan_json_unchecked(&dir.path().join("vol.img"), &[]);
    assert_eq!(t["complete"], false, "{t:#}");
    assert_eq!(code, 3, "{t:#}");
    // The error on the file, and the checks that list the profile saying what they could not
    // judge because of it: nothing else.
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    let said = "file /Users/alice/many.txt: more than 1024 alternate data streams";
    assert!(
        errors[0]["message"].as_str().unwrap().starts_with(said),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().unwrap().contains(said)),
        "{errors:#?}"
    );
    assert_eq!(
        t["volumes"][0]["files_scanned"].as_u64(),
        Some(1 + 1024),
        "the file and its first 1,024 streams"
    );
}
