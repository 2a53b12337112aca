//! Windows registry hives left in an image (`Windows/System32/config/SAM`, `SECURITY`,
//! `SOFTWARE`, every user's `NTUSER.DAT`), read offline through `detect::hive`: what tools
//! such as secretsdump, LaZagne and CIS benchmark scanners pull from a Windows disk, judged
//! as a publisher shipping an image should be.
//!
//! - `SAM` (`SAM\Domains\Account\Users\<RID>`, values `F` and `V`): an enabled account with a
//!   stored NT hash (the built-in Administrator, RID 500: critical; others: high, as a Linux
//!   account with a usable hash); an enabled account with no password at all (critical); an
//!   LM hash still stored (high: cracked in minutes). The hash is never shown: the evidence says
//!   which account and what is stored, the fingerprint is of the stored (encrypted) bytes.
//! - `SOFTWARE` (`Microsoft\Windows NT\CurrentVersion\Winlogon`): `DefaultPassword`, the
//!   auto-logon password in clear (critical), with `AutoAdminLogon` and the account named.
//! - `SECURITY` (`Policy\Secrets`, `Cache`): LSA secrets that hold a password — the auto-logon
//!   `DefaultPassword` (critical), service account passwords `_SC_<service>` and a domain
//!   machine account `$MACHINE.ACC` (high) — and cached domain logons `NL$n` (high). They are
//!   encrypted with the boot key, which the `SYSTEM` hive beside them holds: anyone with the
//!   image decrypts them offline. Their presence is reported, nothing is decrypted.
//! - `NTUSER.DAT`: saved session passwords of the tools admins install on Windows hosts —
//!   PuTTY's `ProxyPassword` (plain text) and WinSCP's `Password`, `ProxyPassword`,
//!   `TunnelPassword` (obfuscated, reversible without a key unless a master password is set).
//!
//! - `SYSTEM`, `SOFTWARE` and `SAM` also give Remote Desktop and WinRM settings that allow weak
//!   authentication or clear traffic, and the machine's identity at info
//!   (`windows_remote.rs`).
//!
//! A hive that is there but cannot be read (a read error, a corrupt cell on the way to a key
//! judged) is an error of the scan, never a clean verdict; a hive that was not flushed (its
//! transaction logs are not replayed) is judged as on disk and reported as an error, as what
//! the logs hold was not seen. Hives above [`MAX_HIVE`] bytes are errors too.

use super::windows_autoruns::{self, at_value};
use super::windows_hijack;
use super::windows_remote;
use super::{CheckHit, CheckRule, clip};
use crate::detect::finding::redact;
use crate::detect::hive::{Hive, HiveError, Value, same_name};
use crate::detect::lookup::{FileLookup, Looked, Unreadable};
use crate::detect::registry::pattern::{Glob, glob_nocase};
use crate::model::ScanError;
use crate::report::Severity;

/// The built-in Administrator with a password.
pub(crate) const ADMIN_RULE: CheckRule = CheckRule {
    id: "windows-admin-password",
    title: "Built-in Administrator enabled with a password stored in the image",
    severity: Severity::Critical,
    remediation: "Generalize the image with EC2Launch v2 `sysprep` (or EC2Launch v1 `InitializeInstance.ps1 -Schedule` and Sysprep) so each instance gets its own random Administrator password; every instance launched from this image shares this password and its hash.",
    suppresses: &[],
};

/// Another enabled local account with a password.
pub(crate) const ACCOUNT_RULE: CheckRule = CheckRule {
    id: "windows-account-password",
    title: "Enabled local Windows account with a password stored in the image",
    severity: Severity::High,
    remediation: "Remove or disable the account before creating the image (`Remove-LocalUser` / `Disable-LocalUser`) and manage access per instance; change this password wherever it is reused.",
    suppresses: &[],
};

/// An enabled account without a password.
pub(crate) const EMPTY_RULE: CheckRule = CheckRule {
    id: "windows-account-empty-password",
    title: "Enabled local Windows account with an empty password",
    severity: Severity::Critical,
    remediation: "Disable the account (`Disable-LocalUser`) or set a password before creating the image.",
    suppresses: &[],
};

/// An LM hash.
pub(crate) const LM_RULE: CheckRule = CheckRule {
    id: "windows-lm-hash",
    title: "LM password hash stored for a local Windows account",
    severity: Severity::High,
    remediation: "Set `NoLMHash` (Network security: Do not store LAN Manager hash value) and change the account's password before creating the image; LM hashes are cracked in minutes.",
    suppresses: &[],
};

