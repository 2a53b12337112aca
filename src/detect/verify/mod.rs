//! Code-side confirmation of signature matches: what a regex cannot judge.
//!
//! A rule may name a [`Validator`] in the catalog (`validate = "jwt"`); the engine runs it on
//! each regex match's secret before the match counts, so rejected matches cost no budget and
//! never become findings. [`keyformats`] decodes key containers to tell encrypted keys from
//! clear ones, and [`testkeys`] recognises published test keys and test-suite paths.

pub(crate) mod keyformats;
pub(crate) mod testkeys;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

/// Minimum Shannon entropy (bits per character) of a value for the generic assignment rule.
///
/// Tuned on real distribution trees (see the catalog's `generic.toml`): random 16-character
/// base64 strings score about 3.8, 20-character ones about 4.1; hex keys score up to 4.0 (16
/// symbols), so 32 hex characters (a typical API key) pass with ~3.8.
pub(crate) const MIN_ENTROPY: f64 = 3.5;

/// Shortest value the entropy check accepts.
pub(crate) const MIN_ENTROPY_LEN: usize = 12;

/// A code check that a rule's match must pass.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Validator {
    /// A JSON Web Token: the header decodes to a JSON object whose `alg` is not `none`, and
    /// the payload decodes to a JSON object.
    Jwt,
    /// A high-entropy, non-placeholder value ([`MIN_ENTROPY`], [`is_placeholder`]).
    Entropy,
    /// An Azure AD client secret: 34 to 40 characters holding a `~`.
    AzureClientSecret,
    /// A Group Policy Preferences `cpassword`: it decrypts with the published key
    /// ([`gpp_decrypt`]).
    GppCpassword,
}

impl Validator {
    /// Whether `secret` passes.
    pub(crate) fn accepts(self, secret: &[u8]) -> bool {
        match self {
            Validator::Jwt => is_signed_jwt(secret),
            Validator::Entropy => is_random_value(secret),
            Validator::AzureClientSecret => {
                (34..=40).contains(&secret.len()) && secret.contains(&b'~')
            }
            Validator::GppCpassword => gpp_decrypt(secret).is_some(),
        }
    }
}

/// The AES-256 key of Group Policy Preferences passwords, published by Microsoft
/// ([MS-GPPREF] 2.2.1.1.4, "Password Encryption"): anyone decrypts a `cpassword`.
const GPP_KEY: [u8; 32] = [
    0x4e, 0x99, 0x06, 0xe8, 0xfc, 0xb6, 0x6c, 0xc9, 0xfa, 0xf4, 0x93, 0x10, 0x62, 0x0f, 0xfe, 0xe8,
    0xf4, 0x96, 0xe8, 0x06, 0xcc, 0x05, 0x79, 0x90, 0x20, 0x9b, 0x09, 0xa4, 0x33, 0xb6, 0x6c, 0x1b,
];

/// Longest `cpassword` decoded (bytes of cipher text).
const MAX_CPASSWORD: usize = 1024;

/// Standard base64, padding optional (Group Policy strips it).
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The password a Group Policy Preferences `cpassword` holds: base64 of the UTF-16LE password,
/// AES-256-CBC with [`GPP_KEY`], a zero IV and PKCS#7 padding. `None` when it is not one
/// (bad base64, length, padding, or not text).
pub(crate) fn gpp_decrypt(cpassword: &[u8]) -> Option<String> {
    use aes::cipher::{BlockCipherDecrypt, KeyInit};
    let raw = STANDARD_LENIENT.decode(cpassword).ok()?;
    if raw.is_empty() || raw.len() % 16 != 0 || raw.len() > MAX_CPASSWORD {
        return None;
    }
    let cipher = aes::Aes256::new(&GPP_KEY.into());
    let mut prev = [0u8; 16];
    let mut out = Vec::with_capacity(raw.len());
    for chunk in raw.chunks_exact(16) {
        let bytes: [u8; 16] = chunk.try_into().ok()?;
        let mut block = aes::Block::from(bytes);
        cipher.decrypt_block(&mut block);
        out.extend(block.iter().zip(prev).map(|(b, p)| b ^ p));
        prev = bytes;
    }
    let pad = usize::from(*out.last()?);
    let keep = out.len().checked_sub(pad)?;
    if !(1..=16).contains(&pad) || out.get(keep..)?.iter().any(|&b| usize::from(b) != pad) {
        return None;
    }
    out.truncate(keep);
    if out.is_empty() || out.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = out
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units)
        .ok()
        .filter(|p| !p.chars().any(char::is_control))
}

/// Base64url, padding optional.
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// At most this many characters of a JWT part are decoded.
const MAX_JWT_PART: usize = 8192;

