use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use super::*;

const ADMIN_SECRET: &str = "tollgateDemoAdminSecret/EXAMPLEKEY000001";
const READER_SECRET: &str = "tollgateDemoReaderSecret/EXAMPLEKEY00001";
const INACTIVE_SECRET: &str = "tollgateDemoInactiveSecret/EXAMPLEKEY001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Writes `files` into a fresh directory; `*.secrets.toml` files get mode 600.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        if name.ends_with("secrets.toml") {
            set_mode(&path, 0o600);
        }
    }
    dir
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) {}

/// Loads `tollgate.toml` in `dir` with a fake environment.
fn load_in(dir: &Path, env: &[(&str, &str)]) -> Result<Snapshot, ConfigError> {
    let vars: HashMap<String, OsString> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    let lookup = move |name: &str| vars.get(name).cloned();
    let path = dir.join("tollgate.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    load_with(&text, &Origin::disk(&path, &lookup), 7)
}

/// The config text with every finding's Display, for assertions.
fn findings_of(result: Result<Snapshot, ConfigError>) -> Vec<String> {
    match result {
        Ok(_) => panic!("config was accepted"),
        Err(e) => {
            let shown: Vec<String> = e.findings().iter().map(ToString::to_string).collect();
            assert_eq!(e.to_string(), shown.join("\n"));
            shown
        }
    }
}

fn assert_has(findings: &[String], expected: &str) {
    assert!(
        findings.iter().any(|f| f == expected),
        "missing finding:\n  {expected}\nin:\n  {}",
        findings.join("\n  ")
    );
}

const MINIMAL: &str = r#"
secrets_file = "tollgate.secrets.toml"
[auth]
regions = ["us-east-1"]
services = ["execute-api"]
[upstream]
url = "builtin:echo"
[[accounts]]
id = "123456789012"
name = "main"
[[policies]]
name = "Everything"
document = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
[[users]]
name = "alice"
policies = ["Everything"]
[[users.access_keys]]
id = "AKIAAAAAAAAAAAAAAAAA"
"#;

const MINIMAL_SECRETS: &str =
    "[access_keys]\nAKIAAAAAAAAAAAAAAAAA = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"\n";

#[test]
fn demo_loads_with_three_keys() {
    let s = load_demo(3).unwrap();
    assert_eq!(s.generation, 3);
    assert_eq!(s.keys.len(), 3);
    let admin = s.keys.get("AKIATOLLGATEADMIN001").unwrap();
    assert_eq!(admin.secret.expose(), ADMIN_SECRET);
    assert_eq!(admin.status, KeyStatus::Active);
    assert_eq!(admin.principal.arn, "arn:aws:iam::123456789012:user/admin");
    assert_eq!(admin.principal.account_id, "123456789012");
    assert_eq!(admin.principal.kind, credentials::PrincipalKind::IamUser);
    assert_eq!(
        admin.principal.tags,
        [("team".to_owned(), "platform".to_owned())]
    );
    let inactive = s.keys.get("AKIATOLLGATEINACTIVE").unwrap();
    assert_eq!(inactive.status, KeyStatus::Inactive);
    assert_eq!(inactive.principal.name, "reader");
    assert_eq!(
        s.keys.get("AKIATOLLGATEREADER01").unwrap().secret.expose(),
        READER_SECRET
    );

    assert_eq!(s.auth.regions, NameSet::from_iter(["us-east-1"]));
    assert_eq!(
        s.auth.services,
        NameSet::from_iter(["execute-api", "s3", "sts"])
    );
    assert_eq!(s.auth.unsigned_payload_services, NameSet::from_iter(["s3"]));
    assert_eq!(s.auth.clock_skew, Duration::from_secs(900));
    assert_eq!(s.auth.max_verified_body, 8 * 1024 * 1024);
    assert!(!s.auth.expose_signing_details);
    assert_eq!(s.listeners.proxy.to_string(), "127.0.0.1:8080");
    assert_eq!(s.listeners.admin.to_string(), "127.0.0.1:9901");
    assert_eq!(
        s.listeners.api.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:8081")
    );
    assert_eq!(s.upstream.target, UpstreamTarget::Echo);
    assert_eq!(s.upstream.connect_timeout, Duration::from_secs(2));
    assert_eq!(s.upstream.request_timeout, Duration::from_secs(30));
    assert_eq!(s.upstream.host, HostMode::Preserve);
    assert_eq!(
        s.accounts,
        [Account {
            id: "123456789012".into(),
            name: "demo".into(),
            parent: None,
            scps: None,
            rcps: Vec::new(),
        }]
    );

    let admin_user = s.user("arn:aws:iam::123456789012:user/admin").unwrap();
    assert_eq!(
        admin_user.managed_policies,
        ["arn:aws:iam::123456789012:policy/AdministratorAccess"]
    );
    assert_eq!(admin_user.unique_id, admin.principal.unique_id);
    let reader = s.user("arn:aws:iam::123456789012:user/reader").unwrap();
    assert_eq!(
        reader.access_keys,
        ["AKIATOLLGATEREADER01", "AKIATOLLGATEINACTIVE"]
    );
    let read_only = s
        .policy("arn:aws:iam::123456789012:policy/ReadOnlyHttp")
        .unwrap();
    assert_eq!(
        read_only.document["Statement"][1]["Resource"][0],
        "arn:aws:execute-api:*:*:*/*/GET/*"
    );
    let admin_policy = s
        .policy("arn:aws:iam::123456789012:policy/AdministratorAccess")
        .unwrap();
    assert_eq!(admin_policy.document["Statement"][0]["Action"], "*");

    let deployer = s.role("arn:aws:iam::123456789012:role/deployer").unwrap();
    assert!(deployer.unique_id.starts_with("AROA"));
    assert_eq!(deployer.max_session_duration, Duration::from_secs(3600));
    assert_eq!(
        deployer.trust_policy["Statement"][0]["Principal"]["AWS"][0],
        "arn:aws:iam::123456789012:user/admin"
    );
    assert_eq!(
        deployer.managed_policies,
        ["arn:aws:iam::123456789012:policy/DeployerAccess"]
    );
    assert_eq!(s.account("123456789012").unwrap().name, "demo");
    assert!(s.user("arn:aws:iam::123456789012:user/nobody").is_none());
}

#[test]
fn demo_credentials_in_config_order() {
    let creds = demo_credentials();
    let shown: Vec<(&str, &str, &str, KeyStatus)> = creds
        .iter()
        .map(|c| {
            (
                c.user.as_str(),
                c.access_key_id.as_str(),
                c.secret.expose(),
                c.status,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                "admin",
                "AKIATOLLGATEADMIN001",
                ADMIN_SECRET,
                KeyStatus::Active
            ),
            (
                "reader",
                "AKIATOLLGATEREADER01",
                READER_SECRET,
                KeyStatus::Active
            ),
            (
                "reader",
                "AKIATOLLGATEINACTIVE",
                INACTIVE_SECRET,
                KeyStatus::Inactive
            ),
        ]
    );
    for c in &creds {
        assert_eq!(c.secret.expose().len(), 40);
        assert!(!format!("{c:?}").contains(c.secret.expose()));
    }
}

#[test]
fn snapshot_debug_hides_secrets() {
    let s = load_demo(1).unwrap();
    let shown = format!("{s:?}");
    assert!(shown.contains("AKIATOLLGATEADMIN001"), "{shown}");
    assert!(shown.contains("SecretKey(***)"));
    for secret in [ADMIN_SECRET, READER_SECRET, INACTIVE_SECRET, "EXAMPLEKEY"] {
        assert!(!shown.contains(secret), "Debug shows `{secret}`");
    }
}

#[test]
fn unique_ids_are_derived_from_the_arn() {
    let a = validate::derived_unique_id("AIDA", "arn:aws:iam::123456789012:user/admin");
    assert_eq!(a.len(), 20);
    assert!(a.starts_with("AIDA"));
    assert!(a[4..]
        .chars()
        .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
    assert_eq!(
        a,
        validate::derived_unique_id("AIDA", "arn:aws:iam::123456789012:user/admin")
    );
    assert_ne!(
        a,
        validate::derived_unique_id("AIDA", "arn:aws:iam::123456789012:user/admin2")
    );
    let s = load_demo(0).unwrap();
    assert_eq!(s.users[0].unique_id, a);
}

#[test]
fn worked_example_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root.join("tollgate.toml"), dir.path().join("tollgate.toml")).unwrap();
    let secrets = dir.path().join("tollgate.secrets.toml");
    std::fs::copy(root.join("tollgate.secrets.toml.example"), &secrets).unwrap();
    set_mode(&secrets, 0o600);
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    for entry in std::fs::read_dir(root.join("policies")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("policies").join(entry.file_name()),
        )
        .unwrap();
    }

    let s = load_file(&dir.path().join("tollgate.toml"), 2).unwrap();
    assert_eq!(s.keys.len(), 4);
    assert_eq!(
        s.keys.get("AKIAORDERSCI00000001").unwrap().status,
        KeyStatus::Inactive
    );
    assert_eq!(
        s.keys.get("AKIAORDERSWEB0000001").unwrap().secret.expose(),
        "EXAMPLEorderswebSECRET/replace/me/000001"
    );
    assert_eq!(
        s.upstream.target,
        UpstreamTarget::Url("http://127.0.0.1:3000".parse().unwrap())
    );
    assert_eq!(s.accounts.len(), 2);
    let web = s
        .user("arn:aws:iam::111122223333:user/services/orders-web")
        .unwrap();
    assert_eq!(web.groups, ["arn:aws:iam::111122223333:group/developers"]);
    assert_eq!(
        web.managed_policies,
        [
            "arn:aws:iam::111122223333:policy/orders/OrdersWrite",
            "arn:aws:iam::111122223333:policy/DenyOutsideEurope"
        ]
    );
    assert_eq!(
        web.tags,
        [
            ("cost-center".to_owned(), "4711".to_owned()),
            ("team".to_owned(), "orders".to_owned())
        ]
    );
    let ci = s
        .user("arn:aws:iam::111122223333:user/ci/orders-ci")
        .unwrap();
    assert_eq!(ci.unique_id, "AIDAORDERSCI0000000001");
    assert_eq!(ci.inline_policies[0].name, "AssumeDeployer");
    let developers = s
        .group("arn:aws:iam::111122223333:group/developers")
        .unwrap();
    assert_eq!(developers.inline_policies[0].name, "DenyAdminPaths");
    let deployer = s
        .role("arn:aws:iam::111122223333:role/ci/orders-deployer")
        .unwrap();
    assert_eq!(deployer.max_session_duration, Duration::from_secs(7200));
    assert!(s
        .user("arn:aws:iam::444455556666:user/sync")
        .is_some_and(|u| u.managed_policies == ["arn:aws:iam::444455556666:policy/PartnerSync"]));
    assert_eq!(s.auth.regions.len(), 2);
    assert!(s.auth.unsigned_payload_services.is_empty());

    // The same files with a world-readable secrets file are refused.
    set_mode(&secrets, 0o644);
    let findings = findings_of(load_file(&dir.path().join("tollgate.toml"), 3));
    if cfg!(unix) {
        let label = dir.path().join("tollgate.secrets.toml");
        assert_eq!(
            findings,
            [format!(
                "{}: secrets_file: `{}` is readable or writable by group or others (mode 644); \
                 chmod 600 it",
                dir.path().join("tollgate.toml").display(),
                label.display()
            )]
        );
    }
}

