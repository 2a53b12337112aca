//! The share events the publish guard acts on, read from the EventBridge "AWS API Call via
//! CloudTrail" envelope (`detail-type`, `source: aws.ec2`, `account`, `region`, `detail` = the
//! CloudTrail record):
//!
//! - `ModifyImageAttribute` with `requestParameters.launchPermission.add.items[]` (each
//!   `{"group": "all"}`, `{"userId": "…"}`, `{"organizationArn": "…"}` or
//!   `{"organizationalUnitArn": "…"}`), and the older form `attributeType: launchPermission`,
//!   `operationType: add`, `userIds` / `userGroups`;
//! - `ModifySnapshotAttribute` with `requestParameters.createVolumePermission.add.items[]`
//!   (`group` / `userId`).
//!
//! Everything else is [`Parsed::Ignored`] with the reason: another event, a removal, a call that
//! failed (`errorCode`: nothing changed), an attribute that grants nothing (`description`). An
//! envelope that is not what EventBridge delivers, or a share without a resource id, is an error.
//! Pure: JSON in, typed values out; the number of grantees read is bounded.

use serde::Serialize;
use serde_json::Value;

/// Most grantees read from one event (EC2 takes at most 500 modifications per call).
pub const MAX_GRANTEES: usize = 1000;

/// Who a share grants access to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "kebab-case")]
pub enum Grantee {
    /// Group `all`: everyone.
    All,
    /// One AWS account.
    Account(String),
    /// An AWS Organization (ARN).
    Organization(String),
    /// An organizational unit (ARN).
    OrganizationalUnit(String),
}

impl std::fmt::Display for Grantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grantee::All => f.write_str("everyone (group all)"),
            Grantee::Account(a) => write!(f, "account {a}"),
            Grantee::Organization(a) => write!(f, "organization {a}"),
            Grantee::OrganizationalUnit(a) => write!(f, "organizational unit {a}"),
        }
    }
}

/// What was shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "kebab-case")]
pub enum Shared {
    /// An AMI's launch permission.
    Image(String),
    /// A snapshot's create-volume permission.
    Snapshot(String),
}

impl Shared {
    /// The resource id (`ami-…` / `snap-…`).
    pub fn id(&self) -> &str {
        match self {
            Shared::Image(id) | Shared::Snapshot(id) => id,
        }
    }
}

/// A share the guard must judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShareEvent {
    /// The envelope's `id` (EventBridge event id).
    pub event_id: String,
    /// The account the call was made in (owner of the resource).
    pub account: String,
    /// The region of the call.
    pub region: String,
    /// The resource.
    pub shared: Shared,
    /// The grantees the call added, in order, without repeats.
    pub added: Vec<Grantee>,
    /// Who made the call (`detail.userIdentity.arn`), for the notice.
    pub actor: Option<String>,
}

/// What an event is to the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A share to judge.
    Share(ShareEvent),
    /// Nothing to do, and why.
    Ignored(String),
}

