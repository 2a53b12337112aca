//! Windows AMIs end to end through the EBS direct APIs (issue 15): the Windows disks of
//! tests/it/ntfs.rs (an MBR table with one NTFS partition, made by mkntfs and written through
//! ntfs-3g, registry hives by hivexsh) served as the snapshots of two AMIs by the loopback test
//! server, read by the unmodified AWS SDK.
//!
//! - the leaky AMI gives exactly the findings (rule, volume, path, severity, fingerprint) of
//!   the same disk image scanned locally, complete; every block is fetched once, and nothing
//!   the scan does not read is fetched but the EBS source's start-up window (a twentieth of
//!   the listed blocks: here the first block, which the scan reads) and one block of read-ahead
//!   (needed: the listed 512 KiB blocks the local scan read, recorded on the image file; the
//!   figure is printed, see docs/ARCHITECTURE.md);
//! - an NTFS volume of 4,000 small files whose blocks fill its cache is fetched within 5% of
//!   the blocks it needs (1.000× measured);
//! - `amiscan publish --fail-on medium` shares the clean AMI (exit 0: its scan is complete with
//!   nothing at medium or above), and `amiscan publish` refuses the leaky one (exit 1, nothing
//!   shared).
#![cfg(feature = "aws")]

use crate::common::{nonzero_blocks, scan_recorded};
use crate::ebs_support::scan_ami;
use crate::ntfs::disk;
use amiscan::detect::Detector;
use amiscan::report::{Finding, Severity};
use amiscan::source::ebs::EbsOptions;
use aws_test_server::{AmiSpec, ImageSpec, MappingSpec, ServerConfig, SnapshotSpec, TestServer};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const LEAKY: &str = "ami-0d0d0d0d0d0d0d0d1";
const CLEAN: &str = "ami-0d0d0d0d0d0d0d0d2";
const LEAKY_SNAP: &str = "snap-0d0d0d0d0d0d0d0d1";
const CLEAN_SNAP: &str = "snap-0d0d0d0d0d0d0d0d2";
const OWNER: &str = "111122223333";

fn ami(id: &str, snap: &str) -> AmiSpec {
    AmiSpec {
        id: id.into(),
        name: format!("Windows_Server-2022-English-Full-Base-{id}"),
        owner_id: OWNER.into(),
        public: false,
        root_device_type: "ebs".into(),
        root_device_name: "/dev/sda1".into(),
        mappings: vec![MappingSpec {
            device_name: "/dev/sda1".into(),
            snapshot_id: Some(snap.into()),
            volume_size: Some(1),
            encrypted: false,
            virtual_name: None,
        }],
        description: None,
        tags: vec![],
    }
}

fn server(leaky: &Path, clean: &Path) -> TestServer {
    let s = TestServer::start(ServerConfig {
        snapshots: vec![
            SnapshotSpec::new(LEAKY_SNAP, leaky),
            SnapshotSpec::new(CLEAN_SNAP, clean),
        ],
        ..Default::default()
    })
    .unwrap();
    s.add_image(ImageSpec::new("us-east-1", ami(LEAKY, LEAKY_SNAP)));
    s.add_image(ImageSpec::new("us-east-1", ami(CLEAN, CLEAN_SNAP)));
    s
}

/// (rule, volume, path, severity, fingerprint) of every finding; `prefix` is put before the
/// volume id (an AMI's volumes are named after their device).
type Key = (String, String, String, Severity, String);

fn keys(findings: &[Finding], prefix: &str) -> BTreeSet<Key> {
    findings
        .iter()
        .map(|f| {
            (
                f.rule.clone(),
                format!("{prefix}{}", f.volume),
                f.path.clone().unwrap_or_default(),
                f.severity,
                f.fingerprint.clone(),
            )
        })
        .collect()
}

/// `amiscan ARGS --region us-east-1 --endpoint-url …` against the server: (exit code, output).
fn amiscan(server: &TestServer, args: &[&str]) -> (i32, String) {
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    crate::ebs_support::amiscan(server, home.path(), args)
}

