//! Authorization end to end: every mapping mode, AWS's AccessDenied bodies, organizations (SCPs
//! per level, the management account), resource policies, unmatched requests.

use std::path::Path;

use aws_sigv4::http_request::SignableBody;

use crate::proxy::{error_code, send_raw, signed_headers, RawResponse};
use crate::support::Tollgate;

fn message(body: &str) -> &str {
    body.split("<Message>")
        .nth(1)
        .and_then(|s| s.split("</Message>").next())
        .unwrap_or("")
}

fn get(
    tg: &Tollgate,
    key: (&str, &str),
    service: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> RawResponse {
    let url = format!("{}{path_and_query}", tg.proxy_url());
    let headers = signed_headers(method, &url, service, SignableBody::Bytes(body), extra, key);
    send_raw(&tg.proxy_addr, method, path_and_query, &headers, body)
}

#[test]
fn demo_enforces_read_only_for_reader_and_everything_for_admin() {
    let tg = Tollgate::demo();
    let reader = tg.key("reader");
    let admin = tg.key("admin");
    let r = (
        reader.access_key_id.as_str(),
        reader.secret_access_key.as_str(),
    );
    let a = (
        admin.access_key_id.as_str(),
        admin.secret_access_key.as_str(),
    );

    // execute-api: GET allowed, POST denied with AWS's message.
    assert_eq!(
        get(&tg, r, "execute-api", "GET", "/orders/1", b"", &[]).status,
        200
    );
    let resp = get(&tg, r, "execute-api", "POST", "/orders", b"{}", &[]);
    assert_eq!(
        (resp.status, error_code(&resp.body)),
        (403, "AccessDenied"),
        "{}",
        resp.body
    );
    assert_eq!(
        message(&resp.body),
        "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:demo/prod/POST/orders because no identity-based policy allows the execute-api:Invoke action"
    );
    assert_eq!(
        get(&tg, a, "execute-api", "POST", "/orders", b"{}", &[]).status,
        200
    );

    // S3: reads allowed, writes denied.
    assert_eq!(
        get(&tg, r, "s3", "GET", "/demo/report.csv", b"", &[]).status,
        200
    );
    assert_eq!(
        get(&tg, r, "s3", "GET", "/demo?list-type=2&prefix=a", b"", &[]).status,
        200
    );
    let resp = get(&tg, r, "s3", "PUT", "/demo/report.csv", b"data", &[]);
    assert_eq!(
        (resp.status, error_code(&resp.body)),
        (403, "AccessDenied"),
        "{}",
        resp.body
    );
    assert_eq!(
        message(&resp.body),
        "User: arn:aws:iam::123456789012:user/reader is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::demo/report.csv because no identity-based policy allows the s3:PutObject action"
    );
    assert_eq!(
        get(&tg, r, "s3", "DELETE", "/demo/report.csv", b"", &[]).status,
        403
    );
    assert_eq!(
        get(&tg, a, "s3", "PUT", "/demo/report.csv", b"data", &[]).status,
        200
    );

    // STS (answered by Tollgate itself): GetCallerIdentity for anyone, AssumeRole of deployer
    // refused by its trust policy.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let resp = get(
        &tg,
        r,
        "sts",
        "POST",
        "/",
        b"Action=GetCallerIdentity&Version=2011-06-15",
        &form,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = get(&tg, r, "sts", "POST", "/", b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/deployer&RoleSessionName=sess", &form);
    assert_eq!(
        (resp.status, error_code(&resp.body)),
        (403, "AccessDenied"),
        "{}",
        resp.body
    );
    assert!(message(&resp.body).contains("sts:AssumeRole"));
}

const ORG: &str = r#"secrets_file = "secrets.toml"

[auth]
regions = ["us-east-1"]
services = ["execute-api", "s3", "dynamodb"]
unsigned_payload_services = ["s3"]

[listeners]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"

[upstream]
url = "builtin:echo"

[organization]
id = "o-a1b2c3d4e5"
management_account = "111111111111"

[[organization.units]]
id = "ou-ab12-11111111"
name = "prod"
scps = ["FullAWSAccess", "DenyDeletes"]

[[organization.units]]
id = "ou-ab12-22222222"
name = "locked"
scps = ["DenyDeletes"]

[[organization.policies]]
name = "DenyDeletes"
type = "scp"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}'''

[[accounts]]
id = "111111111111"
name = "management"
parent = "ou-ab12-11111111"

[[accounts]]
id = "222222222222"
name = "prod"
parent = "ou-ab12-11111111"

[[accounts]]
id = "333333333333"
name = "locked"
parent = "ou-ab12-22222222"

[[policies]]
account = "111111111111"
name = "Everything"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'''

[[policies]]
account = "222222222222"
name = "Everything"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'''

[[policies]]
account = "333333333333"
name = "Everything"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'''

[[policies]]
account = "222222222222"
name = "TableReader"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}]}'''

[[users]]
account = "111111111111"
name = "root-admin"
policies = ["Everything"]
[[users.access_keys]]
id = "AKIAMGMT000000000001"

[[users]]
account = "222222222222"
name = "prod-admin"
policies = ["Everything"]
[[users.access_keys]]
id = "AKIAPROD000000000001"

[[users]]
account = "333333333333"
name = "locked-admin"
policies = ["Everything"]
[[users.access_keys]]
id = "AKIALOCK000000000001"

[[users]]
account = "222222222222"
name = "carol"
policies = ["TableReader"]
[[users.access_keys]]
id = "AKIACAROL00000000001"

[[users]]
account = "222222222222"
name = "dave"
[[users.access_keys]]
id = "AKIADAVE000000000001"

[[resources]]
arns = ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"]
account = "222222222222"
policy = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:user/dave"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/*"}]}'''

