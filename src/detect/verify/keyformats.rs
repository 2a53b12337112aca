//! Bounded decoders for the headers of armored key containers whose text does not say whether
//! the key is encrypted: OpenPGP secret key packets and SSH2 (ssh.com / Tectia) private keys.
//!
//! Only the public part and the protection marker are read; private material is never
//! decoded beyond the first few KiB of base64 needed to reach the marker.

use crate::detect::wire::Reader;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

/// Standard alphabet, padding optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// At most this many base64 characters are decoded (an RSA-8192 public key fits).
const MAX_B64: usize = 4096;

/// Whether a key container protects its private part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protection {
    /// Private material in clear.
    Clear,
    /// Encrypted; the string names the cipher or scheme.
    Encrypted(String),
}

/// Decode the start of an armored body: base64 characters only, stopped at an OpenPGP
/// checksum line (`=XXXX` at a line start), cut to a multiple of 4.
fn decode_head(body: &[u8]) -> Option<Vec<u8>> {
    let mut b64 = Vec::with_capacity(body.len().min(MAX_B64));
    let mut line_start = true;
    let mut escaped = false;
    for &b in body {
        if b64.len() >= MAX_B64 {
            break;
        }
        if escaped {
            escaped = false;
            if b == b'n' || b == b'r' {
                line_start = true;
                continue;
            }
        }
        match b {
            b'\\' => escaped = true,
            b'\n' | b'\r' => line_start = true,
            b'=' if line_start => break,
            b if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' => {
                b64.push(b);
                line_start = false;
            }
            _ => {}
        }
    }
    let keep = b64.len() - b64.len() % 4;
    b64.truncate(keep);
    LENIENT.decode(&b64).ok()
}

/// An OpenPGP multiprecision integer (bit count, then bytes).
fn mpi(r: &mut Reader<'_>) -> Option<()> {
    let bits = r.u16()?;
    r.take(bits.div_ceil(8)).map(|_| ())
}

/// A one-byte-length-prefixed field (curve OIDs, KDF parameters).
fn short_field(r: &mut Reader<'_>) -> Option<()> {
    let n = usize::from(r.u8()?);
    r.take(n).map(|_| ())
}

/// The protection of the first secret-key packet in an armored OpenPGP private key block.
/// `None` when the body is not a secret key packet this decoder understands.
pub(crate) fn pgp_protection(body: &[u8]) -> Option<Protection> {
    let raw = decode_head(body)?;
    let mut r = Reader::new(&raw);
    let first = r.u8()?;
    if first & 0x80 == 0 {
        return None;
    }
    let tag = if first & 0x40 != 0 {
        // New format: the length octets follow; partial lengths do not occur for keys.
        let l0 = r.u8()?;
        match l0 {
            0..=191 => {}
            192..=223 => {
                r.u8()?;
            }
            255 => {
                r.u32()?;
            }
            _ => return None,
        }
        first & 0x3f
    } else {
        match first & 0x03 {
            0 => {
                r.u8()?;
            }
            1 => {
                r.u16()?;
            }
            2 => {
                r.u32()?;
            }
            _ => {}
        }
        (first >> 2) & 0x0f
    };
    if tag != 5 && tag != 7 {
        return None;
    }
    let version = r.u8()?;
    r.take(4)?; // creation time
    let algo = r.u8()?;
    match version {
        4 => match algo {
            1..=3 => {
                mpi(&mut r)?;
                mpi(&mut r)?;
            }
            16 => {
                for _ in 0..3 {
                    mpi(&mut r)?;
                }
            }
            17 => {
                for _ in 0..4 {
                    mpi(&mut r)?;
                }
            }
            18 => {
                short_field(&mut r)?;
                mpi(&mut r)?;
                short_field(&mut r)?;
            }
            19 | 22 => {
                short_field(&mut r)?;
                mpi(&mut r)?;
            }
            25 => {
                r.take(32)?;
            }
            26 => {
                r.take(56)?;
            }
            27 => {
                r.take(32)?;
            }
            28 => {
                r.take(57)?;
            }
            _ => return None,
        },
        5 | 6 => {
            let n = r.u32()?;
            r.take(n)?;
        }
        _ => return None,
    }
    let usage = r.u8()?;
    Some(match usage {
        0 => Protection::Clear,
        253 => Protection::Encrypted("AEAD".into()),
        254 | 255 => Protection::Encrypted("S2K passphrase".into()),
        _ => Protection::Encrypted("legacy cipher".into()),
    })
}

