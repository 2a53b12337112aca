//! Sweeps at organisation scale against the loopback server with the real SDK clients: four
//! worker processes (`--shard 0/4 … 3/4`) over one account of 12 images (some sharing
//! snapshots) and one shared state (a directory, or S3), each image scanned once and the merged
//! `--report` equal to a single-process sweep, each worker given a quarter of the account's
//! quota (`--account-rps`) and the server's log of `GetSnapshotBlock` requests holding no
//! sliding second above the quota in any region; a worker killed mid-image (SIGKILL) and its
//! rerun; the S3 conditional create; member accounts of an organisation (`--org-role`,
//! `--accounts`) for `sweep` and `audit`.
#![cfg(feature = "aws")]

use aws_test_server::{
    AccountQuota, AmiSpec, BlockRequest, Faults, ImageSpec, ServerConfig, SnapshotSpec, TestServer,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

const ME: &str = "111122223333";
const M1: &str = "222233334444";
const M2: &str = "333344445555";
const M3: &str = "444455556666";
const ROLE: &str = "AmiscanScan";
const BUCKET: &str = "amiscan-state";

use crate::ebs_support::gpt_disk as img;
use crate::ebs_support::{amiscan_command, assumed_roles, finish, org_account, records, role_arns};

fn snap(n: u32) -> String {
    format!("snap-0c{n:015x}")
}

fn ami_id(n: u32) -> String {
    format!("ami-0d{n:015x}")
}

fn ami(id: &str, snaps: &[String], owner: &str) -> AmiSpec {
    let snaps: Vec<&str> = snaps.iter().map(String::as_str).collect();
    crate::ebs_support::ami_spec(id, &format!("image-{id}"), owner, false, &snaps)
}

/// Ten snapshots (odd ones leaky) and twelve images of `ME` over two regions: eight with one
/// snapshot each, one with two, one with the same snapshot as the first (one state entry for
/// both), one sharing a snapshot with another image, one more with a single snapshot.
fn fleet(faults: Faults) -> (TestServer, Vec<(String, String, Vec<String>)>) {
    let snapshots = (1..=10)
        .map(|n| SnapshotSpec::new(&snap(n), &img(n % 2 == 1)))
        .collect();
    let s = TestServer::start(ServerConfig {
        snapshots,
        faults,
        ..Default::default()
    })
    .unwrap();
    let mut seeds: Vec<(String, String, Vec<String>)> = (1..=8)
        .map(|n| {
            let region = if n % 2 == 0 { "us-west-2" } else { "us-east-1" };
            (ami_id(n), region.to_string(), vec![snap(n)])
        })
        .collect();
    seeds.push((ami_id(9), "us-east-1".into(), vec![snap(9), snap(10)]));
    seeds.push((ami_id(10), "us-west-2".into(), vec![snap(1)]));
    seeds.push((ami_id(11), "us-west-2".into(), vec![snap(2), snap(9)]));
    seeds.push((ami_id(12), "us-east-1".into(), vec![snap(10)]));
    for (id, region, snaps) in &seeds {
        s.add_image(ImageSpec::new(region, ami(id, snaps, ME)));
    }
    s.create_bucket(BUCKET);
    (s, seeds)
}

fn command(server: &TestServer, args: &[&str]) -> Command {
    amiscan_command(server, &std::env::temp_dir(), args)
}

fn amiscan(server: &TestServer, args: &[&str]) -> (i32, String) {
    finish(command(server, args).output().unwrap())
}

/// FNV-1a 64 of the sorted snapshot ids, each followed by `\n`: the shard function as the
/// README documents it, written again here so a change to it fails this test.
fn shard_of(snaps: &[String], n: u64) -> u64 {
    let mut ids = snaps.to_vec();
    ids.sort();
    let mut h: u64 = 0xcbf29ce484222325;
    for id in ids {
        for b in id.bytes().chain([b'\n']) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
    }
    h % n
}

/// Image lines without `cached`, sorted by image id: what must be equal between a sharded
/// sweep's report and a single-process sweep.
fn comparable(v: &[Value]) -> Vec<Value> {
    let mut v: Vec<Value> = v
        .iter()
        .map(|x| {
            let mut x = x.clone();
            x.as_object_mut().unwrap().remove("cached");
            x
        })
        .collect();
    v.sort_by_key(|x| x["image_id"].to_string());
    v
}

/// The account's `GetSnapshotBlock` quota per region in the four-worker sweeps, and the share
/// each of the four is given. The fleet's images are small (about 80 block requests for all):
/// the quota is low enough for the sweep to last several seconds at it.
const QUOTA: u32 = 12;
const WORKER_RPS: u32 = QUOTA / 4;

/// The most requests of one region in any sliding second (`(t - 1 s, t]`, as the server
/// counts), with the region and the second's end.
fn busiest_second(log: &[BlockRequest]) -> (usize, String, std::time::Duration) {
    let mut by_region: BTreeMap<&str, Vec<std::time::Duration>> = BTreeMap::new();
    for r in log {
        by_region.entry(r.region.as_str()).or_default().push(r.at);
    }
    let mut best = (0, String::new(), std::time::Duration::ZERO);
    for (region, mut times) in by_region {
        times.sort();
        let mut first = 0;
        for (last, t) in times.iter().enumerate() {
            while *t - times[first] >= std::time::Duration::from_secs(1) {
                first += 1;
            }
            if last + 1 - first > best.0 {
                best = (last + 1 - first, region.to_string(), *t);
            }
        }
    }
    best
}

/// Four workers over one shared state, each given a quarter of the account's quota, then
/// `--report`, compared with one process.
fn four_workers(state: &str, single_state: &str) {
    let (s, seeds) = fleet(Faults::default());
    // The server throttles above the quota (per account and region, as the service does);
    // the workers, told a quarter each, keep to it together.
    s.set_account_quota(Some(AccountQuota {
        get_rps: QUOTA,
        list_rps: 50,
    }));
    let worker_rps = WORKER_RPS.to_string();
    let base = [
        "sweep",
        "--regions",
        "us-east-1,us-west-2",
        "--format",
        "jsonl",
        "--parallel",
        "2",
        "--state",
        state,
    ];
    // Workers 0 and 1 by --shard; 2 and 3 by --shards with the index of Kubernetes Indexed Jobs
    // and of AWS Batch array jobs.
    let mut children = Vec::new();
    for k in 0..4u32 {
        let spec = format!("{k}/4");
        let mut a = base.to_vec();
        a.extend(["--account-rps", worker_rps.as_str()]);
        let mut c;
        match k {
            2 => {
                a.extend(["--shards", "4"]);
                c = command(&s, &a);
                c.env("JOB_COMPLETION_INDEX", "2");
            }
            3 => {
                a.extend(["--shards", "4"]);
                c = command(&s, &a);
                c.env("AWS_BATCH_JOB_ARRAY_INDEX", "3");
            }
            _ => {
                a.extend(["--shard", spec.as_str()]);
                c = command(&s, &a);
            }
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    let mut all: Vec<Value> = Vec::new();
    for (k, child) in children.into_iter().enumerate() {
        let (code, out) = finish(child.wait_with_output().unwrap());
        let imgs = records(&out, "image");
        let want: BTreeSet<String> = seeds
            .iter()
            .filter(|(_, _, snaps)| shard_of(snaps, 4) == k as u64)
            .map(|(id, _, _)| id.clone())
            .collect();
        let got: BTreeSet<String> = imgs
            .iter()
            .map(|v| v["image_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "worker {k} swept another shard: {out}");
        let summary = &records(&out, "summary")[0];
        assert_eq!(summary["shard"], format!("{k}/4"), "{out}");
        let leaky = seeds
            .iter()
            .filter(|(id, _, snaps)| want.contains(id) && snaps.iter().any(|s| is_leaky(s)))
            .count();
        assert_eq!(code, if leaky > 0 { 1 } else { 0 }, "worker {k}: {out}");
        all.extend(imgs);
    }
    // Every image once; every snapshot set scanned once (the image sharing its snapshots with
    // another is answered from that one's result).
    assert_eq!(all.len(), 12);
    let ids: BTreeSet<&str> = all
        .iter()
        .map(|v| v["image_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 12);
    let scanned: Vec<BTreeSet<String>> = all
        .iter()
        .filter(|v| v["cached"] == false)
        .map(|v| {
            v["snapshots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    let distinct: BTreeSet<_> = scanned.iter().cloned().collect();
    assert_eq!(scanned.len(), 11, "{all:?}");
    assert_eq!(distinct.len(), 11);

    // The server's log: no sliding second of one region above the quota, nothing throttled,
    // and enough requests (several seconds at the quota) for the quota to bind.
    let log = s.block_requests();
    let (most, region, at) = busiest_second(&log);
    let throttled = log.iter().filter(|r| r.throttled).count();
    eprintln!(
        "four workers at {WORKER_RPS}/s each: {} GetSnapshotBlock requests, at most {most} in a \
         second ({region}, ending at {at:?}) of a quota of {QUOTA}, {throttled} throttled",
        log.len()
    );
    assert!(log.len() > 3 * QUOTA as usize, "{} requests", log.len());
    assert!(
        most <= QUOTA as usize,
        "{most} requests in the second ending at {at:?} in {region}"
    );
    assert_eq!(throttled, 0, "{:#?}", s.request_log());
    let list_throttled: u64 = s.request_log().iter().map(|x| x.list_throttled).sum();
    assert_eq!(list_throttled, 0, "{:#?}", s.request_log());
    // The single-process sweep below keeps the default rate.
    s.set_account_quota(None);

    // The merged report reads the state and scans nothing.
    let gets_before: u64 = (1..=10).map(|n| s.accounting(&snap(n)).get_calls()).sum();
    let mut a = base.to_vec();
    a.push("--report");
    let (code, report) = amiscan(&s, &a);
    assert_eq!(code, 1, "{report}");
    let gets_after: u64 = (1..=10).map(|n| s.accounting(&snap(n)).get_calls()).sum();
    assert_eq!(gets_before, gets_after, "--report read blocks");
    let rep = records(&report, "image");
    assert!(rep.iter().all(|v| v["cached"] == true), "{report}");
    let rsum = &records(&report, "summary")[0];
    assert_eq!(rsum["report_only"], true);
    assert_eq!(rsum["not_reached"], 0);

    // One process, its own state: the same images, statuses and findings.
    let mut one = base.to_vec();
    let pos = one.iter().position(|x| *x == state).unwrap();
    one[pos] = single_state;
    let (code1, single) = amiscan(&s, &one);
    assert_eq!(code1, code, "{single}");
    assert_eq!(comparable(&rep), comparable(&records(&single, "image")));
    let ssum = &records(&single, "summary")[0];
    for k in ["images", "clean", "with_findings", "incomplete", "failed"] {
        assert_eq!(rsum[k], ssum[k], "{k}: {report}\n{single}");
    }

    // SARIF from the state: valid, one result per finding of every image.
    let mut a = base.to_vec();
    a.extend(["--report"]);
    let fpos = a.iter().position(|x| *x == "jsonl").unwrap();
    a[fpos] = "sarif";
    let (code, sarif) = amiscan(&s, &a);
    assert_eq!(code, 1, "{sarif}");
    let v: Value = serde_json::from_str(&sarif).unwrap();
    crate::reports::assert_valid_sarif(&v);
    let findings: usize = rep
        .iter()
        .map(|x| x["findings"].as_array().unwrap().len())
        .sum();
    assert!(findings > 0);
    assert_eq!(v["runs"][0]["results"].as_array().unwrap().len(), findings);

    // The text report groups by account and region.
    let mut a = base.to_vec();
    a.push("--report");
    let fpos = a.iter().position(|x| *x == "jsonl").unwrap();
    a[fpos] = "text";
    let (_, text) = amiscan(&s, &a);
    let table: Vec<&str> = text
        .lines()
        // The caller's own account is `-`.
        .filter(|l| l.starts_with("- "))
        .filter(|l| l.split_whitespace().count() == 7)
        .collect();
    assert_eq!(table.len(), 2, "{text}");
    assert!(
        table[0].contains("us-east-1") && table[1].contains("us-west-2"),
        "{text}"
    );
}

fn is_leaky(snapshot: &str) -> bool {
    (1..=10).any(|n| snap(n) == snapshot && n % 2 == 1)
}

#[test]
fn four_shards_over_a_shared_directory_scan_each_image_once() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("state");
    let single = dir.path().join("single");
    four_workers(shared.to_str().unwrap(), single.to_str().unwrap());
    let objects: Vec<String> = std::fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(objects.len(), 11, "{objects:?}");
    assert!(
        objects
            .iter()
            .all(|o| o.ends_with(".json") && !o.starts_with('.'))
    );
}

#[test]
fn four_shards_over_shared_s3_state_scan_each_image_once() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    four_workers(
        &format!("s3://{BUCKET}/sweeps/nightly"),
        single.to_str().unwrap(),
    );
}

#[test]
fn s3_state_pages_and_never_replaces_an_object() {
    use amiscan::aws::state::CachedScan;
    use amiscan::aws::store::{StateLocation, StateStore, Stored};
    let (s, _) = fleet(Faults::default());
    s.set_s3_max_keys(Some(2));
    let aws = amiscan::aws::AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(s.endpoint_url()),
        credentials: Some(aws_sdk_ebs::config::Credentials::new(
            "AKIDTESTTESTTEST",
            "test-secret",
            None,
            None,
            "amiscan-tests",
        )),
        ..Default::default()
    };
    let store =
        StateStore::open(&StateLocation::parse("s3://amiscan-state/p").unwrap(), &aws).unwrap();
    let scan = |n: u32, image: &str| CachedScan {
        image_id: image.into(),
        region: "us-east-1".into(),
        snapshot_ids: vec![snap(n)],
        catalog_version: "cat-test".into(),
        scanned_at: 1,
        findings: vec![],
    };
    for n in 1..=5 {
        assert_eq!(store.put(&scan(n, "ami-first")).unwrap(), Stored::New);
    }
    // A second writer of the same key: S3 answers 412, the first result stays.
    assert_eq!(
        store.put(&scan(3, "ami-second")).unwrap(),
        Stored::AlreadyThere
    );
    let puts: Vec<u16> = s
        .s3_calls()
        .iter()
        .filter(|c| c.operation == "PutObject")
        .map(|c| c.status)
        .collect();
    assert_eq!(puts, [200, 200, 200, 200, 200, 412]);
    let loaded = store.load_all().unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.entries.len(), 5);
    assert!(loaded.entries.values().all(|c| c.image_id == "ami-first"));
    // Three pages of at most two keys.
    let lists = s
        .s3_calls()
        .iter()
        .filter(|c| c.operation == "ListObjectsV2")
        .count();
    assert_eq!(lists, 3);
    // One object per key under the prefix, named by the key.
    let names: Vec<String> = s.s3_objects(BUCKET).into_keys().collect();
    let want: Vec<String> = (1..=5)
        .map(|n| format!("p/{}@cat-test.json", snap(n)))
        .collect();
    assert_eq!(names, want);
}

#[test]
fn a_worker_killed_mid_image_leaves_no_partial_result_and_its_rerun_completes() {
    // Slow answers, so the worker is inside an image when it is killed.
    let (s, seeds) = fleet(Faults {
        latency: std::time::Duration::from_millis(50),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let st = state.to_str().unwrap();
    let args = [
        "sweep",
        "--regions",
        "us-east-1,us-west-2",
        "--format",
        "jsonl",
        "--parallel",
        "1",
        "--state",
        st,
        "--shard",
        "0/1",
    ];
    let stored = |state: &Path| -> Vec<String> {
        std::fs::read_dir(state)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut child = command(&s, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for two stored results and block reads of a snapshot set not stored yet: the
    // worker is in the middle of an image.
    let snapshot_sets: Vec<&Vec<String>> = seeds.iter().map(|x| &x.2).collect();
    let mut killed_mid_image = false;
    for _ in 0..6000 {
        let names = stored(&state);
        if names.len() >= 2 {
            let in_progress = snapshot_sets.iter().any(|set| {
                let is_stored = names
                    .iter()
                    .any(|n| n.starts_with(&format!("{}@", set.join("+"))));
                !is_stored && set.iter().any(|x| s.accounting(x).get_calls() > 0)
            });
            if in_progress {
                child.kill().unwrap(); // SIGKILL
                killed_mid_image = true;
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the worker ended before it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(killed_mid_image);
    let status = child.wait().unwrap();
    assert!(!status.success());
    // Only whole results: every visible object parses; nothing else but hidden temporary files.
    let before = stored(&state);
    assert!(before.len() >= 2 && before.len() < 11, "{before:?}");
    for name in &before {
        assert!(name.ends_with(".json"), "{name}");
        let text = std::fs::read_to_string(state.join(name)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v["findings"].is_array());
    }
    // The rerun answers the stored ones from the state and scans the rest.
    s.set_faults(Faults::default());
    let (code, out) = amiscan(&s, &args);
    assert_eq!(code, 1, "{out}");
    let imgs = records(&out, "image");
    assert_eq!(imgs.len(), 12, "{out}");
    assert_eq!(stored(&state).len(), 11);
    let cached = imgs.iter().filter(|v| v["cached"] == true).count();
    // The stored sets, plus the image that shares its snapshot with another.
    assert_eq!(cached, before.len() + 1, "{out}");
    // And the report of the completed set has every image.
    let mut a = args.to_vec();
    a.retain(|x| *x != "--shard" && *x != "0/1");
    a.push("--report");
    let (code, rep) = amiscan(&s, &a);
    assert_eq!(code, 1, "{rep}");
    assert_eq!(records(&rep, "summary")[0]["not_reached"], 0, "{rep}");
}

#[test]
fn a_report_before_every_shard_ran_says_what_is_missing() {
    let (s, seeds) = fleet(Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state");
    let st = st.to_str().unwrap();
    let base = [
        "sweep",
        "--regions",
        "us-east-1,us-west-2",
        "--format",
        "jsonl",
        "--state",
        st,
    ];
    let mut a = base.to_vec();
    a.extend(["--shard", "1/3"]);
    let (_, _) = amiscan(&s, &a);
    let mut a = base.to_vec();
    a.push("--report");
    let (code, rep) = amiscan(&s, &a);
    let missing = seeds
        .iter()
        .filter(|(_, _, snaps)| shard_of(snaps, 3) != 1)
        .count();
    assert!(missing > 0);
    let imgs = records(&rep, "image");
    assert_eq!(
        imgs.iter().filter(|v| v["status"] == "not_scanned").count(),
        missing,
        "{rep}"
    );
    assert_eq!(records(&rep, "summary")[0]["not_reached"], missing);
    // Findings in the shard that ran make it 1; without them it is 3 (incomplete).
    let leaky = seeds
        .iter()
        .any(|(_, _, snaps)| shard_of(snaps, 3) == 1 && snaps.iter().any(|x| is_leaky(x)));
    assert_eq!(code, if leaky { 1 } else { 3 }, "{rep}");
    // --shards without an index is a usage error.
    let mut a = base.to_vec();
    a.extend(["--shards", "4"]);
    let (code, out) = amiscan(&s, &a);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("JOB_COMPLETION_INDEX"), "{out}");
}

/// An organisation: `ME` manages it, `M1` and `M2` are members with the role, `M3` is
/// suspended. Each member owns images; the management account one.
fn organisation() -> TestServer {
    let snapshots = (1..=4)
        .map(|n| SnapshotSpec::new(&snap(n), &img(n == 2)))
        .collect();
    let s = TestServer::start(ServerConfig {
        snapshots,
        ..Default::default()
    })
    .unwrap();
    s.set_organization(
        ME,
        vec![
            org_account(ME, "ACTIVE"),
            org_account(M1, "ACTIVE"),
            org_account(M2, "ACTIVE"),
            org_account(M3, "SUSPENDED"),
        ],
    );
    s.set_org_page_size(Some(1));
    s.add_role(M1, ROLE);
    s.add_role(M2, ROLE);
    s.add_role(M3, ROLE);
    s.add_image(ImageSpec::new("us-east-1", ami(&ami_id(1), &[snap(1)], ME)));
    s.add_image(ImageSpec::new("us-east-1", ami(&ami_id(2), &[snap(2)], M1)));
    s.add_image(ImageSpec::new("us-west-2", ami(&ami_id(3), &[snap(3)], M1)));
    s.add_image(ImageSpec::new("us-east-1", ami(&ami_id(4), &[snap(4)], M2)));
    s.create_bucket(BUCKET);
    s
}

#[test]
fn org_role_sweeps_every_member_account_and_groups_the_report() {
    let s = organisation();
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state");
    let st = st.to_str().unwrap();
    let args = [
        "sweep",
        "--regions",
        "us-east-1,us-west-2",
        "--format",
        "jsonl",
        "--state",
        st,
        "--org-role",
        ROLE,
    ];
    let (code, out) = amiscan(&s, &args);
    assert_eq!(code, 1, "{out}");
    let imgs = records(&out, "image");
    let by: BTreeMap<String, String> = imgs
        .iter()
        .map(|v| {
            (
                v["image_id"].as_str().unwrap().to_string(),
                v["account"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = [(1, ME), (2, M1), (3, M1), (4, M2)]
        .iter()
        .map(|(n, a)| (ami_id(*n), a.to_string()))
        .collect();
    assert_eq!(by, want, "{out}");
    let leaky = imgs.iter().find(|v| v["image_id"] == ami_id(2)).unwrap();
    assert_eq!(leaky["status"], "findings");
    let summary = &records(&out, "summary")[0];
    assert_eq!(summary["accounts"], serde_json::json!([ME, M1, M2]));
    assert!(
        summary["region_errors"].as_array().unwrap().is_empty(),
        "{out}"
    );
    // Roles assumed in the active members only; the management account uses its own keys.
    assert_eq!(assumed_roles(&s), role_arns(&[M1, M2], ROLE));

    // --accounts picks members; a text report groups by account and region.
    let (code, text) = amiscan(
        &s,
        &[
            "sweep",
            "--regions",
            "us-east-1,us-west-2",
            "--state",
            st,
            "--org-role",
            ROLE,
            "--accounts",
            M1,
            "--report",
        ],
    );
    assert_eq!(code, 1, "{text}");
    let table: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().count() == 7 && l.starts_with(M1))
        .collect();
    assert_eq!(table.len(), 2, "{text}");
    assert!(!text.contains(M2), "{text}");

    // audit works the same way, one entry per account and region.
    let (_, audit) = amiscan(
        &s,
        &[
            "audit",
            "--regions",
            "us-east-1",
            "--state",
            st,
            "--org-role",
            ROLE,
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&audit).unwrap_or_else(|e| panic!("{e}: {audit}"));
    let accounts: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, [ME, M1, M2], "{audit}");
}

#[test]
fn a_member_without_the_role_is_reported_not_skipped() {
    let s = organisation();
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state");
    let (code, out) = amiscan(
        &s,
        &[
            "sweep",
            "--regions",
            "us-east-1",
            "--format",
            "jsonl",
            "--state",
            st.to_str().unwrap(),
            "--org-role",
            "NoSuchRole",
        ],
    );
    let summary = &records(&out, "summary")[0];
    let errors = summary["region_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{out}");
    assert!(
        errors
            .iter()
            .all(|e| e.as_str().unwrap().contains("account")),
        "{out}"
    );
    // The management account's own image is still swept.
    assert_eq!(records(&out, "image").len(), 1, "{out}");
    assert_eq!(code, 3, "{out}");
    // A caller outside an organisation is told so.
    s.set_account("AKIDOUTSIDE", M3);
    let mut c = command(&s, &["sweep", "--regions", "us-east-1", "--org-role", ROLE]);
    c.env("AWS_ACCESS_KEY_ID", "AKIDOUTSIDE");
    let (code, out) = finish(c.output().unwrap());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("organizations:ListAccounts"), "{out}");
}
