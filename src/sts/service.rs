//! STS over HTTP: which requests are STS calls, and turning them into responses.
//!
//! On the proxy listener a request is an STS call when its credential scope names service `sts`
//! (it is answered here, never forwarded), or when it is an unsigned `AssumeRoleWithWebIdentity`
//! (a form POST, or a GET with the parameters in the query, without any signature).

use crate::audit::Value as AuditValue;
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
    /// The error message, for refusals.
    pub error_message: Option<String>,
    /// Credentials issued.
    pub issued: Option<ops::Issued>,
    /// What the audit record's `requestParameters` hold (never a token or policy secret).
    pub audit_parameters: Option<Vec<(String, AuditValue)>>,
    /// The role asked for (`resources`), for `AssumeRole*`.
    pub role_arn: Option<String>,
    /// The verified web identity (provider, audience, subject) of `AssumeRoleWithWebIdentity`.
    pub web_identity: Option<(String, String, String)>,
}

impl StsResponse {
    /// `responseElements` of the audit record: what was issued, without the secret access key
    /// or the session token.
    pub fn audit_response(&self) -> Option<Vec<(String, AuditValue)>> {
        let issued = self.issued.as_ref()?;
        let s = |v: &str| AuditValue::Str(v.to_owned());
        let mut out = vec![(
            "credentials".to_owned(),
            AuditValue::Object(vec![
                ("accessKeyId".to_owned(), s(&issued.access_key_id)),
                (
                    "expiration".to_owned(),
                    AuditValue::Str(crate::audit::record::expiration_text(issued.expiration)),
                ),
            ]),
        )];
        if self.action != Some("GetSessionToken") {
            out.push((
                "assumedRoleUser".to_owned(),
                AuditValue::Object(vec![
                    ("assumedRoleId".to_owned(), s(&issued.assumed_role_id)),
                    ("arn".to_owned(), s(&issued.arn)),
                ]),
            ));
        }
        if let Some((provider, audience, subject)) = &self.web_identity {
            out.push(("subjectFromWebIdentityToken".to_owned(), s(subject)));
            out.push(("audience".to_owned(), s(audience)));
            out.push(("provider".to_owned(), s(provider)));
        }
        if let Some(si) = &issued.source_identity {
            out.push(("sourceIdentity".to_owned(), s(si)));
        }
        Some(out)
    }
}

/// `requestParameters` for an STS call, named as CloudTrail names them (camelCase). The web
/// identity token and MFA token code are never recorded.
fn audit_parameters(request: &StsRequest) -> Vec<(String, AuditValue)> {
    let s = |v: &str| AuditValue::Str(v.to_owned());
    let mut out: Vec<(String, AuditValue)> = Vec::new();
    let mut push = |k: &str, v: AuditValue| out.push((k.to_owned(), v));
    let arns = |arns: &[String]| {
        AuditValue::List(
            arns.iter()
                .map(|a| AuditValue::Object(vec![("arn".to_owned(), s(a))]))
                .collect(),
        )
    };
    match request {
        StsRequest::GetCallerIdentity => {}
        StsRequest::GetSessionToken {
            duration_seconds,
            serial_number,
            ..
        } => {
            if let Some(d) = duration_seconds {
                push("durationSeconds", AuditValue::Int(i64::from(*d)));
            }
            if let Some(sn) = serial_number {
                push("serialNumber", s(sn));
            }
        }
        StsRequest::AssumeRole {
            role_arn,
            role_session_name,
            duration_seconds,
            policy,
            policy_arns,
            tags,
            transitive_tag_keys,
            external_id,
            serial_number,
            source_identity,
            ..
        } => {
            push("roleArn", s(role_arn));
            push("roleSessionName", s(role_session_name));
            if let Some(d) = duration_seconds {
                push("durationSeconds", AuditValue::Int(i64::from(*d)));
            }
            if let Some(p) = policy {
                push("policy", s(p));
            }
            if !policy_arns.is_empty() {
                push("policyArns", arns(policy_arns));
            }
            if !tags.is_empty() {
                push(
                    "tags",
                    AuditValue::List(
                        tags.iter()
                            .map(|(k, v)| {
                                AuditValue::Object(vec![
                                    ("key".to_owned(), s(k)),
                                    ("value".to_owned(), s(v)),
                                ])
                            })
                            .collect(),
                    ),
                );
            }
            if !transitive_tag_keys.is_empty() {
                push(
                    "transitiveTagKeys",
                    AuditValue::List(transitive_tag_keys.iter().map(|k| s(k)).collect()),
                );
            }
            if let Some(e) = external_id {
                push("externalId", s(e));
            }
            if let Some(sn) = serial_number {
                push("serialNumber", s(sn));
            }
            if let Some(si) = source_identity {
                push("sourceIdentity", s(si));
            }
        }
        StsRequest::AssumeRoleWithWebIdentity {
            role_arn,
            role_session_name,
            provider_id,
            policy_arns,
            policy,
            duration_seconds,
            ..
        } => {
            push("roleArn", s(role_arn));
            push("roleSessionName", s(role_session_name));
            if let Some(d) = duration_seconds {
                push("durationSeconds", AuditValue::Int(i64::from(*d)));
            }
            if let Some(p) = provider_id {
                push("providerId", s(p));
            }
            if let Some(p) = policy {
                push("policy", s(p));
            }
            if !policy_arns.is_empty() {
                push("policyArns", arns(policy_arns));
            }
        }
        StsRequest::GetAccessKeyInfo { access_key_id } => push("accessKeyId", s(access_key_id)),
    }
    out
}

fn role_arn(request: &StsRequest) -> Option<String> {
    match request {
        StsRequest::AssumeRole { role_arn, .. }
        | StsRequest::AssumeRoleWithWebIdentity { role_arn, .. } => Some(role_arn.clone()),
        _ => None,
    }
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
    let (status, body, code, message, issued) = match result {
        Ok(o) => (StatusCode::OK, o.body, None, None, o.issued),
        Err(e) => (
            e.status_code(),
            xml::error_response(&e, request_id),
            Some(e.code),
            Some(e.message.clone()),
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
        error_message: message,
        issued,
        audit_parameters: None,
        role_arn: None,
        web_identity: None,
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
    let mut r = respond(result, Some(action), call.request_id);
    r.audit_parameters = Some(audit_parameters(&request));
    r.role_arn = role_arn(&request);
    r
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
    let mut verified = None;
    let result = match verifier {
        None => Err(StsError::invalid_identity_token(
            "No OpenIDConnect provider is configured on this endpoint",
        )),
        Some(v) => match v.verify(web_identity_token, call.facts.now).await {
            Ok(web) => {
                verified = Some((
                    web.provider.clone(),
                    web.audience.clone(),
                    web.subject.clone(),
                ));
                ops::execute(call, None, &request, Some(&web))
            }
            Err(e) => Err(StsError {
                code: e.aws_code(),
                message: e.to_string(),
                status: e.http_status(),
                kind: params::ErrorKind::Sender,
            }),
        },
    };
    let mut r = respond(result, Some(action), call.request_id);
    r.audit_parameters = Some(audit_parameters(&request));
    r.role_arn = role_arn(&request);
    r.web_identity = verified;
    r
}
