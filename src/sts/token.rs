//! Stateless sealed STS session tokens.
//!
//! Tollgate's STS issues temporary credentials (`ASIA…` access key id, secret access key, session
//! token) without keeping any per-session state: everything a replica needs to authenticate a
//! request signed with those credentials travels inside the session token, sealed with a key only
//! the Tollgate fleet holds. Any replica that holds the key ring can verify any token; nothing is
//! stored, replicated or looked up. This is the design of `reference/sts.md` §7.2.
//!
//! # Token format
//!
//! ```text
//! token = "v1." kid "." base64url-nopad( nonce(12) || AES-256-GCM(K_seal[kid], nonce, claims, aad) || tag(16) )
//! aad   = "v1" || u8(len kid) || kid || u8(len akid) || akid
//! ```
//!
//! - **AEAD for integrity and confidentiality.** AES-256-GCM both authenticates the claims (a
//!   client cannot change its account, role, tags, session policy or expiry: any change to any
//!   byte of the token makes the tag check fail) and hides them (unlike a JWT, whose claims any
//!   holder can read). This is what Ceph's AES-CBC-with-a-fixed-IV token lacks (`sts.md` §7.1).
//!   Nonces are 96 random bits per token; keep the number of tokens sealed under one key well
//!   below 2³² (rotate keys) so that a nonce collision stays negligible.
//! - **Bound to the access key id.** The access key id the client presents (in the SigV4
//!   credential scope) is part of the AEAD's associated data, so a token presented with any other
//!   `ASIA…` id fails authentication (`Invalid`). The claims do not repeat it (version 3): the
//!   associated data already binds it, and every byte of the token is hashed into the canonical
//!   request of every call signed with it. (Version-2 claims carried it; it is compared again, in
//!   constant time, when such a token is opened.)
//! - **Key id for rotation.** `kid` names the ring key that sealed the token. A [`KeyRing`] is an
//!   ordered list, newest first: [`seal`] always uses the newest key, [`open`] accepts any key
//!   still in the ring. Rotation = put a new key first and keep the old one for at least the
//!   longest session lifetime (36 h for `GetSessionToken`) plus clock skew; removing a kid is the
//!   emergency kill switch for every session it sealed (`UnknownKey`).
//! - **Derived secret.** The secret access key is never stored or shipped inside the token: it is
//!   `base64(HMAC-SHA256(K_derive[kid], "tollgate-sts-secret-v1" || u16be(len akid) || akid ||
//!   i64be(iat) || nonce))` cut to 40 characters (the shape of an AWS secret). Whoever can open
//!   the token can recompute it; a client holding only the token (e.g. leaked from a log) cannot.
//!   The nonce makes each issued secret unique even for equal claims.
//! - **Domain-separated keys.** Each configured 32-byte ring key is only input keying material:
//!   HKDF-SHA256 (extract with a fixed salt, expand with `label || 0 || kid`) turns it into an
//!   AES-256-GCM sealing key and an HMAC secret-derivation key, so no key is used for two
//!   purposes and equal raw keys under two kids still yield unrelated keys. Only the derived keys
//!   are kept, in zeroizing storage; the raw keys are wiped once derived.
//! - **Authenticated issue time.** `issued_at` is an authenticated claim: it feeds
//!   `aws:TokenIssueTime`, so revocation by "deny tokens issued before T" works as in AWS.
//!
//! # Claims encoding (version 3)
//!
//! A hand-written, canonical, length-prefixed binary format: decoding it is a bounds-checked
//! walk plus one allocation per string, where a JSON layer would cost several times the AEAD
//! (see `benches/sts_token.rs`, whose peer is an HS512 JWT). It is also compact, because the
//! token travels in every request and is hashed into every canonical request: a typical role
//! session's token is about 140 characters (version 2 made it about 200; AWS's are 400 to
//! 1,000). `varint` is unsigned LEB128, minimally encoded, in at most 3 bytes for lengths and
//! counts and at most 10 for times; `str` is `varint(len) || UTF-8 bytes` with `len ≤ 4096`;
//! `list<T>` is `varint(count) || T*` with `count ≤ 64`; `opt<str>` is present iff its bit in
//! `present` is set, or for `account`, `arn` and `user_id` iff their "derived" flag is clear.
//!
//! | field | encoding |
//! |---|---|
//! | version | `u8` = 3 |
//! | kind | `u8`: 1 AssumedRole, 2 WebIdentity, 3 SessionToken, 4 FederatedUser |
//! | flags | `u8`: bit 0 `chained`, bit 1 `mfa_authenticated`, bits 2–4 `account`/`arn`/`user_id` derived (left out), bit 5 short role ARN; bits 6–7 are 0 |
//! | present | `u8`: bits 0–6 = role_arn, role_id, session_name, source_identity, session_policy, web_identity, parent_user_arn; bit 7 is 0 |
//! | issued_at | `varint` (epoch seconds, ≥ 0) |
//! | lifetime | `varint`: `expires_at - issued_at`, 1 to 2³² − 1 |
//! | account, arn, user_id | `opt<str>` each (see flags) |
//! | role_arn | if present: short form (flag bit 5: `arn:aws:iam::<12 digits>:role/<rest>`) = account number as 5-byte little-endian (< 10¹²) then `str` rest; otherwise `str` |
//! | role_id, session_name, source_identity | `opt<str>` each |
//! | tags | `list<(str, str)>` |
//! | transitive_tag_keys | `list<str>` |
//! | session_policy | `opt<str>` |
//! | policy_arns | `list<str>` |
//! | web_identity | if present: provider, audience, subject `str`, amr `list<str>` |
//! | parent_user_arn | `opt<str>` |
//!
//! Decoding ([`decode_claims`]) is total: any byte string either decodes or returns
//! [`TokenError::Malformed`]; unknown bits, trailing bytes, over-long lengths or counts and
//! non-minimal varints, a zero lifetime, and a long role ARN that has a short form are all
//! refused, so every accepted byte string is the unique encoding of its claims
//! (`encode_claims(decode_claims(b, akid)?) == b`). Allocations are bounded by the input
//! length. A format change bumps the version byte (and the token's `v1.` prefix if the envelope
//! changes). Version 2 (times as two `i64`, the access key id stored, role ARNs in full) is still
//! decoded, so that tokens issued before an upgrade keep working until they expire; it is never
//! written.
//!
//! # Verification
//!
//! [`open`] checks, in order: total length ≤ [`MAX_TOKEN_LEN`]; the `v1.<kid>.<base64url>` shape;
//! the kid is in the ring; the AEAD tag (with the presented access key id in the associated
//! data); the claims decode; the access key id matches; `now < expires_at`. Then it re-derives the
//! secret so that SigV4 verification can proceed. Every failure except expiry maps to AWS's
//! `InvalidClientTokenId`; expiry maps to `ExpiredToken` ([`TokenError::aws_error_code`]). The
//! work is pure (no I/O, no clock): the caller passes `now` and may cache results for no longer
//! than `expires_at` (`sts::session` keys its cache by access key id and checks the token).

use std::fmt;

use aes_gcm::aead::{AeadInOut, Key, KeyInit, Nonce, Tag};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::credentials::SecretKey;

/// Longest session token [`open`] looks at; longer ones are refused before any other work, and
/// [`seal`] refuses claims that would produce one.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Length of a derived secret access key, as for AWS secrets.
pub const SECRET_ACCESS_KEY_LEN: usize = 40;

/// Longest string field (in UTF-8 bytes) in encoded claims.
pub const MAX_CLAIM_FIELD_LEN: usize = 4096;

/// Most items in a list field (tags, transitive tag keys, policy ARNs, `amr`) of encoded claims.
pub const MAX_CLAIM_LIST_LEN: usize = 64;

/// Token prefix: format version 1.
const TOKEN_PREFIX: &str = "v1.";
/// AAD prefix: format version 1.
const AAD_VERSION: &[u8] = b"v1";
/// Longest key id.
const MAX_KID_LEN: usize = 32;
/// Longest access key id accepted by [`open`] (the STS model allows 16–128 characters).
const MAX_ACCESS_KEY_ID_LEN: usize = 128;
/// Largest associated data: version, two length bytes, kid, access key id.
const MAX_AAD_LEN: usize = AAD_VERSION.len() + 2 + MAX_KID_LEN + MAX_ACCESS_KEY_ID_LEN;
/// AES-GCM nonce length.
const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;

/// HKDF salt for ring keys.
const HKDF_SALT: &[u8] = b"tollgate-sts-keyring-v1";
/// HKDF label of the AES-256-GCM sealing key.
const SEAL_KEY_LABEL: &[u8] = b"tollgate-sts-seal-v1";
/// HKDF label of the secret-derivation key.
const DERIVE_KEY_LABEL: &[u8] = b"tollgate-sts-derive-v1";
/// HMAC label of derived secret access keys.
const SECRET_LABEL: &[u8] = b"tollgate-sts-secret-v1";

/// Prefix of temporary access key ids.
const ACCESS_KEY_ID_PREFIX: &str = "ASIA";
/// Random bytes behind an access key id (16 base32 characters).
const ACCESS_KEY_ID_RANDOM_LEN: usize = 10;
/// Length of a generated access key id.
const ACCESS_KEY_ID_LEN: usize = 20;

/// Claims encoding version written by [`encode_claims`].
pub const CLAIMS_VERSION: u8 = 3;
/// The previous version (fixed-width times, the access key id stored), still decoded so that
/// sessions issued before an upgrade keep working until they expire.
const CLAIMS_VERSION_2: u8 = 2;
/// Longest session lifetime a version-3 encoding carries (`expires_at - issued_at`, seconds).
const MAX_LIFETIME: u64 = u32::MAX as u64;
const FLAG_CHAINED: u8 = 1 << 0;
const FLAG_MFA: u8 = 1 << 1;
/// `account` is the role ARN's account (not stored).
const FLAG_ACCOUNT_DERIVED: u8 = 1 << 2;
/// `arn` is `arn:<partition>:sts::<account>:assumed-role/<role name>/<session>` (not stored).
const FLAG_ARN_DERIVED: u8 = 1 << 3;
/// `user_id` is `<role id>:<session>` (not stored).
const FLAG_USER_ID_DERIVED: u8 = 1 << 4;
/// `role_arn` is `arn:aws:iam::<12 digits>:role/<rest>`, stored as the account number (5 bytes)
/// and `<rest>` (version 3).
const FLAG_ROLE_ARN_SHORT: u8 = 1 << 5;
const FLAGS_KNOWN_V2: u8 =
    FLAG_CHAINED | FLAG_MFA | FLAG_ACCOUNT_DERIVED | FLAG_ARN_DERIVED | FLAG_USER_ID_DERIVED;
