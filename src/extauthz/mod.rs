//! Envoy external authorization: the gRPC `envoy.service.auth.v3.Authorization/Check` service
//! ([`grpc`]) and the HTTP-service mode ([`http_service`]). Both turn Envoy's request into the request
//! head and body the proxy has, and run the proxy's own pipeline over it
//! ([`crate::proxy::gate`]: admit → authenticate → authorize → audit); only the answer differs —
//! a verdict for Envoy instead of a forwarded request.
//!
//! The signature is checked against the request as Envoy saw it. The body is there only when
//! Envoy's filter sends it (`with_request_body`); without it, only `UNSIGNED-PAYLOAD`, or a
//! declared payload hash under `[ext_authz] trust_unsent_payload = true`, can pass.

pub mod grpc;
pub mod http_service;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::authn::{Authenticated, BodyCheck};
use crate::proxy::error::AwsError;
use crate::proxy::gate::{self, Body, Gate, Reject};
use crate::proxy::{Listener, ProxyState};

/// The header Envoy adds when it buffered the body: `true` when it sent only a part.
const PARTIAL_BODY: &str = "x-envoy-auth-partial-body";

/// What Envoy tells the authorization service about one request.
#[derive(Debug)]
pub struct CheckInput {
    /// Method, origin-form path with query, headers (with `host`).
    pub parts: http::request::Parts,
    /// The body as Envoy sent it (empty when it sent none).
    pub body: Bytes,
    /// The downstream client's address, as Envoy saw it (or Envoy's own, in HTTP mode).
    pub peer: SocketAddr,
    /// Whether the request's own `Content-Length` is known (gRPC mode) — HTTP mode rewrites it
    /// to the length of what Envoy sends.
    pub content_length_known: bool,
}

/// Envoy's answer for one request.
#[derive(Debug)]
pub enum Verdict {
    /// Let it through, with these changes to the upstream request.
    Allow(Allowed),
    /// Refuse it with this response (status, headers, AWS-shaped body), exactly as the proxy
    /// would.
    Deny(Denied),
}

/// An allowed request.
#[derive(Debug)]
pub struct Allowed {
    /// Identity headers to set on the upstream request (overriding any the client sent).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Client-sent `x-tollgate-*` headers to remove (those not set above).
    pub remove: Vec<String>,
    /// For Envoy's access log.
    pub metadata: Metadata,
}

/// A refused request.
#[derive(Debug)]
pub struct Denied {
    /// The response the client gets.
    pub response: http::Response<Bytes>,
    /// For Envoy's access log.
    pub metadata: Metadata,
}

/// What Envoy's access log can show (`%DYNAMIC_METADATA(envoy.filters.http.ext_authz)%`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// `Allow` or `Deny`.
    pub decision: &'static str,
    /// Tollgate's request id (also in the audit record and `x-tollgate-request-id`).
    pub request_id: String,
    /// The signer, when authenticated.
    pub principal_arn: Option<String>,
    /// The signer's account.
    pub account_id: Option<String>,
    /// The access key used.
    pub access_key_id: Option<String>,
    /// The IAM action, when the request was mapped to one.
    pub action: Option<String>,
    /// The AWS error code of a refusal.
    pub error_code: Option<&'static str>,
}

impl Metadata {
    /// The fields as (camelCase key, value) pairs, absent ones left out.
    pub fn into_fields(self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(7);
        out.push(("decision", self.decision.to_owned()));
        out.push(("requestId", self.request_id));
        let optional = [
            ("principalArn", self.principal_arn),
            ("accountId", self.account_id),
            ("accessKeyId", self.access_key_id),
            ("action", self.action),
            ("errorCode", self.error_code.map(str::to_owned)),
        ];
        out.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        out
    }
}

