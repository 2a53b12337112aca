//! The registry's own invariants: every family is complete, every catalog file and code rule
//! has exactly one family, every sample is where its family looks and where `--quick` reads.

use super::*;
use crate::detect::Detector;
use crate::detect::catalog::BUILTIN_FILES;

#[test]
fn every_family_has_rules_a_scope_and_samples() {
    let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "family names are unique");
    for f in FAMILIES {
        assert!(f.globs().next().is_some(), "{}: no scope", f.name);
        assert!(!f.samples.is_empty(), "{}: no sample", f.name);
        match f.rules {
            Rules::Code(r) => assert!(!r.is_empty(), "{}: no rule", f.name),
            Rules::Catalog(file) => assert!(
                BUILTIN_FILES.iter().any(|(n, _)| *n == file),
                "{}: no catalog file {file}",
                f.name
            ),
        }
        for skip in f.quick_skips {
            assert!(
                matches!(f.rules, Rules::Code(r) if r.iter().any(|r| r.id == *skip)),
                "{}: skips a rule it does not have: {skip}",
                f.name
            );
        }
    }
}

#[test]
fn every_catalog_file_and_rule_has_one_family() {
    for (file, _) in BUILTIN_FILES {
        let n = FAMILIES
            .iter()
            .filter(|f| matches!(f.rules, Rules::Catalog(c) if c == *file))
            .count();
        assert_eq!(n, 1, "{file}");
    }
    let d = Detector::builtin().unwrap();
    for r in d.rules() {
        assert!(
            FAMILIES.iter().any(|f| f.name == r.family),
            "{}: family {}",
            r.id,
            r.family
        );
        assert!(!r.files.is_empty(), "{}", r.id);
    }
    let mut ids: Vec<&str> = code_rules().map(|r| r.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "a code rule in two families");
}

#[test]
fn samples_are_where_their_family_looks_and_quick_reads() {
    for f in FAMILIES {
        for s in f.samples {
            // A volume check's finding may be about a file it found through another (the
            // setuid files the package database does not own).
            assert!(
                f.matches(s) || f.reads == Reads::Volume,
                "{}: sample {s} outside its scope",
                f.name
            );
            match f.reads {
                Reads::Path(c) => assert_eq!(check_for(s), Some(c), "{s}"),
                Reads::Cred(c) => assert_eq!(cred_for(s), Some(c), "{s}"),
                Reads::Content | Reads::Volume => {}
            }
            if f.quick_reads() {
                assert!(quick_reads(s), "{}: --quick does not read {s}", f.name);
            }
        }
    }
}

/// What a check or a credential format applies to, `--quick` reads: the regression of issue
/// 14 (`.zhistory`, `.wget-hsts`, miners, user crontabs were judged by a full scan and never
/// read by a quick one).
#[test]
fn quick_reads_whatever_a_check_applies_to() {
    let paths = [
        "/home/a/.zhistory",
        "/root/.wget-hsts",
        "/tmp/xmrig",
        "/tmp/.x/XMRig",
        "/opt/m/pools.txt",
        "/var/spool/cron/crontabs/root",
        "/var/spool/cron/root",
        "/etc/cron.daily/x",
        "/usr/lib/systemd/system/evil.service",
        "/lib/systemd/system/multi-user.target.wants/evil.service",
        "/var/log/cloud-init.log",
        "/var/lib/cloud/instance/user-data.txt.i",
        "/var/lib/dhcp/dhclient.leases",
        "/var/lib/systemd/random-seed",
        "/Windows/System32/Sysprep/sysprep.inf",
        "/Windows/Panther/Unattend.XML",
        "/home/a/.config/git/credentials",
        "/home/a/.config/containers/auth.json",
        "/etc/kubernetes/pki/../admin.conf",
        "/srv/k/kubeconfig.yaml",
        "/usr/etc/npmrc",
        "/srv/TF/PROD.TFSTATE",
        "/opt/a/KEY.P12",
        "/Users/a/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/consolehost_history.txt",
    ];
    for p in paths {
        assert!(
            check_for(p).is_some() || cred_for(p).is_some(),
            "{p}: no family"
        );
        assert!(quick_reads(p), "{p}");
    }
    for f in FAMILIES.iter().filter(|f| f.quick_reads()) {
        for s in f.samples {
            assert!(quick_reads(s));
        }
    }
}

