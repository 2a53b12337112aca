//! NTFS files that no directory names (issue 15: "MFT records not reachable from the root
//! (deleted-but-present, orphaned)"), on a volume written by ntfs-3g through a loop mount:
//!
//! - an orphan: a record in use that no index names. ntfs-3g deletes `orphan.txt` (its index
//!   entry goes, its record keeps its header, `$FILE_NAME` and data, marked free), then
//!   testdata/ntfs/mft-orphan.py marks the record in use again, in its header and in `$MFT`'s
//!   `$BITMAP`: what a crash between writing a record and its index entry leaves. `ntfsinfo -i`
//!   shows it in use with its name; `ntfsls` of its directory does not list it.
//! - an orphaned directory: `lost` (holding `sub/inner.txt`), its entry cut out of its
//!   parent's index by testdata/ntfs/unindex.py, its record and tree untouched: walked from its
//!   record, its files at `<unlinked inode N>/lost/sub/inner.txt`.
//! - a deleted small file: `rm` through ntfs-3g; its content and its stream stay resident in
//!   its free record (inside `$MFT`'s allocated clusters, which the free-space scan does not
//!   read), which `ntfsinfo -i` no longer loads and `ntfsundelete -s -v -i` shows; and a
//!   deleted directory, `/junk`, with a stream in its free record.
//! - files deleted while open, in `$Extend\$Deleted` (the last test, its own volume).
//!
//! Each file holds a freshly generated AWS key pair (the orphan and the deleted file a second
//! one in a stream; `/junk` one in its stream). Without `--unallocated` the orphan's keys are
//! found at `<unlinked inode N>/orphan.txt` and `…:token`, the deleted ones not at all; with
//! it, at `<deleted inode M>/deleted.txt`, `…/deleted.txt:token` and
//! `<deleted inode J>/junk:token`. Both scans are complete: every record in use was read.
//! A bitmap set throughout (hostile: every never-used record "in use") gives bounded errors,
//! never a panic, and the real files are still found.

use crate::common::{rule_paths, scan_json_unchecked, sh};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const KEY: &str = "aws-access-key-pair";

/// A fresh fake AWS key pair, as a credentials file holds it.
const PAIR: &str = r#"printf 'aws_access_key_id = AKIA%s\naws_secret_access_key = %s\n' "$(tr -dc 'A-Z2-7' </dev/urandom | head -c 16)" "$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)""#;

fn keys(t: &Value) -> BTreeSet<String> {
    rule_paths(t, "<no path>")
        .into_iter()
        .filter(|(r, _)| r == KEY)
        .map(|(_, p)| p)
        .collect()
}

