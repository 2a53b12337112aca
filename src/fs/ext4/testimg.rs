//! Small images made by the real `mke2fs` (without `metadata_csum`, so a patch reaches the
//! reader's own bounds instead of a checksum error) for the regression tests of the ext4 reader: 1 KiB
//! blocks, a 120-entry directory, a fragmented file (24 one-block extents: an extent tree with
//! an index block), and a sparse file (a double-indirect block in a block map).

use super::Ext4Fs;
use crate::fs::{Entry, EntryKind, Filesystem, FsError, FsReader};
use crate::source::{MemSource, SharedSource};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// An image file and the directory it lives in.
pub(super) struct Img {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

fn sh(script: &str, dir: &std::path::Path) -> String {
    let out = Command::new("sh")
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("E2FSPROGS_FAKE_TIME", "1704067200")
        .current_dir(dir)
        .args(["-ec", script])
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `mke2fs -t <kind> -b 1024` of the test tree (directories indexed by `e2fsck -D`).
pub(super) fn build(kind: &str) -> Img {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sh(
        &format!(
            "mkdir -p tree/etc tree/many tree/var
             echo root:x:0:0 > tree/etc/passwd
             i=0; while [ $i -lt 120 ]; do i=$((i+1)); echo $i > tree/many/entry-with-a-long-name-$i; done
             python3 - <<'PY'
with open('tree/var/frag', 'wb') as f:
    for i in range(24):
        f.seek(i * 3 * 1024)
        f.write(b'piece %d\\n' % i)
with open('tree/var/sparse', 'wb') as f:
    f.write(b'head')
    f.seek(300 * 1024)
    f.write(b'tail')
PY
             MKE2FS_CONFIG={conf} mke2fs -q -t {kind} -O ^metadata_csum -b 1024 -N 256 -d tree -F fs.img 3M >/dev/null 2>&1
             e2fsck -fyD fs.img >/dev/null 2>&1 || [ $? -eq 1 ]",
            conf = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/mke2fs.conf"),
        ),
        d,
    );
    Img {
        path: d.join("fs.img"),
        _dir: dir,
    }
}

impl Img {
    /// The output of `debugfs -R cmd`.
    pub fn debugfs(&self, cmd: &str) -> String {
        sh(
            &format!("debugfs -R '{cmd}' {} 2>/dev/null", self.path.display()),
            self.path.parent().unwrap(),
        )
    }

    /// Byte offset of inode `path`'s on-disk inode (`debugfs imap`).
    pub fn inode_at(&self, path: &str) -> usize {
        let out = self.debugfs(&format!("imap {path}"));
        // "Inode 12 is part of block group 0\n\tlocated at block 38, offset 0x0b00"
        let rest = out.split("located at block ").nth(1).expect("imap output");
        let (block, off) = rest.split_once(", offset 0x").unwrap();
        let block: usize = block.trim().parse().unwrap();
        let off = usize::from_str_radix(off.trim(), 16).unwrap();
        block * 1024 + off
    }

    /// The image's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

/// Open `bytes` with the native reader.
pub(super) fn open(bytes: Vec<u8>) -> Result<(Ext4Fs, Box<dyn FsReader>), FsError> {
    let src: SharedSource = Arc::new(MemSource::new(bytes, "test"));
    let fs = Ext4Fs::open(src)?;
    let r = fs.reader()?;
    Ok((fs, r))
}

/// The entry `name` of directory `dir`.
pub(super) fn entry(r: &dyn FsReader, dir: &[u8], name: &[u8]) -> Entry {
    let want = crate::fs::join(dir, name);
    r.list_dir(dir)
        .unwrap()
        .into_iter()
        .flatten()
        .find(|e| e.path == want)
        .unwrap_or_else(|| panic!("{} not found", String::from_utf8_lossy(&want)))
}

/// The whole content of `e`, or the error of opening or reading it.
pub(super) fn read(r: &dyn FsReader, e: &Entry) -> Result<Vec<u8>, String> {
    assert_eq!(e.kind, EntryKind::File);
    let mut f = r.open_file(e).map_err(|e| e.to_string())?;
    let mut out = vec![];
    std::io::Read::read_to_end(&mut f, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

pub(super) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(super) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