#[test]
fn templates_are_not_dotenv() {
    assert_eq!(cred_for("/srv/app/.env.production"), Some(CredFile::Dotenv));
    assert_eq!(cred_for("/srv/app/.env.EXAMPLE"), None);
    // Still read by --quick (a superset is harmless; the signatures see it).
    assert!(quick_reads("/srv/app/.env.example"));
}

#[test]
fn quick_dirs_are_the_anchored_patterns_directories() {
    let dirs = quick_dirs();
    for want in [
        ("/var/log", false),
        ("/var/spool/cron", true),
        ("/var/lib/cloud/instances", true),
        ("/etc", true),
        ("/lib/systemd/system", true),
    ] {
        assert!(
            dirs.iter().any(|(d, w)| d == want.0 && *w == want.1),
            "{want:?} in {dirs:?}"
        );
    }
    // Never a whole directory that holds much else (patterns name directories one by one).
    for broad in ["/", "/var", "/var/lib", "/usr", "/usr/lib", "/lib"] {
        assert!(
            !dirs.contains(&(broad.to_string(), true)),
            "{broad}: {dirs:?}"
        );
    }
    // The volume checks read by path: their directories are not walked for them.
    assert!(!dirs.iter().any(|(d, _)| d.starts_with("/var/lib/dpkg")));
}

#[test]
fn the_rules_listing_names_family_and_files() {
    let d = Detector::builtin().unwrap();
    let info = |id: &str| d.rules().iter().find(|r| r.id == id).unwrap().clone();
    let h = info("shell-history");
    assert_eq!(h.family, "shell-history");
    assert!(h.files.contains(".zhistory"), "{}", h.files);
    let k = info("pem-private-key");
    assert_eq!(
        (k.family.as_str(), k.kind),
        ("private-keys", RuleKind::Signature)
    );
    assert!(
        k.files.starts_with("any file; --quick reads *.pem"),
        "{}",
        k.files
    );
    let s = info("sshd-permit-root-login");
    assert!(s.files.contains("/etc/ssh/sshd_config"), "{}", s.files);
}

/// The compiled set and the patterns one by one agree, on the samples and on paths made to
/// probe the edges (case, empty components, depth, alternatives).
#[test]
fn the_compiled_set_matches_like_the_patterns() {
    assert!(COMPILED.is_some(), "the registry's patterns compile");
    let mut paths: Vec<String> = FAMILIES
        .iter()
        .flat_map(|f| f.samples.iter().map(|s| s.to_string()))
        .collect();
    for p in [
        "/",
        "/etc/cron.d/",
        "/etc//shadow",
        "/ETC/SHADOW",
        "/x/.SSH/authorized_keys",
        "/a/UNATTEND.xml",
        "/a/b/c/XMRIG",
        "/a/.env.",
        "/a/.env.Example",
        "/srv/x.TFSTATE.backup",
        "/etc/systemd/system/a/b/c/x.timer",
        "/etc/systemd/system/.service",
        "/var/lib/cloud/instances//user-data.txt",
        "/var/lib/cloud/instances/i-1/user-data",
        "/home/u/.config/containers/x/y/auth.json",
        "/containers/auth.json",
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/a/b/kubelet.conf",
        "/var/spool/cron/",
        "/var/spool/cron/a",
        "/.ssh/x",
        "/.ssh/",
        "/root/.ssh/known_hosts2",
        "/root/.ssh/known_hosts3",
        "/etc/ssh/ssh_host_key",
        "/etc/ssh/ssh_host__key",
        "/etc/ssh/ssh_host_rsa_key.pub",
        "/a/id_",
        "/a/{x}",
        "relative/.bash_history",
    ] {
        paths.push(p.to_string());
    }
    let compiled = COMPILED.as_ref().unwrap();
    for p in &paths {
        let hits = compiled.set.matches(p.as_bytes());
        let mut i = 0;
        for f in FAMILIES {
            for g in f.globs() {
                assert_eq!(
                    hits.matched(i),
                    g.matches(p),
                    "{p} against {}",
                    g.describe()
                );
                i += 1;
            }
        }
    }
}

// Moved from the checks, the credential files and the catalog, whose tests may not import the
// registry that imports them (tests/it/module_cycles.rs).

