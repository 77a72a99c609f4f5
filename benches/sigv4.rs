//! SigV4 verification cost: Tollgate against two Rust verifiers measured in the same run.
//!
//! Every request is signed once, at start-up, by the `aws-sigv4` crate (the AWS SDK's signer) at
//! the current time, and each verifier is given that time as "now" (the peers that read the
//! clock themselves are within their windows). Every routine asserts that the signature verified,
//! so a bench cannot silently measure an error path.
//!
//! Groups (the function names are the verifiers):
//!
//! - `get`: `GET /api/v1/widgets/1234?limit=10` for `execute-api` (host, accept, user-agent,
//!   `x-amz-date`, `x-amz-content-sha256` of the empty body), warm signing-key cache.
//!   `tollgate` is the `sigv4` module alone; `tollgate_authn` adds the access-key lookup in a
//!   config [`Snapshot`] and the shared [`SigningKeyCache`] (`authn::begin` + `finish`), i.e. what
//!   the proxy runs per request.
//! - `get_no_sha_header`: the same request without `x-amz-content-sha256` (most non-S3 SDK calls).
//! - `get_uncached`: the signing key derived on every request (4 extra HMACs).
//! - `presigned_api`: a presigned `execute-api` URL (payload = SHA-256 of the empty body).
//! - `presigned_s3`: a presigned S3 URL (`UNSIGNED-PAYLOAD`).
//! - `s3_put_1k`: an S3 `PUT` with a 1 KiB body whose SHA-256 is declared in
//!   `x-amz-content-sha256`; every verifier also hashes the body and checks it.
//!
//! Peers, each given its best case:
//! - `scratchstack`: `scratchstack-aws-signature` 0.11 `sigv4_validate_request`, with a
//!   `GetSigningKey` service that serves a memoized signing key (uncached: derives from the
//!   secret each call). It takes the request by value, so each iteration gets a fresh clone built
//!   outside the timed section (`iter_batched`). It hashes the body itself and has no support for
//!   `UNSIGNED-PAYLOAD`, so it is not in `presigned_s3`; it does not percent-decode the
//!   `X-Amz-Credential` query parameter that `aws-sigv4` (like every AWS SDK) encodes, so it
//!   refuses SDK-presigned URLs and is not in `presigned_api` either.
//! - `rustack`: `rustack-auth` 0.12 `verify_sigv4` / `verify_s3_sigv4` / `verify_presigned`, with a
//!   `StaticCredentialProvider`. It has no signing-key cache (it derives the key on every call), so
//!   its cached and uncached figures are the same code. Its presigned verifier only accepts
//!   `UNSIGNED-PAYLOAD` (S3 style), so it is not in `presigned_api`.
//!
//! Run: `cargo bench --bench sigv4`; results in `target/criterion/<group>/<verifier>/`. A full run
//! (no filter) ends with a summary table: every verifier timed in interleaved rounds, minimum and
//! median per verification and the ratio to the faster peer, which stays stable on a machine
//! whose background load varies during the run. `SIGV4_SUMMARY_ONLY=1 cargo bench --bench sigv4`
//! prints the summary alone.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/mod.rs"]
mod common;
use common::wants_summary;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::str::FromStr;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use tollgate::authn::{self, BodyCheck};
use tollgate::config::Snapshot;
use tollgate::sigv4::{self, derive_signing_key, HttpRequest, PayloadMode, SigningKeyCache};

const AKID: &str = "AKIATOLLGATEADMIN001";
const REGION: &str = "us-east-1";
const HOST: &str = "api.example.com";
const PATH_QUERY: &str = "/api/v1/widgets/1234?limit=10";
const SKEW: i64 = 900;
/// SHA-256 of the empty body (`sigv4::EMPTY_SHA256` as bytes): the proxy knows an empty body
/// without hashing it.
const EMPTY_SHA256_BYTES: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

// ---------------------------------------------------------------------------------------------
// Signing (aws-sigv4), done once.

