//! Windows registry hive files (`regf`): `SAM`, `SECURITY`, `SYSTEM`, `SOFTWARE`, a user's
//! `NTUSER.DAT`, read from their bytes for the Windows checks (`checks/windows_hives.rs`).
//!
//! Our own reader, read-only and bounded, not a crate: `nt-hive` is GPL-2.0-or-later (not
//! compatible with this project's MIT/Apache-2.0); `notatin` (Apache-2.0) does not build
//! against the `nom` its `nom = ">= 6"` requirement resolves to (8), and would bring a
//! terminal library (`crossterm`, `signal-hook`) and two hash crates into the scanner for a
//! forensic parser of the whole hive. What the checks need is small: keys by path, their
//! subkeys and values.
//!
//! What it reads: the base block (signature, the two sequence numbers that say whether the
//! hive was flushed, the root cell), key nodes (`nk`, ASCII or UTF-16 names), subkey lists
//! (`lf`, `lh`, `li`, and `ri` one level deep, as Windows writes them), value lists, value
//! keys (`vk`, data in the cell, in the offset field, or in a `db` big-data list). Names match
//! without case, as Windows compares them.
//!
//! Limits: transaction logs (`.LOG1`/`.LOG2`) are not replayed; a hive whose sequence numbers
//! differ was not flushed and [`Hive::dirty`] says so. Deleted cells are not looked at. Every
//! cell reference is checked against the hive's bytes; counts are capped ([`MAX_LIST`]); a
//! subkey list that points back at an index list (a cycle) is refused.

use crate::bytes::{le16 as u16_at, le32 as u32_at};
use thiserror::Error;

/// Size of the base block; cell offsets are relative to its end.
const BASE: usize = 4096;
/// Most entries one subkey or value list may have.
pub(crate) const MAX_LIST: usize = 1 << 16;
/// Most segments of a big-data value (`db`), and most bytes of one value's data.
const MAX_SEGMENTS: usize = 4096;
const MAX_VALUE: usize = 16 << 20;
/// `nk` flag: the name is ASCII (Latin-1), not UTF-16.
const KEY_COMP_NAME: u16 = 0x0020;
/// `vk` flag: the name is ASCII (Latin-1).
const VALUE_COMP_NAME: u16 = 0x0001;

/// Why a hive could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum HiveError {
    /// The file does not start with a `regf` base block.
    #[error("not a registry hive (no regf signature)")]
    NotHive,
    /// A structure is damaged.
    #[error("corrupt hive: {what} at cell offset {at:#x}")]
    Corrupt {
        /// What was wrong.
        what: &'static str,
        /// The cell offset (relative to the first hive bin).
        at: u32,
    },
}

fn corrupt(what: &'static str, at: u32) -> HiveError {
    HiveError::Corrupt { what, at }
}

/// A hive's bytes.
pub(crate) struct Hive<'a> {
    data: &'a [u8],
    root: u32,
    dirty: bool,
}

/// A key node: its cell offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key(u32);

/// One value of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Value {
    /// Its name (empty for the default value).
    pub name: String,
    /// Its type (`REG_SZ` 1, `REG_EXPAND_SZ` 2, `REG_BINARY` 3, `REG_DWORD` 4, ...).
    pub ty: u32,
    /// Its data.
    pub data: Vec<u8>,
    /// Offset in the hive file of the value's data (of its `vk` cell when the data is inline).
    pub at: u64,
}

impl Value {
    /// The data as a string: UTF-16LE up to the first NUL for the string types, else lossy
    /// UTF-8 (`hivexsh` and some tools write ASCII).
    pub fn string(&self) -> String {
        if self.data.len() >= 2 && self.data.len().is_multiple_of(2) && self.data.get(1) == Some(&0)
        {
            let units: Vec<u16> = self
                .data
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .take_while(|&u| u != 0)
                .collect();
            return String::from_utf16_lossy(&units);
        }
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.data.len());
        String::from_utf8_lossy(self.data.get(..end).unwrap_or(&[])).into_owned()
    }
}

