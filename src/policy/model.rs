//! The IAM policy language as data: what a parsed, validated policy document says.

/// The policy language version. Variables are substituted only under [`Version::V2012_10_17`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `2012-10-17`: the current language, with policy variables.
    V2012_10_17,
    /// `2008-10-17`: variables are literal text.
    V2008_10_17,
    /// No `Version`: treated as `2008-10-17`.
    Missing,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Denies, overriding any allow.
    Deny,
}

/// Where a policy is used; decides which elements are required or forbidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyType {
    /// Attached to a user, group or role (managed or inline).
    Identity,
    /// Attached to a resource (bucket policy, queue policy…); needs `Principal`.
    Resource,
    /// A role's trust policy (a resource policy for `sts:AssumeRole*`).
    Trust,
    /// A permissions boundary.
    Boundary,
    /// A session policy passed to STS.
    Session,
    /// An Organizations service control policy.
    Scp,
    /// An Organizations resource control policy.
    Rcp,
}

impl PolicyType {
    /// The name used in simulator output (`SourcePolicyType`-style).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Identity => "IAM Policy",
            PolicyType::Resource => "Resource Policy",
            PolicyType::Trust => "Trust Policy",
            PolicyType::Boundary => "Permissions Boundary Policy",
            PolicyType::Session => "Session Policy",
            PolicyType::Scp => "Service Control Policy",
            PolicyType::Rcp => "Resource Control Policy",
        }
    }

    /// Whether `Principal`/`NotPrincipal` is required (true), forbidden (false).
    pub fn takes_principal(self) -> bool {
        matches!(
            self,
            PolicyType::Resource | PolicyType::Trust | PolicyType::Rcp
        )
    }
}

/// A `Principal` or `NotPrincipal` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalSpec {
    /// `"*"`: everyone, anonymous included.
    Any,
    /// `{"AWS": [...], "Service": [...], ...}`: ORed entries.
    Entries(Vec<PrincipalEntry>),
}

/// One entry of a `Principal` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalEntry {
    /// `{"AWS": "..."}`: `*`, an account id, or an ARN.
    Aws(String),
    /// `{"Service": "svc.amazonaws.com"}`.
    Service(String),
    /// `{"Federated": "provider"}`.
    Federated(String),
    /// `{"CanonicalUser": "hex"}`.
    CanonicalUser(String),
}

/// A condition operator: base operator plus modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    /// The comparison.
    pub base: BaseOperator,
    /// `…IfExists`: a missing key makes the condition true.
    pub if_exists: bool,
    /// `ForAllValues:` / `ForAnyValue:`.
    pub set: SetQualifier,
}

/// `ForAllValues:` / `ForAnyValue:` or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// Single-valued comparison.
    None,
    /// Every request value must match.
    ForAllValues,
    /// At least one request value must match.
    ForAnyValue,
}

/// The comparison of a condition operator.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl BaseOperator {
    /// Parses an operator name without modifiers (case-sensitive, as IAM is).
    pub fn from_name(name: &str) -> Option<Self> {
        use BaseOperator::*;
        Some(match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "BinaryEquals" => BinaryEquals,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Negated operators: a missing key matches, and several policy values are ANDed.
    pub fn is_negated(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Whether policy variables are substituted in this operator's values.
    pub fn takes_variables(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringEquals
                | StringNotEquals
                | StringEqualsIgnoreCase
                | StringNotEqualsIgnoreCase
                | StringLike
                | StringNotLike
                | ArnEquals
                | ArnLike
                | ArnNotEquals
                | ArnNotLike
                | Bool
        )
    }
}

impl Operator {
    /// Parses `[ForAllValues:|ForAnyValue:]<Base>[IfExists]`.
    pub fn parse(name: &str) -> Option<Self> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, r)
        } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, r)
        } else {
            (SetQualifier::None, name)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(b) => (BaseOperator::from_name(b)?, true),
            None => (BaseOperator::from_name(rest)?, false),
        };
        if if_exists && base == BaseOperator::Null {
            return None;
        }
        Some(Self {
            base,
            if_exists,
            set,
        })
    }
}

/// One `operator: {key: values}` pair of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The operator.
    pub operator: Operator,
    /// The context key as written.
    pub key: String,
    /// The policy values (numbers and booleans as their JSON text).
    pub values: Vec<String>,
}

/// `Action`/`NotAction`, `Resource`/`NotResource` and the like: values plus negation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher<T> {
    /// `NotAction` / `NotResource` / `NotPrincipal`.
    pub negated: bool,
    /// The values (ORed).
    pub values: T,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `Sid`, if any.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal` / `NotPrincipal`.
    pub principal: Option<Matcher<PrincipalSpec>>,
    /// `Action` / `NotAction`.
    pub action: Matcher<Vec<String>>,
    /// `Resource` / `NotResource`; `None` in trust policies.
    pub resource: Option<Matcher<Vec<String>>>,
    /// Conditions (ANDed).
    pub conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    /// `Version`.
    pub version: Version,
    /// `Id`.
    pub id: Option<String>,
    /// `Statement` (always a list here).
    pub statements: Vec<Statement>,
}