[[resources]]
arns = ["arn:aws:s3:::mgmt", "arn:aws:s3:::mgmt/*"]
account = "111111111111"

[[mappings]]
service = "s3"
mode = "s3"
account = "222222222222"

[[mappings]]
service = "dynamodb"
mode = "aws-json"
account = "222222222222"
resource = "arn:aws:dynamodb:${region}:${account}:table/*"

[[mappings]]
service = "execute-api"
mode = "rest"
account = "222222222222"
[[mappings.routes]]
method = "GET"
path = "/orders/{id}"
action = "orders:GetOrder"
resource = "arn:aws:orders:${region}:${account}:order/{id}"
"#;

const SECRET: &str = "orgTestSecret/EXAMPLEKEY+0000000000000001";

fn org_tollgate(dir: &Path) -> Tollgate {
    std::fs::write(dir.join("tollgate.toml"), ORG).unwrap();
    let secrets = dir.join("secrets.toml");
    let ids = [
        "AKIAMGMT000000000001",
        "AKIAPROD000000000001",
        "AKIALOCK000000000001",
        "AKIACAROL00000000001",
        "AKIADAVE000000000001",
    ];
    let body: String = ids
        .iter()
        .map(|id| format!("{id} = \"{SECRET}\"\n"))
        .collect();
    crate::support::write_private(&secrets, &format!("[access_keys]\n{body}"));
    Tollgate::start(
        &[
            "serve",
            "--config",
            &dir.join("tollgate.toml").to_string_lossy(),
        ],
        true,
    )
}

#[test]
fn organizations_scps_per_level_and_the_management_account() {
    let dir = tempfile::tempdir().unwrap();
    let tg = org_tollgate(dir.path());
    let prod = ("AKIAPROD000000000001", SECRET);
    let mgmt = ("AKIAMGMT000000000001", SECRET);
    let locked = ("AKIALOCK000000000001", SECRET);

    // The OU's SCP denies deletes for every account under it, even for an admin…
    assert_eq!(
        get(&tg, prod, "s3", "GET", "/bucket/k", b"", &[]).status,
        200
    );
    let resp = get(&tg, prod, "s3", "DELETE", "/bucket/k", b"", &[]);
    assert_eq!(
        (resp.status, error_code(&resp.body)),
        (403, "AccessDenied"),
        "{}",
        resp.body
    );
    assert_eq!(
        message(&resp.body),
        "User: arn:aws:iam::222222222222:user/prod-admin is not authorized to perform: s3:DeleteObject on resource: arn:aws:s3:::bucket/k with an explicit deny in a service control policy"
    );
    // …but not for the management account (on its own bucket), which SCPs don't affect.
    assert_eq!(
        get(&tg, mgmt, "s3", "DELETE", "/mgmt/k", b"", &[]).status,
        200
    );
    // Cross-account: the bucket's account has no policy letting the management account in.
    let resp = get(&tg, mgmt, "s3", "GET", "/bucket/k", b"", &[]);
    assert_eq!(resp.status, 403, "{}", resp.body);
    assert!(
        message(&resp.body)
            .ends_with("because no resource-based policy allows the s3:GetObject action"),
        "{}",
        resp.body
    );
    // An OU whose only SCP allows nothing denies everything below it.
    let resp = get(&tg, locked, "s3", "GET", "/bucket/k", b"", &[]);
    assert_eq!(resp.status, 403, "{}", resp.body);
    assert!(
        message(&resp.body)
            .ends_with("because no service control policy allows the s3:GetObject action"),
        "{}",
        resp.body
    );
}

