//! The publish guard's handler (`amiscan::aws::guard`, what `deploy/publish-guard/` runs in
//! Lambda) end to end against the loopback server with the real SDK clients (EC2, EBS, SNS,
//! Security Hub), fed the recorded EventBridge CloudTrail events of `testdata/cloudtrail/`:
//! a public share of a leaky image is reverted, tagged, imported into Security Hub and announced
//! on SNS; a share to an allowed account is kept without a scan; a public share of a clean image
//! is kept; a public snapshot of a leaky image is made private. And the template's IAM policy
//! grants exactly the calls the handler made.
#![cfg(feature = "aws")]

use amiscan::aws::AwsOptions;
use amiscan::aws::guard::event::{Grantee, Shared};
use amiscan::aws::guard::{Guard, GuardConfig, Outcome};
use amiscan::detect::Detector;
use amiscan::report::Severity;
use aws_test_server::{
    AmiSpec, ImageSpec, ServerConfig, SnapshotPermissions, SnapshotSpec, TestServer,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const ME: &str = "111122223333";
const REGION: &str = "us-east-1";
const LEAKY_AMI: &str = "ami-0a1b2c3d4e5f60001";
const CLEAN_AMI: &str = "ami-0a1b2c3d4e5f60002";
const LEAKY_SNAP: &str = "snap-0a1b2c3d4e5f60001";
const CLEAN_SNAP: &str = "snap-0a1b2c3d4e5f60002";
const ALLOWED: &str = "444455556666";
const STRANGER: &str = "777788889999";
const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:amiscan-guard";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn event(name: &str) -> Value {
    let p = repo().join("testdata/cloudtrail").join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

use crate::ebs_support::gpt_disk as image;

fn ami(id: &str, snap: &str) -> AmiSpec {
    crate::ebs_support::ami_spec(id, &format!("release-{id}"), ME, false, &[snap])
}

/// The two images, owned by [`ME`], with the share of the event already made (`public`,
/// `shared_with`), as EC2 has it when CloudTrail reports the call.
fn server(public: bool, shared_with: &[&str]) -> TestServer {
    let s = TestServer::start(ServerConfig {
        snapshots: vec![
            SnapshotSpec::new(LEAKY_SNAP, &image(true)),
            SnapshotSpec::new(CLEAN_SNAP, &image(false)),
        ],
        ..Default::default()
    })
    .unwrap();
    for (id, snap) in [(LEAKY_AMI, LEAKY_SNAP), (CLEAN_AMI, CLEAN_SNAP)] {
        let mut a = ami(id, snap);
        a.public = public;
        let mut spec = ImageSpec::new(REGION, a);
        spec.shared_with = shared_with.iter().map(|s| s.to_string()).collect();
        s.add_image(spec);
    }
    s.add_sns_topic(TOPIC);
    s
}

fn guard(s: &TestServer, cfg: GuardConfig) -> Guard {
    let aws = AwsOptions {
        region: Some(REGION.into()),
        endpoint_url: Some(s.endpoint_url()),
        credentials: Some(aws_sdk_ebs::config::Credentials::new(
            "AKIDGUARDTEST",
            "guard-test-secret",
            None,
            None,
            "test",
        )),
        ..Default::default()
    };
    Guard::new(&aws, cfg, Detector::builtin().unwrap()).unwrap()
}

fn config() -> GuardConfig {
    GuardConfig {
        allowed: vec![ALLOWED.into()],
        fail_on: Severity::High,
        sns_topic_arn: Some(TOPIC.into()),
        security_hub: true,
        tag_clean: true,
        quick: false,
    }
}

/// The secret values the leaky image holds, as a scan that shows them finds them.
fn leaky_secrets() -> Vec<String> {
    let det = Detector::builtin().unwrap();
    let mut opts = amiscan::scan::ScanOptions::default();
    opts.detect.show_secrets = true;
    let r = amiscan::scan::scan_image(&image(true), &det, &opts).unwrap();
    let secrets: Vec<String> = r
        .findings
        .iter()
        .filter_map(|f| f.secret.clone())
        .filter(|s| s.len() >= 8)
        .collect();
    assert!(!secrets.is_empty());
    secrets
}

fn tag(tags: &[(String, String)], key: &str) -> Option<String> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

#[test]
fn a_public_share_of_a_leaky_image_is_reverted_tagged_imported_and_announced() {
    let s = server(true, &[]);
    s.set_snapshot_permissions(
        LEAKY_SNAP,
        SnapshotPermissions {
            public: true,
            accounts: vec![ALLOWED.into()],
        },
    );
    let out = guard(&s, config())
        .handle(&event("public-share-leaky-image.json"))
        .unwrap();
    let Outcome::Blocked {
        resource,
        reason,
        removed,
        snapshots_made_private,
        findings,
        imported,
        sns_message_id,
        errors,
    } = &out
    else {
        panic!("not blocked: {out:?}")
    };
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(resource, &Shared::Image(LEAKY_AMI.into()));
    assert_eq!(removed, &vec![Grantee::All]);
    assert!(
        *findings > 0 && reason.contains("at or above high"),
        "{reason}"
    );
    // EC2: no longer public, its snapshot no longer public (the account share stays), tagged.
    let img = s.image(REGION, LEAKY_AMI).unwrap();
    assert!(!img.public);
    assert_eq!(snapshots_made_private, &vec![LEAKY_SNAP.to_string()]);
    assert_eq!(
        s.snapshot_permissions(LEAKY_SNAP),
        SnapshotPermissions {
            public: false,
            accounts: vec![ALLOWED.into()]
        }
    );
    let blocked = tag(&s.image_tags(REGION, LEAKY_AMI), "amiscan:blocked").unwrap();
    assert!(
        blocked.contains("findings at or above high - most severe critical"),
        "{blocked}"
    );
    // Security Hub: the guard's finding and one per finding at or above the threshold.
    let hub = s.imported_findings();
    assert_eq!(*imported, hub.len());
    assert_eq!(hub.len(), findings + 1);
    assert_eq!(hub[0]["GeneratorId"], "amiscan-publish-guard");
    assert_eq!(
        hub[0]["Resources"][0]["Id"],
        format!("arn:aws:ec2:{REGION}::image/{LEAKY_AMI}")
    );
    for f in &hub {
        assert_eq!(
            f["ProductArn"],
            format!("arn:aws:securityhub:{REGION}:{ME}:product/{ME}/default")
        );
        let label = f["Severity"]["Label"].as_str().unwrap();
        assert!(label == "CRITICAL" || label == "HIGH", "{label}");
    }
    // SNS: one notice naming the image and the findings.
    let msgs = s.sns_messages();
    assert_eq!(msgs.len(), 1);
    assert!(sns_message_id.is_some());
    assert_eq!(msgs[0].topic_arn, TOPIC);
    assert!(msgs[0].subject.as_deref().unwrap().contains(LEAKY_AMI));
    let m: Value = serde_json::from_str(&msgs[0].message).unwrap();
    assert_eq!(m["verdict"], "blocked");
    assert_eq!(m["findings_total"].as_u64().unwrap() as usize, *findings);
    assert_eq!(m["removed"], serde_json::json!([{"kind": "all"}]));
    // No secret value leaves the guard.
    let sent = format!(
        "{}{}",
        msgs[0].message,
        serde_json::to_string(&hub).unwrap()
    );
    for secret in leaky_secrets() {
        assert!(
            !sent.contains(&secret),
            "a secret reached SNS or Security Hub"
        );
    }
    // Handling the same event again (a retry) is harmless: still private, findings replaced.
    let again = guard(&s, config())
        .handle(&event("public-share-leaky-image.json"))
        .unwrap();
    assert!(again.errors().is_empty(), "{again:?}");
    assert_eq!(s.imported_findings().len(), hub.len());

    // The policy in the template grants exactly what the handler called.
    let mut called: BTreeSet<String> = s
        .ec2_calls()
        .iter()
        .map(|c| {
            if c.action.contains(':') {
                c.action.clone()
            } else {
                format!("ec2:{}", c.action)
            }
        })
        .collect();
    if s.accounting(LEAKY_SNAP).list_calls > 0 {
        called.insert("ebs:ListSnapshotBlocks".into());
    }
    if s.accounting(LEAKY_SNAP).get_calls() > 0 {
        called.insert("ebs:GetSnapshotBlock".into());
    }
    called.insert("sns:Publish".into());
    called.insert("securityhub:BatchImportFindings".into());
    // The snapshot event's path calls nothing else (checked by the snapshot test's log).
    assert_eq!(called, template_actions());
}

/// Every `- service:Action` of the template's policy statements.
fn template_actions() -> BTreeSet<String> {
    let t = std::fs::read_to_string(repo().join("deploy/publish-guard/template.yaml")).unwrap();
    t.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("- "))
        .filter(|a| {
            ["ec2:", "ebs:", "sns:", "securityhub:"]
                .iter()
                .any(|p| a.starts_with(p))
        })
        .map(|a| a.trim_matches(['\'', '"']).to_string())
        .collect()
}