/// Latin-1 bytes to a string.
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Whether two key or value names are the same to Windows (case-insensitive).
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || a.to_uppercase() == b.to_uppercase()
}

impl<'a> Hive<'a> {
    /// Read the base block of `data`, a whole hive file.
    pub fn parse(data: &'a [u8]) -> Result<Self, HiveError> {
        if data.get(..4) != Some(b"regf") || data.len() < BASE {
            return Err(HiveError::NotHive);
        }
        let seq1 = u32_at(data, 4).ok_or(HiveError::NotHive)?;
        let seq2 = u32_at(data, 8).ok_or(HiveError::NotHive)?;
        let root = u32_at(data, 0x24).ok_or(HiveError::NotHive)?;
        let hive = Hive {
            data,
            root,
            dirty: seq1 != seq2,
        };
        hive.key_cell(Key(root))?;
        Ok(hive)
    }

    /// Whether the hive was not flushed when the image was taken (its sequence numbers
    /// differ): changes may sit in its transaction logs, which are not replayed.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// The root key.
    pub fn root(&self) -> Key {
        Key(self.root)
    }

    /// The data of the allocated cell at `off` (without its size field).
    fn cell(&self, off: u32) -> Result<&'a [u8], HiveError> {
        let start = usize::try_from(off)
            .ok()
            .and_then(|o| o.checked_add(BASE))
            .ok_or_else(|| corrupt("cell offset out of range", off))?;
        let size = self
            .data
            .get(start..)
            .and_then(|b| b.get(..4))
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| corrupt("cell outside the hive", off))?;
        // An allocated cell has a negative size, its header included.
        if size >= 0 {
            return Err(corrupt("reference to a free cell", off));
        }
        let len = usize::try_from(size.unsigned_abs()).unwrap_or(usize::MAX);
        let body = start
            .checked_add(4)
            .zip(start.checked_add(len))
            .and_then(|(s, e)| self.data.get(s..e))
            .ok_or_else(|| corrupt("cell runs past the end of the hive", off))?;
        if len < 8 {
            return Err(corrupt("cell too small", off));
        }
        Ok(body)
    }

    fn key_cell(&self, k: Key) -> Result<&'a [u8], HiveError> {
        let c = self.cell(k.0)?;
        if c.get(..2) != Some(b"nk") || c.len() < 0x4C {
            return Err(corrupt("not a key node", k.0));
        }
        Ok(c)
    }

    /// The name of key `k`.
    pub fn name(&self, k: Key) -> Result<String, HiveError> {
        let c = self.key_cell(k)?;
        let flags = u16_at(c, 2).unwrap_or(0);
        let len = usize::from(u16_at(c, 0x48).unwrap_or(0));
        let raw = c
            .get(0x4C..0x4C_usize.saturating_add(len))
            .ok_or_else(|| corrupt("key name past its cell", k.0))?;
        Ok(if flags & KEY_COMP_NAME != 0 {
            latin1(raw)
        } else {
            utf16(raw)
        })
    }

    /// The subkeys of `k`.
    pub fn subkeys(&self, k: Key) -> Result<Vec<Key>, HiveError> {
        let c = self.key_cell(k)?;
        let count = u32_at(c, 0x14).unwrap_or(0);
        if count == 0 {
            return Ok(Vec::new());
        }
        let list = u32_at(c, 0x1C).unwrap_or(u32::MAX);
        let mut out = Vec::new();
        self.list(list, true, &mut out)?;
        Ok(out)
    }

    /// The key offsets of subkey list `off`; an `ri` (index of lists) only when `index_ok`.
    fn list(&self, off: u32, index_ok: bool, out: &mut Vec<Key>) -> Result<(), HiveError> {
        let c = self.cell(off)?;
        let n = usize::from(u16_at(c, 2).unwrap_or(0));
        let (stride, is_index) = match c.get(..2) {
            Some(b"lf" | b"lh") => (8usize, false),
            Some(b"li") => (4, false),
            Some(b"ri") if index_ok => (4, true),
            Some(b"ri") => return Err(corrupt("index list inside an index list", off)),
            _ => return Err(corrupt("not a subkey list", off)),
        };
        for i in 0..n {
            let at = i.checked_mul(stride).and_then(|o| o.checked_add(4));
            let e = at
                .and_then(|o| u32_at(c, o))
                .ok_or_else(|| corrupt("subkey list past its cell", off))?;
            if is_index {
                self.list(e, false, out)?;
            } else {
                if out.len() >= MAX_LIST {
                    return Err(corrupt("too many subkeys", off));
                }
                out.push(Key(e));
            }
        }
        Ok(())
    }

    /// The subkey of `k` named `name` (without case), if any.
    pub fn subkey(&self, k: Key, name: &str) -> Result<Option<Key>, HiveError> {
        for s in self.subkeys(k)? {
            if same_name(&self.name(s)?, name) {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The key at `path` (names separated by `\`) below the root, if it exists.
    pub fn key(&self, path: &str) -> Result<Option<Key>, HiveError> {
        let mut k = self.root();
        for part in path.split('\\').filter(|p| !p.is_empty()) {
            match self.subkey(k, part)? {
                Some(s) => k = s,
                None => return Ok(None),
            }
        }
        Ok(Some(k))
    }

    /// The values of `k`.
    pub fn values(&self, k: Key) -> Result<Vec<Value>, HiveError> {
        let c = self.key_cell(k)?;
        let count = usize::try_from(u32_at(c, 0x24).unwrap_or(0)).unwrap_or(usize::MAX);
        if count == 0 {
            return Ok(Vec::new());
        }
        if count > MAX_LIST {
            return Err(corrupt("too many values", k.0));
        }
        let list_off = u32_at(c, 0x28).unwrap_or(u32::MAX);
        let list = self.cell(list_off)?;
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let v = i
                .checked_mul(4)
                .and_then(|o| u32_at(list, o))
                .ok_or_else(|| corrupt("value list past its cell", list_off))?;
            out.push(self.value(v)?);
        }
        Ok(out)
    }

    /// The value key (`vk`) at cell `off`.
    pub fn value(&self, off: u32) -> Result<Value, HiveError> {
        let c = self.cell(off)?;
        if c.get(..2) != Some(b"vk") || c.len() < 0x14 {
            return Err(corrupt("not a value key", off));
        }
        let name_len = usize::from(u16_at(c, 2).unwrap_or(0));
        let size = u32_at(c, 4).unwrap_or(0);
        let data_off = u32_at(c, 8).unwrap_or(0);
        let ty = u32_at(c, 0x0C).unwrap_or(0);
        let flags = u16_at(c, 0x10).unwrap_or(0);
        let raw_name = c
            .get(0x14..0x14_usize.saturating_add(name_len))
            .ok_or_else(|| corrupt("value name past its cell", off))?;
        let name = if flags & VALUE_COMP_NAME != 0 {
            latin1(raw_name)
        } else {
            utf16(raw_name)
        };
        let cell_file_offset = |o: u32| u64::from(o).saturating_add(4096 + 4);
        let (data, at) = if size & 0x8000_0000 != 0 {
            // Up to four bytes stored in the offset field itself.
            let n = usize::try_from(size & 0x7fff_ffff).unwrap_or(0).min(4);
            (
                data_off.to_le_bytes().get(..n).unwrap_or(&[]).to_vec(),
                cell_file_offset(off),
            )
        } else if size == 0 {
            (Vec::new(), cell_file_offset(off))
        } else {
            let len = usize::try_from(size).unwrap_or(usize::MAX);
            if len > MAX_VALUE {
                return Err(corrupt("value data too large", off));
            }
            (self.data_of(data_off, len)?, cell_file_offset(data_off))
        };
        Ok(Value { name, ty, data, at })
    }

    /// `len` bytes of value data at cell `off`: the cell itself, or a `db` list of segments.
    fn data_of(&self, off: u32, len: usize) -> Result<Vec<u8>, HiveError> {
        let c = self.cell(off)?;
        if c.get(..2) == Some(b"db") && len > c.len() {
            let n = usize::from(u16_at(c, 2).unwrap_or(0));
            if n > MAX_SEGMENTS {
                return Err(corrupt("too many big-data segments", off));
            }
            let list_off = u32_at(c, 4).unwrap_or(u32::MAX);
            let list = self.cell(list_off)?;
            let mut out = Vec::with_capacity(len);
            for i in 0..n {
                let seg = i
                    .checked_mul(4)
                    .and_then(|o| u32_at(list, o))
                    .ok_or_else(|| corrupt("segment list past its cell", list_off))?;
                let s = self.cell(seg)?;
                let want = len.saturating_sub(out.len()).min(16344).min(s.len());
                out.extend_from_slice(s.get(..want).unwrap_or(&[]));
            }
            if out.len() < len {
                return Err(corrupt("big-data value shorter than its size", off));
            }
            return Ok(out);
        }
        c.get(..len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| corrupt("value data past its cell", off))
    }

    /// The value of `k` named `name` (without case), if any.
    pub fn get(&self, k: Key, name: &str) -> Result<Option<Value>, HiveError> {
        Ok(self
            .values(k)?
            .into_iter()
            .find(|v| same_name(&v.name, name)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hive built cell by cell, for the unit tests (the integration tests use hives written
    /// by `hivexsh`).
    pub(crate) struct Builder {
        bin: Vec<u8>,
    }

    impl Builder {
        pub fn new() -> Self {
            let mut bin = b"hbin".to_vec();
            bin.resize(32, 0);
            Builder { bin }
        }

        /// Add an allocated cell holding `body`; its offset.
        pub fn cell(&mut self, body: &[u8]) -> u32 {
            let off = u32::try_from(self.bin.len()).unwrap();
            let mut len = body.len() + 4;
            len = len.div_ceil(8) * 8;
            self.bin
                .extend_from_slice(&(-i32::try_from(len).unwrap()).to_le_bytes());
            self.bin.extend_from_slice(body);
            self.bin.resize(usize::try_from(off).unwrap() + len, 0);
            off
        }

        pub fn value(&mut self, name: &str, ty: u32, data: &[u8]) -> u32 {
            let d = if data.len() <= 4 {
                None
            } else {
                Some(self.cell(data))
            };
            let mut vk = b"vk".to_vec();
            vk.extend(u16::try_from(name.len()).unwrap().to_le_bytes());
            match d {
                Some(off) => {
                    vk.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
                    vk.extend(off.to_le_bytes());
                }
                None => {
                    vk.extend((0x8000_0000 | u32::try_from(data.len()).unwrap()).to_le_bytes());
                    let mut inline = data.to_vec();
                    inline.resize(4, 0);
                    vk.extend(&inline);
                }
            }
            vk.extend(ty.to_le_bytes());
            vk.extend(VALUE_COMP_NAME.to_le_bytes());
            vk.extend([0, 0]);
            vk.extend(name.as_bytes());
            self.cell(&vk)
        }

        /// A key named `name` with `subkeys` (as an `lf` list) and `values`.
        pub fn key(&mut self, name: &str, subkeys: &[u32], values: &[u32]) -> u32 {
            let list = if subkeys.is_empty() {
                u32::MAX
            } else {
                let mut lf = b"lf".to_vec();
                lf.extend(u16::try_from(subkeys.len()).unwrap().to_le_bytes());
                for s in subkeys {
                    lf.extend(s.to_le_bytes());
                    lf.extend([0; 4]);
                }
                self.cell(&lf)
            };
            let vlist = if values.is_empty() {
                u32::MAX
            } else {
                let l: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                self.cell(&l)
            };
            let mut nk = vec![0u8; 0x4C];
            nk[..2].copy_from_slice(b"nk");
            nk[2..4].copy_from_slice(&KEY_COMP_NAME.to_le_bytes());
            nk[0x14..0x18].copy_from_slice(&u32::try_from(subkeys.len()).unwrap().to_le_bytes());
            nk[0x1C..0x20].copy_from_slice(&list.to_le_bytes());
            nk[0x24..0x28].copy_from_slice(&u32::try_from(values.len()).unwrap().to_le_bytes());
            nk[0x28..0x2C].copy_from_slice(&vlist.to_le_bytes());
            nk[0x48..0x4A].copy_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
            nk.extend(name.as_bytes());
            self.cell(&nk)
        }

        /// The hive file with `root` as its root key.
        pub fn finish(mut self, root: u32) -> Vec<u8> {
            let len = self.bin.len().div_ceil(4096) * 4096;
            let free = len - self.bin.len();
            if free > 0 {
                self.bin
                    .extend_from_slice(&i32::try_from(free).unwrap().to_le_bytes());
            }
            self.bin.resize(len, 0);
            self.bin[8..12].copy_from_slice(&u32::try_from(len).unwrap().to_le_bytes());
            let mut base = vec![0u8; BASE];
            base[..4].copy_from_slice(b"regf");
            base[4..8].copy_from_slice(&1u32.to_le_bytes());
            base[8..12].copy_from_slice(&1u32.to_le_bytes());
            base[0x24..0x28].copy_from_slice(&root.to_le_bytes());
            base.extend(self.bin);
            base
        }
    }

    fn sample() -> Vec<u8> {
        let mut b = Builder::new();
        let pw = b.value("DefaultPassword", 1, &utf16z("Example-Pw1"));
        let on = b.value("AutoAdminLogon", 1, &utf16z("1"));
        let dw = b.value("Flags", 4, &7u32.to_le_bytes());
        let winlogon = b.key("Winlogon", &[], &[pw, on, dw]);
        let cv = b.key("CurrentVersion", &[winlogon], &[]);
        let root = b.key("ROOT", &[cv], &[]);
        b.finish(root)
    }

    pub(crate) fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    #[test]
    fn keys_and_values_by_path_without_case() {
        let bytes = sample();
        let h = Hive::parse(&bytes).unwrap();
        assert!(!h.dirty());
        assert_eq!(h.name(h.root()).unwrap(), "ROOT");
        let k = h.key("currentversion\\WINLOGON").unwrap().unwrap();
        let pw = h.get(k, "defaultpassword").unwrap().unwrap();
        assert_eq!(pw.string(), "Example-Pw1");
        assert_eq!(
            &bytes[usize::try_from(pw.at).unwrap()..][..22],
            &utf16z("Example-Pw1")[..22]
        );
        assert_eq!(h.get(k, "AutoAdminLogon").unwrap().unwrap().string(), "1");
        assert_eq!(h.get(k, "Flags").unwrap().unwrap().data, 7u32.to_le_bytes());
        assert_eq!(h.key("CurrentVersion\\Nope").unwrap(), None);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        assert_eq!(Hive::parse(b"nope").err(), Some(HiveError::NotHive));
        let good = sample();
        // Every single byte of the hive bins flipped: an answer or an error, never a panic.
        for i in BASE..good.len().min(BASE + 1024) {
            let mut b = good.clone();
            b[i] ^= 0xff;
            if let Ok(h) = Hive::parse(&b)
                && let Ok(Some(k)) = h.key("CurrentVersion\\Winlogon")
            {
                let _ = h.values(k);
            }
        }
        // A root pointing past the end.
        let mut b = good.clone();
        b[0x24..0x28].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        assert!(matches!(
            Hive::parse(&b),
            Err(HiveError::Corrupt {
                what: "cell outside the hive",
                ..
            })
        ));
    }

    #[test]
    fn an_index_list_pointing_at_itself_is_refused() {
        let mut b = Builder::new();
        // An ri list whose one entry is itself: offset of the next cell (32 + 0).
        let mut ri = b"ri".to_vec();
        ri.extend(1u16.to_le_bytes());
        ri.extend(32u32.to_le_bytes());
        let ri_off = b.cell(&ri);
        assert_eq!(ri_off, 32);
        let mut nk = vec![0u8; 0x4C];
        nk[..2].copy_from_slice(b"nk");
        nk[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        nk[0x1C..0x20].copy_from_slice(&ri_off.to_le_bytes());
        let root = b.cell(&nk);
        let bytes = b.finish(root);
        let h = Hive::parse(&bytes).unwrap();
        assert_eq!(
            h.subkeys(h.root()).err(),
            Some(corrupt("index list inside an index list", 32))
        );
    }
}
