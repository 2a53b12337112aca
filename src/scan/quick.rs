//! `--quick`: the well-known places where secrets and insecure defaults live. A quick scan walks
//! only the directories of [`Scope`] (`/etc`, `/root`, `/home`, the home directories
//! `/etc/passwd` names, `/usr/local`, `/opt`, `/srv`, the temporary directories, ...), the
//! fixed directories of the rule families' anchored patterns (`/var/log` for cloud-init's logs,
//! `/var/lib/dhcp`, the systemd unit directories, ...) and the directories on the way to them,
//! and reads only the files some rule family declares in the file-rule registry
//! ([`crate::detect::registry`]): the registry, not this file, says what a quick scan reads.
//! `/usr` (but `/usr/local` and the unit directories), `/var/lib/dpkg`, `/var/cache`, ... are
//! never entered, so a quick scan of an EBS snapshot fetches a small part of its blocks.
//! A Windows volume (`Windows\System32`, no `/etc`) has no hand-kept roots: a quick scan walks
//! the directories of the registry's Windows patterns ([`registry::quick_dirs_windows`]: the
//! profiles, `ProgramData`, `Windows\Panther`, `System32\config` and `Tasks`, `inetpub`,
//! `Program Files`, ...), compared without case, and the directories on the way to them.
//! The default (full) scan walks and reads everything.

use crate::detect::registry;

/// Directories a quick scan walks entirely (every subdirectory, at any depth).
const WALK_ROOTS: &[&str] = &[
    "/etc",
    "/root",
    "/home",
    "/usr/local",
    "/opt",
    "/srv",
    "/tmp",
    "/var/tmp",
    "/var/www",
    "/var/backups",
    "/var/spool/cron",
    "/var/lib/cloud",
    "/var/lib/waagent",
];

/// Home directories in `/etc/passwd` that a quick scan does not walk: system directories
/// (`/bin`, `/usr/sbin`, `/run/sshd`, ...) where service accounts point, never user data.
const NOT_HOMES: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/var/run",
    "/nonexistent",
    "/var/empty",
    "/boot",
];

/// Most home directories taken from `/etc/passwd` (a hostile file cannot widen the walk
/// without bound).
const MAX_HOMES: usize = 256;

/// Where a quick scan looks: the directories it walks, and which of their files it reads.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Directories walked whole.
    roots: Vec<Vec<u8>>,
    /// Directories whose own entries are listed (not their subdirectories): where the
    /// registry names files directly (`/var/log/cloud-init*.log*`, `/var/lib/systemd/random-seed`).
    listed: Vec<Vec<u8>>,
    /// Walk every directory (a volume that is not a root filesystem).
    everything: bool,
    /// Compare directories without ASCII case (a Windows volume, as Windows does).
    nocase: bool,
}

/// `path` is `dir` or inside it.
fn within(path: &[u8], dir: &[u8]) -> bool {
    dir == b"/"
        || path.starts_with(dir) && (path.len() == dir.len() || path.get(dir.len()) == Some(&b'/'))
}

/// [`within`], letters compared without ASCII case.
fn within_nocase(path: &[u8], dir: &[u8]) -> bool {
    dir == b"/"
        || path
            .get(..dir.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(dir))
            && (path.len() == dir.len() || path.get(dir.len()) == Some(&b'/'))
}

