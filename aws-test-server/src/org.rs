//! AWS Organizations (JSON 1.1: `X-Amz-Target: AWSOrganizationsV20161128.ListAccounts`) and
//! AWS STS (Query: `AssumeRole`, `GetCallerIdentity`), as the API references answer them.
//!
//! An organisation is seeded with [`TestServer::set_organization`]: its management account
//! (the only caller `ListAccounts` answers; others get `AccessDeniedException`, and without an
//! organisation every caller gets `AWSOrganizationsNotInUseException`) and its accounts. Roles
//! that may be assumed are seeded with [`TestServer::add_role`]. `AssumeRole` hands out an
//! access key of its own per call (`ASIA...`) and records that it acts as the role's account,
//! so every later call signed with it (EC2, EBS, S3) is told apart by account.

use crate::clock::iso8601;
use crate::ec2_xml::esc;
use crate::http::{Outcome, full, get, response};
use crate::query_xml::QueryService;
use crate::{State, TestServer, lock};

const STS: QueryService = QueryService {
    ns: "https://sts.amazonaws.com/doc/2011-06-15/",
    request_id: "c6104cbe-af31-11e0-8154-cbc7ccf896c7",
};

/// A member account of the seeded organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccountSpec {
    /// 12-digit id.
    pub id: String,
    /// Account name.
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub status: String,
}

/// One `AssumeRole` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleCall {
    /// The caller's account.
    pub caller: String,
    /// `RoleArn` asked for.
    pub role_arn: String,
    /// Whether credentials were issued.
    pub granted: bool,
}

#[derive(Default)]
pub(crate) struct OrgState {
    pub(crate) management: Option<String>,
    pub(crate) accounts: Vec<OrgAccountSpec>,
    /// `(account, role name)` pairs that exist.
    pub(crate) roles: Vec<(String, String)>,
    pub(crate) assume_calls: Vec<AssumeRoleCall>,
    pub(crate) next_key: u64,
    pub(crate) page_size: Option<usize>,
}

fn sts_error(status: u16, code: &str, message: &str) -> Outcome {
    STS.error(status, "Sender", code, message)
}

/// STS Query actions (`Action=` in a form body), for a caller of `account`.
pub(crate) fn sts(state: &State, form: &[(String, String)], account: &str) -> Outcome {
    match get(form, "Action") {
        Some("GetCallerIdentity") => {
            let result = format!(
                "<Arn>arn:aws:iam::{a}:user/test</Arn><UserId>AIDATESTUSER</UserId><Account>{a}</Account>",
                a = esc(account)
            );
            STS.ok("GetCallerIdentity", Some(&result))
        }
        Some("AssumeRole") => assume_role(state, form, account),
        Some(other) => sts_error(
            400,
            "InvalidAction",
            &format!("Could not find operation {other} for version 2011-06-15"),
        ),
        None => sts_error(400, "MissingAction", "Missing Action"),
    }
}

