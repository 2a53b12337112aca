//! Windows unattended-setup answer files left in an image (`unattend.xml`, `autounattend.xml`,
//! `sysprep.xml`, EC2Config's `sysprep2008.xml`, `sysprep.inf`), on any filesystem amiscan reads.
//!
//! They carry the Administrator, auto-logon, local account and domain-join passwords. With
//! `<PlainText>false</PlainText>` the value is only base64 of UTF-16 text: still the password,
//! so still critical. Windows Setup replaces values it consumed with `*SENSITIVE*DATA*DELETED*`,
//! which is fine. PowerShell's `ConsoleHost_history.txt` is handled as a shell history.

use super::{CheckHit, CheckRule, file_name};
use crate::detect::finding::{clean, redact};
use crate::detect::registry::pattern::{Glob, glob_nocase, windows_place};
use crate::report::Severity;

/// The rule.
pub(crate) const UNATTEND_RULE: CheckRule = CheckRule {
    id: "windows-unattend-password",
    title: "Password in a Windows unattended-setup answer file",
    severity: Severity::Critical,
    remediation: "Delete the answer file (C:\\Windows\\Panther\\unattend.xml, sysprep files) before creating the image, or use `*SENSITIVE*DATA*DELETED*`; change the password on every instance launched from the image.",
    suppresses: &[],
};

/// Placeholder Windows Setup writes over consumed secrets.
const DELETED: &str = "*SENSITIVE*DATA*DELETED*";

/// Whether `path` is an answer file (names compared without case, as Windows does).
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::Unattend)
}

/// Answer files' names.
macro_rules! answer_files {
    () => {
        "{unattend.xml,autounattend.xml,unattended.xml,sysprep.xml,sysprep2008.xml,sysprep.inf}"
    };
}

/// The files this check reads: answer files by name (any case), wherever they are. The Windows
/// places match only files the first pattern does; they name where Windows Setup and Sysprep
/// keep them, which a `--quick` scan of a Windows volume walks
/// ([`crate::detect::registry::quick_dirs_windows`]).
pub(crate) const SCOPE: &[Glob] = &[
    glob_nocase(answer_files!()),
    windows_place(concat!("/Windows/Panther/**/", answer_files!())),
    windows_place(concat!("/Windows/System32/Sysprep/**/", answer_files!())),
];

/// Findings for every non-empty password in an answer file.
pub(crate) fn check(path: &str, data: &[u8]) -> Vec<CheckHit> {
    // Answer files are UTF-8, sometimes UTF-16LE with a BOM.
    let text = decode(data);
    if file_name(path).to_ascii_lowercase().ends_with(".inf") {
        inf(&text)
    } else {
        xml(&text)
    }
}

