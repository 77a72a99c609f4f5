//! `tollgate simulate`, run as a real binary: `simulate-custom-policy` inputs (the AWS CLI
//! skeleton, the AWS CLI reference's examples, boundaries, SCPs, resource policies, malformed
//! input) and the `--config --principal` mode against a temporary configuration.
//!
//! Cases in `tests/fixtures/simulate/` double as examples in `docs/simulate.md`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/simulate")
        .join(name)
}

/// Runs `tollgate simulate ARGS` with optional stdin: (exit code, stdout, stderr).
fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("simulate")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tollgate");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "tollgate panicked: {stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// Simulates a case given as JSON (through stdin) and returns the parsed response.
fn simulate(case: &Value) -> Value {
    let (code, stdout, stderr) = run(&["--cli-input-json", "-"], Some(&case.to_string()));
    assert_eq!(code, 0, "stderr: {stderr}\nstdout: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn simulate_fixture(name: &str) -> Value {
    let arg = format!("file://{}", fixture(name).display());
    let (code, stdout, stderr) = run(&["--cli-input-json", &arg], None);
    assert_eq!(code, 0, "stderr: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// Simulates input that must be refused: returns stderr.
fn refused(input: &str) -> String {
    let (code, stdout, stderr) = run(&["--cli-input-json", "-"], Some(input));
    assert_eq!(
        code, 1,
        "expected exit 1 for {input}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.is_empty(),
        "nothing on stdout when refused: {stdout}"
    );
    stderr
}

fn results(response: &Value) -> &Vec<Value> {
    response["EvaluationResults"].as_array().unwrap()
}

fn result<'a>(response: &'a Value, action: &str) -> &'a Value {
    results(response)
        .iter()
        .find(|r| r["EvalActionName"] == action)
        .unwrap_or_else(|| panic!("no result for {action}: {response:#}"))
}

fn ids(result: &Value) -> Vec<&str> {
    result["MatchedStatements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["SourcePolicyId"].as_str().unwrap())
        .collect()
}

fn pos(m: &Value, which: &str) -> (u64, u64) {
    (
        m[which]["Line"].as_u64().unwrap(),
        m[which]["Column"].as_u64().unwrap(),
    )
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

#[test]
fn the_aws_cli_skeleton_round_trips() {
    let text = std::fs::read_to_string(fixture("skeleton.json")).unwrap();
    for source in [
        format!("file://{}", fixture("skeleton.json").display()),
        fixture("skeleton.json").display().to_string(),
        text.clone(),
    ] {
        let (code, stdout, stderr) = run(&["--cli-input-json", &source], None);
        assert_eq!(code, 0, "{stderr}");
        let v: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["EvaluationResults"], json!([]));
        assert_eq!(v["IsTruncated"], json!(false));
    }
    // The AWS CLI picks ContextKeyType at random among the enum values: every one must pass.
    for ty in [
        "string",
        "stringList",
        "numeric",
        "numericList",
        "boolean",
        "booleanList",
        "ip",
        "ipList",
        "binary",
        "binaryList",
        "date",
        "dateList",
    ] {
        let input = text.replace(
            r#""ContextKeyType": "string""#,
            &format!(r#""ContextKeyType": "{ty}""#),
        );
        let (code, stdout, stderr) = run(&["--cli-input-json", "-"], Some(&input));
        assert_eq!(code, 0, "{ty}: {stderr}");
        assert!(stdout.contains("\"EvaluationResults\": []"), "{stdout}");
    }
}

#[test]
fn aws_cli_reference_example_allowed_with_positions() {
    // `aws iam simulate-custom-policy` example of the AWS CLI reference: the same policy,
    // action and context give the same decision and statement positions (1:38 to 1:167).
    let v = simulate_fixture("dynamodb-after-date.json");
    let r = result(&v, "dynamodb:CreateBackup");
    assert_eq!(r["EvalResourceName"], "*");
    assert_eq!(r["EvalDecision"], "allowed");
    assert_eq!(r["MissingContextValues"], json!([]));
    let m = &r["MatchedStatements"][0];
    assert_eq!(m["SourcePolicyId"], "PolicyInputList.1");
    assert_eq!(m["SourcePolicyType"], "IAM Policy");
    assert_eq!(pos(m, "StartPosition"), (1, 38));
    assert_eq!(pos(m, "EndPosition"), (1, 167));
    assert!(r.get("ResourceSpecificResults").is_none());
    assert!(r.get("EvalDecisionDetails").is_none());
}

#[test]
fn aws_cli_reference_example_denied_before_the_date() {
    let v = simulate_fixture("dynamodb-before-date.json");
    let r = result(&v, "dynamodb:CreateBackup");
    assert_eq!(r["EvalDecision"], "implicitDeny");
    assert_eq!(r["MatchedStatements"], json!([]));
    assert_eq!(r["MissingContextValues"], json!([]));
}

#[test]
fn missing_context_values_are_reported() {
    let policy = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}}"#;
    let v = simulate(&json!({
        "PolicyInputList": [policy],
        "ActionNames": ["dynamodb:CreateBackup", "s3:GetObject"],
        "ContextEntries": [
            {"ContextKeyName": "aws:sourceip", "ContextKeyValues": ["203.0.113.7"], "ContextKeyType": "ip"}
        ]
    }));
    let r = result(&v, "dynamodb:CreateBackup");
    assert_eq!(r["EvalDecision"], "implicitDeny");
    // As written in the policy; aws:SourceIp was supplied (keys are case-insensitive).
    assert_eq!(r["MissingContextValues"], json!(["aws:CurrentTime"]));
    // The statement does not apply to s3:GetObject: nothing is missing for it.
    assert_eq!(
        result(&v, "s3:GetObject")["MissingContextValues"],
        json!([])
    );
}

#[test]
fn explicit_deny_with_positions_in_multiline_policies() {
    let v = simulate_fixture("explicit-deny.json");
    let get = result(&v, "s3:GetObject");
    assert_eq!(get["EvalDecision"], "allowed");
    assert_eq!(ids(get), ["PolicyInputList.1"]);
    let m = &get["MatchedStatements"][0];
    assert_eq!(pos(m, "StartPosition"), (4, 6));
    assert_eq!(pos(m, "EndPosition"), (9, 6));

    let del = result(&v, "s3:DeleteObject");
    assert_eq!(del["EvalDecision"], "explicitDeny");
    assert_eq!(ids(del), ["PolicyInputList.2"]);
    let m = &del["MatchedStatements"][0];
    assert_eq!(pos(m, "StartPosition"), (4, 6));
    assert_eq!(pos(m, "EndPosition"), (10, 6));
    // With a resource ARN, AWS reports missing keys per resource and an empty details map.
    assert_eq!(del["MissingContextValues"], json!([]));
    assert_eq!(del["EvalDecisionDetails"], json!({}));
    let specific = &del["ResourceSpecificResults"][0];
    assert_eq!(
        specific["EvalResourceName"],
        "arn:aws:s3:::reports/2024/q1.csv"
    );
    assert_eq!(specific["EvalResourceDecision"], "explicitDeny");
    assert_eq!(
        specific["MissingContextValues"],
        json!(["aws:MultiFactorAuthPresent"])
    );

    // With MFA present the deny no longer applies.
    let mut case: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("explicit-deny.json")).unwrap())
            .unwrap();
    case["ContextEntries"] = json!([{
        "ContextKeyName": "aws:MultiFactorAuthPresent",
        "ContextKeyValues": ["true"],
        "ContextKeyType": "boolean"
    }]);
    let v = simulate(&case);
    assert_eq!(result(&v, "s3:DeleteObject")["EvalDecision"], "allowed");
}

