//! JSON → [`PolicyDocument`], with validation findings in the spirit of IAM Access Analyzer's
//! policy validation: every problem found, each with its JSON path.

use serde_json::Value;

use super::model::{
    Condition, Effect, Matcher, Operator, PolicyDocument, PolicyType, PrincipalEntry,
    PrincipalSpec, Statement, Version,
};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The policy is refused.
    Error,
    /// The policy is accepted but probably not what was meant.
    Warning,
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// JSON path, e.g. `$.Statement[0].Condition.StringEquals`.
    pub path: String,
    /// What is wrong, lower-case, user input in backticks.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}", self.path, self.message)
    }
}

/// The result of parsing a policy: the document when there is no error, and every finding.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The document, when no finding is an error.
    pub document: Option<PolicyDocument>,
    /// The document as far as it could be read, errors or not (statements with errors left
    /// out). For tools that evaluate what a stored policy would do (the simulator, tests), never
    /// for enforcing configuration.
    pub lenient: Option<PolicyDocument>,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
}

/// The largest policy text accepted at all (far above any IAM limit; protects the parser).
pub const MAX_POLICY_BYTES: usize = 128 * 1024;

struct Ctx {
    findings: Vec<Finding>,
}

impl Ctx {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        });
    }
}

fn size_limit(ty: PolicyType) -> (usize, bool) {
    // (limit, whitespace counts)
    match ty {
        PolicyType::Identity | PolicyType::Boundary => (6144, false),
        PolicyType::Trust | PolicyType::Session => (2048, false),
        PolicyType::Scp | PolicyType::Rcp => (5120, true),
        PolicyType::Resource => (20_480, true),
    }
}

/// Parses and validates a policy document of type `ty`.
pub fn parse_policy(text: &str, ty: PolicyType) -> Parsed {
    let mut cx = Ctx {
        findings: Vec::new(),
    };
    if text.len() > MAX_POLICY_BYTES {
        cx.error(
            "$",
            format!(
                "policy document is {} bytes; at most {MAX_POLICY_BYTES} are read",
                text.len()
            ),
        );
        return Parsed {
            document: None,
            lenient: None,
            findings: cx.findings,
        };
    }
    let (limit, whitespace_counts) = size_limit(ty);
    let size = if whitespace_counts {
        text.chars().count()
    } else {
        text.chars().filter(|c| !c.is_whitespace()).count()
    };
    if size > limit {
        let how = if whitespace_counts {
            ""
        } else {
            " (whitespace not counted)"
        };
        let msg = format!(
            "policy document has {size} characters{how}; the limit for this policy type is {limit}"
        );
        if ty == PolicyType::Trust || ty == PolicyType::Resource {
            cx.warn("$", msg);
        } else {
            cx.error("$", msg);
        }
    }
    if let Some(c) = text
        .chars()
        .find(|&c| !(c == '\t' || c == '\n' || c == '\r' || ('\u{20}'..='\u{ff}').contains(&c)))
    {
        cx.error("$", format!("policy contains the character U+{:04X}; only tab, newline, carriage return and U+0020–U+00FF are allowed", c as u32));
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            cx.error("$", format!("policy is not valid JSON: {e}"));
            return Parsed {
                document: None,
                lenient: None,
                findings: cx.findings,
            };
        }
    };
    let document = parse_value(&value, ty, &mut cx);
    finish(document, cx)
}

/// Parses and validates an already-decoded JSON value (no size check).
pub fn parse_policy_value(value: &Value, ty: PolicyType) -> Parsed {
    let mut cx = Ctx {
        findings: Vec::new(),
    };
    let document = parse_value(value, ty, &mut cx);
    finish(document, cx)
}

fn finish(document: Option<PolicyDocument>, cx: Ctx) -> Parsed {
    let mut findings = cx.findings;
    findings.sort_by_key(|f| f.severity);
    let ok = !findings.iter().any(|f| f.severity == Severity::Error);
    Parsed {
        document: if ok { document.clone() } else { None },
        lenient: document,
        findings,
    }
}

