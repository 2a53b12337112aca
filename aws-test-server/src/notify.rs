//! The two services a publish guard reports to:
//!
//! - SNS `Publish` (Query protocol, API version 2010-03-31: a form-encoded `POST /` signed for
//!   service `sns`, a `PublishResponse` XML answer, and `ErrorResponse` XML with `Type`, `Code` and
//!   `Message` for errors: `NotFound` for an unknown topic, `InvalidParameter` for a missing or too
//!   long message or a subject that is not printable ASCII of less than 100 characters);
//! - Security Hub `BatchImportFindings` (REST-JSON: `POST /findings/import` with
//!   `{"Findings": [...]}`, answered `{"FailedCount", "SuccessCount", "FailedFindings"}`; 1 to 100
//!   findings per call, else `InvalidInputException`). Each finding is checked for the required
//!   ASFF fields, a known severity label, and for a `ProductArn` and `AwsAccountId` of the
//!   caller's own account and region (the default product); a failing finding is listed in
//!   `FailedFindings` and not imported, as the service does.
//!
//! What was published and imported is kept for tests ([`TestServer::sns_messages`],
//! [`TestServer::imported_findings`]).

use crate::http::{Outcome, full, get, response};
use crate::query_xml::QueryService;
use crate::{TestServer, lock};
use serde_json::{Value, json};

const SNS: QueryService = QueryService {
    ns: "http://sns.amazonaws.com/doc/2010-03-31/",
    request_id: "22222222-3333-4444-5555-666666666666",
};
/// Largest SNS message: 256 KiB.
const MAX_MESSAGE: usize = 256 * 1024;
/// Most findings in one `BatchImportFindings` call.
const MAX_FINDINGS: usize = 100;

/// One SNS message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    /// `TopicArn`.
    pub topic_arn: String,
    /// `Subject`, when given.
    pub subject: Option<String>,
    /// `Message`.
    pub message: String,
}

#[derive(Debug, Default)]
pub(crate) struct Notify {
    pub(crate) topics: Vec<String>,
    pub(crate) messages: Vec<SnsMessage>,
    pub(crate) findings: Vec<Value>,
    pub(crate) import_calls: u64,
}

/// Log a call (`sns:Publish`, `securityhub:BatchImportFindings`) for `TestServer::ec2_calls`.
fn record(state: &crate::State, region: &str, action: String, params: Vec<(String, String)>) {
    crate::lock(&state.fleet).record(region, action, params);
}

/// Handle one SNS Query request.
pub(crate) fn sns(state: &crate::State, form: &[(String, String)], region: &str) -> Outcome {
    record(
        state,
        region,
        format!("sns:{}", get(form, "Action").unwrap_or("")),
        form.to_vec(),
    );
    match get(form, "Action") {
        Some("Publish") => publish(state, form),
        Some(other) => SNS.error(
            400,
            "Sender",
            "InvalidAction",
            &format!("The action {other} is not valid for this endpoint."),
        ),
        None => SNS.error(400, "Sender", "MissingAction", "Missing Action"),
    }
}

fn publish(state: &crate::State, form: &[(String, String)]) -> Outcome {
    let Some(topic) = get(form, "TopicArn").or_else(|| get(form, "TargetArn")) else {
        return SNS.error(
            400,
            "Sender",
            "InvalidParameter",
            "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
        );
    };
    let Some(message) = get(form, "Message") else {
        return SNS.error(
            400,
            "Sender",
            "ValidationError",
            "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null",
        );
    };
    if message.is_empty() || message.len() > MAX_MESSAGE {
        return SNS.error(
            400,
            "Sender",
            "InvalidParameter",
            "Invalid parameter: Message Reason: Message must be between 1 byte and 256 KiB",
        );
    }
    let subject = get(form, "Subject");
    if let Some(s) = subject {
        let printable = s.bytes().all(|b| (0x20..0x7f).contains(&b));
        if s.is_empty() || s.len() >= 100 || !printable {
            return SNS.error(
                400,
                "Sender",
                "InvalidParameter",
                "Invalid parameter: Subject",
            );
        }
    }
    let mut n = lock(&state.notify);
    if !n.topics.iter().any(|t| t == topic) {
        drop(n);
        return SNS.error(404, "Sender", "NotFound", "Topic does not exist");
    }
    n.messages.push(SnsMessage {
        topic_arn: topic.into(),
        subject: subject.map(str::to_string),
        message: message.into(),
    });
    let id = format!("00000000-0000-4000-8000-{:012x}", n.messages.len());
    drop(n);
    SNS.ok("Publish", Some(&format!("<MessageId>{id}</MessageId>")))
}

