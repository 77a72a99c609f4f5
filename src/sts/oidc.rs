//! OpenID Connect web identity verification for `AssumeRoleWithWebIdentity`.
//!
//! An [`OidcProvider`] is the equivalent of an IAM OIDC identity provider: an issuer URL, the
//! client IDs (audiences) it may issue tokens for and where its signing keys (a JWKS) come from.
//! A [`JwksCache`] holds the provider's current [`Jwks`] and reloads it; a
//! [`WebIdentityVerifier`] ties the providers to their caches.
//!
//! Verification is split in two so the STS operation layer can stay synchronous:
//! [`verify_web_identity`] checks a token against the keys cached *now* and never does I/O;
//! [`WebIdentityVerifier::verify`] wraps it and, when the token names a key the cache does not
//! have, performs one rate-limited reload of the key set before giving up.
//!
//! # Checks, in order
//! 1. The token is 4..=20000 characters (the `WebIdentityToken` parameter constraint).
//! 2. It is a compact JWS of three base64url parts; the header is a JSON object with an `alg`
//!    of RS256, RS384, RS512, ES256 or ES384. `none`, every HMAC algorithm (`HS*`), RSASSA-PSS,
//!    EdDSA and ES512 are refused: AWS accepts only RSA and ECDSA signatures, and the crypto
//!    backend (`jsonwebtoken` with RustCrypto) has no P-521 support, so ES512 cannot be
//!    verified. A header with `crit` is refused; `jku`, `x5u` and `jwk` headers are ignored (keys
//!    come only from the configured JWKS).
//! 3. `iss` (read before the signature is checked, only to choose the provider) must equal a
//!    provider's issuer URL exactly, or that URL without `https://` (Google and Cognito have
//!    issued both forms).
//! 4. The signature verifies with a key of that provider's JWKS: the key whose `kid` equals the
//!    header's `kid`, or, for a token without `kid`, any key of the algorithm's type and curve.
//!    A key whose type, curve or `alg` does not fit the token's algorithm is never used.
//! 5. `exp` is required and `now < exp`; `nbf`, when present, `now >= nbf`. No leeway is added:
//!    AWS reports a token as expired from the second of its `exp`. `iat`, when present, may be at
//!    most five minutes in the future. All three must be JSON integers (AWS: "Timestamps in the
//!    token must be formatted as either an integer or a long integer").
//! 6. `aud` (a string or an array of strings) contains one of the provider's client IDs; `sub` is
//!    a non-empty string; `amr` and `azp`, when present, have the right type.
//! 7. The session-tags claim `https://aws.amazon.com/tags` is well formed (see [`WebIdentity`]).
//!
//! Error messages never contain the token; values taken from it (issuer, `kid`, tag keys) are
//! shortened and stripped of control characters.
//!
//! # Key refresh
//! Each cache reloads its JWKS every [`OidcProvider::refresh`] (default one hour) through
//! [`JwksCache::spawn_periodic_refresh`]. A token with an unknown `kid` may force one reload, at
//! most once per [`FORCED_REFRESH_MIN_INTERVAL`] (five minutes) per provider, so a stream of
//! forged `kid`s cannot turn the sidecar into a load generator against the IdP (MinIO re-fetches
//! on every failed parse). A failed reload keeps the last good key set; a provider that never had
//! keys answers `IDPCommunicationError`.
//!
//! JWKS URLs may be `https://` (rustls with the Mozilla root set from `webpki-roots`) or plain
//! `http://` (for a local or test IdP only: keys fetched in clear text can be replaced by anyone
//! on the path). Redirects are not followed, a fetch is limited to [`FETCH_TIMEOUT`] and
//! [`MAX_JWKS_BYTES`]. OIDC discovery (`/.well-known/openid-configuration`) is not performed: the
//! JWKS location is configured directly.

use std::error::Error as StdError;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Shortest accepted `WebIdentityToken`, in characters.
pub const MIN_TOKEN_LEN: usize = 4;
/// Longest accepted `WebIdentityToken`, in characters.
pub const MAX_TOKEN_LEN: usize = 20_000;
/// Most client IDs (audiences) one provider may have, as in IAM.
pub const MAX_AUDIENCES: usize = 100;
/// Longest client ID and longest issuer URL, as in IAM.
pub const MAX_URL_OR_CLIENT_ID_LEN: usize = 255;
/// Default interval between scheduled JWKS reloads.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
/// Shortest interval between scheduled JWKS reloads that a provider may configure.
pub const MIN_REFRESH: Duration = Duration::from_secs(60);
/// Minimum time between two reloads forced by tokens with an unknown `kid`.
pub const FORCED_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(300);
/// Minimum time between two forced reloads while a provider has never had keys.
pub const NO_KEYS_RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// Time limit for one JWKS fetch (connect, TLS, headers and body).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWKS document accepted, from a file or over HTTP.
pub const MAX_JWKS_BYTES: usize = 1 << 20;
/// Most keys a JWKS document may list.
pub const MAX_JWKS_KEYS: usize = 100;
/// How far in the future `iat` may be, in seconds.
pub const MAX_IAT_SKEW_SECS: i64 = 300;
/// The claim that carries session tags.
pub const SESSION_TAGS_CLAIM: &str = "https://aws.amazon.com/tags";
/// Most session tags a token may carry.
pub const MAX_SESSION_TAGS: usize = 50;
/// The issuer of Google ID tokens, whose `aud`/`oaud` condition keys differ.
pub const GOOGLE_PROVIDER: &str = "accounts.google.com";
/// The issuer of Amazon Cognito identity pool tokens.
pub const COGNITO_PROVIDER: &str = "cognito-identity.amazonaws.com";

/// Providers that AWS names by their host rather than by an IAM provider ARN in the
/// `Federated` principal and in `aws:FederatedProvider`.
const WELL_KNOWN_PROVIDERS: [&str; 4] = [
    COGNITO_PROVIDER,
    GOOGLE_PROVIDER,
    "www.amazon.com",
    "graph.facebook.com",
];

/// Longest piece of token-derived text copied into an error message.
const MAX_ECHO_CHARS: usize = 128;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Where a provider's JSON Web Key Set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document on disk, re-read at every refresh.
    File(PathBuf),
    /// A JWKS URL (`https://`, or `http://` for local test IdPs).
    Url(String),
    /// A JWKS document given inline in the configuration.
    Inline(String),
}

/// An OIDC identity provider trusted for `AssumeRoleWithWebIdentity`: the counterpart of an IAM
/// OIDC provider resource.
///
/// Built with [`OidcProvider::new`], which enforces IAM's rules: the issuer begins with
/// `https://`, there are 1 to 100 client IDs of 1 to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcProvider {
    issuer_url: String,
    provider: String,
    audiences: Vec<String>,
    jwks: JwksSource,
    refresh: Duration,
}

impl OidcProvider {
    /// Checks and builds a provider with the default refresh interval of one hour.
    pub fn new(
        issuer_url: impl Into<String>,
        audiences: Vec<String>,
        jwks: JwksSource,
    ) -> Result<Self, OidcConfigError> {
        let issuer_url = issuer_url.into();
        let provider = provider_name(&issuer_url)?;
        if audiences.is_empty() {
            return Err(OidcConfigError::NoAudiences(provider));
        }
        if audiences.len() > MAX_AUDIENCES {
            return Err(OidcConfigError::TooManyAudiences {
                provider,
                count: audiences.len(),
            });
        }
        if let Some(bad) = audiences.iter().find(|a| {
            a.is_empty()
                || a.chars().count() > MAX_URL_OR_CLIENT_ID_LEN
                || a.chars().any(char::is_control)
        }) {
            return Err(OidcConfigError::InvalidAudience(echo(bad)));
        }
        check_jwks_source(&jwks)?;
        Ok(Self {
            issuer_url,
            provider,
            audiences,
            jwks,
            refresh: DEFAULT_REFRESH,
        })
    }

    /// Sets the interval between scheduled JWKS reloads (at least [`MIN_REFRESH`]).
    pub fn with_refresh(mut self, refresh: Duration) -> Result<Self, OidcConfigError> {
        if refresh < MIN_REFRESH {
            return Err(OidcConfigError::RefreshTooShort);
        }
        self.refresh = refresh;
        Ok(self)
    }

    /// The issuer URL, exactly as tokens must carry it in `iss`.
    pub fn issuer_url(&self) -> &str {
        &self.issuer_url
    }

    /// The IAM provider name: the issuer without `https://` (and without a trailing `/`). Trust
    /// policies and condition keys use it: `<provider>:aud`, `<provider>:sub`.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The client IDs tokens may be issued for.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Where the signing keys come from.
    pub fn jwks(&self) -> &JwksSource {
        &self.jwks
    }

    /// The interval between scheduled JWKS reloads.
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// The IAM ARN of this provider: `arn:aws:iam::<account>:oidc-provider/<provider>`.
    pub fn arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:oidc-provider/{}", self.provider)
    }

    /// How AWS names this provider in a trust policy's `Federated` principal and in
    /// `aws:FederatedProvider`: the bare name for Cognito, Google, Login with Amazon and
    /// Facebook, the provider ARN for every other OIDC provider.
    pub fn federated_principal(&self, account: &str) -> String {
        federated_principal(&self.provider, account)
    }

    /// Whether a token's `iss` names this provider: the issuer URL exactly, or the issuer
    /// without `https://`.
    pub fn matches_issuer(&self, iss: &str) -> bool {
        iss == self.issuer_url
            || self
                .issuer_url
                .strip_prefix("https://")
                .is_some_and(|bare| bare == iss)
    }
}

/// [`OidcProvider::federated_principal`] for a provider name and account.
pub fn federated_principal(provider: &str, account: &str) -> String {
    if WELL_KNOWN_PROVIDERS.contains(&provider) {
        provider.to_owned()
    } else {
        format!("arn:aws:iam::{account}:oidc-provider/{provider}")
    }
}

