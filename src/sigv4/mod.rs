//! AWS Signature Version 4 verification (pure: no I/O, no async).
//!
//! The flow a verifier follows, in AWS's order of checks (see `docs/security.md`):
//!
//! 1. [`parse`] finds the one authentication form (`Authorization` header or presigned query),
//!    splits it into its parts and checks algorithm, required parts, `host` signed, date format,
//!    clock skew / presign expiry and the credential scope ([`Parsed::check_scope`]).
//! 2. The caller looks up the access key, then derives (or takes from a [`SigningKeyCache`]) the
//!    pre-keyed HMAC state for the scope.
//! 3. [`Parsed::string_to_sign`] canonicalizes the request with the payload hash the caller
//!    chose ([`PayloadMode`]) and [`verify`] compares signatures in constant time.

mod canonical;
pub(crate) use canonical::percent_decode;
mod chunked;
mod key;
mod parse;

pub use canonical::{canonical_request, CanonicalRules, KnownHeaders, Sink};
pub use chunked::{
    decoded_content_length, is_aws_chunked, sniff_chunk_header, strip_aws_chunked,
    ChecksumAlgorithm, ChunkError, ChunkLimits, ChunkSigning, ChunkedDecoder, Sniff, StreamingMode,
    STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, TRAILER_SIGNATURE,
};
pub use key::{derive_signing_key, SigningKey, SigningKeyCache};
pub use parse::{parse, AuthForm, CredentialScope, Parsed, PayloadMode};

use hmac::Mac;

/// `AWS4-HMAC-SHA256`, the only algorithm Tollgate accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash literal for unsigned payloads.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string, hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// [`EMPTY_SHA256`] as bytes.
pub const EMPTY_SHA256_BYTES: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];
/// Longest presigned URL lifetime AWS accepts (7 days).
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

/// The view of an HTTP request that signing covers.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// Method, e.g. `GET`.
    pub method: &'a str,
    /// The path exactly as received on the wire (no query), e.g. `/a%20b`.
    pub path: &'a str,
    /// The raw query string without `?`, if any.
    pub query: Option<&'a str>,
    /// The request's authority, used as `host` when no `Host` header exists (HTTP/2 `:authority`).
    pub authority: Option<&'a str>,
    /// All headers, repeated ones in the order received.
    pub headers: &'a http::HeaderMap,
}

/// A SigV4 signature as sent by a client. Has no `PartialEq` so it can only be compared through
/// [`Signature::matches`], which runs in constant time.
#[derive(Clone)]
pub struct Signature([u8; 32]);

impl Signature {
    /// Decodes 64 lowercase or uppercase hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        decode_hex32(s).map(Self)
    }

    /// Constant-time comparison with a computed signature.
    pub fn matches(&self, computed: &[u8; 32]) -> bool {
        ct_eq32(&self.0, computed)
    }

    /// Lowercase hex, for error bodies (`SignatureProvided`).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Constant-time equality of two 32-byte values (signatures, hashes): four 64-bit XORs folded
/// with OR, with no branch on the data; the fold goes through `black_box` before the one
/// comparison, so the optimizer cannot turn it into an early exit. A tenth of the instructions
/// of `subtle`'s byte-by-byte `ct_eq` on slices, with the same guarantee for this fixed size.
pub fn ct_eq32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let (a, _) = a.as_chunks::<8>();
    let (b, _) = b.as_chunks::<8>();
    let diff = a.iter().zip(b).fold(0u64, |d, (x, y)| {
        d | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
    });
    std::hint::black_box(diff) == 0
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes: a table lookup per digit, no
/// allocation, no early exit on the first bad digit.
pub fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    const BAD: u8 = 0xff;
    // Built at compile time: an out-of-range index would fail the build, not a request.
    #[allow(clippy::indexing_slicing)]
    const TABLE: [u8; 256] = {
        let mut t = [BAD; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let bytes: &[u8; 64] = s.as_bytes().try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        if let [hi, lo] = *pair {
            let digit = |c: u8| TABLE.get(usize::from(c)).copied().unwrap_or(BAD);
            let (h, l) = (digit(hi), digit(lo));
            bad |= (h | l) & 0xf0;
            *o = (h << 4) | (l & 0x0f);
        }
    }
    (bad == 0).then_some(out)
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature(..)")
    }
}