/// `data` as text: UTF-16LE when it starts with its BOM, else lossy UTF-8.
fn decode(data: &[u8]) -> String {
    if let Some(rest) = data.strip_prefix(&[0xff, 0xfe]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    String::from_utf8_lossy(data).into_owned()
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> u64 {
    let upto = text.get(..offset).unwrap_or(text);
    upto.bytes().filter(|&b| b == b'\n').count() as u64 + 1
}

/// A hit for `value` of element or key `what` at `offset`.
fn hit(text: &str, offset: usize, what: &str, value: &str, note: &str) -> CheckHit {
    CheckHit {
        rule: UNATTEND_RULE.id,
        severity: UNATTEND_RULE.severity,
        line: Some(line_of(text, offset)),
        start: offset as u64,
        end: (offset + value.len()) as u64,
        evidence: format!(
            "{}: {}{note}",
            clean(what.as_bytes()),
            redact(None, value.as_bytes())
        ),
        fingerprint_of: value.as_bytes().to_vec(),
        secret: Some(value.as_bytes().to_vec()),
    }
}

/// The local name of a tag (`wcm:Password` -> `Password`).
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Password elements (local name ending in `Password`, any case) and their values: the text of
/// a `<Value>` child, or the element's own text when it has no children.
fn xml(text: &str) -> Vec<CheckHit> {
    let lower = text.to_ascii_lowercase();
    let mut hits = Vec::new();
    let mut pos = 0usize;
    // Each iteration moves `pos` forward; at most one per `<`.
    while let Some(rel) = lower.get(pos..).and_then(|s| s.find('<')) {
        let open = pos + rel;
        pos = open + 1;
        let Some(close_rel) = lower.get(open..).and_then(|s| s.find('>')) else {
            break;
        };
        let tag = lower.get(open + 1..open + close_rel).unwrap_or("");
        if tag.starts_with('/')
            || tag.starts_with('?')
            || tag.starts_with('!')
            || tag.ends_with('/')
        {
            continue;
        }
        let name = tag.split_whitespace().next().unwrap_or("");
        if !local(name).ends_with("password") {
            continue;
        }
        let body_start = open + close_rel + 1;
        let end_tag = format!("</{name}");
        let Some(body_len) = lower.get(body_start..).and_then(|s| s.find(&end_tag)) else {
            continue;
        };
        let body = text.get(body_start..body_start + body_len).unwrap_or("");
        let body_lower = lower.get(body_start..body_start + body_len).unwrap_or("");
        let (value, value_at) = match body_lower
            .find("<value>")
            .or_else(|| body_lower.find("<value "))
        {
            Some(v) => {
                let vs = body_lower
                    .get(v..)
                    .and_then(|s| s.find('>'))
                    .map(|g| v + g + 1);
                let ve = vs.and_then(|vs| {
                    body_lower
                        .get(vs..)
                        .and_then(|s| s.find("</"))
                        .map(|e| vs + e)
                });
                match (vs, ve) {
                    (Some(vs), Some(ve)) => (body.get(vs..ve).unwrap_or(""), body_start + vs),
                    _ => ("", body_start),
                }
            }
            None if !body.contains('<') => (body, body_start),
            None => ("", body_start),
        };
        let value = value.trim();
        if value.is_empty() || value == DELETED {
            continue;
        }
        let note = if body_lower.contains("<plaintext>false</plaintext>") {
            " (PlainText false: base64 of the password, trivially decoded)"
        } else {
            ""
        };
        let shown = text.get(open + 1..open + 1 + name.len()).unwrap_or(name);
        hits.push(hit(text, value_at, local(shown), value, note));
        pos = body_start + body_len;
    }
    hits
}

/// `AdminPassword=` and `DomainAdminPassword=` lines of a legacy `sysprep.inf`.
fn inf(text: &str) -> Vec<CheckHit> {
    let mut hits = Vec::new();
    let mut offset = 0usize;
    for raw in text.split('\n') {
        let start = offset;
        offset += raw.len() + 1;
        let Some((key, value)) = raw.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if !key.to_ascii_lowercase().ends_with("password") || key.starts_with(';') {
            continue;
        }
        let value = value.trim().trim_matches('"');
        if value.is_empty() || value == "*" || value == DELETED {
            continue;
        }
        let at = start + raw.find(value).unwrap_or(0);
        hits.push(hit(text, at, key, value, ""));
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of an EC2Launch/Sysprep unattend.xml (abridged); the values are placeholders.
    const UNATTEND: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
      <UserAccounts>
        <AdministratorPassword>
          <Value>Example-Admin-Pw1</Value>
          <PlainText>true</PlainText>
        </AdministratorPassword>
        <LocalAccounts>
          <LocalAccount wcm:action="add">
            <Password>
              <Value>RQB4AGEAbQBwAGwAZQBQAGEAcwBzAHcAbwByAGQA</Value>
              <PlainText>false</PlainText>
            </Password>
            <Name>builder</Name>
          </LocalAccount>
        </LocalAccounts>
      </UserAccounts>
      <AutoLogon>
        <Password>
          <Value>*SENSITIVE*DATA*DELETED*</Value>
          <PlainText>true</PlainText>
        </Password>
        <Enabled>false</Enabled>
      </AutoLogon>
    </component>
    <component name="Microsoft-Windows-UnattendedJoin">
      <Identification>
        <Credentials>
          <Domain>corp.example</Domain>
          <Password>JoinPw-Example</Password>
          <Username>joiner</Username>
        </Credentials>
      </Identification>
    </component>
  </settings>
</unattend>
"#;

    #[test]
    fn unattend_passwords() {
        let hits = check("/Windows/Panther/Unattend.xml", UNATTEND.as_bytes());
        let got: Vec<(&str, Option<u64>)> =
            hits.iter().map(|h| (h.evidence.as_str(), h.line)).collect();
        assert_eq!(
            got,
            [
                ("AdministratorPassword: Exam…[17 chars]", Some(7)),
                (
                    "Password: RQB4…[40 chars] (PlainText false: base64 of the password, trivially decoded)",
                    Some(13)
                ),
                ("Password: Jo…[14 chars]", Some(32)),
            ]
        );
        assert!(hits.iter().all(|h| h.severity == Severity::Critical));
        let at = hits[0].start as usize;
        assert_eq!(&UNATTEND[at..at + 17], "Example-Admin-Pw1");
    }

    #[test]
    fn utf16_and_inf() {
        let mut utf16 = vec![0xff, 0xfe];
        for u in "<AdministratorPassword><Value>Example-Pw</Value></AdministratorPassword>"
            .encode_utf16()
        {
            utf16.extend(u.to_le_bytes());
        }
        assert_eq!(check("/autounattend.xml", &utf16).len(), 1);
        let inf = "[GuiUnattended]\r\nAdminPassword=\"Example-Pw\"\r\nOemSkipWelcome=1\r\n[Identification]\r\nDomainAdminPassword=*\r\n";
        let hits = check("/sysprep/sysprep.inf", inf.as_bytes());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].evidence, "AdminPassword: Ex…[10 chars]");
        assert_eq!(hits[0].line, Some(2));
    }

    #[test]
    fn paths_and_garbage() {
        assert!(applies("/Windows/System32/Sysprep/unattend.xml"));
        assert!(applies("/AutoUnattend.XML"));
        assert!(applies(
            "/Program Files/Amazon/Ec2ConfigService/sysprep2008.xml"
        ));
        assert!(!applies("/etc/unattend.xml.bak"));
        for d in [
            &b"<Password"[..],
            b"<Password>",
            b"<Password><Value>x",
            b"<a:Password></b>",
            b"\xff\xfe\x00",
        ] {
            let _ = check("/unattend.xml", d);
        }
        assert!(
            check(
                "/unattend.xml",
                b"<Password></Password><Password><Value></Value></Password>"
            )
            .is_empty()
        );
    }
}