/// Build `vol.img` in `dir`, with `junk` more small files written after the others and deleted
/// with them (their records free) in the directory `/junk`, which has a key pair in a stream
/// and is deleted too: the record numbers of the orphan, the deleted file, the orphaned
/// directory and `/junk`.
fn build(dir: &Path, junk: usize) -> (u64, u64, u64, u64) {
    let mount = crate::common::testdata().join("ntfs/mount.sh");
    let mount = mount.display();
    let script = format!(
        r#"set -e
source '{mount}'
ntfs_new vol.img m 8M
mkdir -p m/Users/alice/lost/sub
for f in orphan deleted keep lost/sub/inner; do {PAIR} > m/Users/alice/$f.txt; done
setfattr -n user.token -v "$({PAIR})" m/Users/alice/orphan.txt
setfattr -n user.token -v "$({PAIR})" m/Users/alice/deleted.txt
mkdir m/junk
setfattr -n user.token -v "$({PAIR})" m/junk
for i in $(seq 1 {junk}); do echo $i > m/junk/$i; done
ntfs_umount m
for f in orphan.txt deleted.txt lost ""; do
  ntfsinfo -f -F /Users/alice/$f vol.img > "${{f%.txt}}.info" 2>/dev/null
done
ntfsinfo -f -F /junk vol.img > junk.info 2>/dev/null
ntfs_mount vol.img m
rm -r m/Users/alice/orphan.txt m/Users/alice/deleted.txt m/junk
ntfs_umount m
"#
    );
    sh(&script, dir);
    let rec = |f: &str| -> u64 {
        let info = std::fs::read_to_string(dir.join(format!("{f}.info"))).unwrap();
        info.strip_prefix("Dumping Inode ")
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{info}"))
    };
    let (orphan, deleted, lost, junk) = (rec("orphan"), rec("deleted"), rec("lost"), rec("junk"));
    let alice = rec("");
    // The deleted file's content was resident in its record.
    let info = std::fs::read_to_string(dir.join("deleted.info")).unwrap();
    let data = info
        .split("$DATA (0x80)")
        .nth(1)
        .expect("a $DATA attribute");
    assert!(data.contains("Resident: \t\t Yes"), "{data}");
    sh(
        &format!(
            "python3 '{}' vol.img {orphan}",
            crate::common::testdata()
                .join("ntfs/mft-orphan.py")
                .display()
        ),
        dir,
    );
    // The directory `lost`: its entry cut out of /Users/alice's index, its record and its
    // tree as they were.
    sh(
        &format!(
            "python3 '{}' vol.img {alice} {lost}",
            crate::common::testdata().join("ntfs/unindex.py").display()
        ),
        dir,
    );
    // The oracle: the orphans in use with their names, named by no directory; the deleted
    // record not in use.
    let shown = sh(&format!("ntfsinfo -f -i {lost} vol.img 2>&1"), dir);
    assert!(
        shown.contains("MFT Record Flags:\t IN_USE DIRECTORY"),
        "{shown}"
    );
    assert!(shown.contains("Filename:\t\t 'lost'"), "{shown}");
    let shown = sh(&format!("ntfsinfo -f -i {orphan} vol.img 2>&1"), dir);
    assert!(shown.contains("MFT Record Flags:\t IN_USE"), "{shown}");
    assert!(shown.contains("Filename:\t\t 'orphan.txt'"), "{shown}");
    let listed = sh("ntfsls -f -p /Users/alice vol.img", dir);
    let listed: Vec<&str> = listed.lines().filter(|l| !l.starts_with('.')).collect();
    assert_eq!(listed, ["keep.txt"]);
    let gone = sh(
        &format!("ntfsinfo -f -i {deleted} vol.img 2>&1 || true"),
        dir,
    );
    assert!(!gone.contains("IN_USE"), "{gone}");
    // The free record still holds the deleted file's stream, resident (ntfsinfo does not load
    // a free record; ntfsundelete's scan of it shows its streams).
    let kept = sh(
        &format!("ntfsundelete -f -s -v -i {deleted} vol.img 2>&1"),
        dir,
    );
    let stream = kept
        .split("Name: token")
        .nth(1)
        .unwrap_or_else(|| panic!("{kept}"));
    assert!(stream.trim_start().starts_with("Flags: Resident"), "{kept}");
    let kept = sh(
        &format!("ntfsundelete -f -s -v -i {junk} vol.img 2>&1"),
        dir,
    );
    assert!(kept.contains("Type: Directory"), "{kept}");
    let stream = kept
        .split("Name: token")
        .nth(1)
        .unwrap_or_else(|| panic!("{kept}"));
    assert!(stream.trim_start().starts_with("Flags: Resident"), "{kept}");
    (orphan, deleted, lost, junk)
}

