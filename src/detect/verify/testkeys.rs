//! Published test keys and test-suite paths: private keys that distributions ship on purpose.
//!
//! The rule: a finding is lowered to `info` when
//! 1. its secret, reduced to its base64 characters, hashes (SHA-256) to a key in [`KNOWN`]: a
//!    key published in a language's or library's own test suite. Such a key protects nothing,
//!    because everyone has it; it is still reported so that nobody mistakes it for a real one
//!    (and a service configured with it would be worth knowing about), or
//! 2. its secret is a credential published on purpose ([`KNOWN_PUBLIC`]: RFC and README
//!    examples, vendor values that are public by design), or
//! 3. its path lies under a `test`, `tests` or `testdata` directory inside a packaged tree
//!    (`/usr/lib`, `/usr/lib64`, `/usr/share`, `/usr/local/lib`), where package managers install
//!    test suites. A secret planted by hand lives elsewhere (`/root`, `/home`, `/etc`, `/opt`,
//!    `/srv`, `/var`), and those paths are never lowered. Package documentation
//!    (`/usr/share/doc`) is lowered the same way, as documentation examples.
//!
//! `ssl-cert-snakeoil.key` is not a test key: it is generated on each machine, so it is never
//! in this list.

use sha2::{Digest, Sha256};

/// SHA-256 (hex) of the base64 characters of published test keys, with where they come from.
/// Regenerate by extracting the PEM bodies, dropping everything but `[A-Za-z0-9+/=]`, hashing.
pub(crate) const KNOWN: &[(&str, &str)] = &[
    (
        "d63cfe7d0783ea1dde58d51f2c76880a8125a1e0340895df7e678b4e3563689b",
        "Go crypto/tls testdata/example-key.pem",
    ),
    (
        "a4b13c7bba72f43af51f5012886c713160ef31f69a560a7f42dc7dbaeaca95a0",
        "CPython test suite keycert.pem / ssl_key.pem",
    ),
    (
        "9ace1d453f107d8224fa59ec6215236187bb6013cce2cd0c031228a72a897471",
        "CPython test suite ssl_key.passwd.pem",
    ),
    (
        "da4b473953b1ea4d144572b0d7b023fb37c935369e10ce5c4457e6d491217d92",
        "CPython test suite keycert.passwd.pem",
    ),
    (
        "a392d787746182a3a4d59fbe5ba335104510f5757cde47ae73adae3021e09fec",
        "CPython test suite nosan.pem",
    ),
    (
        "564cb12fd4416e815e553c68e40fceee3f9e9605f96755ed55e10b153d38bc35",
        "CPython test suite keycertecc.pem",
    ),
    (
        "d0015ffd2d53443af0ea7608a52b75f71665c321eb8496ad27aaf11aa719446b",
        "CPython test suite keycert2.pem",
    ),
    (
        "ebf0b1587c9ce3a3d8a85313cd5a48f7fc4d6fb8a5506d8072984f558b80fea1",
        "CPython test suite allsans.pem",
    ),
    (
        "c21f5fc525cdcd86c3750fd4c5b5dfb8e644c8de62ef5c0477500a19023f5d6e",
        "CPython test suite badcert.pem",
    ),
    (
        "574cd7f5fa0746c7549d7853d6f5cf9d343ebc7e1d3705bfb4d47eba6a63677b",
        "CPython test suite pycakey.pem",
    ),
    (
        "fd681435cd09e0542149fdbc8c9ffd6a33c78eb991e27b6f03497f6fc234e8d8",
        "CPython test suite idnsans.pem",
    ),
    (
        "687f2d69450298c0a267ff2143e2e55fa197c67cee0a114422e40c6b61666bb4",
        "CPython test suite keycert4.pem",
    ),
    (
        "11459d6d79b1b7c6705dcfa1efd868ac6aa18a95624f0c3b15f27952976e7955",
        "CPython test suite keycert3.pem",
    ),
    (
        "bf552d2ff30b20f0b0ee2bcc357a5ab68dbe899ae09a0071b097bee2d2434332",
        "GnuTLS 3.7 self-test key (libgnutls.so)",
    ),
    (
        "cadf1e62661d5d21a7fce2c80b3319022ee366137e4b302a7ea78b7f17d6f599",
        "GnuTLS 3.7 self-test key (libgnutls.so)",
    ),
    (
        "6d03bbf47115fad00d6f990593a6465ca693d0f6d797721cfc94b0190349b50d",
        "GnuTLS 3.7 self-test key (libgnutls.so)",
    ),
    (
        "24a2416c5abbb67327599619c25906553b849d79cbc413e2a061f12de6718838",
        "GnuTLS 3.7 self-test EC key (libgnutls.so)",
    ),
    (
        "9ab6db67523ba6071fdb948b3ce38349ec08fb726f359abbbca33a3a84238ba2",
        "GnuTLS 3.7 self-test DSA key (libgnutls.so)",
    ),
    (
        "f287c70b1db074fe73f73bfb1f09a8b0231e0d951d5bfd30a742bcb9de9195ab",
        "GnuTLS 3.7 self-test RSA key (libgnutls.so)",
    ),
    (
        "1293c0784928bc53daa68d087c636e3b5b955fdae687bba6b253997768991e04",
        "urllib3 test suite dummyserver/certs/server.key",
    ),
    (
        "26bdbdb6b839c87b66039363d2ab00155a03b5beba1da87b9aadd5347f7be7b5",
        "urllib3 test suite dummyserver/certs/cacert.key",
    ),
];

