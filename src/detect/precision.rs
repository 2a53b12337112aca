//! One precision model for every signature: what a captured secret is worth once matched.
//!
//! A rule's regex says *where* a credential of some kind sits; this module judges the captured
//! secret itself (never the line, the URL or the host around it) and may lower the finding to
//! `info` or add offline evidence:
//!
//! - **masked values** (`****`, `####`, `xxxx`, `<token>`, `${VAR}`, `%VAR%`, `{{ var }}`,
//!   `$(cmd)`, one character repeated, `0000…`, a secret whose match stops at a `*`/`#` mask)
//!   are never above info;
//! - **known documentation keys** (AWS's `AKIAIOSFODNN7EXAMPLE` and its secret, …) are info;
//! - **low entropy** bodies (`sk_live_abababab…`, ascending runs `123456789`) are info for
//!   token rules; password rules keep weak but real passwords and drop only placeholders;
//! - **checksums**: GitHub and npm tokens carry a CRC32 of their body in base62 — a valid one is
//!   said in the evidence, an invalid one makes the match info; a PyPI token's macaroon must
//!   name `pypi.org`;
//! - **structure**: an AWS key id's account id is decoded (base32 of the characters after the
//!   prefix, bits 1..40) and shown in the evidence.
//!
//! A rule chooses its mode with `precision = "token" | "password" | "off"` (default `token`);
//! private-key rules, whose bodies are long base64 with natural `AAAA` runs, say `off`.
//! Limits: purely offline, no network calls; the checks are heuristics tuned so that random
//! tokens of the documented shapes are never lowered (a run of six equal characters occurs in
//! a random 40-character base62 token with odds below 1e-7).

use crate::report::Severity;
use base64::Engine;
use serde::Deserialize;

/// How a rule's captured secret is judged.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Precision {
    /// A machine-made token: masked, example, low-entropy or checksum-failing values are info.
    #[default]
    Token,
    /// A human-chosen password: only masked values and placeholder words are info (a weak
    /// password is still a password).
    Password,
    /// No judgement (private keys: long bodies, judged by their own decoders).
    Off,
}

/// Secrets longer than this are not judged for masks (key bodies, certificates).
const MAX_JUDGED: usize = 512;

/// Shortest run of one repeated character that marks a value as masked or filler.
const MASK_RUN: usize = 6;

/// Shannon entropy (bits per character) below which a token-mode secret of at least
/// [`LOW_ENTROPY_MIN_LEN`] characters is a filler, not a credential. Random base62 of 20+
/// characters scores above 4; hex above 3.5.
const LOW_ENTROPY: f64 = 2.6;
/// See [`LOW_ENTROPY`].
const LOW_ENTROPY_MIN_LEN: usize = 16;

/// Published documentation and example credentials: info wherever they appear.
const KNOWN_EXAMPLES: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIAI44QH8DHBEXAMPLE",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "pk_test_TYooMQauvdEDq54NiTphI7jx",
];

/// Words that make a value a placeholder in every mode (lowercase).
const PLACEHOLDER_WORDS: &[&str] = &[
    "example",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "your_",
    "your-",
    "yourpass",
    "redacted",
    "replace_me",
    "replaceme",
    "replace-me",
    "dummy",
    "notreal",
    "not_real",
    "xxxx",
];

/// Whole values that are placeholders, not passwords (lowercase).
const PLACEHOLDER_VALUES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "pass",
    "pwd",
    "null",
    "none",
    "nil",
    "undefined",
    "empty",
    "todo",
    "tbd",
    "string",
    "value",
    "mask",
    "masked",
    "hidden",
    "...",
];

/// What judging a secret says: a new severity (if lowered) and an evidence note.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Verdict {
    /// `Some(Info)` when the secret is a placeholder, example or fails its checksum.
    pub severity: Option<Severity>,
    /// Appended to the evidence (leading space included), may be empty.
    pub note: String,
}

impl Verdict {
    fn info(why: &str) -> Verdict {
        Verdict {
            severity: Some(Severity::Info),
            note: format!(" ({why})"),
        }
    }
}

