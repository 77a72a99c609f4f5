//! Compiled policies: patterns compiled, condition values pre-parsed, statements indexed by
//! action so evaluation touches only candidate statements.

use std::collections::HashMap;
use std::sync::Arc;

use super::glob::{Pattern, PatternOptions};
use super::model::{
    BaseOperator, Condition, Effect, Operator, PolicyDocument, PolicyType, PrincipalEntry,
    PrincipalSpec, Version,
};
use super::value::{self, Cidr};

/// A compiled `service:action` pattern.
#[derive(Debug, Clone)]
pub(crate) enum ActionPattern {
    /// `*`.
    Any,
    /// Lower-cased `service:action`, no wildcard.
    Exact(Box<str>),
    /// A pattern with wildcards; `service` lower-cased when it has none.
    Glob {
        service: Option<Box<str>>,
        pattern: Pattern,
    },
}

/// A resource pattern (whole-ARN glob, `*` crossing colons and slashes, case-sensitive).
#[derive(Debug, Clone)]
pub(crate) struct ResourcePattern(pub(crate) Pattern);

/// An ARN pattern for `Arn*` operators: wildcards stay within each of the first five segments.
#[derive(Debug, Clone)]
pub(crate) struct ArnPattern {
    pub(crate) segments: Vec<Pattern>,
}

impl ArnPattern {
    fn compile(text: &str, variables: bool) -> Option<Self> {
        let parts = split_arn(text, variables);
        if parts.len() != 6 {
            return None;
        }
        let opts = PatternOptions {
            wildcards: true,
            variables,
            case_insensitive: false,
        };
        Some(Self {
            segments: parts.iter().map(|p| Pattern::compile(p, opts)).collect(),
        })
    }
}

/// Splits ARN pattern text into at most six parts at colons outside `${…}` variables.
fn split_arn(text: &str, variables: bool) -> Vec<&str> {
    let mut parts = Vec::with_capacity(6);
    let (mut start, mut depth) = (0usize, 0usize);
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' if variables && i > 0 && bytes.get(i - 1) == Some(&b'$') => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b':' if depth == 0 && parts.len() < 5 => {
                parts.push(text.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}

/// A pre-parsed condition value.
#[derive(Debug, Clone)]
pub(crate) enum CompiledValue {
    Str(Pattern),
    Num(f64),
    Date(i64),
    Bool(Pattern),
    Binary(Vec<u8>),
    Ip(Cidr),
    Arn(ArnPattern),
    /// An `Arn*` value that is not an ARN: matches nothing.
    BadArn,
    Null(bool),
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition {
    pub(crate) operator: Operator,
    /// Lower-cased key.
    pub(crate) key: Box<str>,
    pub(crate) values: Vec<CompiledValue>,
}

/// A compiled principal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalMatcher {
    Any,
    Account(Box<str>),
    Arn(Box<str>),
    Service(Box<str>),
    Federated(Box<str>),
    CanonicalUser(Box<str>),
}

/// A compiled statement.
#[derive(Debug, Clone)]
pub struct CompiledStatement {
    /// Position in the policy (0-based).
    pub index: usize,
    /// `Sid`.
    pub sid: Option<Box<str>>,
    /// `Allow` / `Deny`.
    pub effect: Effect,
    pub(crate) not_action: bool,
    pub(crate) actions: Vec<ActionPattern>,
    pub(crate) not_resource: bool,
    /// `None`: no Resource element (trust policies) — matches any resource.
    pub(crate) resources: Option<Vec<ResourcePattern>>,
    pub(crate) not_principal: bool,
    /// `None`: no Principal element.
    pub(crate) principals: Option<Vec<PrincipalMatcher>>,
    pub(crate) conditions: Vec<CompiledCondition>,
}

impl CompiledStatement {
    /// The condition keys this statement reads (lower-case).
    pub fn condition_keys(&self) -> impl Iterator<Item = &str> {
        self.conditions.iter().map(|c| c.key.as_ref())
    }
}

/// A compiled policy document.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// How the policy is named in decisions (its ARN or name).
    pub id: Arc<str>,
    /// Its type.
    pub policy_type: PolicyType,
    /// Its language version.
    pub version: Version,
    /// Its statements, in document order.
    pub statements: Vec<CompiledStatement>,
}