#[test]
fn minimal_config_loads_with_defaults() {
    let dir = dir_with(&[
        ("tollgate.toml", MINIMAL),
        ("tollgate.secrets.toml", MINIMAL_SECRETS),
    ]);
    let s = load_in(dir.path(), &[]).unwrap();
    assert_eq!(s.generation, 7);
    let key = s.keys.get("AKIAAAAAAAAAAAAAAAAA").unwrap();
    assert_eq!(key.secret.expose(), SECRET);
    assert_eq!(key.principal.arn, "arn:aws:iam::123456789012:user/alice");
    assert_eq!(s.users[0].path, "/");
    assert!(s.users[0].tags.is_empty());
    assert_eq!(s.listeners, Listeners::default());
    assert_eq!(
        s.policies[0].arn,
        "arn:aws:iam::123456789012:policy/Everything"
    );
}

#[test]
fn env_var_provides_and_overrides_secrets() {
    // No secrets file at all: the environment alone is enough.
    let config = MINIMAL.replace("secrets_file = \"tollgate.secrets.toml\"", "");
    let dir = dir_with(&[("tollgate.toml", &config)]);
    let env_secret = "envSecretForAliceXXXXXXXXXXXXXXXXXXXXXXX";
    let s = load_in(
        dir.path(),
        &[("TOLLGATE_SECRET_AKIAAAAAAAAAAAAAAAAA", env_secret)],
    )
    .unwrap();
    assert_eq!(
        s.keys.get("AKIAAAAAAAAAAAAAAAAA").unwrap().secret.expose(),
        env_secret
    );

    // With a secrets file, the variable wins.
    let dir = dir_with(&[
        ("tollgate.toml", MINIMAL),
        ("tollgate.secrets.toml", MINIMAL_SECRETS),
    ]);
    let s = load_in(
        dir.path(),
        &[("TOLLGATE_SECRET_AKIAAAAAAAAAAAAAAAAA", env_secret)],
    )
    .unwrap();
    assert_eq!(
        s.keys.get("AKIAAAAAAAAAAAAAAAAA").unwrap().secret.expose(),
        env_secret
    );

    // Without either, the key has no secret.
    let dir = dir_with(&[("tollgate.toml", &config)]);
    let findings = findings_of(load_in(dir.path(), &[]));
    let file = dir.path().join("tollgate.toml").display().to_string();
    assert_eq!(
        findings,
        [format!(
            "{file}: users[0].access_keys[0].id: no secret for `AKIAAAAAAAAAAAAAAAAA`: set \
             TOLLGATE_SECRET_AKIAAAAAAAAAAAAAAAAA or name a `secrets_file`"
        )]
    );
}

#[test]
fn files_read_the_process_environment() {
    // Cargo sets this variable in the test process; setting one here instead could race with
    // other tests reading the environment.
    assert_eq!(
        origin::process_env("CARGO_MANIFEST_DIR"),
        Some(OsString::from(env!("CARGO_MANIFEST_DIR")))
    );
}

#[test]
fn bad_secrets_are_reported_without_revealing_them() {
    let secrets = "[access_keys]\nAKIAAAAAAAAAAAAAAAAA = \"tooShortSecret1\"\n";
    let dir = dir_with(&[
        ("tollgate.toml", MINIMAL),
        ("tollgate.secrets.toml", secrets),
    ]);
    let findings = findings_of(load_in(dir.path(), &[]));
    let label = dir
        .path()
        .join("tollgate.secrets.toml")
        .display()
        .to_string();
    assert_eq!(
        findings,
        [format!(
            "{label}: access_keys.AKIAAAAAAAAAAAAAAAAA: must be 16 to 128 characters long (AWS \
             secret access keys have 40)"
        )]
    );
    assert!(!findings[0].contains("tooShortSecret1"));

    let with_newline = format!("{SECRET}\n");
    let findings = findings_of(load_in(
        dir.path(),
        &[("TOLLGATE_SECRET_AKIAAAAAAAAAAAAAAAAA", &with_newline)],
    ));
    assert_eq!(
        findings,
        [
            "environment: TOLLGATE_SECRET_AKIAAAAAAAAAAAAAAAAA: contains whitespace, control or \
          non-ASCII characters (a trailing newline?)"
        ]
    );
    assert!(!findings[0].contains("wJalr"));
}

