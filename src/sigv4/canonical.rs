//! Canonical request construction (AWS SigV4 "Create a canonical request").
//!
//! Output goes to a [`Sink`]: a SHA-256 hasher on the hot path (no buffer at all) or a `Vec<u8>`
//! when the text is needed for an error body or a test.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::{HttpRequest, SigV4Error};

/// Where canonical request bytes go.
pub trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Path rules, chosen by the scope's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanonicalRules {
    /// Remove dot segments and merge repeated slashes (all services but S3).
    pub normalize_path: bool,
    /// Encode the wire path once more (`%` → `%25`), as all services but S3 do. When false
    /// (S3) the path is percent-decoded and encoded once.
    pub double_encode: bool,
    /// Use the wire path verbatim (the S3 fallback for clients that encode reserved characters
    /// differently, e.g. `%2F` inside a key); overrides the two flags above.
    pub verbatim_path: bool,
}

impl CanonicalRules {
    /// S3 rules: no normalization, single encoding.
    pub const S3: Self = Self {
        normalize_path: false,
        double_encode: false,
        verbatim_path: false,
    };
    /// The S3 fallback: the path exactly as sent.
    pub const S3_VERBATIM: Self = Self {
        normalize_path: false,
        double_encode: false,
        verbatim_path: true,
    };
    /// Every other service: normalize, double encoding.
    pub const STANDARD: Self = Self {
        normalize_path: true,
        double_encode: true,
        verbatim_path: false,
    };
    /// Double encoding without normalization (the test suite's `normalize: false` cases).
    pub const STANDARD_UNNORMALIZED: Self = Self {
        normalize_path: false,
        double_encode: true,
        verbatim_path: false,
    };