/// Judge one captured `secret` under `mode`. `masked_tail` tells that the bytes right after
/// the secret in the file are a mask (`*`, `#`, `...`): the match stopped where a mask began.
pub(crate) fn judge(mode: Precision, secret: &[u8], masked_tail: bool) -> Verdict {
    if mode == Precision::Off || secret.len() > MAX_JUDGED {
        return Verdict::default();
    }
    if masked_tail {
        return Verdict::info("masked value");
    }
    if KNOWN_EXAMPLES
        .iter()
        .any(|k| contains(secret, k.as_bytes()))
    {
        return Verdict::info("published documentation example");
    }
    if let Some(why) = masked(secret) {
        return Verdict::info(why);
    }
    if let Some(why) = placeholder(secret) {
        return Verdict::info(why);
    }
    if mode == Precision::Token {
        if secret.len() >= LOW_ENTROPY_MIN_LEN && super::verify::shannon(secret) < LOW_ENTROPY {
            return Verdict::info("placeholder: low entropy");
        }
        if has_sequence(secret) {
            return Verdict::info("placeholder: sequential characters");
        }
    }
    structural(secret)
}

/// File-name endings that mark a template by convention (`.env.example`, `my.cnf.sample`).
const TEMPLATE_SUFFIXES: &[&str] = &[".example", ".sample", ".template", ".tmpl", ".tpl", ".dist"];

/// Whether `path` names a template file: a human-chosen value there (a password-mode match) is
/// a sample, not a credential, and is not reported. Token-mode matches (format-identified
/// tokens) are still judged as usual: a real token in a template is still a leak.
pub(crate) fn is_template_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    TEMPLATE_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Package-manager data and upstream documentation: regenerated from the distribution archive,
/// not where an application's configuration (and its credentials) lives.
const PACKAGE_DATA: &[&str] = &[
    "/var/lib/apt/lists/",
    "/var/lib/dpkg/",
    "/var/cache/apt/",
    "/var/cache/debconf/",
    "/usr/share/man/",
    "/usr/share/doc/",
    "/usr/share/info/",
    "/usr/share/locale/",
    "/usr/share/i18n/",
    "/usr/share/zoneinfo/",
    "/usr/share/perl/",
    "/usr/share/perl5/",
];

/// Whether `path` is package data or upstream documentation, or the versioned Python standard
/// library (`/usr/lib/python3.11/`, not `dist-packages`): the config-file credential rules
/// (text-only, in the text tier of the keyword search) do not read such files. The original
/// token and key rules still do.
pub(crate) fn is_package_data(path: &str) -> bool {
    if PACKAGE_DATA.iter().any(|p| path.starts_with(p)) {
        return true;
    }
    path.strip_prefix("/usr/lib/python3.").is_some_and(|rest| {
        rest.split('/')
            .next()
            .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit()))
            && !rest.contains("/dist-packages/")
            && !rest.contains("/site-packages/")
    })
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Whether the bytes following a secret are a mask: `*`, `#`, `•`/`…` (UTF-8 lead byte), `...`.
pub(crate) fn is_mask_tail(after: &[u8]) -> bool {
    matches!(
        after,
        [b'*' | b'#', ..] | [b'.', b'.', b'.', ..] | [0xE2, 0x80, 0xA2 | 0xA6, ..]
    )
}

/// Why `s` is a masked value or a variable reference, if it is one.
fn masked(s: &[u8]) -> Option<&'static str> {
    const MARKS: &[&[u8]] = &[b"***", b"###", b"${", b"{{", b"$(", b"\xE2\x80\xA2", b"..."];
    if MARKS.iter().any(|m| contains(s, m)) {
        return Some("placeholder: masked value or variable");
    }
    match (s.first(), s.last()) {
        (Some(b'<'), Some(b'>')) | (Some(b'['), Some(b']')) => {
            return Some("placeholder: a <slot> to fill in");
        }
        (Some(b'%'), Some(b'%')) if s.len() > 2 => return Some("placeholder: %VARIABLE%"),
        (Some(b'$'), _)
            if s.get(1)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
                && s[1..]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'_') =>
        {
            return Some("placeholder: $VARIABLE");
        }
        _ => {}
    }
    let mut run = 1usize;
    for w in s.windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        if run >= MASK_RUN {
            return Some("placeholder: one character repeated");
        }
    }
    None
}

/// Why `s` is a placeholder word, if it is one.
fn placeholder(s: &[u8]) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    if PLACEHOLDER_WORDS
        .iter()
        .any(|w| contains(&lower, w.as_bytes()))
    {
        return Some("placeholder word");
    }
    if PLACEHOLDER_VALUES.iter().any(|w| lower == w.as_bytes()) {
        return Some("placeholder word");
    }
    None
}

/// An ascending run of 8 (`12345678`, `abcdefgh`): typed by a person filling in a template.
fn has_sequence(s: &[u8]) -> bool {
    let mut run = 1usize;
    for w in s.windows(2) {
        run = if w[0].is_ascii_alphanumeric() && w[1] == w[0].wrapping_add(1) {
            run + 1
        } else {
            1
        };
        if run >= 8 {
            return true;
        }
    }
    false
}

