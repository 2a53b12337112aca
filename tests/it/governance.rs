//! AMI governance end to end on the loopback server, set up through the real SDK clients (EC2 and
//! Auto Scaling): an account with instances on its own, a verified (amazon), a trusted and a
//! public-unverified AMI; a launch template on a public AMI its owner then deregisters; an Auto
//! Scaling group (through a launch configuration) on a deprecated AMI; three versions of a
//! golden image with workloads on the two older ones. `inventory`, the dependencies at risk, the
//! drift, the allowlist proposal and its simulation must each be right, and `allowlist apply`
//! must change the settings exactly as its dry run said. Also the new server calls against
//! their API reference (deprecation, launch template versions, Allowed AMIs limits, pages).
#![cfg(feature = "aws")]

use crate::ebs_support::amiscan;
use aws_test_server::{ImageCriterionSpec, ImageSpec, InstanceSpec, ServerConfig, TestServer};
use serde_json::Value;
use std::process::Command;

const ME: &str = "111122223333";
const AMAZON: &str = "137112412989";
const PARTNER: &str = "444455556666";
const COMMUNITY: &str = "999988887777";
const SHARER: &str = "555566667777";
const REGION: &str = "us-east-1";

const GOLD1: &str = "ami-0a0000000000000a1";
const GOLD2: &str = "ami-0a0000000000000a2";
const GOLD3: &str = "ami-0a0000000000000a3";
const AL2023: &str = "ami-0b0000000000000b1";
const PARTNER_AMI: &str = "ami-0c0000000000000c1";
const COMMUNITY_AMI: &str = "ami-0d0000000000000d1";
const DOOMED: &str = "ami-0e0000000000000e1";
const OLD: &str = "ami-0f0000000000000f1";

/// A one-volume EBS AMI (its snapshot named after it), for the fleet scenarios.
pub(crate) fn ami(id: &str, name: &str, owner: &str, public: bool) -> aws_test_server::AmiSpec {
    let snap = format!("snap-{}", &id[4..]);
    let mut spec = crate::ebs_support::ami_spec(id, name, owner, public, &[&snap]);
    spec.mappings[0].volume_size = Some(8);
    spec
}

pub(crate) fn add(
    s: &TestServer,
    id: &str,
    name: &str,
    owner: &str,
    public: bool,
    alias: Option<&str>,
) {
    let mut spec = ImageSpec::new(REGION, ami(id, name, owner, public));
    spec.owner_alias = alias.map(str::to_string);
    if !public && owner != ME {
        spec.shared_with.push(ME.into());
    }
    s.add_image(spec);
}

fn instance(s: &TestServer, id: &str, image: &str) {
    s.add_instance(InstanceSpec {
        region: REGION.into(),
        instance_id: id.into(),
        image_id: image.into(),
        state: "running".into(),
        owner_id: ME.into(),
    });
}

/// The SDK clients of `account` (its access key is mapped to it on the server).
pub(crate) fn clients(
    s: &TestServer,
    akid: &str,
) -> (aws_sdk_ec2::Client, aws_sdk_autoscaling::Client) {
    let creds = aws_sdk_ec2::config::Credentials::new(akid, "test-secret", None, None, "test");
    let region = aws_sdk_ec2::config::Region::new(REGION);
    let ec2 = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .credentials_provider(creds.clone())
        .region(region.clone())
        .endpoint_url(s.endpoint_url())
        .build();
    let asg = aws_sdk_autoscaling::Config::builder()
        .behavior_version(aws_sdk_autoscaling::config::BehaviorVersion::latest())
        .credentials_provider(creds)
        .region(region)
        .endpoint_url(s.endpoint_url())
        .build();
    (
        aws_sdk_ec2::Client::from_conf(ec2),
        aws_sdk_autoscaling::Client::from_conf(asg),
    )
}

/// Launch template data that launches `image`.
pub(crate) fn launching(image: &str) -> aws_sdk_ec2::types::RequestLaunchTemplateData {
    aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
        .image_id(image)
        .build()
}