impl Scope {
    /// The fixed roots plus the home directories of `passwd` (the volume's `/etc/passwd`, when
    /// it has one): service accounts keep keys and histories in theirs (`/var/lib/jenkins`,
    /// `/var/lib/postgresql`).
    ///
    /// `real` resolves a directory path inside the volume, following symbolic links (`/home ->
    /// data/home`): where it leads elsewhere, that directory is walked too, as the walk itself
    /// never follows links.
    pub fn new(passwd: Option<&[u8]>, real: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Scope {
        let mut roots: Vec<Vec<u8>> = WALK_ROOTS.iter().map(|r| r.as_bytes().to_vec()).collect();
        let mut listed: Vec<Vec<u8>> = Vec::new();
        for (dir, whole) in registry::quick_dirs() {
            let dir = dir.into_bytes();
            if roots.iter().any(|r| within(&dir, r)) {
                continue;
            }
            if whole {
                roots.retain(|r| !within(r, &dir));
                roots.push(dir);
            } else {
                listed.push(dir);
            }
        }
        listed.retain(|l| !roots.iter().any(|r| within(l, r)));
        let fixed = roots.len();
        let homes = passwd
            .unwrap_or_default()
            .split(|&b| b == b'\n')
            .filter_map(|line| line.split(|&b| b == b':').nth(5))
            .map(normalize)
            .filter(|h| {
                h.len() > 1
                    && (within(h, b"/usr/local")
                        || !NOT_HOMES.iter().any(|n| within(h, n.as_bytes())))
            });
        for h in homes {
            if roots.len() >= fixed + MAX_HOMES {
                break;
            }
            if !roots.iter().any(|r| within(&h, r)) {
                roots.push(h);
            }
        }
        let named = roots.len();
        for i in 0..named {
            let Some(target) = roots.get(i).and_then(|r| real(r)) else {
                continue;
            };
            if target.len() > 1 && !roots.iter().any(|r| within(&target, r)) {
                roots.push(target);
            }
        }
        for i in 0..listed.len() {
            let Some(target) = listed.get(i).and_then(|l| real(l)) else {
                continue;
            };
            if target.len() > 1
                && !roots.iter().any(|r| within(&target, r))
                && !listed.contains(&target)
            {
                listed.push(target);
            }
        }
        Scope {
            roots,
            listed,
            everything: false,
            nocase: false,
        }
    }

    /// The scope of a Windows volume (`Windows\System32` at its root, no `/etc`): only the
    /// places the registry's Windows patterns name ([`registry::quick_dirs_windows`]: the
    /// profiles under `Users`, `ProgramData`, `Windows\Panther`, `System32\config` and `Tasks`,
    /// `inetpub`, `Program Files`, ...) and the directories on the way to them, compared
    /// without case. `WinSxS`, the rest of `System32` and whatever else the volume holds are
    /// not entered. Links are not resolved: Windows junctions name absolute Windows paths
    /// (often of another volume), and resolving each root cost an EBS scan of the test disk a
    /// block more (18 fetched instead of 17).
    pub fn windows() -> Scope {
        let mut roots: Vec<Vec<u8>> = Vec::new();
        let mut listed: Vec<Vec<u8>> = Vec::new();
        let dirs = registry::quick_dirs_windows();
        // Whole directories first, so a directory inside one is not kept on its own.
        for (dir, _) in dirs.iter().filter(|(_, whole)| *whole) {
            let dir = dir.as_bytes();
            if !roots.iter().any(|r| within_nocase(dir, r)) {
                roots.retain(|r| !within_nocase(r, dir));
                roots.push(dir.to_vec());
            }
        }
        for (dir, _) in dirs.iter().filter(|(_, whole)| !*whole) {
            let dir = dir.as_bytes();
            if !roots.iter().any(|r| within_nocase(dir, r)) && !listed.iter().any(|l| l == dir) {
                listed.push(dir.to_vec());
            }
        }
        Scope {
            roots,
            listed,
            everything: false,
            nocase: true,
        }
    }

    /// The scope of a volume that is not a root filesystem (no `/etc`): a separate `/home`,
    /// `/var` or `/opt` partition, whose paths do not start with the places a root
    /// filesystem has them under. Every directory is walked (metadata only), and the
    /// well-known names are read wherever they are.
    pub fn everything() -> Scope {
        Scope {
            roots: vec![b"/".to_vec()],
            listed: Vec::new(),
            everything: true,
            nocase: false,
        }
    }

    /// Whether the walk lists directory `dir`: a root, inside one, a listed directory, or on
    /// the way to one.
    pub fn lists(&self, dir: &[u8]) -> bool {
        let within = if self.nocase { within_nocase } else { within };
        self.everything
            || self.roots.iter().any(|r| within(dir, r) || within(r, dir))
            || self.listed.iter().any(|l| within(l, dir))
    }

    /// Whether a quick scan reads the file at `path` (absolute, inside the volume): the
    /// registry's families have it in their scope ([`registry::quick_reads`]).
    pub fn reads(&self, path: &[u8]) -> bool {
        registry::quick_reads(&String::from_utf8_lossy(path))
    }

    /// The directories walked entirely.
    pub fn roots(&self) -> impl Iterator<Item = String> + '_ {
        self.roots
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
    }
}

