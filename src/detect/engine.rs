//! The matching engine: one Aho-Corasick keyword prefilter over every signature, then each
//! signature's regex run only in windows around its own keyword hits.
//!
//! Most files hit no keyword at all, so the cost of a scan is one automaton pass per chunk. A
//! regex only runs where one of its keywords occurs, in a window from
//! [`BACK`](super::window::BACK) bytes before the hit to [`FWD`](super::window::FWD) bytes after
//! it, which bounds regex work on binaries that merely carry a header string.
//! [`check_catalog`](super::check_catalog) proves every example is reachable this way.

use super::catalog::Signature;
use super::window::{MAX_MATCHES_PER_RULE, is_text};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// One chunk of a file handed to [`Matcher::scan_chunk`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk<'a> {
    /// The bytes.
    pub buf: &'a [u8],
    /// File offset of `buf[0]`.
    pub base: u64,
    /// Matches starting at or after this index of `buf` belong to the next chunk.
    pub owned_end: usize,
    /// Whether the file is text (decided once, on its first bytes).
    pub is_text: bool,
    /// Whether the text-tier keywords are searched (a text file outside package data: see
    /// [`is_package_data`](super::precision::is_package_data)).
    pub text_tier: bool,
}

/// One regex match, positioned in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMatch {
    /// Index of the signature in the matcher.
    pub rule: usize,
    /// File offset of the match start.
    pub start: u64,
    /// File offset one past the match end.
    pub end: u64,
    /// The secret bytes (`secret*` group or whole match).
    pub secret: Vec<u8>,
    /// Non-secret context (`label*` group), if any.
    pub label: Option<Vec<u8>>,
    /// 1-based line in a text file (filled in by the streamer).
    pub line: Option<u64>,
    /// A mask (`*`, `#`, `...`) follows the secret: the match stopped where a mask began.
    pub masked_tail: bool,
}

/// Keywords per SIMD searcher.
const TEDDY_GROUP: usize = 32;

thread_local! {
    /// Each worker's lowercased copy of the chunk it is searching.
    static LOWER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Compiled keyword automaton plus the signatures it dispatches to.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    /// The signatures, indexed by [`RawMatch::rule`].
    pub sigs: Vec<Signature>,
    /// One automaton over every keyword, ASCII case-insensitive: the search where no SIMD
    /// searcher could be built (only then is it built).
    ac: Option<AhoCorasick>,
    /// SIMD (Teddy) searchers over the lowercased keywords, [`TEDDY_GROUP`] keywords each, run
    /// on a lowercased copy of each chunk: the same hits as `ac`, about three times faster (the
    /// keywords are too many for a case-insensitive prefilter, but lowercasing a chunk costs a
    /// tenth of the search). Groups of 32 are what Teddy takes on ARM (NEON: Graviton) and
    /// cost the same on x86 as one 64-keyword searcher. `None` where no SIMD searcher can be
    /// built (no SSSE3/NEON).
    packed: Option<Vec<(usize, aho_corasick::packed::Searcher)>>,
    /// Patterns from this index on belong only to text-only rules (config-file credentials):
    /// binary files, most of an image's bytes, are not searched for them, and text files are
    /// searched for them by `text_ac`, one DFA pass whatever their number (SIMD groups of 32
    /// would cost one pass each).
    text_from: usize,
    /// DFA over the text-tier patterns (ids offset by `text_from`), when `packed` is in use.
    text_ac: Option<AhoCorasick>,
    /// The searched keywords, lowercased (pattern ids index it; the tests build the DFA
    /// fallback from it).
    #[cfg_attr(not(test), allow(dead_code))]
    patterns: Vec<String>,
    /// Automaton pattern id -> signatures to run on a hit: those having that keyword, and those
    /// having a keyword that could overlap it (the search does not report overlapping hits).
    pattern_rules: Vec<Vec<usize>>,
    /// Longest keyword (before folding): windows are widened by it, to cover a keyword hidden
    /// under another hit.
    max_keyword: usize,
}

/// True when an occurrence of `a` and one of `b` can overlap: one contains the other, or a proper
/// suffix of one is a proper prefix of the other.
fn can_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let suffix_prefix =
        |x: &[u8], y: &[u8]| (1..x.len().min(y.len())).any(|n| x[x.len() - n..] == y[..n]);
    a.windows(b.len().max(1)).any(|w| w == b)
        || b.windows(a.len().max(1)).any(|w| w == a)
        || suffix_prefix(a, b)
        || suffix_prefix(b, a)
}

