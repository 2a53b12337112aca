//! Fleet workflows end to end against the loopback server with the real SDK clients: sweep over
//! regions with a state file (once per snapshot, resumable), publish (refuse / share), scan
//! through a temporary copy (cleanup after success and after a failure mid-scan), and audit
//! (one instance of each class).
#![cfg(feature = "aws")]

use aws_test_server::{
    AllowedImagesSpec, AmiSpec, EbsErrorSpec, ImageSpec, InstanceSpec, ServerConfig, SnapshotSpec,
    TestServer,
};
use serde_json::Value;

const ME: &str = "111122223333";
const OTHER: &str = "999988887777";

use crate::ebs_support::gpt_disk as img;
use crate::ebs_support::{amiscan_command, finish, records};

fn ami(id: &str, snap: &str, owner: &str, public: bool) -> AmiSpec {
    crate::ebs_support::ami_spec(id, &format!("image-{id}"), owner, public, &[snap])
}

/// `(id, snapshot, region, leaky, owner, public)`.
type Seed<'a> = (&'a str, &'a str, &'a str, bool, &'a str, bool);

fn server(seeds: &[Seed<'_>]) -> TestServer {
    let snapshots = seeds
        .iter()
        .map(|(_, snap, _, leaky, _, _)| SnapshotSpec::new(snap, &img(*leaky)))
        .collect();
    let s = TestServer::start(ServerConfig {
        snapshots,
        ..Default::default()
    })
    .unwrap();
    for (id, snap, region, _, owner, public) in seeds {
        s.add_image(ImageSpec::new(region, ami(id, snap, owner, *public)));
    }
    s
}

fn amiscan(server: &TestServer, args: &[&str]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let out = amiscan_command(server, home.path(), args)
        .env("AMISCAN_COPY_POLL_MS", "20")
        .output()
        .unwrap();
    finish(out)
}

const A1: &str = "ami-0a000000000000001";
const A2: &str = "ami-0a000000000000002";
const A3: &str = "ami-0a000000000000003";
const A4: &str = "ami-0a000000000000004";
const A5: &str = "ami-0a000000000000005";

#[test]
fn sweep_scans_each_snapshot_once_and_resumes_after_an_interruption() {
    let seeds: [Seed<'_>; 5] = [
        (A1, "snap-0b000000000000001", "us-east-1", false, ME, false),
        (A2, "snap-0b000000000000002", "us-east-1", true, ME, true),
        (A3, "snap-0b000000000000003", "us-west-2", false, ME, false),
        (A4, "snap-0b000000000000004", "us-west-2", true, ME, false),
        // Not ours: never swept.
        (A5, "snap-0b000000000000005", "us-west-2", true, OTHER, true),
    ];
    let s = server(&seeds);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let st = state.to_str().unwrap();
    let base = [
        "sweep",
        "--regions",
        "us-east-1,us-west-2",
        "--format",
        "jsonl",
        "--parallel",
        "1",
        "--state",
        st,
    ];
    // Interrupted after 2 images: the public one comes first.
    let mut a = base.to_vec();
    a.extend(["--stop-after", "2"]);
    let (code, out) = amiscan(&s, &a);
    let first = records(&out, "image");
    assert_eq!(first.len(), 2, "{out}");
    assert_eq!(first[0]["image_id"], A2, "public first: {out}");
    assert_eq!(first[0]["status"], "findings");
    assert_eq!(code, 1, "{out}");
    let summary = &records(&out, "summary")[0];
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["public_with_findings"], 1);
    assert!(state.exists());

    // Resumed: only the two others are scanned.
    let (code, out) = amiscan(&s, &base);
    assert_eq!(code, 1, "{out}");
    let second = records(&out, "image");
    assert_eq!(second.len(), 4, "{out}");
    assert_eq!(second.iter().filter(|v| v["cached"] == true).count(), 2);
    assert!(second.iter().all(|v| v["image_id"] != A5));
    for (id, snap, _, leaky, owner, _) in &seeds {
        let gets = s.accounting(snap).get_calls();
        if *owner == ME {
            assert!(gets > 0, "{snap} never read");
        } else {
            assert_eq!(gets, 0, "{snap} of another owner read");
        }
        let line = second.iter().find(|v| v["image_id"] == *id);
        if let Some(l) = line {
            assert_eq!(
                l["status"],
                if *leaky { "findings" } else { "clean" },
                "{l}"
            );
        }
    }
    let before: Vec<u64> = seeds
        .iter()
        .map(|x| s.accounting(x.1).get_calls())
        .collect();

    // Third run: nothing scanned, same results.
    let (code, out) = amiscan(&s, &base);
    assert_eq!(code, 1, "{out}");
    let third = records(&out, "image");
    let after: Vec<u64> = seeds
        .iter()
        .map(|x| s.accounting(x.1).get_calls())
        .collect();
    assert_eq!(before, after, "a cached sweep read blocks");
    assert!(third.iter().all(|v| v["cached"] == true));
    let strip = |v: &[Value]| {
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
    };
    assert_eq!(strip(&second), strip(&third));
    let summary = &records(&out, "summary")[0];
    assert_eq!(summary["scanned"], 0);
    assert_eq!(summary["cached"], 4);
}

