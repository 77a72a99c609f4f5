//! Parsing of the `Authorization` header and presigned query, and the pre-key checks.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::canonical::{canonical_request, percent_decode, CanonicalRules, KnownHeaders, Sink};
use super::{HttpRequest, SigV4Error, Signature, ALGORITHM, MAX_PRESIGN_EXPIRES, UNSIGNED_PAYLOAD};
use crate::time::AmzDate;

/// Where the authentication data was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthForm {
    /// `Authorization: AWS4-HMAC-SHA256 …`
    Header,
    /// `?X-Amz-Algorithm=AWS4-HMAC-SHA256&…` (presigned URL).
    Query,
}

impl AuthForm {
    /// `header` or `query`, for audit and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthForm::Header => "header",
            AuthForm::Query => "query",
        }
    }
}

/// `<date>/<region>/<service>/aws4_request`, borrowed from the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope<'a> {
    /// `YYYYMMDD`.
    pub date: &'a str,
    /// Region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service, e.g. `s3`.
    pub service: &'a str,
}

/// How the payload enters the canonical request, decided by the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode<'a> {
    /// A hex SHA-256 the client declared (`x-amz-content-sha256` / `X-Amz-Content-Sha256`);
    /// the body must hash to it.
    Declared(&'a str),
    /// `UNSIGNED-PAYLOAD`, declared or implied by an S3 presigned URL.
    Unsigned,
    /// A `STREAMING-…` literal (aws-chunked).
    Streaming(&'a str),
    /// No declaration: the canonical request carries the SHA-256 of the body as received.
    BodyHash,
    /// A declared value that is neither hex SHA-256 nor a known literal.
    Invalid(&'a str),
}

/// A request's SigV4 authentication data, parsed and checked up to (not including) the key.
/// `Debug` never prints the session token.
#[derive(Clone)]
pub struct Parsed<'a> {
    /// Header or query form.
    pub form: AuthForm,
    credential: Cow<'a, str>,
    /// Byte offsets of the last four `/` of the credential (key/date/region/service/term), found
    /// once; `None` when it has fewer parts.
    slashes: Option<[usize; 4]>,
    signed_headers: Cow<'a, str>,
    /// The signature the client sent.
    pub signature: Signature,
    /// The request time.
    pub date: AmzDate,
    /// `X-Amz-Expires` for presigned URLs.
    pub expires: Option<u64>,
    /// The session token, if any (`x-amz-security-token` / `X-Amz-Security-Token`).
    pub security_token: Option<Cow<'a, str>>,
    payload: Option<Cow<'a, str>>,
    /// Canonicalization rules for the scope's service.
    pub rules: CanonicalRules,
    /// Leave `X-Amz-Security-Token` out of the canonical query ("header-after" signers).
    omit_query_token: bool,
    /// Which alternative canonicalization [`Parsed::next_alternative`] tries next.
    alternative: u8,
    /// Header values found while parsing, for the canonical request.
    known: KnownHeaders<'a>,
}

impl std::fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("form", &self.form)
            .field("credential", &self.credential)
            .field("signed_headers", &self.signed_headers)
            .field("date", &self.date)
            .field("expires", &self.expires)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "***"),
            )
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

fn incomplete(msg: impl Into<String>) -> SigV4Error {
    SigV4Error::Incomplete(msg.into())
}

/// One header's values as the parser needs them: the last (the last value wins for
/// single-valued auth headers, as AWS does for Authorization) and how many there were.
#[derive(Clone, Copy, Default)]
struct Seen<'a> {
    last: Option<&'a http::HeaderValue>,
    count: u32,
}

impl<'a> Seen<'a> {
    fn add(&mut self, v: &'a http::HeaderValue) {
        self.last = Some(v);
        self.count = self.count.saturating_add(1);
    }

    /// The last value as text (visible ASCII and tab), if any.
    fn text(&self) -> Option<&'a str> {
        self.last.and_then(|v| visible_ascii(v.as_bytes()))
    }

    /// The raw value when the header was sent exactly once (for the canonical request).
    fn only(&self) -> Option<&'a [u8]> {
        (self.count == 1)
            .then_some(self.last)
            .flatten()
            .map(http::HeaderValue::as_bytes)
    }
}

