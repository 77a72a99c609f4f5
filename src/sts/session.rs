//! Accepting temporary credentials: a presented session token is opened with the key ring, bound
//! to the request's access key id, checked for expiry and turned into a [`Principal`] — the role
//! session (or, for `GetSessionToken`, the IAM user) with its session policies compiled.
//!
//! Opening costs an AEAD decryption and a claims decode (about a microsecond); compiling an inline
//! session policy costs more. Both happen once per token: the result is cached (moka) under the
//! SHA-256 of the token, for no longer than the token lives, and tagged with the configuration
//! generation so a reload (a role removed, its tags changed) is seen at once. Nothing is shared
//! between replicas: any replica holding the key ring opens any token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use subtle::ConstantTimeEq;

use super::token::{self, SessionKind, TokenError};
use crate::config::Snapshot;
use crate::credentials::{Principal, SecretKey, SessionContext};
use crate::policy::{CompiledPolicy, PolicySet, PolicyType};

/// Why temporary credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The token did not open: malformed, foreign or retired key, altered, or bound to another
    /// access key id; or it has expired.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// This Tollgate issues no temporary credentials (no `[sts]` key ring).
    #[error("temporary credentials are not enabled")]
    NotConfigured,
    /// The session's role or user is no longer configured.
    #[error("the session's principal no longer exists")]
    UnknownPrincipal,
}

impl SessionError {
    /// True for an expired session (`ExpiredToken`); every other failure is an invalid token.
    pub fn is_expired(self) -> bool {
        matches!(self, SessionError::Token(TokenError::Expired))
    }
}

/// An opened session, as the request path uses it.
#[derive(Debug)]
pub struct OpenSession {
    /// The temporary access key id the token is bound to.
    pub access_key_id: Arc<str>,
    /// The derived secret access key, to verify the signature with.
    pub secret: SecretKey,
    /// The session principal (claims and compiled session policies attached).
    pub principal: Arc<Principal>,
    /// Expiry, epoch seconds.
    pub expires_at: i64,
    generation: u64,
}

struct Expiry;

impl moka::Expiry<[u8; 32], Arc<OpenSession>> for Expiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<OpenSession>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = value.expires_at.saturating_sub(crate::time::now_epoch());
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

/// Opened session tokens by token hash (see the module documentation).
pub struct SessionCache {
    cache: Cache<[u8; 32], Arc<OpenSession>>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl SessionCache {
    /// A cache holding up to `capacity` sessions.
    pub fn new(capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(Expiry)
                .build(),
        }
    }

    /// Opens `token` presented with `access_key_id` at `now` (epoch seconds), from the cache when
    /// it was opened before under the same configuration. The boolean is true on a cache hit.
    pub fn open(
        &self,
        snapshot: &Snapshot,
        token: &str,
        access_key_id: &str,
        now: i64,
    ) -> Result<(Arc<OpenSession>, bool), SessionError> {
        let sts = snapshot.sts.as_ref().ok_or(SessionError::NotConfigured)?;
        let key = token::token_cache_key(token);
        if let Some(hit) = self.cache.get(&key) {
            if hit.generation == snapshot.generation {
                if !bool::from(hit.access_key_id.as_bytes().ct_eq(access_key_id.as_bytes())) {
                    return Err(TokenError::Invalid.into());
                }
                if now >= hit.expires_at {
                    return Err(TokenError::Expired.into());
                }
                return Ok((hit, true));
            }
        }
        let opened = token::open(&sts.ring, token, access_key_id, now)?;
        let session = Arc::new(OpenSession {
            access_key_id: Arc::from(opened.claims.access_key_id.as_str()),
            secret: opened.secret,
            expires_at: opened.claims.expires_at,
            principal: Arc::new(session_principal(snapshot, opened.claims)?),
            generation: snapshot.generation,
        });
        self.cache.insert(key, session.clone());
        Ok((session, false))
    }

    /// Number of cached sessions (approximate).
    pub fn len(&self) -> u64 {
        self.cache.entry_count()
    }

    /// True when nothing is cached (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The principal of a session, from its claims and the current configuration.
pub fn session_principal(
    snapshot: &Snapshot,
    claims: token::SessionClaims,
) -> Result<Principal, SessionError> {
    let policies = session_policies(snapshot, &claims);
    match claims.kind {
        SessionKind::SessionToken => {
            let u = snapshot
                .user(&claims.arn)
                .ok_or(SessionError::UnknownPrincipal)?;
            let user = Principal::iam_user(
                u.arn.clone(),
                u.account.clone(),
                u.name.clone(),
                u.unique_id.clone(),
                u.tags.clone(),
            );
            Ok(Principal::session(
                Some(&user),
                &[],
                SessionContext { claims, policies },
            ))
        }
        SessionKind::AssumedRole | SessionKind::WebIdentity => {
            let role = claims
                .role_arn
                .as_deref()
                .and_then(|arn| snapshot.role(arn))
                .ok_or(SessionError::UnknownPrincipal)?;
            let tags = role.tags.clone();
            Ok(Principal::session(
                None,
                &tags,
                SessionContext { claims, policies },
            ))
        }
        SessionKind::FederatedUser => Err(SessionError::UnknownPrincipal),
    }
}

/// The session policies (inline and managed) compiled into one set; `None` when the session was
/// issued without any. A managed policy removed from the configuration since contributes
/// nothing: the session can only lose permissions, never gain them.
pub fn session_policies(
    snapshot: &Snapshot,
    claims: &token::SessionClaims,
) -> Option<Arc<PolicySet>> {
    if claims.session_policy.is_none() && claims.policy_arns.is_empty() {
        return None;
    }
    let mut set = Vec::new();
    if let Some(text) = &claims.session_policy {
        // Validated when the session was issued; a document that no longer compiles grants
        // nothing.
        if let Ok(p) = CompiledPolicy::from_json("session-policy", PolicyType::Session, text) {
            set.push(Arc::new(p));
        }
    }
    for arn in &claims.policy_arns {
        if let Some(p) = snapshot.compiled_policy(arn) {
            set.push(p.clone());
        }
    }
    Some(Arc::new(PolicySet::new(set)))
}
