//! Keystores: PKCS#12 files by extension and Java keystores (JKS, JCEKS) by magic.
//!
//! Whether a keystore's password is strong cannot be known offline, so a keystore holding a
//! private key is "keystore present" at medium. A Java truststore (only trusted certificate
//! entries, like every JDK's `cacerts`) holds nothing secret and is not reported.

use super::hit;
use crate::detect::checks::{CheckHit, CheckRule};
use crate::detect::wire::Reader;
use crate::report::Severity;

/// `.p12` / `.pfx` files.
pub(crate) const PKCS12: CheckRule = CheckRule {
    id: "pkcs12-keystore",
    title: "PKCS#12 keystore present (.p12/.pfx)",
    severity: Severity::Medium,
    remediation: "Remove the keystore from the image: its password can be brute-forced offline. Rotate the key it holds if it protects anything, and provision certificates at boot.",
    suppresses: &[],
};

/// JKS / JCEKS keystores with private or secret key entries.
pub(crate) const JAVA: CheckRule = CheckRule {
    id: "java-keystore",
    title: "Java keystore with private keys present (JKS/JCEKS)",
    severity: Severity::Medium,
    remediation: "Remove the keystore from the image: its password can be brute-forced offline. Rotate the keys it holds and provision keystores at boot.",
    suppresses: &[],
};

/// JKS magic.
const JKS_MAGIC: [u8; 4] = [0xfe, 0xed, 0xfe, 0xed];
/// JCEKS magic.
const JCEKS_MAGIC: [u8; 4] = [0xce, 0xce, 0xce, 0xce];
/// At most this many entries are walked.
const MAX_ENTRIES: usize = 100_000;

/// Whether a file starting with `head` is a Java keystore (the streamer keeps such a file's
/// first bytes for [`java`]).
pub(crate) fn is_java_keystore(head: &[u8]) -> bool {
    matches!(head.get(..8), Some([a, b, c, d, 0, 0, 0, 1 | 2]) if [*a, *b, *c, *d] == JKS_MAGIC || [*a, *b, *c, *d] == JCEKS_MAGIC)
}

/// A PKCS#12 file: DER (starts with a SEQUENCE) and not trivially small.
pub(crate) fn pkcs12(data: &[u8]) -> Vec<CheckHit> {
    if data.len() < 64 || data.first() != Some(&0x30) {
        return Vec::new();
    }
    let mut h = hit(&PKCS12, data, 0, data.len(), "keystore present");
    h.line = None;
    h.evidence = format!(
        "keystore present ({} bytes, password strength unknown)",
        data.len()
    );
    h.secret = None;
    vec![h]
}

/// A Java modified-UTF-8 string (u16 length).
fn utf<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let n = r.u16()?;
    r.take(n)
}

/// A certificate: type string, u32 length, bytes.
fn cert(r: &mut Reader<'_>) -> Option<()> {
    utf(r)?;
    let n = r.u32()?;
    r.take(n).map(|_| ())
}

/// Count of (private or secret key entries, trusted certificates) in a JKS/JCEKS keystore,
/// walking as far as the data goes.
fn java_entries(data: &[u8]) -> Option<(usize, usize)> {
    let mut r = Reader {
        data: data.get(8..)?,
    };
    let count = r.u32()?;
    let (mut keys, mut certs) = (0usize, 0usize);
    for _ in 0..count.min(MAX_ENTRIES) {
        let Some(tag) = r.u32() else { break };
        if utf(&mut r).is_none() || r.take(8).is_none() {
            break;
        }
        match tag {
            1 => {
                keys += 1;
                let ok = (|| {
                    let n = r.u32()?;
                    r.take(n)?;
                    let chain = r.u32()?;
                    for _ in 0..chain.min(64) {
                        cert(&mut r)?;
                    }
                    Some(())
                })();
                if ok.is_none() {
                    break;
                }
            }
            2 => {
                certs += 1;
                if cert(&mut r).is_none() {
                    break;
                }
            }
            3 => {
                // JCEKS secret key: a serialized object whose length is not prefixed; stop.
                keys += 1;
                break;
            }
            _ => break,
        }
    }
    Some((keys, certs))
}

/// A Java keystore holding private or secret keys.
pub(crate) fn java(data: &[u8]) -> Vec<CheckHit> {
    if !is_java_keystore(data) {
        return Vec::new();
    }
    let Some((keys, certs)) = java_entries(data) else {
        return Vec::new();
    };
    if keys == 0 {
        return Vec::new();
    }
    let kind = if data.starts_with(&JKS_MAGIC) {
        "JKS"
    } else {
        "JCEKS"
    };
    let mut h = hit(&JAVA, data, 0, data.len(), "keystore present");
    h.line = None;
    h.evidence = format!(
        "{kind} keystore present: {keys} key entr{}, {certs} trusted certificate{} (password strength unknown)",
        if keys == 1 { "y" } else { "ies" },
        if certs == 1 { "" } else { "s" }
    );
    h.secret = None;
    vec![h]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf(s: &str) -> Vec<u8> {
        let mut v = u16::try_from(s.len()).unwrap().to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn cert() -> Vec<u8> {
        let mut v = utf("X.509");
        v.extend_from_slice(&16u32.to_be_bytes());
        v.extend_from_slice(&[0x30; 16]);
        v
    }

    fn jks(entries: &[u32]) -> Vec<u8> {
        let mut v = JKS_MAGIC.to_vec();
        v.extend_from_slice(&2u32.to_be_bytes());
        v.extend_from_slice(&u32::try_from(entries.len()).unwrap().to_be_bytes());
        for (i, &tag) in entries.iter().enumerate() {
            v.extend_from_slice(&tag.to_be_bytes());
            v.extend(utf(&format!("alias{i}")));
            v.extend_from_slice(&[0; 8]);
            if tag == 1 {
                v.extend_from_slice(&32u32.to_be_bytes());
                v.extend_from_slice(&[0x42; 32]);
                v.extend_from_slice(&1u32.to_be_bytes());
                v.extend(cert());
            } else {
                v.extend(cert());
            }
        }
        v.extend_from_slice(&[0xab; 20]);
        v
    }

    #[test]
    fn keystore_with_a_private_key_is_reported() {
        let hits = java(&jks(&[2, 1, 2]));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Severity::Medium);
        assert_eq!(
            hits[0].evidence,
            "JKS keystore present: 1 key entry, 2 trusted certificates (password strength unknown)"
        );
        assert!(hits[0].secret.is_none());
    }

    #[test]
    fn truststores_and_garbage_are_not() {
        assert!(java(&jks(&[2, 2])).is_empty());
        assert!(java(b"\xfe\xed\xfe\xed").is_empty());
        assert!(java(b"hello world").is_empty());
        let mut cut = jks(&[1]);
        cut.truncate(40);
        // A cut private-key entry still counts: its tag was read.
        assert_eq!(java(&cut).len(), 1);
    }

    #[test]
    fn pkcs12_needs_der() {
        assert_eq!(pkcs12(&[0x30; 100]).len(), 1);
        assert!(pkcs12(b"-----BEGIN CERTIFICATE-----\n").is_empty());
    }
}
