//! The request context a policy is evaluated against: the principal, action, resource and every
//! condition key, with "absent" kept apart from "present but empty".

use std::borrow::Cow;

use super::glob::Resolve;

/// The kind of principal, as `aws:PrincipalType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    /// The account root user.
    Account,
    /// An IAM user.
    User,
    /// A role session.
    AssumedRole,
    /// A federated user session (GetFederationToken).
    FederatedUser,
    /// An unsigned caller.
    Anonymous,
    /// An AWS service principal.
    Service,
    /// A web identity (OIDC) caller of `AssumeRoleWithWebIdentity`; its `arn` is the provider as
    /// trust policies name it in `Federated`.
    WebIdentityUser,
}

impl PrincipalType {
    /// The `aws:PrincipalType` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Account => "Account",
            PrincipalType::User => "User",
            PrincipalType::AssumedRole => "AssumedRole",
            PrincipalType::FederatedUser => "FederatedUser",
            PrincipalType::Anonymous => "Anonymous",
            PrincipalType::Service => "Service",
            PrincipalType::WebIdentityUser => "WebIdentityUser",
        }
    }
}

/// Who is asking, as the policy engine needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalInfo {
    /// The kind.
    pub kind: PrincipalType,
    /// The principal's ARN (session ARN for role sessions; empty for anonymous).
    pub arn: String,
    /// Its account (empty for anonymous and services).
    pub account: String,
    /// For role sessions: the role's ARN (path included) — what `aws:PrincipalArn` holds.
    pub role_arn: Option<String>,
    /// `aws:userid`.
    pub user_id: String,
    /// `aws:username` (IAM users only).
    pub user_name: Option<String>,
    /// Principal tags (`aws:PrincipalTag/*`).
    pub tags: Vec<(String, String)>,
    /// For service principals: `svc.amazonaws.com`.
    pub service: Option<String>,
    /// Whether the principal has a permissions boundary (matters for `NotPrincipal`).
    pub has_boundary: bool,
}

impl PrincipalInfo {
    /// `aws:PrincipalArn`: the role ARN for sessions, the ARN otherwise.
    pub fn principal_arn(&self) -> &str {
        self.role_arn.as_deref().unwrap_or(&self.arn)
    }

    /// A role session of a service-linked role (path `/aws-service-role/`): exempt from SCPs.
    pub fn is_service_linked_role(&self) -> bool {
        self.role_arn
            .as_deref()
            .is_some_and(|r| r.contains(":role/aws-service-role/"))
    }

    /// An IAM user with the given ARN (`arn:aws:iam::<account>:user<path><name>`).
    pub fn user(arn: &str, user_id: &str) -> Self {
        let account = arn.split(':').nth(4).unwrap_or("").to_owned();
        let name = arn.rsplit('/').next().unwrap_or("").to_owned();
        Self {
            kind: PrincipalType::User,
            arn: arn.to_owned(),
            account,
            role_arn: None,
            user_id: user_id.to_owned(),
            user_name: Some(name),
            tags: Vec::new(),
            service: None,
            has_boundary: false,
        }
    }
}

/// A context value: one string or a set of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue<'a> {
    /// Single-valued key.
    Single(Cow<'a, str>),
    /// Multivalued key (possibly empty: present but empty).
    Multi(Vec<Cow<'a, str>>),
}

/// Everything a policy can look at for one request.
#[derive(Debug, Clone)]
pub struct RequestContext<'a> {
    /// The action, `service:Name`.
    pub action: Cow<'a, str>,
    /// The resource ARN, or `*`.
    pub resource: Cow<'a, str>,
    /// The principal.
    pub principal: &'a PrincipalInfo,
    /// The account that owns the resource (defaults to the principal's).
    pub resource_account: Cow<'a, str>,
    action_lower: String,
    entries: Vec<(Cow<'a, str>, ContextValue<'a>)>,
}

