//! The reverse proxy with upstreams Tollgate does not control: down, hanging, recording what it
//! receives; HTTP/2 (h2c) clients; spoofed identity headers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;

use crate::support::Tollgate;

pub(crate) const KEY_ID: &str = "AKIAALICE00000000001";
pub(crate) const SECRET: &str = "aliceSecretKey/EXAMPLE+000000000000000000";

/// Writes a config (and a 0600 secrets file) into `dir` for an upstream URL.
pub(crate) fn write_config(
    dir: &Path,
    upstream: &str,
    extra_auth: &str,
    request_timeout_ms: u64,
) -> String {
    write_config_with_policy(
        dir,
        upstream,
        extra_auth,
        request_timeout_ms,
        r#"document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'''"#,
    )
}

/// [`write_config`] with alice's one policy given as its TOML source line (`document = ...` or
/// `file = "..."`).
pub(crate) fn write_config_with_policy(
    dir: &Path,
    upstream: &str,
    extra_auth: &str,
    request_timeout_ms: u64,
    policy: &str,
) -> String {
    let config = format!(
        r#"secrets_file = "secrets.toml"

[auth]
regions = ["us-east-1"]
services = ["execute-api", "s3"]
unsigned_payload_services = ["s3"]
{extra_auth}

[listeners]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"

[upstream]
url = "{upstream}"
connect_timeout_ms = 1000
request_timeout_ms = {request_timeout_ms}

[[accounts]]
id = "123456789012"
name = "test"

[[policies]]
name = "Everything"
{policy}

[[users]]
name = "alice"
policies = ["Everything"]

[[users.access_keys]]
id = "{KEY_ID}"

[[mappings]]
service = "execute-api"
mode = "rest"
[[mappings.routes]]
path = "/{{proxy+}}"
action = "execute-api:Invoke"
resource = "arn:aws:execute-api:${{region}}:${{account}}:api/prod/${{method}}/{{proxy}}"

[[mappings]]
service = "s3"
mode = "s3"
"#
    );
    std::fs::write(dir.join("tollgate.toml"), config).unwrap();
    let secrets = dir.join("secrets.toml");
    crate::support::write_private(
        &secrets,
        &format!("[access_keys]\n{KEY_ID} = \"{SECRET}\"\n"),
    );
    dir.join("tollgate.toml").to_string_lossy().into_owned()
}

pub(crate) fn start_with(config: &str) -> Tollgate {
    Tollgate::start(&["serve", "--config", config], false)
}

/// Signs a request with the `aws-sigv4` crate; returns the headers to send (host included).
pub(crate) fn signed_headers(
    method: &str,
    url: &str,
    service: &str,
    body: SignableBody<'_>,
    extra: &[(&str, &str)],
    key: (&str, &str),
) -> Vec<(String, String)> {
    signed_headers_with_token(method, url, service, body, extra, key, None)
}

/// [`signed_headers`] with temporary credentials' session token (`X-Amz-Security-Token`).
pub(crate) fn signed_headers_with_token(
    method: &str,
    url: &str,
    service: &str,
    body: SignableBody<'_>,
    extra: &[(&str, &str)],
    key: (&str, &str),
    token: Option<&str>,
) -> Vec<(String, String)> {
    let uri: http::Uri = url.parse().unwrap();
    let host = uri.authority().unwrap().as_str().to_owned();
    let mut headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
    headers.extend_from_slice(extra);
    let mut settings = SigningSettings::default();
    // botocore sends the header for S3 only; the body hash is signed either way.
    if service == "s3" {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity = Credentials::new(key.0, key.1, token.map(str::to_owned), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(method, url, headers.clone().into_iter(), body).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .unwrap();
    for (k, v) in &headers {
        req.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    instructions.apply_to_request_http1x(&mut req);
    req.headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect()
}

/// alice's signed `GET {path}` (execute-api, the key of [`write_config`]) for the listener at
/// `addr`: the headers to send.
pub(crate) fn alice_get(addr: &str, path: &str) -> Vec<(String, String)> {
    signed_headers(
        "GET",
        &format!("http://{addr}{path}"),
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (KEY_ID, SECRET),
    )
}

pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) body: String,
    /// The status line and headers.
    pub(crate) head: String,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends one HTTP/1.1 request over a fresh connection and reads the whole response.
pub(crate) fn send_raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or_default();
    RawResponse { status, body, head }
}

pub(crate) fn error_code(body: &str) -> &str {
    body.split("<Code>")
        .nth(1)
        .and_then(|s| s.split("</Code>").next())
        .unwrap_or("")
}

#[test]
fn upstream_down_is_502_without_waiting_for_the_request_timeout() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("http://127.0.0.1:{port}"), "", 30_000);
    let tg = start_with(&config);
    let url = format!("{}/orders/1", tg.proxy_url());
    let headers = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (KEY_ID, SECRET),
    );
    let started = Instant::now();
    let resp = send_raw(&tg.proxy_addr, "GET", "/orders/1", &headers, b"");
    assert_eq!(resp.status, 502, "{}", resp.body);
    assert_eq!(error_code(&resp.body), "BadGateway");
    // Answered by the refused connection, not by the 30 s request timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn upstream_hanging_is_504_at_the_request_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    // Accept and hold connections without ever answering.
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &format!("http://{addr}"), "", 700);
    let tg = start_with(&config);
    let url = format!("{}/orders/1", tg.proxy_url());
    let headers = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (KEY_ID, SECRET),
    );
    let started = Instant::now();
    let resp = send_raw(&tg.proxy_addr, "GET", "/orders/1", &headers, b"");
    let took = started.elapsed();
    assert_eq!(resp.status, 504, "{}", resp.body);
    assert_eq!(error_code(&resp.body), "GatewayTimeout");
    assert!(
        took >= Duration::from_millis(700),
        "answered before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "never a hang: {took:?}");
}