#[test]
fn paths_map_to_one_family() {
    assert_eq!(check_for("/etc/ssh/ssh_host_rsa_key"), Some(Check::HostKey));
    assert_eq!(check_for("/etc/ssh/ssh_host_rsa_key.pub"), None);
    assert_eq!(check_for("/ProgramData/ssh/ssh_host_rsa_key.pub"), None);
    assert_eq!(
        check_for("/home/ec2-user/.ssh/authorized_keys"),
        Some(Check::AuthorizedKeys)
    );
    assert_eq!(check_for("/root/.bash_history"), Some(Check::History));
    assert_eq!(check_for("/etc/shadow"), Some(Check::Shadow));
    assert_eq!(check_for("/etc/passwd"), Some(Check::Shadow));
    assert_eq!(check_for("/etc/group"), None);
    assert_eq!(check_for(""), None);
}

#[test]
fn every_check_rule_has_a_title_and_remediation() {
    for r in code_rules() {
        assert!(!r.title.is_empty(), "{}", r.id);
        assert!(!r.remediation.is_empty(), "{}", r.id);
    }
}

#[test]
fn new_families_are_routed() {
    for (p, c) in [
        ("/etc/passwd", Check::Shadow),
        ("/root/.viminfo", Check::EditorHistory),
        ("/root/.ssh/known_hosts", Check::KnownHosts),
        ("/etc/cloud/cloud.cfg", Check::CloudInit),
        ("/etc/machine-id", Check::Identity),
        ("/etc/ld.so.preload", Check::Autostart),
        ("/etc/cron.d/x", Check::Autostart),
        ("/tmp/xmrig", Check::Miner),
        ("/Windows/Panther/unattend.xml", Check::Unattend),
        ("/windows/panther/Unattend.XML", Check::Unattend),
        ("/ProgramData/ssh/ssh_host_ed25519_key", Check::HostKey),
        ("/programdata/SSH/ssh_host_rsa_key", Check::HostKey),
        (
            "/ProgramData/ssh/administrators_authorized_keys",
            Check::AuthorizedKeys,
        ),
        ("/Users/alice/.ssh/authorized_keys", Check::AuthorizedKeys),
        (
            "/Users/Administrator/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt",
            Check::History,
        ),
        (
            "/users/bob/appdata/roaming/microsoft/windows/powershell/psreadline/consolehost_history.txt",
            Check::History,
        ),
    ] {
        assert_eq!(check_for(p), Some(c), "{p}");
    }
}

#[test]
fn check_ids_are_unique() {
    let mut ids: Vec<&str> = code_rules().map(|r| r.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n);
}

#[test]
fn paths_name_formats() {
    for (p, f) in [
        ("/root/.git-credentials", CredFile::GitCredentials),
        ("/home/a/.config/git/credentials", CredFile::GitCredentials),
        ("/root/.netrc", CredFile::Netrc),
        ("/var/lib/postgresql/.pgpass", CredFile::Pgpass),
        ("/root/.my.cnf", CredFile::MyCnf),
        ("/etc/mysql/debian.cnf", CredFile::MyCnf),
        ("/root/.docker/config.json", CredFile::Docker),
        ("/run/containers/0/auth.json", CredFile::Docker),
        ("/home/u/.kube/config", CredFile::Kubeconfig),
        ("/etc/kubernetes/admin.conf", CredFile::Kubeconfig),
        ("/home/u/.npmrc", CredFile::Npmrc),
        ("/root/.pypirc", CredFile::Pypirc),
        ("/var/www/html/wp-config.php", CredFile::WpConfig),
        ("/srv/app/.env", CredFile::Dotenv),
        ("/srv/app/.env.production", CredFile::Dotenv),
        ("/srv/infra/terraform.tfstate", CredFile::TfState),
        ("/srv/infra/terraform.tfstate.backup", CredFile::TfState),
        ("/root/.aws/credentials", CredFile::Aws),
        ("/root/.aws/config", CredFile::Aws),
        ("/Users/alice/.aws/credentials", CredFile::Aws),
        ("/users/ALICE/.AWS/Credentials", CredFile::Aws),
        ("/opt/app/keystore.P12", CredFile::Pkcs12),
    ] {
        assert_eq!(cred_for(p), Some(f), "{p}");
    }
    for p in [
        "/srv/app/.env.example",
        "/srv/app/.env.sample",
        "/etc/kubernetes/manifests/kube-apiserver.yaml",
        "/usr/share/doc/git/credentials",
        "/root/config.json",
        "/root/.config",
        "",
    ] {
        assert_eq!(cred_for(p), None, "{p}");
    }
}

#[test]
fn rule_ids_are_unique_and_distinct_from_checks() {
    let mut ids: Vec<&str> = code_rules().map(|r| r.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n);
}

