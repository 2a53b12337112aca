//! Archives and compressed files inside a filesystem, `--quick`, `--min-severity` and
//! `--unallocated`, on images built with the real tools: tar, gzip, bzip2, xz, zstd, zip,
//! `mke2fs -d`, `debugfs -w -R "rm ..."` (unlinks and frees blocks without zeroing them),
//! `mkfs.xfs` (through `testdata/mkfs-xfs-tree.py`) and `xfs_db`.

use crate::common::{bash, rule_paths, run, scan_json, testdata, workdir};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A bash script in `dir`, with `$TD` the test data and `testdata/mke2fs.conf` for `mke2fs`.
fn sh(script: &str, dir: &Path) -> String {
    run(bash(script)
        .current_dir(dir)
        .env("MKE2FS_CONFIG", testdata().join("mke2fs.conf"))
        .env("TD", testdata()))
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// An ext4 image whose files are archives and compressed files holding the leaky tree's
/// secrets, plus a gzip bomb and a plain file outside the well-known paths.
fn archive_image() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_archive_image).clone()
}

fn build_archive_image() -> PathBuf {
    let dir = workdir("archives", "archive-image");
    sh(
        r#"
        L=$TD/trees/leaky
        mkdir -p stage/etc stage/home/alice/.ssh inner/etc tree/root tree/srv tree/var/log \
                 tree/opt/config tree/tmp tree/etc tree/home/alice/.aws
        cp $L/etc/shadow stage/etc/shadow
        cp $L/home/alice/.ssh/id_rsa stage/home/alice/.ssh/id_rsa
        tar -C stage -czf tree/root/backup.tar.gz etc home
        cp $L/home/alice/.ssh/id_rsa inner/etc/key.pem
        tar -C inner -czf inner.tar.gz etc
        zip -q -j tree/srv/bundle.zip inner.tar.gz
        cp $L/home/alice/.aws/credentials creds
        xz -c creds > tree/var/log/keys.xz
        zstd -q -c creds > tree/var/log/data.zst
        bzip2 -c creds > tree/var/log/notes.bz2
        cp creds tree/opt/config/app.properties
        (cd tree/opt && zip -q -r app.jar config && rm -r config)
        head -c 64M /dev/zero | gzip -c > tree/tmp/bomb.gz
        cp $L/etc/shadow tree/etc/shadow
        cp creds tree/home/alice/.aws/credentials
        cp creds tree/opt/notes.txt
        mke2fs -q -t ext4 -d tree -F fs.img 48M
        "#,
        &dir,
    );
    dir.join("fs.img")
}

#[test]
fn archive_members_are_reported_by_their_full_path_and_a_bomb_is_not_followed() {
    let img = archive_image();
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{t:#}");
    let got = rule_paths(&t, "(none)");
    let want = set(&[
        ("shadow-password-hash", "/root/backup.tar.gz!etc/shadow"),
        ("shadow-empty-password", "/root/backup.tar.gz!etc/shadow"),
        (
            "pem-private-key",
            "/root/backup.tar.gz!home/alice/.ssh/id_rsa",
        ),
        (
            "pem-private-key",
            "/srv/bundle.zip!inner.tar.gz!etc/key.pem",
        ),
        ("aws-access-key-pair", "/var/log/keys.xz"),
        ("aws-access-key-pair", "/var/log/data.zst"),
        ("aws-access-key-pair", "/var/log/notes.bz2"),
        ("aws-access-key-pair", "/opt/app.jar!config/app.properties"),
        ("archive-bomb", "/tmp/bomb.gz"),
        ("aws-access-key-pair", "/opt/notes.txt"),
        ("aws-access-key-pair", "/home/alice/.aws/credentials"),
        ("shadow-password-hash", "/etc/shadow"),
        ("shadow-empty-password", "/etc/shadow"),
    ]);
    assert_eq!(got, want, "{t:#}");
    // The bomb makes the scan incomplete, with an error naming it.
    assert_eq!(t["complete"], false);
    assert_eq!(t["mode"], "full");
    let errors = t["volumes"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["path"], "/tmp/bomb.gz");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("decompression bomb")
    );
}

