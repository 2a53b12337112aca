//! Windows Credential Manager files left in a profile (issue 15: "browser-independent
//! credential files"): `AppData\{Roaming,Local}\Microsoft\Credentials\<id>` of every user and of
//! the system and service profiles, where `cmdkey /add`, Remote Desktop's "remember me", mapped
//! drives and scheduled jobs keep saved passwords.
//!
//! Each file is a small header (version, size, reserved: 12 bytes) and a DPAPI blob (version
//! 1, provider `{df9d8cd0-1501-11d1-8c7a-00c04fc297eb}`, the master key's GUID, flags, a
//! UTF-16 description such as `Local Credential Data`). The blob is encrypted with the user's
//! master key, which the same profile keeps under `AppData\Roaming\Microsoft\Protect`, itself
//! protected by the user's password: whoever has the image and that password (or its hash from
//! the SAM hive) decrypts it offline, as mimikatz and impacket's `dpapi.py` do. Nothing is
//! decrypted here; the evidence names the description and the master key, the fingerprint is
//! of the blob. A file there that is not a credential blob is left alone.

use super::{CheckHit, CheckRule, clip};
use crate::detect::registry::pattern::{Glob, glob_nocase};
use crate::report::Severity;

/// The rule.
pub(crate) const RULE: CheckRule = CheckRule {
    id: "windows-saved-credential",
    title: "Windows Credential Manager saved credential (DPAPI, decryptable with the user's password)",
    severity: Severity::High,
    remediation: "Delete the saved credentials from every profile before creating the image (`cmdkey /list` then `cmdkey /delete:<target>`, or remove AppData\\Roaming\\Microsoft\\Credentials and AppData\\Local\\Microsoft\\Credentials), and change the passwords they held.",
    suppresses: &[],
};

/// The files this check reads.
pub(crate) const SCOPE: &[Glob] = &[
    glob_nocase("/Users/*/AppData/{Roaming,Local}/Microsoft/Credentials/*"),
    glob_nocase(
        "/Windows/System32/config/systemprofile/AppData/{Roaming,Local}/Microsoft/Credentials/*",
    ),
    glob_nocase("/Windows/ServiceProfiles/*/AppData/{Roaming,Local}/Microsoft/Credentials/*"),
];

/// The DPAPI provider GUID as stored (`{df9d8cd0-1501-11d1-8c7a-00c04fc297eb}`, mixed-endian).
const PROVIDER: [u8; 16] = [
    0xD0, 0x8C, 0x9D, 0xDF, 0x01, 0x15, 0xD1, 0x11, 0x8C, 0x7A, 0x00, 0xC0, 0x4F, 0xC2, 0x97, 0xEB,
];

/// Where the DPAPI blob starts in a credential file.
const BLOB: usize = 12;

/// Longest description read (characters).
const MAX_DESCRIPTION: usize = 256;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A GUID as Windows writes it.
fn guid(b: &[u8]) -> Option<String> {
    let b = b.get(..16)?;
    let d1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let d2 = u16::from_le_bytes([b[4], b[5]]);
    let d3 = u16::from_le_bytes([b[6], b[7]]);
    let tail: String = b[8..].iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{d1:08x}-{d2:04x}-{d3:04x}-{}-{}",
        &tail[..4],
        &tail[4..]
    ))
}

