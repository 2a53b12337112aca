//! The signature catalog: TOML rule files parsed, validated and compiled into [`Signature`]s.
//!
//! Signatures are data so that security engineers can review and extend them without reading
//! the engine. Every rule carries examples and negative examples; [`check_catalog`](super::check_catalog) proves them
//! against the real engine so a rule cannot silently stop matching (or start matching stock
//! binaries) when someone edits its regex.

use super::precision::Precision;
use super::verify::Validator;
use super::window::{BACK, FWD, is_text};
use crate::model::Severity;
use regex::bytes::Regex;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::OnceLock;

/// A signature's regex, compiled on first use: a scan that hits few rules (`--quick`, a small
/// image) does not pay for compiling all of them. The pattern is parsed when the catalog is
/// loaded (syntax, capture groups, empty matches are checked then); [`LazyRegex::get`] builds
/// the matcher. [`check_catalog`](super::check_catalog) compiles every rule.
#[derive(Debug, Clone)]
pub(crate) struct LazyRegex {
    pattern: String,
    compiled: OnceLock<Option<Regex>>,
}

impl LazyRegex {
    /// The compiled regex, or `None` when it exceeds the compiled-size limit (reported by
    /// the catalog check; the rule then matches nothing).
    pub fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| build_regex(&self.pattern).ok())
            .as_ref()
    }

    /// Compile now, with the error.
    pub fn compile(&self) -> Result<&Regex, String> {
        self.get().ok_or_else(|| {
            build_regex(&self.pattern)
                .err()
                .map_or_else(|| "regex did not compile".into(), |e| e.to_string())
        })
    }
}

/// Signatures match bytes: `\w`, `\s`, `.` and `(?i)` are ASCII (secrets are ASCII; Unicode
/// classes would make the automata many times larger and slower to build, while matching
/// nothing more that a rule wants). A rule may still ask for Unicode with `(?u)`.
fn build_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// Capture groups of a parsed pattern: `(index, name)` for every named group.
fn named_groups(hir: &regex_syntax::hir::Hir, out: &mut Vec<(usize, String)>) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => {
            if let Some(n) = &c.name {
                out.push((c.index as usize, n.to_string()));
            }
            named_groups(&c.sub, out);
        }
        HirKind::Concat(v) | HirKind::Alternation(v) => {
            for h in v {
                named_groups(h, out);
            }
        }
        HirKind::Repetition(r) => named_groups(&r.sub, out),
        _ => {}
    }
}

/// The catalog embedded in the binary: `(file name, TOML text)`, one file per family.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "private-keys.toml",
        include_str!("../../signatures/private-keys.toml"),
    ),
    ("aws.toml", include_str!("../../signatures/aws.toml")),
    ("cloud.toml", include_str!("../../signatures/cloud.toml")),
    ("tokens.toml", include_str!("../../signatures/tokens.toml")),
    (
        "cloud-providers.toml",
        include_str!("../../signatures/cloud-providers.toml"),
    ),
    ("cicd.toml", include_str!("../../signatures/cicd.toml")),
    (
        "databases.toml",
        include_str!("../../signatures/databases.toml"),
    ),
    (
        "registries.toml",
        include_str!("../../signatures/registries.toml"),
    ),
    ("saas.toml", include_str!("../../signatures/saas.toml")),
    ("keys.toml", include_str!("../../signatures/keys.toml")),
    (
        "passwords.toml",
        include_str!("../../signatures/passwords.toml"),
    ),
    (
        "windows.toml",
        include_str!("../../signatures/windows.toml"),
    ),
    (
        "generic.toml",
        include_str!("../../signatures/generic.toml"),
    ),
];

/// Compiled regexes larger than this are refused (keeps start-up bounded).
const REGEX_SIZE_LIMIT: usize = 8 * 1024 * 1024;

