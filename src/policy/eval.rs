//! The AWS evaluation flow: explicit deny anywhere wins; RCPs and SCPs per organization level;
//! resource-based policies with AWS's same-account principal rules; identity policies;
//! permissions boundaries; session policies; otherwise implicit deny.

use std::sync::Arc;

use super::compile::{
    ActionPattern, CompiledPolicy, CompiledStatement, PolicySet, PrincipalMatcher,
};
use super::condition::condition_holds;
use super::context::{PrincipalType, RequestContext};
use super::model::{Effect, PolicyType};

/// The three outcomes AWS distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed.
    Allowed,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// Nothing allowed it (or a limiting policy type did not allow it).
    ImplicitDeny,
}

impl Outcome {
    /// `allowed` | `explicitDeny` | `implicitDeny`, as `EvalDecision` spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::ExplicitDeny => "explicitDeny",
            Outcome::ImplicitDeny => "implicitDeny",
        }
    }
}

/// A statement that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The policy's id (ARN or name).
    pub policy: Arc<str>,
    /// The policy's type.
    pub policy_type: PolicyType,
    /// The statement's position (0-based).
    pub index: usize,
    /// Its `Sid`.
    pub sid: Option<Box<str>>,
}

impl StatementRef {
    fn of(p: &CompiledPolicy, s: &CompiledStatement) -> Self {
        Self {
            policy: p.id.clone(),
            policy_type: p.policy_type,
            index: s.index,
            sid: s.sid.clone(),
        }
    }
}

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed, explicit deny or implicit deny.
    pub outcome: Outcome,
    /// The deny statement (explicit deny) or the allow statement that granted (allowed).
    pub statement: Option<StatementRef>,
    /// For an implicit deny: the policy type that did not allow (`Identity` when nothing did).
    pub denied_by: Option<PolicyType>,
}

impl Decision {
    fn implicit(by: PolicyType) -> Self {
        Self {
            outcome: Outcome::ImplicitDeny,
            statement: None,
            denied_by: Some(by),
        }
    }

    /// True when allowed.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allowed
    }
}

/// Every policy that applies to one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policies<'a> {
    /// Identity policies of the principal (user + groups, or role).
    pub identity: Option<&'a PolicySet>,
    /// Permissions boundary, if the principal has one.
    pub boundary: Option<&'a PolicySet>,
    /// Session policies, if the session has any.
    pub session: Option<&'a PolicySet>,
    /// The resource's policy, if any.
    pub resource: Option<&'a PolicySet>,
    /// SCP levels that apply to the principal's account, root → OUs → account.
    pub scps: &'a [PolicySet],
    /// RCP levels that apply to the resource's account, root → OUs → account.
    pub rcps: &'a [PolicySet],
    /// The principal's account is the organization's management account (SCPs don't apply).
    pub principal_in_management_account: bool,
    /// The resource's account is the management account (RCPs don't apply).
    pub resource_in_management_account: bool,
}

/// How strongly a matching resource-policy `Allow` grants, from its `Principal` (IAM User Guide,
/// "Policy evaluation logic", same-account table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Grant {
    /// Nothing matched.
    None,
    /// The account principal: delegates to the account, an identity policy must still allow.
    Account,
    /// A role ARN for one of its sessions: identity policies not needed, but the boundary and the
    /// session policy still limit.
    Role,
    /// User ARN, session ARN, federated-user ARN, service, or `*`: grants on its own.
    Full,
}

/// Services whose resources resource control policies govern.
const RCP_SERVICES: &[&str] = &[
    "s3",
    "sts",
    "kms",
    "sqs",
    "secretsmanager",
    "cognito-identity",
    "ecr",
    "aoss",
    "dynamodb",
    "logs",
];

