//! The request path: authenticate → (authorize: every authenticated call until the policy engine
//! lands) → forward, with one AWS-shaped error response per failure.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::audit::Draft;
use super::body::{self, BoxBody, Read, VerifyingBody};
use super::chunked::{self, ChunkFailure, ChunkedBody};
use super::error::{AwsError, Fault, Protocol};
use super::forward;
use super::ProxyState;
use crate::audit::ErrorInfo;
use crate::authn::{self, AuthError, Authenticated, BodyCheck, BodyNeed};
use crate::authz;
use crate::config::Snapshot;
use crate::sigv4::ChunkedDecoder;
use crate::sigv4::{self, AuthForm, HttpRequest};
use crate::sts;

thread_local! {
    /// Reused buffer for the string to sign.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// Why a request was not forwarded (or failed upstream).
pub(crate) enum Reject {
    /// An authentication failure, with the form and service the request claimed when the failure
    /// came before its scope was read.
    Auth(AuthError, Option<(AuthForm, String)>),
    Authz(authz::AuthzError),
    Aws(AwsError),
}

impl From<AuthError> for Reject {
    fn from(e: AuthError) -> Self {
        Reject::Auth(e, None)
    }
}

/// An authentication failure of the request head, remembering what dialect it claimed.
fn head_failure(e: AuthError, parts: &http::request::Parts) -> Reject {
    let claimed = if e.service().is_none() {
        sigv4::claimed_scope(&parts.headers, parts.uri.query()).map(|(f, s)| (f, s.to_owned()))
    } else {
        None
    };
    Reject::Auth(e, claimed)
}

impl From<AwsError> for Reject {
    fn from(e: AwsError) -> Self {
        Reject::Aws(e)
    }
}

/// A random (v4) UUID from a thread-local CSPRNG: no system call per id, unlike
/// `Uuid::new_v4`, which asks the kernel for every one. Request ids and audit event ids.
pub(crate) fn random_uuid() -> uuid::Uuid {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn new_request_id() -> String {
    random_uuid().to_string()
}

/// The request id, as text and as a header value (sharing one buffer).
#[derive(Clone, Copy)]
struct RequestIds<'a> {
    text: &'a str,
    header: Option<&'a HeaderValue>,
}

const X_AMZN_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-amzn-requestid");

/// Handles one proxied request. Never fails: every error becomes an AWS-shaped response.
pub async fn handle(
    state: &ProxyState,
    req: Request<Incoming>,
    peer: SocketAddr,
    listener: super::Listener,
) -> Response<BoxBody> {
    let started = Instant::now();
    // One buffer for the id: the log fields, the error body and both headers share it.
    let request_id_bytes = bytes::Bytes::from(new_request_id());
    let request_id_header = HeaderValue::from_maybe_shared(request_id_bytes.clone()).ok();
    let request_id = std::str::from_utf8(&request_id_bytes).unwrap_or("");
    let snapshot = state.snapshot.load_full();
    let protocol = Protocol::of(req.headers());
    // An HTTP/1 request with a body that a refusal leaves unread cannot keep its connection:
    // say so, so the client does not race hyper closing it.
    let http1_with_body = req.version() < http::Version::HTTP_2
        && (req.headers().contains_key(http::header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0"));
    let ids = RequestIds {
        text: request_id,
        header: request_id_header.as_ref(),
    };
    let client_ip = source_ip(peer, req.headers(), &snapshot.access.trusted_proxies);
    // The audit record's place is reserved first: with fail-closed, a call the audit cannot
    // record does not go ahead.
    let ticket = match state.auditor.admit() {
        Ok(ticket) => ticket,
        Err(refusal) => {
            let err = AwsError::service_unavailable(refusal);
            tracing::warn!(%request_id, ?refusal, "call refused: the audit cannot record it");
            let (bytes, content_type) = err.body(request_id, protocol);
            let mut resp = Response::new(body::full(bytes));
            *resp.status_mut() = err.status;
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            );
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            if http1_with_body {
                resp.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            if let Some(v) = request_id_header {
                resp.headers_mut().insert(X_AMZN_REQUEST_ID, v);
            }
            state
                .metrics
                .record("error", err.code, started.elapsed().as_secs_f64());
            return resp;
        }
    };
    let mut draft = Draft::new(
        ticket,
        &snapshot,
        request_id,
        (req.method(), req.uri(), req.headers()),
        client_ip,
        listener,
    );
    let result = process(
        state, &snapshot, req, peer, client_ip, ids, listener, &mut draft,
    )
    .await;
    let mut audit_error = None;
    let (outcome, code, mut resp) = match result {
        // STS answers its own errors; they count as refusals (or internal errors).
        Ok(resp) => match resp.extensions().get::<sts::service::StsErrorCode>() {
            Some(sts::service::StsErrorCode(code)) if resp.status().is_server_error() => {
                ("error", *code, resp)
            }
            Some(sts::service::StsErrorCode(code)) => ("denied", *code, resp),
            None => ("allowed", "none", resp),
        },
        Err(reject) => {
            let err = match reject {
                Reject::Auth(e, claimed) => {
                    let claimed = claimed.as_ref().map(|(f, s)| (*f, s.as_str()));
                    AwsError::from_auth(&e, protocol, snapshot.auth.regions.iter().next(), claimed)
                }
                Reject::Authz(e) => {
                    draft.refused(&e);
                    AwsError::access_denied(&e.to_string(), protocol)
                }
                Reject::Aws(e) => e,
            };
            if draft.records() {
                audit_error = Some(ErrorInfo {
                    code: err.code,
                    message: err.message.clone(),
                });
            }
            let outcome = match err.fault {
                Fault::Client => "denied",
                Fault::Upstream => "upstream_error",
                Fault::Internal => "error",
            };
            match err.fault {
                Fault::Client => tracing::debug!(code = err.code, %request_id, "request refused"),
                Fault::Upstream => {
                    tracing::warn!(code = err.code, %request_id, message = %err.message, "upstream failure")
                }
                Fault::Internal => {
                    tracing::error!(code = err.code, %request_id, "internal failure")
                }
            }
            let (bytes, content_type) = err.body(request_id, protocol);
            let mut resp = Response::new(body::full(bytes));
            *resp.status_mut() = err.status;
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            );
            if protocol == Protocol::Json {
                if let Ok(v) = HeaderValue::from_str(err.code) {
                    resp.headers_mut().insert("x-amzn-errortype", v);
                }
            }
            if http1_with_body {
                resp.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            (outcome, err.code, resp)
        }
    };
    if let Some(v) = request_id_header {
        resp.headers_mut().insert(X_AMZN_REQUEST_ID, v);
    }
    draft.finish(audit_error);
    state
        .metrics
        .record(outcome, code, started.elapsed().as_secs_f64());
    resp
}

/// The request body after authentication: still streaming, or read whole.
enum BodyState {
    Stream(Incoming),
    Full(bytes::Bytes),
}

/// Decodes an aws-chunked body: collected (and so fully verified) before forwarding when it is
/// small — always when empty, since hyper never polls an empty body — streamed otherwise.
async fn decode_chunked<B>(
    inner: B,
    decoder: ChunkedDecoder,
    http_chunked: bool,
    failure: &Arc<ChunkFailure>,
    collect_first: bool,
) -> Result<BoxBody, Reject>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let decoded = ChunkedBody::new(inner, decoder, http_chunked, failure.clone());
    if !collect_first {
        return Ok(http_body_util::BodyExt::boxed_unsync(decoded));
    }
    match http_body_util::BodyExt::collect(decoded).await {
        Ok(c) => Ok(body::full(c.to_bytes())),
        Err(_) => Err(Reject::Aws(match failure.get() {
            Some(e) => chunked::aws_error(e),
            None => AwsError::incomplete_body(),
        })),
    }
}

/// `aws:SourceIp`: the peer, or — when the peer is a trusted proxy — the first address in
/// `X-Forwarded-For`, read from the right, that is not itself a trusted proxy.
fn source_ip(
    peer: SocketAddr,
    headers: &http::HeaderMap,
    trusted: &[crate::policy::Cidr],
) -> std::net::IpAddr {
    let ip = peer.ip();
    if !trusted.iter().any(|c| c.contains(ip)) {
        return ip;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| crate::policy::parse_ip_value(h.trim()))
        .collect::<Vec<_>>();
    hops.iter()
        .rev()
        .copied()
        .find(|h| !trusted.iter().any(|c| c.contains(*h)))
        .unwrap_or(ip)
}

/// Reads a whole body (up to `limit`) and checks it against a declared SHA-256.
async fn read_whole_verified(
    incoming: Incoming,
    limit: u64,
    authd: &Authenticated,
) -> Result<bytes::Bytes, Reject> {
    let bytes = match body::read_up_to(incoming, limit)
        .await
        .map_err(|_| AwsError::incomplete_body())?
    {
        Read::Complete(bytes) => bytes,
        Read::Partial(..) => {
            return Err(AuthError::BodyTooLarge {
                limit,
                service: authd.service.to_string(),
            }
            .into())
        }
    };
    if let BodyCheck::Sha256(expected) = authd.body_check {
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &body::sha256(&bytes)[..],
            &expected[..],
        )) {
            return Err(AuthError::PayloadMismatch {
                service: authd.service.to_string(),
            }
            .into());
        }
    }
    Ok(bytes)
}