/// A problem in a signature catalog, naming the file, the rule and what is wrong.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// The file is not valid TOML or does not have the catalog's shape (unknown keys included).
    #[error("{file}: {message}")]
    Parse {
        /// Catalog file name.
        file: String,
        /// The TOML parser's message, which names the offending key and line.
        message: String,
    },
    /// A rule is invalid (bad regex, duplicate id, failing example, ...).
    #[error("{file}: rule `{rule}`: {problem}")]
    Rule {
        /// Catalog file name.
        file: String,
        /// Rule id.
        rule: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// One catalog file as written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    /// The `[[rule]]` tables.
    #[serde(default)]
    rule: Vec<RuleDef>,
}

/// In `suppresses`: every catalog signature that does not list it itself. A private key
/// block's rules list it: a key's base64 body holds strings of any shape (a line of an SSH
/// host key began with what a Square token looks like), and nothing inside a key is another
/// secret. Neither checks (code rules) nor a signature that suppresses the key rule itself (a
/// service account file holding the key) are hidden by it.
pub const SUPPRESS_ALL: &str = "*";

/// One `[[rule]]` as written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    /// Stable id: lowercase letters, digits, `-`.
    id: String,
    /// Human title.
    title: String,
    /// Default severity (`critical` .. `info`).
    severity: Severity,
    /// Prefilter keywords, ASCII case-insensitive; a match must lie within [`BACK`] bytes
    /// before to [`FWD`] bytes after one of them.
    ///
    /// [`BACK`]: super::window::BACK
    /// [`FWD`]: super::window::FWD
    keywords: Vec<String>,
    /// `regex::bytes` pattern. Groups named `secret*` hold the secret (first that took part;
    /// default the whole match), `label*` non-secret context shown in evidence.
    regex: String,
    /// What to do about a finding.
    remediation: String,
    /// Texts the rule must find.
    #[serde(default)]
    examples: Vec<String>,
    /// Texts the rule must not find.
    #[serde(default)]
    negative_examples: Vec<String>,
    /// Rule ids whose findings overlapping this rule's are dropped ([`SUPPRESS_ALL`]: every
    /// signature that does not list it itself).
    #[serde(default)]
    suppresses: Vec<String>,
    /// Run only on text files (no NUL in the first 8 KiB): for rules, like the generic
    /// entropy rule, whose matches in binaries would be noise.
    #[serde(default)]
    text_only: bool,
    /// A code check each match's secret must also pass (`jwt`, `entropy`, ...).
    #[serde(default)]
    validate: Option<Validator>,
    /// The keywords occur in every match exactly as written (token prefixes such as `AKIA` or
    /// `ghp_`, PEM armour): a keyword hit in another case (`akia` inside base64) does not run
    /// the regex. The catalog check proves it: with every keyword of an example swapped to the
    /// other case, the regex must find nothing.
    #[serde(default)]
    exact_keywords: bool,
    /// Bytes before and after a keyword hit the regex looks at (default and maximum:
    /// [`BACK`] before, [`FWD`] after). Short rules say so, which keeps common keywords cheap.
    #[serde(default)]
    window: Option<usize>,
    /// How the captured secret is judged (`token`, the default; `password`; `off`): see
    /// [`precision`](super::precision). The secret is the first `secret*` group that took part.
    #[serde(default)]
    precision: Precision,
    /// Masked or placeholder texts the rule matches but must rate `info` (proved by the
    /// catalog check through the precision model).
    #[serde(default)]
    placeholder_examples: Vec<String>,
}

