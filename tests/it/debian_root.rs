//! A real distribution tree: a Debian bookworm root made by `debootstrap` (with openssh-server,
//! sudo, ssl-cert, python3, cron, curl), turned into an ext4 image by `mke2fs -d`. The stock tree
//! must give exactly the findings a publisher has to act on (the SSH host keys, the snakeoil TLS
//! key, and sshd's password authentication left at OpenSSH's default), and after the cleanup AWS's
//! shared-AMI guidance prescribes, no finding at medium or above.
//!
//! The tree is built once into `$CARGO_TARGET_TMPDIR/debian-root` (or taken from
//! `AMISCAN_DEBIAN_ROOT`); `.ci/run` installs debootstrap. A failed debootstrap fails the test.

use crate::common::{bash, nonzero_blocks, run, scan_json_unchecked, scan_recorded};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn sh(script: &str) {
    run(&mut bash(script));
}

fn root() -> &'static Path {
    static R: OnceLock<PathBuf> = OnceLock::new();
    R.get_or_init(|| {
        if let Some(p) = std::env::var_os("AMISCAN_DEBIAN_ROOT") {
            return PathBuf::from(p);
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debian-root");
        if !dir.join(".complete").exists() {
            let _ = std::fs::remove_dir_all(&dir);
            sh(&format!(
                "debootstrap --variant=minbase --include=openssh-server,sudo,ssl-cert,python3,cron,curl \
                 bookworm '{d}' http://deb.debian.org/debian >/dev/null && touch '{d}/.complete'",
                d = dir.display()
            ));
        }
        dir
    })
}

fn image(tree: &Path, img: &Path) {
    sh(&format!(
        "mke2fs -q -t ext4 -d '{}' -F '{}' 1500M",
        tree.display(),
        img.display()
    ));
}

fn at_least_medium(t: &Value) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for f in t["findings"].as_array().unwrap() {
        if matches!(f["severity"].as_str(), Some("critical" | "high" | "medium")) {
            *m.entry((
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap_or("").to_string(),
            ))
            .or_insert(0) += 1;
        }
    }
    m
}

fn counts(t: &Value) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in t["findings"].as_array().unwrap() {
        *m.entry(f["severity"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

#[test]
fn stock_debian_root_gives_exactly_what_a_publisher_must_fix_and_nothing_after_cleanup() {
    let tree = root();
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();

    let stock = work.path().join("stock.img");
    image(tree, &stock);
    let (code, t) = scan_json_unchecked(&stock, &[]);
    eprintln!("stock Debian root, findings by severity: {:?}", counts(&t));
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(code, 1);
    let want: BTreeMap<(String, String), usize> = [
        ("tls-snakeoil-key", "/etc/ssl/private/ssl-cert-snakeoil.key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_ecdsa_key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_ed25519_key"),
        ("ssh-host-private-key", "/etc/ssh/ssh_host_rsa_key"),
        ("sshd-password-authentication", "/etc/ssh/sshd_config"),
    ]
    .into_iter()
    .map(|(r, p)| ((r.to_string(), p.to_string()), 1))
    .collect();
    assert_eq!(at_least_medium(&t), want);
    // Nothing in between: the rest are info-level notes (published self-test keys in libgnutls,
    // documentation examples).
    assert_eq!(counts(&t).get("low"), None, "{:?}", counts(&t));

    // --quick finds the same things a publisher must fix (they all live in /etc) and reads under
    // a tenth of the image's non-zero 512 KiB blocks: what an EBS snapshot of this root lists.
    let (code, q) = scan_json_unchecked(&stock, &["--quick"]);
    assert_eq!((code, &q["complete"]), (1, &Value::Bool(true)), "{q:#}");
    assert_eq!(at_least_medium(&q), want);
    let listed = nonzero_blocks(&stock);
    let (report, read) = scan_recorded(&stock, true);
    assert!(report.complete);
    let read = read.intersection(&listed).count();
    eprintln!(
        "--quick read {read} of {} listed 512 KiB blocks",
        listed.len()
    );
    assert!(
        read * 10 < listed.len(),
        "--quick read {read} of {} blocks",
        listed.len()
    );

    // The cleanup AWS's shared-AMI guidance prescribes before sharing: no host keys (they are
    // regenerated on first boot), no per-machine TLS key, password logins off, no machine
    // identity, no histories, no cloud-init state.
    let clean = work.path().join("clean-tree");
    sh(&format!(
        "cp -a '{src}' '{dst}'
         rm -f '{dst}'/etc/ssh/ssh_host_*
         rm -f '{dst}'/etc/ssl/private/ssl-cert-snakeoil.key '{dst}'/etc/ssl/certs/ssl-cert-snakeoil.pem
         mkdir -p '{dst}'/etc/ssh/sshd_config.d
         printf 'PasswordAuthentication no\\nKbdInteractiveAuthentication no\\nPermitRootLogin prohibit-password\\n' \
           > '{dst}'/etc/ssh/sshd_config.d/00-shared-ami.conf
         : > '{dst}'/etc/machine-id
         rm -f '{dst}'/root/.bash_history '{dst}'/var/lib/systemd/random-seed
         rm -rf '{dst}'/var/lib/cloud",
        src = tree.display(),
        dst = clean.display()
    ));
    let cleaned = work.path().join("clean.img");
    image(&clean, &cleaned);
    let (code, t) = scan_json_unchecked(&cleaned, &[]);
    eprintln!("after cleanup, findings by severity: {:?}", counts(&t));
    assert_eq!(t["complete"], true);
    assert!(at_least_medium(&t).is_empty(), "{:#?}", at_least_medium(&t));
    assert_eq!(code, 0);
}
