//! The S3 request mapping (`authz::s3::map_s3`: which operation, action, resource and condition
//! keys a request is) on arbitrary methods, hosts, paths, queries and `x-amz-*` headers — all
//! client input, read after the signature is verified. Must never panic; a mapped request names
//! a well-formed resource, and its keys are checked with the body's keys when it says so.
//!
//! The `DeleteObjects` XML body (`authz::decide::delete_entries`), whose keys are each
//! authorized, is fuzzed too: it must never panic, and never yield more than 1,000 keys.
//!
//! Input: `method-byte host \n path \n query \n header-lines… [\n--\n body]`, each header line
//! `name: value`.
#![no_main]

#[path = "common.rs"]
mod common;

use http::Method;
use libfuzzer_sys::fuzz_target;
use tollgate::authz::s3::map_s3;

const METHODS: [&str; 7] = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"];

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = Method::from_bytes(METHODS[usize::from(m) % METHODS.len()].as_bytes())
        .expect("a standard method");
    let text = String::from_utf8_lossy(rest);
    let (head, body) = text.split_once("\n--\n").unwrap_or((&text, ""));
    if let Ok(entries) = tollgate::authz::decide::delete_entries(body) {
        assert!(entries.len() <= 1000);
    }
    let mut lines = head.split('\n');
    let host = lines.next().filter(|h| !h.is_empty());
    let path = lines.next().unwrap_or("/");
    let query = lines.next().filter(|q| !q.is_empty());
    let headers = common::header_lines(lines);
    let suffixes = vec![
        "s3.amazonaws.com".to_owned(),
        "s3.us-east-1.amazonaws.com".to_owned(),
    ];
    if let Ok(req) = map_s3(&method, host, path, query, &headers, &suffixes) {
        assert!(
            req.resource == "*" || req.resource.starts_with("arn:aws:s3:::"),
            "{req:?}"
        );
        assert!(req.action.starts_with("s3:"), "{req:?}");
        for (action, resource) in req.checks() {
            assert!(action.starts_with("s3:"), "{req:?}");
            assert!(!resource.is_empty(), "{req:?}");
        }
        let _ = req.requires_body();
    }
});
