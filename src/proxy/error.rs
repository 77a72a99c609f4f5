//! Every failure → one AWS-shaped response, in one place.
//!
//! The error code depends on who is at fault (client → 4xx, upstream → 502/504, us → 500), on
//! the scope's service (S3 has its own codes) and on the protocol (awsJson bodies for
//! `application/x-amz-json-*` requests, XML otherwise).

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use crate::authn::AuthError;
use crate::sigv4::{is_s3_service, AuthForm, SigV4Error};
use crate::time::{iso8601, AmzDate};

/// Who caused a failure; decides the status class, logging and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request was wrong (4xx). Not logged above `debug`.
    Client,
    /// The upstream failed (502/504).
    Upstream,
    /// Tollgate failed (500). Logged and counted.
    Internal,
}

/// An AWS-shaped error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// HTTP status.
    pub status: StatusCode,
    /// AWS error code, e.g. `SignatureDoesNotMatch`.
    pub code: &'static str,
    /// Human-readable message (AWS's wording where AWS has one).
    pub message: String,
    /// Extra XML elements AWS adds for some codes (`RequestTime`, `Region`, …).
    pub extra: Vec<(&'static str, String)>,
    /// Who is at fault.
    pub fault: Fault,
}

/// Body shape of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `<Error><Code/><Message/><RequestId/></Error>` (REST-XML, S3, and the default).
    Xml,
    /// `{"__type": "...", "message": "..."}` (awsJson 1.0/1.1).
    Json,
}

impl Protocol {
    /// The protocol of a request, from its `Content-Type`.
    pub fn of(headers: &http::HeaderMap) -> Self {
        match headers
            .get(http::header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes)
        {
            Some(ct)
                if ct.starts_with(b"application/x-amz-json-1.0")
                    || ct.starts_with(b"application/x-amz-json-1.1") =>
            {
                Protocol::Json
            }
            _ => Protocol::Xml,
        }
    }
}

const SIGNATURE_MISMATCH_S3: &str = "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