const FLAGS_KNOWN: u8 = FLAGS_KNOWN_V2 | FLAG_ROLE_ARN_SHORT;
/// The prefix and infix a short role ARN leaves out.
const ROLE_ARN_PREFIX: &str = "arn:aws:iam::";
const ROLE_ARN_INFIX: &str = ":role/";

/// The account number and the part after `:role/` of a role ARN in the `aws` partition whose
/// account is 12 digits: what a version-3 encoding stores instead of the ARN.
fn short_role_arn(arn: &str) -> Option<(u64, &str)> {
    let rest = arn.strip_prefix(ROLE_ARN_PREFIX)?;
    let (account, tail) = rest.split_at_checked(12)?;
    let tail = tail.strip_prefix(ROLE_ARN_INFIX)?;
    if !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    account.parse().ok().map(|n| (n, tail))
}

/// The values of `account`, `arn` and `user_id` that role-session claims imply; a field equal to
/// its implied value is left out of the encoding (the token shrinks by a third, and so does the
/// work of hashing it into every canonical request).
fn derived(
    role_arn: Option<&str>,
    role_id: Option<&str>,
    session: Option<&str>,
) -> (Option<String>, Option<String>, Option<String>) {
    // arn:<partition>:iam::<account>:role/<path/><name>
    let parsed = role_arn.and_then(|a| {
        let rest = a.strip_prefix("arn:")?;
        let (partition, rest) = rest.split_once(':')?;
        let rest = rest.strip_prefix("iam::")?;
        let (account, resource) = rest.split_once(':')?;
        let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
        Some((partition, account, name))
    });
    let account = parsed.map(|(_, account, _)| account.to_owned());
    let arn = match (parsed, session) {
        (Some((partition, account, name)), Some(s)) => {
            let mut arn =
                String::with_capacity(28 + partition.len() + account.len() + name.len() + s.len());
            for part in [
                "arn:",
                partition,
                ":sts::",
                account,
                ":assumed-role/",
                name,
                "/",
                s,
            ] {
                arn.push_str(part);
            }
            Some(arn)
        }
        _ => None,
    };
    let user_id = match (role_id, session) {
        (Some(id), Some(s)) => {
            let mut u = String::with_capacity(id.len() + 1 + s.len());
            u.push_str(id);
            u.push(':');
            u.push_str(s);
            Some(u)
        }
        _ => None,
    };
    (account, arn, user_id)
}
const HAS_ROLE_ARN: u8 = 1 << 0;
const HAS_ROLE_ID: u8 = 1 << 1;
const HAS_SESSION_NAME: u8 = 1 << 2;
const HAS_SOURCE_IDENTITY: u8 = 1 << 3;
const HAS_SESSION_POLICY: u8 = 1 << 4;
const HAS_WEB_IDENTITY: u8 = 1 << 5;
const HAS_PARENT_USER_ARN: u8 = 1 << 6;
const PRESENT_KNOWN: u8 = 0x7f;

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

/// How a session was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// `AssumeRole`.
    AssumedRole,
    /// `AssumeRoleWithWebIdentity`.
    WebIdentity,
    /// `GetSessionToken`: temporary credentials of an IAM user.
    SessionToken,
    /// `GetFederationToken` (not issued yet; reserved in the encoding).
    FederatedUser,
}

impl SessionKind {
    fn code(self) -> u8 {
        match self {
            SessionKind::AssumedRole => 1,
            SessionKind::WebIdentity => 2,
            SessionKind::SessionToken => 3,
            SessionKind::FederatedUser => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(SessionKind::AssumedRole),
            2 => Some(SessionKind::WebIdentity),
            3 => Some(SessionKind::SessionToken),
            4 => Some(SessionKind::FederatedUser),
            _ => None,
        }
    }
}

/// The web identity (OIDC) a session was created from, for the `<provider>:aud|sub|amr`
/// condition keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebIdentityClaims {
    /// The issuer without `https://`, e.g. `oidc.eks.us-east-1.amazonaws.com/id/ABC`.
    pub provider: String,
    /// The audience (client id) that matched.
    pub audience: String,
    /// The `sub` claim.
    pub subject: String,
    /// The `amr` claim values.
    pub amr: Vec<String>,
}

/// Everything Tollgate knows about a temporary session, sealed inside its session token.
///
/// None of these fields is secret (the secret access key is derived, not stored), so `Debug`
/// prints them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// The temporary access key id (`ASIA…`) the token is bound to. Leave empty when calling
    /// [`seal`] to have one generated.
    pub access_key_id: String,
    /// Issue time, epoch seconds (`aws:TokenIssueTime`).
    pub issued_at: i64,
    /// Expiry, epoch seconds; the credentials are refused from this second on.
    pub expires_at: i64,
    /// The 12-digit account id.
    pub account: String,
    /// How the session was created.
    pub kind: SessionKind,
    /// The principal ARN: `arn:aws:sts::<acct>:assumed-role/<role>/<session>`, or the IAM user
    /// ARN for `GetSessionToken`.
    pub arn: String,
    /// The `aws:userid` value: `AROA…:<session>` or `AIDA…`.
    pub user_id: String,
    /// The role's ARN, for role sessions.
    pub role_arn: Option<String>,
    /// The role's unique id (`AROA…`), for role sessions.
    pub role_id: Option<String>,
    /// The role session name.
    pub session_name: Option<String>,
    /// `aws:SourceIdentity`; persists along a role chain.
    pub source_identity: Option<String>,
    /// Session tags (`aws:PrincipalTag/*`).
    pub tags: Vec<(String, String)>,
    /// Keys of the tags that pass on to chained sessions.
    pub transitive_tag_keys: Vec<String>,
    /// The inline session policy, as JSON text (up to 2048 characters).
    pub session_policy: Option<String>,
    /// Managed session policy ARNs.
    pub policy_arns: Vec<String>,
    /// The session was created with temporary credentials (role chaining: 1 h cap on later
    /// `AssumeRole` calls).
    pub chained: bool,
    /// The caller authenticated with MFA (`aws:MultiFactorAuthPresent`).
    pub mfa_authenticated: bool,
    /// The web identity, for `AssumeRoleWithWebIdentity` sessions.
    pub web_identity: Option<WebIdentityClaims>,
    /// The originating IAM user: for `GetSessionToken` and along a chain started by a user.
    pub parent_user_arn: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a session token could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a `v1.<kid>.<base64url>` token, or its claims do not decode.
    #[error("session token is malformed")]
    Malformed,
    /// The token names a key id that is not in the key ring (foreign or retired key).
    #[error("session token was sealed with an unknown key")]
    UnknownKey,
    /// The token failed authentication: altered, sealed by another key, or presented with another
    /// access key id.
    #[error("session token is invalid")]
    Invalid,
    /// The session has expired.
    #[error("session token has expired")]
    Expired,
    /// The token (or, when sealing, the claims) exceed the size limits.
    #[error("session token is too large")]
    TooLarge,
    /// Sealing was refused: the claims are inconsistent (the message says which field).
    #[error("session claims are invalid: {0}")]
    InvalidClaims(&'static str),
}

impl TokenError {
    /// The AWS error code a request presenting such a token gets: `ExpiredToken` for an expired
    /// session, `InvalidClientTokenId` otherwise (HTTP 403 for both).
    pub fn aws_error_code(self) -> &'static str {
        match self {
            TokenError::Expired => "ExpiredToken",
            _ => "InvalidClientTokenId",
        }
    }

    /// The AWS error message that goes with [`TokenError::aws_error_code`].
    pub fn aws_message(self) -> &'static str {
        match self {
            TokenError::Expired => "The security token included in the request is expired",
            _ => "The security token included in the request is invalid",
        }
    }
}

