//! Oracle tests: images built by the real `mkfs.xfs` from a prototype file (no mounting), then
//! read back through amiscan's XFS reader and compared with the source tree: path, type, mode,
//! uid, gid, size, symlink target and the SHA-256 of every file. Structures mkfs cannot make
//! (holes, unwritten extents, a bmap B+tree file, a dirty log) are written with `xfs_db -x`,
//! which recomputes the CRCs.

use crate::common::{dirty_xfs_log, run, xfs_db, xfs_db_byte};
use amiscan::fs::xfs::XfsFs;
use amiscan::fs::{EntryKind, Filesystem, FsError, FsReader};
use amiscan::source::{FileSource, SharedSource};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Link(Vec<u8>),
    Fifo,
}

#[derive(Clone, Debug)]
struct Node {
    path: Vec<u8>,
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The source tree: what mkfs is told to build and what the reader must give back.
#[derive(Default)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn add(&mut self, path: &[u8], kind: Kind, mode: u32, uid: u32, gid: u32) {
        self.nodes.push(Node {
            path: path.to_vec(),
            kind,
            mode,
            uid,
            gid,
        });
    }
    fn file(&mut self, path: &[u8], content: Vec<u8>) {
        self.add(path, Kind::File(content), 0o644, 0, 0);
    }
    fn dir(&mut self, path: &[u8]) {
        self.add(path, Kind::Dir, 0o755, 0, 0);
    }

    /// Write the prototype file (and the source files it names) into `dir`.
    fn protofile(&self, dir: &Path) -> std::path::PathBuf {
        let mut children: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let cut = n.path.iter().rposition(|&b| b == b'/').unwrap();
            let parent = if cut == 0 {
                b"/".to_vec()
            } else {
                n.path[..cut].to_vec()
            };
            children.entry(parent).or_default().push(i);
        }
        let mut out = b"amiscan\n0 0\nd--755 0 0\n".to_vec();
        self.emit(b"/", &children, dir, &mut out);
        out.extend_from_slice(b"$\n");
        let p = dir.join("proto");
        std::fs::write(&p, out).unwrap();
        p
    }

    fn emit(
        &self,
        parent: &[u8],
        children: &BTreeMap<Vec<u8>, Vec<usize>>,
        dir: &Path,
        out: &mut Vec<u8>,
    ) {
        for &i in children.get(parent).map(Vec::as_slice).unwrap_or(&[]) {
            let n = &self.nodes[i];
            let name = &n.path[n.path.iter().rposition(|&b| b == b'/').unwrap() + 1..];
            let t = match n.kind {
                Kind::File(_) => '-',
                Kind::Dir => 'd',
                Kind::Link(_) => 'l',
                Kind::Fifo => 'p',
            };
            let u = if n.mode & 0o4000 != 0 { 'u' } else { '-' };
            let g = if n.mode & 0o2000 != 0 { 'g' } else { '-' };
            out.extend_from_slice(name);
            out.extend_from_slice(
                format!(" {t}{u}{g}{:03o} {} {}", n.mode & 0o777, n.uid, n.gid).as_bytes(),
            );
            match &n.kind {
                Kind::File(content) => {
                    let src = dir.join(format!("src{i}"));
                    std::fs::write(&src, content).unwrap();
                    out.extend_from_slice(format!(" {}\n", src.display()).as_bytes());
                }
                Kind::Link(target) => {
                    out.push(b' ');
                    out.extend_from_slice(target);
                    out.push(b'\n');
                }
                Kind::Fifo => out.push(b'\n'),
                Kind::Dir => {
                    out.push(b'\n');
                    self.emit(&n.path, children, dir, out);
                    out.extend_from_slice(b"$\n");
                }
            }
        }
    }

    /// Path → what the reader must report.
    fn expected(&self) -> BTreeMap<Vec<u8>, Seen> {
        self.nodes
            .iter()
            .map(|n| {
                let (kind, size, data) = match &n.kind {
                    Kind::File(c) => (EntryKind::File, Some(c.len() as u64), Some(sha(c))),
                    Kind::Link(t) => (EntryKind::Symlink, Some(t.len() as u64), Some(t.clone())),
                    Kind::Dir => (EntryKind::Dir, None, None),
                    Kind::Fifo => (EntryKind::Special, Some(0), None),
                };
                (
                    n.path.clone(),
                    Seen {
                        kind,
                        mode: n.mode,
                        uid: n.uid,
                        gid: n.gid,
                        size,
                        data,
                    },
                )
            })
            .collect()
    }
}

