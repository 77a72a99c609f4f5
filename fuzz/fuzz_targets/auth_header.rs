//! The `Authorization` header parser and every check that follows it, on arbitrary header
//! values, dates and paths. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::sigv4::{self, HttpRequest};

fuzz_target!(|data: &[u8]| {
    // Split the input into: authorization | x-amz-date | x-amz-content-sha256 | path.
    let mut parts = data.splitn(4, |&b| b == 0);
    let auth = parts.next().unwrap_or_default();
    let date = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(auth) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    if let Ok(v) = http::HeaderValue::from_bytes(date) {
        headers.insert("x-amz-date", v.clone());
        headers.insert("date", v);
    }
    if let Ok(v) = http::HeaderValue::from_bytes(payload) {
        headers.insert("x-amz-content-sha256", v);
    }
    headers.insert("host", http::HeaderValue::from_static("example.amazonaws.com"));
    let req = HttpRequest { method: "GET", path: &path, query: None, authority: None, headers: &headers };
    let _ = sigv4::verify_request(&req, b"", "secret", 1_440_938_160, 900, None);
    if let Ok(p) = sigv4::parse(&req, 1_440_938_160, 900) {
        let _ = p.access_key_id();
        let _ = p.scope();
        let _ = p.signing_key_id();
        let _ = p.payload_mode();
        let mut out = Vec::new();
        let _ = p.string_to_sign(&mut out, &req, sigv4::EMPTY_SHA256);
    }
});