/// Offline structure: checksums and decodable fields of known token shapes.
fn structural(s: &[u8]) -> Verdict {
    if let Some(valid) = base62_crc_token(s) {
        return if valid {
            Verdict {
                severity: None,
                note: " (checksum valid)".into(),
            }
        } else {
            Verdict::info("checksum invalid: not a real token")
        };
    }
    if let Some(account) = aws_account_id(s) {
        return Verdict {
            severity: None,
            note: format!(" (account {account:012}, decoded from the key id)"),
        };
    }
    if let Some(body) = s.strip_prefix(b"pypi-") {
        return if pypi_macaroon_ok(body) {
            Verdict {
                severity: None,
                note: " (macaroon for pypi.org)".into(),
            }
        } else {
            Verdict::info("not a decodable PyPI macaroon")
        };
    }
    Verdict::default()
}

/// The base62 alphabet GitHub and npm use for their token checksums.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` in base62, left-padded with `0` to 6 characters.
pub(crate) fn base62_6(mut n: u32) -> [u8; 6] {
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// CRC-32 (ISO-HDLC, as zlib) of `data`.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(data)
}

/// For a 40-character GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) or npm (`npm_`) token:
/// whether its last 6 characters are the base62 CRC32 of the 30 before them. `None` for
/// other shapes (refresh tokens of 76 characters carry no checksum we know).
pub(crate) fn base62_crc_token(s: &[u8]) -> Option<bool> {
    let prefixed = matches!(s, [b'g', b'h', b'p' | b'o' | b'u' | b's' | b'r', b'_', ..])
        || s.starts_with(b"npm_");
    if !prefixed || s.len() != 40 || !s[4..].iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let (body, sum) = s[4..].split_at(30);
    Some(base62_6(crc32(body)) == sum)
}

/// The account id an AWS access key id encodes: base32 (RFC 4648) of the 16 characters after
/// the 4-character prefix, bits 1..40 of the first 6 bytes. `None` if not an id.
pub(crate) fn aws_account_id(s: &[u8]) -> Option<u64> {
    const PREFIXES: &[&[u8]] = &[b"AKIA", b"ASIA", b"ABIA", b"ACCA"];
    if s.len() != 20 || !PREFIXES.iter().any(|p| s.starts_with(p)) {
        return None;
    }
    let mut value: u64 = 0;
    // 16 characters x 5 bits = 80 bits; the first 48 bits (9.6 characters) hold the field.
    let mut bits = 0u32;
    for &c in s.get(4..14)? {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        value = (value << 5) | u64::from(v);
        bits += 5;
    }
    // 50 bits read; keep the first 48.
    let first48 = value >> (bits - 48);
    Some((first48 & 0x7fff_ffff_ff80) >> 7)
}

