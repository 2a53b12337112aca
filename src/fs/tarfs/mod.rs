//! A tar archive as a filesystem: a rootfs tarball or a `docker export`, walked with every rule
//! a disk image gets.
//!
//! The archive is a [`Source`] (the `.tar` file itself, read by `pread`; a compressed one is
//! first decompressed as a stream into an unlinked temporary file by the caller,
//! `scan/target.rs`). [`index::index`] reads every header once and keeps, per member, its
//! metadata and where its data segments are in the archive — never the data. The tree is built
//! from the index: members in directories (missing parents made as directories, mode 0755,
//! owned by root), a later member of one path replacing an earlier one as extraction would,
//! hard links given their target's data and inode number. Files are read by positioned reads
//! from their segments, so the content scan reads them in archive order (`Entry::phys` is the
//! first data byte) and zips inside are opened by offset. The holes of a sparse file read as
//! zeros. What the index could not read (a truncated or corrupt archive) is an
//! [`OpenProblem`]: the scan reports it, is incomplete, and scans every member read before it;
//! a member cut by the end of the archive is read up to there and its file has an error.
//! Memory: the index, about 100 bytes plus the path per member.

pub mod header;
pub mod index;

use super::{Entry, EntryKind, Filesystem, FsError, FsReader, OpenProblem, SeekRead};
use crate::source::{SharedSource, Source};
use index::{Kind, Member, Segment};
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// The members of an archive, placed in directories.
struct Tree {
    src: SharedSource,
    members: Vec<Member>,
    /// Directory path → indices of its entries.
    children: HashMap<Vec<u8>, Vec<usize>>,
    problems: Vec<String>,
}

/// A tar archive read as a filesystem.
pub struct TarFs(Arc<Tree>);

fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => &path[..i],
    }
}

impl TarFs {
    /// Index the archive in `src` (one pass over its headers).
    pub fn open(src: SharedSource) -> TarFs {
        let ix = index::index(src.as_ref());
        let mut problems = ix.problems;
        let mut members = ix.members;
        // The last member of each path wins.
        let mut last: HashMap<Vec<u8>, usize> = HashMap::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            last.insert(m.path.clone(), i);
        }
        // Parents that no member names become directories.
        let mut missing: Vec<Vec<u8>> = Vec::new();
        for m in &members {
            let mut p = parent(&m.path);
            while p != b"/" && !last.contains_key(p) {
                last.insert(p.to_vec(), usize::MAX);
                missing.push(p.to_vec());
                p = parent(p);
            }
        }
        for path in missing {
            let i = members.len();
            last.insert(path.clone(), i);
            members.push(Member {
                path,
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
                size: 0,
                link: Vec::new(),
                data: Vec::new(),
                same_as: None,
            });
        }
        let mut children: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        let mut placed: Vec<(&Vec<u8>, usize)> = last
            .iter()
            .filter(|(p, _)| p.as_slice() != b"/")
            .map(|(p, &i)| (p, i))
            .collect();
        placed.sort_unstable();
        for (path, i) in placed {
            let dir = parent(path);
            if dir != b"/" && last.get(dir).is_some_and(|&d| members[d].kind != Kind::Dir) {
                problems.push(format!(
                    "{}: its parent {} is not a directory in the archive: not scanned",
                    String::from_utf8_lossy(path),
                    String::from_utf8_lossy(dir)
                ));
                continue;
            }
            children.entry(dir.to_vec()).or_default().push(i);
        }
        TarFs(Arc::new(Tree {
            src,
            members,
            children,
            problems,
        }))
    }
}

impl Tree {
    fn entry(&self, i: usize) -> Entry {
        let m = &self.members[i];
        Entry {
            path: m.path.clone(),
            kind: match m.kind {
                Kind::File => EntryKind::File,
                Kind::Dir => EntryKind::Dir,
                Kind::Symlink => EntryKind::Symlink,
                Kind::Special => EntryKind::Special,
            },
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            size: m.size,
            mtime: m.mtime,
            ino: u64::try_from(m.same_as.unwrap_or(i)).unwrap_or(u64::MAX - 1) + 1,
            phys: m.data.first().map_or(0, |s| s.phys),
        }
    }

    fn member(&self, entry: &Entry) -> Result<&Member, FsError> {
        usize::try_from(entry.ino)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.members.get(i))
            .ok_or_else(|| FsError::Other {
                context: entry.display_path(),
                message: "not a member of the archive".into(),
                at: Default::default(),
            })
    }
}

impl Filesystem for TarFs {
    fn name(&self) -> &'static str {
        "tar"
    }

    fn reader(&self) -> Result<Box<dyn FsReader>, FsError> {
        Ok(Box::new(TarReader(self.0.clone())))
    }

    fn open_problems(&self) -> Vec<OpenProblem> {
        self.0
            .problems
            .iter()
            .map(|p| OpenProblem {
                message: format!("tar archive {}: {p}", self.0.src.describe()),
                raw: Vec::new(),
            })
            .collect()
    }
}

