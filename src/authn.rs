//! Authentication: SigV4 verification plus credential lookup, turning a request into a
//! [`Principal`] or an [`AuthError`].
//!
//! Authentication is two-phase because a signature can cover the body: [`begin`] runs every check
//! that needs only the request head (AWS's checks 1–11), and [`Pending::finish`] verifies the
//! signature once the payload hash is known. What the caller must then do with the body is
//! [`Authenticated::body_check`].

use std::sync::Arc;

use crate::config::Snapshot;
use crate::credentials::{AccessKey, KeyStatus};
use crate::sigv4::{
    self, derive_signing_key, AuthForm, HttpRequest, Parsed, PayloadMode, SigV4Error,
    SigningKeyCache,
};
use crate::sigv4::{decoded_content_length, ChunkSigning, StreamingMode};

pub use crate::credentials::Principal;

/// The signature details AWS returns with `SignatureDoesNotMatch` when configured to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureDetails {
    /// The access key id used.
    pub access_key_id: String,
    /// The string to sign the server computed.
    pub string_to_sign: String,
    /// The canonical request the server computed.
    pub canonical_request: String,
    /// The signature the client sent (hex).
    pub signature_provided: String,
}

/// Why authentication failed. Every variant is the client's fault (4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The SigV4 data itself was refused.
    #[error(transparent)]
    SigV4(#[from] SigV4Error),
    /// No such access key.
    #[error("unknown access key `{access_key_id}`")]
    UnknownKey {
        /// The key id sent.
        access_key_id: String,
        /// The scope's service.
        service: String,
    },
    /// The access key is inactive.
    #[error("inactive access key `{access_key_id}`")]
    InactiveKey {
        /// The key id sent.
        access_key_id: String,
        /// The scope's service.
        service: String,
    },
    /// A session token was sent; temporary credentials are not accepted yet.
    #[error("the security token included in the request is invalid")]
    InvalidSessionToken {
        /// The scope's service.
        service: String,
    },
    /// The signature does not match.
    #[error("signature does not match")]
    SignatureMismatch {
        /// The scope's service.
        service: String,
        /// Canonical request and string to sign, when configured to expose them.
        details: Option<Box<SignatureDetails>>,
    },
    /// The body does not hash to the declared `x-amz-content-sha256`.
    #[error("the provided 'x-amz-content-sha256' header does not match what was computed")]
    PayloadMismatch {
        /// The scope's service.
        service: String,
    },
    /// `x-amz-content-sha256` holds neither a SHA-256 nor a known literal.
    #[error("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a valid sha256 value")]
    InvalidPayloadHash {
        /// The scope's service.
        service: String,
    },
    /// `UNSIGNED-PAYLOAD` for a service where configuration does not allow it.
    #[error("unsigned payloads are not allowed for service `{service}`")]
    UnsignedPayloadNotAllowed {
        /// The scope's service.
        service: String,
    },
    /// An aws-chunked (`STREAMING-…`) payload, not supported yet.
    #[error("payload mode `{mode}` is not implemented")]
    StreamingNotImplemented {
        /// The literal sent.
        mode: String,
        /// The scope's service.
        service: String,
    },
    /// An aws-chunked body without `x-amz-decoded-content-length`.
    #[error("x-amz-decoded-content-length is required for aws-chunked bodies")]
    MissingDecodedLength {
        /// The scope's service.
        service: String,
    },
    /// `x-amz-decoded-content-length` is not a number.
    #[error("x-amz-decoded-content-length must be a number")]
    InvalidDecodedLength {
        /// The scope's service.
        service: String,
    },
    /// A body that must be hashed before verification exceeds the configured limit.
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The scope's service.
        service: String,
    },
}

impl AuthError {
    /// The service from the credential scope, when known.
    pub fn service(&self) -> Option<&str> {
        match self {
            AuthError::SigV4(e) => e.service(),
            AuthError::UnknownKey { service, .. }
            | AuthError::InactiveKey { service, .. }
            | AuthError::InvalidSessionToken { service }
            | AuthError::SignatureMismatch { service, .. }
            | AuthError::PayloadMismatch { service }
            | AuthError::InvalidPayloadHash { service }
            | AuthError::UnsignedPayloadNotAllowed { service }
            | AuthError::StreamingNotImplemented { service, .. }
            | AuthError::MissingDecodedLength { service }
            | AuthError::InvalidDecodedLength { service }
            | AuthError::BodyTooLarge { service, .. } => Some(service),
        }
    }
}

