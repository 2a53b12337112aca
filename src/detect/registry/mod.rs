//! The file-rule registry: every rule family, code and data, declared once with its rule ids,
//! the files it applies to and what `--quick` must read for it.
//!
//! A family is one of the path checks (`checks/`), a credential-file format (`credfiles/`), a
//! content family (a signature catalog file, the Java keystore probe) or a volume check (sshd,
//! sudoers, packages). Its [`Family::scope`] is a list of [`Glob`]s:
//! - a path check or credential format applies to a file only when the scope matches it (some
//!   also look at which of their patterns matched: a crontab or a unit, state or a log); the
//!   dispatch ([`check_for`], [`cred_for`]) goes through here, so no other list exists;
//! - a content family runs on every file; its scope is where its secrets usually are, which
//!   `--quick` reads;
//! - a volume check reads its files by path through the volume lookup, which `--quick` runs
//!   whole (minus the rules it names in [`Family::quick_skips`]); its scope documents them.
//!
//! `--quick` reads exactly the files some non-volume family's scope matches ([`quick_reads`]),
//! and walks the fixed directories of the anchored patterns ([`quick_dirs`]) on top of its own
//! roots (`scan::quick`). What a family applies to and what a quick scan reads cannot drift
//! apart: both are this table. Each family names sample paths (its usual places), which the
//! tests put files at to prove it.
//!
//! Limits: a pattern says where a file is, not what it holds; families that judge every file
//! by content (signatures, the keystore magic) reach files outside their scope only in a full
//! scan, which is what a quick scan gives up.

mod pattern;

pub use pattern::Glob;
pub(crate) use pattern::{glob, glob_nocase};

use super::catalog::Signature;
use super::checks::{
    Check, CheckRule, authorized_keys, autostart, cloud_init, history, host_keys, identity, miner,
    packages, shadow, ssh_client, sshd, sudoers, windows,
};
use super::credfiles::{self, CredFile, keystore};
use super::{RuleInfo, RuleKind};

/// How a family gets the files it judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reads {
    /// A path check: the first bytes of each file its scope matches.
    Path(Check),
    /// A credential-file format: the first bytes of each file its scope matches.
    Cred(CredFile),
    /// Every file's content; the scope is where `--quick` reads.
    Content,
    /// Its files by path, through the volume lookup, once per volume.
    Volume,
}

/// A family's rules.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rules {
    /// Rules written in code.
    Code(&'static [CheckRule]),
    /// The signatures of one catalog file (`signatures/<file>`).
    Catalog(&'static str),
}

/// One rule family.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Family {
    /// Short stable name (`shell-history`, `private-keys`).
    pub name: &'static str,
    /// How it gets its files.
    pub reads: Reads,
    /// Its rules.
    pub rules: Rules,
    /// The files it applies to (see the module documentation).
    pub scope: &'static [&'static [Glob]],
    /// Rules a `--quick` scan does not report, by design (the package content verification
    /// it skips); every other finding of the family a full scan makes in the directories a
    /// quick scan walks, the quick scan makes too.
    pub quick_skips: &'static [&'static str],
    /// Usual places of its files (absolute paths in a root filesystem), for the tests.
    pub samples: &'static [&'static str],
}

impl Family {
    /// Whether the scope matches `path`.
    pub fn matches(&self, path: &str) -> bool {
        self.scope
            .iter()
            .flat_map(|s| s.iter())
            .any(|g| g.matches(path))
    }

    /// Whether `--quick` reads the files of its scope (every family but the volume checks).
    fn quick_reads(&self) -> bool {
        self.reads != Reads::Volume
    }

