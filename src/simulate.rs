//! `tollgate simulate`: the IAM policy simulator.
//!
//! Two modes, both printing the response shape of AWS's `SimulateCustomPolicy` /
//! `SimulatePrincipalPolicy` (`EvaluationResults`):
//!
//! - `--cli-input-json` reads the input of `aws iam simulate-custom-policy --cli-input-json`
//!   (identity policies, permissions boundaries, a resource policy, context entries), plus
//!   extensions for service control policies, resource control policies and session policies;
//! - `--config FILE --principal ARN` evaluates a configured user or role with the identity
//!   policies the proxy would use, like `simulate-principal-policy`, and explains the decision.
//!
//! The user reference is `docs/simulate.md`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{self, Role, Snapshot, User};
use crate::policy::{
    evaluate, matching_statements, parse_date, parse_policy, parse_policy_value, Cidr,
    CompiledPolicy, Decision, Effect, Outcome, Policies, PolicyDocument, PolicySet, PolicyType,
    PrincipalInfo, PrincipalType, RequestContext, Severity, StatementRef,
};

/// Arguments of `tollgate simulate`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(group(
    clap::ArgGroup::new("mode")
        .required(true)
        .args(["cli_input_json", "config"])
))]
pub struct SimulateArgs {
    /// `aws iam simulate-custom-policy` input: `file://case.json`, a path, `-` for stdin, or the
    /// JSON text itself. Prints AWS's response JSON.
    #[arg(long, value_name = "JSON", conflicts_with = "config")]
    pub cli_input_json: Option<String>,
    /// Configuration file (TOML) holding the principal to simulate, like
    /// `aws iam simulate-principal-policy`.
    #[arg(long, short, value_name = "FILE", requires = "principal")]
    pub config: Option<PathBuf>,
    /// The user or role to simulate: its ARN, or a role session ARN
    /// (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    #[arg(long, value_name = "ARN", requires = "config")]
    pub principal: Option<String>,
    /// The action to evaluate, `service:Action` (repeatable).
    #[arg(long = "action", value_name = "ACTION", requires = "config")]
    pub actions: Vec<String>,
    /// The resource ARN to evaluate (repeatable; default `*`).
    #[arg(long = "resource", value_name = "ARN", requires = "config")]
    pub resources: Vec<String>,
    /// A single-valued context key, `KEY=VALUE` (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE", requires = "config")]
    pub context: Vec<String>,
    /// A multivalued context key, `KEY=V1,V2`; `KEY=` is present but empty (repeatable).
    #[arg(long = "context-list", value_name = "KEY=V1,V2", requires = "config")]
    pub context_list: Vec<String>,
    /// With `--config`: print the `EvaluationResults` JSON instead of the explanation.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tollgate simulate`; prints the result (stdout) or the problem (stderr) and returns the
/// exit code: 0 when the simulation ran (whatever the decisions), 1 on bad input.
pub fn run(args: &SimulateArgs) -> i32 {
    let outcome = match (&args.cli_input_json, &args.config) {
        (Some(source), _) => read_input(source).and_then(|text| {
            let (response, warnings) = simulate_custom_policy_with_warnings(&text)?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            to_aws_json(&response)
        }),
        (None, Some(_)) => run_principal(args),
        (None, None) => Err("give --cli-input-json, or --config with --principal".to_owned()),
    };
    match outcome {
        Ok(out) => {
            println!("{out}");
            0
        }
        Err(message) => {
            eprintln!("{message}");
            1
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Response shape (AWS's SimulatePolicyResponse).

/// The response of a simulation, as `SimulateCustomPolicy` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SimulationResponse {
    /// One result per action and resource.
    pub evaluation_results: Vec<EvaluationResult>,
    /// Whether `MaxItems` cut the list short.
    pub is_truncated: bool,
    /// When truncated: the `Marker` that continues the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
}

/// The result for one action on one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EvaluationResult {
    /// The action.
    pub eval_action_name: String,
    /// The resource ARN, or `*`.
    pub eval_resource_name: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub eval_decision: String,
    /// The statements behind the decision: the matching `Deny` statements for an explicit deny,
    /// otherwise the matching `Allow` statements.
    pub matched_statements: Vec<MatchedStatement>,
    /// Condition keys of applicable statements that the request context does not supply (only
    /// when the resource is `*`; otherwise in `ResourceSpecificResults`, as AWS does).
    pub missing_context_values: Vec<String>,
    /// Present when organization policies (SCPs, RCPs) take part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizations_decision_detail: Option<OrganizationsDecisionDetail>,
    /// Present when a permissions boundary takes part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_boundary_decision_detail: Option<PermissionsBoundaryDecisionDetail>,
    /// Per policy type decisions: filled for cross-account simulations, empty for a same-account
    /// resource ARN, absent for `*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_decision_details: Option<BTreeMap<String, String>>,
    /// For a resource ARN: the result for that resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_specific_results: Option<Vec<ResourceSpecificResult>>,
}

/// A statement that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MatchedStatement {
    /// `PolicyInputList.1`, `ResourcePolicy`, … (custom mode) or the policy name (principal mode).
    pub source_policy_id: String,
    /// `IAM Policy`, `Resource Policy`, `Permissions Boundary Policy`, … (custom mode) or
    /// `user`, `group`, `role`, `user-managed` (principal mode).
    pub source_policy_type: String,
    /// Where the statement starts in the policy text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_position: Option<Position>,
    /// Where the statement ends in the policy text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_position: Option<Position>,
}

/// A line and column in a policy document (both 1-based; see [`statement_positions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
}

/// Whether the organization's policies allow the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrganizationsDecisionDetail {
    /// False when an SCP or RCP denies, or a level does not allow.
    pub allowed_by_organizations: bool,
}

/// Whether the permissions boundary allows the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PermissionsBoundaryDecisionDetail {
    /// False when the boundary denies or does not allow.
    pub allowed_by_permissions_boundary: bool,
}

/// The result for one resource (AWS's `ResourceSpecificResult`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceSpecificResult {
    /// The resource ARN.
    pub eval_resource_name: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub eval_resource_decision: String,
    /// As in [`EvaluationResult::matched_statements`].
    pub matched_statements: Vec<MatchedStatement>,
    /// Condition keys of applicable statements that the context does not supply.
    pub missing_context_values: Vec<String>,
    /// As in [`EvaluationResult::eval_decision_details`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_decision_details: Option<BTreeMap<String, String>>,
    /// As in [`EvaluationResult::permissions_boundary_decision_detail`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_boundary_decision_detail: Option<PermissionsBoundaryDecisionDetail>,
}

/// Serializes a response as the AWS CLI prints it (four-space indentation).
pub fn to_aws_json(response: &SimulationResponse) -> Result<String, String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    response
        .serialize(&mut ser)
        .map_err(|e| format!("cannot serialize the response: {e}"))?;
    String::from_utf8(out).map_err(|e| format!("cannot serialize the response: {e}"))
}

// ------------------------------------------------------------------------------------------------
// Statement positions.