/// Computes the signature of a string to sign with a (cached) signing key.
pub fn sign(key: &SigningKey, string_to_sign: &[u8]) -> [u8; 32] {
    let mut mac = key.mac().clone();
    mac.update(string_to_sign);
    mac.finalize().into_bytes().into()
}

/// Checks a client signature against the string to sign, in constant time.
pub fn verify(key: &SigningKey, string_to_sign: &[u8], provided: &Signature) -> bool {
    provided.matches(&sign(key, string_to_sign))
}

/// Why a request's SigV4 authentication data was refused before any key lookup.
///
/// Each variant maps to one AWS error code in `proxy::error`; the exact code can depend on the
/// scope's service (S3 uses its own codes), which is why the scope is kept where known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor `X-Amz-Algorithm` in the query.
    #[error("request is missing authentication token")]
    Missing,
    /// Both forms at once.
    #[error("only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified")]
    Ambiguous,
    /// An algorithm other than `AWS4-HMAC-SHA256` (SigV2, SigV4a, …).
    #[error("unsupported AWS 'algorithm': '{0}'")]
    UnsupportedAlgorithm(String),
    /// A required part is absent or unreadable; the text is AWS's message.
    #[error("{0}")]
    Incomplete(String),
    /// `host` is not among the signed headers.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization")]
    HostNotSigned,
    /// The request date is not ISO 8601 basic format.
    #[error("date must be in ISO-8601 'basic format'. Got '{0}'. See http://en.wikipedia.org/wiki/ISO_8601")]
    BadDate(String),
    /// The request time is outside the allowed clock skew.
    #[error("request time too skewed")]
    Skewed {
        /// The request time (epoch seconds).
        request_time: i64,
        /// The server time (epoch seconds).
        server_time: i64,
        /// The allowed skew in seconds.
        window: i64,
        /// The service in the scope, when it could be read.
        service: Option<String>,
    },
    /// A presigned URL past its expiry.
    #[error("request has expired")]
    Expired {
        /// `X-Amz-Date` (epoch seconds).
        signed_at: i64,
        /// `X-Amz-Expires` (seconds).
        expires: u64,
        /// The server time (epoch seconds).
        server_time: i64,
    },
    /// `X-Amz-Expires` missing, not a number, or outside 1..=604800.
    #[error("{0}")]
    BadExpires(String),
    /// Credential scope without exactly five parts.
    #[error("credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{0}'")]
    ScopeParts(String),
    /// A region the server does not serve.
    #[error("credential should be scoped to a valid region, not '{region}'")]
    WrongRegion {
        /// The region in the scope.
        region: String,
        /// The service in the scope.
        service: String,
    },
    /// A service the server does not serve.
    #[error("credential should be scoped to correct service: '{0}'")]
    WrongService(String),
    /// A terminator other than `aws4_request`.
    #[error("credential should be scoped with a valid terminator: 'aws4_request', not '{0}'")]
    WrongTerminator(String),
    /// Scope date differs from the request date.
    #[error("date in credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope}' != '{request}', from '{request_time}'")]
    ScopeDate {
        /// Date in the scope.
        scope: String,
        /// Date of the request.
        request: String,
        /// The full request time.
        request_time: String,
    },
    /// A malformed percent escape or path.
    #[error("{0}")]
    MalformedRequest(String),
}

impl SigV4Error {
    /// The service from the credential scope, when the failure happened after it was read.
    pub fn service(&self) -> Option<&str> {
        match self {
            SigV4Error::Skewed { service, .. } => service.as_deref(),
            SigV4Error::WrongRegion { service, .. } => Some(service),
            _ => None,
        }
    }
}