#[test]
fn permissions_boundary_limits_and_is_reported() {
    let v = simulate_fixture("boundary.json");
    let s3 = result(&v, "s3:ListBucket");
    assert_eq!(s3["EvalDecision"], "allowed");
    assert_eq!(
        s3["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"],
        true
    );
    assert_eq!(
        ids(s3),
        ["PolicyInputList.1", "PermissionsBoundaryPolicyInputList.1"]
    );
    assert_eq!(
        s3["MatchedStatements"][1]["SourcePolicyType"],
        "Permissions Boundary Policy"
    );
    let iam = result(&v, "iam:CreateUser");
    assert_eq!(iam["EvalDecision"], "implicitDeny");
    assert_eq!(
        iam["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"],
        false
    );
    assert!(iam.get("OrganizationsDecisionDetail").is_none());
}

#[test]
fn scp_levels_deny_and_report_organizations_detail() {
    let v = simulate_fixture("scp.json");
    let s3 = result(&v, "s3:GetObject");
    assert_eq!(s3["EvalDecision"], "allowed");
    assert_eq!(
        s3["OrganizationsDecisionDetail"]["AllowedByOrganizations"],
        true
    );

    let ec2 = result(&v, "ec2:RunInstances");
    assert_eq!(ec2["EvalDecision"], "explicitDeny");
    assert_eq!(
        ec2["OrganizationsDecisionDetail"]["AllowedByOrganizations"],
        false
    );
    assert_eq!(ids(ec2), ["ServiceControlPolicyInputList.2.2"]);
    assert_eq!(
        ec2["MatchedStatements"][0]["SourcePolicyType"],
        "Service Control Policy"
    );

    // The account level allows only s3 and ec2: implicit deny, by the organization.
    let ddb = result(&v, "dynamodb:GetItem");
    assert_eq!(ddb["EvalDecision"], "implicitDeny");
    assert_eq!(
        ddb["OrganizationsDecisionDetail"]["AllowedByOrganizations"],
        false
    );

    // SCPs do not apply to the management account.
    let mut case: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("scp.json")).unwrap()).unwrap();
    case["ManagementAccount"] = json!(true);
    let v = simulate(&case);
    for action in ["ec2:RunInstances", "dynamodb:GetItem"] {
        let r = result(&v, action);
        assert_eq!(r["EvalDecision"], "allowed", "{action}");
        assert_eq!(
            r["OrganizationsDecisionDetail"]["AllowedByOrganizations"],
            true
        );
    }
}

