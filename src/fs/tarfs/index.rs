//! One pass over a tar archive's headers, by positioned reads, into an index of its members:
//! path, type, metadata, link target, and where each data segment lies in the archive. Member
//! data is never read here (except a pax 1.0 sparse map, at the start of its member's data).
//!
//! Handles POSIX ustar (prefix field), GNU long names and link names (`L`, `K`), pax extended
//! headers (`path`, `linkpath`, `size`, `uid`, `gid`, `mtime`, the GNU sparse keys) and global
//! ones (read and ignored), GNU sparse files (old `S` headers with extension blocks; pax sparse
//! 0.0, 0.1 and 1.0), hard links (to an earlier member: the same data), directories, links and
//! special files. A later member of the same path replaces an earlier one, as extraction would.
//!
//! Bounds: at most [`MAX_MEMBERS`] members, [`MAX_META`] bytes per extended header, and
//! [`MAX_SEGMENTS`] data segments per sparse file. The first header that cannot be read (the
//! archive ends inside it or inside a member's data, a checksum fails, a field does not parse)
//! ends the index with a problem that names it and its offset; what came before is kept. An
//! archive without its end-of-archive blocks is a problem too: it may have been cut at a member
//! boundary. A member whose path leaves the root (`..`) is a problem and is not placed.

use super::header::{checksum_ok, cstr, number};
use crate::source::Source;

/// Header block size.
const BLOCK: u64 = 512;
/// Largest extended header (long name, pax record set) read.
pub const MAX_META: u64 = 1 << 20;
/// Most members indexed.
pub const MAX_MEMBERS: usize = 4_000_000;
/// Most data segments of one sparse file.
pub const MAX_SEGMENTS: usize = 1 << 18;

/// What a member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Regular file (also a hard link to one, and a sparse file).
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Device, FIFO.
    Special,
}

/// One data segment of a file: `len` bytes at file offset `at`, stored at archive offset `phys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Offset in the file.
    pub at: u64,
    /// Offset in the archive.
    pub phys: u64,
    /// Length.
    pub len: u64,
}

/// One member, placed.
#[derive(Clone, Debug)]
pub struct Member {
    /// Normalised absolute path (`/etc/shadow`; the root is `/`).
    pub path: Vec<u8>,
    /// Type.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time.
    pub mtime: i64,
    /// File size (the real size of a sparse file).
    pub size: u64,
    /// Link target (symbolic links).
    pub link: Vec<u8>,
    /// Data segments, ascending by `at`; the rest of the file reads as zeros.
    pub data: Vec<Segment>,
    /// The member whose data this is (a hard link's target), else itself.
    pub same_as: Option<usize>,
}

/// The members of an archive and what stopped the index, if anything.
#[derive(Debug, Default)]
pub struct Index {
    /// Members in archive order (replaced ones removed by the caller's tree).
    pub members: Vec<Member>,
    /// Problems: each makes the scan incomplete.
    pub problems: Vec<String>,
}

