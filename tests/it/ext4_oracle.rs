//! Oracle test for the ext4 path: a tree written to disk, turned into an image by the real
//! `mke2fs -d`, then read back through amiscan's filesystem layer. The listing (path, type, size,
//! mode, uid, gid, symlink target) and the SHA-256 of every file must equal the source tree.
//! The tree forces hashed (htree) directories, extent trees, sparse files, deep paths, inline and
//! block symlinks, and non-UTF-8 names.

use crate::common::{posix_sh, run};
use amiscan::fs::probe::FsKind;
use amiscan::fs::{self, EntryKind};
use amiscan::source::{FileSource, SharedSource};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

#[derive(Debug, PartialEq, Eq)]
struct Seen {
    kind: &'static str,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    link: Option<Vec<u8>>,
    sha: Option<String>,
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn build_tree(root: &Path) {
    let w = |p: &str, data: &[u8], mode: u32| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    w("etc/hostname", b"oracle\n", 0o644);
    w("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o640);
    w("usr/bin/su", b"\x7fELF fake", 0o4755);
    w("empty", b"", 0o600);
    // Multi-extent content: 3 MiB of a pattern.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    w("var/big.bin", &big, 0o644);
    // A sparse file: data, a 5 MiB hole, data.
    let mut f = std::fs::File::create(root.join("var/sparse")).unwrap();
    f.write_all(b"head").unwrap();
    f.seek(SeekFrom::Start(5 * 1024 * 1024)).unwrap();
    f.write_all(b"tail").unwrap();
    drop(f);
    // Many small pieces between holes: hundreds of extents (an extent tree of depth 1), or
    // single, double and triple-indirect blocks in an ext2/3 block map.
    let mut f = std::fs::File::create(root.join("var/fragmented")).unwrap();
    for i in 0..300u64 {
        f.seek(SeekFrom::Start(i * 40 * 1024)).unwrap();
        f.write_all(format!("piece {i}\n").as_bytes()).unwrap();
    }
    drop(f);
    // A directory large enough for an htree index.
    for i in 0..5000 {
        w(
            &format!("usr/share/many/file-{i:05}"),
            format!("{i}\n").as_bytes(),
            0o644,
        );
    }
    // Deep path.
    let deep: String = (0..60).map(|i| format!("d{i}/")).collect();
    w(&format!("{deep}leaf"), b"deep\n", 0o644);
    // Symlinks: short (inline) and long (block).
    symlink("../etc/hostname", root.join("var/short-link")).unwrap();
    symlink(
        format!("/opt/{}target", "segment/".repeat(40)),
        root.join("var/long-link"),
    )
    .unwrap();
    // A name that is not UTF-8.
    let name = OsStr::from_bytes(b"latin1-\xe9t\xe9");
    std::fs::write(root.join("var").join(name), b"bytes\n").unwrap();
    // Ownership other than root.
    let owned = root.join("home/alice/notes");
    w("home/alice/notes", b"hi\n", 0o600);
    std::os::unix::fs::chown(&owned, Some(1000), Some(1001)).unwrap();
}

/// The tree as the kernel sees it.
fn expected(root: &Path) -> BTreeMap<Vec<u8>, Seen> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = {
                let mut v = b"/".to_vec();
                v.extend_from_slice(p.strip_prefix(root).unwrap().as_os_str().as_bytes());
                v
            };
            let ft = md.file_type();
            let (kind, link, digest) = if ft.is_dir() {
                stack.push(p.clone());
                ("dir", None, None)
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                ("symlink", Some(t.as_os_str().as_bytes().to_vec()), None)
            } else {
                let mut data = vec![];
                std::fs::File::open(&p)
                    .unwrap()
                    .read_to_end(&mut data)
                    .unwrap();
                ("file", None, Some(sha(&data)))
            };
            out.insert(
                rel,
                Seen {
                    kind,
                    size: if ft.is_dir() { 0 } else { md.len() },
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    link,
                    sha: digest,
                },
            );
        }
    }
    out
}

/// The image as amiscan reads it.
fn read_back(img: &Path) -> BTreeMap<Vec<u8>, Seen> {
    let src: SharedSource = Arc::new(FileSource::open(img).unwrap());
    let fs = fs::open(FsKind::Ext4, src).unwrap();
    let r = fs.reader().unwrap();
    let mut out = BTreeMap::new();
    let mut stack = vec![b"/".to_vec()];
    while let Some(dir) = stack.pop() {
        for e in r.list_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.path == b"/lost+found" {
                continue;
            }
            let (kind, link, digest) = match e.kind {
                EntryKind::Dir => {
                    stack.push(e.path.clone());
                    ("dir", None, None)
                }
                EntryKind::Symlink => ("symlink", Some(r.read_link(&e).unwrap()), None),
                EntryKind::File => {
                    let mut data = vec![];
                    r.open_file(&e).unwrap().read_to_end(&mut data).unwrap();
                    ("file", None, Some(sha(&data)))
                }
                EntryKind::Special => ("special", None, None),
            };
            out.insert(
                e.path.clone(),
                Seen {
                    kind,
                    size: if kind == "dir" { 0 } else { e.size },
                    mode: e.mode,
                    uid: e.uid,
                    gid: e.gid,
                    link,
                    sha: digest,
                },
            );
        }
    }
    out
}

