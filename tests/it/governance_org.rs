//! The organisation-wide inventory (`inventory --org-role ROLE [--accounts ...]`) on the
//! loopback server: the management account owns a golden image in three versions (shared with a
//! member) and a public base image; member 1 runs and templates the oldest golden version and
//! templates a community AMI; member 2 templates the management account's public base. Every
//! account × region is inventoried through the role assumed in it, each entry with its account;
//! the management account's images are `own-org` in the members (not shared or public
//! unverified, so not at risk), drift is measured against versions only the management account
//! references, and the allowlist proposal covers the organisation. Narrowed with `--accounts`,
//! the same public base is an unverified public image at risk again.
#![cfg(feature = "aws")]

use super::governance::{ami, clients, create_template, image, rt};
use crate::ebs_support::{amiscan, assumed_roles, org_account, role_arns};
use aws_test_server::{ImageSpec, InstanceSpec, ServerConfig, TestServer};
use serde_json::Value;

const ME: &str = "111122223333";
const M1: &str = "222233334444";
const M2: &str = "333344445555";
const COMMUNITY: &str = "999988887777";
const ROLE: &str = "AmiscanInventory";
const REGION: &str = "us-east-1";

const GOLD1: &str = "ami-0a1000000000000a1";
const GOLD2: &str = "ami-0a1000000000000a2";
const GOLD3: &str = "ami-0a1000000000000a3";
const BASE: &str = "ami-0b1000000000000b1";
const COMMUNITY_AMI: &str = "ami-0d1000000000000d1";

fn template(s: &TestServer, akid: &str, name: &str, image: &str) {
    let (ec2, _) = clients(s, akid);
    rt().block_on(create_template(&ec2, name, image));
}

fn organisation() -> TestServer {
    let s = TestServer::start(ServerConfig::default()).unwrap();
    let acct = |id: &str| org_account(id, "ACTIVE");
    s.set_organization(ME, vec![acct(ME), acct(M1), acct(M2)]);
    s.add_role(M1, ROLE);
    s.add_role(M2, ROLE);
    s.set_account("AKIDMEMBER1", M1);
    s.set_account("AKIDMEMBER2", M2);
    for (id, date) in [
        (GOLD1, "2026-01-01T00:00:00.000Z"),
        (GOLD2, "2026-02-01T00:00:00.000Z"),
        (GOLD3, "2026-03-01T00:00:00.000Z"),
    ] {
        let mut spec = ImageSpec::new(
            REGION,
            ami(id, &format!("golden-web-{}", &date[..10]), ME, false),
        );
        spec.shared_with.push(M1.into());
        s.add_image(spec);
        s.set_image_dates(REGION, id, Some(date), None);
    }
    s.add_image(ImageSpec::new(REGION, ami(BASE, "org-base-1", ME, true)));
    s.add_image(ImageSpec::new(
        REGION,
        ami(COMMUNITY_AMI, "community-tool-1", COMMUNITY, true),
    ));
    let instance = |id: &str, image: &str, owner: &str| InstanceSpec {
        region: REGION.into(),
        instance_id: id.into(),
        image_id: image.into(),
        state: "running".into(),
        owner_id: owner.into(),
    };
    s.add_instance(instance("i-0000000000000me3", GOLD3, ME));
    s.add_instance(instance("i-00000000000m1g1", GOLD1, M1));
    template(&s, "AKIDMEMBER1", "web", GOLD1);
    template(&s, "AKIDMEMBER1", "tool", COMMUNITY_AMI);
    template(&s, "AKIDMEMBER2", "base", BASE);
    s
}

fn entry<'a>(v: &'a Value, account: &str) -> &'a Value {
    v["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == account && r["region"] == REGION)
        .unwrap_or_else(|| panic!("no entry for {account}: {v}"))
}

/// `amiscan ARGS... --regions REGION --state HOME/state.json`: the exit code and the output.
fn in_region(s: &TestServer, home: &std::path::Path, args: &[&str]) -> (i32, String) {
    let state = home.join("state.json");
    let mut args = args.to_vec();
    args.extend(["--regions", REGION, "--state", state.to_str().unwrap()]);
    amiscan(s, home, &args)
}

/// `inventory --format json MORE...` [`in_region`]: the exit code and the JSON.
fn inventory(s: &TestServer, home: &std::path::Path, more: &[&str]) -> (i32, Value) {
    let mut args = vec!["inventory", "--format", "json"];
    args.extend(more);
    let (code, out) = in_region(s, home, &args);
    let v = serde_json::from_str(&out[..out.rfind('}').unwrap_or(0) + 1])
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    (code, v)
}

