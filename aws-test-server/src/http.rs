//! The HTTP/1.1 plumbing: accept loop, routing to the EBS and EC2 handlers, bodies (including a
//! body that stalls), and query/form decoding.

use crate::State;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Response body type.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// What a handler decided.
pub(crate) enum Outcome {
    /// Send this response.
    Respond(Response<Body>),
    /// Close the connection without answering.
    Drop,
}

/// A full body.
pub(crate) fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed()
}

/// A response, falling back to a bare 500 if the builder refuses a header.
pub(crate) fn response(status: u16, headers: &[(&str, String)], body: Body) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// A body that sends `first`, then waits `stall` and fails, which makes hyper drop the
/// connection in the middle of the declared content length.
pub(crate) struct StallBody {
    first: Option<Bytes>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl StallBody {
    pub(crate) fn new(first: Bytes, stall: Duration) -> Self {
        StallBody {
            first: Some(first),
            sleep: Box::pin(tokio::time::sleep(stall)),
        }
    }
}

impl hyper::body::Body for StallBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::other("stalled body")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

use std::future::Future;

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
        // EC2 Query protocol: a form body of at most 1 MiB.
        let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => return Outcome::Drop,
        };
        let form = parse_pairs(&String::from_utf8_lossy(&body), true);
        return crate::ec2::handle(state, &form, &region, &akid).await;
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

/// `a=b&c=d` into pairs, percent-decoded (`+` is a space in form bodies).
pub(crate) fn parse_pairs(s: &str, form: bool) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let fix = |x: &str| {
                if form {
                    percent_decode(&x.replace('+', " "))
                } else {
                    percent_decode(x)
                }
            };
            (fix(k), fix(v))
        })
        .collect()
}

/// The first value of `key`.
pub(crate) fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Decode `%XX` escapes; malformed escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let byte = b.get(i).copied().unwrap_or(0);
        if byte == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