/// The span of every statement of a policy, in document order, as `(start, end)` positions:
/// `Statement` as an object gives one span, as an array one per element.
///
/// Lines are 1-based; a column is the 1-based column of the statement's `{` (start) or `}` (end)
/// plus one, which reproduces the positions AWS returns (the AWS CLI reference's
/// `simulate-custom-policy` example reports 1:38–1:167 for a statement spanning columns 37–166).
/// Returns an empty list when the text is not a JSON object with a `Statement`.
pub fn statement_positions(text: &str) -> Vec<(Position, Position)> {
    statement_spans(text)
        .unwrap_or_default()
        .into_iter()
        .map(|(start, end)| (position(text, start + 1), position(text, end)))
        .collect()
}

/// Line and column of the character at byte `offset`.
fn position(text: &str, offset: usize) -> Position {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Position { line, column }
}

/// Byte spans (`{` .. one past `}`) of the statements of a policy document.
fn statement_spans(text: &str) -> Option<Vec<(usize, usize)>> {
    let mut s = Scan {
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    s.expect(b'{')?;
    let mut statement = None;
    loop {
        s.ws();
        if s.peek()? == b'}' {
            break;
        }
        let (k0, k1) = s.string()?;
        let key: String = serde_json::from_slice(s.b.get(k0..k1)?).ok()?;
        s.ws();
        s.expect(b':')?;
        let value = s.value()?;
        if key == "Statement" {
            // serde_json keeps the last of duplicate keys; so do we.
            statement = Some(value);
        }
        s.ws();
        match s.peek()? {
            b',' => s.i += 1,
            b'}' => break,
            _ => return None,
        }
    }
    let (start, end) = statement?;
    match s.b.get(start)? {
        b'{' => Some(vec![(start, end)]),
        b'[' => {
            let mut spans = Vec::new();
            s.i = start + 1;
            loop {
                s.ws();
                if s.peek()? == b']' {
                    break;
                }
                spans.push(s.value()?);
                s.ws();
                match s.peek()? {
                    b',' => s.i += 1,
                    b']' => break,
                    _ => return None,
                }
            }
            Some(spans)
        }
        _ => None,
    }
}

/// A minimal JSON scanner: enough to find value spans in text serde_json has already accepted.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string starting at the cursor: its span, quotes included.
    fn string(&mut self) -> Option<(usize, usize)> {
        let start = self.i;
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some((start, self.i));
                }
                _ => self.i += 1,
            }
        }
    }

    /// Any value after optional whitespace: its span.
    fn value(&mut self) -> Option<(usize, usize)> {
        self.ws();
        let start = self.i;
        match self.peek()? {
            b'"' => self.string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                self.i += 1;
                                return Some((start, self.i));
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                (self.i > start).then_some((start, self.i))
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Input (simulate-custom-policy --cli-input-json).

/// Fields of `aws iam simulate-custom-policy --generate-cli-skeleton`.
const AWS_FIELDS: &[&str] = &[
    "PolicyInputList",
    "PermissionsBoundaryPolicyInputList",
    "ActionNames",
    "ResourceArns",
    "ResourcePolicy",
    "ResourceOwner",
    "CallerArn",
    "ContextEntries",
    "ResourceHandlingOption",
    "MaxItems",
    "Marker",
];

/// Tollgate's extensions (see `docs/simulate.md`).
const EXTENSION_FIELDS: &[&str] = &[
    "ServiceControlPolicyInputList",
    "ResourceControlPolicyInputList",
    "SessionPolicyInputList",
    "ManagementAccount",
    "CallerTags",
];

/// The default account of the simulated caller, as AWS's simulator uses.
const DEFAULT_ACCOUNT: &str = "123456789012";

/// One policy document to load.
struct Source {
    /// `PolicyInputList.1`, `ResourcePolicy`, …
    id: String,
    ty: PolicyType,
    text: String,
}

/// A context value from the input.
#[derive(Debug, Clone)]
enum CtxValue {
    Single(String),
    Multi(Vec<String>),
}

/// Everything a custom simulation needs, validated.
struct CustomInput {
    identity: Vec<Source>,
    boundary: Vec<Source>,
    session: Vec<Source>,
    resource: Option<Source>,
    scps: Vec<Vec<Source>>,
    rcps: Vec<Vec<Source>>,
    actions: Vec<String>,
    resources: Vec<String>,
    resource_owner: Option<String>,
    caller_arn: Option<String>,
    caller_tags: Vec<(String, String)>,
    context: Vec<(String, CtxValue)>,
    management_account: bool,
    max_items: Option<usize>,
    marker: usize,
}

/// Reads `--cli-input-json`: `file://path`, `fileb://path`, `-` (stdin), inline JSON, or a path.
fn read_input(source: &str) -> Result<String, String> {
    let trimmed = source.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Ok(source.to_owned());
    }
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("--cli-input-json: cannot read standard input: {e}"))?;
        return Ok(text);
    }
    let path = source
        .strip_prefix("file://")
        .or_else(|| source.strip_prefix("fileb://"))
        .unwrap_or(source);
    std::fs::read_to_string(path)
        .map_err(|e| format!("--cli-input-json: cannot read `{path}`: {e}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn invalid(field: &str, what: impl std::fmt::Display) -> String {
    format!("invalid input: {field}: {what}")
}

/// A string field; `""` (the skeleton's placeholder) and `null` count as absent.
fn opt_string(obj: &serde_json::Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            field,
            format!("expected a string, got {}", kind(other)),
        )),
    }
}

/// An array of strings; `""` elements (placeholders) are dropped. `None` when absent.
fn opt_strings(
    obj: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<Vec<String>>, String> {
    let items = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(invalid(
                field,
                format!("expected an array of strings, got {}", kind(other)),
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => out.push(s.clone()),
            other => {
                return Err(invalid(
                    &format!("{field}[{i}]"),
                    format!("expected a string, got {}", kind(other)),
                ))
            }
        }
    }
    Ok(Some(out))
}

/// A policy given as JSON text (as AWS requires) or, as an extension, as a JSON object.
fn policy_source(
    v: &Value,
    field: &str,
    id: String,
    ty: PolicyType,
) -> Result<Option<Source>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(Source {
            id,
            ty,
            text: s.clone(),
        })),
        Value::Object(_) => {
            let text = serde_json::to_string_pretty(v).map_err(|e| invalid(field, e))?;
            Ok(Some(Source { id, ty, text }))
        }
        other => Err(invalid(
            field,
            format!(
                "expected a policy document as a JSON string, got {}",
                kind(other)
            ),
        )),
    }
}

/// A list of policies: `Field.1`, `Field.2`, … (positions count placeholders, as AWS does).
fn policy_list(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    ty: PolicyType,
) -> Result<Vec<Source>, String> {
    let items = match obj.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(invalid(
                field,
                format!(
                    "expected an array of policy documents (JSON strings), got {}",
                    kind(other)
                ),
            ))
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{field}[{i}]");
        if let Some(s) = policy_source(item, &path, format!("{field}.{}", i + 1), ty)? {
            out.push(s);
        }
    }
    Ok(out)
}

/// Organization policy levels, root → OUs → account: `Field.<level>.<n>`. Levels left without a
/// policy (placeholders only) are dropped: AWS requires at least one policy at every level.
fn policy_levels(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    ty: PolicyType,
) -> Result<Vec<Vec<Source>>, String> {
    let levels = match obj.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(invalid(
                field,
                format!(
                    "expected an array of levels (root first), each an array of policy documents, got {}",
                    kind(other)
                ),
            ))
        }
    };
    let mut out = Vec::new();
    for (l, level) in levels.iter().enumerate() {
        let Value::Array(items) = level else {
            return Err(invalid(
                &format!("{field}[{l}]"),
                format!(
                    "expected an array of policy documents (one organization level), got {}",
                    kind(level)
                ),
            ));
        };
        let mut sources = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{field}[{l}][{i}]");
            let id = format!("{field}.{}.{}", l + 1, i + 1);
            if let Some(s) = policy_source(item, &path, id, ty)? {
                sources.push(s);
            }
        }
        if !sources.is_empty() {
            out.push(sources);
        }
    }
    Ok(out)
}

