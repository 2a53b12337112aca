//! The account's request gate and the process's memory budget, end to end (issue 17): the real
//! `amiscan` binary scans an AMI of four volumes through the loopback server, which holds an
//! account-level quota across all snapshots (HTTP 400 `RequestThrottledException`, reason
//! `ACCOUNT_THROTTLED`, above it) and logs the requests it received by the second.
//!
//! - one process, quota given: no second of the server's log holds more requests than the
//!   quota, and the scan completes;
//! - two processes that know only the quota each may use, sharing it: the adaptive gates settle
//!   under it, both complete, few requests are throttled;
//! - four large volumes: the child's peak RSS (GNU time's maximum resident set) stays under
//!   300 MiB, and no more than 10% more blocks are fetched than the scan needs (the issue's
//!   target is 5%: about 1% measured here, 5.3% once on a loaded CI machine);
//! - `sweep --parallel 4` over four images of two volumes each: the peak RSS of the one process
//!   reading the eight snapshots at once stays under 300 MiB. Measured in a debug build: 283 to
//!   309 MiB (over the target in 3 of 10 runs: the full 256 MiB budget plus 30-55 MiB outside
//!   it; 277 MiB for one scan of four large volumes, 151 MiB with `--parallel 1`, 156 MiB with
//!   `--memory-mb 128`).
//!
//! Volumes are ext4 file systems written by the kernel through loop mounts.
#![cfg(feature = "aws")]

use crate::common::run;
use aws_test_server::{AccountQuota, AmiSpec, MappingSpec, ServerConfig, SnapshotSpec, TestServer};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

const AMI: &str = "ami-0a0a0a0a0a0a0a0a0";

fn snap(i: usize) -> String {
    format!("snap-0a0a0a0a0a0a0a0a{i}")
}

/// Unmounts and detaches on drop, also when the test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// An ext4 volume of `size_mb` holding `files` files of `file_mb` MiB of random bytes, and a
/// small config file, written through a loop mount.
fn volume(path: &Path, size_mb: u64, files: usize, file_mb: u64, seed: u64) {
    let _ = std::fs::remove_file(path);
    run(Command::new("truncate")
        .arg("-s")
        .arg(format!("{size_mb}M"))
        .arg(path));
    run(Command::new("mkfs.ext4").arg("-q").arg("-F").arg(path));
    let mnt = path.with_extension("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    run(Command::new("mount")
        .arg("-o")
        .arg("loop")
        .arg(path)
        .arg(&mnt));
    let guard = Mounted(mnt.clone());
    std::fs::create_dir_all(mnt.join("srv/data")).unwrap();
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    for f in 0..files {
        let mut out = std::fs::File::create(mnt.join(format!("srv/data/part{f}.bin"))).unwrap();
        std::io::copy(&mut (&mut random).take(file_mb << 20), &mut out).unwrap();
    }
    std::fs::create_dir_all(mnt.join("etc")).unwrap();
    std::fs::write(mnt.join("etc/app.conf"), format!("volume = {seed}\n")).unwrap();
    drop(guard);
    std::fs::remove_dir(&mnt).unwrap();
}

/// Four small volumes (about 24 MiB of data each), made once.
fn small() -> &'static Vec<PathBuf> {
    static V: OnceLock<Vec<PathBuf>> = OnceLock::new();
    V.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ebs-account");
        std::fs::create_dir_all(&dir).unwrap();
        (0..4)
            .map(|i| {
                let p = dir.join(format!("vol{i}.img"));
                volume(&p, 48, 3, 8, i as u64 + 1);
                p
            })
            .collect()
    })
}

/// A server with the volumes as the snapshots of one AMI.
fn server(vols: &[PathBuf]) -> TestServer {
    TestServer::start(ServerConfig {
        snapshots: vols
            .iter()
            .enumerate()
            .map(|(i, p)| SnapshotSpec::new(&snap(i), p))
            .collect(),
        amis: vec![AmiSpec {
            id: AMI.into(),
            name: "four-volumes".into(),
            owner_id: "111122223333".into(),
            public: false,
            root_device_type: "ebs".into(),
            root_device_name: "/dev/xvda".into(),
            mappings: (0..vols.len())
                .map(|i| MappingSpec {
                    device_name: format!("/dev/xvd{}", (b'a' + i as u8) as char),
                    snapshot_id: Some(snap(i)),
                    volume_size: Some(1),
                    encrypted: false,
                    virtual_name: None,
                })
                .collect(),
            description: None,
            tags: vec![],
        }],
        ..Default::default()
    })
    .unwrap()
}

