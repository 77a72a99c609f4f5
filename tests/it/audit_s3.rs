//! The S3 audit sink (`[audit.s3]`) against moto's S3 server (interop: run by the README test
//! command, which installs moto into the test venv): the real binary uploads CloudTrail-layout
//! log objects and signed digests; boto3 reads them back; `tollgate audit verify` checks a copy.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sigv4::http_request::SignableBody;
use serde_json::Value;
use tollgate::audit::s3::{S3Store, PARTIAL_DIR};
use tollgate::audit::trail::{Store, SIGNATURE_META};
use tollgate::config::S3Audit;
use tollgate::credentials::SecretKey;

use crate::moto::{python, Killed};
use crate::proxy::{error_code, send_raw, signed_headers, RawResponse};
use crate::support::{Tollgate, TOLLGATE_BIN};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const BUCKET: &str = "tollgate-audit-it";
const PREFIX: &str = "org/trail";
const TRAIL: &str = "it-trail";
/// The key Tollgate uploads with (moto accepts any).
const WRITER_KEY: &str = "AKIAAUDITWRITER00001";
const WRITER_SECRET: &str = "auditWriterSecret/EXAMPLE+000000000000001";
const ALICE: (&str, &str) = (
    "AKIAALICEAUDIT000001",
    "aliceAuditSecret/EXAMPLE+00000000000001",
);
const NOBODY: (&str, &str) = (
    "AKIANOBODYAUDIT00001",
    "nobodyAuditSecret/EXAMPLE+0000000000001",
);

/// moto's S3 server on a free port, killed when dropped.
fn start_moto() -> (Killed, u16) {
    let moto = python().parent().unwrap().join("moto_server");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Killed(
        Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display())),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

/// Creates `bucket` with a signed `PUT` (path-style).
fn create_bucket(port: u16, bucket: &str) {
    let addr = format!("127.0.0.1:{port}");
    let path = format!("/{bucket}");
    let headers = signed_headers(
        "PUT",
        &format!("http://{addr}{path}"),
        "s3",
        SignableBody::Bytes(b""),
        &[],
        (WRITER_KEY, WRITER_SECRET),
    );
    let r = send_raw(&addr, "PUT", &path, &headers, b"");
    assert_eq!(r.status, 200, "CreateBucket: {}", r.body);
}

fn digest_key_pem() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/ed25519.pem"),
    )
    .unwrap()
}

/// Writes the config (and its 0600 secrets file) into `dir`; returns the config's path.
fn config(dir: &Path, moto_port: u16) -> String {
    let text = format!(
        r#"secrets_file = "secrets.toml"

[auth]
regions = ["{REGION}"]
services = ["execute-api"]

[listeners]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"

[upstream]
url = "builtin:echo"

[[accounts]]
id = "{ACCOUNT}"
name = "audit"

[[policies]]
name = "Everything"
document = '''{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}}]}}'''

[[users]]
name = "alice"
policies = ["Everything"]
[[users.access_keys]]
id = "{alice}"

[[users]]
name = "nobody"
policies = []
[[users.access_keys]]
id = "{nobody}"

[[mappings]]
service = "execute-api"
mode = "rest"
account = "{ACCOUNT}"
[[mappings.routes]]
path = "/{{proxy+}}"
action = "execute-api:Invoke"
resource = "arn:aws:execute-api:${{region}}:${{account}}:api/prod/${{method}}/{{proxy}}"

[audit]
overflow = "fail-closed"

[audit.s3]
endpoint = "http://127.0.0.1:{moto_port}"
bucket = "{BUCKET}"
region = "{REGION}"
prefix = "{PREFIX}"
access_key_id = "{WRITER_KEY}"

[audit.digests]
key = "it-audit"
trail_name = "{TRAIL}"
"#,
        alice = ALICE.0,
        nobody = NOBODY.0,
    );
    std::fs::write(dir.join("tollgate.toml"), text).unwrap();
    crate::support::write_private(
        &dir.join("secrets.toml"),
        &format!(
            "[access_keys]\n{} = \"{}\"\n{} = \"{}\"\n\n[audit_secrets]\n{WRITER_KEY} = \"{WRITER_SECRET}\"\nit-audit = \"\"\"\n{}\"\"\"\n",
            ALICE.0,
            ALICE.1,
            NOBODY.0,
            NOBODY.1,
            digest_key_pem()
        ),
    );
    dir.join("tollgate.toml").to_string_lossy().into_owned()
}