/// What a recording upstream saw of one request.
#[derive(Debug)]
struct Seen {
    head: String,
    declared_length: usize,
    received: usize,
}

/// An upstream that reports how much of each request body it received before the connection
/// ended (or the declared length was reached, when it answers 200).
fn recording_upstream() -> (String, mpsc::Receiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16384];
                let head_end = loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => {
                            // Closed before a whole request head arrived: nothing usable
                            // reached the upstream (reported as an incomplete request).
                            let _ = tx.send(Seen {
                                head: String::from_utf8_lossy(&buf).into_owned(),
                                declared_length: 1,
                                received: 0,
                            });
                            return;
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let declared_length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut received = buf.len() - head_end;
                while received < declared_length {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => received += n,
                    }
                }
                if received >= declared_length {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                }
                let _ = tx.send(Seen {
                    head,
                    declared_length,
                    received,
                });
            });
        }
    });
    (addr, rx)
}

#[test]
fn large_body_with_wrong_hash_never_reaches_the_upstream_complete() {
    let (upstream, seen) = recording_upstream();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("http://{upstream}"),
        "max_verified_body_bytes = 1024",
        10_000,
    );
    let tg = start_with(&config);
    let url = format!("{}/bucket/big.bin", tg.proxy_url());
    let signed_body = vec![b'a'; 256 * 1024];
    let mut sent_body = signed_body.clone();
    *sent_body.last_mut().unwrap() = b'b';

    // The right body streams through (larger than the verification buffer) and arrives whole.
    let headers = signed_headers(
        "PUT",
        &url,
        "s3",
        SignableBody::Bytes(&signed_body),
        &[],
        (KEY_ID, SECRET),
    );
    let resp = send_raw(
        &tg.proxy_addr,
        "PUT",
        "/bucket/big.bin",
        &headers,
        &signed_body,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let s = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (s.declared_length, s.received),
        (signed_body.len(), signed_body.len())
    );
    assert!(
        s.head
            .contains("x-tollgate-principal-arn: arn:aws:iam::123456789012:user/alice"),
        "{}",
        s.head
    );

    // One changed byte at the very end: refused, and the upstream never gets the whole body.
    let resp = send_raw(
        &tg.proxy_addr,
        "PUT",
        "/bucket/big.bin",
        &headers,
        &sent_body,
    );
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(error_code(&resp.body), "XAmzContentSHA256Mismatch");
    let s = seen
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|e| {
            panic!("the upstream connection was not ended after the mismatch: {e:?}")
        });
    assert!(
        s.received < s.declared_length,
        "upstream received the complete body: {s:?}"
    );

    // Within the buffer limit the body is checked before anything is forwarded.
    let small_signed = b"small body".to_vec();
    let headers = signed_headers(
        "PUT",
        &url,
        "s3",
        SignableBody::Bytes(&small_signed),
        &[],
        (KEY_ID, SECRET),
    );
    let resp = send_raw(
        &tg.proxy_addr,
        "PUT",
        "/bucket/big.bin",
        &headers,
        b"small bodY",
    );
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(error_code(&resp.body), "XAmzContentSHA256Mismatch");
    assert!(
        seen.recv_timeout(Duration::from_millis(500)).is_err(),
        "a refused small body reached the upstream"
    );
}