/// The headers SigV4 reads, found in one pass over the request's headers: five hash lookups
/// (each hashing and comparing the name) cost several times a walk over the dozen headers an
/// SDK sends.
#[derive(Clone, Copy, Default)]
struct AuthHeaders<'a> {
    authorization: Seen<'a>,
    date: Seen<'a>,
    amz_date: Seen<'a>,
    security_token: Seen<'a>,
    content_sha256: Seen<'a>,
}

impl<'a> AuthHeaders<'a> {
    fn scan(headers: &'a http::HeaderMap) -> Self {
        let mut h = AuthHeaders::default();
        for (name, value) in headers {
            let slot = if *name == http::header::AUTHORIZATION {
                &mut h.authorization
            } else if *name == http::header::DATE {
                &mut h.date
            } else {
                match name.as_str() {
                    "x-amz-date" => &mut h.amz_date,
                    "x-amz-security-token" => &mut h.security_token,
                    "x-amz-content-sha256" => &mut h.content_sha256,
                    _ => continue,
                }
            };
            slot.add(value);
        }
        h
    }
}

/// The value as text when it is visible ASCII or tab (what `HeaderValue::to_str` accepts). The
/// check has no early exit inside a 32-byte chunk, so it runs vectorized: the long values
/// (`Authorization`, session tokens) cost a few instructions per chunk, not per byte.
pub(crate) fn visible_ascii(bytes: &[u8]) -> Option<&str> {
    let ok = bytes.chunks(32).all(|chunk| {
        chunk.iter().fold(true, |all, &b| {
            all & ((b.wrapping_sub(0x20) < 0x5f) | (b == b'\t'))
        })
    });
    if !ok {
        return None;
    }
    // Only ASCII is left, which is UTF-8.
    std::str::from_utf8(bytes).ok()
}

/// Query parameters relevant to presigned URLs, first occurrence wins (AWS's behaviour).
#[derive(Default)]
struct PresignParams<'a> {
    algorithm: Option<&'a str>,
    credential: Option<&'a str>,
    date: Option<&'a str>,
    expires: Option<&'a str>,
    signed_headers: Option<&'a str>,
    signature: Option<&'a str>,
    token: Option<&'a str>,
    content_sha256: Option<&'a str>,
}

fn presign_params(query: &str) -> PresignParams<'_> {
    let mut p = PresignParams::default();
    for pair in crate::text::split(query, b'&') {
        let (k, v) = crate::text::split_once(pair, b'=').unwrap_or((pair, ""));
        let slot = match k {
            "X-Amz-Algorithm" => &mut p.algorithm,
            "X-Amz-Credential" => &mut p.credential,
            "X-Amz-Date" => &mut p.date,
            "X-Amz-Expires" => &mut p.expires,
            "X-Amz-SignedHeaders" => &mut p.signed_headers,
            "X-Amz-Signature" => &mut p.signature,
            "X-Amz-Security-Token" => &mut p.token,
            "X-Amz-Content-Sha256" => &mut p.content_sha256,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }
    p
}

fn decode_param(v: &str) -> Result<Cow<'_, str>, SigV4Error> {
    match percent_decode(v, true)? {
        Cow::Borrowed(_) => Ok(Cow::Borrowed(v)),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| SigV4Error::MalformedRequest("query parameter is not UTF-8".into())),
    }
}

fn has_presign_algorithm(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        crate::text::split(q, b'&')
            .any(|p| p == "X-Amz-Algorithm" || p.starts_with("X-Amz-Algorithm="))
    })
}