fn parse_value(value: &Value, ty: PolicyType, cx: &mut Ctx) -> Option<PolicyDocument> {
    let Some(obj) = value.as_object() else {
        cx.error("$", "policy document must be a JSON object");
        return None;
    };
    for key in obj.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            cx.error(
                format!("$.{key}"),
                format!("unknown element `{key}`; a policy has only Version, Id and Statement"),
            );
        }
    }
    let version = match obj.get("Version") {
        None => Version::Missing,
        Some(Value::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
        Some(Value::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
        Some(other) => {
            cx.error(
                "$.Version",
                format!(
                    "`{}` is not a policy language version; use \"2012-10-17\"",
                    short(other)
                ),
            );
            Version::Missing
        }
    };
    if version != Version::V2012_10_17 {
        match ty {
            PolicyType::Identity | PolicyType::Boundary | PolicyType::Session | PolicyType::Rcp => {
                cx.error("$.Version", "policy document must be version 2012-10-17 or greater")
            }
            _ => cx.warn("$.Version", "without Version 2012-10-17 policy variables such as ${aws:username} are literal text"),
        }
    }
    let id = match obj.get("Id") {
        None => None,
        Some(Value::String(s)) => {
            if matches!(
                ty,
                PolicyType::Identity | PolicyType::Boundary | PolicyType::Session
            ) {
                cx.warn("$.Id", "Id is only used in resource-based policies");
            }
            Some(s.clone())
        }
        Some(other) => {
            cx.error(
                "$.Id",
                format!("Id must be a string, not `{}`", short(other)),
            );
            None
        }
    };
    let statements: Vec<(String, &Value)> = match obj.get("Statement") {
        None => {
            cx.error("$", "policy has no Statement");
            return None;
        }
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("$.Statement[{i}]"), s))
            .collect(),
        Some(s @ Value::Object(_)) => vec![("$.Statement".to_owned(), s)],
        Some(other) => {
            cx.error(
                "$.Statement",
                format!(
                    "Statement must be an object or an array, not `{}`",
                    short(other)
                ),
            );
            return None;
        }
    };
    if statements.is_empty() {
        cx.warn(
            "$.Statement",
            "policy has no statements: it allows and denies nothing",
        );
    }
    let mut out = Vec::with_capacity(statements.len());
    let mut sids: Vec<(String, String)> = Vec::new();
    for (path, s) in statements {
        if let Some(sid) = s.get("Sid").and_then(Value::as_str) {
            if let Some((_, first)) = sids.iter().find(|(x, _)| x == sid) {
                cx.error(
                    format!("{path}.Sid"),
                    format!("duplicate Sid `{sid}` (first at {first})"),
                );
            } else {
                sids.push((sid.to_owned(), path.clone()));
            }
        }
        if let Some(st) = parse_statement(s, &path, ty, cx) {
            out.push(st);
        }
    }
    Some(PolicyDocument {
        version,
        id,
        statements: out,
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn string_list(v: &Value, path: &str, what: &str, cx: &mut Ctx) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, item) in a.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => cx.error(
                        format!("{path}[{i}]"),
                        format!("{what} values must be strings, not `{}`", short(other)),
                    ),
                }
            }
            if out.is_empty() {
                cx.error(path, format!("{what} must not be empty"));
                return None;
            }
            Some(out)
        }
        other => {
            cx.error(
                path,
                format!(
                    "{what} must be a string or an array of strings, not `{}`",
                    short(other)
                ),
            );
            None
        }
    }
}

