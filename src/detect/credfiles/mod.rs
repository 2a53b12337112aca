//! Credential files judged by what they hold: a path says which format to parse, the content
//! says whether it holds a usable secret (`.git-credentials`, `.netrc`, `.pgpass`, `.my.cnf`,
//! docker and kube configs, `.npmrc`, `.pypirc`, `wp-config.php`, `.env`, Terraform state, AWS
//! CLI files, PKCS#12 and Java keystores).
//!
//! A file that only references a secret (`${VAR}`, a `credential_process`, an SSO profile, a
//! key file path) is not a finding. Each secret is one finding at its line, with redacted
//! evidence; the parsers are line-based or bounded JSON, and see the first
//! [`CHECK_CAP`](super::checks::CHECK_CAP) bytes of the file like the checks do.

pub(crate) mod keystore;
mod structured;
mod textual;

use super::checks::{CheckHit, CheckRule, file_name};
use super::finding::redact;
use super::registry::pattern::{Glob, glob, glob_nocase};
use super::verify::{is_placeholder, testkeys};
use crate::report::Severity;

/// Rule ids whose findings on the same secret a credential-file finding hides.
const GENERIC: &[&str] = &["generic-secret-assignment"];

/// Declare a credential-file rule.
const fn rule(
    id: &'static str,
    title: &'static str,
    severity: Severity,
    remediation: &'static str,
    suppresses: &'static [&'static str],
) -> CheckRule {
    CheckRule {
        id,
        title,
        severity,
        remediation,
        suppresses,
    }
}

/// `.git-credentials`.
pub(crate) const GIT: CheckRule = rule(
    "git-credentials",
    "Git credential store with a password or token",
    Severity::Critical,
    "Delete the file (git's `store` helper keeps secrets in clear), revoke the token or change the password it holds, and use a credential helper backed by a secrets service at run time.",
    &[
        "generic-secret-assignment",
        "github-token",
        "gitlab-token",
        "github-oauth-token",
        "github-fine-grained-pat",
        "git-url-credentials",
    ],
);
/// `.netrc`.
pub(crate) const NETRC: CheckRule = rule(
    "netrc-password",
    ".netrc with a password",
    Severity::Critical,
    "Remove the password from the image and change it; provide it at run time instead.",
    GENERIC,
);
/// `.pgpass`.
pub(crate) const PGPASS: CheckRule = rule(
    "pgpass-password",
    "PostgreSQL password file with a password",
    Severity::Critical,
    "Remove the file, change the database password, and fetch it at boot from a secrets service.",
    GENERIC,
);
/// `.my.cnf` and friends.
pub(crate) const MYCNF: CheckRule = rule(
    "mysql-client-password",
    "MySQL client option file with a password",
    Severity::Critical,
    "Remove the password from the option file, change it on the server, and provide it at run time (or use auth_socket for local admin access).",
    GENERIC,
);
/// Docker / Podman registry auth files.
pub(crate) const DOCKER: CheckRule = rule(
    "docker-registry-auth",
    "Container registry credentials (docker/podman auth config)",
    Severity::Critical,
    "Run `docker logout` (or delete the auths entry), revoke the registry password or token, and use a credential helper (ECR, secretservice) instead of stored auths.",
    &["generic-secret-assignment", "docker-hub-token"],
);
/// kubeconfig files.
pub(crate) const KUBE: CheckRule = rule(
    "kubeconfig-credentials",
    "kubeconfig with embedded credentials",
    Severity::Critical,
    "Remove the kubeconfig from the image, revoke the client certificate or token (rotate the cluster CA for admin.conf), and use an exec credential plugin (aws eks get-token) instead.",
    &["generic-secret-assignment", "jwt"],
);
/// `.npmrc`.
pub(crate) const NPMRC: CheckRule = rule(
    "npmrc-credentials",
    ".npmrc with a registry token or password",
    Severity::Critical,
    "Remove the credential from .npmrc, revoke it on the registry, and pass it as ${NPM_TOKEN} at run time.",
    &["generic-secret-assignment", "npm-token"],
);
/// `.pypirc`.
pub(crate) const PYPIRC: CheckRule = rule(
    "pypirc-password",
    ".pypirc with a password or token",
    Severity::Critical,
    "Remove the password from .pypirc, revoke the token on the index, and use trusted publishing or a keyring at run time.",
    &["generic-secret-assignment", "pypi-token"],
);
/// `wp-config.php` database password.
pub(crate) const WP_DB: CheckRule = rule(
    "wordpress-db-password",
    "WordPress database password in wp-config.php",
    Severity::High,
    "Change the database password and set it at first boot (environment or secrets manager) rather than baking wp-config.php into the image.",
    GENERIC,
);
/// `wp-config.php` keys and salts.
pub(crate) const WP_SALT: CheckRule = rule(
    "wordpress-auth-keys",
    "WordPress authentication keys and salts baked into the image",
    Severity::High,
    "Generate fresh keys and salts per instance at first boot (api.wordpress.org/secret-key or wp-cli `config shuffle-salts`): every instance of this image shares them, so cookies can be forged.",
    GENERIC,
);
/// `.env` files.
pub(crate) const DOTENV: CheckRule = rule(
    "dotenv-secret",
    "Secret in a .env file",
    Severity::High,
    "Remove the value from the .env file shipped in the image, rotate it, and inject it at run time.",
    GENERIC,
);
/// Terraform state.
pub(crate) const TFSTATE: CheckRule = rule(
    "terraform-state-secret",
    "Secret in Terraform state",
    Severity::Critical,
    "Remove the state file from the image (keep state in an encrypted remote backend) and rotate every secret it records.",
    GENERIC,
);
/// `~/.aws/credentials` and `~/.aws/config`. A profile whose key id and secret the
/// `aws-access-key-pair` signature finds is reported by that rule (a stable id users
/// suppress by); this one reports the rest (a secret without a nearby key id, say).
pub(crate) const AWS: CheckRule = rule(
    "aws-credentials-file",
    "AWS CLI profile with static keys",
    Severity::Critical,
    "Delete the file's static keys and deactivate them in IAM; use an instance profile, SSO or credential_process instead.",
    &["generic-secret-assignment", "aws-secret-access-key"],
);

