//! The IAM policy engine against the conformance corpus in `tests/fixtures/policy/` (each case
//! cites the AWS documentation it comes from), plus property tests of evaluation invariants.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::Value;
use tollgate::policy::{
    evaluate, parse_policy_value, CompiledPolicy, Outcome, Policies, PolicySet, PolicyType,
    PrincipalInfo, PrincipalType, RequestContext, Severity,
};

fn principal_from(v: &Value, has_boundary: bool) -> PrincipalInfo {
    let kind = match v["type"].as_str().unwrap_or("User") {
        "User" => PrincipalType::User,
        "AssumedRole" => PrincipalType::AssumedRole,
        "Account" => PrincipalType::Account,
        "FederatedUser" => PrincipalType::FederatedUser,
        "Anonymous" => PrincipalType::Anonymous,
        "Service" => PrincipalType::Service,
        other => panic!("unknown principal type {other}"),
    };
    let arn = v["arn"].as_str().unwrap_or("").to_owned();
    let account = arn.split(':').nth(4).unwrap_or("").to_owned();
    let role_arn = v["role_arn"].as_str().map(str::to_owned);
    let session = arn.rsplit('/').next().unwrap_or("").to_owned();
    let user_id = match v["unique_id"].as_str() {
        Some(u) => u.to_owned(),
        None => match kind {
            PrincipalType::User => "AIDAEXAMPLEUSERID0001".to_owned(),
            PrincipalType::AssumedRole => format!("AROAEXAMPLEROLEID0001:{session}"),
            PrincipalType::Account => account.clone(),
            PrincipalType::FederatedUser => format!("{account}:{session}"),
            PrincipalType::Anonymous => "anonymous".to_owned(),
            PrincipalType::Service => v["service"].as_str().unwrap_or("").to_owned(),
            PrincipalType::WebIdentityUser => "web-identity-subject".to_owned(),
        },
    };
    let tags = v["tags"]
        .as_object()
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    PrincipalInfo {
        kind,
        user_name: (kind == PrincipalType::User)
            .then(|| arn.rsplit('/').next().unwrap_or("").to_owned()),
        arn,
        account,
        role_arn,
        user_id,
        tags,
        service: v["service"].as_str().map(str::to_owned),
        has_boundary,
    }
}

fn compile(doc: &Value, ty: PolicyType, id: String) -> Result<Arc<CompiledPolicy>, String> {
    let parsed = parse_policy_value(doc, ty);
    // Documents that IAM would refuse to store only because of their Version are still evaluated
    // (the corpus checks that variables are then literal); a statement with a partial-wildcard
    // principal (refused by AWS) is left out, so it grants nothing.
    let blocking: Vec<String> = parsed
        .findings
        .iter()
        .filter(|f| {
            f.severity == Severity::Error
                && f.path != "$.Version"
                && !f.message.contains("has a wildcard; only")
        })
        .map(|f| f.to_string())
        .collect();
    if !blocking.is_empty() {
        return Err(format!("{id}: {}", blocking.join("; ")));
    }
    let document = parsed.lenient.ok_or_else(|| format!("{id}: no document"))?;
    Ok(Arc::new(CompiledPolicy::compile(id, ty, &document)))
}

