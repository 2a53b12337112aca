//! The criteria of an sshd `Match` line, judged the way OpenSSH's `match.c` and `addrmatch.c`
//! judge them, without a connection.
//!
//! A criterion is an attribute and a comma-separated pattern list; a block matches a connection
//! when every criterion does. In a list, `!pattern` that matches rejects the connection outright
//! and at least one plain pattern must match, so a list of negations alone (`Match User !root`)
//! never matches anything. `*` and `?` are wildcards; `Address` and `LocalAddress` entries may
//! be CIDR blocks; `LocalPort` is one port number.
//!
//! Offline there is no connection, so the check asks three questions instead: can the block
//! match at all ([`Criteria::never_matches`]), does one block match every connection another
//! one matches ([`Criteria::covers`], decided conservatively), and does it only ever match
//! connections from the machine itself ([`Criteria::loopback_only`]).

use std::net::IpAddr;

/// Most criteria kept for one block (a longer line is truncated, which only widens the block).
const MAX_CRITERIA: usize = 16;

/// A `Match` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Attr {
    User,
    Group,
    Host,
    Address,
    LocalAddress,
    LocalPort,
    RDomain,
    /// Anything sshd would reject (unknown attribute, missing argument): taken as matching
    /// something, so a typo does not hide a setting.
    Other(String),
}

/// One criterion: an attribute and its pattern list as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Criterion {
    pub attr: Attr,
    pub patterns: String,
}

/// The criteria of a block: all of them must match. Empty is `Match all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Criteria(pub Vec<Criterion>);

impl Criteria {
    /// Parse the arguments of a `Match` line.
    pub fn parse(args: &[String]) -> Criteria {
        if args.len() == 1 && args[0].eq_ignore_ascii_case("all") {
            return Criteria::default();
        }
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(name) = it.next() {
            if out.len() >= MAX_CRITERIA {
                break;
            }
            let attr = match name.to_ascii_lowercase().as_str() {
                "user" => Attr::User,
                "group" => Attr::Group,
                "host" => Attr::Host,
                "address" => Attr::Address,
                "localaddress" => Attr::LocalAddress,
                "localport" => Attr::LocalPort,
                "rdomain" => Attr::RDomain,
                _ => Attr::Other(name.clone()),
            };
            let patterns = match &attr {
                // `all` among other criteria is an error to sshd.
                Attr::Other(n) if n.eq_ignore_ascii_case("all") => String::new(),
                _ => it.next().cloned().unwrap_or_default(),
            };
            out.push(Criterion { attr, patterns });
        }
        if out.is_empty() {
            // A bare `Match` is an error to sshd; keep it visible rather than global.
            out.push(Criterion {
                attr: Attr::Other(String::new()),
                patterns: String::new(),
            });
        }
        Criteria(out)
    }

    /// These criteria followed by `more` (a `Match` in a file included from inside a block
    /// applies only when the including block matches too).
    pub fn and(&self, more: &Criteria) -> Criteria {
        let mut v = self.0.clone();
        v.extend(more.0.iter().cloned());
        v.truncate(MAX_CRITERIA);
        Criteria(v)
    }

    /// `User alice Address 10.0.0.0/8` (`all` when empty), for messages.
    pub fn label(&self) -> String {
        if self.0.is_empty() {
            return "all".to_string();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|c| {
                let name = match &c.attr {
                    Attr::User => "User",
                    Attr::Group => "Group",
                    Attr::Host => "Host",
                    Attr::Address => "Address",
                    Attr::LocalAddress => "LocalAddress",
                    Attr::LocalPort => "LocalPort",
                    Attr::RDomain => "RDomain",
                    Attr::Other(n) => n.as_str(),
                };
                if c.patterns.is_empty() {
                    name.to_string()
                } else {
                    format!("{name} {}", c.patterns)
                }
            })
            .collect();
        parts.join(" ")
    }

    /// Whether no connection can match: some pattern list has no plain (non-negated) entry.
    pub fn never_matches(&self) -> bool {
        self.0.iter().any(|c| match c.attr {
            Attr::LocalPort | Attr::Other(_) => false,
            _ => entries(&c.patterns).all(|(neg, _)| neg),
        })
    }

