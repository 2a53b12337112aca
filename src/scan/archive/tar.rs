//! A streaming tar reader (POSIX ustar, GNU long names, pax `path`/`size`, v7): headers are
//! parsed from a plain `Read`, member data is handed out as a `Read` and skipped when unread.
//! Nothing is held in memory but one header and, capped, a long name or pax record.

pub use crate::fs::tarfs::header::checksum_ok;
use crate::fs::tarfs::header::{cstr, number};
use std::io::{self, ErrorKind, Read};

/// Header block size.
const BLOCK: u64 = 512;
/// Longest GNU long name or pax header block accepted (real ones are a few hundred bytes).
const MAX_META: u64 = 64 * 1024;

/// One member of a tar archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Path as stored (long name or pax path when present).
    pub path: Vec<u8>,
    /// Size of the data that follows the header.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Whether it is a regular file (content to scan).
    pub regular: bool,
}

/// Reads a tar stream member by member.
pub struct TarReader<R> {
    inner: R,
    /// Data bytes of the current member not read yet.
    remaining: u64,
    /// Padding after the current member's data.
    padding: u64,
    done: bool,
}

fn corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("tar: {}", msg.into()))
}

/// Pull `path` and `size` out of pax extended header records (`<len> <key>=<value>\n`).
fn pax(mut data: &[u8], path: &mut Option<Vec<u8>>, size: &mut Option<u64>) {
    while !data.is_empty() {
        let Some(sp) = memchr::memchr(b' ', data) else {
            return;
        };
        let len = std::str::from_utf8(data.get(..sp).unwrap_or(&[]))
            .ok()
            .and_then(|s| s.parse::<usize>().ok());
        let Some(rec) = len.filter(|&l| l > sp).and_then(|l| data.get(..l)) else {
            return;
        };
        let kv = rec.get(sp + 1..).unwrap_or(&[]);
        let kv = kv.strip_suffix(b"\n").unwrap_or(kv);
        if let Some(eq) = memchr::memchr(b'=', kv) {
            let (k, v) = (&kv[..eq], &kv[eq + 1..]);
            match k {
                b"path" => *path = Some(v.to_vec()),
                b"size" => {
                    *size = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
                }
                _ => {}
            }
        }
        data = data.get(rec.len()..).unwrap_or(&[]);
    }
}

impl<R: Read> TarReader<R> {
    /// A reader over a tar stream.
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let got = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if got < n {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "tar: archive truncated inside a member",
            ));
        }
        Ok(())
    }

    /// Read a whole block; `Ok(false)` at a clean end of stream.
    fn block(&mut self, buf: &mut [u8; 512]) -> io::Result<bool> {
        let mut len = 0;
        while len < buf.len() {
            match self.inner.read(&mut buf[len..]) {
                Ok(0) if len == 0 => return Ok(false),
                Ok(0) => return Err(corrupt("archive truncated inside a header")),
                Ok(n) => len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn read_meta(&mut self, size: u64) -> io::Result<Vec<u8>> {
        if size > MAX_META {
            return Err(corrupt(format!(
                "extended header of {size} bytes (more than {MAX_META})"
            )));
        }
        let mut v = Vec::new();
        (&mut self.inner).take(size).read_to_end(&mut v)?;
        if (v.len() as u64) < size {
            return Err(corrupt("archive truncated inside an extended header"));
        }
        self.skip(size.next_multiple_of(BLOCK) - size)?;
        Ok(v)
    }

    /// The next member's header, skipping what is left of the current one. `None` at the end.
    pub fn next_member(&mut self) -> io::Result<Option<Member>> {
        if self.done {
            return Ok(None);
        }
        let rest = self.remaining.saturating_add(self.padding);
        self.remaining = 0;
        self.padding = 0;
        self.skip(rest)?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut pax_path: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        let mut buf = [0u8; 512];
        // Every pass consumes at least one block of a finite stream.
        loop {
            if !self.block(&mut buf)? || buf.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            if !checksum_ok(&buf) {
                return Err(corrupt("header checksum mismatch"));
            }
            let size = number(&buf[124..136]).ok_or_else(|| corrupt("bad size field"))?;
            let kind = buf[156];
            match kind {
                b'L' => {
                    long_name = Some(cstr(&self.read_meta(size)?).to_vec());
                    continue;
                }
                b'x' => {
                    let data = self.read_meta(size)?;
                    pax(&data, &mut pax_path, &mut pax_size);
                    continue;
                }
                b'K' | b'g' => {
                    self.skip(size.next_multiple_of(BLOCK))?;
                    continue;
                }
                _ => {}
            }
            let size = pax_size.unwrap_or(size);
            let name = cstr(&buf[0..100]);
            let path = if let Some(p) = pax_path.or(long_name) {
                p
            } else if &buf[257..263] == b"ustar\0" && buf[345] != 0 {
                let mut p = cstr(&buf[345..500]).to_vec();
                p.push(b'/');
                p.extend_from_slice(name);
                p
            } else {
                name.to_vec()
            };
            // Hard and symbolic links, devices, directories and FIFOs carry no data of their
            // own whatever their size field says (GNU tar writes 0; some writers do not).
            let regular =
                matches!(kind, b'0' | b'7' | b'S') || (kind == 0 && !path.ends_with(b"/"));
            let data = if matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
                0
            } else {
                size
            };
            self.remaining = data;
            self.padding = data.next_multiple_of(BLOCK) - data;
            return Ok(Some(Member {
                path,
                size,
                mode: u32::try_from(number(&buf[100..108]).unwrap_or(0) & 0o7777).unwrap_or(0),
                uid: u32::try_from(number(&buf[108..116]).unwrap_or(0)).unwrap_or(0),
                gid: u32::try_from(number(&buf[116..124]).unwrap_or(0)).unwrap_or(0),
                regular,
            }));
        }
    }

    /// The current member's data.
    pub fn data(&mut self) -> MemberData<'_, R> {
        MemberData { tar: self }
    }
}