#[test]
fn missing_secrets_file_is_reported_once() {
    let dir = dir_with(&[("tollgate.toml", MINIMAL)]);
    let findings = findings_of(load_in(dir.path(), &[]));
    assert_eq!(findings.len(), 1, "{findings:?}");
    let file = dir.path().join("tollgate.toml").display().to_string();
    let secrets = dir
        .path()
        .join("tollgate.secrets.toml")
        .display()
        .to_string();
    assert!(
        findings[0].starts_with(&format!("{file}: secrets_file: cannot read `{secrets}`: ")),
        "{}",
        findings[0]
    );
    assert!(findings[0].contains("TOLLGATE_SECRET_<ACCESS_KEY_ID>"));
}

#[test]
fn unknown_field_is_refused_with_its_name_and_key_path() {
    let config = MINIMAL.replace(
        "id = \"AKIAAAAAAAAAAAAAAAAA\"",
        "id = \"AKIAAAAAAAAAAAAAAAAA\"\nstatsu = \"Inactive\"",
    );
    let dir = dir_with(&[("tollgate.toml", &config)]);
    let findings = findings_of(load_in(dir.path(), &[]));
    let file = dir.path().join("tollgate.toml").display().to_string();
    let line = config
        .lines()
        .position(|l| l.starts_with("statsu"))
        .unwrap()
        + 1;
    assert_eq!(
        findings,
        [format!(
            "{file}:{line}:1: users[0].access_keys[0].statsu: unknown field `statsu`, expected \
             `id` or `status`"
        )]
    );

    let config = MINIMAL.replace("[upstream]", "[upstream]\nhots = \"upstream\"");
    let dir = dir_with(&[("tollgate.toml", &config)]);
    let findings = findings_of(load_in(dir.path(), &[]));
    assert!(
        findings[0].contains("upstream.hots: unknown field `hots`"),
        "{findings:?}"
    );
}

#[test]
fn schema_errors_name_the_line_and_key() {
    let config = MINIMAL.replace("[upstream]", "[upstream]\nhost = \"proxy\"");
    let dir = dir_with(&[("tollgate.toml", &config)]);
    let findings = findings_of(load_in(dir.path(), &[]));
    let file = dir.path().join("tollgate.toml").display().to_string();
    let line = config.lines().position(|l| l.starts_with("host")).unwrap() + 1;
    assert_eq!(
        findings,
        [format!(
            "{file}:{line}:8: upstream.host: unknown variant `proxy`, expected `preserve` or `upstream`"
        )]
    );

    let config = MINIMAL.replace("name = \"alice\"", "name = \"alice\"\npath = 5");
    let dir = dir_with(&[("tollgate.toml", &config)]);
    let findings = findings_of(load_in(dir.path(), &[]));
    assert!(
        findings[0].contains(": users[0].path: invalid type: integer `5`, expected a string"),
        "{findings:?}"
    );
}

#[test]
fn every_finding_is_reported_with_file_and_key() {
    let config = r#"
secrets_file = "tollgate.secrets.toml"
[auth]
regions = []
services = []
unsigned_payload_services = ["s3"]
clock_skew_seconds = 0
[listeners]
proxy = "localhost:8080"
admin = "127.0.0.1:99999"
[upstream]
url = "ftp://example.com"
connect_timeout_ms = 0
[[accounts]]
id = "12345"
name = "short"
[[accounts]]
id = "123456789012"
name = "main"
[[accounts]]
id = "123456789012"
name = "again"
[[policies]]
account = "123456789012"
name = "Broken"
file = "broken.json"
[[policies]]
account = "123456789012"
name = "NotAPolicy"
document = '["Statement"]'
[[policies]]
account = "123456789012"
name = "Neither"
[[policies]]
account = "123456789012"
name = "Missing"
file = "missing.json"
[[groups]]
account = "123456789012"
name = "devs"
path = "no-slashes"
[[users]]
account = "123456789012"
name = "alice"
groups = ["devs", "ghosts"]
policies = ["Nope", "arn:aws:iam::123456789012:policy/Broken"]
tags = { "aws:owner" = "x", team = "a", Team = "b" }
[[users.access_keys]]
id = "AKIAxx"
[[users.access_keys]]
id = "AKIAAAAAAAAAAAAAAAAA"
[[users]]
account = "123456789012"
name = "Alice"
[[users.access_keys]]
id = "AKIAAAAAAAAAAAAAAAAA"
[[users.access_keys]]
id = "AKIABBBBBBBBBBBBBBBB"
[[users]]
account = "999999999999"
name = "bob"
[[users]]
account = "1234"
name = "bad name!"
[[roles]]
account = "123456789012"
name = "deployer"
max_session_duration_seconds = 60
"#;
    let secrets =
        "[access_keys]\nAKIAAAAAAAAAAAAAAAAA = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"\n";
    let dir = dir_with(&[
        ("tollgate.toml", config),
        ("tollgate.secrets.toml", secrets),
        (
            "broken.json",
            "{\"Version\": \"2012-10-17\",\n  \"Statement\": [\n",
        ),
    ]);
    let findings = findings_of(load_in(dir.path(), &[]));
    let f = dir.path().join("tollgate.toml").display().to_string();
    let broken = dir.path().join("broken.json").display().to_string();
    let missing = dir.path().join("missing.json").display().to_string();
    let secrets = dir
        .path()
        .join("tollgate.secrets.toml")
        .display()
        .to_string();
    let expected = [
        format!("{f}: auth.regions: must list at least one region, e.g. [\"us-east-1\"]"),
        format!("{f}: auth.services: must list at least one service, e.g. [\"execute-api\"]"),
        format!("{f}: auth.unsigned_payload_services[0]: `s3` is not listed in auth.services"),
        format!("{f}: auth.clock_skew_seconds: must be 1 to 3600 (AWS allows 900)"),
        format!(
            "{f}: listeners.proxy: `localhost:8080` is not a socket address (ip:port, e.g. \
             127.0.0.1:8080)"
        ),
        format!(
            "{f}: listeners.admin: `127.0.0.1:99999` is not a socket address (ip:port, e.g. \
             127.0.0.1:8080)"
        ),
        format!("{f}: upstream.connect_timeout_ms: must be at least 1"),
        format!(
            "{f}: upstream.url: scheme `ftp` is not supported; expected `http://host:port`, \
             `https://host:port` or `builtin:echo`"
        ),
        format!("{f}: accounts[0].id: `12345` is not an account id (12 digits)"),
        format!("{f}: accounts[2].id: duplicate account id `123456789012` (also accounts[1])"),
        format!(
            "{f}: policies[0].file: `{broken}` is not valid JSON: EOF while parsing a list at \
             line 3 column 0"
        ),
        format!(
            "{f}: policies[1].document: the document is not a policy document (a JSON object \
             with a `Statement`)"
        ),
        format!("{f}: policies[2]: needs `file = \"policy.json\"` or `document = '''{{…}}'''`"),
        format!("{f}: groups[0].path: `no-slashes` is not an IAM path (`/` or `/division/team/`)"),
        format!("{f}: users[0].tags.\"aws:owner\": tag keys starting with `aws:` are reserved"),
        format!("{f}: users[0].tags.team: another tag key differs only in case"),
        format!(
            "{f}: users[0].access_keys[0].id: `AKIAxx` is not an access key id (AKIA followed by \
             16 upper-case letters or digits)"
        ),
        format!(
            "{f}: users[0].policies[0]: unknown policy `Nope` (no [[policies]] entry with that \
             name in account `123456789012`)"
        ),
        format!(
            "{f}: users[0].groups[1]: unknown group `ghosts` (no [[groups]] entry with that name \
             in account `123456789012`)"
        ),
        format!(
            "{f}: users[1].access_keys[0].id: duplicate access key id `AKIAAAAAAAAAAAAAAAAA` \
             (also users[0].access_keys[1].id)"
        ),
        format!(
            "{f}: users[1].name: duplicate user name `Alice` in account `123456789012` (also \
             users[0])"
        ),
        format!("{f}: users[2].account: account `999999999999` is not defined in [[accounts]]"),
        format!("{f}: users[3].account: `1234` is not an account id (12 digits)"),
        format!(
            "{f}: users[3].name: `bad name!` is not a valid user name (1 to 64 of A-Z a-z 0-9 + \
             = , . @ _ -)"
        ),
        format!(
            "{f}: roles[0].trust_policy: is required: a JSON policy file saying who may assume \
             the role"
        ),
        format!(
            "{f}: roles[0].max_session_duration_seconds: must be 3600 to 43200 (1 to 12 hours)"
        ),
        format!(
            "{f}: users[1].access_keys[1].id: no secret for `AKIABBBBBBBBBBBBBBBB`: add it under \
             [access_keys] in `{secrets}` or set TOLLGATE_SECRET_AKIABBBBBBBBBBBBBBBB"
        ),
    ];
    for e in &expected {
        assert_has(&findings, e);
    }
    // The missing policy file is named, with the OS's reason.
    assert!(findings
        .iter()
        .any(|x| x.starts_with(&format!("{f}: policies[3].file: cannot read `{missing}`: "))));
    assert_eq!(
        findings.len(),
        expected.len() + 1,
        "{}",
        findings.join("\n")
    );
}