/// Why an event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not an EventBridge "AWS API Call via CloudTrail" event of EC2.
    #[error("not an EventBridge CloudTrail event of EC2: {0}")]
    NotCloudTrail(String),
    /// A field the share needs is missing or has the wrong type.
    #[error("the {event} event has no usable {field}")]
    Missing {
        /// `ModifyImageAttribute` / `ModifySnapshotAttribute`.
        event: String,
        /// The JSON path.
        field: &'static str,
    },
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Read one EventBridge event.
pub fn parse(event: &Value) -> Result<Parsed, EventError> {
    let detail_type = text(event, "detail-type").unwrap_or("");
    if detail_type != "AWS API Call via CloudTrail" {
        return Err(EventError::NotCloudTrail(format!(
            "detail-type is `{detail_type}`"
        )));
    }
    if text(event, "source") != Some("aws.ec2") {
        return Err(EventError::NotCloudTrail("source is not aws.ec2".into()));
    }
    let detail = event
        .get("detail")
        .filter(|d| d.is_object())
        .ok_or_else(|| EventError::NotCloudTrail("no detail object".into()))?;
    let name = text(detail, "eventName").unwrap_or("").to_string();
    if name != "ModifyImageAttribute" && name != "ModifySnapshotAttribute" {
        return Ok(Parsed::Ignored(format!("event {name} shares nothing")));
    }
    if let Some(code) = text(detail, "errorCode") {
        return Ok(Parsed::Ignored(format!(
            "{name} failed with {code}: nothing was shared"
        )));
    }
    let missing = |field| EventError::Missing {
        event: name.clone(),
        field,
    };
    let account = text(event, "account")
        .or_else(|| text(detail, "recipientAccountId"))
        .ok_or_else(|| missing("account"))?
        .to_string();
    let region = text(event, "region")
        .or_else(|| text(detail, "awsRegion"))
        .ok_or_else(|| missing("region"))?
        .to_string();
    let params = detail
        .get("requestParameters")
        .filter(|p| p.is_object())
        .ok_or_else(|| missing("detail.requestParameters"))?;
    let (shared, perm_key) = if name == "ModifyImageAttribute" {
        let id = text(params, "imageId").ok_or_else(|| missing("requestParameters.imageId"))?;
        (Shared::Image(id.to_string()), "launchPermission")
    } else {
        let id =
            text(params, "snapshotId").ok_or_else(|| missing("requestParameters.snapshotId"))?;
        (Shared::Snapshot(id.to_string()), "createVolumePermission")
    };
    let mut added = Vec::new();
    if let Some(items) = params
        .get(perm_key)
        .and_then(|p| p.get("add"))
        .and_then(|a| a.get("items"))
        .and_then(Value::as_array)
    {
        for item in items.iter().take(MAX_GRANTEES) {
            let g = if text(item, "group") == Some("all") {
                Some(Grantee::All)
            } else if let Some(a) = text(item, "userId") {
                Some(Grantee::Account(a.to_string()))
            } else if let Some(a) = text(item, "organizationArn") {
                Some(Grantee::Organization(a.to_string()))
            } else {
                text(item, "organizationalUnitArn").map(|a| Grantee::OrganizationalUnit(a.into()))
            };
            added.extend(g);
        }
    }
    // The older parameter form: an operation type with lists of ids and groups.
    if text(params, "operationType") == Some("add") {
        let list = |k: &str| {
            params
                .get(k)
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .take(MAX_GRANTEES)
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        for g in list("userGroups").into_iter().chain(list("groupNames")) {
            if g == "all" {
                added.push(Grantee::All);
            }
        }
        added.extend(
            list("userIds")
                .into_iter()
                .map(|a| Grantee::Account(a.into())),
        );
        added.extend(
            list("organizationArns")
                .into_iter()
                .map(|a| Grantee::Organization(a.into())),
        );
        added.extend(
            list("organizationalUnitArns")
                .into_iter()
                .map(|a| Grantee::OrganizationalUnit(a.into())),
        );
    }
    let mut unique = Vec::new();
    for g in added {
        if !unique.contains(&g) {
            unique.push(g);
        }
    }
    if unique.is_empty() {
        return Ok(Parsed::Ignored(format!(
            "{name} of {} adds no permission",
            shared.id()
        )));
    }
    Ok(Parsed::Share(ShareEvent {
        event_id: text(event, "id").unwrap_or("").to_string(),
        account,
        region,
        shared,
        added: unique,
        actor: detail
            .get("userIdentity")
            .and_then(|u| text(u, "arn"))
            .map(str::to_string),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(name: &str, params: Value) -> Value {
        json!({
            "version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ec2", "account": "111122223333", "region": "us-east-1",
            "detail": {"eventName": name, "requestParameters": params,
                       "userIdentity": {"arn": "arn:aws:iam::111122223333:user/u"}}
        })
    }

    #[test]
    fn reads_image_and_snapshot_shares() {
        let e = envelope(
            "ModifyImageAttribute",
            json!({"imageId": "ami-1", "attributeType": "launchPermission",
                   "launchPermission": {"add": {"items": [{"group": "all"}, {"userId": "444455556666"},
                   {"organizationArn": "arn:aws:organizations::1:organization/o-1"}, {"group": "all"}]}}}),
        );
        let Parsed::Share(s) = parse(&e).unwrap() else {
            panic!("not a share")
        };
        assert_eq!(s.shared, Shared::Image("ami-1".into()));
        assert_eq!(
            s.added,
            vec![
                Grantee::All,
                Grantee::Account("444455556666".into()),
                Grantee::Organization("arn:aws:organizations::1:organization/o-1".into())
            ]
        );
        let e = envelope(
            "ModifySnapshotAttribute",
            json!({"snapshotId": "snap-1", "attributeType": "CREATE_VOLUME_PERMISSION",
                   "createVolumePermission": {"add": {"items": [{"userId": "444455556666"}]}}}),
        );
        let Parsed::Share(s) = parse(&e).unwrap() else {
            panic!("not a share")
        };
        assert_eq!(s.shared, Shared::Snapshot("snap-1".into()));
        let e = envelope(
            "ModifyImageAttribute",
            json!({"imageId": "ami-1", "operationType": "add", "userGroups": ["all"]}),
        );
        assert!(matches!(parse(&e).unwrap(), Parsed::Share(s) if s.added == vec![Grantee::All]));
    }

    #[test]
    fn ignores_removals_failures_and_other_events_and_rejects_bad_envelopes() {
        let removal = envelope(
            "ModifyImageAttribute",
            json!({"imageId": "ami-1", "launchPermission": {"remove": {"items": [{"group": "all"}]}}}),
        );
        assert!(matches!(parse(&removal).unwrap(), Parsed::Ignored(_)));
        let mut failed = envelope(
            "ModifyImageAttribute",
            json!({"imageId": "ami-1", "launchPermission": {"add": {"items": [{"group": "all"}]}}}),
        );
        failed["detail"]["errorCode"] = json!("Client.AuthFailure");
        assert!(matches!(parse(&failed).unwrap(), Parsed::Ignored(r) if r.contains("AuthFailure")));
        assert!(matches!(
            parse(&envelope("RunInstances", json!({}))).unwrap(),
            Parsed::Ignored(_)
        ));
        let mut other = removal.clone();
        other["detail-type"] = json!("EC2 Instance State-change Notification");
        assert!(matches!(parse(&other), Err(EventError::NotCloudTrail(_))));
        let no_id = envelope(
            "ModifyImageAttribute",
            json!({"launchPermission": {"add": {"items": [{"group": "all"}]}}}),
        );
        assert!(matches!(parse(&no_id), Err(EventError::Missing { .. })));
    }
}