/// Why a key ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// No keys.
    #[error("the session-token key ring is empty")]
    Empty,
    /// Two keys with the same id.
    #[error("duplicate session-token key id `{0}`")]
    DuplicateKid(String),
    /// A key id outside `[A-Za-z0-9_-]{1,32}`.
    #[error("invalid session-token key id `{0}`: expected 1 to 32 characters from A-Z, a-z, 0-9, `_` and `-`")]
    InvalidKid(String),
    /// A key that is not base64.
    #[error("session-token key `{0}` is not valid base64")]
    InvalidBase64(String),
    /// A key that is not 32 bytes long.
    #[error("session-token key `{kid}` must be 32 bytes, not {len}")]
    InvalidKeyLength {
        /// The key id.
        kid: String,
        /// The decoded length.
        len: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Key ring
// ---------------------------------------------------------------------------------------------

/// One ring key, as derived subkeys (the raw key is not kept).
#[derive(Clone)]
struct RingKey {
    kid: String,
    seal: Zeroizing<[u8; 32]>,
    derive: Zeroizing<[u8; 32]>,
}

impl RingKey {
    fn new(kid: String, raw: &[u8; 32]) -> Self {
        let seal = hkdf_sha256(raw, SEAL_KEY_LABEL, &kid);
        let derive = hkdf_sha256(raw, DERIVE_KEY_LABEL, &kid);
        Self { kid, seal, derive }
    }

    /// The AES-256-GCM instance for this key. Built per call rather than cached: `aes-gcm` is
    /// built without its `zeroize` feature, so a cached key schedule would outlive the ring in
    /// memory; the expansion costs well under 100 ns with AES-NI.
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(<&Key<Aes256Gcm>>::from(&*self.seal))
    }

    /// The secret access key of the credentials `(akid, iat, nonce)`.
    fn derive_secret(
        &self,
        access_key_id: &str,
        issued_at: i64,
        nonce: &[u8; NONCE_LEN],
    ) -> SecretKey {
        let mut mac = hmac_sha256(&*self.derive);
        mac.update(SECRET_LABEL);
        // Access key ids are at most `MAX_CLAIM_FIELD_LEN` bytes, which fits a u16.
        let len = u16::try_from(access_key_id.len()).unwrap_or(u16::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(access_key_id.as_bytes());
        mac.update(&issued_at.to_be_bytes());
        mac.update(nonce);
        let mut secret = Zeroizing::new(STANDARD.encode(mac.finalize().into_bytes()));
        secret.truncate(SECRET_ACCESS_KEY_LEN);
        SecretKey::new(std::mem::take(&mut *secret))
    }
}

/// The keys session tokens are sealed with, newest first.
///
/// [`seal`] uses the first key; [`open`] accepts any key in the ring. Keys are zeroized on drop
/// and `Debug` prints only the key ids.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl KeyRing {
    /// Builds a ring from `(kid, key)` pairs, newest first. Refuses an empty ring, duplicate
    /// kids and kids outside `[A-Za-z0-9_-]{1,32}`. The raw keys are wiped once the sealing and
    /// secret-derivation keys have been derived from them.
    pub fn new(mut keys: Vec<(String, [u8; 32])>) -> Result<Self, KeyRingError> {
        let mut ring = Vec::with_capacity(keys.len());
        let mut result = Ok(());
        // Iterate in place so that the keys are wiped where they lie, in the vector's buffer.
        for (kid, raw) in keys.iter_mut() {
            if result.is_ok() {
                result = Self::push(&mut ring, std::mem::take(kid), raw);
            }
            raw.zeroize();
        }
        drop(keys);
        result?;
        Self::finish(ring)
    }

    /// Builds a ring from `(kid, base64 key)` pairs, newest first, as found in configuration
    /// (`openssl rand -base64 32`). Each key must be standard base64 (padding optional,
    /// surrounding whitespace ignored) of exactly 32 bytes. Same checks as [`KeyRing::new`].
    pub fn from_base64_keys<I, K, V>(keys: I) -> Result<Self, KeyRingError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: AsRef<str>,
    {
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let mut ring = Vec::new();
        for (kid, b64) in keys {
            let kid = kid.into();
            let Ok(bytes) = LENIENT.decode(b64.as_ref().trim()) else {
                return Err(KeyRingError::InvalidBase64(kid));
            };
            let bytes = Zeroizing::new(bytes);
            let Ok(raw) = <&[u8; 32]>::try_from(bytes.as_slice()) else {
                let len = bytes.len();
                return Err(KeyRingError::InvalidKeyLength { kid, len });
            };
            Self::push(&mut ring, kid, raw)?;
        }
        Self::finish(ring)
    }

    /// Checks `kid` and appends the keys derived from `raw`.
    fn push(ring: &mut Vec<RingKey>, kid: String, raw: &[u8; 32]) -> Result<(), KeyRingError> {
        Self::check_kid(ring, &kid)?;
        ring.push(RingKey::new(kid, raw));
        Ok(())
    }

    fn finish(keys: Vec<RingKey>) -> Result<Self, KeyRingError> {
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(Self { keys })
    }

    fn check_kid(ring: &[RingKey], kid: &str) -> Result<(), KeyRingError> {
        let valid = !kid.is_empty()
            && kid.len() <= MAX_KID_LEN
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(KeyRingError::InvalidKid(kid.to_owned()));
        }
        if ring.iter().any(|k| k.kid == kid) {
            return Err(KeyRingError::DuplicateKid(kid.to_owned()));
        }
        Ok(())
    }

    /// The id of the key new tokens are sealed with (the newest).
    pub fn seal_kid(&self) -> &str {
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// The key ids, newest first.
    pub fn kids(&self) -> impl Iterator<Item = &str> + '_ {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// Whether the ring holds key `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.find(kid).is_some()
    }

    fn find(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish()
    }
}

/// HMAC-SHA256 keyed with `key`.
#[expect(
    clippy::expect_used,
    reason = "HMAC accepts keys of any length; `new_from_slice` cannot fail"
)]
fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// HKDF-SHA256 (RFC 5869) of a 32-byte output: extract with [`HKDF_SALT`], expand with
/// `label || 0 || kid`.
fn hkdf_sha256(ikm: &[u8; 32], label: &[u8], kid: &str) -> Zeroizing<[u8; 32]> {
    let mut extract = hmac_sha256(HKDF_SALT);
    extract.update(ikm);
    let mut prk = Zeroizing::new([0u8; 32]);
    prk.copy_from_slice(&extract.finalize().into_bytes());
    let mut expand = hmac_sha256(&*prk);
    expand.update(label);
    expand.update(&[0]);
    expand.update(kid.as_bytes());
    expand.update(&[1]);
    let mut okm = Zeroizing::new([0u8; 32]);
    okm.copy_from_slice(&expand.finalize().into_bytes());
    okm
}

// ---------------------------------------------------------------------------------------------
// Issued and opened credentials
// ---------------------------------------------------------------------------------------------

/// A sealed session token. Zeroized on drop; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    /// The token text, for the `SessionToken` element of an STS response. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// Temporary credentials returned by [`seal`], for the `Credentials` element of an STS response.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    /// The `ASIA…` access key id.
    pub access_key_id: String,
    /// The derived secret access key (40 characters).
    pub secret_access_key: SecretKey,
    /// The sealed session token.
    pub session_token: SessionToken,
    /// Expiry, epoch seconds.
    pub expiration: i64,
}

/// A session token that [`open`] authenticated.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    /// The session's claims.
    pub claims: SessionClaims,
    /// The re-derived secret access key, to verify the request's SigV4 signature with.
    pub secret: SecretKey,
    /// The id of the ring key that sealed the token.
    pub kid: String,
}

// ---------------------------------------------------------------------------------------------
// Access key ids
// ---------------------------------------------------------------------------------------------

/// A fresh temporary access key id: `ASIA` followed by 16 base32 characters (`A–Z2–7`) encoding
/// 80 random bits.
pub fn new_access_key_id<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut random = [0u8; ACCESS_KEY_ID_RANDOM_LEN];
    rng.fill_bytes(&mut random);
    let mut id = String::with_capacity(ACCESS_KEY_ID_LEN);
    id.push_str(ACCESS_KEY_ID_PREFIX);
    for half in random.chunks(5) {
        let bits = half.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        for shift in (0..8).rev() {
            // Each 5-bit group is < 32, so the `as u8` cannot truncate.
            let v = ((bits >> (shift * 5)) & 31) as u8;
            id.push(char::from(if v < 26 { b'A' + v } else { b'2' + (v - 26) }));
        }
    }
    id
}

/// Whether `id` has the shape of a temporary access key id this module generates:
/// `ASIA[A-Z2-7]{16}`.
pub fn is_session_access_key_id(id: &str) -> bool {
    id.len() == ACCESS_KEY_ID_LEN
        && id.starts_with(ACCESS_KEY_ID_PREFIX)
        && id
            .bytes()
            .skip(ACCESS_KEY_ID_PREFIX.len())
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

// ---------------------------------------------------------------------------------------------
// Seal and open
// ---------------------------------------------------------------------------------------------

/// Seals `claims` with the ring's newest key and returns the credentials to hand out.
///
/// If `claims.access_key_id` is empty a fresh one is generated ([`new_access_key_id`]);
/// otherwise it must have the `ASIA[A-Z2-7]{16}` shape. Fails with
/// [`TokenError::InvalidClaims`] if `expires_at <= issued_at`, and with [`TokenError::TooLarge`]
/// if a field exceeds [`MAX_CLAIM_FIELD_LEN`] bytes, a list [`MAX_CLAIM_LIST_LEN`] items, or the
/// token [`MAX_TOKEN_LEN`] characters.
pub fn seal<R: RngCore + CryptoRng + ?Sized>(
    ring: &KeyRing,
    claims: &SessionClaims,
    rng: &mut R,
) -> Result<IssuedCredentials, TokenError> {
    let key = ring.keys.first().ok_or(TokenError::UnknownKey)?;
    let access_key_id = if claims.access_key_id.is_empty() {
        new_access_key_id(rng)
    } else if is_session_access_key_id(&claims.access_key_id) {
        claims.access_key_id.clone()
    } else {
        return Err(TokenError::InvalidClaims(
            "access key id must match `ASIA[A-Z2-7]{16}`",
        ));
    };
    if claims.expires_at <= claims.issued_at {
        return Err(TokenError::InvalidClaims(
            "expiry must be after the issue time",
        ));
    }

    // nonce || plaintext, encrypted in place after the nonce, then the tag appended.
    let mut sealed = Vec::with_capacity(NONCE_LEN + 320 + TAG_LEN);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    sealed.extend_from_slice(&nonce);
    encode_into(&mut sealed, claims)?;
    let aad = Aad::new(&key.kid, &access_key_id)?;
    let (_, plaintext) = sealed
        .split_first_chunk_mut::<NONCE_LEN>()
        .ok_or(TokenError::Malformed)?;
    let tag = key
        .cipher()
        .encrypt_inout_detached(
            <&Nonce<Aes256Gcm>>::from(&nonce),
            aad.as_bytes(),
            plaintext.into(),
        )
        .map_err(|_| TokenError::TooLarge)?;
    sealed.extend_from_slice(&tag);

    let b64_len = (sealed.len() * 4).div_ceil(3);
    let token_len = TOKEN_PREFIX.len() + key.kid.len() + 1 + b64_len;
    if token_len > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    let mut token = String::with_capacity(token_len);
    token.push_str(TOKEN_PREFIX);
    token.push_str(&key.kid);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&sealed, &mut token);

    let secret_access_key = key.derive_secret(&access_key_id, claims.issued_at, &nonce);
    Ok(IssuedCredentials {
        access_key_id,
        secret_access_key,
        session_token: SessionToken(Zeroizing::new(token)),
        expiration: claims.expires_at,
    })
}

