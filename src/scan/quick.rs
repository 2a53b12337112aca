//! `--quick`: the well-known paths where secrets and insecure defaults live. A quick scan walks
//! every directory (metadata) but reads only the files whose path matches one of these rules;
//! the default (full) scan reads every file.

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

/// Whether a quick scan reads the file at `path` (absolute, inside the volume).
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
            "/etc/hostname",
            "/etc/ssh.bak/notes", // not /etc/ssh/
            "/home/u/.bashrc",
        ] {
            assert!(!is_well_known(p.as_bytes()), "{p}");
        }
    }
}