    fn globs(&self) -> impl Iterator<Item = &'static Glob> + use<> {
        let scope: &'static [&'static [Glob]] = self.scope;
        scope.iter().flat_map(|s| s.iter())
    }

    /// The scope, written out (`amiscan rules`).
    pub fn describe_scope(&self) -> String {
        let globs: Vec<String> = self.globs().map(Glob::describe).collect();
        match self.reads {
            Reads::Content => format!("any file; --quick reads {}", globs.join(" ")),
            Reads::Volume => format!("{} (read by path)", globs.join(" ")),
            Reads::Path(_) | Reads::Cred(_) => globs.join(" "),
        }
    }
}

/// The patterns of a table of `(pattern, kind)` (a family that tells its files apart by which
/// pattern matched declares that table; its scope is this projection of it).
pub(crate) const fn globs<K: Copy, const N: usize>(table: &[(Glob, K); N]) -> [Glob; N] {
    let mut out = [glob(""); N];
    let mut i = 0;
    while i < N {
        out[i] = table[i].0;
        i += 1;
    }
    out
}

/// The kind of the first pattern of `table` that matches `path`.
pub(crate) fn kind_of<K: Copy>(table: &[(Glob, K)], path: &str) -> Option<K> {
    table.iter().find(|(g, _)| g.matches(path)).map(|&(_, k)| k)
}

/// Signature files: every file's content; these are their usual places.
const PRIVATE_KEY_FILES: &[Glob] = &[
    glob("*.pem"),
    glob("*.key"),
    glob("*.ppk"),
    glob("*.ovpn"),
    glob("id_*"),
    glob(".ssh/**"),
    glob(".gnupg/**"),
    glob("/etc/ssl/private/**"),
    glob("/etc/pki/tls/private/**"),
];
const AWS_FILES: &[Glob] = &[glob(".aws/**"), glob(".s3cfg"), glob(".boto")];
const CLOUD_FILES: &[Glob] = &[
    glob(".config/gcloud/**"),
    glob(".azure/**"),
    glob("credentials.json"),
    glob("/var/lib/waagent/**"),
];
const TOKEN_FILES: &[Glob] = &[
    glob(".config/gh/**"),
    glob(".vault-token"),
    glob(".terraform.d/**"),
    glob(".docker/**"),
    glob(".kube/**"),
];
const GENERIC_FILES: &[Glob] = &[
    glob("/etc/**"),
    glob("/var/lib/cloud/**"),
    glob("terraform.tfvars"),
    glob("htpasswd"),
    glob(".htpasswd"),
    glob("PSReadLine/**"),
];
const JAVA_KEYSTORE_FILES: &[Glob] = &[glob_nocase("*.{jks,jceks,keystore}")];

/// What the volume checks read by path.
const SSHD_FILES: &[Glob] = &[
    glob("/etc/ssh/sshd_config"),
    glob("/etc/ssh/sshd_config.d/*"),
];
const SUDOERS_FILES: &[Glob] = &[glob("/etc/sudoers"), glob("/etc/sudoers.d/*")];
const PACKAGE_FILES: &[Glob] = &[
    glob("/var/lib/dpkg/status"),
    glob("/var/lib/dpkg/diversions"),
    glob("/var/lib/dpkg/info/*.{list,md5sums}"),
    glob("/var/lib/rpm/**"),
    glob("/usr/lib/sysimage/rpm/**"),
];

const fn family(
    name: &'static str,
    reads: Reads,
    rules: Rules,
    scope: &'static [&'static [Glob]],
    samples: &'static [&'static str],
) -> Family {
    Family {
        name,
        reads,
        rules,
        scope,
        quick_skips: &[],
        samples,
    }
}

const fn path_check(
    name: &'static str,
    check: Check,
    rules: &'static [CheckRule],
    scope: &'static [&'static [Glob]],
    samples: &'static [&'static str],
) -> Family {
    family(name, Reads::Path(check), Rules::Code(rules), scope, samples)
}

const fn cred(
    name: &'static str,
    kind: CredFile,
    rules: &'static [CheckRule],
    scope: &'static [&'static [Glob]],
    samples: &'static [&'static str],
) -> Family {
    family(name, Reads::Cred(kind), Rules::Code(rules), scope, samples)
}

