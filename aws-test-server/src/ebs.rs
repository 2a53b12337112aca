//! EBS direct APIs: `ListSnapshotBlocks` and `GetSnapshotBlock`.

use crate::http::{Body, Outcome, StallBody, full, get, response};
use crate::quota::Api;
use crate::{BLOCK_SIZE, EbsErrorSpec, FaultKind, State, lock};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default `maxResults` when the request gives none.
const DEFAULT_MAX_RESULTS: usize = 10_000;

/// An error answer with the JSON body and `x-amzn-ErrorType`.
pub(crate) fn error_response(e: &EbsErrorSpec) -> hyper::Response<Body> {
    let mut body = serde_json::json!({ "Message": e.message });
    if let (Some(reason), Some(obj)) = (&e.reason, body.as_object_mut()) {
        obj.insert("Reason".into(), serde_json::Value::String(reason.clone()));
    }
    response(
        e.status,
        &[
            ("content-type", "application/json".into()),
            ("x-amzn-ErrorType", e.error_type.clone()),
            (
                "x-amzn-RequestId",
                "00000000-0000-0000-0000-000000000000".into(),
            ),
        ],
        full(body.to_string()),
    )
}

fn fault_error(kind: FaultKind) -> Option<EbsErrorSpec> {
    match kind {
        FaultKind::Throttle => Some(EbsErrorSpec {
            status: 400,
            error_type: "RequestThrottledException".into(),
            message: "The request was throttled".into(),
            reason: Some("RESOURCE_LEVEL_THROTTLE".into()),
        }),
        FaultKind::InternalError => Some(EbsErrorSpec {
            status: 500,
            error_type: "InternalServerException".into(),
            message: "An internal error has occurred".into(),
            reason: None,
        }),
        FaultKind::ServiceUnavailable => Some(EbsErrorSpec {
            status: 503,
            error_type: "ServiceUnavailable".into(),
            message: "Service Unavailable".into(),
            reason: None,
        }),
        FaultKind::ExpiredToken => Some(EbsErrorSpec::validation(
            "INVALID_BLOCK_TOKEN",
            "The block token has expired",
        )),
        _ => None,
    }
}

async fn latency(state: &State) {
    let d = lock(&state.faults).latency;
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

fn page_token(snap: &str, start: u64, real: bool) -> String {
    B64.encode(format!("p:{snap}:{start}:{}", u8::from(real)))
}

fn parse_page_token(snap: &str, token: &str) -> Option<(u64, bool)> {
    let raw = String::from_utf8(B64.decode(token).ok()?).ok()?;
    let mut it = raw.split(':');
    if it.next()? != "p" || it.next()? != snap {
        return None;
    }
    let start = it.next()?.parse().ok()?;
    let real = it.next()? == "1";
    Some((start, real))
}

fn block_token(snap: &str, index: u64, generation: u64) -> String {
    B64.encode(format!("b:{snap}:{index}:{generation}"))
}

fn parse_block_token(token: &str) -> Option<(String, u64, u64)> {
    let raw = String::from_utf8(B64.decode(token).ok()?).ok()?;
    let mut it = raw.split(':');
    if it.next()? != "b" {
        return None;
    }
    let snap = it.next()?.to_string();
    let index = it.next()?.parse().ok()?;
    let generation = it.next()?.parse().ok()?;
    Some((snap, index, generation))
}

/// `GET /snapshots/{snapshotId}/blocks?maxResults=&pageToken=&startingBlockIndex=`
pub(crate) async fn list_snapshot_blocks(
    state: &State,
    region: &str,
    snap_id: &str,
    query: &[(String, String)],
) -> Outcome {
    let arrived = std::time::Instant::now();
    if let Some(e) = lock(&state.quota).admit(Api::List, region, arrived) {
        return Outcome::Respond(error_response(&e));
    }
    latency(state).await;
    let token = get(query, "pageToken");
    let from_index = token.is_none() && get(query, "startingBlockIndex").is_some();
    state.account(snap_id, |a| {
        a.list_calls += 1;
        if from_index {
            a.list_calls_from_index += 1;
        }
    });
    let Some(snap) = state.snapshot(snap_id) else {
        return Outcome::Respond(error_response(&EbsErrorSpec::not_found(&format!(
            "The snapshot '{snap_id}' does not exist."
        ))));
    };
    if let Some(e) = &snap.spec.list_error {
        return Outcome::Respond(error_response(e));
    }
    match state.pick_fault(snap_id, None) {
        Some(FaultKind::DropConnection) => return Outcome::Drop,
        Some(k) => {
            if let Some(e) = fault_error(k) {
                return Outcome::Respond(error_response(&e));
            }
        }
        None => {}
    }
    let max_results = match get(query, "maxResults") {
        None => DEFAULT_MAX_RESULTS,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (100..=10_000).contains(&n) => n,
            _ => {
                return Outcome::Respond(error_response(&EbsErrorSpec::validation(
                    "INVALID_PARAMETER_VALUE",
                    "maxResults must be between 100 and 10000",
                )));
            }
        },
    };
    let (start, real) = match token {
        Some(t) => match parse_page_token(snap_id, t) {
            Some(x) => x,
            None => {
                return Outcome::Respond(error_response(&EbsErrorSpec::validation(
                    "INVALID_PAGE_TOKEN",
                    "The pagination token is invalid",
                )));
            }
        },
        None => match get(query, "startingBlockIndex").map(str::parse::<u64>) {
            None => (0, false),
            Some(Ok(i)) => (i, false),
            Some(Err(_)) => {
                return Outcome::Respond(error_response(&EbsErrorSpec::validation(
                    "INVALID_PARAMETER_VALUE",
                    "startingBlockIndex is not a number",
                )));
            }
        },
    };
    let (max_page, empty_pages) = {
        let f = lock(&state.faults);
        (f.max_page, f.empty_pages)
    };
    let expiry = SystemTime::now()
        .checked_add(Duration::from_secs(7 * 24 * 3600))
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let mut body = serde_json::json!({
        "BlockSize": BLOCK_SIZE,
        "VolumeSize": snap.volume_gib,
        "ExpiryTime": expiry,
    });
    let (blocks, next) = if empty_pages && !real {
        // An empty page that still says more remain.
        (Vec::new(), Some(page_token(snap_id, start, true)))
    } else {
        let generation = state.token_generation.load(Ordering::SeqCst);
        let first = snap.listed.partition_point(|&i| i < start);
        let take = max_results.min(max_page.unwrap_or(usize::MAX)).max(1);
        let page: Vec<u64> = snap.listed.iter().skip(first).take(take).copied().collect();
        let more = first.saturating_add(page.len()) < snap.listed.len();
        let next = match (more, page.last()) {
            (true, Some(&last)) => Some(page_token(snap_id, last + 1, false)),
            _ => None,
        };
        let blocks = page
            .iter()
            .map(|&i| {
                serde_json::json!({ "BlockIndex": i, "BlockToken": block_token(snap_id, i, generation) })
            })
            .collect();
        (blocks, next)
    };
    if let Some(obj) = body.as_object_mut() {
        obj.insert("Blocks".into(), serde_json::Value::Array(blocks));
        if let Some(n) = next {
            obj.insert("NextToken".into(), serde_json::Value::String(n));
        }
    }
    Outcome::Respond(response(
        200,
        &[("content-type", "application/json".into())],
        full(body.to_string()),
    ))
}