#[test]
fn an_ntfs_record_no_index_names_is_scanned_and_a_deleted_one_with_unallocated() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (orphan, deleted, lost, junk) = build(dir.path(), 0);
    let img = dir.path().join("vol.img");
    let found = [
        "/Users/alice/keep.txt".to_string(),
        format!("<unlinked inode {orphan}>/orphan.txt"),
        format!("<unlinked inode {orphan}>/orphan.txt:token"),
        format!("<unlinked inode {lost}>/lost/sub/inner.txt"),
    ];

    let (code, t) = scan_json_unchecked(&img, &[]);
    assert_eq!(keys(&t), found.iter().cloned().collect(), "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["volumes"][0]["errors"], serde_json::json!([]), "{t:#}");
    // keep.txt, the orphan and its stream, inner.txt: nothing else of the volume's own.
    assert_eq!(t["volumes"][0]["files_scanned"], 4, "{t:#}");

    let (code, t) = scan_json_unchecked(&img, &["--unallocated"]);
    let mut want: BTreeSet<String> = found.iter().cloned().collect();
    want.insert(format!("<deleted inode {deleted}>/deleted.txt"));
    // Its alternate data stream, resident in the free record too.
    want.insert(format!("<deleted inode {deleted}>/deleted.txt:token"));
    // The deleted directory's stream.
    want.insert(format!("<deleted inode {junk}>/junk:token"));
    assert_eq!(keys(&t), want, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["volumes"][0]["errors"], serde_json::json!([]), "{t:#}");
}

/// `$MFT`'s `$BITMAP` set throughout: every record "in use", and the records past the files
/// wiped (never written). The sweep reads them, each fails, the errors are bounded (64 and one that counts the rest), the scan
/// is incomplete and says why; the files are still found, the orphan too.
#[test]
fn an_mft_bitmap_set_throughout_gives_bounded_errors() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (orphan, _, _, _) = build(dir.path(), 150);
    sh(
        r#"python3 - <<'EOF'
import struct
f = open("vol.img", "r+b")
boot = f.read(512)
sector = struct.unpack_from("<H", boot, 0x0B)[0]
cluster = sector * boot[0x0D]
mft = struct.unpack_from("<Q", boot, 0x30)[0] * cluster
f.seek(mft)
zero = bytearray(f.read(1024))
a = struct.unpack_from("<H", zero, 0x14)[0]
while struct.unpack_from("<I", zero, a)[0] != 0xB0:
    a += struct.unpack_from("<I", zero, a + 4)[0]
assert zero[a + 8] == 1, "a non-resident $MFT bitmap"
runs = a + struct.unpack_from("<H", zero, a + 0x20)[0]
h = zero[runs]
nlen, noff = h & 0x0F, h >> 4
lcn = int.from_bytes(zero[runs + 1 + nlen:runs + 1 + nlen + noff], "little", signed=True)
init = struct.unpack_from("<Q", zero, a + 0x38)[0]
f.seek(lcn * cluster)
f.write(b"\xff" * init)
# The records past the files (formatted, never used) wiped: no FILE record where the bitmap
# now says one is in use. The $MFT is in one run on a new volume.
a = struct.unpack_from("<H", zero, 0x14)[0]
while struct.unpack_from("<I", zero, a)[0] != 0x80:
    a += struct.unpack_from("<I", zero, a + 4)[0]
count = struct.unpack_from("<Q", zero, a + 0x30)[0] // 1024
assert count > 100, count
f.seek(mft + 80 * 1024)
f.write(bytes(1024 * (count - 80)))
EOF"#,
        dir.path(),
    );
    let (code, t) = scan_json_unchecked(&dir.path().join("vol.img"), &[]);
    assert_eq!(t["complete"], false, "{t:#}");
    assert_eq!(code, 1, "{t:#}");
    assert!(
        keys(&t).contains(&format!("<unlinked inode {orphan}>/orphan.txt")),
        "{t:#}"
    );
    assert!(keys(&t).contains("/Users/alice/keep.txt"), "{t:#}");
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 65, "{errors:#?}");
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("more records it marks in use could not be read")),
        "{errors:#?}"
    );
}

