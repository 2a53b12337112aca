//! `--quick`: the well-known places where secrets and insecure defaults live. A quick scan walks
//! only the directories of [`Scope`] (`/etc`, `/root`, `/home`, the home directories
//! `/etc/passwd` names, `/usr/local`, `/opt`, `/srv`, the temporary directories, ...) and the
//! directories on the way to them, and reads every file under `/etc` and, elsewhere, only the
//! files whose path matches one of the rules below. `/usr` (but `/usr/local`), `/var/lib/dpkg`,
//! `/var/cache`, ... are never entered, so a quick scan of an EBS snapshot fetches a small part
//! of its blocks.
//! The default (full) scan walks and reads everything.

/// A file name (last path component) that is read wherever it is.
const NAMES: &[&str] = &[
    // Shell and REPL histories.
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".ash_history",
    ".history",
    ".python_history",
    ".mysql_history",
    ".psql_history",
    ".sqlite_history",
    ".node_repl_history",
    ".rediscli_history",
    ".lesshst",
    ".viminfo",
    "fish_history",
    "ConsoleHost_history.txt",
    // Credential files.
    ".git-credentials",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".my.cnf",
    ".npmrc",
    ".pypirc",
    ".env",
    ".s3cfg",
    ".boto",
    ".dockercfg",
    "credentials.json",
    "wp-config.php",
    "unattend.xml",
    "autounattend.xml",
    "Unattend.xml",
    "Autounattend.xml",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    "authorized_keys2",
    "kubeconfig",
    "terraform.tfvars",
    "htpasswd",
    ".htpasswd",
    "shadow",
    "shadow-",
    "gshadow",
    "passwd",
    "sudoers",
];

/// A suffix of the file name.
const NAME_SUFFIXES: &[&str] = &[
    ".pem",
    ".key",
    ".p12",
    ".pfx",
    ".jks",
    ".keystore",
    ".ppk",
    ".tfstate",
    ".tfstate.backup",
    ".ovpn",
    ".kdbx",
    ".env",
];

/// A file name prefix (`id_*`: SSH keys with any suffix).
const NAME_PREFIXES: &[&str] = &["id_", ".env."];

/// A directory whose files are all read (any depth below it).
const DIRS: &[&str] = &[
    "/etc/ssh/",
    "/etc/sudoers.d/",
    "/etc/cloud/",
    "/var/lib/cloud/",
    "/var/lib/waagent/",
    "/etc/NetworkManager/system-connections/",
    "/etc/wireguard/",
    "/etc/openvpn/",
    "/etc/ssl/private/",
    "/etc/pki/tls/private/",
];

/// A path component sequence anywhere in the path (`/root/.ssh/`, `/home/*/.aws/`).
const DIR_PARTS: &[&str] = &[
    "/.ssh/",
    "/.aws/",
    "/.docker/",
    "/.kube/",
    "/.azure/",
    "/.config/gcloud/",
    "/.gnupg/",
    "/.config/gh/",
    "/.vault-token",
    "/.terraform.d/",
    "/PSReadLine/",
];

/// Exact paths.
const PATHS: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/passwd",
    "/etc/sudoers",
    "/etc/environment",
    "/etc/fstab",
    "/etc/crontab",
    "/var/lib/cloud/instance/user-data.txt",
];

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
    roots: Vec<Vec<u8>>,
    /// Walk every directory (a volume that is not a root filesystem).
    everything: bool,
}

/// `path` is `dir` or inside it.
fn within(path: &[u8], dir: &[u8]) -> bool {
    dir == b"/"
        || path.starts_with(dir) && (path.len() == dir.len() || path.get(dir.len()) == Some(&b'/'))
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
            if roots.len() >= WALK_ROOTS.len() + MAX_HOMES {
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
        Scope {
            roots,
            everything: false,
        }
    }

    /// The scope of a volume that is not a root filesystem (no `/etc`): a separate `/home`,
    /// `/var` or `/opt` partition, whose paths do not start with the places a root
    /// filesystem has them under. Every directory is walked (metadata only), and the
    /// well-known names are read wherever they are.
    pub fn everything() -> Scope {
        Scope {
            roots: vec![b"/".to_vec()],
            everything: true,
        }
    }

    /// Whether the walk lists directory `dir`: a root, inside one, or on the way to one.
    pub fn lists(&self, dir: &[u8]) -> bool {
        self.everything || self.roots.iter().any(|r| within(dir, r) || within(r, dir))
    }

    /// Whether a quick scan reads the file at `path`: anything under `/etc`, and the
    /// well-known paths ([`is_well_known`]) wherever the walk saw them.
    pub fn reads(&self, path: &[u8]) -> bool {
        !self.everything && within(path, b"/etc") || is_well_known(path)
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

/// Whether a quick scan reads the file at `path` (absolute, inside the volume), outside `/etc`.
pub fn is_well_known(path: &[u8]) -> bool {
    let path = String::from_utf8_lossy(path);
    let name = path.rsplit('/').next().unwrap_or(&path);
    PATHS.contains(&path.as_ref())
        || NAMES.contains(&name)
        || NAME_SUFFIXES.iter().any(|s| name.ends_with(s))
        || NAME_PREFIXES.iter().any(|p| name.starts_with(p))
        || DIRS.iter().any(|d| path.starts_with(d))
        || DIR_PARTS.iter().any(|d| path.contains(d))
        || name.ends_with("config") && path.contains("/.kube")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "/Windows/Panther/unattend.xml",
            "/Users/a/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt",
        ] {
            assert!(is_well_known(p.as_bytes()), "{p}");
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
            assert!(!is_well_known(p.as_bytes()), "{p}");
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
            "/lib",
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
        // Without /etc/passwd: the fixed roots.
        assert_eq!(
            Scope::new(None, &|p| Some(p.to_vec())).roots().count(),
            WALK_ROOTS.len()
        );
        // A volume without /etc (a separate /home): everything is walked, well-known names read.
        let all = Scope::everything();
        assert!(all.lists(b"/alice/.ssh") && all.lists(b"/usr/share"));
        assert!(all.reads(b"/alice/.ssh/id_rsa") && !all.reads(b"/alice/notes.txt"));
    }

    #[test]
    fn a_hostile_passwd_cannot_widen_the_walk_without_bound() {
        let mut passwd = Vec::new();
        for i in 0..10_000 {
            passwd.extend_from_slice(format!("u{i}:x:1:1::/data/u{i}:/bin/sh\n").as_bytes());
        }
        let s = Scope::new(Some(&passwd), &|p| Some(p.to_vec()));
        assert_eq!(s.roots().count(), WALK_ROOTS.len() + MAX_HOMES);
        // Every root a link elsewhere: at most twice as many.
        let s = Scope::new(Some(&passwd), &|p| {
            let mut v = b"/elsewhere".to_vec();
            v.extend_from_slice(p);
            Some(v)
        });
        assert_eq!(s.roots().count(), 2 * (WALK_ROOTS.len() + MAX_HOMES));
    }
}