#[test]
fn rcps_govern_resources_of_their_services() {
    let deny_outside = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"aws:PrincipalOrgID":"o-abc123"}}}]}"#;
    let full = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
    let v = simulate(&json!({
        "PolicyInputList": [ALLOW_ALL],
        "ActionNames": ["s3:GetObject", "ec2:DescribeInstances"],
        "ResourceControlPolicyInputList": [[full, deny_outside]],
        "ContextEntries": [{"ContextKeyName": "aws:PrincipalOrgID", "ContextKeyValues": ["o-other"]}]
    }));
    let s3 = result(&v, "s3:GetObject");
    assert_eq!(s3["EvalDecision"], "explicitDeny");
    assert_eq!(ids(s3), ["ResourceControlPolicyInputList.1.2"]);
    assert_eq!(
        s3["OrganizationsDecisionDetail"]["AllowedByOrganizations"],
        false
    );
    // EC2 is not a service RCPs cover.
    let ec2 = result(&v, "ec2:DescribeInstances");
    assert_eq!(ec2["EvalDecision"], "allowed");
    assert_eq!(ids(ec2), ["PolicyInputList.1"]);
}

#[test]
fn cross_account_resource_policy() {
    let v = simulate_fixture("cross-account.json");
    let get = result(&v, "s3:GetObject");
    assert_eq!(get["EvalDecision"], "allowed");
    assert_eq!(ids(get), ["PolicyInputList.1", "ResourcePolicy"]);
    assert_eq!(
        get["MatchedStatements"][1]["SourcePolicyType"],
        "Resource Policy"
    );
    assert_eq!(pos(&get["MatchedStatements"][1], "StartPosition"), (4, 10));
    assert_eq!(
        get["EvalDecisionDetails"],
        json!({"IAM Policy": "allowed", "Resource Policy": "allowed"})
    );
    let put = result(&v, "s3:PutObject");
    assert_eq!(put["EvalDecision"], "implicitDeny");
    assert_eq!(
        put["EvalDecisionDetails"],
        json!({"IAM Policy": "allowed", "Resource Policy": "implicitDeny"})
    );
}