fn at_risk(r: &Value) -> Vec<(String, String)> {
    r["at_risk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["image_id"].as_str().unwrap().to_string(),
                a["reasons"][0].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn org_inventory_judges_images_risks_and_drift_across_the_accounts() {
    let s = organisation();
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state.json");
    let st = state.to_str().unwrap();
    let (code, v) = inventory(&s, home.path(), &["--org-role", ROLE]);
    // The community AMI under member 1's template is at risk: exit 1.
    assert_eq!(code, 1, "{v}");
    let accounts: Vec<&str> = v["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["account"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, [ME, M1, M2], "{v}");
    for a in [ME, M1, M2] {
        assert_eq!(entry(&v, a)["errors"], serde_json::json!([]), "{v}");
    }
    // Roles assumed in the members only.
    assert_eq!(assumed_roles(&s), role_arns(&[M1, M2], ROLE));

    // The management account: its own images, nothing at risk, no drift of its own.
    let me = entry(&v, ME);
    assert_eq!(image(me, GOLD3)["class"], "self");
    assert_eq!(image(me, BASE)["class"], "self");
    assert!(at_risk(me).is_empty(), "{me}");
    assert_eq!(me["drift"], serde_json::json!([]));

    // Member 1: the golden image of the management account is the organisation's own; its
    // template on the community AMI stays at risk; its workloads on version 1 are two versions
    // behind version 3, which only the management account references.
    let m1 = entry(&v, M1);
    assert_eq!(image(m1, GOLD1)["class"], "own-org");
    assert_eq!(image(m1, COMMUNITY_AMI)["class"], "public-unverified");
    assert_eq!(
        at_risk(m1),
        vec![(COMMUNITY_AMI.to_string(), "public".to_string())]
    );
    let drift = m1["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{m1}");
    assert_eq!(drift[0]["image_id"], GOLD1);
    assert_eq!(drift[0]["latest_image_id"], GOLD3);
    assert_eq!(drift[0]["versions_behind"], 2);
    assert_eq!(drift[0]["lineage"], format!("{ME}/golden-web"));
    let mut on_old: Vec<String> = drift[0]["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    on_old.sort();
    assert_eq!(on_old.len(), 2, "{on_old:?}");
    assert_eq!(on_old[0], "i-00000000000m1g1");
    assert!(
        on_old[1].starts_with("lt-") && on_old[1].ends_with(":1"),
        "{on_old:?}"
    );

    // Member 2: the public base of the management account is not a dependency at risk.
    let m2 = entry(&v, M2);
    assert_eq!(image(m2, BASE)["class"], "own-org");
    assert!(at_risk(m2).is_empty(), "{m2}");

    // The proposal covers the organisation's accounts; never the community's.
    let (code, out) = in_region(
        &s,
        home.path(),
        &[
            "allowlist",
            "propose",
            "--format",
            "json",
            "--org-role",
            ROLE,
        ],
    );
    assert_eq!(code, 0, "{out}");
    let crit: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        crit,
        serde_json::json!({"ImageCriteria": [{"ImageProviders": [ME, M1, M2]}]})
    );

    // Applying works in one account: refused for the organisation, nothing changed.
    let (code, out) = amiscan(
        &s,
        home.path(),
        &[
            "allowlist",
            "apply",
            "--mode",
            "audit",
            "--state",
            st,
            "--org-role",
            ROLE,
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--org-policy"), "{out}");
    assert_eq!(s.allowed_images_settings(REGION).0, "disabled");

    // Member 2 alone: the management account's public base is an unverified public image, at
    // risk. The HTML page has a section per account inventoried.
    let html = home.path().join("m2.html");
    let (code, v) = inventory(&s, home.path(), &["--org-role", ROLE, "--accounts", M2]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["regions"].as_array().unwrap().len(), 1, "{v}");
    let m2 = entry(&v, M2);
    assert_eq!(image(m2, BASE)["class"], "public-unverified");
    assert_eq!(at_risk(m2), vec![(BASE.to_string(), "public".to_string())]);
    let (_, out) = in_region(
        &s,
        home.path(),
        &[
            "inventory",
            "--format",
            "html",
            "-o",
            html.to_str().unwrap(),
            "--org-role",
            ROLE,
        ],
    );
    let page = std::fs::read_to_string(&html).unwrap_or_else(|e| panic!("{e}: {out}"));
    for a in [ME, M1, M2] {
        assert!(
            page.contains(&format!("data-account=\"{a}\" data-region=\"{REGION}\"")),
            "{a}"
        );
    }
}

#[test]
fn org_audit_classes_the_images_of_other_members_as_the_organisations() {
    let s = organisation();
    let home = tempfile::tempdir().unwrap();
    let class = |more: &[&str]| -> String {
        let mut args = vec!["audit", "--format", "json", "--org-role", ROLE];
        args.extend(more);
        let (code, out) = in_region(&s, home.path(), &args);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let m1 = v
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["account"] == M1)
            .unwrap_or_else(|| panic!("{out}"));
        assert_eq!(code, 0, "nothing public-unverified runs: {out}");
        m1["instances"][0]["class"].as_str().unwrap().to_string()
    };
    // Member 1's instance runs the management account's golden image, shared with it.
    assert_eq!(class(&[]), "own-org");
    assert_eq!(class(&["--accounts", M1]), "shared-privately");
}

#[test]
fn org_inventory_reports_a_member_without_the_role_as_incomplete() {
    let s = organisation();
    let home = tempfile::tempdir().unwrap();
    let members = format!("{ME},{M2}");
    let (code, v) = inventory(
        &s,
        home.path(),
        &["--org-role", "NoSuchRole", "--accounts", &members],
    );
    // The management account is inventoried with its own keys; member 2's entry says why it
    // is empty, and the exit code says the inventory is incomplete.
    assert_eq!(entry(&v, ME)["errors"], serde_json::json!([]), "{v}");
    let errors = entry(&v, M2)["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{v}");
    assert_eq!(code, 3, "{v}");
}