#[test]
fn quick_reads_only_well_known_paths_and_says_so() {
    let img = archive_image();
    let (code, t) = scan_json(&img, &["--quick"]);
    assert_eq!(code, 1);
    assert_eq!(t["mode"], "quick");
    assert_eq!(t["complete"], true, "the bomb was not read: {t:#}");
    assert_eq!(
        rule_paths(&t, "(none)"),
        set(&[
            ("aws-access-key-pair", "/home/alice/.aws/credentials"),
            ("shadow-password-hash", "/etc/shadow"),
            ("shadow-empty-password", "/etc/shadow"),
        ])
    );
    assert_eq!(t["volumes"][0]["files_scanned"], 2);
    let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(["scan", "--quick", "--no-progress", "--color", "never"])
        .arg(&img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("quick scan: only well-known paths were read"),
        "{text}"
    );
}

#[test]
fn min_severity_drops_findings_and_fail_on_sees_only_what_remains() {
    let img = archive_image();
    let sevs = |t: &Value| -> Vec<String> {
        t["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["severity"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = scan_json(&img, &["--quick"]);
    assert!(sevs(&all).iter().any(|s| s == "high"), "{all:#}");
    let (code, t) = scan_json(&img, &["--quick", "--min-severity", "critical"]);
    assert_eq!(code, 1);
    let kept = sevs(&t);
    assert!(
        !kept.is_empty() && kept.iter().all(|s| s == "critical"),
        "{t:#}"
    );
    // The bomb (low) is dropped from the report, but the scan stays incomplete.
    let (code, t) = scan_json(&img, &["--min-severity", "medium", "--fail-on", "critical"]);
    assert!(
        rule_paths(&t, "(none)")
            .iter()
            .all(|(r, _)| r != "archive-bomb")
    );
    assert_eq!((code, &t["complete"]), (1, &Value::Bool(false)));
    // --fail-on looks at the findings that remain: the criticals still fail the scan.
    let (code, t) = scan_json(
        &img,
        &[
            "--quick",
            "--min-severity",
            "critical",
            "--fail-on",
            "critical",
        ],
    );
    assert_eq!(code, 1, "{t:#}");
}

#[test]
fn a_deleted_key_is_found_only_with_unallocated() {
    let dir = workdir("archives", "deleted");
    sh(
        r#"
        mkdir -p tree/etc
        echo hello > tree/etc/motd
        cp $TD/trees/leaky/opt/app/tls/server.key tree/secret.pem
        mke2fs -q -t ext4 -d tree -F fs.img 16M
        debugfs -w -R "rm /secret.pem" fs.img 2>/dev/null
        "#,
        &dir,
    );
    let img = dir.join("fs.img");
    let (code, t) = scan_json(&img, &[]);
    assert_eq!((code, rule_paths(&t, "(none)").len()), (0, 0), "{t:#}");
    assert!(t["volumes"][0].get("unallocated_bytes_scanned").is_none());

    let (code, t) = scan_json(&img, &["--unallocated"]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let f = t["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{t:#}");
    assert_eq!(f[0]["rule"], "pem-private-key");
    assert!(f[0]["path"].is_null());
    assert!(
        f[0]["evidence"]
            .as_str()
            .unwrap()
            .starts_with("[unallocated] ")
    );
    let offset = f[0]["offset"].as_u64().unwrap();
    let bytes = std::fs::read(&img).unwrap();
    let at = &bytes[usize::try_from(offset).unwrap()..][..40];
    assert!(
        String::from_utf8_lossy(at).contains("-----BEGIN"),
        "{:?}",
        String::from_utf8_lossy(at)
    );
    assert!(
        t["volumes"][0]["unallocated_bytes_scanned"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn xfs_free_extents_match_xfs_db() {
    let dir = workdir("archives", "xfs-free");
    sh(
        r#"
        mkdir -p tree/etc
        cp -r $TD/trees/leaky/etc/. tree/etc/
        python3 $TD/mkfs-xfs-tree.py tree fs.img 64m >/dev/null
        "#,
        &dir,
    );
    let img = dir.join("fs.img");
    let db = |cmds: &[&str]| {
        let mut c = Command::new("xfs_db");
        c.arg("-r");
        for cmd in cmds {
            c.args(["-c", cmd]);
        }
        let out = c.arg(&img).output().expect("xfs_db runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let geo = db(&["sb 0", "p agblocks blocksize logstart logblocks"]);
    let field = |name: &str| -> u64 {
        geo.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("{name} in {geo}"))
            .trim()
            .parse()
            .unwrap()
    };
    let (agblocks, bs) = (field("agblocks"), field("blocksize"));
    // xfs_db lists one line per btree record: merge adjacent ones as the reader does.
    let mut want: Vec<(u64, u64)> = vec![];
    for line in db(&["freesp -d"]).lines() {
        let n: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if let [agno, agbno, len] = n[..] {
            let off = (agno * agblocks + agbno) * bs;
            match want.last_mut() {
                Some(l) if l.0 + l.1 == off => l.1 += len * bs,
                _ => want.push((off, len * bs)),
            }
        }
    }
    assert!(!want.is_empty());
    let src = amiscan::source::FileSource::open(&img).unwrap();
    let regions = amiscan::fs::xfs::free::free_regions(&src).unwrap();
    let got: Vec<(u64, u64)> = regions
        .iter()
        .filter(|r| r.kind == amiscan::fs::ext4_free::RegionKind::Unallocated)
        .map(|r| (r.offset, r.len))
        .collect();
    assert_eq!(got, want);
    let log: Vec<_> = regions
        .iter()
        .filter(|r| r.kind == amiscan::fs::ext4_free::RegionKind::Journal)
        .collect();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].len, field("logblocks") * bs);
    // And the whole thing scans clean and complete.
    let (_, t) = scan_json(&img, &["--unallocated"]);
    assert_eq!(t["complete"], true, "{t:#}");
}

/// The ext4 free space `--unallocated` reads is exactly what `dumpe2fs` lists as free, and the
/// journal is exactly the journal inode's blocks (`debugfs blocks <8>`): classic layout with
/// 4 KiB blocks, and `meta_bg` with 1 KiB blocks.
#[test]
fn ext4_free_blocks_match_dumpe2fs() {
    for (name, opts) in [
        ("classic", "-b 4096"),
        ("meta-bg", "-b 1024 -O meta_bg,^resize_inode"),
    ] {
        let dir = workdir("ext4-free", name);
        sh(
            &format!(
                "mkdir -p tree/etc && echo hi > tree/etc/motd && \
                 mke2fs -q -t ext4 {opts} -d tree -F fs.img 48M"
            ),
            &dir,
        );
        let img = dir.join("fs.img");
        let dump = sh("dumpe2fs fs.img 2>/dev/null", &dir);
        let bs: u64 = dump
            .lines()
            .find_map(|l| l.strip_prefix("Block size:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut want: Vec<(u64, u64)> = vec![];
        for line in dump.lines() {
            let Some(list) = line.strip_prefix("  Free blocks:") else {
                continue;
            };
            for range in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                match want.last_mut() {
                    Some(l) if l.0 + l.1 == a * bs => l.1 += (b - a + 1) * bs,
                    _ => want.push((a * bs, (b - a + 1) * bs)),
                }
            }
        }
        let src: amiscan::source::SharedSource =
            std::sync::Arc::new(amiscan::source::FileSource::open(&img).unwrap());
        let regions = amiscan::fs::ext4_free::free_regions(&src).unwrap();
        let of = |k| -> Vec<(u64, u64)> {
            regions
                .iter()
                .filter(|r| r.kind == k)
                .map(|r| (r.offset, r.len))
                .collect()
        };
        assert_eq!(
            of(amiscan::fs::ext4_free::RegionKind::Unallocated),
            want,
            "{name}"
        );
        let journal: Vec<u64> = sh("debugfs -R 'blocks <8>' fs.img 2>/dev/null", &dir)
            .split_whitespace()
            .map(|b| b.parse().unwrap())
            .collect();
        let total: u64 = of(amiscan::fs::ext4_free::RegionKind::Journal)
            .iter()
            .map(|r| r.1)
            .sum();
        assert_eq!(total, journal.len() as u64 * bs, "{name}");
        assert_eq!(
            of(amiscan::fs::ext4_free::RegionKind::Journal)[0].0,
            journal[0] * bs,
            "{name}"
        );
    }
}

/// A Spring Boot-like fat jar of about 80 MiB (more than the 64 MiB a zip may take in memory),
/// made by the `zip` CLI: incompressible padding first, then a deflated
/// `BOOT-INF/classes/application.properties` with a freshly generated AWS key pair, and a
/// stored `BOOT-INF/lib/inner.jar` holding another. Returns the jar's directory.
fn big_jar() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = workdir("archives", "big-jar");
            sh(
                r#"
                key() { printf 'AKIA%s' "$(tr -dc 'A-Z2-7' </dev/urandom | head -c 16)"; }
                secret() { tr -dc 'A-Za-z0-9/+' </dev/urandom | head -c 40; }
                mkdir -p jar/pad jar/META-INF jar/BOOT-INF/classes jar/BOOT-INF/lib inner/config
                for i in 1 2 3 4; do head -c 20M /dev/urandom > jar/pad/blob$i.bin; done
                printf 'Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader.launch.JarLauncher\n' \
                    > jar/META-INF/MANIFEST.MF
                { for i in $(seq 1 200); do echo "logging.level.app.module$i=INFO"; done
                  echo "aws.accessKeyId=$(key)"; echo "aws_secret_access_key=$(secret)"; } \
                    > jar/BOOT-INF/classes/application.properties
                { echo "aws_access_key_id = $(key)"; echo "aws_secret_access_key = $(secret)"; } \
                    > inner/config/db.properties
                (cd inner && zip -q -r ../jar/BOOT-INF/lib/inner.jar config)
                # Nested jars are stored (-n .jar), as Spring Boot writes them; padding first.
                (cd jar && zip -q -r -n .jar ../app.jar pad META-INF BOOT-INF)
                [ "$(stat -c %s app.jar)" -gt $((64 << 20)) ]
                unzip -v app.jar | grep -E ' Defl:.* BOOT-INF/classes/application.properties$'
                unzip -v app.jar | grep -E ' Stored .* BOOT-INF/lib/inner.jar$'
                "#,
                &dir,
            );
            dir
        })
        .clone()
}

/// `app.jar` copied into /srv of a fresh filesystem made by `mkfs`: ext4 and XFS through a loop
/// mount, as the kernel writes them; FAT with `mcopy` (kernels without the vfat module exist
/// where these tests run).
fn jar_image(fs: &str) -> PathBuf {
    let jar = big_jar();
    let dir = workdir("archives", &format!("big-jar-{fs}"));
    let script = match fs {
        "vfat" => r#"
            truncate -s 400M fs.img
            mkfs.vfat -F 32 fs.img >/dev/null
            mmd -i fs.img ::/srv
            mcopy -i fs.img "$1/app.jar" ::/srv/app.jar
            "#
        .to_string(),
        _ => format!(
            r#"
            truncate -s 400M fs.img
            {}
            mkdir -p mnt
            trap 'mountpoint -q mnt && umount mnt; true' EXIT
            mount -o loop fs.img mnt
            mkdir mnt/srv
            cp "$1/app.jar" mnt/srv/app.jar
            umount mnt
            "#,
            if fs == "ext4" {
                "mkfs.ext4 -q -F fs.img"
            } else {
                "mkfs.xfs -q -f fs.img"
            }
        ),
    };
    run(bash(&script).arg("jar-image").arg(&jar).current_dir(&dir));
    dir.join("fs.img")
}

/// Issue 22: a zip larger than the memory allowance is opened by offset on the volume, not
/// left unopened: the key pair in a deflated member and the one in a jar stored inside it are
/// found, and the scan is complete.
#[test]
fn a_jar_larger_than_memory_is_opened_by_offset_with_its_nested_jar() {
    for fs in ["ext4", "xfs", "vfat"] {
        let img = jar_image(fs);
        let (code, t) = scan_json(&img, &[]);
        assert_eq!(code, 1, "{fs}: {t:#}");
        assert_eq!(t["complete"], true, "{fs}: {t:#}");
        let errors = t["volumes"][0]["errors"].as_array().unwrap();
        assert!(errors.is_empty(), "{fs}: {errors:#?}");
        let got = rule_paths(&t, "(none)");
        let want = set(&[
            (
                "aws-access-key-pair",
                "/srv/app.jar!BOOT-INF/classes/application.properties",
            ),
            (
                "aws-access-key-pair",
                "/srv/app.jar!BOOT-INF/lib/inner.jar!config/db.properties",
            ),
        ]);
        assert_eq!(got, want, "{fs}: {t:#}");
    }
}