    /// Whether every connection that matches `other` also matches `self` (false when unsure).
    /// True for `Match all`, for identical criteria, for a criterion `*` (User, Host, Address,
    /// LocalAddress), and for address blocks that contain the other's addresses.
    pub fn covers(&self, other: &Criteria) -> bool {
        self.0
            .iter()
            .all(|mine| anything(mine) || other.0.iter().any(|theirs| narrower(theirs, mine)))
    }

    /// Whether no connection can match both (false when unsure): some attribute has plain
    /// lists of literals on both sides with no entry in common (`User root` and `User alice`),
    /// or CIDR blocks that do not overlap, or two different `LocalPort`s.
    pub fn disjoint(&self, other: &Criteria) -> bool {
        self.0
            .iter()
            .any(|a| other.0.iter().any(|b| a.attr == b.attr && apart(a, b)))
    }

    /// Whether the block matches only connections from or to the loopback address (an
    /// `Address` or `LocalAddress` whose plain entries are all in 127.0.0.0/8 or `::1`).
    pub fn loopback_only(&self) -> bool {
        self.0.iter().any(|c| {
            matches!(c.attr, Attr::Address | Attr::LocalAddress) && {
                let plain: Vec<&str> = entries(&c.patterns)
                    .filter(|(neg, _)| !neg)
                    .map(|(_, p)| p)
                    .collect();
                !plain.is_empty()
                    && plain.iter().all(|p| {
                        cidr(p).is_some_and(|(ip, len)| match ip {
                            IpAddr::V4(v4) => v4.is_loopback() && len >= 8,
                            IpAddr::V6(v6) => v6.is_loopback() && len == 128,
                        })
                    })
            }
        })
    }
}

/// The entries of a comma-separated list, each with whether it is negated.
fn entries(list: &str) -> impl Iterator<Item = (bool, &str)> {
    list.split(',')
        .filter(|e| !e.is_empty())
        .map(|e| match e.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, e),
        })
}

/// Whether `c` matches every connection.
fn anything(c: &Criterion) -> bool {
    matches!(
        c.attr,
        Attr::User | Attr::Host | Attr::Address | Attr::LocalAddress
    ) && entries(&c.patterns).all(|(neg, _)| !neg)
        && entries(&c.patterns).any(|(_, p)| p.chars().all(|ch| ch == '*'))
}

/// Whether every connection matching `narrow` matches `wide` (same attribute).
fn narrower(narrow: &Criterion, wide: &Criterion) -> bool {
    if narrow.attr != wide.attr || matches!(wide.attr, Attr::Other(_)) {
        return false;
    }
    if narrow.patterns == wide.patterns {
        return true;
    }
    if !matches!(wide.attr, Attr::Address | Attr::LocalAddress) {
        return false;
    }
    // Plain CIDR lists only: each of `narrow`'s blocks inside one of `wide`'s.
    let blocks = |list: &str| -> Option<Vec<(IpAddr, u8)>> {
        entries(list)
            .map(|(neg, p)| if neg { None } else { cidr(p) })
            .collect()
    };
    match (blocks(&narrow.patterns), blocks(&wide.patterns)) {
        (Some(n), Some(w)) if !n.is_empty() => n
            .iter()
            .all(|&(ip, len)| w.iter().any(|&(net, wl)| wl <= len && in_cidr(ip, net, wl))),
        _ => false,
    }
}

/// Whether two criteria of the same attribute exclude each other.
fn apart(a: &Criterion, b: &Criterion) -> bool {
    let literals = |list: &str| -> Option<Vec<String>> {
        entries(list)
            .map(|(neg, p)| (!neg && !p.contains(['*', '?'])).then(|| p.to_ascii_lowercase()))
            .collect()
    };
    match a.attr {
        Attr::User | Attr::Host | Attr::RDomain | Attr::LocalPort => {
            match (literals(&a.patterns), literals(&b.patterns)) {
                // User names compare exactly, host names without case.
                (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => {
                    if a.attr == Attr::User {
                        !entries(&a.patterns)
                            .any(|(_, p)| entries(&b.patterns).any(|(_, q)| p == q))
                    } else {
                        !x.iter().any(|p| y.contains(p))
                    }
                }
                _ => false,
            }
        }
        Attr::Address | Attr::LocalAddress => {
            let blocks = |list: &str| -> Option<Vec<(IpAddr, u8)>> {
                entries(list)
                    .map(|(neg, p)| if neg { None } else { cidr(p) })
                    .collect()
            };
            match (blocks(&a.patterns), blocks(&b.patterns)) {
                // Two blocks overlap when they agree on the shorter prefix.
                (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => !x
                    .iter()
                    .any(|&(n, l)| y.iter().any(|&(m, k)| in_cidr(n, m, k.min(l)))),
                _ => false,
            }
        }
        Attr::Group | Attr::Other(_) => false,
    }
}

/// `10.0.0.0/8` or a bare address (a host block); `None` for a wildcard pattern or junk.
fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => l.parse().ok()?,
        Some(_) => return None,
        None => max,
    };
    (len <= max).then_some((ip, len))
}