#[test]
fn aws_json_rest_and_resource_policies() {
    let dir = tempfile::tempdir().unwrap();
    let tg = org_tollgate(dir.path());
    let carol = ("AKIACAROL00000000001", SECRET);
    let dave = ("AKIADAVE000000000001", SECRET);
    let prod = ("AKIAPROD000000000001", SECRET);
    let json = |target: &'static str| {
        [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", target),
        ]
    };

    // awsJson: the action comes from X-Amz-Target; denials are JSON.
    assert_eq!(
        get(
            &tg,
            carol,
            "dynamodb",
            "POST",
            "/",
            b"{}",
            &json("DynamoDB_20120810.GetItem")
        )
        .status,
        200
    );
    let resp = get(
        &tg,
        carol,
        "dynamodb",
        "POST",
        "/",
        b"{}",
        &json("DynamoDB_20120810.PutItem"),
    );
    assert_eq!(resp.status, 403, "{}", resp.body);
    let v: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(v["__type"], "AccessDeniedException");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:222222222222:table/*"));
    // Two targets: which one would the service run? Refused, whatever they are.
    let resp = get(
        &tg,
        carol,
        "dynamodb",
        "POST",
        "/",
        b"{}",
        &[
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "DynamoDB_20120810.GetItem"),
            ("x-amz-target", "DynamoDB_20120810.DeleteTable"),
        ],
    );
    assert_eq!(resp.status, 403, "{}", resp.body);
    assert!(
        resp.body.contains("more than one X-Amz-Target header"),
        "{}",
        resp.body
    );
    // No target: unmatched, denied.
    assert_eq!(
        get(
            &tg,
            carol,
            "dynamodb",
            "POST",
            "/",
            b"{}",
            &[("content-type", "application/x-amz-json-1.0")]
        )
        .status,
        403
    );

    // rest: a route maps, anything else is denied (default deny).
    assert_eq!(
        get(&tg, prod, "execute-api", "GET", "/orders/7", b"", &[]).status,
        200
    );
    let resp = get(&tg, prod, "execute-api", "GET", "/admin", b"", &[]);
    assert_eq!(
        (resp.status, error_code(&resp.body)),
        (403, "AccessDenied"),
        "{}",
        resp.body
    );
    assert!(
        message(&resp.body).contains("no route matches GET /admin"),
        "{}",
        resp.body
    );

    // A bucket policy naming dave grants what no identity policy of his does.
    assert_eq!(
        get(&tg, dave, "s3", "GET", "/shared/doc.txt", b"", &[]).status,
        200
    );
    let resp = get(&tg, dave, "s3", "GET", "/private/doc.txt", b"", &[]);
    assert_eq!(resp.status, 403, "{}", resp.body);
    assert_eq!(
        get(&tg, dave, "s3", "PUT", "/shared/doc.txt", b"x", &[]).status,
        403
    );
}

/// A request the upstream could read as another than the one authorized is refused, not
/// mapped: dot segments, percent-encoded too (`/orders/../admin` matches an allow on `orders/*`
/// as written, and is `/admin` to a server that normalizes paths). Empty segments are mapped
/// merged, as SigV4 and servers that merge slashes read them: `//admin/x` meets the Deny on
/// `admin/*`.
#[test]
fn paths_an_upstream_could_read_as_another_resource_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"},{"Effect":"Deny","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:api/prod/GET/admin/*"}]}"#,
    )
    .unwrap();
    let config = crate::proxy::write_config_with_policy(
        dir.path(),
        "builtin:echo",
        "",
        5000,
        r#"file = "policy.json""#,
    );
    let tg = Tollgate::start(&["serve", "--config", &config], true);
    let me = (crate::proxy::KEY_ID, crate::proxy::SECRET);
    for path in [
        "/orders/7",
        "/orders/",
        "/orders//7",
        "/orders/a%2Fb",
        "/orders/7?x=../y",
    ] {
        let resp = get(&tg, me, "execute-api", "GET", path, b"", &[]);
        assert_eq!(resp.status, 200, "{path}: {}", resp.body);
    }
    // Each refused with AccessDenied and the reason in the message.
    let refused = |paths: &[&str], reason: &str| {
        for path in paths {
            let resp = get(&tg, me, "execute-api", "GET", path, b"", &[]);
            assert_eq!(
                (resp.status, error_code(&resp.body)),
                (403, "AccessDenied"),
                "{path}: {}",
                resp.body
            );
            assert!(
                message(&resp.body).contains(reason),
                "{path}: {}",
                resp.body
            );
        }
    };
    refused(
        &["/admin/x", "//admin/x", "/admin//x"],
        "with an explicit deny",
    );
    refused(
        &[
            "/orders/../admin/x",
            "/orders/%2e%2E/admin/x",
            "/orders/./7",
            "/orders/7/..",
        ],
        "could read it as another request",
    );
}

#[test]
fn refusals_that_leave_a_body_unread_close_the_connection() {
    use std::io::{Read, Write};
    let tg = Tollgate::demo();
    let reader = tg.key("reader");
    let url = format!("{}/orders", tg.proxy_url());
    let body = vec![b'x'; 100_000];
    let headers = signed_headers(
        "POST",
        &url,
        "execute-api",
        SignableBody::Bytes(&body),
        &[],
        (&reader.access_key_id, &reader.secret_access_key),
    );
    let mut s = std::net::TcpStream::connect(&tg.proxy_addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut head = String::from("POST /orders HTTP/1.1\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(&body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 403"), "{text}");
    assert!(
        text.contains("\r\nconnection: close\r\n"),
        "a refusal with an unread body must say it closes the connection:\n{text}"
    );
}