#[test]
fn a_share_to_an_allowed_account_is_kept_without_a_scan() {
    let s = server(false, &[ALLOWED]);
    let out = guard(&s, config())
        .handle(&event("allowed-account-share-leaky-image.json"))
        .unwrap();
    assert_eq!(
        out,
        Outcome::Allowed {
            resource: Shared::Image(LEAKY_AMI.into()),
            grantees: vec![Grantee::Account(ALLOWED.into())],
        }
    );
    assert_eq!(
        s.image(REGION, LEAKY_AMI).unwrap().shared_with,
        vec![ALLOWED]
    );
    assert_eq!(s.accounting(LEAKY_SNAP).get_calls(), 0);
    assert_eq!(s.accounting(LEAKY_SNAP).list_calls, 0);
    assert!(s.ec2_calls().is_empty());
    assert!(s.sns_messages().is_empty() && s.imported_findings().is_empty());
}

#[test]
fn a_public_share_of_a_clean_image_is_kept() {
    let s = server(true, &[]);
    let out = guard(&s, config())
        .handle(&event("public-share-clean-image.json"))
        .unwrap();
    let Outcome::Kept {
        resource,
        grantees,
        errors,
        ..
    } = &out
    else {
        panic!("not kept: {out:?}")
    };
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(resource, &Shared::Image(CLEAN_AMI.into()));
    assert_eq!(grantees, &vec![Grantee::All]);
    assert!(s.image(REGION, CLEAN_AMI).unwrap().public);
    assert_eq!(
        tag(&s.image_tags(REGION, CLEAN_AMI), "amiscan:scanned").as_deref(),
        Some("clean")
    );
    assert!(
        s.accounting(CLEAN_SNAP).get_calls() > 0,
        "the image was not read"
    );
    assert_eq!(s.ec2_call_count("ModifyImageAttribute"), 0);
    assert!(s.sns_messages().is_empty() && s.imported_findings().is_empty());
}