/// The SSH2 (ssh.com) private key blob magic.
const SSH2_MAGIC: usize = 0x3f6f_f9eb;

/// The cipher of an SSH2 (`---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----`) body. The header
/// always says "ENCRYPTED"; the blob's cipher name says whether it really is.
pub(crate) fn ssh2_protection(body: &[u8]) -> Option<Protection> {
    let raw = decode_head(body)?;
    let mut r = Reader::new(&raw);
    if r.u32()? != SSH2_MAGIC {
        return None;
    }
    r.u32()?; // total length
    let n = r.u32()?;
    r.take(n)?; // key type
    let n = r.u32()?;
    let cipher = r.take(n)?;
    if cipher == b"none" {
        Some(Protection::Clear)
    } else {
        let name: String = String::from_utf8_lossy(cipher)
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect();
        Some(Protection::Encrypted(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    /// A v4 Ed25519 secret key packet with the given S2K usage octet (fake bytes).
    fn pgp_ed25519(usage: u8) -> Vec<u8> {
        let mut body = vec![4, 0x65, 0x00, 0x00, 0x00, 22];
        body.push(9);
        body.extend_from_slice(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01]);
        body.extend_from_slice(&[0x01, 0x07, 0x40]);
        body.extend_from_slice(&[0x5a; 32]);
        body.push(usage);
        body.extend_from_slice(&[0x11; 40]);
        let mut pkt = vec![0xc5, u8::try_from(body.len()).unwrap()];
        pkt.extend(body);
        pkt
    }

    #[test]
    fn pgp_clear_and_encrypted() {
        let clear = b64(&pgp_ed25519(0));
        assert_eq!(pgp_protection(clear.as_bytes()), Some(Protection::Clear));
        let enc = format!("{}\n=AbCd\n", b64(&pgp_ed25519(254)));
        assert!(matches!(
            pgp_protection(enc.as_bytes()),
            Some(Protection::Encrypted(_))
        ));
        // An old-format RSA packet.
        let mut old = vec![
            0x95, 0x00, 0x20, 4, 1, 2, 3, 4, 1, 0x00, 0x08, 0xff, 0x00, 0x02, 0x03, 0,
        ];
        old.extend_from_slice(&[7; 20]);
        assert_eq!(
            pgp_protection(b64(&old).as_bytes()),
            Some(Protection::Clear)
        );
    }

    #[test]
    fn pgp_garbage_is_none() {
        assert_eq!(pgp_protection(b""), None);
        assert_eq!(pgp_protection(b"AAAA"), None);
        assert_eq!(pgp_protection(b64(&[0xc6, 3, 4, 0, 0]).as_bytes()), None);
        let mut cut = pgp_ed25519(0);
        cut.truncate(20);
        assert_eq!(pgp_protection(b64(&cut).as_bytes()), None);
    }

    fn ssh2(cipher: &str) -> String {
        let kt = b"if-modn{sign{rsa-pkcs1-sha1},encrypt{rsa-pkcs1v2-oaep}}";
        let mut v = 0x3f6f_f9ebu32.to_be_bytes().to_vec();
        v.extend_from_slice(&200u32.to_be_bytes());
        v.extend_from_slice(&u32::try_from(kt.len()).unwrap().to_be_bytes());
        v.extend_from_slice(kt);
        v.extend_from_slice(&u32::try_from(cipher.len()).unwrap().to_be_bytes());
        v.extend_from_slice(cipher.as_bytes());
        v.extend_from_slice(&[0x42; 30]);
        b64(&v)
    }

    #[test]
    fn ssh2_cipher_decides() {
        assert_eq!(
            ssh2_protection(ssh2("none").as_bytes()),
            Some(Protection::Clear)
        );
        assert_eq!(
            ssh2_protection(ssh2("3des-cbc").as_bytes()),
            Some(Protection::Encrypted("3des-cbc".into()))
        );
        assert_eq!(ssh2_protection(b"AAAAAAAA"), None);
    }
}
