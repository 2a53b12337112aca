//! The server loop: accept connections and route each request to its handler: EC2 Query
//! (`POST /`, by the region and access key of its SigV4 scope) or the EBS direct APIs
//! (`GET /snapshots/...`). The dispatch table sits here, above the handlers and the HTTP plumbing
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
    if method == Method::POST && path == "/" {
        let (region, akid) = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(credential_scope)
            .unwrap_or_default();
        let service = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(crate::governance::scope_service)
            .unwrap_or_default();
        // EC2 Query protocol: a form body of at most 1 MiB.
        let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => return Outcome::Drop,
        };
        let form = parse_pairs(&String::from_utf8_lossy(&body), true);
        if service == "sns" {
            return crate::alerts::handle_sns(state, &form, &region, &akid);
        }
        if service == "autoscaling" {
            return crate::governance::handle_autoscaling(state, &form, &region, &akid);
        }
        return crate::ec2::handle(state, &form, &region, &akid).await;
    }
    if method == Method::POST && path == "/findings/import" {
        let (region, akid) = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(credential_scope)
            .unwrap_or_default();
        let body = match Limited::new(req.into_body(), 8 << 20).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => return Outcome::Drop,
        };
        return crate::alerts::batch_import_findings(state, &body, &region, &akid);
    }
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    match (method, segments.as_slice()) {
        (Method::GET, [s, snap, b]) if s == "snapshots" && b == "blocks" => {
            crate::ebs::list_snapshot_blocks(state, snap, &query).await
        }
        (Method::GET, [s, snap, b, index]) if s == "snapshots" && b == "blocks" => {
            crate::ebs::get_snapshot_block(state, snap, index, &query).await
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

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_credential_scope() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-west-2/ec2/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(
            super::credential_scope(h),
            ("us-west-2".to_string(), "AKID".to_string())
        );
        assert_eq!(super::credential_scope("Bearer x"), Default::default());
    }
}
