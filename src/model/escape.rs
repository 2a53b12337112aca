//! The one escaping rule for every string an image or an AWS response chooses (file names,
//! partition labels, archive members, evidence, AMI names and descriptions, error messages that
//! quote them) before a report shows it.
//!
//! [`visible`] renders any byte string as printable text that cannot move the cursor, erase a
//! line, start a new one, reorder what follows or hide itself: control characters (C0, DEL, C1),
//! bidi controls (U+202A–U+202E, U+2066–U+2069), zero-width and other invisible format characters
//! (Unicode category Cf, line and paragraph separators, fillers and variation selectors: the small
//! table [`INVISIBLE`]) become `\n`, `\t`, `\r`, `\x1b`, `\u{202e}`; a byte that is not part of
//! valid UTF-8 becomes `\xff`; a backslash becomes `\\`, so the rendering is unambiguous and
//! [`unescape`] gives the exact bytes back (the way `ls -b` quotes names on a terminal).
//!
//! The JSON reports keep names lossless: a path that is valid UTF-8 is written as it is (JSON
//! escapes its control characters, and [`json_safe`] writes the invisible ones as `\uXXXX`); one
//! that is not is written in its [`visible`] form plus its exact bytes ([`path_text`],
//! `path_bytes` in the report). Limits: visible but look-alike characters (homoglyphs, spaces
//! other than U+0020) are shown as they are.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Invisible characters shown escaped, as inclusive ranges (sorted): Unicode 15.1's format
/// characters (Cf), the line and paragraph separators, and the characters that render as
/// nothing (combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and
/// other variation selectors).
pub const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    (0xE0100, 0xE01EF),
];

/// Whether `c` is shown as an escape: a control character (C0, DEL, C1) or one of
/// [`INVISIBLE`]. (A backslash is escaped too, by [`visible`], but is not "hidden".)
pub fn is_hidden(c: char) -> bool {
    if c.is_control() {
        return true;
    }
    let u = u32::from(c);
    if u < 0xAD {
        return false;
    }
    let i = INVISIBLE.partition_point(|&(_, hi)| hi < u);
    INVISIBLE.get(i).is_some_and(|&(lo, _)| lo <= u)
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if c.is_ascii_control() => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if is_hidden(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Printable, unambiguous rendering of any bytes (see the module documentation).
pub fn visible(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// [`visible`] for a string: borrowed when nothing in it needs escaping.
pub fn visible_str(s: &str) -> Cow<'_, str> {
    if s.chars().any(|c| c == '\\' || is_hidden(c)) {
        Cow::Owned(visible(s.as_bytes()))
    } else {
        Cow::Borrowed(s)
    }
}

/// A path (or any name) for a JSON report: the string itself when `bytes` are valid UTF-8,
/// else their [`visible`] form. In the second case the report must also carry the exact bytes
/// (`path_bytes`): two different byte strings never get the same (text, bytes) pair.
pub fn path_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => visible(bytes),
    }
}

/// The bytes a [`visible`] rendering came from; `None` when `s` is not such a rendering (a
/// lone backslash, an unknown escape, a bad code point).
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match it.next()? {
            '\\' => out.push(b'\\'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'x' => {
                let hex: String = it.by_ref().take(2).collect();
                if hex.len() != 2 {
                    return None;
                }
                out.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            'u' => {
                if it.next()? != '{' {
                    return None;
                }
                let mut hex = String::new();
                loop {
                    match it.next()? {
                        '}' => break,
                        h if hex.len() < 6 => hex.push(h),
                        _ => return None,
                    }
                }
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
}

/// JSON text with every [`is_hidden`] character written as a `\uXXXX` escape (a surrogate pair
/// above U+FFFF). Lossless: a JSON reader gets the same strings back; a terminal showing the
/// raw JSON shows no bidi override and no invisible character. `json` must be JSON text (such
/// characters can then only be inside strings).
pub fn json_safe(json: &str) -> Cow<'_, str> {
    if !json
        .chars()
        .any(|c| !c.is_ascii() && is_hidden(c) || c == '\u{7f}')
    {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len().saturating_add(64));
    for c in json.chars() {
        if c == '\u{7f}' || (!c.is_ascii() && is_hidden(c)) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{u:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_names_render_as_visible_escapes() {
        assert_eq!(
            visible(b"a\x1b[2K\x1b[1A\rinnocent.txt"),
            "a\\x1b[2K\\x1b[1A\\rinnocent.txt"
        );
        assert_eq!(visible(b"line\nbreak"), "line\\nbreak");
        assert_eq!(
            visible("report\u{202e}txt.pem".as_bytes()),
            "report\\u{202e}txt.pem"
        );
        assert_eq!(visible(b"bad\xffname"), "bad\\xffname");
        assert_eq!(
            visible(b"bell\x07\x08\x08\tname"),
            "bell\\x07\\x08\\x08\\tname"
        );
        assert_eq!(visible(b"a\\b\x7f"), "a\\\\b\\x7f");
        assert_eq!(
            visible("\u{85}\u{200b}\u{feff}\u{e0041}".as_bytes()),
            "\\u{85}\\u{200b}\\u{feff}\\u{e0041}"
        );
        assert_eq!(visible("grüße/日本".as_bytes()), "grüße/日本");
    }

    #[test]
    fn the_table_is_sorted_and_covers_the_bidi_controls() {
        assert!(INVISIBLE.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(INVISIBLE.iter().all(|&(lo, hi)| lo <= hi));
        for u in (0x202A..=0x202E).chain(0x2066..=0x2069) {
            assert!(is_hidden(char::from_u32(u).unwrap()), "{u:x}");
        }
        assert!(!is_hidden('a') && !is_hidden('é') && !is_hidden(' '));
    }

    #[test]
    fn path_text_keeps_utf8_and_escapes_the_rest() {
        assert_eq!(path_text("/etc/\u{202e}x".as_bytes()), "/etc/\u{202e}x");
        assert_ne!(path_text(b"bad\xffname"), path_text(b"bad\xfename"));
        assert_eq!(
            unescape(&path_text(b"bad\xfe\\name")).unwrap(),
            b"bad\xfe\\name"
        );
    }

    #[test]
    fn unescape_rejects_what_visible_never_writes() {
        for s in [
            "\\",
            "\\q",
            "\\x1",
            "\\u{110000}",
            "\\u{d800}",
            "\\u{1234567}",
            "\\u12",
        ] {
            assert_eq!(unescape(s), None, "{s}");
        }
    }

    #[test]
    fn json_safe_escapes_invisible_characters_losslessly() {
        let v = serde_json::json!({"p": "a\u{202e}b\u{7f}\u{e0041}c\u{1b}"});
        let text = serde_json::to_string(&v).unwrap();
        let safe = json_safe(&text);
        assert!(safe.chars().all(|c| !is_hidden(c)), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }
}