fn provider_name(issuer_url: &str) -> Result<String, OidcConfigError> {
    let Some(rest) = issuer_url.strip_prefix("https://") else {
        return Err(OidcConfigError::IssuerNotHttps(echo(issuer_url)));
    };
    let invalid = |reason: &'static str| OidcConfigError::IssuerInvalid {
        url: echo(issuer_url),
        reason,
    };
    if issuer_url.chars().count() > MAX_URL_OR_CLIENT_ID_LEN {
        return Err(invalid("it is longer than 255 characters"));
    }
    if rest
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '@'))
    {
        return Err(invalid(
            "it must not contain whitespace, a query, a fragment or user information",
        ));
    }
    let name = rest.strip_suffix('/').unwrap_or(rest);
    let host = name.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid("it has no host"));
    }
    Ok(name.to_owned())
}

fn check_jwks_source(source: &JwksSource) -> Result<(), OidcConfigError> {
    match source {
        JwksSource::File(path) => {
            if path.as_os_str().is_empty() {
                return Err(OidcConfigError::EmptyJwksPath);
            }
        }
        JwksSource::Url(url) => {
            let uri: http::Uri = url
                .parse()
                .map_err(|_| OidcConfigError::InvalidJwksUrl(echo(url)))?;
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            if !scheme_ok || uri.host().is_none_or(str::is_empty) {
                return Err(OidcConfigError::InvalidJwksUrl(echo(url)));
            }
            if uri.scheme_str() == Some("http") {
                tracing::warn!(
                    url = %url,
                    "jwks url uses plain http: keys can be replaced in transit"
                );
            }
        }
        JwksSource::Inline(doc) => {
            Jwks::from_json(doc.as_bytes()).map_err(OidcConfigError::InvalidInlineJwks)?;
        }
    }
    Ok(())
}

/// A provider configuration that IAM would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcConfigError {
    /// The issuer URL does not begin with `https://`.
    #[error("issuer url `{0}` must begin with https://")]
    IssuerNotHttps(String),
    /// The issuer URL is otherwise malformed.
    #[error("issuer url `{url}` is invalid: {reason}")]
    IssuerInvalid {
        /// The issuer URL as configured.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The provider lists no client ID.
    #[error("provider `{0}` needs at least one audience (client id)")]
    NoAudiences(String),
    /// The provider lists more than [`MAX_AUDIENCES`] client IDs.
    #[error("provider `{provider}` has {count} audiences; at most 100 are allowed")]
    TooManyAudiences {
        /// The provider name.
        provider: String,
        /// How many audiences were given.
        count: usize,
    },
    /// A client ID is empty, too long or has control characters.
    #[error("audience `{0}` must be 1 to 255 characters without control characters")]
    InvalidAudience(String),
    /// The JWKS URL is not an `http://` or `https://` URL with a host.
    #[error("jwks url `{0}` must be an http:// or https:// url with a host")]
    InvalidJwksUrl(String),
    /// The JWKS file path is empty.
    #[error("jwks file path is empty")]
    EmptyJwksPath,
    /// The inline JWKS document cannot be used.
    #[error("inline jwks is invalid: {0}")]
    InvalidInlineJwks(JwksError),
    /// The refresh interval is shorter than [`MIN_REFRESH`].
    #[error("jwks refresh interval must be at least 60 seconds")]
    RefreshTooShort,
    /// Two providers have the same name.
    #[error("two oidc providers are named `{0}`")]
    DuplicateProvider(String),
}

// ---------------------------------------------------------------------------------------------
// Key sets
// ---------------------------------------------------------------------------------------------

/// The type of a usable verification key, which fixes the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    P256,
    P384,
}

impl KeyType {
    fn accepts(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (
                KeyType::Rsa,
                Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
            ) | (KeyType::P256, Algorithm::ES256)
                | (KeyType::P384, Algorithm::ES384)
        )
    }

    fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::P256 => "EC P-256",
            KeyType::P384 => "EC P-384",
        }
    }
}

#[derive(Clone)]
struct VerificationKey {
    kid: Option<String>,
    key_type: KeyType,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// A parsed JSON Web Key Set holding the keys that can verify web identity tokens: RSA keys of
/// 2048 to 4096 bits and EC keys on P-256 or P-384.
///
/// Other keys (`oct`, `OKP`, P-521, encryption keys with `use` other than `sig`, keys whose
/// `alg` is not RS256/384/512 or ES256/384) are skipped, not fatal: IdPs publish mixed sets.
#[derive(Clone)]
pub struct Jwks {
    keys: Vec<VerificationKey>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .map(|k| (k.kid.as_deref().unwrap_or("-"), k.key_type.name())),
            )
            .finish()
    }
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`), keeping the usable signing keys.
    pub fn from_json(doc: &[u8]) -> Result<Self, JwksError> {
        if doc.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let value: Value =
            serde_json::from_slice(doc).map_err(|e| JwksError::Json(e.to_string()))?;
        let entries = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NoKeysArray)?;
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let mut keys = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            match parse_jwk(entry) {
                Ok(key) => keys.push(key),
                Err(reason) => tracing::debug!(index, reason, "skipping jwk"),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys);
        }
        Ok(Self { keys })
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key (never true for a set built by [`Jwks::from_json`]).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `kid`s of the usable keys, in document order (keys without `kid` are left out).
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// Checks a JWS signature over `signing_input` with the key chosen by `kid` (or, without
    /// `kid`, with every key that fits `alg`).
    fn verify(
        &self,
        provider: &str,
        alg: Algorithm,
        kid: Option<&str>,
        signing_input: &[u8],
        signature: &str,
    ) -> Result<(), OidcError> {
        let mut kid_found = false;
        let mut tried = false;
        for key in &self.keys {
            if let Some(kid) = kid {
                if key.kid.as_deref() != Some(kid) {
                    continue;
                }
                kid_found = true;
            }
            if !key.key_type.accepts(alg) || key.alg.is_some_and(|a| a != alg) {
                continue;
            }
            tried = true;
            if matches!(
                jsonwebtoken::crypto::verify(signature, signing_input, &key.key, alg),
                Ok(true)
            ) {
                return Ok(());
            }
        }
        if tried {
            Err(OidcError::BadSignature)
        } else if kid_found {
            Err(OidcError::KeyAlgorithmMismatch {
                provider: provider.to_owned(),
                kid: kid.map(echo).unwrap_or_default(),
                alg: alg_name(alg).to_owned(),
            })
        } else {
            Err(OidcError::UnknownSigningKey {
                provider: provider.to_owned(),
                kid: kid.map(echo),
            })
        }
    }
}

fn parse_jwk(value: &Value) -> Result<VerificationKey, &'static str> {
    let obj = value.as_object().ok_or("not a json object")?;
    let kty = opt_str(obj, "kty")?.ok_or("no kty")?;
    let kid = opt_str(obj, "kid")?.map(str::to_owned);
    if opt_str(obj, "use")?.is_some_and(|u| u != "sig") {
        return Err("use is not sig");
    }
    let alg = match opt_str(obj, "alg")? {
        None => None,
        Some(name) => Some(supported_algorithm(name).ok_or("unsupported alg")?),
    };
    let (key_type, key) = match kty {
        "RSA" => {
            let n = b64_field(obj, "n")?;
            let e = b64_field(obj, "e")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            let bits = significant.saturating_mul(8);
            if bits < 2048 {
                return Err("rsa modulus shorter than 2048 bits");
            }
            if bits > 4096 {
                return Err("rsa modulus longer than 4096 bits");
            }
            if e.iter().all(|b| *b == 0) {
                return Err("rsa exponent is zero");
            }
            (KeyType::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            let (key_type, size) = match opt_str(obj, "crv")? {
                Some("P-256") => (KeyType::P256, 32),
                Some("P-384") => (KeyType::P384, 48),
                _ => return Err("unsupported curve"),
            };
            let x = b64_field(obj, "x")?;
            let y = b64_field(obj, "y")?;
            if x.len() != size || y.len() != size {
                return Err("ec coordinate has the wrong length");
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            // The RustCrypto verifier reads this as a SEC1 point (what `from_ec_components`
            // builds too); an off-curve point fails at verification.
            (key_type, DecodingKey::from_ec_der(&point))
        }
        _ => return Err("unsupported kty"),
    };
    if alg.is_some_and(|a| !key_type.accepts(a)) {
        return Err("alg does not fit the key type");
    }
    Ok(VerificationKey {
        kid,
        key_type,
        alg,
        key,
    })
}

fn opt_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, &'static str> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("a member is not a string"),
    }
}

fn b64_field(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, &'static str> {
    let text = opt_str(obj, name)?.ok_or("a key parameter is missing")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| "a key parameter is not base64url")?;
    if bytes.is_empty() {
        return Err("a key parameter is empty");
    }
    Ok(bytes)
}

/// The algorithms accepted for web identity tokens.
fn supported_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "RS384" => Some(Algorithm::RS384),
        "RS512" => Some(Algorithm::RS512),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        _ => None,
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        _ => "unsupported",
    }
}

/// A JWKS document that could not be loaded or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The JWKS file could not be read.
    #[error("cannot read jwks file `{path}`: {reason}")]
    Read {
        /// The file path.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The HTTP request failed (connection, TLS, protocol).
    #[error("jwks request to `{url}` failed: {reason}")]
    Fetch {
        /// The JWKS URL.
        url: String,
        /// The error and its causes.
        reason: String,
    },
    /// The HTTP request did not finish within [`FETCH_TIMEOUT`].
    #[error("jwks request to `{url}` timed out")]
    Timeout {
        /// The JWKS URL.
        url: String,
    },
    /// The JWKS endpoint answered with a status other than 200.
    #[error("jwks endpoint `{url}` answered http status {status}")]
    Status {
        /// The JWKS URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("jwks document is larger than 1 MiB")]
    TooLarge,
    /// The document is not JSON.
    #[error("jwks document is not valid json: {0}")]
    Json(String),
    /// The document has no `keys` array.
    #[error("jwks document has no `keys` array")]
    NoKeysArray,
    /// The document lists more than [`MAX_JWKS_KEYS`] keys.
    #[error("jwks document lists more than 100 keys")]
    TooManyKeys,
    /// No key in the document can verify tokens.
    #[error("jwks document has no usable signing key (RSA 2048-4096 bits, EC P-256 or P-384)")]
    NoUsableKeys,
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// The identity proven by a verified web identity token.
///
/// Session tags come from the claim `https://aws.amazon.com/tags`:
/// `{"principal_tags": {"K": ["v"]}, "transitive_tag_keys": ["K"]}`. A tag value may be a
/// string or an array of exactly one string. At most 50 tags, keys of 1 to 128 and values of at
/// most 256 characters from `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, no `aws:` prefix, no two keys equal
/// ignoring case; every transitive key must be one of the tags. A claim breaking these rules
/// is refused with `IDPRejectedClaim`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebIdentity {
    /// The IAM provider name (issuer without `https://`), e.g. `cognito-identity.amazonaws.com`.
    pub provider: String,
    /// The token's `iss`, as written in the token.
    pub issuer: String,
    /// The client ID from the token's `aud` that matched the provider (the response `Audience`).
    pub audience: String,
    /// The token's `sub` (the response `SubjectFromWebIdentityToken`).
    pub subject: String,
    /// The token's `amr` values (empty when absent).
    pub amr: Vec<String>,
    /// The token's `azp`, when present.
    pub azp: Option<String>,
    /// The token's `exp`, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// Every claim of the token.
    pub claims: Map<String, Value>,
    /// Session tags from the token, in claim order.
    pub principal_tags: Vec<(String, String)>,
    /// Session tag keys marked transitive by the token.
    pub transitive_tag_keys: Vec<String>,
}