/// Normalise a member name into an absolute path; `None` when it leaves the root.
pub fn normalise(name: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(name.len().saturating_add(1));
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => {
                out.push(b'/');
                out.extend_from_slice(c);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Some(out)
}

/// The pax records this reader uses.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
    sparse_major: Option<u64>,
    sparse_name: Option<Vec<u8>>,
    sparse_size: Option<u64>,
    /// 0.0: offset/numbytes pairs in record order; 0.1: the `GNU.sparse.map` list.
    sparse_map: Vec<u64>,
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

impl Pax {
    fn records(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() && data[0] != 0 {
            let sp = memchr::memchr(b' ', data).ok_or("pax record without a length")?;
            let len = parse_u64(&data[..sp])
                .and_then(|l| usize::try_from(l).ok())
                .filter(|&l| l > sp && l <= data.len())
                .ok_or("pax record with a bad length")?;
            let rec = &data[sp + 1..len];
            let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
            if let Some(eq) = memchr::memchr(b'=', rec) {
                let (k, v) = (&rec[..eq], &rec[eq + 1..]);
                let mut map_push = |v: &[u8]| -> Result<(), String> {
                    if self.sparse_map.len() >= MAX_SEGMENTS * 2 {
                        return Err(format!("sparse map of more than {MAX_SEGMENTS} segments"));
                    }
                    self.sparse_map
                        .push(parse_u64(v).ok_or("bad number in a sparse map")?);
                    Ok(())
                };
                match k {
                    b"path" => self.path = Some(v.to_vec()),
                    b"linkpath" => self.linkpath = Some(v.to_vec()),
                    b"size" => self.size = parse_u64(v),
                    b"uid" => self.uid = parse_u64(v),
                    b"gid" => self.gid = parse_u64(v),
                    b"mtime" => {
                        let whole = v.split(|&b| b == b'.').next().unwrap_or(v);
                        self.mtime = std::str::from_utf8(whole).ok().and_then(|s| s.parse().ok());
                    }
                    b"GNU.sparse.major" => self.sparse_major = parse_u64(v),
                    b"GNU.sparse.name" => self.sparse_name = Some(v.to_vec()),
                    b"GNU.sparse.size" | b"GNU.sparse.realsize" => self.sparse_size = parse_u64(v),
                    b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => map_push(v)?,
                    b"GNU.sparse.map" => {
                        for n in v.split(|&b| b == b',').filter(|n| !n.is_empty()) {
                            map_push(n)?;
                        }
                    }
                    _ => {}
                }
            }
            data = &data[len..];
        }
        Ok(())
    }
}

/// Reads headers from a source.
struct Walker<'s> {
    src: &'s dyn Source,
    len: u64,
}

impl Walker<'_> {
    fn block(&self, at: u64, what: &str) -> Result<[u8; 512], String> {
        let mut b = [0u8; 512];
        if at.saturating_add(BLOCK) > self.len {
            return Err(format!("the archive ends inside {what} at byte {at}"));
        }
        self.src
            .read_at(at, &mut b)
            .map_err(|e| format!("{what} at byte {at}: {e}"))?;
        Ok(b)
    }

    fn bytes(&self, at: u64, n: u64, what: &str) -> Result<Vec<u8>, String> {
        if n > MAX_META {
            return Err(format!(
                "{what} at byte {at}: {n} bytes (more than {MAX_META})"
            ));
        }
        if at.saturating_add(n) > self.len {
            return Err(format!("the archive ends inside {what} at byte {at}"));
        }
        let mut v = vec![0u8; usize::try_from(n).map_err(|_| "too large")?];
        self.src
            .read_at(at, &mut v)
            .map_err(|e| format!("{what} at byte {at}: {e}"))?;
        Ok(v)
    }
}

/// Pairs of numbers as segments packed one after another from archive offset `phys`.
fn pack(pairs: &[(u64, u64)], mut phys: u64, real: u64) -> Result<Vec<Segment>, String> {
    let mut out = Vec::with_capacity(pairs.len());
    let mut end = 0u64;
    for &(at, len) in pairs {
        if at < end || at.checked_add(len).is_none_or(|e| e > real) {
            return Err(format!(
                "sparse map entry {at}+{len} out of order or past the file's size {real}"
            ));
        }
        if len > 0 {
            out.push(Segment { at, phys, len });
        }
        phys = phys.saturating_add(len);
        end = at + len;
    }
    Ok(out)
}

/// A sparse map: (offset in the file, length) per data segment, in order.
type Pairs = Vec<(u64, u64)>;