#[test]
fn role_sessions_match_role_principals_and_session_policies_limit_them() {
    let queue = "arn:aws:sqs:us-east-1:111122223333:jobs";
    let resource_policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/worker"},
            "Action": "sqs:SendMessage",
            "Resource": queue
        }]
    })
    .to_string();
    let mut case = json!({
        "PolicyInputList": [],
        "ResourcePolicy": resource_policy,
        "CallerArn": "arn:aws:sts::111122223333:assumed-role/worker/job-42",
        "ActionNames": ["sqs:SendMessage"],
        "ResourceArns": [queue]
    });
    // A role ARN in a same-account resource policy grants its sessions without identity policies.
    let v = simulate(&case);
    let r = result(&v, "sqs:SendMessage");
    assert_eq!(r["EvalDecision"], "allowed");
    assert_eq!(ids(r), ["ResourcePolicy"]);
    // …but a session policy still limits.
    case["SessionPolicyInputList"] = json!([
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:ReceiveMessage","Resource":"*"}]}"#
    ]);
    let v = simulate(&case);
    assert_eq!(
        result(&v, "sqs:SendMessage")["EvalDecision"],
        "implicitDeny"
    );
    // A federated user has only what its session policies grant (GetFederationToken).
    let mut federated = json!({
        "PolicyInputList": [ALLOW_ALL],
        "CallerArn": "arn:aws:sts::111122223333:federated-user/bob",
        "ActionNames": ["s3:GetObject"]
    });
    assert_eq!(
        result(&simulate(&federated), "s3:GetObject")["EvalDecision"],
        "implicitDeny"
    );
    federated["SessionPolicyInputList"] = json!([
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
    ]);
    let v = simulate(&federated);
    let r = result(&v, "s3:GetObject");
    assert_eq!(r["EvalDecision"], "allowed");
    assert_eq!(ids(r), ["PolicyInputList.1", "SessionPolicyInputList.1"]);
    // Principal tags of the caller reach conditions.
    let tagged = json!({
        "PolicyInputList": [r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"data"}}}]}"#],
        "CallerArn": "arn:aws:iam::111122223333:role/analytics/worker",
        "CallerTags": {"team": "data"},
        "ActionNames": ["s3:GetObject"]
    });
    assert_eq!(
        result(&simulate(&tagged), "s3:GetObject")["EvalDecision"],
        "allowed"
    );
}

#[test]
fn context_entry_types_and_pagination() {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]},"NumericLessThan":{"ec2:VolumeSize":"100"}}}]}"#;
    let case = json!({
        "PolicyInputList": [policy],
        "ActionNames": ["ec2:CreateVolume", "ec2:CreateTags", "ec2:DeleteVolume"],
        "ContextEntries": [
            {"ContextKeyName": "aws:TagKeys", "ContextKeyValues": ["team"], "ContextKeyType": "stringList"},
            {"ContextKeyName": "ec2:VolumeSize", "ContextKeyValues": ["50"], "ContextKeyType": "numeric"}
        ],
        "MaxItems": 2
    });
    let v = simulate(&case);
    assert_eq!(results(&v).len(), 2);
    assert_eq!(v["IsTruncated"], true);
    assert_eq!(results(&v)[0]["EvalDecision"], "allowed");
    let marker = v["Marker"].as_str().unwrap().to_owned();
    let mut next = case.clone();
    next["Marker"] = json!(marker);
    let v = simulate(&next);
    assert_eq!(results(&v).len(), 1);
    assert_eq!(results(&v)[0]["EvalActionName"], "ec2:DeleteVolume");
    assert_eq!(v["IsTruncated"], false);
    assert!(v.get("Marker").is_none());
}

#[test]
fn malformed_input_is_refused_with_the_field_named() {
    for (input, expected) in [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            r#"{"PolicyInputList": [], "ActionName": ["s3:GetObject"]}"#,
            "ActionName: unknown field",
        ),
        (
            r#"{"ActionNames": ["s3:GetObject"]}"#,
            "PolicyInputList: required",
        ),
        (r#"{"PolicyInputList": []}"#, "ActionNames: required"),
        (
            r#"{"PolicyInputList": "x", "ActionNames": ["s3:GetObject"]}"#,
            "PolicyInputList: expected an array",
        ),
        (
            r#"{"PolicyInputList": [1], "ActionNames": ["s3:GetObject"]}"#,
            "PolicyInputList[0]",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["GetObject"]}"#,
            "ActionNames[0]",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "ResourceArns": ["bucket"]}"#,
            "ResourceArns[0]",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "CallerArn": "arn:aws:s3:::bucket"}"#,
            "CallerArn",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "ResourceOwner": "acme"}"#,
            "ResourceOwner",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "MaxItems": "ten"}"#,
            "MaxItems",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "Marker": "zz"}"#,
            "Marker",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "ContextEntries": [{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["nope"], "ContextKeyType": "ip"}]}"#,
            "ContextEntries[0].ContextKeyValues[0]",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "ContextEntries": [{"ContextKeyName": "k", "ContextKeyValues": ["1"], "ContextKeyType": "integer"}]}"#,
            "ContextEntries[0].ContextKeyType",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "ContextEntries": [{"ContextKeyName": "k", "ContextKeyValues": ["a", "b"], "ContextKeyType": "string"}]}"#,
            "use `stringList`",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "ContextEntries": [{"ContextKeyName": "k", "Value": "x"}]}"#,
            "ContextEntries[0].Value",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "ServiceControlPolicyInputList": ["{}"]}"#,
            "ServiceControlPolicyInputList[0]",
        ),
        (
            r#"{"PolicyInputList": [], "ActionNames": ["s3:GetObject"], "ManagementAccount": "yes"}"#,
            "ManagementAccount",
        ),
    ] {
        let stderr = refused(input);
        assert!(
            stderr.contains(expected),
            "{input}: expected `{expected}` in: {stderr}"
        );
    }
    let (code, _, stderr) = run(&["--cli-input-json", "file:///nonexistent/case.json"], None);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/case.json"), "{stderr}");
}

