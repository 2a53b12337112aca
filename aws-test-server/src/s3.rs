//! Amazon S3 (REST-XML, path-style addressing: `/{bucket}/{key}`), what amiscan's shared sweep
//! state uses: `PutObject` (with the conditional create `If-None-Match: *`, answered 412
//! `PreconditionFailed` when the key exists), `GetObject` (404 `NoSuchKey`) and `ListObjectsV2`
//! (`list-type=2`, `prefix`, `continuation-token`, `max-keys`, keys in UTF-8 binary order), with
//! the error XML of the API reference. Buckets exist only when a test creates them
//! ([`TestServer::create_bucket`]); any other is 404 `NoSuchBucket`.
//!
//! Bodies sent with `aws-chunked` content encoding are refused (400 `NotImplemented` here) so a
//! client change that would start streaming them shows up in the tests.

use crate::ec2_xml::esc;
use crate::http::{Outcome, full, get, response};
use crate::{State, TestServer, lock};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request};
use sha2::Digest;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Largest object body accepted.
const MAX_BODY: usize = 64 << 20;
const REQUEST_ID: &str = "4442587FB7D0A2F9";

/// One S3 request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Call {
    /// `PutObject`, `GetObject`, `ListObjectsV2`.
    pub operation: String,
    /// Bucket.
    pub bucket: String,
    /// Key (empty for a listing).
    pub key: String,
    /// HTTP status of the answer.
    pub status: u16,
}

#[derive(Default)]
pub(crate) struct S3State {
    pub(crate) buckets: BTreeMap<String, BTreeMap<String, Bytes>>,
    pub(crate) calls: Vec<S3Call>,
    pub(crate) max_keys: Option<usize>,
}

fn error(status: u16, code: &str, message: &str, resource: &str) -> Outcome {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{REQUEST_ID}</RequestId><HostId>amiscan-test</HostId></Error>",
        esc(code),
        esc(message),
        esc(resource)
    );
    Outcome::Respond(response(
        status,
        &[
            ("content-type", "application/xml".into()),
            ("x-amz-request-id", REQUEST_ID.into()),
        ],
        full(body),
    ))
}

fn etag(body: &[u8]) -> String {
    let h = sha2::Sha256::digest(body);
    format!("\"{}\"", hex32(&h[..16]))
}