/// The data of the current member; reading past the archive's end is an `UnexpectedEof` error.
pub struct MemberData<'a, R> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for MemberData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.tar.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.tar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "tar: archive truncated inside a member",
            ));
        }
        self.tar.remaining -= n.min(want) as u64;
        Ok(n.min(want))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ustar header with a correct checksum.
    pub(crate) fn header(name: &[u8], size: u64, kind: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name);
        h[100..107].copy_from_slice(b"0000600");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn archive(members: &[(&[u8], &[u8], u8)]) -> Vec<u8> {
        let mut out = vec![];
        for (name, data, kind) in members {
            out.extend(header(name, data.len() as u64, *kind));
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(512), 0);
        }
        out.extend([0u8; 1024]);
        out
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<(Member, Vec<u8>)>> {
        let mut t = TarReader::new(bytes);
        let mut out = vec![];
        while let Some(m) = t.next_member()? {
            let mut d = vec![];
            if m.path != b"skip" {
                t.data().read_to_end(&mut d)?;
            }
            out.push((m, d));
        }
        Ok(out)
    }

    #[test]
    fn members_long_names_and_pax_paths() {
        let long = vec![b'a'; 150];
        let pax_rec = b"30 path=pax/very/long/name.pem\n";
        let bytes = archive(&[
            (b"etc/", b"", b'5'),
            (b"skip", b"unread data is skipped", b'0'),
            (b"etc/shadow", b"root:x:1\n", b'0'),
            (b"././@LongLink", &[long.as_slice(), b"\0"].concat(), b'L'),
            (b"trunc", b"long", b'0'),
            (b"PaxHeaders/x", pax_rec, b'x'),
            (b"short", b"pax", b'0'),
        ]);
        let got = read_all(&bytes).unwrap();
        let names: Vec<&[u8]> = got.iter().map(|(m, _)| m.path.as_slice()).collect();
        assert_eq!(
            names,
            [
                b"etc/".as_slice(),
                b"skip",
                b"etc/shadow",
                &long,
                b"pax/very/long/name.pem"
            ]
        );
        assert!(!got[0].0.regular && got[2].0.regular);
        assert_eq!(got[2].1, b"root:x:1\n");
        assert_eq!(got[4].1, b"pax");
    }

    #[test]
    fn truncation_and_corruption_are_errors() {
        let bytes = archive(&[(b"a", &[b'x'; 600], b'0')]);
        assert!(read_all(&bytes[..700]).is_err());
        assert!(read_all(&bytes[..300]).is_err());
        let mut bad = bytes.clone();
        bad[10] = b'!';
        assert!(read_all(&bad).is_err());
        assert!(read_all(&[]).unwrap().is_empty());
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"   12 \0"), Some(0o12));
        assert_eq!(number(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(number(b"9"), None);
        assert_eq!(
            number(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    #[test]
    fn a_huge_extended_header_is_refused() {
        let mut bytes = header(b"x", MAX_META + 1, b'x');
        bytes.extend(vec![b'1'; 70_000]);
        assert!(read_all(&bytes).is_err());
    }
}