#[test]
fn body_hashed_into_the_signature_is_buffered_up_to_the_limit_only() {
    let (upstream, seen) = recording_upstream();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("http://{upstream}"),
        "max_verified_body_bytes = 1024",
        10_000,
    );
    let tg = start_with(&config);
    let url = format!("{}/orders", tg.proxy_url());
    // execute-api as botocore signs it: no x-amz-content-sha256, the body hash is in the signature.
    let small = vec![b'x'; 1024];
    let headers = signed_headers(
        "POST",
        &url,
        "execute-api",
        SignableBody::Bytes(&small),
        &[],
        (KEY_ID, SECRET),
    );
    assert!(!headers.iter().any(|(k, _)| k == "x-amz-content-sha256"));
    let resp = send_raw(&tg.proxy_addr, "POST", "/orders", &headers, &small);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(10)).unwrap().received,
        1024
    );
    // A changed body byte breaks the signature itself.
    let mut changed = small.clone();
    changed[10] = b'y';
    let resp = send_raw(&tg.proxy_addr, "POST", "/orders", &headers, &changed);
    assert_eq!(
        (resp.status, error_code(&resp.body)),
        (403, "SignatureDoesNotMatch"),
        "{}",
        resp.body
    );
    // Over the limit it cannot be verified before forwarding, so it is refused.
    let big = vec![b'x'; 4096];
    let headers = signed_headers(
        "POST",
        &url,
        "execute-api",
        SignableBody::Bytes(&big),
        &[],
        (KEY_ID, SECRET),
    );
    let resp = send_raw(&tg.proxy_addr, "POST", "/orders", &headers, &big);
    assert_eq!(
        (resp.status, error_code(&resp.body)),
        (413, "RequestEntityTooLarge"),
        "{}",
        resp.body
    );
    assert!(
        seen.recv_timeout(Duration::from_millis(500)).is_err(),
        "a refused request reached the upstream"
    );
}

#[test]
fn spoofed_identity_headers_never_reach_the_upstream() {
    let tg = Tollgate::demo();
    let admin = tg.key("admin");
    let url = format!("{}/orders/7", tg.proxy_url());
    let extra = [
        ("x-tollgate-principal-arn", "arn:aws:iam::123456789012:root"),
        ("x-tollgate-account-id", "999999999999"),
    ];
    let headers = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &extra,
        (&admin.access_key_id, &admin.secret_access_key),
    );
    let resp = send_raw(&tg.proxy_addr, "GET", "/orders/7", &headers, b"");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let echo: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(
        echo["headers"]["x-tollgate-principal-arn"],
        serde_json::json!(["arn:aws:iam::123456789012:user/admin"])
    );
    assert_eq!(
        echo["headers"]["x-tollgate-account-id"],
        serde_json::json!(["123456789012"])
    );
}

#[test]
fn http2_prior_knowledge_clients_are_verified_with_authority_as_host() {
    use http_body_util::{BodyExt, Full};
    let tg = Tollgate::demo();
    let admin = tg.key("admin");
    let url = format!("{}/orders/9?x=1", tg.proxy_url());
    let headers = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (&admin.access_key_id, &admin.secret_access_key),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http::<Full<bytes::Bytes>>();
        let send = |headers: &[(String, String)]| {
            let mut req = http::Request::builder()
                .method("GET")
                .uri(&url)
                .version(http::Version::HTTP_2);
            for (k, v) in headers {
                // HTTP/2 carries the host as :authority (from the URI), never as a header.
                if k != "host" {
                    req = req.header(k, v);
                }
            }
            client.request(req.body(Full::new(bytes::Bytes::new())).unwrap())
        };
        let resp = send(&headers).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            echo["headers"]["x-tollgate-principal-arn"],
            serde_json::json!(["arn:aws:iam::123456789012:user/admin"])
        );
        assert_eq!(
            echo["headers"]["host"],
            serde_json::json!([tg.proxy_addr.clone()])
        );

        // A tampered signature over HTTP/2 is refused the same way.
        let mut tampered = headers.clone();
        for (k, v) in tampered.iter_mut() {
            if k == "authorization" {
                let last = v.pop().unwrap();
                v.push(if last == '0' { '1' } else { '0' });
            }
        }
        let resp = send(&tampered).await.unwrap();
        assert_eq!(resp.status(), 403);
    });
}