#[test]
fn upstream_urls() {
    let cases = [
        (
            "http://example.com/api",
            "`http://example.com/api` has a path or query; give only `http://host:port` (paths \
             are forwarded as the client sent them)",
        ),
        ("http://user:pw@example.com", "the url must not contain credentials"),
        (
            "example.com:80",
            "`example.com:80` is not an absolute url; expected `http://host:port` or `builtin:echo`",
        ),
        (
            "not a url",
            "`not a url` is not a url; expected `http://host:port` or `builtin:echo`",
        ),
    ];
    for (url, message) in cases {
        let config = MINIMAL.replace("builtin:echo", url);
        let dir = dir_with(&[
            ("tollgate.toml", &config),
            ("tollgate.secrets.toml", MINIMAL_SECRETS),
        ]);
        let findings = findings_of(load_in(dir.path(), &[]));
        let file = dir.path().join("tollgate.toml").display().to_string();
        assert_eq!(
            findings,
            [format!("{file}: upstream.url: {message}")],
            "{url}"
        );
    }

    let config = MINIMAL.replace("builtin:echo", "http://10.0.0.7:3000");
    let config = config.replace(
        "[upstream]",
        "[upstream]\nhost = \"upstream\"\nrequest_timeout_ms = 1500",
    );
    let dir = dir_with(&[
        ("tollgate.toml", &config),
        ("tollgate.secrets.toml", MINIMAL_SECRETS),
    ]);
    let s = load_in(dir.path(), &[]).unwrap();
    let UpstreamTarget::Url(uri) = &s.upstream.target else {
        panic!("not a url target");
    };
    assert_eq!(uri.authority().unwrap().as_str(), "10.0.0.7:3000");
    assert_eq!(s.upstream.host, HostMode::Upstream);
    assert_eq!(s.upstream.request_timeout, Duration::from_millis(1500));
}

#[test]
fn missing_upstream_and_account_are_findings() {
    let config = MINIMAL
        .replace("[upstream]\nurl = \"builtin:echo\"", "")
        .replace(
            "[[users]]",
            "[[accounts]]\nid = \"210987654321\"\nname = \"other\"\n[[users]]",
        );
    let dir = dir_with(&[
        ("tollgate.toml", &config),
        ("tollgate.secrets.toml", MINIMAL_SECRETS),
    ]);
    let findings = findings_of(load_in(dir.path(), &[]));
    let f = dir.path().join("tollgate.toml").display().to_string();
    assert_eq!(
        findings,
        [
            format!(
                "{f}: upstream.url: is required: `http://host:port`, or `builtin:echo` for a \
                 test upstream"
            ),
            // [[policies]] comes before the second [[accounts]] but is checked after it.
            format!(
                "{f}: policies[0].account: is required unless [[accounts]] defines exactly one \
                 account"
            ),
            format!(
                "{f}: users[0].account: is required unless [[accounts]] defines exactly one \
                 account"
            ),
        ]
    );
}

#[test]
fn load_file_reports_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let findings = findings_of(load_file(&path, 0));
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0].starts_with(&format!("{}: cannot read: ", path.display())),
        "{}",
        findings[0]
    );
}

#[test]
fn embedded_source_reads_no_disk_and_no_environment() {
    let err = load_str(MINIMAL, Source::Embedded("custom.toml"), 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "custom.toml (embedded): secrets_file: `tollgate.secrets.toml` is not an embedded file"
    );
}

const ORG_CONFIG: &str = r#"
[auth]
regions = ["us-east-1"]
services = ["execute-api", "s3"]

[upstream]
url = "builtin:echo"

[organization]
id = "o-a1b2c3d4e5"
management_account = "111111111111"
scps = ["FullAWSAccess"]

[[organization.units]]
id = "ou-ab12-11111111"
name = "prod"
scps = ["FullAWSAccess", "DenyDelete"]

[[organization.units]]
id = "ou-ab12-22222222"
name = "prod-eu"
parent = "ou-ab12-11111111"

[[organization.policies]]
name = "DenyDelete"
type = "scp"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}'''

[[accounts]]
id = "111111111111"
name = "management"

[[accounts]]
id = "222222222222"
name = "prod"
parent = "ou-ab12-22222222"

[[resources]]
arns = ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"]
account = "222222222222"
tags = { env = "prod" }
policy = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*"}]}'''

[[mappings]]
service = "execute-api"
mode = "rest"
account = "222222222222"

[[mappings.routes]]
method = "GET"
path = "/orders/{id}"
action = "orders:GetOrder"
resource = "arn:aws:orders:${region}:${account}:order/{id}"
keys = { "orders:Channel" = "header:x-channel" }

[[mappings]]
service = "s3"
mode = "s3"
account = "222222222222"
"#;

#[test]
fn organization_resources_and_mappings_compile() {
    let dir = dir_with(&[("tollgate.toml", ORG_CONFIG)]);
    let s = load_in(dir.path(), &[]).unwrap();
    let org = s.access.organization.as_ref().unwrap();
    assert!(org.is_management("111111111111"));
    let prod = org.path("222222222222").unwrap();
    // root, prod, prod-eu, account
    assert_eq!(prod.scps.len(), 4);
    assert_eq!(prod.rcps.len(), 4);
    assert_eq!(
        prod.org_path,
        "o-a1b2c3d4e5/r-0000/ou-ab12-11111111/ou-ab12-22222222/"
    );
    assert_eq!(org.path("111111111111").unwrap().scps.len(), 2);
    let r = s.access.resource("arn:aws:s3:::shared/a/b").unwrap();
    assert_eq!(r.account, "222222222222");
    assert!(r.policy.is_some());
    assert!(s.access.resource("arn:aws:s3:::other/x").is_none());
    assert!(s.access.mapping("execute-api").is_some());
    assert!(s.access.mapping("sts").is_none());
}