/// `ContextEntries`: entries with an empty `ContextKeyName` (placeholders) are skipped.
fn context_entries(
    obj: &serde_json::Map<String, Value>,
) -> Result<Vec<(String, CtxValue)>, String> {
    const FIELD: &str = "ContextEntries";
    let items = match obj.get(FIELD) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(invalid(
                FIELD,
                format!("expected an array of context entries, got {}", kind(other)),
            ))
        }
    };
    let mut out: Vec<(String, CtxValue)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{FIELD}[{i}]");
        let Value::Object(entry) = item else {
            return Err(invalid(
                &path,
                format!(
                    "expected an object with ContextKeyName, ContextKeyValues and ContextKeyType, got {}",
                    kind(item)
                ),
            ));
        };
        if let Some(k) = entry.keys().find(|k| {
            !matches!(
                k.as_str(),
                "ContextKeyName" | "ContextKeyValues" | "ContextKeyType"
            )
        }) {
            return Err(invalid(
                &format!("{path}.{k}"),
                "unknown field; a context entry has ContextKeyName, ContextKeyValues and ContextKeyType",
            ));
        }
        let name = match entry.get("ContextKeyName") {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.is_empty() => continue,
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(invalid(
                    &format!("{path}.ContextKeyName"),
                    format!("expected a string, got {}", kind(other)),
                ))
            }
        };
        let values: Vec<String> = match entry.get("ContextKeyValues") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let mut vs = Vec::with_capacity(a.len());
                for (j, v) in a.iter().enumerate() {
                    match v {
                        Value::String(s) => vs.push(s.clone()),
                        Value::Number(n) => vs.push(n.to_string()),
                        Value::Bool(b) => vs.push(b.to_string()),
                        other => {
                            return Err(invalid(
                                &format!("{path}.ContextKeyValues[{j}]"),
                                format!("expected a string, got {}", kind(other)),
                            ))
                        }
                    }
                }
                vs
            }
            Some(other) => {
                return Err(invalid(
                    &format!("{path}.ContextKeyValues"),
                    format!("expected an array of strings, got {}", kind(other)),
                ))
            }
        };
        let ty = match entry.get("ContextKeyType") {
            None | Some(Value::Null) => {
                if values.len() == 1 {
                    "string"
                } else {
                    "stringList"
                }
            }
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                return Err(invalid(
                    &format!("{path}.ContextKeyType"),
                    format!("expected a string, got {}", kind(other)),
                ))
            }
        };
        let value = typed_context_value(&path, &name, ty, values)?;
        if let Some(slot) = out.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&name)) {
            slot.1 = value;
        } else {
            out.push((name, value));
        }
    }
    Ok(out)
}

/// Checks values against a `ContextKeyType` (`string`, `stringList`, `numeric`, …).
fn typed_context_value(
    path: &str,
    name: &str,
    ty: &str,
    values: Vec<String>,
) -> Result<CtxValue, String> {
    let (base, list) = match ty.strip_suffix("List") {
        Some(b) => (b, true),
        None => (ty, false),
    };
    let check: fn(&str) -> bool = match base {
        "string" => |_| true,
        "numeric" => |v| {
            let v = v.trim();
            !v.is_empty() && v.parse::<f64>().is_ok_and(f64::is_finite)
        },
        "boolean" => |v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        "ip" => |v| {
            let v = v.trim();
            let v = v
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(v);
            v.parse::<IpAddr>().is_ok() || Cidr::parse(v).is_some()
        },
        "binary" => |v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .is_ok()
        },
        "date" => |v| parse_date(v).is_some(),
        _ => {
            return Err(invalid(
                &format!("{path}.ContextKeyType"),
                format!(
                    "`{ty}` is not a context key type (string, stringList, numeric, numericList, boolean, booleanList, ip, ipList, binary, binaryList, date, dateList)"
                ),
            ))
        }
    };
    for (j, v) in values.iter().enumerate() {
        if !check(v) {
            return Err(invalid(
                &format!("{path}.ContextKeyValues[{j}]"),
                format!("`{v}` is not a valid {base} value for `{name}`"),
            ));
        }
    }
    if list {
        return Ok(CtxValue::Multi(values));
    }
    let mut values = values.into_iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Ok(CtxValue::Single(v)),
        (None, _) => Err(invalid(
            &format!("{path}.ContextKeyValues"),
            format!("a `{ty}` key needs exactly one value (none given for `{name}`)"),
        )),
        (Some(_), Some(_)) => Err(invalid(
            &format!("{path}.ContextKeyValues"),
            format!("a `{ty}` key takes one value; use `{ty}List` for several (`{name}`)"),
        )),
    }
}

