//! The check against the real sshd: `sshd -T -f FILE -C user=…,addr=…` prints the configuration
//! sshd would apply to one connection. For sample configurations full of `Match` blocks and a set
//! of connections, the check's own per-connection reading must give the values sshd prints, every
//! insecure value sshd applies to a connection must be a finding at the line that set it, and
//! every finding must be a line some connection gets.
//!
//! Needs `sshd` (Debian: `openssh-server`, installed by `.ci/run`) and `ssh-keygen`.

use super::criteria::Conn;
use super::*;
use crate::detect::lookup::MemLookup;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The sshd binary.
fn sshd() -> PathBuf {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("sshd not found: install openssh-server (see .ci/run)")
}

/// Run `cmd`, panic on failure, return stdout.
fn output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A connection for the test: user, address, host name, local address, local port, rdomain.
type Spec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u16,
    &'static str,
);

const CONNECTIONS: &[Spec] = &[
    ("root", "10.1.2.3", "h.internal", "10.0.0.5", 22, "default"),
    ("root", "10.9.1.1", "h.internal", "10.0.0.5", 22, "default"),
    (
        "alice",
        "10.1.2.3",
        "h.internal",
        "10.0.0.5",
        2222,
        "default",
    ),
    (
        "alice",
        "192.168.1.1",
        "x.example.com",
        "10.0.0.5",
        22,
        "default",
    ),
    (
        "bob",
        "203.0.113.5",
        "h.internal",
        "127.0.0.1",
        22,
        "default",
    ),
    ("root", "203.0.113.5", "h.internal", "10.0.0.5", 22, "vrf1"),
    ("nobody", "1.2.3.4", "h.internal", "10.0.0.5", 22, "default"),
    (
        "daemon",
        "10.9.0.1",
        "h.internal",
        "10.0.0.5",
        2222,
        "default",
    ),
    (
        "deploy",
        "172.16.0.1",
        "h.internal",
        "10.0.0.5",
        22,
        "default",
    ),
    (
        "root",
        "203.0.113.9",
        "a.example.com",
        "10.0.0.5",
        22,
        "default",
    ),
    (
        "bob",
        "192.168.5.5",
        "h.internal",
        "10.0.0.5",
        22,
        "default",
    ),
];

