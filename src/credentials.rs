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
    /// An IAM user with long-term access keys.
    IamUser,
}

impl PrincipalKind {
    /// The `aws:PrincipalType` / CloudTrail `userIdentity.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::IamUser => "IAMUser",
        }
    }
}

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
        }
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
    pub id: String,
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
    keys: HashMap<String, Arc<AccessKey>>,
}

impl KeyStore {
    /// Builds a store; a later key with the same id replaces an earlier one (config validation
    /// refuses duplicates before this point).
    pub fn new(keys: impl IntoIterator<Item = AccessKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|k| (k.id.clone(), Arc::new(k)))
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
            id: "AKIAEXAMPLE".into(),
            secret: k,
            status: KeyStatus::Active,
            principal: p,
        };
        assert!(!format!("{ak:?}").contains("EXAMPLEKEY"));
    }
}