/// Parses a request's SigV4 data and runs AWS's checks 3–9: one form, algorithm and parts,
/// `host` signed, date format, clock skew (or presign expiry) and scope shape/date.
///
/// Region and service checks against configuration are [`Parsed::check_scope`]'s, so that this
/// function needs nothing but the request and the clock. `skew` is the allowed clock skew in
/// seconds.
pub fn parse<'a>(req: &HttpRequest<'a>, now: i64, skew: i64) -> Result<Parsed<'a>, SigV4Error> {
    let headers = AuthHeaders::scan(req.headers);
    let query_form = has_presign_algorithm(req.query);
    let parsed = match (headers.authorization.last, query_form) {
        (None, false) => return Err(SigV4Error::Missing),
        (Some(_), true) => return Err(SigV4Error::Ambiguous),
        (Some(_), false) => parse_header(&headers)?,
        (None, true) => parse_query(req, &headers)?,
    };
    parsed.check_time(now, skew)?;
    parsed.check_scope_shape()?;
    Ok(parsed)
}

fn parse_header<'a>(headers: &AuthHeaders<'a>) -> Result<Parsed<'a>, SigV4Error> {
    let value = headers
        .authorization
        .text()
        .ok_or_else(|| incomplete("Authorization header is not valid ASCII"))?;
    // The value is visible ASCII and tab (`Seen::text`), so ASCII trimming is `str::trim`, and
    // byte searches (no per-call `char` searcher: this runs on every request) find the parts.
    let value = value.trim_ascii();
    let (algorithm, rest) = crate::text::split_once(value, b' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(algorithm.to_owned()));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    let mut rest = Some(rest);
    while let Some(text) = rest {
        let (part, next) =
            crate::text::split_once(text, b',').map_or((text, None), |(p, n)| (p, Some(n)));
        rest = next;
        let part = part.trim_ascii();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = crate::text::split_once(part, b'=') else {
            return Err(incomplete(format!(
                "Authorization header requires each component to be of the form key=value; got '{part}'"
            )));
        };
        // Duplicate components: the last one wins, as AWS does.
        match k.trim_ascii() {
            "Credential" => credential = Some(v.trim_ascii()),
            "SignedHeaders" => signed_headers = Some(v.trim_ascii()),
            "Signature" => signature = Some(v.trim_ascii()),
            _ => {}
        }
    }
    let missing = |name: &str| {
        incomplete(format!(
            "Authorization header requires '{name}' parameter. Authorization={value}"
        ))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let date = match headers.amz_date.text() {
        Some(d) => AmzDate::parse(d.trim()).ok_or_else(|| SigV4Error::BadDate(d.to_owned()))?,
        None => match headers.date.text() {
            Some(d) => AmzDate::parse_http_date(d.trim())
                .or_else(|| AmzDate::parse(d.trim()))
                .ok_or_else(|| SigV4Error::BadDate(d.to_owned()))?,
            None => {
                return Err(incomplete(format!(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={value}"
                )))
            }
        },
    };
    check_signed_headers(signed_headers)?;
    let signature = Signature::from_hex(signature)
        .ok_or_else(|| incomplete("Signature must be 64 hexadecimal characters"))?;
    let service = service_of(credential);
    Ok(Parsed {
        form: AuthForm::Header,
        slashes: slashes_of(credential),
        credential: Cow::Borrowed(credential),
        signed_headers: Cow::Borrowed(signed_headers),
        signature,
        date,
        expires: None,
        security_token: headers.security_token.text().map(Cow::Borrowed),
        payload: headers.content_sha256.text().map(Cow::Borrowed),
        rules: CanonicalRules::for_service(service),
        omit_query_token: false,
        alternative: 0,
        known: KnownHeaders {
            date: headers.amz_date.only(),
            content_sha256: headers.content_sha256.only(),
            security_token: headers.security_token.only(),
        },
    })
}

fn parse_query<'a>(
    req: &HttpRequest<'a>,
    headers: &AuthHeaders<'a>,
) -> Result<Parsed<'a>, SigV4Error> {
    let p = presign_params(req.query.unwrap_or(""));
    let algorithm = decode_param(p.algorithm.unwrap_or(""))?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(algorithm.into_owned()));
    }
    let missing = |name: &str| {
        incomplete(format!("AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."))
    };
    let credential = decode_param(p.credential.ok_or_else(|| missing("X-Amz-Credential"))?)?;
    let signed_headers = decode_param(
        p.signed_headers
            .ok_or_else(|| missing("X-Amz-SignedHeaders"))?,
    )?;
    let signature = decode_param(p.signature.ok_or_else(|| missing("X-Amz-Signature"))?)?;
    let date_raw = decode_param(p.date.ok_or_else(|| missing("X-Amz-Date"))?)?;
    let expires_raw = decode_param(p.expires.ok_or_else(|| missing("X-Amz-Expires"))?)?;
    let date =
        AmzDate::parse(&date_raw).ok_or_else(|| SigV4Error::BadDate(date_raw.to_string()))?;
    let expires: u64 = expires_raw
        .parse()
        .map_err(|_| SigV4Error::BadExpires("X-Amz-Expires should be a number".into()))?;
    if expires == 0 {
        return Err(SigV4Error::BadExpires(
            "X-Amz-Expires must be non-negative".into(),
        ));
    }
    if expires > MAX_PRESIGN_EXPIRES {
        return Err(SigV4Error::BadExpires(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800".into(),
        ));
    }
    check_signed_headers(&signed_headers)?;
    let signature = Signature::from_hex(&signature)
        .ok_or_else(|| incomplete("X-Amz-Signature must be 64 hexadecimal characters"))?;
    let service = service_of(&credential);
    let rules = CanonicalRules::for_service(service);
    let payload = match p.content_sha256 {
        Some(v) => Some(decode_param(v)?),
        None if super::is_s3_service(service) => Some(Cow::Borrowed(UNSIGNED_PAYLOAD)),
        None => None,
    };
    let security_token = match p.token {
        Some(t) => Some(decode_param(t)?),
        // A "header-after" signer leaves the token out of the query and signs nothing of it.
        None => headers.security_token.text().map(Cow::Borrowed),
    };
    Ok(Parsed {
        form: AuthForm::Query,
        slashes: slashes_of(&credential),
        credential,
        signed_headers,
        signature,
        date,
        expires: Some(expires),
        security_token,
        payload,
        rules,
        omit_query_token: false,
        alternative: 0,
        known: KnownHeaders::default(),
    })
}

