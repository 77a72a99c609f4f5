//! The IAM policy engine (pure: no I/O, no async).
//!
//! `parse` turns JSON into a validated [`PolicyDocument`] with findings; `compile` turns a
//! document into a [`CompiledPolicy`] (patterns compiled, condition values pre-parsed); a
//! [`PolicySet`] indexes compiled policies by action; [`evaluate`] runs AWS's evaluation flow over
//! every applicable policy type for one [`RequestContext`] and returns a [`Decision`].
//! The semantics and their sources are in `docs/policy.md`.

mod compile;
mod condition;
mod context;
mod eval;
mod glob;
mod model;
mod parse;
mod value;

pub use compile::{CompiledPolicy, CompiledStatement, PolicySet};
pub use context::{ContextValue, PrincipalInfo, PrincipalType, RequestContext};
pub use eval::{evaluate, matching_statements, Decision, Outcome, Policies, StatementRef};
pub use model::{
    BaseOperator, Condition, Effect, Matcher, Operator, PolicyDocument, PolicyType, PrincipalEntry,
    PrincipalSpec, SetQualifier, Statement, Version,
};
pub use parse::{parse_policy, parse_policy_value, Finding, Parsed, Severity, MAX_POLICY_BYTES};
pub use value::{parse_date, parse_ip as parse_ip_value, Cidr};

/// A case-sensitive wildcard pattern (`*`, `?`) without variables, e.g. a resource ARN pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard(glob::Pattern);

impl Wildcard {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Self {
        Self(glob::Pattern::compile(
            pattern,
            glob::PatternOptions {
                wildcards: true,
                variables: false,
                case_insensitive: false,
            },
        ))
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.0.matches(text, &()) == Some(true)
    }
}
