//! What a compiled program says it was built from, read from its ELF sections without reading
//! the whole file: the Go toolchain's build info (`.go.buildinfo`: the module, its dependencies
//! and the Go version, Go 1.18 and later) and `cargo auditable`'s `.dep-v0` (the crates,
//! zlib-compressed JSON). The ELF header, the section headers, the section-name table and the
//! one section are read, each bounded; a file that is not ELF has nothing to say.

use super::{Component, Ecosystem};
use std::io::{Read, Seek, SeekFrom};

/// Bytes read from a file whose reader cannot seek.
pub(super) const MAX_STREAMED: u64 = 256 << 20;
/// Most section headers read.
const MAX_SECTIONS: u64 = 4096;
/// Largest section read (build info and `.dep-v0` are a few KiB).
const MAX_SECTION: u64 = 4 << 20;
/// Largest decompressed `.dep-v0`.
const MAX_DEP_JSON: u64 = 16 << 20;
/// The magic at the start of `.go.buildinfo`.
const GO_MAGIC: &[u8] = b"\xff Go buildinf:";

/// The components a program names; empty for a file that is not ELF or names none.
pub(super) fn components<R: Read + Seek + ?Sized>(
    r: &mut R,
    size: u64,
) -> Result<Vec<Component>, String> {
    let mut ident = [0u8; 64];
    let n = read_at(r, 0, &mut ident)?;
    if n < 52 || &ident[..4] != b"\x7fELF" {
        return Ok(vec![]);
    }
    let is64 = match ident[4] {
        1 => false,
        2 => true,
        _ => return Ok(vec![]),
    };
    let le = match ident[5] {
        1 => true,
        2 => false,
        _ => return Ok(vec![]),
    };
    let u16_at = |b: &[u8], o: usize| -> u64 {
        let x = [b[o], b[o + 1]];
        u64::from(if le {
            u16::from_le_bytes(x)
        } else {
            u16::from_be_bytes(x)
        })
    };
    let u32_at = |b: &[u8], o: usize| -> u64 {
        let x = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        u64::from(if le {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        })
    };
    let u64_at = |b: &[u8], o: usize| -> u64 {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        if le {
            u64::from_le_bytes(x)
        } else {
            u64::from_be_bytes(x)
        }
    };
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (
            u64_at(&ident, 0x28),
            u16_at(&ident, 0x3a),
            u16_at(&ident, 0x3c),
            u16_at(&ident, 0x3e),
        )
    } else {
        (
            u32_at(&ident, 0x20),
            u16_at(&ident, 0x2e),
            u16_at(&ident, 0x30),
            u16_at(&ident, 0x32),
        )
    };
    let min_ent = if is64 { 64 } else { 40 };
    // Real entries are 40 or 64 bytes: a larger one only inflates what is read.
    if shoff == 0 || shnum == 0 || shentsize < min_ent || shentsize > 256 || shnum > MAX_SECTIONS {
        return Ok(vec![]);
    }
    let table_len = shentsize * shnum;
    if shoff.checked_add(table_len).is_none_or(|end| end > size) {
        return Err("ELF section headers past the end of the file".into());
    }
    let mut table = vec![0u8; table_len as usize];
    if read_at(r, shoff, &mut table)? < table.len() {
        return Err("ELF section headers truncated".into());
    }
    // (name offset, file offset, size) of each section.
    let sections: Vec<(u64, u64, u64)> = table
        .chunks_exact(shentsize as usize)
        .map(|s| {
            if is64 {
                (u32_at(s, 0), u64_at(s, 0x18), u64_at(s, 0x20))
            } else {
                (u32_at(s, 0), u32_at(s, 0x10), u32_at(s, 0x14))
            }
        })
        .collect();
    let Some(&(_, str_off, str_size)) = sections.get(shstrndx as usize) else {
        return Ok(vec![]);
    };
    let names = read_section(r, str_off, str_size.min(MAX_SECTION), size)?;
    let name_of = |off: u64| -> &[u8] {
        let rest = names.get(off as usize..).unwrap_or(&[]);
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    };
    let mut out = Vec::new();
    for &(name, off, len) in &sections {
        match name_of(name) {
            b".go.buildinfo" => {
                let data = read_section(r, off, len.min(MAX_SECTION), size)?;
                out.extend(go_buildinfo(&data)?);
            }
            b".dep-v0" => {
                if len > MAX_SECTION {
                    return Err(".dep-v0 larger than 4 MiB, not read".into());
                }
                let data = read_section(r, off, len, size)?;
                out.extend(cargo_auditable(&data)?);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn read_at<R: Read + Seek + ?Sized>(r: &mut R, off: u64, buf: &mut [u8]) -> Result<usize, String> {
    r.seek(SeekFrom::Start(off)).map_err(|e| e.to_string())?;
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(got)
}

fn read_section<R: Read + Seek + ?Sized>(
    r: &mut R,
    off: u64,
    len: u64,
    size: u64,
) -> Result<Vec<u8>, String> {
    if off.checked_add(len).is_none_or(|end| end > size) {
        return Err("an ELF section past the end of the file".into());
    }
    let mut buf = vec![0u8; len as usize];
    let n = read_at(r, off, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// A Go varint-prefixed string at `at`; the string and the offset after it.
fn go_string(data: &[u8], mut at: usize) -> Option<(&[u8], usize)> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *data.get(at)?;
        at += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    Some((data.get(at..end)?, end))
}

/// The modules of a `.go.buildinfo` section (Go 1.18+: strings inline after a 32-byte header).
pub(super) fn go_buildinfo(data: &[u8]) -> Result<Vec<Component>, String> {
    if !data.starts_with(GO_MAGIC) || data.len() < 32 {
        return Ok(vec![]);
    }
    if data[15] & 2 == 0 {
        return Err("Go build info from before Go 1.18 (pointer form), not read".into());
    }
    let Some((version, next)) = go_string(data, 32) else {
        return Err("Go build info truncated".into());
    };
    let Some((info, _)) = go_string(data, next) else {
        return Err("Go build info truncated".into());
    };
    // The module info is framed by 16-byte sentinels.
    let info = if info.len() >= 33 {
        &info[16..info.len() - 16]
    } else {
        &[][..]
    };
    let mut out = Vec::new();
    let version = String::from_utf8_lossy(version);
    if let Some(v) = version.strip_prefix("go") {
        let v = v.split([' ', '-']).next().unwrap_or(v);
        out.push(go_component("stdlib", v));
    }
    let text = String::from_utf8_lossy(info);
    let mut last_dep: Option<usize> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod", path, version, ..] | ["dep", path, version, ..] => {
                out.push(go_component(path, version));
                last_dep = Some(out.len() - 1);
            }
            // A replacement: the module actually built in.
            ["=>", path, version, ..] => {
                if let Some(i) = last_dep.take() {
                    out[i] = go_component(path, version);
                }
            }
            _ => {}
        }
    }
    out.retain(|c| !c.version.is_empty() && c.version != "(devel)");
    Ok(out)
}

fn go_component(path: &str, version: &str) -> Component {
    let (ns, name) = match path.rsplit_once('/') {
        Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
        None => (None, path.to_string()),
    };
    Component {
        ecosystem: Ecosystem::Golang,
        namespace: ns,
        name,
        version: version.to_string(),
        epoch: None,
        arch: None,
        source: None,
        licenses: vec![],
        locations: vec![],
    }
}

/// The crates of a `cargo auditable` `.dep-v0` section (zlib-compressed JSON).
pub(super) fn cargo_auditable(data: &[u8]) -> Result<Vec<Component>, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_DEP_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!(".dep-v0: {e}"))?;
    if json.len() as u64 > MAX_DEP_JSON {
        return Err(".dep-v0 decompresses past 16 MiB, not read".into());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&json).map_err(|e| format!(".dep-v0: {e}"))?;
    let Some(packages) = v.get("packages").and_then(|p| p.as_array()) else {
        return Err(".dep-v0: no package list".into());
    };
    Ok(packages
        .iter()
        .filter_map(|p| {
            Some(Component {
                ecosystem: Ecosystem::Cargo,
                namespace: None,
                name: p.get("name")?.as_str()?.to_string(),
                version: p.get("version")?.as_str()?.to_string(),
                epoch: None,
                arch: None,
                source: None,
                licenses: vec![],
                locations: vec![],
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A minimal little-endian ELF64 file with the sections `(name, data)`.
    pub(crate) fn elf(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut name_offs = vec![];
        for (n, _) in sections {
            name_offs.push(names.len() as u32);
            names.extend_from_slice(n.as_bytes());
            names.push(0);
        }
        let shstr_name = names.len() as u32;
        names.extend_from_slice(b".shstrtab\0");
        let mut body = vec![0u8; 64];
        let mut placed = vec![];
        for (_, d) in sections {
            placed.push((body.len() as u64, d.len() as u64));
            body.extend_from_slice(d);
        }
        let names_off = body.len() as u64;
        body.extend_from_slice(&names);
        let shoff = body.len() as u64;
        let mut sh = vec![0u8; 64]; // the null section
        let mut push = |name: u32, off: u64, len: u64| {
            let mut s = vec![0u8; 64];
            s[0..4].copy_from_slice(&name.to_le_bytes());
            s[0x18..0x20].copy_from_slice(&off.to_le_bytes());
            s[0x20..0x28].copy_from_slice(&len.to_le_bytes());
            sh.extend_from_slice(&s);
        };
        for (i, (off, len)) in placed.iter().enumerate() {
            push(name_offs[i], *off, *len);
        }
        push(shstr_name, names_off, names.len() as u64);
        body.extend_from_slice(&sh);
        let n = sections.len() as u16 + 2;
        body[0..4].copy_from_slice(b"\x7fELF");
        body[4] = 2;
        body[5] = 1;
        body[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        body[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        body[0x3c..0x3e].copy_from_slice(&n.to_le_bytes());
        body[0x3e..0x40].copy_from_slice(&(n - 1).to_le_bytes());
        body
    }

    fn varint_str(out: &mut Vec<u8>, s: &[u8]) {
        let mut n = s.len();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(s);
    }

    #[test]
    fn go_build_info_names_the_module_its_dependencies_and_the_toolchain() {
        let mut bi = GO_MAGIC.to_vec();
        bi.push(8);
        bi.push(2);
        bi.resize(32, 0);
        varint_str(&mut bi, b"go1.21.5");
        let mut info = vec![b'x'; 16];
        info.extend_from_slice(
            b"path\texample.com/cmd/app\nmod\texample.com/app\t(devel)\t\n\
dep\tgithub.com/gorilla/mux\tv1.8.0\th1:abc=\ndep\tgolang.org/x/net\tv0.1.0\th1:def=\n\
=>\tgolang.org/x/net\tv0.17.0\th1:ghi=\n",
        );
        info.extend_from_slice(&[b'y'; 16]);
        varint_str(&mut bi, &info);
        let file = elf(&[(".text", b"\x90\x90"), (".go.buildinfo", &bi)]);
        let got = components(&mut Cursor::new(&file), file.len() as u64).unwrap();
        let ids: Vec<String> = got
            .iter()
            .map(|c| {
                format!(
                    "{}/{}@{}",
                    c.namespace.as_deref().unwrap_or(""),
                    c.name,
                    c.version
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                "/stdlib@1.21.5",
                "github.com/gorilla/mux@v1.8.0",
                "golang.org/x/net@v0.17.0"
            ]
        );
    }

    #[test]
    fn cargo_auditable_section_lists_crates() {
        let json = br#"{"packages":[{"name":"app","version":"0.1.0","source":"local","root":true},{"name":"serde","version":"1.0.193","source":"crates.io"}]}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap();
        let file = elf(&[(".dep-v0", &z.finish().unwrap())]);
        let got = components(&mut Cursor::new(&file), file.len() as u64).unwrap();
        let ids: Vec<String> = got
            .iter()
            .map(|c| format!("{}@{}", c.name, c.version))
            .collect();
        assert_eq!(ids, ["app@0.1.0", "serde@1.0.193"]);
    }

    #[test]
    fn hostile_headers_are_errors_or_nothing_never_panics() {
        assert!(
            components(&mut Cursor::new(b"#!/bin/sh\necho hi\n".to_vec()), 18)
                .unwrap()
                .is_empty()
        );
        let mut file = elf(&[(".go.buildinfo", b"\xff Go buildinf:\x08\x02")]);
        let len = file.len() as u64;
        // Section headers said to lie past the end.
        file[0x28..0x30].copy_from_slice(&(len * 4).to_le_bytes());
        assert!(components(&mut Cursor::new(&file), len).is_err());
        // Every byte flipped in turn: no panic.
        let good = elf(&[(
            ".go.buildinfo",
            b"\xff Go buildinf:\x08\x02\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x03go1\x05abcde",
        )]);
        for i in 0..good.len() {
            let mut f = good.clone();
            f[i] ^= 0xff;
            let _ = components(&mut Cursor::new(&f), f.len() as u64);
        }
    }
}