/// A compiled content signature.
#[derive(Debug, Clone)]
pub(crate) struct Signature {
    /// Rule id.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Default severity.
    pub severity: Severity,
    /// Prefilter keywords (ASCII case-insensitive unless `exact_keywords`).
    pub keywords: Vec<String>,
    /// Keyword hits count only in the keywords' exact case.
    pub exact_keywords: bool,
    /// The matcher.
    pub regex: LazyRegex,
    /// Capture group indices named `secret*`, in pattern order (first that took part wins).
    pub secret_groups: Vec<usize>,
    /// Capture group indices named `label*`, in pattern order.
    pub label_groups: Vec<usize>,
    /// What to do.
    pub remediation: String,
    /// Rule ids this rule's findings hide when they overlap ([`SUPPRESS_ALL`]: every
    /// signature that does not list it itself).
    pub suppresses: Vec<String>,
    /// Skip binary files.
    pub text_only: bool,
    /// Code check each match must pass.
    pub validate: Option<Validator>,
    /// Bytes before a keyword hit a match may start.
    pub back: usize,
    /// Bytes after a keyword hit a match may extend.
    pub fwd: usize,
    /// Catalog file it came from (for messages).
    pub file: String,
    /// Texts the rule must find.
    pub examples: Vec<String>,
    /// Texts the rule must not find.
    pub negative_examples: Vec<String>,
    /// How the captured secret is judged.
    pub precision: Precision,
    /// Texts the rule matches but must rate `info`.
    pub placeholder_examples: Vec<String>,
}

impl Signature {
    /// The secret of one regex match: the first `secret*` group that took part, else the
    /// whole match, with trailing whitespace and escaped newlines trimmed.
    pub fn secret_of(&self, caps: &regex::bytes::Captures<'_>) -> Vec<u8> {
        let raw = self
            .secret_groups
            .iter()
            .find_map(|&g| caps.get(g))
            .or_else(|| caps.get(0))
            .map_or(&[][..], |m| m.as_bytes());
        trim_body(raw).to_vec()
    }

    /// Where the secret of one match ends in the searched text (the whole match's end when no
    /// `secret*` group took part), before trimming.
    pub fn secret_end(&self, caps: &regex::bytes::Captures<'_>) -> usize {
        self.secret_groups
            .iter()
            .find_map(|&g| caps.get(g))
            .or_else(|| caps.get(0))
            .map_or(0, |m| m.end())
    }

    /// Whether the regex finds, anywhere in `text`, a match whose secret passes the rule's
    /// validator, in a file the rule runs on (text-only rules skip binaries).
    pub fn accepts_any(&self, text: &[u8]) -> bool {
        if self.text_only && !is_text(text) {
            return false;
        }
        let Some(regex) = self.regex.get() else {
            return false;
        };
        regex
            .captures_iter(text)
            .take(1024)
            .any(|c| self.validate.is_none_or(|v| v.accepts(&self.secret_of(&c))))
    }
}

/// Trim trailing whitespace and escaped newlines (`\n`, `\r` as two characters) from a
/// captured body, so a key's fingerprint does not depend on how its file ends.
pub(crate) fn trim_body(mut s: &[u8]) -> &[u8] {
    loop {
        match s {
            [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] => s = rest,
            [rest @ .., b'\\', b'n' | b'r'] => s = rest,
            _ => return s,
        }
    }
}