/// Opens a session token presented with `access_key_id` at time `now` (epoch seconds).
///
/// Errors: [`TokenError::TooLarge`] over [`MAX_TOKEN_LEN`]; [`TokenError::Malformed`] if it is
/// not `v1.<kid>.<base64url>`; [`TokenError::UnknownKey`] if the kid is not in the ring;
/// [`TokenError::Invalid`] if authentication fails (altered token, other key, other access key
/// id); [`TokenError::Expired`] if `now >= expires_at`.
pub fn open(
    ring: &KeyRing,
    token: &str,
    access_key_id: &str,
    now: i64,
) -> Result<OpenedSession, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    let rest = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(TokenError::Malformed)?;
    let (kid, payload) = rest.split_once('.').ok_or(TokenError::Malformed)?;
    let key = ring.find(kid).ok_or(TokenError::UnknownKey)?;
    if access_key_id.len() > MAX_ACCESS_KEY_ID_LEN {
        return Err(TokenError::Invalid);
    }
    let mut sealed = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let (body, tag) = sealed
        .split_last_chunk_mut::<TAG_LEN>()
        .ok_or(TokenError::Malformed)?;
    let (nonce, ciphertext) = body
        .split_first_chunk_mut::<NONCE_LEN>()
        .ok_or(TokenError::Malformed)?;
    let aad = Aad::new(&key.kid, access_key_id)?;
    key.cipher()
        .decrypt_inout_detached(
            <&Nonce<Aes256Gcm>>::from(&*nonce),
            aad.as_bytes(),
            ciphertext.into(),
            <&Tag<Aes256Gcm>>::from(&*tag),
        )
        .map_err(|_| TokenError::Invalid)?;
    let claims = decode_claims(ciphertext, access_key_id)?;
    if !bool::from(
        claims
            .access_key_id
            .as_bytes()
            .ct_eq(access_key_id.as_bytes()),
    ) {
        return Err(TokenError::Invalid);
    }
    if now >= claims.expires_at {
        return Err(TokenError::Expired);
    }
    let secret = key.derive_secret(&claims.access_key_id, claims.issued_at, nonce);
    Ok(OpenedSession {
        claims,
        secret,
        kid: key.kid.clone(),
    })
}

/// The AEAD associated data `"v1" || u8(len kid) || kid || u8(len akid) || akid`, on the stack.
struct Aad {
    buf: [u8; MAX_AAD_LEN],
    len: usize,
}

