//! `tollgate import`: turns what the AWS CLI prints about an account into a Tollgate
//! configuration.
//!
//! Inputs:
//!
//! - `aws iam get-account-authorization-details` output (users, groups, roles, managed policies
//!   with their versions, inline policies, trust policies, tags);
//! - optionally `aws organizations describe-policy` outputs, one per SCP or RCP (`--scp`);
//! - optionally an organization layout file (`--organization`): the root, the organizational
//!   units, the accounts and what is attached where.
//!
//! Output: `DIR/tollgate.toml`, one pretty-printed JSON file per policy in `DIR/policies/`, and
//! `DIR/tollgate.secrets.toml.example`. Everything that cannot be imported (access keys,
//! permissions boundaries, AWS managed policies missing from the input, …) is reported as a
//! warning, on stderr and as comments at the top of the generated file.
//!
//! The user reference is the "Importing from AWS" section of `docs/configuration.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Arguments of `tollgate import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The output of `aws iam get-account-authorization-details` (a JSON file; `-` reads
    /// standard input).
    #[arg(long, value_name = "FILE")]
    pub authorization_details: String,
    /// The output of `aws organizations describe-policy --policy-id p-…` for a service control
    /// policy or a resource control policy (repeatable).
    #[arg(long = "scp", value_name = "FILE")]
    pub scps: Vec<PathBuf>,
    /// Organization layout (JSON): root, organizational units, accounts and the policies
    /// attached to each. Without it, every --scp policy is attached to the imported account.
    #[arg(long, value_name = "FILE")]
    pub organization: Option<PathBuf>,
    /// Directory to write `tollgate.toml`, `policies/` and `tollgate.secrets.toml.example` to
    /// (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Friendly name of the imported account (default: its name in the organization layout, or
    /// its id).
    #[arg(long, value_name = "NAME")]
    pub account_name: Option<String>,
    /// Overwrite an existing `DIR/tollgate.toml` and the files it references.
    #[arg(long)]
    pub force: bool,
}

/// Runs `tollgate import`; prints a summary (stdout) and warnings (stderr). Returns the exit
/// code: 0 when the configuration was written, 1 when an input is invalid or the output cannot
/// be written.
pub fn run(args: &ImportArgs) -> i32 {
    match run_inner(args) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("tollgate import: {message}");
            1
        }
    }
}

fn run_inner(args: &ImportArgs) -> Result<(), String> {
    let details_label = if args.authorization_details == "-" {
        "standard input".to_owned()
    } else {
        strip_file_scheme(&args.authorization_details).to_owned()
    };
    let details = read_input(&args.authorization_details)?;
    let mut org_policies = Vec::new();
    for path in &args.scps {
        let label = path.display().to_string();
        let text = read_path(path)?;
        org_policies.push(parse_org_policy(&text, &label)?);
    }
    let layout = match &args.organization {
        Some(path) => {
            let label = path.display().to_string();
            Some(parse_layout(&read_path(path)?, &label)?)
        }
        None => None,
    };
    let details = parse_details(&details, &details_label)?;
    let imported = convert(
        &details,
        &org_policies,
        layout.as_ref(),
        args.account_name.as_deref(),
    )?;
    let toml_path = args.out.join("tollgate.toml");
    write_output(&args.out, &imported, &details_label, args.force)?;

    for w in &imported.warnings {
        eprintln!("warning: {w}");
    }
    let inline: usize = imported.users.iter().map(|u| u.inline.len()).sum::<usize>()
        + imported
            .groups
            .iter()
            .map(|g| g.inline.len())
            .sum::<usize>()
        + imported.roles.iter().map(|r| r.inline.len()).sum::<usize>();
    println!(
        "imported account {} ({}): {} users, {} groups, {} roles, {} managed policies, {} inline \
         policies, {} organization policies",
        imported.account,
        imported.account_name,
        imported.users.len(),
        imported.groups.len(),
        imported.roles.len(),
        imported.policies.len(),
        inline,
        imported
            .organization
            .as_ref()
            .map_or(0, |o| o.policies.len()),
    );
    println!(
        "wrote {}, {} and {} policy files in {}",
        toml_path.display(),
        args.out.join("tollgate.secrets.toml.example").display(),
        imported.files.len(),
        args.out.join("policies").display()
    );
    println!(
        "not imported: access keys (the input has none; see the commented [[users.access_keys]] \
         entries and tollgate.secrets.toml.example){}",
        if imported.warnings.is_empty() {
            String::new()
        } else {
            format!(
                "; {} warning(s) above, also listed at the top of tollgate.toml",
                imported.warnings.len()
            )
        }
    );
    match crate::config::load_file(&toml_path, 1) {
        Ok(s) => println!(
            "tollgate check: ok ({} policy warnings; run `tollgate check --config {}` to see them)",
            s.policy_warnings.len(),
            toml_path.display()
        ),
        Err(e) => {
            println!(
                "tollgate check: the generated configuration has {} problem(s) to fix by hand:",
                e.findings().len()
            );
            for f in e.findings() {
                println!("  {f}");
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Reading inputs.

fn strip_file_scheme(source: &str) -> &str {
    source
        .strip_prefix("file://")
        .or_else(|| source.strip_prefix("fileb://"))
        .unwrap_or(source)
}

fn read_input(source: &str) -> Result<String, String> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("--authorization-details: cannot read standard input: {e}"))?;
        return Ok(text);
    }
    read_path(Path::new(strip_file_scheme(source)))
}

fn read_path(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// Parses JSON text into an object, with a message naming the file.
fn json_object(
    text: &str,
    label: &str,
    what: &str,
) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "`{label}`: expected {what} (a JSON object), got {}",
            kind(&other)
        )),
        Err(e) => Err(format!("`{label}`: not valid JSON: {e}")),
    }
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

/// Deserializes one element, naming it in the error (`UserDetailList[1]: missing field …`).
fn element<T: DeserializeOwned>(value: &Value, label: &str, at: &str) -> Result<T, String> {
    T::deserialize(value).map_err(|e| format!("`{label}`: {at}: {e}"))
}

/// A list under `key` (absent: empty), each element deserialized.
fn list<T: DeserializeOwned>(
    map: &serde_json::Map<String, Value>,
    key: &str,
    label: &str,
) -> Result<Vec<T>, String> {
    match map.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| element(v, label, &format!("{key}[{i}]")))
            .collect(),
        Some(other) => Err(format!(
            "`{label}`: {key}: expected an array, got {}",
            kind(other)
        )),
    }
}