/// Winlogon `DefaultPassword`.
pub(crate) const AUTOLOGON_RULE: CheckRule = CheckRule {
    id: "windows-autologon-password",
    title: "Auto-logon password in clear in the Winlogon registry key",
    severity: Severity::Critical,
    remediation: "Delete `DefaultPassword` (and set `AutoAdminLogon` to 0) under HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon before creating the image (`Remove-ItemProperty`); change the password.",
    suppresses: &[],
};

/// LSA secrets and cached domain logons.
pub(crate) const LSA_RULE: CheckRule = CheckRule {
    id: "windows-lsa-secret",
    title: "Password stored as an LSA secret or cached domain logon (decryptable offline)",
    severity: Severity::High,
    remediation: "Remove the service account password, auto-logon or domain membership from the build machine before capturing it (run services as virtual or managed service accounts; do not join the build host to a domain; generalize with EC2Launch v2 `sysprep`); change the passwords.",
    suppresses: &[],
};

/// Saved session passwords in a user's hive.
pub(crate) const SESSION_RULE: CheckRule = CheckRule {
    id: "windows-saved-session-password",
    title: "Saved session password of PuTTY or WinSCP in a user's registry",
    severity: Severity::High,
    remediation: "Delete the saved sessions (HKCU\\Software\\SimonTatham\\PuTTY\\Sessions, HKCU\\Software\\Martin Prikryl\\WinSCP 2\\Sessions) from every profile before creating the image, and change the passwords.",
    suppresses: &[],
};

/// Every rule of the family.
pub(crate) const RULES: &[CheckRule] = &[
    ADMIN_RULE,
    ACCOUNT_RULE,
    EMPTY_RULE,
    LM_RULE,
    AUTOLOGON_RULE,
    LSA_RULE,
    SESSION_RULE,
    windows_remote::RDP_RULE,
    windows_remote::WINRM_RULE,
    windows_remote::IDENTITY_RULE,
];

/// The hives read by path (documented in the registry; the lookup below finds them without
/// case, as Windows does).
pub(crate) const HIVE_FILES: &[Glob] = &[
    glob_nocase("/Windows/System32/config/{SAM,SECURITY,SOFTWARE,SYSTEM}"),
    glob_nocase("/Users/*/NTUSER.DAT"),
];

/// The hives the autoruns family reads (through this check, which reads each hive once).
pub(crate) const AUTORUN_HIVE_FILES: &[Glob] = &[
    glob_nocase("/Windows/System32/config/{SOFTWARE,SYSTEM}"),
    glob_nocase("/Users/*/NTUSER.DAT"),
];

/// The hives the hijacks family reads (through this check, which reads each hive once).
pub(crate) const HIJACK_HIVE_FILES: &[Glob] =
    &[glob_nocase("/Windows/System32/config/{SOFTWARE,SYSTEM}")];

/// Largest hive read (a `SOFTWARE` hive of a full Windows Server is 50–150 MiB).
pub(crate) const MAX_HIVE: usize = 512 << 20;
/// Most user profiles looked at.
const MAX_PROFILES: usize = 4096;
/// Most accounts, secrets or sessions judged per hive.
const MAX_ITEMS: usize = 10_000;

/// `ACB_DISABLED` in the account control flags of `F`.
const ACB_DISABLED: u16 = 0x0001;

/// The entry of directory `dir` named `name` without case, as a path.
fn find(lookup: &dyn FileLookup, dir: &str, name: &str) -> Looked<Option<String>> {
    Ok(lookup
        .list(dir)?
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(|n| format!("{}/{n}", dir.trim_end_matches('/'))))
}