    /// The rules AWS applies for a scope service.
    pub fn for_service(service: &str) -> Self {
        if super::is_s3_service(service) {
            Self::S3
        } else {
            Self::STANDARD
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `%XY` for a byte, uppercase hex.
fn percent_escape(b: u8) -> [u8; 3] {
    let hex = |n: u8| HEX.get(usize::from(n & 15)).copied().unwrap_or(b'0');
    [b'%', hex(b >> 4), hex(b)]
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes `bytes` with the SigV4 unreserved set (uppercase hex); `/` kept when asked.
fn encode_into(sink: &mut impl Sink, bytes: &[u8], keep_slash: bool) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            continue;
        }
        if let Some(run) = bytes.get(start..i) {
            sink.put(run);
        }
        sink.put(&percent_escape(b));
        start = i + 1;
    }
    if let Some(run) = bytes.get(start..) {
        sink.put(run);
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes; `plus_is_space` for query components. Fails on a malformed escape.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> Result<Cow<'_, [u8]>, SigV4Error> {
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().copied();
    while let Some(b) = iter.next() {
        match b {
            b'%' => {
                let hi = iter.next().and_then(hex_val);
                let lo = iter.next().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => {
                        return Err(SigV4Error::MalformedRequest(
                            "incomplete trailing escape % sequence".into(),
                        ))
                    }
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
    }
    Ok(Cow::Owned(out))
}

/// Writes the canonical URI for `path` under `rules`.
pub(crate) fn write_canonical_uri(
    sink: &mut impl Sink,
    path: &str,
    rules: CanonicalRules,
) -> Result<(), SigV4Error> {
    if path.is_empty() {
        sink.put(b"/");
        return Ok(());
    }
    if rules.verbatim_path {
        sink.put(path.as_bytes());
        return Ok(());
    }
    if !rules.double_encode {
        let decoded = percent_decode(path, false)?;
        encode_into(sink, &decoded, true);
        return Ok(());
    }
    if rules.normalize_path && needs_normalizing(path) {
        let normalized = normalize_path(path);
        encode_into(sink, normalized.as_bytes(), true);
    } else {
        encode_into(sink, path.as_bytes(), true);
    }
    Ok(())
}

fn needs_normalizing(path: &str) -> bool {
    // A dot segment always follows a `/` (the path starts with one), so paths without `/.` or
    // `//` (nearly all) skip the segment scan.
    !path.starts_with('/')
        || path.contains("//")
        || (path.contains("/.") && path.split('/').any(|seg| seg == "." || seg == ".."))
}

/// RFC 3986 dot-segment removal plus merging of repeated slashes, as AWS's signers do.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|s| path.ends_with(s));
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

/// One query parameter, encoded canonically.
struct QueryParam<'a> {
    key: Cow<'a, str>,
    value: Cow<'a, str>,
}

fn canonical_component(raw: &str) -> Result<Cow<'_, str>, SigV4Error> {
    let already = raw.bytes().all(is_unreserved);
    if already {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = percent_decode(raw, true)?;
    let mut out = Vec::with_capacity(decoded.len() + 8);
    encode_into(&mut out, &decoded, false);
    // Only ASCII is ever written by `encode_into`.
    Ok(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

/// Writes the canonical query string. `skip_signature` leaves out `X-Amz-Signature` (presigned),
/// `skip_token` leaves out `X-Amz-Security-Token`.
pub(crate) fn write_canonical_query(
    sink: &mut impl Sink,
    query: Option<&str>,
    skip_signature: bool,
    skip_token: bool,
) -> Result<(), SigV4Error> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(());
    };
    let mut params: Vec<QueryParam<'_>> = Vec::with_capacity(8);
    for pair in crate::text::split(query, b'&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = crate::text::split_once(pair, b'=').unwrap_or((pair, ""));
        if (skip_signature && k == "X-Amz-Signature") || (skip_token && k == "X-Amz-Security-Token")
        {
            continue;
        }
        params.push(QueryParam {
            key: canonical_component(k)?,
            value: canonical_component(v)?,
        });
    }
    params.sort_unstable_by(|a, b| a.key.cmp(&b.key).then_with(|| a.value.cmp(&b.value)));
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            sink.put(b"&");
        }
        sink.put(p.key.as_bytes());
        sink.put(b"=");
        sink.put(p.value.as_bytes());
    }
    Ok(())
}

/// Writes a header value trimmed, with runs of spaces folded into one.
fn write_header_value(sink: &mut impl Sink, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |p| p + 1);
    let Some(value) = value.get(start..end) else {
        return;
    };
    // Almost every value (dates, hashes, session tokens) has no space at all: one SIMD scan
    // (cheaper than a substring search for a run of two, which needs its searcher built).
    if memchr::memchr(b' ', value).is_none() || memchr::memmem::find(value, b"  ").is_none() {
        sink.put(value);
        return;
    }
    let mut run_start = 0;
    let mut prev_space = false;
    for (i, &b) in value.iter().enumerate() {
        if b == b' ' {
            if prev_space {
                // Flush up to (and including) the first space of the run, skip this one.
                if let Some(run) = value.get(run_start..i) {
                    sink.put(run);
                }
                run_start = i + 1;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
    }
    if let Some(run) = value.get(run_start..) {
        sink.put(run);
    }
}

/// Values of headers the parser already found, each present exactly once in the request: the
/// canonical headers block takes them from here instead of looking them up again (a lookup by
/// `&str` parses and hashes the name).
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownHeaders<'a> {
    /// `x-amz-date`.
    pub date: Option<&'a [u8]>,
    /// `x-amz-content-sha256`.
    pub content_sha256: Option<&'a [u8]>,
    /// `x-amz-security-token`.
    pub security_token: Option<&'a [u8]>,
}

impl<'a> KnownHeaders<'a> {
    fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        match name {
            b"x-amz-date" => self.date,
            b"x-amz-content-sha256" => self.content_sha256,
            b"x-amz-security-token" => self.security_token,
            _ => None,
        }
    }
}

/// Writes the canonical headers block (each line `name:value\n`) for `signed_headers`.
///
/// Fails when a signed header is absent from the request.
pub(crate) fn write_canonical_headers(
    sink: &mut impl Sink,
    req: &HttpRequest<'_>,
    signed_headers: &str,
    known: &KnownHeaders<'_>,
) -> Result<(), MissingHeader> {
    for name in crate::text::split(signed_headers, b';') {
        sink.put(name.as_bytes());
        sink.put(b":");
        if let Some(value) = known.get(name.as_bytes()) {
            write_header_value(sink, value);
            sink.put(b"\n");
            continue;
        }
        let mut values = req.headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            if name == "host" {
                if let Some(authority) = req.authority {
                    sink.put(authority.as_bytes());
                    sink.put(b"\n");
                    continue;
                }
            }
            return Err(MissingHeader);
        }
        let mut first = true;
        for v in values {
            if !first {
                sink.put(b",");
            }
            first = false;
            write_header_value(sink, v.as_bytes());
        }
        sink.put(b"\n");
    }
    Ok(())
}