fn parse_statement(v: &Value, path: &str, ty: PolicyType, cx: &mut Ctx) -> Option<Statement> {
    let Some(obj) = v.as_object() else {
        cx.error(
            path,
            format!("a statement must be an object, not `{}`", short(v)),
        );
        return None;
    };
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            cx.error(
                format!("{path}.{key}"),
                format!("unknown element `{key}` in a statement"),
            );
        }
    }
    let errors_before = cx
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => {
            if matches!(
                ty,
                PolicyType::Identity | PolicyType::Boundary | PolicyType::Session
            ) && !s.chars().all(|c| c.is_ascii_alphanumeric())
            {
                cx.error(
                    format!("{path}.Sid"),
                    format!("Sid `{s}` may contain only letters and digits in IAM policies"),
                );
            }
            Some(s.clone())
        }
        Some(other) => {
            cx.error(
                format!("{path}.Sid"),
                format!("Sid must be a string, not `{}`", short(other)),
            );
            None
        }
    };
    let effect = match obj.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            cx.error(
                format!("{path}.Effect"),
                format!(
                    "Effect must be \"Allow\" or \"Deny\", not `{}`",
                    short(other)
                ),
            );
            Effect::Deny
        }
        None => {
            cx.error(path, "statement has no Effect");
            Effect::Deny
        }
    };

    // Principal / NotPrincipal
    let principal = match (obj.get("Principal"), obj.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            cx.error(
                path,
                "a statement has either Principal or NotPrincipal, not both",
            );
            None
        }
        (Some(p), None) => {
            parse_principal(p, &format!("{path}.Principal"), cx).map(|values| Matcher {
                negated: false,
                values,
            })
        }
        (None, Some(p)) => {
            if effect == Effect::Allow {
                cx.error(
                    format!("{path}.NotPrincipal"),
                    "NotPrincipal is supported only with \"Effect\": \"Deny\"",
                );
            }
            parse_principal(p, &format!("{path}.NotPrincipal"), cx).map(|values| Matcher {
                negated: true,
                values,
            })
        }
        (None, None) => None,
    };
    if ty.takes_principal() {
        if obj.get("Principal").is_none() && obj.get("NotPrincipal").is_none() {
            cx.error(
                path,
                "a resource-based policy statement must name a Principal",
            );
        }
    } else if obj.get("Principal").is_some() || obj.get("NotPrincipal").is_some() {
        cx.error(format!("{path}.Principal"), "Principal is not allowed in identity-based, boundary, session or service control policies");
    }

    // Action / NotAction
    let action = match (obj.get("Action"), obj.get("NotAction")) {
        (Some(_), Some(_)) => {
            cx.error(path, "a statement has either Action or NotAction, not both");
            None
        }
        (Some(a), None) => {
            string_list(a, &format!("{path}.Action"), "Action", cx).map(|values| Matcher {
                negated: false,
                values,
            })
        }
        (None, Some(a)) => {
            string_list(a, &format!("{path}.NotAction"), "NotAction", cx).map(|values| Matcher {
                negated: true,
                values,
            })
        }
        (None, None) => {
            cx.error(path, "statement has no Action or NotAction");
            None
        }
    };
    if let Some(a) = &action {
        let field = if a.negated { "NotAction" } else { "Action" };
        for (i, act) in a.values.iter().enumerate() {
            check_action(act, &format!("{path}.{field}[{i}]"), cx);
        }
        // `"Action": "*"` is only for the AWS-managed RCPFullAWSAccess (an Allow).
        if ty == PolicyType::Rcp
            && (a.negated || (effect == Effect::Deny && a.values.iter().any(|x| x == "*")))
        {
            cx.error(
                format!("{path}.{field}"),
                "resource control policies need an Action other than \"*\" and no NotAction",
            );
        }
    }

    // Resource / NotResource
    let resource =
        match (obj.get("Resource"), obj.get("NotResource")) {
            (Some(_), Some(_)) => {
                cx.error(
                    path,
                    "a statement has either Resource or NotResource, not both",
                );
                None
            }
            (Some(r), None) => {
                string_list(r, &format!("{path}.Resource"), "Resource", cx).map(|values| Matcher {
                    negated: false,
                    values,
                })
            }
            (None, Some(r)) => string_list(r, &format!("{path}.NotResource"), "NotResource", cx)
                .map(|values| Matcher {
                    negated: true,
                    values,
                }),
            (None, None) => {
                if ty != PolicyType::Trust {
                    cx.error(path, "statement has no Resource or NotResource");
                }
                None
            }
        };
    if let Some(r) = &resource {
        let field = if r.negated { "NotResource" } else { "Resource" };
        for (i, res) in r.values.iter().enumerate() {
            // Fewer than six segments only when a trailing `*` expands across the colons.
            let segments = res.split(':').count();
            if res != "*"
                && (!res.starts_with("arn:")
                    || segments < 3
                    || (segments < 6 && !res.ends_with('*')))
            {
                cx.error(format!("{path}.{field}[{i}]"), format!("resource `{res}` must be \"*\" or an ARN (arn:partition:service:region:account:resource)"));
            } else if res != "*"
                && res
                    .split(':')
                    .nth(2)
                    .is_some_and(|s| s.contains(['*', '?']))
            {
                cx.error(
                    format!("{path}.{field}[{i}]"),
                    format!("resource `{res}` has a wildcard in its service segment"),
                );
            }
        }
        if effect == Effect::Allow
            && r.negated
            && action
                .as_ref()
                .is_some_and(|a| !a.negated && a.values.iter().any(|x| x == "*"))
        {
            cx.warn(format!("{path}.NotResource"), "Allow with \"Action\": \"*\" and NotResource grants every action on every other resource");
        }
    }
    if ty == PolicyType::Rcp {
        if effect == Effect::Allow {
            cx.warn(format!("{path}.Effect"), "only the AWS-managed RCPFullAWSAccess allows; custom resource control policies deny");
        }
        if principal
            .as_ref()
            .is_some_and(|p| p.negated || p.values != PrincipalSpec::Any)
        {
            cx.error(
                format!("{path}.Principal"),
                "resource control policies need \"Principal\": \"*\"",
            );
        }
    }

    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(c) => parse_conditions(c, &format!("{path}.Condition"), cx),
    };
    let errors_after = cx
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors_after > errors_before {
        return None;
    }
    Some(Statement {
        sid,
        effect,
        principal,
        action: action?,
        resource,
        conditions,
    })
}