/// The form and raw credential (`AKIA…/20130524/us-east-1/s3/aws4_request`, percent-encoded in
/// the query form) a request claims, read leniently from its `Authorization` header or
/// `X-Amz-Credential` parameter without validating anything.
pub fn claimed_credential<'a>(
    headers: &'a http::HeaderMap,
    query: Option<&'a str>,
) -> Option<(AuthForm, &'a str)> {
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let credential = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
        return Some((AuthForm::Header, credential));
    }
    let credential = query?
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Credential="))?;
    Some((AuthForm::Query, credential))
}

/// The form and scope service a request claims ([`claimed_credential`]), without validating
/// anything. Only for choosing the error dialect (S3 or not) of a request that failed before its
/// scope could be checked, and for the audit record of such a request.
pub fn claimed_scope<'a>(
    headers: &'a http::HeaderMap,
    query: Option<&'a str>,
) -> Option<(AuthForm, &'a str)> {
    let service_of = |credential: &'a str| credential.rsplit('/').nth(1);
    match claimed_credential(headers, query)? {
        (AuthForm::Header, credential) => service_of(credential).map(|s| (AuthForm::Header, s)),
        (AuthForm::Query, credential) => credential
            .rsplit("%2F")
            .nth(1)
            .or_else(|| service_of(credential))
            .map(|s| (AuthForm::Query, s)),
    }
}

/// True for the services whose requests use S3 canonicalization and S3 error codes.
pub fn is_s3_service(service: &str) -> bool {
    matches!(
        service,
        "s3" | "s3-object-lambda" | "s3-outposts" | "s3express"
    )
}

/// Why [`verify_request`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The authentication data was refused before the signature was computed.
    #[error(transparent)]
    Refused(#[from] SigV4Error),
    /// The signature does not match.
    #[error("signature does not match")]
    SignatureMismatch,
    /// The body does not match its declared SHA-256.
    #[error("payload hash does not match the body")]
    PayloadMismatch,
    /// A payload mode this function does not handle (aws-chunked).
    #[error("unsupported payload mode `{0}`")]
    UnsupportedPayload(String),
}

/// Verifies a whole, buffered request with a known secret, deriving the signing key: the
/// reference path for tests, fuzzing and benchmarks. The proxy uses the same pieces with a
/// signing-key cache and streaming bodies (`authn`).
///
/// `rules` overrides the canonicalization rules chosen by the scope's service.
pub fn verify_request(
    req: &HttpRequest<'_>,
    body: &[u8],
    secret: &str,
    now: i64,
    skew: i64,
    rules: Option<CanonicalRules>,
) -> Result<(), VerifyError> {
    use sha2::Digest;
    let mut parsed = parse(req, now, skew)?;
    if let Some(rules) = rules {
        parsed.rules = rules;
    }
    let payload_hash: String = match parsed.payload_mode() {
        PayloadMode::BodyHash => hex::encode(sha2::Sha256::digest(body)),
        PayloadMode::Declared(h) => h.to_owned(),
        PayloadMode::Unsigned => UNSIGNED_PAYLOAD.to_owned(),
        PayloadMode::Streaming(s) | PayloadMode::Invalid(s) => {
            return Err(VerifyError::UnsupportedPayload(s.to_owned()))
        }
    };
    let scope = parsed.scope();
    let key = derive_signing_key(secret, scope.date, scope.region, scope.service);
    let mut sts = Vec::with_capacity(256);
    parsed.string_to_sign(&mut sts, req, &payload_hash)?;
    let mut ok = verify(&key, &sts, &parsed.signature);
    while !ok && parsed.next_alternative(req) {
        parsed.string_to_sign(&mut sts, req, &payload_hash)?;
        ok = verify(&key, &sts, &parsed.signature);
    }
    if !ok {
        return Err(VerifyError::SignatureMismatch);
    }
    if let PayloadMode::Declared(h) = parsed.payload_mode() {
        if !hex::encode(sha2::Sha256::digest(body)).eq_ignore_ascii_case(h) {
            return Err(VerifyError::PayloadMismatch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq32_is_equality() {
        let a: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert!(ct_eq32(&a, &a));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!ct_eq32(&a, &b), "{i} {bit}");
                assert!(!ct_eq32(&b, &a), "{i} {bit}");
            }
        }
    }
}
