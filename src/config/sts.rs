//! What the Security Token Service needs from the configuration: the session-token key ring,
//! session revocations and the trusted OIDC identity providers (`[sts]`, `[[oidc_providers]]`).

use std::fmt;
use std::sync::Arc;

use crate::sts::oidc::{JwksSource, OidcProvider};
use crate::sts::token::KeyRing;

use super::FastMap;

/// STS settings (`[sts]` and `[[oidc_providers]]`). Without an `[sts]` section there are none:
/// temporary credentials are refused and STS operations that issue credentials answer an error.
#[derive(Debug, Clone)]
pub struct StsSettings {
    /// The keys session tokens are sealed with, newest first (`sts.keys` with the secrets of
    /// `[sts_keys]`): the first seals new tokens, every key opens the tokens it sealed.
    pub ring: Arc<KeyRing>,
    /// `[[sts.revocations]]`: temporary credentials issued before a cut-off are refused.
    pub revocations: Revocations,
    /// The OIDC identity providers trusted for `AssumeRoleWithWebIdentity`, in config order.
    /// Issuers are unique across the configuration.
    pub oidc_providers: Vec<OidcProviderConfig>,
}

impl StsSettings {
    /// The provider whose issuer a token's `iss` names (see [`OidcProvider::matches_issuer`]).
    pub fn oidc_provider_for_issuer(&self, iss: &str) -> Option<&OidcProviderConfig> {
        self.oidc_providers
            .iter()
            .find(|p| p.provider.matches_issuer(iss))
    }
}

/// An OIDC identity provider (`[[oidc_providers]]`) and the account it belongs to, like an IAM
/// OIDC provider resource.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcProviderConfig {
    /// The 12-digit account id the provider belongs to: roles of this account may trust it.
    pub account: String,
    /// Issuer, audiences and key source. A `jwks_file` was read and checked at load and is
    /// given as [`JwksSource::Inline`]; a `jwks_url` as [`JwksSource::Url`].
    pub provider: OidcProvider,
}

impl OidcProviderConfig {
    /// `arn:aws:iam::<account>:oidc-provider/<provider>`.
    pub fn arn(&self) -> String {
        self.provider.arn(&self.account)
    }

    /// How trust policies name this provider in a `Federated` principal (and
    /// `aws:FederatedProvider`): see [`OidcProvider::federated_principal`].
    pub fn federated_principal(&self) -> String {
        self.provider.federated_principal(&self.account)
    }
}

impl fmt::Debug for OidcProviderConfig {
    // The derived `Debug` would print a whole inline key set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let jwks = match self.provider.jwks() {
            JwksSource::File(path) => format!("file {}", path.display()),
            JwksSource::Url(url) => format!("url {url}"),
            JwksSource::Inline(doc) => format!("inline ({} bytes)", doc.len()),
        };
        f.debug_struct("OidcProviderConfig")
            .field("account", &self.account)
            .field("issuer_url", &self.provider.issuer_url())
            .field("audiences", &self.provider.audiences())
            .field("jwks", &jwks)
            .field("refresh", &self.provider.refresh())
            .finish()
    }
}

/// What a revocation applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RevocationTarget {
    /// Every session of this role (`role = "arn:aws:iam::…:role/…"`).
    Role(String),
    /// Sessions of this IAM user: its `GetSessionToken` sessions, and sessions whose source or
    /// parent identity it is (`principal = "arn:aws:iam::…:user/…"`).
    Principal(String),
    /// Every session in this account (`account = "123456789012"`).
    Account(String),
}

/// One `[[sts.revocations]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// What it applies to.
    pub target: RevocationTarget,
    /// Sessions issued strictly before this time (epoch seconds) are refused.
    pub before: i64,
}

/// Session revocations: AWS's "revoke older sessions" (a `Deny` on `aws:TokenIssueTime`),
/// evaluated without shared state. Lookups are by exact ARN or account id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    entries: Vec<Revocation>,
    /// Latest cut-off per target (only the latest matters).
    roles: FastMap<String, i64>,
    principals: FastMap<String, i64>,
    accounts: FastMap<String, i64>,
}

impl Revocations {
    /// Indexes `entries` (kept in the given order for display).
    pub fn new(entries: Vec<Revocation>) -> Self {
        let mut revocations = Self::default();
        for entry in &entries {
            let (map, key) = match &entry.target {
                RevocationTarget::Role(arn) => (&mut revocations.roles, arn),
                RevocationTarget::Principal(arn) => (&mut revocations.principals, arn),
                RevocationTarget::Account(id) => (&mut revocations.accounts, id),
            };
            let cutoff = map.entry(key.clone()).or_insert(entry.before);
            *cutoff = (*cutoff).max(entry.before);
        }
        revocations.entries = entries;
        revocations
    }

    /// Whether a session issued at `issued_at` (epoch seconds, the token's `iat`) is revoked:
    /// true when an entry for `role_arn` (the assumed role, if any), for one of `principal_arns`
    /// (the user of a `GetSessionToken` session, the source or parent user of a role session)
    /// or for `account` (the session's account) has a cut-off later than `issued_at`.
    pub fn revoked(
        &self,
        issued_at: i64,
        role_arn: Option<&str>,
        principal_arns: &[&str],
        account: &str,
    ) -> bool {
        let after = |map: &FastMap<String, i64>, key: &str| {
            map.get(key).is_some_and(|&before| before > issued_at)
        };
        role_arn.is_some_and(|arn| after(&self.roles, arn))
            || principal_arns
                .iter()
                .any(|arn| after(&self.principals, arn))
            || after(&self.accounts, account)
    }

    /// The entries, in config order.
    pub fn entries(&self) -> &[Revocation] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
