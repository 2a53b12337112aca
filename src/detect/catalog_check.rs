//! Proving a signature catalog: every problem at once, examples run through the real engine.
//!
//! A catalog edit that makes a rule stop finding its examples, or start finding its negative
//! examples (such as the bare header strings in `ssh` binaries), must fail before it ships.
//! Used by the catalog test below and by `amiscan rules check`.

use super::catalog::Signature;
use super::catalog::{CatalogError, compile};
use super::engine::{Matcher, RawMatch};
use super::precision::judge;
use super::registry::reserved_ids;
use crate::report::Severity;

/// Check a catalog and return every problem at once, one human line each.
///
/// Beyond what `compile` refuses (unparsable TOML, unknown keys, duplicate ids, bad regexes,
/// unknown `suppresses` targets) it proves each rule's examples through the real engine
/// (keyword prefilter, windows, validators and all): every example must be found, no negative
/// example may be (by the regex alone, anywhere: a negative example is refused even if its
/// keyword is out of reach, unless the rule's validator or text-only flag rejects it), every
/// keyword must occur in some example, and every example must contain a keyword.
/// Used by the catalog test and by `amiscan rules check`.
pub fn check_catalog(files: &[(&str, &str)]) -> Vec<String> {
    let reserved = reserved_ids();
    let (sigs, errors) = compile(files, &reserved);
    let mut out: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for s in &sigs {
        let mut problem = |p: String| {
            out.push(
                CatalogError::Rule {
                    file: s.file.clone(),
                    rule: s.id.clone(),
                    problem: p,
                }
                .to_string(),
            )
        };
        if s.examples.is_empty() {
            problem("no examples".into());
        }
        let single = match Matcher::new(std::slice::from_ref(s)) {
            Ok(m) => m,
            Err(e) => {
                problem(format!("keyword automaton: {e}"));
                continue;
            }
        };
        let regex = match s.regex.compile() {
            Ok(r) => r,
            Err(e) => {
                problem(format!("regex does not compile: {e}"));
                continue;
            }
        };
        let contains_kw =
            |text: &str, k: &str| text.to_ascii_lowercase().contains(&k.to_ascii_lowercase());
        for k in &s.keywords {
            if !s.examples.iter().any(|e| contains_kw(e, k)) {
                problem(format!("keyword `{k}` does not occur in any example"));
            }
        }
        for (n, e) in s.examples.iter().enumerate() {
            if !s.keywords.iter().any(|k| contains_kw(e, k)) {
                problem(format!("example {} contains none of the keywords", n + 1));
            }
            let found = single.scan_all(e.as_bytes());
            if !regex.is_match(e.as_bytes()) {
                problem(format!("example {} does not match the regex", n + 1));
            } else if found.is_empty() {
                problem(format!("example {} is not found by the engine", n + 1));
            } else if s.severity > Severity::Info && found.iter().all(|m| rated_info(s, m)) {
                problem(format!(
                    "example {} is rated info by the precision model (placeholder, example key or bad checksum)",
                    n + 1
                ));
            }
            if s.exact_keywords && regex.is_match(&case_swapped(e, &s.keywords)) {
                problem(format!(
                    "exact_keywords, but example {} still matches with its keywords in the other case",
                    n + 1
                ));
            }
        }
        for (n, e) in s.placeholder_examples.iter().enumerate() {
            let found = single.scan_all(e.as_bytes());
            if found.is_empty() {
                problem(format!("placeholder example {} is not matched", n + 1));
            } else if !found.iter().all(|m| rated_info(s, m)) {
                problem(format!("placeholder example {} is rated above info", n + 1));
            }
        }
        for (n, e) in s.negative_examples.iter().enumerate() {
            if s.accepts_any(e.as_bytes()) {
                problem(format!("negative example {} matches", n + 1));
            }
        }
    }
    out
}

/// Whether the precision model lowers a match of `sig` to info.
fn rated_info(sig: &Signature, m: &RawMatch) -> bool {
    judge(sig.precision, &m.secret, m.masked_tail).severity == Some(Severity::Info)
}