/// Whether `ip` is inside `net/len`.
fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let (a, b, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (
            u128::from(u32::from(a)) << 96,
            u128::from(u32::from(b)) << 96,
            len,
        ),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), len),
        _ => return false,
    };
    let mask = u128::MAX
        .checked_shl(128u32.saturating_sub(u32::from(bits)))
        .unwrap_or(0);
    a & mask == b & mask
}

/// A connection, for tests that compare the judgement with `sshd -T -C`.
#[cfg(test)]
#[derive(Debug, Clone)]
pub(super) struct Conn<'a> {
    pub user: &'a str,
    pub groups: &'a [&'a str],
    pub host: &'a str,
    pub addr: &'a str,
    pub laddr: &'a str,
    pub lport: u16,
    pub rdomain: &'a str,
}

#[cfg(test)]
impl Criteria {
    /// Whether `conn` matches, as sshd decides it.
    pub fn matches(&self, conn: &Conn<'_>) -> bool {
        self.0.iter().all(|c| match &c.attr {
            Attr::User => list_match(conn.user, &c.patterns, false) == 1,
            Attr::Group => {
                let mut found = false;
                for g in conn.groups {
                    match list_match(g, &c.patterns, false) {
                        -1 => return false,
                        1 => found = true,
                        _ => {}
                    }
                }
                found
            }
            Attr::Host => list_match(conn.host, &c.patterns, true) == 1,
            Attr::Address => addr_match(conn.addr, &c.patterns),
            Attr::LocalAddress => addr_match(conn.laddr, &c.patterns),
            Attr::LocalPort => c.patterns.parse() == Ok(conn.lport),
            Attr::RDomain => list_match(conn.rdomain, &c.patterns, false) == 1,
            Attr::Other(_) => true,
        })
    }
}

/// `match_pattern_list`: 1 on a plain match, -1 on a negated one, 0 otherwise.
#[cfg(test)]
fn list_match(s: &str, list: &str, lower: bool) -> i32 {
    let mut got = 0;
    for (neg, p) in entries(list) {
        let p = if lower {
            p.to_ascii_lowercase()
        } else {
            p.to_string()
        };
        if wildcard(&p, s) {
            if neg {
                return -1;
            }
            got = 1;
        }
    }
    got
}

/// `addr_match_list`: CIDR entries by prefix, others as wildcard patterns.
#[cfg(test)]
fn addr_match(addr: &str, list: &str) -> bool {
    let ip: Option<IpAddr> = addr.parse().ok();
    let mut got = false;
    for (neg, p) in entries(list) {
        let hit = match (cidr(p), ip) {
            (Some((net, len)), Some(ip)) => in_cidr(ip, net, len),
            (Some(_), None) => false,
            (None, _) => wildcard(p, addr),
        };
        if hit {
            if neg {
                return false;
            }
            got = true;
        }
    }
    got
}

