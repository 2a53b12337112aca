//! Where findings go: Security Hub `BatchImportFindings` (REST-JSON, `POST /findings/import`)
//! and SNS `Publish` (Query protocol, `POST /` signed for `sns`), as their API references
//! describe them: request validation, the answers' shapes and error codes. The server keeps
//! what it received so tests can assert on it.

use crate::ec2_xml::esc;
use crate::http::{Outcome, full, get, response};
use crate::{State, TestServer, lock};
use serde_json::{Value, json};

const REQUEST_ID: &str = "00000000-0000-0000-0000-0000000a1e27";
const SNS_NS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";
/// SNS: a message is at most 256 KiB.
const MAX_MESSAGE: usize = 256 * 1024;
/// Security Hub: 1 to 100 findings per call.
const MAX_FINDINGS: usize = 100;

/// What the alert endpoints hold.
#[derive(Debug, Default)]
pub(crate) struct Alerts {
    topics: Vec<String>,
    messages: Vec<SnsMessage>,
    findings: Vec<Value>,
    next_id: u64,
}

/// A message SNS accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    /// The topic.
    pub topic_arn: String,
    /// `Subject`, when given.
    pub subject: Option<String>,
    /// `Message`.
    pub message: String,
    /// The `MessageId` answered.
    pub message_id: String,
}

impl TestServer {
    /// Create an SNS topic (`arn:aws:sns:<region>:<account>:<name>`) that `Publish` accepts.
    pub fn add_sns_topic(&self, arn: &str) {
        lock(&self.state.alerts).topics.push(arn.into());
    }

    /// Every message published, in order.
    pub fn sns_messages(&self) -> Vec<SnsMessage> {
        lock(&self.state.alerts).messages.clone()
    }

    /// Every finding Security Hub imported (the request's JSON), in order.
    pub fn security_hub_findings(&self) -> Vec<Value> {
        lock(&self.state.alerts).findings.clone()
    }
}

fn sns_error(status: u16, code: &str, message: &str) -> Outcome {
    let body = format!(
        "<ErrorResponse xmlns=\"{SNS_NS}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{REQUEST_ID}</RequestId></ErrorResponse>",
        esc(code),
        esc(message)
    );
    Outcome::Respond(response(
        status,
        &[("content-type", "text/xml".into())],
        full(body),
    ))
}