fn action_matches(s: &CompiledStatement, action_lower: &str) -> bool {
    let any = s.actions.iter().any(|a| match a {
        ActionPattern::Any => true,
        ActionPattern::Exact(e) => e.as_ref() == action_lower,
        ActionPattern::Glob { pattern, .. } => pattern.matches(action_lower, &()) == Some(true),
    });
    any != s.not_action
}

fn resource_matches(s: &CompiledStatement, ctx: &RequestContext<'_>) -> bool {
    let Some(resources) = &s.resources else {
        return true;
    };
    let any = resources
        .iter()
        .any(|r| r.0.is_match_all() || r.0.matches(&ctx.resource, ctx) == Some(true));
    any != s.not_resource
}

fn conditions_hold(s: &CompiledStatement, ctx: &RequestContext<'_>) -> bool {
    s.conditions.iter().all(|c| condition_holds(c, ctx))
}

/// The grant of one principal matcher for the request's principal.
fn principal_grant(m: &PrincipalMatcher, ctx: &RequestContext<'_>) -> Grant {
    let p = ctx.principal;
    match m {
        PrincipalMatcher::Any => Grant::Full,
        PrincipalMatcher::Account(a) => {
            if p.kind != PrincipalType::Anonymous
                && p.kind != PrincipalType::Service
                && p.account == a.as_ref()
            {
                if p.kind == PrincipalType::Account {
                    Grant::Full
                } else {
                    Grant::Account
                }
            } else {
                Grant::None
            }
        }
        PrincipalMatcher::Arn(arn) => {
            let arn = arn.as_ref();
            match p.kind {
                PrincipalType::User | PrincipalType::FederatedUser if p.arn == arn => Grant::Full,
                PrincipalType::User if p.user_id == arn => Grant::Full,
                PrincipalType::AssumedRole if p.arn == arn => Grant::Full,
                PrincipalType::AssumedRole if p.role_arn.as_deref() == Some(arn) => Grant::Role,
                PrincipalType::AssumedRole if p.user_id.split(':').next() == Some(arn) => {
                    Grant::Role
                }
                _ => Grant::None,
            }
        }
        PrincipalMatcher::Service(s) => {
            if p.kind == PrincipalType::Service && p.service.as_deref() == Some(s.as_ref()) {
                Grant::Full
            } else {
                Grant::None
            }
        }
        PrincipalMatcher::Federated(f) => {
            if p.kind == PrincipalType::WebIdentityUser && p.arn == f.as_ref() {
                Grant::Full
            } else {
                Grant::None
            }
        }
        PrincipalMatcher::CanonicalUser(_) => Grant::None,
    }
}

/// Whether a `NotPrincipal` list excludes the request's principal. AWS may evaluate the account,
/// the role and the session separately, so a session is excluded only when its account, role and
/// session ARNs are all listed, and a user only when the user and its account are listed.
fn not_principal_excludes(list: &[PrincipalMatcher], ctx: &RequestContext<'_>) -> bool {
    let p = ctx.principal;
    if list.contains(&PrincipalMatcher::Any) {
        return true;
    }
    let account_listed = list
        .iter()
        .any(|m| matches!(m, PrincipalMatcher::Account(a) if a.as_ref() == p.account));
    let arn_listed = |arn: &str| {
        list.iter()
            .any(|m| matches!(m, PrincipalMatcher::Arn(a) if a.as_ref() == arn))
    };
    match p.kind {
        PrincipalType::Account => account_listed,
        PrincipalType::User | PrincipalType::FederatedUser => account_listed && arn_listed(&p.arn),
        PrincipalType::AssumedRole => account_listed && arn_listed(&p.arn) && p.role_arn.as_deref().is_some_and(arn_listed),
        PrincipalType::Service => list.iter().any(|m| matches!(m, PrincipalMatcher::Service(s) if Some(s.as_ref()) == p.service.as_deref())),
        PrincipalType::Anonymous => false,
        PrincipalType::WebIdentityUser => list
            .iter()
            .any(|m| matches!(m, PrincipalMatcher::Federated(f) if f.as_ref() == p.arn)),
    }
}