fn compile_action(a: &str) -> ActionPattern {
    if a == "*" {
        return ActionPattern::Any;
    }
    let lower = a.to_ascii_lowercase();
    if !lower.contains(['*', '?']) {
        return ActionPattern::Exact(lower.into());
    }
    let service = lower
        .split_once(':')
        .map(|(s, _)| s)
        .filter(|s| !s.contains(['*', '?']))
        .map(Box::from);
    let pattern = Pattern::compile(
        &lower,
        PatternOptions {
            wildcards: true,
            variables: false,
            case_insensitive: true,
        },
    );
    if pattern.is_match_all() {
        return ActionPattern::Any;
    }
    ActionPattern::Glob { service, pattern }
}

fn compile_principal(e: &PrincipalEntry) -> PrincipalMatcher {
    match e {
        PrincipalEntry::Aws(v) if v == "*" => PrincipalMatcher::Any,
        PrincipalEntry::Aws(v) if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) => {
            PrincipalMatcher::Account(v.as_str().into())
        }
        PrincipalEntry::Aws(v) => {
            // arn:aws:iam::123456789012:root is the account principal.
            let parts: Vec<&str> = v.splitn(6, ':').collect();
            if parts.len() == 6 && parts.get(2) == Some(&"iam") && parts.get(5) == Some(&"root") {
                PrincipalMatcher::Account(parts.get(4).copied().unwrap_or("").into())
            } else {
                PrincipalMatcher::Arn(v.as_str().into())
            }
        }
        PrincipalEntry::Service(s) => PrincipalMatcher::Service(s.as_str().into()),
        PrincipalEntry::Federated(f) => PrincipalMatcher::Federated(f.as_str().into()),
        PrincipalEntry::CanonicalUser(c) => PrincipalMatcher::CanonicalUser(c.as_str().into()),
    }
}

fn compile_condition(c: &Condition, variables: bool) -> CompiledCondition {
    use BaseOperator::*;
    let op = c.operator;
    let vars = variables && op.base.takes_variables();
    let values = c
        .values
        .iter()
        .map(|v| match op.base {
            StringEquals | StringNotEquals => CompiledValue::Str(Pattern::compile(
                v,
                PatternOptions {
                    wildcards: false,
                    variables: vars,
                    case_insensitive: false,
                },
            )),
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                CompiledValue::Str(Pattern::compile(
                    v,
                    PatternOptions {
                        wildcards: false,
                        variables: vars,
                        case_insensitive: true,
                    },
                ))
            }
            StringLike | StringNotLike => CompiledValue::Str(Pattern::compile(
                v,
                PatternOptions {
                    wildcards: true,
                    variables: vars,
                    case_insensitive: false,
                },
            )),
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => {
                value::parse_number(v).map_or(CompiledValue::Num(f64::NAN), CompiledValue::Num)
            }
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => {
                value::parse_date(v).map_or(CompiledValue::Num(f64::NAN), CompiledValue::Date)
            }
            Bool => CompiledValue::Bool(Pattern::compile(
                v,
                PatternOptions {
                    wildcards: false,
                    variables: vars,
                    case_insensitive: true,
                },
            )),
            BinaryEquals => CompiledValue::Binary(value::decode_base64(v).unwrap_or_default()),
            IpAddress | NotIpAddress => {
                value::Cidr::parse(v).map_or(CompiledValue::Num(f64::NAN), CompiledValue::Ip)
            }
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => {
                ArnPattern::compile(v, vars).map_or(CompiledValue::BadArn, CompiledValue::Arn)
            }
            Null => CompiledValue::Null(v.eq_ignore_ascii_case("true")),
        })
        .collect();
    CompiledCondition {
        operator: op,
        key: c.key.to_ascii_lowercase().into(),
        values,
    }
}