/// Create the launch template `name` launching `image`: its id.
pub(crate) async fn create_template(ec2: &aws_sdk_ec2::Client, name: &str, image: &str) -> String {
    let made = ec2
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(launching(image))
        .send()
        .await
        .unwrap();
    made.launch_template()
        .and_then(|t| t.launch_template_id())
        .unwrap()
        .to_string()
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The account of the done-when scenario, set up through the SDK.
fn scenario() -> TestServer {
    let s = TestServer::start(ServerConfig::default()).unwrap();
    s.set_account("AKIDCOMMUNITY", COMMUNITY);
    add(&s, GOLD1, "golden-web-2026.01.01", ME, false, None);
    add(&s, GOLD2, "golden-web-2026.02.01", ME, false, None);
    add(&s, GOLD3, "golden-web-2026.03.01", ME, false, None);
    s.set_image_dates(REGION, GOLD1, Some("2026-01-01T00:00:00.000Z"), None);
    s.set_image_dates(REGION, GOLD2, Some("2026-02-01T00:00:00.000Z"), None);
    s.set_image_dates(REGION, GOLD3, Some("2026-03-01T00:00:00.000Z"), None);
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
    add(&s, DOOMED, "community-lt-base-1", COMMUNITY, true, None);
    add(&s, OLD, "batch-base-1", SHARER, false, None);
    // Deprecated months ago (the API takes only future times: time has passed).
    s.set_image_dates(
        REGION,
        OLD,
        Some("2025-01-01T00:00:00.000Z"),
        Some("2026-06-01T00:00:00.000Z"),
    );
    instance(&s, "i-0000000000000own", GOLD3);
    instance(&s, "i-00000000000000a1", GOLD1);
    instance(&s, "i-00000000000amazn", AL2023);
    instance(&s, "i-0000000000partnr", PARTNER_AMI);
    instance(&s, "i-00000000000commu", COMMUNITY_AMI);

    let (ec2, asg) = clients(&s, "AKIDTESTTESTTEST");
    let (other, _) = clients(&s, "AKIDCOMMUNITY");
    rt().block_on(async {
        create_template(&ec2, "community-lt", DOOMED).await;
        let web_id = create_template(&ec2, "web", GOLD1).await;
        let v2 = ec2
            .create_launch_template_version()
            .launch_template_id(&web_id)
            .source_version("1")
            .launch_template_data(launching(GOLD2))
            .send()
            .await
            .unwrap();
        assert_eq!(
            v2.launch_template_version()
                .and_then(|v| v.version_number()),
            Some(2)
        );
        asg.create_auto_scaling_group()
            .auto_scaling_group_name("web-asg")
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(&web_id)
                    .version("$Latest")
                    .build(),
            )
            .min_size(1)
            .max_size(4)
            .availability_zones("us-east-1a")
            .send()
            .await
            .unwrap();
        asg.create_launch_configuration()
            .launch_configuration_name("batch-lc")
            .image_id(OLD)
            .instance_type("t3.micro")
            .send()
            .await
            .unwrap();
        asg.create_auto_scaling_group()
            .auto_scaling_group_name("batch-asg")
            .launch_configuration_name("batch-lc")
            .min_size(0)
            .max_size(2)
            .availability_zones("us-east-1a")
            .send()
            .await
            .unwrap();
        // The community account deregisters the AMI the template launches.
        other
            .deregister_image()
            .image_id(DOOMED)
            .send()
            .await
            .unwrap();
    });
    s
}

/// A sweep state with a clean result for the newest golden image.
fn state_file(dir: &std::path::Path) -> std::path::PathBuf {
    let det = amiscan::detect::Detector::builtin().unwrap();
    let cat = det.catalog_version();
    let snap = format!("snap-{}", &GOLD3[4..]);
    let v = serde_json::json!({
        "version": 1,
        "entries": { format!("{snap}@{cat}"): {
            "image_id": GOLD3, "region": REGION, "snapshot_ids": [snap],
            "catalog_version": cat, "scanned_at": 1_780_000_000u64, "findings": []
        }}
    });
    let p = dir.join("state.json");
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

pub(crate) fn image<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the inventory"))
}