/// Decides one request Envoy asks about: the proxy's pipeline, with Envoy's view of the body.
pub async fn check(state: &ProxyState, input: CheckInput, listener: Listener) -> Verdict {
    let CheckInput {
        parts,
        body,
        peer,
        content_length_known,
    } = input;
    let mut gate = match Gate::admit(
        state,
        (&parts.method, &parts.uri, &parts.headers),
        false,
        peer,
        listener,
    ) {
        Ok(gate) => gate,
        Err(response) => {
            let response = *response;
            return Verdict::Deny(Denied {
                metadata: Metadata {
                    decision: "Deny",
                    request_id: header_text(response.headers(), gate::X_AMZN_REQUEST_ID),
                    error_code: Some("ServiceUnavailable"),
                    ..Metadata::default()
                },
                response,
            });
        }
    };
    let snapshot = gate.snapshot.clone();
    let body = body_state(
        &parts.headers,
        body,
        content_length_known,
        snapshot.ext_authz.max_request_bytes,
    );
    let mut metadata = Metadata {
        decision: "Deny",
        request_id: gate.request_id().to_owned(),
        ..Metadata::default()
    };
    let now = crate::time::now_epoch();
    let client_ip = gate.client_ip;
    let request_id_header = gate.request_id_header().cloned();
    let result: Result<Allowed, Reject> = async {
        let (authd, body) =
            gate::authenticate(state, &snapshot, &parts, body, now, &mut gate.draft).await?;
        metadata.principal_arn = Some(authd.principal.arn.clone());
        metadata.account_id = Some(authd.principal.account_id.clone());
        metadata.access_key_id = Some(authd.access_key_id.to_string());
        if &*authd.service == "sts" {
            return Err(Reject::Aws(AwsError::client(
                http::StatusCode::BAD_REQUEST,
                "InvalidAction",
                "STS is not an ext_authz check: send STS calls to Tollgate's api listener \
                 (route them there with ext_authz disabled)",
            )));
        }
        let denied_action = |e: &Reject| match e {
            Reject::Authz(crate::authz::AuthzError::Denied { action, .. }) => Some(action.clone()),
            _ => None,
        };
        let (authorized, body) =
            match gate::authorize(state, &snapshot, &parts, &authd, body, client_ip, now).await {
                Ok(v) => v,
                Err(e) => {
                    metadata.action = denied_action(&e);
                    return Err(e);
                }
            };
        metadata.action = authorized.action.clone();
        gate.draft.authorized(authorized);
        check_payload(
            &authd,
            body,
            &parts.headers,
            snapshot.ext_authz.trust_unsent_payload,
        )
        .await?;
        let mut headers = Vec::with_capacity(4);
        gate::identity_headers(&authd, request_id_header.as_ref(), |name, value| {
            headers.push((name, value));
        })?;
        let remove = parts
            .headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-tollgate-"))
            .filter(|k| !headers.iter().any(|(set, _)| set == *k))
            .map(|k| k.as_str().to_owned())
            .collect();
        Ok(Allowed {
            headers,
            remove,
            metadata: Metadata::default(),
        })
    }
    .await;
    match result {
        Ok(mut allowed) => {
            gate.conclude(state, "allowed", "none", None);
            metadata.decision = "Allow";
            allowed.metadata = metadata;
            Verdict::Allow(allowed)
        }
        Err(reject) => {
            let (response, err) = gate.refuse(state, reject);
            metadata.error_code = Some(err.code);
            Verdict::Deny(Denied { response, metadata })
        }
    }
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Whether what Envoy sent is the whole body. Envoy's own `x-envoy-auth-partial-body` is
/// trusted only when it says `true`: Envoy 1.40 says `false` for a body it cut at exactly
/// `max_request_bytes`. So a body of `max_request_bytes` or more counts as whole only when the
/// request's own `Content-Length` (gRPC mode) says it is; HTTP mode rewrites `Content-Length`
/// to the length of what Envoy sends, so there it never does. In gRPC mode a request with
/// neither a length nor `Transfer-Encoding` has no body.
fn body_state(
    headers: &HeaderMap,
    body: Bytes,
    content_length_known: bool,
    envoy_max: u64,
) -> Body {
    let partial = headers.get(PARTIAL_BODY).map(HeaderValue::as_bytes);
    if partial == Some(b"true") {
        return Body::Unsent;
    }
    let len = body.len() as u64;
    let declared = content_length_known
        .then(|| headers.get(http::header::CONTENT_LENGTH))
        .flatten();
    match declared {
        Some(v) => match std::str::from_utf8(v.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            Some(n) if n == len => Body::Full(body),
            _ => Body::Unsent,
        },
        // Possibly cut, and nothing says otherwise.
        None if len >= envoy_max => Body::Unsent,
        None if !content_length_known || partial == Some(b"false") || len > 0 => Body::Full(body),
        None if headers.contains_key(http::header::TRANSFER_ENCODING) => Body::Unsent,
        None => Body::Full(body),
    }
}

/// After authorization: the body must match what the signature declared — its SHA-256, or the
/// aws-chunked signatures and trailer checksums. A body Envoy did not send passes only under
/// `trust_unsent_payload`.
async fn check_payload(
    authd: &Authenticated,
    body: Body,
    headers: &HeaderMap,
    trust_unsent: bool,
) -> Result<(), Reject> {
    match (&authd.body_check, body) {
        (BodyCheck::None, _) => Ok(()),
        (_, Body::Unsent) if trust_unsent => Ok(()),
        (_, Body::Unsent) => Err(gate::body_unavailable(headers)),
        (BodyCheck::Sha256(_), Body::Full(bytes)) => gate::check_sha256(&bytes, authd),
        (BodyCheck::Chunked(plan), Body::Full(bytes)) => {
            let decoder = crate::proxy::chunked_decoder(plan)?;
            let failure = crate::proxy::chunked::ChunkFailure::new();
            crate::proxy::decode_chunked(
                http_body_util::Full::new(bytes),
                decoder,
                false,
                &failure,
                true,
            )
            .await
            .map(drop)
        }
        (_, Body::Stream(_)) => Err(Reject::Aws(AwsError::internal())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn full(b: Body) -> Option<Bytes> {
        match b {
            Body::Full(b) => Some(b),
            _ => None,
        }
    }

    const MAX: u64 = 8;

    #[test]
    fn grpc_body_is_whole_only_when_envoy_sent_all_of_it() {
        let b = || Bytes::from_static(b"hello");
        let state = |h: &HeaderMap, body: Bytes| full(body_state(h, body, true, MAX));
        // Length matches: whole.
        let h = headers(&[("content-length", "5"), (PARTIAL_BODY, "false")]);
        assert_eq!(state(&h, b()).as_deref(), Some(&b"hello"[..]));
        // Cut at max_request_bytes.
        let h = headers(&[("content-length", "9"), (PARTIAL_BODY, "true")]);
        assert!(state(&h, b()).is_none());
        // Cut, and Envoy says it is not (as 1.40 does at exactly max_request_bytes): the
        // length tells.
        let h = headers(&[("content-length", "9"), (PARTIAL_BODY, "false")]);
        assert!(state(&h, Bytes::from_static(b"12345678")).is_none());
        let h = headers(&[("content-length", "8"), (PARTIAL_BODY, "false")]);
        assert!(state(&h, Bytes::from_static(b"12345678")).is_some());
        // No length (chunked transfer) and max_request_bytes of body: possibly cut.
        let h = headers(&[("transfer-encoding", "chunked"), (PARTIAL_BODY, "false")]);
        assert!(state(&h, Bytes::from_static(b"12345678")).is_none());
        // No with_request_body: nothing sent for a body that exists, even when a client
        // forges the partial-body header.
        let h = headers(&[("content-length", "5"), (PARTIAL_BODY, "false")]);
        assert!(state(&h, Bytes::new()).is_none());
        // No length, no transfer-encoding: no body.
        assert_eq!(
            state(&headers(&[]), Bytes::new()).as_deref(),
            Some(&b""[..])
        );
        // Chunked transfer, not buffered: unknown.
        let h = headers(&[("transfer-encoding", "chunked")]);
        assert!(state(&h, Bytes::new()).is_none());
        // Chunked transfer, buffered whole.
        let h = headers(&[("transfer-encoding", "chunked"), (PARTIAL_BODY, "false")]);
        assert_eq!(state(&h, b()).as_deref(), Some(&b"hello"[..]));
        // Unparseable length.
        let h = headers(&[("content-length", "five")]);
        assert!(state(&h, b()).is_none());
    }

    #[test]
    fn http_mode_trusts_a_body_shorter_than_envoys_limit() {
        let state = |h: &HeaderMap, body: &'static [u8]| {
            full(body_state(h, Bytes::from_static(body), false, MAX))
        };
        let h = headers(&[("content-length", "5")]);
        assert!(state(&h, b"hello").is_some());
        let h = headers(&[(PARTIAL_BODY, "true")]);
        assert!(state(&h, b"hel").is_none());
        // Envoy's Content-Length is that of what it sent: at the limit, possibly cut.
        let h = headers(&[("content-length", "8"), (PARTIAL_BODY, "false")]);
        assert!(state(&h, b"12345678").is_none());
    }

    #[test]
    fn metadata_leaves_out_what_is_unknown() {
        let m = Metadata {
            decision: "Deny",
            request_id: "r".into(),
            error_code: Some("SignatureDoesNotMatch"),
            ..Metadata::default()
        };
        assert_eq!(
            m.into_fields(),
            vec![
                ("decision", "Deny".to_owned()),
                ("requestId", "r".to_owned()),
                ("errorCode", "SignatureDoesNotMatch".to_owned())
            ]
        );
    }
}