const fn signatures(
    name: &'static str,
    file: &'static str,
    scope: &'static [&'static [Glob]],
    samples: &'static [&'static str],
) -> Family {
    family(name, Reads::Content, Rules::Catalog(file), scope, samples)
}

/// Every family. Order matters where scopes overlap: a file gets the first path check and the
/// first credential format whose scope (and refinement) accepts it.
pub(crate) const FAMILIES: &[Family] = &[
    path_check(
        "host-keys",
        Check::HostKey,
        &[host_keys::RULE],
        &[host_keys::SCOPE],
        &["/etc/ssh/ssh_host_ed25519_key"],
    ),
    path_check(
        "authorized-keys",
        Check::AuthorizedKeys,
        &[authorized_keys::RULE],
        &[authorized_keys::SCOPE],
        &[
            "/root/.ssh/authorized_keys",
            "/home/alice/.ssh/authorized_keys2",
        ],
    ),
    path_check(
        "shell-history",
        Check::History,
        &[history::RULE],
        &[history::SCOPE],
        &[
            "/root/.bash_history",
            "/home/alice/.zhistory",
            "/home/alice/.local/share/fish/fish_history",
        ],
    ),
    path_check(
        "editor-history",
        Check::EditorHistory,
        &[history::EDITOR_RULE],
        &[history::EDITOR_SCOPE],
        &["/root/.viminfo", "/home/alice/.wget-hsts"],
    ),
    path_check(
        "shadow",
        Check::Shadow,
        &[
            shadow::HASH_RULE,
            shadow::EMPTY_RULE,
            shadow::PASSWD_RULE,
            shadow::WEAK_RULE,
            shadow::DEFAULT_RULE,
        ],
        &[shadow::SCOPE],
        &["/etc/shadow"],
    ),
    path_check(
        "known-hosts",
        Check::KnownHosts,
        &[ssh_client::KNOWN_HOSTS_RULE],
        &[ssh_client::SCOPE],
        &["/root/.ssh/known_hosts"],
    ),
    path_check(
        "cloud-init",
        Check::CloudInit,
        &[cloud_init::LEFTOVER_RULE, cloud_init::PASSWORD_RULE],
        &[&cloud_init::SCOPE],
        &[
            "/var/lib/cloud/instances/i-0123456789abcdef0/user-data.txt",
            "/var/log/cloud-init-output.log",
            "/etc/cloud/cloud.cfg.d/99-build.cfg",
        ],
    ),
    path_check(
        "identity",
        Check::Identity,
        &[
            identity::MACHINE_ID_RULE,
            identity::DHCP_RULE,
            identity::SEED_RULE,
        ],
        &[&identity::SCOPE],
        &[
            "/etc/machine-id",
            "/var/lib/dhcp/dhclient.eth0.leases",
            "/var/lib/systemd/random-seed",
        ],
    ),
    path_check(
        "autostart",
        Check::Autostart,
        &[
            autostart::PRELOAD_RULE,
            autostart::DOWNLOAD_RULE,
            autostart::TMP_RULE,
        ],
        &[&autostart::SCOPE],
        &[
            "/etc/ld.so.preload",
            "/etc/cron.d/update",
            "/var/spool/cron/crontabs/root",
            "/etc/systemd/system/updater.service",
            "/etc/rc.local",
        ],
    ),
    path_check(
        "miner",
        Check::Miner,
        &[miner::RULE],
        &[&miner::NAME_SCOPE, miner::CONFIG_SCOPE],
        &["/tmp/xmrig", "/opt/miner/config.json"],
    ),
    path_check(
        "windows-unattend",
        Check::Unattend,
        &[windows::UNATTEND_RULE],
        &[windows::SCOPE],
        &["/Windows/Panther/unattend.xml"],
    ),
    cred(
        "git-credentials",
        CredFile::GitCredentials,
        &[credfiles::GIT],
        &[credfiles::GIT_FILES],
        &["/root/.git-credentials"],
    ),
    cred(
        "netrc",
        CredFile::Netrc,
        &[credfiles::NETRC],
        &[credfiles::NETRC_FILES],
        &["/root/.netrc"],
    ),
    cred(
        "pgpass",
        CredFile::Pgpass,
        &[credfiles::PGPASS],
        &[credfiles::PGPASS_FILES],
        &["/var/lib/postgresql/.pgpass"],
    ),
    cred(
        "mysql-client",
        CredFile::MyCnf,
        &[credfiles::MYCNF],
        &[credfiles::MYCNF_FILES],
        &["/root/.my.cnf"],
    ),
    cred(
        "docker-auth",
        CredFile::Docker,
        &[credfiles::DOCKER],
        &[credfiles::DOCKER_FILES],
        &["/root/.docker/config.json"],
    ),
    cred(
        "kubeconfig",
        CredFile::Kubeconfig,
        &[credfiles::KUBE],
        &[credfiles::KUBE_FILES],
        &["/home/alice/.kube/config"],
    ),
    cred(
        "npmrc",
        CredFile::Npmrc,
        &[credfiles::NPMRC],
        &[credfiles::NPMRC_FILES],
        &["/home/alice/.npmrc"],
    ),
    cred(
        "pypirc",
        CredFile::Pypirc,
        &[credfiles::PYPIRC],
        &[credfiles::PYPIRC_FILES],
        &["/root/.pypirc"],
    ),
    cred(
        "wordpress",
        CredFile::WpConfig,
        &[credfiles::WP_DB, credfiles::WP_SALT],
        &[credfiles::WP_FILES],
        &["/var/www/html/wp-config.php"],
    ),
    cred(
        "aws-cli",
        CredFile::Aws,
        &[credfiles::AWS],
        &[credfiles::AWS_FILES],
        &["/home/alice/.aws/credentials"],
    ),
    cred(
        "dotenv",
        CredFile::Dotenv,
        &[credfiles::DOTENV],
        &[credfiles::DOTENV_FILES],
        &["/srv/app/.env"],
    ),
    cred(
        "terraform-state",
        CredFile::TfState,
        &[credfiles::TFSTATE],
        &[credfiles::TFSTATE_FILES],
        &["/opt/infra/terraform.tfstate"],
    ),
    cred(
        "pkcs12",
        CredFile::Pkcs12,
        &[keystore::PKCS12],
        &[credfiles::PKCS12_FILES],
        &["/opt/app/tls/client.p12"],
    ),
    family(
        "java-keystore",
        Reads::Content,
        Rules::Code(&[keystore::JAVA]),
        &[JAVA_KEYSTORE_FILES],
        &["/opt/app/tls/server.jks"],
    ),
    signatures(
        "private-keys",
        "private-keys.toml",
        &[PRIVATE_KEY_FILES],
        &["/root/.ssh/id_ed25519", "/opt/app/tls/server.key"],
    ),
    signatures("aws", "aws.toml", &[AWS_FILES], &["/root/.s3cfg"]),
    signatures(
        "cloud",
        "cloud.toml",
        &[CLOUD_FILES],
        &["/home/alice/.config/gcloud/application_default_credentials.json"],
    ),
    signatures(
        "tokens",
        "tokens.toml",
        &[TOKEN_FILES],
        &["/home/alice/.config/gh/hosts.yml"],
    ),
    signatures(
        "generic",
        "generic.toml",
        &[GENERIC_FILES],
        &["/etc/app/app.conf"],
    ),
    family(
        "sshd",
        Reads::Volume,
        Rules::Code(&[
            sshd::ROOT_RULE,
            sshd::PASSWORD_RULE,
            sshd::EMPTY_RULE,
            sshd::KBD_RULE,
        ]),
        &[SSHD_FILES],
        &["/etc/ssh/sshd_config"],
    ),
    family(
        "sudoers",
        Reads::Volume,
        Rules::Code(&[sudoers::RULE]),
        &[SUDOERS_FILES],
        &["/etc/sudoers.d/90-build"],
    ),
    Family {
        name: "packages",
        reads: Reads::Volume,
        rules: Rules::Code(&[
            packages::SETID_RULE,
            packages::MODIFIED_RULE,
            packages::RPM_MODIFIED_RULE,
        ]),
        scope: &[PACKAGE_FILES],
        // Verifying packaged files means reading every one of them.
        quick_skips: &[packages::MODIFIED_RULE.id, packages::RPM_MODIFIED_RULE.id],
        samples: &["/usr/local/bin/backdoor"],
    },
];

