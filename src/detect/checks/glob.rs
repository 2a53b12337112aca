//! Shell-style globbing over a [`FileLookup`], as sshd's `Include` and sudo's `@includedir`
//! need it: `*`, `?` and `[...]` within one path component, results sorted lexically (what
//! `glob(3)` returns), wildcards never matching a leading `.`.

use crate::detect::lookup::{FileLookup, Looked};

/// Whether `name` matches the glob `pat` (one path component).
pub(crate) fn fnmatch(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    if n.first() == Some(&'.') && p.first() != Some(&'.') {
        return false;
    }
    // Greedy match with backtracking to the last `*`: O(len(p) * len(n)).
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class(&p, pi, n.get(ni).copied().unwrap_or('\0')),
            Some(c) if Some(c) == n.get(ni) => Some(pi + 1),
            _ => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Match `c` against the bracket expression starting at `p[start]` (`[`): the index after the
/// closing `]` when it matches, `None` when it does not. An unclosed `[` matches itself.
fn class(p: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        match p.get(i) {
            None => return (c == '[').then_some(start + 1),
            Some(']') if !first => break,
            Some(&lo) => {
                if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
                    let hi = p.get(i + 2).copied().unwrap_or(lo);
                    matched |= lo <= c && c <= hi;
                    i += 3;
                } else {
                    matched |= lo == c;
                    i += 1;
                }
            }
        }
        first = false;
    }
    (matched != negate).then_some(i + 1)
}

/// Whether a path component has glob metacharacters.
fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The existing regular files matching the absolute pattern `pattern`, sorted, at most `limit`.
/// `Err` when a directory the pattern lists, or a path it names, cannot be read: the match
/// would not be known.
pub(crate) fn expand(lookup: &dyn FileLookup, pattern: &str, limit: usize) -> Looked<Vec<String>> {
    let mut current = vec![String::new()];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in &current {
            if is_pattern(comp) {
                let dir = if base.is_empty() { "/" } else { base.as_str() };
                let mut names: Vec<String> = lookup
                    .list(dir)?
                    .into_iter()
                    .filter(|n| fnmatch(comp, n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| format!("{base}/{n}")));
            } else {
                next.push(format!("{base}/{comp}"));
            }
            if next.len() >= limit {
                break;
            }
        }
        next.truncate(limit);
        current = next;
    }
    let mut out = Vec::new();
    for p in current {
        if lookup
            .metadata(&p)?
            .is_some_and(|m| m.kind == crate::detect::lookup::MetaKind::File)
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::lookup::MemLookup;

    #[test]
    fn patterns() {
        assert!(fnmatch("*.conf", "50-cloud-init.conf"));
        assert!(!fnmatch("*.conf", "50-cloud-init.conf.bak"));
        assert!(!fnmatch("*.conf", ".hidden.conf"));
        assert!(fnmatch("*", "a"));
        assert!(fnmatch("a*b*c", "aXXbYYbc"));
        assert!(fnmatch("[0-9][0-9]-*", "10-x"));
        assert!(!fnmatch("[!0-9]*", "1x"));
        assert!(fnmatch("?", "é"));
        assert!(fnmatch("[", "["));
        assert!(fnmatch("[]]", "]"));
        assert!(!fnmatch("", "a"));
        assert!(fnmatch("", ""));
    }

    #[test]
    fn expands_sorted_files_only() {
        let l = MemLookup::new()
            .file("/etc/ssh/sshd_config.d/60-cloudimg-settings.conf", "")
            .file("/etc/ssh/sshd_config.d/50-cloud-init.conf", "")
            .file("/etc/ssh/sshd_config.d/README", "")
            .file("/etc/ssh/sshd_config.d/sub/x.conf", "");
        assert_eq!(
            expand(&l, "/etc/ssh/sshd_config.d/*.conf", 100).unwrap(),
            [
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                "/etc/ssh/sshd_config.d/60-cloudimg-settings.conf"
            ]
        );
        assert_eq!(expand(&l, "/etc/ssh/*/sub/*", 100).unwrap().len(), 1);
        assert_eq!(expand(&l, "/etc/ssh/sshd_config.d/*", 1).unwrap().len(), 1);
        assert!(expand(&l, "/nope/*", 100).unwrap().is_empty());
        assert_eq!(
            expand(&l, "/etc/ssh/sshd_config.d/README", 100)
                .unwrap()
                .len(),
            1
        );
    }

    /// A directory that cannot be listed does not expand to nothing.
    #[test]
    fn an_unlistable_directory_is_an_error() {
        let l = MemLookup::new()
            .file("/etc/ssh/sshd_config.d/a.conf", "")
            .unreadable_dir("/etc/ssh/sshd_config.d");
        let err = expand(&l, "/etc/ssh/sshd_config.d/*.conf", 100).unwrap_err();
        assert_eq!(err.path, "/etc/ssh/sshd_config.d");
        assert!(expand(&l, "/etc/ssh/sshd_config.d/a.conf", 100).is_err());
    }
}