fn set_of(list: &Value, ty: PolicyType, name: &str) -> Result<Option<PolicySet>, String> {
    match list {
        Value::Null => Ok(None),
        Value::Array(docs) => {
            let policies = docs
                .iter()
                .enumerate()
                .map(|(i, d)| compile(d, ty, format!("{name}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(PolicySet::new(policies)))
        }
        doc @ Value::Object(_) => Ok(Some(PolicySet::new(vec![compile(
            doc,
            ty,
            name.to_owned(),
        )?]))),
        other => Err(format!("{name}: unexpected {other}")),
    }
}

fn levels(v: &Value, ty: PolicyType, name: &str) -> Result<Vec<PolicySet>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(levels) => levels
            .iter()
            .enumerate()
            .map(|(i, l)| set_of(l, ty, &format!("{name}[{i}]")).map(Option::unwrap_or_default))
            .collect(),
        other => Err(format!("{name}: unexpected {other}")),
    }
}

fn run_case(case: &Value) -> Result<Outcome, String> {
    let req = &case["request"];
    let boundary = set_of(
        &case["permissions_boundary"],
        PolicyType::Boundary,
        "permissions_boundary",
    )?;
    let principal = principal_from(&req["principal"], boundary.is_some());
    let identity = set_of(
        &case["identity_policies"],
        PolicyType::Identity,
        "identity_policies",
    )?;
    let session = set_of(
        &case["session_policy"],
        PolicyType::Session,
        "session_policy",
    )?;
    let resource = set_of(
        &case["resource_policy"],
        PolicyType::Resource,
        "resource_policy",
    )?;
    let scps = levels(&case["scps"], PolicyType::Scp, "scps")?;
    let rcps = levels(&case["rcps"], PolicyType::Rcp, "rcps")?;
    let action = req["action"].as_str().ok_or("request.action missing")?;
    let resource_arn = req["resource"].as_str().unwrap_or("*");
    let mut ctx = RequestContext::new(&principal, action, resource_arn);
    if let Some(acct) = req["resource_account"].as_str() {
        ctx = ctx.with_resource_account(acct);
    }
    if let Some(map) = req["context"].as_object() {
        for (k, v) in map {
            match v {
                Value::Array(items) => ctx.set_multi(
                    k.clone(),
                    items.iter().map(|i| Cow::Owned(scalar(i))).collect(),
                ),
                other => ctx.set(k.clone(), scalar(other)),
            }
        }
    }
    let management = case["management_account"].as_bool().unwrap_or(false);
    let resource_account_is_principals = ctx.resource_account == principal.account;
    let policies = Policies {
        identity: identity.as_ref(),
        boundary: boundary.as_ref(),
        session: session.as_ref(),
        resource: resource.as_ref(),
        scps: &scps,
        rcps: &rcps,
        principal_in_management_account: management,
        resource_in_management_account: management && resource_account_is_principals,
    };
    Ok(evaluate(&policies, &ctx).outcome)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn conformance_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    for file in files {
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for case in json["cases"].as_array().unwrap() {
            total += 1;
            let name = case["name"].as_str().unwrap_or("?");
            assert!(
                case["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("https://")),
                "{name}: every case cites its source"
            );
            let expected = case["expected"].as_str().unwrap();
            match run_case(case) {
                Ok(got) if got.as_str() == expected => {}
                Ok(got) => failures.push(format!(
                    "{}: {name}: expected {expected}, got {}",
                    file.file_name().unwrap().to_string_lossy(),
                    got.as_str()
                )),
                Err(e) => failures.push(format!(
                    "{}: {name}: {e}",
                    file.file_name().unwrap().to_string_lossy()
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 200, "the corpus has only {total} cases");
}

// ---------------------------------------------------------------------------------------------
// Properties.

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:*",
    "s3:Get*",
    "ec2:RunInstances",
    "*",
    "ec2:*Instances",
];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::bucket/key",
    "arn:aws:s3:::other/*",
    "arn:aws:ec2:*:*:instance/*",
];
const CONDITIONS: &[&str] = &[
    "",
    r#"{"StringEquals": {"aws:PrincipalTag/team": "blue"}}"#,
    r#"{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#,
    r#"{"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#,
    r#"{"Bool": {"aws:SecureTransport": "true"}}"#,
    r#"{"ForAnyValue:StringLike": {"aws:TagKeys": ["team*"]}}"#,
    r#"{"StringNotEqualsIfExists": {"s3:prefix": "home/"}}"#,
];

#[derive(Debug, Clone)]
struct Stmt {
    deny: bool,
    not_action: bool,
    action: usize,
    resource: usize,
    condition: usize,
}

impl Stmt {
    fn json(&self) -> String {
        let action_key = if self.not_action {
            "NotAction"
        } else {
            "Action"
        };
        let cond = CONDITIONS[self.condition];
        let cond = if cond.is_empty() {
            String::new()
        } else {
            format!(r#","Condition":{cond}"#)
        };
        format!(
            r#"{{"Effect":"{}","{action_key}":"{}","Resource":"{}"{cond}}}"#,
            if self.deny { "Deny" } else { "Allow" },
            ACTIONS[self.action],
            RESOURCES[self.resource]
        )
    }
}

fn stmt() -> impl Strategy<Value = Stmt> {
    (
        any::<bool>(),
        prop::bool::weighted(0.1),
        0..ACTIONS.len(),
        0..RESOURCES.len(),
        0..CONDITIONS.len(),
    )
        .prop_map(|(deny, not_action, action, resource, condition)| Stmt {
            deny,
            not_action,
            action,
            resource,
            condition,
        })
}

fn policies_of(groups: &[Vec<Stmt>]) -> PolicySet {
    let compiled = groups
        .iter()
        .enumerate()
        .map(|(i, stmts)| {
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                stmts.iter().map(Stmt::json).collect::<Vec<_>>().join(",")
            );
            Arc::new(
                CompiledPolicy::from_json(format!("p{i}"), PolicyType::Identity, &doc).unwrap(),
            )
        })
        .collect();
    PolicySet::new(compiled)
}

#[derive(Debug, Clone)]
struct Req {
    action: &'static str,
    resource: &'static str,
    team: Option<&'static str>,
    ip: Option<&'static str>,
    tls: bool,
    tag_keys: Option<Vec<&'static str>>,
}

fn req() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec![
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "ec2:RunInstances",
            "iam:CreateUser",
        ]),
        prop::sample::select(vec![
            "arn:aws:s3:::bucket/key",
            "arn:aws:s3:::other/x",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
            "*",
        ]),
        prop::option::of(prop::sample::select(vec!["blue", "red"])),
        prop::option::of(prop::sample::select(vec!["203.0.113.9", "198.51.100.1"])),
        any::<bool>(),
        prop::option::of(prop::collection::vec(
            prop::sample::select(vec!["team", "teamx", "cost"]),
            0..3,
        )),
    )
        .prop_map(|(action, resource, team, ip, tls, tag_keys)| Req {
            action,
            resource,
            team,
            ip,
            tls,
            tag_keys,
        })
}

fn decide(set: &PolicySet, r: &Req) -> Outcome {
    let mut principal = PrincipalInfo::user("arn:aws:iam::111122223333:user/alice", "AIDAEXAMPLE");
    if let Some(t) = r.team {
        principal.tags.push(("team".into(), t.into()));
    }
    let mut ctx = RequestContext::new(&principal, r.action, r.resource);
    if let Some(ip) = r.ip {
        ctx.set("aws:SourceIp", ip);
    }
    ctx.set("aws:SecureTransport", if r.tls { "true" } else { "false" });
    if let Some(keys) = &r.tag_keys {
        ctx.set_multi(
            "aws:TagKeys",
            keys.iter().map(|k| Cow::Borrowed(*k)).collect(),
        );
    }
    evaluate(
        &Policies {
            identity: Some(set),
            ..Policies::default()
        },
        &ctx,
    )
    .outcome
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn adding_a_deny_never_turns_a_deny_into_an_allow(groups in prop::collection::vec(prop::collection::vec(stmt(), 1..5), 1..4), extra in stmt(), r in req()) {
        let before = decide(&policies_of(&groups), &r);
        let mut more = groups.clone();
        more.push(vec![Stmt { deny: true, ..extra }]);
        let after = decide(&policies_of(&more), &r);
        if before != Outcome::Allowed {
            prop_assert_ne!(after, Outcome::Allowed);
        }
        if after == Outcome::Allowed {
            prop_assert_eq!(before, Outcome::Allowed);
        }
    }

    #[test]
    fn statement_and_policy_order_never_change_a_decision(groups in prop::collection::vec(prop::collection::vec(stmt(), 1..5), 1..4), r in req(), seed in any::<u64>()) {
        let base = decide(&policies_of(&groups), &r);
        let mut shuffled = groups.clone();
        shuffled.reverse();
        for (i, g) in shuffled.iter_mut().enumerate() {
            let k = (seed as usize).wrapping_add(i) % g.len();
            g.rotate_left(k);
            g.reverse();
        }
        prop_assert_eq!(decide(&policies_of(&shuffled), &r), base);
    }

    #[test]
    fn unconditional_allow_all_allows_everything(r in req()) {
        let set = policies_of(&[vec![Stmt { deny: false, not_action: false, action: 5, resource: 0, condition: 0 }]]);
        prop_assert_eq!(decide(&set, &r), Outcome::Allowed);
    }
}