/// SHA-256 (hex) of credentials published on purpose: documentation and RFC examples, and
/// vendor values public by design, found in stock distribution trees. Hashed as matched.
pub(crate) const KNOWN_PUBLIC: &[(&str, &str)] = &[
    (
        "bf145d9380bbe05bdc1a72525796b224f8a8c93ae0e9e102eafbc255ac1af9e8",
        "PyJWT README example token",
    ),
    (
        "6c96130f130ab0d6d158397e24d2bcc1c9a5e73ae081f6e983f1c7b545d24a4c",
        "RFC 6749 example access token",
    ),
    (
        "00cf4c781dc37003f7c7dd7d4c9a6ef1e0f4c62d9a291aa8bc398774e3fefd32",
        "RFC 6749 example refresh token",
    ),
    (
        "9d03b692e941d5ace207a9f8048834439f6de98e5c6c1590c22c4f4577c88a42",
        "RFC 5849 example OAuth token",
    ),
    (
        "a73b3ad3b416d981fce267795785aee45bf39224fa07ce8a2e2f5a9fa89ef979",
        "Google Cloud SDK crash-reporting API key (public by design)",
    ),
    (
        "6189b36d964849f34370088524ad63c235eba30974ee3da0d966ed6bac16b50d",
        "Google Cloud SDK crash-reporting API key (public by design)",
    ),
    (
        "456a51b1f1b3cf3ed76de579926f0727797eb6efb4b7e6a53c74f9a94c95d87a",
        "Google Cloud SDK installed-app OAuth client secret (public by design)",
    ),
    (
        "f0386f9be1fe905fb2f97a8daff11a9baa9988ceca7c2ecae4aec8db182db1b4",
        "Google Cloud SDK installed-app OAuth client secret (public by design)",
    ),
    (
        "ae4185b2f0bb1af00abc6a4502fbfbdc6a90aec65c7bcee08e37a1bc20de5ac1",
        "Jetty 9.4 demo keystore (modules/ssl/keystore)",
    ),
    (
        "ca7459e2b26776de081b9a07e40227fd6cff232a1e3233ff6b6aa6d036ca9981",
        "RFC 6749 example client credentials (Basic s6BhdRkqt3:gX1fBat3bV)",
    ),
    (
        "bd84b29cf06c0ad65a17a73aae15344f3cf7b2eb79284ecc764b2c1904edf9ed",
        "cloud-init documentation example password hash (cc_set_passwords)",
    ),
];

/// What a published, public-by-design credential is, if `secret` is one.
pub(crate) fn known_public(secret: &[u8]) -> Option<&'static str> {
    let digest = hex::encode(Sha256::digest(secret));
    KNOWN_PUBLIC
        .iter()
        .find(|(h, _)| *h == digest)
        .map(|(_, what)| *what)
}

/// Base64 bodies longer than this are not hashed (no known key is that large).
const MAX_BODY: usize = 64 * 1024;

/// Where a published test key comes from, if `secret` (a key body) is one.
pub(crate) fn known_test_key(secret: &[u8]) -> Option<&'static str> {
    if secret.len() > MAX_BODY {
        return None;
    }
    let b64: Vec<u8> = secret
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || *b == b'=')
        .collect();
    // Escaped newlines (`\n` in JSON) leave an `n` behind: hash both readings.
    let unescaped = unescape_newlines(secret);
    let digests = [
        hex::encode(Sha256::digest(&b64)),
        hex::encode(Sha256::digest(&unescaped)),
    ];
    KNOWN
        .iter()
        .find(|(h, _)| digests.iter().any(|d| d == h))
        .map(|(_, origin)| *origin)
}

