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
use crate::sts::session::{OpenSession, SessionCache};

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
    /// The session token does not open: malformed, altered, sealed by a key not in the ring,
    /// bound to another access key id, or sent with a long-term key.
    #[error("the security token included in the request is invalid")]
    InvalidSessionToken {
        /// The scope's service.
        service: String,
    },
    /// The session token has expired.
    #[error("the security token included in the request is expired")]
    ExpiredToken {
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
            | AuthError::ExpiredToken { service }
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

/// The payload as the signature covers it, classified once per request.
#[derive(Debug, Clone, Copy)]
enum Payload {
    /// No `x-amz-content-sha256`: the body's SHA-256 is part of the canonical request.
    BodyHash,
    /// `UNSIGNED-PAYLOAD` (allowed for the service).
    Unsigned,
    /// A declared SHA-256 (the header's literal text is what was signed).
    Declared([u8; 32]),
    /// An aws-chunked body.
    Streaming(StreamingMode),
}

/// The credentials a request claims to be signed with.
#[derive(Debug)]
enum Signer {
    /// A long-term access key.
    Key(Arc<AccessKey>),
    /// Temporary credentials: an opened session token.
    Session(Arc<OpenSession>),
}

impl Signer {
    fn secret(&self) -> &str {
        match self {
            Signer::Key(k) => k.secret.expose(),
            Signer::Session(s) => s.secret.expose(),
        }
    }

    fn access_key_id(&self) -> &Arc<str> {
        match self {
            Signer::Key(k) => &k.id,
            Signer::Session(s) => &s.access_key_id,
        }
    }

    fn principal(&self) -> &Arc<Principal> {
        match self {
            Signer::Key(k) => &k.principal,
            Signer::Session(s) => &s.principal,
        }
    }
}

/// A request whose head passed every check but the signature.
#[derive(Debug)]
pub struct Pending<'r> {
    parsed: Parsed<'r>,
    signer: Signer,
    payload: Payload,
    region: Arc<str>,
    service: Arc<str>,
}

/// A successfully authenticated request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who signed it.
    pub principal: Arc<Principal>,
    /// The access key used.
    pub access_key_id: Arc<str>,
    /// Scope region.
    pub region: Arc<str>,
    /// Scope service.
    pub service: Arc<str>,
    /// Header or presigned form.
    pub form: AuthForm,
    /// Whether the signing key came from the cache.
    pub signing_key_cached: bool,
    /// What remains to check on the body.
    pub body_check: BodyCheck,
    /// How the signature covers the payload, for the audit record: `UNSIGNED-PAYLOAD`, a
    /// streaming mode, `sha256` (declared hash) or `body-hash` (standard services, no header).
    pub payload_mode: &'static str,
}

/// Runs every check that needs only the request head. `now` is epoch seconds; `sessions` opens
/// (and caches) session tokens of temporary credentials.
pub fn begin<'r>(
    req: &HttpRequest<'r>,
    snapshot: &Snapshot,
    sessions: &SessionCache,
    now: i64,
) -> Result<Pending<'r>, AuthError> {
    let skew = i64::try_from(snapshot.auth.clock_skew.as_secs()).unwrap_or(i64::MAX);
    let parsed = sigv4::parse(req, now, skew)?;
    let auth = &snapshot.auth;
    let (mut region, mut service) = (None, None);
    parsed.check_scope(
        |r| {
            region = auth.regions.get(r);
            region.is_some()
        },
        |s| {
            service = auth.services.get(s);
            service.is_some()
        },
    )?;
    let (Some(region), Some(service)) = (region.cloned(), service.cloned()) else {
        // `check_scope` returned Ok, so both lookups succeeded.
        return Err(AuthError::SigV4(SigV4Error::ScopeParts(String::new())));
    };
    let err_service = || service.to_string();
    let access_key_id = parsed.access_key_id();
    let signer = match parsed.security_token.as_deref() {
        Some(token) => match sessions.open(snapshot, token, access_key_id, now) {
            Ok((session, _)) => Signer::Session(session),
            Err(e) if e.is_expired() => {
                return Err(AuthError::ExpiredToken {
                    service: err_service(),
                })
            }
            Err(_) => {
                return Err(AuthError::InvalidSessionToken {
                    service: err_service(),
                })
            }
        },
        None => {
            let Some(key) = snapshot.keys.get(access_key_id) else {
                return Err(AuthError::UnknownKey {
                    access_key_id: access_key_id.to_owned(),
                    service: err_service(),
                });
            };
            if key.status != KeyStatus::Active {
                return Err(AuthError::InactiveKey {
                    access_key_id: access_key_id.to_owned(),
                    service: err_service(),
                });
            }
            Signer::Key(key.clone())
        }
    };
    let unsigned_ok = || auth.unsigned_payload_services.contains(&service);
    let mode = parsed.payload_mode();
    let payload = match mode {
        PayloadMode::BodyHash => Payload::BodyHash,
        PayloadMode::Declared(h) => match sigv4::decode_hex32(h) {
            Some(bytes) => Payload::Declared(bytes),
            None => {
                return Err(AuthError::InvalidPayloadHash {
                    service: err_service(),
                })
            }
        },
        PayloadMode::Invalid(_) => {
            return Err(AuthError::InvalidPayloadHash {
                service: err_service(),
            })
        }
        PayloadMode::Unsigned | PayloadMode::Streaming(_) => {
            // aws-chunked bodies: a supported mode, an unsigned one only where unsigned payloads
            // are allowed, and the decoded length up front.
            match StreamingMode::detect(&mode, req.headers) {
                Ok(None) if unsigned_ok() => Payload::Unsigned,
                Ok(None) => {
                    return Err(AuthError::UnsignedPayloadNotAllowed {
                        service: err_service(),
                    })
                }
                Ok(Some(m)) if !m.is_signed() && !unsigned_ok() => {
                    return Err(AuthError::UnsignedPayloadNotAllowed {
                        service: err_service(),
                    })
                }
                Ok(Some(m)) => {
                    match decoded_content_length(req.headers) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            return Err(AuthError::MissingDecodedLength {
                                service: err_service(),
                            })
                        }
                        Err(_) => {
                            return Err(AuthError::InvalidDecodedLength {
                                service: err_service(),
                            })
                        }
                    }
                    Payload::Streaming(m)
                }
                Err(_) => {
                    let mode = match mode {
                        PayloadMode::Streaming(m) => m.to_owned(),
                        _ => String::new(),
                    };
                    return Err(AuthError::StreamingNotImplemented {
                        mode,
                        service: err_service(),
                    });
                }
            }
        }
    };
    Ok(Pending {
        parsed,
        signer,
        payload,
        region,
        service,
    })
}