impl WebIdentity {
    /// The web identity condition keys for trust policy evaluation, with their values:
    /// `<provider>:aud`, `<provider>:sub` and, when the token has `amr`, the multi-valued
    /// `<provider>:amr`. For Google, `accounts.google.com:aud` is `azp` when present (else
    /// `aud`) and `accounts.google.com:oaud` is `aud`. `aws:FederatedProvider` needs the
    /// account: see [`WebIdentity::federated_provider`].
    pub fn condition_keys(&self) -> Vec<(String, Vec<String>)> {
        let p = &self.provider;
        let mut keys = Vec::with_capacity(4);
        if p == GOOGLE_PROVIDER {
            let aud = self.azp.clone().unwrap_or_else(|| self.audience.clone());
            keys.push((format!("{p}:aud"), vec![aud]));
            keys.push((format!("{p}:oaud"), vec![self.audience.clone()]));
        } else {
            keys.push((format!("{p}:aud"), vec![self.audience.clone()]));
        }
        keys.push((format!("{p}:sub"), vec![self.subject.clone()]));
        if !self.amr.is_empty() {
            keys.push((format!("{p}:amr"), self.amr.clone()));
        }
        keys
    }

    /// The value of `aws:FederatedProvider` for the session, which is also the `Federated`
    /// principal a trust policy names: the provider ARN in `account`, or the bare provider name
    /// for Cognito, Google, Login with Amazon and Facebook.
    pub fn federated_provider(&self, account: &str) -> String {
        federated_principal(&self.provider, account)
    }
}

/// Why a web identity token was refused. [`OidcError::aws_code`] and
/// [`OidcError::http_status`] give the STS error to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The token is shorter than 4 or longer than 20000 characters.
    #[error("{}", token_length_message(*len))]
    TokenLength {
        /// The token length in characters.
        len: usize,
    },
    /// The token is not a compact JWS with JSON header and payload.
    #[error("the web identity token is not a well-formed jwt: {0}")]
    Malformed(&'static str),
    /// The token's `alg` is not RS256, RS384, RS512, ES256 or ES384.
    #[error(
        "the web identity token algorithm `{0}` is not accepted; use RS256, RS384, RS512, ES256 or ES384"
    )]
    UnsupportedAlgorithm(String),
    /// No provider is configured for the token's issuer.
    #[error("No OpenIDConnect provider found in your account for {issuer}")]
    UnknownProvider {
        /// The token's `iss`.
        issuer: String,
    },
    /// The provider's key set has no key with the token's `kid` (or, without `kid`, no key
    /// of the token's algorithm).
    #[error("{}", unknown_key_message(provider, kid.as_deref()))]
    UnknownSigningKey {
        /// The provider name.
        provider: String,
        /// The token's `kid`.
        kid: Option<String>,
    },
    /// The key named by `kid` is of a type, curve or `alg` that does not fit the token's `alg`.
    #[error("the key `{kid}` of provider `{provider}` cannot verify {alg} signatures")]
    KeyAlgorithmMismatch {
        /// The provider name.
        provider: String,
        /// The token's `kid`.
        kid: String,
        /// The token's `alg`.
        alg: String,
    },
    /// The signature does not verify.
    #[error("the web identity token signature is invalid")]
    BadSignature,
    /// No `aud` value is a client ID of the provider.
    #[error("Incorrect token audience")]
    AudienceMismatch,
    /// `exp` is not after now.
    #[error(
        "Token expired: current date/time {now} must be before the expiration date/time {exp}"
    )]
    Expired {
        /// The current time.
        now: i64,
        /// The token's `exp`.
        exp: i64,
    },
    /// `nbf` is after now.
    #[error("the web identity token is not valid before {nbf} (current date/time {now})")]
    NotYetValid {
        /// The current time.
        now: i64,
        /// The token's `nbf`.
        nbf: i64,
    },
    /// `iat` is more than five minutes in the future.
    #[error("the web identity token was issued in the future: iat {iat}, current date/time {now}")]
    IssuedInFuture {
        /// The current time.
        now: i64,
        /// The token's `iat`.
        iat: i64,
    },
    /// A registered claim is missing or has the wrong type.
    #[error("the web identity token claim `{claim}` is invalid: {reason}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The provider has no key set: it was never loaded successfully.
    #[error(
        "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    KeysUnavailable {
        /// The provider name.
        provider: String,
    },
    /// A claim the token carries for AWS (session tags) breaks AWS's rules.
    #[error("the claim `{claim}` was rejected: {reason}")]
    RejectedClaim {
        /// The claim name.
        claim: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl OidcError {
    /// The STS error code: `ValidationError`, `InvalidIdentityToken`, `ExpiredTokenException`,
    /// `IDPCommunicationError` or `IDPRejectedClaim`.
    pub fn aws_code(&self) -> &'static str {
        match self {
            OidcError::TokenLength { .. } => "ValidationError",
            OidcError::Expired { .. } => "ExpiredTokenException",
            OidcError::KeysUnavailable { .. } => "IDPCommunicationError",
            OidcError::RejectedClaim { .. } => "IDPRejectedClaim",
            OidcError::Malformed(_)
            | OidcError::UnsupportedAlgorithm(_)
            | OidcError::UnknownProvider { .. }
            | OidcError::UnknownSigningKey { .. }
            | OidcError::KeyAlgorithmMismatch { .. }
            | OidcError::BadSignature
            | OidcError::AudienceMismatch
            | OidcError::NotYetValid { .. }
            | OidcError::IssuedInFuture { .. }
            | OidcError::InvalidClaim { .. } => "InvalidIdentityToken",
        }
    }

    /// The HTTP status of the STS error: 403 for `IDPRejectedClaim`, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            OidcError::RejectedClaim { .. } => 403,
            _ => 400,
        }
    }
}

fn token_length_message(len: usize) -> String {
    let constraint = if len < MIN_TOKEN_LEN {
        "greater than or equal to 4"
    } else {
        "less than or equal to 20000"
    };
    format!(
        "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: \
         Member must have length {constraint}"
    )
}

fn unknown_key_message(provider: &str, kid: Option<&str>) -> String {
    match kid {
        Some(kid) => format!("no key of provider `{provider}` has the token's kid `{kid}`"),
        None => format!("no key of provider `{provider}` fits the token's algorithm"),
    }
}

/// Copies token- or config-derived text into a message: at most 128 characters, control
/// characters replaced.
fn echo(text: &str) -> String {
    text.chars()
        .take(MAX_ECHO_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The parts of a compact JWS, decoded but not yet verified.
struct UnverifiedToken<'t> {
    alg: Algorithm,
    kid: Option<String>,
    claims: Map<String, Value>,
    signing_input: &'t str,
    signature: &'t str,
}

impl<'t> UnverifiedToken<'t> {
    fn parse(token: &'t str) -> Result<Self, OidcError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OidcError::Malformed(
                "expected three dot-separated parts (encrypted tokens are not supported)",
            ));
        };
        let header: Map<String, Value> = decode_json_part(header_b64).ok_or(
            OidcError::Malformed("the header is not base64url json object"),
        )?;
        let alg = match header.get("alg") {
            Some(Value::String(name)) => supported_algorithm(name)
                .ok_or_else(|| OidcError::UnsupportedAlgorithm(echo(name)))?,
            _ => return Err(OidcError::Malformed("the header has no alg")),
        };
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(OidcError::Malformed("the header kid is not a string")),
        };
        if header.contains_key("crit") {
            return Err(OidcError::Malformed(
                "critical header parameters are not supported",
            ));
        }
        if signature.is_empty() {
            return Err(OidcError::Malformed("the signature is empty"));
        }
        let claims: Map<String, Value> = decode_json_part(payload_b64).ok_or(
            OidcError::Malformed("the payload is not base64url json object"),
        )?;
        let signing_len = header_b64.len() + 1 + payload_b64.len();
        let signing_input = token
            .get(..signing_len)
            .ok_or(OidcError::Malformed("the token cannot be split"))?;
        Ok(Self {
            alg,
            kid,
            claims,
            signing_input,
            signature,
        })
    }
}

fn decode_json_part(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Verifies a web identity token against the keys cached now, without any I/O.
///
/// `providers` are the configured OIDC providers; `keys` returns the current key set of a
/// provider, or `None` when it has never been loaded. `now` is the current time in seconds
/// since the Unix epoch. See the module documentation for the checks made.
///
/// An [`OidcError::UnknownSigningKey`] or [`OidcError::KeysUnavailable`] may go away after a
/// key reload; [`WebIdentityVerifier::verify`] does that reload.
pub fn verify_web_identity<F>(
    token: &str,
    providers: &[OidcProvider],
    keys: F,
    now: i64,
) -> Result<WebIdentity, OidcError>
where
    F: Fn(&OidcProvider) -> Option<Arc<Jwks>>,
{
    let len = token.chars().count();
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len) {
        return Err(OidcError::TokenLength { len });
    }
    let parsed = UnverifiedToken::parse(token)?;
    let issuer = match parsed.claims.get("iss") {
        Some(Value::String(iss)) => iss.clone(),
        _ => {
            return Err(OidcError::InvalidClaim {
                claim: "iss",
                reason: "it is missing or not a string",
            })
        }
    };
    let provider = providers
        .iter()
        .find(|p| p.matches_issuer(&issuer))
        .ok_or_else(|| OidcError::UnknownProvider {
            issuer: echo(&issuer),
        })?;
    let jwks = keys(provider).ok_or_else(|| OidcError::KeysUnavailable {
        provider: provider.provider.clone(),
    })?;
    jwks.verify(
        &provider.provider,
        parsed.alg,
        parsed.kid.as_deref(),
        parsed.signing_input.as_bytes(),
        parsed.signature,
    )?;
    check_claims(provider, issuer, parsed.claims, now)
}