/// `text` with every occurrence of each keyword (exact case) swapped to the other ASCII case.
fn case_swapped(text: &str, keywords: &[String]) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    for k in keywords {
        let k = k.as_bytes();
        let mut from = 0;
        while let Some(i) = out
            .get(from..)
            .and_then(|rest| memchr::memmem::find(rest, k))
        {
            let at = from + i;
            for b in out.iter_mut().skip(at).take(k.len()) {
                *b = if b.is_ascii_lowercase() {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                };
            }
            from = at + k.len().max(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::catalog::BUILTIN_FILES;

    const GOOD: &str = r#"
[[rule]]
id = "demo-token"
title = "Demo token"
severity = "high"
keywords = ["demotok_"]
regex = '''demotok_(?P<secret>[a-z0-9]{8})'''
remediation = "Rotate it."
examples = ["x demotok_abcd1234 y"]
negative_examples = ["demotok_SHORT"]
"#;

    #[test]
    fn the_embedded_catalog_has_no_problems() {
        let problems = check_catalog(BUILTIN_FILES);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// Issue 16: every built-in rule shows at least two realistic matches and one near miss.
    #[test]
    fn every_embedded_rule_has_two_examples_and_a_negative_one() {
        let (sigs, problems) = crate::detect::catalog::compile(
            BUILTIN_FILES,
            &crate::detect::registry::reserved_ids(),
        );
        assert!(problems.is_empty(), "{problems:#?}");
        let thin: Vec<&str> = sigs
            .iter()
            .filter(|s| s.examples.len() < 2 || s.negative_examples.is_empty())
            .map(|s| s.id.as_str())
            .collect();
        assert!(
            thin.is_empty(),
            "rules with fewer than 2 examples or no negative: {thin:?}"
        );
    }

    #[test]
    fn a_good_rule_passes() {
        assert!(check_catalog(&[("demo.toml", GOOD)]).is_empty());
    }

    fn problems_for(text: &str) -> Vec<String> {
        check_catalog(&[("demo.toml", text)])
    }

    #[test]
    fn each_kind_of_problem_is_reported() {
        let dup = problems_for(&format!("{GOOD}\n{}", GOOD));
        assert!(
            dup.iter().any(|p| p.contains("duplicate rule id")),
            "{dup:?}"
        );

        let bad_re = problems_for(&GOOD.replace("[a-z0-9]{8})", "[a-z0-9]{8}"));
        assert!(bad_re.iter().any(|p| p.contains("bad regex")), "{bad_re:?}");

        let unknown = problems_for(&GOOD.replace("title =", "colour = \"red\"\ntitle ="));
        assert!(unknown.iter().any(|p| p.contains("colour")), "{unknown:?}");

        let no_match = problems_for(&GOOD.replace("abcd1234", "abcd"));
        assert!(
            no_match
                .iter()
                .any(|p| p.contains("example 1 does not match")),
            "{no_match:?}"
        );

        let neg = problems_for(&GOOD.replace("demotok_SHORT", "demotok_zzzz9999"));
        assert!(
            neg.iter().any(|p| p.contains("negative example 1 matches")),
            "{neg:?}"
        );

        let kw = problems_for(&GOOD.replace("[\"demotok_\"]", "[\"demotok_\", \"nowhere\"]"));
        assert!(
            kw.iter()
                .any(|p| p.contains("keyword `nowhere` does not occur")),
            "{kw:?}"
        );

        let sup =
            problems_for(&GOOD.replace("remediation =", "suppresses = [\"ghost\"]\nremediation ="));
        assert!(
            sup.iter().any(|p| p.contains("unknown rule `ghost`")),
            "{sup:?}"
        );

        let empty = problems_for(&GOOD.replace("'''demotok_", "'''x*|demotok_"));
        assert!(
            empty.iter().any(|p| p.contains("empty string")),
            "{empty:?}"
        );

        let sev = problems_for(&GOOD.replace("\"high\"", "\"severe\""));
        assert!(sev.iter().any(|p| p.starts_with("demo.toml:")), "{sev:?}");
    }

    #[test]
    fn all_problems_come_at_once_and_name_file_and_rule() {
        let text = GOOD
            .replace("abcd1234", "abcd")
            .replace("demotok_SHORT", "demotok_zzzz9999");
        let p = problems_for(&text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p.iter()
                .all(|l| l.starts_with("demo.toml: rule `demo-token`:"))
        );
    }

    #[test]
    fn exact_keywords_are_proven_by_the_examples() {
        let exact = GOOD.replace("keywords = [", "exact_keywords = true\nkeywords = [");
        assert!(
            problems_for(&exact).is_empty(),
            "{:?}",
            problems_for(&exact)
        );
        // The regex accepts the keyword in any case: exact_keywords would hide matches.
        let wrong = exact.replace("demotok_(?P", "(?i:demotok_)(?P");
        let p = problems_for(&wrong);
        assert!(p.iter().any(|l| l.contains("still matches")), "{p:?}");
    }

    /// A long exact keyword folded into a short one of another rule (`abc` is searched, not
    /// `XYZWVUTSRQabc`): its rule still runs on the short keyword's hit.
    #[test]
    fn a_folded_exact_keyword_is_seen_around_the_short_hit() {
        let toml = r#"
[[rule]]
id = "short"
title = "Short"
severity = "low"
keywords = ["abc"]
regex = '''abc=(?P<secret>[0-9]{6})'''
remediation = "r"
examples = ["abc=123456"]

[[rule]]
id = "long"
title = "Long"
severity = "high"
exact_keywords = true
keywords = ["XYZWVUTSRQabc"]
regex = '''XYZWVUTSRQabc(?P<secret>[0-9]{4})'''
remediation = "r"
examples = ["XYZWVUTSRQabc1234"]
"#;
        let (sigs, p) = compile(&[("t.toml", toml)], &[]);
        assert!(p.is_empty(), "{p:?}");
        let m = Matcher::new(&sigs).unwrap();
        let found = m.scan_all(b"some text XYZWVUTSRQabc1234 more");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(sigs[found[0].rule].id, "long");
    }

    #[test]
    fn exact_keywords_skip_hits_in_another_case() {
        let exact = GOOD.replace("keywords = [", "exact_keywords = true\nkeywords = [");
        let ci = GOOD.replace("demotok_(?P", "(?i:demotok_)(?P");
        let exact_ci = ci.replace("keywords = [", "exact_keywords = true\nkeywords = [");
        let hits = |toml: &str, text: &str| {
            let (sigs, p) = compile(&[("t.toml", toml)], &[]);
            assert!(p.is_empty(), "{p:?}");
            Matcher::new(&sigs).unwrap().scan_all(text.as_bytes()).len()
        };
        assert_eq!(hits(&exact, "a demotok_abcd1234 b"), 1);
        assert_eq!(hits(&ci, "a DEMOTOK_abcd1234 b"), 1);
        // The same rule with exact keywords never runs its regex on the upper-case hit.
        assert_eq!(hits(&exact_ci, "a DEMOTOK_abcd1234 b"), 0);
    }

    #[test]
    fn a_check_id_is_reserved() {
        let p = problems_for(&GOOD.replace("demo-token", "shell-history"));
        assert!(p.iter().any(|l| l.contains("duplicate rule id")), "{p:?}");
    }

    #[test]
    fn an_example_the_engine_cannot_reach_is_reported() {
        // The keyword sits far before the match: the regex matches, the windowed engine cannot.
        let far = GOOD
            .replace(
                "x demotok_abcd1234 y",
                &format!("demotok_ {} demotok_abcd1234", "-".repeat(40000)),
            )
            .replace("[\"demotok_\"]", "[\"demotok_ \"]");
        let p = problems_for(&far);
        assert!(
            p.iter().any(|l| l.contains("not found by the engine")),
            "{p:?}"
        );
    }
}