/// Base64 characters of `s` with `\n` / `\r` escapes removed.
fn unescape_newlines(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut escaped = false;
    for &b in s {
        if escaped {
            escaped = false;
            if b == b'n' || b == b'r' {
                continue;
            }
        }
        if b == b'\\' {
            escaped = true;
        } else if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            out.push(b);
        }
    }
    out
}

/// Packaged trees whose test directories hold test vectors.
const PACKAGED: &[&str] = &["/usr/lib/", "/usr/lib64/", "/usr/share/", "/usr/local/lib/"];

/// Package documentation: examples there are lowered like test vectors.
const DOCS: &str = "/usr/share/doc/";

/// Directory names that hold test suites.
const TEST_DIRS: &[&str] = &["test", "tests", "testdata"];

/// Whether `path` is in the packages' documentation.
pub(crate) fn is_doc_path(path: &str) -> bool {
    path.starts_with(DOCS)
}

/// Whether `path` is inside a test directory of a packaged tree.
pub(crate) fn is_test_path(path: &str) -> bool {
    let Some(rest) = PACKAGED.iter().find_map(|p| path.strip_prefix(p)) else {
        return false;
    };
    let mut dirs: Vec<&str> = rest.split('/').collect();
    dirs.pop(); // the file name
    dirs.iter().any(|d| TEST_DIRS.contains(d))
}

/// The note of a finding lowered for its place in `/usr/share/doc` (the provenance step raises
/// it again when no package ships the file, or the file differs from what its package shipped).
pub(crate) const DOC_NOTE: &str = " (probably a documentation example: in /usr/share/doc)";
/// The note of a finding lowered for its place in a packaged test directory (see [`DOC_NOTE`]).
pub(crate) const TEST_NOTE: &str = " (probably a test vector: in a packaged test directory)";

/// The evidence note and `info` lowering for a finding at `path` with key body `secret`.
pub(crate) fn test_vector_note(path: &str, secret: &[u8]) -> Option<String> {
    if let Some(origin) = known_test_key(secret) {
        return Some(format!(
            " (published test key: {origin}; never use it to protect anything)"
        ));
    }
    if let Some(what) = known_public(secret) {
        return Some(format!(" (published on purpose: {what})"));
    }
    if is_doc_path(path) {
        return Some(DOC_NOTE.into());
    }
    is_test_path(path).then(|| TEST_NOTE.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's crypto/tls testdata/example-key.pem, a published test key.
    const GO_EXAMPLE: &str = "MHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\nAwEHoUQDQgAEPR3tU2Fta9ktY+6P9G0cWO+0kETA6SFs38GecTyudlHz6xvCdz8q\nEKTcWGekdmdDPsHloRNtsiCa697B2O9IFA==\n";

    #[test]
    fn the_go_example_key_is_known_in_any_layout() {
        assert!(known_test_key(GO_EXAMPLE.as_bytes()).is_some());
        let crlf = GO_EXAMPLE.replace('\n', "\r\n");
        assert!(known_test_key(crlf.as_bytes()).is_some());
        let json = GO_EXAMPLE.replace('\n', "\\n");
        assert!(known_test_key(json.as_bytes()).is_some());
        assert!(known_test_key(b"MHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5C").is_none());
    }

    #[test]
    fn test_paths_only_in_packaged_trees() {
        assert!(is_test_path("/usr/lib/python3.11/test/keycert.pem"));
        assert!(is_test_path(
            "/usr/share/go-1.19/src/crypto/tls/testdata/k.pem"
        ));
        assert!(is_test_path(
            "/usr/lib/python3/dist-packages/x/tests/data/key"
        ));
        assert!(!is_test_path("/root/tests/key.pem"));
        assert!(!is_test_path("/usr/lib/ssl/private/key.pem"));
        assert!(!is_test_path("/usr/lib/x/test"));
        assert!(!is_test_path("/usr/lib/testing/key"));
        assert!(!is_test_path("/etc/test/key"));
    }

    #[test]
    fn the_note_says_why() {
        let n = test_vector_note("/root/k", GO_EXAMPLE.as_bytes()).unwrap();
        assert!(n.contains("published test key"));
        let n = test_vector_note("/usr/lib/p/tests/k", b"AAAA").unwrap();
        assert!(n.contains("probably a test vector"));
        assert!(test_vector_note("/root/k", b"AAAA").is_none());
        let n = test_vector_note("/x", b"2YotnFZFEjr1zCsicMWpAA").unwrap();
        assert!(n.contains("RFC 6749"), "{n}");
        let n = test_vector_note("/usr/share/doc/x/examples/key.pem", b"AAAA").unwrap();
        assert!(n.contains("documentation example"), "{n}");
    }
}