// ---- get-account-authorization-details -------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserDetail {
    user_name: String,
    path: Option<String>,
    user_id: Option<String>,
    arn: String,
    #[serde(default)]
    group_list: Vec<String>,
    #[serde(default)]
    attached_managed_policies: Vec<AttachedPolicy>,
    #[serde(default)]
    user_policy_list: Vec<PolicyDetail>,
    #[serde(default)]
    tags: Vec<Tag>,
    permissions_boundary: Option<Boundary>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupDetail {
    group_name: String,
    path: Option<String>,
    group_id: Option<String>,
    arn: String,
    #[serde(default)]
    group_policy_list: Vec<PolicyDetail>,
    #[serde(default)]
    attached_managed_policies: Vec<AttachedPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleDetail {
    role_name: String,
    path: Option<String>,
    role_id: Option<String>,
    arn: String,
    assume_role_policy_document: Value,
    description: Option<String>,
    #[serde(default)]
    instance_profile_list: Vec<Value>,
    #[serde(default)]
    role_policy_list: Vec<PolicyDetail>,
    #[serde(default)]
    attached_managed_policies: Vec<AttachedPolicy>,
    permissions_boundary: Option<Boundary>,
    #[serde(default)]
    tags: Vec<Tag>,
    max_session_duration: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManagedPolicyDetail {
    policy_name: String,
    arn: String,
    path: Option<String>,
    default_version_id: Option<String>,
    description: Option<String>,
    #[serde(default)]
    policy_version_list: Vec<PolicyVersion>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyVersion {
    document: Value,
    version_id: Option<String>,
    #[serde(default)]
    is_default_version: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttachedPolicy {
    policy_name: Option<String>,
    policy_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyDetail {
    policy_name: String,
    policy_document: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Boundary {
    permissions_boundary_arn: Option<String>,
}

/// The parsed `get-account-authorization-details` output.
#[derive(Debug)]
struct Details {
    label: String,
    users: Vec<UserDetail>,
    groups: Vec<GroupDetail>,
    roles: Vec<RoleDetail>,
    policies: Vec<ManagedPolicyDetail>,
    truncated: bool,
}

fn parse_details(text: &str, label: &str) -> Result<Details, String> {
    let what = "`aws iam get-account-authorization-details` output";
    let map = json_object(text, label, what)?;
    const KEYS: [&str; 4] = [
        "UserDetailList",
        "GroupDetailList",
        "RoleDetailList",
        "Policies",
    ];
    if !KEYS.iter().any(|k| map.contains_key(*k)) {
        let hint = if map.contains_key("Policy") {
            " (this looks like `aws organizations describe-policy` output: pass it with --scp)"
        } else {
            ""
        };
        return Err(format!(
            "`{label}`: not {what}: it has none of UserDetailList, GroupDetailList, \
             RoleDetailList and Policies{hint}"
        ));
    }
    Ok(Details {
        label: label.to_owned(),
        users: list(&map, "UserDetailList", label)?,
        groups: list(&map, "GroupDetailList", label)?,
        roles: list(&map, "RoleDetailList", label)?,
        policies: list(&map, "Policies", label)?,
        truncated: map.get("IsTruncated").and_then(Value::as_bool) == Some(true),
    })
}

// ---- describe-policy ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribePolicy {
    policy: OrgPolicyRaw,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrgPolicyRaw {
    policy_summary: PolicySummary,
    content: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicySummary {
    id: String,
    arn: Option<String>,
    name: String,
    #[serde(rename = "Type")]
    kind: String,
}

/// An SCP or RCP from `describe-policy`.
#[derive(Debug)]
struct OrgPolicy {
    id: String,
    arn: Option<String>,
    name: String,
    /// `scp` or `rcp`.
    kind: &'static str,
    document: Value,
}

fn parse_org_policy(text: &str, label: &str) -> Result<OrgPolicy, String> {
    let what = "`aws organizations describe-policy` output";
    let map = json_object(text, label, what)?;
    if !map.contains_key("Policy") {
        let hint = if map.contains_key("UserDetailList") || map.contains_key("RoleDetailList") {
            " (this looks like `aws iam get-account-authorization-details` output: pass it with \
             --authorization-details)"
        } else {
            ""
        };
        return Err(format!("`{label}`: not {what}: no `Policy` element{hint}"));
    }
    let raw: DescribePolicy = element(&Value::Object(map), label, "Policy")?;
    let summary = raw.policy.policy_summary;
    let policy_type = match summary.kind.as_str() {
        "SERVICE_CONTROL_POLICY" => "scp",
        "RESOURCE_CONTROL_POLICY" => "rcp",
        other => {
            return Err(format!(
                "`{label}`: policy `{}` is a {other}; only SERVICE_CONTROL_POLICY and \
                 RESOURCE_CONTROL_POLICY can be imported",
                summary.name
            ))
        }
    };
    let document = match serde_json::from_str::<Value>(&raw.policy.content) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => {
            return Err(format!(
                "`{label}`: Policy.Content: expected a policy document (a JSON object), got {}",
                kind(&other)
            ))
        }
        Err(e) => {
            return Err(format!(
                "`{label}`: Policy.Content is not a JSON policy document: {e}"
            ))
        }
    };
    Ok(OrgPolicy {
        id: summary.id,
        arn: summary.arn,
        name: summary.name,
        kind: policy_type,
        document,
    })
}

// ---- organization layout ----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Layout {
    id: String,
    root_id: Option<String>,
    management_account_id: Option<String>,
    root_policies: Option<Vec<String>>,
    #[serde(default)]
    organizational_units: Vec<LayoutUnit>,
    #[serde(default)]
    accounts: Vec<LayoutAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct LayoutUnit {
    id: String,
    name: Option<String>,
    parent_id: Option<String>,
    policies: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct LayoutAccount {
    id: String,
    name: Option<String>,
    parent_id: Option<String>,
    policies: Option<Vec<String>>,
}

fn parse_layout(text: &str, label: &str) -> Result<Layout, String> {
    let map = json_object(text, label, "an organization layout")?;
    element(&Value::Object(map), label, "organization layout")
}

// ------------------------------------------------------------------------------------------------
// Conversion.

#[derive(Debug, Default)]
struct OutPolicy {
    name: String,
    path: String,
    description: Option<String>,
    file: String,
    /// Where it came from (`arn:aws:iam::aws:policy/…` for a copy of an AWS managed policy).
    source_arn: String,
}

#[derive(Debug, Default)]
struct OutGroup {
    name: String,
    path: String,
    unique_id: Option<String>,
    policies: Vec<String>,
    inline: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct OutUser {
    name: String,
    path: String,
    unique_id: Option<String>,
    groups: Vec<String>,
    policies: Vec<String>,
    inline: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    boundary: Option<String>,
}

#[derive(Debug, Default)]
struct OutRole {
    name: String,
    path: String,
    unique_id: Option<String>,
    description: Option<String>,
    trust_policy: String,
    policies: Vec<String>,
    inline: BTreeMap<String, String>,
    max_session: Option<u64>,
    tags: BTreeMap<String, String>,
    boundary: Option<String>,
    instance_profiles: usize,
}

#[derive(Debug, Default)]
struct OutAccount {
    id: String,
    name: String,
    parent: Option<String>,
    scps: Option<Vec<String>>,
    rcps: Vec<String>,
}

#[derive(Debug, Default)]
struct OutUnit {
    id: String,
    name: Option<String>,
    parent: Option<String>,
    scps: Option<Vec<String>>,
    rcps: Vec<String>,
}

#[derive(Debug, Default)]
struct OutOrg {
    id: String,
    root_id: Option<String>,
    management_account: Option<String>,
    scps: Option<Vec<String>>,
    rcps: Vec<String>,
    /// (name, type, file).
    policies: Vec<(String, &'static str, String)>,
    units: Vec<OutUnit>,
}

/// Everything to write.
#[derive(Debug, Default)]
struct Imported {
    account: String,
    account_name: String,
    accounts: Vec<OutAccount>,
    organization: Option<OutOrg>,
    policies: Vec<OutPolicy>,
    groups: Vec<OutGroup>,
    users: Vec<OutUser>,
    roles: Vec<OutRole>,
    /// Policy files: (path relative to the output directory, content).
    files: Vec<(String, String)>,
    /// Lower-cased file names in use (names differing only in case collide on some systems).
    used_files: HashSet<String>,
    warnings: Vec<String>,
    /// Source managed policy ARN → configured policy name.
    managed_by_arn: HashMap<String, String>,
}

/// `arn:<partition>:iam::<account>:…` → (partition, account).
fn iam_arn_account(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(_), Some(account), Some(_)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some((partition, account))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `id` is `prefix` followed by at least 16 upper-case letters or digits (what the
/// configuration accepts as a unique id).
fn valid_unique_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (16..=124).contains(&rest.len())
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    })
}

/// A safe file-name component: IAM name characters kept, anything else `_`.
fn file_component(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// Decodes `%XX` escapes (RFC 3986; `+` stays `+`).
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|c| char::from(c).to_digit(16))?;
            let lo = bytes.next().and_then(|c| char::from(c).to_digit(16))?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// A policy document as the AWS CLI prints it: a JSON object, or a string holding the JSON
/// (URL-encoded, as the IAM API returns it, or plain).
fn policy_document(value: &Value, label: &str, at: &str) -> Result<Value, String> {
    match value {
        Value::Object(_) => Ok(value.clone()),
        Value::String(s) => {
            let parsed = serde_json::from_str::<Value>(s).or_else(|first| {
                percent_decode(s)
                    .filter(|d| d != s)
                    .ok_or(first)
                    .and_then(|d| serde_json::from_str::<Value>(&d))
            });
            match parsed {
                Ok(v @ Value::Object(_)) => Ok(v),
                Ok(other) => Err(format!(
                    "`{label}`: {at}: expected a policy document (a JSON object), got {}",
                    kind(&other)
                )),
                Err(e) => Err(format!(
                    "`{label}`: {at}: not a policy document (neither JSON nor URL-encoded JSON): \
                     {e}"
                )),
            }
        }
        other => Err(format!(
            "`{label}`: {at}: expected a policy document (a JSON object or a string), got {}",
            kind(other)
        )),
    }
}

/// Pretty-prints JSON with policy keys in their usual order (`Version`, `Statement`, `Sid`,
/// `Effect`, `Principal`, `Action`, `Resource`, `Condition`), others alphabetically after them.
fn pretty(value: &Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, value, 0);
    out.push('\n');
    out
}

fn key_rank(key: &str) -> usize {
    const ORDER: [&str; 11] = [
        "Version",
        "Id",
        "Statement",
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
    ];
    ORDER
        .iter()
        .position(|k| *k == key)
        .unwrap_or(if key == "Condition" {
            ORDER.len()
        } else {
            ORDER.len() + 1
        })
}

fn write_pretty(out: &mut String, value: &Value, indent: usize) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| (key_rank(a.0), a.0).cmp(&(key_rank(b.0), b.0)));
            out.push_str("{\n");
            let last = entries.len().saturating_sub(1);
            for (i, (k, v)) in entries.into_iter().enumerate() {
                pad(out, indent + 2);
                out.push_str(&scalar(&Value::String(k.clone())));
                out.push_str(": ");
                write_pretty(out, v, indent + 2);
                if i != last {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(out, indent);
            out.push('}');
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            let last = items.len().saturating_sub(1);
            for (i, v) in items.iter().enumerate() {
                pad(out, indent + 2);
                write_pretty(out, v, indent + 2);
                if i != last {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(out, indent);
            out.push(']');
        }
        other => out.push_str(&scalar(other)),
    }
}

fn scalar(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

impl Imported {
    /// Adds a policy file under `policies/`, renaming on a (case-insensitive) clash. Returns its
    /// path relative to the output directory.
    fn add_file(&mut self, stem: &str, document: &Value) -> String {
        let base = file_component(stem);
        let mut name = format!("{base}.json");
        let mut n = 2;
        while !self.used_files.insert(name.to_ascii_lowercase()) {
            name = format!("{base}-{n}.json");
            n += 1;
        }
        let rel = format!("policies/{name}");
        self.files.push((rel.clone(), pretty(document)));
        rel
    }

    fn warn(&mut self, message: impl Into<String>) {
        let m: String = message.into();
        self.warnings
            .push(m.split_whitespace().collect::<Vec<_>>().join(" "));
    }

    /// Warns when an identity policy is not `Version: 2012-10-17` (kept as it is: `tollgate
    /// check` refuses it, as IAM's policy validation does).
    fn check_version(&mut self, what: &str, document: &Value) {
        match document.get("Version").and_then(Value::as_str) {
            Some("2012-10-17") => {}
            other => self.warn(format!(
                "{what}: Version is {}; kept as it is, but `tollgate check` refuses identity \
                 policies that are not Version 2012-10-17",
                other.map_or_else(|| "missing".to_owned(), |v| format!("`{v}`"))
            )),
        }
    }

    fn tags(&mut self, owner: &str, tags: &[Tag]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for t in tags {
            if t.key.to_ascii_lowercase().starts_with("aws:") {
                self.warn(format!(
                    "{owner}: tag `{}` skipped: keys starting with `aws:` are reserved for AWS \
                     and refused by the configuration",
                    t.key
                ));
            } else if out.insert(t.key.clone(), t.value.clone()).is_some() {
                self.warn(format!(
                    "{owner}: tag `{}` appears twice; the last value is kept",
                    t.key
                ));
            }
        }
        out
    }

    fn unique_id(&mut self, owner: &str, id: Option<&String>, prefix: &str) -> Option<String> {
        let id = id?;
        if valid_unique_id(id, prefix) {
            Some(id.clone())
        } else {
            self.warn(format!(
                "{owner}: unique id `{id}` is not {prefix} followed by 16 or more upper-case \
                 letters or digits; Tollgate derives one from the ARN instead"
            ));
            None
        }
    }

    fn inline(
        &mut self,
        label: &str,
        owner_kind: &str,
        owner: &str,
        at: &str,
        list: &[PolicyDetail],
    ) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for (i, p) in list.iter().enumerate() {
            let where_ = format!("{at}[{i}].PolicyDocument");
            let doc = policy_document(&p.policy_document, label, &where_)?;
            let what = format!("{owner_kind} `{owner}` inline policy `{}`", p.policy_name);
            if out.contains_key(&p.policy_name) {
                self.warn(format!("{what} appears twice; the first is kept"));
                continue;
            }
            self.check_version(&what, &doc);
            let file = self.add_file(&format!("{owner_kind}-{owner}-{}", p.policy_name), &doc);
            out.insert(p.policy_name.clone(), file);
        }
        Ok(out)
    }

    /// Resolves attached managed policies to configured policy names, warning about (and
    /// skipping) those that were not imported.
    fn attached(&mut self, owner: &str, list: &[AttachedPolicy]) -> Vec<String> {
        let mut out = Vec::new();
        for a in list {
            if let Some(name) = self.managed_by_arn.get(&a.policy_arn).cloned() {
                if !out.contains(&name) {
                    out.push(name);
                }
                continue;
            }
            let aws_managed = iam_arn_account(&a.policy_arn).is_some_and(|(_, acct)| acct == "aws");
            if aws_managed {
                self.warn(format!(
                    "{owner}: AWS managed policy `{}` skipped: its document is not in the \
                     input's Policies (run get-account-authorization-details with \
                     `--filter AWSManagedPolicy` too, or write an equivalent [[policies]] entry); \
                     the imported {owner} lacks the permissions it grants",
                    a.policy_arn
                ));
            } else {
                self.warn(format!(
                    "{owner}: managed policy `{}`{} skipped: it is not in the input's Policies \
                     (was the output filtered with --filter?)",
                    a.policy_arn,
                    a.policy_name
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ));
            }
        }
        out
    }
}

/// The account all identities and customer managed policies belong to.
fn account_of(details: &Details, warnings: &mut Vec<String>) -> Result<String, String> {
    let label = &details.label;
    let arns = details
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (format!("UserDetailList[{i}].Arn"), &u.arn))
        .chain(
            details
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (format!("GroupDetailList[{i}].Arn"), &g.arn)),
        )
        .chain(
            details
                .roles
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("RoleDetailList[{i}].Arn"), &r.arn)),
        )
        .chain(
            details
                .policies
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("Policies[{i}].Arn"), &p.arn)),
        );
    let mut account: Option<(String, String)> = None;
    let mut partitions = BTreeSet::new();
    for (at, arn) in arns {
        let Some((partition, acct)) = iam_arn_account(arn) else {
            return Err(format!(
                "`{label}`: {at}: `{arn}` is not an IAM ARN (arn:aws:iam::<account>:…)"
            ));
        };
        partitions.insert(partition.to_owned());
        if acct == "aws" && at.starts_with("Policies") {
            continue;
        }
        if !is_account_id(acct) {
            return Err(format!(
                "`{label}`: {at}: `{arn}` does not name a 12-digit account"
            ));
        }
        match &account {
            None => account = Some((acct.to_owned(), at)),
            Some((first, first_at)) if first != acct => {
                return Err(format!(
                    "`{label}`: {at} is in account {acct}, but {first_at} is in account {first}: \
                     import one account's output at a time"
                ))
            }
            Some(_) => {}
        }
    }
    if partitions.iter().any(|p| p != "aws") {
        warnings.push(format!(
            "the input uses the {} partition; Tollgate forms every ARN as `arn:aws:…`",
            partitions.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    account.map(|(a, _)| a).ok_or_else(|| {
        format!("`{label}`: no user, group, role or customer managed policy: nothing to import")
    })
}

fn convert(
    details: &Details,
    org_policies: &[OrgPolicy],
    layout: Option<&Layout>,
    account_name: Option<&str>,
) -> Result<Imported, String> {
    let label = details.label.as_str();
    let mut out = Imported::default();
    let mut early = Vec::new();
    out.account = account_of(details, &mut early)?;
    for w in early {
        out.warn(w);
    }
    if details.truncated {
        out.warn(
            "the input says IsTruncated: true, so it is only one page; run \
             get-account-authorization-details without --max-items (the AWS CLI then fetches \
             every page) to import everything",
        );
    }

    // Managed policies: every customer managed one, and the AWS managed ones that something
    // attaches (when the output includes them).
    let referenced: HashSet<&str> = details
        .users
        .iter()
        .flat_map(|u| &u.attached_managed_policies)
        .chain(
            details
                .groups
                .iter()
                .flat_map(|g| &g.attached_managed_policies),
        )
        .chain(
            details
                .roles
                .iter()
                .flat_map(|r| &r.attached_managed_policies),
        )
        .map(|a| a.policy_arn.as_str())
        .collect();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut order: Vec<(usize, bool)> = details
        .policies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let aws = iam_arn_account(&p.arn).is_some_and(|(_, a)| a == "aws");
            (i, aws)
        })
        .collect();
    // Customer managed policies first, so that they keep their names.
    order.sort_by_key(|&(i, aws)| (aws, i));
    for (i, aws) in order {
        let Some(p) = details.policies.get(i) else {
            continue;
        };
        if aws && !referenced.contains(p.arn.as_str()) {
            continue;
        }
        let version = p
            .policy_version_list
            .iter()
            .find(|v| v.is_default_version)
            .or_else(|| {
                p.default_version_id.as_ref().and_then(|id| {
                    p.policy_version_list
                        .iter()
                        .find(|v| v.version_id.as_ref() == Some(id))
                })
            })
            .ok_or_else(|| {
                format!(
                    "`{label}`: Policies[{i}] (`{}`): no version in PolicyVersionList has \
                     \"IsDefaultVersion\": true",
                    p.arn
                )
            })?;
        let at = format!(
            "Policies[{i}].PolicyVersionList[{}].Document",
            p.policy_version_list
                .iter()
                .position(|v| std::ptr::eq(v, version))
                .unwrap_or(0)
        );
        let doc = policy_document(&version.document, label, &at)?;
        let lower = p.policy_name.to_ascii_lowercase();
        if let Some(first) = names.get(&lower) {
            out.warn(format!(
                "managed policy `{}` skipped: its name clashes with `{first}`, and policy names \
                 are unique per account (ignoring case); attachments of it are dropped",
                p.arn
            ));
            continue;
        }
        names.insert(lower, p.arn.clone());
        if aws {
            out.warn(format!(
                "AWS managed policy `{}` is imported as the customer managed policy `{}` of \
                 account {} (the configuration cannot define policies of the `aws` account)",
                p.arn, p.policy_name, out.account
            ));
        }
        out.check_version(&format!("managed policy `{}`", p.arn), &doc);
        let stem = if aws {
            format!("aws-{}", p.policy_name)
        } else {
            p.policy_name.clone()
        };
        let file = out.add_file(&stem, &doc);
        out.managed_by_arn
            .insert(p.arn.clone(), p.policy_name.clone());
        out.policies.push(OutPolicy {
            name: p.policy_name.clone(),
            path: p.path.clone().unwrap_or_else(|| "/".to_owned()),
            description: p.description.clone().filter(|d| !d.is_empty()),
            file,
            source_arn: p.arn.clone(),
        });
    }

    // Groups.
    let mut group_names = HashSet::new();
    for (i, g) in details.groups.iter().enumerate() {
        let owner = format!("group `{}`", g.group_name);
        let inline = out.inline(
            label,
            "group",
            &g.group_name,
            &format!("GroupDetailList[{i}].GroupPolicyList"),
            &g.group_policy_list,
        )?;
        let policies = out.attached(&owner, &g.attached_managed_policies);
        let unique_id = out.unique_id(&owner, g.group_id.as_ref(), "AGPA");
        group_names.insert(g.group_name.clone());
        out.groups.push(OutGroup {
            name: g.group_name.clone(),
            path: g.path.clone().unwrap_or_else(|| "/".to_owned()),
            unique_id,
            policies,
            inline,
        });
    }

    // Users.
    for (i, u) in details.users.iter().enumerate() {
        let owner = format!("user `{}`", u.user_name);
        let inline = out.inline(
            label,
            "user",
            &u.user_name,
            &format!("UserDetailList[{i}].UserPolicyList"),
            &u.user_policy_list,
        )?;
        let policies = out.attached(&owner, &u.attached_managed_policies);
        let unique_id = out.unique_id(&owner, u.user_id.as_ref(), "AIDA");
        let tags = out.tags(&owner, &u.tags);
        let mut groups = Vec::new();
        for g in &u.group_list {
            if group_names.contains(g) {
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            } else {
                out.warn(format!(
                    "{owner}: membership of group `{g}` skipped: the group is not in the input's \
                     GroupDetailList"
                ));
            }
        }
        let boundary = u
            .permissions_boundary
            .as_ref()
            .and_then(|b| b.permissions_boundary_arn.clone());
        if let Some(b) = &boundary {
            out.warn(format!(
                "{owner}: permissions boundary `{b}` not imported (the configuration has no \
                 permissions boundaries): the imported user may be allowed more than in AWS"
            ));
        }
        out.users.push(OutUser {
            name: u.user_name.clone(),
            path: u.path.clone().unwrap_or_else(|| "/".to_owned()),
            unique_id,
            groups,
            policies,
            inline,
            tags,
            boundary,
        });
    }

    // Roles.
    for (i, r) in details.roles.iter().enumerate() {
        let owner = format!("role `{}`", r.role_name);
        let trust = policy_document(
            &r.assume_role_policy_document,
            label,
            &format!("RoleDetailList[{i}].AssumeRolePolicyDocument"),
        )?;
        let trust_policy = out.add_file(&format!("role-{}-trust", r.role_name), &trust);
        let inline = out.inline(
            label,
            "role",
            &r.role_name,
            &format!("RoleDetailList[{i}].RolePolicyList"),
            &r.role_policy_list,
        )?;
        let policies = out.attached(&owner, &r.attached_managed_policies);
        let unique_id = out.unique_id(&owner, r.role_id.as_ref(), "AROA");
        let tags = out.tags(&owner, &r.tags);
        let boundary = r
            .permissions_boundary
            .as_ref()
            .and_then(|b| b.permissions_boundary_arn.clone());
        if let Some(b) = &boundary {
            out.warn(format!(
                "{owner}: permissions boundary `{b}` not imported (the configuration has no \
                 permissions boundaries): sessions of the imported role may be allowed more \
                 than in AWS"
            ));
        }
        out.roles.push(OutRole {
            name: r.role_name.clone(),
            path: r.path.clone().unwrap_or_else(|| "/".to_owned()),
            unique_id,
            description: r.description.clone().filter(|d| !d.is_empty()),
            trust_policy,
            policies,
            inline,
            max_session: r.max_session_duration,
            tags,
            boundary,
            instance_profiles: r.instance_profile_list.len(),
        });
    }

    organization(&mut out, org_policies, layout, label)?;
    if let Some(name) = account_name {
        if let Some(a) = out.accounts.iter_mut().find(|a| a.id == out.account) {
            a.name = name.to_owned();
        }
    }
    out.account_name = out
        .accounts
        .iter()
        .find(|a| a.id == out.account)
        .map(|a| a.name.clone())
        .unwrap_or_default();
    Ok(out)
}

/// The organization: policies from `describe-policy`, placed by the layout (or all on the
/// imported account).
fn organization(
    out: &mut Imported,
    org_policies: &[OrgPolicy],
    layout: Option<&Layout>,
    details_label: &str,
) -> Result<(), String> {
    let account = out.account.clone();
    if org_policies.is_empty() && layout.is_none() {
        out.accounts.push(OutAccount {
            id: account.clone(),
            name: account,
            ..OutAccount::default()
        });
        return Ok(());
    }
    // Policies by name and by id → (name, type).
    let mut by_ref: HashMap<String, (String, &'static str)> = HashMap::new();
    let mut org = OutOrg::default();
    let mut seen = HashSet::new();
    for p in org_policies {
        if !seen.insert((p.kind, p.name.clone())) {
            out.warn(format!(
                "{} `{}` given twice; the first is kept",
                p.kind.to_ascii_uppercase(),
                p.name
            ));
            continue;
        }
        let file = out.add_file(&format!("{}-{}", p.kind, p.name), &p.document);
        org.policies.push((p.name.clone(), p.kind, file));
        by_ref.insert(p.name.clone(), (p.name.clone(), p.kind));
        by_ref.insert(p.id.clone(), (p.name.clone(), p.kind));
    }
    match layout {
        Some(l) => place_by_layout(out, &mut org, l, &by_ref, details_label)?,
        None => {
            // The organization id and the management account are in every policy ARN:
            // arn:aws:organizations::<management account>:policy/o-…/<type>/p-….
            let from_arn = org_policies.iter().find_map(|p| {
                let arn = p.arn.as_deref()?;
                let mut parts = arn.splitn(6, ':');
                let management = parts.nth(4)?;
                let resource = parts.next()?;
                let org_id = resource.split('/').nth(1).filter(|s| s.starts_with("o-"))?;
                Some((org_id.to_owned(), management.to_owned()))
            });
            let Some((org_id, management)) = from_arn else {
                return Err(
                    "cannot tell the organization id: no --scp policy has an ARN with one \
                     (arn:aws:organizations::<account>:policy/o-…/…); give an --organization \
                     layout"
                        .to_owned(),
                );
            };
            org.id = org_id;
            if management == account {
                org.management_account = Some(account.clone());
                out.warn(format!(
                    "account {account} is the organization's management account (it owns the \
                     policies): SCPs do not apply to it, and RCPs do not apply to its resources"
                ));
            }
            let mut scps: Vec<String> = vec!["FullAWSAccess".to_owned()];
            let mut rcps = Vec::new();
            for (name, kind, _) in &org.policies {
                match *kind {
                    "scp" if name != "FullAWSAccess" => scps.push(name.clone()),
                    "rcp" => rcps.push(name.clone()),
                    _ => {}
                }
            }
            out.warn(format!(
                "no --organization layout: the SCPs and RCPs are attached to account {account}, \
                 next to FullAWSAccess (AWS's default SCP); give a layout to reproduce the real \
                 attachments to the root and organizational units"
            ));
            out.accounts.push(OutAccount {
                id: account.clone(),
                name: account,
                parent: None,
                scps: Some(scps),
                rcps,
            });
        }
    }
    out.organization = Some(org);
    Ok(())
}

fn place_by_layout(
    out: &mut Imported,
    org: &mut OutOrg,
    layout: &Layout,
    by_ref: &HashMap<String, (String, &'static str)>,
    details_label: &str,
) -> Result<(), String> {
    let account = out.account.clone();
    org.id = layout.id.clone();
    org.root_id = layout.root_id.clone();
    let is_root = |parent: &Option<String>| match parent {
        None => true,
        Some(p) => p == "root" || Some(p) == layout.root_id.as_ref(),
    };
    // (scps, rcps) of one level: `None` SCPs keep AWS's default, FullAWSAccess.
    let level = |out: &mut Imported,
                 at: &str,
                 refs: Option<&Vec<String>>|
     -> Result<(Option<Vec<String>>, Vec<String>), String> {
        let Some(refs) = refs else {
            return Ok((None, Vec::new()));
        };
        let mut scps = Vec::new();
        let mut rcps = Vec::new();
        for r in refs {
            match by_ref.get(r) {
                Some((name, "scp")) => scps.push(name.clone()),
                Some((name, _)) => rcps.push(name.clone()),
                None if r == "FullAWSAccess" || r == "p-FullAWSAccess" => {
                    scps.push("FullAWSAccess".to_owned())
                }
                // Attached everywhere, always: the configuration adds it by itself.
                None if r == "RCPFullAWSAccess" || r == "p-RCPFullAWSAccess" => {}
                None => {
                    return Err(format!(
                        "organization layout: {at} names policy `{r}`, which no --scp file \
                         defines (give its `aws organizations describe-policy` output with --scp)"
                    ))
                }
            }
        }
        if scps.is_empty() {
            out.warn(format!(
                "organization layout: {at} lists no SCP; AWS always has at least one, so \
                 FullAWSAccess is assumed"
            ));
            return Ok((None, rcps));
        }
        Ok((Some(scps), rcps))
    };
    let (scps, rcps) = level(out, "RootPolicies", layout.root_policies.as_ref())?;
    org.scps = scps;
    org.rcps = rcps;
    for (i, u) in layout.organizational_units.iter().enumerate() {
        let (scps, rcps) = level(
            out,
            &format!("OrganizationalUnits[{i}] (`{}`)", u.id),
            u.policies.as_ref(),
        )?;
        org.units.push(OutUnit {
            id: u.id.clone(),
            name: u.name.clone(),
            parent: u.parent_id.clone().filter(|_| !is_root(&u.parent_id)),
            scps,
            rcps,
        });
    }
    if !layout.accounts.iter().any(|a| a.id == account) {
        return Err(format!(
            "organization layout: account {account} (of `{details_label}`) is not in Accounts; \
             add it, with its ParentId and Policies"
        ));
    }
    for (i, a) in layout.accounts.iter().enumerate() {
        let (scps, rcps) = level(
            out,
            &format!("Accounts[{i}] (`{}`)", a.id),
            a.policies.as_ref(),
        )?;
        out.accounts.push(OutAccount {
            id: a.id.clone(),
            name: a.name.clone().unwrap_or_else(|| a.id.clone()),
            parent: a.parent_id.clone().filter(|_| !is_root(&a.parent_id)),
            scps,
            rcps,
        });
    }
    if let Some(m) = &layout.management_account_id {
        if layout.accounts.iter().any(|a| &a.id == m) {
            org.management_account = Some(m.clone());
            if *m == account {
                out.warn(format!(
                    "account {account} is the organization's management account: SCPs do not \
                     apply to it, and RCPs do not apply to its resources"
                ));
            }
        } else {
            out.warn(format!(
                "organization layout: ManagementAccountId {m} is not in Accounts, so it is left \
                 out of the configuration"
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Writing.

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when possible.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_owned()
    } else {
        q(s)
    }
}

fn toml_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

fn toml_table(map: &BTreeMap<String, String>) -> String {
    format!(
        "{{ {} }}",
        map.iter()
            .map(|(k, v)| format!("{} = {}", key(k), q(v)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// One comment line per line of `text`.
fn comment(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_owned()
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

fn render(im: &Imported, source: &str) -> String {
    let mut t = String::new();
    let line = |t: &mut String, s: &str| {
        t.push_str(s);
        t.push('\n');
    };
    t.push_str(&comment(&format!(
        "Generated by `tollgate import` from {source} (account {}).\n\
         Review it, then check it with `tollgate check --config tollgate.toml`.\n\
         The reference is docs/configuration.md; \"Importing from AWS\" describes what is and \
         isn't imported.",
        im.account
    )));
    line(&mut t, "#");
    line(
        &mut t,
        "# Not imported: access keys (the input has none, and AWS never shows a secret again).",
    );
    line(
        &mut t,
        "# Each user has a commented [[users.access_keys]] entry; see tollgate.secrets.toml.example.",
    );
    for w in &im.warnings {
        line(&mut t, &format!("# warning: {w}"));
    }
    line(&mut t, "");
    line(
        &mut t,
        "# Uncomment once tollgate.secrets.toml exists (copy tollgate.secrets.toml.example, then",
    );
    line(
        &mut t,
        "# chmod 600); or give each secret as TOLLGATE_SECRET_<ACCESS_KEY_ID> instead.",
    );
    line(&mut t, "# secrets_file = \"tollgate.secrets.toml\"");
    line(&mut t, "");
    line(
        &mut t,
        "# Not in the AWS output: the regions and services clients sign for. Adjust them.",
    );
    line(&mut t, "[auth]");
    line(&mut t, "regions = [\"us-east-1\"]");
    line(&mut t, "services = [\"execute-api\", \"s3\", \"sts\"]");
    line(&mut t, "");
    line(
        &mut t,
        "# Where allowed requests go: replace with your service's http://host:port.",
    );
    line(&mut t, "[upstream]");
    line(&mut t, "url = \"builtin:echo\"");

    for a in &im.accounts {
        line(&mut t, "");
        line(&mut t, "[[accounts]]");
        line(&mut t, &format!("id = {}", q(&a.id)));
        line(&mut t, &format!("name = {}", q(&a.name)));
        if let Some(p) = &a.parent {
            line(&mut t, &format!("parent = {}", q(p)));
        }
        if let Some(s) = &a.scps {
            line(&mut t, &format!("scps = {}", toml_list(s)));
        }
        if !a.rcps.is_empty() {
            line(&mut t, &format!("rcps = {}", toml_list(&a.rcps)));
        }
    }

    if let Some(o) = &im.organization {
        line(&mut t, "");
        line(&mut t, "[organization]");
        line(&mut t, &format!("id = {}", q(&o.id)));
        if let Some(r) = &o.root_id {
            line(&mut t, &format!("root_id = {}", q(r)));
        }
        if let Some(m) = &o.management_account {
            line(&mut t, &format!("management_account = {}", q(m)));
        }
        if let Some(s) = &o.scps {
            line(&mut t, &format!("scps = {}", toml_list(s)));
        }
        if !o.rcps.is_empty() {
            line(&mut t, &format!("rcps = {}", toml_list(&o.rcps)));
        }
        for (name, kind, file) in &o.policies {
            line(&mut t, "");
            line(&mut t, "[[organization.policies]]");
            line(&mut t, &format!("name = {}", q(name)));
            line(&mut t, &format!("type = {}", q(kind)));
            line(&mut t, &format!("file = {}", q(file)));
        }
        for u in &o.units {
            line(&mut t, "");
            line(&mut t, "[[organization.units]]");
            line(&mut t, &format!("id = {}", q(&u.id)));
            if let Some(n) = &u.name {
                line(&mut t, &format!("name = {}", q(n)));
            }
            if let Some(p) = &u.parent {
                line(&mut t, &format!("parent = {}", q(p)));
            }
            if let Some(s) = &u.scps {
                line(&mut t, &format!("scps = {}", toml_list(s)));
            }
            if !u.rcps.is_empty() {
                line(&mut t, &format!("rcps = {}", toml_list(&u.rcps)));
            }
        }
    }

    let account = q(&im.account);
    for p in &im.policies {
        line(&mut t, "");
        if iam_arn_account(&p.source_arn).is_some_and(|(_, a)| a == "aws") {
            line(
                &mut t,
                &format!("# A copy of the AWS managed policy {}.", p.source_arn),
            );
        }
        line(&mut t, "[[policies]]");
        line(&mut t, &format!("account = {account}"));
        line(&mut t, &format!("name = {}", q(&p.name)));
        line(&mut t, &format!("path = {}", q(&p.path)));
        if let Some(d) = &p.description {
            line(&mut t, &format!("description = {}", q(d)));
        }
        line(&mut t, &format!("file = {}", q(&p.file)));
    }

    for g in &im.groups {
        line(&mut t, "");
        line(&mut t, "[[groups]]");
        line(&mut t, &format!("account = {account}"));
        line(&mut t, &format!("name = {}", q(&g.name)));
        line(&mut t, &format!("path = {}", q(&g.path)));
        if let Some(id) = &g.unique_id {
            line(&mut t, &format!("unique_id = {}", q(id)));
        }
        if !g.policies.is_empty() {
            line(&mut t, &format!("policies = {}", toml_list(&g.policies)));
        }
        if !g.inline.is_empty() {
            line(
                &mut t,
                &format!("inline_policies = {}", toml_table(&g.inline)),
            );
        }
    }

    for u in &im.users {
        line(&mut t, "");
        line(&mut t, "[[users]]");
        line(&mut t, &format!("account = {account}"));
        line(&mut t, &format!("name = {}", q(&u.name)));
        line(&mut t, &format!("path = {}", q(&u.path)));
        if let Some(id) = &u.unique_id {
            line(&mut t, &format!("unique_id = {}", q(id)));
        }
        if !u.groups.is_empty() {
            line(&mut t, &format!("groups = {}", toml_list(&u.groups)));
        }
        if !u.policies.is_empty() {
            line(&mut t, &format!("policies = {}", toml_list(&u.policies)));
        }
        if !u.inline.is_empty() {
            line(
                &mut t,
                &format!("inline_policies = {}", toml_table(&u.inline)),
            );
        }
        if !u.tags.is_empty() {
            line(&mut t, &format!("tags = {}", toml_table(&u.tags)));
        }
        if let Some(b) = &u.boundary {
            line(
                &mut t,
                &format!("# Not imported: permissions boundary {b} (not supported)."),
            );
        }
        line(
            &mut t,
            &format!(
                "# Access keys are not imported. To add one, uncomment the two lines below, put \
                 the key id\n# (`aws iam list-access-keys --user-name {}`, or a new one from \
                 `tollgate keys create`)\n# in place of the dots and its secret in \
                 tollgate.secrets.toml.",
                u.name
            ),
        );
        line(&mut t, "# [[users.access_keys]]");
        line(&mut t, "# id = \"AKIA................\"");
    }

    for r in &im.roles {
        line(&mut t, "");
        line(&mut t, "[[roles]]");
        line(&mut t, &format!("account = {account}"));
        line(&mut t, &format!("name = {}", q(&r.name)));
        line(&mut t, &format!("path = {}", q(&r.path)));
        if let Some(id) = &r.unique_id {
            line(&mut t, &format!("unique_id = {}", q(id)));
        }
        if let Some(d) = &r.description {
            line(&mut t, &format!("description = {}", q(d)));
        }
        line(&mut t, &format!("trust_policy = {}", q(&r.trust_policy)));
        if !r.policies.is_empty() {
            line(&mut t, &format!("policies = {}", toml_list(&r.policies)));
        }
        if !r.inline.is_empty() {
            line(
                &mut t,
                &format!("inline_policies = {}", toml_table(&r.inline)),
            );
        }
        match r.max_session {
            Some(s) => line(&mut t, &format!("max_session_duration_seconds = {s}")),
            None => line(
                &mut t,
                "# max_session_duration_seconds: not in the AWS output (`aws iam get-role` has \
                 it); 3600 applies.",
            ),
        }
        if !r.tags.is_empty() {
            line(&mut t, &format!("tags = {}", toml_table(&r.tags)));
        }
        if let Some(b) = &r.boundary {
            line(
                &mut t,
                &format!("# Not imported: permissions boundary {b} (not supported)."),
            );
        }
        if r.instance_profiles > 0 {
            line(
                &mut t,
                &format!(
                    "# Not imported: {} instance profile(s) (not modelled).",
                    r.instance_profiles
                ),
            );
        }
    }
    t
}

fn render_secrets_example(im: &Imported) -> String {
    let mut t = comment(
        "Secret access keys for tollgate.toml. `tollgate import` imports no access keys: the AWS\n\
         output has none, and AWS never shows a secret access key again after creating it. Either\n\
         keep using existing keys (their owners know the secrets) or create new ones with\n\
         `tollgate keys create`.\n\
         \n\
         \x20   cp tollgate.secrets.toml.example tollgate.secrets.toml\n\
         \x20   chmod 600 tollgate.secrets.toml     # Tollgate refuses a group/other-readable file\n\
         \n\
         then uncomment `secrets_file` in tollgate.toml, give each key an [[users.access_keys]]\n\
         entry there and its secret here. A TOLLGATE_SECRET_<ACCESS_KEY_ID> environment variable\n\
         overrides the value given here.",
    );
    t.push_str("\n[access_keys]\n");
    for u in &im.users {
        t.push_str(&format!(
            "# user {}{}\n# AKIA................ = \"its 40-character secret access key\"\n",
            u.path, u.name
        ));
    }
    t
}

fn write_output(dir: &Path, im: &Imported, source: &str, force: bool) -> Result<(), String> {
    let toml_path = dir.join("tollgate.toml");
    if toml_path.exists() && !force {
        return Err(format!(
            "`{}` already exists; give --force to overwrite it (and the policy files it names)",
            toml_path.display()
        ));
    }
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies)
        .map_err(|e| format!("cannot create `{}`: {e}", policies.display()))?;
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    };
    for (rel, text) in &im.files {
        write(dir.join(rel), text)?;
    }
    write(
        dir.join("tollgate.secrets.toml.example"),
        &render_secrets_example(im),
    )?;
    write(toml_path, &render(im, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_may_be_objects_plain_strings_or_url_encoded() {
        let obj = json!({"Version": "2012-10-17", "Statement": []});
        assert_eq!(policy_document(&obj, "f", "x").unwrap(), obj);
        let plain = Value::String(obj.to_string());
        assert_eq!(policy_document(&plain, "f", "x").unwrap(), obj);
        let encoded = Value::String(
            "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D".to_owned(),
        );
        assert_eq!(policy_document(&encoded, "f", "x").unwrap(), obj);
        let err = policy_document(&Value::String("%7Bnot".to_owned()), "f", "P[0]").unwrap_err();
        assert!(err.contains("P[0]"), "{err}");
        assert!(policy_document(&json!(3), "f", "x").is_err());
        assert!(policy_document(&Value::String("%zz".to_owned()), "f", "x").is_err());
        assert!(policy_document(&Value::String("[1]".to_owned()), "f", "x").is_err());
    }

    #[test]
    fn plus_is_not_a_space() {
        assert_eq!(percent_decode("a+b%20c").unwrap(), "a+b c");
        assert_eq!(percent_decode("%C3%A9").unwrap(), "é");
        assert!(percent_decode("%").is_none());
        assert!(percent_decode("%FF").is_none());
    }

    #[test]
    fn pretty_puts_policy_keys_in_the_usual_order() {
        let doc = json!({"Statement": [{"Resource": "*", "Action": ["s3:GetObject"], "Effect": "Allow", "Sid": "A", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}], "Version": "2012-10-17"});
        let text = pretty(&doc);
        let v = text.find("\"Version\"").unwrap();
        let s = text.find("\"Statement\"").unwrap();
        assert!(v < s, "{text}");
        let order: Vec<usize> = [
            "\"Sid\"",
            "\"Effect\"",
            "\"Action\"",
            "\"Resource\"",
            "\"Condition\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        assert_eq!(
            pretty(&json!({"a": [], "b": {}})),
            "{\n  \"a\": [],\n  \"b\": {}\n}\n"
        );
    }

    #[test]
    fn toml_strings_and_keys_are_escaped() {
        assert_eq!(q("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(key("team"), "team");
        assert_eq!(key("cost center"), "\"cost center\"");
        let mut m = BTreeMap::new();
        m.insert("a:b".to_owned(), "x\"y".to_owned());
        let text = format!("t = {}", toml_table(&m));
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["t"]["a:b"].as_str(), Some("x\"y"));
    }

    #[test]
    fn file_names_stay_inside_the_directory() {
        assert_eq!(file_component("../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_component(""), "_");
        assert_eq!(file_component("Ok+=,.@_-1"), "Ok+=,.@_-1");
        let mut im = Imported::default();
        let doc = json!({});
        assert_eq!(im.add_file("user-a-P", &doc), "policies/user-a-P.json");
        assert_eq!(im.add_file("user-a-p", &doc), "policies/user-a-p-2.json");
    }

    #[test]
    fn iam_arns_name_their_account() {
        assert_eq!(
            iam_arn_account("arn:aws:iam::111122223333:user/a/b"),
            Some(("aws", "111122223333"))
        );
        assert_eq!(
            iam_arn_account("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            Some(("aws", "aws"))
        );
        assert_eq!(iam_arn_account("arn:aws:s3:::bucket"), None);
        assert_eq!(iam_arn_account("nonsense"), None);
    }

    #[test]
    fn unique_ids_are_checked() {
        assert!(valid_unique_id("AIDAJQABLZS4A3QDU576Q", "AIDA"));
        assert!(!valid_unique_id("AIDAEXAMPLE", "AIDA"));
        assert!(!valid_unique_id("AROAJQABLZS4A3QDU576Q", "AIDA"));
    }

    #[test]
    fn describe_policy_needs_an_scp_or_rcp() {
        let tag = r#"{"Policy":{"PolicySummary":{"Id":"p-1","Name":"t","Type":"TAG_POLICY"},"Content":"{}"}}"#;
        assert!(parse_org_policy(tag, "f")
            .unwrap_err()
            .contains("TAG_POLICY"));
        let bad = r#"{"Policy":{"PolicySummary":{"Id":"p-1","Name":"t","Type":"SERVICE_CONTROL_POLICY"},"Content":"{oops"}}"#;
        assert!(parse_org_policy(bad, "f").unwrap_err().contains("Content"));
        let ok = r#"{"Policy":{"PolicySummary":{"Id":"p-1","Name":"t","Type":"RESOURCE_CONTROL_POLICY"},"Content":"{\"Version\":\"2012-10-17\",\"Statement\":[]}"}}"#;
        assert_eq!(parse_org_policy(ok, "f").unwrap().kind, "rcp");
    }
}