fn parse_custom_input(text: &str) -> Result<CustomInput, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("invalid input: not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err(format!(
            "invalid input: expected a JSON object (the simulate-custom-policy input), got {}",
            kind(&value)
        ));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !AWS_FIELDS.contains(&k.as_str()) && !EXTENSION_FIELDS.contains(&k.as_str()))
    {
        return Err(invalid(
            unknown,
            format!(
                "unknown field; valid fields are {} and the extensions {}",
                AWS_FIELDS.join(", "),
                EXTENSION_FIELDS.join(", ")
            ),
        ));
    }
    if !obj.contains_key("PolicyInputList") {
        return Err(invalid(
            "PolicyInputList",
            "required: an array of identity-based policy documents (JSON strings)",
        ));
    }
    let Some(actions) = opt_strings(&obj, "ActionNames")? else {
        return Err(invalid(
            "ActionNames",
            "required: an array of actions such as \"s3:GetObject\"",
        ));
    };
    for (i, a) in actions.iter().enumerate() {
        check_action(a).map_err(|e| invalid(&format!("ActionNames[{i}]"), e))?;
    }
    let mut resources = opt_strings(&obj, "ResourceArns")?.unwrap_or_default();
    for (i, r) in resources.iter().enumerate() {
        check_resource(r).map_err(|e| invalid(&format!("ResourceArns[{i}]"), e))?;
    }
    if resources.is_empty() {
        resources.push("*".to_owned());
    }
    let resource_owner = opt_string(&obj, "ResourceOwner")?
        .map(|o| account_of(&o).ok_or_else(|| invalid("ResourceOwner", format!("`{o}` is neither an account id nor an ARN naming one (arn:aws:iam::123456789012:root)"))))
        .transpose()?;
    let caller_arn = opt_string(&obj, "CallerArn")?;
    let _ = opt_string(&obj, "ResourceHandlingOption")?;
    let max_items = match obj.get("MaxItems") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => None,
            Some(m) => Some(usize::try_from(m).unwrap_or(usize::MAX)),
            None => {
                return Err(invalid(
                    "MaxItems",
                    format!("`{n}` is not a positive whole number"),
                ))
            }
        },
        Some(other) => {
            return Err(invalid(
                "MaxItems",
                format!("expected a number, got {}", kind(other)),
            ))
        }
    };
    let marker = match opt_string(&obj, "Marker")? {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| {
            invalid(
                "Marker",
                format!("`{m}` is not a Marker from a previous response"),
            )
        })?,
    };
    let management_account = match obj.get("ManagementAccount") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(
                "ManagementAccount",
                format!("expected true or false, got {}", kind(other)),
            ))
        }
    };
    let caller_tags = match obj.get("CallerTags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => {
            let mut tags = Vec::with_capacity(m.len());
            for (k, v) in m {
                match v {
                    Value::String(s) => tags.push((k.clone(), s.clone())),
                    other => {
                        return Err(invalid(
                            &format!("CallerTags.{k}"),
                            format!("expected a string, got {}", kind(other)),
                        ))
                    }
                }
            }
            tags
        }
        Some(Value::Array(a)) => {
            let mut tags = Vec::with_capacity(a.len());
            for (i, t) in a.iter().enumerate() {
                let key = t.get("Key").and_then(Value::as_str);
                let value = t.get("Value").and_then(Value::as_str);
                match (key, value) {
                    (Some(k), Some(v)) => tags.push((k.to_owned(), v.to_owned())),
                    _ => {
                        return Err(invalid(
                            &format!("CallerTags[{i}]"),
                            "expected {\"Key\": \"...\", \"Value\": \"...\"}",
                        ))
                    }
                }
            }
            tags
        }
        Some(other) => {
            return Err(invalid(
                "CallerTags",
                format!(
                    "expected an object of tag values or an array of {{Key, Value}}, got {}",
                    kind(other)
                ),
            ))
        }
    };
    let resource = match obj.get("ResourcePolicy") {
        None => None,
        Some(v) => policy_source(
            v,
            "ResourcePolicy",
            "ResourcePolicy".to_owned(),
            PolicyType::Resource,
        )?,
    };
    Ok(CustomInput {
        identity: policy_list(&obj, "PolicyInputList", PolicyType::Identity)?,
        boundary: policy_list(
            &obj,
            "PermissionsBoundaryPolicyInputList",
            PolicyType::Boundary,
        )?,
        session: policy_list(&obj, "SessionPolicyInputList", PolicyType::Session)?,
        resource,
        scps: policy_levels(&obj, "ServiceControlPolicyInputList", PolicyType::Scp)?,
        rcps: policy_levels(&obj, "ResourceControlPolicyInputList", PolicyType::Rcp)?,
        actions,
        resources,
        resource_owner,
        caller_arn,
        caller_tags,
        context: context_entries(&obj)?,
        management_account,
        max_items,
        marker,
    })
}