/// Signs `PUT <path>` for an aws-chunked body (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`) at the
/// current time and builds the body with chunk signatures from `aws-sigv4`.
fn chunked_put(url: &str, data: &[u8], chunk: usize) -> (Vec<(String, String)>, Vec<u8>) {
    use aws_sigv4::http_request::SignableBody;
    let len = data.len().to_string();
    let extra = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", len.as_str()),
    ];
    let headers = signed_headers(
        "PUT",
        url,
        "s3",
        SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into()),
        &extra,
        (KEY_ID, SECRET),
    );
    let auth = headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    let date = headers
        .iter()
        .find(|(k, _)| k == "x-amz-date")
        .unwrap()
        .1
        .clone();
    let seed = auth.rsplit("Signature=").next().unwrap().to_owned();
    let time = tollgate::time::AmzDate::parse(&date).unwrap().epoch();
    let identity = Credentials::new(KEY_ID, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(std::time::UNIX_EPOCH + Duration::from_secs(time as u64))
        .settings(SigningSettings::default())
        .build()
        .unwrap();
    let mut running = seed;
    let mut body = Vec::new();
    for piece in data.chunks(chunk).chain(std::iter::once(&b""[..])) {
        let out = v4::sign_chunk(&bytes::Bytes::copy_from_slice(piece), &running, &params).unwrap();
        running = out.signature().to_owned();
        body.extend_from_slice(
            format!("{:x};chunk-signature={running}\r\n", piece.len()).as_bytes(),
        );
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    (headers, body)
}

#[test]
fn aws_chunked_uploads_are_decoded_and_a_tampered_chunk_never_completes_upstream() {
    let (upstream, seen) = recording_upstream();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("http://{upstream}"),
        "max_verified_body_bytes = 1024",
        10_000,
    );
    let tg = start_with(&config);
    let url = format!("{}/bucket/chunked.bin", tg.proxy_url());
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (headers, body) = chunked_put(&url, &data, 65_536);

    // Decoded and verified while streaming: the upstream gets the plain body and length.
    let resp = send_raw(
        &tg.proxy_addr,
        "PUT",
        "/bucket/chunked.bin",
        &headers,
        &body,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let s = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (s.declared_length, s.received),
        (data.len(), data.len()),
        "{s:?}"
    );
    assert!(
        !s.head.lines().any(|l| l.starts_with("content-encoding:")
            || l.starts_with("x-amz-decoded-content-length:")),
        "{}",
        s.head
    );

    // One byte changed in the second chunk: the chunk signature fails mid-stream, the client
    // gets SignatureDoesNotMatch and the upstream never receives the whole object.
    let mut tampered = body.clone();
    let second_chunk_data = body
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\r\n")
        .nth(2)
        .unwrap()
        .0
        + 2;
    tampered[second_chunk_data + 100] ^= 0x01;
    let resp = send_raw(
        &tg.proxy_addr,
        "PUT",
        "/bucket/chunked.bin",
        &headers,
        &tampered,
    );
    assert_eq!(
        (resp.status, error_code(&resp.body)),
        (403, "SignatureDoesNotMatch"),
        "{}",
        resp.body
    );
    if let Ok(s) = seen.recv_timeout(Duration::from_secs(10)) {
        assert!(
            s.received < s.declared_length,
            "upstream received the complete body: {s:?}"
        );
    }

    // A small chunked body is decoded and verified before anything is forwarded.
    let small: Vec<u8> = b"hello chunked world".to_vec();
    let (headers, body) = chunked_put(&url, &small, 8);
    let resp = send_raw(
        &tg.proxy_addr,
        "PUT",
        "/bucket/chunked.bin",
        &headers,
        &body,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(10)).unwrap().received,
        small.len()
    );
    let mut bad = body.clone();
    let last = bad.len() - 10;
    bad[last] ^= 1;
    let resp = send_raw(&tg.proxy_addr, "PUT", "/bucket/chunked.bin", &headers, &bad);
    assert_eq!(resp.status / 100, 4, "{}", resp.body);
    assert!(
        seen.recv_timeout(Duration::from_millis(500)).is_err(),
        "a refused small body reached the upstream"
    );
}

#[test]
fn host_is_preserved_by_default_and_rewritten_in_upstream_mode() {
    let (upstream, seen) = recording_upstream();
    for (mode, expect_upstream_host) in [("preserve", false), ("upstream", true)] {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &format!("http://{upstream}"), "", 10_000);
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("[upstream]\n", &format!("[upstream]\nhost = \"{mode}\"\n"));
        std::fs::write(&config, text).unwrap();
        let tg = start_with(&config);
        let url = format!("{}/orders/1", tg.proxy_url());
        let headers = signed_headers(
            "GET",
            &url,
            "execute-api",
            SignableBody::Bytes(b""),
            &[],
            (KEY_ID, SECRET),
        );
        let resp = send_raw(&tg.proxy_addr, "GET", "/orders/1", &headers, b"");
        assert_eq!(resp.status, 200, "{mode}: {}", resp.body);
        let s = seen.recv_timeout(Duration::from_secs(10)).unwrap();
        let host = s
            .head
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .unwrap_or("")
            .to_owned();
        let want = if expect_upstream_host {
            upstream.clone()
        } else {
            tg.proxy_addr.clone()
        };
        assert_eq!(host, want, "{mode}");
    }
}
