//! Building the upstream request and relaying the response.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{HeaderName, HOST};
use http::{HeaderMap, HeaderValue, Request, Response, Version};

use super::body::{self, BoxBody};
use super::error::AwsError;
use super::gate::{self, Reject};
use super::{ProxyState, UpstreamBase};
use crate::authn::{AuthError, Authenticated};
use crate::config::{HostMode, Snapshot};

/// Headers that describe one hop and are never forwarded (RFC 9110 §7.6.1), plus `Expect`, which
/// Tollgate has already answered. Names as constants: a `&str` lookup re-parses the name.
const HOP_BY_HOP: [HeaderName; 10] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::EXPECT,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Removes hop-by-hop headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names (no hashing): most messages carry none of these.
    if !headers.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes every client-sent `x-tollgate-*` header: only Tollgate may set them.
fn strip_tollgate_headers(headers: &mut HeaderMap) {
    if !headers
        .keys()
        .any(|k| k.as_str().starts_with("x-tollgate-"))
    {
        return;
    }
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-tollgate-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

fn header_value(v: &str) -> Result<HeaderValue, Reject> {
    HeaderValue::from_str(v).map_err(|_| Reject::Aws(AwsError::internal()))
}

/// Builds the request to send upstream.
pub(crate) fn upstream_request(
    mut parts: http::request::Parts,
    body: BoxBody,
    authd: &Authenticated,
    snapshot: &Snapshot,
    upstream: &UpstreamBase,
    peer: SocketAddr,
    request_id: Option<&HeaderValue>,
) -> Result<Request<BoxBody>, Reject> {
    let client_authority = parts.uri.authority().cloned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let uri = http::Uri::builder()
        .scheme(upstream.scheme.clone())
        .authority(upstream.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| Reject::Aws(AwsError::internal()))?;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    strip_tollgate_headers(headers);
    match snapshot.upstream.host {
        HostMode::Preserve => {
            if !headers.contains_key(HOST) {
                if let Some(a) = client_authority {
                    headers.insert(HOST, header_value(a.as_str())?);
                }
            }
        }
        HostMode::Upstream => {
            headers.insert(HOST, header_value(upstream.authority.as_str())?);
        }
    }
    if let crate::authn::BodyCheck::Chunked(plan) = &authd.body_check {
        // The upstream receives the decoded body: plain length, no aws-chunked encoding.
        headers.insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from(plan.decoded_len),
        );
        for name in [
            "x-amz-decoded-content-length",
            "x-amz-trailer",
            "x-amz-sdk-checksum-algorithm",
        ] {
            headers.remove(name);
        }
        let encoding = headers
            .get(http::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::sigv4::strip_aws_chunked);
        match encoding {
            Some(rest) => {
                headers.insert(http::header::CONTENT_ENCODING, header_value(&rest)?);
            }
            None => {
                headers.remove(http::header::CONTENT_ENCODING);
            }
        }
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(crate::sigv4::UNSIGNED_PAYLOAD),
        );
    }
    let ip = crate::net::IpText::new(peer.ip());
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => header_value(&format!("{prev}, {}", ip.as_str()))?,
        None => header_value(ip.as_str())?,
    };
    headers.insert(X_FORWARDED_FOR, xff);
    gate::identity_headers(authd, request_id, |name, value| {
        headers.insert(name, value);
    })?;
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

/// Sends the request upstream and relays the response (hop-by-hop headers removed).
pub(crate) async fn send(
    state: &ProxyState,
    snapshot: &Snapshot,
    req: Request<BoxBody>,
    authd: &Authenticated,
    mismatch: &AtomicBool,
    chunk_failure: &super::chunked::ChunkFailure,
) -> Result<Response<BoxBody>, Reject> {
    let timeout = snapshot.upstream.request_timeout;
    let result = tokio::time::timeout(timeout, state.client.request(req)).await;
    let resp = match result {
        Err(_) => {
            state
                .metrics
                .upstream_errors
                .with_label_values(&["timeout"])
                .inc();
            return Err(AwsError::gateway_timeout(timeout).into());
        }
        Ok(Err(e)) => {
            if let Some(e) = chunk_failure.get() {
                return Err(Reject::Aws(super::chunked::aws_error(e)));
            }
            if mismatch.load(Ordering::Acquire) {
                return Err(AuthError::PayloadMismatch {
                    service: authd.service.to_string(),
                }
                .into());
            }
            let kind = if e.is_connect() { "connect" } else { "reset" };
            state
                .metrics
                .upstream_errors
                .with_label_values(&[kind])
                .inc();
            let detail = if e.is_connect() {
                "connection refused or timed out"
            } else {
                "connection closed or reset"
            };
            return Err(AwsError::bad_gateway(detail).into());
        }
        Ok(Ok(resp)) => resp,
    };
    let (mut parts, incoming) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body::boxed(incoming)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_named() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("expect", HeaderValue::from_static("100-continue"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn strips_tollgate_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-tollgate-principal-arn",
            HeaderValue::from_static("arn:aws:iam::1:root"),
        );
        h.append("X-Tollgate-Anything", HeaderValue::from_static("x"));
        h.insert("x-other", HeaderValue::from_static("1"));
        strip_tollgate_headers(&mut h);
        assert_eq!(h.len(), 1);
    }
}