/// The grant a statement's principal element gives (statements without one: `Full`, as in
/// identity-style policies).
fn statement_principal(s: &CompiledStatement, ctx: &RequestContext<'_>) -> Grant {
    let Some(list) = &s.principals else {
        return Grant::Full;
    };
    if s.not_principal {
        // Deny + NotPrincipal always applies to a principal with a permissions boundary.
        if ctx.principal.has_boundary || !not_principal_excludes(list, ctx) {
            return Grant::Full;
        }
        return Grant::None;
    }
    list.iter()
        .map(|m| principal_grant(m, ctx))
        .max()
        .unwrap_or(Grant::None)
}

/// Does the statement apply (action, resource, principal, conditions)? Returns its grant.
fn applies(s: &CompiledStatement, ctx: &RequestContext<'_>) -> Grant {
    if !action_matches(s, ctx.action_lower()) || !resource_matches(s, ctx) {
        return Grant::None;
    }
    let grant = statement_principal(s, ctx);
    if grant == Grant::None || !conditions_hold(s, ctx) {
        return Grant::None;
    }
    grant
}

/// The first matching statement with `effect` in `set`, and its grant.
fn find(
    set: &PolicySet,
    ctx: &RequestContext<'_>,
    effect: Effect,
) -> Option<(StatementRef, Grant)> {
    let mut best: Option<(StatementRef, Grant)> = None;
    for (p, s) in set.candidates(ctx.action_lower()) {
        if s.effect != effect {
            continue;
        }
        let g = applies(s, ctx);
        if g == Grant::None {
            continue;
        }
        if g == Grant::Full || effect == Effect::Deny {
            return Some((StatementRef::of(p, s), g));
        }
        if best.as_ref().is_none_or(|(_, bg)| g > *bg) {
            best = Some((StatementRef::of(p, s), g));
        }
    }
    best
}

fn allows(set: &PolicySet, ctx: &RequestContext<'_>) -> Option<StatementRef> {
    find(set, ctx, Effect::Allow).map(|(r, _)| r)
}

