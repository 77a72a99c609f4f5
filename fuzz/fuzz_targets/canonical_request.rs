//! Canonicalization (path rules for every service family, query sorting, header folding) on
//! arbitrary paths, queries and header values. Must never panic; S3 and standard outputs must be
//! ASCII; a header value handed over as already found (`KnownHeaders`, as the parser does) must
//! give the same canonical request as looking it up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::sigv4::{canonical_request, CanonicalRules, HttpRequest, KnownHeaders};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let h1 = parts.next().unwrap_or_default();
    let h2 = parts.next().unwrap_or_default();
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static("example.amazonaws.com"));
    for v in [h1, h2] {
        if let Ok(v) = http::HeaderValue::from_bytes(v) {
            headers.append("x-amz-meta-a", v);
        }
    }
    let date = http::HeaderValue::from_bytes(h1).ok();
    if let Some(d) = &date {
        headers.insert("x-amz-date", d.clone());
    }
    let known = KnownHeaders { date: date.as_ref().map(http::HeaderValue::as_bytes), ..KnownHeaders::default() };
    let signed = "host;x-amz-date;x-amz-meta-a;x-missing";
    let req = HttpRequest { method: "PUT", path: &path, query: Some(&query), authority: Some("example.amazonaws.com"), headers: &headers };
    for rules in [CanonicalRules::S3, CanonicalRules::S3_VERBATIM, CanonicalRules::STANDARD, CanonicalRules::STANDARD_UNNORMALIZED] {
        let mut out = Vec::new();
        let looked_up = canonical_request(&mut out, &req, rules, signed, "UNSIGNED-PAYLOAD", false, false, &KnownHeaders::default());
        let mut given = Vec::new();
        let with_known = canonical_request(&mut given, &req, rules, signed, "UNSIGNED-PAYLOAD", false, false, &known);
        assert_eq!(looked_up.is_ok(), with_known.is_ok());
        assert_eq!(out, given, "known header values change nothing");
        if looked_up.is_ok() && !rules.verbatim_path {
            // The canonical URI and query lines are always ASCII.
            let mut lines = out.split(|&b| b == b'\n');
            let _method = lines.next();
            assert!(lines.next().is_some_and(|l| l.is_ascii()));
            assert!(lines.next().is_some_and(|l| l.is_ascii()));
        }
    }
});