/// `GET /snapshots/{snapshotId}/blocks/{blockIndex}?blockToken=`
pub(crate) async fn get_snapshot_block(
    state: &State,
    region: &str,
    snap_id: &str,
    index: &str,
    query: &[(String, String)],
) -> Outcome {
    let arrived = std::time::Instant::now();
    if let Some(e) = lock(&state.quota).admit(Api::Get, region, arrived) {
        return Outcome::Respond(error_response(&e));
    }
    latency(state).await;
    let Some(snap) = state.snapshot(snap_id) else {
        return Outcome::Respond(error_response(&EbsErrorSpec::not_found(&format!(
            "The snapshot '{snap_id}' does not exist."
        ))));
    };
    let Ok(index) = index.parse::<u64>() else {
        return Outcome::Respond(error_response(&EbsErrorSpec::validation(
            "INVALID_BLOCK",
            "The block index is invalid",
        )));
    };
    let listed = snap.listed.binary_search(&index).is_ok();
    state.account(snap_id, |a| {
        *a.get_counts.entry(index).or_default() += 1;
        a.get_arrivals.push(arrived);
        if !listed {
            a.unlisted_requests += 1;
        }
    });
    if let Some(e) = &snap.spec.get_error {
        return Outcome::Respond(error_response(e));
    }
    if state.get_should_fail(snap_id) {
        return Outcome::Respond(error_response(&EbsErrorSpec::access_denied(
            "ebs:GetSnapshotBlock",
        )));
    }
    let generation = state.token_generation.load(Ordering::SeqCst);
    let token_ok = get(query, "blockToken")
        .and_then(parse_block_token)
        .is_some_and(|(s, i, g)| s == snap_id && i == index && g == generation);
    if !token_ok {
        return Outcome::Respond(error_response(&EbsErrorSpec::validation(
            "INVALID_BLOCK_TOKEN",
            "The block token is not valid or has expired",
        )));
    }
    let fault = state.pick_fault(snap_id, Some(index));
    if fault == Some(FaultKind::DropConnection) {
        return Outcome::Drop;
    }
    if let Some(e) = fault.and_then(fault_error) {
        return Outcome::Respond(error_response(&e));
    }
    let mut data = match snap.read_block(index) {
        Ok(d) => d,
        Err(e) => {
            return Outcome::Respond(error_response(&EbsErrorSpec {
                status: 500,
                error_type: "InternalServerException".into(),
                message: format!("cannot read the image: {e}"),
                reason: None,
            }));
        }
    };
    // The checksum EBS stored with the block (computed once at load), not one of the bytes sent.
    let checksum = B64.encode(snap.checksum(index));
    let data_length = data.len();
    match fault {
        Some(FaultKind::Corrupt) => {
            if let Some(b) = data.get_mut(data_length / 2) {
                *b ^= 0x5a;
            }
        }
        Some(FaultKind::WrongLength) => data.truncate(data_length.saturating_sub(4096)),
        _ => {}
    }
    let mut headers = vec![
        ("content-type", "application/octet-stream".to_string()),
        ("x-amz-Checksum", checksum),
        ("x-amz-Checksum-Algorithm", "SHA256".into()),
        ("x-amz-Data-Length", data_length.to_string()),
    ];
    let body = if fault == Some(FaultKind::StallBody) {
        headers.push(("content-length", data.len().to_string()));
        let stall = lock(&state.faults).stall_for;
        let first = Bytes::copy_from_slice(data.get(..64 * 1024).unwrap_or(&data));
        StallBody::new(first, stall).boxed()
    } else {
        full(data)
    };
    Outcome::Respond(response(200, &headers, body))
}