fn users(r: &Value, id: &str) -> Vec<String> {
    let w = r["workloads"].as_array().unwrap();
    let mut v: Vec<String> = image(r, id)["used_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            w[n.as_u64().unwrap() as usize]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn governance_scenario_inventory_risk_drift_proposal_simulation_and_apply() {
    let s = scenario();
    let home = tempfile::tempdir().unwrap();
    let state = state_file(home.path());
    let st = state.to_str().unwrap();
    let scope = [
        "--regions",
        REGION,
        "--trusted-accounts",
        PARTNER,
        "--state",
        st,
    ];

    // Inventory.
    let mut args = vec!["inventory", "--format", "json"];
    args.extend(scope);
    let (code, out) = amiscan(&s, home.path(), &args);
    assert_eq!(code, 1, "dependencies at risk exit 1: {out}");
    let v: Value = serde_json::from_str(&out[..out.rfind('}').unwrap() + 1]).unwrap();
    assert_eq!(v["version"], 1);
    let r = &v["regions"][0];
    assert_eq!(r["account"], ME);
    assert_eq!(r["region"], REGION);
    assert_eq!(r["errors"], serde_json::json!([]), "{out}");
    let class = |id: &str| image(r, id)["class"].as_str().unwrap().to_string();
    assert_eq!(class(GOLD3), "self");
    assert_eq!(class(AL2023), "verified");
    assert_eq!(class(PARTNER_AMI), "trusted");
    assert_eq!(class(COMMUNITY_AMI), "public-unverified");
    assert_eq!(class(OLD), "shared-privately");
    assert_eq!(image(r, DOOMED)["exists"], false);
    assert_eq!(image(r, GOLD1)["exists"], true);
    assert_eq!(image(r, OLD)["deprecated"], true);
    assert_eq!(
        image(r, OLD)["deprecation_time"],
        "2026-06-01T00:00:00.000Z"
    );
    assert_eq!(image(r, GOLD3)["scan"]["status"], "clean");
    assert_eq!(image(r, GOLD1)["scan"]["status"], "not-scanned");
    assert_eq!(image(r, AL2023)["owner_alias"], "amazon");
    assert_eq!(users(r, GOLD3), vec!["i-0000000000000own"]);
    let web1 = users(r, GOLD1);
    assert_eq!(web1.len(), 2, "{web1:?}");
    assert!(web1.contains(&"i-00000000000000a1".to_string()));
    assert!(
        web1.iter()
            .any(|w| w.starts_with("lt-") && w.ends_with(":1")),
        "{web1:?}"
    );
    let web2 = users(r, GOLD2);
    assert!(web2.contains(&"web-asg".to_string()), "{web2:?}");
    assert!(web2.iter().any(|w| w.ends_with(":2")), "{web2:?}");
    assert_eq!(users(r, OLD), vec!["batch-asg", "batch-lc"]);
    assert_eq!(users(r, DOOMED).len(), 1);
    let details: Vec<&str> = r["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == "web")
        .map(|w| w["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details, vec!["default version 1", "latest version 2"]);

    // Dependencies at risk: the deregistered one first, then the deprecated ones; an instance
    // on a public AMI is not a launch source.
    let risk: Vec<(String, String, String)> = r["at_risk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["workload"].as_str().unwrap().to_string(),
                a["image_id"].as_str().unwrap().to_string(),
                a["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .collect();
    assert_eq!(risk.len(), 3, "{risk:?}");
    assert!(
        risk[0].0.starts_with("lt-") && risk[0].1 == DOOMED && risk[0].2 == "gone",
        "{risk:?}"
    );
    assert_eq!(
        risk[1],
        ("batch-asg".into(), OLD.into(), "deprecated".into())
    );
    assert_eq!(
        risk[2],
        ("batch-lc".into(), OLD.into(), "deprecated".into())
    );
    assert!(
        r["at_risk"][1]["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("amiscan scan --copy {OLD}"))
    );
    assert!(
        r["at_risk"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("cannot be copied")
    );

    // Drift: the two older golden versions, with their workloads and ages.
    let drift = r["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert_eq!(drift[0]["image_id"], GOLD1);
    assert_eq!(drift[0]["versions_behind"], 2);
    assert_eq!(drift[0]["latest_image_id"], GOLD3);
    assert_eq!(drift[0]["lineage"], format!("{ME}/golden-web"));
    assert_eq!(drift[1]["image_id"], GOLD2);
    assert_eq!(drift[1]["versions_behind"], 1);
    let age1 = drift[0]["age_days"].as_u64().unwrap();
    let age2 = drift[1]["age_days"].as_u64().unwrap();
    // 31 days between the two versions' creation dates, whatever today is.
    assert_eq!(age1 - age2, 31);

    // The text form puts the at-risk list first.
    let mut args = vec!["inventory"];
    args.extend(scope);
    let (_, text) = amiscan(&s, home.path(), &args);
    let first_risk = text.find("AT RISK").unwrap();
    assert!(first_risk < text.find("image ").unwrap(), "{text}");
    assert!(text.contains("DRIFT"), "{text}");

    // Proposal: own, amazon and the trusted partner; not the community or the sharer.
    let policy = home.path().join("policy.json");
    let mut args = vec![
        "allowlist",
        "propose",
        "--format",
        "json",
        "--org-policy",
        policy.to_str().unwrap(),
    ];
    args.extend(scope);
    let (code, out) = amiscan(&s, home.path(), &args);
    assert_eq!(code, 0, "{out}");
    let crit: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        crit,
        serde_json::json!({"ImageCriteria": [{"ImageProviders": ["amazon", ME, PARTNER]}]})
    );
    let crit_file = home.path().join("criteria.json");
    std::fs::write(&crit_file, &out).unwrap();
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    let ais = &p["ec2_attributes"]["allowed_images_settings"];
    assert_eq!(ais["state"]["@@assign"], "audit_mode");
    assert_eq!(
        ais["image_criteria"]["criteria_1"]["allowed_image_providers"]["@@append"],
        serde_json::json!(["amazon", ME, PARTNER])
    );

    // Simulation: what enforcing would block at the next launch.
    let mut args = vec![
        "allowlist",
        "check",
        "--criteria",
        crit_file.to_str().unwrap(),
    ];
    args.extend(scope);
    let (code, out) = amiscan(&s, home.path(), &args);
    assert_eq!(code, 1, "{out}");
    let blocked: Vec<&str> = out.lines().filter(|l| l.starts_with("BLOCKED")).collect();
    assert_eq!(blocked.len(), 3, "{out}");
    assert!(
        blocked
            .iter()
            .any(|l| l.contains("launch-template") && l.contains(DOOMED) && l.contains("gone"))
    );
    assert!(
        blocked
            .iter()
            .any(|l| l.contains("auto-scaling-group batch-asg") && l.contains(SHARER))
    );
    assert!(
        blocked
            .iter()
            .any(|l| l.contains("launch-configuration batch-lc"))
    );
    assert!(!out.contains("web-asg") && !out.contains("i-0000"), "{out}");
    // A deprecation condition blocks nothing more here: the only deprecated image is blocked already.
    let mut args = vec!["allowlist", "check", "--max-days-since-deprecated", "0"];
    args.extend(scope);
    let (_, out2) = amiscan(&s, home.path(), &args);
    assert_eq!(
        out2.lines().filter(|l| l.starts_with("BLOCKED")).count(),
        3,
        "{out2}"
    );

    // Enabling is refused while launch sources would be blocked; nothing is changed.
    let before = s.ec2_calls().len();
    let mut args = vec![
        "allowlist",
        "apply",
        "--mode",
        "enabled",
        "--criteria",
        crit_file.to_str().unwrap(),
    ];
    args.extend(scope);
    let (code, out) = amiscan(&s, home.path(), &args);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refusing to enable"), "{out}");
    let writes = |from: usize| -> Vec<String> {
        s.ec2_calls()[from..]
            .iter()
            .map(|c| c.action.clone())
            .filter(|a| {
                a.starts_with("Replace") || a.starts_with("Enable") || a.starts_with("Disable")
            })
            .collect()
    };
    assert!(writes(before).is_empty());
    assert_eq!(s.allowed_images_settings(REGION).0, "disabled");

    // Audit mode: the dry run shows the diff and changes nothing; the real run makes exactly
    // the calls the dry run showed, and the settings are then the criteria.
    let mut args = vec![
        "allowlist",
        "apply",
        "--mode",
        "audit",
        "--dry-run",
        "--criteria",
        crit_file.to_str().unwrap(),
    ];
    args.extend(scope);
    let (code, dry) = amiscan(&s, home.path(), &args);
    assert_eq!(code, 0, "{dry}");
    let shown: Vec<String> = dry
        .lines()
        .filter_map(|l| l.strip_prefix("would call "))
        .map(|l| {
            l.split(':')
                .next()
                .unwrap()
                .split_whitespace()
                .last()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            "ReplaceImageCriteriaInAllowedImagesSettings",
            "EnableAllowedImagesSettings"
        ],
        "{dry}"
    );
    assert!(writes(before).is_empty(), "a dry run changed something");
    let mark = s.ec2_calls().len();
    let mut args = vec![
        "allowlist",
        "apply",
        "--mode",
        "audit",
        "--criteria",
        crit_file.to_str().unwrap(),
    ];
    args.extend(scope);
    let (code, done) = amiscan(&s, home.path(), &args);
    assert_eq!(code, 0, "{done}");
    assert_eq!(writes(mark), shown);
    let (state_now, criteria_now) = s.allowed_images_settings(REGION);
    assert_eq!(state_now, "audit-mode");
    assert_eq!(
        criteria_now,
        vec![ImageCriterionSpec {
            image_providers: vec!["amazon".into(), ME.into(), PARTNER.into()],
            ..Default::default()
        }]
    );
    // Applied again: nothing to do, no call.
    let mark = s.ec2_calls().len();
    let (_, again) = amiscan(&s, home.path(), &args);
    assert!(again.contains("no change"), "{again}");
    assert!(writes(mark).is_empty());
}

/// The new server calls follow their API reference, through the SDK.
#[test]
fn governance_server_calls_follow_the_api_reference() {
    let s = TestServer::start(ServerConfig::default()).unwrap();
    add(&s, GOLD1, "golden-web-1", ME, false, None);
    add(&s, OLD, "shared-old-1", SHARER, false, None);
    s.set_image_dates(REGION, OLD, None, Some("2026-01-01T00:00:00.000Z"));
    let (ec2, asg) = clients(&s, "AKIDTESTTESTTEST");
    rt().block_on(async {
        // Deprecated images of others are hidden unless IncludeDeprecated or asked by id.
        let plain = ec2.describe_images().send().await.unwrap();
        let ids: Vec<&str> = plain.images().iter().filter_map(|i| i.image_id()).collect();
        assert_eq!(ids, vec![GOLD1]);
        let all = ec2
            .describe_images()
            .include_deprecated(true)
            .send()
            .await
            .unwrap();
        let old = all
            .images()
            .iter()
            .find(|i| i.image_id() == Some(OLD))
            .unwrap();
        assert_eq!(old.deprecation_time(), Some("2026-01-01T00:00:00.000Z"));
        let by_id = ec2.describe_images().image_ids(OLD).send().await.unwrap();
        assert_eq!(by_id.images().len(), 1);

        // EnableImageDeprecation: owner only, future only, rounded up to the minute.
        let past = aws_sdk_ec2::primitives::DateTime::from_secs(1_000_000_000);
        let e = ec2
            .enable_image_deprecation()
            .image_id(GOLD1)
            .deprecate_at(past)
            .send()
            .await;
        assert!(format!("{:?}", e.unwrap_err()).contains("InvalidParameterValue"));
        let e = ec2
            .enable_image_deprecation()
            .image_id(OLD)
            .deprecate_at(aws_sdk_ec2::primitives::DateTime::from_secs(4_102_444_801))
            .send()
            .await;
        assert!(format!("{:?}", e.unwrap_err()).contains("AuthFailure"));
        ec2.enable_image_deprecation()
            .image_id(GOLD1)
            .deprecate_at(aws_sdk_ec2::primitives::DateTime::from_secs(4_102_444_801))
            .send()
            .await
            .unwrap();
        assert_eq!(
            s.image_deprecation(REGION, GOLD1).as_deref(),
            Some("2100-01-01T00:01:00.000Z")
        );

        // Allowed AMIs: every criterion field round-trips; DryRun and the limits answer errors.
        let crit = aws_sdk_ec2::types::ImageCriterionRequest::builder()
            .image_providers("amazon")
            .image_providers(ME)
            .image_names("golden-*")
            .creation_date_condition(
                aws_sdk_ec2::types::CreationDateConditionRequest::builder()
                    .maximum_days_since_created(300)
                    .build(),
            )
            .deprecation_time_condition(
                aws_sdk_ec2::types::DeprecationTimeConditionRequest::builder()
                    .maximum_days_since_deprecated(0)
                    .build(),
            )
            .build();
        let e = ec2
            .replace_image_criteria_in_allowed_images_settings()
            .image_criteria(crit.clone())
            .dry_run(true)
            .send()
            .await;
        assert!(format!("{:?}", e.unwrap_err()).contains("DryRunOperation"));
        let eleven: Vec<_> = (0..11).map(|_| crit.clone()).collect();
        let e = ec2
            .replace_image_criteria_in_allowed_images_settings()
            .set_image_criteria(Some(eleven))
            .send()
            .await;
        assert!(format!("{:?}", e.unwrap_err()).contains("at most 10"));
        let bad = aws_sdk_ec2::types::ImageCriterionRequest::builder()
            .image_providers("someone")
            .build();
        assert!(
            ec2.replace_image_criteria_in_allowed_images_settings()
                .image_criteria(bad)
                .send()
                .await
                .is_err()
        );
        ec2.replace_image_criteria_in_allowed_images_settings()
            .image_criteria(crit)
            .send()
            .await
            .unwrap();
        let st = ec2
            .enable_allowed_images_settings()
            .allowed_images_settings_state(
                aws_sdk_ec2::types::AllowedImagesSettingsEnabledState::AuditMode,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            st.allowed_images_settings_state().map(|s| s.as_str()),
            Some("audit-mode")
        );
        let got = ec2.get_allowed_images_settings().send().await.unwrap();
        assert_eq!(got.state(), Some("audit-mode"));
        let c = &got.image_criteria()[0];
        assert_eq!(c.image_providers(), ["amazon", ME]);
        assert_eq!(c.image_names(), ["golden-*"]);
        assert_eq!(
            c.creation_date_condition()
                .and_then(|x| x.maximum_days_since_created()),
            Some(300)
        );
        assert_eq!(
            c.deprecation_time_condition()
                .and_then(|x| x.maximum_days_since_deprecated()),
            Some(0)
        );
        let off = ec2.disable_allowed_images_settings().send().await.unwrap();
        assert_eq!(
            off.allowed_images_settings_state().map(|s| s.as_str()),
            Some("disabled")
        );

        // Launch templates: versions by number, $Latest, $Default, across templates, in pages.
        for n in ["a-lt", "b-lt"] {
            create_template(&ec2, n, GOLD1).await;
        }
        let dup = ec2
            .create_launch_template()
            .launch_template_name("a-lt")
            .send()
            .await;
        assert!(format!("{:?}", dup.unwrap_err()).contains("AlreadyExists"));
        ec2.create_launch_template_version()
            .launch_template_name("a-lt")
            .launch_template_data(launching(OLD))
            .send()
            .await
            .unwrap();
        let both = ec2
            .describe_launch_template_versions()
            .launch_template_name("a-lt")
            .versions("$Latest")
            .versions("$Default")
            .send()
            .await
            .unwrap();
        let got: Vec<(Option<i64>, Option<bool>, Option<&str>)> = both
            .launch_template_versions()
            .iter()
            .map(|v| {
                (
                    v.version_number(),
                    v.default_version(),
                    v.launch_template_data().and_then(|d| d.image_id()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(2), Some(false), Some(OLD)),
                (Some(1), Some(true), Some(GOLD1))
            ]
        );
        let missing = ec2
            .describe_launch_template_versions()
            .launch_template_name("a-lt")
            .versions("7")
            .send()
            .await;
        assert!(
            format!("{:?}", missing.unwrap_err()).contains("InvalidLaunchTemplateVersion.NotFound")
        );
        let no_template = ec2
            .describe_launch_template_versions()
            .versions("1")
            .send()
            .await;
        assert!(no_template.is_err());
        let mut pages = 0;
        let mut seen = 0;
        let mut token = None;
        loop {
            let p = ec2
                .describe_launch_templates()
                .max_results(1)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            pages += 1;
            seen += p.launch_templates().len();
            token = p.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!((pages, seen), (2, 2));
        let lt = ec2
            .describe_launch_templates()
            .launch_template_names("a-lt")
            .send()
            .await
            .unwrap();
        let t = &lt.launch_templates()[0];
        assert_eq!(
            (t.default_version_number(), t.latest_version_number()),
            (Some(1), Some(2))
        );

        // Auto Scaling: one launch source, known templates and configurations, pages.
        let none = asg
            .create_auto_scaling_group()
            .auto_scaling_group_name("x")
            .min_size(0)
            .max_size(1)
            .send()
            .await;
        assert!(format!("{:?}", none.unwrap_err()).contains("ValidationError"));
        let bad_lc = asg
            .create_launch_configuration()
            .launch_configuration_name("lc")
            .image_id("ami-0123456789abcdef0")
            .instance_type("t3.micro")
            .send()
            .await;
        assert!(format!("{:?}", bad_lc.unwrap_err()).contains("does not exist"));
        for n in ["g1", "g2", "g3"] {
            asg.create_auto_scaling_group()
                .auto_scaling_group_name(n)
                .launch_template(
                    aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                        .launch_template_name("b-lt")
                        .build(),
                )
                .min_size(0)
                .max_size(1)
                .send()
                .await
                .unwrap();
        }
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let p = asg
                .describe_auto_scaling_groups()
                .max_records(2)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            for g in p.auto_scaling_groups() {
                names.push(g.auto_scaling_group_name().unwrap().to_string());
                let spec = g.launch_template().unwrap();
                assert_eq!(spec.launch_template_name(), Some("b-lt"));
                assert!(spec.launch_template_id().unwrap().starts_with("lt-"));
                assert_eq!(spec.version(), Some("$Default"));
            }
            token = p.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(names, vec!["g1", "g2", "g3"]);
        let too_many = asg
            .describe_auto_scaling_groups()
            .max_records(101)
            .send()
            .await;
        assert!(too_many.is_err());
    });
    assert!(
        s.ec2_calls()
            .iter()
            .any(|c| c.action == "autoscaling:DescribeAutoScalingGroups")
    );
}

/// The HTML inventory renders in headless Chromium: after its script ran, the graph's nodes are
/// drawn (non-empty boxes) and the at-risk list is laid out; a screenshot is kept under target/.
/// Headless Chromium on the page `html` with `extra` flags (`--dump-dom`, `--screenshot=`):
/// its standard output.
fn chromium(html: &std::path::Path, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1300,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium is needed (see .ci/run)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `amiscan COMMAND --format html --output FILE` on the scenario (exit 1: it has
/// something to act on), checks that the page fetches nothing, renders it in headless Chromium
/// (its script must run) and takes a screenshot into `target/SHOT`. Returns the page and the
/// rendered DOM.
fn render(command: &str, shot: &str) -> (String, String) {
    let s = scenario();
    let home = tempfile::tempdir().unwrap();
    let html = home.path().join("page.html");
    let (code, out) = amiscan(
        &s,
        home.path(),
        &[
            command,
            "--format",
            "html",
            "--output",
            html.to_str().unwrap(),
            "--regions",
            REGION,
            "--trusted-accounts",
            PARTNER,
            "--state",
            home.path().join("none.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    // The only URL is the SVG namespace (a name, never fetched).
    assert_eq!(
        page.matches("http").count(),
        page.matches("http://www.w3.org/2000/svg").count()
    );
    assert!(
        !page.contains("<link") && !page.contains("src=\""),
        "the page must not fetch anything"
    );
    let dom = chromium(&html, &["--dump-dom"]);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script did not run: {dom}"
    );
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(shot);
    let _ = std::fs::remove_file(&shot);
    chromium(&html, &[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    println!("screenshot: {}", shot.display());
    (page, dom)
}

#[test]
fn governance_html_renders_in_headless_chromium() {
    let (page, dom) = render("inventory", "governance-inventory.png");
    let images = page.matches("<g class=\"node image").count();
    let workloads = page.matches("<g class=\"node workload").count();
    assert_eq!(images, 8, "{page}");
    assert!(workloads >= 10, "{page}");
    assert!(
        dom.contains(&format!("data-drawn-nodes=\"{}\"", images + workloads)),
        "{dom}"
    );
    assert!(dom.contains("data-visible-at-risk=\"3\""), "{dom}");
    assert!(
        dom.contains(&format!(
            "{images} images, {workloads} workloads, 3 at risk"
        )),
        "{dom}"
    );
}

#[test]
fn audit_html_renders_in_headless_chromium() {
    // An instance on a public AMI of an unverified owner: exit 1.
    let (page, dom) = render("audit", "governance-audit.png");
    // Five instances on five AMIs; the community one is marked, the others are not.
    let amis = page.matches("<g class=\"node image").count();
    let instances = page.matches("<g class=\"node workload").count();
    assert_eq!((amis, instances), (5, 5), "{page}");
    assert_eq!(page.matches("<circle class=\"risk\"").count(), 1, "{page}");
    assert!(
        page.contains(&format!(
            "<g class=\"node image public-unverified\" data-id=\"{COMMUNITY_AMI}\""
        )),
        "{page}"
    );
    assert!(page.contains(&format!(
        "<g class=\"node image trusted\" data-id=\"{PARTNER_AMI}\""
    )));
    assert!(
        page.contains("data-field=\"allowed-images\">disabled<"),
        "{page}"
    );
    let warnings = page
        .split("<ol class=\"warnings\">")
        .nth(1)
        .and_then(|w| w.split("</ol>").next())
        .unwrap()
        .matches("<li>")
        .count();
    assert!(warnings >= 2, "{page}");
    assert!(dom.contains("data-drawn-nodes=\"10\""), "{dom}");
    assert!(
        dom.contains(&format!("data-visible-warnings=\"{warnings}\"")),
        "{dom}"
    );
    assert!(
        dom.contains(&format!("5 AMIs, 5 instances, {warnings} to act on")),
        "{dom}"
    );
}

/// `amiscan ARGS SCOPE`.
fn scoped(s: &TestServer, home: &std::path::Path, args: &[&str], scope: &[&str]) -> (i32, String) {
    let all: Vec<&str> = args.iter().chain(scope).copied().collect();
    amiscan(s, home, &all)
}

/// Marketplace images are allowed by product code: proposed from the images in use, checked
/// against each image's `productCodes` (DescribeImages), applied through
/// `ReplaceImageCriteriaInAllowedImagesSettings` and read back, and written into the
/// declarative policy.
#[test]
fn marketplace_product_codes_are_proposed_checked_applied_and_declared() {
    const MARKETPLACE: &str = "679593333241";
    const MKT: &str = "ami-0c0000000000000e1";
    const MKT_OTHER: &str = "ami-0c0000000000000e2";
    let s = TestServer::start(ServerConfig::default()).unwrap();
    add(&s, GOLD3, "golden-web-2026.03.01", ME, false, None);
    for (id, name, code) in [
        (MKT, "vendor-firewall-7", "mktfirewall7"),
        (MKT_OTHER, "vendor-scanner-2", "mktscanner2"),
    ] {
        let mut spec = ImageSpec::new(REGION, ami(id, name, MARKETPLACE, true));
        spec.owner_alias = Some("aws-marketplace".into());
        spec.product_codes.push(code.into());
        s.add_image(spec);
    }
    instance(&s, "i-0000000000000own", GOLD3);
    instance(&s, "i-000000000000mkt1", MKT);
    let (ec2, _) = clients(&s, "AKIDTESTTESTTEST");
    rt().block_on(create_template(&ec2, "scanner", MKT_OTHER));
    let home = tempfile::tempdir().unwrap();
    let st = home.path().join("none.json");
    let scope = ["--regions", REGION, "--state", st.to_str().unwrap()];

    // The product codes are read from DescribeImages.
    let (code, out) = scoped(&s, home.path(), &["inventory", "--format", "json"], &scope);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out[..out.rfind('}').unwrap() + 1]).unwrap();
    let r = &v["regions"][0];
    assert_eq!(
        image(r, MKT)["product_codes"],
        serde_json::json!(["mktfirewall7"])
    );
    assert!(image(r, GOLD3).get("product_codes").is_none());

    // Proposed: the account, and the Marketplace images by product code (not the whole
    // aws-marketplace provider); plus one more code asked for.
    let policy = home.path().join("policy.json");
    let (code, out) = scoped(
        &s,
        home.path(),
        &[
            "allowlist",
            "propose",
            "--format",
            "json",
            "--marketplace-product-codes",
            "extracode1",
            "--policy-mode",
            "enabled",
            "--org-policy",
            policy.to_str().unwrap(),
        ],
        &scope,
    );
    assert_eq!(code, 0, "{out}");
    let crit: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        crit,
        serde_json::json!({"ImageCriteria": [
            {"ImageProviders": [ME]},
            {"MarketplaceProductCodes": ["extracode1", "mktfirewall7", "mktscanner2"]}
        ]})
    );
    let p: Value = serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    assert_eq!(
        p,
        serde_json::json!({"ec2_attributes": {"allowed_images_settings": {
            "state": {"@@assign": "enabled"},
            "image_criteria": {
                "criteria_1": {"allowed_image_providers": {"@@append": [ME]}},
                "criteria_2": {"marketplace_product_codes": {"@@append": ["extracode1", "mktfirewall7", "mktscanner2"]}}
            }
        }}})
    );

    // Checked: with only the firewall's code, the scanner's template would be blocked.
    let narrow = home.path().join("narrow.json");
    std::fs::write(
        &narrow,
        serde_json::json!({"ImageCriteria": [
            {"ImageProviders": [ME]},
            {"MarketplaceProductCodes": ["mktfirewall7"]}
        ]})
        .to_string(),
    )
    .unwrap();
    let (code, out) = scoped(
        &s,
        home.path(),
        &["allowlist", "check", "--criteria", narrow.to_str().unwrap()],
        &scope,
    );
    assert_eq!(code, 1, "{out}");
    let blocked: Vec<&str> = out.lines().filter(|l| l.starts_with("BLOCKED")).collect();
    assert_eq!(blocked.len(), 1, "{out}");
    assert!(
        blocked[0].contains(MKT_OTHER) && blocked[0].contains("mktscanner2"),
        "{out}"
    );

    // Applied: the server holds the codes, and GetAllowedImagesSettings gives them back.
    let crit_file = home.path().join("criteria.json");
    std::fs::write(&crit_file, crit.to_string()).unwrap();
    let apply = [
        "allowlist",
        "apply",
        "--mode",
        "audit",
        "--criteria",
        crit_file.to_str().unwrap(),
    ];
    let (code, out) = scoped(&s, home.path(), &apply, &scope);
    assert_eq!(code, 0, "{out}");
    let (state_now, criteria_now) = s.allowed_images_settings(REGION);
    assert_eq!(state_now, "audit-mode");
    assert_eq!(
        criteria_now,
        vec![
            ImageCriterionSpec {
                image_providers: vec![ME.into()],
                ..Default::default()
            },
            ImageCriterionSpec {
                marketplace_product_codes: vec![
                    "extracode1".into(),
                    "mktfirewall7".into(),
                    "mktscanner2".into()
                ],
                ..Default::default()
            }
        ]
    );
    let (_, again) = scoped(&s, home.path(), &apply, &scope);
    assert!(again.contains("no change"), "{again}");

    // A code the EC2 API would refuse is a usage error.
    let (code, out) = scoped(
        &s,
        home.path(),
        &[
            "allowlist",
            "propose",
            "--marketplace-product-codes",
            "not-a-code",
        ],
        &scope,
    );
    assert_eq!(code, 2, "{out}");
}