/// A header named in `SignedHeaders` is not in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingHeader;

/// Writes the whole canonical request.
///
/// `signed_headers` is the `;`-joined lowercase list as the client sent it; `payload_hash` the
/// value for the last line. `presigned` leaves `X-Amz-Signature` out of the query,
/// `omit_query_token` leaves out `X-Amz-Security-Token`; `known` holds header values the
/// caller already found ([`KnownHeaders::default`] when none).
#[expect(
    clippy::too_many_arguments,
    reason = "the canonical request's inputs, each distinct"
)]
pub fn canonical_request(
    sink: &mut impl Sink,
    req: &HttpRequest<'_>,
    rules: CanonicalRules,
    signed_headers: &str,
    payload_hash: &str,
    presigned: bool,
    omit_query_token: bool,
    known: &KnownHeaders<'_>,
) -> Result<(), SigV4Error> {
    sink.put(req.method.as_bytes());
    sink.put(b"\n");
    write_canonical_uri(sink, req.path, rules)?;
    sink.put(b"\n");
    write_canonical_query(sink, req.query, presigned, omit_query_token)?;
    sink.put(b"\n");
    // A missing signed header cannot match any signature the client computed over it; the
    // verifier reports it as a signature mismatch, so the block is written as if it were empty.
    let _ = write_canonical_headers(sink, req, signed_headers, known);
    sink.put(b"\n");
    sink.put(signed_headers.as_bytes());
    sink.put(b"\n");
    sink.put(payload_hash.as_bytes());
    Ok(())
}

/// True when S3 canonicalization of `path` (decode, encode once) differs from the wire path, so a
/// verifier should also try [`CanonicalRules::S3_VERBATIM`].
pub fn s3_path_is_ambiguous(path: &str) -> bool {
    let mut v = Vec::with_capacity(path.len() + 8);
    match write_canonical_uri(&mut v, path, CanonicalRules::S3) {
        Ok(()) => v != path.as_bytes() && !path.is_empty(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str, rules: CanonicalRules) -> String {
        let mut v = Vec::new();
        write_canonical_uri(&mut v, path, rules).unwrap();
        String::from_utf8(v).unwrap()
    }

    fn query(q: &str) -> String {
        let mut v = Vec::new();
        write_canonical_query(&mut v, Some(q), false, false).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn s3_paths_are_single_encoded_and_not_normalized() {
        assert_eq!(
            uri("/bucket/dir//a%3Db/c%20d.txt", CanonicalRules::S3),
            "/bucket/dir//a%3Db/c%20d.txt"
        );
        assert_eq!(
            uri("/bucket/a+b=c(1)!*'~.txt", CanonicalRules::S3),
            "/bucket/a%2Bb%3Dc%281%29%21%2A%27~.txt"
        );
        assert_eq!(uri("/b/./../k", CanonicalRules::S3), "/b/./../k");
    }

    #[test]
    fn standard_paths_are_normalized_and_double_encoded() {
        assert_eq!(
            uri("/prod/items/a%3Db", CanonicalRules::STANDARD),
            "/prod/items/a%253Db"
        );
        assert_eq!(uri("//example//", CanonicalRules::STANDARD), "/example/");
        assert_eq!(
            uri("/example1/example2/../..", CanonicalRules::STANDARD),
            "/"
        );
        assert_eq!(uri("/./", CanonicalRules::STANDARD), "/");
        assert_eq!(uri("", CanonicalRules::STANDARD), "/");
        assert_eq!(uri("/a/b/.", CanonicalRules::STANDARD), "/a/b/");
    }

    #[test]
    fn query_sorts_by_key_then_value() {
        assert_eq!(
            query("key-type=s3&format=json&key"),
            "format=json&key=&key-type=s3"
        );
        assert_eq!(query("a=2&a=1&b"), "a=1&a=2&b=");
        assert_eq!(query("x=a+b&y=%2f&z=~"), "x=a%20b&y=%2F&z=~");
    }

    #[test]
    fn malformed_escape_is_an_error() {
        let mut v = Vec::new();
        assert!(write_canonical_query(&mut v, Some("a=%4"), false, false).is_err());
        assert!(write_canonical_uri(&mut v, "/a%zz", CanonicalRules::S3).is_err());
    }

    #[test]
    fn header_values_trimmed_and_folded() {
        let mut v = Vec::new();
        write_header_value(&mut v, b"  a   b  c ");
        assert_eq!(v, b"a b c");
    }
}
