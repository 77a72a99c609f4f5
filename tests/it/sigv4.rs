//! SigV4 verification against the AWS signing test suite (shipped in the `aws-sigv4` crate) and
//! against requests signed by the `aws-sigv4` crate itself (property test).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use tollgate::sigv4::{verify_request, CanonicalRules, HttpRequest, VerifyError};
use tollgate::time::AmzDate;

const SKEW: i64 = 900;

/// The `aws-signing-test-suite/v4` folder of the `aws-sigv4` package, found through
/// `cargo metadata`.
fn suite_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "aws-sigv4")
        .expect("aws-sigv4 is a dev-dependency");
    let manifest = PathBuf::from(pkg["manifest_path"].as_str().unwrap());
    manifest.parent().unwrap().join("aws-signing-test-suite/v4")
}

/// A request parsed from the suite's `*-signed-request.txt` (obs-fold lines unfolded with a space,
/// as RFC 9112 tells a recipient to do).
#[derive(Clone, Debug)]
struct RawRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn parse(text: &str) -> Self {
        let (head, body) = match text.find("\n\n") {
            Some(i) => (&text[..i], text.as_bytes()[i + 2..].to_vec()),
            None => (text, Vec::new()),
        };
        let mut lines = head.lines();
        let request_line = lines.next().unwrap();
        let method = request_line.split(' ').next().unwrap().to_owned();
        let end = request_line.rfind(" HTTP/").unwrap_or(request_line.len());
        let target = request_line[method.len() + 1..end].to_owned();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target, None),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                headers.last_mut().unwrap().1.push(' ');
                headers.last_mut().unwrap().1.push_str(line.trim());
                continue;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.to_owned(), v.to_owned()));
        }
        Self {
            method,
            path,
            query,
            headers,
            body,
        }
    }

    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in &self.headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        map
    }

    fn verify(
        &self,
        secret: &str,
        now: i64,
        rules: Option<CanonicalRules>,
    ) -> Result<(), VerifyError> {
        let headers = self.header_map();
        let req = HttpRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            authority: None,
            headers: &headers,
        };
        verify_request(&req, &self.body, secret, now, SKEW, rules)
    }
}

struct Case {
    name: String,
    /// The session token is added after signing (`omit_session_token`): not a signed part.
    token_unsigned: bool,
    secret: String,
    now: i64,
    rules: CanonicalRules,
    header: RawRequest,
    query: RawRequest,
}