#[derive(Clone, Copy)]
enum Kind {
    /// `GET`, `x-amz-content-sha256` of the empty body.
    Get,
    /// `GET` without `x-amz-content-sha256`.
    GetNoShaHeader,
    /// Presigned `execute-api` URL.
    PresignedApi,
    /// Presigned S3 URL (`UNSIGNED-PAYLOAD`).
    PresignedS3,
    /// S3 `PUT` with a 1 KiB body, hash declared.
    S3Put,
}

/// A request signed by `aws-sigv4`, in every shape the verifiers want.
struct Signed {
    method: http::Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Signed {
    fn tollgate(&self) -> HttpRequest<'_> {
        HttpRequest {
            method: self.method.as_str(),
            path: self.uri.path(),
            query: self.uri.query(),
            authority: None,
            headers: &self.headers,
        }
    }

    fn http_request(&self) -> http::Request<Bytes> {
        let mut req = http::Request::new(self.body.clone());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    fn parts(&self) -> http::request::Parts {
        self.http_request().into_parts().0
    }
}

fn sign_request(kind: Kind, secret: &str, time: SystemTime) -> Signed {
    sign_request_as(kind, AKID, secret, None, time)
}

/// [`sign_request`] with any credentials (temporary ones carry a session token).
fn sign_request_as(
    kind: Kind,
    access_key_id: &str,
    secret: &str,
    token: Option<&str>,
    time: SystemTime,
) -> Signed {
    let (method, service, path_query, body): (&str, &str, &str, Vec<u8>) = match kind {
        Kind::Get | Kind::GetNoShaHeader | Kind::PresignedApi => {
            ("GET", "execute-api", PATH_QUERY, Vec::new())
        }
        Kind::PresignedS3 => ("GET", "s3", "/bucket/reports/2024/summary.csv", Vec::new()),
        Kind::S3Put => (
            "PUT",
            "s3",
            "/bucket/uploads/object-0001.bin",
            (0..1024u32).map(|i| (i % 251) as u8).collect(),
        ),
    };
    let mut settings = SigningSettings::default();
    match kind {
        Kind::Get => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
        Kind::GetNoShaHeader => {}
        Kind::PresignedApi | Kind::PresignedS3 => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(3600));
        }
        Kind::S3Put => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
    }
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let identity = Credentials::new(
        access_key_id,
        secret,
        token.map(str::to_owned),
        None,
        "bench",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = format!("https://{HOST}{path_query}");
    let mut headers: Vec<(&str, &str)> = vec![
        ("host", HOST),
        ("user-agent", "aws-sdk-rust/1.0 os/linux lang/rust/1.95.0"),
        ("accept", "application/json"),
    ];
    if matches!(kind, Kind::S3Put) {
        headers.push(("content-type", "application/octet-stream"));
    }
    let signable_body = if matches!(kind, Kind::PresignedS3) {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(&body)
    };
    let signable =
        SignableRequest::new(method, uri.clone(), headers.iter().copied(), signable_body).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder()
        .method(method)
        .uri(&uri)
        .body(())
        .unwrap();
    for (k, v) in &headers {
        req.headers_mut().append(
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    if matches!(kind, Kind::S3Put) {
        req.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    instructions.apply_to_request_http1x(&mut req);
    let (parts, ()) = req.into_parts();
    // Keep only path and query: the proxy sees an origin-form request target.
    let uri: http::Uri = parts
        .uri
        .path_and_query()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    Signed {
        method: parts.method,
        uri,
        headers: parts.headers,
        body: Bytes::from(body),
    }
}

// ---------------------------------------------------------------------------------------------
// Tollgate.

/// The `sigv4` module alone, as `authn` uses it: parse and pre-key checks, scope check, signing
/// key from the cache (or derived), string to sign into a reused buffer, constant-time compare,
/// then the body check the payload mode requires.
fn tollgate_verify(
    req: &HttpRequest<'_>,
    body: &[u8],
    now: i64,
    secret: &str,
    cache: Option<&SigningKeyCache>,
    sts: &mut Vec<u8>,
) -> bool {
    let Ok(parsed) = sigv4::parse(req, now, SKEW) else {
        return false;
    };
    if parsed
        .check_scope(|r| r == REGION, |s| matches!(s, "execute-api" | "s3"))
        .is_err()
    {
        return false;
    }
    let mut body_hex = [0u8; 64];
    let (payload_hash, declared) = match parsed.payload_mode() {
        PayloadMode::Declared(h) => (h, Some(h)),
        PayloadMode::Unsigned => (sigv4::UNSIGNED_PAYLOAD, None),
        PayloadMode::BodyHash => {
            if body.is_empty() {
                (sigv4::EMPTY_SHA256, None)
            } else {
                hex::encode_to_slice(Sha256::digest(body), &mut body_hex).unwrap();
                (std::str::from_utf8(&body_hex).unwrap(), None)
            }
        }
        PayloadMode::Streaming(_) | PayloadMode::Invalid(_) => return false,
    };
    let scope = parsed.scope();
    let derive = || derive_signing_key(secret, scope.date, scope.region, scope.service);
    let ok = match cache {
        Some(cache) => {
            let (key, _hit) = cache.get_or_derive(parsed.signing_key_id(), 1, derive);
            parsed.string_to_sign(sts, req, payload_hash).is_ok()
                && sigv4::verify(&key, sts, &parsed.signature)
        }
        None => {
            let key = derive();
            parsed.string_to_sign(sts, req, payload_hash).is_ok()
                && sigv4::verify(&key, sts, &parsed.signature)
        }
    };
    ok && declared.is_none_or(|h| body_matches(body, h))
}

/// The body check for a declared hash: the empty body's hash is a constant, others are hashed.
fn body_matches(body: &[u8], declared_hex: &str) -> bool {
    if body.is_empty() {
        return declared_hex == sigv4::EMPTY_SHA256;
    }
    let mut expected = [0u8; 32];
    hex::decode_to_slice(declared_hex, &mut expected).is_ok()
        && Sha256::digest(body)[..] == expected[..]
}

/// What the proxy runs: `authn::begin` (parse, scope, key lookup, payload mode) then `finish`
/// (cache, string to sign, compare), then the body check `finish` asks for.
fn tollgate_authn(
    req: &HttpRequest<'_>,
    body: &[u8],
    now: i64,
    snapshot: &Snapshot,
    cache: &SigningKeyCache,
    scratch: &mut Vec<u8>,
) -> bool {
    static SESSIONS: std::sync::LazyLock<tollgate::sts::session::SessionCache> =
        std::sync::LazyLock::new(Default::default);
    let Ok(pending) = authn::begin(req, snapshot, &SESSIONS, now) else {
        return false;
    };
    let mut body_hex = [0u8; 64];
    let hash = match pending.body_need() {
        authn::BodyNeed::Nothing => None,
        authn::BodyNeed::Sha256 if body.is_empty() => Some(sigv4::EMPTY_SHA256),
        authn::BodyNeed::Sha256 => {
            hex::encode_to_slice(Sha256::digest(body), &mut body_hex).unwrap();
            Some(std::str::from_utf8(&body_hex).unwrap())
        }
    };
    let Ok(authd) = pending.finish(req, hash, cache, snapshot.generation, false, scratch) else {
        return false;
    };
    match authd.body_check {
        BodyCheck::None => true,
        BodyCheck::Sha256(expected) if body.is_empty() => expected == EMPTY_SHA256_BYTES,
        BodyCheck::Sha256(expected) => Sha256::digest(body)[..] == expected[..],
        BodyCheck::Chunked(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// scratchstack-aws-signature.

mod scratchstack {
    use super::*;
    use scratchstack_aws_signature::{
        sigv4_validate_request, GetSigningKeyRequest, GetSigningKeyResponse, KSecretKey,
        SignatureOptions, NO_ADDITIONAL_SIGNED_HEADERS,
    };
    use tower::{service_fn, BoxError};

    /// Polls a future that never waits (every future here is ready on first poll).
    pub fn block_on<F: Future>(fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    pub struct Verifier {
        secret: KSecretKey,
        /// The memoized response (signing key + empty principal), built on first use.
        cached: Option<GetSigningKeyResponse>,
        pub use_cache: bool,
    }

    impl Verifier {
        pub fn new(secret: &str, use_cache: bool) -> Self {
            Self {
                secret: KSecretKey::from_str(secret).unwrap(),
                cached: None,
                use_cache,
            }
        }

        pub fn verify(
            &mut self,
            req: http::Request<Bytes>,
            service: &str,
            now: SystemTime,
        ) -> bool {
            self.try_verify(req, service, now).is_ok()
        }

        pub fn try_verify(
            &mut self,
            req: http::Request<Bytes>,
            service: &str,
            now: SystemTime,
        ) -> Result<(), String> {
            let secret = self.secret;
            let use_cache = self.use_cache;
            let cached = &mut self.cached;
            let mut get_key = service_fn(move |r: GetSigningKeyRequest| {
                let resp = match (use_cache, cached.as_ref()) {
                    (true, Some(resp)) => resp.clone(),
                    _ => {
                        let key = secret.to_ksigning(r.request_date(), r.region(), r.service());
                        let resp = GetSigningKeyResponse::builder()
                            .signing_key(key)
                            .build()
                            .unwrap();
                        if use_cache {
                            *cached = Some(resp.clone());
                        }
                        resp
                    }
                };
                std::future::ready(Ok::<_, BoxError>(resp))
            });
            let options = if service == "s3" {
                SignatureOptions::S3
            } else {
                SignatureOptions::default()
            };
            block_on(sigv4_validate_request(
                req,
                REGION,
                service,
                &mut get_key,
                now.into(),
                &NO_ADDITIONAL_SIGNED_HEADERS,
                options,
            ))
            .map(|_| ())
            .map_err(|e| e.to_string())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rustack-auth.

mod rustack {
    use super::*;
    use rustack_auth::{hash_payload, StaticCredentialProvider};

    pub fn provider(secret: &str) -> StaticCredentialProvider {
        StaticCredentialProvider::new([(AKID.to_owned(), secret.to_owned())])
    }

    pub fn verify(
        parts: &http::request::Parts,
        body: &[u8],
        provider: &StaticCredentialProvider,
        s3: bool,
    ) -> bool {
        // The caller supplies the body hash; for an empty body it is a constant.
        let hash;
        let hash_ref = if body.is_empty() {
            sigv4::EMPTY_SHA256
        } else {
            hash = hash_payload(body);
            &hash
        };
        if s3 {
            rustack_auth::sigv4::verify_s3_sigv4(parts, hash_ref, provider).is_ok()
        } else {
            rustack_auth::verify_sigv4(parts, hash_ref, provider).is_ok()
        }
    }

    pub fn verify_presigned(
        parts: &http::request::Parts,
        provider: &StaticCredentialProvider,
    ) -> bool {
        rustack_auth::verify_presigned(parts, provider).is_ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Benches.

struct Fixture {
    secret: String,
    now: i64,
    time: SystemTime,
    snapshot: Snapshot,
}

fn fixture() -> Fixture {
    assert_eq!(hex::encode(EMPTY_SHA256_BYTES), sigv4::EMPTY_SHA256);
    let snapshot = tollgate::config::load_demo(1).expect("demo config loads");
    let secret = tollgate::config::demo_credentials()
        .into_iter()
        .find(|c| c.access_key_id == AKID)
        .expect("demo admin key")
        .secret
        .expose()
        .to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let time = UNIX_EPOCH + Duration::from_secs(now);
    Fixture {
        secret,
        now: i64::try_from(now).unwrap(),
        time,
        snapshot,
    }
}

/// One measured routine: plain, or consuming a fresh input built outside the timed section.
enum Routine<'a> {
    Plain(Box<dyn FnMut() + 'a>),
    Batched(
        Box<dyn FnMut() -> http::Request<Bytes> + 'a>,
        Box<dyn FnMut(http::Request<Bytes>) + 'a>,
    ),
}

/// A verifier on a request: `group` is the request, `name` the verifier.
struct Case<'a> {
    group: &'static str,
    name: &'static str,
    routine: Routine<'a>,
}

fn tollgate_case<'a>(group: &'static str, f: &'a Fixture, s: &'a Signed, cached: bool) -> Case<'a> {
    let req = s.tollgate();
    let cache = SigningKeyCache::new(1024);
    let mut sts = Vec::with_capacity(512);
    assert!(
        tollgate_verify(
            &req,
            &s.body,
            f.now,
            &f.secret,
            cached.then_some(&cache),
            &mut sts
        ),
        "tollgate refused the {group} request"
    );
    Case {
        group,
        name: "tollgate",
        routine: Routine::Plain(Box::new(move || {
            assert!(tollgate_verify(
                black_box(&req),
                black_box(&s.body),
                f.now,
                &f.secret,
                cached.then_some(&cache),
                &mut sts
            ));
        })),
    }
}

fn tollgate_authn_case<'a>(group: &'static str, f: &'a Fixture, s: &'a Signed) -> Case<'a> {
    tollgate_authn_named(group, "tollgate_authn", f, s)
}

fn tollgate_authn_named<'a>(
    group: &'static str,
    name: &'static str,
    f: &'a Fixture,
    s: &'a Signed,
) -> Case<'a> {
    let req = s.tollgate();
    let cache = SigningKeyCache::new(1024);
    let mut scratch = Vec::with_capacity(512);
    assert!(
        tollgate_authn(&req, &s.body, f.now, &f.snapshot, &cache, &mut scratch),
        "authn refused the {group} request"
    );
    Case {
        group,
        name,
        routine: Routine::Plain(Box::new(move || {
            assert!(tollgate_authn(
                black_box(&req),
                black_box(&s.body),
                f.now,
                &f.snapshot,
                &cache,
                &mut scratch
            ));
        })),
    }
}

fn scratchstack_case<'a>(
    group: &'static str,
    f: &'a Fixture,
    s: &'a Signed,
    service: &'static str,
    cached: bool,
) -> Case<'a> {
    let mut v = scratchstack::Verifier::new(&f.secret, cached);
    if let Err(e) = v.try_verify(s.http_request(), service, f.time) {
        panic!("scratchstack refused the {group} request: {e}");
    }
    Case {
        group,
        name: "scratchstack",
        routine: Routine::Batched(
            Box::new(|| s.http_request()),
            Box::new(move |req| assert!(v.verify(req, service, f.time))),
        ),
    }
}

fn rustack_case<'a>(group: &'static str, f: &'a Fixture, s: &'a Signed, s3: bool) -> Case<'a> {
    let parts = s.parts();
    let provider = rustack::provider(&f.secret);
    assert!(
        rustack::verify(&parts, &s.body, &provider, s3),
        "rustack refused the {group} request"
    );
    Case {
        group,
        name: "rustack",
        routine: Routine::Plain(Box::new(move || {
            assert!(rustack::verify(
                black_box(&parts),
                black_box(&s.body),
                &provider,
                s3
            ))
        })),
    }
}

fn rustack_presigned_case<'a>(group: &'static str, f: &'a Fixture, s: &'a Signed) -> Case<'a> {
    let parts = s.parts();
    let provider = rustack::provider(&f.secret);
    assert!(
        rustack::verify_presigned(&parts, &provider),
        "rustack refused the {group} request"
    );
    Case {
        group,
        name: "rustack",
        routine: Routine::Plain(Box::new(move || {
            assert!(rustack::verify_presigned(black_box(&parts), &provider))
        })),
    }
}

