//! `tollgate import`, run as a real binary on `tests/fixtures/import/`:
//!
//! - `authorization-details.json`: hand-written `aws iam get-account-authorization-details`
//!   output (AWS CLI v2 shape) for account 111122223333: users `alice` (group `analysts`, an
//!   inline deny, tags) and `bob` (group `developers`, an inline policy with `${aws:username}`,
//!   the AWS managed `AmazonS3ReadOnlyAccess` that the output does not include, a permissions
//!   boundary); roles `pipeline-worker` (an ECS service role) and `analytics-admin` (assumed by
//!   alice with MFA); customer managed policies with several versions, where the default is not
//!   always the newest;
//! - `scp-protect-baseline.json`, `rcp-secure-transport.json`: `aws organizations
//!   describe-policy` outputs;
//! - `organization.json`: an organization layout (root, two nested OUs, two accounts).
//!
//! The result is checked with `tollgate check` and queried with `tollgate simulate --config`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");
const ACCOUNT: &str = "111122223333";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// Runs `tollgate ARGS` (optionally with stdin): (exit code, stdout, stderr).
fn tollgate(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
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

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `tollgate import --authorization-details DETAILS EXTRA… --out OUT`, which must succeed:
/// (stdout, stderr).
fn import_ok(details: &Path, extra: &[&str], out: &Path) -> (String, String) {
    let mut args = vec![
        "import",
        "--authorization-details",
        path_str(details),
        "--out",
        path_str(out),
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = tollgate(&args, None);
    assert_eq!(code, 0, "import failed\nstdout: {stdout}\nstderr: {stderr}");
    (stdout, stderr)
}

/// Imports the fixtures with both organization policies and the layout.
fn import_full(out: &Path) -> (String, String) {
    let scp = fixture("scp-protect-baseline.json");
    let rcp = fixture("rcp-secure-transport.json");
    let org = fixture("organization.json");
    import_ok(
        &fixture("authorization-details.json"),
        &[
            "--scp",
            path_str(&scp),
            "--scp",
            path_str(&rcp),
            "--organization",
            path_str(&org),
        ],
        out,
    )
}

/// Writes `value` as JSON into `dir/name` and returns the path.
fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

fn check(config: &Path) -> (i32, String, String) {
    tollgate(&["check", "--config", path_str(config)], None)
}

/// `tollgate simulate --config … --json` for one action on one resource: the result.
fn simulate(config: &Path, principal: &str, action: &str, resource: &str) -> Value {
    let args = [
        "simulate",
        "--config",
        path_str(config),
        "--principal",
        principal,
        "--action",
        action,
        "--resource",
        resource,
        "--json",
    ];
    let (code, stdout, stderr) = tollgate(&args, None);
    assert_eq!(code, 0, "simulate failed: {stderr}");
    let response: Value = serde_json::from_str(&stdout).unwrap();
    let results = response["EvaluationResults"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{stdout}");
    results[0].clone()
}

/// One expected decision: (principal, action, resource, decision, deciding policy and type).
type SimCase<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Option<(&'a str, &'a str)>,
);

fn user(path_and_name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user{path_and_name}")
}

fn role(path_and_name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role{path_and_name}")
}

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect()
}

#[test]
fn imported_account_passes_check_and_simulates_as_in_aws() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    let (stdout, stderr) = import_full(&out);
    assert!(
        stdout.contains(
            "imported account 111122223333 (analytics-prod): 2 users, 2 groups, 2 roles, 3 \
             managed policies, 6 inline policies, 2 organization policies"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("tollgate check: ok"), "{stdout}");
    // Exactly the two expected warnings: the AWS managed policy and the boundary.
    let w = warnings(&stderr);
    assert_eq!(w.len(), 2, "{stderr}");
    assert!(
        w[0].contains("user `bob`: AWS managed policy `arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess` skipped"),
        "{stderr}"
    );
    assert!(
        w[1].contains("user `bob`: permissions boundary `arn:aws:iam::111122223333:policy/boundaries/DeveloperBoundary` not imported"),
        "{stderr}"
    );

    let config = out.join("tollgate.toml");
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, 0, "check failed: {stderr}");
    assert!(
        stdout.contains("ok (2 accounts, 2 users, 0 access keys, 2 roles, 3 policies)"),
        "{stdout}"
    );
    assert!(!stdout.contains("warning"), "{stdout}");

    let alice = user("/analytics/alice");
    let bob = user("/engineering/bob");
    let worker = role("/service-role/pipeline-worker");
    let admin = role("/analytics-admin");
    let queue = "arn:aws:sqs:us-east-1:111122223333:pipeline-events";
    // (principal, action, resource, decision, deciding policy and its type)
    #[rustfmt::skip]
    let cases: [SimCase<'_>; 20] = [
        // Through the group's managed policy (its default version).
        (&alice, "s3:GetObject", "arn:aws:s3:::acme-reports/2024/q1.csv", "allowed", Some(("ReportsReadOnly", "user-managed"))),
        (&alice, "s3:ListBucket", "arn:aws:s3:::acme-reports", "allowed", Some(("ReportsReadOnly", "user-managed"))),
        // The user's inline Deny wins over the group's Allow.
        (&alice, "s3:GetObject", "arn:aws:s3:::acme-reports/confidential/salaries.csv", "explicitDeny", Some(("DenyConfidentialReports", "user"))),
        // v1 of ReportsReadOnly allowed s3:*, but v2 is the default.
        (&alice, "s3:PutObject", "arn:aws:s3:::acme-reports/2024/q1.csv", "implicitDeny", None),
        // The group's inline policy.
        (&alice, "athena:StartQueryExecution", "arn:aws:athena:us-east-1:111122223333:workgroup/analytics", "allowed", Some(("AthenaQueries", "group"))),
        (&alice, "sqs:SendMessage", queue, "implicitDeny", None),
        (&bob, "s3:PutObject", "arn:aws:s3:::acme-pipeline-staging/batch/001.parquet", "allowed", Some(("DataPipelineWrite", "user-managed"))),
        // Only v3 (newer, not the default) of DataPipelineWrite grants DynamoDB.
        (&bob, "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:111122223333:table/pipeline-state", "implicitDeny", None),
        // AmazonS3ReadOnlyAccess was not in the input, so it was skipped.
        (&bob, "s3:GetObject", "arn:aws:s3:::acme-reports/2024/q1.csv", "implicitDeny", None),
        (&bob, "sqs:ReceiveMessage", queue, "allowed", Some(("PipelineQueueRead", "group"))),
        // ${aws:username} in the user's inline policy.
        (&bob, "s3:DeleteObject", "arn:aws:s3:::acme-pipeline-staging/home/bob/tmp.csv", "allowed", Some(("HomePrefix", "user"))),
        (&bob, "s3:DeleteObject", "arn:aws:s3:::acme-pipeline-staging/home/alice/tmp.csv", "implicitDeny", None),
        (&bob, "iam:CreateUser", "*", "implicitDeny", None),
        // The service role: managed and inline policies.
        (&worker, "sqs:SendMessage", queue, "allowed", Some(("DataPipelineWrite", "user-managed"))),
        (&worker, "ssm:GetParameters", "arn:aws:ssm:us-east-1:111122223333:parameter/pipeline/db-url", "allowed", Some(("ReadPipelineConfig", "role"))),
        (&worker, "ssm:PutParameter", "arn:aws:ssm:us-east-1:111122223333:parameter/pipeline/db-url", "implicitDeny", None),
        (&worker, "s3:GetObject", "arn:aws:s3:::acme-reports/2024/q1.csv", "implicitDeny", None),
        (&admin, "s3:PutObject", "arn:aws:s3:::acme-reports/2024/q1.csv", "allowed", Some(("ManageReports", "role"))),
        (&admin, "s3:DeleteBucket", "arn:aws:s3:::acme-reports", "explicitDeny", Some(("ManageReports", "role"))),
        // A session of the role.
        ("arn:aws:sts::111122223333:assumed-role/analytics-admin/alice", "s3:DeleteObject", "arn:aws:s3:::acme-reports/2024/q1.csv", "allowed", Some(("ManageReports", "role"))),
    ];
    for (principal, action, resource, decision, by) in &cases {
        let r = simulate(&config, principal, action, resource);
        let what = format!("{principal} {action} {resource}: {r:#}");
        assert_eq!(r["EvalDecision"], *decision, "{what}");
        if let Some((id, ty)) = by {
            let matched = r["MatchedStatements"].as_array().unwrap();
            assert!(
                matched
                    .iter()
                    .any(|m| m["SourcePolicyId"] == *id && m["SourcePolicyType"] == *ty),
                "expected a statement of {id} ({ty}): {what}"
            );
        }
    }
}

