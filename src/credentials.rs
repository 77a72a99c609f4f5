//! Long-term credentials: secret keys, access keys and the key store the verifier reads.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A secret access key. Zeroized on drop; `Debug` never prints it.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    /// Wraps a secret access key.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret, for deriving signing keys. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// Whether an access key may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum KeyStatus {
    /// The key signs requests.
    Active,
    /// The key exists but is refused, as IAM does for an inactive key.
    Inactive,
}

/// The kind of principal that signed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An IAM user: long-term access keys, or `GetSessionToken` temporary credentials.
    IamUser,
    /// A role session (`AssumeRole`, `AssumeRoleWithWebIdentity`).
    AssumedRole,
}

impl PrincipalKind {
    /// The CloudTrail `userIdentity.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::IamUser => "IAMUser",
            PrincipalKind::AssumedRole => "AssumedRole",
        }
    }
}

/// What a request signed with temporary credentials carries beyond its principal: the sealed
/// session claims and the session policies compiled from them.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The claims sealed in the session token.
    pub claims: crate::sts::token::SessionClaims,
    /// Inline and managed session policies, compiled (`None` when the session has none).
    pub policies: Option<Arc<crate::policy::PolicySet>>,
}

impl PartialEq for SessionContext {
    fn eq(&self, other: &Self) -> bool {
        self.claims == other.claims
    }
}

impl Eq for SessionContext {}

/// Who made a request, as established by authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The kind of principal.
    pub kind: PrincipalKind,
    /// Its ARN, e.g. `arn:aws:iam::123456789012:user/admin`.
    pub arn: String,
    /// Its 12-digit account id.
    pub account_id: String,
    /// Its friendly name (the user name).
    pub name: String,
    /// Its unique id (`AIDA…` for users), as `aws:userid` sees it.
    pub unique_id: String,
    /// Its tags, as `aws:PrincipalTag/*` will see them.
    pub tags: Vec<(String, String)>,
    /// The policy engine's view, built once (authorization reads it on every request).
    policy: crate::policy::PrincipalInfo,
    /// For temporary credentials: the session.
    pub session: Option<SessionContext>,
    /// `x-tollgate-principal-arn` and `x-tollgate-account-id`, built once (cloning shares them).
    identity_headers: Option<[http::HeaderValue; 2]>,
}

/// The identity header values of an ARN and account, when both are valid header values.
fn identity_headers(arn: &str, account: &str) -> Option<[http::HeaderValue; 2]> {
    let shared = |v: &str| {
        http::HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(v.as_bytes())).ok()
    };
    Some([shared(arn)?, shared(account)?])
}

impl Principal {
    /// An IAM user.
    pub fn iam_user(
        arn: String,
        account_id: String,
        name: String,
        unique_id: String,
        tags: Vec<(String, String)>,
    ) -> Self {
        let policy = crate::policy::PrincipalInfo {
            kind: crate::policy::PrincipalType::User,
            arn: arn.clone(),
            account: account_id.clone(),
            role_arn: None,
            user_id: unique_id.clone(),
            user_name: Some(name.clone()),
            tags: tags.clone(),
            service: None,
            has_boundary: false,
        };
        Self {
            kind: PrincipalKind::IamUser,
            arn,
            account_id,
            name,
            unique_id,
            tags,
            policy,
            session: None,
            identity_headers: None,
        }
        .with_identity_headers()
    }

    fn with_identity_headers(mut self) -> Self {
        self.identity_headers = identity_headers(&self.arn, &self.account_id);
        self
    }

    /// The `x-tollgate-principal-arn` and `x-tollgate-account-id` values, prepared once.
    pub fn identity_headers(&self) -> Option<&[http::HeaderValue; 2]> {
        self.identity_headers.as_ref()
    }

    /// `GetSessionToken` credentials: the IAM user, with its session attached.
    pub fn user_session(user: &Principal, ctx: SessionContext) -> Self {
        Self {
            session: Some(ctx),
            ..user.clone()
        }
    }

    /// A role session: its ARN and `AROA…:session` id from the claims, the role's tags merged
    /// under the session tags (a session tag wins, keys compared case-insensitively).
    pub fn role_session(role_tags: &[(String, String)], ctx: SessionContext) -> Self {
        let c = &ctx.claims;
        let mut tags: Vec<(String, String)> = role_tags
            .iter()
            .filter(|(k, _)| !c.tags.iter().any(|(sk, _)| sk.eq_ignore_ascii_case(k)))
            .cloned()
            .collect();
        tags.extend(c.tags.iter().cloned());
        let policy = crate::policy::PrincipalInfo {
            kind: crate::policy::PrincipalType::AssumedRole,
            arn: c.arn.clone(),
            account: c.account.clone(),
            role_arn: c.role_arn.clone(),
            user_id: c.user_id.clone(),
            user_name: None,
            tags: tags.clone(),
            service: None,
            has_boundary: false,
        };
        Self {
            kind: PrincipalKind::AssumedRole,
            arn: c.arn.clone(),
            account_id: c.account.clone(),
            name: c.session_name.clone().unwrap_or_default(),
            unique_id: c.user_id.clone(),
            tags,
            policy,
            session: Some(ctx),
            identity_headers: None,
        }
        .with_identity_headers()
    }

    /// The policy engine's view of this principal.
    pub fn policy_info(&self) -> &crate::policy::PrincipalInfo {
        &self.policy
    }
}

/// One long-term access key.
#[derive(Debug)]
pub struct AccessKey {
    /// The access key id (`AKIA…`).
    pub id: Arc<str>,
    /// Its secret.
    pub secret: SecretKey,
    /// Active or inactive.
    pub status: KeyStatus,
    /// The principal the key belongs to.
    pub principal: Arc<Principal>,
}

/// All long-term access keys, by access key id.
#[derive(Debug, Default)]
pub struct KeyStore {
    keys: HashMap<Box<str>, Arc<AccessKey>, foldhash::fast::RandomState>,
}

impl KeyStore {
    /// Builds a store; a later key with the same id replaces an earlier one (config validation
    /// refuses duplicates before this point).
    pub fn new(keys: impl IntoIterator<Item = AccessKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|k| (Box::from(k.id.as_ref()), Arc::new(k)))
                .collect(),
        }
    }

    /// Looks up an access key id.
    pub fn get(&self, access_key_id: &str) -> Option<&Arc<AccessKey>> {
        self.keys.get(access_key_id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Iterates over the keys (order unspecified).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<AccessKey>> {
        self.keys.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_debug_hides_secret() {
        let k = SecretKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        assert_eq!(format!("{k:?}"), "SecretKey(***)");
        let p = Arc::new(Principal::iam_user(
            "arn:aws:iam::123456789012:user/a".into(),
            "123456789012".into(),
            "a".into(),
            "AIDAEXAMPLE".into(),
            vec![],
        ));
        let ak = AccessKey {
            id: Arc::from("AKIAEXAMPLE"),
            secret: k,
            status: KeyStatus::Active,
            principal: p,
        };
        assert!(!format!("{ak:?}").contains("EXAMPLEKEY"));
    }
}