/// The signed requests, made once.
struct Requests {
    get: Signed,
    get_plain: Signed,
    presigned_api: Signed,
    presigned_s3: Signed,
    put: Signed,
    get_session: Signed,
}

fn requests(f: &Fixture) -> Requests {
    Requests {
        get: sign_request(Kind::Get, &f.secret, f.time),
        get_plain: sign_request(Kind::GetNoShaHeader, &f.secret, f.time),
        presigned_api: sign_request(Kind::PresignedApi, &f.secret, f.time),
        presigned_s3: sign_request(Kind::PresignedS3, &f.secret, f.time),
        put: sign_request(Kind::S3Put, &f.secret, f.time),
        get_session: {
            // Temporary credentials of the demo's deployer role, sealed with the demo key ring.
            let sts = f.snapshot.sts.as_ref().expect("the demo has a key ring");
            let now = f.now;
            let claims = tollgate::sts::token::SessionClaims {
                access_key_id: String::new(),
                issued_at: now,
                expires_at: now + 3600,
                account: "123456789012".into(),
                kind: tollgate::sts::token::SessionKind::AssumedRole,
                arn: "arn:aws:sts::123456789012:assumed-role/deployer/bench".into(),
                // As `AssumeRole` fills them in (`sts::ops`): the role's unique id is kept and
                // the user id is derived from it.
                user_id: "AROA3XFRBF535PLBIFPI4:bench".into(),
                role_arn: Some("arn:aws:iam::123456789012:role/deployer".into()),
                role_id: Some("AROA3XFRBF535PLBIFPI4".into()),
                session_name: Some("bench".into()),
                source_identity: None,
                tags: vec![("team".into(), "blue".into())],
                transitive_tag_keys: vec![],
                session_policy: None,
                policy_arns: vec![],
                chained: false,
                mfa_authenticated: false,
                web_identity: None,
                parent_user_arn: None,
            };
            let issued =
                tollgate::sts::token::seal(&sts.ring, &claims, &mut rand::thread_rng()).unwrap();
            sign_request_as(
                Kind::Get,
                &issued.access_key_id,
                issued.secret_access_key.expose(),
                Some(issued.session_token.expose()),
                f.time,
            )
        },
    }
}