/// The service part of a credential (4th from the right), or `""`.
fn service_of(credential: &str) -> &str {
    match slashes_of(credential) {
        Some([_, _, r, s]) => credential.get(r + 1..s).unwrap_or(""),
        None => "",
    }
}

/// The offsets of the last four `/` of a credential, left to right.
fn slashes_of(credential: &str) -> Option<[usize; 4]> {
    let b = credential.as_bytes();
    let mut out = [0usize; 4];
    let mut end = b.len();
    for slot in out.iter_mut().rev() {
        let i = b.get(..end)?.iter().rposition(|&c| c == b'/')?;
        *slot = i;
        end = i;
    }
    Some(out)
}

fn check_signed_headers(signed_headers: &str) -> Result<(), SigV4Error> {
    // One pass: every name non-empty, lower-case, no controls or spaces; `host` among them.
    let mut host = false;
    let mut valid = !signed_headers.is_empty()
        && signed_headers
            .bytes()
            .fold(true, |ok, b| ok & !(b.is_ascii_uppercase() | (b <= b' ')));
    for h in signed_headers.as_bytes().split(|&b| b == b';') {
        valid &= !h.is_empty();
        host |= h == b"host";
    }
    if !valid {
        return Err(incomplete(format!(
            "SignedHeaders must be a ';'-separated list of lower-case header names; got '{signed_headers}'"
        )));
    }
    if !host {
        return Err(SigV4Error::HostNotSigned);
    }
    Ok(())
}

