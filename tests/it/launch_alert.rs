//! The launch alert (`amiscan allowlist alert`) end to end: recorded EventBridge "AWS API Call
//! via CloudTrail" events (testdata/cloudtrail/) against the loopback server set up through the
//! real SDK. An unapproved image must reach Security Hub (BatchImportFindings) and SNS (Publish)
//! exactly once; an approved one must send nothing. Also the deploy/launch-alert template: its
//! syntax, its rule and exactly the IAM actions the handler makes.
#![cfg(feature = "aws")]

use crate::ebs_support::amiscan_command;
use crate::governance::{add, clients, create_template, rt};
use aws_test_server::{ServerConfig, TestServer};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const ME: &str = "111122223333";
const AMAZON: &str = "137112412989";
const PARTNER: &str = "444455556666";
const COMMUNITY: &str = "999988887777";
const REGION: &str = "us-east-1";
const AL2023: &str = "ami-0b0000000000000b1";
const PARTNER_AMI: &str = "ami-0c0000000000000c1";
const COMMUNITY_AMI: &str = "ami-0d0000000000000d1";
const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:ami-alerts";

/// The account: an amazon, a partner (shared) and a community (public) image, a launch
/// configuration on the community image and a launch template on the partner one, and a topic.
fn server() -> TestServer {
    let s = TestServer::start(ServerConfig::default()).unwrap();
    add(
        &s,
        AL2023,
        "al2023-ami-2023.6.20250107.0-kernel-6.1-x86_64",
        AMAZON,
        true,
        Some("amazon"),
    );
    add(&s, PARTNER_AMI, "partner-base-3", PARTNER, false, None);
    add(&s, COMMUNITY_AMI, "community-tool-1", COMMUNITY, true, None);
    s.add_sns_topic(TOPIC);
    let (ec2, asg) = clients(&s, "AKIDTESTTESTTEST");
    rt().block_on(async {
        asg.create_launch_configuration()
            .launch_configuration_name("batch-lc")
            .image_id(COMMUNITY_AMI)
            .instance_type("t3.micro")
            .send()
            .await
            .unwrap();
        create_template(&ec2, "partner-lt", PARTNER_AMI).await;
    });
    s
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/cloudtrail")
        .join(name)
}