/// A `--quick` sweep's results never stand in for a full scan: the next full sweep scans the
/// image again (and a second quick sweep reuses the quick result).
#[test]
fn a_quick_sweep_is_not_reused_by_a_full_sweep() {
    let s = server(&[(A1, "snap-0b000000000000001", "us-east-1", false, ME, true)]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let base = [
        "sweep",
        "--regions",
        "us-east-1",
        "--format",
        "jsonl",
        "--state",
        state.to_str().unwrap(),
    ];
    let run = |quick: bool| {
        let mut a = base.to_vec();
        if quick {
            a.push("--quick");
        }
        let (_, out) = amiscan(&s, &a);
        let image = records(&out, "image").remove(0);
        (
            image["cached"] == true,
            s.accounting("snap-0b000000000000001").get_calls(),
        )
    };
    let (cached, quick_gets) = run(true);
    assert!(!cached && quick_gets > 0);
    let (cached, gets) = run(true);
    assert!(
        cached && gets == quick_gets,
        "a second quick sweep reuses the quick scan"
    );
    let (cached, full_gets) = run(false);
    assert!(!cached, "a full sweep reused a quick scan");
    assert!(full_gets > quick_gets);
    let (cached, gets) = run(false);
    assert!(cached && gets == full_gets);
}

#[test]
fn publish_refuses_a_leaky_image_and_shares_a_clean_one() {
    let s = server(&[
        (A1, "snap-0b000000000000001", "us-east-1", true, ME, false),
        (A2, "snap-0b000000000000002", "us-east-1", false, ME, false),
    ]);
    let (code, out) = amiscan(&s, &["publish", A1, "--public"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOT published"), "{out}");
    assert_eq!(s.ec2_call_count("ModifyImageAttribute"), 0);
    assert!(!s.image("us-east-1", A1).unwrap().public);

    let (code, out) = amiscan(&s, &["publish", A2, "--accounts", "444455556666"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        s.image("us-east-1", A2).unwrap().shared_with,
        vec!["444455556666".to_string()]
    );
    let (code, out) = amiscan(&s, &["publish", A2, "--public"]);
    assert_eq!(code, 0, "{out}");
    assert!(s.image("us-east-1", A2).unwrap().public);
}

fn copy_server() -> TestServer {
    // A public AMI of another account: its snapshot cannot be read with the EBS direct APIs.
    let mut snap = SnapshotSpec::new("snap-0b000000000000009", &img(true));
    snap.list_error = Some(EbsErrorSpec::unauthorized_account());
    snap.get_error = Some(EbsErrorSpec::unauthorized_account());
    let s = TestServer::start(ServerConfig {
        snapshots: vec![snap],
        ..Default::default()
    })
    .unwrap();
    s.add_image(ImageSpec::new(
        "us-east-1",
        ami(A1, "snap-0b000000000000009", OTHER, true),
    ));
    s
}

fn assert_cleaned(s: &TestServer) {
    let copies = s.copies("us-east-1");
    assert_eq!(copies.len(), 1, "{copies:?}");
    for (id, state) in &copies {
        assert_eq!(state, "deregistered", "{id}");
        let snaps = s.image("us-east-1", id).unwrap().snapshots;
        assert!(!snaps.is_empty());
        for sn in snaps {
            assert!(!s.has_snapshot(&sn), "{sn} not deleted");
            assert!(s.deleted_snapshots().contains(&sn));
        }
    }
    assert!(s.has_snapshot("snap-0b000000000000009"), "source touched");
}

#[test]
fn scan_copy_cleans_up_after_success() {
    let s = copy_server();
    let (code, out) = amiscan(&s, &["scan", "--format", "json", "--no-progress", A1]);
    assert_ne!(
        code, 0,
        "direct read of a foreign snapshot must fail: {out}"
    );
    let (code, out) = amiscan(
        &s,
        &["scan", "--format", "json", "--no-progress", "--copy", A1],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("temporary copy"), "{out}");
    assert_cleaned(&s);
}

#[test]
fn scan_copy_cleans_up_after_a_failure_mid_scan() {
    let s = copy_server();
    s.fail_gets_after("snap-c", 3);
    let (code, out) = amiscan(
        &s,
        &["scan", "--format", "json", "--no-progress", "--copy", A1],
    );
    assert_ne!(code, 0, "{out}");
    assert_cleaned(&s);
}

#[test]
fn audit_classifies_every_instance() {
    const AMZ: &str = "ami-0c000000000000001";
    const MINE: &str = "ami-0c000000000000002";
    const ALLOWED: &str = "ami-0c000000000000003";
    const TRUSTED: &str = "ami-0c000000000000004";
    const SHARED: &str = "ami-0c000000000000005";
    const PUBLIC: &str = "ami-0c000000000000006";
    const GONE: &str = "ami-0c000000000000007";
    let s = server(&[]);
    let r = "us-west-2";
    let mut amz = ImageSpec::new(r, ami(AMZ, "snap-x1", "137112412989", true));
    amz.owner_alias = Some("amazon".into());
    s.add_image(amz);
    s.add_image(ImageSpec::new(r, ami(MINE, "snap-x2", ME, true)));
    s.add_image(ImageSpec::new(
        r,
        ami(ALLOWED, "snap-x3", "444455556666", true),
    ));
    s.add_image(ImageSpec::new(
        r,
        ami(TRUSTED, "snap-x4", "777788889999", true),
    ));
    let mut shared = ImageSpec::new(r, ami(SHARED, "snap-x5", "222233334444", false));
    shared.shared_with.push(ME.into());
    s.add_image(shared);
    s.add_image(ImageSpec::new(
        r,
        ami(PUBLIC, "snap-x6", "555566667777", true),
    ));
    // Deregistered since launch: only DescribeInstanceImageMetadata knows it.
    let mut gone = ImageSpec::new(r, ami(GONE, "snap-x7", "555566667777", true));
    gone.state = "deregistered".into();
    s.add_image(gone);
    s.set_allowed_images(
        r,
        AllowedImagesSpec {
            state: "audit-mode".into(),
            image_providers: vec![vec!["444455556666".into()]],
        },
    );
    s.set_block_public_access(r, "block-new-sharing");
    s.set_ec2_page_size(Some(2));
    let ids = [AMZ, MINE, ALLOWED, TRUSTED, SHARED, PUBLIC, GONE];
    for (n, image) in ids.iter().enumerate() {
        s.add_instance(InstanceSpec {
            region: r.into(),
            instance_id: format!("i-0d00000000000000{n}"),
            image_id: (*image).into(),
            state: "running".into(),
            owner_id: ME.into(),
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("state.json");
    let (code, out) = amiscan(
        &s,
        &[
            "audit",
            "--regions",
            r,
            "--trusted-accounts",
            "777788889999",
            "--format",
            "json",
            "--state",
            st.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "public unverified instance: {out}");
    let json_end = out.rfind(']').unwrap();
    let v: Value = serde_json::from_str(&out[..=json_end]).unwrap();
    let region = &v[0];
    assert_eq!(region["block_public_access"], "block-new-sharing");
    assert_eq!(region["allowed_images"]["state"], "audit-mode");
    assert!(
        region["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("audit-mode")),
        "{region}"
    );
    let expect = [
        "verified",
        "self",
        "allowed",
        "trusted",
        "shared-privately",
        "public-unverified",
        "public-unverified",
    ];
    let inst = region["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 7, "{region}");
    for (image, class) in ids.iter().zip(expect) {
        let i = inst.iter().find(|i| i["image_id"] == *image).unwrap();
        assert_eq!(i["class"], class, "{i}");
    }
    let gone = inst.iter().find(|i| i["image_id"] == GONE).unwrap();
    assert_eq!(gone["image_visible"], false);
    assert_eq!(gone["image_owner_id"], "555566667777");
    assert_eq!(s.ec2_call_count("DescribeInstanceImageMetadata"), 1);
    // Our public image was never swept.
    let p = &region["public_images"][0];
    assert_eq!(p["image_id"], MINE);
    assert_eq!(p["scan"], "not-scanned");
}