#[test]
fn the_embedded_catalog_compiles() {
    let (sigs, problems) = crate::detect::catalog::compile(BUILTIN_FILES, &reserved_ids());
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        sigs.iter().all(|s| !s.secret_groups.is_empty()),
        "every builtin rule names its secret"
    );
}

/// The places issue 15 names for `--quick` on Windows (users' credential files, ProgramData,
/// Panther, the hives, the tasks, inetpub, Program Files' configuration), as Windows spells
/// them: a quick scan reads each through the registry of file rules, whatever its case. (The
/// hives under `System32/config` are read by path by the windows-hives volume check, in
/// `--quick` too: tests/it/windows.rs.)
#[test]
fn quick_reads_the_windows_credential_places_of_issue_15() {
    let missing: Vec<&str> = [
        "/Users/alice/.aws/credentials",
        "/Users/alice/.ssh/id_ed25519",
        "/Users/alice/.docker/config.json",
        "/Users/alice/.git-credentials",
        "/Users/alice/.azure/msal_token_cache.json",
        "/Users/alice/AppData/Roaming/gcloud/application_default_credentials.json",
        "/Users/alice/AppData/Roaming/gcloud/credentials.db",
        "/Users/alice/Documents/jump.rdp",
        "/Users/alice/Desktop/Jump.RDP",
        "/Users/alice/AppData/Roaming/FileZilla/sitemanager.xml",
        "/Users/alice/AppData/Roaming/FileZilla/recentservers.xml",
        "/Users/alice/AppData/Roaming/WinSCP.ini",
        "/Program Files (x86)/WinSCP/WinSCP.ini",
        "/Users/Administrator/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt",
        "/ProgramData/ssh/ssh_host_ed25519_key",
        "/ProgramData/ssh/administrators_authorized_keys",
        "/ProgramData/Amazon/EC2Launch/config/agent-config.yml",
        "/Windows/Panther/unattend.xml",
        "/Windows/Panther/Unattend/Unattend.xml",
        "/autounattend.xml",
        "/Windows/System32/Tasks/Updater",
        "/inetpub/wwwroot/web.config",
        "/inetpub/wwwroot/Web.config",
        "/inetpub/wwwroot/appsettings.Production.json",
        "/Windows/System32/inetsrv/config/applicationHost.config",
        "/Program Files/App/appsettings.json",
        "/Program Files/App/App.exe.config",
        "/Program Files/App/Web.config",
    ]
    .into_iter()
    .filter(|p| !quick_reads(p))
    .collect();
    assert!(missing.is_empty(), "--quick does not read {missing:#?}");
}

#[test]
fn windows_places_name_directories_and_match_nothing_more() {
    // A place matches only what another pattern of its family matches anyway.
    for f in FAMILIES {
        let others: Vec<&Glob> = f.globs().filter(|g| !g.place()).collect();
        for place in f.globs().filter(|g| g.place()) {
            let (dir, whole) = place.fixed_dir().unwrap();
            assert!(whole, "{}", place.describe());
            for name in [
                "web.config",
                "Web.Config",
                "appsettings.Production.json",
                "Tool.exe.config",
                "unattend.xml",
                "Autounattend.xml",
                "sysprep.inf",
                "notes.txt",
                "x.config",
            ] {
                for path in [format!("{dir}/{name}"), format!("{dir}/a/B/{name}")] {
                    if place.matches(&path) {
                        assert!(others.iter().any(|g| g.matches(&path)), "{path}");
                    }
                }
            }
        }
    }
    // They are walked on Windows volumes, not on Linux roots.
    let linux = quick_dirs();
    let windows = quick_dirs_windows();
    for place in [
        "/Windows/Panther",
        "/Windows/System32/Sysprep",
        "/inetpub",
        "/Program Files",
        "/Program Files (x86)",
        "/ProgramData",
    ] {
        assert!(
            windows.contains(&(place.to_string(), true)),
            "{place}: {windows:?}"
        );
        assert!(!linux.iter().any(|(d, _)| d == place), "{place}: {linux:?}");
    }
    // The hives' and the WMI repository's directories too (volume checks); only Windows
    // patterns, never a broad directory.
    assert!(windows.contains(&("/Windows/System32/config".to_string(), false)));
    assert!(windows.contains(&("/Windows/System32/wbem/Repository".to_string(), false)));
    for broad in ["/", "/Windows", "/Windows/System32", "/etc"] {
        assert!(
            !windows.iter().any(|(d, _)| d == broad),
            "{broad}: {windows:?}"
        );
    }
}
