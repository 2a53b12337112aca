//! The families of the file-rule registry, one declaration each: rule ids, scope and sample
//! paths (see the registry's documentation). The path checks and credential formats keep their
//! patterns next to their parsers (`SCOPE`, `*_FILES`); the signature files' usual places, the
//! keystore probe's and what the volume checks read by path are here.

use super::pattern::{Glob, glob, glob_nocase, windows_place};
use super::{Family, Reads, Rules};
use crate::detect::checks::{
    Check, CheckRule, authorized_keys, autostart, cloud_init, history, host_keys, identity, miner,
    packages, shadow, ssh_client, sshd, sudoers, windows, windows_autoruns, windows_hijack,
    windows_hives, windows_persistence, windows_vault, windows_wmi,
};
use crate::detect::credfiles::{self, CredFile, keystore};

/// The WMI repository the windows-wmi volume check reads by path.
const WMI_FILES: &[Glob] = &[
    glob_nocase("/Windows/System32/wbem/Repository/OBJECTS.DATA"),
    glob_nocase("/Windows/System32/wbem/Repository/FS/OBJECTS.DATA"),
];

/// Signature files: every file's content; these are their usual places.
const PRIVATE_KEY_FILES: &[Glob] = &[
    glob("*.pem"),
    glob("*.key"),
    glob("*.ppk"),
    glob("*.ovpn"),
    glob("id_*"),
    glob("authorized_keys{,2}"),
    glob(".ssh/**"),
    glob_nocase("/Users/*/.ssh/**"),
    glob_nocase("/ProgramData/ssh/**"),
    glob(".gnupg/**"),
    glob("/etc/ssl/private/**"),
    glob("/etc/pki/tls/private/**"),
];
const AWS_FILES: &[Glob] = &[
    glob(".aws/**"),
    glob_nocase("/Users/*/.aws/**"),
    glob(".s3cfg"),
    glob(".boto"),
];
const CLOUD_FILES: &[Glob] = &[
    glob(".config/gcloud/**"),
    // The Google Cloud SDK on Windows keeps its credentials under the roaming profile.
    glob_nocase("/Users/*/AppData/Roaming/gcloud/**"),
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
    // Copies and backups of account files, histories and vaults outside their usual places.
    glob("{shadow,shadow-,gshadow,passwd,sudoers,fish_history}"),
    glob("*.{env,kdbx}"),
];
/// The ASP.NET, IIS and .NET configuration files' names (any case).
macro_rules! dotnet_config {
    () => {
        "{appsettings*.json,web.config,applicationHost.config,machine.config,*.exe.config}"
    };
}