/// Every family's patterns compiled into one [`RegexSet`](regex::bytes::RegexSet): a path is
/// matched against all of them in one pass (a full scan asks for every file of the image).
struct Compiled {
    set: regex::bytes::RegexSet,
    /// The family (index into [`FAMILIES`]) of each pattern of `set`.
    family: Vec<usize>,
}

/// The compiled patterns; `None` if they do not compile (a bug the tests catch), in which
/// case every family matches its patterns one by one.
static COMPILED: std::sync::LazyLock<Option<Compiled>> = std::sync::LazyLock::new(|| {
    let mut family = Vec::new();
    let mut regexes = Vec::new();
    for (i, f) in FAMILIES.iter().enumerate() {
        for g in f.globs() {
            family.push(i);
            regexes.push(g.to_regex());
        }
    }
    let set = regex::bytes::RegexSetBuilder::new(regexes)
        .unicode(false)
        .size_limit(32 << 20)
        .dfa_size_limit(32 << 20)
        .build()
        .ok()?;
    Some(Compiled { set, family })
});

/// Which families' scopes match `path`, as a mask over [`FAMILIES`].
fn matching(path: &str) -> Vec<bool> {
    let mut hit = vec![false; FAMILIES.len()];
    match COMPILED.as_ref() {
        Some(c) => {
            for p in c.set.matches(path.as_bytes()).iter() {
                if let Some(h) = c.family.get(p).and_then(|&f| hit.get_mut(f)) {
                    *h = true;
                }
            }
        }
        None => {
            for (h, f) in hit.iter_mut().zip(FAMILIES) {
                *h = f.matches(path);
            }
        }
    }
    hit
}