/// The non-overlapping search reports one of two overlapping keyword occurrences; so that the
/// other's rules still run, a hit on a pattern dispatches to the rules of every pattern that could
/// overlap it.
fn close_over_overlaps(patterns: &[String], rules: &[Vec<usize>]) -> Vec<Vec<usize>> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut all = rules.get(i).cloned().unwrap_or_default();
            for (j, q) in patterns.iter().enumerate() {
                if i != j && can_overlap(p, q) {
                    all.extend(rules.get(j).into_iter().flatten().copied());
                }
            }
            all.sort_unstable();
            all.dedup();
            all
        })
        .collect()
}

/// Drop every keyword that contains another keyword (`session_token` contains `token`): an
/// occurrence of it is an occurrence of the shorter one, whose hits now dispatch its rules
/// too (windows are widened by the longest keyword, which covers the shift). Fewer patterns
/// make the SIMD search faster (62 -> 51 keywords: ~1.5x on a Debian tree).
fn fold_subsumed(patterns: Vec<String>, rules: Vec<Vec<usize>>) -> (Vec<String>, Vec<Vec<usize>>) {
    let keep: Vec<bool> = patterns
        .iter()
        .map(|p| !patterns.iter().any(|q| q != p && p.contains(q.as_str())))
        .collect();
    let mut out_rules: Vec<Vec<usize>> = rules
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(r, _)| r.clone())
        .collect();
    let kept: Vec<String> = patterns
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(p, _)| p.clone())
        .collect();
    for (i, p) in patterns.iter().enumerate() {
        if keep.get(i).copied().unwrap_or(true) {
            continue;
        }
        for (j, q) in kept.iter().enumerate() {
            if p.contains(q.as_str())
                && let Some(list) = out_rules.get_mut(j)
            {
                list.extend(rules.get(i).into_iter().flatten().copied());
                list.sort_unstable();
                list.dedup();
            }
        }
    }
    (kept, out_rules)
}

/// Whether one of `sig`'s keywords occurs, in its exact case, overlapping the keyword hit
/// `[start, end)` of `buf` or within `margin` bytes of it (the hit may be a shorter keyword that
/// one of `sig`'s contains, or one overlapping it: see [`fold_subsumed`]).
fn exact_keyword_near(
    buf: &[u8],
    sig: &Signature,
    start: usize,
    end: usize,
    margin: usize,
) -> bool {
    let from = start.saturating_sub(margin);
    let to = end.saturating_add(margin).min(buf.len());
    let Some(near) = buf.get(from..to) else {
        return false;
    };
    sig.keywords
        .iter()
        .any(|k| memchr::memmem::find(near, k.as_bytes()).is_some())
}

/// Without SIMD: a full DFA, a few hundred KiB for the catalog's keywords, the fastest
/// case-insensitive search when there are too many keywords for a prefilter.
fn dfa_over(patterns: &[String]) -> Result<AhoCorasick, aho_corasick::BuildError> {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(patterns)
}

impl Matcher {
    /// Build the single keyword automaton over every signature's keywords.
    pub fn new(sigs: &[Signature]) -> Result<Matcher, aho_corasick::BuildError> {
        // Keywords of rules that run on binaries first, then those only text-only rules have.
        let all = Self::keyword_lists(sigs, |s| !s.text_only);
        let text_only = Self::keyword_lists(sigs, |s| s.text_only);
        let max_keyword = all
            .0
            .iter()
            .chain(text_only.0.iter())
            .map(String::len)
            .max()
            .unwrap_or(0);
        let (mut patterns, mut pattern_rules) = fold_subsumed(all.0, all.1);
        // A text-only keyword containing a kept keyword dispatches from it (binaries skip
        // text-only rules at dispatch); the rest form the text tier, folded among themselves.
        let mut rest = (Vec::new(), Vec::new());
        for (k, rules) in text_only.0.into_iter().zip(text_only.1) {
            match patterns.iter().position(|p| k.contains(p.as_str())) {
                Some(p) => {
                    if let Some(list) = pattern_rules.get_mut(p) {
                        list.extend(rules);
                        list.sort_unstable();
                        list.dedup();
                    }
                }
                None => {
                    rest.0.push(k);
                    rest.1.push(rules);
                }
            }
        }
        let (tp, tr) = fold_subsumed(rest.0, rest.1);
        let text_from = patterns.len();
        patterns.extend(tp);
        pattern_rules.extend(tr);
        let groups = |range: std::ops::Range<usize>| -> Vec<(usize, &[String])> {
            patterns[range.clone()]
                .chunks(TEDDY_GROUP)
                .enumerate()
                .map(|(i, g)| (range.start + i * TEDDY_GROUP, g))
                .collect()
        };
        let packed: Option<Vec<_>> = groups(0..text_from)
            .into_iter()
            .map(|(first, group)| {
                aho_corasick::packed::Config::new()
                    .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                    .builder()
                    .extend(group)
                    .build()
                    .map(|s| (first, s))
            })
            .collect();
        let (ac, text_ac) = match packed {
            Some(_) if text_from < patterns.len() => {
                (None, Some(dfa_over(&patterns[text_from..])?))
            }
            Some(_) => (None, None),
            None => (Some(dfa_over(&patterns)?), None),
        };
        let pattern_rules = close_over_overlaps(&patterns, &pattern_rules);
        Ok(Matcher {
            sigs: sigs.to_vec(),
            ac,
            packed,
            text_from,
            text_ac,
            patterns,
            pattern_rules,
            max_keyword,
        })
    }