fn cases<'a>(f: &'a Fixture, r: &'a Requests) -> Vec<Case<'a>> {
    vec![
        tollgate_case("get", f, &r.get, true),
        tollgate_authn_case("get", f, &r.get),
        // The same request signed with temporary credentials (session token cache warm).
        tollgate_authn_named("get", "tollgate_authn_session", f, &r.get_session),
        scratchstack_case("get", f, &r.get, "execute-api", true),
        rustack_case("get", f, &r.get, false),
        tollgate_case("get_no_sha_header", f, &r.get_plain, true),
        tollgate_authn_case("get_no_sha_header", f, &r.get_plain),
        scratchstack_case("get_no_sha_header", f, &r.get_plain, "execute-api", true),
        rustack_case("get_no_sha_header", f, &r.get_plain, false),
        tollgate_case("get_uncached", f, &r.get, false),
        scratchstack_case("get_uncached", f, &r.get, "execute-api", false),
        rustack_case("get_uncached", f, &r.get, false),
        // No peer: scratchstack 0.11 does not percent-decode `X-Amz-Credential` (the SDKs send
        // `%2F` for `/`) and refuses the URL; rustack's presigned verifier is S3-only.
        tollgate_case("presigned_api", f, &r.presigned_api, true),
        tollgate_authn_case("presigned_api", f, &r.presigned_api),
        tollgate_case("presigned_s3", f, &r.presigned_s3, true),
        tollgate_authn_case("presigned_s3", f, &r.presigned_s3),
        rustack_presigned_case("presigned_s3", f, &r.presigned_s3),
        tollgate_case("s3_put_1k", f, &r.put, true),
        tollgate_authn_case("s3_put_1k", f, &r.put),
        scratchstack_case("s3_put_1k", f, &r.put, "s3", true),
        rustack_case("s3_put_1k", f, &r.put, true),
    ]
}