impl AwsError {
    pub(crate) fn client(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
            fault: Fault::Client,
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// 502: the upstream refused, reset or broke the connection.
    pub fn bad_gateway(detail: &str) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            code: "BadGateway",
            message: format!("The upstream service could not be reached: {detail}"),
            extra: Vec::new(),
            fault: Fault::Upstream,
        }
    }

    /// 504: the upstream did not answer in time.
    pub fn gateway_timeout(timeout: std::time::Duration) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "GatewayTimeout",
            message: format!(
                "The upstream service did not respond within {} ms",
                timeout.as_millis()
            ),
            extra: Vec::new(),
            fault: Fault::Upstream,
        }
    }

    /// 500: Tollgate failed.
    pub fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalFailure",
            message: "The request processing has failed because of an unknown error.".into(),
            extra: Vec::new(),
            fault: Fault::Internal,
        }
    }

    /// 403 `AccessDenied` (`AccessDeniedException` for awsJson) with AWS's message.
    pub fn access_denied(message: &str, protocol: Protocol) -> Self {
        let code = if protocol == Protocol::Json {
            "AccessDeniedException"
        } else {
            "AccessDenied"
        };
        Self::client(StatusCode::FORBIDDEN, code, message)
    }

    /// 503 `ServiceUnavailable`: the audit cannot take the call's record (fail-closed).
    pub fn service_unavailable(refusal: crate::audit::pipeline::Refusal) -> Self {
        let why = match refusal {
            crate::audit::pipeline::Refusal::QueueFull => "the audit queue is full",
            crate::audit::pipeline::Refusal::SinkFailing => "the audit log cannot be written",
        };
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "ServiceUnavailable",
            message: format!(
                "Service unavailable: {why}; no call goes ahead unaudited. Retry later."
            ),
            extra: Vec::new(),
            fault: Fault::Internal,
        }
    }

    /// 503 when too many calls are in flight (`[limits] max_in_flight`): S3's `SlowDown`, or
    /// `ServiceUnavailable`.
    pub fn overloaded(s3: bool) -> Self {
        let (code, message) = if s3 {
            ("SlowDown", "Please reduce your request rate.")
        } else {
            (
                "ServiceUnavailable",
                "Service unavailable: too many calls are in progress. Retry later.",
            )
        };
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code,
            message: message.into(),
            extra: Vec::new(),
            fault: Fault::Internal,
        }
    }

    /// 400 for a body that could not be read from the client.
    pub fn incomplete_body() -> Self {
        Self::client(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "The request body terminated unexpectedly",
        )
    }

    /// The response for an authentication failure. `expected_region` names a served region for
    /// S3's `AuthorizationHeaderMalformed`; `claimed` is what the request says about its form and
    /// service ([`crate::sigv4::claimed_scope`]), used when the failure came before the scope
    /// was read.
    pub fn from_auth(
        err: &AuthError,
        protocol: Protocol,
        expected_region: Option<&str>,
        claimed: Option<(AuthForm, &str)>,
    ) -> Self {
        let service = err.service().or(claimed.map(|c| c.1));
        let s3 = service.is_some_and(is_s3_service);
        let json = protocol == Protocol::Json;
        match err {
            AuthError::SigV4(e) => {
                let form = claimed.map_or(AuthForm::Header, |c| c.0);
                Self::from_sigv4(e, s3, json, expected_region, form)
            }
            // An inactive key is refused like an unknown one; only the non-S3 message differs,
            // as in AWS.
            AuthError::UnknownKey { access_key_id, .. } | AuthError::InactiveKey { access_key_id, .. } => {
                if s3 {
                    Self::client(StatusCode::FORBIDDEN, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
                        .with("AWSAccessKeyId", access_key_id.clone())
                } else if json {
                    Self::client(StatusCode::BAD_REQUEST, "UnrecognizedClientException", "The security token included in the request is invalid.")
                } else if matches!(err, AuthError::InactiveKey { .. }) {
                    Self::client(StatusCode::FORBIDDEN, "InvalidClientTokenId", "The security token included in the request is invalid.")
                } else {
                    Self::client(StatusCode::FORBIDDEN, "InvalidClientTokenId", "The AWS access key provided does not exist in our records.")
                }
            }
            AuthError::ExpiredToken { .. } => {
                if s3 {
                    Self::client(StatusCode::BAD_REQUEST, "ExpiredToken", "The provided token has expired.")
                } else if json {
                    Self::client(StatusCode::BAD_REQUEST, "ExpiredTokenException", "The security token included in the request is expired")
                } else {
                    Self::client(StatusCode::FORBIDDEN, "ExpiredToken", "The security token included in the request is expired")
                }
            }
            AuthError::InvalidSessionToken { .. } => {
                if s3 {
                    Self::client(StatusCode::BAD_REQUEST, "InvalidToken", "The provided token is malformed or otherwise invalid.")
                } else if json {
                    Self::client(StatusCode::BAD_REQUEST, "UnrecognizedClientException", "The security token included in the request is invalid.")
                } else {
                    Self::client(StatusCode::FORBIDDEN, "InvalidClientTokenId", "The security token included in the request is invalid")
                }
            }
            AuthError::SignatureMismatch { details, .. } => {
                let mut e = if json {
                    Self::client(StatusCode::BAD_REQUEST, "InvalidSignatureException", SIGNATURE_MISMATCH)
                } else if s3 {
                    Self::client(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", SIGNATURE_MISMATCH_S3)
                } else {
                    Self::client(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)
                };
                if let Some(d) = details {
                    let bytes = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
                    e = e
                        .with("AWSAccessKeyId", d.access_key_id.clone())
                        .with("StringToSign", d.string_to_sign.clone())
                        .with("SignatureProvided", d.signature_provided.clone())
                        .with("StringToSignBytes", bytes(&d.string_to_sign))
                        .with("CanonicalRequest", d.canonical_request.clone())
                        .with("CanonicalRequestBytes", bytes(&d.canonical_request));
                }
                e
            }
            AuthError::PayloadMismatch { .. } => Self::client(
                StatusCode::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            AuthError::InvalidPayloadHash { .. } => Self::client(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
            ),
            AuthError::UnsignedPayloadNotAllowed { service } => Self::client(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                format!("UNSIGNED-PAYLOAD is not accepted for service '{service}': sign the payload"),
            ),
            AuthError::StreamingNotImplemented { mode, .. } => Self::client(
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                format!("A header you provided implies functionality that is not implemented: x-amz-content-sha256 {mode}"),
            ),
            AuthError::MissingDecodedLength { .. } => Self::client(
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header (x-amz-decoded-content-length for aws-chunked bodies).",
            ),
            AuthError::InvalidDecodedLength { .. } => Self::client(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "x-amz-decoded-content-length must be a non-negative integer",
            ),
            AuthError::BodyTooLarge { limit, .. } => Self::client(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("Request body must be at most {limit} bytes when its SHA-256 is not sent in x-amz-content-sha256"),
            ),
        }
    }

    fn from_sigv4(
        e: &SigV4Error,
        s3: bool,
        json: bool,
        expected_region: Option<&str>,
        form: AuthForm,
    ) -> Self {
        let sdnm = |msg: String| {
            if json {
                Self::client(StatusCode::BAD_REQUEST, "InvalidSignatureException", msg)
            } else {
                Self::client(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", msg)
            }
        };
        // S3 has its own codes for malformed authentication data.
        let incomplete = |msg: String| {
            let code = match (s3, form) {
                (false, _) => "IncompleteSignature",
                (true, AuthForm::Header) => "AuthorizationHeaderMalformed",
                (true, AuthForm::Query) => "AuthorizationQueryParametersError",
            };
            Self::client(StatusCode::BAD_REQUEST, code, msg)
        };
        match e {
            SigV4Error::Missing => Self::client(StatusCode::FORBIDDEN, "MissingAuthenticationToken", "Request is missing Authentication Token"),
            SigV4Error::Ambiguous => sdnm("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified".into()),
            SigV4Error::UnsupportedAlgorithm(a) => incomplete(format!("Unsupported AWS 'algorithm': '{a}'")),
            SigV4Error::Incomplete(msg) => incomplete(msg.clone()),
            SigV4Error::HostNotSigned => sdnm("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into()),
            SigV4Error::BadDate(d) => incomplete(format!("Date must be in ISO-8601 'basic format'. Got '{d}'. See http://en.wikipedia.org/wiki/ISO_8601")),
            SigV4Error::Skewed { request_time, server_time, window, .. } => {
                if s3 {
                    Self::client(StatusCode::FORBIDDEN, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
                        .with("RequestTime", AmzDate::from_epoch(*request_time).as_str().to_owned())
                        .with("ServerTime", iso8601(*server_time))
                        .with("MaxAllowedSkewMilliseconds", (window * 1000).to_string())
                } else {
                    let t = AmzDate::from_epoch(*request_time);
                    let minutes = window / 60;
                    let msg = if request_time < server_time {
                        format!(
                            "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
                            t.as_str(),
                            AmzDate::from_epoch(server_time - window).as_str(),
                            AmzDate::from_epoch(*server_time).as_str()
                        )
                    } else {
                        format!(
                            "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
                            t.as_str(),
                            AmzDate::from_epoch(server_time + window).as_str(),
                            AmzDate::from_epoch(*server_time).as_str()
                        )
                    };
                    sdnm(msg)
                }
            }
            SigV4Error::Expired { signed_at, expires, server_time } => {
                Self::client(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
                    .with("X-Amz-Expires", expires.to_string())
                    .with("Expires", iso8601(signed_at.saturating_add(i64::try_from(*expires).unwrap_or(0))))
                    .with("ServerTime", iso8601(*server_time))
            }
            SigV4Error::BadExpires(msg) => Self::client(StatusCode::BAD_REQUEST, "AuthorizationQueryParametersError", msg.clone()),
            SigV4Error::ScopeParts(c) => incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{c}'"
            )),
            SigV4Error::WrongRegion { region, .. } => {
                if s3 {
                    let expecting = expected_region.unwrap_or("us-east-1");
                    Self::client(
                        StatusCode::BAD_REQUEST,
                        "AuthorizationHeaderMalformed",
                        format!("The authorization header is malformed; the region '{region}' is wrong; expecting '{expecting}'"),
                    )
                    .with("Region", expecting.to_owned())
                } else {
                    sdnm(format!("Credential should be scoped to a valid region, not '{region}'. "))
                }
            }
            SigV4Error::WrongService(s) => sdnm(format!("Credential should be scoped to correct service: '{s}'. ")),
            SigV4Error::WrongTerminator(t) => sdnm(format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{t}'. ")),
            SigV4Error::ScopeDate { scope, request, request_time } => sdnm(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope}' != '{request}', from '{request_time}'."
            )),
            SigV4Error::MalformedRequest(msg) => Self::client(StatusCode::BAD_REQUEST, "MalformedQueryString", msg.clone()),
        }
    }

    /// The body bytes and content type for `protocol`.
    pub fn body(&self, request_id: &str, protocol: Protocol) -> (Bytes, &'static str) {
        match protocol {
            Protocol::Json => {
                let v = serde_json::json!({ "__type": self.code, "message": self.message });
                (Bytes::from(v.to_string()), "application/x-amz-json-1.1")
            }
            Protocol::Xml => {
                let mut s = String::with_capacity(256);
                s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
                s.push_str(self.code);
                s.push_str("</Code><Message>");
                xml_escape_into(&mut s, &self.message);
                s.push_str("</Message>");
                for (name, value) in &self.extra {
                    s.push('<');
                    s.push_str(name);
                    s.push('>');
                    xml_escape_into(&mut s, value);
                    s.push_str("</");
                    s.push_str(name);
                    s.push('>');
                }
                s.push_str("<RequestId>");
                xml_escape_into(&mut s, request_id);
                s.push_str("</RequestId></Error>");
                (Bytes::from(s), "application/xml")
            }
        }
    }
}

/// Escapes XML text content.
pub fn xml_escape_into(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_shape_and_escaping() {
        let e = AwsError::client(StatusCode::FORBIDDEN, "AccessDenied", "a <b> & 'c'");
        let (body, ct) = e.body("req-1", Protocol::Xml);
        assert_eq!(ct, "application/xml");
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.ends_with("<Error><Code>AccessDenied</Code><Message>a &lt;b&gt; &amp; &apos;c&apos;</Message><RequestId>req-1</RequestId></Error>"), "{body}");
    }

    #[test]
    fn json_shape() {
        let e = AwsError::client(StatusCode::BAD_REQUEST, "InvalidSignatureException", "x");
        let (body, _) = e.body("r", Protocol::Json);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["__type"], "InvalidSignatureException");
        assert_eq!(v["message"], "x");
    }

    #[test]
    fn malformed_auth_uses_s3_codes_for_s3() {
        let e = AuthError::SigV4(SigV4Error::Incomplete("x".into()));
        let code = |claimed| AwsError::from_auth(&e, Protocol::Xml, None, claimed).code;
        assert_eq!(
            code(Some((AuthForm::Header, "s3"))),
            "AuthorizationHeaderMalformed"
        );
        assert_eq!(
            code(Some((AuthForm::Query, "s3"))),
            "AuthorizationQueryParametersError"
        );
        assert_eq!(code(Some((AuthForm::Header, "sts"))), "IncompleteSignature");
        assert_eq!(code(None), "IncompleteSignature");
        let mut h = http::HeaderMap::new();
        h.insert(
            "authorization",
            http::HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, Signature=0",
            ),
        );
        assert_eq!(
            crate::sigv4::claimed_scope(&h, None),
            Some((AuthForm::Header, "s3"))
        );
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20150830%2Fus-east-1%2Fexecute-api%2Faws4_request";
        assert_eq!(
            crate::sigv4::claimed_scope(&http::HeaderMap::new(), Some(q)),
            Some((AuthForm::Query, "execute-api"))
        );
    }

    #[test]
    fn codes_depend_on_service() {
        let unknown = |service: &str| AuthError::UnknownKey {
            access_key_id: "AKIAX".into(),
            service: service.into(),
        };
        assert_eq!(
            AwsError::from_auth(&unknown("s3"), Protocol::Xml, None, None).code,
            "InvalidAccessKeyId"
        );
        assert_eq!(
            AwsError::from_auth(&unknown("execute-api"), Protocol::Xml, None, None).code,
            "InvalidClientTokenId"
        );
        let skew = |service: &str| {
            AuthError::SigV4(SigV4Error::Skewed {
                request_time: 0,
                server_time: 1200,
                window: 900,
                service: Some(service.into()),
            })
        };
        let e = AwsError::from_auth(&skew("s3"), Protocol::Xml, None, None);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::FORBIDDEN, "RequestTimeTooSkewed")
        );
        let e = AwsError::from_auth(&skew("sts"), Protocol::Xml, None, None);
        assert_eq!(e.code, "SignatureDoesNotMatch");
        assert!(e.message.starts_with("Signature expired: 19700101T000000Z is now earlier than 19700101T000500Z (19700101T002000Z - 15 min.)"), "{}", e.message);
        let e = AwsError::from_auth(&skew("sts"), Protocol::Json, None, None);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "InvalidSignatureException")
        );
    }
}