    /// The distinct lowercased keywords of the signatures `keep` selects, each with the
    /// indices of the selected signatures having it.
    fn keyword_lists(
        sigs: &[Signature],
        keep: impl Fn(&Signature) -> bool,
    ) -> (Vec<String>, Vec<Vec<usize>>) {
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_rules: Vec<Vec<usize>> = Vec::new();
        for (i, s) in sigs.iter().enumerate().filter(|(_, s)| keep(s)) {
            for k in &s.keywords {
                let k = k.to_ascii_lowercase();
                match patterns.iter().position(|p| *p == k) {
                    Some(p) => {
                        if let Some(rules) = pattern_rules.get_mut(p)
                            && !rules.contains(&i)
                        {
                            rules.push(i);
                        }
                    }
                    None => {
                        patterns.push(k);
                        pattern_rules.push(vec![i]);
                    }
                }
            }
        }
        (patterns, pattern_rules)
    }

    /// Scan one chunk. Only matches starting before its `owned_end` are reported (the rest
    /// belong to the next chunk, which re-reads the overlap). Text-only rules are skipped in
    /// binary files. A match whose secret fails its rule's validator is dropped. At most
    /// `budget[rule]` matches of each rule are added; the budgets are decremented.
    pub fn scan_chunk(&self, chunk: Chunk<'_>, budget: &mut [usize], out: &mut Vec<RawMatch>) {
        let Chunk {
            buf,
            base,
            owned_end,
            is_text,
            text_tier,
        } = chunk;
        // Per rule: merged windows [start, end) around keyword hits, in order.
        let mut windows: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.sigs.len()];
        // Non-overlapping search; overlapping keywords are covered by `pattern_rules` and the
        // `max_keyword` margin.
        let hits: Vec<(usize, usize, usize)> =
            match &self.packed {
                Some(packed) => LOWER.with(|cell| {
                    let mut lower = cell.take();
                    lower.clear();
                    lower.extend(buf.iter().map(u8::to_ascii_lowercase));
                    let mut hits: Vec<(usize, usize, usize)> = packed
                        .iter()
                        .flat_map(|(first, searcher)| {
                            searcher
                                .find_iter(&lower)
                                .map(move |m| (first + m.pattern().as_usize(), m.start(), m.end()))
                        })
                        .collect();
                    cell.set(lower);
                    if is_text
                        && text_tier
                        && let Some(text_ac) = &self.text_ac
                    {
                        hits.extend(text_ac.find_iter(buf).map(|m| {
                            (self.text_from + m.pattern().as_usize(), m.start(), m.end())
                        }));
                    }
                    if packed.len() > 1 || self.text_ac.is_some() {
                        hits.sort_unstable_by_key(|&(p, s, _)| (s, p));
                    }
                    hits
                }),
                None => self
                    .ac
                    .iter()
                    .flat_map(|ac| ac.find_iter(buf))
                    .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
                    .filter(|&(p, _, _)| is_text && text_tier || p < self.text_from)
                    .collect(),
            };
        for (pattern, hit_start, hit_end) in hits {
            let Some(rules) = self.pattern_rules.get(pattern) else {
                continue;
            };
            for &r in rules {
                let (Some(list), Some(sig)) = (windows.get_mut(r), self.sigs.get(r)) else {
                    continue;
                };
                if sig.text_only && !is_text {
                    continue;
                }
                if sig.exact_keywords
                    && !exact_keyword_near(buf, sig, hit_start, hit_end, self.max_keyword)
                {
                    continue;
                }
                let ws = hit_start.saturating_sub(sig.back.saturating_add(self.max_keyword));
                let we = hit_end
                    .saturating_add(sig.fwd.saturating_add(self.max_keyword))
                    .min(buf.len());
                match list.last_mut() {
                    Some(last) if ws <= last.1 => {
                        last.0 = last.0.min(ws);
                        last.1 = last.1.max(we);
                    }
                    _ => list.push((ws, we)),
                }
            }
        }
        for (r, list) in windows.iter().enumerate() {
            let (Some(sig), Some(budget)) = (self.sigs.get(r), budget.get_mut(r)) else {
                continue;
            };
            if list.is_empty() {
                continue;
            }
            let Some(regex) = sig.regex.get() else {
                continue;
            };
            let mut last_end = 0usize;
            for &(ws, we) in list {
                let hay = &buf[..we];
                let mut pos = ws.max(last_end);
                while pos < we && *budget > 0 {
                    let Some(caps) = regex.captures_at(hay, pos) else {
                        break;
                    };
                    let Some(m) = caps.get(0) else { break };
                    if m.start() >= owned_end {
                        break;
                    }
                    pos = if m.end() > m.start() {
                        m.end()
                    } else {
                        m.end() + 1
                    };
                    let secret = sig.secret_of(&caps);
                    if sig.validate.is_some_and(|v| !v.accepts(&secret)) {
                        continue;
                    }
                    let secret_end = sig.secret_end(&caps);
                    let masked_tail =
                        super::precision::is_mask_tail(buf.get(secret_end..).unwrap_or_default());
                    out.push(RawMatch {
                        rule: r,
                        start: base + m.start() as u64,
                        end: base + m.end() as u64,
                        secret,
                        label: sig
                            .label_groups
                            .iter()
                            .find_map(|&g| caps.get(g))
                            .map(|g| g.as_bytes().to_vec()),
                        line: None,
                        masked_tail,
                    });
                    *budget -= 1;
                    last_end = m.end();
                }
            }
        }
    }

    /// Fresh per-rule match budgets for one file.
    pub fn budget(&self) -> Vec<usize> {
        vec![MAX_MATCHES_PER_RULE; self.sigs.len()]
    }

    /// Scan a whole in-memory buffer as one final chunk.
    pub fn scan_all(&self, data: &[u8]) -> Vec<RawMatch> {
        let mut out = Vec::new();
        let mut budget = self.budget();
        let chunk = Chunk {
            buf: data,
            base: 0,
            owned_end: data.len() + 1,
            is_text: is_text(data),
            text_tier: true,
        };
        self.scan_chunk(chunk, &mut budget, &mut out);
        dedupe(&mut out);
        out
    }
}