struct TarReader(Arc<Tree>);

impl FsReader for TarReader {
    fn list_dir(&self, path: &[u8]) -> Result<Vec<Result<Entry, FsError>>, FsError> {
        let t = &self.0;
        let path: &[u8] = if path.is_empty() { b"/" } else { path };
        match t.children.get(path) {
            Some(c) => Ok(c.iter().map(|&i| Ok(t.entry(i))).collect()),
            None if path == b"/" => Ok(Vec::new()),
            None => {
                // An existing directory with no entries, or no directory at all.
                let is_dir = t
                    .children
                    .get(parent(path))
                    .into_iter()
                    .flatten()
                    .any(|&i| t.members[i].path == path && t.members[i].kind == Kind::Dir);
                if is_dir {
                    Ok(Vec::new())
                } else {
                    Err(FsError::Other {
                        context: String::from_utf8_lossy(path).into_owned(),
                        message: "no such directory in the archive".into(),
                        at: Default::default(),
                    })
                }
            }
        }
    }

    fn open_file<'a>(&'a self, entry: &Entry) -> Result<Box<dyn Read + 'a>, FsError> {
        Ok(Box::new(self.segments(entry)?))
    }

    fn open_seekable<'a>(
        &'a self,
        entry: &Entry,
    ) -> Result<Option<Box<dyn SeekRead + 'a>>, FsError> {
        Ok(Some(Box::new(self.segments(entry)?)))
    }

    /// A sparse member's data segments (the rest reads as zeros); a plain member is one.
    fn data_ranges(&self, entry: &Entry) -> Result<Option<Vec<std::ops::Range<u64>>>, FsError> {
        let m = self.0.member(entry)?;
        Ok(Some(
            m.data
                .iter()
                .map(|s| s.at.min(m.size)..s.at.saturating_add(s.len).min(m.size))
                .filter(|r| !r.is_empty())
                .collect(),
        ))
    }

    fn read_link(&self, entry: &Entry) -> Result<Vec<u8>, FsError> {
        Ok(self.0.member(entry)?.link.clone())
    }
}

impl TarReader {
    fn segments(&self, entry: &Entry) -> Result<Segments<'_>, FsError> {
        let m = self.0.member(entry)?;
        Ok(Segments {
            src: self.0.src.as_ref(),
            segs: &m.data,
            size: m.size,
            pos: 0,
        })
    }
}

/// A file's content: its segments in the archive, zeros between them.
struct Segments<'a> {
    src: &'a dyn Source,
    segs: &'a [Segment],
    size: u64,
    pos: u64,
}

/// Largest positioned read per call.
const CHUNK: u64 = 1 << 20;

impl Read for Segments<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let room = u64::try_from(buf.len()).unwrap_or(CHUNK).min(CHUNK);
        let i = self.segs.partition_point(|s| s.at + s.len <= self.pos);
        let n = match self.segs.get(i) {
            Some(s) if s.at <= self.pos => {
                let off = self.pos - s.at;
                let phys = s.phys.saturating_add(off);
                let avail = self.src.len().saturating_sub(phys);
                let n = room.min(s.len - off).min(avail);
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the archive ends at byte {} inside this member's data",
                            self.src.len()
                        ),
                    ));
                }
                let n_us = usize::try_from(n).unwrap_or(0);
                self.src
                    .read_at(phys, &mut buf[..n_us])
                    .map_err(io::Error::other)?;
                n
            }
            next => {
                let end = next.map_or(self.size, |s| s.at.min(self.size));
                let n = room.min(end - self.pos);
                buf[..usize::try_from(n).unwrap_or(0)].fill(0);
                n
            }
        };
        self.pos += n;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