/// Evaluates a request against every applicable policy, as AWS does.
pub fn evaluate(policies: &Policies<'_>, ctx: &RequestContext<'_>) -> Decision {
    let principal = ctx.principal;
    let service = crate::text::split_once(ctx.action_lower(), b':').map_or("", |(s, _)| s);
    let scps_apply = !policies.principal_in_management_account
        && !principal.is_service_linked_role()
        && matches!(
            principal.kind,
            PrincipalType::User
                | PrincipalType::AssumedRole
                | PrincipalType::FederatedUser
                | PrincipalType::Account
        );
    let rcps_apply = !policies.resource_in_management_account && RCP_SERVICES.contains(&service);
    let session_principal = matches!(
        principal.kind,
        PrincipalType::AssumedRole | PrincipalType::FederatedUser
    );
    let scps: &[PolicySet] = if scps_apply { policies.scps } else { &[] };
    let rcps: &[PolicySet] = if rcps_apply { policies.rcps } else { &[] };
    let boundary = if principal.kind == PrincipalType::Anonymous {
        None
    } else {
        policies.boundary
    };
    let session = if session_principal {
        policies.session
    } else {
        None
    };
    let identity = if principal.kind == PrincipalType::Anonymous {
        None
    } else {
        policies.identity
    };

    // 1. An explicit deny anywhere wins.
    let deny_sets = identity
        .into_iter()
        .chain(boundary)
        .chain(session)
        .chain(policies.resource)
        .chain(scps)
        .chain(rcps);
    for set in deny_sets {
        if let Some((r, _)) = find(set, ctx, Effect::Deny) {
            return Decision {
                outcome: Outcome::ExplicitDeny,
                statement: Some(r),
                denied_by: None,
            };
        }
    }
    // 2. RCPs, then 3. SCPs: every level needs an allow.
    for level in rcps {
        if allows(level, ctx).is_none() {
            return Decision::implicit(PolicyType::Rcp);
        }
    }
    for level in scps {
        if allows(level, ctx).is_none() {
            return Decision::implicit(PolicyType::Scp);
        }
    }
    let boundary_ok = boundary.is_none_or(|b| allows(b, ctx).is_some());
    // A federated-user session without session policies has no permissions (GetFederationToken);
    // a role session without one keeps its role's permissions.
    let session_ok = match session {
        Some(s) => allows(s, ctx).is_some(),
        None => principal.kind != PrincipalType::FederatedUser,
    };
    let resource_allow = policies.resource.and_then(|r| find(r, ctx, Effect::Allow));
    let identity_allow = identity.and_then(|i| allows(i, ctx));
    let root = principal.kind == PrincipalType::Account;
    let same_account = ctx.resource_account.as_ref() == principal.account;

    // Anonymous callers and service principals have no identity policies and no account side:
    // only a resource policy naming them (or `*`) grants.
    if matches!(
        principal.kind,
        PrincipalType::Anonymous | PrincipalType::Service
    ) {
        return match resource_allow {
            Some((r, Grant::Full)) => Decision {
                outcome: Outcome::Allowed,
                statement: Some(r),
                denied_by: None,
            },
            _ => Decision::implicit(PolicyType::Resource),
        };
    }

    if same_account {
        // 4. Resource-based policy in the same account.
        if let Some((r, grant)) = &resource_allow {
            match grant {
                Grant::Full => {
                    return Decision {
                        outcome: Outcome::Allowed,
                        statement: Some(r.clone()),
                        denied_by: None,
                    }
                }
                Grant::Role if boundary_ok && session_ok => {
                    return Decision {
                        outcome: Outcome::Allowed,
                        statement: Some(r.clone()),
                        denied_by: None,
                    }
                }
                _ => {}
            }
        }
        // KMS key policies (like trust policies) must allow explicitly: an identity policy
        // alone never grants access to a key.
        if service == "kms" && resource_allow.is_none() {
            return Decision::implicit(PolicyType::Resource);
        }
        // 5. Identity policies (the root user needs none), 6. boundary, 7. session policy.
        if identity_allow.is_none() && !root {
            return Decision::implicit(PolicyType::Identity);
        }
        if !boundary_ok {
            return Decision::implicit(PolicyType::Boundary);
        }
        if !session_ok {
            return Decision::implicit(PolicyType::Session);
        }
        let statement = identity_allow.or(resource_allow.map(|(r, _)| r));
        return Decision {
            outcome: Outcome::Allowed,
            statement,
            denied_by: None,
        };
    }
    // Cross-account: the principal's account and the resource's account must both allow.
    if identity_allow.is_none() && !root {
        return Decision::implicit(PolicyType::Identity);
    }
    if !boundary_ok {
        return Decision::implicit(PolicyType::Boundary);
    }
    if !session_ok {
        return Decision::implicit(PolicyType::Session);
    }
    match resource_allow {
        Some((r, _)) => Decision {
            outcome: Outcome::Allowed,
            statement: Some(r),
            denied_by: None,
        },
        None => Decision::implicit(PolicyType::Resource),
    }
}

/// Every statement of `set` that applies to the request, with its effect (for explanations and
/// the simulator; allocates).
pub fn matching_statements(
    set: &PolicySet,
    ctx: &RequestContext<'_>,
) -> Vec<(StatementRef, Effect)> {
    let mut out: Vec<(StatementRef, Effect)> = Vec::new();
    for (p, s) in set.candidates(ctx.action_lower()) {
        if applies(s, ctx) != Grant::None {
            let r = StatementRef::of(p, s);
            if !out.iter().any(|(x, _)| *x == r) {
                out.push((r, s.effect));
            }
        }
    }
    out
}