/// `path` made absolute, with `.`, `..` (lexically: it removes the component before it) and
/// empty components resolved, and without a trailing `/`.
fn normalize(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The roots walked whatever `/etc/passwd` says.
    fn fixed_roots() -> usize {
        let s = Scope::new(None, &|p| Some(p.to_vec()));
        assert!(s.roots().count() >= WALK_ROOTS.len());
        s.roots().count()
    }

    #[test]
    fn well_known_paths_are_read() {
        for p in [
            "/root/.ssh/id_rsa",
            "/home/alice/.ssh/authorized_keys",
            "/etc/ssh/sshd_config",
            "/etc/ssh/sshd_config.d/50-cloud-init.conf",
            "/etc/ssh/ssh_host_ed25519_key",
            "/root/.bash_history",
            "/home/a/.local/share/fish/fish_history",
            "/etc/shadow",
            "/etc/passwd",
            "/etc/sudoers",
            "/etc/sudoers.d/90-cloud-init-users",
            "/etc/cloud/cloud.cfg",
            "/var/lib/cloud/instance/user-data.txt",
            "/home/alice/.aws/credentials",
            "/root/.git-credentials",
            "/root/.netrc",
            "/var/lib/postgresql/.pgpass",
            "/root/.my.cnf",
            "/root/.docker/config.json",
            "/home/u/.kube/config",
            "/srv/app/kubeconfig",
            "/home/u/.npmrc",
            "/home/u/.pypirc",
            "/srv/app/.env",
            "/srv/app/.env.production",
            "/var/www/html/wp-config.php",
            "/infra/prod.tfstate",
            "/opt/app/tls/server.pem",
            "/opt/app/tls/server.key",
            "/tmp/id_deploy",
            // What the hand-kept lists read before the registry, wherever it is.
            "/var/backups/shadow",
            "/srv/old/sudoers",
            "/opt/x/authorized_keys",
            "/root/fish_history",
            "/srv/app/prod.env",
            "/home/u/vault.kdbx",
            "/root/.vault-token",
            "/home/u/.terraform.d/credentials.tfrc.json",
            "/home/u/.config/gh/hosts.yml",
            "/Windows/Panther/unattend.xml",
            "/Users/a/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt",
        ] {
            assert!(Scope::everything().reads(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn ordinary_files_are_not() {
        for p in [
            "/usr/bin/ls",
            "/usr/share/doc/awscli/example.txt",
            "/var/log/big.log",
            "/opt/app/main.py",
            "/etc.bak/ssh/notes",
            "/home/u/.bashrc",
        ] {
            assert!(!Scope::everything().reads(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn the_walk_covers_the_roots_their_ancestors_and_passwd_homes() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
jenkins:x:990:990::/var/lib/jenkins/:/bin/bash\n\
pg:x:991:991::/var/lib/../lib/postgresql:/bin/bash\n\
weird:x:992:992::/:/bin/sh\n\
app:x:993:993::/usr/local/app:/bin/sh\n\
games:x:5:60:games:/usr/games:/usr/sbin/nologin\n\
broken line without fields\n";
        let links = |p: &[u8]| match p {
            b"/home" => Some(b"/data/users".to_vec()),
            b"/opt" => Some(b"/".to_vec()),
            b"/srv" => Some(b"/etc/srv".to_vec()),
            other => Some(other.to_vec()),
        };
        let s = Scope::new(Some(passwd), &links);
        // A symlinked root is walked where it leads (not when that is `/`, or already walked).
        assert!(s.lists(b"/data/users/bob/.ssh"));
        assert!(!s.roots().any(|r| r == "/" || r == "/etc/srv"));
        for d in [
            "/",
            "/etc",
            "/etc/ssh",
            "/root/.ssh",
            "/home",
            "/home/a/.aws",
            "/var",
            "/var/lib",
            "/var/lib/jenkins",
            "/var/lib/jenkins/.ssh",
            "/var/lib/postgresql",
            "/usr",
            "/usr/local/app",
            "/var/spool",
            "/var/spool/cron/crontabs",
            "/var/lib/cloud/instance",
            "/opt/app/config",
            "/tmp/x",
        ] {
            assert!(s.lists(d.as_bytes()), "{d}");
        }
        for d in [
            "/usr/bin",
            "/usr/share/doc",
            "/usr/sbin",
            "/usr/games",
            "/var/lib/dpkg",
            "/var/cache",
            "/var/lib/jenkinsx",
            "/run/sshd",
            "/nonexistent",
            "/boot",
            "/var/spool/mail",
            "/lib/modules",
            "/usr/lib/x86_64-linux-gnu",
            "/var/log/journal",
            "/var/lib/systemd/coredump",
        ] {
            assert!(!s.lists(d.as_bytes()), "{d}");
        }
        assert!(s.roots().any(|r| r == "/var/lib/postgresql"));
        assert!(!s.roots().any(|r| r == "/"));
        // Every file of /etc is read; elsewhere only the well-known ones.
        assert!(s.reads(b"/etc/cron.d/job"));
        assert!(s.reads(b"/var/lib/jenkins/.ssh/id_rsa"));
        assert!(!s.reads(b"/var/lib/jenkins/jobs/x/config.xml"));
        assert!(!s.reads(b"/etcetera/file"));
        // The registry's directories: walked whole, or only listed.
        for d in [
            "/var/log",
            "/var/lib/dhcp",
            "/var/lib/systemd",
            "/lib/systemd/system",
        ] {
            assert!(s.lists(d.as_bytes()), "{d}");
        }
        assert!(s.reads(b"/var/log/cloud-init.log") && !s.reads(b"/var/log/syslog"));
        // Without /etc/passwd: the fixed roots and the registry's.
        assert_eq!(
            Scope::new(None, &|p| Some(p.to_vec())).roots().count(),
            fixed_roots()
        );
        // A volume without /etc (a separate /home): everything is walked, well-known names read.
        let all = Scope::everything();
        assert!(all.lists(b"/alice/.ssh") && all.lists(b"/usr/share"));
        assert!(all.reads(b"/alice/.ssh/id_rsa") && !all.reads(b"/alice/notes.txt"));
    }

    #[test]
    fn a_windows_volume_walks_only_the_places_of_the_registry_windows_rules() {
        let s = Scope::windows();
        let roots: Vec<String> = s.roots().collect();
        eprintln!("windows roots {roots:?}, listed {:?}", s.listed);
        // The places of issue 15, from the registry's Windows patterns.
        for r in [
            "/Users",
            "/ProgramData",
            "/Windows/Panther",
            "/Windows/System32/Tasks",
            "/inetpub",
            "/Program Files",
            "/Program Files (x86)",
        ] {
            assert!(roots.iter().any(|x| x == r), "{r}: {roots:?}");
        }
        // None of the Linux roots, nothing inside another root, nothing broad.
        for r in &roots {
            assert!(!WALK_ROOTS.contains(&r.as_str()), "{r}");
            assert!(
                !["/", "/Windows", "/Windows/System32"].contains(&r.as_str()),
                "{r}"
            );
            assert_eq!(
                roots
                    .iter()
                    .filter(|x| within(r.as_bytes(), x.as_bytes()))
                    .count(),
                1,
                "{r}"
            );
        }
        // Listed (walked, without case) and not.
        for d in [
            "/",
            "/Windows",
            "/windows/system32",
            "/Windows/System32/config",
            "/Windows/System32/config/systemprofile/AppData/Roaming/Microsoft/Credentials",
            "/WINDOWS/PANTHER/Unattend",
            "/Windows/System32/Tasks/Microsoft/Windows/Defrag",
            "/Windows/System32/Sysprep",
            "/Windows/System32/wbem/Repository",
            "/Users/alice/Documents",
            "/users/Administrator/AppData/Roaming/Microsoft",
            "/ProgramData/Amazon/EC2Launch/config",
            "/inetpub/wwwroot/Shop",
            "/Program Files/ShopSync",
            "/program files (x86)/Vendor/bin",
        ] {
            assert!(s.lists(d.as_bytes()), "{d}");
        }
        for d in [
            "/Windows/WinSxS",
            "/Windows/WinSxS/amd64_microsoft-windows-iis",
            "/Windows/System32/drivers",
            "/Windows/System32/config/RegBack",
            "/Windows/System32/config/systemprofile/Desktop",
            "/Windows/System32/wbem/Repository/x",
            "/Windows/Installer",
            "/Windows/SoftwareDistribution/Download",
            "/Windows/Logs",
            "/$Recycle.Bin",
            "/PerfLogs",
            "/System Volume Information",
            "/Usersx",
            "/etc",
            "/home",
        ] {
            assert!(!s.lists(d.as_bytes()), "{d}");
        }
    }

    #[test]
    fn a_hostile_passwd_cannot_widen_the_walk_without_bound() {
        let mut passwd = Vec::new();
        for i in 0..10_000 {
            passwd.extend_from_slice(format!("u{i}:x:1:1::/data/u{i}:/bin/sh\n").as_bytes());
        }
        let s = Scope::new(Some(&passwd), &|p| Some(p.to_vec()));
        assert_eq!(s.roots().count(), fixed_roots() + MAX_HOMES);
        // Every root a link elsewhere: at most twice as many.
        let s = Scope::new(Some(&passwd), &|p| {
            let mut v = b"/elsewhere".to_vec();
            v.extend_from_slice(p);
            Some(v)
        });
        assert_eq!(s.roots().count(), 2 * (fixed_roots() + MAX_HOMES));
    }
}