fn check_action(a: &str) -> Result<(), String> {
    match a.split_once(':') {
        Some((svc, name))
            if !svc.is_empty() && !name.is_empty() && !a.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{a}` is not an action (service:Action, e.g. s3:GetObject)"
        )),
    }
}

fn check_resource(r: &str) -> Result<(), String> {
    if r == "*" || (r.starts_with("arn:") && r.split(':').count() >= 6) {
        Ok(())
    } else {
        Err(format!(
            "`{r}` is not an ARN (arn:partition:service:region:account:resource) or `*`"
        ))
    }
}

/// The account of a 12-digit id or of an ARN naming one.
fn account_of(s: &str) -> Option<String> {
    let is_account = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
    if is_account(s) {
        return Some(s.to_owned());
    }
    let account = s.strip_prefix("arn:")?.split(':').nth(3)?;
    is_account(account).then(|| account.to_owned())
}

/// `prefix` + 17 characters derived from the ARN: a stable stand-in for a unique id.
fn derived_id(prefix: &str, arn: &str) -> String {
    let digest = hex::encode_upper(Sha256::digest(arn.as_bytes()));
    let tail: String = digest.chars().take(17).collect();
    format!("{prefix}{tail}")
}

/// The simulated caller: an IAM user, the account root, a role (simulated as a session named
/// `simulated`), a role session, or a federated user.
fn caller_principal(arn: &str, tags: Vec<(String, String)>) -> Result<PrincipalInfo, String> {
    let bad = |why: &str| {
        invalid(
            "CallerArn",
            format!("`{arn}` {why}; use an IAM user ARN (arn:aws:iam::123456789012:user/name), a role or role-session ARN, a federated-user ARN, or arn:aws:iam::123456789012:root"),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, _region, account, resource] = parts.as_slice() else {
        return Err(bad("is not an ARN"));
    };
    if *prefix != "arn" || partition.is_empty() {
        return Err(bad("is not an ARN"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("does not name a 12-digit account"));
    }
    let last = resource.rsplit('/').next().unwrap_or("");
    let base = PrincipalInfo {
        kind: PrincipalType::User,
        arn: arn.to_owned(),
        account: (*account).to_owned(),
        role_arn: None,
        user_id: String::new(),
        user_name: None,
        tags,
        service: None,
        has_boundary: false,
    };
    match (*service, *resource) {
        ("iam", "root") => Ok(PrincipalInfo {
            kind: PrincipalType::Account,
            user_id: (*account).to_owned(),
            ..base
        }),
        ("iam", r) if r.starts_with("user/") && !last.is_empty() => Ok(PrincipalInfo {
            kind: PrincipalType::User,
            user_id: derived_id("AIDA", arn),
            user_name: Some(last.to_owned()),
            ..base
        }),
        ("iam", r) if r.starts_with("role/") && !last.is_empty() => {
            let session = "simulated";
            Ok(PrincipalInfo {
                kind: PrincipalType::AssumedRole,
                arn: format!("arn:{partition}:sts::{account}:assumed-role/{last}/{session}"),
                role_arn: Some(arn.to_owned()),
                user_id: format!("{}:{session}", derived_id("AROA", arn)),
                ..base
            })
        }
        ("sts", r) if r.starts_with("assumed-role/") => {
            let mut it = r.splitn(3, '/').skip(1);
            let (Some(role), Some(session)) = (it.next(), it.next()) else {
                return Err(bad(
                    "is not a role session ARN (assumed-role/<role>/<session>)",
                ));
            };
            if role.is_empty() || session.is_empty() {
                return Err(bad(
                    "is not a role session ARN (assumed-role/<role>/<session>)",
                ));
            }
            let role_arn = format!("arn:{partition}:iam::{account}:role/{role}");
            Ok(PrincipalInfo {
                kind: PrincipalType::AssumedRole,
                user_id: format!("{}:{session}", derived_id("AROA", &role_arn)),
                role_arn: Some(role_arn),
                ..base
            })
        }
        ("sts", r) if r.starts_with("federated-user/") && !last.is_empty() => Ok(PrincipalInfo {
            kind: PrincipalType::FederatedUser,
            user_id: format!("{account}:{last}"),
            ..base
        }),
        _ => Err(bad("is not a principal the simulator supports")),
    }
}

// ------------------------------------------------------------------------------------------------
// Loaded policies and the simulation itself.

/// A policy as the simulator reports it.
struct Loaded {
    /// `SourcePolicyId`.
    source_id: String,
    /// `SourcePolicyType`.
    source_type: String,
    /// Start/end of each statement, by index.
    positions: Vec<(Position, Position)>,
    /// Condition keys of each statement, as written.
    keys: Vec<Vec<String>>,
}

impl Loaded {
    fn new(
        source_id: String,
        source_type: String,
        compiled: &CompiledPolicy,
        doc: Option<&PolicyDocument>,
        text: Option<&str>,
    ) -> Self {
        let keys = match doc {
            Some(d) if d.statements.len() == compiled.statements.len() => d
                .statements
                .iter()
                .map(|s| s.conditions.iter().map(|c| c.key.clone()).collect())
                .collect(),
            _ => compiled
                .statements
                .iter()
                .map(|s| s.condition_keys().map(str::to_owned).collect())
                .collect(),
        };
        let positions = text.map(statement_positions).unwrap_or_default();
        let positions = if positions.len() == compiled.statements.len() {
            positions
        } else {
            Vec::new()
        };
        Self {
            source_id,
            source_type,
            positions,
            keys,
        }
    }
}

/// The policy sets of one simulation, by type.
#[derive(Default)]
struct Sets {
    identity: Option<PolicySet>,
    boundary: Option<PolicySet>,
    session: Option<PolicySet>,
    resource: Option<PolicySet>,
    scps: Vec<PolicySet>,
    rcps: Vec<PolicySet>,
}

impl Sets {
    fn policies(&self, principal_mgmt: bool, resource_mgmt: bool) -> Policies<'_> {
        Policies {
            identity: self.identity.as_ref(),
            boundary: self.boundary.as_ref(),
            session: self.session.as_ref(),
            resource: self.resource.as_ref(),
            scps: &self.scps,
            rcps: &self.rcps,
            principal_in_management_account: principal_mgmt,
            resource_in_management_account: resource_mgmt,
        }
    }

    /// Every set with its type, in report order.
    fn slots(&self) -> Vec<(PolicyType, &PolicySet)> {
        let mut out = Vec::new();
        out.extend(self.identity.iter().map(|s| (PolicyType::Identity, s)));
        out.extend(self.boundary.iter().map(|s| (PolicyType::Boundary, s)));
        out.extend(self.session.iter().map(|s| (PolicyType::Session, s)));
        out.extend(self.resource.iter().map(|s| (PolicyType::Resource, s)));
        out.extend(self.scps.iter().map(|s| (PolicyType::Scp, s)));
        out.extend(self.rcps.iter().map(|s| (PolicyType::Rcp, s)));
        out
    }

    /// The same sets with every condition removed: which statements would apply on action,
    /// resource and principal alone (for `MissingContextValues`).
    fn without_conditions(&self) -> Sets {
        let strip = |set: &PolicySet| {
            PolicySet::new(
                set.policies()
                    .iter()
                    .map(|p| {
                        let mut p = CompiledPolicy::clone(p);
                        for s in &mut p.statements {
                            s.conditions.clear();
                        }
                        Arc::new(p)
                    })
                    .collect(),
            )
        };
        Sets {
            identity: self.identity.as_ref().map(strip),
            boundary: self.boundary.as_ref().map(strip),
            session: self.session.as_ref().map(strip),
            resource: self.resource.as_ref().map(strip),
            scps: self.scps.iter().map(strip).collect(),
            rcps: self.rcps.iter().map(strip).collect(),
        }
    }
}

/// A ready-to-run simulation.
struct Simulation {
    sets: Sets,
    stripped: Sets,
    loaded: HashMap<String, Loaded>,
    principal: PrincipalInfo,
    resource_account: String,
    principal_mgmt: bool,
    resource_mgmt: bool,
    context: Vec<(String, CtxValue)>,
}

/// One evaluated action/resource pair, with what the explanation needs.
struct Evaluated {
    result: EvaluationResult,
    decision: Decision,
    /// The statements behind `MatchedStatements`.
    matched: Vec<StatementRef>,
    /// Missing context keys, wherever the result reports them.
    missing: Vec<String>,
}

impl Simulation {
    fn new(
        sets: Sets,
        loaded: HashMap<String, Loaded>,
        principal: PrincipalInfo,
        resource_account: String,
        management_account: bool,
        context: Vec<(String, CtxValue)>,
    ) -> Self {
        let resource_mgmt = management_account && resource_account == principal.account;
        Self {
            stripped: sets.without_conditions(),
            sets,
            loaded,
            principal,
            resource_account,
            principal_mgmt: management_account,
            resource_mgmt,
            context,
        }
    }

    fn context<'a>(&'a self, action: &'a str, resource: &'a str) -> RequestContext<'a> {
        let mut ctx = RequestContext::new(&self.principal, action, resource)
            .with_resource_account(self.resource_account.as_str());
        for (k, v) in &self.context {
            match v {
                CtxValue::Single(s) => ctx.set(k.as_str(), s.as_str()),
                CtxValue::Multi(vs) => {
                    ctx.set_multi(k.as_str(), vs.iter().map(|s| s.as_str().into()).collect())
                }
            }
        }
        ctx
    }

    /// Whether policies of type `ty` take part in this request at all. That is the engine's
    /// business (SCPs skip the management account and service-linked roles, RCPs cover some
    /// services, session policies only sessions…), so we ask it: a policy of that type denying
    /// this very action turns the decision into an explicit deny exactly when the type counts.
    fn takes_part(&self, ty: PolicyType, ctx: &RequestContext<'_>) -> bool {
        let principal = if ty.takes_principal() {
            r#""Principal":"*","#
        } else {
            ""
        };
        let action = serde_json::to_string(ctx.action.as_ref()).unwrap_or_default();
        let text = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny",{principal}"Action":{action},"Resource":"*"}}]}}"#
        );
        let Ok(policy) = CompiledPolicy::from_json("probe", ty, &text) else {
            return true;
        };
        let deny = PolicySet::new(vec![Arc::new(policy)]);
        let mut p = Policies {
            principal_in_management_account: self.principal_mgmt,
            resource_in_management_account: self.resource_mgmt,
            ..Policies::default()
        };
        match ty {
            PolicyType::Identity => p.identity = Some(&deny),
            PolicyType::Boundary => p.boundary = Some(&deny),
            PolicyType::Session => p.session = Some(&deny),
            PolicyType::Resource => p.resource = Some(&deny),
            PolicyType::Scp => p.scps = std::slice::from_ref(&deny),
            PolicyType::Rcp => p.rcps = std::slice::from_ref(&deny),
            PolicyType::Trust => return false,
        }
        evaluate(&p, ctx).outcome == Outcome::ExplicitDeny
    }

    fn matched(&self, r: &StatementRef) -> MatchedStatement {
        let loaded = self.loaded.get(r.policy.as_ref());
        let pos = loaded.and_then(|l| l.positions.get(r.index));
        MatchedStatement {
            source_policy_id: loaded.map_or_else(|| r.policy.to_string(), |l| l.source_id.clone()),
            source_policy_type: loaded.map_or_else(
                || r.policy_type.as_str().to_owned(),
                |l| l.source_type.clone(),
            ),
            start_position: pos.map(|p| p.0),
            end_position: pos.map(|p| p.1),
        }
    }

    fn evaluate_one(&self, action: &str, resource: &str) -> Evaluated {
        let ctx = self.context(action, resource);
        let decision = evaluate(
            &self.sets.policies(self.principal_mgmt, self.resource_mgmt),
            &ctx,
        );
        let taking_part: Vec<PolicyType> = [
            PolicyType::Identity,
            PolicyType::Boundary,
            PolicyType::Session,
            PolicyType::Resource,
            PolicyType::Scp,
            PolicyType::Rcp,
        ]
        .into_iter()
        .filter(|ty| self.takes_part(*ty, &ctx))
        .collect();

        let want = if decision.outcome == Outcome::ExplicitDeny {
            Effect::Deny
        } else {
            Effect::Allow
        };
        let mut matched_refs: Vec<StatementRef> = Vec::new();
        for (ty, set) in self.sets.slots() {
            if !taking_part.contains(&ty) {
                continue;
            }
            for (r, effect) in matching_statements(set, &ctx) {
                if effect == want && !matched_refs.contains(&r) {
                    matched_refs.push(r);
                }
            }
        }
        let matched: Vec<MatchedStatement> = matched_refs.iter().map(|r| self.matched(r)).collect();

        let mut missing: Vec<String> = Vec::new();
        for (ty, set) in self.stripped.slots() {
            if !taking_part.contains(&ty) {
                continue;
            }
            for (r, _) in matching_statements(set, &ctx) {
                let keys = self
                    .loaded
                    .get(r.policy.as_ref())
                    .and_then(|l| l.keys.get(r.index));
                for key in keys.into_iter().flatten() {
                    if ctx.get(&key.to_ascii_lowercase()).is_none()
                        && !missing.iter().any(|m| m.eq_ignore_ascii_case(key))
                    {
                        missing.push(key.clone());
                    }
                }
            }
        }

        // A policy type that does not take part (SCPs in the management account, a boundary…)
        // does not limit.
        let passes = |ty: PolicyType, sets: &[&PolicySet]| {
            !taking_part.contains(&ty) || verdict(sets, &ctx) == Outcome::Allowed
        };
        let organizations = (!self.sets.scps.is_empty() || !self.sets.rcps.is_empty()).then(|| {
            let scps: Vec<&PolicySet> = self.sets.scps.iter().collect();
            let rcps: Vec<&PolicySet> = self.sets.rcps.iter().collect();
            OrganizationsDecisionDetail {
                allowed_by_organizations: (scps.is_empty() || passes(PolicyType::Scp, &scps))
                    && (rcps.is_empty() || passes(PolicyType::Rcp, &rcps)),
            }
        });
        let boundary = self
            .sets
            .boundary
            .as_ref()
            .map(|b| PermissionsBoundaryDecisionDetail {
                allowed_by_permissions_boundary: passes(PolicyType::Boundary, &[b]),
            });
        let cross_account = self.resource_account != self.principal.account;
        let details = if cross_account {
            Some(self.decision_details(&ctx, &taking_part))
        } else if resource != "*" {
            Some(BTreeMap::new())
        } else {
            None
        };
        let decision_str = decision.outcome.as_str().to_owned();
        let (top_missing, specific) = if resource == "*" {
            (missing.clone(), None)
        } else {
            (
                Vec::new(),
                Some(vec![ResourceSpecificResult {
                    eval_resource_name: resource.to_owned(),
                    eval_resource_decision: decision_str.clone(),
                    matched_statements: matched.clone(),
                    missing_context_values: missing.clone(),
                    eval_decision_details: details.clone(),
                    permissions_boundary_decision_detail: boundary,
                }]),
            )
        };
        Evaluated {
            result: EvaluationResult {
                eval_action_name: action.to_owned(),
                eval_resource_name: resource.to_owned(),
                eval_decision: decision_str,
                matched_statements: matched,
                missing_context_values: top_missing,
                organizations_decision_detail: organizations,
                permissions_boundary_decision_detail: boundary,
                eval_decision_details: details,
                resource_specific_results: specific,
            },
            decision,
            matched: matched_refs,
            missing,
        }
    }

    /// Each policy type's own verdict (for cross-account `EvalDecisionDetails`).
    fn decision_details(
        &self,
        ctx: &RequestContext<'_>,
        taking_part: &[PolicyType],
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |ty: PolicyType, sets: Vec<&PolicySet>, always: bool| {
            if (always || !sets.is_empty()) && taking_part.contains(&ty) {
                out.insert(
                    ty.as_str().to_owned(),
                    verdict(&sets, ctx).as_str().to_owned(),
                );
            }
        };
        put(
            PolicyType::Identity,
            self.sets.identity.iter().collect(),
            true,
        );
        put(
            PolicyType::Resource,
            self.sets.resource.iter().collect(),
            true,
        );
        put(
            PolicyType::Boundary,
            self.sets.boundary.iter().collect(),
            false,
        );
        put(
            PolicyType::Session,
            self.sets.session.iter().collect(),
            false,
        );
        put(PolicyType::Scp, self.sets.scps.iter().collect(), false);
        put(PolicyType::Rcp, self.sets.rcps.iter().collect(), false);
        out
    }

    fn run(&self, actions: &[String], resources: &[String]) -> Vec<Evaluated> {
        let mut out = Vec::with_capacity(actions.len() * resources.len());
        for action in actions {
            for resource in resources {
                out.push(self.evaluate_one(action, resource));
            }
        }
        out
    }
}

/// One policy type's own verdict: `ExplicitDeny` when a `Deny` statement applies in any set,
/// `Allowed` when every set (each organization level) has an applying `Allow`, `ImplicitDeny`
/// otherwise (no set at all included).
fn verdict(sets: &[&PolicySet], ctx: &RequestContext<'_>) -> Outcome {
    let mut every_allows = !sets.is_empty();
    for set in sets {
        let m = matching_statements(set, ctx);
        if m.iter().any(|(_, e)| *e == Effect::Deny) {
            return Outcome::ExplicitDeny;
        }
        every_allows &= m.iter().any(|(_, e)| *e == Effect::Allow);
    }
    if every_allows {
        Outcome::Allowed
    } else {
        Outcome::ImplicitDeny
    }
}

/// Loads policies, collecting `MalformedPolicyDocument` findings and warnings.
struct Loader {
    loaded: HashMap<String, Loaded>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Loader {
    fn set(&mut self, sources: &[Source]) -> Option<PolicySet> {
        if sources.is_empty() {
            return None;
        }
        let mut compiled = Vec::with_capacity(sources.len());
        for src in sources {
            let parsed = parse_policy(&src.text, src.ty);
            for f in &parsed.findings {
                let line = format!("{}: {f}", src.id);
                if f.severity == Severity::Error {
                    self.errors.push(line);
                } else {
                    self.warnings.push(line);
                }
            }
            let Some(doc) = parsed.document else {
                continue;
            };
            let policy = CompiledPolicy::compile(src.id.as_str(), src.ty, &doc);
            self.loaded.insert(
                src.id.clone(),
                Loaded::new(
                    src.id.clone(),
                    src.ty.as_str().to_owned(),
                    &policy,
                    Some(&doc),
                    Some(&src.text),
                ),
            );
            compiled.push(Arc::new(policy));
        }
        Some(PolicySet::new(compiled))
    }
}

/// Runs a `simulate-custom-policy` input (the JSON text of `--cli-input-json`). `Err` carries
/// the message for the user: `invalid input: <field>: …` or `MalformedPolicyDocument: …`.
pub fn simulate_custom_policy(input: &str) -> Result<SimulationResponse, String> {
    simulate_custom_policy_with_warnings(input).map(|(r, _)| r)
}

/// As [`simulate_custom_policy`], also returning policy validation warnings.
pub fn simulate_custom_policy_with_warnings(
    input: &str,
) -> Result<(SimulationResponse, Vec<String>), String> {
    let input = parse_custom_input(input)?;
    let owner = input.resource_owner.clone();
    let caller_arn = input.caller_arn.clone().unwrap_or_else(|| {
        format!(
            "arn:aws:iam::{}:user/simulated",
            owner.as_deref().unwrap_or(DEFAULT_ACCOUNT)
        )
    });
    let principal = caller_principal(&caller_arn, input.caller_tags.clone())?;
    let resource_account = owner.unwrap_or_else(|| principal.account.clone());

    let mut loader = Loader {
        loaded: HashMap::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let mut sets = Sets {
        identity: loader.set(&input.identity),
        boundary: loader.set(&input.boundary),
        session: loader.set(&input.session),
        resource: input
            .resource
            .as_ref()
            .and_then(|r| loader.set(std::slice::from_ref(r))),
        ..Sets::default()
    };
    sets.scps = input.scps.iter().filter_map(|l| loader.set(l)).collect();
    sets.rcps = input.rcps.iter().filter_map(|l| loader.set(l)).collect();
    if !loader.errors.is_empty() {
        return Err(format!(
            "MalformedPolicyDocument: {} policy error(s):\n{}",
            loader.errors.len(),
            loader.errors.join("\n")
        ));
    }
    let mut warnings = loader.warnings;
    if !input.session.is_empty()
        && !matches!(
            principal.kind,
            PrincipalType::AssumedRole | PrincipalType::FederatedUser
        )
    {
        warnings.push(format!(
            "SessionPolicyInputList: session policies apply only to role and federated-user sessions; the caller `{caller_arn}` is not one, so they are ignored"
        ));
    }

    let sim = Simulation::new(
        sets,
        loader.loaded,
        principal,
        resource_account,
        input.management_account,
        input.context,
    );
    let all = sim.run(&input.actions, &input.resources);
    let total = all.len();
    let start = input.marker.min(total);
    let end = input
        .max_items
        .map_or(total, |m| start.saturating_add(m).min(total));
    let evaluation_results: Vec<EvaluationResult> = all
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|e| e.result)
        .collect();
    let is_truncated = end < total;
    Ok((
        SimulationResponse {
            evaluation_results,
            is_truncated,
            marker: is_truncated.then(|| end.to_string()),
        },
        warnings,
    ))
}

// ------------------------------------------------------------------------------------------------
// Principal mode (--config / --principal).

/// A configured principal.
enum Who<'a> {
    User(&'a User),
    Role(&'a Role, String),
}

fn find_principal<'a>(snapshot: &'a Snapshot, arn: &str) -> Option<Who<'a>> {
    if let Some(u) = snapshot.user(arn) {
        return Some(Who::User(u));
    }
    if let Some(r) = snapshot.role(arn) {
        return Some(Who::Role(r, "simulated".to_owned()));
    }
    // arn:aws:sts::<account>:assumed-role/<role>/<session>
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let ["arn", _, "sts", _, account, resource] = parts.as_slice() {
        let mut it = resource.splitn(3, '/');
        if let (Some("assumed-role"), Some(name), Some(session)) = (it.next(), it.next(), it.next())
        {
            return snapshot
                .roles
                .iter()
                .find(|r| r.account == *account && r.name == name)
                .filter(|_| !session.is_empty())
                .map(|r| Who::Role(r, session.to_owned()));
        }
    }
    None
}

fn principal_info(who: &Who<'_>) -> PrincipalInfo {
    match who {
        Who::User(u) => {
            let mut p = PrincipalInfo::user(&u.arn, &u.unique_id);
            p.account = u.account.clone();
            p.user_name = Some(u.name.clone());
            p.tags = u.tags.clone();
            p
        }
        Who::Role(r, session) => {
            let partition = r.arn.split(':').nth(1).unwrap_or("aws");
            PrincipalInfo {
                kind: PrincipalType::AssumedRole,
                arn: format!(
                    "arn:{partition}:sts::{}:assumed-role/{}/{session}",
                    r.account, r.name
                ),
                account: r.account.clone(),
                role_arn: Some(r.arn.clone()),
                user_id: format!("{}:{session}", r.unique_id),
                user_name: None,
                tags: r.tags.clone(),
                service: None,
                has_boundary: false,
            }
        }
    }
}

/// What AWS's `simulate-principal-policy` would call a policy of this principal: its name, its
/// `SourcePolicyType` (`user-managed`, `user`, `group`, `role`), and its document.
fn describe_policy<'a>(
    snapshot: &'a Snapshot,
    who: &Who<'a>,
    id: &str,
) -> Option<(String, &'static str, &'a Value)> {
    if let Some(p) = snapshot.policy(id) {
        return Some((p.name.clone(), "user-managed", &p.document));
    }
    let inline = |owner: &str, list: &'a [config::InlinePolicy], ty: &'static str| {
        list.iter()
            .find(|p| {
                id.strip_prefix(owner).and_then(|r| r.strip_prefix('/')) == Some(p.name.as_str())
            })
            .map(|p| (p.name.clone(), ty, &p.document))
    };
    match who {
        Who::User(u) => inline(&u.arn, &u.inline_policies, "user").or_else(|| {
            u.groups
                .iter()
                .filter_map(|g| snapshot.group(g))
                .find_map(|g| inline(&g.arn, &g.inline_policies, "group"))
        }),
        Who::Role(r, _) => inline(&r.arn, &r.inline_policies, "role"),
    }
}

fn parse_context_args(args: &SimulateArgs) -> Result<Vec<(String, CtxValue)>, String> {
    let mut out: Vec<(String, CtxValue)> = Vec::new();
    let mut put = |k: &str, v: CtxValue| {
        if let Some(slot) = out.iter_mut().find(|(x, _)| x.eq_ignore_ascii_case(k)) {
            slot.1 = v;
        } else {
            out.push((k.to_owned(), v));
        }
    };
    for c in &args.context {
        match c.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => put(k.trim(), CtxValue::Single(v.to_owned())),
            _ => {
                return Err(format!(
                    "--context `{c}`: expected KEY=VALUE, e.g. aws:SourceIp=203.0.113.5"
                ))
            }
        }
    }
    for c in &args.context_list {
        match c.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                let values = if v.is_empty() {
                    Vec::new()
                } else {
                    v.split(',').map(str::to_owned).collect()
                };
                put(k.trim(), CtxValue::Multi(values));
            }
            _ => {
                return Err(format!(
                    "--context-list `{c}`: expected KEY=V1,V2, e.g. aws:TagKeys=team,env"
                ))
            }
        }
    }
    Ok(out)
}

fn run_principal(args: &SimulateArgs) -> Result<String, String> {
    let (Some(path), Some(arn)) = (&args.config, &args.principal) else {
        return Err("--config needs --principal ARN".to_owned());
    };
    if args.actions.is_empty() {
        return Err("--action is required (e.g. --action s3:GetObject; repeatable)".to_owned());
    }
    for a in &args.actions {
        check_action(a).map_err(|e| format!("--action: {e}"))?;
    }
    let mut resources = args.resources.clone();
    for r in &resources {
        check_resource(r).map_err(|e| format!("--resource: {e}"))?;
    }
    if resources.is_empty() {
        resources.push("*".to_owned());
    }
    let context = parse_context_args(args)?;
    let snapshot = config::load_file(path, 1).map_err(|e| e.to_string())?;
    let who = find_principal(&snapshot, arn).ok_or_else(|| {
        let mut known: Vec<&str> = snapshot.users.iter().map(|u| u.arn.as_str()).collect();
        known.extend(snapshot.roles.iter().map(|r| r.arn.as_str()));
        format!(
            "--principal: no user or role `{arn}` in {}; known principals: {}",
            path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    })?;
    let principal = principal_info(&who);
    let principal_arn = principal.principal_arn().to_owned();
    let identity = snapshot
        .identity_policies(&principal_arn)
        .map(|s| PolicySet::clone(s));
    let mut loaded = HashMap::new();
    for p in identity.iter().flat_map(PolicySet::policies) {
        if loaded.contains_key(p.id.as_ref()) {
            continue;
        }
        let described = describe_policy(&snapshot, &who, &p.id);
        let (source_id, source_type, doc) = match described {
            Some((name, ty, doc)) => (name, ty.to_owned(), Some(doc)),
            None => (
                p.id.to_string(),
                PolicyType::Identity.as_str().to_owned(),
                None,
            ),
        };
        let parsed = doc.and_then(|d| parse_policy_value(d, PolicyType::Identity).document);
        let text = doc.and_then(|d| serde_json::to_string_pretty(d).ok());
        loaded.insert(
            p.id.to_string(),
            Loaded::new(source_id, source_type, p, parsed.as_ref(), text.as_deref()),
        );
    }
    // The resources belong to the principal's account.
    let account = principal.account.clone();
    let sim = Simulation::new(
        Sets {
            identity,
            ..Sets::default()
        },
        loaded,
        principal,
        account,
        false,
        context,
    );
    let evaluated = sim.run(&args.actions, &resources);
    if args.json {
        return to_aws_json(&SimulationResponse {
            evaluation_results: evaluated.into_iter().map(|e| e.result).collect(),
            is_truncated: false,
            marker: None,
        });
    }
    Ok(explain(&sim.principal, &evaluated))
}

fn kind_label(k: PrincipalType) -> &'static str {
    match k {
        PrincipalType::User => "IAM user",
        PrincipalType::AssumedRole => "role session",
        PrincipalType::FederatedUser => "federated user",
        PrincipalType::Account => "account root user",
        PrincipalType::Anonymous => "anonymous",
        PrincipalType::Service => "service",
        PrincipalType::WebIdentityUser => "web identity user",
    }
}

/// A statement as the explanation names it: policy id (ARN, or `<owner ARN>/<name>` for inline
/// policies), JSON path and Sid.
fn statement_label(r: &StatementRef) -> String {
    let policy = &r.policy;
    match &r.sid {
        Some(sid) => format!("{policy}, $.Statement[{}] (Sid \"{sid}\")", r.index),
        None => format!("{policy}, $.Statement[{}]", r.index),
    }
}

fn why_implicit(by: Option<PolicyType>) -> &'static str {
    match by {
        Some(PolicyType::Boundary) => "the permissions boundary does not allow it",
        Some(PolicyType::Session) => {
            "no session policy allows it (a federated user has only what its session policies grant)"
        }
        Some(PolicyType::Scp) => "a service control policy level does not allow it",
        Some(PolicyType::Rcp) => "a resource control policy level does not allow it",
        Some(PolicyType::Resource) => "cross-account: the resource-based policy does not allow it",
        _ => "no identity-based policy allows it",
    }
}

/// The readable explanation of principal mode.
fn explain(principal: &PrincipalInfo, evaluated: &[Evaluated]) -> String {
    let mut out = Vec::new();
    out.push(format!(
        "principal: {} ({}{})",
        principal.arn,
        kind_label(principal.kind),
        principal
            .role_arn
            .as_deref()
            .map(|r| format!(" of {r}"))
            .unwrap_or_default()
    ));
    for e in evaluated {
        let r = &e.result;
        out.push(String::new());
        out.push(format!(
            "{} on {}",
            r.eval_action_name, r.eval_resource_name
        ));
        out.push(format!("  decision: {}", r.eval_decision));
        match e.decision.outcome {
            Outcome::Allowed => {
                if let Some(s) = &e.decision.statement {
                    out.push(format!("  allowed by: {}", statement_label(s)));
                }
            }
            Outcome::ExplicitDeny => {
                if let Some(s) = &e.decision.statement {
                    out.push(format!("  denied by: {}", statement_label(s)));
                }
            }
            Outcome::ImplicitDeny => {
                let stage = e.decision.denied_by.unwrap_or(PolicyType::Identity);
                out.push(format!(
                    "  denied by: {} (implicit deny at the {} stage)",
                    why_implicit(e.decision.denied_by),
                    stage.as_str()
                ));
            }
        }
        let others: Vec<String> = e
            .matched
            .iter()
            .filter(|m| Some(*m) != e.decision.statement.as_ref())
            .map(statement_label)
            .collect();
        if !others.is_empty() {
            let what = match e.decision.outcome {
                Outcome::Allowed => "also allowed by",
                Outcome::ExplicitDeny => "also denied by",
                Outcome::ImplicitDeny => "allowed (but not enough) by",
            };
            for o in others {
                out.push(format!("  {what}: {o}"));
            }
        }
        if e.missing.is_empty() {
            out.push("  missing context keys: none".to_owned());
        } else {
            out.push(format!(
                "  missing context keys: {} (supply them with --context KEY=VALUE)",
                e.missing.join(", ")
            ));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_match_the_aws_cli_example() {
        let policy = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}"#;
        assert_eq!(
            statement_positions(policy),
            vec![(
                Position {
                    line: 1,
                    column: 38
                },
                Position {
                    line: 1,
                    column: 167
                }
            )]
        );
    }

    #[test]
    fn positions_of_an_array_across_lines() {
        let policy = "{\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Sid\": \"a}[\\\"\"},\n    {\n      \"Effect\": \"Deny\"\n    }\n  ],\n  \"Version\": \"2012-10-17\"\n}";
        let p = statement_positions(policy);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0, Position { line: 3, column: 6 });
        assert_eq!(p[1].0, Position { line: 4, column: 6 });
        assert_eq!(p[1].1, Position { line: 6, column: 6 });
    }

    #[test]
    fn positions_tolerate_garbage() {
        assert!(statement_positions("").is_empty());
        assert!(statement_positions("[1,2]").is_empty());
        assert!(statement_positions("{\"Statement\": 5}").is_empty());
        assert!(statement_positions("{\"Statement\": [{").is_empty());
    }

    #[test]
    fn callers() {
        let u = caller_principal("arn:aws:iam::111122223333:user/a/b", Vec::new()).unwrap();
        assert_eq!(u.kind, PrincipalType::User);
        assert_eq!(u.user_name.as_deref(), Some("b"));
        let s = caller_principal("arn:aws:sts::111122223333:assumed-role/R/S", Vec::new()).unwrap();
        assert_eq!(s.kind, PrincipalType::AssumedRole);
        assert_eq!(
            s.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/R")
        );
        let r = caller_principal("arn:aws:iam::111122223333:role/p/R", Vec::new()).unwrap();
        assert_eq!(r.arn, "arn:aws:sts::111122223333:assumed-role/R/simulated");
        assert!(caller_principal("arn:aws:s3:::bucket", Vec::new()).is_err());
        assert!(caller_principal("nope", Vec::new()).is_err());
    }
}