/// `.git-credentials`, git's XDG credential store.
pub(crate) const GIT_FILES: &[Glob] = &[glob(".git-credentials"), glob(".config/git/credentials")];
/// `.netrc`, `_netrc`.
pub(crate) const NETRC_FILES: &[Glob] = &[glob("{.netrc,_netrc}")];
/// `.pgpass`.
pub(crate) const PGPASS_FILES: &[Glob] = &[glob(".pgpass")];
/// `.my.cnf`, `/etc/mysql/debian.cnf`.
pub(crate) const MYCNF_FILES: &[Glob] = &[glob(".my.cnf"), glob("mysql/debian.cnf")];
/// Docker's and the containers tools' registry auth files.
pub(crate) const DOCKER_FILES: &[Glob] = &[
    glob(".docker/config.json"),
    glob(".dockercfg"),
    glob("containers/**/auth.json"),
];
/// kubeconfigs: the user's, kubeadm's, and files named so.
pub(crate) const KUBE_FILES: &[Glob] = &[
    glob(".kube/config"),
    glob(
        "/etc/kubernetes/**/{admin.conf,super-admin.conf,kubelet.conf,controller-manager.conf,\
scheduler.conf}",
    ),
    glob("{kubeconfig,kubeconfig.yaml}"),
];
/// `.npmrc`, a global `npmrc`.
pub(crate) const NPMRC_FILES: &[Glob] = &[glob("{.npmrc,npmrc}")];
/// `.pypirc`.
pub(crate) const PYPIRC_FILES: &[Glob] = &[glob(".pypirc")];
/// `wp-config.php`.
pub(crate) const WP_FILES: &[Glob] = &[glob("wp-config.php")];
/// The AWS CLI's files.
/// On Windows in `C:\\Users\\NAME\\.aws` (names in any case, as Windows finds them).
pub(crate) const AWS_FILES: &[Glob] = &[
    glob(".aws/{credentials,config}"),
    glob_nocase("/Users/*/.aws/{credentials,config}"),
];
/// `.env` and `.env.<name>` (templates are refused by [`CredFile::accepts`]).
pub(crate) const DOTENV_FILES: &[Glob] = &[glob(".env"), glob(".env.*")];
/// Terraform state and its backup.
pub(crate) const TFSTATE_FILES: &[Glob] = &[glob_nocase("*.{tfstate,tfstate.backup}")];
/// PKCS#12 keystores.
pub(crate) const PKCS12_FILES: &[Glob] = &[glob_nocase("*.{p12,pfx}")];

/// The format of a credential file, decided by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredFile {
    /// `.git-credentials`, `~/.config/git/credentials`.
    GitCredentials,
    /// `.netrc`, `_netrc`.
    Netrc,
    /// `.pgpass`.
    Pgpass,
    /// `.my.cnf`, `/etc/mysql/debian.cnf`.
    MyCnf,
    /// `.docker/config.json`, `.dockercfg`, containers `auth.json`.
    Docker,
    /// `.kube/config`, `/etc/kubernetes/*.conf`.
    Kubeconfig,
    /// `.npmrc`.
    Npmrc,
    /// `.pypirc`.
    Pypirc,
    /// `wp-config.php`.
    WpConfig,
    /// `.env`, `.env.production`, ... (not `.env.example`).
    Dotenv,
    /// `*.tfstate`, `*.tfstate.backup`.
    TfState,
    /// `.aws/credentials`, `.aws/config`.
    Aws,
    /// `*.p12`, `*.pfx`.
    Pkcs12,
}