#[test]
fn organization_and_mapping_findings() {
    let bad = ORG_CONFIG
        .replace(r#"parent = "ou-ab12-22222222""#, r#"parent = "ou-nope-1""#)
        .replace(
            r#"scps = ["FullAWSAccess", "DenyDelete"]"#,
            r#"scps = ["Missing"]"#,
        )
        .replace(r#"mode = "rest""#, r#"mode = "grpc""#)
        .replace(r#"type = "scp""#, r#"type = "tag""#);
    let dir = dir_with(&[("tollgate.toml", &bad)]);
    let f = findings_of(load_in(dir.path(), &[]));
    assert_ends(
        &f,
        "accounts[1].parent: `ou-nope-1` is neither the root nor a configured organizational unit",
    );
    assert_ends(
        &f,
        "organization.units[0].scps: `Missing` is not an SCP defined in organization.policies",
    );
    assert_ends(
        &f,
        "mappings[0].mode: `grpc` must be \"rest\", \"aws-json\", \"aws-query\" or \"s3\"",
    );
    assert_ends(
        &f,
        "organization.policies[0].type: `tag` is not a policy type: use \"scp\" or \"rcp\"",
    );
    let bad_route = ORG_CONFIG.replace("order/{id}", "order/{nope}");
    let dir = dir_with(&[("tollgate.toml", &bad_route)]);
    assert_ends(
        &findings_of(load_in(dir.path(), &[])),
        "mappings[0].routes[0]: `{nope}` is not captured by the path `/orders/{id}`",
    );
}

fn assert_ends(findings: &[String], expected: &str) {
    assert!(
        findings.iter().any(|f| f.ends_with(expected)),
        "missing finding:\n  {expected}\nin:\n  {}",
        findings.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// STS: key ring, revocations, OIDC providers, trust policies
// ---------------------------------------------------------------------------------------------

/// Base64 of 32 bytes of 1, 2 and 3.
const STS_KEY_1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const STS_KEY_2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
const STS_KEY_3: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
/// The public test key set of `tests/fixtures/oidc`.
const TEST_JWKS: &str = include_str!("../../tests/fixtures/oidc/jwks.json");
const DEMO_STS_KEY: &str = "dG9sbGdhdGUtZGVtby1zdHMta2V5LURFTU8tT05MWSE=";
const TRUST_ALICE: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"}, "Action": "sts:AssumeRole"}]}"#;
const DEPLOYER: &str = "arn:aws:iam::123456789012:role/deployer";
const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

fn with_role(config: &str) -> String {
    format!(
        "{config}\n[[roles]]\nname = \"deployer\"\ntrust_policy = \"trust.json\"\n\
         policies = [\"Everything\"]\n"
    )
}

fn sts_config() -> String {
    with_role(MINIMAL)
        + r#"
[sts]
keys = ["2026-11", "2026-10"]

[[sts.revocations]]
role = "arn:aws:iam::123456789012:role/deployer"
before = "2026-11-28T12:00:00Z"

[[sts.revocations]]
principal = "arn:aws:iam::123456789012:user/alice"
before = 2026-11-28T13:00:00+01:00

[[sts.revocations]]
account = "123456789012"
before = "2026-01-01T00:00:00Z"

[[oidc_providers]]
url = "https://token.actions.githubusercontent.com"
audiences = ["sts.amazonaws.com"]
jwks_file = "jwks/github.json"

[[oidc_providers]]
account = "123456789012"
url = "https://idp.example.com/realms/main/"
audiences = ["web", "cli"]
jwks_url = "https://idp.example.com/realms/main/certs"
refresh_seconds = 600
"#
}

fn sts_secrets() -> String {
    format!("{MINIMAL_SECRETS}[sts_keys]\n2026-11 = \"{STS_KEY_1}\"\n2026-10 = \"{STS_KEY_2}\"\n")
}

fn sts_dir(config: &str, secrets: &str) -> tempfile::TempDir {
    dir_with(&[
        ("tollgate.toml", config),
        ("tollgate.secrets.toml", secrets),
        ("trust.json", TRUST_ALICE),
        ("jwks/github.json", TEST_JWKS),
        ("jwks.json", TEST_JWKS),
    ])
}

/// Seals a token with `ring`'s newest key and reports whether `other` opens it.
fn opens(ring: &crate::sts::token::KeyRing, other: &crate::sts::token::KeyRing) -> bool {
    use crate::sts::token::{open, seal, SessionClaims, SessionKind};
    let now = crate::time::now_epoch();
    let claims = SessionClaims {
        access_key_id: String::new(),
        issued_at: now,
        expires_at: now + 3600,
        account: "123456789012".into(),
        kind: SessionKind::AssumedRole,
        arn: "arn:aws:sts::123456789012:assumed-role/deployer/s".into(),
        user_id: "AROAEXAMPLEEXAMPLE01:s".into(),
        role_arn: Some(DEPLOYER.into()),
        role_id: Some("AROAEXAMPLEEXAMPLE01".into()),
        session_name: Some("s".into()),
        source_identity: None,
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        session_policy: None,
        policy_arns: Vec::new(),
        chained: false,
        mfa_authenticated: false,
        web_identity: None,
        parent_user_arn: None,
    };
    let issued = seal(ring, &claims, &mut rand::thread_rng()).unwrap();
    open(
        other,
        issued.session_token.expose(),
        &issued.access_key_id,
        now,
    )
    .is_ok()
}

fn ring_of(kid: &str, byte: u8) -> crate::sts::token::KeyRing {
    crate::sts::token::KeyRing::new(vec![(kid.to_owned(), [byte; 32])]).unwrap()
}

#[test]
fn demo_has_sts_an_oidc_provider_and_compiled_trust_policies() {
    let s = load_demo(0).unwrap();
    let sts = s.sts.as_ref().unwrap();
    assert_eq!(sts.ring.kids().collect::<Vec<_>>(), ["demo-1"]);
    assert_eq!(sts.ring.seal_kid(), "demo-1");
    // The documented demo key.
    let demo_key = crate::sts::token::KeyRing::from_base64_keys([("demo-1", DEMO_STS_KEY)]);
    assert!(opens(&sts.ring, &demo_key.unwrap()));
    // Deployer sessions issued before 2026-01-01T00:00:00Z are revoked; others are not.
    assert_eq!(sts.revocations.len(), 1);
    let deployer = Some("arn:aws:iam::123456789012:role/deployer");
    assert!(sts
        .revocations
        .revoked(1_767_225_599, deployer, &[], "123456789012"));
    assert!(!sts
        .revocations
        .revoked(1_767_225_600, deployer, &[], "123456789012"));
    assert!(!sts.revocations.revoked(
        0,
        Some("arn:aws:iam::123456789012:role/web-app"),
        &[],
        "123456789012"
    ));

    assert_eq!(sts.oidc_providers.len(), 1);
    let idp = &sts.oidc_providers[0];
    assert_eq!(idp.account, "123456789012");
    assert_eq!(idp.provider.issuer_url(), "https://oidc.tollgate.example");
    assert_eq!(idp.provider.provider(), "oidc.tollgate.example");
    assert_eq!(idp.provider.audiences(), ["tollgate-demo"]);
    assert_eq!(
        idp.arn(),
        "arn:aws:iam::123456789012:oidc-provider/oidc.tollgate.example"
    );
    assert_eq!(idp.federated_principal(), idp.arn());
    assert_eq!(
        idp.provider.jwks(),
        &crate::sts::oidc::JwksSource::Inline(TEST_JWKS.to_owned())
    );
    assert_eq!(
        s.oidc_provider_for_issuer("https://oidc.tollgate.example"),
        Some(idp)
    );
    assert_eq!(
        s.oidc_provider_for_issuer("oidc.tollgate.example"),
        Some(idp)
    );
    assert!(s.oidc_provider_for_issuer("https://evil.example").is_none());

    let web_app = s.role("arn:aws:iam::123456789012:role/web-app").unwrap();
    assert_eq!(
        web_app.managed_policies,
        ["arn:aws:iam::123456789012:policy/ReadOnlyHttp"]
    );
    assert_eq!(
        web_app.trust_policy["Statement"][0]["Principal"]["Federated"],
        idp.arn()
    );
    assert_eq!(
        web_app.trust_policy["Statement"][0]["Condition"]["StringEquals"]
            ["oidc.tollgate.example:aud"],
        "tollgate-demo"
    );
    let deployer = s.role(DEPLOYER).unwrap();
    assert_eq!(
        deployer.trust_policy["Statement"][0]["Action"],
        serde_json::json!(["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"])
    );

    for role in [DEPLOYER, "arn:aws:iam::123456789012:role/web-app"] {
        let trust = s.trust_policy(role).unwrap();
        assert_eq!(trust.policies.len(), 1, "{role}");
        assert_eq!(
            trust.policies[0].policy_type,
            crate::policy::PolicyType::Trust
        );
        assert_eq!(&*trust.policies[0].id, format!("{role}/trust-policy"));
    }
    assert!(s
        .trust_policy("arn:aws:iam::123456789012:user/admin")
        .is_none());
    assert!(s.policy_warnings.is_empty(), "{:?}", s.policy_warnings);
}

#[test]
fn snapshot_debug_hides_the_session_token_keys() {
    let shown = format!("{:?}", load_demo(1).unwrap());
    assert!(shown.contains("demo-1"), "{shown}");
    assert!(shown.contains("oidc.tollgate.example"), "{shown}");
    assert!(!shown.contains(DEMO_STS_KEY));
    assert!(!shown.contains("tollgate-demo-sts-key"));
    // The inline key set is summarised, not printed.
    assert!(!shown.contains("\"kty\""), "{shown}");
}

#[test]
fn sts_config_compiles() {
    let dir = sts_dir(&sts_config(), &sts_secrets());
    let s = load_in(dir.path(), &[]).unwrap();
    let sts = s.sts.as_ref().unwrap();
    assert_eq!(sts.ring.kids().collect::<Vec<_>>(), ["2026-11", "2026-10"]);
    assert!(opens(&sts.ring, &ring_of("2026-11", 1)));
    assert!(!opens(&sts.ring, &ring_of("2026-11", 2)));
    // Tokens sealed by the older key still open.
    assert!(opens(&ring_of("2026-10", 2), &sts.ring));

    // 2026-11-28T12:00:00Z (the second entry says 13:00 at +01:00) and 2026-01-01T00:00:00Z.
    let (nov28, jan1) = (1_795_867_200, 1_767_225_600);
    let r = &sts.revocations;
    assert_eq!(r.len(), 3);
    assert_eq!(
        r.entries()[0],
        Revocation {
            target: RevocationTarget::Role(DEPLOYER.into()),
            before: nov28
        }
    );
    assert_eq!(r.entries()[1].before, nov28);
    assert_eq!(r.entries()[2].before, jan1);
    let other = "999999999999";
    assert!(r.revoked(nov28 - 1, Some(DEPLOYER), &[], other));
    assert!(!r.revoked(nov28, Some(DEPLOYER), &[], other));
    assert!(r.revoked(nov28 - 1, None, &[ALICE], other));
    assert!(r.revoked(
        nov28 - 1,
        Some("arn:aws:iam::999999999999:role/x"),
        &["a", ALICE],
        other
    ));
    assert!(!r.revoked(nov28, None, &[ALICE], other));
    assert!(r.revoked(jan1 - 1, None, &[], "123456789012"));
    assert!(!r.revoked(jan1, None, &[], "123456789012"));
    assert!(!r.revoked(0, None, &["arn:aws:iam::123456789012:user/bob"], other));

    let providers = &sts.oidc_providers;
    assert_eq!(providers.len(), 2);
    assert_eq!(providers[0].account, "123456789012");
    assert_eq!(
        providers[0].provider.provider(),
        "token.actions.githubusercontent.com"
    );
    assert_eq!(
        providers[0].provider.jwks(),
        &crate::sts::oidc::JwksSource::Inline(TEST_JWKS.to_owned())
    );
    assert_eq!(
        providers[0].provider.refresh(),
        crate::sts::oidc::DEFAULT_REFRESH
    );
    assert_eq!(
        providers[1].provider.provider(),
        "idp.example.com/realms/main"
    );
    assert_eq!(providers[1].provider.audiences(), ["web", "cli"]);
    assert_eq!(
        providers[1].provider.jwks(),
        &crate::sts::oidc::JwksSource::Url("https://idp.example.com/realms/main/certs".into())
    );
    assert_eq!(providers[1].provider.refresh(), Duration::from_secs(600));
    assert_eq!(
        s.oidc_provider_for_issuer("token.actions.githubusercontent.com"),
        Some(&providers[0])
    );
    assert_eq!(
        s.oidc_provider_for_issuer("https://idp.example.com/realms/main/"),
        Some(&providers[1])
    );

    let trust = s.trust_policy(DEPLOYER).unwrap();
    assert_eq!(
        trust.policies[0].policy_type,
        crate::policy::PolicyType::Trust
    );
    assert!(s.policy_warnings.is_empty(), "{:?}", s.policy_warnings);
}

#[test]
fn without_sts_there_are_no_sts_settings_but_trust_policies_compile() {
    let dir = sts_dir(&with_role(MINIMAL), MINIMAL_SECRETS);
    let s = load_in(dir.path(), &[]).unwrap();
    assert!(s.sts.is_none());
    assert!(s
        .oidc_provider_for_issuer("https://oidc.tollgate.example")
        .is_none());
    assert!(s.trust_policy(DEPLOYER).is_some());
    assert!(s
        .trust_policy("arn:aws:iam::123456789012:role/other")
        .is_none());
}

#[test]
fn sts_keys_come_from_the_environment_first() {
    // The variable wins over the file.
    let dir = sts_dir(&sts_config(), &sts_secrets());
    let s = load_in(dir.path(), &[("TOLLGATE_STS_KEY_2026_11", STS_KEY_3)]).unwrap();
    let ring = &s.sts.as_ref().unwrap().ring;
    assert!(opens(ring, &ring_of("2026-11", 3)));
    assert!(!opens(ring, &ring_of("2026-11", 1)));

    // The environment alone is enough; URL-safe base64 without padding is accepted.
    let config = sts_config().replace("secrets_file = \"tollgate.secrets.toml\"", "");
    let dir = sts_dir(&config, "");
    let s = load_in(
        dir.path(),
        &[
            ("TOLLGATE_SECRET_AKIAAAAAAAAAAAAAAAAA", SECRET),
            (
                "TOLLGATE_STS_KEY_2026_11",
                "__________________________________________8",
            ),
            ("TOLLGATE_STS_KEY_2026_10", STS_KEY_2),
        ],
    )
    .unwrap();
    assert!(opens(
        &s.sts.as_ref().unwrap().ring,
        &ring_of("2026-11", 0xff)
    ));

    // A bad variable is reported under its name, without its value, even with a good file entry.
    let dir = sts_dir(&sts_config(), &sts_secrets());
    let bad = "c2VjcmV0LXNob3J0";
    let findings = findings_of(load_in(dir.path(), &[("TOLLGATE_STS_KEY_2026_10", bad)]));
    assert_eq!(
        findings,
        [
            "environment: TOLLGATE_STS_KEY_2026_10: must be the base64 of exactly 32 bytes, \
             not 12; generate one with `head -c 32 /dev/urandom | base64`"
        ]
    );

    // Neither a variable nor a secrets file.
    let dir = sts_dir(&config, "");
    let findings = findings_of(load_in(
        dir.path(),
        &[
            ("TOLLGATE_SECRET_AKIAAAAAAAAAAAAAAAAA", SECRET),
            ("TOLLGATE_STS_KEY_2026_11", STS_KEY_1),
        ],
    ));
    let file = dir.path().join("tollgate.toml").display().to_string();
    assert_eq!(
        findings,
        [format!(
            "{file}: sts.keys[1]: no key for `2026-10`: set TOLLGATE_STS_KEY_2026_10 or name a \
             `secrets_file`"
        )]
    );
}

#[test]
fn sts_key_findings_never_show_keys() {
    let config = with_role(MINIMAL)
        + r#"
[sts]
keys = ["good-1", "good-1", "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=", "missing",
        "bad-b64", "short", "A_B", "a-b", "newline"]
"#;
    let secrets = format!(
        "{MINIMAL_SECRETS}[sts_keys]\ngood-1 = \"{STS_KEY_1}\"\n\
         bad-b64 = \"ThisIsNot*Base64*AtAll\"\nshort = \"c2VjcmV0LXNob3J0\"\n\
         A_B = \"{STS_KEY_2}\"\na-b = \"{STS_KEY_3}\"\nnewline = \"{STS_KEY_3}\\n\"\n\
         unused = \"not even base64 but never used\"\n"
    );
    let dir = sts_dir(&config, &secrets);
    let findings = findings_of(load_in(dir.path(), &[]));
    let file = dir.path().join("tollgate.toml").display().to_string();
    let secrets_file = dir
        .path()
        .join("tollgate.secrets.toml")
        .display()
        .to_string();
    let expected = [
        format!("{file}: sts.keys[1]: duplicate key id `good-1` (also sts.keys[0])"),
        format!(
            "{file}: sts.keys[2]: is not a key id (1 to 32 of A-Z a-z 0-9 _ -); the key itself \
             goes under [sts_keys] in the secrets file"
        ),
        format!(
            "{file}: sts.keys[3]: no key for `missing`: add it under [sts_keys] in \
             `{secrets_file}` or set TOLLGATE_STS_KEY_MISSING"
        ),
        format!(
            "{secrets_file}: sts_keys.bad-b64: is not base64; generate one with \
             `head -c 32 /dev/urandom | base64`"
        ),
        format!(
            "{secrets_file}: sts_keys.short: must be the base64 of exactly 32 bytes, not 12; \
             generate one with `head -c 32 /dev/urandom | base64`"
        ),
        format!(
            "{file}: sts.keys[7]: key ids `A_B` (sts.keys[6]) and `a-b` would share the \
             environment variable TOLLGATE_STS_KEY_A_B; rename one"
        ),
        format!(
            "{secrets_file}: sts_keys.newline: contains whitespace, control or non-ASCII \
             characters (a trailing newline?)"
        ),
    ];
    assert_eq!(findings, expected);
    let everything = findings.concat();
    for secret in [
        "ThisIsNot",
        "c2VjcmV0",
        "q83vEjRW",
        "AQEBAQ",
        "AgICAg",
        "AwMDAw",
        "not even",
    ] {
        assert!(!everything.contains(secret), "shows `{secret}`");
    }

    // An empty key list.
    let config = with_role(MINIMAL) + "[sts]\nkeys = []\n";
    let dir = sts_dir(&config, &sts_secrets());
    assert_eq!(
        findings_of(load_in(dir.path(), &[])),
        [format!(
            "{file}: sts.keys: must list at least one key id, newest first (the first seals new \
             session tokens; the keys themselves go under [sts_keys] in the secrets file)",
            file = dir.path().join("tollgate.toml").display()
        )]
    );
}

#[test]
fn revocation_findings() {
    let config = with_role(MINIMAL)
        + r#"
[sts]
keys = ["2026-11"]

[[sts.revocations]]
before = "2026-11-28T12:00:00Z"

[[sts.revocations]]
role = "arn:aws:iam::123456789012:role/deployer"
account = "123456789012"
before = "2026-11-28T12:00:00Z"

[[sts.revocations]]
role = "arn:aws:iam::123456789012:role/deployer"
before = "yesterday"

[[sts.revocations]]
role = "arn:aws:iam::123456789012:role/nope"
before = "2026-11-28T12:00:00Z"

[[sts.revocations]]
account = "999999999999"
before = "2026-11-28T12:00:00Z"

[[sts.revocations]]
account = "12345"
before = "2026-11-28T12:00:00Z"

[[sts.revocations]]
principal = "arn:aws:iam::123456789012:role/deployer"
before = "2026-11-28T12:00:00Z"

[[sts.revocations]]
role = "arn:aws:iam::123456789012:role/deployer"

[[sts.revocations]]
principal = "arn:aws:iam::123456789012:user/ghost"
before = "2026-02-30T12:00:00Z"

[[sts.revocations]]
principal = "alice"
before = 5

[[sts.revocations]]
role = "arn:aws:iam::123456789012:user/alice"
before = 2026-11-28T12:00:00
"#;
    let dir = sts_dir(&config, &sts_secrets());
    let findings = findings_of(load_in(dir.path(), &[]));
    let example = "(date, `T`, time to the second, then `Z` or an offset such as +01:00)";
    for expected in [
        "sts.revocations[0]: needs one of `role`, `principal` or `account`: whose sessions to \
         revoke"
            .to_owned(),
        "sts.revocations[1]: give only one of `role`, `principal` and `account` (one entry per \
         target)"
            .to_owned(),
        format!(
            "sts.revocations[2].before: `yesterday` is not a time such as 2026-11-28T12:00:00Z \
             {example}"
        ),
        "sts.revocations[3].role: unknown role `arn:aws:iam::123456789012:role/nope` (no \
         [[roles]] entry has this ARN)"
            .to_owned(),
        "sts.revocations[4].account: account `999999999999` is not defined in [[accounts]]"
            .to_owned(),
        "sts.revocations[5].account: `12345` is not an account id (12 digits)".to_owned(),
        "sts.revocations[6].principal: `arn:aws:iam::123456789012:role/deployer` is a role: use \
         `role = …`"
            .to_owned(),
        "sts.revocations[7].before: is required: sessions issued before this time are refused, \
         e.g. \"2026-11-28T12:00:00Z\""
            .to_owned(),
        "sts.revocations[8].principal: unknown user `arn:aws:iam::123456789012:user/ghost` (no \
         [[users]] entry has this ARN)"
            .to_owned(),
        format!(
            "sts.revocations[8].before: `2026-02-30T12:00:00Z` is not a time such as \
             2026-11-28T12:00:00Z {example}"
        ),
        "sts.revocations[9].principal: `alice` is not a user ARN \
         (arn:aws:iam::<account>:user<path><name>)"
            .to_owned(),
        "sts.revocations[9].before: must be a time such as \"2026-11-28T12:00:00Z\"".to_owned(),
        "sts.revocations[10].role: `arn:aws:iam::123456789012:user/alice` is a user: use \
         `principal = …`"
            .to_owned(),
        format!(
            "sts.revocations[10].before: `2026-11-28T12:00:00` is not a time such as \
             2026-11-28T12:00:00Z {example}"
        ),
    ] {
        assert_ends(&findings, &expected);
    }
    assert_eq!(findings.len(), 14, "{findings:#?}");
}

#[test]
fn oidc_provider_findings() {
    let config = with_role(MINIMAL)
        + &format!(
            r#"
[sts]
keys = ["2026-11"]

[[oidc_providers]]
url = "http://idp.example.com"
audiences = []
jwks_file = "jwks.json"
jwks_url = "https://idp.example.com/keys"

[[oidc_providers]]
account = "999999999999"
url = "https://a.example"
audiences = ["x"]
jwks = '{{"keys": []}}'

[[oidc_providers]]
url = "https://b.example"
audiences = ["x"]
jwks_file = "nope.json"

[[oidc_providers]]
url = "https://c.example"
audiences = ["x"]
jwks_url = "https://c.example/keys"
refresh_seconds = 10

[[oidc_providers]]
url = "https://d.example"
audiences = ["x"]
jwks_file = "jwks.json"
refresh_seconds = 600

[[oidc_providers]]
url = "https://e.example"
audiences = ["ok", ""]
jwks = '''{TEST_JWKS}'''

[[oidc_providers]]
url = "https://token.example"
audiences = ["x"]
jwks_file = "jwks.json"

[[oidc_providers]]
url = "https://token.example/"
audiences = ["y"]
jwks_file = "jwks.json"

[[oidc_providers]]
url = "https://f.example"
audiences = ["x"]

[[oidc_providers]]
audiences = ["x"]
jwks_url = "ftp://g.example/keys"

[[oidc_providers]]
url = "https://h.example"
audiences = ["x"]
jwks_url = "ftp://h.example/keys"

[[oidc_providers]]
url = "https://i.example"
audiences = ["x"]
jwks_file = "not-jwks.json"
"#
        );
    let dir = dir_with(&[
        ("tollgate.toml", &config),
        ("tollgate.secrets.toml", &sts_secrets()),
        ("trust.json", TRUST_ALICE),
        ("jwks.json", TEST_JWKS),
        ("not-jwks.json", "{\"keys\": 5}"),
    ]);
    let findings = findings_of(load_in(dir.path(), &[]));
    let nope = dir.path().join("nope.json").display().to_string();
    let not_jwks = dir.path().join("not-jwks.json").display().to_string();
    for expected in [
        "oidc_providers[0].url: `http://idp.example.com` must begin with https://".to_owned(),
        "oidc_providers[0].audiences: must list 1 to 100 client ids (the `aud` values tokens \
         may carry), not 0"
            .to_owned(),
        "oidc_providers[0]: give only one of `jwks_file`, `jwks_url` and `jwks`".to_owned(),
        "oidc_providers[1].account: account `999999999999` is not defined in [[accounts]]"
            .to_owned(),
        "oidc_providers[1].jwks: jwks document has no usable signing key (RSA 2048-4096 bits, \
         EC P-256 or P-384)"
            .to_owned(),
        format!("oidc_providers[2].jwks_file: cannot read `{nope}`: "),
        "oidc_providers[3].refresh_seconds: must be at least 60".to_owned(),
        "oidc_providers[4].refresh_seconds: applies only to `jwks_url` (a `jwks_file` is read \
         when the configuration is loaded)"
            .to_owned(),
        "oidc_providers[5].audiences[1]: must be 1 to 255 characters without control characters"
            .to_owned(),
        "oidc_providers[7].url: issuer `https://token.example/` is also configured by \
         oidc_providers[6]; an issuer can be trusted by one provider entry only"
            .to_owned(),
        "oidc_providers[8]: needs one of `jwks_file`, `jwks_url` or `jwks` (inline JSON): where \
         the provider's signing keys come from"
            .to_owned(),
        "oidc_providers[9].url: is required: the issuer URL that tokens carry in `iss`, e.g. \
         \"https://token.actions.githubusercontent.com\""
            .to_owned(),
        "oidc_providers[10].jwks_url: jwks url `ftp://h.example/keys` must be an http:// or \
         https:// url with a host"
            .to_owned(),
        format!("oidc_providers[11].jwks_file: `{not_jwks}`: jwks document has no `keys` array"),
    ] {
        assert!(
            findings.iter().any(|f| f.contains(&expected)),
            "missing finding:\n  {expected}\nin:\n  {}",
            findings.join("\n  ")
        );
    }
    assert_eq!(findings.len(), 14, "{findings:#?}");

    // Providers need [sts]: their sessions are sealed with its keys.
    let config = with_role(MINIMAL)
        + "[[oidc_providers]]\nurl = \"https://a.example\"\naudiences = [\"x\"]\n\
           jwks_file = \"jwks.json\"\n";
    let dir = sts_dir(&config, MINIMAL_SECRETS);
    assert_eq!(
        findings_of(load_in(dir.path(), &[])),
        [format!(
            "{}: oidc_providers: needs an [sts] section with session-token keys: web identity \
             sessions are sealed with them",
            dir.path().join("tollgate.toml").display()
        )]
    );
}

#[test]
fn plain_http_jwks_url_is_a_warning() {
    let config = with_role(MINIMAL)
        + "[sts]\nkeys = [\"2026-11\"]\n[[oidc_providers]]\nurl = \"https://dex.local\"\n\
           audiences = [\"x\"]\njwks_url = \"http://dex.local:5556/keys\"\n";
    let dir = sts_dir(&config, &sts_secrets());
    let s = load_in(dir.path(), &[]).unwrap();
    let warnings: Vec<String> = s.policy_warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [format!(
            "{}: oidc_providers[0].jwks_url: uses plain http: anyone on the path can replace \
             the keys",
            dir.path().join("tollgate.toml").display()
        )]
    );
}

#[test]
fn unknown_sts_keys_are_refused_by_the_schema() {
    let config = with_role(MINIMAL) + "[sts]\nkeys = [\"k\"]\nkey = \"oops\"\n";
    let dir = sts_dir(&config, &sts_secrets());
    let findings = findings_of(load_in(dir.path(), &[]));
    assert_eq!(findings.len(), 1);
    assert!(findings[0].contains("unknown field `key`"), "{findings:?}");
}

#[test]
fn revocations_keep_the_latest_cutoff_per_target() {
    let r = Revocations::new(vec![
        Revocation {
            target: RevocationTarget::Role(DEPLOYER.into()),
            before: 200,
        },
        Revocation {
            target: RevocationTarget::Role(DEPLOYER.into()),
            before: 100,
        },
        Revocation {
            target: RevocationTarget::Principal(ALICE.into()),
            before: 50,
        },
    ]);
    assert_eq!(r.len(), 3);
    assert!(r.revoked(199, Some(DEPLOYER), &[], "123456789012"));
    assert!(!r.revoked(200, Some(DEPLOYER), &[ALICE], "123456789012"));
    assert!(r.revoked(49, None, &[ALICE], "123456789012"));
    assert!(!r.revoked(49, None, &[], "123456789012"));
    assert!(!Revocations::default().revoked(i64::MIN, Some(DEPLOYER), &[ALICE], "1"));
}

/// The worked example's commented-out `[sts]` block, uncommented, validates.
#[test]
fn worked_example_sts_block_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let text = std::fs::read_to_string(root.join("tollgate.toml")).unwrap();
    let start = text.find("\n# [sts]\n").unwrap() + 1;
    let (head, block) = text.split_at(start);
    let uncommented: String = block
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .unwrap_or(l.strip_prefix('#').unwrap_or(l))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let secrets = std::fs::read_to_string(root.join("tollgate.secrets.toml.example")).unwrap();
    let secrets = format!(
        "{secrets}\n[sts_keys]\n\"2026-11\" = \"{STS_KEY_1}\"\n\"2026-10\" = \"{STS_KEY_2}\"\n"
    );
    let mut files: Vec<(String, String)> = vec![
        ("tollgate.toml".into(), format!("{head}{uncommented}")),
        ("tollgate.secrets.toml".into(), secrets),
    ];
    for entry in std::fs::read_dir(root.join("policies")).unwrap() {
        let entry = entry.unwrap();
        files.push((
            format!("policies/{}", entry.file_name().to_string_lossy()),
            std::fs::read_to_string(entry.path()).unwrap(),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let dir = dir_with(&refs);
    let s = load_in(dir.path(), &[]).unwrap();
    let sts = s.sts.as_ref().unwrap();
    assert_eq!(sts.ring.kids().collect::<Vec<_>>(), ["2026-11", "2026-10"]);
    assert_eq!(sts.revocations.len(), 3);
    assert_eq!(
        sts.oidc_providers[0].arn(),
        "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
    );
    assert!(s
        .trust_policy("arn:aws:iam::111122223333:role/ci/orders-deployer")
        .is_some());
}
