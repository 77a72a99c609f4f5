//! The one authenticate → authorize → audit pipeline, shared by every listener: the reverse
//! proxy, the api listener and both Envoy ext_authz services. A listener admits a call
//! ([`Gate::admit`]: audit place, request id, client address), runs [`authenticate`] and
//! [`authorize`] over the request head and whatever body it has ([`Body`]), then concludes the
//! call ([`Gate::refuse`] builds the AWS-shaped refusal; [`Gate::conclude`] records the rest).
//! What happens to an allowed call — forwarding it, or telling Envoy to — is the listener's.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Response};
use hyper::body::Incoming;

use super::audit::Draft;
use super::body::{self, Read};
use super::error::{AwsError, Fault, Protocol};
use super::{Listener, ProxyState};
use crate::audit::ErrorInfo;
use crate::authn::{self, AuthError, Authenticated, BodyCheck, BodyNeed};
use crate::authz;
use crate::config::Snapshot;
use crate::sigv4::{self, AuthForm, HttpRequest};

thread_local! {
    /// Reused buffer for the string to sign.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// Why a request was not allowed (or failed upstream).
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

impl From<AwsError> for Reject {
    fn from(e: AwsError) -> Self {
        Reject::Aws(e)
    }
}

/// An authentication failure of the request head, remembering what dialect it claimed.
pub(crate) fn head_failure(e: AuthError, parts: &http::request::Parts) -> Reject {
    let claimed = if e.service().is_none() {
        sigv4::claimed_scope(&parts.headers, parts.uri.query()).map(|(f, s)| (f, s.to_owned()))
    } else {
        None
    };
    Reject::Auth(e, claimed)
}

/// A random (v4) UUID from a thread-local CSPRNG: no system call per id, unlike
/// `Uuid::new_v4`, which asks the kernel for every one. Request ids and audit event ids.
pub(crate) fn random_uuid() -> uuid::Uuid {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

pub(crate) const X_AMZN_REQUEST_ID: http::HeaderName =
    http::HeaderName::from_static("x-amzn-requestid");

/// The request body as a listener has it.
pub(crate) enum Body {
    /// Still arriving from the client (the proxy).
    Stream(Incoming),
    /// All of it, in memory.
    Full(Bytes),
    /// Not available: Envoy did not send it (no `with_request_body`), or sent only a part.
    Unsent,
}

/// A place among the calls in flight, given back when dropped.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One call, admitted: its audit place, request id and client address.
pub(crate) struct Gate<'a> {
    _in_flight: InFlight<'a>,
    started: Instant,
    /// The request id; the log fields, the error body and both headers share this buffer.
    request_id: Bytes,
    request_id_header: Option<HeaderValue>,
    /// The configuration in force for this call.
    pub(crate) snapshot: Arc<Snapshot>,
    protocol: Protocol,
    /// An HTTP/1 request with a body that a refusal leaves unread cannot keep its connection:
    /// say so, so the client does not race hyper closing it.
    close_on_refusal: bool,
    /// `aws:SourceIp`.
    pub(crate) client_ip: IpAddr,
    listener: Listener,
    /// The call's audit record in the making.
    pub(crate) draft: Draft<'a>,
}

impl<'a> Gate<'a> {
    /// Admits a call: its audit record's place is reserved first, so that with fail-closed a
    /// call the audit cannot record does not go ahead (the refusal, a 503, is returned).
    /// `peer` is the address the request came from (for ext_authz: the client Envoy saw).
    pub(crate) fn admit(
        state: &'a ProxyState,
        head: (&http::Method, &http::Uri, &http::HeaderMap),
        close_on_refusal: bool,
        peer: SocketAddr,
        listener: Listener,
    ) -> Result<Self, Box<Response<Bytes>>> {
        let started = Instant::now();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let request_id = Bytes::copy_from_slice(
            random_uuid()
                .hyphenated()
                .encode_lower(&mut text)
                .as_bytes(),
        );
        let request_id_header = HeaderValue::from_maybe_shared(request_id.clone()).ok();
        let snapshot = state.snapshot.load_full();
        let (_, _, headers) = head;
        let protocol = Protocol::of(headers);
        let client_ip = source_ip(peer, headers, &snapshot.access.trusted_proxies);
        let id = std::str::from_utf8(&request_id).unwrap_or("");
        // A 503 that refuses the call before it starts (nothing is recorded by the audit).
        let unavailable = |err: AwsError| {
            let mut resp = error_response(
                &err,
                id,
                request_id_header.as_ref(),
                protocol,
                close_on_refusal,
            );
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            state
                .metrics
                .record("error", err.code, started.elapsed().as_secs_f64());
            Box::new(resp)
        };
        let n = state
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let in_flight = InFlight(&state.in_flight);
        if n >= snapshot.limits.max_in_flight {
            let (_, uri, _) = head;
            let s3 = sigv4::claimed_scope(headers, uri.query())
                .is_some_and(|(_, service)| sigv4::is_s3_service(service));
            let err = AwsError::overloaded(s3);
            tracing::info!(code = err.code, request_id = %id, listener = listener.as_str(), "request refused: max_in_flight calls are open");
            return Err(unavailable(err));
        }
        let ticket = match state.auditor.admit() {
            Ok(ticket) => ticket,
            Err(refusal) => {
                tracing::warn!(request_id = %id, ?refusal, "call refused: the audit cannot record it");
                return Err(unavailable(AwsError::service_unavailable(refusal)));
            }
        };
        let draft = Draft::new(
            ticket,
            &snapshot,
            std::str::from_utf8(&request_id).unwrap_or(""),
            head,
            client_ip,
            listener,
        );
        Ok(Self {
            _in_flight: in_flight,
            started,
            request_id,
            request_id_header,
            snapshot,
            protocol,
            close_on_refusal,
            client_ip,
            listener,
            draft,
        })
    }

    /// The request id.
    pub(crate) fn request_id(&self) -> &str {
        std::str::from_utf8(&self.request_id).unwrap_or("")
    }

    /// The request id's buffer (shared, not copied).
    pub(crate) fn request_id_bytes(&self) -> Bytes {
        self.request_id.clone()
    }

    /// The request id as a header value.
    pub(crate) fn request_id_header(&self) -> Option<&HeaderValue> {
        self.request_id_header.as_ref()
    }

    /// The call ended without a refusal of Tollgate's own (`outcome` `allowed`, or an STS
    /// answer's): records it.
    pub(crate) fn conclude(
        self,
        state: &ProxyState,
        outcome: &str,
        code: &str,
        error: Option<ErrorInfo>,
    ) {
        self.draft.finish(error);
        state
            .metrics
            .record(outcome, code, self.started.elapsed().as_secs_f64());
    }

    /// The call is refused (or failed): records it and builds the AWS-shaped response.
    pub(crate) fn refuse(
        mut self,
        state: &ProxyState,
        reject: Reject,
    ) -> (Response<Bytes>, AwsError) {
        let snapshot = &self.snapshot;
        let err = match reject {
            Reject::Auth(e, claimed) => {
                let claimed = claimed.as_ref().map(|(f, s)| (*f, s.as_str()));
                AwsError::from_auth(
                    &e,
                    self.protocol,
                    snapshot.auth.regions.iter().next(),
                    claimed,
                )
            }
            Reject::Authz(e) => {
                self.draft.refused(&e);
                AwsError::access_denied(&e.to_string(), self.protocol)
            }
            Reject::Aws(e) => e,
        };
        let request_id = std::str::from_utf8(&self.request_id).unwrap_or("");
        let outcome = match err.fault {
            Fault::Client => "denied",
            Fault::Upstream => "upstream_error",
            Fault::Internal => "error",
        };
        match err.fault {
            Fault::Client => tracing::info!(
                code = err.code,
                status = err.status.as_u16(),
                %request_id,
                listener = self.listener.as_str(),
                "request refused"
            ),
            Fault::Upstream => {
                tracing::warn!(code = err.code, %request_id, message = %err.message, "upstream failure")
            }
            Fault::Internal => tracing::error!(code = err.code, %request_id, "internal failure"),
        }
        let resp = error_response(
            &err,
            request_id,
            self.request_id_header.as_ref(),
            self.protocol,
            self.close_on_refusal,
        );
        let audit_error = self.draft.records().then(|| ErrorInfo {
            code: err.code,
            message: err.message.clone(),
        });
        self.conclude(state, outcome, err.code, audit_error);
        (resp, err)
    }
}

/// The response for an error: AWS's body for the protocol, `Content-Type`, the request id, and
/// `x-amzn-ErrorType` for awsJson.
fn error_response(
    err: &AwsError,
    request_id: &str,
    request_id_header: Option<&HeaderValue>,
    protocol: Protocol,
    close: bool,
) -> Response<Bytes> {
    let (bytes, content_type) = err.body(request_id, protocol);
    let mut resp = Response::new(bytes);
    *resp.status_mut() = err.status;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if protocol == Protocol::Json {
        if let Ok(v) = HeaderValue::from_str(err.code) {
            headers.insert("x-amzn-errortype", v);
        }
    }
    if close {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(v) = request_id_header {
        headers.insert(X_AMZN_REQUEST_ID, v.clone());
    }
    resp
}

/// `aws:SourceIp`: the peer, or — when the peer is a trusted proxy — the first address in
/// `X-Forwarded-For`, read from the right, that is not itself a trusted proxy.
pub(crate) fn source_ip(
    peer: SocketAddr,
    headers: &http::HeaderMap,
    trusted: &[crate::policy::Cidr],
) -> IpAddr {
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

/// The SigV4 view of a request head.
pub(crate) fn http_request(parts: &http::request::Parts) -> HttpRequest<'_> {
    HttpRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        authority: parts.uri.authority().map(|a| a.as_str()),
        headers: &parts.headers,
    }
}

/// Reads a whole body (up to `limit`) and checks it against a declared SHA-256.
pub(crate) async fn read_whole_verified(
    incoming: Incoming,
    limit: u64,
    authd: &Authenticated,
) -> Result<Bytes, Reject> {
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
    check_sha256(&bytes, authd)?;
    Ok(bytes)
}

/// Checks a whole body against the SHA-256 the signature declared (if it declared one).
pub(crate) fn check_sha256(bytes: &[u8], authd: &Authenticated) -> Result<(), Reject> {
    if let BodyCheck::Sha256(expected) = authd.body_check {
        if !crate::sigv4::ct_eq32(&body::sha256(bytes), &expected) {
            return Err(AuthError::PayloadMismatch {
                service: authd.service.to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// 413 `EntityTooLarge` when the declared body (`Content-Length`, or an aws-chunked body's
/// `x-amz-decoded-content-length`) is over `[limits] max_body_bytes`.
pub(crate) fn body_over_limit(headers: &http::HeaderMap, limit: u64) -> Option<AwsError> {
    const DECODED_LENGTH: http::HeaderName =
        http::HeaderName::from_static("x-amz-decoded-content-length");
    // Names as constants: a `&str` lookup parses and validates the name on every call.
    let declared = |name: &http::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let len = declared(&http::header::CONTENT_LENGTH)
        .into_iter()
        .chain(declared(&DECODED_LENGTH))
        .max()?;
    (len > limit).then(|| {
        AwsError::client(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "EntityTooLarge",
            format!(
                "Your proposed upload exceeds the maximum allowed size: {len} bytes, over the \
                 limit of {limit}"
            ),
        )
    })
}

/// `414` when the request target (path and query as sent) is longer than `[limits]
/// max_uri_bytes`. AWS's own front ends answer this with a bare 414; the error body here names
/// the limit.
pub(crate) fn uri_over_limit(uri: &http::Uri, limit: usize) -> Option<AwsError> {
    let len = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    (len > limit).then(|| {
        AwsError::client(
            http::StatusCode::URI_TOO_LONG,
            "RequestURITooLong",
            format!("The request URI is {len} bytes long, over the limit of {limit}"),
        )
    })
}

/// The refusal when the signature covers a body the listener was not given.
pub(crate) fn body_unavailable(protocol_headers: &http::HeaderMap) -> Reject {
    Reject::Aws(AwsError::access_denied(
        "The signature covers the request body, which Envoy did not send in full: \
         configure the ext_authz filter's with_request_body (max_request_bytes at least the \
         body's size), or sign with UNSIGNED-PAYLOAD where the service allows it",
        Protocol::of(protocol_headers),
    ))
}

/// Authenticates a request: the head, then the signature — with the body's hash when the
/// signature covers it (a streaming body is read, up to the verified-body limit). Tells the
/// draft who signed (or who the request claimed to be).
pub(crate) async fn authenticate(
    state: &ProxyState,
    snapshot: &Snapshot,
    parts: &http::request::Parts,
    body: Body,
    now: i64,
    draft: &mut Draft<'_>,
) -> Result<(Authenticated, Body), Reject> {
    // A request target over `[limits] max_uri_bytes`, or a body declared over
    // `max_body_bytes`, is refused before anything else is looked at.
    if let Some(e) = uri_over_limit(&parts.uri, snapshot.limits.max_uri_bytes)
        .or_else(|| body_over_limit(&parts.headers, snapshot.limits.max_body_bytes))
    {
        draft.claimed(&parts.headers, parts.uri.query());
        return Err(Reject::Aws(e));
    }
    let http_req = http_request(parts);
    let pending = match authn::begin(&http_req, snapshot, &state.sessions, now) {
        Ok(p) => p,
        Err(e) => {
            draft.claimed(&parts.headers, parts.uri.query());
            return Err(head_failure(e, parts));
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
    let with_hash = |pending: authn::Pending<'_>, bytes: &[u8]| {
        let mut hex_buf = [0u8; 64];
        let _ = hex::encode_to_slice(body::sha256(bytes), &mut hex_buf);
        let hash = std::str::from_utf8(&hex_buf).unwrap_or("");
        finish(pending, Some(hash))
    };
    let authenticated: Result<(Authenticated, Body), Reject> = async {
        Ok(match (pending.body_need(), body) {
            (BodyNeed::Nothing, body) => (finish(pending, None)?, body),
            (BodyNeed::Sha256, Body::Full(bytes)) => {
                (with_hash(pending, &bytes)?, Body::Full(bytes))
            }
            (BodyNeed::Sha256, Body::Stream(incoming)) => {
                let service = pending.service().to_owned();
                match body::read_up_to(incoming, limit)
                    .await
                    .map_err(|_| AwsError::incomplete_body())?
                {
                    Read::Complete(bytes) => (with_hash(pending, &bytes)?, Body::Full(bytes)),
                    Read::Partial(..) => {
                        return Err(AuthError::BodyTooLarge { limit, service }.into())
                    }
                }
            }
            (BodyNeed::Sha256, Body::Unsent) => return Err(body_unavailable(&parts.headers)),
        })
    }
    .await;
    match authenticated {
        Ok((authd, body)) => {
            draft.authenticated(&authd);
            if authd.signing_key_cached {
                state.metrics.cache_hits.inc();
            } else {
                state.metrics.cache_misses.inc();
            }
            Ok((authd, body))
        }
        Err(e) => {
            draft.claimed(&parts.headers, parts.uri.query());
            Err(e)
        }
    }
}

/// Authorizes an authenticated request, reading a streaming body first when the decision
/// depends on it (an awsQuery form, S3's `DeleteObjects`). A body read here is checked against
/// its declared hash; a body the listener already had is the caller's to check.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn authorize(
    state: &ProxyState,
    snapshot: &Snapshot,
    parts: &http::request::Parts,
    authd: &Authenticated,
    body: Body,
    client_ip: IpAddr,
    now: i64,
) -> Result<(authz::Authorized, Body), Reject> {
    let http_req = http_request(parts);
    let mut body = body;
    if let Body::Stream(incoming) = body {
        body = if authz::needs_body(snapshot, &http_req, &authd.service) {
            Body::Full(read_whole_verified(incoming, snapshot.auth.max_verified_body, authd).await?)
        } else {
            Body::Stream(incoming)
        };
    }
    let clock = state.clock(now);
    let facts = authz::Facts {
        source_ip: Some(client_ip),
        secure_transport: parts
            .extensions
            .get::<crate::tls::SecureTransport>()
            .is_some(),
        now,
        region: &authd.region,
        service: &authd.service,
        form_body: match &body {
            Body::Full(b) => Some(b),
            Body::Stream(_) | Body::Unsent => None,
        },
        clock: Some(&clock),
        client_cert: parts
            .extensions
            .get::<Arc<crate::tls::ClientCert>>()
            .map(|c| &**c),
    };
    let authorized =
        authz::authorize(snapshot, &authd.principal, &http_req, &facts).map_err(Reject::Authz)?;
    Ok((authorized, body))
}

/// The identity headers the upstream receives for an allowed call — principal ARN, account,
/// access key id and request id — each handed to `put`.
pub(crate) fn identity_headers(
    authd: &Authenticated,
    request_id: Option<&HeaderValue>,
    mut put: impl FnMut(http::HeaderName, HeaderValue),
) -> Result<(), Reject> {
    let value = |v: &str| HeaderValue::from_str(v).map_err(|_| Reject::Aws(AwsError::internal()));
    match authd.principal.identity_headers() {
        Some([arn, account]) => {
            put(PRINCIPAL_ARN, arn.clone());
            put(ACCOUNT_ID, account.clone());
        }
        None => {
            put(PRINCIPAL_ARN, value(&authd.principal.arn)?);
            put(ACCOUNT_ID, value(&authd.principal.account_id)?);
        }
    }
    put(ACCESS_KEY_ID, value(&authd.access_key_id)?);
    if let Some(id) = request_id {
        put(REQUEST_ID, id.clone());
    }
    Ok(())
}

pub(crate) const PRINCIPAL_ARN: http::HeaderName =
    http::HeaderName::from_static("x-tollgate-principal-arn");
pub(crate) const ACCOUNT_ID: http::HeaderName =
    http::HeaderName::from_static("x-tollgate-account-id");
pub(crate) const ACCESS_KEY_ID: http::HeaderName =
    http::HeaderName::from_static("x-tollgate-access-key-id");
pub(crate) const REQUEST_ID: http::HeaderName =
    http::HeaderName::from_static("x-tollgate-request-id");