impl Aad {
    fn new(kid: &str, access_key_id: &str) -> Result<Self, TokenError> {
        let mut aad = Aad {
            buf: [0; MAX_AAD_LEN],
            len: 0,
        };
        let kid_len = u8::try_from(kid.len()).map_err(|_| TokenError::Invalid)?;
        let akid_len = u8::try_from(access_key_id.len()).map_err(|_| TokenError::Invalid)?;
        for part in [
            AAD_VERSION,
            &[kid_len],
            kid.as_bytes(),
            &[akid_len],
            access_key_id.as_bytes(),
        ] {
            let end = aad.len + part.len();
            aad.buf
                .get_mut(aad.len..end)
                .ok_or(TokenError::Invalid)?
                .copy_from_slice(part);
            aad.len = end;
        }
        Ok(aad)
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Claims encoding
// ---------------------------------------------------------------------------------------------

/// Encodes claims in the version-1 binary format (see the module documentation). Fails with
/// [`TokenError::TooLarge`] if a string exceeds [`MAX_CLAIM_FIELD_LEN`] bytes or a list
/// [`MAX_CLAIM_LIST_LEN`] items. Exposed for fuzzing and tests; [`seal`] is the normal entry.
pub fn encode_claims(claims: &SessionClaims) -> Result<Vec<u8>, TokenError> {
    let mut out = Vec::with_capacity(320);
    encode_into(&mut out, claims)?;
    Ok(out)
}

/// Decodes claims encoded by [`encode_claims`]. Total: any input either decodes or fails with
/// [`TokenError::Malformed`]; never panics; allocates at most in proportion to the input.
pub fn decode_claims(bytes: &[u8], access_key_id: &str) -> Result<SessionClaims, TokenError> {
    let mut r = Reader { rest: bytes };
    let v3 = match r.u8()? {
        CLAIMS_VERSION => true,
        CLAIMS_VERSION_2 => false,
        _ => return Err(TokenError::Malformed),
    };
    let kind = SessionKind::from_code(r.u8()?).ok_or(TokenError::Malformed)?;
    let flags = r.u8()?;
    let present = r.u8()?;
    let known = if v3 { FLAGS_KNOWN } else { FLAGS_KNOWN_V2 };
    if flags & !known != 0 || present & !PRESENT_KNOWN != 0 {
        return Err(TokenError::Malformed);
    }
    let (issued_at, expires_at, access_key_id) = if v3 {
        let issued_at = r.varint64(i64::MAX as u64)?;
        let lifetime = r.varint64(MAX_LIFETIME)?;
        if lifetime == 0 {
            return Err(TokenError::Malformed);
        }
        // Both fit in an i64 and their sum does not overflow (issued_at < 2^63 - 2^32 in any
        // token that expires; a larger one is refused).
        let issued_at = i64::try_from(issued_at).map_err(|_| TokenError::Malformed)?;
        let lifetime = i64::try_from(lifetime).map_err(|_| TokenError::Malformed)?;
        let expires_at = issued_at
            .checked_add(lifetime)
            .ok_or(TokenError::Malformed)?;
        (issued_at, expires_at, access_key_id.to_owned())
    } else {
        (r.i64()?, r.i64()?, r.string()?)
    };
    let account = r.opt_string(!flags & FLAG_ACCOUNT_DERIVED)?;
    let arn = r.opt_string(!flags & FLAG_ARN_DERIVED)?;
    let user_id = r.opt_string(!flags & FLAG_USER_ID_DERIVED)?;
    let role_arn = match (
        present & HAS_ROLE_ARN != 0,
        flags & FLAG_ROLE_ARN_SHORT != 0,
    ) {
        (true, true) => Some(r.short_role_arn()?),
        (true, false) => {
            let arn = r.string()?;
            // Version 3 writes every ARN it can in the short form.
            if v3 && short_role_arn(&arn).is_some() {
                return Err(TokenError::Malformed);
            }
            Some(arn)
        }
        (false, true) => return Err(TokenError::Malformed),
        (false, false) => None,
    };
    let role_id = r.opt_string(present & HAS_ROLE_ID)?;
    let session_name = r.opt_string(present & HAS_SESSION_NAME)?;
    let source_identity = r.opt_string(present & HAS_SOURCE_IDENTITY)?;
    let n = r.count()?;
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.string()?;
        let v = r.string()?;
        tags.push((k, v));
    }
    let transitive_tag_keys = r.strings()?;
    let session_policy = r.opt_string(present & HAS_SESSION_POLICY)?;
    let policy_arns = r.strings()?;
    let web_identity = if present & HAS_WEB_IDENTITY != 0 {
        Some(WebIdentityClaims {
            provider: r.string()?,
            audience: r.string()?,
            subject: r.string()?,
            amr: r.strings()?,
        })
    } else {
        None
    };
    let parent_user_arn = r.opt_string(present & HAS_PARENT_USER_ARN)?;
    if !r.rest.is_empty() {
        return Err(TokenError::Malformed);
    }
    // Derived fields are filled in; a stored field equal to its derived value is not canonical.
    let (d_account, d_arn, d_user_id) = derived(
        role_arn.as_deref(),
        role_id.as_deref(),
        session_name.as_deref(),
    );
    let resolve = |stored: Option<String>, derived: Option<String>| match (stored, derived) {
        (Some(s), Some(d)) if s == d => Err(TokenError::Malformed),
        (Some(s), _) => Ok(s),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(TokenError::Malformed),
    };
    let account = resolve(account, d_account)?;
    let arn = resolve(arn, d_arn)?;
    let user_id = resolve(user_id, d_user_id)?;
    Ok(SessionClaims {
        access_key_id,
        issued_at,
        expires_at,
        account,
        kind,
        arn,
        user_id,
        role_arn,
        role_id,
        session_name,
        source_identity,
        tags,
        transitive_tag_keys,
        session_policy,
        policy_arns,
        chained: flags & FLAG_CHAINED != 0,
        mfa_authenticated: flags & FLAG_MFA != 0,
        web_identity,
        parent_user_arn,
    })
}

/// Appends the encoding of `claims` to `out`. Their access key id is not part of it: the AEAD's
/// associated data binds the token to it, and [`decode_claims`] is given it.
fn encode_into(out: &mut Vec<u8>, c: &SessionClaims) -> Result<(), TokenError> {
    let issued_at = u64::try_from(c.issued_at)
        .map_err(|_| TokenError::InvalidClaims("issue time must not be before 1970"))?;
    let lifetime = c
        .expires_at
        .checked_sub(c.issued_at)
        .and_then(|l| u64::try_from(l).ok())
        .filter(|l| (1..=MAX_LIFETIME).contains(l))
        .ok_or(TokenError::InvalidClaims(
            "expiry must be after the issue time, by less than 2^32 seconds",
        ))?;
    let short_role = c.role_arn.as_deref().and_then(short_role_arn);
    let mut flags = 0;
    if short_role.is_some() {
        flags |= FLAG_ROLE_ARN_SHORT;
    }
    if c.chained {
        flags |= FLAG_CHAINED;
    }
    if c.mfa_authenticated {
        flags |= FLAG_MFA;
    }
    let (d_account, d_arn, d_user_id) = derived(
        c.role_arn.as_deref(),
        c.role_id.as_deref(),
        c.session_name.as_deref(),
    );
    let account_derived = d_account.as_deref() == Some(c.account.as_str());
    let arn_derived = d_arn.as_deref() == Some(c.arn.as_str());
    let user_id_derived = d_user_id.as_deref() == Some(c.user_id.as_str());
    for (bit, on) in [
        (FLAG_ACCOUNT_DERIVED, account_derived),
        (FLAG_ARN_DERIVED, arn_derived),
        (FLAG_USER_ID_DERIVED, user_id_derived),
    ] {
        if on {
            flags |= bit;
        }
    }
    let mut present = 0;
    for (bit, is_some) in [
        (HAS_ROLE_ARN, c.role_arn.is_some()),
        (HAS_ROLE_ID, c.role_id.is_some()),
        (HAS_SESSION_NAME, c.session_name.is_some()),
        (HAS_SOURCE_IDENTITY, c.source_identity.is_some()),
        (HAS_SESSION_POLICY, c.session_policy.is_some()),
        (HAS_WEB_IDENTITY, c.web_identity.is_some()),
        (HAS_PARENT_USER_ARN, c.parent_user_arn.is_some()),
    ] {
        if is_some {
            present |= bit;
        }
    }
    out.extend_from_slice(&[CLAIMS_VERSION, c.kind.code(), flags, present]);
    put_varint(out, issued_at);
    put_varint(out, lifetime);
    put_opt_str(out, (!account_derived).then_some(c.account.as_str()))?;
    put_opt_str(out, (!arn_derived).then_some(c.arn.as_str()))?;
    put_opt_str(out, (!user_id_derived).then_some(c.user_id.as_str()))?;
    match short_role {
        Some((account, rest)) => {
            out.extend_from_slice(account.to_le_bytes().get(..5).unwrap_or_default());
            put_str(out, rest)?;
        }
        None => put_opt_str(out, c.role_arn.as_deref())?,
    }
    put_opt_str(out, c.role_id.as_deref())?;
    put_opt_str(out, c.session_name.as_deref())?;
    put_opt_str(out, c.source_identity.as_deref())?;
    put_count(out, c.tags.len())?;
    for (k, v) in &c.tags {
        put_str(out, k)?;
        put_str(out, v)?;
    }
    put_strs(out, &c.transitive_tag_keys)?;
    put_opt_str(out, c.session_policy.as_deref())?;
    put_strs(out, &c.policy_arns)?;
    if let Some(w) = &c.web_identity {
        put_str(out, &w.provider)?;
        put_str(out, &w.audience)?;
        put_str(out, &w.subject)?;
        put_strs(out, &w.amr)?;
    }
    put_opt_str(out, c.parent_user_arn.as_deref())?;
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        // Low 7 bits plus the continuation bit: cannot truncate.
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), TokenError> {
    if s.len() > MAX_CLAIM_FIELD_LEN {
        return Err(TokenError::TooLarge);
    }
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) -> Result<(), TokenError> {
    match s {
        Some(s) => put_str(out, s),
        None => Ok(()),
    }
}

fn put_count(out: &mut Vec<u8>, n: usize) -> Result<(), TokenError> {
    if n > MAX_CLAIM_LIST_LEN {
        return Err(TokenError::TooLarge);
    }
    put_varint(out, n as u64);
    Ok(())
}

fn put_strs(out: &mut Vec<u8>, items: &[String]) -> Result<(), TokenError> {
    put_count(out, items.len())?;
    items.iter().try_for_each(|s| put_str(out, s))
}

/// A cursor over encoded claims; every read is bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, TokenError> {
        let (&b, rest) = self.rest.split_first().ok_or(TokenError::Malformed)?;
        self.rest = rest;
        Ok(b)
    }

    fn i64(&mut self) -> Result<i64, TokenError> {
        let (b, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or(TokenError::Malformed)?;
        self.rest = rest;
        Ok(i64::from_le_bytes(*b))
    }

    /// A minimally encoded LEB128 value of at most 10 bytes, no larger than `max`.
    fn varint64(&mut self, max: u64) -> Result<u64, TokenError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte carries bit 63 only.
            if shift == 63 && bits > 1 {
                return Err(TokenError::Malformed);
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                if (b == 0 && shift != 0) || v > max {
                    return Err(TokenError::Malformed);
                }
                return Ok(v);
            }
        }
        Err(TokenError::Malformed)
    }

    /// A role ARN in the short form: the account number (5 bytes, below 10^12) and the rest.
    fn short_role_arn(&mut self) -> Result<String, TokenError> {
        let (b, rest) = self
            .rest
            .split_first_chunk::<5>()
            .ok_or(TokenError::Malformed)?;
        self.rest = rest;
        let mut le = [0u8; 8];
        le[..5].copy_from_slice(b);
        let account = u64::from_le_bytes(le);
        if account >= 1_000_000_000_000 {
            return Err(TokenError::Malformed);
        }
        let tail = self.str_ref()?;
        let mut arn = String::with_capacity(ROLE_ARN_PREFIX.len() + 12 + 6 + tail.len());
        arn.push_str(ROLE_ARN_PREFIX);
        // Twelve digits, leading zeros kept.
        let mut digits = [b'0'; 12];
        let mut n = account;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        arn.push_str(std::str::from_utf8(&digits).map_err(|_| TokenError::Malformed)?);
        arn.push_str(ROLE_ARN_INFIX);
        arn.push_str(tail);
        Ok(arn)
    }

    /// A minimally encoded LEB128 value of at most 3 bytes, no larger than `max`.
    fn varint(&mut self, max: usize) -> Result<usize, TokenError> {
        let mut v = 0usize;
        for shift in [0, 7, 14] {
            let b = self.u8()?;
            v |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // A zero final byte after a continuation is a non-minimal encoding.
                if (b == 0 && shift != 0) || v > max {
                    return Err(TokenError::Malformed);
                }
                return Ok(v);
            }
        }
        Err(TokenError::Malformed)
    }

    fn count(&mut self) -> Result<usize, TokenError> {
        self.varint(MAX_CLAIM_LIST_LEN)
    }

    fn str_ref(&mut self) -> Result<&'a str, TokenError> {
        let n = self.varint(MAX_CLAIM_FIELD_LEN)?;
        let (bytes, rest) = self.rest.split_at_checked(n).ok_or(TokenError::Malformed)?;
        self.rest = rest;
        std::str::from_utf8(bytes).map_err(|_| TokenError::Malformed)
    }

    fn string(&mut self) -> Result<String, TokenError> {
        self.str_ref().map(str::to_owned)
    }

    fn opt_string(&mut self, present: u8) -> Result<Option<String>, TokenError> {
        if present != 0 {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }

    fn strings(&mut self) -> Result<Vec<String>, TokenError> {
        let n = self.count()?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.string()?);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{CryptoRng, RngCore, SeedableRng};

    const NOW: i64 = 1_700_000_000;

    fn ring(keys: &[(&str, u8)]) -> KeyRing {
        KeyRing::new(
            keys.iter()
                .map(|(k, b)| (k.to_string(), [*b; 32]))
                .collect(),
        )
        .unwrap()
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(42)
    }

    /// A typical role session: 2 tags, no inline policy.
    fn role_claims() -> SessionClaims {
        SessionClaims {
            access_key_id: String::new(),
            issued_at: NOW,
            expires_at: NOW + 3600,
            account: "123456789012".into(),
            kind: SessionKind::AssumedRole,
            arn: "arn:aws:sts::123456789012:assumed-role/demo/sess1".into(),
            user_id: "AROA3XFRBF535PLBIFPI4:sess1".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/demo".into()),
            role_id: Some("AROA3XFRBF535PLBIFPI4".into()),
            session_name: Some("sess1".into()),
            source_identity: None,
            tags: vec![("team".into(), "blue".into()), ("env".into(), "dev".into())],
            transitive_tag_keys: vec![],
            session_policy: None,
            policy_arns: vec![],
            chained: false,
            mfa_authenticated: false,
            web_identity: None,
            parent_user_arn: None,
        }
    }

    /// Every field set.
    fn full_claims() -> SessionClaims {
        SessionClaims {
            access_key_id: String::new(),
            issued_at: NOW,
            expires_at: NOW + 900,
            account: "123456789012".into(),
            kind: SessionKind::WebIdentity,
            arn: "arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1".into(),
            user_id: "AROACLKWSDQRAOEXAMPLE:app1".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/FederatedWebIdentityRole".into()),
            role_id: Some("AROACLKWSDQRAOEXAMPLE".into()),
            session_name: Some("app1".into()),
            source_identity: Some("alice".into()),
            tags: vec![
                ("team".into(), "blue".into()),
                ("env".into(), "".into()),
                ("ünïcödé".into(), "välue/with=stuff".into()),
            ],
            transitive_tag_keys: vec!["team".into()],
            session_policy: Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
                    .into(),
            ),
            policy_arns: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            chained: true,
            mfa_authenticated: true,
            web_identity: Some(WebIdentityClaims {
                provider: "oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
                audience: "sts.amazonaws.com".into(),
                subject: "system:serviceaccount:default:app".into(),
                amr: vec!["authenticated".into(), "accounts.google.com".into()],
            }),
            parent_user_arn: Some("arn:aws:iam::123456789012:user/alice".into()),
        }
    }

    fn gst_claims() -> SessionClaims {
        SessionClaims {
            access_key_id: String::new(),
            issued_at: NOW,
            expires_at: NOW + 43_200,
            account: "123456789012".into(),
            kind: SessionKind::SessionToken,
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            user_id: "AIDAJQABLZS4A3QDU576Q".into(),
            role_arn: None,
            role_id: None,
            session_name: None,
            source_identity: None,
            tags: vec![],
            transitive_tag_keys: vec![],
            session_policy: None,
            policy_arns: vec![],
            chained: false,
            mfa_authenticated: true,
            web_identity: None,
            parent_user_arn: Some("arn:aws:iam::123456789012:user/alice".into()),
        }
    }

    fn with_akid(mut c: SessionClaims, akid: &str) -> SessionClaims {
        c.access_key_id = akid.to_owned();
        c
    }

    #[test]
    fn round_trip_all_fields() {
        let r = ring(&[("k1", 1)]);
        for claims in [full_claims(), role_claims(), gst_claims()] {
            let issued = seal(&r, &claims, &mut rng()).unwrap();
            assert!(issued.session_token.expose().starts_with("v1.k1."));
            assert_eq!(issued.expiration, claims.expires_at);
            let opened = open(
                &r,
                issued.session_token.expose(),
                &issued.access_key_id,
                NOW,
            )
            .unwrap();
            assert_eq!(opened.claims, with_akid(claims, &issued.access_key_id));
            assert_eq!(opened.kid, "k1");
            assert_eq!(opened.secret.expose(), issued.secret_access_key.expose());
        }
    }

    #[test]
    fn encoding_round_trips_and_is_canonical() {
        for claims in [full_claims(), role_claims(), gst_claims()] {
            let bytes = encode_claims(&claims).unwrap();
            let decoded = decode_claims(&bytes, "").unwrap();
            assert_eq!(decoded, claims);
            assert_eq!(encode_claims(&decoded).unwrap(), bytes);
            // Any truncation or extension fails.
            for n in 0..bytes.len() {
                assert_eq!(
                    decode_claims(&bytes[..n], ""),
                    Err(TokenError::Malformed),
                    "prefix {n}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(decode_claims(&longer, ""), Err(TokenError::Malformed));
        }
    }

    /// A token sealed by the version-2 encoder (before the access key id and the long role ARN
    /// were left out): sessions issued before an upgrade keep opening after it.
    #[test]
    fn version_2_tokens_still_open() {
        const TOKEN: &str = "v1.k1.6DSdTs28iw9GMoQkaMhNx0GZCgjPCyhenrwb1ZVd40gnA9LqVQCIA2wc4UJOo9dMEZJCAz2zivpeY5NFvkKjZOLk1EeIdc6dGX8OTAbMRxfE0kVSw2MLnarCP5Rt3YsmUnWR4bzhU2DHncZWOcFmxW8ffdpA5MG0v7DX7FmgjLRqGLKys0guJ5jydC2JL0_Wsso";
        const AKID: &str = "ASIAX352Q2XJ4DBAPBS7";
        let r = ring(&[("k1", 1)]);
        let opened = open(&r, TOKEN, AKID, NOW).unwrap();
        let mut expected = role_claims();
        expected.tags.truncate(1);
        assert_eq!(opened.claims, with_akid(expected.clone(), AKID));
        assert_eq!(
            opened.secret.expose(),
            "xeJjQXehXmre31p928VXmCwr0VGcaTUqvCAoER00"
        );
        // Still bound to its access key id, still expiring.
        assert_eq!(
            open(&r, TOKEN, "ASIAX352Q2XJ4DBAPBS6", NOW).unwrap_err(),
            TokenError::Invalid
        );
        assert_eq!(
            open(&r, TOKEN, AKID, NOW + 3600).unwrap_err(),
            TokenError::Expired
        );
        // The same claims sealed now make a shorter token.
        let issued = seal(&r, &expected, &mut rng()).unwrap();
        assert!(
            issued.session_token.expose().len() + 60 <= TOKEN.len(),
            "{} vs {}",
            issued.session_token.expose().len(),
            TOKEN.len()
        );
    }

    #[test]
    fn role_arns_in_the_aws_partition_are_stored_short() {
        let c = role_claims();
        let bytes = encode_claims(&c).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("arn:aws:iam::"), "{text}");
        assert!(!text.contains("123456789012"), "{text}");
        assert_ne!(bytes[2] & FLAG_ROLE_ARN_SHORT, 0);
        // Leading zeros, paths and other partitions round-trip.
        for arn in [
            "arn:aws:iam::000000000001:role/demo",
            "arn:aws:iam::123456789012:role/team/a/demo",
            "arn:aws-cn:iam::123456789012:role/demo",
            "arn:aws:iam::12345678901:role/eleven-digits",
            "arn:aws:iam::1234567890123:role/thirteen",
            "arn:aws:iam::12345678901x:role/x",
            "arn:aws:iam::123456789012:user/not-a-role",
        ] {
            let mut c = role_claims();
            c.role_arn = Some(arn.into());
            let bytes = encode_claims(&c).unwrap();
            assert_eq!(decode_claims(&bytes, "").unwrap(), c, "{arn}");
            let short = short_role_arn(arn).is_some();
            assert_eq!(bytes[2] & FLAG_ROLE_ARN_SHORT != 0, short, "{arn}");
        }
        // The long form of an ARN that has a short one is not canonical, and so is the short
        // flag without a role ARN or an account number of 13 digits.
        // (The account is the role ARN's; the session ARN and user id are stored.)
        let mut long = vec![CLAIMS_VERSION, 1, FLAG_ACCOUNT_DERIVED, HAS_ROLE_ARN];
        put_varint(&mut long, NOW as u64);
        put_varint(&mut long, 3600);
        for f in ["arn:aws:sts::123456789012:assumed-role/demo/s", "AROA"] {
            put_str(&mut long, f).unwrap();
        }
        let with_role = |role: &[u8]| {
            let mut b = long.clone();
            b.extend_from_slice(role);
            b.extend_from_slice(&[0, 0, 0]);
            b
        };
        let mut full = Vec::new();
        put_str(&mut full, "arn:aws-cn:iam::123456789012:role/demo").unwrap();
        assert!(decode_claims(&with_role(&full), "").is_ok());
        let mut full = Vec::new();
        put_str(&mut full, "arn:aws:iam::123456789012:role/demo").unwrap();
        assert_eq!(
            decode_claims(&with_role(&full), ""),
            Err(TokenError::Malformed)
        );
        let mut short = 999_999_999_999u64.to_le_bytes()[..5].to_vec();
        put_str(&mut short, "demo").unwrap();
        let mut b = with_role(&short);
        b[2] |= FLAG_ROLE_ARN_SHORT;
        assert_eq!(
            decode_claims(&b, "").unwrap().role_arn.as_deref(),
            Some("arn:aws:iam::999999999999:role/demo")
        );
        let mut too_big = 1_000_000_000_000u64.to_le_bytes()[..5].to_vec();
        put_str(&mut too_big, "demo").unwrap();
        let mut b = with_role(&too_big);
        b[2] |= FLAG_ROLE_ARN_SHORT;
        assert_eq!(decode_claims(&b, ""), Err(TokenError::Malformed));
        let mut b = with_role(&[]);
        b[2] |= FLAG_ROLE_ARN_SHORT;
        b[3] = 0;
        assert_eq!(decode_claims(&b, ""), Err(TokenError::Malformed));
    }

    #[test]
    fn times_are_varints_and_lifetimes_bounded() {
        let r = ring(&[("k1", 1)]);
        for (iat, exp) in [(-1, 3600), (NOW, NOW), (NOW, NOW - 1), (0, 1 << 33)] {
            let mut c = role_claims();
            c.issued_at = iat;
            c.expires_at = exp;
            assert!(
                matches!(
                    seal(&r, &c, &mut rng()).unwrap_err(),
                    TokenError::InvalidClaims(_)
                ),
                "{iat} {exp}"
            );
        }
        for (iat, exp) in [
            (0, 1),
            (NOW, NOW + i64::from(u32::MAX)),
            (1 << 40, (1 << 40) + 900),
        ] {
            let mut c = role_claims();
            c.issued_at = iat;
            c.expires_at = exp;
            let bytes = encode_claims(&c).unwrap();
            assert_eq!(decode_claims(&bytes, "").unwrap(), c);
        }
        let mut r = Reader {
            rest: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        };
        assert_eq!(r.varint64(i64::MAX as u64), Ok(i64::MAX as u64));
        for bad in [
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01][..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &[0x80, 0x00],
            &[0x80; 11],
            &[0x80],
        ] {
            let mut r = Reader { rest: bad };
            assert!(r.varint64(i64::MAX as u64).is_err(), "{bad:?}");
        }
        // A zero lifetime does not decode.
        let mut b = vec![CLAIMS_VERSION, 3, 0, 0];
        put_varint(&mut b, NOW as u64);
        put_varint(&mut b, 0);
        assert_eq!(decode_claims(&b, ""), Err(TokenError::Malformed));
    }

    #[test]
    fn implied_fields_are_left_out_and_restored() {
        let c = role_claims();
        let bytes = encode_claims(&c).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&c.arn),
            "the session ARN is implied by role and session"
        );
        assert_eq!(decode_claims(&bytes, "").unwrap(), c);
        // A stored field equal to its implied value is not canonical.
        let mut explicit = bytes.clone();
        explicit[2] &= !FLAG_ARN_DERIVED;
        assert!(decode_claims(&explicit, "").is_err());
        // Fields that differ from the implied value are stored and kept.
        let mut odd = role_claims();
        odd.arn = "arn:aws:sts::123456789012:assumed-role/other/x".into();
        odd.user_id = "AIDAOTHER".into();
        let bytes = encode_claims(&odd).unwrap();
        assert_eq!(decode_claims(&bytes, "").unwrap(), odd);
    }

    #[test]
    fn decoder_refuses_non_canonical_input() {
        let bytes = encode_claims(&role_claims()).unwrap();
        let mut bad_version = bytes.clone();
        bad_version[0] = 99;
        assert!(decode_claims(&bad_version, "").is_err());
        let mut bad_kind = bytes.clone();
        bad_kind[1] = 9;
        assert!(decode_claims(&bad_kind, "").is_err());
        let mut bad_flags = bytes.clone();
        bad_flags[2] = 0x80;
        assert!(decode_claims(&bad_flags, "").is_err());
        let mut bad_present = bytes.clone();
        bad_present[3] |= 0x80;
        assert!(decode_claims(&bad_present, "").is_err());
        // Non-minimal and over-long varints.
        let mut r = Reader {
            rest: &[0x80, 0x00],
        };
        assert!(r.varint(100).is_err());
        let mut r = Reader {
            rest: &[0x81, 0x80, 0x80, 0x01],
        };
        assert!(r.varint(usize::MAX).is_err());
        let mut r = Reader {
            rest: &[0xff, 0x01],
        };
        assert_eq!(r.varint(255), Ok(255));
        let mut r = Reader {
            rest: &[0xff, 0x01],
        };
        assert!(r.varint(254).is_err());
    }

    #[test]
    fn seal_refuses_oversized_or_inconsistent_claims() {
        let r = ring(&[("k1", 1)]);
        let mut c = role_claims();
        c.session_policy = Some("x".repeat(MAX_CLAIM_FIELD_LEN + 1));
        assert_eq!(seal(&r, &c, &mut rng()).unwrap_err(), TokenError::TooLarge);
        let mut c = role_claims();
        c.tags = (0..=MAX_CLAIM_LIST_LEN)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert_eq!(seal(&r, &c, &mut rng()).unwrap_err(), TokenError::TooLarge);
        // Within the per-field limits but over the token limit.
        let mut c = role_claims();
        c.policy_arns = (0..4).map(|_| "a".repeat(MAX_CLAIM_FIELD_LEN)).collect();
        assert_eq!(seal(&r, &c, &mut rng()).unwrap_err(), TokenError::TooLarge);
        let mut c = role_claims();
        c.expires_at = c.issued_at;
        assert!(matches!(
            seal(&r, &c, &mut rng()),
            Err(TokenError::InvalidClaims(_))
        ));
        let c = with_akid(role_claims(), "AKIAIOSFODNN7EXAMPLE");
        assert!(matches!(
            seal(&r, &c, &mut rng()),
            Err(TokenError::InvalidClaims(_))
        ));
        // A well-formed caller-chosen id is kept.
        let c = with_akid(role_claims(), "ASIAABCDEFGHIJKLMNOP");
        let issued = seal(&r, &c, &mut rng()).unwrap();
        assert_eq!(issued.access_key_id, "ASIAABCDEFGHIJKLMNOP");
        open(
            &r,
            issued.session_token.expose(),
            "ASIAABCDEFGHIJKLMNOP",
            NOW,
        )
        .unwrap();
    }

    #[test]
    fn largest_accepted_token_opens() {
        let r = ring(&[("k1", 1)]);
        let mut c = role_claims();
        c.policy_arns = (0..2).map(|_| "a".repeat(MAX_CLAIM_FIELD_LEN)).collect();
        c.session_policy = Some("p".repeat(3_690));
        let issued = seal(&r, &c, &mut rng()).unwrap();
        let len = issued.session_token.expose().len();
        assert!(
            (MAX_TOKEN_LEN - 400..=MAX_TOKEN_LEN).contains(&len),
            "{len}"
        );
        open(
            &r,
            issued.session_token.expose(),
            &issued.access_key_id,
            NOW,
        )
        .unwrap();
        let too_long = "v1.k1.".to_owned() + &"A".repeat(MAX_TOKEN_LEN);
        assert_eq!(
            open(&r, &too_long, "ASIA", NOW).unwrap_err(),
            TokenError::TooLarge
        );
    }

    #[test]
    fn wrong_access_key_id_is_invalid() {
        let r = ring(&[("k1", 1)]);
        let issued = seal(&r, &role_claims(), &mut rng()).unwrap();
        let other = new_access_key_id(&mut StdRng::seed_from_u64(7));
        assert_ne!(other, issued.access_key_id);
        let tok = issued.session_token.expose();
        assert_eq!(open(&r, tok, &other, NOW).unwrap_err(), TokenError::Invalid);
        assert_eq!(open(&r, tok, "", NOW).unwrap_err(), TokenError::Invalid);
        assert_eq!(
            open(&r, tok, &"A".repeat(500), NOW).unwrap_err(),
            TokenError::Invalid
        );
        let lower = issued.access_key_id.to_ascii_lowercase();
        assert_eq!(open(&r, tok, &lower, NOW).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn every_single_byte_change_fails() {
        let r = ring(&[("k1", 1)]);
        let issued = seal(&r, &role_claims(), &mut rng()).unwrap();
        let tok = issued.session_token.expose().as_bytes().to_vec();
        let mut tried = 0;
        for i in 0..tok.len() {
            for flip in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40] {
                let mut t = tok.clone();
                t[i] ^= flip;
                let Ok(t) = String::from_utf8(t) else {
                    continue;
                };
                tried += 1;
                assert!(
                    open(&r, &t, &issued.access_key_id, NOW).is_err(),
                    "byte {i} ^ {flip:#x} accepted"
                );
            }
        }
        assert!(tried >= tok.len() * 7);
    }

    #[test]
    fn truncated_and_extended_tokens_fail() {
        let r = ring(&[("k1", 1)]);
        let issued = seal(&r, &full_claims(), &mut rng()).unwrap();
        let tok = issued.session_token.expose();
        for n in 0..tok.len() {
            assert!(
                open(&r, &tok[..n], &issued.access_key_id, NOW).is_err(),
                "prefix {n}"
            );
        }
        for extra in ["A", "AA", "AAA", "AAAA", "=", "."] {
            assert!(open(&r, &format!("{tok}{extra}"), &issued.access_key_id, NOW).is_err());
        }
    }

    #[test]
    fn malformed_tokens() {
        let r = ring(&[("k1", 1)]);
        for t in [
            "",
            "v1",
            "v1.",
            "v2.k1.AAAA",
            "v1.k1",
            "FwoGZXIvYXdzEJr",
            "v1.k1.!!!!",
        ] {
            assert_eq!(
                open(&r, t, "ASIA", NOW).unwrap_err(),
                TokenError::Malformed,
                "{t:?}"
            );
        }
        // Decodes, but shorter than nonce + tag.
        assert_eq!(
            open(&r, "v1.k1.AAAA", "ASIA", NOW).unwrap_err(),
            TokenError::Malformed
        );
        // Padding is refused (base64url without padding only).
        let issued = seal(&r, &role_claims(), &mut rng()).unwrap();
        assert!(open(
            &r,
            &format!("{}=", issued.session_token.expose()),
            &issued.access_key_id,
            NOW
        )
        .is_err());
        assert_eq!(
            open(&r, "v1.nope.AAAA", "ASIA", NOW).unwrap_err(),
            TokenError::UnknownKey
        );
    }

    #[test]
    fn foreign_ring_is_refused() {
        let mine = ring(&[("k1", 1)]);
        let same_kid = ring(&[("k1", 2)]);
        let other_kid = ring(&[("k9", 1)]);
        let issued = seal(&same_kid, &role_claims(), &mut rng()).unwrap();
        let tok = issued.session_token.expose();
        assert_eq!(
            open(&mine, tok, &issued.access_key_id, NOW).unwrap_err(),
            TokenError::Invalid
        );
        let issued = seal(&other_kid, &role_claims(), &mut rng()).unwrap();
        let tok = issued.session_token.expose();
        assert_eq!(
            open(&mine, tok, &issued.access_key_id, NOW).unwrap_err(),
            TokenError::UnknownKey
        );
        // Same raw key under another kid: still unrelated derived keys.
        let renamed = tok.replacen("v1.k9.", "v1.k1.", 1);
        assert_eq!(
            open(&mine, &renamed, &issued.access_key_id, NOW).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_until_the_kid_is_removed() {
        let old = ring(&[("k1", 1)]);
        let rotated = ring(&[("k2", 2), ("k1", 1)]);
        let retired = ring(&[("k2", 2)]);
        assert_eq!(rotated.seal_kid(), "k2");
        assert_eq!(rotated.kids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert!(rotated.contains("k1") && !retired.contains("k1"));

        let t1 = seal(&old, &role_claims(), &mut rng()).unwrap();
        let t2 = seal(&rotated, &role_claims(), &mut rng()).unwrap();
        assert!(t2.session_token.expose().starts_with("v1.k2."));
        let o1 = open(&rotated, t1.session_token.expose(), &t1.access_key_id, NOW).unwrap();
        assert_eq!(o1.kid, "k1");
        assert_eq!(o1.secret.expose(), t1.secret_access_key.expose());
        assert_eq!(
            open(&rotated, t2.session_token.expose(), &t2.access_key_id, NOW)
                .unwrap()
                .kid,
            "k2"
        );
        assert_eq!(
            open(&retired, t1.session_token.expose(), &t1.access_key_id, NOW).unwrap_err(),
            TokenError::UnknownKey
        );
        open(&retired, t2.session_token.expose(), &t2.access_key_id, NOW).unwrap();
        assert_eq!(
            open(&old, t2.session_token.expose(), &t2.access_key_id, NOW).unwrap_err(),
            TokenError::UnknownKey
        );
    }

    #[test]
    fn expiry_is_exclusive() {
        let r = ring(&[("k1", 1)]);
        let c = role_claims();
        let issued = seal(&r, &c, &mut rng()).unwrap();
        let tok = issued.session_token.expose();
        open(&r, tok, &issued.access_key_id, c.expires_at - 1).unwrap();
        assert_eq!(
            open(&r, tok, &issued.access_key_id, c.expires_at).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            open(&r, tok, &issued.access_key_id, i64::MAX).unwrap_err(),
            TokenError::Expired
        );
        // Authentication comes first: an altered expired token is invalid, not expired.
        let other = new_access_key_id(&mut StdRng::seed_from_u64(7));
        assert_eq!(
            open(&r, tok, &other, i64::MAX).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn aws_error_codes() {
        assert_eq!(TokenError::Expired.aws_error_code(), "ExpiredToken");
        for e in [
            TokenError::Malformed,
            TokenError::UnknownKey,
            TokenError::Invalid,
            TokenError::TooLarge,
            TokenError::InvalidClaims("x"),
        ] {
            assert_eq!(e.aws_error_code(), "InvalidClientTokenId");
            assert_eq!(
                e.aws_message(),
                "The security token included in the request is invalid"
            );
        }
        assert_eq!(
            TokenError::Expired.aws_message(),
            "The security token included in the request is expired"
        );
    }

    #[test]
    fn derived_secret_is_stable_and_aws_shaped() {
        let r = ring(&[("k1", 1)]);
        let mut g = rng();
        let a = seal(&r, &role_claims(), &mut g).unwrap();
        let b = seal(&r, &role_claims(), &mut g).unwrap();
        for issued in [&a, &b] {
            let s = issued.secret_access_key.expose();
            assert_eq!(s.len(), SECRET_ACCESS_KEY_LEN);
            assert!(
                s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/'),
                "{s}"
            );
            let opened = open(
                &r,
                issued.session_token.expose(),
                &issued.access_key_id,
                NOW,
            )
            .unwrap();
            assert_eq!(opened.secret.expose(), s);
            let again = open(
                &r,
                issued.session_token.expose(),
                &issued.access_key_id,
                NOW + 1,
            )
            .unwrap();
            assert_eq!(again.secret.expose(), s);
        }
        // Same claims, fresh credentials each time.
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key.expose(), b.secret_access_key.expose());
        assert_ne!(a.session_token, b.session_token);
        // The secret depends on the ring key.
        let same_kid_other_key = ring(&[("k1", 2)]);
        let mut g = rng();
        let c = seal(&same_kid_other_key, &role_claims(), &mut g).unwrap();
        assert_eq!(
            c.access_key_id,
            seal(&r, &role_claims(), &mut rng()).unwrap().access_key_id
        );
        assert_ne!(c.secret_access_key.expose(), a.secret_access_key.expose());
    }

    #[test]
    fn access_key_id_shape() {
        let mut g = rng();
        for _ in 0..1000 {
            let id = new_access_key_id(&mut g);
            assert!(is_session_access_key_id(&id), "{id}");
            assert_eq!(id.len(), 20);
            assert!(id.starts_with("ASIA"));
            assert!(
                id[4..]
                    .bytes()
                    .all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7')),
                "{id}"
            );
        }
        // All 32 symbols show up.
        let all: std::collections::BTreeSet<u8> = (0..200)
            .flat_map(|_| new_access_key_id(&mut g).into_bytes().split_off(4))
            .collect();
        assert_eq!(all.len(), 32);
        for bad in [
            "",
            "ASIA",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAIOSFODNN7EXAMPL1",
            "ASIAIOSFODNN7EXAMPLEX",
            "asiaiosfodnn7example",
        ] {
            assert!(!is_session_access_key_id(bad), "{bad}");
        }
        assert!(is_session_access_key_id("ASIAIOSFODNN7EXAMPLE"));
        let mut zeros = rand::rngs::mock::StepRng::new(0, 0);
        assert_eq!(
            new_access_key_id(&mut CryptoStep(&mut zeros)),
            "ASIAAAAAAAAAAAAAAAAA"
        );
        let mut ones = rand::rngs::mock::StepRng::new(u64::MAX, 0);
        assert_eq!(
            new_access_key_id(&mut CryptoStep(&mut ones)),
            "ASIA7777777777777777"
        );
    }

    /// A deterministic test RNG marked cryptographic, for exact-output tests only.
    struct CryptoStep<'a>(&'a mut rand::rngs::mock::StepRng);
    impl RngCore for CryptoStep<'_> {
        fn next_u32(&mut self) -> u32 {
            self.0.next_u32()
        }
        fn next_u64(&mut self) -> u64 {
            self.0.next_u64()
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            self.0.fill_bytes(dest)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
            self.0.try_fill_bytes(dest)
        }
    }
    impl CryptoRng for CryptoStep<'_> {}

    #[test]
    fn debug_never_shows_secrets() {
        let keys = vec![("k1".to_string(), [0xab; 32])];
        let r = KeyRing::new(keys).unwrap();
        let issued = seal(&r, &full_claims(), &mut rng()).unwrap();
        let opened = open(
            &r,
            issued.session_token.expose(),
            &issued.access_key_id,
            NOW,
        )
        .unwrap();
        let secret = issued.secret_access_key.expose().to_owned();
        let token = issued.session_token.expose().to_owned();
        let payload = token.rsplit('.').next().unwrap().to_owned();
        for dbg in [
            format!("{issued:?}"),
            format!("{issued:#?}"),
            format!("{opened:?}"),
            format!("{opened:#?}"),
            format!("{:?}", issued.session_token),
        ] {
            assert!(!dbg.contains(&secret), "{dbg}");
            assert!(!dbg.contains(&payload[..16]), "{dbg}");
        }
        assert!(format!("{issued:?}").contains(&issued.access_key_id));
        let ring_dbg = format!("{r:?}");
        assert_eq!(ring_dbg, r#"KeyRing { kids: ["k1"] }"#);
    }

    #[test]
    fn key_ring_validation() {
        assert_eq!(KeyRing::new(vec![]).unwrap_err(), KeyRingError::Empty);
        assert_eq!(
            KeyRing::new(vec![("a".into(), [1; 32]), ("a".into(), [2; 32])]).unwrap_err(),
            KeyRingError::DuplicateKid("a".into())
        );
        for bad in ["", "a.b", "a b", "ké", &"a".repeat(33)] {
            assert_eq!(
                KeyRing::new(vec![(bad.into(), [1; 32])]).unwrap_err(),
                KeyRingError::InvalidKid(bad.into())
            );
        }
        let ok = KeyRing::new(vec![
            ("Key_2024-01".into(), [1; 32]),
            ("z".repeat(32), [2; 32]),
        ])
        .unwrap();
        assert_eq!(ok.seal_kid(), "Key_2024-01");

        let b64 = STANDARD.encode([1u8; 32]);
        let from_b64 = KeyRing::from_base64_keys([("k1", format!(" {b64}\n"))]).unwrap();
        let nopad = KeyRing::from_base64_keys([("k1", b64.trim_end_matches('='))]).unwrap();
        let raw = ring(&[("k1", 1)]);
        let issued = seal(&from_b64, &role_claims(), &mut rng()).unwrap();
        open(
            &raw,
            issued.session_token.expose(),
            &issued.access_key_id,
            NOW,
        )
        .unwrap();
        open(
            &nopad,
            issued.session_token.expose(),
            &issued.access_key_id,
            NOW,
        )
        .unwrap();
        assert_eq!(
            KeyRing::from_base64_keys([("k1", "not base64!")]).unwrap_err(),
            KeyRingError::InvalidBase64("k1".into())
        );
        assert_eq!(
            KeyRing::from_base64_keys([("k1", STANDARD.encode([1u8; 16]))]).unwrap_err(),
            KeyRingError::InvalidKeyLength {
                kid: "k1".into(),
                len: 16
            }
        );
        assert_eq!(
            KeyRing::from_base64_keys(Vec::<(String, String)>::new()).unwrap_err(),
            KeyRingError::Empty
        );
    }

    #[test]
    fn hkdf_matches_rfc_5869_construction() {
        // Independent computation of HKDF-Expand(HKDF-Extract(salt, ikm), info, 32).
        let ikm = [9u8; 32];
        let mut ext = Hmac::<Sha256>::new_from_slice(HKDF_SALT).unwrap();
        ext.update(&ikm);
        let prk = ext.finalize().into_bytes();
        let mut exp = Hmac::<Sha256>::new_from_slice(&prk).unwrap();
        exp.update(b"tollgate-sts-seal-v1\0k1\x01");
        assert_eq!(
            &*hkdf_sha256(&ikm, SEAL_KEY_LABEL, "k1"),
            exp.finalize().into_bytes().as_slice()
        );
        assert_ne!(
            *hkdf_sha256(&ikm, SEAL_KEY_LABEL, "k1"),
            *hkdf_sha256(&ikm, DERIVE_KEY_LABEL, "k1")
        );
        assert_ne!(
            *hkdf_sha256(&ikm, SEAL_KEY_LABEL, "k1"),
            *hkdf_sha256(&ikm, SEAL_KEY_LABEL, "k2")
        );
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![".{0,24}", "[a-zA-Z0-9:/_+=.@-]{0,200}"]
    }

    prop_compose! {
        fn arb_claims()(
            iat in 0i64..(1 << 40),
            lifetime in 1i64..=(MAX_LIFETIME as i64),
            strs in proptest::collection::vec(arb_string(), 4),
            opts in proptest::collection::vec(proptest::option::of(arb_string()), 6),
            kind in 1u8..=4,
            tags in proptest::collection::vec((arb_string(), arb_string()), 0..8),
            lists in proptest::collection::vec(proptest::collection::vec(arb_string(), 0..5), 3),
            flags in any::<(bool, bool, bool)>(),
        ) -> SessionClaims {
            SessionClaims {
                access_key_id: strs[0].clone(),
                issued_at: iat,
                expires_at: iat + lifetime,
                account: strs[1].clone(),
                kind: SessionKind::from_code(kind).unwrap(),
                arn: strs[2].clone(),
                user_id: strs[3].clone(),
                role_arn: opts[0].clone(),
                role_id: opts[1].clone(),
                session_name: opts[2].clone(),
                source_identity: opts[3].clone(),
                tags,
                transitive_tag_keys: lists[0].clone(),
                session_policy: opts[4].clone(),
                policy_arns: lists[1].clone(),
                chained: flags.0,
                mfa_authenticated: flags.1,
                web_identity: flags.2.then(|| WebIdentityClaims {
                    provider: strs[0].clone(),
                    audience: strs[1].clone(),
                    subject: strs[2].clone(),
                    amr: lists[2].clone(),
                }),
                parent_user_arn: opts[5].clone(),
            }
        }
    }

    proptest! {
        #[test]
        fn decode_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            // Version 3 is canonical; version 2 (still read) re-encodes as version 3.
            if let Ok(c) = decode_claims(&bytes, "ASIAFUZZ") {
                if bytes[0] == CLAIMS_VERSION {
                    prop_assert_eq!(encode_claims(&c).unwrap(), bytes);
                }
            }
        }

        #[test]
        fn decode_mutated_claims_never_panics(i in any::<prop::sample::Index>(), b in any::<u8>()) {
            let mut bytes = encode_claims(&full_claims()).unwrap();
            let i = i.index(bytes.len());
            bytes[i] = b;
            if let Ok(c) = decode_claims(&bytes, "") {
                if bytes[0] == CLAIMS_VERSION {
                    prop_assert_eq!(encode_claims(&c).unwrap(), bytes);
                }
            }
        }

        #[test]
        fn any_claims_round_trip(c in arb_claims()) {
            let bytes = encode_claims(&c).unwrap();
            prop_assert_eq!(decode_claims(&bytes, &c.access_key_id).unwrap(), c);
        }

        #[test]
        fn open_random_strings_never_panics(s in "(v1\\.(k1|k2)?\\.?)?[A-Za-z0-9_=.-]{0,300}", akid in "[A-Z0-9]{0,24}") {
            let r = ring(&[("k1", 1)]);
            prop_assert!(open(&r, &s, &akid, NOW).is_err());
        }
    }

    /// Writes valid tokens and claims into `fuzz/seeds/sts_token/` for the `sts_token` fuzz
    /// target, whose fixed ring and clock these use. Run:
    /// `cargo test --lib sts::token -- --ignored write_fuzz_seeds`.
    #[test]
    #[ignore = "regenerates fuzz seeds"]
    fn write_fuzz_seeds() {
        const FUZZ_NOW: i64 = 1_700_000_100;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/sts_token");
        std::fs::create_dir_all(&dir).unwrap();
        let r = ring(&[("fuzz-2", 2), ("fuzz-1", 1)]);
        let old = ring(&[("fuzz-1", 1)]);
        let mut g = StdRng::seed_from_u64(2024);
        for (name, claims, ring) in [
            ("role", role_claims(), &r),
            ("web_identity_full", full_claims(), &r),
            ("get_session_token", gst_claims(), &r),
            ("role_old_kid", role_claims(), &old),
        ] {
            let issued = seal(ring, &claims, &mut g).unwrap();
            assert!(open(
                &r,
                issued.session_token.expose(),
                &issued.access_key_id,
                FUZZ_NOW
            )
            .is_ok());
            let mut seed = vec![0u8];
            seed.extend_from_slice(issued.access_key_id.as_bytes());
            seed.push(b'\n');
            seed.extend_from_slice(issued.session_token.expose().as_bytes());
            std::fs::write(dir.join(format!("open_{name}")), seed).unwrap();
            let mut seed = vec![1u8];
            seed.extend(encode_claims(&with_akid(claims, &issued.access_key_id)).unwrap());
            std::fs::write(dir.join(format!("claims_{name}")), seed).unwrap();
        }
    }
}