impl Seek for Segments<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemSource;

    /// A ustar header with a correct checksum.
    fn header(name: &[u8], size: u64, kind: u8, link: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..107].copy_from_slice(b"0000640");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000052");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn push(out: &mut Vec<u8>, name: &[u8], data: &[u8], kind: u8, link: &[u8]) {
        out.extend(header(name, data.len() as u64, kind, link));
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }

    fn open(bytes: Vec<u8>) -> TarFs {
        TarFs::open(Arc::new(MemSource::new(bytes, "t.tar")))
    }

    fn read(fs: &TarFs, path: &[u8]) -> io::Result<Vec<u8>> {
        let r = fs.reader().unwrap();
        let dir = parent(path);
        let e = r
            .list_dir(dir)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .find(|e| e.path == path)
            .unwrap();
        let mut v = vec![];
        r.open_file(&e).unwrap().read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn members_hard_links_missing_parents_and_replacement() {
        let mut t = vec![];
        push(&mut t, b"./etc/", b"", b'5', b"");
        push(&mut t, b"./etc/shadow", b"old", b'0', b"");
        push(&mut t, b"./etc/shadow", b"root:x:1\n", b'0', b"");
        push(&mut t, b"./usr/lib/deep/file", b"deep", b'0', b"");
        push(&mut t, b"./etc/shadow-", b"", b'1', b"./etc/shadow");
        push(&mut t, b"./etc/evil", b"", b'2', b"/etc/shadow");
        push(&mut t, b"../escape", b"x", b'0', b"");
        t.extend([0u8; 1024]);
        let fs = open(t);
        assert_eq!(read(&fs, b"/etc/shadow").unwrap(), b"root:x:1\n");
        assert_eq!(read(&fs, b"/etc/shadow-").unwrap(), b"root:x:1\n");
        assert_eq!(read(&fs, b"/usr/lib/deep/file").unwrap(), b"deep");
        let r = fs.reader().unwrap();
        let etc: Vec<Entry> = r
            .list_dir(b"/etc")
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(etc.len(), 3);
        let evil = etc.iter().find(|e| e.path == b"/etc/evil").unwrap();
        assert_eq!(evil.kind, EntryKind::Symlink);
        assert_eq!(r.read_link(evil).unwrap(), b"/etc/shadow");
        let root: Vec<Vec<u8>> = r
            .list_dir(b"/")
            .unwrap()
            .into_iter()
            .map(|e| e.unwrap().path)
            .collect();
        assert_eq!(root, [b"/etc".to_vec(), b"/usr".to_vec()]);
        let problems = fs.open_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("../escape: a member whose path leaves")
        );
    }

    #[test]
    fn a_truncated_archive_keeps_what_came_before_and_says_where_it_ends() {
        let mut t = vec![];
        push(&mut t, b"a", b"first", b'0', b"");
        push(&mut t, b"b", &[b'x'; 3000], b'0', b"");
        t.extend([0u8; 1024]);
        let fs = open(t[..1024 + 512 + 1000].to_vec());
        assert_eq!(read(&fs, b"/a").unwrap(), b"first");
        let e = read(&fs, b"/b").unwrap_err();
        assert!(e.to_string().contains("ends at byte 2536"), "{e}");
        let p = fs.open_problems();
        assert_eq!(p.len(), 1);
        assert!(
            p[0].message.contains("inside the data of /b"),
            "{}",
            p[0].message
        );
        // Cut at a member boundary: no end-of-archive blocks.
        let fs = open(t[..1024].to_vec());
        assert_eq!(read(&fs, b"/a").unwrap(), b"first");
        assert!(
            fs.open_problems()[0]
                .message
                .contains("without its end-of-archive blocks")
        );
        // A corrupt header.
        let mut bad = t.clone();
        bad[1024 + 3] ^= 1;
        let fs = open(bad);
        assert!(
            fs.open_problems()[0]
                .message
                .contains("corrupt header at byte 1024")
        );
    }

    #[test]
    fn old_gnu_sparse_files_read_with_their_holes() {
        // Real size 10000: "AAAA" at 0, "BBBB" at 8192.
        let mut h = header(b"sparse", 8, b'S', b"");
        let put = |h: &mut Vec<u8>, at: usize, v: u64| {
            h[at..at + 11].copy_from_slice(format!("{v:011o}").as_bytes());
        };
        put(&mut h, 386, 0);
        put(&mut h, 398, 4);
        put(&mut h, 410, 8192);
        put(&mut h, 422, 4);
        put(&mut h, 483, 10000);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let mut t = h;
        t.extend_from_slice(b"AAAABBBB");
        t.resize(1024, 0);
        t.extend([0u8; 1024]);
        let fs = open(t);
        let got = read(&fs, b"/sparse").unwrap();
        assert_eq!(got.len(), 10000);
        assert_eq!(&got[..4], b"AAAA");
        assert!(got[4..8192].iter().all(|&b| b == 0));
        assert_eq!(&got[8192..8196], b"BBBB");
        assert!(got[8196..].iter().all(|&b| b == 0));
        assert!(fs.open_problems().is_empty());
    }

    #[test]
    fn long_names_and_pax_paths() {
        let long = [b"./".as_slice(), &[b'n'; 200]].concat();
        let mut t = vec![];
        push(
            &mut t,
            b"././@LongLink",
            &[long.as_slice(), b"\0"].concat(),
            b'L',
            b"",
        );
        push(&mut t, b"trunc", b"gnu", b'0', b"");
        let rec = b"26 path=pax/long/name.pem\n";
        push(&mut t, b"PaxHeaders/x", rec, b'x', b"");
        push(&mut t, b"short", b"pax", b'0', b"");
        t.extend([0u8; 1024]);
        let fs = open(t);
        let mut name = b"/".to_vec();
        name.extend_from_slice(&[b'n'; 200]);
        assert_eq!(read(&fs, &name).unwrap(), b"gnu");
        assert_eq!(read(&fs, b"/pax/long/name.pem").unwrap(), b"pax");
        assert!(fs.open_problems().is_empty());
    }
}