/// The prefix of the `aws:PrincipalTag/*` keys, lower-cased.
const PRINCIPAL_TAG: &str = "aws:principaltag/";

fn lower(key: &str) -> Cow<'_, str> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(key.to_ascii_lowercase())
    } else {
        Cow::Borrowed(key)
    }
}

impl<'a> RequestContext<'a> {
    /// A context with the principal-derived keys (`aws:PrincipalArn`, `aws:PrincipalAccount`,
    /// `aws:PrincipalType`, `aws:userid`, `aws:username`, `aws:PrincipalTag/*`) filled in.
    pub fn new(
        principal: &'a PrincipalInfo,
        action: impl Into<Cow<'a, str>>,
        resource: impl Into<Cow<'a, str>>,
    ) -> Self {
        let action = action.into();
        let mut ctx = Self {
            action_lower: action.to_ascii_lowercase(),
            action,
            resource: resource.into(),
            principal,
            resource_account: Cow::Borrowed(principal.account.as_str()),
            // Room for the principal's keys and the ones `authz::decide` adds, so a call does not
            // grow the vector.
            entries: Vec::with_capacity(24 + principal.tags.len()),
        };
        if principal.kind != PrincipalType::Anonymous {
            ctx.entries.push((
                Cow::Borrowed("aws:principalarn"),
                ContextValue::Single(Cow::Borrowed(principal.principal_arn())),
            ));
        }
        if !principal.account.is_empty() {
            ctx.entries.push((
                Cow::Borrowed("aws:principalaccount"),
                ContextValue::Single(Cow::Borrowed(&principal.account)),
            ));
        }
        ctx.entries.push((
            Cow::Borrowed("aws:principaltype"),
            ContextValue::Single(Cow::Borrowed(principal.kind.as_str())),
        ));
        ctx.entries.push((
            Cow::Borrowed("aws:userid"),
            ContextValue::Single(Cow::Borrowed(&principal.user_id)),
        ));
        if let (PrincipalType::User, Some(name)) = (principal.kind, &principal.user_name) {
            ctx.entries.push((
                Cow::Borrowed("aws:username"),
                ContextValue::Single(Cow::Borrowed(name)),
            ));
        }
        for (k, v) in &principal.tags {
            // One allocation, no formatting machinery: this runs on every call.
            let mut key = String::with_capacity(PRINCIPAL_TAG.len() + k.len());
            key.push_str(PRINCIPAL_TAG);
            key.extend(k.chars().map(|c| c.to_ascii_lowercase()));
            ctx.entries
                .push((Cow::Owned(key), ContextValue::Single(Cow::Borrowed(v))));
        }
        ctx
    }

    /// Sets the resource's account (cross-account evaluation when it differs).
    pub fn with_resource_account(mut self, account: impl Into<Cow<'a, str>>) -> Self {
        self.resource_account = account.into();
        self
    }

    /// Adds or replaces a single-valued key.
    pub fn set(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.put(key.into(), ContextValue::Single(value.into()));
    }

    /// Adds or replaces a multivalued key (an empty list is present-but-empty).
    pub fn set_multi(&mut self, key: impl Into<Cow<'a, str>>, values: Vec<Cow<'a, str>>) {
        self.put(key.into(), ContextValue::Multi(values));
    }

    fn put(&mut self, key: Cow<'a, str>, value: ContextValue<'a>) {
        let key = match lower(&key) {
            Cow::Owned(o) => Cow::Owned(o),
            Cow::Borrowed(_) => key,
        };
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }

    /// Looks up a key (lower-case).
    pub fn get(&self, key_lower: &str) -> Option<&ContextValue<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k == key_lower)
            .map(|(_, v)| v)
    }

    /// The action, lower-cased.
    pub fn action_lower(&self) -> &str {
        &self.action_lower
    }

    /// Every key present, lower-cased.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }
}

impl Resolve for RequestContext<'_> {
    fn resolve(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            ContextValue::Single(v) => Some(v),
            ContextValue::Multi(_) => None,
        }
    }
}