/// What an STS operation knows about its request.
fn sts_facts<'a>(
    client_ip: std::net::IpAddr,
    now: i64,
    (region, service): (&'a str, &'a str),
    form_body: &'a [u8],
) -> authz::Facts<'a> {
    authz::Facts {
        source_ip: Some(client_ip),
        secure_transport: false,
        now,
        region,
        service,
        form_body: Some(form_body),
        clock: None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn process(
    state: &ProxyState,
    snapshot: &Snapshot,
    req: Request<Incoming>,
    peer: SocketAddr,
    client_ip: std::net::IpAddr,
    ids: RequestIds<'_>,
    listener: super::Listener,
    draft: &mut Draft<'_>,
) -> Result<Response<BoxBody>, Reject> {
    let request_id = ids.text;
    let (parts, incoming) = req.into_parts();
    let now = crate::time::now_epoch();
    let http_req = HttpRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        authority: parts.uri.authority().map(|a| a.as_str()),
        headers: &parts.headers,
    };
    // 0. An unsigned form post (or query) may be STS `AssumeRoleWithWebIdentity`, which carries
    //    no AWS signature: answered here, never forwarded.
    if sts::service::may_be_web_identity(&parts) {
        let body = match body::read_up_to(incoming, sts::service::MAX_UNSIGNED_FORM).await {
            Ok(Read::Complete(bytes)) => bytes,
            _ => bytes::Bytes::new(),
        };
        let region = snapshot.auth.regions.iter().next().unwrap_or("us-east-1");
        let call = sts::ops::Call {
            snapshot,
            req: &http_req,
            facts: sts_facts(client_ip, now, (region, "sts"), &body),
            request_id,
        };
        let verifier = state.web_identity.load_full();
        if let Some(r) = sts::service::unsigned(&call, verifier.as_deref(), &body).await {
            draft.sts(&r);
            return Ok(r.response.map(body::full));
        }
        // Not web identity: refused as the unsigned request it is.
        draft.claimed(&parts.headers, parts.uri.query());
        return Err(
            match authn::begin(&http_req, snapshot, &state.sessions, now) {
                Err(e) => head_failure(e, &parts),
                Ok(_) => Reject::Aws(AwsError::incomplete_body()),
            },
        );
    }

    // 1. Authenticate: the request head, then the signature (with the body hash when the
    //    signature covers it).
    let pending = match authn::begin(&http_req, snapshot, &state.sessions, now) {
        Ok(p) => p,
        Err(e) => {
            draft.claimed(&parts.headers, parts.uri.query());
            return Err(head_failure(e, &parts));
        }
    };
    let limit = snapshot.auth.max_verified_body;
    let expose = snapshot.auth.expose_signing_details;
    let generation = snapshot.generation;
    let finish = |pending: authn::Pending<'_>, hash: Option<&str>| {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            pending.finish(
                &http_req,
                hash,
                &state.signing_keys,
                generation,
                expose,
                &mut scratch,
            )
        })
    };
    let authenticated: Result<(Authenticated, BodyState), Reject> = async {
        Ok(match pending.body_need() {
            BodyNeed::Nothing => (finish(pending, None)?, BodyState::Stream(incoming)),
            BodyNeed::Sha256 => {
                let service = pending.service().to_owned();
                match body::read_up_to(incoming, limit)
                    .await
                    .map_err(|_| AwsError::incomplete_body())?
                {
                    Read::Complete(bytes) => {
                        let mut hex_buf = [0u8; 64];
                        let _ = hex::encode_to_slice(body::sha256(&bytes), &mut hex_buf);
                        let hash = std::str::from_utf8(&hex_buf).unwrap_or("");
                        (finish(pending, Some(hash))?, BodyState::Full(bytes))
                    }
                    Read::Partial(..) => {
                        return Err(AuthError::BodyTooLarge { limit, service }.into())
                    }
                }
            }
        })
    }
    .await;
    let (authd, body_state) = match authenticated {
        Ok(v) => v,
        Err(e) => {
            draft.claimed(&parts.headers, parts.uri.query());
            return Err(e);
        }
    };
    draft.authenticated(&authd);
    if authd.signing_key_cached {
        state.metrics.cache_hits.inc();
    } else {
        state.metrics.cache_misses.inc();
    }

    // STS calls (credential scope service `sts`) are answered here, never forwarded.
    if &*authd.service == "sts" {
        let bytes = match body_state {
            BodyState::Full(bytes) => bytes,
            BodyState::Stream(incoming) => read_whole_verified(incoming, limit, &authd).await?,
        };
        let call = sts::ops::Call {
            snapshot,
            req: &http_req,
            facts: sts_facts(client_ip, now, (&authd.region, &authd.service), &bytes),
            request_id,
        };
        let verifier = state.web_identity.load_full();
        let r = sts::service::signed(&call, &authd, verifier.as_deref(), &bytes).await;
        draft.sts(&r);
        return Ok(r.response.map(body::full));
    }

    if listener == super::Listener::Api {
        return Err(Reject::Aws(AwsError::client(
            http::StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!(
                "the api listener serves STS only; requests for service `{}` go to the proxy listener",
                authd.service
            ),
        )));
    }

    // 2. Authorize (reading the body first when the decision depends on it).
    let mut body_state = body_state;
    if matches!(body_state, BodyState::Stream(_))
        && authz::needs_body(snapshot, &http_req, &authd.service)
    {
        if let BodyState::Stream(incoming) = body_state {
            body_state = BodyState::Full(read_whole_verified(incoming, limit, &authd).await?);
        }
    }
    let clock = state.clock(now);
    let facts = authz::Facts {
        source_ip: Some(client_ip),
        secure_transport: false,
        now,
        region: &authd.region,
        service: &authd.service,
        form_body: match &body_state {
            BodyState::Full(b) => Some(b),
            BodyState::Stream(_) => None,
        },
        clock: Some(&clock),
    };
    let authorized =
        authz::authorize(snapshot, &authd.principal, &http_req, &facts).map_err(Reject::Authz)?;
    draft.authorized(authorized);

    // 3. The body must match its declared hash: checked before forwarding when it fits the
    //    buffer, while streaming (upstream request aborted on mismatch) otherwise. A body read
    //    whole above was checked already (or is covered by the signature).
    let mismatch = Arc::new(AtomicBool::new(false));
    let chunk_failure = ChunkFailure::new();
    let http_chunked = parts
        .headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let body = match (body_state, authd.body_check.clone()) {
        // aws-chunked: decoded while verifying chunk signatures and trailer checksums; small
        // bodies (and empty ones, which hyper would never poll) are decoded before forwarding.
        (state, BodyCheck::Chunked(plan)) => {
            let decoder = ChunkedDecoder::new(
                plan.mode,
                plan.signing,
                Some(plan.decoded_len),
                plan.trailer.as_deref(),
            )
            .map_err(|e| Reject::Aws(chunked::aws_error(&e)))?;
            let small = plan.decoded_len <= limit;
            match state {
                BodyState::Stream(incoming) => {
                    decode_chunked(incoming, decoder, http_chunked, &chunk_failure, small).await?
                }
                BodyState::Full(bytes) => {
                    decode_chunked(
                        http_body_util::Full::new(bytes),
                        decoder,
                        false,
                        &chunk_failure,
                        small,
                    )
                    .await?
                }
            }
        }
        (BodyState::Full(bytes), _) => body::full(bytes),
        (BodyState::Stream(incoming), BodyCheck::None) => body::boxed(incoming),
        (BodyState::Stream(incoming), BodyCheck::Sha256(expected)) => {
            match body::read_up_to(incoming, limit)
                .await
                .map_err(|_| AwsError::incomplete_body())?
            {
                Read::Complete(bytes) => {
                    if !bool::from(subtle::ConstantTimeEq::ct_eq(
                        &body::sha256(&bytes)[..],
                        &expected[..],
                    )) {
                        return Err(AuthError::PayloadMismatch {
                            service: authd.service.to_string(),
                        }
                        .into());
                    }
                    body::full(bytes)
                }
                Read::Partial(prefix, rest) => {
                    body::boxed(VerifyingBody::new(prefix, rest, expected, mismatch.clone()))
                }
            }
        }
    };

    // 4. Forward.
    let upstream_req = forward::upstream_request(
        parts,
        body,
        &authd,
        snapshot,
        &state.upstream,
        peer,
        ids.header,
    )?;
    forward::send(
        state,
        snapshot,
        upstream_req,
        &authd,
        &mismatch,
        &chunk_failure,
    )
    .await
}
