//! Envoy's HTTP-service mode: Envoy sends each request's head (the headers its filter allows)
//! and, with `with_request_body`, its body; `200` allows it — the response's `x-tollgate-*`
//! headers go to the upstream when `allowed_upstream_headers` lets them, and
//! `x-envoy-auth-headers-to-remove` names client headers Envoy must strip — and any other
//! status denies it with that status and body.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::{CheckInput, Verdict};
use crate::proxy::body::{self, BoxBody, Read};
use crate::proxy::{Listener, ProxyState};

/// The response header that tells Envoy which request headers to remove.
const HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";

/// Decides one request Envoy forwarded for checking.
pub async fn handle(
    state: &ProxyState,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<BoxBody> {
    let (parts, incoming) = req.into_parts();
    let limit = state.snapshot.load().auth.max_verified_body;
    // A body Envoy sent but that is over the verified-body limit counts as not sent: it can
    // pass only where an unverified payload may.
    let (body, whole) = match body::read_up_to(incoming, limit).await {
        Ok(Read::Complete(bytes)) => (bytes, true),
        Ok(Read::Partial(..)) | Err(_) => (bytes::Bytes::new(), false),
    };
    let mut parts = parts;
    if !whole {
        parts
            .headers
            .insert(super::PARTIAL_BODY, HeaderValue::from_static("true"));
    }
    let input = CheckInput {
        parts,
        body,
        peer,
        content_length_known: false,
    };
    match super::check(state, input, Listener::ExtAuthzHttp).await {
        Verdict::Allow(a) => {
            let mut resp = Response::new(body::full(bytes::Bytes::new()));
            let headers = resp.headers_mut();
            for (name, value) in a.headers {
                headers.insert(name, value);
            }
            if !a.remove.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&a.remove.join(", ")) {
                    headers.insert(HEADERS_TO_REMOVE, v);
                }
            }
            resp
        }
        Verdict::Deny(d) => d.response.map(body::full),
    }
}

/// Serves the HTTP-service mode on `listener` until `stop` completes (open requests finish
/// first).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: Arc<ProxyState>,
    stop: impl std::future::Future<Output = ()>,
) {
    let limits = state.snapshot.load().limits;
    let tls = state.tls.clone();
    crate::proxy::serve_connections(listener, stop, limits, tls, move |req, peer| {
        let state = state.clone();
        async move { handle(&state, req, peer).await }
    })
    .await;
}