/// The fixture `name` with `edit` made to it, written to `dir/to`.
fn edited_fixture(name: &str, edit: impl FnOnce(&mut Value), dir: &Path, to: &str) -> PathBuf {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
    edit(&mut v);
    let path = dir.join(to);
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

/// `amiscan allowlist alert --event EVENT EXTRA...` against the server, with `HOME` at `home`.
fn alert_command(s: &TestServer, home: &Path, event: &Path, extra: &[&str]) -> Command {
    let mut args = vec!["allowlist", "alert", "--event", event.to_str().unwrap()];
    args.extend(extra);
    amiscan_command(s, home, &args)
}

/// Run `amiscan allowlist alert` on a fixture; `(exit code, outcome JSON, stderr)`.
fn alert(s: &TestServer, event: &str, extra: &[&str]) -> (i32, Value, String) {
    let home = tempfile::tempdir().unwrap();
    let out = alert_command(s, home.path(), &fixture(event), extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

const RAISE: [&str; 3] = ["--sns-topic", TOPIC, "--security-hub"];

/// One finding for `image` in Security Hub and one SNS message naming it.
fn assert_raised(s: &TestServer, image: &str, event: &str) {
    let hub = s.imported_findings();
    assert_eq!(hub.len(), 1, "{hub:#?}");
    let f = &hub[0];
    assert_eq!(f["AwsAccountId"], ME);
    assert_eq!(f["GeneratorId"], "amiscan/launch-alert");
    assert_eq!(f["Severity"]["Label"], "HIGH");
    assert_eq!(
        f["Resources"][0]["Id"],
        format!("arn:aws:ec2:{REGION}::image/{image}").as_str()
    );
    assert_eq!(f["Resources"][0]["Type"], "AwsEc2Image");
    assert!(f["Title"].as_str().unwrap().contains(event), "{f}");
    let msgs = s.sns_messages();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert_eq!(msgs[0].topic_arn, TOPIC);
    let body: Value = serde_json::from_str(&msgs[0].message).unwrap();
    assert_eq!(body["finding"]["image_id"], image);
    assert_eq!(body["finding"]["event_name"], event);
    assert!(msgs[0].subject.as_deref().unwrap().contains(image));
}

#[test]
fn run_instances_on_a_public_unverified_ami_raises_one_finding_and_one_message() {
    let s = server();
    let (code, out, err) = alert(&s, "run-instances-public-ami.json", &RAISE);
    assert_eq!(code, 1, "{out:#}\n{err}");
    assert_eq!(out["criteria_source"], "default");
    assert_eq!(out["checked"], serde_json::json!([COMMUNITY_AMI]));
    let f = &out["findings"][0];
    assert_eq!(f["class"], "public-unverified");
    assert_eq!(f["principal"], "arn:aws:iam::111122223333:user/dev-alice");
    assert!(f["why"].as_str().unwrap().contains(COMMUNITY), "{f}");
    assert_eq!(out["imported"], 1);
    assert_raised(&s, COMMUNITY_AMI, "RunInstances");
}

#[test]
fn run_instances_on_approved_images_sends_nothing() {
    let s = server();
    // An amazon image: allowed by the default criteria.
    let (code, out, err) = alert(&s, "run-instances-amazon-ami.json", &RAISE);
    assert_eq!(code, 0, "{out:#}\n{err}");
    assert_eq!(out["checked"], serde_json::json!([AL2023]));
    assert_eq!(out["findings"], serde_json::json!([]));
    // A partner image through a launch template: approved only as a trusted account.
    let (code, out, _) = alert(&s, "run-instances-template-trusted.json", &RAISE);
    assert_eq!(code, 1, "{out:#}");
    assert_eq!(out["findings"][0]["image_id"], PARTNER_AMI);
    assert_eq!(out["findings"][0]["class"], "shared-privately");
    let before = (s.imported_findings().len(), s.sns_messages().len());
    assert_eq!(before, (1, 1));
    let mut args = RAISE.to_vec();
    args.extend(["--trusted-accounts", PARTNER]);
    let (code, out, err) = alert(&s, "run-instances-template-trusted.json", &args);
    assert_eq!(code, 0, "{out:#}\n{err}");
    assert_eq!(out["checked"], serde_json::json!([PARTNER_AMI]));
    assert_eq!(out["findings"], serde_json::json!([]));
    assert_eq!(
        (s.imported_findings().len(), s.sns_messages().len()),
        before
    );
}

#[test]
fn create_launch_template_with_an_unapproved_image_raises_a_finding() {
    let s = server();
    let (code, out, err) = alert(&s, "create-launch-template-public-ami.json", &RAISE);
    assert_eq!(code, 1, "{out:#}\n{err}");
    assert_eq!(
        out["findings"][0]["subject"],
        "launch template community-lt"
    );
    assert_raised(&s, COMMUNITY_AMI, "CreateLaunchTemplate");
}

#[test]
fn create_launch_template_version_resolves_the_image_it_inherits() {
    let s = server();
    let (code, out, err) = alert(
        &s,
        "create-launch-template-version-inherited-image.json",
        &RAISE,
    );
    assert_eq!(code, 1, "{out:#}\n{err}");
    assert_eq!(
        out["event"]["sources"],
        serde_json::json!([{"kind": "launch-template", "id": null, "name": "partner-lt", "version": "1"}])
    );
    assert_eq!(out["findings"][0]["class"], "shared-privately");
    assert_raised(&s, PARTNER_AMI, "CreateLaunchTemplateVersion");
}

#[test]
fn create_auto_scaling_group_resolves_its_launch_configuration() {
    let s = server();
    let (code, out, err) = alert(
        &s,
        "create-auto-scaling-group-launch-configuration.json",
        &RAISE,
    );
    assert_eq!(code, 1, "{out:#}\n{err}");
    assert_eq!(
        out["event"]["sources"],
        serde_json::json!([{"kind": "launch-configuration", "name": "batch-lc"}])
    );
    assert_eq!(
        out["findings"][0]["subject"],
        "Auto Scaling group batch-asg"
    );
    assert_raised(&s, COMMUNITY_AMI, "CreateAutoScalingGroup");
}

#[test]
fn criteria_come_from_a_file_or_the_region_settings() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("criteria.json");
    std::fs::write(
        &file,
        format!(r#"{{"ImageCriteria":[{{"ImageProviders":["{COMMUNITY}"],"ImageNames":["community-*"]}}]}}"#),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (code, out, err) = alert(&s, "run-instances-public-ami.json", &["--criteria", f]);
    assert_eq!(code, 0, "{out:#}\n{err}");
    assert_eq!(out["criteria_source"], "given");
    // The same criteria block the amazon image; --dry-run sends nothing.
    let (code, out, _) = alert(
        &s,
        "run-instances-amazon-ami.json",
        &["--criteria", f, "--dry-run", "--security-hub"],
    );
    assert_eq!(code, 1, "{out:#}");
    assert!(
        out["findings"][0]["why"]
            .as_str()
            .unwrap()
            .contains("amazon")
    );
    assert!(s.imported_findings().is_empty());
    // The region's Allowed AMIs criteria (audit mode) when no file is given.
    s.set_allowed_images(
        REGION,
        aws_test_server::AllowedImagesSpec {
            state: "audit-mode".into(),
            image_providers: vec![vec![COMMUNITY.into()]],
        },
    );
    let (code, out, err) = alert(&s, "run-instances-public-ami.json", &[]);
    assert_eq!(code, 0, "{out:#}\n{err}");
    assert_eq!(out["criteria_source"], "region");
}

#[test]
fn failed_calls_and_other_events_are_ignored_and_bad_events_are_errors() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let failed = edited_fixture(
        "run-instances-public-ami.json",
        |v| v["detail"]["errorCode"] = "Client.InvalidAMIID.NotFound".into(),
        dir.path(),
        "failed.json",
    );
    let out = alert_command(&s, dir.path(), &failed, &["--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        o["ignored"]
            .as_str()
            .unwrap()
            .contains("nothing was launched"),
        "{o}"
    );
    // Not an AMI id (an unresolved SSM parameter) and a missing request: errors, never approvals.
    for (ptr, val) in [
        (
            "/detail/requestParameters/instancesSet/items/0/imageId",
            Value::from("resolve:ssm:/golden/web"),
        ),
        ("/detail/requestParameters", Value::Null),
    ] {
        let p = edited_fixture(
            "run-instances-public-ami.json",
            |v| *v.pointer_mut(ptr).unwrap() = val,
            dir.path(),
            "bad.json",
        );
        let out = alert_command(&s, dir.path(), &p, &["--dry-run"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{ptr}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot find the image"));
    }
}

#[test]
fn the_server_refuses_what_the_api_reference_refuses() {
    let s = server();
    // A topic that does not exist: NotFound, an error of the handler.
    let home = tempfile::tempdir().unwrap();
    let out = alert_command(
        &s,
        home.path(),
        &fixture("run-instances-public-ami.json"),
        &["--sns-topic", "arn:aws:sns:us-east-1:111122223333:nope"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Topic does not exist"));
    assert!(s.sns_messages().is_empty());
}

#[test]
fn security_hub_refuses_findings_of_another_account_and_empty_batches() {
    use aws_sdk_securityhub::types::{AwsSecurityFinding, Resource, Severity, SeverityLabel};
    let s = server();
    let hub = aws_sdk_securityhub::Client::from_conf(
        aws_sdk_securityhub::Config::builder()
            .behavior_version(aws_sdk_securityhub::config::BehaviorVersion::latest())
            .credentials_provider(aws_sdk_securityhub::config::Credentials::new(
                "AKIDTESTTESTTEST",
                "test-secret",
                None,
                None,
                "test",
            ))
            .region(aws_sdk_securityhub::config::Region::new(REGION))
            .endpoint_url(s.endpoint_url())
            .build(),
    );
    let finding = |account: &str| {
        AwsSecurityFinding::builder()
            .schema_version("2018-10-08")
            .id("f-1")
            .product_arn(format!(
                "arn:aws:securityhub:{REGION}:{account}:product/{account}/default"
            ))
            .generator_id("g")
            .aws_account_id(account)
            .types("Software and Configuration Checks")
            .created_at("2026-11-30T10:15:01Z")
            .updated_at("2026-11-30T10:15:01Z")
            .severity(Severity::builder().label(SeverityLabel::High).build())
            .title("t")
            .description("d")
            .resources(Resource::builder().r#type("Other").id("x").build())
            .build()
    };
    rt().block_on(async {
        let out = hub
            .batch_import_findings()
            .findings(finding(COMMUNITY))
            .findings(finding(ME))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (out.failed_count(), out.success_count()),
            (Some(1), Some(1))
        );
        assert_eq!(
            out.failed_findings()[0].error_code(),
            Some("AccessDeniedException")
        );
        let err = hub
            .batch_import_findings()
            .set_findings(Some(vec![]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            aws_sdk_securityhub::error::ProvideErrorMetadata::code(&err),
            Some("InvalidInputException")
        );
    });
    let stored = s.imported_findings();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["AwsAccountId"], ME);
}

/// The CloudFormation template parses, its rule matches exactly the four calls, and its role
/// grants exactly the calls the handler makes.
#[test]
fn the_deploy_template_matches_the_handler() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/launch-alert");
    let out = Command::new("python3")
        .arg("-c")
        .arg("import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))")
        .arg(dir.join("template.yaml"))
        .output()
        .expect("python3 with PyYAML (python3-yaml, .ci/run)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09");
    let res = t["Resources"].as_object().unwrap();
    let of = |ty: &str| res.values().filter(|r| r["Type"] == ty).collect::<Vec<_>>();
    let rules = of("AWS::Events::Rule");
    assert_eq!(rules.len(), 1);
    let pat = &rules[0]["Properties"]["EventPattern"];
    assert_eq!(
        pat["detail-type"],
        serde_json::json!(["AWS API Call via CloudTrail"])
    );
    let mut names: Vec<&str> = pat["detail"]["eventName"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "CreateAutoScalingGroup",
            "CreateLaunchTemplate",
            "CreateLaunchTemplateVersion",
            "RunInstances"
        ]
    );
    let fns = of("AWS::Lambda::Function");
    assert_eq!(fns.len(), 1);
    assert_eq!(fns[0]["Properties"]["Runtime"], "provided.al2023");
    let mut actions = Vec::new();
    for role in of("AWS::IAM::Role") {
        for p in role["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for st in p["PolicyDocument"]["Statement"].as_array().unwrap() {
                assert_eq!(st["Effect"], "Allow");
                match &st["Action"] {
                    Value::String(a) => actions.push(a.clone()),
                    Value::Array(a) => {
                        actions.extend(a.iter().map(|x| x.as_str().unwrap().to_string()))
                    }
                    other => panic!("{other}"),
                }
            }
        }
    }
    actions.sort();
    assert_eq!(
        actions,
        [
            "autoscaling:DescribeLaunchConfigurations",
            "ec2:DescribeImages",
            "ec2:DescribeLaunchTemplateVersions",
            "ec2:GetAllowedImagesSettings",
            "securityhub:BatchImportFindings",
            "sns:Publish",
        ]
    );
    // Exactly these calls reach the server when the handler runs every kind of event.
    let s = server();
    for e in [
        "run-instances-public-ami.json",
        "create-launch-template-version-inherited-image.json",
        "create-auto-scaling-group-launch-configuration.json",
    ] {
        let (code, out, err) = alert(&s, e, &RAISE);
        assert_eq!(code, 1, "{e}: {out:#}\n{err}");
    }
    let mut made: Vec<String> = s
        .ec2_calls()
        .iter()
        .filter(|c| {
            !c.action.starts_with("autoscaling:Create") && c.action != "CreateLaunchTemplate"
        })
        .map(|c| {
            if c.action.contains(':') {
                c.action.clone()
            } else {
                format!("ec2:{}", c.action)
            }
        })
        .collect();
    made.sort();
    made.dedup();
    assert_eq!(made, actions);
    assert!(dir.join("README.md").is_file());
}
