//! The presigned-URL query parser and checks on arbitrary query strings. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::sigv4::{self, HttpRequest};

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    // Make sure most inputs take the presigned path.
    let query = if query.contains("X-Amz-Algorithm") { query.into_owned() } else { format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&{query}") };
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static("example.amazonaws.com"));
    let req = HttpRequest { method: "GET", path: "/", query: Some(&query), authority: None, headers: &headers };
    let _ = sigv4::verify_request(&req, b"", "secret", 1_440_938_160, 900, None);
    if let Ok(p) = sigv4::parse(&req, 1_440_938_160, 900) {
        let _ = p.scope();
        let _ = p.signing_key_id();
        let mut out = Vec::new();
        let _ = p.string_to_sign(&mut out, &req, sigv4::UNSIGNED_PAYLOAD);
    }
});