#[test]
fn windows_ami_through_ebs_gives_the_local_findings_and_publish_gates_it() {
    // The two disks are made side by side (each is mostly waiting on ntfs-3g and hivexsh).
    let (leaky_dir, clean_dir) = std::thread::scope(|s| {
        let clean = s.spawn(|| disk("ami-clean", "clean"));
        (disk("ami-leaky", "leaky"), clean.join().unwrap())
    });
    let leaky = leaky_dir.join("disk.img");
    let clean = clean_dir.join("disk.img");

    // The local scan of the leaky disk, with the blocks it reads recorded.
    let (local, read) = scan_recorded(&leaky, false);
    assert!(local.complete, "{:?}", local.errors);
    let want = keys(&local.findings, "sda1:");
    assert!(
        want.iter()
            .any(|k| k.0 == "windows-admin-password" && k.3 == Severity::Critical),
        "{want:#?}"
    );
    assert!(want.len() >= 15, "{want:#?}");

    let s = server(&leaky, &clean);
    let r = scan_ami(&s, LEAKY, &Detector::builtin().unwrap());
    assert!(r.complete, "{:?}", r.errors);
    assert_eq!(keys(&r.findings, ""), want);
    let vols: Vec<_> = r
        .volumes
        .iter()
        .map(|v| (v.id.as_str(), v.filesystem.as_deref()))
        .collect();
    assert_eq!(vols, [("sda1:p1", Some("ntfs"))]);

    // Blocks: none fetched twice, none unlisted. Needed: the listed blocks the local scan
    // read. What else is fetched must be the source's start-up window (the first listed
    // blocks, fetched before the volume is even probed: `prefetch_blocks`, at most a twentieth
    // of the listed blocks; it was a fixed 16 of these 21, which fetched 1.40× the blocks
    // needed) or read-ahead one listed block past a needed one (a stream read before the plan
    // came); never the sweep of a block nothing reads (the $LogFile, $MFTMirr, a deleted file's
    // clusters, the backup boot sector). Measured: 15 fetched for 15 needed.
    let acc = s.accounting(LEAKY_SNAP);
    assert_eq!(acc.unlisted_requests, 0);
    let fetched = acc.get_calls();
    let distinct = acc.get_counts.len() as u64;
    assert_eq!(
        fetched, distinct,
        "a block was fetched twice: {:?}",
        acc.get_counts
    );
    let listed: Vec<u64> = nonzero_blocks(&leaky).into_iter().collect();
    assert_eq!(listed.len() as u64, r.snapshots[0].blocks_listed);
    let needed: BTreeSet<u64> = listed
        .iter()
        .filter(|b| read.contains(b))
        .copied()
        .collect();
    let window = EbsOptions::default()
        .prefetch_blocks
        .min((listed.len() / 20).max(1));
    let explained = |b: u64| {
        let i = listed.iter().position(|&x| x == b).unwrap();
        i < window || (i > 0 && needed.contains(&listed[i - 1]))
    };
    let extra: Vec<u64> = acc
        .get_counts
        .keys()
        .filter(|b| !needed.contains(b))
        .copied()
        .collect();
    eprintln!(
        "windows AMI (leaky, {} MiB disk): listed {}, fetched {fetched} (distinct {distinct}), \
         needed {}: fetched/needed {:.3}; fetched, not needed: {extra:?} (listed: {listed:?})",
        std::fs::metadata(&leaky).unwrap().len() >> 20,
        listed.len(),
        needed.len(),
        fetched as f64 / needed.len() as f64
    );
    let unexplained: Vec<u64> = extra.iter().copied().filter(|&b| !explained(b)).collect();
    assert!(
        unexplained.is_empty(),
        "fetched and never read: {unexplained:?}"
    );
    assert!(needed.iter().all(|b| acc.get_counts.contains_key(b)));

    // The publish gate: the leaky AMI is refused and stays private; the clean one is shared
    // even when refusing at medium (publish shares only a complete scan with nothing at or
    // above --fail-on).
    let (code, out) = amiscan(&s, &["publish", LEAKY, "--public"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOT published"), "{out}");
    assert!(!s.image("us-east-1", LEAKY).unwrap().public);
    let (code, out) = amiscan(&s, &["publish", CLEAN, "--public", "--fail-on", "medium"]);
    assert_eq!(code, 0, "{out}");
    assert!(s.image("us-east-1", CLEAN).unwrap().public);

    let _ = std::fs::remove_dir_all(&leaky_dir);
    let _ = std::fs::remove_dir_all(&clean_dir);
}

/// An NTFS volume of many small files whose blocks fill its cache, read through EBS (issue 15:
/// blocks fetched within 5% of those needed, as on Linux). ntfs-3g writes 4,000 documents of
/// 1–12 KiB in 40 directories (packed side by side in the clusters, many to a 512 KiB block,
/// and found by the walk directory by directory) and eight 2 MiB programs; the scan has a
/// 96 MiB memory budget: a 54 MiB cache for the ~57 MiB of blocks the scan reads, the ratio of
/// the 153 MiB bench volume that fetched 1.21× the blocks needed before the cache knew which
/// blocks the plan had read through (blocks holding many small files were evicted after their
/// first file and fetched again; benches/README.md). Measured 1.000×. The findings are the
/// local scan's. (With a cache a third or half the blocks read, NTFS still fetches more than
/// ext4 does: the next test, and benches/README.md.)
#[test]
fn an_ntfs_volume_filling_its_cache_is_fetched_within_five_percent_of_needed() {
    use crate::common::workdir;

    let dir = workdir("ntfs-ebs", "cache");
    let (img, read, want) = ntfs_volume(
        &dir,
        "share/pkg17/deploy.txt",
        r#"import os, random, sys
r = random.Random(15)
root = sys.argv[1]
words = "the of and to in is for on that with as by this are from be or it an at".split()
words += "package documentation license copyright changelog install usage example".split()
for d in range(40):
    p = os.path.join(root, "share", f"pkg{d:02}")
    os.makedirs(p)
    for f in range(100):
        n = r.randint(1024, 12 * 1024)
        text = " ".join(r.choice(words) for _ in range(n // 4))[:n]
        with open(os.path.join(p, f"doc{f:03}.txt"), "w") as out:
            out.write(text)
os.makedirs(os.path.join(root, "bin"))
for i in range(8):
    with open(os.path.join(root, "bin", f"tool{i}.exe"), "wb") as out:
        out.write(r.randbytes(2 << 20))
"#,
    );

    let (fetched, needed) = fetched_through_ebs(&img, &read, 96 << 20, &want, "54 MiB cache");
    assert!(needed > 80, "{needed} blocks needed");
    assert!(
        fetched * 100 <= needed * 105,
        "{fetched} requests for {needed} blocks needed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Windows root's MFT (200–500 MiB) is larger than the block cache the default budget gives
/// (144 MiB). ntfs-3g writes 10,000 files in 100 directories (half of them small enough to
/// live in their MFT record) on 96 MiB: a 10 MiB MFT, read through EBS with a 16 MiB budget
/// (a 9 MiB cache, a fifth of the 42 MiB read). First each file's record was read again to
/// open it, and each directory's when it was listed, after its block was evicted: 3.75–3.84×
/// the blocks needed here. With each record read once by the walk
/// (`ntfs::the_walk_reads_each_record_once`): 2.66–2.94×. With the MFT read in record order
/// before the walk and directories' records held for their listings
/// (`ntfs::after_the_table_pass_a_full_walk_and_its_files_read_no_record`): 1.85–1.92×. The rest
/// are the walk's reads of directory indexes that ntfs-3g puts among the files' data
/// (benches/README.md). The bound catches either coming back; the findings are the local
/// scan's.
#[test]
fn an_ntfs_volume_whose_mft_outgrows_the_cache_is_not_read_again_per_file() {
    use crate::common::workdir;

    let dir = workdir("ntfs-ebs", "mft");
    let (img, read, want) = ntfs_volume(
        &dir,
        "Windows/d7/pkg73/setup.ini",
        r#"import os, random, sys
r = random.Random(16)
root = sys.argv[1]
words = "the of and to in is for on that with as by this are from be or it an at".split()
for d in range(100):
    p = os.path.join(root, "Windows", f"d{d // 10}", f"pkg{d:02}")
    os.makedirs(p)
    for f in range(100):
        n = r.choice([r.randint(100, 600), r.randint(1024, 6 * 1024)])
        with open(os.path.join(p, f"f{f:03}.dll"), "w") as out:
            out.write(" ".join(r.choice(words) for _ in range(n // 3))[:n])
"#,
    );
    let (fetched, needed) = fetched_through_ebs(&img, &read, 16 << 20, &want, "9 MiB cache");
    assert!(needed > 60, "{needed} blocks needed");
    assert!(
        fetched * 100 <= needed * 230,
        "{fetched} requests for {needed} blocks needed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 96 MiB NTFS volume `vol.img` in `dir` made by mkntfs, its files written through ntfs-3g by
/// the Python `script` (given the mount point as `root` and a `random.Random` as `r`), and a
/// fresh fake AWS key pair written at `key` (relative to the root). Returns the image, the
/// blocks its local scan read and that scan's findings (complete, the key found).
fn ntfs_volume(dir: &Path, key: &str, script: &str) -> (PathBuf, BTreeSet<u64>, BTreeSet<Key>) {
    crate::common::sh(
        &format!(
            "set -euo pipefail
truncate -s 96M vol.img
mkntfs -q -F -Q vol.img
mkdir -p m
ntfs-3g vol.img m
trap 'umount m 2>/dev/null || true' EXIT
python3 - m <<'PY'
{script}
with open(os.path.join(root, {key:?}), 'w') as out:
    out.write('aws_access_key_id = AKIA' + ''.join(r.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567') for _ in range(16)) + '\\n')
    out.write('aws_secret_access_key = ' + ''.join(r.choice('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+') for _ in range(40)) + '\\n')
PY
umount m
"
        ),
        dir,
    );
    let img = dir.join("vol.img");
    let (local, read) = scan_recorded(&img, false);
    assert!(local.complete, "{:?}", local.errors);
    let want = keys(&local.findings, "");
    assert!(
        want.iter().any(|k| k.2.strip_prefix('/') == Some(key)),
        "{want:#?}"
    );
    (img, read, want)
}

/// Scan the volume image `img` through the test server (5 ms per request) with a memory budget
/// of `budget` bytes: the findings must be `want` (the local scan's, which read the blocks
/// `read`). Returns the blocks fetched (requests answered) and the listed blocks the scan
/// needed, printed with `what`; the blocks fetched more than once are printed too.
fn fetched_through_ebs(
    img: &Path,
    read: &BTreeSet<u64>,
    budget: u64,
    want: &BTreeSet<Key>,
    what: &str,
) -> (u64, u64) {
    use amiscan::scan::{Disk, ScanOptions, scan_disks};
    use amiscan::source::ebs::MemoryBudget;
    use aws_test_server::Faults;
    use std::time::Duration;

    const SNAP: &str = "snap-0d0d0d0d0d0d0d0d3";
    let s = TestServer::start(ServerConfig {
        snapshots: vec![SnapshotSpec::new(SNAP, img)],
        faults: Faults {
            latency: Duration::from_millis(5),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let session = crate::ebs_support::session(&s);
    let opts = EbsOptions {
        memory: Some(MemoryBudget::new(budget)),
        ..crate::ebs_support::fast_opts()
    };
    let src = session.open_snapshot(SNAP, opts).unwrap();
    let r = scan_disks(
        SNAP.into(),
        vec![Disk {
            label: None,
            source: src,
        }],
        &Detector::builtin().unwrap(),
        &ScanOptions::default(),
    );
    assert!(r.complete, "{:?}", r.errors);
    assert_eq!(&keys(&r.findings, ""), want);

    let listed = nonzero_blocks(img);
    let needed = listed.iter().filter(|b| read.contains(b)).count() as u64;
    let acc = s.accounting(SNAP);
    assert_eq!(acc.unlisted_requests, 0);
    let fetched = acc.get_calls();
    eprintln!(
        "NTFS volume through EBS, {what}: listed {}, needed {needed}, fetched {fetched} \
         (distinct {}): {:.3}× needed; fetched more than once: {:?}",
        listed.len(),
        acc.get_counts.len(),
        fetched as f64 / needed as f64,
        acc.get_counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect::<Vec<_>>()
    );
    (fetched, needed)
}