fn hex32(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn record(state: &State, operation: &str, bucket: &str, key: &str, status: u16) {
    let mut s = lock(&state.s3);
    if s.calls.len() < 100_000 {
        s.calls.push(S3Call {
            operation: operation.into(),
            bucket: bucket.into(),
            key: key.into(),
            status,
        });
    }
}

/// Decode `%XX` in a path without touching `+` (a literal plus in S3 keys).
fn decode_path(s: &str) -> String {
    crate::http::percent_decode(s)
}

/// Handle one S3 request (the caller routed it here by its SigV4 service `s3`).
pub(crate) async fn handle(state: &State, req: Request<Incoming>) -> Outcome {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let query = crate::http::parse_pairs(req.uri().query().unwrap_or(""), false);
    let trimmed = raw_path.trim_start_matches('/');
    let (bucket, key) = match trimmed.split_once('/') {
        Some((b, k)) => (decode_path(b), decode_path(k)),
        None => (decode_path(trimmed), String::new()),
    };
    let exists = lock(&state.s3).buckets.contains_key(&bucket);
    if !exists {
        record(state, method.as_str(), &bucket, &key, 404);
        return error(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
            &format!("/{bucket}"),
        );
    }
    match (method, key.is_empty()) {
        (Method::PUT, false) => put_object(state, req, &bucket, &key).await,
        (Method::GET, false) => {
            let found = lock(&state.s3)
                .buckets
                .get(&bucket)
                .and_then(|b| b.get(&key))
                .cloned();
            match found {
                Some(body) => {
                    record(state, "GetObject", &bucket, &key, 200);
                    Outcome::Respond(response(
                        200,
                        &[
                            ("content-type", "application/json".into()),
                            ("content-length", body.len().to_string()),
                            ("etag", etag(&body)),
                            ("last-modified", "Fri, 04 Dec 2026 00:00:00 GMT".into()),
                            ("x-amz-request-id", REQUEST_ID.into()),
                        ],
                        full(body),
                    ))
                }
                None => {
                    record(state, "GetObject", &bucket, &key, 404);
                    error(
                        404,
                        "NoSuchKey",
                        "The specified key does not exist.",
                        &format!("/{bucket}/{key}"),
                    )
                }
            }
        }
        (Method::GET, true) if get(&query, "list-type") == Some("2") => {
            list_objects_v2(state, &bucket, &query)
        }
        (m, _) => error(
            405,
            "MethodNotAllowed",
            &format!("The specified method {m} is not allowed against this resource."),
            &format!("/{bucket}/{key}"),
        ),
    }
}

async fn put_object(state: &State, req: Request<Incoming>, bucket: &str, key: &str) -> Outcome {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let if_none_match = header("if-none-match");
    let chunked = header("content-encoding").is_some_and(|e| e.contains("aws-chunked"))
        || header("x-amz-content-sha256").is_some_and(|h| h.starts_with("STREAMING-"));
    if chunked {
        record(state, "PutObject", bucket, key, 400);
        return error(
            400,
            "NotImplemented",
            "aws-chunked bodies are not served by this test server",
            &format!("/{bucket}/{key}"),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            record(state, "PutObject", bucket, key, 400);
            return error(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                &format!("/{bucket}/{key}"),
            );
        }
    };
    let mut s = lock(&state.s3);
    let Some(b) = s.buckets.get_mut(bucket) else {
        return error(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
            bucket,
        );
    };
    if if_none_match.as_deref() == Some("*") && b.contains_key(key) {
        drop(s);
        record(state, "PutObject", bucket, key, 412);
        let mut o = error(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            &format!("/{bucket}/{key}"),
        );
        if let Outcome::Respond(r) = &mut o
            && let Ok(v) = "If-None-Match".parse()
        {
            r.headers_mut().insert("x-amz-condition", v);
        }
        return o;
    }
    let tag = etag(&body);
    b.insert(key.to_string(), body);
    drop(s);
    record(state, "PutObject", bucket, key, 200);
    Outcome::Respond(response(
        200,
        &[("etag", tag), ("x-amz-request-id", REQUEST_ID.into())],
        full(Bytes::new()),
    ))
}

fn list_objects_v2(state: &State, bucket: &str, query: &[(String, String)]) -> Outcome {
    let prefix = get(query, "prefix").unwrap_or("").to_string();
    let token = get(query, "continuation-token").map(str::to_string);
    let s = lock(&state.s3);
    let max = get(query, "max-keys")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let max = s.max_keys.map_or(max, |f| max.min(f.max(1)));
    let Some(b) = s.buckets.get(bucket) else {
        return error(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
            bucket,
        );
    };
    // The continuation token is the last key of the previous page.
    let after = token.clone().unwrap_or_default();
    let keys: Vec<(&String, &Bytes)> = b
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix) && (token.is_none() || k.as_str() > after.as_str()))
        .collect();
    let page = keys.get(..max.min(keys.len())).unwrap_or_default();
    let truncated = keys.len() > page.len();
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    let _ = write!(
        xml,
        "<Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        esc(bucket),
        esc(&prefix),
        page.len()
    );
    if let Some(t) = &token {
        let _ = write!(xml, "<ContinuationToken>{}</ContinuationToken>", esc(t));
    }
    for (k, body) in page {
        let _ = write!(
            xml,
            "<Contents><Key>{}</Key><LastModified>2026-12-04T00:00:00.000Z</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            esc(k),
            esc(&etag(body)),
            body.len()
        );
    }
    if truncated && let Some((last, _)) = page.last() {
        let _ = write!(
            xml,
            "<NextContinuationToken>{}</NextContinuationToken>",
            esc(last)
        );
    }
    xml.push_str("</ListBucketResult>");
    drop(s);
    record(state, "ListObjectsV2", bucket, "", 200);
    Outcome::Respond(response(
        200,
        &[
            ("content-type", "application/xml".into()),
            ("x-amz-request-id", REQUEST_ID.into()),
        ],
        full(xml),
    ))
}

impl TestServer {
    /// Create an empty bucket (S3 calls to any other bucket answer `NoSuchBucket`).
    pub fn create_bucket(&self, name: &str) {
        lock(&self.state.s3).buckets.entry(name.into()).or_default();
    }

    /// The objects of a bucket: key and body.
    pub fn s3_objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        lock(&self.state.s3)
            .buckets
            .get(bucket)
            .map(|b| b.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect())
            .unwrap_or_default()
    }

    /// Every S3 call so far, in order.
    pub fn s3_calls(&self) -> Vec<S3Call> {
        lock(&self.state.s3).calls.clone()
    }

    /// At most `n` keys per `ListObjectsV2` page, whatever `max-keys` says.
    pub fn set_s3_max_keys(&self, n: Option<usize>) {
        lock(&self.state.s3).max_keys = n;
    }
}
