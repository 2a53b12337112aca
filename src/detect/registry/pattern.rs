//! Path patterns of the file-rule registry: which files a rule family applies to, written once
//! and matched against absolute paths inside a volume.
//!
//! A pattern is a glob over `/`-separated components. One starting with `/` is anchored at the
//! volume's root (`/etc/shadow`, `/etc/cron.d/*`); any other matches the end of a path at a
//! component boundary, so a base name matches in any directory (`.bash_history`, `*.pem`) and
//! a home-relative name under any home (`.ssh/authorized_keys`, `.aws/credentials`). Within a
//! component `*` matches any run of bytes, `?` one byte and `{a,b}` one of the alternatives; a
//! component `**` matches any number of components (`/var/spool/cron/**`). Patterns are ours
//! (static, short); paths are untrusted: matching is recursion over the pattern's length
//! (bounded by it) and loops over the path, with no allocation.

/// A path pattern (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Glob {
    /// The pattern as written.
    pattern: &'static str,
    /// Compare letters without regard to ASCII case (Windows names, `*.P12`).
    nocase: bool,
    /// A Windows place: an anchored pattern that names where Windows keeps files another
    /// pattern of its family already finds anywhere (`/inetpub/**/web.config` beside
    /// `web.config`). Only a quick scan of a Windows volume walks its directory.
    place: bool,
}

/// A case-sensitive pattern.
pub(crate) const fn glob(pattern: &'static str) -> Glob {
    Glob {
        pattern,
        nocase: false,
        place: false,
    }
}

/// A pattern whose letters match in either ASCII case.
pub(crate) const fn glob_nocase(pattern: &'static str) -> Glob {
    Glob {
        pattern,
        nocase: true,
        place: false,
    }
}

/// A Windows place (see [`Glob`]): anchored, letters in either ASCII case.
pub(crate) const fn windows_place(pattern: &'static str) -> Glob {
    Glob {
        pattern,
        nocase: true,
        place: true,
    }
}

impl Glob {
    /// The pattern as written (with ` (any case)` for a case-insensitive one).
    pub fn describe(&self) -> String {
        if self.nocase {
            format!("{} (any case)", self.pattern)
        } else {
            self.pattern.to_string()
        }
    }

    /// Whether letters match in either ASCII case (a Windows pattern).
    pub(crate) fn nocase(&self) -> bool {
        self.nocase
    }

    /// Whether it is a Windows place (see [`Glob`]).
    pub(crate) fn place(&self) -> bool {
        self.place
    }

    /// Whether `path` (absolute, inside the volume) matches.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rel) = path.strip_prefix('/') else {
            return false;
        };
        match self.pattern.strip_prefix('/') {
            Some(anchored) => components(anchored, rel, self.nocase),
            None => tail(self.pattern, rel, self.nocase),
        }
    }

    /// The pattern as a regular expression over the whole path (bytes, ASCII case folding
    /// for a case-insensitive pattern), for matching many patterns in one pass
    /// ([`regex::bytes::RegexSet`]). It accepts the same paths as [`Glob::matches`] (a test
    /// compares them).
    pub(crate) fn to_regex(self) -> String {
        let mut out = String::from(if self.nocase { "(?i-u)^" } else { "(?-u)^" });
        let (rel, anchored) = match self.pattern.strip_prefix('/') {
            Some(r) => (r, true),
            None => (self.pattern, false),
        };
        // An unanchored pattern starts after any number of leading components.
        out.push_str(if anchored { "/" } else { "/(?:[^/]*/)*" });
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, c) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if *c == "**" {
                out.push_str(if last {
                    "[^/]+(?:/[^/]+)*"
                } else {
                    "(?:[^/]*/)*"
                });
                continue;
            }
            if c.is_empty() {
                // An empty component matches no path component.
                out.push_str(r"[^\x00-\xff]");
            } else if c.bytes().all(|b| b == b'*') {
                // Nor does a component of stars match an empty one.
                out.push_str("[^/]+");
            } else {
                out.push_str("(?:");
                out.push_str(&component_regex(c.as_bytes(), false));
                out.push(')');
            }
            if !last {
                out.push('/');
            }
        }
        out.push('$');
        out
    }

    /// For an anchored pattern: its fixed leading directory (the components before the first
    /// one with a wildcard, without the last component) and whether files below it are matched
    /// at any depth (`true`) or only in it (`false`). `/etc/cron.d/*` gives `("/etc/cron.d",
    /// false)`, `/var/spool/cron/**` `("/var/spool/cron", true)`, `/etc/shadow` `("/etc",
    /// false)`. `None` for a pattern that is not anchored.
    /// Alternatives in a directory component are not expanded: `/a/{b,c}/x` gives `("/a",
    /// true)`, so patterns name such directories one by one.
    pub(crate) fn fixed_dir(&self) -> Option<(String, bool)> {
        let rel = self.pattern.strip_prefix('/')?;
        let parts: Vec<&str> = rel.split('/').collect();
        let fixed = parts
            .iter()
            .position(|c| has_wildcard(c))
            .unwrap_or(parts.len())
            .min(parts.len().saturating_sub(1));
        let rest = parts.get(fixed..).unwrap_or_default();
        let deep = rest.len() > 1 || rest.contains(&"**");
        let dir = format!("/{}", parts.get(..fixed).unwrap_or_default().join("/"));
        Some((dir, deep))
    }
}