/// Parse and compile catalog files. `reserved` are ids already taken (the code checks).
///
/// Returns the signatures that compiled and every structural problem found; a caller that
/// needs a usable catalog treats any problem as fatal.
pub(crate) fn compile(
    files: &[(&str, &str)],
    reserved: &[&str],
) -> (Vec<Signature>, Vec<CatalogError>) {
    let mut sigs = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashSet<String> = reserved.iter().map(|s| s.to_string()).collect();
    for (file, text) in files {
        let parsed: CatalogFile = match toml::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                problems.push(CatalogError::Parse {
                    file: file.to_string(),
                    message: e.to_string().trim().replace('\n', " "),
                });
                continue;
            }
        };
        for def in parsed.rule {
            let err = |problem: String| CatalogError::Rule {
                file: file.to_string(),
                rule: def.id.clone(),
                problem,
            };
            if !seen.insert(def.id.clone()) {
                problems.push(err("duplicate rule id".into()));
                continue;
            }
            let mut bad = false;
            if def.id.is_empty()
                || !def
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                problems.push(err(
                    "id must be non-empty lowercase letters, digits and `-`".into(),
                ));
                bad = true;
            }
            if def.keywords.is_empty() {
                problems.push(err("no keywords: the rule would never run".into()));
                bad = true;
            }
            for k in &def.keywords {
                if k.len() < 3 || !k.is_ascii() {
                    problems.push(err(format!(
                        "keyword `{k}` must be ASCII and at least 3 bytes"
                    )));
                    bad = true;
                }
            }
            // Parse (not compile): syntax errors, group names and empty matches are caught
            // here; the matcher is built on first use.
            let hir = match regex_syntax::ParserBuilder::new()
                .utf8(false)
                .unicode(false)
                .build()
                .parse(&def.regex)
            {
                Ok(h) => h,
                Err(e) => {
                    problems.push(err(format!("bad regex: {e}")));
                    continue;
                }
            };
            let mut named = Vec::new();
            named_groups(&hir, &mut named);
            named.sort();
            let groups = |prefix: &str| -> Vec<usize> {
                named
                    .iter()
                    .filter(|(_, n)| n.starts_with(prefix))
                    .map(|(i, _)| *i)
                    .collect()
            };
            let (secret_groups, label_groups) = (groups("secret"), groups("label"));
            if def.window == Some(0) {
                problems.push(err("window must be at least 1 byte".into()));
                bad = true;
            }
            if hir.properties().minimum_len() == Some(0) {
                problems.push(err("regex matches the empty string".into()));
                bad = true;
            }
            if bad {
                continue;
            }
            sigs.push(Signature {
                id: def.id,
                title: def.title,
                severity: def.severity,
                keywords: def.keywords,
                exact_keywords: def.exact_keywords,
                regex: LazyRegex {
                    pattern: def.regex,
                    compiled: OnceLock::new(),
                },
                secret_groups,
                label_groups,
                remediation: def.remediation,
                suppresses: def.suppresses,
                text_only: def.text_only,
                validate: def.validate,
                back: def.window.map_or(BACK, |w| w.min(BACK)),
                fwd: def.window.map_or(FWD, |w| w.min(FWD)),
                file: file.to_string(),
                examples: def.examples,
                negative_examples: def.negative_examples,
                precision: def.precision,
                placeholder_examples: def.placeholder_examples,
            });
        }
    }
    for s in &sigs {
        for target in &s.suppresses {
            if target != SUPPRESS_ALL && !seen.contains(target) {
                problems.push(CatalogError::Rule {
                    file: s.file.clone(),
                    rule: s.id.clone(),
                    problem: format!("suppresses unknown rule `{target}`"),
                });
            }
        }
    }
    (sigs, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_whitespace_and_escapes_are_trimmed() {
        assert_eq!(trim_body(b"ABCD\\n \r\n"), b"ABCD");
        assert_eq!(trim_body(b"\n"), b"");
    }

    #[test]
    fn window_and_validator_are_read() {
        let text = "[[rule]]\nid = \"j\"\ntitle = \"t\"\nseverity = \"low\"\nkeywords = [\"eyJ\"]\nregex = \"eyJ[a-z]+\"\nremediation = \"r\"\nvalidate = \"jwt\"\nwindow = 99999\ntext_only = true\n";
        let (sigs, problems) = compile(&[("j.toml", text)], &[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((sigs[0].back, sigs[0].fwd), (BACK, FWD));
        assert!(sigs[0].text_only && sigs[0].validate.is_some());
        let zero = text.replace("99999", "0");
        assert!(!compile(&[("j.toml", &zero)], &[]).1.is_empty());
        let bad = text.replace("\"jwt\"", "\"magic\"");
        assert!(!compile(&[("j.toml", &bad)], &[]).1.is_empty());
    }

    #[test]
    fn unparsable_toml_names_the_file() {
        let (sigs, problems) = compile(&[("x.toml", "[[rule]\n")], &[]);
        assert!(sigs.is_empty());
        assert!(matches!(&problems[..], [CatalogError::Parse { file, .. }] if file == "x.toml"));
    }
}
