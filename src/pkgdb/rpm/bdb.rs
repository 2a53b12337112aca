//! A read-only reader of the Berkeley DB *hash* databases rpm used before its sqlite backend
//! (`/var/lib/rpm/Packages` on Amazon Linux 2, RHEL/CentOS 7 and 8), modelled on rpm's own
//! `lib/backend/bdb_ro.c`.
//!
//! Page 0 is the metadata page: the hash magic `0x061561` at offset 12 in the byte order of the
//! machine that wrote the file (which fixes the order of every other field), the page size at
//! 20 and the last page number at 32. Every other page starts with a 26-byte header: its own
//! number at 8, the next page at 16, the item count at 20, `hf_offset` at 22 and the type at 25.
//! Hash pages (types 2 and 13) hold an array of u16 item offsets after the header, in pairs
//! (key, data); an item is `H_KEYDATA` (type byte 1, then the bytes inline) or `H_OFFPAGE`
//! (type byte 3; first page at +4, total length at +8) whose bytes follow a chain of overflow
//! pages (type 7, `hf_offset` bytes used on each, linked by the next-page field).
//!
//! Every page is visited once, in order (bucket pages BDB never wrote are zeros, and skipped);
//! a page number, offset or length outside the file, an
//! overflow chain longer than the file or looping, a value above a cap: a [`BdbError`].

use thiserror::Error;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

/// Why a Berkeley DB file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BdbError {
    /// No hash magic on page 0 (a btree, another format, or garbage).
    #[error("not a Berkeley DB hash database")]
    NotHash,
    /// A hash version rpm's reader does not know either.
    #[error("unsupported Berkeley DB hash version {0}")]
    Version(u32),
    /// A page size that is not a power of two between 512 and 65536.
    #[error("invalid page size {0}")]
    PageSize(u32),
    /// The file ends before the page the metadata or an item points to.
    #[error("page {0} is past the end of the file")]
    PageOutOfRange(u32),
    /// A page whose header or items do not fit it.
    #[error("page {page}: {why}")]
    CorruptPage {
        /// Page number.
        page: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// An item larger than the caller's cap.
    #[error("item of {0} bytes on page {1} exceeds the limit")]
    TooLarge(u32, u32),
}

/// Byte order of the database's integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Written on a little-endian machine (x86, arm64).
    Little,
    /// Written on a big-endian machine (s390x, old ppc).
    Big,
}

impl Endian {
    /// A u32 in this order at `at`, if in bounds.
    pub fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(s),
            Endian::Big => u32::from_be_bytes(s),
        })
    }

    fn u16(self, b: &[u8], at: usize) -> Option<usize> {
        let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(usize::from(match self {
            Endian::Little => u16::from_le_bytes(s),
            Endian::Big => u16::from_be_bytes(s),
        }))
    }
}

/// An open hash database over the whole file's bytes.
pub struct HashDb<'a> {
    data: &'a [u8],
    /// Byte order of the file.
    pub endian: Endian,
    page_size: usize,
    /// Number of pages, from the metadata's last page number (checked against the file).
    pages: u32,
}

impl<'a> HashDb<'a> {
    /// Check page 0 of `data` and learn the byte order and page geometry.
    pub fn open(data: &'a [u8]) -> Result<HashDb<'a>, BdbError> {
        let endian = match (Endian::Little.u32(data, 12), Endian::Big.u32(data, 12)) {
            (Some(HASH_MAGIC), _) => Endian::Little,
            (_, Some(HASH_MAGIC)) => Endian::Big,
            _ => return Err(BdbError::NotHash),
        };
        let field = |at| endian.u32(data, at).ok_or(BdbError::NotHash);
        let version = field(16)?;
        if !(8..=10).contains(&version) {
            return Err(BdbError::Version(version));
        }
        let page_size = field(20)?;
        if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(BdbError::PageSize(page_size));
        }
        let last = field(32)?;
        let page_size = page_size as usize;
        let pages = last.checked_add(1).ok_or(BdbError::PageOutOfRange(last))?;
        if (pages as usize).saturating_mul(page_size) > data.len() {
            return Err(BdbError::PageOutOfRange(last));
        }
        Ok(HashDb {
            data,
            endian,
            page_size,
            pages,
        })
    }