/// Handle one SNS Query request (only `Publish` to a topic).
pub(crate) fn handle_sns(
    state: &State,
    form: &[(String, String)],
    region: &str,
    akid: &str,
) -> Outcome {
    let account = {
        let mut f = lock(&state.fleet);
        if f.calls.len() < 100_000 {
            f.calls.push(crate::Ec2Call {
                region: region.into(),
                action: format!("sns:{}", get(form, "Action").unwrap_or("")),
                params: form.to_vec(),
            });
        }
        f.account_of(akid)
    };
    match get(form, "Action") {
        Some("Publish") => {}
        Some(other) => {
            return sns_error(
                400,
                "InvalidAction",
                &format!("The action {other} is not valid for this web service."),
            );
        }
        None => {
            return sns_error(
                400,
                "MissingAction",
                "The request must contain the parameter Action",
            );
        }
    }
    if get(form, "TargetArn").is_some() || get(form, "PhoneNumber").is_some() {
        return sns_error(
            400,
            "InvalidParameter",
            "Invalid parameter: only TopicArn is served",
        );
    }
    let Some(topic) = get(form, "TopicArn") else {
        return sns_error(
            400,
            "InvalidParameter",
            "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
        );
    };
    let parts: Vec<&str> = topic.split(':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "sns"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && !parts[5].is_empty();
    if !well_formed {
        return sns_error(400, "InvalidParameter", "Invalid parameter: TopicArn");
    }
    if parts[3] != region {
        return sns_error(
            400,
            "InvalidParameter",
            &format!(
                "Invalid parameter: TopicArn Reason: A ARN must be in the same region as the endpoint ({region})"
            ),
        );
    }
    let Some(message) = get(form, "Message") else {
        return sns_error(
            400,
            "ValidationError",
            "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null",
        );
    };
    if message.is_empty() {
        return sns_error(400, "InvalidParameter", "Invalid parameter: Empty message");
    }
    if message.len() > MAX_MESSAGE {
        return sns_error(
            400,
            "InvalidParameter",
            "Invalid parameter: Message too long",
        );
    }
    let subject = get(form, "Subject");
    if let Some(s) = subject {
        let ok = !s.is_empty()
            && s.chars().count() < 100
            && s.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
            && !s.starts_with(' ');
        if !ok {
            return sns_error(400, "InvalidParameter", "Invalid parameter: Subject");
        }
    }
    let mut a = lock(&state.alerts);
    if !a.topics.iter().any(|t| t == topic) {
        return sns_error(404, "NotFound", "Topic does not exist");
    }
    if parts[4] != account {
        return sns_error(
            403,
            "AuthorizationError",
            &format!(
                "User: arn:aws:iam::{account}:user/test is not authorized to perform: SNS:Publish on resource: {topic}"
            ),
        );
    }
    a.next_id += 1;
    let message_id = format!("00000000-0000-4000-8000-{:012x}", a.next_id);
    a.messages.push(SnsMessage {
        topic_arn: topic.into(),
        subject: subject.map(str::to_string),
        message: message.into(),
        message_id: message_id.clone(),
    });
    let body = format!(
        "<PublishResponse xmlns=\"{SNS_NS}\"><PublishResult><MessageId>{message_id}</MessageId></PublishResult><ResponseMetadata><RequestId>{REQUEST_ID}</RequestId></ResponseMetadata></PublishResponse>"
    );
    Outcome::Respond(response(
        200,
        &[("content-type", "text/xml".into())],
        full(body),
    ))
}

fn hub_error(status: u16, kind: &str, message: &str) -> Outcome {
    Outcome::Respond(response(
        status,
        &[
            ("content-type", "application/json".into()),
            ("x-amzn-ErrorType", kind.into()),
            ("x-amzn-RequestId", REQUEST_ID.into()),
        ],
        full(json!({"Code": kind, "Message": message}).to_string()),
    ))
}

/// The ASFF fields `BatchImportFindings` requires of every finding.
const REQUIRED: [&str; 11] = [
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Title",
    "Types",
    "UpdatedAt",
];

/// Why Security Hub refuses one finding of `account` in `region`, or `None`.
fn refuse(f: &Value, account: &str, region: &str) -> Option<String> {
    for k in REQUIRED {
        let present = match f.get(k) {
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            _ => false,
        };
        if !present {
            return Some(format!(
                "Finding does not adhere to Amazon Finding Format. data.{k} is required"
            ));
        }
    }
    if f.get("Severity")
        .and_then(|s| s.get("Label").or_else(|| s.get("Normalized")))
        .is_none()
    {
        return Some(
            "Finding does not adhere to Amazon Finding Format. data.Severity is required".into(),
        );
    }
    if f["SchemaVersion"] != "2018-10-08" {
        return Some("Finding does not adhere to Amazon Finding Format. data.SchemaVersion must be 2018-10-08".into());
    }
    let product = format!("arn:aws:securityhub:{region}:{account}:product/{account}/default");
    if f["ProductArn"] != product.as_str() || f["AwsAccountId"] != account {
        return Some(format!(
            "The product {} is not authorized to import findings for account {}",
            f["ProductArn"].as_str().unwrap_or(""),
            f["AwsAccountId"].as_str().unwrap_or("")
        ));
    }
    let bad_resource = f["Resources"].as_array().into_iter().flatten().any(|r| {
        r.get("Type").and_then(Value::as_str).is_none()
            || r.get("Id").and_then(Value::as_str).is_none()
    });
    if bad_resource || f["Resources"].as_array().is_some_and(|a| a.len() > 32) {
        return Some("Finding does not adhere to Amazon Finding Format. data.Resources[].Type and Id are required (at most 32)".into());
    }
    None
}

/// `POST /findings/import`.
pub(crate) fn batch_import_findings(
    state: &State,
    body: &[u8],
    region: &str,
    akid: &str,
) -> Outcome {
    let account = {
        let mut f = lock(&state.fleet);
        if f.calls.len() < 100_000 {
            f.calls.push(crate::Ec2Call {
                region: region.into(),
                action: "securityhub:BatchImportFindings".into(),
                params: Vec::new(),
            });
        }
        f.account_of(akid)
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return hub_error(400, "InvalidInputException", "The request body is not JSON");
    };
    let Some(list) = v.get("Findings").and_then(Value::as_array) else {
        return hub_error(400, "InvalidInputException", "Findings is required");
    };
    if list.is_empty() || list.len() > MAX_FINDINGS {
        return hub_error(
            400,
            "InvalidInputException",
            "Findings must hold between 1 and 100 findings",
        );
    }
    let mut failed = Vec::new();
    let mut a = lock(&state.alerts);
    for f in list {
        match refuse(f, &account, region) {
            Some(msg) => failed.push(json!({
                "Id": f.get("Id").and_then(Value::as_str).unwrap_or(""),
                "ErrorCode": "InvalidInput",
                "ErrorMessage": msg,
            })),
            None => {
                // Same Id and ProductArn: an update of the finding.
                a.findings
                    .retain(|g| !(g["Id"] == f["Id"] && g["ProductArn"] == f["ProductArn"]));
                a.findings.push(f.clone());
            }
        }
    }
    let out = json!({
        "FailedCount": failed.len(),
        "SuccessCount": list.len() - failed.len(),
        "FailedFindings": failed,
    });
    Outcome::Respond(response(
        200,
        &[
            ("content-type", "application/json".into()),
            ("x-amzn-RequestId", REQUEST_ID.into()),
        ],
        full(out.to_string()),
    ))
}