/// The old GNU sparse map of an `S` header (4 entries at 386, more in extension blocks).
fn gnu_sparse(w: &Walker<'_>, hdr: &[u8; 512], mut next: u64) -> Result<(Pairs, u64, u64), String> {
    let mut pairs = Vec::new();
    let entries = |block: &[u8], n: usize, pairs: &mut Vec<(u64, u64)>| -> Result<(), String> {
        for i in 0..n {
            let e = &block[i * 24..i * 24 + 24];
            if e[0] == 0 {
                break;
            }
            if pairs.len() >= MAX_SEGMENTS {
                return Err(format!("sparse map of more than {MAX_SEGMENTS} segments"));
            }
            let off = number(&e[..12]).ok_or("bad sparse offset")?;
            let len = number(&e[12..]).ok_or("bad sparse length")?;
            pairs.push((off, len));
        }
        Ok(())
    };
    entries(&hdr[386..482], 4, &mut pairs)?;
    let real = number(&hdr[483..495]).ok_or("bad sparse real size")?;
    let mut extended = hdr[482] != 0;
    while extended {
        let b = w.block(next, "a sparse extension header")?;
        entries(&b[..504], 21, &mut pairs)?;
        extended = b[504] != 0;
        next = next.saturating_add(BLOCK);
    }
    Ok((pairs, real, next))
}

/// The pax 1.0 sparse map at the start of the member's data: a count, then offset and length
/// per segment, one decimal number per line, padded to a block. Returns the pairs and the
/// bytes it takes.
fn pax1_map(w: &Walker<'_>, at: u64, stored: u64) -> Result<(Vec<(u64, u64)>, u64), String> {
    let mut nums: Vec<u64> = Vec::new();
    let mut want: Option<u64> = None;
    let mut cur: Option<u64> = None;
    let mut pos = 0u64;
    loop {
        if pos >= stored {
            return Err("sparse map longer than the member".into());
        }
        let b = w.block(at + pos, "a sparse map")?;
        pos += BLOCK;
        for &c in &b {
            match c {
                b'0'..=b'9' => {
                    cur = Some(
                        cur.unwrap_or(0)
                            .checked_mul(10)
                            .and_then(|v| v.checked_add(u64::from(c - b'0')))
                            .ok_or("sparse map number overflows")?,
                    );
                }
                b'\n' => {
                    let n = cur.take().ok_or("empty line in a sparse map")?;
                    match want {
                        None => {
                            if n > MAX_SEGMENTS as u64 {
                                return Err(format!(
                                    "sparse map of more than {MAX_SEGMENTS} segments"
                                ));
                            }
                            want = Some(n * 2);
                        }
                        Some(_) => nums.push(n),
                    }
                    if want.is_some_and(|w| nums.len() as u64 == w) {
                        let pairs = nums.chunks(2).map(|p| (p[0], p[1])).collect();
                        return Ok((pairs, pos));
                    }
                }
                _ => return Err("bad character in a sparse map".into()),
            }
        }
    }
}