/// Files deleted while a handle held them open, as a snapshot of a running Windows (10 1709 and
/// later, Server 2019) keeps them: moved into `$Extend\$Deleted`, renamed to 24 hex digits, their
/// records in use. ntfs-3g refuses to create anything in `$Extend` but renames into it, so the
/// files are written in `/Del` (a file with a key pair and a second one in a stream, and a
/// directory holding a file with a third), renamed to the hex names Windows gives (the file
/// reference and a counter), and `/Del` is renamed to `/$Extend/$Deleted`; a directory
/// `$Extend/$RmMetadata` (the transaction metadata's place on Windows) is made the same way with
/// a file that is the volume's own, not scanned. The oracle: `ntfsls` of `/$Extend/$Deleted`
/// lists both, `ntfsinfo -i` shows the file's record in use under its hex name, `ntfscat` its
/// key. Without `--unallocated` the keys are found at `<orphan inode N>/HEX`, `…/HEX:token` and
/// `<orphan inode M>/HEX/inner.txt`, the scan complete; nothing else of `$Extend` is scanned.
/// With `$Extend`'s record torn, the scan is incomplete and says what was not looked for.
#[test]
fn files_deleted_while_open_in_extend_deleted_are_scanned_at_their_orphan_path() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mount = crate::common::testdata().join("ntfs/mount.sh");
    let mount = mount.display();
    let script = format!(
        r#"set -e
source '{mount}'
ntfs_new vol.img m 8M
mkdir -p m/Users/alice m/Del/d m/Rm
{PAIR} > m/Users/alice/keep.txt
{PAIR} > m/Del/f
setfattr -n user.token -v "$({PAIR})" m/Del/f
{PAIR} > m/Del/d/inner.txt
echo 'transaction log' > m/Rm/log
hex() {{ printf '0001%012X%08X' "$(stat -c %i "$1")" "$(od -An -N4 -tu4 /dev/urandom)"; }}
f=$(hex m/Del/f); d=$(hex m/Del/d)
echo "$(stat -c %i m/Del/f) $f $(stat -c %i m/Del/d) $d" > names
mv m/Del/f "m/Del/$f" && mv m/Del/d "m/Del/$d"
mv m/Del 'm/$Extend/$Deleted' && mv m/Rm 'm/$Extend/$RmMetadata'
ntfs_umount m
"#
    );
    sh(&script, dir.path());
    let names = std::fs::read_to_string(dir.path().join("names")).unwrap();
    let names: Vec<&str> = names.split_whitespace().collect();
    let [file_rec, file, dir_rec, dir_name] = names[..] else {
        panic!("{names:?}")
    };
    // The oracle: both in $Extend\$Deleted, the file's record in use under its hex name, its
    // content the key pair.
    let listed = sh("ntfsls -f -F -p '/$Extend/$Deleted' vol.img", dir.path());
    let listed: BTreeSet<&str> = listed.lines().filter(|l| !l.starts_with('.')).collect();
    let want_listed: BTreeSet<String> = [file.to_string(), format!("{dir_name}/")].into();
    assert_eq!(
        listed,
        want_listed.iter().map(String::as_str).collect(),
        "{listed:?}"
    );
    let shown = sh(
        &format!("ntfsinfo -f -i {file_rec} vol.img 2>&1"),
        dir.path(),
    );
    assert!(shown.contains("MFT Record Flags:\t IN_USE"), "{shown}");
    assert!(
        shown.contains(&format!("Filename:\t\t '{file}'")),
        "{shown}"
    );
    let content = sh(
        &format!("ntfscat -f vol.img '/$Extend/$Deleted/{file}'"),
        dir.path(),
    );
    assert!(content.starts_with("aws_access_key_id = AKIA"), "{content}");
    let listed = sh("ntfsls -f -F -p '/$Extend/$RmMetadata' vol.img", dir.path());
    assert!(listed.lines().any(|l| l == "log"), "{listed}");

    let (code, t) = scan_json_unchecked(&dir.path().join("vol.img"), &[]);
    let want: BTreeSet<String> = [
        "/Users/alice/keep.txt".to_string(),
        format!("<orphan inode {file_rec}>/{file}"),
        format!("<orphan inode {file_rec}>/{file}:token"),
        format!("<orphan inode {dir_rec}>/{dir_name}/inner.txt"),
    ]
    .into();
    assert_eq!(keys(&t), want, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["volumes"][0]["errors"], serde_json::json!([]), "{t:#}");
    // The four above: $RmMetadata's log, $Deleted itself and the rest of $Extend are not.
    assert_eq!(t["volumes"][0]["files_scanned"], 4, "{t:#}");

    // $Extend's record torn (the end of its first sector no longer its update sequence
    // number): `$Deleted` cannot be looked up, which is an error (the scan incomplete), never
    // a silent pass over the files deleted while open.
    sh(
        &format!(
            r#"python3 - <<'EOF'
import sys
sys.path.insert(0, "{}")
from mftrec import geometry
f = open("vol.img", "r+b")
sector, cluster, mft, size = geometry(f)
f.seek(mft + 11 * size + sector - 2)
end = f.read(2)
f.seek(mft + 11 * size + sector - 2)
f.write(bytes(b ^ 0xFF for b in end))
EOF"#,
            crate::common::testdata().join("ntfs").display()
        ),
        dir.path(),
    );
    let (code, t) = scan_json_unchecked(&dir.path().join("vol.img"), &[]);
    assert_eq!(
        keys(&t),
        ["/Users/alice/keep.txt".to_string()].into(),
        "{t:#}"
    );
    assert_eq!(t["complete"], false, "{t:#}");
    assert_eq!(code, 1, "{t:#}");
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("files deleted while still open were not looked for"),
        "{message}"
    );
}
