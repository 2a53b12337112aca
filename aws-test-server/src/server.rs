//! The server loop: accept connections and route each request to its handler: EC2 or SNS Query
//! (`POST /`, by the service, region and access key of its SigV4 scope), Security Hub
//! (`POST /findings/import`) or the EBS direct APIs (`GET /snapshots/...`). The dispatch table sits here, above the handlers and the HTTP plumbing
//! they share.

use crate::State;
use crate::http::{Outcome, parse_pairs, percent_decode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;

/// Accept connections until `shutdown` fires. Each connection runs in its own task; they are all
/// dropped with the runtime.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or similar: back off a little rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // As a production endpoint does: no Nagle delay, whose wait for the client's delayed
        // ACK holds the tail of a response back by up to 40 ms.
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let st = st.clone();
                async move {
                    match route(&st, req).await {
                        Outcome::Respond(r) => Ok(r),
                        Outcome::Drop => Err(std::io::Error::other("dropped by fault injection")),
                    }
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn route(state: &State, req: Request<Incoming>) -> Outcome {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_pairs(req.uri().query().unwrap_or(""), false);
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    match credential_service(&auth) {
        "s3" => return crate::s3::handle(state, req).await,
        service @ ("sts" | "organizations") => {
            let target = req
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let (_, akid) = credential_scope(&auth);
            let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => return Outcome::Drop,
            };
            let account = crate::lock(&state.fleet).account_of(&akid);
            return if service == "sts" {
                let form = parse_pairs(&String::from_utf8_lossy(&body), true);
                crate::org::sts(state, &form, &account)
            } else {
                crate::org::organizations(state, &target, &body, &account)
            };
        }
        _ => {}
    }
    if method == Method::POST && path == "/" {
        let (region, akid) = credential_scope(&auth);
        let service = credential_service(&auth);
        // EC2 Query protocol: a form body of at most 1 MiB.
        let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => return Outcome::Drop,
        };
        let form = parse_pairs(&String::from_utf8_lossy(&body), true);
        if service == "autoscaling" {
            return crate::governance::handle_autoscaling(state, &form, &region, &akid);
        }
        if service == "sns" {
            return crate::notify::sns(state, &form, &region);
        }
        return crate::ec2::handle(state, &form, &region, &akid).await;
    }
    if method == Method::POST && path == "/findings/import" {
        let (region, akid) = credential_scope(&auth);
        let body = match Limited::new(req.into_body(), 8 << 20).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => return Outcome::Drop,
        };
        let region = if region.is_empty() {
            crate::fleet::DEFAULT_REGION.to_string()
        } else {
            region
        };
        let account = crate::lock(&state.fleet).account_of(&akid);
        return crate::notify::batch_import_findings(state, &body, &region, &account);
    }
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    match (method, segments.as_slice()) {
        (Method::GET, [s, snap, b]) if s == "snapshots" && b == "blocks" => {
            let (region, _) = credential_scope(&auth);
            crate::ebs::list_snapshot_blocks(state, &region, snap, &query).await
        }
        (Method::GET, [s, snap, b, index]) if s == "snapshots" && b == "blocks" => {
            let (region, _) = credential_scope(&auth);
            crate::ebs::get_snapshot_block(state, &region, snap, index, &query).await
        }
        _ => Outcome::Respond(crate::ebs::error_response(&crate::EbsErrorSpec {
            status: 404,
            error_type: "UnknownOperationException".into(),
            message: format!("no route for {path}"),
            reason: None,
        })),
    }
}

/// `(region, access key id)` from a SigV4 `Authorization` header
/// (`... Credential=AKID/20261127/us-west-2/ec2/aws4_request, ...`); empty strings when absent.
pub(crate) fn credential_scope(auth: &str) -> (String, String) {
    let Some(rest) = auth.split("Credential=").nth(1) else {
        return Default::default();
    };
    let cred = rest.split([',', ' ']).next().unwrap_or("");
    let mut parts = cred.split('/');
    let akid = parts.next().unwrap_or("").to_string();
    let region = parts.nth(1).unwrap_or("").to_string();
    (region, akid)
}

/// The service of a SigV4 `Authorization` header's credential scope (`ec2`, `ebs`, `s3`, `sts`,
/// `organizations`); empty when absent.
pub(crate) fn credential_service(auth: &str) -> &str {
    auth.split("Credential=")
        .nth(1)
        .and_then(|rest| rest.split([',', ' ']).next())
        .and_then(|cred| cred.split('/').nth(3))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_credential_scope() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-west-2/ec2/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(
            super::credential_scope(h),
            ("us-west-2".to_string(), "AKID".to_string())
        );
        assert_eq!(super::credential_service(h), "ec2");
        assert_eq!(super::credential_scope("Bearer x"), Default::default());
        let asg = h.replace("/ec2/", "/autoscaling/");
        assert_eq!(super::credential_service(&asg), "autoscaling");
        assert_eq!(super::credential_service("Bearer x"), "");
    }
}