/// What the registry says about one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileRules {
    /// The path check for it: the first path-check family whose scope matches.
    pub check: Option<Check>,
    /// Its credential-file format: the first credential family whose scope matches and that
    /// accepts it (templates are not `.env` files).
    pub cred: Option<CredFile>,
    /// Whether a `--quick` scan reads it: some family that judges files as the walk finds them
    /// (every family but the volume checks) has it in its scope.
    pub quick: bool,
}

/// What the registry says about the file at `path` (absolute, inside the volume).
pub(crate) fn rules_for(path: &str) -> FileRules {
    let mut out = FileRules::default();
    for (f, _) in FAMILIES.iter().zip(matching(path)).filter(|(_, hit)| *hit) {
        out.quick |= f.quick_reads();
        match f.reads {
            Reads::Path(c) if out.check.is_none() => out.check = Some(c),
            Reads::Cred(c) if out.cred.is_none() && c.accepts(path) => out.cred = Some(c),
            _ => {}
        }
    }
    out
}

/// The path check for `path` (see [`FileRules::check`]).
#[cfg(test)]
pub(crate) fn check_for(path: &str) -> Option<Check> {
    rules_for(path).check
}

/// The credential-file format of `path` (see [`FileRules::cred`]).
#[cfg(test)]
pub(crate) fn cred_for(path: &str) -> Option<CredFile> {
    rules_for(path).cred
}