    /// Page `n`, checked to carry its own number.
    fn page(&self, n: u32) -> Result<&'a [u8], BdbError> {
        if n == 0 || n >= self.pages {
            return Err(BdbError::PageOutOfRange(n));
        }
        let start = (n as usize)
            .checked_mul(self.page_size)
            .ok_or(BdbError::PageOutOfRange(n))?;
        let page = self
            .data
            .get(start..start.saturating_add(self.page_size))
            .ok_or(BdbError::PageOutOfRange(n))?;
        if self.endian.u32(page, 8) != Some(n) {
            return Err(BdbError::CorruptPage {
                page: n,
                why: "page number does not match its position",
            });
        }
        Ok(page)
    }

    /// Call `visit(key, value)` for every pair of every hash page, in page order. Values
    /// longer than `max_item` bytes are an error. Stops at the first error, or when `visit`
    /// returns `false`.
    pub fn for_each(
        &self,
        max_item: usize,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), BdbError> {
        // Each overflow page belongs to one item, so all the off-page items of a file hold at
        // most the file's bytes. Items that share a chain (thousands of 12-byte references to
        // one 64 MiB chain) would otherwise copy terabytes.
        let mut overflow_left = self.data.len();
        for n in 1..self.pages {
            // Pages of other types (overflow, free, and bucket pages never written, which are
            // all zeros) are skipped before their page number is checked.
            let kind = self
                .data
                .get(
                    (n as usize)
                        .saturating_mul(self.page_size)
                        .saturating_add(25),
                )
                .copied()
                .unwrap_or(0);
            if kind != P_HASH && kind != P_HASH_UNSORTED {
                continue;
            }
            let page = self.page(n)?;
            let corrupt = |why| BdbError::CorruptPage { page: n, why };
            let nitems = self.endian.u16(page, 20).ok_or(corrupt("short"))?;
            let min_off = PAGE_HEADER + nitems * 2;
            if min_off > self.page_size {
                return Err(corrupt("more items than fit the page"));
            }
            let offset = |i: usize| -> Result<usize, BdbError> {
                let off = self
                    .endian
                    .u16(page, PAGE_HEADER + 2 * i)
                    .ok_or(corrupt("short index"))?;
                if off < min_off || off >= self.page_size {
                    return Err(corrupt("item offset outside the page"));
                }
                Ok(off)
            };
            let mut i = 0;
            while i + 1 < nitems {
                let koff = offset(i)?;
                let voff = offset(i + 1)?;
                // Items are packed from the end of the page down: a key ends where the item
                // before it starts.
                let kend = if i == 0 {
                    self.page_size
                } else {
                    offset(i - 1)?
                };
                if kend <= koff || koff <= voff {
                    return Err(corrupt("items overlap"));
                }
                let key = self.item(n, &page[koff..kend], max_item, &mut overflow_left)?;
                let value = self.item(n, &page[voff..koff], max_item, &mut overflow_left)?;
                if !visit(&key, &value) {
                    return Ok(());
                }
                i += 2;
            }
        }
        Ok(())
    }

    /// The bytes of one item: inline, or gathered from its overflow chain.
    fn item(
        &self,
        page: u32,
        item: &'a [u8],
        max: usize,
        overflow_left: &mut usize,
    ) -> Result<std::borrow::Cow<'a, [u8]>, BdbError> {
        let corrupt = |why| BdbError::CorruptPage { page, why };
        match item.first().copied() {
            Some(H_KEYDATA) => Ok(std::borrow::Cow::Borrowed(&item[1..])),
            Some(H_OFFPAGE) => {
                if item.len() != 12 {
                    return Err(corrupt("off-page item of the wrong size"));
                }
                let first = self.endian.u32(item, 4).ok_or(corrupt("short item"))?;
                let total = self.endian.u32(item, 8).ok_or(corrupt("short item"))?;
                if total as usize > max {
                    return Err(BdbError::TooLarge(total, page));
                }
                if total as usize > self.data.len() {
                    return Err(corrupt("off-page item longer than the file"));
                }
                *overflow_left = overflow_left
                    .checked_sub(total as usize)
                    .ok_or(corrupt("off-page items hold more bytes than the file"))?;
                self.overflow(first, total as usize)
                    .map(std::borrow::Cow::Owned)
            }
            _ => Err(corrupt("unknown item type")),
        }
    }

    /// `len` bytes from the overflow chain starting at page `first`.
    fn overflow(&self, first: u32, len: usize) -> Result<Vec<u8>, BdbError> {
        let mut out = Vec::with_capacity(len);
        let mut n = first;
        // Each page adds at least one byte and there are `pages` pages: a longer chain loops.
        let mut steps = 0u32;
        while out.len() < len {
            steps += 1;
            if steps > self.pages {
                return Err(BdbError::CorruptPage {
                    page: n,
                    why: "overflow chain loops",
                });
            }
            let page = self.page(n)?;
            let corrupt = |why| BdbError::CorruptPage { page: n, why };
            if page.get(25) != Some(&P_OVERFLOW) {
                return Err(corrupt("overflow chain reaches a page of another type"));
            }
            let used = self.endian.u16(page, 22).ok_or(corrupt("short"))?;
            let chunk = page
                .get(PAGE_HEADER..PAGE_HEADER.saturating_add(used))
                .ok_or(corrupt("overflow length past the page"))?;
            if used == 0 || used > len - out.len() {
                return Err(corrupt("overflow length does not match the item"));
            }
            out.extend_from_slice(chunk);
            n = self.endian.u32(page, 16).ok_or(corrupt("short"))?;
        }
        Ok(out)
    }
}