/// What the signature needs from the body before it can be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyNeed {
    /// Nothing: call [`Pending::finish`] with `None`.
    Nothing,
    /// The SHA-256 of the whole body is part of the canonical request: buffer the body (up to
    /// the configured limit), hash it and pass the hex to [`Pending::finish`].
    Sha256,
}

/// An aws-chunked body to decode and verify while it streams.
#[derive(Debug, Clone)]
pub struct ChunkedPlan {
    /// Signed chunks, signed trailers, or unsigned with a checksum trailer.
    pub mode: StreamingMode,
    /// The chunk-signature chain's start (signed modes).
    pub signing: Option<ChunkSigning>,
    /// `x-amz-decoded-content-length`.
    pub decoded_len: u64,
    /// `x-amz-trailer`.
    pub trailer: Option<String>,
}

/// What the caller must check on the body after authentication.
#[derive(Debug, Clone)]
pub enum BodyCheck {
    /// Nothing to check (hashed already, or unsigned by the client's choice).
    None,
    /// The body must hash to this SHA-256; refuse (or abort the upstream request) otherwise.
    Sha256([u8; 32]),
    /// The body is aws-chunked: decode it, verifying chunk signatures and trailer checksums.
    Chunked(Box<ChunkedPlan>),
}

/// A request whose head passed every check but the signature.
#[derive(Debug)]
pub struct Pending<'r> {
    parsed: Parsed<'r>,
    key: Arc<AccessKey>,
    streaming: Option<StreamingMode>,
}

/// A successfully authenticated request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who signed it.
    pub principal: Arc<Principal>,
    /// The access key used.
    pub access_key_id: String,
    /// Scope region.
    pub region: String,
    /// Scope service.
    pub service: String,
    /// Header or presigned form.
    pub form: AuthForm,
    /// Whether the signing key came from the cache.
    pub signing_key_cached: bool,
    /// What remains to check on the body.
    pub body_check: BodyCheck,
}

fn service_string(parsed: &Parsed<'_>) -> String {
    parsed.scope().service.to_owned()
}

/// Runs every check that needs only the request head. `now` is epoch seconds.
pub fn begin<'r>(
    req: &HttpRequest<'r>,
    snapshot: &Snapshot,
    now: i64,
) -> Result<Pending<'r>, AuthError> {
    let skew = i64::try_from(snapshot.auth.clock_skew.as_secs()).unwrap_or(i64::MAX);
    let parsed = sigv4::parse(req, now, skew)?;
    parsed.check_scope(
        |r| snapshot.auth.regions.contains(r),
        |s| snapshot.auth.services.contains(s),
    )?;
    let service = || service_string(&parsed);
    if parsed.security_token.is_some() {
        return Err(AuthError::InvalidSessionToken { service: service() });
    }
    let access_key_id = parsed.access_key_id();
    let Some(key) = snapshot.keys.get(access_key_id) else {
        return Err(AuthError::UnknownKey {
            access_key_id: access_key_id.to_owned(),
            service: service(),
        });
    };
    if key.status != KeyStatus::Active {
        return Err(AuthError::InactiveKey {
            access_key_id: access_key_id.to_owned(),
            service: service(),
        });
    }
    match parsed.payload_mode() {
        PayloadMode::Unsigned
            if !snapshot
                .auth
                .unsigned_payload_services
                .contains(parsed.scope().service) =>
        {
            return Err(AuthError::UnsignedPayloadNotAllowed { service: service() });
        }
        PayloadMode::Streaming(_) => {}
        PayloadMode::Invalid(_) => {
            return Err(AuthError::InvalidPayloadHash { service: service() })
        }
        _ => {}
    }
    // aws-chunked bodies: a supported mode, an unsigned one only where unsigned payloads are
    // allowed, and the decoded length up front.
    let streaming = match StreamingMode::detect(&parsed.payload_mode(), req.headers) {
        Ok(m) => m,
        Err(_) => {
            let mode = match parsed.payload_mode() {
                PayloadMode::Streaming(m) => m.to_owned(),
                _ => String::new(),
            };
            return Err(AuthError::StreamingNotImplemented {
                mode,
                service: service(),
            });
        }
    };
    if let Some(mode) = streaming {
        if !mode.is_signed()
            && !snapshot
                .auth
                .unsigned_payload_services
                .contains(parsed.scope().service)
        {
            return Err(AuthError::UnsignedPayloadNotAllowed { service: service() });
        }
        match decoded_content_length(req.headers) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(AuthError::MissingDecodedLength { service: service() }),
            Err(_) => return Err(AuthError::InvalidDecodedLength { service: service() }),
        }
    }
    Ok(Pending {
        parsed,
        key: key.clone(),
        streaming,
    })
}