/// Application configuration that holds service credentials and connection strings (web
/// frameworks' settings files, Spring, ASP.NET, Rails, twelve-factor secrets files).
const APP_CONFIG_FILES: &[Glob] = &[
    glob("settings.py"),
    glob("local_settings.py"),
    glob("application{,-*}.{properties,yml,yaml}"),
    glob("bootstrap.{properties,yml,yaml}"),
    // ASP.NET and IIS names, in any case as Windows matches them (`Web.config` is Visual
    // Studio's spelling), and .NET applications' own `<program>.exe.config`.
    glob_nocase("appsettings*.json"),
    glob_nocase("web.config"),
    glob_nocase("applicationHost.config"),
    glob_nocase("machine.config"),
    glob_nocase("*.exe.config"),
    // The same names where Windows keeps them (IIS sites, programs and their data): these match
    // only files the patterns above do; they name the places a `--quick` scan of a Windows
    // volume walks.
    windows_place(concat!("/inetpub/**/", dotnet_config!())),
    windows_place(concat!("/Program Files/**/", dotnet_config!())),
    windows_place(concat!("/Program Files (x86)/**/", dotnet_config!())),
    windows_place(concat!("/ProgramData/**/", dotnet_config!())),
    glob("config/*.{yml,yaml,json,toml,php}"),
    glob("{secrets,credentials}.{yml,yaml,json,toml}"),
];
const CICD_FILES: &[Glob] = &[
    glob("credentials.xml"),
    glob(".git/config"),
    glob(".config/hub"),
    glob(".gitlab-runner/**"),
    glob(".buildkite-agent/**"),
    glob(".circleci/**"),
    glob(".travis/**"),
    glob(".jenkins/**"),
];
const CLOUD_PROVIDER_FILES: &[Glob] = &[
    glob(".oci/**"),
    glob(".aliyun/**"),
    glob(".config/doctl/**"),
    glob(".config/openstack/**"),
    glob("clouds.yaml"),
    glob(".bluemix/**"),
];
const DATABASE_FILES: &[Glob] = &[
    glob("database.yml"),
    glob("tnsnames.ora"),
    glob("{odbc,odbcinst}.ini"),
    glob(".dbeaver/**"),
];
const KEY_FILES: &[Glob] = &[
    glob("wg*.conf"),
    glob(".config/sops/age/**"),
    glob("*.agekey"),
    glob(".password-store/.gpg-id"),
];
const PASSWORD_FILES: &[Glob] = &[
    glob(".smbcred*"),
    glob(".curlrc"),
    glob(".wgetrc"),
    glob("wpa_supplicant*.conf"),
    glob("*.nmconnection"),
];
const REGISTRY_FILES: &[Glob] = &[
    glob(".cargo/credentials{,.toml}"),
    glob(".gem/credentials"),
    glob(".m2/settings{,-security}.xml"),
    glob(".gradle/gradle.properties"),
    glob_nocase("nuget.config"),
    glob(".config/composer/auth.json"),
    glob(".composer/auth.json"),
    glob(".yarnrc{,.yml}"),
    glob(".bundle/config"),
    glob(".jfrog/**"),
    glob(".config/pip/pip.conf"),
    glob(".pip/pip.conf"),
];
/// What Windows image publishers leave behind: the EC2 launch agents' configuration, state and
/// logs, and Group Policy Preferences files (in SYSVOL, and cached on member machines); and
/// the saved sessions of the remote-access tools of windows.toml: Remote Desktop files,
/// FileZilla's site manager and recent servers, WinSCP.ini.
const WINDOWS_PUBLISHER_FILES: &[Glob] = &[
    glob_nocase("*.rdp"),
    glob_nocase("/Users/*/AppData/Roaming/FileZilla/{sitemanager,recentservers}.xml"),
    glob(".config/filezilla/{sitemanager,recentservers}.xml"),
    glob_nocase("WinSCP.ini"),
    glob_nocase("/ProgramData/Amazon/EC2Launch/**"),
    glob_nocase("/ProgramData/Amazon/EC2-Windows/Launch/**"),
    glob_nocase("/Program Files/Amazon/Ec2ConfigService/Settings/**"),
    glob_nocase("/Program Files/Amazon/Ec2ConfigService/Logs/**"),
    glob_nocase("{Groups,Services,ScheduledTasks,DataSources,Drives,Printers}.xml"),
    glob_nocase("/ProgramData/Microsoft/Group Policy/History/**"),
    glob_nocase("/Windows/SYSVOL/**"),
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
        &[
            "/etc/ssh/ssh_host_ed25519_key",
            "/ProgramData/ssh/ssh_host_ed25519_key",
        ],
    ),
    path_check(
        "snakeoil-key",
        Check::SnakeoilKey,
        &[host_keys::SNAKEOIL_RULE],
        &[host_keys::SNAKEOIL_SCOPE],
        &["/etc/ssl/private/ssl-cert-snakeoil.key"],
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
        &[
            "/tmp/xmrig",
            "/opt/miner/config.json",
            "/Users/Public/xmrig.exe",
        ],
    ),
    path_check(
        "windows-unattend",
        Check::Unattend,
        &[windows::UNATTEND_RULE],
        &[windows::SCOPE],
        &["/Windows/Panther/unattend.xml"],
    ),
    path_check(
        "windows-credential-manager",
        Check::WindowsVault,
        &[windows_vault::RULE],
        &[windows_vault::SCOPE],
        &["/Users/alice/AppData/Roaming/Microsoft/Credentials/DFBE70A7E5CC19A398EBF1B96859CE5D"],
    ),
    path_check(
        "windows-persistence",
        Check::WindowsPersistence,
        windows_persistence::RULES,
        &[&windows_persistence::SCOPE],
        &[
            "/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp/update.bat",
            "/Windows/System32/Tasks/Updater",
            "/Windows/Temp/setup.exe",
        ],
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
        &[
            "/home/alice/.aws/credentials",
            "/Users/alice/.aws/credentials",
        ],
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
    signatures(
        "cicd",
        "cicd.toml",
        &[CICD_FILES],
        &["/home/alice/.config/hub"],
    ),
    signatures(
        "cloud-providers",
        "cloud-providers.toml",
        &[CLOUD_PROVIDER_FILES, APP_CONFIG_FILES],
        &["/opt/app/appsettings.json"],
    ),
    signatures(
        "databases",
        "databases.toml",
        &[DATABASE_FILES, APP_CONFIG_FILES],
        &["/srv/app/config/database.yml"],
    ),
    signatures("keys", "keys.toml", &[KEY_FILES], &["/home/alice/wg0.conf"]),
    signatures(
        "windows-publishers",
        "windows.toml",
        &[WINDOWS_PUBLISHER_FILES],
        &["/ProgramData/Amazon/EC2Launch/config/agent-config.yml"],
    ),
    signatures(
        "passwords",
        "passwords.toml",
        &[PASSWORD_FILES],
        &["/root/.smbcredentials"],
    ),
    signatures(
        "registries",
        "registries.toml",
        &[REGISTRY_FILES],
        &["/home/alice/.cargo/credentials.toml"],
    ),
    signatures(
        "saas",
        "saas.toml",
        &[APP_CONFIG_FILES],
        &["/srv/app/config/secrets.yml"],
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
    family(
        "windows-hives",
        Reads::Volume,
        Rules::Code(windows_hives::RULES),
        &[windows_hives::HIVE_FILES],
        &[
            "/Windows/System32/config/SAM",
            "/Users/Administrator/NTUSER.DAT",
        ],
    ),
    family(
        "windows-autoruns",
        Reads::Volume,
        Rules::Code(windows_autoruns::RULES),
        &[windows_hives::AUTORUN_HIVE_FILES],
        &[
            "/Windows/System32/config/SYSTEM",
            "/Users/Default/NTUSER.DAT",
        ],
    ),
    family(
        "windows-hijacks",
        Reads::Volume,
        Rules::Code(windows_hijack::RULES),
        &[windows_hives::HIJACK_HIVE_FILES],
        &["/Windows/System32/config/SOFTWARE"],
    ),
    family(
        "windows-wmi",
        Reads::Volume,
        Rules::Code(windows_wmi::RULES),
        &[WMI_FILES],
        &["/Windows/System32/wbem/Repository/OBJECTS.DATA"],
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