fn check_claims(
    provider: &OidcProvider,
    issuer: String,
    claims: Map<String, Value>,
    now: i64,
) -> Result<WebIdentity, OidcError> {
    let exp = int_claim(&claims, "exp")?.ok_or(OidcError::InvalidClaim {
        claim: "exp",
        reason: "it is missing",
    })?;
    if now >= exp {
        return Err(OidcError::Expired { now, exp });
    }
    if let Some(nbf) = int_claim(&claims, "nbf")? {
        if now < nbf {
            return Err(OidcError::NotYetValid { now, nbf });
        }
    }
    if let Some(iat) = int_claim(&claims, "iat")? {
        if iat > now.saturating_add(MAX_IAT_SKEW_SECS) {
            return Err(OidcError::IssuedInFuture { now, iat });
        }
    }

    let bad_aud = OidcError::InvalidClaim {
        claim: "aud",
        reason: "it must be a string or a non-empty array of strings",
    };
    let token_audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().ok_or(bad_aud.clone()))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad_aud),
    };
    let audience = token_audiences
        .iter()
        .find(|aud| provider.audiences.iter().any(|c| c == *aud))
        .map(|aud| (*aud).to_owned())
        .ok_or(OidcError::AudienceMismatch)?;

    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => {
            return Err(OidcError::InvalidClaim {
                claim: "sub",
                reason: "it is missing, empty or not a string",
            })
        }
    };
    let bad_amr = OidcError::InvalidClaim {
        claim: "amr",
        reason: "it must be a string or an array of strings",
    };
    let amr = match claims.get("amr") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(bad_amr.clone()))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad_amr),
    };
    let azp = match claims.get("azp") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(OidcError::InvalidClaim {
                claim: "azp",
                reason: "it is not a string",
            })
        }
    };
    let (principal_tags, transitive_tag_keys) = match claims.get(SESSION_TAGS_CLAIM) {
        None => (Vec::new(), Vec::new()),
        Some(value) => session_tags(value)?,
    };
    Ok(WebIdentity {
        provider: provider.provider.clone(),
        issuer,
        audience,
        subject,
        amr,
        azp,
        expires_at: exp,
        claims,
        principal_tags,
        transitive_tag_keys,
    })
}

fn int_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, OidcError> {
    let invalid = OidcError::InvalidClaim {
        claim: name,
        reason: "it must be an integer number of seconds",
    };
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(invalid),
        Some(_) => Err(invalid),
    }
}

type SessionTags = (Vec<(String, String)>, Vec<String>);

fn session_tags(value: &Value) -> Result<SessionTags, OidcError> {
    let reject = |reason: String| OidcError::RejectedClaim {
        claim: SESSION_TAGS_CLAIM,
        reason,
    };
    let obj = value
        .as_object()
        .ok_or_else(|| reject("it must be a json object".to_owned()))?;
    let mut tags: Vec<(String, String)> = Vec::new();
    match obj.get("principal_tags") {
        None => {}
        Some(Value::Object(map)) => {
            if map.len() > MAX_SESSION_TAGS {
                return Err(reject(format!(
                    "{} tags given; at most 50 are allowed",
                    map.len()
                )));
            }
            for (key, raw) in map {
                let value = match raw {
                    Value::String(s) => s.as_str(),
                    Value::Array(items) => match items.as_slice() {
                        [Value::String(s)] => s.as_str(),
                        _ => {
                            return Err(reject(format!(
                                "tag `{}` must have exactly one string value",
                                echo(key)
                            )))
                        }
                    },
                    _ => {
                        return Err(reject(format!(
                            "tag `{}` must have exactly one string value",
                            echo(key)
                        )))
                    }
                };
                check_tag(key, value)
                    .map_err(|why| reject(format!("tag `{}` {why}", echo(key))))?;
                let lower = key.to_lowercase();
                if tags.iter().any(|(k, _)| k.to_lowercase() == lower) {
                    return Err(reject(format!(
                        "tag key `{}` is duplicated (tag keys are case insensitive)",
                        echo(key)
                    )));
                }
                tags.push((key.clone(), value.to_owned()));
            }
        }
        Some(_) => return Err(reject("principal_tags must be a json object".to_owned())),
    }
    let mut transitive: Vec<String> = Vec::new();
    match obj.get("transitive_tag_keys") {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > MAX_SESSION_TAGS {
                return Err(reject(
                    "at most 50 transitive tag keys are allowed".to_owned(),
                ));
            }
            for item in items {
                let key = item
                    .as_str()
                    .ok_or_else(|| reject("transitive_tag_keys must be strings".to_owned()))?;
                let lower = key.to_lowercase();
                if !tags.iter().any(|(k, _)| k.to_lowercase() == lower) {
                    return Err(reject(format!(
                        "transitive tag key `{}` is not one of the principal tags",
                        echo(key)
                    )));
                }
                if !transitive.iter().any(|k| k.to_lowercase() == lower) {
                    transitive.push(key.to_owned());
                }
            }
        }
        Some(_) => {
            return Err(reject(
                "transitive_tag_keys must be an array of strings".to_owned(),
            ))
        }
    }
    Ok((tags, transitive))
}