/// Presigns a request with `aws-sigv4` (for the two old cases that ship no query form).
fn presign_with_crate(
    unsigned: &RawRequest,
    creds: &Credentials,
    scope: (&str, &str),
    time: SystemTime,
) -> RawRequest {
    let host = unsigned
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .unwrap()
        .1
        .clone();
    let uri = format!(
        "https://{host}{}{}",
        unsigned.path,
        unsigned
            .query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(3600));
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.0)
        .name(scope.1)
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers: Vec<(&str, &str)> = unsigned
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let signable = SignableRequest::new(
        &unsigned.method,
        uri.clone(),
        headers.into_iter(),
        SignableBody::Bytes(&unsigned.body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder()
        .method(unsigned.method.as_str())
        .uri(uri)
        .body(())
        .unwrap();
    instructions.apply_to_request_http1x(&mut req);
    let mut out = unsigned.clone();
    out.query = req.uri().query().map(str::to_owned);
    out
}

fn load_cases() -> Vec<Case> {
    let dir = suite_dir();
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let read = |f: &str| std::fs::read_to_string(path.join(f)).ok();
        let mut header = RawRequest::parse(&read("header-signed-request.txt").unwrap());
        // `double-encode-path` leaves `Host` out of its signed-request file; take it from request.txt.
        for (k, v) in RawRequest::parse(&read("request.txt").unwrap()).headers {
            if !header
                .headers
                .iter()
                .any(|(hk, _)| hk.eq_ignore_ascii_case(&k))
            {
                header.headers.push((k, v));
            }
        }
        let auth = header
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .unwrap()
            .1
            .clone();
        let credential: Vec<String> = auth
            .split("Credential=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .split('/')
            .map(str::to_owned)
            .collect();
        let token_unsigned =
            read("context.json").is_some_and(|c| c.contains("\"omit_session_token\": true"));
        let (secret, now, normalize) = match read("context.json") {
            Some(ctx) => {
                let ctx: serde_json::Value = serde_json::from_str(&ctx).unwrap();
                let ts = ctx["timestamp"].as_str().unwrap().replace(['-', ':'], "");
                (
                    ctx["credentials"]["secret_access_key"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    AmzDate::parse(&ts).unwrap().epoch(),
                    ctx["normalize"].as_bool().unwrap_or(true),
                )
            }
            None => {
                // The two cases aws-sigv4 added: `ANOTREAL` is `Credentials::for_tests()`.
                let date = header
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-date"))
                    .unwrap()
                    .1
                    .clone();
                let secret = if credential[0] == "ANOTREAL" {
                    "notrealrnrELgWzOk3IfjzDKtFBhDby"
                } else {
                    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
                };
                (
                    secret.to_owned(),
                    AmzDate::parse(&date).unwrap().epoch(),
                    true,
                )
            }
        };
        let query = match read("query-signed-request.txt") {
            Some(t) => RawRequest::parse(&t),
            None => {
                let mut unsigned = RawRequest::parse(&read("request.txt").unwrap());
                unsigned
                    .headers
                    .retain(|(k, _)| k.eq_ignore_ascii_case("host"));
                let creds =
                    Credentials::new(credential[0].clone(), secret.clone(), None, None, "suite");
                presign_with_crate(
                    &unsigned,
                    &creds,
                    (&credential[2], &credential[3]),
                    UNIX_EPOCH + Duration::from_secs(now as u64),
                )
            }
        };
        let rules = if normalize {
            CanonicalRules::STANDARD
        } else {
            CanonicalRules::STANDARD_UNNORMALIZED
        };
        cases.push(Case {
            name,
            token_unsigned,
            secret,
            now,
            rules,
            header,
            query,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

#[test]
fn aws_signing_test_suite_verifies_in_both_forms() {
    let cases = load_cases();
    assert_eq!(cases.len(), 40, "the v4 suite has 40 cases");
    for c in &cases {
        c.header
            .verify(&c.secret, c.now, Some(c.rules))
            .unwrap_or_else(|e| panic!("{} (header): {e:?}", c.name));
        c.query
            .verify(&c.secret, c.now, Some(c.rules))
            .unwrap_or_else(|e| panic!("{} (query): {e:?}", c.name));
    }
}

/// Changes one byte of `s` (an alphanumeric one, to keep it a valid header/path), or appends one.
fn tweak(s: &str) -> String {
    let mut bytes = s.as_bytes().to_vec();
    match bytes.iter().rposition(|b| b.is_ascii_alphanumeric()) {
        Some(i) => bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' },
        None => bytes.push(b'a'),
    }
    String::from_utf8(bytes).unwrap()
}

fn signed_header_names(r: &RawRequest) -> Vec<String> {
    if let Some(auth) = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        let sh = auth
            .1
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        return sh.split(';').map(str::to_owned).collect();
    }
    let q = r.query.as_deref().unwrap();
    let sh = q
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
        .unwrap();
    sh.replace("%3B", ";")
        .split(';')
        .map(str::to_owned)
        .collect()
}

/// Every single-part, single-byte change of every case is refused.
#[test]
fn aws_signing_test_suite_one_byte_changes_fail() {
    let mut checked = 0;
    for c in &load_cases() {
        for (form, base) in [("header", &c.header), ("query", &c.query)] {
            let mut variants: Vec<(String, RawRequest)> = Vec::new();
            let mut v = base.clone();
            v.method = if v.method == "GET" {
                "PUT".into()
            } else {
                "GET".into()
            };
            variants.push(("method".into(), v));
            let mut v = base.clone();
            // Appending keeps the change visible through dot-segment normalization.
            v.path.push('a');
            variants.push(("path".into(), v));
            if let Some(q) = &base.query {
                for (i, pair) in q.split('&').enumerate() {
                    if pair.starts_with("X-Amz-Signature=")
                        || (c.token_unsigned && pair.starts_with("X-Amz-Security-Token="))
                    {
                        continue;
                    }
                    let mut v = base.clone();
                    let pairs: Vec<String> = q
                        .split('&')
                        .enumerate()
                        .map(|(j, p)| if i == j { tweak(p) } else { p.to_owned() })
                        .collect();
                    v.query = Some(pairs.join("&"));
                    variants.push((format!("query[{i}]"), v));
                }
            } else {
                let mut v = base.clone();
                v.query = Some("a=b".into());
                variants.push(("query added".into(), v));
            }
            for name in signed_header_names(base) {
                let mut v = base.clone();
                let h = v
                    .headers
                    .iter_mut()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .unwrap();
                h.1 = tweak(&h.1);
                variants.push((format!("header {name}"), v));
            }
            if form == "header" {
                let mut v = base.clone();
                let h = v
                    .headers
                    .iter_mut()
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .unwrap();
                h.1 = tweak(&h.1);
                variants.push(("signature".into(), v));
            }
            let mut v = base.clone();
            v.body.push(b'x');
            variants.push(("body".into(), v));
            for (what, v) in variants {
                // A body change is only detectable where the body is signed; S3-style
                // `UNSIGNED-PAYLOAD` is not used by this suite, so every body is signed.
                let res = v.verify(&c.secret, c.now, Some(c.rules));
                assert!(
                    res.is_err(),
                    "{} ({form}): changed {what} still verifies",
                    c.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 400, "checked only {checked} variants");
}

// ---------------------------------------------------------------------------------------------
// Property test: random requests signed by the aws-sigv4 crate verify; one-byte changes do not.

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[derive(Debug, Clone)]
struct Random {
    method: &'static str,
    s3: bool,
    presign: bool,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._~-]{0,12}",
        "[a-z]{1,4}(%2F|%20|%3D|%25|%2B)[a-z]{0,4}",
        "[ a-zé€😀=@:!*'()+^$,;]{1,8}",
        Just(String::new()),
    ]
}

fn random_request() -> impl Strategy<Value = Random> {
    (
        prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"]),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(segment(), 0..5),
        prop::collection::vec(
            ("[a-zA-Z0-9 _.~+=/-]{0,6}", "[a-zA-Z0-9 _.~+=/é-]{0,8}"),
            0..5,
        ),
        prop::collection::vec(("x-custom-[a-c]", "[ -~]{0,12}"), 0..4),
        prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..64),
            1 => (0usize..(1 << 20)).prop_map(|n| vec![7u8; n]),
        ],
    )
        .prop_map(
            |(method, s3, presign, segments, query, headers, body)| Random {
                method,
                s3,
                presign,
                segments,
                query,
                headers,
                body,
            },
        )
}

fn encode_path_segment(seg: &str) -> String {
    // Percent-encode anything outside a conservative set, but keep existing escapes.
    let mut out = String::new();
    for ch in seg.chars() {
        if ch.is_ascii_alphanumeric() || "-._~%=@:!*'()+$,;".contains(ch) {
            out.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn encode_query_part(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Signed {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
    now: i64,
}

impl Signed {
    fn verify(&self) -> Result<(), VerifyError> {
        let req = HttpRequest {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            authority: None,
            headers: &self.headers,
        };
        verify_request(&req, &self.body, SECRET, self.now, SKEW, None)
    }
}

fn sign_random(r: &Random) -> Signed {
    let now: i64 = 1_700_000_000;
    let path = format!(
        "/{}",
        r.segments
            .iter()
            .map(|s| encode_path_segment(s))
            .collect::<Vec<_>>()
            .join("/")
    );
    let query = (!r.query.is_empty()).then(|| {
        r.query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() && k.len() % 2 == 0 {
                    encode_query_part(k)
                } else {
                    format!("{}={}", encode_query_part(k), encode_query_part(v))
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    let uri = format!(
        "https://example.amazonaws.com{path}{}",
        query.as_ref().map(|q| format!("?{q}")).unwrap_or_default()
    );
    let mut settings = SigningSettings::default();
    let service = if r.s3 { "s3" } else { "execute-api" };
    if r.s3 {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if r.presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(600));
    }
    let identity = Credentials::new("AKIDEXAMPLE", SECRET, None, None, "prop").into();
    let time = UNIX_EPOCH + Duration::from_secs(now as u64);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let mut headers: Vec<(&str, &str)> = vec![("host", "example.amazonaws.com")];
    headers.extend(r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let body = if r.s3 && r.presign {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(&r.body)
    };
    let signable =
        SignableRequest::new(r.method, uri.clone(), headers.clone().into_iter(), body).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder()
        .method(r.method)
        .uri(uri)
        .body(())
        .unwrap();
    for (k, v) in &headers {
        req.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    instructions.apply_to_request_http1x(&mut req);
    Signed {
        method: r.method.to_owned(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        headers: req.headers().clone(),
        body: r.body.clone(),
        now,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn requests_signed_by_aws_sigv4_verify(r in random_request(), flip in any::<prop::sample::Index>(), part in 0usize..4) {
        let signed = sign_random(&r);
        prop_assert_eq!(signed.verify(), Ok(()), "request {:?} {:?} {:?}", signed.method, signed.path, signed.query);

        // One byte changed in one signed part must fail.
        let mut bad = Signed { method: signed.method.clone(), path: signed.path.clone(), query: signed.query.clone(), headers: signed.headers.clone(), body: signed.body.clone(), now: signed.now };
        let body_signed = !(r.s3 && r.presign);
        match part {
            0 => bad.path.push('a'),
            1 if bad.query.as_deref().is_some_and(|q| q.split('&').any(|p| !p.starts_with("X-Amz-Signature="))) => {
                let q = bad.query.clone().unwrap();
                let pairs: Vec<&str> = q.split('&').filter(|p| !p.starts_with("X-Amz-Signature=")).collect();
                let victim = pairs[flip.index(pairs.len())];
                bad.query = Some(q.replacen(victim, &tweak(victim), 1));
            }
            2 if body_signed && !bad.body.is_empty() => {
                let i = flip.index(bad.body.len());
                bad.body[i] ^= 1;
            }
            _ => {
                bad.headers.insert("host", HeaderValue::from_static("example.amazonaws.con"));
            }
        }
        prop_assert!(bad.verify().is_err());
    }
}