#[test]
fn generated_configuration_mirrors_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    import_full(&out);
    let text = std::fs::read_to_string(out.join("tollgate.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    let details = fixture_json("authorization-details.json");

    // Users: ids, path, groups, inline policies and tags as in AWS; no access keys.
    let users = config["users"].as_array().unwrap();
    let alice = &users[0];
    assert_eq!(alice["name"].as_str(), Some("alice"));
    assert_eq!(alice["account"].as_str(), Some(ACCOUNT));
    assert_eq!(alice["path"].as_str(), Some("/analytics/"));
    assert_eq!(alice["unique_id"].as_str(), Some("AIDAYVKZ2M4QXB7HTR3EA"));
    assert_eq!(alice["groups"].as_array().unwrap().len(), 1);
    assert_eq!(alice["tags"]["team"].as_str(), Some("analytics"));
    assert_eq!(alice["tags"]["cost-center"].as_str(), Some("4711"));
    assert!(alice.get("access_keys").is_none());
    let bob = &users[1];
    assert_eq!(bob["unique_id"].as_str(), Some("AIDAYVKZ2M4QL6PWNC8UF"));
    // The AWS managed policy is skipped, and the boundary is a comment.
    assert!(bob.get("policies").is_none(), "{text}");
    assert!(text.contains(
        "# Not imported: permissions boundary arn:aws:iam::111122223333:policy/boundaries/DeveloperBoundary"
    ));
    assert_eq!(text.matches("# [[users.access_keys]]").count(), 2, "{text}");
    assert!(
        text.contains("# warning: user `bob`: AWS managed policy"),
        "{text}"
    );

    // Groups and roles.
    let groups = config["groups"].as_array().unwrap();
    assert_eq!(
        groups[0]["unique_id"].as_str(),
        Some("AGPAYVKZ2M4QSJ3HD7K2N")
    );
    assert_eq!(groups[0]["policies"][0].as_str(), Some("ReportsReadOnly"));
    let roles = config["roles"].as_array().unwrap();
    let worker = &roles[0];
    assert_eq!(worker["path"].as_str(), Some("/service-role/"));
    assert_eq!(worker["unique_id"].as_str(), Some("AROAYVKZ2M4QH5XKNP2ZC"));
    assert_eq!(worker["tags"]["team"].as_str(), Some("data-platform"));
    assert!(worker.get("max_session_duration_seconds").is_none());
    let trust: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(worker["trust_policy"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        trust,
        details["RoleDetailList"][0]["AssumeRolePolicyDocument"]
    );

    // Managed policies: the default version, pretty-printed with Version first.
    let policies = config["policies"].as_array().unwrap();
    let names: Vec<&str> = policies
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ReportsReadOnly", "DataPipelineWrite", "DeveloperBoundary"]
    );
    assert_eq!(policies[0]["path"].as_str(), Some("/analytics/"));
    assert_eq!(
        policies[0]["description"].as_str(),
        Some("Read the reports bucket")
    );
    for (i, default) in [(0, 0), (1, 1), (2, 0)] {
        let file = out.join(policies[i]["file"].as_str().unwrap());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": ["),
            "{text}"
        );
        let doc: Value = serde_json::from_str(&text).unwrap();
        let version = &details["Policies"][i]["PolicyVersionList"][default];
        assert_eq!(version["IsDefaultVersion"], true);
        assert_eq!(doc, version["Document"], "{}", file.display());
    }
    // One file per managed, inline, trust and organization policy.
    let files = std::fs::read_dir(out.join("policies")).unwrap().count();
    assert_eq!(files, 3 + 6 + 2 + 2);

    // The organization, as the layout describes it.
    let org = &config["organization"];
    assert_eq!(org["id"].as_str(), Some("o-a1b2c3d4e5"));
    assert_eq!(org["root_id"].as_str(), Some("r-a1b2"));
    assert_eq!(org["management_account"].as_str(), Some("999988887777"));
    assert_eq!(org["rcps"][0].as_str(), Some("EnforceSecureTransport"));
    let kinds: Vec<(&str, &str)> = org["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ProtectSecurityBaseline", "scp"),
            ("EnforceSecureTransport", "rcp")
        ]
    );
    let units = org["units"].as_array().unwrap();
    assert_eq!(
        units[0]["scps"][1].as_str(),
        Some("ProtectSecurityBaseline")
    );
    assert!(units[0].get("parent").is_none(), "the root is implied");
    assert_eq!(units[1]["parent"].as_str(), Some("ou-a1b2-w0rkl0ad"));
    let accounts = config["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[1]["id"].as_str(), Some(ACCOUNT));
    assert_eq!(accounts[1]["parent"].as_str(), Some("ou-a1b2-pr0d0001"));
    let scp: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("policies/scp-ProtectSecurityBaseline.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        scp["Statement"][0]["Action"],
        "organizations:LeaveOrganization"
    );
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Replaces every policy document with its URL-encoded JSON text, as the IAM API returns it.
fn encode_documents(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if matches!(
                    k.as_str(),
                    "PolicyDocument" | "Document" | "AssumeRolePolicyDocument"
                ) && child.is_object()
                {
                    *child = Value::String(url_encode(&child.to_string()));
                } else {
                    encode_documents(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(encode_documents),
        _ => {}
    }
}

#[test]
fn url_encoded_documents_import_exactly_like_json_objects() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    import_ok(&fixture("authorization-details.json"), &[], &plain);
    let mut details = fixture_json("authorization-details.json");
    encode_documents(&mut details);
    let text = details.to_string();
    assert!(
        text.contains("%7B%22Version%22%3A%222012-10-17%22"),
        "{text}"
    );
    // Read from standard input this time.
    let encoded = dir.path().join("encoded");
    let (code, _, stderr) = tollgate(
        &[
            "import",
            "--authorization-details",
            "-",
            "--out",
            path_str(&encoded),
        ],
        Some(&text),
    );
    assert_eq!(code, 0, "{stderr}");
    let mut names: Vec<_> = std::fs::read_dir(plain.join("policies"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3 + 6 + 2);
    for name in names {
        let a = std::fs::read_to_string(plain.join("policies").join(&name)).unwrap();
        let b = std::fs::read_to_string(encoded.join("policies").join(&name)).unwrap();
        assert_eq!(a, b, "{name:?}");
    }
    // The same configuration, apart from the header naming the source.
    let body = |dir: &Path| {
        let text = std::fs::read_to_string(dir.join("tollgate.toml")).unwrap();
        text.lines().skip(1).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(body(&plain), body(&encoded));
    assert!(std::fs::read_to_string(encoded.join("tollgate.toml"))
        .unwrap()
        .starts_with("# Generated by `tollgate import` from standard input"));
}

#[test]
fn scps_without_a_layout_are_attached_to_the_account() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    let scp = fixture("scp-protect-baseline.json");
    let rcp = fixture("rcp-secure-transport.json");
    let (stdout, stderr) = import_ok(
        &fixture("authorization-details.json"),
        &[
            "--scp",
            path_str(&scp),
            "--scp",
            path_str(&rcp),
            "--account-name",
            "analytics",
        ],
        &out,
    );
    assert!(stdout.contains("(analytics)"), "{stdout}");
    assert!(
        stderr.contains(
            "no --organization layout: the SCPs and RCPs are attached to account 111122223333"
        ),
        "{stderr}"
    );
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(out.join("tollgate.toml")).unwrap()).unwrap();
    // The organization id comes from the policies' ARNs; the management account that owns them
    // is not the imported one.
    assert_eq!(config["organization"]["id"].as_str(), Some("o-a1b2c3d4e5"));
    assert!(config["organization"].get("management_account").is_none());
    let account = &config["accounts"].as_array().unwrap()[0];
    assert_eq!(account["name"].as_str(), Some("analytics"));
    assert_eq!(
        account["scps"].as_array().unwrap(),
        &vec![
            toml::Value::from("FullAWSAccess"),
            toml::Value::from("ProtectSecurityBaseline")
        ]
    );
    assert_eq!(account["rcps"][0].as_str(), Some("EnforceSecureTransport"));
    let (code, _, stderr) = check(&out.join("tollgate.toml"));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn access_keys_can_be_added_with_a_secrets_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    import_full(&out);
    let config_path = out.join("tollgate.toml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    // Follow the instructions in the generated files: uncomment `secrets_file`, copy the
    // example, fill in alice's key (the first commented entry) and its secret.
    let text = text
        .replace(
            "# secrets_file = \"tollgate.secrets.toml\"",
            "secrets_file = \"tollgate.secrets.toml\"",
        )
        .replacen(
            "# [[users.access_keys]]\n# id = \"AKIA................\"",
            "[[users.access_keys]]\nid = \"AKIAYVKZ2M4QALICE001\"",
            1,
        );
    std::fs::write(&config_path, text).unwrap();
    let example = std::fs::read_to_string(out.join("tollgate.secrets.toml.example")).unwrap();
    assert!(example.contains("[access_keys]"), "{example}");
    let secrets = out.join("tollgate.secrets.toml");
    crate::support::write_private(
        &secrets,
        &format!("{example}AKIAYVKZ2M4QALICE001 = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\n"),
    );
    let (code, stdout, stderr) = check(&config_path);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("2 users, 1 access keys"), "{stdout}");
    // The key belongs to alice.
    let config =
        toml::from_str::<toml::Table>(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!(
        config["users"][0]["access_keys"][0]["id"].as_str(),
        Some("AKIAYVKZ2M4QALICE001")
    );
}

#[test]
fn optional_and_odd_input_is_handled() {
    let dir = tempfile::tempdir().unwrap();
    let mut details = fixture_json("authorization-details.json");
    // The AWS managed policy is in Policies (as with `--filter AWSManagedPolicy`), and so is an
    // AWS managed policy nothing attaches.
    let managed = |name: &str, action: &str| {
        json!({
            "PolicyName": name,
            "PolicyId": "ANPAIZTJ4DXE7G6AGAE6M",
            "Arn": format!("arn:aws:iam::aws:policy/{name}"),
            "Path": "/",
            "DefaultVersionId": "v3",
            "AttachmentCount": 1,
            "IsAttachable": true,
            "PolicyVersionList": [{
                "Document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [action], "Resource": "*"}]},
                "VersionId": "v3",
                "IsDefaultVersion": true
            }]
        })
    };
    let policies = details["Policies"].as_array_mut().unwrap();
    policies.push(managed("AmazonS3ReadOnlyAccess", "s3:Get*"));
    policies.push(managed("AdministratorAccess", "*"));
    let roles = details["RoleDetailList"].as_array_mut().unwrap();
    // A role with MaxSessionDuration (from `aws iam get-role`), a tag AWS set and an instance
    // profile.
    roles[1]["MaxSessionDuration"] = json!(7200);
    roles[1]["Tags"]
        .as_array_mut()
        .unwrap()
        .push(json!({"Key": "aws:cloudformation:stack-name", "Value": "analytics"}));
    roles[0]["InstanceProfileList"] = json!([{"InstanceProfileName": "pipeline-worker", "InstanceProfileId": "AIPAYVKZ2M4QJ7TK3WQ9E", "Arn": "arn:aws:iam::111122223333:instance-profile/pipeline-worker", "Path": "/", "Roles": []}]);
    // A unique id the configuration would refuse, and a group that is not in the output.
    let users = details["UserDetailList"].as_array_mut().unwrap();
    users[0]["UserId"] = json!("AIDAEXAMPLE");
    users[1]["GroupList"]
        .as_array_mut()
        .unwrap()
        .push(json!("contractors"));
    let input = write_json(dir.path(), "details.json", &details);
    let out = dir.path().join("imported");
    let (stdout, stderr) = import_ok(&input, &[], &out);
    assert!(stdout.contains("tollgate check: ok"), "{stdout}\n{stderr}");
    for expected in [
        "AWS managed policy `arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess` is imported as the customer managed policy `AmazonS3ReadOnlyAccess` of account 111122223333",
        "role `analytics-admin`: tag `aws:cloudformation:stack-name` skipped",
        "user `alice`: unique id `AIDAEXAMPLE` is not AIDA followed by 16 or more",
        "user `bob`: membership of group `contractors` skipped",
    ] {
        assert!(stderr.contains(expected), "missing `{expected}` in\n{stderr}");
    }
    assert!(!stderr.contains("AdministratorAccess"), "{stderr}");
    let text = std::fs::read_to_string(out.join("tollgate.toml")).unwrap();
    assert!(
        text.contains("max_session_duration_seconds = 7200"),
        "{text}"
    );
    assert!(
        text.contains("# Not imported: 1 instance profile(s)"),
        "{text}"
    );
    assert!(
        text.contains(
            "# A copy of the AWS managed policy arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess."
        ),
        "{text}"
    );
    assert!(!text.contains("AdministratorAccess"), "{text}");
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    assert!(parsed["users"][0].get("unique_id").is_none(), "{text}");
    assert!(out
        .join("policies/aws-AmazonS3ReadOnlyAccess.json")
        .exists());
    // With the AWS managed policy, bob can read the reports.
    let config = out.join("tollgate.toml");
    let r = simulate(
        &config,
        &user("/engineering/bob"),
        "s3:GetObject",
        "arn:aws:s3:::acme-reports/2024/q1.csv",
    );
    assert_eq!(r["EvalDecision"], "allowed", "{r:#}");
    let (code, _, stderr) = check(&config);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn version_2008_policies_are_kept_and_check_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut details = fixture_json("authorization-details.json");
    details["Policies"][0]["PolicyVersionList"][0]["Document"]["Version"] = json!("2008-10-17");
    details["GroupDetailList"][1]["GroupPolicyList"][0]["PolicyDocument"]
        .as_object_mut()
        .unwrap()
        .remove("Version");
    let input = write_json(dir.path(), "details.json", &details);
    let out = dir.path().join("imported");
    let (stdout, stderr) = import_ok(&input, &[], &out);
    assert!(
        stderr.contains("managed policy `arn:aws:iam::111122223333:policy/analytics/ReportsReadOnly`: Version is `2008-10-17`; kept as it is"),
        "{stderr}"
    );
    assert!(
        stderr.contains("group `developers` inline policy `PipelineQueueRead`: Version is missing"),
        "{stderr}"
    );
    assert!(
        stdout.contains("tollgate check: the generated configuration has 2 problem(s)"),
        "{stdout}"
    );
    let kept = std::fs::read_to_string(out.join("policies/ReportsReadOnly.json")).unwrap();
    assert!(kept.contains("\"Version\": \"2008-10-17\""), "{kept}");
    let (code, _, stderr) = check(&out.join("tollgate.toml"));
    assert_eq!(code, 1);
    assert!(stderr.contains("$.Version"), "{stderr}");
    assert!(stderr.contains("ReportsReadOnly.json"), "{stderr}");
}

#[test]
fn an_existing_configuration_is_only_overwritten_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    let details = fixture("authorization-details.json");
    import_ok(&details, &[], &out);
    let args = [
        "import",
        "--authorization-details",
        path_str(&details),
        "--out",
        path_str(&out),
    ];
    let (code, _, stderr) = tollgate(&args, None);
    assert_eq!(code, 1);
    assert!(stderr.contains("already exists; give --force"), "{stderr}");
    let mut forced = args.to_vec();
    forced.push("--force");
    let (code, _, stderr) = tollgate(&forced, None);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn malformed_input_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixture("authorization-details.json");
    let scp = fixture("scp-protect-baseline.json");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let edit = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut v = fixture_json("authorization-details.json");
        f(&mut v);
        write_json(dir.path(), name, &v)
    };
    let scp_text = std::fs::read_to_string(&scp).unwrap();
    let not_json = write("not-json.json", "{ \"UserDetailList\": [ oops");
    let array = write("array.json", "[]");
    let empty = write("empty.json", "{}");
    let no_name = edit("no-name.json", &|v| {
        v["UserDetailList"][0]
            .as_object_mut()
            .unwrap()
            .remove("UserName");
    });
    let bad_doc = edit("bad-doc.json", &|v| {
        v["UserDetailList"][1]["UserPolicyList"][0]["PolicyDocument"] = json!(42);
    });
    let bad_encoding = edit("bad-encoding.json", &|v| {
        v["RoleDetailList"][0]["AssumeRolePolicyDocument"] = json!("%7B%22Version%22%3A");
    });
    let no_default = edit("no-default.json", &|v| {
        let p = &mut v["Policies"][1];
        p.as_object_mut().unwrap().remove("DefaultVersionId");
        for version in p["PolicyVersionList"].as_array_mut().unwrap() {
            version["IsDefaultVersion"] = json!(false);
        }
    });
    let two_accounts = edit("two-accounts.json", &|v| {
        v["RoleDetailList"][1]["Arn"] = json!("arn:aws:iam::444455556666:role/analytics-admin");
    });
    let not_a_list = edit("not-a-list.json", &|v| {
        v["GroupDetailList"] = json!({"GroupName": "analysts"});
    });
    let tag_policy = write(
        "tag-policy.json",
        &scp_text.replace("SERVICE_CONTROL_POLICY", "TAG_POLICY"),
    );
    let bad_content = write(
        "bad-content.json",
        r#"{"Policy": {"PolicySummary": {"Id": "p-1", "Name": "x", "Type": "SERVICE_CONTROL_POLICY"}, "Content": "{\"Version\": "}}"#,
    );
    let layout = |name: &str, v: Value| write_json(dir.path(), name, &v);
    let layout_typo = layout(
        "layout-typo.json",
        json!({"Id": "o-a1b2c3d4e5", "Acounts": []}),
    );
    let layout_unknown_policy = layout(
        "layout-unknown.json",
        json!({"Id": "o-a1b2c3d4e5", "Accounts": [{"Id": ACCOUNT, "Policies": ["FullAWSAccess", "DenyAll"]}]}),
    );
    let layout_without_account = layout(
        "layout-without.json",
        json!({"Id": "o-a1b2c3d4e5", "Accounts": [{"Id": "999988887777"}]}),
    );
    let missing = dir.path().join("missing.json");

    type Case<'a> = (&'a Path, Vec<&'a Path>, Option<&'a Path>, &'a str);
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        (&not_json, vec![], None, "not-json.json`: not valid JSON: expected value at line 1"),
        (&array, vec![], None, "expected `aws iam get-account-authorization-details` output (a JSON object), got an array"),
        (&empty, vec![], None, "it has none of UserDetailList, GroupDetailList, RoleDetailList and Policies"),
        (&scp, vec![], None, "this looks like `aws organizations describe-policy` output: pass it with --scp"),
        (&no_name, vec![], None, "UserDetailList[0]: missing field `UserName`"),
        (&bad_doc, vec![], None, "UserDetailList[1].UserPolicyList[0].PolicyDocument: expected a policy document (a JSON object or a string), got a number"),
        (&bad_encoding, vec![], None, "RoleDetailList[0].AssumeRolePolicyDocument: not a policy document (neither JSON nor URL-encoded JSON)"),
        (&no_default, vec![], None, "Policies[1] (`arn:aws:iam::111122223333:policy/DataPipelineWrite`): no version in PolicyVersionList has \"IsDefaultVersion\": true"),
        (&two_accounts, vec![], None, "RoleDetailList[1].Arn is in account 444455556666, but UserDetailList[0].Arn is in account 111122223333"),
        (&not_a_list, vec![], None, "GroupDetailList: expected an array, got an object"),
        (&missing, vec![], None, "cannot read"),
        (&good, vec![&good], None, "pass it with --authorization-details"),
        (&good, vec![&tag_policy], None, "is a TAG_POLICY; only SERVICE_CONTROL_POLICY and RESOURCE_CONTROL_POLICY can be imported"),
        (&good, vec![&bad_content], None, "Policy.Content is not a JSON policy document"),
        (&good, vec![&missing], None, "cannot read"),
        (&good, vec![&scp], Some(&layout_typo), "unknown field `Acounts`"),
        (&good, vec![&scp], Some(&layout_unknown_policy), "Accounts[0] (`111122223333`) names policy `DenyAll`, which no --scp file defines"),
        (&good, vec![&scp], Some(&layout_without_account), "account 111122223333 (of `"),
    ];
    for (i, (details, scps, org, expected)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("out-{i}"));
        let mut args = vec![
            "import".to_owned(),
            "--authorization-details".to_owned(),
            details.display().to_string(),
            "--out".to_owned(),
            out.display().to_string(),
        ];
        for s in scps {
            args.push("--scp".to_owned());
            args.push(s.display().to_string());
        }
        if let Some(o) = org {
            args.push("--organization".to_owned());
            args.push(o.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = tollgate(&args, None);
        assert_eq!(
            code, 1,
            "case {i}: expected exit 1\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(
            stderr.starts_with("tollgate import: "),
            "case {i}: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "case {i}: expected `{expected}` in\n{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "case {i}: one line: {stderr}");
        assert!(stdout.is_empty(), "case {i}: {stdout}");
        assert!(
            !out.join("tollgate.toml").exists(),
            "case {i}: nothing written"
        );
    }
}