fn check_action(act: &str, path: &str, cx: &mut Ctx) {
    if act == "*" {
        return;
    }
    let Some((service, name)) = act.split_once(':') else {
        cx.error(
            path,
            format!("action `{act}` must be \"*\" or service:action"),
        );
        return;
    };
    if service.is_empty()
        || !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        if service.contains(['*', '?']) {
            cx.error(
                path,
                format!("action `{act}` has a wildcard in its service prefix"),
            );
        } else {
            cx.error(
                path,
                format!("action `{act}` has an invalid service prefix `{service}`"),
            );
        }
    }
    if name.is_empty() || name.contains(':') {
        cx.error(path, format!("action `{act}` must be service:action"));
    }
}

fn parse_principal(v: &Value, path: &str, cx: &mut Ctx) -> Option<PrincipalSpec> {
    match v {
        Value::String(s) if s == "*" => Some(PrincipalSpec::Any),
        Value::Object(map) => {
            let mut entries = Vec::new();
            for (kind, values) in map {
                let list = string_list(values, &format!("{path}.{kind}"), kind, cx)?;
                for (i, value) in list.into_iter().enumerate() {
                    let entry = match kind.as_str() {
                        "AWS" => {
                            if value != "*" && value.contains(['*', '?']) {
                                cx.error(format!("{path}.AWS[{i}]"), format!("principal `{value}` has a wildcard; only \"*\" alone is allowed"));
                            } else if value != "*" && !is_principal_id(&value) {
                                cx.error(format!("{path}.AWS[{i}]"), format!("principal `{value}` must be \"*\", an account id or an ARN"));
                            }
                            PrincipalEntry::Aws(value)
                        }
                        "Service" => PrincipalEntry::Service(value),
                        "Federated" => PrincipalEntry::Federated(value),
                        "CanonicalUser" => PrincipalEntry::CanonicalUser(value),
                        other => {
                            cx.error(format!("{path}.{other}"), format!("unknown principal type `{other}`; use AWS, Service, Federated or CanonicalUser"));
                            continue;
                        }
                    };
                    entries.push(entry);
                }
            }
            if entries.is_empty() {
                cx.error(path, "principal must name at least one principal");
                return None;
            }
            if entries
                .iter()
                .any(|e| *e == PrincipalEntry::Aws("*".into()))
                && entries.len() == 1
            {
                return Some(PrincipalSpec::Any);
            }
            Some(PrincipalSpec::Entries(entries))
        }
        other => {
            cx.error(
                path,
                format!(
                    "principal must be \"*\" or an object, not `{}`",
                    short(other)
                ),
            );
            None
        }
    }
}

/// An account id, an ARN or a unique id (`AIDA…`/`AROA…`), as IAM stores principals.
fn is_principal_id(v: &str) -> bool {
    let account = v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit());
    account || v.starts_with("arn:") || v.starts_with("AIDA") || v.starts_with("AROA")
}

fn parse_conditions(v: &Value, path: &str, cx: &mut Ctx) -> Vec<Condition> {
    let Some(block) = v.as_object() else {
        cx.error(
            path,
            format!("Condition must be an object, not `{}`", short(v)),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (op_name, keys) in block {
        let op_path = format!("{path}.{op_name}");
        let Some(operator) = Operator::parse(op_name) else {
            cx.error(&op_path, format!("unknown condition operator `{op_name}`"));
            continue;
        };
        let Some(keys) = keys.as_object() else {
            cx.error(
                &op_path,
                format!(
                    "condition operator `{op_name}` must map keys to values, not `{}`",
                    short(keys)
                ),
            );
            continue;
        };
        for (key, values) in keys {
            let key_path = format!("{op_path}.{key}");
            if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
                cx.error(&key_path, format!("condition key `{key}` is not valid"));
                continue;
            }
            let values = match values {
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .filter_map(|(i, x)| scalar(x, &format!("{key_path}[{i}]"), cx))
                    .collect::<Vec<_>>(),
                other => scalar(other, &key_path, cx).into_iter().collect(),
            };
            if values.is_empty() {
                cx.error(&key_path, "a condition needs at least one value");
                continue;
            }
            check_condition_values(operator, key, &values, &key_path, cx);
            out.push(Condition {
                operator,
                key: key.clone(),
                values,
            });
        }
    }
    out
}

fn scalar(v: &Value, path: &str, cx: &mut Ctx) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => {
            cx.error(
                path,
                format!(
                    "condition values must be strings, numbers or booleans, not `{}`",
                    short(other)
                ),
            );
            None
        }
    }
}

