//! STS end to end: credentials issued by one Tollgate accepted by another that shares the key
//! ring; expired, foreign-key, rotated-out and revoked sessions refused with AWS's codes.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::SignableBody;
use tollgate::sts::token::{self, KeyRing, SessionClaims, SessionKind};

use crate::proxy::{error_code, send_raw, signed_headers, signed_headers_with_token, RawResponse};
use crate::support::Tollgate;

/// The demo's key `demo-1` (config/demo.secrets.toml; public, demo only).
const DEMO_KEY: &[u8; 32] = b"tollgate-demo-sts-key-DEMO-ONLY!";
const DEPLOYER: &str = "arn:aws:iam::123456789012:role/deployer";

struct Creds {
    access_key_id: String,
    secret: String,
    token: String,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn element<'a>(xml: &'a str, name: &str) -> &'a str {
    xml.split(&format!("<{name}>"))
        .nth(1)
        .and_then(|s| s.split(&format!("</{name}>")).next())
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
}

fn sts_call(tg: &Tollgate, key: (&str, &str), token: Option<&str>, form: &str) -> RawResponse {
    let url = format!("{}/", tg.proxy_url());
    let extra = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let headers = signed_headers_with_token(
        "POST",
        &url,
        "sts",
        SignableBody::Bytes(form.as_bytes()),
        &extra,
        key,
        token,
    );
    send_raw(&tg.proxy_addr, "POST", "/", &headers, form.as_bytes())
}

fn api(tg: &Tollgate, c: &Creds, method: &str, path: &str) -> RawResponse {
    let url = format!("{}{path}", tg.proxy_url());
    let headers = signed_headers_with_token(
        method,
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (&c.access_key_id, &c.secret),
        Some(&c.token),
    );
    send_raw(&tg.proxy_addr, method, path, &headers, b"")
}

fn assume_deployer(tg: &Tollgate, session: &str) -> Creds {
    let admin = tg.key("admin");
    let form = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={session}",
        DEPLOYER.replace(':', "%3A").replace('/', "%2F")
    );
    let r = sts_call(
        tg,
        (&admin.access_key_id, &admin.secret_access_key),
        None,
        &form,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    Creds {
        access_key_id: element(&r.body, "AccessKeyId").to_owned(),
        secret: element(&r.body, "SecretAccessKey").to_owned(),
        token: element(&r.body, "SessionToken").to_owned(),
    }
}

#[test]
fn credentials_from_one_replica_work_on_another() {
    let a = Tollgate::demo();
    let b = Tollgate::demo();
    let c = assume_deployer(&a, "replica");
    assert!(c.access_key_id.starts_with("ASIA"));
    // Replica B never saw the AssumeRole call.
    let r = api(&b, &c, "POST", "/deployments/1");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api(&b, &c, "GET", "/orders/1");
    assert_eq!(
        (r.status, error_code(&r.body)),
        (403, "AccessDenied"),
        "{}",
        r.body
    );
    let who = sts_call(
        &b,
        (&c.access_key_id, &c.secret),
        Some(&c.token),
        "Action=GetCallerIdentity&Version=2011-06-15",
    );
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(
        element(&who.body, "Arn"),
        "arn:aws:sts::123456789012:assumed-role/deployer/replica"
    );
    // The secret is bound to the token: the right token with a wrong secret does not verify.
    let wrong = Creds {
        secret: "x".repeat(40),
        ..c
    };
    let r = api(&b, &wrong, "POST", "/deployments/1");
    assert_eq!(
        (r.status, error_code(&r.body)),
        (403, "SignatureDoesNotMatch"),
        "{}",
        r.body
    );
}

fn claims(issued_at: i64, expires_at: i64) -> SessionClaims {
    SessionClaims {
        access_key_id: String::new(),
        issued_at,
        expires_at,
        account: "123456789012".into(),
        kind: SessionKind::AssumedRole,
        arn: "arn:aws:sts::123456789012:assumed-role/deployer/crafted".into(),
        user_id: "AROAEXAMPLE:crafted".into(),
        role_arn: Some(DEPLOYER.into()),
        role_id: None,
        session_name: Some("crafted".into()),
        source_identity: None,
        tags: vec![],
        transitive_tag_keys: vec![],
        session_policy: None,
        policy_arns: vec![],
        chained: false,
        mfa_authenticated: false,
        web_identity: None,
        parent_user_arn: Some("arn:aws:iam::123456789012:user/admin".into()),
    }
}

fn sealed(ring: &KeyRing, issued_at: i64, expires_at: i64) -> Creds {
    let issued = token::seal(
        ring,
        &claims(issued_at, expires_at),
        &mut rand::thread_rng(),
    )
    .unwrap();
    Creds {
        access_key_id: issued.access_key_id,
        secret: issued.secret_access_key.expose().to_owned(),
        token: issued.session_token.expose().to_owned(),
    }
}

