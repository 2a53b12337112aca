//! The HTTP/1.1 plumbing the handlers answer with: response bodies (including a body that
//! stalls), the handler's outcome, and query/form decoding. The accept loop and the routing to
//! the handlers are in `server.rs`, above both.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper::body::Frame;
use std::pin::Pin;
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

/// The values of `Prefix.1`, `Prefix.2`, ... (Query lists) with their index, in index order.
pub(crate) fn indexed_pairs(form: &[(String, String)], prefix: &str) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = form
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?;
            Some((n, v.clone()))
        })
        .collect();
    v.sort();
    v
}

/// The values of `Prefix.1`, `Prefix.2`, ... in index order.
pub(crate) fn indexed(form: &[(String, String)], prefix: &str) -> Vec<String> {
    indexed_pairs(form, prefix)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
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
