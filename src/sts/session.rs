//! Accepting temporary credentials: a presented session token is opened with the key ring, bound
//! to the request's access key id, checked for expiry and turned into a [`Principal`] — the role
//! session (or, for `GetSessionToken`, the IAM user) with its session policies compiled.
//!
//! Opening costs an AEAD decryption and a claims decode (about a microsecond); compiling an inline
//! session policy costs more. Both happen once per token: the result is cached (moka) under the
//! temporary access key id (80 random bits, bound to its token by the AEAD), for no longer than
//! the token lives, and tagged with the configuration generation so a reload (a role removed, its
//! tags changed) is seen at once. A hit also requires the presented token to be the one that was
//! opened. What authenticates the request is still the signature, checked with the secret derived
//! from that token: only its holder can sign. Nothing is shared between replicas: any replica
//! holding the key ring opens any token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

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

/// An opened session, as the request path uses it. `Debug` never prints the token or secret.
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
    /// The token that was opened (a hit must present the same one).
    token: Box<str>,
}

impl std::fmt::Debug for OpenSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSession")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal.arn)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

struct Expiry;

impl moka::Expiry<Arc<str>, Arc<OpenSession>> for Expiry {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Arc<OpenSession>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let left = value.expires_at.saturating_sub(crate::time::now_epoch());
        Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

/// Opened session tokens by access key id (see the module documentation).
///
/// moka is the cache of record (bounded, entries expire with their tokens). In front of it each
/// thread keeps a small direct-mapped table of recent sessions, so a hit costs a hash of the
/// 20-byte access key id and a comparison, not moka's bookkeeping: the temporary-credential path
/// stays within a few hundred nanoseconds of the long-term one. Every hit, from either level,
/// re-checks the configuration generation, the token and the expiry.
pub struct SessionCache {
    cache: Cache<Arc<str>, Arc<OpenSession>, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
    /// Distinguishes caches in one process (tests run several) in the per-thread table.
    id: u64,
}

/// Slots of the per-thread table.
const L1_SLOTS: usize = 256;

type L1Slot = Option<(u64, Arc<OpenSession>)>;

thread_local! {
    static L1: std::cell::RefCell<Vec<L1Slot>> = std::cell::RefCell::new(vec![None; L1_SLOTS]);
}

static NEXT_CACHE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

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
                .build_with_hasher(foldhash::fast::RandomState::default()),
            hasher: foldhash::fast::RandomState::default(),
            id: NEXT_CACHE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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
        let slot = usize::try_from(std::hash::BuildHasher::hash_one(
            &self.hasher,
            access_key_id,
        ))
        .unwrap_or(0)
            % L1_SLOTS;
        let usable = |s: &OpenSession| {
            s.generation == snapshot.generation
                && *s.access_key_id == *access_key_id
                && *s.token == *token
        };
        let l1 = L1.with(|t| {
            t.borrow()
                .get(slot)
                .and_then(|e| e.as_ref())
                .filter(|(id, s)| *id == self.id && usable(s))
                .map(|(_, s)| s.clone())
        });
        let hit = match l1 {
            Some(s) => Some(s),
            None => self
                .cache
                .get(access_key_id)
                .filter(|s| usable(s))
                .inspect(|s| {
                    self.remember(slot, s);
                }),
        };
        if let Some(hit) = hit {
            if now >= hit.expires_at {
                return Err(TokenError::Expired.into());
            }
            return Ok((hit, true));
        }
        let opened = token::open(&sts.ring, token, access_key_id, now)?;
        let session = Arc::new(OpenSession {
            access_key_id: Arc::from(opened.claims.access_key_id.as_str()),
            secret: opened.secret,
            expires_at: opened.claims.expires_at,
            principal: Arc::new(session_principal(snapshot, opened.claims)?),
            generation: snapshot.generation,
            token: token.into(),
        });
        self.cache
            .insert(session.access_key_id.clone(), session.clone());
        self.remember(slot, &session);
        Ok((session, false))
    }

    fn remember(&self, slot: usize, session: &Arc<OpenSession>) {
        L1.with(|t| {
            if let Some(e) = t.borrow_mut().get_mut(slot) {
                *e = Some((self.id, session.clone()));
            }
        });
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
            Ok(Principal::user_session(
                &user,
                SessionContext { claims, policies },
            ))
        }
        SessionKind::AssumedRole | SessionKind::WebIdentity => {
            let role = claims
                .role_arn
                .as_deref()
                .and_then(|arn| snapshot.role(arn))
                .ok_or(SessionError::UnknownPrincipal)?;
            Ok(Principal::role_session(
                &role.tags,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::token::{seal, SessionClaims};

    fn claims(now: i64) -> SessionClaims {
        SessionClaims {
            access_key_id: String::new(),
            issued_at: now,
            expires_at: now + 900,
            account: "123456789012".into(),
            kind: SessionKind::AssumedRole,
            arn: "arn:aws:sts::123456789012:assumed-role/deployer/t".into(),
            user_id: "AROAEXAMPLE:t".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/deployer".into()),
            role_id: None,
            session_name: Some("t".into()),
            source_identity: None,
            tags: vec![("team".into(), "blue".into())],
            transitive_tag_keys: vec![],
            session_policy: Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
                    .into(),
            ),
            policy_arns: vec![],
            chained: false,
            mfa_authenticated: false,
            web_identity: None,
            parent_user_arn: None,
        }
    }

    #[test]
    fn hits_need_the_same_token_generation_and_time() {
        let snapshot = crate::config::load_demo(1).unwrap();
        let ring = &snapshot.sts.as_ref().unwrap().ring;
        let now = 1_800_000_000;
        let issued = seal(ring, &claims(now), &mut rand::thread_rng()).unwrap();
        let token = issued.session_token.expose();
        let cache = SessionCache::new(16);
        let (s, hit) = cache
            .open(&snapshot, token, &issued.access_key_id, now)
            .unwrap();
        assert!(!hit);
        assert_eq!(
            s.principal.arn,
            "arn:aws:sts::123456789012:assumed-role/deployer/t"
        );
        assert!(s.principal.session.as_ref().unwrap().policies.is_some());
        // Role tags merged under session tags.
        assert!(s.principal.tags.contains(&("team".into(), "blue".into())));
        let (_, hit) = cache
            .open(&snapshot, token, &issued.access_key_id, now)
            .unwrap();
        assert!(hit);
        // Another token under the same access key id is opened, not served from the cache.
        // (A character in the middle: it decodes, so only the AEAD can refuse it.)
        let mid = token.len() / 2;
        let swapped = if token.as_bytes()[mid] == b'A' {
            "B"
        } else {
            "A"
        };
        let other = format!("{}{swapped}{}", &token[..mid], &token[mid + 1..]);
        assert_eq!(
            cache
                .open(&snapshot, &other, &issued.access_key_id, now)
                .unwrap_err(),
            SessionError::Token(TokenError::Invalid)
        );
        // Expiry is checked on hits too.
        assert!(cache
            .open(&snapshot, token, &issued.access_key_id, now + 900)
            .unwrap_err()
            .is_expired());
        // A new configuration generation reopens.
        let next = crate::config::load_demo(2).unwrap();
        let (_, hit) = cache
            .open(&next, token, &issued.access_key_id, now)
            .unwrap();
        assert!(!hit);
        // A second cache in the same thread never sees the first one's entries.
        let (_, hit) = SessionCache::new(16)
            .open(&next, token, &issued.access_key_id, now)
            .unwrap();
        assert!(!hit);
    }

    #[test]
    fn debug_hides_the_token_and_secret() {
        let snapshot = crate::config::load_demo(1).unwrap();
        let ring = &snapshot.sts.as_ref().unwrap().ring;
        let now = 1_800_000_000;
        let issued = seal(ring, &claims(now), &mut rand::thread_rng()).unwrap();
        let cache = SessionCache::new(16);
        let (s, _) = cache
            .open(
                &snapshot,
                issued.session_token.expose(),
                &issued.access_key_id,
                now,
            )
            .unwrap();
        let shown = format!("{s:?} {cache:?}");
        assert!(!shown.contains(issued.session_token.expose()), "{shown}");
        assert!(
            !shown.contains(issued.secret_access_key.expose()),
            "{shown}"
        );
        assert!(shown.contains(&issued.access_key_id));
    }
}
