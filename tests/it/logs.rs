//! Logs: `--log-format json` writes one JSON object per line; every refused call gets one line
//! with its error code, status and request id; no secret, signature or session token appears.

use std::time::{Duration, Instant};

use aws_sigv4::http_request::SignableBody;
use serde_json::Value;

use crate::proxy::{send_raw, signed_headers};
use crate::support::{Tollgate, EPHEMERAL_LISTENERS};

/// The JSON log line about `request_id`, waited for (bounded).
fn log_line(tg: &Tollgate, request_id: &str) -> Value {
    let started = Instant::now();
    loop {
        let tail = tg.stderr_tail(500);
        if let Some(line) = tail.lines().find(|l| l.contains(request_id)) {
            return serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no log line names request {request_id}:\n{tail}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn json_logs_name_every_refusal_and_no_secret() {
    let mut args = vec!["--log-format", "json"];
    args.extend_from_slice(&EPHEMERAL_LISTENERS);
    let tg = Tollgate::start(&args, true);
    tg.wait_for_stdout("the demo credentials", |b| {
        b.contains("AWS_SECRET_ACCESS_KEY")
    });
    let admin = tg.key("admin");
    let host = vec![("host".to_owned(), tg.proxy_addr.clone())];

    let unsigned = send_raw(&tg.proxy_addr, "GET", "/orders/1", &host, b"");
    assert_eq!(unsigned.status, 403);
    let id = unsigned.header("x-amzn-requestid").unwrap().to_owned();
    let line = log_line(&tg, &id);
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["message"], "request refused", "{line}");
    assert_eq!(line["code"], "MissingAuthenticationToken", "{line}");
    assert_eq!(line["status"], 403, "{line}");
    assert_eq!(line["listener"], "proxy", "{line}");
    assert!(line["timestamp"].is_string(), "{line}");

    // Signed with the right key id and a wrong secret.
    let url = format!("{}/orders/1", tg.proxy_url());
    let wrong = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (
            &admin.access_key_id,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET",
        ),
    );
    let r = send_raw(&tg.proxy_addr, "GET", "/orders/1", &wrong, b"");
    assert_eq!(r.status, 403);
    let id = r.header("x-amzn-requestid").unwrap().to_owned();
    let line = log_line(&tg, &id);
    assert_eq!(line["code"], "SignatureDoesNotMatch", "{line}");

    // Allowed calls are not logged one by one; nothing secret is logged at all.
    let ok = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (&admin.access_key_id, &admin.secret_access_key),
    );
    assert_eq!(
        send_raw(&tg.proxy_addr, "GET", "/orders/1", &ok, b"").status,
        200
    );
    let logs = tg.stderr_tail(1000);
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    for secret in [
        admin.secret_access_key.as_str(),
        "WRONGSECRET",
        "Signature=",
        "tollgateDemo",
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain {secret:?}:\n{logs}"
        );
    }
}