fn has_wildcard(component: &str) -> bool {
    component.contains(['*', '?', '{'])
}

/// One component of a pattern as a regex: `*`, `?`, `{a,b}` and literal bytes. Alternatives do
/// not nest: inside one (`nested`), `{` is literal.
fn component_regex(c: &[u8], nested: bool) -> String {
    let mut out = String::new();
    let mut i = 0usize;
    while let Some(&b) = c.get(i) {
        i = i.saturating_add(1);
        let rest = c.get(i..).unwrap_or_default();
        match (b, rest.iter().position(|&b| b == b'}')) {
            (b'*', _) => out.push_str("[^/]*"),
            (b'?', _) => out.push_str("[^/]"),
            (b'{', Some(close)) if !nested => {
                let alts: Vec<String> = rest
                    .get(..close)
                    .unwrap_or_default()
                    .split(|&b| b == b',')
                    .map(|alt| component_regex(alt, true))
                    .collect();
                out.push_str("(?:");
                out.push_str(&alts.join("|"));
                out.push(')');
                i = i.saturating_add(close).saturating_add(1);
            }
            (b, _) => out.push_str(&format!(r"\x{b:02x}")),
        }
    }
    out
}

/// Split off the first component of a relative path or pattern.
fn first(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

/// An unanchored pattern: `pat` matches the path's last components.
fn tail(pat: &str, rel: &str, nocase: bool) -> bool {
    if !pat.split('/').any(|c| c == "**") {
        // One alignment only: the path's last as many components as the pattern has.
        let want = pat.split('/').count();
        let start = match rel.rmatch_indices('/').nth(want.saturating_sub(1)) {
            Some((i, _)) => i.saturating_add(1),
            // Fewer slashes: the whole path, when it has exactly as many components.
            None if rel.matches('/').count().saturating_add(1) == want => 0,
            None => return false,
        };
        return rel.get(start..).is_some_and(|r| components(pat, r, nocase));
    }
    // `**` inside: try every start.
    let mut rest = Some(rel);
    while let Some(r) = rest {
        if components(pat, r, nocase) {
            return true;
        }
        rest = first(r).1;
    }
    false
}

/// An anchored match of relative `pat` against relative `rel`, component by component.
fn components(pat: &str, rel: &str, nocase: bool) -> bool {
    let (pc, prest) = first(pat);
    if pc == "**" {
        let Some(prest) = prest else {
            // A trailing `**`: any files at any depth (at least one component, none empty).
            return rel.split('/').all(|c| !c.is_empty());
        };
        let mut rest = Some(rel);
        while let Some(r) = rest {
            if components(prest, r, nocase) {
                return true;
            }
            rest = first(r).1;
        }
        return false;
    }
    let (rc, rrest) = first(rel);
    if rc.is_empty() || !component(pc.as_bytes(), rc.as_bytes(), nocase) {
        return false;
    }
    match (prest, rrest) {
        (None, None) => true,
        (Some(p), Some(r)) => components(p, r, nocase),
        _ => false,
    }
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    a == b || nocase && a.eq_ignore_ascii_case(&b)
}

/// One component: `*`, `?`, `{a,b}` and literal bytes.
fn component(pat: &[u8], name: &[u8], nocase: bool) -> bool {
    piece(pat, &[], name, nocase)
}

/// `pat` then `then` (the rest of the component after an alternative; alternatives do not
/// nest) against `name`.
fn piece(pat: &[u8], then: &[u8], name: &[u8], nocase: bool) -> bool {
    match pat.split_first() {
        None if then.is_empty() => name.is_empty(),
        None => piece(then, &[], name, nocase),
        Some((b'*', rest)) => (0..=name.len()).any(|i| {
            name.get(i..)
                .is_some_and(|tail| piece(rest, then, tail, nocase))
        }),
        Some((b'?', rest)) => name
            .split_first()
            .is_some_and(|(_, n)| piece(rest, then, n, nocase)),
        Some((b'{', rest)) if then.is_empty() && rest.contains(&b'}') => {
            let close = rest.iter().position(|&b| b == b'}').unwrap_or(rest.len());
            let (alts, after) = rest.split_at(close);
            let after = after.get(1..).unwrap_or_default();
            alts.split(|&b| b == b',')
                .any(|alt| piece(alt, after, name, nocase))
        }
        Some((&c, rest)) => name
            .split_first()
            .is_some_and(|(&n, tail)| eq(c, n, nocase) && piece(rest, then, tail, nocase)),
    }
}

/// The patterns of a table of `(pattern, kind)` (a family that tells its files apart by which
/// pattern matched declares that table; its scope is this projection of it).
pub(crate) const fn globs<K: Copy, const N: usize>(table: &[(Glob, K); N]) -> [Glob; N] {
    let mut out = [glob(""); N];
    let mut i = 0;
    while i < N {
        out[i] = table[i].0;
        i += 1;
    }
    out
}

/// The kind of the first pattern of `table` that matches `path`.
pub(crate) fn kind_of<K: Copy>(table: &[(Glob, K)], path: &str) -> Option<K> {
    table.iter().find(|(g, _)| g.matches(path)).map(|&(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_patterns() {
        let g = glob("/etc/shadow");
        assert!(g.matches("/etc/shadow"));
        assert!(!g.matches("/etc/shadow-") && !g.matches("/x/etc/shadow") && !g.matches("/etc"));
        let g = glob("/etc/cron.d/*");
        assert!(g.matches("/etc/cron.d/job") && g.matches("/etc/cron.d/.hidden"));
        assert!(!g.matches("/etc/cron.d/a/b") && !g.matches("/etc/cron.d"));
        let g = glob("/var/spool/cron/**");
        assert!(g.matches("/var/spool/cron/crontabs/root") && g.matches("/var/spool/cron/x"));
        assert!(!g.matches("/var/spool/cron") && !g.matches("/var/spool/crontab"));
        let g = glob("/etc/systemd/system/**/*.{service,timer}");
        assert!(g.matches("/etc/systemd/system/a.service"));
        assert!(g.matches("/etc/systemd/system/multi-user.target.wants/a.timer"));
        assert!(!g.matches("/etc/systemd/system/a.socket"));
        let g = glob("/var/lib/cloud/instances/*/user-data*");
        assert!(g.matches("/var/lib/cloud/instances/i-0a/user-data.txt"));
        assert!(!g.matches("/var/lib/cloud/instances/user-data.txt"));
        assert!(!g.matches("/var/lib/cloud/instances/a/b/user-data.txt"));
    }

    #[test]
    fn unanchored_patterns_match_the_end_at_a_component_boundary() {
        let g = glob(".bash_history");
        assert!(g.matches("/root/.bash_history") && g.matches("/.bash_history"));
        assert!(!g.matches("/root/x.bash_history") && !g.matches("/root/.bash_history/x"));
        let g = glob(".ssh/authorized_keys");
        assert!(g.matches("/home/a/.ssh/authorized_keys"));
        assert!(!g.matches("/home/a/ssh/authorized_keys") && !g.matches("/authorized_keys"));
        let g = glob("*.pem");
        assert!(g.matches("/opt/a/server.pem") && g.matches("/.pem"));
        assert!(!g.matches("/opt/a/server.pem.bak"));
        let g = glob("containers/**/auth.json");
        assert!(g.matches("/run/containers/0/auth.json"));
        assert!(g.matches("/home/u/.config/containers/auth.json"));
        assert!(!g.matches("/home/u/auth.json"));
        let g = glob(".aws/**");
        assert!(g.matches("/root/.aws/credentials") && g.matches("/root/.aws/sso/cache/x"));
        assert!(!g.matches("/root/.aws"));
    }

    #[test]
    fn case_and_alternatives() {
        let g = glob_nocase("*.p12");
        assert!(g.matches("/a/KEY.P12") && g.matches("/a/k.p12"));
        assert!(!glob("*.p12").matches("/a/KEY.P12"));
        let g = glob("id_{rsa,ed25519}");
        assert!(g.matches("/root/.ssh/id_rsa") && g.matches("/x/id_ed25519"));
        assert!(!g.matches("/x/id_dsa") && !g.matches("/x/id_rsa.pub"));
        let g = glob("{a*,b?}.x");
        assert!(g.matches("/abc.x") && g.matches("/a.x") && g.matches("/bc.x"));
        assert!(!g.matches("/b.x") && !g.matches("/c.x"));
        let g = glob("a?c");
        assert!(g.matches("/abc") && !g.matches("/ac"));
        // An unclosed brace is a literal.
        assert!(glob("a{b").matches("/a{b"));
    }

    #[test]
    fn paths_that_are_not_absolute_or_are_hostile() {
        assert!(!glob("x").matches("x") && !glob("/x").matches(""));
        let deep = "/a".repeat(4000) + "/.bash_history";
        assert!(glob(".bash_history").matches(&deep));
        assert!(!glob("containers/**/auth.json").matches(&deep));
        let long = format!("/{}", "x".repeat(255));
        assert!(glob("*a*b").matches(&format!("{long}ab")));
        assert!(!glob("*a*b").matches(&long));
    }

    #[test]
    fn fixed_dirs() {
        assert_eq!(
            glob("/etc/cron.d/*").fixed_dir(),
            Some(("/etc/cron.d".into(), false))
        );
        assert_eq!(
            glob("/var/spool/cron/**").fixed_dir(),
            Some(("/var/spool/cron".into(), true))
        );
        assert_eq!(
            glob("/etc/shadow").fixed_dir(),
            Some(("/etc".into(), false))
        );
        assert_eq!(
            glob("/var/lib/cloud/instances/*/user-data*").fixed_dir(),
            Some(("/var/lib/cloud/instances".into(), true))
        );
        assert_eq!(glob("*.pem").fixed_dir(), None);
    }
}