/// Berkeley DB hash files for tests, laid out as `db_load -t hash` would (one bucket page per
/// pair; values longer than fit a page go to overflow pages).
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    fn put16(p: &mut [u8], at: usize, v: usize, e: Endian) {
        let v = v as u16;
        p[at..at + 2].copy_from_slice(&match e {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        });
    }

    fn put32(p: &mut [u8], at: usize, v: u32, e: Endian) {
        p[at..at + 4].copy_from_slice(&match e {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        });
    }

    /// A hash file with `pairs`, page size `ps`.
    pub fn file(pairs: &[(Vec<u8>, Vec<u8>)], ps: usize, e: Endian) -> Vec<u8> {
        let mut pages: Vec<Vec<u8>> = vec![vec![0; ps]];
        put32(&mut pages[0], 12, HASH_MAGIC, e);
        put32(&mut pages[0], 16, 9, e);
        put32(&mut pages[0], 20, ps as u32, e);
        for (k, v) in pairs {
            let n = pages.len();
            let mut page = vec![0; ps];
            put32(&mut page, 8, n as u32, e);
            page[25] = P_HASH;
            put16(&mut page, 20, 2, e);
            let mut end = ps;
            let mut overflow = Vec::new();
            for (slot, item) in [(0usize, k), (1, v)] {
                let bytes = if item.len() + 1 + 30 + 4 > ps / 2 {
                    // Overflow: chain pages after this one.
                    let first = n + 1 + overflow.len();
                    let chunk = ps - PAGE_HEADER;
                    let chunks: Vec<&[u8]> = item.chunks(chunk).collect();
                    for (j, c) in chunks.iter().enumerate() {
                        let no = first + j;
                        let mut op = vec![0; ps];
                        put32(&mut op, 8, no as u32, e);
                        let next = if j + 1 < chunks.len() { no + 1 } else { 0 };
                        put32(&mut op, 16, next as u32, e);
                        put16(&mut op, 22, c.len(), e);
                        op[25] = P_OVERFLOW;
                        op[PAGE_HEADER..PAGE_HEADER + c.len()].copy_from_slice(c);
                        overflow.push(op);
                    }
                    let mut it = vec![H_OFFPAGE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                    put32(&mut it, 4, first as u32, e);
                    put32(&mut it, 8, item.len() as u32, e);
                    it
                } else {
                    let mut it = vec![H_KEYDATA];
                    it.extend(item);
                    it
                };
                end -= bytes.len();
                page[end..end + bytes.len()].copy_from_slice(&bytes);
                put16(&mut page, PAGE_HEADER + 2 * slot, end, e);
            }
            pages.push(page);
            pages.extend(overflow);
        }
        let last = pages.len() as u32 - 1;
        put32(&mut pages[0], 32, last, e);
        pages.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::build::file;
    use super::*;

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn pairs() -> Pairs {
        vec![
            (1u32.to_le_bytes().to_vec(), b"small header".to_vec()),
            (
                2u32.to_le_bytes().to_vec(),
                (0..3000u32).map(|i| i as u8).collect(),
            ),
        ]
    }

    fn read(data: &[u8]) -> Result<Pairs, BdbError> {
        let db = HashDb::open(data)?;
        let mut out = Vec::new();
        db.for_each(1 << 20, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        })?;
        Ok(out)
    }

    #[test]
    fn reads_inline_and_overflow_items_in_both_byte_orders() {
        for e in [Endian::Little, Endian::Big] {
            let f = file(&pairs(), 512, e);
            assert_eq!(HashDb::open(&f).unwrap().endian, e);
            assert_eq!(read(&f).unwrap(), pairs());
        }
    }

    #[test]
    fn bucket_pages_never_written_are_skipped() {
        // db_load leaves empty buckets as zero pages: page 1 here.
        let mut f = file(&pairs(), 512, Endian::Little);
        f[512..1024].fill(0);
        assert_eq!(read(&f).unwrap(), pairs()[1..]);
    }

    #[test]
    fn rejects_other_files() {
        assert_eq!(read(b"").err(), Some(BdbError::NotHash));
        assert_eq!(read(&[0u8; 4096]).err(), Some(BdbError::NotHash));
        let mut f = file(&pairs(), 512, Endian::Little);
        f[16] = 7;
        assert_eq!(read(&f).err(), Some(BdbError::Version(7)));
        let mut f = file(&pairs(), 512, Endian::Little);
        f[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(read(&f).err(), Some(BdbError::PageSize(1000)));
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let f = file(&pairs(), 512, Endian::Little);
        for n in (0..f.len()).step_by(97) {
            assert!(read(&f[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn an_overflow_loop_is_an_error() {
        let mut f = file(&pairs(), 512, Endian::Little);
        // Page 3 is the first overflow page of the second value: point it at itself and
        // claim a length the chain never reaches without looping.
        let p = 3 * 512;
        assert_eq!(f[p + 25], P_OVERFLOW);
        f[p + 16..p + 20].copy_from_slice(&3u32.to_le_bytes());
        let err = read(&f).unwrap_err();
        assert!(
            matches!(err, BdbError::CorruptPage { why, .. } if why.contains("overflow")),
            "{err}"
        );
    }

    #[test]
    fn huge_lengths_and_counts_are_errors() {
        let f = file(&pairs(), 512, Endian::Little);
        // Off-page item of the second pair: its total length.
        let page = 2 * 512;
        let voff = usize::from(u16::from_le_bytes([f[page + 28], f[page + 29]]));
        let mut g = f.clone();
        g[page + voff + 8..page + voff + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&g).is_err());
        let db = HashDb::open(&f).unwrap();
        assert_eq!(
            db.for_each(100, &mut |_, _| true),
            Err(BdbError::TooLarge(3000, 2))
        );
        let mut g = f.clone();
        g[page + 20..page + 22].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(read(&g).is_err());
        let mut g = f.clone();
        g[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&g).is_err());
    }

    #[test]
    fn many_items_sharing_one_overflow_chain_are_refused() {
        let mut f = file(&pairs(), 512, Endian::Little);
        // Page 2 holds the second pair, whose value is off-page: point its key at the same
        // chain (an off-page item of 12 bytes replacing the inline key, same length).
        let page = 2 * 512;
        let off = |i: usize| {
            usize::from(u16::from_le_bytes([
                f[page + 26 + 2 * i],
                f[page + 27 + 2 * i],
            ]))
        };
        let voff = off(1);
        let value: Vec<u8> = f[page + voff..page + voff + 12].to_vec();
        assert_eq!(value[0], H_OFFPAGE);
        // The key is 5 bytes inline; rebuild the page with a 12-byte key item.
        let kstart = 512 - 12;
        f[page + kstart..page + 512].copy_from_slice(&value);
        f[page + 26..page + 28].copy_from_slice(&(kstart as u16).to_le_bytes());
        let vstart = kstart - 12;
        f[page + vstart..page + kstart].copy_from_slice(&value);
        f[page + 28..page + 30].copy_from_slice(&(vstart as u16).to_le_bytes());
        // Twice 3000 bytes is more than the 5120-byte file holds.
        let err = read(&f).unwrap_err();
        assert_eq!(
            err,
            BdbError::CorruptPage {
                page: 2,
                why: "off-page items hold more bytes than the file"
            }
        );
        assert_eq!(read(&file(&pairs(), 512, Endian::Little)).unwrap(), pairs());
    }

    #[test]
    fn flipping_any_byte_never_panics() {
        let f = file(&pairs(), 512, Endian::Big);
        for i in 0..f.len() {
            for v in [0u8, 1, 3, 0xff] {
                let mut g = f.clone();
                g[i] = v;
                let _ = read(&g);
            }
        }
    }
}