impl CompiledPolicy {
    /// Compiles a validated document.
    pub fn compile(id: impl Into<Arc<str>>, policy_type: PolicyType, doc: &PolicyDocument) -> Self {
        let variables = doc.version == Version::V2012_10_17;
        let statements = doc
            .statements
            .iter()
            .enumerate()
            .map(|(index, s)| CompiledStatement {
                index,
                sid: s.sid.as_deref().map(Box::from),
                effect: s.effect,
                not_action: s.action.negated,
                actions: s.action.values.iter().map(|a| compile_action(a)).collect(),
                not_resource: s.resource.as_ref().is_some_and(|r| r.negated),
                resources: s.resource.as_ref().map(|r| {
                    r.values
                        .iter()
                        .map(|v| {
                            ResourcePattern(Pattern::compile(
                                v,
                                PatternOptions {
                                    wildcards: true,
                                    variables,
                                    case_insensitive: false,
                                },
                            ))
                        })
                        .collect()
                }),
                not_principal: s.principal.as_ref().is_some_and(|p| p.negated),
                principals: s.principal.as_ref().map(|p| match &p.values {
                    PrincipalSpec::Any => vec![PrincipalMatcher::Any],
                    PrincipalSpec::Entries(e) => e.iter().map(compile_principal).collect(),
                }),
                conditions: s
                    .conditions
                    .iter()
                    .map(|c| compile_condition(c, variables))
                    .collect(),
            })
            .collect();
        Self {
            id: id.into(),
            policy_type,
            version: doc.version,
            statements,
        }
    }

    /// Parses, validates and compiles JSON text; `Err` carries the findings when any is an error.
    pub fn from_json(
        id: impl Into<Arc<str>>,
        policy_type: PolicyType,
        text: &str,
    ) -> Result<Self, Vec<super::Finding>> {
        let parsed = super::parse::parse_policy(text, policy_type);
        match parsed.document {
            Some(doc) => Ok(Self::compile(id, policy_type, &doc)),
            None => Err(parsed.findings),
        }
    }
}

/// Statements by action or service name. Names come from policies; requests only look up, so a
/// fast seeded hasher is safe from flooding.
type ActionIndex = HashMap<Box<str>, Vec<StatementIdx>, foldhash::fast::RandomState>;

/// Where a statement sits in a [`PolicySet`].
pub(crate) type StatementIdx = (u32, u32);

/// Policies of one type (e.g. all identity policies of a principal, or one SCP level),
/// with an index from action to candidate statements.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub(crate) policies: Vec<Arc<CompiledPolicy>>,
    /// `service:action` (lower-case) → statements naming it exactly.
    exact: ActionIndex,
    /// service (lower-case) → statements with a wildcard action in that service.
    by_service: ActionIndex,
    /// Statements to check for every action (`*`, wildcard services, `NotAction`).
    always: Vec<StatementIdx>,
}

impl PolicySet {
    /// Indexes `policies`.
    pub fn new(policies: Vec<Arc<CompiledPolicy>>) -> Self {
        let mut set = Self {
            policies,
            ..Self::default()
        };
        for (pi, p) in set.policies.iter().enumerate() {
            for (si, s) in p.statements.iter().enumerate() {
                let idx = (pi as u32, si as u32);
                if s.not_action {
                    set.always.push(idx);
                    continue;
                }
                let mut placed_always = false;
                for a in &s.actions {
                    match a {
                        ActionPattern::Any | ActionPattern::Glob { service: None, .. } => {
                            if !placed_always {
                                set.always.push(idx);
                                placed_always = true;
                            }
                        }
                        ActionPattern::Exact(name) => {
                            push_unique(set.exact.entry(name.clone()).or_default(), idx)
                        }
                        ActionPattern::Glob {
                            service: Some(svc), ..
                        } => push_unique(set.by_service.entry(svc.clone()).or_default(), idx),
                    }
                }
            }
        }
        set
    }

    /// The policies in the set.
    pub fn policies(&self) -> &[Arc<CompiledPolicy>] {
        &self.policies
    }

    /// True when the set has no policy.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Candidate statements for a lower-cased action: the three index lists (a statement can
    /// appear in more than one; callers tolerate repeats).
    pub(crate) fn candidates<'s>(
        &'s self,
        action_lower: &str,
    ) -> impl Iterator<Item = (&'s CompiledPolicy, &'s CompiledStatement)> + 's {
        let service = action_lower
            .split_once(':')
            .map_or(action_lower, |(s, _)| s);
        let exact = self
            .exact
            .get(action_lower)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let by_service = self
            .by_service
            .get(service)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        exact
            .iter()
            .chain(by_service)
            .chain(&self.always)
            .filter_map(move |&(pi, si)| {
                let p = self.policies.get(pi as usize)?;
                Some((p.as_ref(), p.statements.get(si as usize)?))
            })
    }
}

fn push_unique(v: &mut Vec<StatementIdx>, idx: StatementIdx) {
    if v.last() != Some(&idx) {
        v.push(idx);
    }
}