fn hub_error(status: u16, kind: &str, message: &str) -> Outcome {
    let body = json!({"Code": kind, "Message": message}).to_string();
    Outcome::Respond(response(
        status,
        &[
            ("content-type", "application/json".into()),
            ("x-amzn-errortype", kind.into()),
        ],
        full(body),
    ))
}

const REQUIRED: [&str; 12] = [
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Severity",
    "Title",
    "Types",
    "UpdatedAt",
];
const LABELS: [&str; 5] = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// Why one finding is refused, if it is.
fn check_finding(f: &Value, region: &str, account: &str) -> Option<(&'static str, String)> {
    if let Some(missing) = REQUIRED.iter().find(|k| f.get(**k).is_none()) {
        return Some((
            "InvalidInput",
            format!("Finding is missing required field {missing}"),
        ));
    }
    let label = f["Severity"]["Label"].as_str().unwrap_or("");
    if !LABELS.contains(&label) {
        return Some(("InvalidInput", format!("Invalid Severity.Label '{label}'")));
    }
    let product = format!("arn:aws:securityhub:{region}:{account}:product/{account}/default");
    if f["ProductArn"].as_str() != Some(product.as_str()) {
        return Some((
            "AccessDeniedException",
            format!(
                "Product {} is not the default product of account {account} in {region}",
                f["ProductArn"]
            ),
        ));
    }
    if f["AwsAccountId"].as_str() != Some(account) {
        return Some((
            "AccessDeniedException",
            "AwsAccountId must be the caller's account for the default product".into(),
        ));
    }
    let resources_ok = f["Resources"].as_array().is_some_and(|r| {
        !r.is_empty()
            && r.iter()
                .all(|x| x["Type"].is_string() && x["Id"].is_string())
    });
    let types_ok = f["Types"].as_array().is_some_and(|t| !t.is_empty());
    if !resources_ok || !types_ok {
        return Some((
            "InvalidInput",
            "Resources and Types must be non-empty lists".into(),
        ));
    }
    None
}

/// `BatchImportFindings` for the caller `account` in `region`.
pub(crate) fn batch_import_findings(
    state: &crate::State,
    body: &[u8],
    region: &str,
    account: &str,
) -> Outcome {
    record(
        state,
        region,
        "securityhub:BatchImportFindings".into(),
        Vec::new(),
    );
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return hub_error(
            400,
            "InvalidInputException",
            "The request body is not valid JSON",
        );
    };
    let Some(findings) = v["Findings"].as_array() else {
        return hub_error(400, "InvalidInputException", "Findings is required");
    };
    if findings.is_empty() || findings.len() > MAX_FINDINGS {
        return hub_error(
            400,
            "InvalidInputException",
            "Findings must contain between 1 and 100 findings",
        );
    }
    let mut failed = Vec::new();
    let mut n = lock(&state.notify);
    n.import_calls = n.import_calls.saturating_add(1);
    for f in findings {
        match check_finding(f, region, account) {
            Some((code, msg)) => failed.push(json!({
                "Id": f["Id"].as_str().unwrap_or(""),
                "ErrorCode": code,
                "ErrorMessage": msg,
            })),
            None => {
                // A finding with the same Id and product replaces the earlier one.
                n.findings
                    .retain(|old| !(old["Id"] == f["Id"] && old["ProductArn"] == f["ProductArn"]));
                n.findings.push(f.clone());
            }
        }
    }
    drop(n);
    let body = json!({
        "FailedCount": failed.len(),
        "SuccessCount": findings.len() - failed.len(),
        "FailedFindings": failed,
    })
    .to_string();
    Outcome::Respond(response(
        200,
        &[("content-type", "application/json".into())],
        full(body),
    ))
}

impl TestServer {
    /// Create an SNS topic (`Publish` to any other topic answers `NotFound`).
    pub fn add_sns_topic(&self, arn: &str) {
        lock(&self.state.notify).topics.push(arn.into());
    }

    /// Every SNS message accepted so far, in order.
    pub fn sns_messages(&self) -> Vec<SnsMessage> {
        lock(&self.state.notify).messages.clone()
    }

    /// Every finding Security Hub holds (imported and not refused), in import order.
    pub fn imported_findings(&self) -> Vec<Value> {
        lock(&self.state.notify).findings.clone()
    }

    /// `BatchImportFindings` calls so far.
    pub fn import_calls(&self) -> u64 {
        lock(&self.state.notify).import_calls
    }
}