#[test]
fn malformed_policies_are_refused_with_every_finding() {
    let input = json!({
        "PolicyInputList": [
            r#"{"Version":"2012-10-17","Statement":[{"Action":"s3:*","Resource":"*"}]}"#,
            "{\"Version\": \"2012-10-17\", \"Statement\": [",
        ],
        "PermissionsBoundaryPolicyInputList": [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}]}"#
        ],
        "ActionNames": ["s3:GetObject"]
    });
    let stderr = refused(&input.to_string());
    assert!(stderr.starts_with("MalformedPolicyDocument"), "{stderr}");
    for expected in [
        "PolicyInputList.1: error: $.Statement[0]",
        "PolicyInputList.2: error: $: policy is not valid JSON",
        "PermissionsBoundaryPolicyInputList.1: error:",
    ] {
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in: {stderr}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// --config / --principal

const KEY_ID: &str = "AKIAALICE00000000001";
const SECRET: &str = "aliceSecretKey/EXAMPLE+000000000000000000";

/// A configuration with a managed policy (via a group), a user and a role with an inline policy;
/// secrets in a 0600 file, as `tollgate` requires.
fn write_config(dir: &Path) -> String {
    let config = format!(
        r#"secrets_file = "secrets.toml"

[auth]
regions = ["us-east-1"]
services = ["execute-api", "s3"]
unsigned_payload_services = ["s3"]

[listeners]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"

[upstream]
url = "builtin:echo"

[[accounts]]
id = "123456789012"
name = "test"

[[policies]]
name = "ReportsReadWrite"
document = '''
{{
  "Version": "2012-10-17",
  "Statement": [
    {{
      "Sid": "ReadWriteReports",
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      "Resource": "arn:aws:s3:::reports/*"
    }},
    {{
      "Sid": "OfficeOnlyDeletes",
      "Effect": "Deny",
      "Action": "s3:DeleteObject",
      "Resource": "*",
      "Condition": {{"NotIpAddress": {{"aws:SourceIp": "203.0.113.0/24"}}}}
    }}
  ]
}}
'''

[[groups]]
name = "analysts"
policies = ["ReportsReadWrite"]

[[users]]
name = "alice"
groups = ["analysts"]
tags = {{ team = "reports" }}

[[users.access_keys]]
id = "{KEY_ID}"

[[roles]]
name = "deployer"
trust_policy = "trust.json"
inline_policies = {{ Deploy = "deploy.json" }}
tags = {{ team = "platform" }}
"#
    );
    std::fs::write(dir.join("tollgate.toml"), config).unwrap();
    std::fs::write(
        dir.join("trust.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("deploy.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Deploy","Effect":"Allow","Action":"execute-api:Invoke","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"platform"}}}]}"#,
    )
    .unwrap();
    let secrets = dir.join("secrets.toml");
    crate::support::write_private(
        &secrets,
        &format!("[access_keys]\n{KEY_ID} = \"{SECRET}\"\n"),
    );
    dir.join("tollgate.toml").display().to_string()
}

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