#[test]
fn expired_foreign_rotated_and_revoked_sessions_are_refused() {
    let tg = Tollgate::demo();
    let demo = KeyRing::new(vec![("demo-1".into(), *DEMO_KEY)]).unwrap();
    let t = now();

    // A valid session sealed with the demo key works (the control case).
    let ok = sealed(&demo, t - 60, t + 600);
    let r = api(&tg, &ok, "POST", "/deployments/1");
    assert_eq!(r.status, 200, "{}", r.body);

    let cases = [
        (
            "expired",
            sealed(&demo, t - 7200, t - 1),
            403,
            "ExpiredToken",
        ),
        (
            "foreign key under the same key id",
            sealed(
                &KeyRing::new(vec![("demo-1".into(), [7u8; 32])]).unwrap(),
                t,
                t + 600,
            ),
            403,
            "InvalidClientTokenId",
        ),
        (
            "rotated-out key id",
            sealed(
                &KeyRing::new(vec![("demo-0".into(), *DEMO_KEY)]).unwrap(),
                t,
                t + 600,
            ),
            403,
            "InvalidClientTokenId",
        ),
    ];
    for (name, creds, status, code) in cases {
        let r = api(&tg, &creds, "POST", "/deployments/1");
        assert_eq!(
            (r.status, error_code(&r.body)),
            (status, code),
            "{name}: {}",
            r.body
        );
    }

    // The demo revokes deployer sessions issued before 2026-01-01: an older session is denied
    // explicitly, as AWS's revoke-older-sessions policy does; a newer one (above) works.
    let old = sealed(&demo, 1_750_000_000, t + 600);
    let r = api(&tg, &old, "POST", "/deployments/1");
    assert_eq!(
        (r.status, error_code(&r.body)),
        (403, "AccessDenied"),
        "{}",
        r.body
    );
    assert!(r.body.contains("with an explicit deny"), "{}", r.body);
}

#[test]
fn sts_errors_are_query_xml() {
    let tg = Tollgate::demo();
    let admin = tg.key("admin");
    let key = (
        admin.access_key_id.as_str(),
        admin.secret_access_key.as_str(),
    );
    let r = sts_call(&tg, key, None, "Action=Nope&Version=2011-06-15");
    assert_eq!(
        (r.status, error_code(&r.body)),
        (400, "InvalidAction"),
        "{}",
        r.body
    );
    let r = sts_call(
        &tg,
        key,
        None,
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeployer&RoleSessionName=a%3Ab",
    );
    assert_eq!(
        (r.status, error_code(&r.body)),
        (400, "ValidationError"),
        "{}",
        r.body
    );
    // Unsigned calls other than AssumeRoleWithWebIdentity are refused as unsigned.
    let form = b"Action=GetCallerIdentity&Version=2011-06-15";
    let headers = vec![
        ("host".to_owned(), tg.proxy_addr.to_string()),
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
    ];
    let r = send_raw(&tg.proxy_addr, "POST", "/", &headers, form);
    assert_eq!(r.status, 403, "{}", r.body);
}

#[test]
fn the_api_listener_serves_sts_only() {
    let tg = Tollgate::demo();
    let api = tg.api_addr.clone().expect("the demo runs the api listener");
    let admin = tg.key("admin");
    let key = (
        admin.access_key_id.as_str(),
        admin.secret_access_key.as_str(),
    );
    let form = "Action=GetCallerIdentity&Version=2011-06-15";
    let url = format!("http://{api}/");
    let extra = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let headers = signed_headers(
        "POST",
        &url,
        "sts",
        SignableBody::Bytes(form.as_bytes()),
        &extra,
        key,
    );
    let r = send_raw(&api, "POST", "/", &headers, form.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        element(&r.body, "Arn"),
        "arn:aws:iam::123456789012:user/admin"
    );
    // Anything else is not forwarded from the api listener.
    let url = format!("http://{api}/orders/1");
    let headers = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        key,
    );
    let r = send_raw(&api, "GET", "/orders/1", &headers, b"");
    assert_eq!(
        (r.status, error_code(&r.body)),
        (400, "InvalidAction"),
        "{}",
        r.body
    );
}

#[test]
fn signed_web_identity_calls_are_answered_from_the_token() {
    let tg = Tollgate::demo();
    let pem = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/oidc/rsa-private.pem"),
    )
    .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let claims = serde_json::json!({
        "iss": "https://oidc.tollgate.example",
        "aud": "tollgate-demo",
        "sub": "signed-caller",
        "iat": now(),
        "exp": now() + 600,
    });
    let jwt = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap();
    let form = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fweb-app&RoleSessionName=signed&WebIdentityToken={jwt}"
    );
    let reader = tg.key("reader");
    let r = sts_call(
        &tg,
        (&reader.access_key_id, &reader.secret_access_key),
        None,
        &form,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        element(&r.body, "SubjectFromWebIdentityToken"),
        "signed-caller"
    );
    assert_eq!(
        element(&r.body, "Arn"),
        "arn:aws:sts::123456789012:assumed-role/web-app/signed"
    );
}