impl<'a> Parsed<'a> {
    fn check_time(&self, now: i64, skew: i64) -> Result<(), SigV4Error> {
        let t = self.date.epoch();
        if let Some(expires) = self.expires {
            // Presigned: not valid before its date (minus skew) nor after date + expires.
            if t - skew > now {
                return Err(self.skewed(now, skew));
            }
            let expires_i = i64::try_from(expires).unwrap_or(i64::MAX);
            if now > t.saturating_add(expires_i) {
                return Err(SigV4Error::Expired {
                    signed_at: t,
                    expires,
                    server_time: now,
                });
            }
            return Ok(());
        }
        if (now - t).abs() > skew {
            return Err(self.skewed(now, skew));
        }
        Ok(())
    }

    fn skewed(&self, now: i64, skew: i64) -> SigV4Error {
        let service = service_of(&self.credential);
        SigV4Error::Skewed {
            request_time: self.date.epoch(),
            server_time: now,
            window: skew,
            service: (!service.is_empty()).then(|| service.to_owned()),
        }
    }

    fn check_scope_shape(&self) -> Result<(), SigV4Error> {
        if self.slashes.is_none() || self.access_key_id().is_empty() {
            return Err(SigV4Error::ScopeParts(self.credential.to_string()));
        }
        let scope = self.scope();
        if self.terminator() != "aws4_request" {
            return Err(SigV4Error::WrongTerminator(self.terminator().to_owned()));
        }
        if scope.date != self.date.date() {
            return Err(SigV4Error::ScopeDate {
                scope: scope.date.to_owned(),
                request: self.date.date().to_owned(),
                request_time: self.date.as_str().to_owned(),
            });
        }
        Ok(())
    }

    /// The credential between two offsets (`""` when it has too few parts).
    fn part(&self, from: Option<usize>, to: Option<usize>) -> &str {
        let (Some(from), Some(to)) = (from, to) else {
            return "";
        };
        self.credential.get(from..to).unwrap_or("")
    }

    fn terminator(&self) -> &str {
        self.part(self.slashes.map(|s| s[3] + 1), Some(self.credential.len()))
    }

    /// The access key id (everything before the last four `/`-separated parts).
    pub fn access_key_id(&self) -> &str {
        self.part(Some(0), self.slashes.map(|s| s[0]))
    }