#[test]
fn principal_mode_explains_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (code, stdout, stderr) = run(
        &[
            "--config",
            &config,
            "--principal",
            ALICE,
            "--action",
            "s3:GetObject",
            "--action",
            "s3:DeleteObject",
            "--action",
            "iam:CreateUser",
            "--resource",
            "arn:aws:s3:::reports/q1.csv",
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("principal: arn:aws:iam::123456789012:user/alice (IAM user)"),
        "{stdout}"
    );
    let block = |action: &str| -> String {
        let start = stdout
            .find(&format!("{action} on arn:aws:s3:::reports/q1.csv"))
            .unwrap_or_else(|| panic!("no block for {action}: {stdout}"));
        let rest = &stdout[start..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_owned()
    };
    let get = block("s3:GetObject");
    assert!(get.contains("decision: allowed"), "{get}");
    assert!(
        get.contains(r#"allowed by: arn:aws:iam::123456789012:policy/ReportsReadWrite, $.Statement[0] (Sid "ReadWriteReports")"#),
        "{get}"
    );
    let del = block("s3:DeleteObject");
    assert!(del.contains("decision: explicitDeny"), "{del}");
    assert!(
        del.contains(r#"$.Statement[1] (Sid "OfficeOnlyDeletes")"#),
        "{del}"
    );
    assert!(del.contains("missing context keys: aws:SourceIp"), "{del}");
    let iam = block("iam:CreateUser");
    assert!(iam.contains("decision: implicitDeny"), "{iam}");
    assert!(iam.contains("no identity-based policy allows it"), "{iam}");
    assert!(iam.contains("IAM Policy stage"), "{iam}");

    // Context from the command line: deletes from the office are allowed.
    let (code, stdout, _) = run(
        &[
            "--config",
            &config,
            "--principal",
            ALICE,
            "--action",
            "s3:DeleteObject",
            "--resource",
            "arn:aws:s3:::reports/q1.csv",
            "--context",
            "aws:SourceIp=203.0.113.9",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("decision: allowed"), "{stdout}");
    assert!(stdout.contains("missing context keys: none"), "{stdout}");
}

#[test]
fn principal_mode_json_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (code, stdout, stderr) = run(
        &[
            "--config",
            &config,
            "--principal",
            ALICE,
            "--action",
            "s3:DeleteObject",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let r = result(&v, "s3:DeleteObject");
    assert_eq!(r["EvalResourceName"], "*");
    assert_eq!(r["EvalDecision"], "explicitDeny");
    assert_eq!(ids(r), ["ReportsReadWrite"]);
    assert_eq!(
        r["MatchedStatements"][0]["SourcePolicyType"],
        "user-managed"
    );
    assert!(r["MatchedStatements"][0]["StartPosition"]["Line"]
        .as_u64()
        .is_some());
    assert_eq!(r["MissingContextValues"], json!(["aws:SourceIp"]));
    assert_eq!(v["IsTruncated"], false);

    // A role is simulated as one of its sessions: its tags are principal tags.
    for principal in [
        "arn:aws:iam::123456789012:role/deployer",
        "arn:aws:sts::123456789012:assumed-role/deployer/release-7",
    ] {
        let (code, stdout, stderr) = run(
            &[
                "--config",
                &config,
                "--principal",
                principal,
                "--action",
                "execute-api:Invoke",
                "--resource",
                "arn:aws:execute-api:us-east-1:123456789012:api/prod/POST/deployments/1",
                "--json",
            ],
            None,
        );
        assert_eq!(code, 0, "{stderr}");
        let v: Value = serde_json::from_str(&stdout).unwrap();
        let r = result(&v, "execute-api:Invoke");
        assert_eq!(r["EvalDecision"], "allowed", "{principal}");
        assert_eq!(ids(r), ["Deploy"]);
        assert_eq!(r["MatchedStatements"][0]["SourcePolicyType"], "role");
    }
}

#[test]
fn principal_mode_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--principal",
                "arn:aws:iam::123456789012:user/bob",
                "--action",
                "s3:GetObject",
            ],
            "no user or role",
        ),
        (&["--principal", ALICE], "--action is required"),
        (&["--principal", ALICE, "--action", "GetObject"], "--action"),
        (
            &[
                "--principal",
                ALICE,
                "--action",
                "s3:GetObject",
                "--context",
                "novalue",
            ],
            "--context `novalue`",
        ),
        (
            &[
                "--principal",
                ALICE,
                "--action",
                "s3:GetObject",
                "--resource",
                "bucket",
            ],
            "--resource",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = run(&all, None);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected `{expected}` in {stderr}"
        );
    }
    // A configuration with problems is reported as `tollgate check` would.
    let (code, _, stderr) = run(
        &[
            "--config",
            "/nonexistent/tollgate.toml",
            "--principal",
            ALICE,
            "--action",
            "s3:GetObject",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/tollgate.toml"), "{stderr}");
}