/// `amiscan scan --format json AMI` against the server, started (not waited for).
fn spawn(server: &TestServer, home: &Path, wrap: &[&str], args: &[&str]) -> Child {
    let mut c = match wrap.split_first() {
        Some((w, rest)) => {
            let mut c = Command::new(w);
            c.args(rest).arg(env!("CARGO_BIN_EXE_amiscan"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_amiscan")),
    };
    c.args([
        "scan",
        "--format",
        "json",
        "--no-progress",
        "--region",
        "us-east-1",
    ])
    .arg("--endpoint-url")
    .arg(server.endpoint_url())
    .args(args)
    .arg(AMI)
    .env_clear()
    .env("HOME", home)
    .env("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
    .env("AWS_SECRET_ACCESS_KEY", "test-secret")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// Wait for the scan; its exit code and report, with the target complete.
fn finish(child: Child) -> (i32, Value) {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stderr}"));
    assert_eq!(v["targets"][0]["complete"], true, "{v:#}\n{stderr}");
    (out.status.code().unwrap_or(-1), v)
}

fn sum(v: &Value, field: &str) -> u64 {
    v["targets"][0]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[field].as_u64().unwrap())
        .sum()
}

/// One scan of four volumes with the account quota given: the gate is shared by the four
/// snapshots (each alone may go to 1,000 requests per second), so no second of the server's log
/// holds more than the quota, and nothing is throttled.
#[test]
fn four_volumes_keep_to_one_account_quota() {
    let vols = small();
    let server = server(vols);
    let quota = 60;
    server.set_account_quota(Some(AccountQuota {
        get_rps: quota,
        list_rps: 2,
    }));
    let home = tempfile::tempdir().unwrap();
    let child = spawn(
        &server,
        home.path(),
        &[],
        &["--account-rps", "60", "--account-list-rps", "2"],
    );
    let (code, v) = finish(child);
    assert!(code == 0 || code == 1, "{v:#}");
    let log = server.request_log();
    let gets: u64 = log.iter().map(|s| s.get_received).sum();
    // Enough requests for the quota to bind over several seconds.
    assert!(gets > 3 * u64::from(quota), "{gets} requests");
    for s in &log {
        assert!(
            s.get_received <= u64::from(quota) && s.list_received <= 2,
            "second {}: {s:?} over the quota\n{log:#?}",
            s.second
        );
    }
    // The gate spaces the requests it sends; the server counts them as they arrive, in a
    // sliding second, and on two loaded cores a request now and then arrives late enough to
    // bunch with the next second's (1 of 228 once, at a load of 8). A gate that let bursts
    // through would be throttled far more often than that.
    let throttled: u64 = log.iter().map(|s| s.get_throttled + s.list_throttled).sum();
    assert!(throttled * 100 <= gets, "{throttled} throttled\n{log:#?}");
    // The report: per snapshot and for the account, requests, throttles and the rate.
    let t = &v["targets"][0];
    let acct = &t["accounts"].as_array().unwrap()[..];
    assert_eq!(acct.len(), 1, "one gate for the four snapshots: {t:#}");
    assert_eq!(acct[0]["region"], "us-east-1");
    assert_eq!(acct[0]["limit_rps"], 60);
    assert_eq!(acct[0]["requests"].as_u64(), Some(sum(&v, "requests")));
    assert_eq!(acct[0]["requests"].as_u64(), Some(gets));
    let get_throttled: u64 = log.iter().map(|s| s.get_throttled).sum();
    assert_eq!(acct[0]["throttles"].as_u64(), Some(get_throttled));
    // One listing per snapshot, and one more for each the server throttled (retried): under
    // load two of them arrive in one sliding second now and then (5 once, at a load of 4).
    let list_throttled: u64 = log.iter().map(|s| s.list_throttled).sum();
    assert_eq!(
        acct[0]["list_requests"].as_u64(),
        Some(4 + list_throttled),
        "{log:#?}"
    );
    let rate = acct[0]["achieved_rps"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= f64::from(quota), "{rate}");
    for s in t["snapshots"].as_array().unwrap() {
        assert!(s["request_rate"].as_f64().unwrap() > 0.0, "{s:#}");
    }
}

/// Two processes, each told only the quota it may use (as two machines of one account
/// are, with the defaults), share it: both throttled at first, their gates cut and settle under
/// it. Both complete, and few requests are throttled.
#[test]
fn two_processes_sharing_a_quota_settle_under_it() {
    let vols = small();
    let server = server(vols);
    let quota = 60;
    server.set_account_quota(Some(AccountQuota {
        get_rps: quota,
        list_rps: 50,
    }));
    let homes = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let args = ["--account-rps", "60"];
    let a = spawn(&server, homes[0].path(), &[], &args);
    let b = spawn(&server, homes[1].path(), &[], &args);
    let (ca, va) = finish(a);
    let (cb, vb) = finish(b);
    assert!(
        [ca, cb].iter().all(|c| [0, 1].contains(c)),
        "{va:#}\n{vb:#}"
    );
    let log = server.request_log();
    let received: u64 = log.iter().map(|s| s.get_received).sum();
    let throttled: u64 = log.iter().map(|s| s.get_throttled).sum();
    // Each gate saw its throttles and cut.
    for v in [&va, &vb] {
        let acct = &v["targets"][0]["accounts"][0];
        assert_eq!(
            acct["throttles"].as_u64(),
            Some(sum(v, "throttles")),
            "{acct:#}"
        );
    }
    let cuts: u64 = [&va, &vb]
        .iter()
        .map(|v| v["targets"][0]["accounts"][0]["cuts"].as_u64().unwrap())
        .sum();
    assert!(
        cuts >= 1 || throttled == 0,
        "throttled but never cut: {log:#?}"
    );
    assert!(
        throttled * 10 <= received,
        "{throttled} of {received} requests throttled\n{log:#?}"
    );
}

/// Four volumes of 200 MiB of data each, scanned in one process with the default budget: the
/// caches of the volumes not being read give their memory back, so the peak RSS stays under
/// 300 MiB (it was about 900 MiB with a cache per snapshot), and blocks are fetched within
/// issue 17's 5% of the blocks read (416–420 requests for 416 blocks measured since a volume
/// starting its plan gets a cache's worth of demand at once; 1.053× once in CI before that).
#[test]
fn four_large_volumes_stay_in_the_memory_budget() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let vols: Vec<PathBuf> = (0..4)
        .map(|i| {
            let p = dir.path().join(format!("big{i}.img"));
            volume(&p, 256, 25, 8, 10 + i as u64);
            p
        })
        .collect();
    let server = server(&vols);
    let home = tempfile::tempdir().unwrap();
    let rss = dir.path().join("rss");
    let rss_arg = rss.to_str().unwrap();
    let child = spawn(
        &server,
        home.path(),
        &["/usr/bin/time", "-f", "%M", "-o", rss_arg],
        &[],
    );
    let (code, v) = finish(child);
    assert!(code == 0 || code == 1, "{v:#}");
    let kib: u64 = std::fs::read_to_string(&rss)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!("four large volumes: peak RSS {} MiB", kib / 1024);
    assert!(kib < 300 * 1024, "peak RSS {} MiB", kib / 1024);
    for i in 0..4 {
        let acc = server.accounting(&snap(i));
        let distinct = acc.get_counts.len() as u64;
        // The 200 MiB of data are 400 blocks.
        assert!(distinct >= 400, "{}: {distinct} blocks read", snap(i));
        // Issue 17's target is at most 5% more requests than blocks. While the budget was
        // shared by "read within the last second" this was 1.06× to 1.27× under the load of the
        // whole suite (opening the other volumes cut the share of the one being scanned, and
        // blocks read ahead were dropped before they were read); with shares by demand and
        // read-ahead kept until read, 1.00× to 1.01× at a load of 8 here, and 1.053× once for
        // the first volume in a CI run (its share is still split while the others are opened).
        // The bound catches a budget that thrashes, not the target.
        eprintln!(
            "{}: {} requests for {distinct} blocks",
            snap(i),
            acc.get_calls()
        );
        assert!(
            acc.get_calls() * 100 <= distinct * 105,
            "{}: {} requests for {distinct} blocks",
            snap(i),
            acc.get_calls()
        );
    }
}

/// `sweep --parallel 4` over four images of two volumes each (every image its own snapshot
/// set, so each is scanned; 48 MiB of random data per volume, 384 MiB read in all): the four
/// images' eight snapshots are read at once and share the one memory budget, so the peak RSS
/// stays under 300 MiB whatever `--parallel` is. With all of the default 256 MiB for blocks it
/// peaked at 267–309 MiB (each scan holds some memory besides blocks); a sweep now keeps 16 MiB
/// per image scanned at once beyond the first outside the blocks' part: 235–253 MiB.
#[test]
fn a_parallel_sweep_of_multi_volume_images_stays_in_the_memory_budget() {
    use crate::ebs_support::{ami_spec, records, test_env};
    use aws_test_server::ImageSpec;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let vols: Vec<PathBuf> = (0..4)
        .map(|i| {
            let p = dir.path().join(format!("sweep{i}.img"));
            volume(&p, 64, 6, 8, 20 + i as u64);
            p
        })
        .collect();
    let server = TestServer::start(ServerConfig {
        snapshots: vols
            .iter()
            .enumerate()
            .map(|(i, p)| SnapshotSpec::new(&snap(i), p))
            .collect(),
        ..Default::default()
    })
    .unwrap();
    // Four distinct snapshot sets over the four volumes.
    let sets = [[0, 1], [2, 3], [0, 2], [1, 3]];
    let images: Vec<String> = (0..sets.len())
        .map(|n| format!("ami-0b0b0b0b0b0b0b0b{n}"))
        .collect();
    for (id, set) in images.iter().zip(sets) {
        let snaps: Vec<String> = set.iter().map(|&i| snap(i)).collect();
        let snaps: Vec<&str> = snaps.iter().map(String::as_str).collect();
        server.add_image(ImageSpec::new(
            "us-east-1",
            ami_spec(
                id,
                &format!("two-volumes-{id}"),
                "111122223333",
                false,
                &snaps,
            ),
        ));
    }
    let home = tempfile::tempdir().unwrap();
    let rss = dir.path().join("rss");
    let state = dir.path().join("state");
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%M", "-o"])
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_amiscan"))
        .args([
            "sweep",
            "--regions",
            "us-east-1",
            "--parallel",
            "4",
            "--format",
            "jsonl",
            "--state",
        ])
        .arg(&state)
        .args(["--region", "us-east-1", "--endpoint-url"])
        .arg(server.endpoint_url());
    test_env(&mut c, home.path());
    let (code, out) = crate::ebs_support::finish(c.output().unwrap());
    assert_eq!(code, 0, "{out}");
    let imgs = records(&out, "image");
    assert_eq!(imgs.len(), 4, "{out}");
    for v in &imgs {
        assert_eq!(v["status"], "clean", "{out}");
        assert_eq!(v["cached"], false, "{out}");
    }
    // Every block of every image was read: at least the 96 blocks of data of each volume, in
    // each of the two images it belongs to.
    for i in 0..4 {
        let acc = server.accounting(&snap(i));
        assert!(
            acc.get_calls() >= 2 * 96,
            "{}: {}",
            snap(i),
            acc.get_calls()
        );
    }
    let kib: u64 = std::fs::read_to_string(&rss)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!(
        "sweep --parallel 4 of four images of two volumes: peak RSS {} MiB",
        kib / 1024
    );
    assert!(kib < 300 * 1024, "peak RSS {} MiB", kib / 1024);
}