#[test]
fn only_the_grantees_outside_the_allow_list_are_removed() {
    let s = server(false, &[ALLOWED, STRANGER]);
    let out = guard(&s, config())
        .handle(&event("mixed-share-leaky-image.json"))
        .unwrap();
    assert!(
        matches!(&out, Outcome::Blocked { removed, errors, .. }
            if removed == &vec![Grantee::Account(STRANGER.into())] && errors.is_empty()),
        "{out:?}"
    );
    assert_eq!(
        s.image(REGION, LEAKY_AMI).unwrap().shared_with,
        vec![ALLOWED]
    );
}

#[test]
fn a_public_snapshot_of_a_leaky_disk_is_made_private() {
    let s = server(false, &[]);
    s.set_snapshot_permissions(
        LEAKY_SNAP,
        SnapshotPermissions {
            public: true,
            accounts: vec![],
        },
    );
    let mut cfg = config();
    cfg.sns_topic_arn = None;
    let out = guard(&s, cfg)
        .handle(&event("public-share-leaky-snapshot.json"))
        .unwrap();
    assert!(
        matches!(&out, Outcome::Blocked { resource, errors, sns_message_id: None, .. }
            if resource == &Shared::Snapshot(LEAKY_SNAP.into()) && errors.is_empty()),
        "{out:?}"
    );
    assert!(!s.snapshot_permissions(LEAKY_SNAP).public);
    assert!(tag(&s.snapshot_tags(LEAKY_SNAP), "amiscan:blocked").is_some());
    assert_eq!(
        s.imported_findings()[0]["Resources"][0]["Id"],
        format!("arn:aws:ec2:{REGION}::snapshot/{LEAKY_SNAP}")
    );
    let actions: BTreeSet<String> = s.ec2_calls().iter().map(|c| c.action.clone()).collect();
    let want: BTreeSet<String> = [
        "ModifySnapshotAttribute",
        "CreateTags",
        "securityhub:BatchImportFindings",
    ]
    .map(String::from)
    .into();
    assert_eq!(actions, want);
}