/// `*` and `?` glob match (iterative, linear in practice).
#[cfg(test)]
fn wildcard(pat: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(line: &str) -> Criteria {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        Criteria::parse(&args)
    }

    fn conn<'a>(user: &'a str, addr: &'a str) -> Conn<'a> {
        Conn {
            user,
            groups: &["users"],
            host: addr,
            addr,
            laddr: "10.0.0.5",
            lport: 22,
            rdomain: "default",
        }
    }

    #[test]
    fn parse_and_label() {
        assert_eq!(crit("all"), Criteria::default());
        assert_eq!(crit("ALL").label(), "all");
        let c = crit("user alice,bob Address 10.0.0.0/8");
        assert_eq!(c.label(), "User alice,bob Address 10.0.0.0/8");
        assert_eq!(crit("Bogus x").0[0].attr, Attr::Other("Bogus".into()));
        assert_eq!(crit("User").0[0].patterns, "");
        assert_eq!(crit("").label(), "");
        assert!(!crit("").never_matches());
    }

    #[test]
    fn negation_alone_never_matches() {
        assert!(crit("User !root").never_matches());
        assert!(!crit("User *,!root").never_matches());
        assert!(crit("Address 10.0.0.0/8 User !a,!b").never_matches());
        let c = crit("User *,!root");
        assert!(c.matches(&conn("alice", "1.2.3.4")));
        assert!(!c.matches(&conn("root", "1.2.3.4")));
        assert!(!crit("User !root").matches(&conn("alice", "1.2.3.4")));
    }

    #[test]
    fn addresses_wildcards_and_ports() {
        let c = crit("Address 10.0.0.0/8,!10.9.0.0/16,192.168.1.*");
        assert!(c.matches(&conn("x", "10.1.2.3")));
        assert!(!c.matches(&conn("x", "10.9.2.3")));
        assert!(c.matches(&conn("x", "192.168.1.77")));
        assert!(!c.matches(&conn("x", "192.168.2.1")));
        assert!(crit("Address ::1").matches(&conn("x", "::1")));
        assert!(crit("LocalPort 22").matches(&conn("x", "1.1.1.1")));
        assert!(!crit("LocalPort 2222").matches(&conn("x", "1.1.1.1")));
        assert!(crit("User a?ice Host *").matches(&conn("alice", "h")));
        assert!(crit("Group wheel,users").matches(&conn("alice", "h")));
        assert!(!crit("Group *,!users").matches(&conn("alice", "h")));
        assert!(wildcard("*a*b*", "xxaxxbxx") && !wildcard("a*c", "abcd"));
    }

    #[test]
    fn coverage_is_conservative() {
        let all = Criteria::default();
        let net = crit("Address 10.0.0.0/8");
        let sub = crit("Address 10.1.0.0/16,10.2.3.4 User alice");
        assert!(all.covers(&net) && net.covers(&net) && net.covers(&sub));
        assert!(!sub.covers(&net) && !net.covers(&all));
        assert!(crit("User *").covers(&all));
        assert!(!crit("User *,!root").covers(&all));
        assert!(!crit("Address 10.0.0.0/8,!10.1.0.0/16").covers(&sub));
        assert!(!crit("Address 10.0.0.0/8").covers(&crit("Address 10.*")));
        assert!(!crit("Bogus x").covers(&crit("Bogus x")));
    }

    #[test]
    fn disjointness_is_conservative() {
        assert!(crit("User root").disjoint(&crit("Address 10.0.0.0/8 User alice,bob")));
        assert!(!crit("User root").disjoint(&crit("User Root,root")));
        assert!(crit("Host A.example").disjoint(&crit("Host b.example")));
        assert!(!crit("Host A.example").disjoint(&crit("Host a.EXAMPLE")));
        assert!(!crit("User root").disjoint(&crit("User r*")));
        assert!(!crit("User root").disjoint(&crit("User *,!root")));
        assert!(crit("Address 10.0.0.0/8").disjoint(&crit("Address 192.168.0.0/16,172.16.0.1")));
        assert!(!crit("Address 10.0.0.0/8").disjoint(&crit("Address 10.2.0.0/16")));
        assert!(!crit("Address 10.2.0.0/16").disjoint(&crit("Address 10.0.0.0/8")));
        assert!(crit("LocalPort 22").disjoint(&crit("LocalPort 2222")));
        assert!(!crit("Group a").disjoint(&crit("Group b")));
        assert!(!crit("User root").disjoint(&crit("Address 10.0.0.0/8")));
        assert!(!Criteria::default().disjoint(&crit("User root")));
    }

    #[test]
    fn loopback() {
        assert!(crit("Address 127.0.0.1,::1").loopback_only());
        assert!(crit("User x LocalAddress 127.0.0.0/8").loopback_only());
        assert!(!crit("Address 127.0.0.0/7").loopback_only());
        assert!(!crit("Address 127.0.0.1,10.0.0.1").loopback_only());
        assert!(!crit("Address !127.0.0.1").loopback_only());
        assert!(!crit("Host localhost").loopback_only());
        assert_eq!(cidr("10.0.0.0/33"), None);
        assert_eq!(cidr("10.0.0.0/"), None);
        assert!(in_cidr("::1".parse().unwrap(), "::".parse().unwrap(), 0));
    }
}