/// Whether a `--quick` scan reads the file at `path` (absolute, inside the volume): some
/// family that judges files as the walk finds them has it in its scope.
pub fn quick_reads(path: &str) -> bool {
    rules_for(path).quick
}

/// The directories a `--quick` scan must walk for the anchored patterns of the families it
/// reads for: `(directory, whole)`, where `whole` says every subdirectory too, else only the
/// directory's own entries. Sorted, without duplicates.
pub fn quick_dirs() -> Vec<(String, bool)> {
    let mut dirs: Vec<(String, bool)> = FAMILIES
        .iter()
        .filter(|f| f.quick_reads())
        .flat_map(Family::globs)
        .filter_map(Glob::fixed_dir)
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Every rule written in code, family by family.
pub(crate) fn code_rules() -> impl Iterator<Item = &'static CheckRule> {
    FAMILIES.iter().flat_map(|f| match f.rules {
        Rules::Code(r) => r.iter(),
        Rules::Catalog(_) => [].iter(),
    })
}

/// What `amiscan rules` shows, for every rule of every family: the code rules and the
/// signatures `sigs` (a signature of a catalog file no family names belongs to the family
/// `signatures`, applying to every file). Unsorted.
pub(crate) fn rule_infos(sigs: &[Signature]) -> Vec<RuleInfo> {
    let mut out = Vec::new();
    for f in FAMILIES {
        let files = f.describe_scope();
        match f.rules {
            Rules::Code(rules) => out.extend(rules.iter().map(|r| RuleInfo {
                id: r.id.into(),
                title: r.title.into(),
                severity: r.severity,
                kind: RuleKind::Check,
                remediation: r.remediation.into(),
                family: f.name.into(),
                files: files.clone(),
            })),
            Rules::Catalog(file) => out.extend(
                sigs.iter()
                    .filter(|s| s.file == file)
                    .map(|s| signature_info(s, f.name, &files)),
            ),
        }
    }
    let named = |file: &str| {
        FAMILIES
            .iter()
            .any(|f| matches!(f.rules, Rules::Catalog(n) if n == file))
    };
    out.extend(
        sigs.iter()
            .filter(|s| !named(&s.file))
            .map(|s| signature_info(s, "signatures", "any file")),
    );
    out
}

fn signature_info(s: &Signature, family: &str, files: &str) -> RuleInfo {
    RuleInfo {
        id: s.id.clone(),
        title: s.title.clone(),
        severity: s.severity,
        kind: RuleKind::Signature,
        remediation: s.remediation.clone(),
        family: family.into(),
        files: files.into(),
    }
}

/// A family as the tests and tools outside the library see it.
#[derive(Clone, Debug)]
pub struct FamilyInfo {
    /// Its name.
    pub name: &'static str,
    /// `path`, `credential-file`, `content` or `volume`.
    pub reads: &'static str,
    /// Its code rules' ids; for a signature family the catalog file (`signatures/<file>`).
    pub rules: Vec<&'static str>,
    /// Its scope, written out.
    pub files: String,
    /// Rules `--quick` does not report by design.
    pub quick_skips: &'static [&'static str],
    /// Usual places of its files.
    pub samples: &'static [&'static str],
}

/// Every family of the registry.
pub fn families() -> Vec<FamilyInfo> {
    FAMILIES
        .iter()
        .map(|f| FamilyInfo {
            name: f.name,
            reads: match f.reads {
                Reads::Path(_) => "path",
                Reads::Cred(_) => "credential-file",
                Reads::Content => "content",
                Reads::Volume => "volume",
            },
            rules: match f.rules {
                Rules::Code(r) => r.iter().map(|r| r.id).collect(),
                Rules::Catalog(file) => vec![file],
            },
            files: f.describe_scope(),
            quick_skips: f.quick_skips,
            samples: f.samples,
        })
        .collect()
}

#[cfg(test)]
mod tests;
