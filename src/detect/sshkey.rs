//! Small, bounded parsers for SSH key structures: the `openssh-key-v1` private key container
//! and public key blobs, and the `SHA256:` fingerprint `ssh-keygen -l` prints.
//!
//! These let findings say whether an OpenSSH key is encrypted and which public key it belongs
//! to, without ever decoding or showing private material.

use super::wire::Reader;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

/// Standard alphabet, padding optional (bodies may be cut at a 4-character boundary).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// At most this many base64 characters of a private key body are decoded: enough for the
/// header and the public key of any key type, never the whole private section of big keys.
const MAX_B64: usize = 8192;

/// The magic at the start of an OpenSSH private key container.
const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";

/// What the unencrypted header of an OpenSSH private key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpensshInfo {
    /// Cipher protecting the private section (`none` when unencrypted).
    pub cipher: String,
    /// Key type of the first key (`ssh-ed25519`, ...), when readable.
    pub key_type: Option<String>,
    /// `SHA256:...` fingerprint of the first public key, when readable.
    pub fingerprint: Option<String>,
}

/// Base64 text with whitespace and escaped newlines (`\n` as two characters) removed.
pub(crate) fn strip_b64(body: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len().min(max));
    let mut escaped = false;
    for &b in body {
        if out.len() >= max {
            break;
        }
        if escaped {
            escaped = false;
            if b == b'n' || b == b'r' {
                continue;
            }
        }
        match b {
            b'\\' => escaped = true,
            b if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' => out.push(b),
            _ => {}
        }
    }
    out
}

/// Decode a possibly cut base64 body (only its first [`MAX_B64`] characters).
fn decode_prefix(body: &[u8]) -> Option<Vec<u8>> {
    let mut b64 = strip_b64(body, MAX_B64);
    let keep = b64.len() - b64.len() % 4;
    b64.truncate(keep);
    LENIENT.decode(&b64).ok()
}

/// Parse the header of an OpenSSH private key from its base64 body (between the PEM-style
/// markers). `None` when the body does not decode to an `openssh-key-v1` container.
pub(crate) fn parse_openssh_body(body: &[u8]) -> Option<OpensshInfo> {
    let raw = decode_prefix(body)?;
    let rest = raw.strip_prefix(OPENSSH_MAGIC)?;
    let mut r = Reader::new(rest);
    let cipher = printable(r.string()?)?;
    let _kdf = r.string()?;
    let _kdf_options = r.string()?;
    let pubkey = r.u32().filter(|&n| n >= 1).and_then(|_| r.string());
    Some(OpensshInfo {
        cipher,
        key_type: pubkey.and_then(key_type),
        fingerprint: pubkey.map(fingerprint),
    })
}

/// The key type string at the start of a public key blob (`ssh-rsa`, ...).
pub(crate) fn key_type(blob: &[u8]) -> Option<String> {
    printable(Reader::new(blob).string()?)
}

/// Whether `name` is an SSH public key algorithm name as used in `authorized_keys`.
pub(crate) fn is_key_type(name: &str) -> bool {
    name.starts_with("ssh-")
        || name.starts_with("ecdsa-sha2-")
        || name.starts_with("sk-ssh-")
        || name.starts_with("sk-ecdsa-")
}

/// Decode a public key's base64 blob and check that it names the given key type.
pub(crate) fn decode_public_blob(key_type_name: &str, b64: &str) -> Option<Vec<u8>> {
    let blob = LENIENT.decode(b64.as_bytes()).ok()?;
    (key_type(&blob)? == key_type_name).then_some(blob)
}

/// The fingerprint `ssh-keygen -l` prints: `SHA256:` + unpadded base64 of sha256(blob).
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// A short printable ASCII name, or `None`.
fn printable(b: &[u8]) -> Option<String> {
    (!b.is_empty() && b.len() <= 64 && b.iter().all(|c| c.is_ascii_graphic()))
        .then(|| String::from_utf8_lossy(b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(pem: &str) -> &[u8] {
        let start = pem.find('\n').unwrap() + 1;
        let end = pem.find("-----END").unwrap();
        &pem.as_bytes()[start..end]
    }

    #[test]
    fn unencrypted_openssh_key_is_read() {
        let pem = include_str!("testdata/openssh_ed25519");
        let info = parse_openssh_body(body(pem)).unwrap();
        assert_eq!(info.cipher, "none");
        assert_eq!(info.key_type.as_deref(), Some("ssh-ed25519"));
        // `ssh-keygen -lf` on the matching .pub printed this.
        assert_eq!(
            info.fingerprint.as_deref(),
            Some("SHA256:2y02A99K+i4LCYctrFFFK+n57+JXml/AIxohjUYrfeA")
        );
    }

    #[test]
    fn encrypted_openssh_key_names_its_cipher() {
        let pem = include_str!("testdata/openssh_ed25519_encrypted");
        let info = parse_openssh_body(body(pem)).unwrap();
        assert_eq!(info.cipher, "aes256-ctr");
        assert_eq!(info.key_type.as_deref(), Some("ssh-ed25519"));
    }

    #[test]
    fn a_cut_body_still_gives_the_header() {
        let pem = include_str!("testdata/openssh_rsa");
        let b = body(pem);
        let info = parse_openssh_body(&b[..90]).unwrap();
        assert_eq!(info.cipher, "none");
        assert_eq!(info.fingerprint, None);
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert_eq!(parse_openssh_body(b"AAAA////"), None);
        assert_eq!(parse_openssh_body(b""), None);
        assert_eq!(parse_openssh_body(&[0xff; 100]), None);
        let mut r = Reader::new(&[0, 0, 0, 9, 1]);
        assert_eq!(r.string(), None);
    }

    #[test]
    fn escaped_newlines_are_stripped() {
        assert_eq!(strip_b64(b"AB\\nCD\nE=\\r\\n", 100), b"ABCDE=");
        assert_eq!(strip_b64(b"ABCDEF", 3), b"ABC");
    }

    #[test]
    fn public_blob_must_name_its_type() {
        let b64 = "AAAAC3NzaC1lZDI1NTE5AAAAICwx54Wl6cuvOKyC3m0Ergxp8d99drLXe/oDuvP3tk/M";
        let blob = decode_public_blob("ssh-ed25519", b64).unwrap();
        assert_eq!(
            fingerprint(&blob),
            "SHA256:2y02A99K+i4LCYctrFFFK+n57+JXml/AIxohjUYrfeA"
        );
        assert_eq!(decode_public_blob("ssh-rsa", b64), None);
        assert!(is_key_type("ecdsa-sha2-nistp256") && !is_key_type("command=x"));
    }
}