/// Checks a session tag against STS's limits: key 1..=128 and value 0..=256 characters of
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, key not starting with `aws:`.
fn check_tag(key: &str, value: &str) -> Result<(), &'static str> {
    let key_len = key.chars().count();
    if key_len == 0 || key_len > 128 {
        return Err("key must be 1 to 128 characters");
    }
    if value.chars().count() > 256 {
        return Err("value must be at most 256 characters");
    }
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err("key must not begin with aws:");
    }
    let allowed = |c: char| {
        c.is_alphabetic()
            || c.is_numeric()
            || (c.is_whitespace() && !c.is_control())
            || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
    };
    if !key.chars().all(allowed) || !value.chars().all(allowed) {
        return Err("has characters outside [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Caching and fetching
// ---------------------------------------------------------------------------------------------

/// The current key set of one provider, reloaded from its [`JwksSource`].
///
/// Readers take the current `Arc<Jwks>` without locking ([`JwksCache::current`]); a reload
/// swaps in a whole new set. A failed reload keeps the previous set. Reloads are serialised.
pub struct JwksCache {
    label: String,
    source: JwksSource,
    current: ArcSwapOption<Jwks>,
    last_forced: Mutex<Option<Instant>>,
    reload: tokio::sync::Mutex<()>,
    loads: AtomicU64,
    min_forced_interval: Duration,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("label", &self.label)
            .field("source", &self.source)
            .field("current", &self.current.load_full())
            .field("loads", &self.loads.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache for `source`; `label` (normally the provider name) is used in logs. An inline
    /// document is parsed at once; files and URLs are loaded by [`JwksCache::refresh`].
    pub fn new(label: impl Into<String>, source: JwksSource) -> Self {
        let current = match &source {
            JwksSource::Inline(doc) => Jwks::from_json(doc.as_bytes()).ok().map(Arc::new),
            JwksSource::File(_) | JwksSource::Url(_) => None,
        };
        Self {
            label: label.into(),
            source,
            current: ArcSwapOption::new(current),
            last_forced: Mutex::new(None),
            reload: tokio::sync::Mutex::new(()),
            loads: AtomicU64::new(0),
            min_forced_interval: FORCED_REFRESH_MIN_INTERVAL,
        }
    }

    /// Changes the minimum time between forced reloads (default
    /// [`FORCED_REFRESH_MIN_INTERVAL`]).
    pub fn with_min_forced_interval(mut self, interval: Duration) -> Self {
        self.min_forced_interval = interval;
        self
    }

    /// The current key set, or `None` if none was ever loaded.
    pub fn current(&self) -> Option<Arc<Jwks>> {
        self.current.load_full()
    }

    /// Replaces the current key set (for a configuration reload that keeps known keys).
    pub fn set(&self, jwks: Arc<Jwks>) {
        self.current.store(Some(jwks));
    }

    /// How many loads (successful or not) this cache has started.
    pub fn load_count(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// Loads the key set from the source now and swaps it in. On failure the previous set is
    /// kept and the error returned.
    pub async fn refresh(&self) -> Result<Arc<Jwks>, JwksError> {
        let _serialised = self.reload.lock().await;
        self.loads.fetch_add(1, Ordering::Relaxed);
        let loaded = match &self.source {
            JwksSource::Inline(doc) => Jwks::from_json(doc.as_bytes()),
            JwksSource::File(path) => read_file(path.clone())
                .await
                .and_then(|doc| Jwks::from_json(&doc)),
            JwksSource::Url(url) => fetch_url(url).await.and_then(|doc| Jwks::from_json(&doc)),
        };
        match loaded {
            Ok(jwks) => {
                let jwks = Arc::new(jwks);
                tracing::debug!(provider = %self.label, keys = jwks.len(), "jwks loaded");
                self.current.store(Some(Arc::clone(&jwks)));
                Ok(jwks)
            }
            Err(error) => {
                tracing::warn!(
                    provider = %self.label,
                    %error,
                    kept_previous_keys = self.current.load().is_some(),
                    "jwks refresh failed"
                );
                Err(error)
            }
        }
    }

    /// Reloads after a token named a key this cache does not have, at most once per
    /// minimum forced interval ([`NO_KEYS_RETRY_INTERVAL`] while no keys were ever loaded).
    /// When a reload is not allowed, waits for any reload under way. Returns whether this call
    /// reloaded successfully.
    pub async fn refresh_for_unknown_key(&self) -> bool {
        let interval = if self.current.load().is_some() {
            self.min_forced_interval
        } else {
            self.min_forced_interval.min(NO_KEYS_RETRY_INTERVAL)
        };
        let allowed = {
            let mut last = self
                .last_forced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match *last {
                Some(at) if at.elapsed() < interval => false,
                _ => {
                    *last = Some(Instant::now());
                    true
                }
            }
        };
        if allowed {
            tracing::info!(provider = %self.label, "unknown signing key: reloading jwks");
            self.refresh().await.is_ok()
        } else {
            drop(self.reload.lock().await);
            false
        }
    }

    /// Starts a task that reloads the key set every `every` (retrying failures sooner, from 30
    /// seconds doubling up to `every`). The first reload happens at once if the cache has no
    /// keys, else after `every`. The task ends when the cache is dropped.
    pub fn spawn_periodic_refresh(
        self: &Arc<Self>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failures: u32 = 0;
            let mut wait = match weak.upgrade() {
                Some(cache) if cache.current().is_some() => every,
                Some(_) => Duration::ZERO,
                None => return,
            };
            loop {
                tokio::time::sleep(wait).await;
                let Some(cache) = weak.upgrade() else { return };
                let ok = cache.refresh().await.is_ok();
                drop(cache);
                wait = if ok {
                    failures = 0;
                    every
                } else {
                    failures = failures.saturating_add(1);
                    retry_delay(failures).min(every)
                };
            }
        })
    }
}

fn retry_delay(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(5);
    Duration::from_secs(30u64 << shift)
}

async fn read_file(path: PathBuf) -> Result<Vec<u8>, JwksError> {
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || read_limited(&path))
        .await
        .map_err(|e| JwksError::Read {
            path: shown,
            reason: e.to_string(),
        })?
}

fn read_limited(path: &Path) -> Result<Vec<u8>, JwksError> {
    let read_error = |e: std::io::Error| JwksError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut doc = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut doc)
        .map_err(read_error)?;
    if doc.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge);
    }
    Ok(doc)
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// A client for one fetch: connections are not pooled (fetches are rare) and none outlives the
/// runtime that made it.
fn http_client() -> HttpClient {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(FETCH_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
}

async fn fetch_url(url: &str) -> Result<Vec<u8>, JwksError> {
    let failed = |reason: String| JwksError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let uri: http::Uri = url.parse().map_err(|_| failed("invalid url".to_owned()))?;
    let request = http::Request::get(uri)
        .header(
            http::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .header(
            http::header::USER_AGENT,
            concat!("tollgate/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    let client = http_client();
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(JwksError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_JWKS_BYTES as u64) {
            return Err(JwksError::TooLarge);
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    JwksError::TooLarge
                } else {
                    failed(error_chain(e.as_ref()))
                }
            })?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| JwksError::Timeout {
            url: url.to_owned(),
        })?
}

/// An error and its causes on one line (hyper's top-level errors say little on their own).
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Provider registry
// ---------------------------------------------------------------------------------------------

/// The configured OIDC providers with their key caches: what the STS operation layer holds.
#[derive(Debug)]
pub struct WebIdentityVerifier {
    providers: Vec<OidcProvider>,
    caches: Vec<Arc<JwksCache>>,
}

impl WebIdentityVerifier {
    /// Builds a verifier with one cache per provider; provider names must be unique.
    pub fn new(providers: Vec<OidcProvider>) -> Result<Self, OidcConfigError> {
        Self::with_forced_refresh_interval(providers, FORCED_REFRESH_MIN_INTERVAL)
    }

    /// Like [`WebIdentityVerifier::new`] with another minimum time between reloads forced by
    /// unknown `kid`s.
    pub fn with_forced_refresh_interval(
        providers: Vec<OidcProvider>,
        interval: Duration,
    ) -> Result<Self, OidcConfigError> {
        for (i, p) in providers.iter().enumerate() {
            if providers
                .iter()
                .skip(i + 1)
                .any(|q| q.provider == p.provider)
            {
                return Err(OidcConfigError::DuplicateProvider(p.provider.clone()));
            }
        }
        let caches = providers
            .iter()
            .map(|p| {
                Arc::new(
                    JwksCache::new(p.provider.clone(), p.jwks.clone())
                        .with_min_forced_interval(interval),
                )
            })
            .collect();
        Ok(Self { providers, caches })
    }

    /// The configured providers.
    pub fn providers(&self) -> &[OidcProvider] {
        &self.providers
    }

    /// The key cache of the provider named `provider`.
    pub fn cache(&self, provider: &str) -> Option<&Arc<JwksCache>> {
        self.providers
            .iter()
            .position(|p| p.provider == provider)
            .and_then(|i| self.caches.get(i))
    }

    /// Takes over the keys of `previous` for providers with the same name and key source, so a
    /// configuration reload does not drop keys that are still valid.
    pub fn carry_over_keys(&self, previous: &WebIdentityVerifier) {
        for (provider, cache) in self.providers.iter().zip(&self.caches) {
            let old = previous
                .providers
                .iter()
                .zip(&previous.caches)
                .find(|(p, _)| p.provider == provider.provider && p.jwks == provider.jwks);
            if let Some(keys) = old.and_then(|(_, c)| c.current()) {
                if cache.current().is_none() {
                    cache.set(keys);
                }
            }
        }
    }

    /// Loads every provider's key set once; returns the providers that failed.
    pub async fn refresh_all(&self) -> Vec<(String, JwksError)> {
        let mut failed = Vec::new();
        for (provider, cache) in self.providers.iter().zip(&self.caches) {
            if let Err(error) = cache.refresh().await {
                failed.push((provider.provider.clone(), error));
            }
        }
        failed
    }

    /// Starts the scheduled reload task of every provider whose keys come from a file or URL.
    pub fn spawn_refresh_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.providers
            .iter()
            .zip(&self.caches)
            .filter(|(p, _)| !matches!(p.jwks, JwksSource::Inline(_)))
            .map(|(p, cache)| cache.spawn_periodic_refresh(p.refresh))
            .collect()
    }

    /// Verifies with the keys cached now, without I/O; see [`verify_web_identity`].
    pub fn verify_cached(&self, token: &str, now: i64) -> Result<WebIdentity, OidcError> {
        verify_web_identity(
            token,
            &self.providers,
            |p| self.cache(&p.provider).and_then(|c| c.current()),
            now,
        )
    }

    /// Verifies a token; when the provider has no key for it (or no keys at all), reloads the
    /// key set once, rate-limited, and tries again.
    pub async fn verify(&self, token: &str, now: i64) -> Result<WebIdentity, OidcError> {
        match self.verify_cached(token, now) {
            Err(
                OidcError::UnknownSigningKey { provider, .. }
                | OidcError::KeysUnavailable { provider },
            ) => {
                if let Some(cache) = self.cache(&provider) {
                    cache.refresh_for_unknown_key().await;
                }
                self.verify_cached(token, now)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicUsize;

    const NOW: i64 = 1_700_000_000;
    const ISSUER: &str = "https://idp.example.com";
    const JWKS: &str = include_str!("../../tests/fixtures/oidc/jwks.json");
    const JWKS_OTHER: &str = include_str!("../../tests/fixtures/oidc/jwks-other.json");
    const RSA_KEY: &[u8] = include_bytes!("../../tests/fixtures/oidc/rsa-private.pem");
    const RSA_OTHER_KEY: &[u8] = include_bytes!("../../tests/fixtures/oidc/rsa-other-private.pem");
    const EC_KEY: &[u8] = include_bytes!("../../tests/fixtures/oidc/ec-private.pem");
    const EC384_KEY: &[u8] = include_bytes!("../../tests/fixtures/oidc/ec384-private.pem");

    fn rsa() -> EncodingKey {
        EncodingKey::from_rsa_pem(RSA_KEY).unwrap()
    }

    fn provider_with(issuer: &str, audiences: &[&str]) -> OidcProvider {
        OidcProvider::new(
            issuer,
            audiences.iter().map(|a| (*a).to_owned()).collect(),
            JwksSource::Inline(JWKS.to_owned()),
        )
        .unwrap()
    }

    fn provider() -> OidcProvider {
        provider_with(ISSUER, &["client-a", "client-b"])
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": "client-a",
            "sub": "user-1",
            "iat": NOW - 10,
            "exp": NOW + 600,
        })
    }

    fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn rs256(claims: &Value) -> String {
        sign(Algorithm::RS256, Some("rsa-1"), &rsa(), claims)
    }

    /// A token with a hand-written header and an arbitrary signature.
    fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
        format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn verify_with(providers: &[OidcProvider], token: &str) -> Result<WebIdentity, OidcError> {
        let jwks = Arc::new(Jwks::from_json(JWKS.as_bytes()).unwrap());
        let result = verify_web_identity(token, providers, |_| Some(Arc::clone(&jwks)), NOW);
        if let Err(e) = &result {
            // No message may echo the token or any of its encoded parts.
            let text = e.to_string();
            for part in token.split('.').filter(|p| p.len() > 8) {
                assert!(!text.contains(part), "message leaks the token: {text}");
            }
        }
        result
    }

    fn verify(token: &str) -> Result<WebIdentity, OidcError> {
        verify_with(&[provider()], token)
    }

    #[test]
    fn valid_rs256_token() {
        let id = verify(&rs256(&claims())).unwrap();
        assert_eq!(id.provider, "idp.example.com");
        assert_eq!(id.issuer, ISSUER);
        assert_eq!(id.audience, "client-a");
        assert_eq!(id.subject, "user-1");
        assert_eq!(id.expires_at, NOW + 600);
        assert!(id.amr.is_empty());
        assert_eq!(id.claims.get("sub"), Some(&json!("user-1")));
        assert_eq!(
            id.condition_keys(),
            vec![
                (
                    "idp.example.com:aud".to_owned(),
                    vec!["client-a".to_owned()]
                ),
                ("idp.example.com:sub".to_owned(), vec!["user-1".to_owned()]),
            ]
        );
    }

    #[test]
    fn valid_rs384_and_rs512_tokens() {
        for alg in [Algorithm::RS384, Algorithm::RS512] {
            let token = sign(alg, Some("rsa-1"), &rsa(), &claims());
            // The fixture key says "alg": "RS256", so it may only verify RS256.
            assert!(matches!(
                verify(&token),
                Err(OidcError::KeyAlgorithmMismatch { .. })
            ));
            // Without `alg` on the key, any RSA algorithm verifies.
            let mut doc: Value = serde_json::from_str(JWKS).unwrap();
            doc["keys"][0].as_object_mut().unwrap().remove("alg");
            let jwks = Arc::new(Jwks::from_json(doc.to_string().as_bytes()).unwrap());
            let id = verify_web_identity(&token, &[provider()], |_| Some(jwks.clone()), NOW);
            assert_eq!(id.unwrap().subject, "user-1");
        }
    }

    #[test]
    fn valid_es256_and_es384_tokens() {
        let es256 = sign(
            Algorithm::ES256,
            Some("ec-1"),
            &EncodingKey::from_ec_pem(EC_KEY).unwrap(),
            &claims(),
        );
        assert_eq!(verify(&es256).unwrap().subject, "user-1");
        let es384 = sign(
            Algorithm::ES384,
            Some("ec384-1"),
            &EncodingKey::from_ec_pem(EC384_KEY).unwrap(),
            &claims(),
        );
        assert_eq!(verify(&es384).unwrap().subject, "user-1");
    }

    #[test]
    fn signature_by_another_key_is_refused() {
        let other = EncodingKey::from_rsa_pem(RSA_OTHER_KEY).unwrap();
        let err = verify(&sign(Algorithm::RS256, Some("rsa-1"), &other, &claims())).unwrap_err();
        assert_eq!(err, OidcError::BadSignature);
        assert_eq!(
            (err.aws_code(), err.http_status()),
            ("InvalidIdentityToken", 400)
        );
    }

    #[test]
    fn tampered_payload_is_refused() {
        let token = rs256(&claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged["sub"] = json!("admin");
        let payload = URL_SAFE_NO_PAD.encode(forged.to_string());
        parts[1] = &payload;
        assert_eq!(
            verify(&parts.join(".")).unwrap_err(),
            OidcError::BadSignature
        );
        // A flipped signature bit too.
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(verify(&flipped).unwrap_err(), OidcError::BadSignature);
    }

    #[test]
    fn unknown_issuer_is_refused_with_aws_wording() {
        let mut c = claims();
        c["iss"] = json!("https://evil.example.com");
        let err = verify(&rs256(&c)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No OpenIDConnect provider found in your account for https://evil.example.com"
        );
        assert_eq!(err.aws_code(), "InvalidIdentityToken");
        // A prefix or a trailing slash is not the same issuer.
        c["iss"] = json!("https://idp.example.com/");
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::UnknownProvider { .. })
        ));
        c["iss"] = json!(42);
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::InvalidClaim { claim: "iss", .. })
        ));
    }

    #[test]
    fn issuer_without_scheme_matches() {
        let mut c = claims();
        c["iss"] = json!("idp.example.com");
        let id = verify(&rs256(&c)).unwrap();
        assert_eq!(id.issuer, "idp.example.com");
        assert_eq!(id.provider, "idp.example.com");
    }

    #[test]
    fn wrong_audience_is_refused() {
        let mut c = claims();
        c["aud"] = json!("client-z");
        let err = verify(&rs256(&c)).unwrap_err();
        assert_eq!(err, OidcError::AudienceMismatch);
        assert_eq!(err.to_string(), "Incorrect token audience");
        c["aud"] = json!([]);
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::InvalidClaim { claim: "aud", .. })
        ));
        c.as_object_mut().unwrap().remove("aud");
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::InvalidClaim { claim: "aud", .. })
        ));
    }

    #[test]
    fn audience_array_matches_any_client_id() {
        let mut c = claims();
        c["aud"] = json!(["other-api", "client-b"]);
        assert_eq!(verify(&rs256(&c)).unwrap().audience, "client-b");
        c["aud"] = json!(["other-api", 7]);
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::InvalidClaim { claim: "aud", .. })
        ));
    }

    #[test]
    fn expired_token_is_expired_token_exception() {
        let mut c = claims();
        c["exp"] = json!(NOW);
        let err = verify(&rs256(&c)).unwrap_err();
        assert_eq!(err, OidcError::Expired { now: NOW, exp: NOW });
        assert_eq!(
            (err.aws_code(), err.http_status()),
            ("ExpiredTokenException", 400)
        );
        assert!(err
            .to_string()
            .starts_with("Token expired: current date/time"));
        c["exp"] = json!(NOW + 1);
        assert!(verify(&rs256(&c)).is_ok());
    }

    #[test]
    fn not_yet_valid_and_future_iat_are_refused() {
        let mut c = claims();
        c["nbf"] = json!(NOW + 1);
        assert_eq!(
            verify(&rs256(&c)).unwrap_err(),
            OidcError::NotYetValid {
                now: NOW,
                nbf: NOW + 1
            }
        );
        c["nbf"] = json!(NOW);
        assert!(verify(&rs256(&c)).is_ok());
        c["iat"] = json!(NOW + MAX_IAT_SKEW_SECS + 1);
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::IssuedInFuture { .. })
        ));
        c["iat"] = json!(NOW + MAX_IAT_SKEW_SECS);
        assert!(verify(&rs256(&c)).is_ok());
    }

    #[test]
    fn timestamps_must_be_integers() {
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            verify(&rs256(&c)).unwrap_err(),
            OidcError::InvalidClaim {
                claim: "exp",
                reason: "it is missing"
            }
        );
        for bad in [json!("1700000600"), json!(1_700_000_600.0), json!(null)] {
            let mut c = claims();
            c["exp"] = bad;
            assert!(matches!(
                verify(&rs256(&c)),
                Err(OidcError::InvalidClaim { claim: "exp", .. })
            ));
        }
        let mut c = claims();
        c["nbf"] = json!("0");
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::InvalidClaim { claim: "nbf", .. })
        ));
        let mut c = claims();
        c["iat"] = json!(1.5);
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::InvalidClaim { claim: "iat", .. })
        ));
    }

    #[test]
    fn subject_is_required() {
        let mut c = claims();
        c["sub"] = json!("");
        assert!(matches!(
            verify(&rs256(&c)),
            Err(OidcError::InvalidClaim { claim: "sub", .. })
        ));
    }

    #[test]
    fn alg_none_is_refused() {
        let token = raw_token(&json!({"alg": "none", "typ": "JWT"}), &claims(), "");
        let err = verify(&token).unwrap_err();
        assert_eq!(err, OidcError::UnsupportedAlgorithm("none".to_owned()));
        assert_eq!(err.aws_code(), "InvalidIdentityToken");
        let token = raw_token(&json!({"alg": "None"}), &claims(), "c2ln");
        assert!(matches!(
            verify(&token),
            Err(OidcError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn hmac_tokens_are_refused_even_with_an_oct_key() {
        // An IdP publishing a symmetric key must not make HS256 usable (MinIO's weakness).
        let mut doc: Value = serde_json::from_str(JWKS).unwrap();
        doc["keys"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}));
        let jwks = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
        assert_eq!(jwks.len(), 3, "the oct key is skipped");
        let jwks = Arc::new(jwks);
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let token = sign(
                alg,
                Some("hmac"),
                &EncodingKey::from_secret(b"secret"),
                &claims(),
            );
            let err = verify_web_identity(&token, &[provider()], |_| Some(jwks.clone()), NOW)
                .unwrap_err();
            assert!(matches!(err, OidcError::UnsupportedAlgorithm(_)), "{err}");
        }
    }

    #[test]
    fn unsupported_algorithms_are_refused() {
        for alg in ["ES512", "PS256", "EdDSA", "RS1"] {
            let token = raw_token(&json!({"alg": alg, "kid": "rsa-1"}), &claims(), "c2ln");
            assert_eq!(
                verify(&token).unwrap_err(),
                OidcError::UnsupportedAlgorithm(alg.to_owned())
            );
        }
    }

    #[test]
    fn algorithm_must_fit_the_key() {
        // An RS256 header naming the EC key, an ES384 header naming the P-256 key.
        let token = raw_token(&json!({"alg": "RS256", "kid": "ec-1"}), &claims(), "c2ln");
        let err = verify(&token).unwrap_err();
        assert!(
            matches!(err, OidcError::KeyAlgorithmMismatch { .. }),
            "{err}"
        );
        let es384 = sign(
            Algorithm::ES384,
            Some("ec-1"),
            &EncodingKey::from_ec_pem(EC384_KEY).unwrap(),
            &claims(),
        );
        assert!(matches!(
            verify(&es384),
            Err(OidcError::KeyAlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn unknown_kid_is_refused() {
        let token = sign(Algorithm::RS256, Some("rotated-away"), &rsa(), &claims());
        let err = verify(&token).unwrap_err();
        assert_eq!(
            err,
            OidcError::UnknownSigningKey {
                provider: "idp.example.com".to_owned(),
                kid: Some("rotated-away".to_owned())
            }
        );
        assert_eq!(err.aws_code(), "InvalidIdentityToken");
    }

    #[test]
    fn token_without_kid_tries_keys_of_its_algorithm() {
        assert_eq!(
            verify(&sign(Algorithm::RS256, None, &rsa(), &claims()))
                .unwrap()
                .subject,
            "user-1"
        );
        let es256 = sign(
            Algorithm::ES256,
            None,
            &EncodingKey::from_ec_pem(EC_KEY).unwrap(),
            &claims(),
        );
        assert!(verify(&es256).is_ok());
        let other = EncodingKey::from_rsa_pem(RSA_OTHER_KEY).unwrap();
        assert_eq!(
            verify(&sign(Algorithm::RS256, None, &other, &claims())).unwrap_err(),
            OidcError::BadSignature
        );
    }

    #[test]
    fn malformed_tokens_are_invalid_identity_tokens() {
        let token = rs256(&claims());
        let mut parts = token.split('.');
        let (h, p) = (parts.next().unwrap(), parts.next().unwrap());
        for bad in [
            "abcd".to_owned(),
            format!("{h}.{p}"),
            format!("{token}.extra.part"),
            format!("{h}.{p}."),
            format!("{h}=.{p}.sig"),
            format!("{h}.!!!.sig"),
            raw_token(&json!(["alg", "RS256"]), &claims(), "c2ln"),
            raw_token(&json!({"alg": "RS256", "kid": 5}), &claims(), "c2ln"),
            raw_token(&json!({"alg": "RS256", "crit": ["exp"]}), &claims(), "c2ln"),
            raw_token(&json!({"alg": "RS256"}), &json!("just a string"), "c2ln"),
        ] {
            let err = verify(&bad).unwrap_err();
            assert!(matches!(err, OidcError::Malformed(_)), "{bad}: {err}");
            assert_eq!(err.aws_code(), "InvalidIdentityToken");
        }
    }

    #[test]
    fn token_length_limits() {
        let err = verify("a.b").unwrap_err();
        assert_eq!(err, OidcError::TokenLength { len: 3 });
        assert_eq!(
            (err.aws_code(), err.http_status()),
            ("ValidationError", 400)
        );
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let err = verify(&long).unwrap_err();
        assert!(err.to_string().contains("less than or equal to 20000"));
        // The longest accepted token is parsed (and here refused as malformed).
        let at_limit = "a".repeat(MAX_TOKEN_LEN);
        assert!(matches!(verify(&at_limit), Err(OidcError::Malformed(_))));
    }

    #[test]
    fn cognito_identity_token_and_condition_keys() {
        let cognito = provider_with(
            "https://cognito-identity.amazonaws.com",
            &["us-east-1:0b1c2d3e-aaaa-bbbb-cccc-1234567890ab"],
        );
        assert_eq!(cognito.provider(), COGNITO_PROVIDER);
        assert_eq!(
            cognito.federated_principal("123456789012"),
            COGNITO_PROVIDER
        );
        let c = json!({
            "iss": "https://cognito-identity.amazonaws.com",
            "aud": "us-east-1:0b1c2d3e-aaaa-bbbb-cccc-1234567890ab",
            "sub": "us-east-1:11111111-2222-3333-4444-555555555555",
            "amr": ["authenticated", "cognito-idp.us-east-1.amazonaws.com/us-east-1_X",
                    "cognito-idp.us-east-1.amazonaws.com/us-east-1_X:CognitoSignIn:abc"],
            "iat": NOW, "exp": NOW + 600,
        });
        let id = verify_with(&[provider(), cognito], &rs256(&c)).unwrap();
        assert_eq!(id.federated_provider("123456789012"), COGNITO_PROVIDER);
        assert_eq!(
            id.condition_keys(),
            vec![
                (
                    "cognito-identity.amazonaws.com:aud".to_owned(),
                    vec!["us-east-1:0b1c2d3e-aaaa-bbbb-cccc-1234567890ab".to_owned()]
                ),
                (
                    "cognito-identity.amazonaws.com:sub".to_owned(),
                    vec!["us-east-1:11111111-2222-3333-4444-555555555555".to_owned()]
                ),
                (
                    "cognito-identity.amazonaws.com:amr".to_owned(),
                    vec![
                        "authenticated".to_owned(),
                        "cognito-idp.us-east-1.amazonaws.com/us-east-1_X".to_owned(),
                        "cognito-idp.us-east-1.amazonaws.com/us-east-1_X:CognitoSignIn:abc"
                            .to_owned()
                    ]
                ),
            ]
        );
        // A single-string amr (unauthenticated identities) is one value.
        let mut c = c;
        c["amr"] = json!("unauthenticated");
        let id = verify_with(
            &[provider_with(
                "https://cognito-identity.amazonaws.com",
                &["us-east-1:0b1c2d3e-aaaa-bbbb-cccc-1234567890ab"],
            )],
            &rs256(&c),
        )
        .unwrap();
        assert_eq!(id.amr, vec!["unauthenticated".to_owned()]);
        c["amr"] = json!({"x": 1});
        assert!(matches!(
            verify_with(
                &[provider_with(
                    "https://cognito-identity.amazonaws.com",
                    &["us-east-1:0b1c2d3e-aaaa-bbbb-cccc-1234567890ab"],
                )],
                &rs256(&c),
            ),
            Err(OidcError::InvalidClaim { claim: "amr", .. })
        ));
    }

    #[test]
    fn google_aud_is_azp_and_oaud_is_aud() {
        let google = provider_with("https://accounts.google.com", &["web-client.apps"]);
        let mut c = json!({
            "iss": "accounts.google.com",
            "aud": "web-client.apps",
            "azp": "android-client.apps",
            "sub": "110169484474386276334",
            "exp": NOW + 600,
        });
        let id = verify_with(std::slice::from_ref(&google), &rs256(&c)).unwrap();
        assert_eq!(id.azp.as_deref(), Some("android-client.apps"));
        assert_eq!(id.federated_provider("123456789012"), GOOGLE_PROVIDER);
        assert_eq!(
            id.condition_keys(),
            vec![
                (
                    "accounts.google.com:aud".to_owned(),
                    vec!["android-client.apps".to_owned()]
                ),
                (
                    "accounts.google.com:oaud".to_owned(),
                    vec!["web-client.apps".to_owned()]
                ),
                (
                    "accounts.google.com:sub".to_owned(),
                    vec!["110169484474386276334".to_owned()]
                ),
            ]
        );
        c.as_object_mut().unwrap().remove("azp");
        let id = verify_with(std::slice::from_ref(&google), &rs256(&c)).unwrap();
        let keys = id.condition_keys();
        assert_eq!(keys[0].1, vec!["web-client.apps".to_owned()]);
        assert_eq!(keys[1].1, vec!["web-client.apps".to_owned()]);
    }

    #[test]
    fn session_tags_claim() {
        let mut c = claims();
        c[SESSION_TAGS_CLAIM] = json!({
            "principal_tags": {
                "Project": ["Automation"],
                "CostCenter": ["987654"],
                "Department": "Engineering"
            },
            "transitive_tag_keys": ["Project", "CostCenter"]
        });
        let id = verify(&rs256(&c)).unwrap();
        assert_eq!(
            id.principal_tags,
            vec![
                ("Project".to_owned(), "Automation".to_owned()),
                ("CostCenter".to_owned(), "987654".to_owned()),
                ("Department".to_owned(), "Engineering".to_owned()),
            ]
        );
        assert_eq!(id.transitive_tag_keys, vec!["Project", "CostCenter"]);

        let rejected = |tags: Value| {
            let mut c = claims();
            c[SESSION_TAGS_CLAIM] = tags;
            let err = verify(&rs256(&c)).unwrap_err();
            assert!(matches!(err, OidcError::RejectedClaim { .. }), "{err}");
            assert_eq!(
                (err.aws_code(), err.http_status()),
                ("IDPRejectedClaim", 403)
            );
        };
        rejected(json!("Project=Automation"));
        rejected(json!({"principal_tags": {"Project": ["a", "b"]}}));
        rejected(json!({"principal_tags": {"Project": 5}}));
        rejected(json!({"principal_tags": {"aws:Project": "a"}}));
        rejected(json!({"principal_tags": {"Pro*ject": "a"}}));
        rejected(json!({"principal_tags": {"k": "x".repeat(257)}}));
        rejected(json!({"principal_tags": {"project": "a", "PROJECT": "b"}}));
        rejected(json!({"principal_tags": {"Project": "a"}, "transitive_tag_keys": ["Other"]}));
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        rejected(json!({ "principal_tags": many }));
    }

    #[test]
    fn provider_configuration_rules() {
        let p = provider();
        assert_eq!(
            p.arn("123456789012"),
            "arn:aws:iam::123456789012:oidc-provider/idp.example.com"
        );
        assert_eq!(p.federated_principal("123456789012"), p.arn("123456789012"));
        assert_eq!(p.refresh(), DEFAULT_REFRESH);
        let eks = provider_with(
            "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123/",
            &["sts.amazonaws.com"],
        );
        assert_eq!(eks.provider(), "oidc.eks.us-east-1.amazonaws.com/id/ABC123");
        let inline = || JwksSource::Inline(JWKS.to_owned());
        let aud = || vec!["a".to_owned()];
        assert!(matches!(
            OidcProvider::new("http://idp.example.com", aud(), inline()),
            Err(OidcConfigError::IssuerNotHttps(_))
        ));
        assert!(matches!(
            OidcProvider::new("https://", aud(), inline()),
            Err(OidcConfigError::IssuerInvalid { .. })
        ));
        assert!(matches!(
            OidcProvider::new("https://idp.example.com?x=1", aud(), inline()),
            Err(OidcConfigError::IssuerInvalid { .. })
        ));
        assert!(matches!(
            OidcProvider::new(ISSUER, vec![], inline()),
            Err(OidcConfigError::NoAudiences(_))
        ));
        let many = (0..=MAX_AUDIENCES).map(|i| format!("c{i}")).collect();
        assert!(matches!(
            OidcProvider::new(ISSUER, many, inline()),
            Err(OidcConfigError::TooManyAudiences { count: 101, .. })
        ));
        assert!(matches!(
            OidcProvider::new(ISSUER, vec![String::new()], inline()),
            Err(OidcConfigError::InvalidAudience(_))
        ));
        assert!(matches!(
            OidcProvider::new(ISSUER, aud(), JwksSource::Url("ftp://x/jwks".to_owned())),
            Err(OidcConfigError::InvalidJwksUrl(_))
        ));
        assert!(matches!(
            OidcProvider::new(ISSUER, aud(), JwksSource::Inline("{}".to_owned())),
            Err(OidcConfigError::InvalidInlineJwks(JwksError::NoKeysArray))
        ));
        assert!(matches!(
            provider().with_refresh(Duration::from_secs(5)),
            Err(OidcConfigError::RefreshTooShort)
        ));
        assert!(matches!(
            WebIdentityVerifier::new(vec![provider(), provider()]),
            Err(OidcConfigError::DuplicateProvider(_))
        ));
    }

    #[test]
    fn jwks_parsing_keeps_only_usable_keys() {
        let jwks = Jwks::from_json(JWKS.as_bytes()).unwrap();
        assert_eq!(
            jwks.key_ids().collect::<Vec<_>>(),
            ["rsa-1", "ec-1", "ec384-1"]
        );
        let doc: Value = serde_json::from_str(JWKS).unwrap();
        let rsa_key = doc["keys"][0].clone();
        let mut enc = rsa_key.clone();
        enc["use"] = json!("enc");
        let mut short = rsa_key.clone();
        short["n"] = json!(URL_SAFE_NO_PAD.encode([0xffu8; 128]));
        let mut p521 = doc["keys"][1].clone();
        p521["crv"] = json!("P-521");
        let mut wrong_alg = doc["keys"][1].clone();
        wrong_alg["alg"] = json!("RS256");
        let only_unusable = json!({"keys": [enc, short, p521, wrong_alg, {"kty": "OKP"}, 7]});
        assert_eq!(
            Jwks::from_json(only_unusable.to_string().as_bytes()).unwrap_err(),
            JwksError::NoUsableKeys
        );
        assert!(matches!(
            Jwks::from_json(b"not json"),
            Err(JwksError::Json(_))
        ));
        assert_eq!(
            Jwks::from_json(br#"{"keys": {}}"#).unwrap_err(),
            JwksError::NoKeysArray
        );
        let too_many = json!({ "keys": vec![rsa_key; MAX_JWKS_KEYS + 1] });
        assert_eq!(
            Jwks::from_json(too_many.to_string().as_bytes()).unwrap_err(),
            JwksError::TooManyKeys
        );
    }

    #[test]
    fn provider_without_keys_is_idp_communication_error() {
        let err = verify_web_identity(&rs256(&claims()), &[provider()], |_| None, NOW).unwrap_err();
        assert_eq!(
            err,
            OidcError::KeysUnavailable {
                provider: "idp.example.com".to_owned()
            }
        );
        assert_eq!(
            (err.aws_code(), err.http_status()),
            ("IDPCommunicationError", 400)
        );
    }

    #[tokio::test]
    async fn jwks_file_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, JWKS).unwrap();
        let p = OidcProvider::new(
            ISSUER,
            vec!["client-a".to_owned()],
            JwksSource::File(path.clone()),
        )
        .unwrap();
        let verifier = WebIdentityVerifier::new(vec![p]).unwrap();
        let token = rs256(&claims());
        assert!(matches!(
            verifier.verify_cached(&token, NOW),
            Err(OidcError::KeysUnavailable { .. })
        ));
        assert!(verifier.refresh_all().await.is_empty());
        assert_eq!(
            verifier.verify_cached(&token, NOW).unwrap().subject,
            "user-1"
        );

        // A broken file keeps the last good keys.
        std::fs::write(&path, "{").unwrap();
        let failed = verifier.refresh_all().await;
        assert!(matches!(failed.as_slice(), [(_, JwksError::Json(_))]));
        assert!(verifier.verify_cached(&token, NOW).is_ok());

        // A missing file never loaded is an IdP communication error.
        let p = OidcProvider::new(
            ISSUER,
            vec!["client-a".to_owned()],
            JwksSource::File(dir.path().join("missing.json")),
        )
        .unwrap();
        let verifier = WebIdentityVerifier::new(vec![p]).unwrap();
        assert!(matches!(
            verifier.refresh_all().await.as_slice(),
            [(_, JwksError::Read { .. })]
        ));
        let err = verifier.verify(&token, NOW).await.unwrap_err();
        assert_eq!(err.aws_code(), "IDPCommunicationError");
    }

    /// A one-route HTTP server standing in for an IdP's JWKS endpoint.
    struct TestIdp {
        addr: SocketAddr,
        hits: Arc<AtomicUsize>,
        response: Arc<Mutex<(u16, Vec<u8>)>>,
    }

    impl TestIdp {
        async fn start(status: u16, body: &[u8]) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let hits = Arc::new(AtomicUsize::new(0));
            let response = Arc::new(Mutex::new((status, body.to_vec())));
            let (h, r) = (Arc::clone(&hits), Arc::clone(&response));
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (h, r) = (Arc::clone(&h), Arc::clone(&r));
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |_req| {
                            h.fetch_add(1, Ordering::SeqCst);
                            let (status, body) = r.lock().unwrap().clone();
                            async move {
                                Ok::<_, Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .header("content-type", "application/json")
                                        .body(http_body_util::Full::new(Bytes::from(body)))
                                        .unwrap(),
                                )
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            Self {
                addr,
                hits,
                response,
            }
        }

        fn url(&self) -> String {
            format!("http://{}/.well-known/jwks.json", self.addr)
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        fn serve(&self, status: u16, body: &[u8]) {
            *self.response.lock().unwrap() = (status, body.to_vec());
        }
    }

    fn url_provider(url: String) -> OidcProvider {
        OidcProvider::new(ISSUER, vec!["client-a".to_owned()], JwksSource::Url(url)).unwrap()
    }

    fn both_key_sets() -> Vec<u8> {
        let mut doc: Value = serde_json::from_str(JWKS).unwrap();
        let other: Value = serde_json::from_str(JWKS_OTHER).unwrap();
        let extra = other["keys"].as_array().unwrap().clone();
        doc["keys"].as_array_mut().unwrap().extend(extra);
        doc.to_string().into_bytes()
    }

    #[tokio::test]
    async fn http_fetch_and_rate_limited_refresh_on_unknown_kid() {
        let idp = TestIdp::start(200, JWKS.as_bytes()).await;
        let verifier = WebIdentityVerifier::new(vec![url_provider(idp.url())]).unwrap();
        assert!(verifier.refresh_all().await.is_empty());
        assert_eq!(idp.hits(), 1);
        assert!(verifier.verify(&rs256(&claims()), NOW).await.is_ok());
        assert_eq!(idp.hits(), 1, "a known kid needs no fetch");

        // The IdP rotates in a new key: the first unknown kid forces one reload and verifies.
        idp.serve(200, &both_key_sets());
        let other = EncodingKey::from_rsa_pem(RSA_OTHER_KEY).unwrap();
        let rotated = sign(Algorithm::RS256, Some("rsa-other"), &other, &claims());
        assert!(matches!(
            verifier.verify_cached(&rotated, NOW),
            Err(OidcError::UnknownSigningKey { .. })
        ));
        assert_eq!(
            verifier.verify(&rotated, NOW).await.unwrap().subject,
            "user-1"
        );
        assert_eq!(idp.hits(), 2);

        // Another unknown kid within five minutes does not fetch again.
        let forged = sign(Algorithm::RS256, Some("forged"), &other, &claims());
        for _ in 0..3 {
            assert!(matches!(
                verifier.verify(&forged, NOW).await,
                Err(OidcError::UnknownSigningKey { .. })
            ));
        }
        assert_eq!(idp.hits(), 2);
        // Failures other than an unknown key never fetch.
        let mut c = claims();
        c["aud"] = json!("nope");
        assert!(verifier.verify(&rs256(&c), NOW).await.is_err());
        assert_eq!(idp.hits(), 2);
        assert_eq!(verifier.cache("idp.example.com").unwrap().load_count(), 2);
    }

    #[tokio::test]
    async fn forced_refresh_interval_is_configurable() {
        let idp = TestIdp::start(200, JWKS.as_bytes()).await;
        let verifier = WebIdentityVerifier::with_forced_refresh_interval(
            vec![url_provider(idp.url())],
            Duration::ZERO,
        )
        .unwrap();
        let forged = sign(Algorithm::RS256, Some("forged"), &rsa(), &claims());
        for expected in 1..=3 {
            assert!(verifier.verify(&forged, NOW).await.is_err());
            assert_eq!(idp.hits(), expected);
        }
    }

    #[tokio::test]
    async fn failed_fetch_keeps_last_good_keys() {
        let idp = TestIdp::start(503, b"unavailable").await;
        let verifier = WebIdentityVerifier::new(vec![url_provider(idp.url())]).unwrap();
        let failed = verifier.refresh_all().await;
        assert!(matches!(
            failed.as_slice(),
            [(_, JwksError::Status { status: 503, .. })]
        ));
        let token = rs256(&claims());
        // Never had keys: one rate-limited attempt, still failing → IDPCommunicationError.
        let err = verifier.verify(&token, NOW).await.unwrap_err();
        assert_eq!(err.aws_code(), "IDPCommunicationError");
        assert_eq!(idp.hits(), 2);

        idp.serve(200, JWKS.as_bytes());
        assert!(verifier.refresh_all().await.is_empty());
        idp.serve(200, b"<html>oops</html>");
        assert!(matches!(
            verifier.refresh_all().await.as_slice(),
            [(_, JwksError::Json(_))]
        ));
        assert!(
            verifier.verify_cached(&token, NOW).is_ok(),
            "last good keys kept"
        );
    }

    #[tokio::test]
    async fn oversized_jwks_is_refused() {
        let idp = TestIdp::start(200, &vec![b' '; MAX_JWKS_BYTES + 1]).await;
        let cache = JwksCache::new("big", JwksSource::Url(idp.url()));
        assert_eq!(cache.refresh().await.unwrap_err(), JwksError::TooLarge);
        assert!(cache.current().is_none());
    }

    #[tokio::test]
    async fn https_client_builds_and_reports_connection_errors() {
        // Nothing listens on port 1; the TLS client must still be constructed without panicking.
        let cache = JwksCache::new(
            "tls",
            JwksSource::Url("https://127.0.0.1:1/jwks".to_owned()),
        );
        let err = cache.refresh().await.unwrap_err();
        assert!(matches!(err, JwksError::Fetch { .. }), "{err}");
    }

    #[tokio::test]
    async fn periodic_refresh_loads_keys_and_stops_with_the_cache() {
        let idp = TestIdp::start(200, JWKS.as_bytes()).await;
        let cache = Arc::new(JwksCache::new("p", JwksSource::Url(idp.url())));
        let task = cache.spawn_periodic_refresh(Duration::from_secs(3600));
        for _ in 0..200 {
            if cache.current().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(cache.current().map(|k| k.len()), Some(3));
        drop(cache);
        task.abort();
    }

    #[test]
    fn carry_over_keeps_keys_across_reload() {
        let p = url_provider("http://127.0.0.1:9/jwks".to_owned());
        let old = WebIdentityVerifier::new(vec![p.clone()]).unwrap();
        old.cache("idp.example.com")
            .unwrap()
            .set(Arc::new(Jwks::from_json(JWKS.as_bytes()).unwrap()));
        let new = WebIdentityVerifier::new(vec![p]).unwrap();
        new.carry_over_keys(&old);
        assert!(new.verify_cached(&rs256(&claims()), NOW).is_ok());
    }
}