#[test]
fn an_unreadable_image_is_blocked_and_events_that_share_nothing_are_ignored() {
    let s = server(true, &[]);
    s.fail_gets_after(LEAKY_SNAP, 0);
    let mut cfg = config();
    cfg.fail_on = Severity::Critical;
    let ebs = amiscan::source::ebs::EbsOptions {
        max_attempts: 1,
        retry_budget: std::time::Duration::ZERO,
        ..Default::default()
    };
    let g = guard(&s, cfg).with_ebs_options(ebs);
    let out = g.handle(&event("public-share-leaky-image.json")).unwrap();
    assert!(
        matches!(&out, Outcome::Blocked { reason, .. } if reason.starts_with("incomplete scan")),
        "{out:?}"
    );
    assert!(!s.image(REGION, LEAKY_AMI).unwrap().public);
    let ignored = g.handle(&event("unshare-leaky-image.json")).unwrap();
    assert!(matches!(ignored, Outcome::Ignored { .. }), "{ignored:?}");
    let mut other_region = event("public-share-clean-image.json");
    other_region["region"] = "eu-west-1".into();
    assert!(g.handle(&other_region).is_err());
}

#[test]
fn the_fixtures_are_eventbridge_cloudtrail_envelopes() {
    for e in std::fs::read_dir(repo().join("testdata/cloudtrail")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        for k in [
            "version",
            "id",
            "detail-type",
            "source",
            "account",
            "time",
            "region",
            "resources",
            "detail",
        ] {
            assert!(v.get(k).is_some(), "{}: no {k}", p.display());
        }
        assert_eq!(v["detail-type"], "AWS API Call via CloudTrail");
        // The guard's events are EC2's; the launch alert's include Auto Scaling's.
        let service = v["source"]
            .as_str()
            .unwrap()
            .trim_start_matches("aws.")
            .to_string();
        assert!(
            ["ec2", "autoscaling"].contains(&service.as_str()),
            "{}",
            p.display()
        );
        let d = &v["detail"];
        for k in [
            "eventVersion",
            "userIdentity",
            "eventTime",
            "eventSource",
            "eventName",
            "awsRegion",
            "requestParameters",
            "responseElements",
            "eventID",
            "eventType",
            "recipientAccountId",
        ] {
            assert!(d.get(k).is_some(), "{}: no detail.{k}", p.display());
        }
        assert_eq!(d["eventSource"], format!("{service}.amazonaws.com"));
        assert_eq!(d["eventType"], "AwsApiCall");
        assert_eq!(d["awsRegion"], v["region"]);
        assert_eq!(d["recipientAccountId"], v["account"]);
    }
}
