//! Identity that must be unique per instance: `/etc/machine-id`, DHCP leases, the saved random
//! seed.
//!
//! Every instance launched from an image with a machine-id shares it: journald, D-Bus, DHCP
//! client identifiers (systemd-networkd derives its DUID from it) and anything keyed on it
//! collide. A DHCP lease records the build instance's addresses and network. A saved random
//! seed makes the first boot of every instance start its entropy pool from the same bytes.
//! None of these is a secret that grants access, so they are low (machine-id, random seed) or
//! info (leases).

use super::{CheckHit, CheckRule};
use crate::detect::registry::pattern::{self, Glob, glob};
use crate::report::Severity;

/// A machine-id baked into the image.
pub(crate) const MACHINE_ID_RULE: CheckRule = CheckRule {
    id: "machine-id-present",
    title: "machine-id baked into the image",
    severity: Severity::Low,
    remediation: "Empty /etc/machine-id before creating the image (`truncate -s 0 /etc/machine-id`, and remove /var/lib/dbus/machine-id or make it a symlink to it) so each instance generates its own on first boot.",
    suppresses: &[],
};

/// A DHCP lease from the build instance.
pub(crate) const DHCP_RULE: CheckRule = CheckRule {
    id: "dhcp-lease-present",
    title: "DHCP lease from the build instance",
    severity: Severity::Info,
    remediation: "Delete DHCP lease files (/var/lib/dhcp/*.leases, /var/lib/dhclient/*, /var/lib/NetworkManager/*.lease) before creating the image.",
    suppresses: &[],
};

/// A saved random seed.
pub(crate) const SEED_RULE: CheckRule = CheckRule {
    id: "random-seed-present",
    title: "Saved random seed shared by every instance",
    severity: Severity::Low,
    remediation: "Delete /var/lib/systemd/random-seed (or /var/lib/random-seed) before creating the image so instances do not start from the same entropy seed.",
    suppresses: &[],
};

/// What identity file a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MachineId,
    Lease,
    Seed,
}

/// The files this check reads, with what each is.
const SCOPED: [(Glob, Kind); 9] = [
    (glob("/etc/machine-id"), Kind::MachineId),
    (glob("/var/lib/dbus/machine-id"), Kind::MachineId),
    (glob("/var/lib/dhcp/*.{leases,lease}"), Kind::Lease),
    (glob("/var/lib/dhclient/*"), Kind::Lease),
    (glob("/var/lib/NetworkManager/*.lease"), Kind::Lease),
    (glob("/var/lib/wicked/lease*"), Kind::Lease),
    (glob("/var/lib/systemd/random-seed"), Kind::Seed),
    (glob("/var/lib/urandom/random-seed"), Kind::Seed),
    (glob("/var/lib/random-seed"), Kind::Seed),
];

/// The files this check reads.
pub(crate) const SCOPE: [Glob; SCOPED.len()] = pattern::globs(&SCOPED);

/// The kind of `path`, if any.
fn kind(path: &str) -> Option<Kind> {
    pattern::kind_of(&SCOPED, path)
}

/// Whether `path` is a machine-id, a DHCP lease or a random seed.
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::Identity)
}

/// Report a non-empty identity file (a machine-id of `uninitialized` is the intended state).
pub(crate) fn check(path: &str, data: &[u8]) -> Vec<CheckHit> {
    let content = data.trim_ascii();
    if content.is_empty() {
        return Vec::new();
    }
    let (rule, evidence) = match kind(path) {
        Some(Kind::MachineId) => {
            if content == b"uninitialized" {
                return Vec::new();
            }
            let valid = content.len() == 32 && content.iter().all(u8::is_ascii_hexdigit);
            let what = if valid {
                "a machine id"
            } else {
                "unexpected content"
            };
            (
                &MACHINE_ID_RULE,
                format!("{what} ({} bytes)", content.len()),
            )
        }
        Some(Kind::Lease) => {
            let n = memchr::memmem::find_iter(data, b"lease {").count();
            let evidence = if n > 0 {
                format!("{n} lease{}", if n == 1 { "" } else { "s" })
            } else {
                format!("{} bytes", data.len())
            };
            (&DHCP_RULE, evidence)
        }
        Some(Kind::Seed) => (&SEED_RULE, format!("{} bytes of seed", data.len())),
        None => return Vec::new(),
    };
    vec![CheckHit::file(rule, rule.severity, evidence, content)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_id() {
        // A systemd-style id made up for this test.
        let hits = check("/etc/machine-id", b"4b2e7c1d9f0a4e6b8c3d5f7a9b1c3e5d\n");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].rule, "machine-id-present");
        assert_eq!(hits[0].severity, Severity::Low);
        assert_eq!(hits[0].evidence, "a machine id (32 bytes)");
        assert!(check("/etc/machine-id", b"").is_empty());
        assert!(check("/etc/machine-id", b"uninitialized\n").is_empty());
        assert!(applies("/var/lib/dbus/machine-id"));
        assert!(!applies("/etc/machine-info"));
    }

    #[test]
    fn dhcp_leases() {
        // dhclient's lease format as written on an EC2 instance (documentation addresses).
        let lease = b"lease {\n  interface \"eth0\";\n  fixed-address 192.0.2.10;\n  option subnet-mask 255.255.255.0;\n  option routers 192.0.2.1;\n  option dhcp-lease-time 3600;\n  option domain-name \"ec2.internal\";\n  renew 2 2024/01/02 03:04:05;\n}\n";
        for p in [
            "/var/lib/dhcp/dhclient.eth0.leases",
            "/var/lib/dhclient/dhclient--eth0.lease",
            "/var/lib/NetworkManager/internal-6a1c-eth0.lease",
        ] {
            let hits = check(p, lease);
            assert_eq!(hits.len(), 1, "{p}");
            assert_eq!(hits[0].rule, "dhcp-lease-present");
            assert_eq!(hits[0].evidence, "1 lease");
        }
        // NetworkManager's internal client writes key=value lines.
        let nm = b"# This is private data. Do not parse.\nADDRESS=192.0.2.10\n";
        assert_eq!(
            check("/var/lib/NetworkManager/internal-x.lease", nm)[0].evidence,
            format!("{} bytes", nm.len())
        );
        assert!(!applies("/var/lib/NetworkManager/NetworkManager.state"));
    }

    #[test]
    fn random_seed() {
        let seed = [0x5au8; 512];
        let hits = check("/var/lib/systemd/random-seed", &seed);
        assert_eq!(hits[0].rule, "random-seed-present");
        assert_eq!(hits[0].evidence, "512 bytes of seed");
        assert!(applies("/var/lib/random-seed"));
        assert!(check("/var/lib/systemd/random-seed", b"").is_empty());
    }
}