/// Sample A: a main file with blocks of every kind, drop-ins with blocks, a nested include.
const SAMPLE_A: &[(&str, &str)] = &[
    (
        "sshd_config",
        "PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
PermitRootLogin prohibit-password
Include {dir}/conf.d/*.conf
Match User root Address 10.0.0.0/8
  PermitRootLogin yes
Match Address 10.0.0.0/8,!10.9.0.0/16
  PasswordAuthentication yes
Match User !root
  PermitEmptyPasswords yes
Match User *,!root LocalPort 2222
  KbdInteractiveAuthentication yes
Match Group daemon,nogroup
  PermitEmptyPasswords yes
Match Host *.example.com
  Include {dir}/nested.conf
  PermitRootLogin yes
Match all
  PasswordAuthentication no
Match Address 192.168.*
  PasswordAuthentication yes
Match LocalAddress 127.0.0.1
  ChallengeResponseAuthentication yes
  PermitRootLogin yes
",
    ),
    (
        "conf.d/40-deploy.conf",
        "Match User deploy\n  PasswordAuthentication yes\n",
    ),
    (
        "conf.d/50-vrf.conf",
        "Match RDomain vrf1\n  PermitRootLogin yes\n",
    ),
    (
        "nested.conf",
        "PermitEmptyPasswords yes\nMatch User alice\n  PasswordAuthentication yes\n",
    ),
];

/// Sample B: insecure global values, one overridden by an early `Match all`.
const SAMPLE_B: &[(&str, &str)] = &[(
    "sshd_config",
    "PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
Match Address 10.0.0.0/8
  PermitRootLogin no
Match all
  PasswordAuthentication no
Match User root
  PasswordAuthentication yes
",
)];

/// The keywords compared, with OpenSSH's defaults as `sshd -T` prints them.
const KEYS: &[(&str, &str)] = &[
    ("passwordauthentication", "yes"),
    ("kbdinteractiveauthentication", "yes"),
    ("permitrootlogin", "without-password"),
    ("permitemptypasswords", "no"),
    ("usepam", "no"),
];

/// A value as `sshd -T` prints it.
fn printed(value: &str) -> String {
    match value {
        "prohibit-password" => "without-password".to_string(),
        v => v.to_string(),
    }
}

/// The groups of `user` on this machine (none when there is no such user, as for sshd).
fn groups(user: &str) -> Vec<String> {
    Command::new("id")
        .args(["-Gn", user])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn compare(name: &str, sample: &[(&str, &str)]) {
    // sshd -T refuses to start without its privilege-separation directory, which a booted
    // system creates at boot (the tests run as root in CI).
    if !Path::new("/run/sshd").is_dir() {
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd for sshd -T");
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let key = dir.path().join("hostkey");
    output(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    let mut lookup = MemLookup::new();
    for (file, text) in sample {
        let text = text.replace("{dir}", &d);
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        let inside = if *file == "sshd_config" {
            MAIN.to_string()
        } else {
            format!("{d}/{file}")
        };
        lookup = lookup.file(&inside, text.as_str());
    }
    let mut cfg = Config::default();
    cfg.read(&lookup, MAIN, None, 0).unwrap();
    let findings = check(&lookup).unwrap();
    let mut used = HashSet::new();

    for &(user, addr, host, laddr, lport, rdomain) in CONNECTIONS {
        let spec = format!(
            "user={user},host={host},addr={addr},laddr={laddr},lport={lport},rdomain={rdomain}"
        );
        let text = output(
            Command::new(sshd())
                .arg("-T")
                .arg("-f")
                .arg(Path::new(&d).join("sshd_config"))
                .arg("-h")
                .arg(&key)
                .arg("-C")
                .arg(&spec),
        );
        let sshd_says = |k: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(' ').map(str::to_string))
                .unwrap_or_else(|| panic!("{name} {spec}: sshd -T printed no {k}"))
        };
        let owned = groups(user);
        let group_refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let conn = Conn {
            user,
            groups: &group_refs,
            host,
            addr,
            laddr,
            lport,
            rdomain,
        };
        for &(k, default) in KEYS {
            let ours = if k == "usepam" {
                cfg.global.get(k)
            } else {
                cfg.for_conn(k, &conn)
            };
            let ours = ours.map_or(default.to_string(), |s| printed(&s.value));
            assert_eq!(ours, sshd_says(k), "{name} {spec}: {k}");
        }
        let yes = |k: &str| sshd_says(k) == "yes";
        let at = |k: &str| {
            cfg.for_conn(k, &conn)
                .map_or((MAIN.to_string(), None), |s| (s.path.clone(), Some(s.line)))
        };
        let insecure = [
            (
                PASSWORD_RULE.id,
                yes("passwordauthentication"),
                at("passwordauthentication"),
            ),
            (
                KBD_RULE.id,
                yes("usepam") && yes("kbdinteractiveauthentication"),
                at("kbdinteractiveauthentication"),
            ),
            (ROOT_RULE.id, yes("permitrootlogin"), at("permitrootlogin")),
            (
                EMPTY_RULE.id,
                yes("permitemptypasswords"),
                at("permitemptypasswords"),
            ),
        ];
        for (rule, bad, (path, line)) in insecure {
            if !bad {
                continue;
            }
            assert!(
                findings
                    .iter()
                    .any(|(p, h)| h.rule == rule && *p == path && h.line == line),
                "{name} {spec}: sshd applies {rule} from {path}:{line:?}, no finding there: {findings:#?}"
            );
            used.insert((rule, path, line));
        }
    }
    for (p, h) in &findings {
        assert!(
            used.contains(&(h.rule, p.clone(), h.line)),
            "{name}: no tested connection gets {} at {p}:{:?} ({})",
            h.rule,
            h.line,
            h.evidence
        );
    }
}

#[test]
fn match_blocks_judged_like_sshd_t() {
    compare("sample A", SAMPLE_A);
    compare("sample B", SAMPLE_B);
}
