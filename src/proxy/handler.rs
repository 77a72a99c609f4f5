//! The proxy's request path: the shared gate ([`super::gate`]: admit → authenticate → STS or
//! authorize → audit), then the body checks and forwarding, with one AWS-shaped error response
//! per failure.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::audit::Draft;
use super::body::{self, BoxBody, Read, VerifyingBody};
use super::chunked::{self, ChunkFailure, ChunkedBody};
use super::error::AwsError;
use super::forward;
use super::gate::{self, head_failure, read_whole_verified, Body, Gate, Reject};
use super::ProxyState;
use crate::authn::{self, BodyCheck};
use crate::authz;
use crate::config::Snapshot;
use crate::sigv4::ChunkedDecoder;
use crate::sts;

/// Handles one proxied request. Never fails: every error becomes an AWS-shaped response.
pub async fn handle(
    state: &ProxyState,
    req: Request<Incoming>,
    peer: SocketAddr,
    listener: super::Listener,
) -> Response<BoxBody> {
    // An HTTP/1 request with a body that a refusal leaves unread cannot keep its connection.
    let http1_with_body = req.version() < http::Version::HTTP_2
        && (req.headers().contains_key(http::header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0"));
    let mut gate = match Gate::admit(
        state,
        (req.method(), req.uri(), req.headers()),
        http1_with_body,
        peer,
        listener,
    ) {
        Ok(gate) => gate,
        Err(refused) => return (*refused).map(body::full),
    };
    let snapshot = gate.snapshot.clone();
    let client_ip = gate.client_ip;
    let request_id_header = gate.request_id_header().cloned();
    let request_id = gate.request_id_bytes();
    let result = process(
        state,
        &snapshot,
        req,
        peer,
        client_ip,
        (
            std::str::from_utf8(&request_id).unwrap_or(""),
            request_id_header.as_ref(),
        ),
        listener,
        &mut gate.draft,
    )
    .await;
    match result {
        // STS answers its own errors; they count as refusals (or internal errors).
        Ok(mut resp) => {
            let (outcome, code) = match resp.extensions().get::<sts::service::StsErrorCode>() {
                Some(sts::service::StsErrorCode(code)) if resp.status().is_server_error() => {
                    ("error", *code)
                }
                Some(sts::service::StsErrorCode(code)) => ("denied", *code),
                None => ("allowed", "none"),
            };
            if let Some(v) = request_id_header {
                resp.headers_mut().insert(gate::X_AMZN_REQUEST_ID, v);
            }
            gate.conclude(state, outcome, code, None);
            resp
        }
        Err(reject) => gate.refuse(state, reject).0.map(body::full),
    }
}

/// Decodes an aws-chunked body: collected (and so fully verified) before forwarding when it is
/// small — always when empty, since hyper never polls an empty body — streamed otherwise.
pub(crate) async fn decode_chunked<B>(
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

/// What an STS operation knows about its request.
fn sts_facts<'a>(
    (client_ip, secure): (std::net::IpAddr, bool),
    now: i64,
    (region, service): (&'a str, &'a str),
    form_body: &'a [u8],
) -> authz::Facts<'a> {
    authz::Facts {
        source_ip: Some(client_ip),
        secure_transport: secure,
        now,
        region,
        service,
        form_body: Some(form_body),
        clock: None,
        client_cert: None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn process(
    state: &ProxyState,
    snapshot: &Snapshot,
    req: Request<Incoming>,
    peer: SocketAddr,
    client_ip: std::net::IpAddr,
    (request_id, request_id_header): (&str, Option<&HeaderValue>),
    listener: super::Listener,
    draft: &mut Draft<'_>,
) -> Result<Response<BoxBody>, Reject> {
    let (parts, incoming) = req.into_parts();
    let secure = parts
        .extensions
        .get::<crate::tls::SecureTransport>()
        .is_some();
    let now = crate::time::now_epoch();
    let http_req = gate::http_request(&parts);
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
            facts: sts_facts((client_ip, secure), now, (region, "sts"), &body),
            request_id,
        };
        let verifier = state.web_identity.load_full();
        // The STS and aws-chunked futures are boxed: they are large and rare, and unboxed they
        // would size (and so be copied with) every request's future.
        if let Some(r) = Box::pin(sts::service::unsigned(&call, verifier.as_deref(), &body)).await {
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
    let limit = snapshot.auth.max_verified_body;
    let (authd, body_state) =
        gate::authenticate(state, snapshot, &parts, Body::Stream(incoming), now, draft).await?;

    // STS calls (credential scope service `sts`) are answered here, never forwarded.
    if &*authd.service == "sts" {
        let bytes = match body_state {
            Body::Full(bytes) => bytes,
            Body::Stream(incoming) => read_whole_verified(incoming, limit, &authd).await?,
            Body::Unsent => bytes::Bytes::new(),
        };
        let call = sts::ops::Call {
            snapshot,
            req: &http_req,
            facts: sts_facts(
                (client_ip, secure),
                now,
                (&authd.region, &authd.service),
                &bytes,
            ),
            request_id,
        };
        let verifier = state.web_identity.load_full();
        let r = Box::pin(sts::service::signed(
            &call,
            &authd,
            verifier.as_deref(),
            &bytes,
        ))
        .await;
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
    let (authorized, body_state) =
        gate::authorize(state, snapshot, &parts, &authd, body_state, client_ip, now).await?;
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
            let decoder = chunked_decoder(&plan)?;
            let small = plan.decoded_len <= limit;
            match state {
                Body::Stream(incoming) => {
                    Box::pin(decode_chunked(
                        incoming,
                        decoder,
                        http_chunked,
                        &chunk_failure,
                        small,
                    ))
                    .await?
                }
                Body::Full(bytes) => {
                    Box::pin(decode_chunked(
                        http_body_util::Full::new(bytes),
                        decoder,
                        false,
                        &chunk_failure,
                        small,
                    ))
                    .await?
                }
                Body::Unsent => return Err(Reject::Aws(AwsError::incomplete_body())),
            }
        }
        (Body::Full(bytes), _) => body::full(bytes),
        (Body::Unsent, _) => return Err(Reject::Aws(AwsError::incomplete_body())),
        (Body::Stream(incoming), BodyCheck::None) => body::boxed(incoming),
        (Body::Stream(incoming), BodyCheck::Sha256(expected)) => {
            match body::read_up_to(incoming, limit)
                .await
                .map_err(|_| AwsError::incomplete_body())?
            {
                Read::Complete(bytes) => {
                    gate::check_sha256(&bytes, &authd)?;
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
        request_id_header,
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

/// The decoder for an aws-chunked body.
pub(crate) fn chunked_decoder(plan: &authn::ChunkedPlan) -> Result<ChunkedDecoder, Reject> {
    ChunkedDecoder::new(
        plan.mode,
        plan.signing.clone(),
        Some(plan.decoded_len),
        plan.trailer.as_deref(),
    )
    .map_err(|e| Reject::Aws(chunked::aws_error(&e)))
}