/// Whether a PyPI token body (after `pypi-`) is base64url of a macaroon naming `pypi.org`.
fn pypi_macaroon_ok(body: &[u8]) -> bool {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    // Decode the longest prefix that is a whole number of 4-character groups.
    let usable = body.len() - body.len() % 4;
    engine
        .decode(&body[..usable])
        .is_ok_and(|raw| contains(&raw, b"pypi.org"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_token(prefix: &str, body: &str) -> String {
        let sum = base62_6(crc32(body.as_bytes()));
        format!("{prefix}{body}{}", String::from_utf8_lossy(&sum))
    }

    #[test]
    fn masked_values_are_info() {
        for s in [
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "AKIAXXXXXXXXXXXXXXXX",
            "sk_live_000000000000000000000000",
            "glpat-XXXXXXXXXXXXXXXXXXXX",
            "hvs.****************",
            "${GITHUB_TOKEN}",
            "%DB_PASSWORD%",
            "{{ vault_password }}",
            "<your-token>",
            "$DB_PASS",
            "abc###########",
        ] {
            for mode in [Precision::Token, Precision::Password] {
                let v = judge(mode, s.as_bytes(), false);
                assert_eq!(v.severity, Some(Severity::Info), "{s} {mode:?}");
            }
        }
    }

    #[test]
    fn a_mask_right_after_the_match_is_info() {
        assert!(is_mask_tail(b"####"));
        assert!(is_mask_tail("…".as_bytes()));
        assert!(!is_mask_tail(b"\n"));
        let v = judge(Precision::Token, b"xoxb-21533949226-66116124", true);
        assert_eq!(v.severity, Some(Severity::Info));
    }

    #[test]
    fn documentation_keys_are_info() {
        let v = judge(Precision::Token, b"AKIAIOSFODNN7EXAMPLE", false);
        assert_eq!(v.severity, Some(Severity::Info));
        assert!(v.note.contains("documentation"));
    }

    #[test]
    fn random_tokens_keep_their_severity() {
        for s in [
            "sk_live_WmMIscb1XAgIdo6blU8RWvtK",
            "glpat-4KGmGJCXVh2-nfh6Dqub",
            "8d2fd13c2e2f68fa3fd449253b8d9fca",
            "Xq3v9mS2b7Jk1LpQ",
        ] {
            assert_eq!(
                judge(Precision::Token, s.as_bytes(), false).severity,
                None,
                "{s}"
            );
        }
        // A weak password is still a password; a low-entropy token is not a token.
        assert_eq!(
            judge(Precision::Password, b"aaaabbbbaaaabbbb", false).severity,
            None
        );
        assert_eq!(
            judge(Precision::Token, b"aaaabbbbaaaabbbb", false).severity,
            Some(Severity::Info)
        );
        assert_eq!(
            judge(Precision::Password, b"Summer2024!", false).severity,
            None
        );
        assert_eq!(
            judge(Precision::Password, b"changeme", false).severity,
            Some(Severity::Info)
        );
    }

    #[test]
    fn github_checksum_decides() {
        let good = github_token("ghp_", "uCeLDB3OSoengdx3hBpbsInpiJXtkl");
        assert_eq!(base62_crc_token(good.as_bytes()), Some(true));
        let v = judge(Precision::Token, good.as_bytes(), false);
        assert_eq!(
            v,
            Verdict {
                severity: None,
                note: " (checksum valid)".into()
            }
        );
        let mut bad = good.clone().into_bytes();
        bad[10] = if bad[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            judge(Precision::Token, &bad, false).severity,
            Some(Severity::Info)
        );
        assert_eq!(base62_crc_token(b"ghr_short"), None);
        assert_eq!(&base62_6(0), b"000000");
        assert_eq!(&base62_6(61), b"00000z");
    }

    #[test]
    fn aws_account_is_decoded() {
        // The worked example published with the decoding (Tal Be'ery, 2023).
        assert_eq!(
            aws_account_id(b"ASIAY34FZKBOKMUTVV7A"),
            Some(609_629_065_308)
        );
        assert_eq!(aws_account_id(b"ASIAY34FZKBOKMUTVV7"), None);
        assert_eq!(aws_account_id(b"AKIA0000000000000000"), None);
        let v = judge(Precision::Token, b"ASIAY34FZKBOKMUTVV7A", false);
        assert_eq!(v.note, " (account 609629065308, decoded from the key id)");
    }

    #[test]
    fn pypi_macaroon_is_decoded() {
        let raw = b"\x02\x01\x08pypi.org\x02\x01\x01\x00\x02\x1e[1,\"user:9f1d\"]\x00\x00\x06 abcdefghijklmnopqrstuvwxyzABCDEF";
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let tok = format!("pypi-{body}");
        assert_eq!(
            judge(Precision::Token, tok.as_bytes(), false).severity,
            None
        );
        assert_eq!(
            judge(Precision::Token, b"pypi-Xq3v9mS2b7Jk1LpQzzqLm2Zt4Wn", false).severity,
            Some(Severity::Info)
        );
    }

    #[test]
    fn package_data_is_recognised() {
        assert!(is_package_data(
            "/var/lib/apt/lists/deb.debian.org_Packages"
        ));
        assert!(is_package_data("/usr/share/man/man1/curl.1.gz"));
        assert!(is_package_data("/usr/lib/python3.11/urllib/request.py"));
        assert!(!is_package_data(
            "/usr/lib/python3/dist-packages/app/settings.py"
        ));
        assert!(!is_package_data(
            "/usr/lib/python3.11/site-packages/app/settings.py"
        ));
        assert!(!is_package_data("/etc/app/config.yml"));
        assert!(!is_package_data("/usr/lib/python3.x/evil.py"));
    }

    #[test]
    fn template_files_are_recognised() {
        assert!(is_template_path("/srv/app/.env.example"));
        assert!(is_template_path("/etc/mysql/my.cnf.sample"));
        assert!(!is_template_path("/srv/app/.env"));
        assert!(!is_template_path("/srv/examples/.env"));
    }

    #[test]
    fn off_judges_nothing_and_long_bodies_are_skipped() {
        assert_eq!(
            judge(Precision::Off, b"xxxxxxxxxxxx", false),
            Verdict::default()
        );
        let long = vec![b'A'; MAX_JUDGED + 1];
        assert_eq!(judge(Precision::Token, &long, false), Verdict::default());
    }
}