fn call(tg: &Tollgate, path: &str, key: (&str, &str)) -> RawResponse {
    let url = format!("{}{path}", tg.proxy_url());
    let headers = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        key,
    );
    send_raw(&tg.proxy_addr, "GET", path, &headers, b"")
}

/// Downloads every object of the bucket with boto3 into `out` (same keys); returns each key's
/// user metadata, content type and content encoding as boto3 reports them.
fn download(port: u16, out: &Path) -> BTreeMap<String, Value> {
    let script = r#"
import json, os, sys
import boto3
endpoint, bucket, out = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="AKIAREADER0000000001", aws_secret_access_key="reader")
found = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for o in page.get("Contents", []):
        key = o["Key"]
        r = s3.get_object(Bucket=bucket, Key=key)
        path = os.path.join(out, *key.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(r["Body"].read())
        found[key] = {"metadata": r.get("Metadata", {}), "content_type": r.get("ContentType"),
                      "content_encoding": r.get("ContentEncoding")}
print(json.dumps(found))
"#;
    let result = Command::new(python())
        .args(["-c", script])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(BUCKET)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "boto3 download failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    serde_json::from_slice(&result.stdout).unwrap_or_else(|e| {
        panic!(
            "boto3 printed no JSON ({e}): {}",
            String::from_utf8_lossy(&result.stdout)
        )
    })
}

/// The keys in the bucket, as boto3 lists them.
fn list_keys(port: u16) -> Vec<String> {
    let script = r#"
import json, sys
import boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="AKIAREADER0000000001", aws_secret_access_key="reader")
keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2])
        for o in p.get("Contents", [])]
print(json.dumps(keys))
"#;
    let result = Command::new(python())
        .args(["-c", script])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(BUCKET)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "boto3 list failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    serde_json::from_slice(&result.stdout).unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// `(stamp, suffix)` when `key` is a log object of the account and region in
/// CloudTrail's layout under the prefix.
fn log_name(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(&format!("{PREFIX}/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/"))?;
    let [yyyy, mm, dd, file]: [&str; 4] = rest.split('/').collect::<Vec<_>>().try_into().ok()?;
    let name = file
        .strip_prefix(&format!("{ACCOUNT}_CloudTrail_{REGION}_"))?
        .strip_suffix(".json.gz")?;
    let (stamp, suffix) = name.split_once('_')?;
    // YYYYMMDDTHHmmZ, dated like the directories.
    let ok = stamp.len() == 14
        && stamp.get(..8)? == format!("{yyyy}{mm}{dd}")
        && stamp.get(8..9)? == "T"
        && stamp.get(9..13)?.bytes().all(|b| b.is_ascii_digit())
        && stamp.ends_with('Z')
        && suffix.len() == 16
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| (stamp.to_owned(), suffix.to_owned()))
}

fn is_digest_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(&format!(
        "{PREFIX}/AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/"
    )) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() == 4
        && parts[3]
            .strip_prefix(&format!(
                "{ACCOUNT}_CloudTrail-Digest_{REGION}_{TRAIL}_{REGION}_"
            ))
            .and_then(|s| s.strip_suffix(".json.gz"))
            .is_some_and(|stamp| {
                stamp.len() == 16
                    && stamp.get(..8) == Some(&format!("{}{}{}", parts[0], parts[1], parts[2]))
            })
}