    /// The credential scope.
    pub fn scope(&self) -> CredentialScope<'_> {
        let s = self.slashes;
        CredentialScope {
            date: self.part(s.map(|s| s[0] + 1), s.map(|s| s[1])),
            region: self.part(s.map(|s| s[1] + 1), s.map(|s| s[2])),
            service: self.part(s.map(|s| s[2] + 1), s.map(|s| s[3])),
        }
    }

    /// `<date>/<region>/<service>/aws4_request`.
    pub fn scope_string(&self) -> &str {
        self.part(self.slashes.map(|s| s[0] + 1), Some(self.credential.len()))
    }

    /// `<access key>/<date>/<region>/<service>`: the signing-key cache key.
    pub fn signing_key_id(&self) -> &str {
        self.part(Some(0), self.slashes.map(|s| s[3]))
    }

    /// The `SignedHeaders` list as sent.
    pub fn signed_headers(&self) -> &str {
        &self.signed_headers
    }

    /// Checks region and service against what the server serves (AWS check 9).
    pub fn check_scope(
        &self,
        mut region_ok: impl FnMut(&str) -> bool,
        mut service_ok: impl FnMut(&str) -> bool,
    ) -> Result<(), SigV4Error> {
        let scope = self.scope();
        if !region_ok(scope.region) {
            return Err(SigV4Error::WrongRegion {
                region: scope.region.to_owned(),
                service: scope.service.to_owned(),
            });
        }
        if !service_ok(scope.service) {
            return Err(SigV4Error::WrongService(scope.service.to_owned()));
        }
        Ok(())
    }

    /// How the payload is covered by the signature.
    pub fn payload_mode(&self) -> PayloadMode<'_> {
        match self.payload.as_deref() {
            None => PayloadMode::BodyHash,
            Some(UNSIGNED_PAYLOAD) => PayloadMode::Unsigned,
            Some(v) if v.starts_with("STREAMING-") => PayloadMode::Streaming(v),
            Some(v) if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                PayloadMode::Declared(v)
            }
            Some(v) => PayloadMode::Invalid(v),
        }
    }

    /// `x-amz-content-sha256` exactly as sent, when present.
    pub fn payload_literal(&self) -> Option<&str> {
        self.payload.as_deref()
    }

    /// Switches to the next alternative canonicalization that some real clients use, returning
    /// false when there is none left. Alternatives, tried only after the standard form failed:
    /// the S3 path exactly as sent (clients that encode reserved characters in keys
    /// differently), and a presigned query without `X-Amz-Security-Token` ("header-after"
    /// signers such as IoT's, which add the token after signing).
    pub fn next_alternative(&mut self, req: &HttpRequest<'_>) -> bool {
        loop {
            self.alternative += 1;
            match self.alternative {
                1 if self.rules == CanonicalRules::S3
                    && super::canonical::s3_path_is_ambiguous(req.path) =>
                {
                    self.rules = CanonicalRules::S3_VERBATIM;
                    return true;
                }
                2 if self.form == AuthForm::Query
                    && req
                        .query
                        .is_some_and(|q| q.contains("X-Amz-Security-Token=")) =>
                {
                    if self.rules == CanonicalRules::S3_VERBATIM {
                        self.rules = CanonicalRules::S3;
                    }
                    self.omit_query_token = true;
                    return true;
                }
                1 | 2 => continue,
                _ => return false,
            }
        }
    }

    /// Writes the canonical request with `payload_hash` (hex or literal) on its last line.
    pub fn canonical_request(
        &self,
        sink: &mut impl Sink,
        req: &HttpRequest<'_>,
        payload_hash: &str,
    ) -> Result<(), SigV4Error> {
        canonical_request(
            sink,
            req,
            self.rules,
            &self.signed_headers,
            payload_hash,
            self.form == AuthForm::Query,
            self.omit_query_token,
            &self.known,
        )
    }

    /// Writes the string to sign into `out` (cleared first).
    pub fn string_to_sign(
        &self,
        out: &mut Vec<u8>,
        req: &HttpRequest<'_>,
        payload_hash: &str,
    ) -> Result<(), SigV4Error> {
        let mut hasher = Sha256::new();
        self.canonical_request(&mut hasher, req, payload_hash)?;
        let digest = hasher.finalize();
        out.clear();
        out.extend_from_slice(ALGORITHM.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.date.as_str().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.scope_string().as_bytes());
        out.push(b'\n');
        let mut hex_buf = [0u8; 64];
        if hex::encode_to_slice(digest, &mut hex_buf).is_ok() {
            out.extend_from_slice(&hex_buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_session_token() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "example.com".parse().unwrap());
        headers.insert("x-amz-date", "20261129T010203Z".parse().unwrap());
        headers.insert(
            "x-amz-security-token",
            "v1.k1.SECRET-SESSION-TOKEN".parse().unwrap(),
        );
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ASIAAAAAAAAAAAAAAAAA/20261129/us-east-1/execute-api/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=0000000000000000000000000000000000000000000000000000000000000000"
                .parse()
                .unwrap(),
        );
        let req = HttpRequest {
            method: "GET",
            path: "/",
            query: None,
            authority: None,
            headers: &headers,
        };
        let now = AmzDate::parse("20261129T010203Z").unwrap().epoch();
        let parsed = parse(&req, now, 900).unwrap();
        assert!(parsed.security_token.is_some());
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("SECRET-SESSION-TOKEN"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn visible_ascii_accepts_what_header_value_to_str_accepts() {
        for b in 0..=255u8 {
            for len in [1usize, 31, 32, 33, 100] {
                let mut bytes = vec![b'a'; len];
                bytes[len / 2] = b;
                let expected = http::HeaderValue::from_bytes(&bytes)
                    .ok()
                    .and_then(|v| v.to_str().ok().map(str::to_owned));
                assert_eq!(
                    visible_ascii(&bytes).map(str::to_owned),
                    expected,
                    "{b} {len}"
                );
            }
        }
        assert_eq!(visible_ascii(b""), Some(""));
    }
}