/// Build the tree, make an image with `mke2fs ARGS -d tree`, run `after` on it (a shell
/// command with the image as `$1`), and compare.
fn oracle(args: &[&str], size: &str, after: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    build_tree(&root);
    let img = dir.path().join("fs.img");
    run(Command::new("mke2fs")
        .args(["-q", "-N", "8192"])
        .args(args)
        .arg("-d")
        .arg(&root)
        .arg("-F")
        .arg(&img)
        .arg(size));
    if let Some(cmd) = after {
        run(posix_sh(cmd).arg("sh").arg(&img));
    }
    let want = expected(&root);
    let got = read_back(&img);
    assert!(want.len() > 5000, "the tree is built");
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(missing.is_empty(), "missing from the image: {missing:?}");
    for (path, w) in &want {
        assert_eq!(&got[path], w, "{}", String::from_utf8_lossy(path));
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn mke2fs_image_reads_back_exactly_as_its_tree() {
    oracle(&["-t", "ext4", "-b", "4096"], "64M", None);
}

#[test]
fn ext2_block_map_with_1k_blocks_reads_back_exactly() {
    // 3 MiB in 1 KiB blocks needs double-indirect blocks; the fragmented file has holes
    // under single and double indirection.
    oracle(&["-t", "ext2", "-b", "1024"], "64M", None);
}

#[test]
fn ext3_with_2k_blocks_reads_back_exactly() {
    oracle(&["-t", "ext3", "-b", "2048"], "64M", None);
}

#[test]
fn ext4_meta_bg_64bit_reads_back_exactly() {
    oracle(
        &[
            "-t",
            "ext4",
            "-b",
            "1024",
            "-O",
            "meta_bg,^resize_inode,64bit",
        ],
        "64M",
        None,
    );
}

#[test]
fn ext4_inline_data_and_64k_blocks_read_back_exactly() {
    oracle(
        &["-t", "ext4", "-b", "4096", "-I", "512", "-O", "inline_data"],
        "64M",
        None,
    );
    oracle(&["-t", "ext4", "-b", "65536"], "1G", None);
}

#[test]
fn ext4_flagged_for_recovery_with_an_empty_journal_reads_back_exactly() {
    // The flag a mounted filesystem carries, with nothing left in the log.
    oracle(
        &["-t", "ext4", "-b", "4096"],
        "64M",
        Some(
            "debugfs -w -R 'feature needs_recovery' \"$1\" >/dev/null 2>&1 && dumpe2fs -h \"$1\" 2>/dev/null | grep -q needs_recovery",
        ),
    );
}

/// A POSIX sh script (no `pipefail`: one ends in `| grep -q`) in `dir`; its stdout.
fn sh(script: &str, dir: &Path) -> String {
    run(posix_sh(script).current_dir(dir))
}

fn journal_script() -> String {
    format!(
        "{}/testdata/journal-transaction.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A tree image, and a copy changed by debugfs (new directory and key file, a replaced
/// file, a removed one), committed into the first image's journal: amiscan must read the
/// changed state, exactly as `e2fsck` recovers it.
#[test]
fn a_committed_journal_is_replayed_like_e2fsck() {
    for jo in ["", "-c"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let root = d.join("tree");
        std::fs::create_dir(&root).unwrap();
        build_tree(&root);
        std::fs::write(
            d.join("key"),
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n",
        )
        .unwrap();
        std::fs::write(d.join("hostname"), b"replaced-through-the-journal\n").unwrap();
        sh(
            &format!(
                "mke2fs -q -t ext4 -b 4096 -N 8192 -d tree -F base.img 64M && cp base.img new.img && \
                 debugfs -w -f - new.img >/dev/null 2>&1 <<'CMDS'
mkdir /root
mkdir /root/.ssh
write key /root/.ssh/id_ed25519
rm /etc/hostname
write hostname /etc/hostname
rm /home/alice/notes
CMDS
                 {} base.img new.img {jo}",
                journal_script()
            ),
            d,
        );
        let replayed = read_back(&d.join("base.img"));
        assert!(
            replayed.contains_key(&b"/root/.ssh/id_ed25519"[..]),
            "jo {jo}"
        );
        assert!(!replayed.contains_key(&b"/home/alice/notes"[..]), "jo {jo}");
        assert_eq!(replayed, read_back(&d.join("new.img")), "jo {jo}");
        // e2fsck exits 1 when it recovered the journal.
        sh(
            "cp base.img fixed.img && { e2fsck -fy fixed.img >/dev/null 2>&1 || [ $? -eq 1 ]; }",
            d,
        );
        assert_eq!(replayed, read_back(&d.join("fixed.img")), "jo {jo}");
    }
}

/// A block written in one transaction and revoked in the next is not replayed.
#[test]
fn a_revoked_journal_block_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = d.join("tree");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), b"original content\n").unwrap();
    std::fs::write(d.join("other"), vec![b'x'; 4096]).unwrap();
    let block = sh(
        "mke2fs -q -t ext4 -b 4096 -d tree -F fs.img 16M && debugfs -R 'bmap /etc/motd 0' fs.img 2>/dev/null",
        d,
    );
    let block = block.lines().last().unwrap_or("").trim();
    sh(
        &format!(
            "printf 'jo -c\\njw -b {block} other\\njw -r {block}\\njw -b {block} other\\njc\\n' > cmds && \
             debugfs -w -f cmds fs.img >/dev/null 2>&1 && dumpe2fs -h fs.img 2>/dev/null | grep -q needs_recovery"
        ),
        d,
    );
    // Written, revoked, written again: the third transaction's copy wins.
    let got = read_back(&d.join("fs.img"));
    assert_eq!(got[&b"/etc/motd"[..]].sha, Some(sha(&[b'x'; 17])));
    // Written then revoked: the home copy stays.
    sh(
        &format!(
            "mke2fs -q -t ext4 -b 4096 -d tree -F fs2.img 16M && \
             printf 'jo\\njw -b {block} other\\njw -r {block}\\njc\\n' > cmds2 && \
             debugfs -w -f cmds2 fs2.img >/dev/null 2>&1"
        ),
        d,
    );
    let got = read_back(&d.join("fs2.img"));
    assert_eq!(got[&b"/etc/motd"[..]].sha, Some(sha(b"original content\n")));
}

/// Issue 24: an ext4 journal that needs recovery but cannot be replayed (here its superblock's
/// magic is gone) does not send the volume to a raw scan: the tree is read as it is on disk,
/// the journal's blocks are scanned raw (the key written only through the journal is found
/// there, without a path), the report names the journal, and the scan is incomplete.
#[test]
fn an_unreplayable_journal_leaves_the_on_disk_tree_scanned_and_names_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = d.join("tree");
    std::fs::create_dir(&root).unwrap();
    build_tree(&root);
    sh(
        &format!(
            "ssh-keygen -q -t ed25519 -N '' -C journal -f key && \
             mke2fs -q -t ext4 -b 4096 -N 8192 -d tree -F base.img 64M && cp base.img new.img && \
             debugfs -w -f - new.img >/dev/null 2>&1 <<'CMDS'
mkdir /root
mkdir /root/.ssh
write key /root/.ssh/id_ed25519
rm /home/alice/notes
CMDS
             {} base.img new.img",
            journal_script()
        ),
        d,
    );
    let key_body = std::fs::read_to_string(d.join("key")).unwrap();
    // Replayed, the key is at its path.
    let (code, t) = crate::common::scan_json(&d.join("base.img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert!(
        crate::common::rule_paths(&t, "-")
            .contains(&("openssh-private-key".into(), "/root/.ssh/id_ed25519".into())),
        "{t:#}"
    );
    // The journal superblock's magic zeroed: the journal cannot be replayed.
    let jblock = sh(
        "debugfs -R 'bmap <8> 0' base.img 2>/dev/null | tail -n 1",
        d,
    );
    let jblock: u64 = jblock.trim().parse().expect("journal block");
    let mut img = std::fs::OpenOptions::new()
        .write(true)
        .open(d.join("base.img"))
        .unwrap();
    img.seek(SeekFrom::Start(jblock * 4096)).unwrap();
    img.write_all(&[0, 0, 0, 0]).unwrap();
    drop(img);
    let (code, t) = crate::common::scan_json(&d.join("base.img"), &[]);
    let v = crate::common::volume(&t, "disk");
    assert_eq!(v["status"], "scanned", "{t:#}");
    assert_eq!(t["complete"], false, "{t:#}");
    let errors = v["errors"].to_string();
    assert!(
        errors.contains("ext4 journal") && errors.contains("could not be replayed"),
        "{errors}"
    );
    // The on-disk tree: the file the journal removed is still there, the key has no path.
    assert!(v["files_scanned"].as_u64().unwrap() > 0);
    let found = crate::common::rule_paths(&t, "-");
    assert!(
        !found.iter().any(|(_, p)| p == "/root/.ssh/id_ed25519"),
        "{found:?}"
    );
    // ... but its bytes are in the journal, scanned raw.
    let raw_key: Vec<&serde_json::Value> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "openssh-private-key" && f["path"].is_null())
        .collect();
    assert_eq!(raw_key.len(), 1, "{t:#}");
    let off = raw_key[0]["offset"].as_u64().unwrap();
    assert!(off >= jblock * 4096, "offset {off} before the journal");
    assert_eq!(code, 1, "a raw finding still fails the scan");
    assert!(!key_body.is_empty());
}