fn check_condition_values(op: Operator, key: &str, values: &[String], path: &str, cx: &mut Ctx) {
    use super::model::BaseOperator::*;
    use super::value;
    for v in values {
        let has_var = v.contains("${");
        let ok = match op.base {
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => value::parse_number(v).is_some(),
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => value::parse_date(v).is_some(),
            Bool | Null => {
                has_var || v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
            }
            BinaryEquals => value::decode_base64(v).is_some(),
            IpAddress | NotIpAddress => value::Cidr::parse(v).is_some(),
            _ => true,
        };
        if !ok {
            cx.error(
                path,
                format!("`{v}` is not a valid value for {:?}", op.base),
            );
        }
    }
    let multi = matches!(
        key.to_ascii_lowercase().as_str(),
        "aws:tagkeys"
            | "aws:calledvia"
            | "aws:principalorgpaths"
            | "aws:resourceorgpaths"
            | "aws:principalservicenameslist"
            | "aws:sourceorgpaths"
    );
    if multi && op.set == super::model::SetQualifier::None && op.base != Null {
        cx.warn(
            path,
            format!("`{key}` is multivalued: use ForAllValues: or ForAnyValue:"),
        );
    }
    if !multi
        && op.set != super::model::SetQualifier::None
        && key.to_ascii_lowercase().starts_with("aws:")
        && !key.to_ascii_lowercase().starts_with("aws:requesttag")
    {
        cx.warn(
            path,
            format!("`{key}` is single-valued: a set operator on it can be overly permissive"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(text: &str, ty: PolicyType) -> Vec<String> {
        parse_policy(text, ty)
            .findings
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn valid_identity_policy() {
        let p = parse_policy(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:Get*"],"Resource":"*","Condition":{"StringEquals":{"aws:username":"bob"}}}}"#,
            PolicyType::Identity,
        );
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        let d = p.document.unwrap();
        assert_eq!(d.statements.len(), 1);
        assert_eq!(d.statements[0].conditions[0].values, vec!["bob"]);
    }

    #[test]
    fn reports_every_problem_with_a_path() {
        let f = findings(
            r#"{"Version":"2012-10-18","Bogus":1,"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s*:Get","Resource":"bucket","Condition":{"StringEqualz":{"k":"v"}}},{"Sid":"a","Effect":"allow","Action":"s3:x","Resource":"*"}]}"#,
            PolicyType::Identity,
        );
        let all = f.join("\n");
        for needle in [
            "$.Version: `\"2012-10-18\"` is not a policy language version",
            "$.Bogus: unknown element `Bogus`",
            "$.Statement[0].Principal: Principal is not allowed",
            "$.Statement[0].Action[0]: action `s*:Get` has a wildcard in its service prefix",
            "$.Statement[0].Resource[0]: resource `bucket` must be",
            "$.Statement[0].Condition.StringEqualz: unknown condition operator `StringEqualz`",
            "$.Statement[1].Effect: Effect must be",
        ] {
            assert!(all.contains(needle), "missing {needle} in\n{all}");
        }
    }

    #[test]
    fn resource_policy_needs_principal_and_duplicate_sids() {
        let all = findings(r#"{"Version":"2012-10-17","Statement":[{"Sid":"x","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},{"Sid":"x","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#, PolicyType::Resource).join("\n");
        assert!(all.contains("must name a Principal"), "{all}");
        assert!(all.contains("duplicate Sid `x`"), "{all}");
    }

    #[test]
    fn malformed_inputs_never_panic() {
        for text in [
            "",
            "[]",
            "null",
            "{",
            "{\"Statement\":5}",
            &"[".repeat(100_000),
            &format!("{{\"Statement\":\"{}\"}}", "x".repeat(2_000_000)),
        ] {
            let p = parse_policy(text, PolicyType::Identity);
            assert!(p.document.is_none());
            assert!(!p.findings.is_empty());
        }
    }

    #[test]
    fn size_limits_by_type() {
        let big = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, vec![r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket-name-long/*"}"#; 100].join(","));
        assert!(findings(&big, PolicyType::Identity)
            .iter()
            .any(|f| f.contains("the limit for this policy type is 6144")));
        assert!(findings(&big, PolicyType::Scp)
            .iter()
            .any(|f| f.contains("5120")));
    }
}