#[test]
#[ignore = "interop: needs moto (tests/run.sh sets TOLLGATE_INTEROP_PYTHON)"]
fn the_s3_sink_delivers_log_objects_and_signed_digests_to_moto() {
    let (_moto, port) = start_moto();
    create_bucket(port, BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), port);
    let mut tg = Tollgate::start(&["serve", "--config", &path], true);

    let mut request_ids = Vec::new();
    for i in 0..4 {
        let r = call(&tg, &format!("/orders/{i}"), ALICE);
        assert_eq!(r.status, 200, "{}\n{}", r.body, tg.stderr_tail(40));
        request_ids.push(r.header("x-amzn-requestid").unwrap().to_owned());
        if i == 1 {
            // A tick (about once a second) keeps the open log object as a partial, outside
            // AWSLogs/; the next one rewrites it with the records added since.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let keys = list_keys(port);
                if keys.iter().any(|k| {
                    k.starts_with(&format!("{PREFIX}/{PARTIAL_DIR}/{PREFIX}/AWSLogs/"))
                        && k.ends_with(".json.gz.partial")
                }) {
                    break;
                }
                assert!(Instant::now() < deadline, "no partial in {keys:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    let r = call(&tg, "/orders/denied", NOBODY);
    assert_eq!(
        (r.status, error_code(&r.body)),
        (403, "AccessDenied"),
        "{}",
        r.body
    );
    request_ids.push(r.header("x-amzn-requestid").unwrap().to_owned());

    let status = tg.terminate(Duration::from_secs(30));
    let logs = tg.stderr_tail(4000);
    assert!(status.success(), "exit status {status:?}\n{logs}");
    assert!(
        !logs.contains(WRITER_SECRET),
        "the S3 secret is in the logs"
    );
    assert!(
        !logs.contains("audit sink failing"),
        "the S3 sink failed:\n{logs}"
    );

    let copy = tempfile::tempdir().unwrap();
    let objects = download(port, copy.path());
    let keys: Vec<&String> = objects.keys().collect();
    println!("objects in the bucket: {keys:#?}");
    assert!(
        keys.iter().all(|k| !k.contains(PARTIAL_DIR)),
        "a partial is left: {keys:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("{PREFIX}/AWSLogs/{ACCOUNT}/"))),
        "{keys:?}"
    );

    // Log objects: CloudTrail's names, gzip'd {"Records":[…]} holding exactly the calls.
    let log_keys: Vec<&String> = keys
        .iter()
        .copied()
        .filter(|k| k.contains("/CloudTrail/"))
        .collect();
    assert!(!log_keys.is_empty(), "no log object in {keys:?}");
    let mut recorded = Vec::new();
    for key in &log_keys {
        assert!(log_name(key).is_some(), "not a CloudTrail log name: {key}");
        let info = &objects[*key];
        assert_eq!(info["content_type"], "application/x-gzip", "{key}: {info}");
        assert!(info["content_encoding"].is_null(), "{key}: {info}");
        let bytes = std::fs::read(copy.path().join(key)).unwrap();
        let text = gunzip(&bytes);
        assert!(text.ends_with(b"]}\n"), "{key}");
        let doc: Value = serde_json::from_slice(&text).unwrap();
        let records = doc["Records"]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {doc}"));
        for r in records {
            assert_eq!(r["recipientAccountId"], ACCOUNT);
            assert_eq!(r["awsRegion"], REGION);
            recorded.push(r["requestID"].as_str().unwrap().to_owned());
        }
    }
    recorded.sort();
    let mut want = request_ids.clone();
    want.sort();
    assert_eq!(recorded, want, "every call is recorded exactly once");

    // Digests: signed in the object's metadata, naming the bucket and listing every log object.
    let digest_keys: Vec<&String> = keys
        .iter()
        .copied()
        .filter(|k| k.contains("/CloudTrail-Digest/") && !k.contains("/public-keys/"))
        .collect();
    assert!(!digest_keys.is_empty(), "no digest in {keys:?}");
    let mut listed = HashSet::new();
    for key in &digest_keys {
        assert!(is_digest_key(key), "not a CloudTrail digest name: {key}");
        let meta = &objects[*key]["metadata"];
        let signature = meta["signature"]
            .as_str()
            .unwrap_or_else(|| panic!("{key} has no x-amz-meta-signature: {meta}"));
        assert!(
            signature.len() == 128 && signature.bytes().all(|b| b.is_ascii_hexdigit()),
            "{signature}"
        );
        assert_eq!(meta["signature-algorithm"], "Ed25519", "{meta}");
        let file: Value =
            serde_json::from_slice(&gunzip(&std::fs::read(copy.path().join(key)).unwrap()))
                .unwrap();
        assert_eq!(file["digestS3Bucket"], BUCKET, "{file}");
        assert_eq!(file["digestS3Object"], key.as_str(), "{file}");
        for l in file["logFiles"].as_array().unwrap() {
            assert_eq!(l["s3Bucket"], BUCKET);
            listed.insert(l["s3Object"].as_str().unwrap().to_owned());
        }
        // `tollgate audit verify` reads signatures from `<digest>.sig` side files (the file
        // sink's form of the metadata).
        let mut sig = copy.path().join(key).into_os_string();
        sig.push(".sig");
        std::fs::write(sig, format!("{signature}\n")).unwrap();
    }
    let want_listed: HashSet<String> = log_keys.iter().map(|k| (*k).clone()).collect();
    assert_eq!(listed, want_listed);
    assert!(
        keys.iter()
            .any(|k| k.contains("/CloudTrail-Digest/public-keys/") && k.ends_with(".pem")),
        "no public key in {keys:?}"
    );

    let out = Command::new(TOLLGATE_BIN)
        .args(["audit", "verify"])
        .arg(copy.path())
        .output()
        .unwrap();
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("no findings"), "{report}");
}

/// The store's own operations against moto: metadata round trip, missing objects and buckets,
/// partials kept whole and out of listings.
#[test]
#[ignore = "interop: needs moto (tests/run.sh sets TOLLGATE_INTEROP_PYTHON)"]
fn the_s3_store_operations_work_against_moto() {
    let (_moto, port) = start_moto();
    create_bucket(port, BUCKET);
    let settings = |bucket: &str| S3Audit {
        endpoint: format!("http://127.0.0.1:{port}").parse().unwrap(),
        bucket: bucket.to_owned(),
        region: REGION.to_owned(),
        prefix: Some(PREFIX.to_owned()),
        access_key_id: WRITER_KEY.to_owned(),
        secret: SecretKey::new(WRITER_SECRET),
        interval_seconds: 300,
        max_bytes: 1024 * 1024,
    };
    let mut store = S3Store::new(&settings(BUCKET))
        .unwrap()
        .with_partial_upload_every(Duration::ZERO);
    let key = format!("{PREFIX}/AWSLogs/{ACCOUNT}/CloudTrail-Digest/x y+z.json.gz");
    assert_eq!(store.get(&key).unwrap(), None);
    store
        .put(
            &key,
            b"\x1f\x8bdigest",
            &[
                (SIGNATURE_META, "00ff"),
                ("x-amz-meta-signature-algorithm", "Ed25519"),
            ],
        )
        .unwrap();
    let o = store.get(&key).unwrap().unwrap();
    assert_eq!(o.bytes, b"\x1f\x8bdigest");
    assert_eq!(o.meta(SIGNATURE_META), Some("00ff"));
    assert_eq!(o.meta("x-amz-meta-signature-algorithm"), Some("Ed25519"));

    let open = format!("{PREFIX}/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/open.json.gz");
    store.save_partial(&open, b"abc", true).unwrap();
    store.save_partial(&open, b"def", false).unwrap();
    assert_eq!(
        store.partials().unwrap(),
        [(open.clone(), b"abcdef".to_vec())]
    );
    assert_eq!(
        store.list(&format!("{PREFIX}/")).unwrap(),
        std::slice::from_ref(&key)
    );
    assert_eq!(store.list("").unwrap(), std::slice::from_ref(&key));
    store.discard_partial(&open);
    assert!(store.partials().unwrap().is_empty());

    let mut missing = S3Store::new(&settings("no-such-bucket")).unwrap();
    let e = missing.get(&key).unwrap_err();
    assert!(e.message.contains("NoSuchBucket"), "{e}");
    let e = missing.put(&key, b"x", &[]).unwrap_err();
    assert!(e.message.contains("404") && e.message.contains(&key), "{e}");
    assert!(!e.message.contains(WRITER_SECRET));
}
