//! Package URLs (<https://github.com/package-url/purl-spec>) as grype and trivy match them:
//! `pkg:deb/debian/openssh-server@1:9.2p1-2+deb12u3?arch=amd64&distro=debian-12`,
//! `pkg:rpm/amzn/curl@8.5.0-1.amzn2023?arch=x86_64&distro=amzn-2023&epoch=1`,
//! `pkg:pypi/requests@2.31.0`, `pkg:npm/%40types/node@20.1.0`, `pkg:maven/g/a@1`,
//! `pkg:golang/github.com/x/y@v1.2.3`, `pkg:cargo/serde@1.0.0`.
//!
//! Each segment is percent-encoded but for the unreserved characters (and `:` in the version,
//! which the spec leaves as is); qualifiers are sorted by key and empty ones left out.

use super::{Component, Ecosystem, OsInfo};

/// Percent-encode `s`, keeping ASCII letters, digits, `.-_~` and the bytes of `keep`.
pub fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Python distribution name as PyPI and purls normalise it (PEP 503): lower case, runs of
/// `-`, `_`, `.` become one `-`.
pub fn pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for ch in name.chars() {
        if matches!(ch, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(ch.to_lowercase());
    }
    out
}

/// The purl of `c`; `os` gives dpkg and rpm packages their `distro` qualifier.
pub fn of(c: &Component, os: Option<&OsInfo>) -> String {
    let mut out = format!("pkg:{}/", c.ecosystem.purl_type());
    if let Some(ns) = c.namespace.as_deref().filter(|n| !n.is_empty()) {
        for seg in ns.split('/').filter(|s| !s.is_empty()) {
            out.push_str(&encode(seg, b""));
            out.push('/');
        }
    }
    let name = match c.ecosystem {
        Ecosystem::Pypi => pypi_name(&c.name),
        _ => c.name.clone(),
    };
    out.push_str(&encode(&name, b""));
    if !c.version.is_empty() {
        out.push('@');
        out.push_str(&encode(&c.version, b":"));
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(a) = &c.arch {
        q.push(("arch", a.clone()));
    }
    if c.ecosystem.is_os() {
        if let Some(os) = os.filter(|o| !o.id.is_empty()) {
            q.push(("distro", os.distro()));
        }
        if let Some(e) = c.epoch {
            q.push(("epoch", e.to_string()));
        }
        if let Some(s) = &c.source {
            q.push(("upstream", s.clone()));
        }
    }
    q.retain(|(_, v)| !v.is_empty());
    q.sort();
    for (i, (k, v)) in q.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v, b":"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(eco: Ecosystem, ns: Option<&str>, name: &str, version: &str) -> Component {
        Component {
            ecosystem: eco,
            namespace: ns.map(str::to_string),
            name: name.into(),
            version: version.into(),
            epoch: None,
            arch: None,
            source: None,
            licenses: vec![],
            locations: vec![],
        }
    }

    #[test]
    fn purls_follow_the_spec_examples() {
        let debian = OsInfo {
            id: "debian".into(),
            version_id: "12".into(),
            ..OsInfo::default()
        };
        let mut c = comp(
            Ecosystem::Deb,
            Some("debian"),
            "openssh-server",
            "1:9.2p1-2+deb12u3",
        );
        c.arch = Some("amd64".into());
        c.source = Some("openssh".into());
        assert_eq!(
            of(&c, Some(&debian)),
            "pkg:deb/debian/openssh-server@1:9.2p1-2%2Bdeb12u3?arch=amd64&distro=debian-12&upstream=openssh"
        );
        let amzn = OsInfo {
            id: "amzn".into(),
            version_id: "2023".into(),
            ..OsInfo::default()
        };
        let mut r = comp(Ecosystem::Rpm, Some("amzn"), "curl", "8.5.0-1.amzn2023");
        r.arch = Some("x86_64".into());
        r.epoch = Some(1);
        assert_eq!(
            of(&r, Some(&amzn)),
            "pkg:rpm/amzn/curl@8.5.0-1.amzn2023?arch=x86_64&distro=amzn-2023&epoch=1"
        );
        assert_eq!(
            of(
                &comp(Ecosystem::Npm, Some("@types"), "node", "20.1.0"),
                None
            ),
            "pkg:npm/%40types/node@20.1.0"
        );
        assert_eq!(
            of(&comp(Ecosystem::Pypi, None, "Zope.Interface", "6.0"), None),
            "pkg:pypi/zope-interface@6.0"
        );
        assert_eq!(
            of(
                &comp(
                    Ecosystem::Golang,
                    Some("github.com/gorilla"),
                    "mux",
                    "v1.8.0"
                ),
                None
            ),
            "pkg:golang/github.com/gorilla/mux@v1.8.0"
        );
        assert_eq!(
            of(
                &comp(
                    Ecosystem::Maven,
                    Some("org.apache.commons"),
                    "commons-lang3",
                    "3.12.0"
                ),
                None
            ),
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
        );
    }

    #[test]
    fn hostile_names_are_encoded() {
        let c = comp(Ecosystem::Cargo, None, "a/b?c#d e", "1.0&x=y");
        assert_eq!(of(&c, None), "pkg:cargo/a%2Fb%3Fc%23d%20e@1.0%26x%3Dy");
    }
}