/// `path` (components from the root) resolved without case.
pub(crate) fn find_path(lookup: &dyn FileLookup, parts: &[&str]) -> Looked<Option<String>> {
    let mut at = String::from("/");
    for p in parts {
        match find(lookup, &at, p)? {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
    Ok(Some(at))
}

/// Every finding about the hives of a volume (path, hit), and what could not be judged.
pub(crate) fn check(lookup: &dyn FileLookup) -> (Vec<(String, CheckHit)>, Vec<ScanError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    type Judge = fn(&Hive<'_>) -> Result<Vec<CheckHit>, HiveError>;
    // Every hive's path first, so a volume read over the network fetches them together.
    let mut hives: Vec<(Looked<Option<String>>, &[Judge])> = Vec::new();
    let config = |name: &str| find_path(lookup, &["Windows", "System32", "config", name]);
    hives.push((config("SAM"), &[sam, windows_remote::sam]));
    hives.push((config("SECURITY"), &[security]));
    hives.push((
        config("SOFTWARE"),
        &[
            software,
            windows_remote::software,
            windows_autoruns::software,
            windows_hijack::software,
        ],
    ));
    hives.push((
        config("SYSTEM"),
        &[
            windows_remote::system,
            windows_autoruns::system,
            windows_hijack::system,
        ],
    ));
    match find_path(lookup, &["Users"]) {
        Ok(Some(users)) => match lookup.list(&users) {
            Ok(mut names) => {
                names.sort();
                for name in names.iter().take(MAX_PROFILES) {
                    let dir = format!("{users}/{name}");
                    hives.push((
                        find(lookup, &dir, "NTUSER.DAT"),
                        &[ntuser, windows_autoruns::ntuser],
                    ));
                }
            }
            Err(e) => errors.push(e.scan_error("users' registry hives were not judged")),
        },
        Ok(None) => {}
        Err(e) => errors.push(e.scan_error("users' registry hives were not judged")),
    }
    let paths: Vec<String> = hives
        .iter()
        .filter_map(|(p, _)| p.as_ref().ok().cloned().flatten())
        .collect();
    lookup.prefetch(&paths);
    let mut judge = |path: Looked<Option<String>>, judges: &[Judge]| {
        let path = match path {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                errors.push(e.scan_error("the registry hive was not judged"));
                return;
            }
        };
        match read_hive(lookup, &path) {
            Ok(Some(bytes)) => match Hive::parse(&bytes) {
                Ok(h) => {
                    if h.dirty() {
                        errors.push(ScanError {
                            path: Some(path.clone()),
                            path_bytes: None,
                            message: "registry hive not flushed (its sequence numbers differ): \
                                      judged as on disk, its transaction logs (.LOG1/.LOG2) \
                                      are not replayed"
                                .into(),
                        });
                    }
                    // Each judge on its own: a corrupt key on one's way leaves the others' verdicts.
                    for f in judges {
                        match f(&h) {
                            Ok(hits) => out.extend(hits.into_iter().map(|x| (path.clone(), x))),
                            Err(e) => errors.push(ScanError {
                                path: Some(path.clone()),
                                path_bytes: None,
                                message: format!("{e}: the registry hive was not judged"),
                            }),
                        }
                    }
                }
                Err(e) => errors.push(ScanError {
                    path: Some(path.clone()),
                    path_bytes: None,
                    message: format!("{e}: the registry hive was not judged"),
                }),
            },
            Ok(None) => {}
            Err(e) => errors.push(e.scan_error("the registry hive was not judged")),
        }
    };
    for (path, judges) in hives {
        judge(path, judges);
    }
    (out, errors)
}

/// The whole hive at `path`; an error when it is larger than [`MAX_HIVE`].
fn read_hive(lookup: &dyn FileLookup, path: &str) -> Looked<Option<Vec<u8>>> {
    let Some(bytes) = lookup.read(path, MAX_HIVE.saturating_add(1))? else {
        return Ok(None);
    };
    if bytes.len() > MAX_HIVE {
        return Err(Unreadable {
            path: path.into(),
            reason: format!("larger than {} MiB", MAX_HIVE >> 20),
        });
    }
    Ok(Some(bytes))
}

/// What a SAM hash entry (`SAM_HASH`, `SAM_HASH_AES`) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// No hash: the account has no password (or it is not stored).
    None,
    /// A hash, RC4-encrypted (before Windows 10 1607) or AES-encrypted.
    Hash(&'static str),
}

/// The hash entry `(offset, length)` at `at` in the header of `V`, and what it holds.
fn hash_entry(v: &[u8], at: usize) -> (Stored, &[u8]) {
    let off = read_u32(v, at);
    let len = read_u32(v, at.saturating_add(4));
    let data = off
        .checked_add(0xCC)
        .and_then(|s| Some(s..s.checked_add(len)?))
        .and_then(|r| v.get(r))
        .unwrap_or(&[]);
    let rev = data.get(2..4).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let stored = match (rev, data.len()) {
        (Some(1), n) if n >= 0x14 => Stored::Hash("RC4-encrypted"),
        (Some(2), n) if n > 0x18 => Stored::Hash("AES-encrypted"),
        _ => Stored::None,
    };
    (stored, data)
}

fn read_u32(b: &[u8], at: usize) -> usize {
    b.get(at..at.saturating_add(4))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// The account name in `V` (UTF-16, the first entry after the header's first).
fn account_name(v: &[u8]) -> String {
    let off = read_u32(v, 0x0C);
    let len = read_u32(v, 0x10).min(512);
    let raw = off
        .checked_add(0xCC)
        .and_then(|s| v.get(s..s.checked_add(len)?))
        .unwrap_or(&[]);
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    clip(&String::from_utf16_lossy(&units), 64)
}

/// Local accounts (`SAM\Domains\Account\Users`).
fn sam(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    let Some(users) = h.key("SAM\\Domains\\Account\\Users")? else {
        return Ok(hits);
    };
    for k in h.subkeys(users)?.into_iter().take(MAX_ITEMS) {
        let name = h.name(k)?;
        let Ok(rid) = u32::from_str_radix(&name, 16) else {
            continue; // `Names`
        };
        let (Some(f), Some(v)) = (h.get(k, "F")?, h.get(k, "V")?) else {
            continue;
        };
        let acb = f
            .data
            .get(0x38..0x3A)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        let enabled = acb & ACB_DISABLED == 0;
        let who = format!("{} (RID {rid})", account_name(&v.data));
        let (nt, nt_bytes) = hash_entry(&v.data, 0xA8);
        let (lm, lm_bytes) = hash_entry(&v.data, 0x9C);
        let mut fp = who.clone().into_bytes();
        if enabled {
            match nt {
                Stored::Hash(how) => {
                    let rule = if rid == 500 {
                        &ADMIN_RULE
                    } else {
                        &ACCOUNT_RULE
                    };
                    fp.extend_from_slice(nt_bytes);
                    hits.push(at_value(
                        rule,
                        rule.severity,
                        &v,
                        format!("{who}: enabled, NT hash stored ({how})"),
                        &fp,
                    ));
                }
                Stored::None => hits.push(at_value(
                    &EMPTY_RULE,
                    EMPTY_RULE.severity,
                    &v,
                    format!("{who}: enabled, no password"),
                    &fp,
                )),
            }
        }
        if let Stored::Hash(how) = lm {
            let mut fp = who.clone().into_bytes();
            fp.extend_from_slice(lm_bytes);
            let state = if enabled { "enabled" } else { "disabled" };
            hits.push(at_value(
                &LM_RULE,
                LM_RULE.severity,
                &v,
                format!("{who}: {state}, LM hash stored ({how})"),
                &fp,
            ));
        }
    }
    Ok(hits)
}

/// Winlogon's auto-logon password.
fn software(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let Some(k) = h.key("Microsoft\\Windows NT\\CurrentVersion\\Winlogon")? else {
        return Ok(Vec::new());
    };
    let values = h.values(k)?;
    let get = |n: &str| values.iter().find(|v| same_name(&v.name, n));
    let Some(pw) = get("DefaultPassword") else {
        return Ok(Vec::new());
    };
    let secret = pw.string();
    if secret.is_empty() {
        return Ok(Vec::new());
    }
    let user = get("DefaultUserName")
        .map(Value::string)
        .unwrap_or_default();
    let domain = get("DefaultDomainName")
        .map(Value::string)
        .unwrap_or_default();
    let auto = get("AutoAdminLogon").map_or_else(|| "not set".into(), Value::string);
    let account = match (domain.is_empty(), user.is_empty()) {
        (_, true) => "no DefaultUserName".to_string(),
        (true, false) => clip(&user, 64),
        (false, false) => clip(&format!("{domain}\\{user}"), 96),
    };
    let mut hit = at_value(
        &AUTOLOGON_RULE,
        AUTOLOGON_RULE.severity,
        pw,
        format!(
            "DefaultPassword for {account} (AutoAdminLogon {}): {}",
            clip(&auto, 8),
            redact(None, secret.as_bytes())
        ),
        secret.as_bytes(),
    );
    hit.secret = Some(secret.into_bytes());
    Ok(vec![hit])
}

/// LSA secrets and cached domain logons.
fn security(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    if let Some(secrets) = h.key("Policy\\Secrets")? {
        for k in h.subkeys(secrets)?.into_iter().take(MAX_ITEMS) {
            let name = h.name(k)?;
            let (severity, what) = if same_name(&name, "DefaultPassword") {
                (Severity::Critical, "the auto-logon password")
            } else if name.to_ascii_uppercase().starts_with("_SC_") {
                (Severity::High, "a service account's password")
            } else if same_name(&name, "$MACHINE.ACC") {
                (Severity::High, "the domain machine account's password")
            } else {
                continue;
            };
            let Some(cur) = h.subkey(k, "CurrVal")? else {
                continue;
            };
            let Some(v) = h.get(cur, "")? else {
                continue;
            };
            if v.data.is_empty() {
                continue;
            }
            let mut fp = name.clone().into_bytes();
            fp.extend_from_slice(&v.data);
            hits.push(at_value(
                &LSA_RULE,
                severity,
                &v,
                format!(
                    "LSA secret {} ({what}), encrypted with the boot key of the SYSTEM hive",
                    clip(&name, 64)
                ),
                &fp,
            ));
        }
    }
    if let Some(cache) = h.key("Cache")? {
        for v in h.values(cache)?.into_iter().take(MAX_ITEMS) {
            // An NL$n entry in use starts with the user name's length.
            let used = v.data.len() > 0x60 && v.data.get(..2).is_some_and(|b| b != [0, 0]);
            if !v.name.to_ascii_uppercase().starts_with("NL$") || v.name == "NL$Control" || !used {
                continue;
            }
            let mut fp = v.name.clone().into_bytes();
            fp.extend_from_slice(&v.data);
            let evidence = format!(
                "cached domain logon {} (a domain password hash, crackable offline)",
                clip(&v.name, 16)
            );
            hits.push(at_value(&LSA_RULE, Severity::High, &v, evidence, &fp));
        }
    }
    Ok(hits)
}

/// Saved sessions of PuTTY and WinSCP.
fn ntuser(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    let mut sessions = |path: &str, tool: &str, names: &[&str], note: &str| {
        let Some(root) = h.key(path)? else {
            return Ok::<(), HiveError>(());
        };
        for k in h.subkeys(root)?.into_iter().take(MAX_ITEMS) {
            let session = h.name(k)?;
            for v in h.values(k)? {
                if !names.iter().any(|n| same_name(n, &v.name)) {
                    continue;
                }
                let secret = v.string();
                if secret.is_empty() {
                    continue;
                }
                let mut hit = at_value(
                    &SESSION_RULE,
                    SESSION_RULE.severity,
                    &v,
                    format!(
                        "{tool} session {}: {} {}{note}",
                        clip(&session, 64),
                        clip(&v.name, 32),
                        redact(None, secret.as_bytes())
                    ),
                    secret.as_bytes(),
                );
                hit.secret = Some(secret.into_bytes());
                hits.push(hit);
            }
        }
        Ok(())
    };
    sessions(
        "Software\\SimonTatham\\PuTTY\\Sessions",
        "PuTTY",
        &["ProxyPassword"],
        "",
    )?;
    sessions(
        "Software\\Martin Prikryl\\WinSCP 2\\Sessions",
        "WinSCP",
        &["Password", "ProxyPassword", "TunnelPassword"],
        " (obfuscated, reversible)",
    )?;
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::hive::tests::{Builder, utf16z};
    use crate::detect::lookup::MemLookup;

    /// A `V` value: the 0xCC-byte header, then the name and the hash entries.
    fn v_value(name: &str, lm: &[u8], nt: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 0xCC];
        let mut data = Vec::new();
        let mut put = |v: &mut Vec<u8>, at: usize, bytes: &[u8]| {
            let off = u32::try_from(data.len()).unwrap();
            v[at..at + 4].copy_from_slice(&off.to_le_bytes());
            v[at + 4..at + 8].copy_from_slice(&u32::try_from(bytes.len()).unwrap().to_le_bytes());
            data.extend_from_slice(bytes);
            while data.len() % 4 != 0 {
                data.push(0);
            }
        };
        let name: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        put(&mut v, 0x0C, &name);
        put(&mut v, 0x9C, lm);
        put(&mut v, 0xA8, nt);
        v.extend(data);
        v
    }

    fn f_value(rid: u32, acb: u16) -> Vec<u8> {
        let mut f = vec![0u8; 0x50];
        f[0x30..0x34].copy_from_slice(&rid.to_le_bytes());
        f[0x38..0x3A].copy_from_slice(&acb.to_le_bytes());
        f
    }

    fn aes_hash(set: bool) -> Vec<u8> {
        let mut h = vec![0u8; if set { 0x38 } else { 0x18 }];
        h[2] = 2;
        for (i, b) in h.iter_mut().enumerate().skip(8) {
            *b = u8::try_from(i).unwrap();
        }
        h
    }

    fn sam_hive() -> Vec<u8> {
        let mut b = Builder::new();
        let mut users = Vec::new();
        for (rid, name, acb, lm, nt) in [
            (
                500,
                "Administrator",
                0x0010,
                vec![0, 0, 2, 0],
                aes_hash(true),
            ),
            (501, "Guest", 0x0011, vec![], vec![0, 0, 1, 0]),
            (
                1001,
                "builder",
                0x0010,
                [0, 0, 1, 0].into_iter().chain([7; 16]).collect(),
                {
                    let mut h = vec![0, 0, 1, 0];
                    h.extend([9; 16]);
                    h
                },
            ),
            (1002, "kiosk", 0x0014, vec![], aes_hash(false)),
        ] {
            let f = b.value("F", 3, &f_value(rid, acb));
            let v = b.value("V", 3, &v_value(name, &lm, &nt));
            users.push(b.key(&format!("{rid:08X}"), &[], &[f, v]));
        }
        let names = b.key("Names", &[], &[]);
        users.push(names);
        let users = b.key("Users", &users, &[]);
        let account = b.key("Account", &[users], &[]);
        let domains = b.key("Domains", &[account], &[]);
        let sam = b.key("SAM", &[domains], &[]);
        let root = b.key("ROOT", &[sam], &[]);
        b.finish(root)
    }

    #[test]
    fn sam_accounts() {
        let bytes = sam_hive();
        let h = Hive::parse(&bytes).unwrap();
        assert!(h.key("SAM\\Domains\\Account\\Users").unwrap().is_some());
        let got: Vec<(&str, Severity, String)> = sam(&h)
            .unwrap()
            .iter()
            .map(|x| (x.rule, x.severity, x.evidence.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    ADMIN_RULE.id,
                    Severity::Critical,
                    "Administrator (RID 500): enabled, NT hash stored (AES-encrypted)".into()
                ),
                (
                    ACCOUNT_RULE.id,
                    Severity::High,
                    "builder (RID 1001): enabled, NT hash stored (RC4-encrypted)".into()
                ),
                (
                    LM_RULE.id,
                    Severity::High,
                    "builder (RID 1001): enabled, LM hash stored (RC4-encrypted)".into()
                ),
                (
                    EMPTY_RULE.id,
                    Severity::Critical,
                    "kiosk (RID 1002): enabled, no password".into()
                ),
            ]
        );
    }

    #[test]
    fn hives_are_found_without_case_and_errors_are_not_verdicts() {
        let mut b = Builder::new();
        let pw = b.value("DefaultPassword", 1, &utf16z("Example-Autologon-1"));
        let user = b.value("DefaultUserName", 1, &utf16z("Administrator"));
        let on = b.value("AutoAdminLogon", 1, &utf16z("1"));
        let wl = b.key("Winlogon", &[], &[pw, user, on]);
        let cv = b.key("CurrentVersion", &[wl], &[]);
        let nt = b.key("Windows NT", &[cv], &[]);
        let ms = b.key("Microsoft", &[nt], &[]);
        let root = b.key("ROOT", &[ms], &[]);
        let software = b.finish(root);
        let l = MemLookup::new()
            .file("/WINDOWS/system32/CONFIG/software", &software)
            .file("/WINDOWS/system32/CONFIG/SAM", b"regf but short");
        let (hits, errors) = check(&l);
        assert_eq!(hits.len(), 1, "{hits:?}");
        let (path, hit) = &hits[0];
        assert_eq!(path, "/WINDOWS/system32/CONFIG/software");
        assert_eq!(
            hit.evidence,
            "DefaultPassword for Administrator (AutoAdminLogon 1): Exam…[19 chars]"
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].path.as_deref(),
            Some("/WINDOWS/system32/CONFIG/SAM")
        );

        let l = MemLookup::new()
            .file("/Windows/System32/config/SOFTWARE", &software)
            .unreadable("/Windows/System32/config/SOFTWARE");
        let (hits, errors) = check(&l);
        assert!(hits.is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
