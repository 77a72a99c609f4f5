//! STS over HTTP: which requests are STS calls, and turning them into responses.
//!
//! On the proxy listener a request is an STS call when its credential scope names service `sts`
//! (it is answered here, never forwarded), or when it is an unsigned `AssumeRoleWithWebIdentity`
//! (a form POST, or a GET with the parameters in the query, without any signature).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

use super::oidc::{OidcProvider, WebIdentityVerifier};
use super::ops::{self, Call, Caller, StsOutcome};
use super::params::{self, StsError, StsRequest};
use super::xml;
use crate::authn::Authenticated;
use crate::config::Snapshot;

/// Largest form body read to find out whether an unsigned request is `AssumeRoleWithWebIdentity`
/// (its token may be 20,000 characters, its session policy 2,048, percent-encoded).
pub const MAX_UNSIGNED_FORM: u64 = 96 * 1024;

/// Whether an unsigned request may be `AssumeRoleWithWebIdentity`: no `Authorization` header, no
/// presigned `X-Amz-Credential`, and either a form POST or `Action=` in the query.
pub fn may_be_web_identity(parts: &http::request::Parts) -> bool {
    if parts.headers.contains_key(http::header::AUTHORIZATION) {
        return false;
    }
    let query = parts.uri.query().unwrap_or("");
    if query.contains("X-Amz-Credential=") {
        return false;
    }
    let form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    (parts.method == http::Method::POST && form)
        || query.contains("Action=AssumeRoleWithWebIdentity")
}

/// The web identity verifier for a configuration's OIDC providers (`None` without any).
pub fn verifier(snapshot: &Snapshot) -> Option<Arc<WebIdentityVerifier>> {
    let sts = snapshot.sts.as_ref()?;
    if sts.oidc_providers.is_empty() {
        return None;
    }
    let providers: Vec<OidcProvider> = sts
        .oidc_providers
        .iter()
        .map(|p| p.provider.clone())
        .collect();
    match WebIdentityVerifier::new(providers) {
        Ok(v) => Some(Arc::new(v)),
        Err(e) => {
            tracing::error!(error = %e, "OIDC providers cannot be used");
            None
        }
    }
}

/// An STS response (or STS error), with what the audit record needs. `Debug` leaves the body out:
/// it may hold issued credentials.
pub struct StsResponse {
    /// The HTTP response.
    pub response: Response<Bytes>,
    /// The operation, when the parameters named one.
    pub action: Option<&'static str>,
    /// The error code, for refusals.
    pub error_code: Option<&'static str>,
    /// Credentials issued.
    pub issued: Option<ops::Issued>,
}

impl std::fmt::Debug for StsResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsResponse")
            .field("status", &self.response.status())
            .field("action", &self.action)
            .field("error_code", &self.error_code)
            .field("issued", &self.issued)
            .finish()
    }
}

/// Marks an STS error response (a response extension, never sent): the AWS error code, for
/// metrics and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StsErrorCode(pub &'static str);

fn respond(
    result: Result<StsOutcome, StsError>,
    action: Option<&'static str>,
    request_id: &str,
) -> StsResponse {
    let (status, body, code, issued) = match result {
        Ok(o) => (StatusCode::OK, o.body, None, o.issued),
        Err(e) => (
            e.status_code(),
            xml::error_response(&e, request_id),
            Some(e.code),
            None,
        ),
    };
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(xml::CONTENT_TYPE),
    );
    if let Some(code) = code {
        response.extensions_mut().insert(StsErrorCode(code));
    }
    StsResponse {
        response,
        action,
        error_code: code,
        issued,
    }
}

fn parse(query: Option<&str>, body: &[u8]) -> Result<StsRequest, StsError> {
    let params = params::parse_query_and_form(query, body)?;
    StsRequest::from_params(&params)
}

/// A signed STS call (credential scope service `sts`) from an authenticated caller.
/// `AssumeRoleWithWebIdentity` needs no signature; a signed one is answered from its token alone,
/// as AWS does.
pub async fn signed(
    call: &Call<'_>,
    authd: &Authenticated,
    verifier: Option<&WebIdentityVerifier>,
    body: &[u8],
) -> StsResponse {
    let request = match parse(call.req.query, body) {
        Ok(r) => r,
        Err(e) => return respond(Err(e), None, call.request_id),
    };
    if matches!(request, StsRequest::AssumeRoleWithWebIdentity { .. }) {
        return web_identity(call, verifier, request).await;
    }
    let action = request.action();
    let caller = Caller {
        principal: &authd.principal,
        access_key_id: &authd.access_key_id,
    };
    let result = ops::execute(call, Some(caller), &request, None);
    respond(result, Some(action), call.request_id)
}

/// An unsigned request that may be `AssumeRoleWithWebIdentity`. `None` when it is not (the caller
/// then refuses it as unsigned).
pub async fn unsigned(
    call: &Call<'_>,
    verifier: Option<&WebIdentityVerifier>,
    body: &[u8],
) -> Option<StsResponse> {
    match parse(call.req.query, body) {
        Ok(r @ StsRequest::AssumeRoleWithWebIdentity { .. }) => {
            Some(web_identity(call, verifier, r).await)
        }
        _ => None,
    }
}

/// `AssumeRoleWithWebIdentity`: the token verified against the providers' keys, then the
/// operation.
async fn web_identity(
    call: &Call<'_>,
    verifier: Option<&WebIdentityVerifier>,
    request: StsRequest,
) -> StsResponse {
    let action = request.action();
    let StsRequest::AssumeRoleWithWebIdentity {
        web_identity_token, ..
    } = &request
    else {
        return respond(
            Err(StsError::internal_failure()),
            Some(action),
            call.request_id,
        );
    };
    let result = match verifier {
        None => Err(StsError::invalid_identity_token(
            "No OpenIDConnect provider is configured on this endpoint",
        )),
        Some(v) => match v.verify(web_identity_token, call.facts.now).await {
            Ok(web) => ops::execute(call, None, &request, Some(&web)),
            Err(e) => Err(StsError {
                code: e.aws_code(),
                message: e.to_string(),
                status: e.http_status(),
                kind: params::ErrorKind::Sender,
            }),
        },
    };
    respond(result, Some(action), call.request_id)
}