fn run_criterion(c: &mut Criterion, cases: &mut [Case<'_>]) {
    let mut i = 0;
    while i < cases.len() {
        let group = cases[i].group;
        let mut g = c.benchmark_group(group);
        while i < cases.len() && cases[i].group == group {
            let case = &mut cases[i];
            match &mut case.routine {
                Routine::Plain(f) => {
                    g.bench_function(case.name, |b| b.iter(&mut *f));
                }
                Routine::Batched(setup, routine) => {
                    g.bench_function(case.name, |b| {
                        b.iter_batched(&mut *setup, &mut *routine, BatchSize::SmallInput)
                    });
                }
            }
            i += 1;
        }
        g.finish();
    }
}

/// ns per call of one batch of `n` calls (inputs of batched routines built beforehand).
fn time_batch(routine: &mut Routine<'_>, n: u32) -> f64 {
    match routine {
        Routine::Plain(f) => {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        }
        Routine::Batched(setup, routine) => {
            let inputs: Vec<_> = (0..n).map(|_| setup()).collect();
            let start = Instant::now();
            for input in inputs {
                routine(input);
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        }
    }
}

/// Interleaved rounds: every verifier is timed once per round (~25 ms), for `ROUNDS` rounds, and
/// the minimum per verifier is kept. Background noise on a shared machine hits rounds, not
/// verifiers, so the minimums give stable same-run ratios (the method of the reference's §1).
/// `SIGV4_ROUNDS` and `SIGV4_ROUND_MS` change the number and length of rounds (many short rounds
/// find a quiet moment for each verifier on a noisy machine).
fn summary(cases: &mut [Case<'_>]) {
    let env = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    let rounds = env("SIGV4_ROUNDS", 9) as usize;
    let round_ns = f64::from(env("SIGV4_ROUND_MS", 25)) * 1e6;
    let calls: Vec<u32> = cases
        .iter_mut()
        .map(|c| {
            let ns = time_batch(&mut c.routine, 200).max(1.0);
            ((round_ns / ns) as u32).clamp(100, 200_000)
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (i, case) in cases.iter_mut().enumerate() {
            samples[i].push(time_batch(&mut case.routine, calls[i]));
        }
    }
    let stats: Vec<(f64, f64)> = samples
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            (s[0], s[s.len() / 2])
        })
        .collect();
    println!();
    println!(
        "Summary: {rounds} interleaved rounds of ~{} ms per verifier; min and median ns per verification.",
        round_ns / 1e6
    );
    println!("`vs faster peer` = the faster peer's min ÷ this min.");
    println!();
    println!("| request | verifier | min ns | median ns | vs faster peer |");
    println!("|---|---|---|---|---|");
    for (i, case) in cases.iter().enumerate() {
        let peer_min = cases
            .iter()
            .zip(&stats)
            .filter(|(c, _)| c.group == case.group && !c.name.starts_with("tollgate"))
            .map(|(_, s)| s.0)
            .reduce(f64::min);
        let ratio = match (case.name.starts_with("tollgate"), peer_min) {
            (true, Some(p)) => format!("{:.2}×", p / stats[i].0),
            _ => String::new(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {} |",
            case.group, case.name, stats[i].0, stats[i].1, ratio
        );
    }
    // Issue 5's goal: temporary credentials cost at most 1.2× long-term keys (warm caches).
    let min_of = |name: &str| {
        cases
            .iter()
            .zip(&stats)
            .find(|(c, _)| c.group == "get" && c.name == name)
            .map(|(_, s)| s.0)
    };
    if let (Some(session), Some(key)) = (min_of("tollgate_authn_session"), min_of("tollgate_authn"))
    {
        println!();
        println!(
            "get: temporary credentials ÷ long-term key (`tollgate_authn_session` ÷ `tollgate_authn`, minimums): {:.3}×",
            session / key
        );
    }
}

fn main() {
    let f = fixture();
    let r = requests(&f);
    let mut cases = cases(&f, &r);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .without_plots()
        .configure_from_args();
    // `SIGV4_SUMMARY_ONLY=1 cargo bench --bench sigv4`: the summary alone (~15 s).
    let summary_only = std::env::var_os("SIGV4_SUMMARY_ONLY").is_some();
    if !summary_only {
        run_criterion(&mut c, &mut cases);
        c.final_summary();
    }
    if summary_only || wants_summary() {
        summary(&mut cases);
    }
}