fn assume_role(state: &State, form: &[(String, String)], caller: &str) -> Outcome {
    let Some(arn) = get(form, "RoleArn") else {
        return sts_error(
            400,
            "ValidationError",
            "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null",
        );
    };
    let session = get(form, "RoleSessionName").unwrap_or("session");
    // arn:PARTITION:iam::ACCOUNT:role/PATH/NAME
    let parsed = arn.split(':').collect::<Vec<_>>();
    let (account, role) = match parsed.as_slice() {
        ["arn", _, "iam", "", acct, res] => match res.strip_prefix("role/") {
            Some(r) => (
                acct.to_string(),
                r.rsplit('/').next().unwrap_or(r).to_string(),
            ),
            None => return sts_error(400, "ValidationError", &format!("{arn} is not a role ARN")),
        },
        _ => return sts_error(400, "ValidationError", &format!("{arn} is not a role ARN")),
    };
    let mut org = lock(&state.org);
    let exists = org.roles.iter().any(|(a, r)| *a == account && *r == role);
    org.assume_calls.push(AssumeRoleCall {
        caller: caller.into(),
        role_arn: arn.into(),
        granted: exists,
    });
    if !exists {
        return sts_error(
            403,
            "AccessDenied",
            &format!(
                "User: arn:aws:iam::{caller}:user/test is not authorized to perform: sts:AssumeRole on resource: {arn}"
            ),
        );
    }
    org.next_key = org.next_key.saturating_add(1);
    let akid = format!("ASIA{:016X}", org.next_key);
    drop(org);
    lock(&state.fleet)
        .accounts
        .insert(akid.clone(), account.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let result = format!(
        "<AssumedRoleUser><Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn><AssumedRoleId>AROATESTROLE:{session}</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>{akid}</AccessKeyId><SecretAccessKey>test-secret-{akid}</SecretAccessKey><SessionToken>test-token-{akid}</SessionToken><Expiration>{exp}</Expiration></Credentials>",
        account = esc(&account),
        role = esc(&role),
        session = esc(session),
        exp = iso8601(now + 3600),
    );
    STS.ok("AssumeRole", Some(&result))
}

fn json_error(error_type: &str, message: &str) -> Outcome {
    let body = serde_json::json!({ "__type": error_type, "Message": message }).to_string();
    Outcome::Respond(response(
        400,
        &[
            ("content-type", "application/x-amz-json-1.1".into()),
            ("x-amzn-errortype", error_type.into()),
        ],
        full(body),
    ))
}

/// Organizations JSON 1.1 operations (`target` is the `X-Amz-Target` header).
pub(crate) fn organizations(state: &State, target: &str, body: &[u8], caller: &str) -> Outcome {
    let Some(op) = target.strip_prefix("AWSOrganizationsV20161128.") else {
        return json_error(
            "UnknownOperationException",
            &format!("unknown target {target}"),
        );
    };
    if op != "ListAccounts" {
        return json_error(
            "UnknownOperationException",
            &format!("unknown operation {op}"),
        );
    }
    let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let org = lock(&state.org);
    let Some(management) = org.management.clone() else {
        return json_error(
            "AWSOrganizationsNotInUseException",
            "Your account is not a member of an organization.",
        );
    };
    if management != caller {
        return json_error(
            "AccessDeniedException",
            "You don't have permissions to access this resource.",
        );
    }
    let start = match req.get("NextToken").and_then(|t| t.as_str()) {
        None => 0,
        Some(t) => match t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n <= org.accounts.len() => n,
            _ => return json_error("InvalidInputException", "The NextToken is not valid."),
        },
    };
    let max = req
        .get("MaxResults")
        .and_then(serde_json::Value::as_u64)
        .and_then(|m| usize::try_from(m).ok())
        .unwrap_or(20)
        .clamp(1, 20);
    let max = org.page_size.map_or(max, |p| max.min(p.max(1)));
    let end = start.saturating_add(max).min(org.accounts.len());
    let accounts: Vec<serde_json::Value> = org
        .accounts
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            serde_json::json!({
                "Id": a.id,
                "Arn": format!("arn:aws:organizations::{management}:account/o-test/{}", a.id),
                "Email": format!("{}@example.com", a.id),
                "Name": a.name,
                "Status": a.status,
                "State": a.status,
                "JoinedMethod": "CREATED",
                "JoinedTimestamp": 1_700_000_000.0,
            })
        })
        .collect();
    let mut out = serde_json::json!({ "Accounts": accounts });
    if end < org.accounts.len() {
        out["NextToken"] = format!("page-{end}").into();
    }
    Outcome::Respond(response(
        200,
        &[("content-type", "application/x-amz-json-1.1".into())],
        full(out.to_string()),
    ))
}

impl TestServer {
    /// Seed an organisation: its management account and every account in it (the management
    /// account should be listed too, as `ListAccounts` lists it).
    pub fn set_organization(&self, management: &str, accounts: Vec<OrgAccountSpec>) {
        let mut o = lock(&self.state.org);
        o.management = Some(management.into());
        o.accounts = accounts;
    }

    /// A role named `role_name` exists in `account` and any caller may assume it.
    pub fn add_role(&self, account: &str, role_name: &str) {
        lock(&self.state.org)
            .roles
            .push((account.into(), role_name.into()));
    }

    /// Every `AssumeRole` call so far.
    pub fn assume_role_calls(&self) -> Vec<AssumeRoleCall> {
        lock(&self.state.org).assume_calls.clone()
    }

    /// At most `n` accounts per `ListAccounts` page.
    pub fn set_org_page_size(&self, n: Option<usize>) {
        lock(&self.state.org).page_size = n;
    }
}