/// `.env` suffixes that name templates, not secrets.
const DOTENV_TEMPLATES: &[&str] = &["example", "sample", "template", "dist", "defaults", "tmpl"];

impl CredFile {
    /// Whether a file its scope matches is one this format reads: a `.env.example` (or
    /// another template suffix, any case) is not.
    pub(crate) fn accepts(self, path: &str) -> bool {
        match self {
            CredFile::Dotenv => file_name(path)
                .strip_prefix(".env.")
                .is_none_or(|s| !DOTENV_TEMPLATES.iter().any(|t| s.eq_ignore_ascii_case(t))),
            _ => true,
        }
    }

    /// Parse `data` (the file's first bytes) and report what it holds.
    fn run(self, data: &[u8]) -> Vec<CheckHit> {
        match self {
            CredFile::GitCredentials => textual::git_credentials(data),
            CredFile::Netrc => textual::netrc(data),
            CredFile::Pgpass => textual::pgpass(data),
            CredFile::MyCnf => textual::mycnf(data),
            CredFile::Docker => structured::docker(data),
            CredFile::Kubeconfig => textual::kubeconfig(data),
            CredFile::Npmrc => textual::npmrc(data),
            CredFile::Pypirc => textual::pypirc(data),
            CredFile::WpConfig => textual::wp_config(data),
            CredFile::Dotenv => textual::dotenv(data),
            CredFile::TfState => structured::tfstate(data),
            CredFile::Aws => textual::aws(data),
            CredFile::Pkcs12 => keystore::pkcs12(data),
        }
    }
}

/// Report what the credential file at `path` holds: its format's parser (if its path names
/// one) and the Java keystore probe (any file starting with a keystore magic). Findings inside
/// packaged test or documentation directories, or of published credentials, are lowered to
/// `info` (see [`testkeys`]).
pub(crate) fn run(kind: Option<CredFile>, path: &str, data: &[u8]) -> Vec<CheckHit> {
    let mut hits = kind.map(|k| k.run(data)).unwrap_or_default();
    hits.extend(keystore::java(data));
    for h in &mut hits {
        if let Some(note) = testkeys::test_vector_note(path, &h.fingerprint_of) {
            h.severity = Severity::Info;
            h.evidence.push_str(&note);
        }
    }
    hits
}

/// Lines of `data` with their start offsets (line terminator excluded, `\r` trimmed).
pub(crate) fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let rest = data.get(pos..)?;
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..len)?;
        let start = pos;
        pos = pos.saturating_add(len).saturating_add(1);
        Some((start, line.strip_suffix(b"\r").unwrap_or(line)))
    })
}

/// 1-based line number of byte `offset` in `data`.
pub(crate) fn line_of(data: &[u8], offset: usize) -> u64 {
    let end = offset.min(data.len());
    memchr::memchr_iter(b'\n', &data[..end]).count() as u64 + 1
}

/// Whether a value is a real secret rather than empty, a reference or a placeholder.
pub(crate) fn is_real_value(v: &[u8]) -> bool {
    let v = v.trim_ascii();
    !v.is_empty() && !is_placeholder(v)
}

/// A finding for the secret at `data[start..end]`, with a non-secret `label` as context.
pub(crate) fn hit(
    rule: &CheckRule,
    data: &[u8],
    start: usize,
    end: usize,
    label: &str,
) -> CheckHit {
    let secret = data.get(start..end).unwrap_or_default();
    CheckHit {
        rule: rule.id,
        severity: rule.severity,
        line: Some(line_of(data, start)),
        start: start as u64,
        end: end as u64,
        evidence: redact(Some(label.as_bytes()), secret),
        fingerprint_of: secret.to_vec(),
        secret: Some(secret.to_vec()),
    }
}

/// Offset of `part` inside `whole` (both slices of the same buffer).
pub(crate) fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_offsets() {
        let data = b"a\r\nbc\n\nd";
        let v: Vec<(usize, &[u8])> = lines(data).collect();
        assert_eq!(v, [(0, &b"a"[..]), (3, b"bc"), (6, b""), (7, b"d")]);
        assert_eq!(line_of(data, 7), 4);
        assert_eq!(line_of(data, 999), 4);
    }

    #[test]
    fn test_directories_lower_to_info() {
        let data = b"https://ci:Xq3v9mS2b7Jk1LpQ@git.example.net\n";
        let hits = run(
            Some(CredFile::GitCredentials),
            "/usr/lib/python3/dist-packages/x/tests/.git-credentials",
            data,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Severity::Info);
        assert!(hits[0].evidence.contains("probably a test vector"));
    }
}