/// Decode one base64url JWT part into a JSON object.
fn jwt_part(part: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    if part.is_empty() || part.len() > MAX_JWT_PART {
        return None;
    }
    let raw = URL_LENIENT.decode(part).ok()?;
    match serde_json::from_slice(&raw).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Whether `token` is `header.payload.signature` with a JSON header naming a real algorithm.
pub(crate) fn is_signed_jwt(token: &[u8]) -> bool {
    let mut parts = token.split(|&b| b == b'.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if s.len() < 16 {
        return false;
    }
    let Some(header) = jwt_part(h) else {
        return false;
    };
    let alg_ok = header
        .get("alg")
        .and_then(|a| a.as_str())
        .is_some_and(|a| !a.is_empty() && !a.eq_ignore_ascii_case("none"));
    alg_ok && jwt_part(p).is_some()
}

/// Shannon entropy of `s` in bits per byte (0 for an empty slice).
pub(crate) fn shannon(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Substrings (lowercase) that mark a value as a placeholder, not a secret.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "example",
    "placeholder",
    "password",
    "passwd",
    "secret",
    "your_",
    "your-",
    "yourpass",
    "xxxx",
    "****",
    "....",
    "dummy",
    "sample",
    "replace",
    "insert",
    "redacted",
    "todo",
    "fixme",
    "foobar",
    "notreal",
    "not_real",
    "fake",
    "test",
    "default",
    "lorem",
    "0000",
    "1234",
    "abcd",
    "qwerty",
    "token",
    "null",
    "none",
    "undefined",
];

/// Whether `value` is an obvious placeholder: a variable reference (`${VAR}`, `$VAR`, `%(x)s`,
/// `{{ x }}`), a `<password>`-style slot, a masked value, or a word such as `changeme`.
pub(crate) fn is_placeholder(value: &[u8]) -> bool {
    let v = value.to_ascii_lowercase();
    if v.first()
        .is_some_and(|b| matches!(b, b'$' | b'%' | b'<' | b'{' | b'[' | b'@'))
        || v.windows(2).any(|w| w == b"${" || w == b"{{" || w == b"%(")
    {
        return true;
    }
    PLACEHOLDER_WORDS
        .iter()
        .any(|p| memchr::memmem::find(&v, p.as_bytes()).is_some())
}

/// Whether `value` looks like a random credential: long enough, not a placeholder, not an
/// identifier or a path, holding letters and digits, and of high entropy.
pub(crate) fn is_random_value(value: &[u8]) -> bool {
    if value.len() < MIN_ENTROPY_LEN || is_placeholder(value) {
        return false;
    }
    let digits = value.iter().filter(|b| b.is_ascii_digit()).count();
    let letters = value.iter().filter(|b| b.is_ascii_alphabetic()).count();
    let upper = value.iter().filter(|b| b.is_ascii_uppercase()).count();
    if digits == 0 || letters == 0 {
        return false;
    }
    // Dotted names, paths and URLs are references to something, not secrets.
    let dots = value.iter().filter(|&&b| b == b'.').count();
    if dots >= 2 || value.contains(&b'/') && upper == 0 {
        return false;
    }
    shannon(value) >= MIN_ENTROPY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpp_cpasswords_decrypt_with_the_published_key() {
        // The example of Microsoft's documentation of the Groups.xml format.
        assert_eq!(
            gpp_decrypt(b"j1Uyj3Vx8TY9LtLZil2uAuZkFQA/4latT76ZwgdHdhw").as_deref(),
            Some("Local*P4ssword!")
        );
        assert!(Validator::GppCpassword.accepts(b"j1Uyj3Vx8TY9LtLZil2uAuZkFQA/4latT76ZwgdHdhw"));
        // Random base64 of a right length fails its padding; bad lengths and base64 fail.
        assert!(!Validator::GppCpassword.accepts(b"mZoZRiszqKTSw6ZUD3o2Q2WpCS9MQ5Al1XoQegGcjM4"));
        assert!(gpp_decrypt(b"j1Uyj3Vx8TY9LtLZil2uAuZkFQA/4latT76Zwgd").is_none());
        assert!(gpp_decrypt(b"not base64!").is_none());
        assert!(gpp_decrypt(b"").is_none());
    }

    fn b64url(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn jwt_needs_a_real_alg_and_json_parts() {
        let sig = "Xq3v9mS2b7Jk1LpQ0wZr8TyUe4Fh6GdA";
        let good = format!(
            "{}.{}.{sig}",
            b64url(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64url(r#"{"sub":"1234","iat":1700000000}"#)
        );
        assert!(is_signed_jwt(good.as_bytes()));
        let none = format!(
            "{}.{}.{sig}",
            b64url(r#"{"alg":"none"}"#),
            b64url(r#"{"sub":"1"}"#)
        );
        assert!(!is_signed_jwt(none.as_bytes()));
        assert!(!is_signed_jwt(b"eyJhbGciOi.eyJzdWIi.abc"));
        assert!(!is_signed_jwt(b"a.b"));
        assert!(!is_signed_jwt(b""));
        let not_json = format!("{}.{}.{sig}", b64url("hello"), b64url("{}"));
        assert!(!is_signed_jwt(not_json.as_bytes()));
    }

    #[test]
    fn entropy_of_simple_strings() {
        assert_eq!(shannon(b""), 0.0);
        assert_eq!(shannon(b"aaaa"), 0.0);
        assert!((shannon(b"abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for p in [
            "changeme",
            "${DB_PASSWORD}",
            "<password>",
            "xxxxxxxxxxxx",
            "************",
            "example-key-123",
            "{{ vault_pass }}",
            "%(password)s",
            "$PASSWORD",
            "your_api_key_here",
        ] {
            assert!(is_placeholder(p.as_bytes()), "{p}");
            assert!(!is_random_value(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn random_values_pass_and_words_do_not() {
        assert!(is_random_value(b"Xq3v9mS2b7Jk1LpQ"));
        assert!(is_random_value(b"8d2fd13c2e2f68fa3fd449253b8d9fca"));
        assert!(!is_random_value(b"Xq3v9mS2"));
        assert!(!is_random_value(b"get_password_from_env"));
        assert!(!is_random_value(b"settings.auth.api_key2"));
        assert!(!is_random_value(b"/usr/lib/x86_64-linux-gnu/a1"));
        assert!(!is_random_value(b"aaaaaaaaaaaa1111"));
    }

    #[test]
    fn azure_secret_shape() {
        let v = Validator::AzureClientSecret;
        assert!(v.accepts(b"B8F8Q~7Tv2a_cv2roNIiJx54~BLfcd3vDxCIqR1J"));
        assert!(!v.accepts(b"B8F8Q7Tv2a_cv2roNIiJx54BLfcd3vDxCIqR1J"));
        assert!(!v.accepts(b"a~b"));
    }
}