impl<'r> Pending<'r> {
    /// What the signature needs from the body.
    pub fn body_need(&self) -> BodyNeed {
        match self.payload {
            Payload::BodyHash => BodyNeed::Sha256,
            _ => BodyNeed::Nothing,
        }
    }

    /// The scope's service.
    pub fn service(&self) -> &str {
        &self.service
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
        let payload_mode = match self.payload {
            Payload::Declared(_) => "sha256",
            Payload::Unsigned => sigv4::UNSIGNED_PAYLOAD,
            Payload::Streaming(mode) => mode.as_str(),
            Payload::BodyHash => "body-hash",
        };
        let mut literal = [0u8; 64];
        let (payload_hash, body_check) = match self.payload {
            // The header's text exactly as sent (64 hex digits, either case) is what was signed.
            Payload::Declared(expected) => {
                if let Some(sent) = parsed.payload_literal() {
                    if sent.len() == literal.len() {
                        literal.copy_from_slice(sent.as_bytes());
                    }
                }
                (
                    std::str::from_utf8(&literal).unwrap_or(""),
                    BodyCheck::Sha256(expected),
                )
            }
            Payload::Unsigned => (sigv4::UNSIGNED_PAYLOAD, BodyCheck::None),
            Payload::Streaming(mode) => (mode.as_str(), BodyCheck::None),
            Payload::BodyHash => (body_sha256.unwrap_or(sigv4::EMPTY_SHA256), BodyCheck::None),
        };
        let scope = parsed.scope();
        let (signing_key, cached) =
            cache.get_or_derive(parsed.signing_key_id(), generation, || {
                derive_signing_key(
                    self.signer.secret(),
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
        if !ok {
            let service = self.service.to_string();
            let details = expose_details.then(|| {
                let _ = parsed.string_to_sign(scratch, req, payload_hash);
                let mut creq = Vec::new();
                let _ = parsed.canonical_request(&mut creq, req, payload_hash);
                Box::new(SignatureDetails {
                    access_key_id: self.signer.access_key_id().to_string(),
                    string_to_sign: String::from_utf8_lossy(scratch).into_owned(),
                    canonical_request: String::from_utf8_lossy(&creq).into_owned(),
                    signature_provided: parsed.signature.to_hex(),
                })
            });
            return Err(AuthError::SignatureMismatch { service, details });
        }
        let body_check = match self.payload {
            Payload::Streaming(mode) => BodyCheck::Chunked(Box::new(ChunkedPlan {
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
            _ => body_check,
        };
        Ok(Authenticated {
            principal: self.signer.principal().clone(),
            access_key_id: self.signer.access_key_id().clone(),
            region: self.region,
            service: self.service,
            form: parsed.form,
            signing_key_cached: cached,
            body_check,
            payload_mode,
        })
    }
}