/// What the reader reported for one path (directory sizes are not compared).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    kind: EntryKind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: Option<u64>,
    /// SHA-256 of a file, target of a symlink.
    data: Option<Vec<u8>>,
}

fn sha(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// Deterministic pseudo-random bytes.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Run a tool, failing loudly when it is missing or fails.
/// Build an image of `size` from `tree` with extra mkfs options.
fn mkfs(dir: &Path, tree: &Tree, size: &str, opts: &[&str]) -> std::path::PathBuf {
    let proto = tree.protofile(dir);
    let img = dir.join("img");
    let mut cmd = Command::new("mkfs.xfs");
    // fstests' variables let mkfs make filesystems smaller than 300 MB.
    cmd.env("TEST_DIR", "1")
        .env("TEST_DEV", "1")
        .env("QA_CHECK_FS", "1");
    cmd.args(["-q", "-f", "-p"])
        .arg(&proto)
        .arg("-d")
        .arg(format!("file,name={},size={size}", img.display()));
    cmd.args(opts);
    run(&mut cmd);
    img
}

fn open(img: &Path) -> Result<XfsFs, FsError> {
    let src: SharedSource = Arc::new(FileSource::open(img).unwrap());
    XfsFs::open(src)
}

/// Walk the whole filesystem through the reader.
fn walk(fs: &XfsFs) -> BTreeMap<Vec<u8>, Seen> {
    let r = fs.reader().unwrap();
    let mut out = BTreeMap::new();
    let mut todo = vec![b"/".to_vec()];
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    while let Some(dir) = todo.pop() {
        for e in r.list_dir(&dir).unwrap() {
            let e = e.unwrap();
            assert!(
                (e.mtime - start).abs() < 3600,
                "{}: mtime {} is not from this test run",
                e.display_path(),
                e.mtime
            );
            let (size, data) = match e.kind {
                EntryKind::Dir => {
                    todo.push(e.path.clone());
                    (None, None)
                }
                EntryKind::File => (Some(e.size), Some(hash_file(&*r, &e))),
                EntryKind::Symlink => {
                    let mut t = Vec::new();
                    r.open_file(&e).unwrap().read_to_end(&mut t).unwrap();
                    (Some(e.size), Some(t))
                }
                EntryKind::Special => (Some(e.size), None),
            };
            let seen = Seen {
                kind: e.kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                size,
                data,
            };
            assert!(
                out.insert(e.path.clone(), seen).is_none(),
                "{} listed twice",
                e.display_path()
            );
        }
    }
    out
}

fn hash_file(r: &dyn FsReader, e: &amiscan::fs::Entry) -> Vec<u8> {
    let mut f = r.open_file(e).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    assert_eq!(total, e.size, "{}: read length", e.display_path());
    h.finalize().to_vec()
}

fn compare(tree: &Tree, fs: &XfsFs) {
    let want = tree.expected();
    let got = walk(fs);
    for (path, w) in &want {
        let p = String::from_utf8_lossy(path);
        let g = got
            .get(path)
            .unwrap_or_else(|| panic!("{p} missing from the listing"));
        assert_eq!(g, w, "{p}");
    }
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(extra.is_empty(), "unexpected entries: {extra:?}");
}

/// A tree with every directory size up to leaf form, files of awkward sizes, symlinks both
/// inline and remote, a 100-level path, special files, odd modes and ids and a non-UTF-8 name.
fn common_tree(t: &mut Tree) {
    for (name, count) in [("d5", 5usize), ("d50", 50), ("d500", 500)] {
        let d = format!("/{name}");
        t.dir(d.as_bytes());
        for i in 0..count {
            let p = format!("{d}/entry-with-a-longish-name-{i:04}");
            t.add(
                p.as_bytes(),
                Kind::File(format!("{name} {i}\n").into_bytes()),
                0o600 + (i as u32 % 0o100),
                i as u32,
                7,
            );
        }
    }
    t.dir(b"/files");
    for (i, len) in [
        0usize,
        1,
        511,
        4095,
        4096,
        4097,
        65537,
        (1 << 20) + 3,
        3 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        t.file(
            format!("/files/size-{len}").as_bytes(),
            bytes(i as u64 + 1, len),
        );
    }
    t.add(
        b"/files/setuid",
        Kind::File(b"#!/bin/sh\n".to_vec()),
        0o4755,
        4_000_000_000,
        4_000_000_001,
    );
    t.add(
        b"/files/setgid",
        Kind::File(b"x".to_vec()),
        0o2710,
        65534,
        0,
    );
    t.add(b"/files/fifo", Kind::Fifo, 0o600, 1, 2);
    t.file(b"/files/name-\xff\xfe-not-utf8", b"latin1".to_vec());
    t.add(
        b"/files/short-link",
        Kind::Link(b"../d5/entry-with-a-longish-name-0001".to_vec()),
        0o777,
        0,
        0,
    );
    let long: Vec<u8> = std::iter::repeat_n(&b"/a-long-component"[..], 40)
        .flatten()
        .copied()
        .collect();
    t.add(b"/files/long-link", Kind::Link(long), 0o777, 3, 4);
    let mut deep = String::new();
    for i in 0..100 {
        deep.push_str(&format!("/l{i}"));
        t.dir(deep.as_bytes());
    }
    t.file(
        format!("{deep}/bottom").as_bytes(),
        b"deep secret\n".to_vec(),
    );
}

fn image_test(opts: &[&str], size: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tree::default();
    common_tree(&mut t);
    let img = mkfs(dir.path(), &t, size, opts);
    if !opts.contains(&"crc=0") {
        fix_remote_symlink(&img, "/files", "long-link");
    }
    repair_check(&img);
    let fs = open(&img).unwrap();
    compare(&t, &fs);
}

/// `xfs_repair -n` must find nothing wrong: the image is valid XFS, not just what we expect.
fn repair_check(img: &Path) {
    run(Command::new("xfs_repair").arg("-n").arg(img));
}

/// The inode number of `name` in directory `dir`, from `xfs_db ls`.
fn ino_of(img: &Path, dir: &str, name: &str) -> u64 {
    let ls = xfs_db(img, false, &[&format!("ls {dir}")]);
    let line = ls
        .lines()
        .find(|l| l.split_whitespace().nth(5) == Some(name))
        .unwrap_or_else(|| panic!("{name} not in {ls}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Byte offset of file block `fblock` of inode `ino` (which must be mapped), from `xfs_db`.
fn block_offset(img: &Path, ino: u64, fblock: u64) -> u64 {
    let bmap = xfs_db(
        img,
        false,
        &[&format!("inode {ino}"), &format!("bmap {fblock} 1")],
    );
    let fsb: u64 = bmap
        .split("startblock ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let conv = xfs_db(img, false, &[&format!("convert fsblock {fsb} byte")]);
    xfs_db_byte(&conv)
}

/// mkfs.xfs 6.1 writes a v5 remote symlink's target without the `XSLM` block header (xfs_repair
/// reports "bad symlink header" and clears it; the kernel refuses it). Rewrite the block as the
/// kernel would, then let `xfs_db` recompute its CRC.
fn fix_remote_symlink(img: &Path, dir: &str, name: &str) {
    use std::os::unix::fs::FileExt;
    let ino = ino_of(img, dir, name);
    let off = block_offset(img, ino, 0);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut sb = [0u8; 264];
    f.read_exact_at(&mut sb, 0).unwrap();
    let bs = u32::from_be_bytes(sb[4..8].try_into().unwrap()) as usize;
    let mut size = [0u8; 8];
    let ioff = xfs_db(img, false, &[&format!("convert ino {ino} byte")]);
    let ioff = xfs_db_byte(&ioff);
    f.read_exact_at(&mut size, ioff + 56).unwrap();
    let len = u64::from_be_bytes(size) as usize;
    let mut blk = vec![0u8; bs];
    f.read_exact_at(&mut blk, off).unwrap();
    let target = blk[..len].to_vec();
    let mut fixed = vec![0u8; bs];
    fixed[0..4].copy_from_slice(b"XSLM");
    fixed[8..12].copy_from_slice(&(len as u32).to_be_bytes());
    fixed[16..32].copy_from_slice(&sb[32..48]);
    fixed[32..40].copy_from_slice(&ino.to_be_bytes());
    fixed[40..48].copy_from_slice(&(off / 512).to_be_bytes());
    fixed[56..56 + len].copy_from_slice(&target);
    f.write_all_at(&fixed, off).unwrap();
    drop(f);
    xfs_db(
        img,
        true,
        &[
            &format!("inode {ino}"),
            "dblock 0",
            "type symlink",
            "write lsn 0",
        ],
    );
}

#[test]
fn mkfs_is_installed() {
    let v = run(Command::new("mkfs.xfs").arg("-V"));
    assert!(v.contains("mkfs.xfs version"), "{v}");
}

#[test]
fn v5_block_size_1024_with_8k_directory_blocks() {
    image_test(&["-b", "size=1024", "-n", "size=8192"], "96m");
}

#[test]
fn v5_block_size_65536() {
    image_test(&["-b", "size=65536"], "256m");
}

#[test]
fn v5_4k_sectors() {
    image_test(&["-s", "size=4096"], "96m");
}

#[test]
fn v5_without_bigtime() {
    image_test(&["-m", "bigtime=0"], "96m");
}

#[test]
fn v4_without_ftype() {
    image_test(&["-m", "crc=0", "-n", "ftype=0"], "96m");
}

#[test]
fn v4_with_ftype() {
    image_test(&["-m", "crc=0", "-n", "ftype=1", "-b", "size=2048"], "96m");
}

/// Data fork format of inode `ino` as `xfs_db` prints it (`local`, `extents`, `btree`).
fn format_of(img: &Path, ino: u64) -> String {
    let out = xfs_db(img, false, &[&format!("inode {ino}"), "p core.format"]);
    out.split('(')
        .nth(1)
        .unwrap()
        .trim_end()
        .trim_end_matches(')')
        .to_string()
}

/// 40,000 entries: a node directory (data, leaf-node and free-index blocks) whose blocks
/// interleave with its files' data, so mkfs maps it with a bmap B+tree. Also checks that the
/// 5/50/500-entry directories have the shortform/block/leaf shapes the test claims.
#[test]
fn v5_node_directory_mapped_by_a_btree() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tree::default();
    common_tree(&mut t);
    t.dir(b"/big");
    for i in 0..40_000u32 {
        t.add(
            format!("/big/file-number-{i:06}").as_bytes(),
            Kind::File(format!("{i}\n").into_bytes()),
            0o640,
            i,
            i % 3,
        );
    }
    let img = mkfs(dir.path(), &t, "512m", &[]);
    fix_remote_symlink(&img, "/files", "long-link");
    let root = |name: &str| ino_of(&img, "/", name);
    assert_eq!(format_of(&img, root("d5")), "local");
    assert_eq!(format_of(&img, root("d50")), "extents");
    assert_eq!(format_of(&img, root("d500")), "extents");
    assert_eq!(format_of(&img, root("big")), "btree");
    // Leaf form: more than one directory block. Block form: exactly one.
    let size = |ino: u64| -> u64 {
        let out = xfs_db(&img, false, &[&format!("inode {ino}"), "p core.size"]);
        out.split('=').nth(1).unwrap().trim().parse().unwrap()
    };
    assert_eq!(size(root("d50")), 4096);
    assert!(size(root("d500")) > 4096);
    let bmap = xfs_db(&img, false, &[&format!("inode {}", root("big")), "bmap"]);
    assert!(
        bmap.contains("data offset 16777216"),
        "no free-index block: {bmap}"
    );
    repair_check(&img);
    compare(&t, &open(&img).unwrap());
}

/// Structures mkfs cannot make, written with `xfs_db -x` and checked by `xfs_repair -n`:
/// a file with a hole in the middle and past its last extent, a file whose only extent is
/// unwritten, and a file mapped by a bmap B+tree (40 one-block extents, each followed by a hole).
#[test]
fn v5_holes_unwritten_extents_and_btree_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tree::default();
    let holes_src = bytes(10, 16384);
    let unwritten_src = bytes(11, 8192);
    let btree_src = bytes(12, 40 * 4096);
    t.file(b"/holes", holes_src.clone());
    t.file(b"/unwritten", unwritten_src);
    t.file(b"/btree", btree_src.clone());
    t.file(b"/donor", bytes(13, 4096));
    let img = mkfs(dir.path(), &t, "64m", &[]);
    let startblock = |ino: u64| -> u64 {
        let out = xfs_db(&img, false, &[&format!("inode {ino}"), "bmap"]);
        out.split("startblock ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };

    // holes: [0,2) -> blocks 0-1 of the source, hole [2,5), [5,7) -> blocks 2-3, hole to 40000.
    let ino = ino_of(&img, "/", "holes");
    let sb = startblock(ino);
    xfs_db(
        &img,
        true,
        &[
            &format!("inode {ino}"),
            "write core.nextents 2",
            "write u3.bmx[0].blockcount 2",
            "write u3.bmx[1].startoff 5",
            &format!("write u3.bmx[1].startblock {}", sb + 2),
            "write u3.bmx[1].blockcount 2",
            "write core.size 40000",
        ],
    );
    let mut holes = holes_src[..8192].to_vec();
    holes.resize(5 * 4096, 0);
    holes.extend_from_slice(&holes_src[8192..]);
    holes.resize(40000, 0);

    let ino = ino_of(&img, "/", "unwritten");
    xfs_db(
        &img,
        true,
        &[&format!("inode {ino}"), "write u3.bmx[0].extentflag 1"],
    );

    // btree: the donor's block becomes the B+tree leaf; file block 2i maps source block i.
    let donor = ino_of(&img, "/", "donor");
    let leaf = startblock(donor);
    let ino = ino_of(&img, "/", "btree");
    let data = startblock(ino);
    let uuid = xfs_db(&img, false, &["sb 0", "p uuid"]);
    let uuid = uuid.split('=').nth(1).unwrap().trim().to_string();
    let daddr = block_offset(&img, donor, 0) / 512;
    let size = 80 * 4096 - 1000;
    let mut cmds: Vec<String> = vec![
        format!("inode {donor}"),
        "write core.nextents 0".into(),
        "write core.size 0".into(),
        "write core.nblocks 0".into(),
        format!("inode {ino}"),
        "write core.format 3".into(),
        "write core.nextents 40".into(),
        "write core.nblocks 41".into(),
        format!("write core.size {size}"),
        "write u3.bmbt.level 1".into(),
        "write u3.bmbt.numrecs 1".into(),
        "write u3.bmbt.keys[1].startoff 0".into(),
        format!("write u3.bmbt.ptrs[1] {leaf}"),
        format!("fsblock {leaf}"),
        "type bmapbtd".into(),
        "write -d magic 0x424d4133".into(),
        "write -d level 0".into(),
        "write -d numrecs 40".into(),
        "write -d leftsib -- -1".into(),
        "write -d rightsib -- -1".into(),
        format!("write -d bno {daddr}"),
        format!("write -d uuid {uuid}"),
        format!("write -d owner {ino}"),
        "write -d lsn 0".into(),
    ];
    for i in 0..40u64 {
        cmds.push(format!("write -d recs[{}].startoff {}", i + 1, 2 * i));
        cmds.push(format!("write -d recs[{}].startblock {}", i + 1, data + i));
        cmds.push(format!("write -d recs[{}].blockcount 1", i + 1));
        cmds.push(format!("write -d recs[{}].extentflag 0", i + 1));
    }
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    xfs_db(&img, true, &cmds);
    assert_eq!(format_of(&img, ino), "btree");
    let mut btree = vec![0u8; size];
    for (i, chunk) in btree_src.chunks(4096).enumerate() {
        btree[2 * i * 4096..2 * i * 4096 + 4096].copy_from_slice(chunk);
    }
    repair_check(&img);

    let mut want = Tree::default();
    want.file(b"/holes", holes);
    want.file(b"/unwritten", vec![0; 8192]);
    want.file(b"/btree", btree);
    want.file(b"/donor", Vec::new());
    compare(&want, &open(&img).unwrap());
}

/// A dirty log is replayed (mkfs's record, no longer an unmount record, holds no
/// transaction); one whose record header does not parse cannot be: the filesystem opens as it
/// is on disk and names the log, with its bytes to scan raw.
#[test]
fn dirty_and_unreadable_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tree::default();
    t.file(b"/f", b"x".to_vec());
    let img = mkfs(dir.path(), &t, "64m", &[]);
    let fs = open(&img).expect("a freshly made filesystem has a clean log");
    assert!(fs.open_problems().is_empty());
    assert!(fs.log_replay().is_none(), "clean");
    dirty_xfs_log(&img);
    let fs = open(&img).unwrap();
    assert!(fs.open_problems().is_empty());
    assert_eq!(fs.log_replay().map(|r| r.transactions), Some(0));
    compare(&t, &fs);
    // h_version = 6: not a log record version.
    let logstart = xfs_db(&img, false, &["sb 0", "p logstart"]);
    let logstart: u64 = logstart.split('=').nth(1).unwrap().trim().parse().unwrap();
    let base = xfs_db_byte(&xfs_db(
        &img,
        false,
        &[&format!("convert fsblock {logstart} byte")],
    ));
    let mut data = std::fs::read(&img).unwrap();
    data[base as usize + 11] = 6;
    std::fs::write(&img, &data).unwrap();
    let fs = open(&img).expect("the on-disk tree is readable");
    let problems = fs.open_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let msg = &problems[0].message;
    assert!(
        msg.contains("the log could not be replayed") && msg.contains("h_version"),
        "{msg}"
    );
    assert!(!problems[0].raw.is_empty());
    compare(&t, &fs);
}