/// Drop matches found twice (same rule, same start): keep the longer one. Sorts by start.
pub(crate) fn dedupe(matches: &mut Vec<RawMatch>) {
    matches.sort_by(|a, b| {
        (a.start, a.rule)
            .cmp(&(b.start, b.rule))
            .then(b.end.cmp(&a.end))
    });
    matches.dedup_by(|later, kept| later.start == kept.start && later.rule == kept.rule);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dfa_fallback_finds_what_the_simd_search_finds() {
        let (sigs, problems) = crate::detect::catalog::compile(
            crate::detect::catalog::BUILTIN_FILES,
            &crate::detect::registry::reserved_ids(),
        );
        assert!(problems.is_empty());
        let simd = Matcher::new(&sigs).unwrap();
        assert!(simd.packed.is_some(), "this machine has a SIMD searcher");
        let mut dfa = simd.clone();
        dfa.packed = None;
        dfa.ac = Some(dfa_over(&simd.patterns).unwrap());
        let mut text = Vec::new();
        for s in &simd.sigs {
            for e in &s.examples {
                text.extend_from_slice(e.as_bytes());
                text.extend_from_slice(b"\n-- PASSWORD Token SeCrEt --\n");
            }
        }
        let a = simd.scan_all(&text);
        assert!(a.len() > simd.sigs.len() / 2, "{}", a.len());
        assert_eq!(a, dfa.scan_all(&text));
    }

    #[test]
    fn keywords_containing_another_are_folded_into_it() {
        let (p, r) = fold_subsumed(
            vec![
                "token".into(),
                "session_token".into(),
                "secret".into(),
                "auth_token".into(),
            ],
            vec![vec![0], vec![1], vec![2], vec![3, 0]],
        );
        assert_eq!(p, ["token", "secret"]);
        assert_eq!(r, [vec![0, 1, 3], vec![2]]);
    }
    use crate::detect::catalog::{BUILTIN_FILES, compile};

    fn matcher() -> Matcher {
        let (sigs, problems) = compile(BUILTIN_FILES, &crate::detect::registry::reserved_ids());
        assert!(problems.is_empty(), "{problems:?}");
        Matcher::new(&sigs).unwrap()
    }

    fn ids(m: &Matcher, found: &[RawMatch]) -> Vec<String> {
        found.iter().map(|f| m.sigs[f.rule].id.clone()).collect()
    }

    #[test]
    fn keywords_are_case_insensitive_and_shared() {
        let m = matcher();
        let found = m.scan_all(b"key: akia akia AKIACPCZW4FLKEW5GOHI");
        assert_eq!(ids(&m, &found), ["aws-access-key-id"]);
        assert_eq!(found[0].start, 15);
        assert_eq!(found[0].secret, b"AKIACPCZW4FLKEW5GOHI");
    }

    #[test]
    fn text_tier_keywords_are_searched_only_in_text_outside_package_data() {
        let m = matcher();
        let data = b"DATABASE_URL=postgres://app:Wq7Zr2Kx9Lm4Tn6@db.internal:5432/app\n";
        let run = |is_text, text_tier| {
            let mut out = Vec::new();
            let chunk = Chunk {
                buf: data,
                base: 0,
                owned_end: data.len() + 1,
                is_text,
                text_tier,
            };
            m.scan_chunk(chunk, &mut m.budget(), &mut out);
            ids(&m, &out)
        };
        assert!(run(true, true).contains(&"postgres-url-password".to_string()));
        assert!(run(true, false).is_empty());
        assert!(run(false, true).is_empty());
        // Token rules that hold in binaries are still searched everywhere.
        let mut out = Vec::new();
        let tok = b"\0AKIACPCZW4FLKEW5GOHI\0";
        let chunk = Chunk {
            buf: tok,
            base: 0,
            owned_end: tok.len() + 1,
            is_text: false,
            text_tier: false,
        };
        m.scan_chunk(chunk, &mut m.budget(), &mut out);
        assert_eq!(ids(&m, &out), ["aws-access-key-id"]);
    }

    #[test]
    fn no_keyword_no_work() {
        let m = matcher();
        assert!(m.scan_all(&[0u8; 4096]).is_empty());
        assert!(m.scan_all(b"").is_empty());
    }

    #[test]
    fn matches_past_owned_end_are_left_to_the_next_chunk() {
        let m = matcher();
        let buf = b"AKIACPCZW4FLKEW5GOHI and ASIALHYCC72MDWTPYSBD";
        let mut out = Vec::new();
        let mut budget = m.budget();
        let chunk = Chunk {
            buf,
            base: 100,
            owned_end: 10,
            is_text: true,
            text_tier: true,
        };
        m.scan_chunk(chunk, &mut budget, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].start, 100);
        assert_eq!(budget[out[0].rule], MAX_MATCHES_PER_RULE - 1);
    }

    #[test]
    fn budget_bounds_matches() {
        let m = matcher();
        let data = "AKIACPCZW4FLKEW5GOHI\n".repeat(100);
        let mut out = Vec::new();
        let mut budget = vec![7; m.sigs.len()];
        let pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIC7farqes2iO0Z7ThQNM2+Knx5sUAL0oyKI2Ss9+vQjSoAoGCCqGSM49\n";
        let data = format!("{data}{pem}");
        let chunk = Chunk {
            buf: data.as_bytes(),
            base: 0,
            owned_end: data.len(),
            is_text: true,
            text_tier: true,
        };
        m.scan_chunk(chunk, &mut budget, &mut out);
        // Seven of the flooding rule, and the other rule is still found.
        assert_eq!(
            ids(&m, &out)
                .iter()
                .filter(|i| *i == "aws-access-key-id")
                .count(),
            7
        );
        assert!(ids(&m, &out).contains(&"pem-private-key".to_string()));
    }

    #[test]
    fn dedupe_keeps_the_longer_match() {
        let mk = |start, end| RawMatch {
            rule: 0,
            start,
            end,
            secret: vec![],
            label: None,
            line: None,
            masked_tail: false,
        };
        let mut v = vec![mk(5, 10), mk(5, 20), mk(1, 3)];
        dedupe(&mut v);
        assert_eq!(v, vec![mk(1, 3), mk(5, 20)]);
    }
}