/// Index the archive in `src`.
pub fn index(src: &dyn Source) -> Index {
    let w = Walker {
        src,
        len: src.len(),
    };
    let mut ix = Index::default();
    let mut at = 0u64;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax = Pax::default();
    let mut by_path: std::collections::HashMap<Vec<u8>, usize> = Default::default();
    loop {
        if at == w.len {
            ix.problems.push(format!(
                "the archive ends at byte {at} without its end-of-archive blocks: it may \
                 have been cut short"
            ));
            break;
        }
        let hdr = match w.block(at, "a header") {
            Ok(h) => h,
            Err(e) => {
                ix.problems.push(e);
                break;
            }
        };
        if hdr.iter().all(|&b| b == 0) {
            break;
        }
        if !checksum_ok(&hdr) {
            ix.problems.push(format!(
                "corrupt header at byte {at} (checksum mismatch): the members after it were \
                 not read"
            ));
            break;
        }
        let Some(size) = number(&hdr[124..136]) else {
            ix.problems
                .push(format!("corrupt header at byte {at}: bad size field"));
            break;
        };
        let data_at = at + BLOCK;
        let typ = hdr[156];
        let meta = |what: &str| w.bytes(data_at, size, what);
        let skip = data_at.saturating_add(size.next_multiple_of(BLOCK));
        let step: Result<(), String> = match typ {
            b'L' => meta("a GNU long name").map(|v| long_name = Some(cstr(&v).to_vec())),
            b'K' => meta("a GNU long link name").map(|v| long_link = Some(cstr(&v).to_vec())),
            b'x' => meta("a pax header").and_then(|v| pax.records(&v)),
            b'g' => meta("a pax global header").map(|_| ()),
            _ => {
                let r = member(&w, &hdr, at, size, &mut long_name, &mut long_link, &mut pax);
                match r {
                    Ok((m, next)) => {
                        let path = m
                            .as_ref()
                            .and_then(|m| m.as_ref().ok())
                            .map(|m| m.path.clone());
                        if let Some(m) = m {
                            place(&mut ix, &mut by_path, m, data_at);
                        }
                        if next > w.len {
                            let what = path.map_or_else(
                                || "a member".to_string(),
                                |p| String::from_utf8_lossy(&p).into_owned(),
                            );
                            ix.problems.push(format!(
                                "the archive ends at byte {} inside the data of {what} \
                                 (header at byte {at}): what it holds before that was scanned",
                                w.len
                            ));
                            break;
                        }
                        at = next;
                        if ix.members.len() >= MAX_MEMBERS {
                            ix.problems.push(format!(
                                "more than {MAX_MEMBERS} members: the rest were not read"
                            ));
                            break;
                        }
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = step {
            ix.problems
                .push(format!("{e}: the members after it were not read"));
            break;
        }
        at = skip;
    }
    ix
}

/// Put member `m` (or the problem it has) in the index.
fn place(
    ix: &mut Index,
    by_path: &mut std::collections::HashMap<Vec<u8>, usize>,
    m: Result<Member, String>,
    data_at: u64,
) {
    let mut m = match m {
        Ok(m) => m,
        Err(e) => {
            ix.problems.push(e);
            return;
        }
    };
    if m.same_as == Some(usize::MAX) {
        // A hard link: the data of the member it names.
        match by_path.get(&m.link).map(|&i| &ix.members[i]) {
            Some(t) if t.kind == Kind::File => {
                m.size = t.size;
                m.data = t.data.clone();
                m.same_as = Some(t.same_as.unwrap_or(by_path[&m.link]));
                m.link.clear();
            }
            _ => {
                ix.problems.push(format!(
                    "{}: a hard link to {}, which is not a file earlier in the archive (header \
                     at byte {})",
                    String::from_utf8_lossy(&m.path),
                    String::from_utf8_lossy(&m.link),
                    data_at - BLOCK
                ));
                return;
            }
        }
    }
    let i = ix.members.len();
    by_path.insert(m.path.clone(), i);
    ix.members.push(m);
}

/// A member header (not an extended one) at `at`: the member, and where the next header is.
/// The outer error ends the index; the inner one is a problem of this member only.
fn member(
    w: &Walker<'_>,
    hdr: &[u8; 512],
    at: u64,
    size: u64,
    long_name: &mut Option<Vec<u8>>,
    long_link: &mut Option<Vec<u8>>,
    pax: &mut Pax,
) -> Result<(Option<Result<Member, String>>, u64), String> {
    let pax = std::mem::take(pax);
    let typ = hdr[156];
    let name = cstr(&hdr[0..100]);
    let raw_path = if let Some(p) = pax.sparse_name.clone().or(pax.path.clone()) {
        p
    } else if let Some(p) = long_name.take() {
        p
    } else if &hdr[257..263] == b"ustar\0" && hdr[345] != 0 {
        let mut p = cstr(&hdr[345..500]).to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    } else {
        name.to_vec()
    };
    *long_name = None;
    let link = pax
        .linkpath
        .clone()
        .or(long_link.take())
        .unwrap_or_else(|| cstr(&hdr[157..257]).to_vec());
    *long_link = None;
    let stored = pax.size.unwrap_or(size);
    let mut data_at = at + BLOCK;
    let kind = match typ {
        b'0' | b'7' | b'S' | b'1' => Kind::File,
        0 if raw_path.ends_with(b"/") => Kind::Dir,
        0 => Kind::File,
        b'5' | b'D' => Kind::Dir,
        b'2' => Kind::Symlink,
        b'3' | b'4' | b'6' => Kind::Special,
        b'V' => {
            // A volume label: no member.
            let next = data_at.saturating_add(stored.next_multiple_of(BLOCK));
            return Ok((None, next));
        }
        b'M' => {
            return Err(format!(
                "a multi-volume continuation header at byte {at} (unsupported)"
            ));
        }
        // POSIX: an unknown type is read as a regular file.
        _ => Kind::File,
    };
    // Links, directories and devices carry no data whatever their size field says.
    let stored = if matches!(typ, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
        0
    } else {
        stored
    };
    let mut real = stored;
    let mut pairs: Option<Vec<(u64, u64)>> = None;
    if typ == b'S' {
        let (p, r, next) = gnu_sparse(w, hdr, data_at)?;
        data_at = next;
        pairs = Some(p);
        real = r;
    } else if pax.sparse_major == Some(1) {
        let (p, used) = pax1_map(w, data_at, stored)?;
        data_at += used;
        pairs = Some(p);
        real = pax
            .sparse_size
            .ok_or("pax sparse file without GNU.sparse.realsize")?;
    } else if !pax.sparse_map.is_empty() {
        let p: Vec<(u64, u64)> = pax
            .sparse_map
            .chunks(2)
            .map(|c| (c[0], c.get(1).copied().unwrap_or(0)))
            .collect();
        pairs = Some(p);
        real = pax
            .sparse_size
            .ok_or("pax sparse file without GNU.sparse.size")?;
    }
    let stored_after_map = stored.saturating_sub(data_at - (at + BLOCK));
    let next = data_at.saturating_add(stored_after_map.next_multiple_of(BLOCK));
    let data = match &pairs {
        Some(p) => pack(p, data_at, real).map_err(|e| format!("header at byte {at}: {e}"))?,
        None if kind == Kind::File && stored > 0 => vec![Segment {
            at: 0,
            phys: data_at,
            len: stored,
        }],
        None => vec![],
    };
    let Some(path) = normalise(&raw_path) else {
        return Ok((
            Some(Err(format!(
                "{}: a member whose path leaves the archive's root (header at byte {at}): not \
                 scanned",
                String::from_utf8_lossy(&raw_path)
            ))),
            next,
        ));
    };
    let (link, same_as) = if typ == b'1' {
        match normalise(&link) {
            Some(l) => (l, Some(usize::MAX)),
            None => {
                return Ok((
                    Some(Err(format!(
                        "{}: a hard link whose target leaves the archive's root (header at byte \
                         {at}): not scanned",
                        String::from_utf8_lossy(&raw_path)
                    ))),
                    next,
                ));
            }
        }
    } else {
        (link, None)
    };
    let num = |r: std::ops::Range<usize>| number(&hdr[r]).unwrap_or(0);
    Ok((
        Some(Ok(Member {
            path,
            kind,
            mode: u32::try_from(num(100..108) & 0o7777).unwrap_or(0),
            uid: u32::try_from(pax.uid.unwrap_or_else(|| num(108..116))).unwrap_or(u32::MAX),
            gid: u32::try_from(pax.gid.unwrap_or_else(|| num(116..124))).unwrap_or(u32::MAX),
            mtime: pax
                .mtime
                .unwrap_or_else(|| i64::try_from(num(136..148)).unwrap_or(0)),
            size: if kind == Kind::File { real } else { 0 },
            link: if kind == Kind::Symlink || typ == b'1' {
                link
            } else {
                Vec::new()
            },
            data,
            same_as,
        })),
        next,
    ))
}