/// A finding when `data` is a credential file.
pub(crate) fn check(_path: &str, data: &[u8]) -> Vec<CheckHit> {
    let Some(blob) = data.get(BLOB..) else {
        return Vec::new();
    };
    if u32_at(blob, 0) != Some(1) || blob.get(4..20) != Some(&PROVIDER[..]) {
        return Vec::new();
    }
    let master = guid(blob.get(24..40).unwrap_or(&[])).unwrap_or_else(|| "?".into());
    let description = u32_at(blob, 44)
        .and_then(|n| usize::try_from(n).ok())
        .map(|n| n.min(MAX_DESCRIPTION * 2))
        .and_then(|n| blob.get(48..48usize.checked_add(n)?))
        .map(|raw| {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            clip(&String::from_utf16_lossy(&units), 64)
        })
        .unwrap_or_default();
    let what = if description.is_empty() {
        "no description".to_string()
    } else {
        format!("\"{description}\"")
    };
    vec![CheckHit {
        rule: RULE.id,
        severity: RULE.severity,
        line: None,
        start: 0,
        end: u64::try_from(data.len()).unwrap_or(u64::MAX),
        evidence: format!(
            "saved credential ({what}), DPAPI-encrypted with master key {master} of the profile"
        ),
        fingerprint_of: blob.to_vec(),
        secret: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A credential file: the header and a DPAPI blob with `description`.
    pub(crate) fn credential_file(description: &str) -> Vec<u8> {
        let mut blob = Vec::new();
        blob.extend_from_slice(&1u32.to_le_bytes());
        blob.extend_from_slice(&PROVIDER);
        blob.extend_from_slice(&1u32.to_le_bytes());
        blob.extend_from_slice(&[
            0x78, 0x56, 0x34, 0x12, 0xcd, 0xab, 0x01, 0xef, 0x80, 0x01, 0x02, 0x03, 0x04, 0x05,
            0x06, 0x07,
        ]);
        blob.extend_from_slice(&0x2000_0000u32.to_le_bytes());
        let d: Vec<u8> = description
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        blob.extend_from_slice(&u32::try_from(d.len()).unwrap().to_le_bytes());
        blob.extend_from_slice(&d);
        blob.extend_from_slice(&[0x5a; 96]);
        let mut f = Vec::new();
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&u32::try_from(blob.len()).unwrap().to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&blob);
        f
    }

    #[test]
    fn a_credential_blob_is_found_and_named() {
        let f = credential_file("Local Credential Data");
        let hits = check("/Users/a/AppData/Roaming/Microsoft/Credentials/AB12", &f);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].rule, "windows-saved-credential");
        assert_eq!(hits[0].severity, Severity::High);
        assert_eq!(
            hits[0].evidence,
            "saved credential (\"Local Credential Data\"), DPAPI-encrypted with master key \
             12345678-abcd-ef01-8001-020304050607 of the profile"
        );
        assert_eq!(hits[0].fingerprint_of, f[BLOB..]);
    }

    #[test]
    fn other_files_and_damage_are_left_alone() {
        assert!(check("/x", b"").is_empty());
        assert!(check("/x", b"desktop.ini [.ShellClassInfo]").is_empty());
        let mut f = credential_file("Local Credential Data");
        f[BLOB + 4] ^= 1; // another provider
        assert!(check("/x", &f).is_empty());
        // A description length past the end: found, without a description.
        let mut f = credential_file("x");
        f[BLOB + 44..BLOB + 48].copy_from_slice(&u32::MAX.to_le_bytes());
        let hits = check("/x", &f);
        assert!(hits[0].evidence.contains("no description"), "{hits:?}");
        // Truncated inside the header: still a blob, no master key read beyond the end.
        let f = credential_file("x");
        assert_eq!(check("/x", &f[..BLOB + 30]).len(), 1);
    }

    #[test]
    fn the_scope_is_every_profile_s_credentials_folder() {
        for p in [
            "/Users/alice/AppData/Roaming/Microsoft/Credentials/DFBE70A7E5CC19A398EBF1B96859CE5D",
            "/users/Bob/appdata/local/microsoft/credentials/0A1B",
            "/Windows/System32/config/systemprofile/AppData/Local/Microsoft/Credentials/X",
            "/Windows/ServiceProfiles/NetworkService/AppData/Roaming/Microsoft/Credentials/Y",
        ] {
            assert_eq!(
                crate::detect::registry::check_for(p),
                Some(super::super::Check::WindowsVault),
                "{p}"
            );
        }
        assert_eq!(
            crate::detect::registry::check_for("/Users/a/AppData/Roaming/Microsoft/Protect/S-1/k"),
            None
        );
    }
}
