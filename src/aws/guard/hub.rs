//! What the publish guard reports: its own ASFF finding for a share it reverted, the ASFF of
//! the scan's findings turned into the Security Hub SDK's types for `BatchImportFindings`, and
//! the SNS notice. Evidence stays redacted: the ASFF writer never carries a secret, and the
//! notice names rules, paths and fingerprints only.

use super::event::{Grantee, ShareEvent, Shared};
use crate::report::asff::{self, AsffOptions};
use crate::report::{Severity, TargetReport};
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Partition, Recommendation, RecordState, Remediation, Resource,
    Severity as HubSeverity, SeverityLabel, Workflow, WorkflowStatus,
};
use serde_json::{Value, json};

/// Most scan findings sent to Security Hub or named in the notice for one event.
pub const MAX_REPORTED: usize = 1000;
/// Most findings named in the SNS notice (a message is at most 256 KiB); the count is always
/// complete.
pub const MAX_NOTICE: usize = 200;
/// Findings per `BatchImportFindings` call (the service's limit).
pub const IMPORT_BATCH: usize = 100;

/// The ASFF resource of the shared image or snapshot.
fn resource(shared: &Shared, opts: &AsffOptions, region: &str) -> Value {
    let (kind, arn) = match shared {
        Shared::Image(id) => (
            "AwsEc2Image",
            format!("arn:{}:ec2:{region}::image/{id}", opts.partition()),
        ),
        Shared::Snapshot(id) => (
            "Other",
            format!("arn:{}:ec2:{region}::snapshot/{id}", opts.partition()),
        ),
    };
    json!({"Type": kind, "Id": arn, "Partition": opts.partition(), "Region": region})
}

/// The guard's own finding: the share, who made it, what was reverted and why.
pub fn guard_finding(
    ev: &ShareEvent,
    reason: &str,
    removed: &[Grantee],
    severity: Severity,
    opts: &AsffOptions,
    now: &str,
) -> Value {
    let who = removed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let id = ev.shared.id();
    let description = format!(
        "{id} was shared with {who}{}. amiscan's publish guard scanned it and removed the new permission: {reason}.",
        ev.actor
            .as_deref()
            .map(|a| format!(" by {a}"))
            .unwrap_or_default()
    );
    json!({
        "SchemaVersion": asff::ASFF_SCHEMA_VERSION,
        "Id": format!("amiscan/guard/{id}/{}", if ev.event_id.is_empty() { "event" } else { &ev.event_id }),
        "ProductArn": opts.product_arn(),
        "GeneratorId": "amiscan-publish-guard",
        "AwsAccountId": ev.account,
        "Types": ["Effects/Data Exposure"],
        "CreatedAt": now,
        "UpdatedAt": now,
        "Severity": {"Label": asff::severity_label(severity), "Original": severity.as_str()},
        "Title": format!("Share of {id} reverted by amiscan"),
        "Description": description.chars().take(asff::MAX_DESCRIPTION).collect::<String>(),
        "Resources": [resource(&ev.shared, opts, &ev.region)],
        "Remediation": {"Recommendation": {"Text": "Remove the secrets and insecure defaults the scan found from the image build, publish a new image, and rotate every credential that was in it."}},
        "ProductFields": {"ProviderName": "amiscan", "ProviderVersion": env!("CARGO_PKG_VERSION"), "amiscan/Reason": reason},
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    })
}

/// The scan's findings that count (at or above the threshold, not vendor content) as ASFF, at
/// most [`MAX_REPORTED`].
pub fn scan_findings(report: &TargetReport, fail_on: Severity, opts: &AsffOptions) -> Vec<Value> {
    let mut t = report.clone();
    t.findings
        .retain(|f| f.severity >= fail_on && !f.is_vendor());
    t.findings.truncate(MAX_REPORTED);
    let r = crate::report::Report {
        version: 1,
        tool: "amiscan".into(),
        targets: vec![t],
    };
    asff::to_asff(&r, opts)
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// One ASFF finding (as the writer makes it) in the SDK's types.
pub fn to_sdk(v: &Value) -> AwsSecurityFinding {
    let mut b = AwsSecurityFinding::builder()
        .schema_version(s(v, "SchemaVersion"))
        .id(s(v, "Id"))
        .product_arn(s(v, "ProductArn"))
        .generator_id(s(v, "GeneratorId"))
        .aws_account_id(s(v, "AwsAccountId"))
        .created_at(s(v, "CreatedAt"))
        .updated_at(s(v, "UpdatedAt"))
        .title(s(v, "Title"))
        .description(s(v, "Description"))
        .severity(
            HubSeverity::builder()
                .label(SeverityLabel::from(s(&v["Severity"], "Label").as_str()))
                .original(s(&v["Severity"], "Original"))
                .build(),
        )
        .record_state(RecordState::from(s(v, "RecordState").as_str()))
        .workflow(
            Workflow::builder()
                .status(WorkflowStatus::from(s(&v["Workflow"], "Status").as_str()))
                .build(),
        );
    for t in v["Types"].as_array().into_iter().flatten() {
        b = b.types(t.as_str().unwrap_or(""));
    }
    for r in v["Resources"].as_array().into_iter().flatten() {
        b = b.resources(
            Resource::builder()
                .r#type(s(r, "Type"))
                .id(s(r, "Id"))
                .partition(Partition::from(s(r, "Partition").as_str()))
                .region(s(r, "Region"))
                .build(),
        );
    }
    let text = s(&v["Remediation"]["Recommendation"], "Text");
    if !text.is_empty() {
        b = b.remediation(
            Remediation::builder()
                .recommendation(Recommendation::builder().text(text).build())
                .build(),
        );
    }
    for (k, val) in v["ProductFields"].as_object().into_iter().flatten() {
        b = b.product_fields(k.clone(), val.as_str().unwrap_or("").to_string());
    }
    b.build()
}

/// The SNS notice: a subject of printable ASCII, less than 100 characters, and a JSON message.
pub fn notice(
    ev: &ShareEvent,
    reason: &str,
    removed: &[Grantee],
    report: Option<&TargetReport>,
    fail_on: Severity,
) -> (String, String) {
    let id = ev.shared.id();
    let subject: String = format!("amiscan blocked the share of {id}")
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(99)
        .collect();
    let counted = |r: &&TargetReport| {
        r.findings
            .iter()
            .filter(|f| f.severity >= fail_on && !f.is_vendor())
            .count()
    };
    let total = report.as_ref().map(counted).unwrap_or(0);
    let findings: Vec<Value> = report
        .map(|r| {
            r.findings
                .iter()
                .filter(|f| f.severity >= fail_on && !f.is_vendor())
                .take(MAX_NOTICE)
                .map(|f| {
                    json!({"rule": f.rule, "severity": f.severity.as_str(), "volume": f.volume,
                           "path": f.path, "fingerprint": f.fingerprint})
                })
                .collect()
        })
        .unwrap_or_default();
    let message = json!({
        "source": "amiscan-publish-guard",
        "verdict": "blocked",
        "resource": ev.shared,
        "account": ev.account,
        "region": ev.region,
        "event_id": ev.event_id,
        "actor": ev.actor,
        "reason": reason,
        "removed": removed,
        "scan_complete": report.map(|r| r.complete),
        "scan_errors": report.map(|r| r.errors.iter().take(20).map(|e| e.message.clone()).collect::<Vec<_>>()),
        "findings_at_or_above": fail_on.as_str(),
        "findings_total": total,
        "findings": findings,
    });
    (
        subject,
        crate::model::escape::json_safe(&message.to_string()).into_owned(),
    )
}