impl<'r> Pending<'r> {
    /// What the signature needs from the body.
    pub fn body_need(&self) -> BodyNeed {
        match self.parsed.payload_mode() {
            PayloadMode::BodyHash => BodyNeed::Sha256,
            _ => BodyNeed::Nothing,
        }
    }

    /// The scope's service.
    pub fn service(&self) -> &str {
        self.parsed.scope().service
    }

    /// Verifies the signature. `body_sha256` (lowercase hex) is required when
    /// [`Pending::body_need`] said [`BodyNeed::Sha256`]; `scratch` is a reusable buffer.
    pub fn finish(
        self,
        req: &HttpRequest<'_>,
        body_sha256: Option<&str>,
        cache: &SigningKeyCache,
        generation: u64,
        expose_details: bool,
        scratch: &mut Vec<u8>,
    ) -> Result<Authenticated, AuthError> {
        let mut parsed = self.parsed;
        let mut declared = [0u8; 64];
        let (payload_hash, body_check) = match parsed.payload_mode() {
            PayloadMode::Declared(h) => {
                let mut expected = [0u8; 32];
                // `payload_mode` only returns `Declared` for 64 hex digits.
                let _ = hex::decode_to_slice(h, &mut expected);
                declared.copy_from_slice(h.as_bytes());
                (
                    std::str::from_utf8(&declared).unwrap_or(""),
                    BodyCheck::Sha256(expected),
                )
            }
            PayloadMode::Unsigned => (sigv4::UNSIGNED_PAYLOAD, BodyCheck::None),
            // The literal exactly as sent is what the client signed.
            PayloadMode::Streaming(literal) => (
                // Only the known literals get this far; each equals its mode's constant.
                StreamingMode::from_literal(literal).map_or("", StreamingMode::as_str),
                BodyCheck::None,
            ),
            _ => (body_sha256.unwrap_or(sigv4::EMPTY_SHA256), BodyCheck::None),
        };
        let scope = parsed.scope();
        let (signing_key, cached) =
            cache.get_or_derive(parsed.signing_key_id(), generation, || {
                derive_signing_key(
                    self.key.secret.expose(),
                    scope.date,
                    scope.region,
                    scope.service,
                )
            });
        parsed.string_to_sign(scratch, req, payload_hash)?;
        let mut ok = sigv4::verify(&signing_key, scratch, &parsed.signature);
        while !ok && parsed.next_alternative(req) {
            parsed.string_to_sign(scratch, req, payload_hash)?;
            ok = sigv4::verify(&signing_key, scratch, &parsed.signature);
        }
        let service = parsed.scope().service.to_owned();
        if !ok {
            let details = expose_details.then(|| {
                let _ = parsed.string_to_sign(scratch, req, payload_hash);
                let mut creq = Vec::new();
                let _ = parsed.canonical_request(&mut creq, req, payload_hash);
                Box::new(SignatureDetails {
                    access_key_id: self.key.id.clone(),
                    string_to_sign: String::from_utf8_lossy(scratch).into_owned(),
                    canonical_request: String::from_utf8_lossy(&creq).into_owned(),
                    signature_provided: parsed.signature.to_hex(),
                })
            });
            return Err(AuthError::SignatureMismatch { service, details });
        }
        let body_check = match self.streaming {
            Some(mode) => BodyCheck::Chunked(Box::new(ChunkedPlan {
                mode,
                signing: mode
                    .is_signed()
                    .then(|| ChunkSigning::from_parsed(&parsed, signing_key.clone())),
                decoded_len: decoded_content_length(req.headers)
                    .ok()
                    .flatten()
                    .unwrap_or(0),
                trailer: req
                    .headers
                    .get("x-amz-trailer")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            })),
            None => body_check,
        };
        Ok(Authenticated {
            principal: self.key.principal.clone(),
            access_key_id: self.key.id.clone(),
            region: parsed.scope().region.to_owned(),
            service,
            form: parsed.form,
            signing_key_cached: cached,
            body_check,
        })
    }
}
