//! The S3 sink: CloudTrail's layout in an S3-compatible bucket ([`S3Store`] under a [`Trail`]).
//!
//! - Requests are path-style (`{endpoint}/{bucket}/{key}`), signed with SigV4 (service `s3`,
//!   the configured region, `x-amz-content-sha256` = hex SHA-256 of the body) by the `aws-sigv4`
//!   crate.
//! - An object key is the trail's key as is (`[prefix/]AWSLogs/<account>/CloudTrail/…`): the
//!   trail already puts the configured prefix in front.
//! - A final object is one `PUT` (S3 makes it visible whole or not at all), with
//!   `Content-Type: application/x-gzip` for `.json.gz` objects (no `Content-Encoding`: the bytes
//!   are the gzip file, as a `GET` returns them) and a digest's signature as user metadata
//!   (`x-amz-meta-signature`, `x-amz-meta-signature-algorithm`), where CloudTrail keeps it.
//! - S3 cannot append: the partial of an open log object is kept whole at
//!   `[prefix/].tollgate-partial/<key>.partial` and rewritten whole at each save (the store
//!   keeps a copy of what it uploaded, so it can add the increment the trail hands it). These
//!   objects are outside `AWSLogs/` and do not end in `.json.gz`: neither [`Store::list`] nor
//!   `tollgate audit verify` (on a copy of the bucket) takes them for log files. They are deleted
//!   once their object is put; the next start delivers what a killed process left.
//! - The digest's `digestS3Bucket` / `logFiles[].s3Bucket` is the bucket written to, unless
//!   `[audit.digests] bucket` names another one than the default.
//!
//! The [`Store`] methods are synchronous and run on the audit writer thread (a plain OS thread):
//! the store drives its requests on its own current-thread tokio runtime (created at the first
//! request, on that thread), each with a time limit. Errors name the key, the HTTP status and the
//! S3 error code; never the secret or a signature.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::trail::{self, DigestConfig, Store, StoredObject, Trail, TrailConfig};
use super::SinkError;
use crate::config::S3Audit;
use crate::credentials::SecretKey;

/// The sink's name.
const NAME: &str = "s3";
/// The folder of partials, under the configured prefix.
pub const PARTIAL_DIR: &str = ".tollgate-partial";
/// What ends the key of a partial (so that it never looks like a `.json.gz` log file).
pub const PARTIAL_SUFFIX: &str = ".partial";
/// How long one request may take, response body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections are closed after this (before S3 or a proxy closes them under us).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest response body read (a log object is at most 1 GiB uncompressed).
const MAX_RESPONSE_BYTES: usize = 1 << 31;
/// The most pages one listing may take (1000 keys each).
const MAX_LIST_PAGES: usize = 100_000;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The HTTP client and the runtime that drives it (the client is dropped first).
struct Http {
    client: HttpClient,
    runtime: tokio::runtime::Runtime,
}

/// A response, read whole.
struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// How often the growing partial of an open log object is uploaded again (S3 has no append, so
/// each upload is the whole object so far).
pub const PARTIAL_UPLOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Objects in an S3-compatible bucket.
pub struct S3Store {
    /// `scheme://authority[/path]`, without a trailing `/`.
    endpoint: String,
    /// The `Host` header: the endpoint's authority.
    host: String,
    bucket: String,
    region: String,
    /// `[prefix/].tollgate-partial/`.
    partial_prefix: String,
    access_key_id: String,
    secret: SecretKey,
    /// The whole partial kept, by the key of its object, and when it was last uploaded.
    partials: HashMap<String, Vec<u8>>,
    uploaded: HashMap<String, std::time::Instant>,
    /// How often additions to a partial are uploaded ([`PARTIAL_UPLOAD_EVERY`]).
    partial_every: std::time::Duration,
    /// Created at the first request, on the thread that makes it.
    http: Option<Http>,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("partial_prefix", &self.partial_prefix)
            .field("access_key_id", &self.access_key_id)
            .field("partials", &self.partials.len())
            .finish_non_exhaustive()
    }
}

/// An S3 sink writing into the bucket of `settings`, with digests when `digest` is given (its
/// bucket name becomes the S3 bucket unless it was set to something else than the default).
pub fn s3_sink(
    settings: &S3Audit,
    digest: Option<DigestConfig>,
) -> Result<Trail<S3Store>, SinkError> {
    let store = S3Store::new(settings)?;
    let digest = digest.map(|mut d| {
        if d.bucket == trail::DEFAULT_BUCKET {
            d.bucket.clone_from(&settings.bucket);
        }
        d
    });
    Ok(Trail::new(
        store,
        TrailConfig {
            prefix: settings.prefix.clone(),
            interval_secs: settings.interval_seconds,
            max_bytes: settings.max_bytes,
            digest,
        },
    ))
}

fn error(message: String) -> SinkError {
    SinkError {
        sink: NAME,
        message,
    }
}

impl S3Store {
    /// A store for the bucket of `settings`. Makes no request: the first one is made by the
    /// first [`Store`] call.
    pub fn new(settings: &S3Audit) -> Result<Self, SinkError> {
        let uri = &settings.endpoint;
        let (Some(scheme @ ("http" | "https")), Some(authority)) =
            (uri.scheme_str(), uri.authority())
        else {
            return Err(error(format!(
                "the endpoint `{uri}` is not an http:// or https:// url with a host"
            )));
        };
        if uri.query().is_some() {
            return Err(error(format!("the endpoint `{uri}` has a query")));
        }
        let path = uri.path().trim_end_matches('/');
        let prefix = settings
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty());
        Ok(Self {
            endpoint: format!("{scheme}://{authority}{path}"),
            host: authority.as_str().to_owned(),
            bucket: settings.bucket.clone(),
            region: settings.region.clone(),
            partial_prefix: match prefix {
                Some(p) => format!("{p}/{PARTIAL_DIR}/"),
                None => format!("{PARTIAL_DIR}/"),
            },
            access_key_id: settings.access_key_id.clone(),
            secret: settings.secret.clone(),
            partials: HashMap::new(),
            uploaded: HashMap::new(),
            // Unit tests check each upload; the throttle has its own test.
            partial_every: if cfg!(test) {
                std::time::Duration::ZERO
            } else {
                PARTIAL_UPLOAD_EVERY
            },
            http: None,
        })
    }

    /// Uploads additions to a partial at most every `every` (a fresh partial always at once).
    pub fn with_partial_upload_every(mut self, every: std::time::Duration) -> Self {
        self.partial_every = every;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key under which the partial of `key` is kept.
    pub fn partial_key(&self, key: &str) -> String {
        format!("{}{key}{PARTIAL_SUFFIX}", self.partial_prefix)
    }

    /// The URL of `key` (the bucket when `None`) with `query` (names and values not encoded).
    fn url(&self, key: Option<&str>, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/{}", self.endpoint, uri_encode(&self.bucket, false));
        if let Some(key) = key {
            url.push('/');
            url.push_str(&uri_encode(key, true));
        }
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&uri_encode(k, false));
            url.push('=');
            url.push_str(&uri_encode(v, false));
        }
        url
    }

    /// The request, signed at `time`.
    fn signed_request(
        &self,
        method: &Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let url = self.url(key, query);
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1);
        all.push(("host", self.host.as_str()));
        all.extend_from_slice(headers);
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        // S3 signs the path as sent (encoded once, not normalized).
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = Credentials::new(
            self.access_key_id.as_str(),
            self.secret.expose(),
            None,
            None,
            "tollgate-audit",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            all.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign: {e}"))?
            .into_parts();
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| format!("invalid request: {e}"))?;
        let signed = instructions.headers().map(|(k, v)| (k, v, true));
        for (name, value, sensitive) in all.iter().map(|(k, v)| (*k, *v, false)).chain(signed) {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name `{name}`"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value of header `{name}`"))?;
            value.set_sensitive(sensitive);
            request.headers_mut().insert(name, value);
        }
        Ok(request)
    }

    fn http(&mut self) -> Result<&Http, String> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("the S3 store cannot run inside an async runtime".to_owned());
        }
        if self.http.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the HTTP client runtime: {e}"))?;
            let mut connector = HttpConnector::new();
            connector.enforce_http(false);
            connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_webpki_roots()
                .https_or_http()
                .enable_http1()
                .wrap_connector(connector);
            let client = Client::builder(TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_timer(TokioTimer::new())
                .build(https);
            self.http = Some(Http { client, runtime });
        }
        self.http
            .as_ref()
            .ok_or_else(|| "no HTTP client".to_owned())
    }

    /// Signs and sends one request and reads its response; a request that fails before a
    /// response (a connection closed under it) is sent once more (every request here is
    /// idempotent). `Err` is a message naming what failed, never a header.
    fn exchange(
        &mut self,
        method: &Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request =
                self.signed_request(method, key, query, headers, body, SystemTime::now())?;
            let http = self.http()?;
            let exchange = async {
                let response = http
                    .client
                    .request(request)
                    .await
                    .map_err(|e| (true, error_chain(&e)))?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map_err(|e| (false, format!("cannot read the response: {e}")))?
                    .to_bytes();
                Ok::<_, (bool, String)>(Response {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                })
            };
            let result = http
                .runtime
                .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, exchange).await });
            match result {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err((true, e))) if attempt < 2 => {
                    tracing::debug!(error = %e, "S3 request failed before a response; sending it again");
                }
                Ok(Err((_, e))) => return Err(e),
                Err(_) => return Err(format!("no response within {REQUEST_TIMEOUT:?}")),
            }
        }
    }

    /// `what` failed with an HTTP error status.
    fn status_error(&self, what: &str, response: &Response) -> SinkError {
        let body = String::from_utf8_lossy(&response.body);
        let mut message = format!(
            "cannot {what} (bucket `{}`): HTTP {}",
            self.bucket, response.status
        );
        if let Some(code) = xml_element(&body, "Code") {
            message.push_str(&format!(": {}", printable(&code, 64)));
        }
        if let Some(m) = xml_element(&body, "Message") {
            message.push_str(&format!(" ({})", printable(&m, 200)));
        }
        error(message)
    }

    fn put_object(
        &mut self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
        meta: &[(&str, &str)],
        what: &str,
    ) -> Result<(), SinkError> {
        let names: Vec<String> = meta.iter().map(|(k, _)| meta_header(k)).collect();
        let mut headers: Vec<(&str, &str)> = vec![("content-type", content_type)];
        headers.extend(names.iter().zip(meta).map(|(k, (_, v))| (k.as_str(), *v)));
        let response = self
            .exchange(&Method::PUT, Some(key), &[], &headers, bytes)
            .map_err(|e| error(format!("cannot {what} (bucket `{}`): {e}", self.bucket)))?;
        if !response.status.is_success() {
            return Err(self.status_error(what, &response));
        }
        Ok(())
    }

    fn get_object(&mut self, key: &str) -> Result<Option<StoredObject>, SinkError> {
        let what = format!("get `{key}`");
        let response = self
            .exchange(&Method::GET, Some(key), &[], &[], b"")
            .map_err(|e| error(format!("cannot {what} (bucket `{}`): {e}", self.bucket)))?;
        if response.status == StatusCode::NOT_FOUND {
            let body = String::from_utf8_lossy(&response.body);
            // A missing bucket is an error, not a missing object.
            if xml_element(&body, "Code").is_none_or(|c| c == "NoSuchKey") {
                return Ok(None);
            }
        }
        if !response.status.is_success() {
            return Err(self.status_error(&what, &response));
        }
        let mut meta: Vec<(String, String)> = response
            .headers
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("x-amz-meta-"))
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        meta.sort();
        Ok(Some(StoredObject {
            bytes: response.body.to_vec(),
            meta,
        }))
    }

    /// Every key starting with `prefix` (partials included), sorted.
    fn list_all(&mut self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let what = format!("list `{prefix}`");
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut query = vec![("list-type", "2")];
            if let Some(t) = &token {
                query.push(("continuation-token", t.as_str()));
            }
            if !prefix.is_empty() {
                query.push(("prefix", prefix));
            }
            let response = self
                .exchange(&Method::GET, None, &query, &[], b"")
                .map_err(|e| error(format!("cannot {what} (bucket `{}`): {e}", self.bucket)))?;
            if !response.status.is_success() {
                return Err(self.status_error(&what, &response));
            }
            let page = parse_list(&String::from_utf8_lossy(&response.body)).map_err(|e| {
                error(format!(
                    "cannot {what} (bucket `{}`): unexpected response: {e}",
                    self.bucket
                ))
            })?;
            keys.extend(page.keys.into_iter().filter(|k| k.starts_with(prefix)));
            match page.next {
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(error(format!(
                        "cannot {what} (bucket `{}`): the listing repeats its continuation token",
                        self.bucket
                    )))
                }
                Some(next) => token = Some(next),
                None => {
                    keys.sort();
                    keys.dedup();
                    return Ok(keys);
                }
            }
        }
        Err(error(format!(
            "cannot {what} (bucket `{}`): more than {MAX_LIST_PAGES} pages",
            self.bucket
        )))
    }
}

impl Store for S3Store {
    fn name(&self) -> &'static str {
        NAME
    }

    fn save_partial(&mut self, key: &str, bytes: &[u8], fresh: bool) -> Result<(), SinkError> {
        let whole = if fresh {
            self.partials.remove(key);
            bytes.to_vec()
        } else {
            let Some(mut whole) = self.partials.remove(key) else {
                return Err(error(format!(
                    "cannot save the partial of `{key}`: no earlier part is kept to add to"
                )));
            };
            whole.extend_from_slice(bytes);
            whole
        };
        // S3 has no append: each save uploads the whole open object. Additions are uploaded at
        // most every PARTIAL_UPLOAD_EVERY (a crash loses at most that much of an S3-only
        // trail); a fresh partial is uploaded at once.
        let recent = self
            .uploaded
            .get(key)
            .is_some_and(|t| t.elapsed() < self.partial_every);
        if !fresh && recent {
            self.partials.insert(key.to_owned(), whole);
            return Ok(());
        }
        let partial = self.partial_key(key);
        self.put_object(
            &partial,
            &whole,
            "application/octet-stream",
            &[],
            &format!("save the partial `{partial}`"),
        )?;
        self.partials.insert(key.to_owned(), whole);
        self.uploaded
            .insert(key.to_owned(), std::time::Instant::now());
        Ok(())
    }

    fn discard_partial(&mut self, key: &str) {
        self.partials.remove(key);
        self.uploaded.remove(key);
        let partial = self.partial_key(key);
        let result = match self.exchange(&Method::DELETE, Some(&partial), &[], &[], b"") {
            Ok(r) if r.status.is_success() || r.status == StatusCode::NOT_FOUND => Ok(()),
            Ok(r) => Err(self
                .status_error(&format!("delete `{partial}`"), &r)
                .message),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(key = partial, error = %e, "cannot delete a partial log object (it is removed at the next start)");
        }
    }

    fn partials(&mut self) -> Result<Vec<(String, Vec<u8>)>, SinkError> {
        let prefix = self.partial_prefix.clone();
        let mut out = Vec::new();
        for partial in self.list_all(&prefix)? {
            let Some(key) = partial
                .strip_prefix(prefix.as_str())
                .and_then(|k| k.strip_suffix(PARTIAL_SUFFIX))
                .filter(|k| !k.is_empty())
            else {
                continue;
            };
            if let Some(object) = self.get_object(&partial)? {
                out.push((key.to_owned(), object.bytes));
            }
        }
        Ok(out)
    }

    fn put(&mut self, key: &str, bytes: &[u8], meta: &[(&str, &str)]) -> Result<(), SinkError> {
        self.put_object(key, bytes, content_type(key), meta, &format!("put `{key}`"))
    }

    fn get(&mut self, key: &str) -> Result<Option<StoredObject>, SinkError> {
        self.get_object(key)
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let mut keys = self.list_all(prefix)?;
        keys.retain(|k| !k.starts_with(self.partial_prefix.as_str()));
        Ok(keys)
    }
}

/// The content type of a final object.
fn content_type(key: &str) -> &'static str {
    if key.ends_with(".gz") {
        "application/x-gzip"
    } else if key.ends_with(".pem") {
        "application/x-pem-file"
    } else {
        "application/octet-stream"
    }
}

/// `x-amz-meta-<name>`, lower case, for a metadata name given with or without the prefix.
fn meta_header(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name.starts_with("x-amz-meta-") {
        name
    } else {
        format!("x-amz-meta-{name}")
    }
}

/// SigV4's URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`) as
/// `%XX`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error and its sources, one after the other.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// At most `max` characters of `s`, control characters replaced.
fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// One page of a ListObjectsV2 response.
#[derive(Debug, PartialEq, Eq)]
struct ListPage {
    keys: Vec<String>,
    /// The continuation token of the next page, when the listing is truncated.
    next: Option<String>,
}

/// Parses a `ListBucketResult`: the `<Key>` of each `<Contents>`, and the next page's token.
fn parse_list(xml: &str) -> Result<ListPage, String> {
    if !xml.contains("<ListBucketResult") {
        return Err("not a ListBucketResult".to_owned());
    }
    let mut keys = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<Contents>") {
        let after = rest.get(start + "<Contents>".len()..).unwrap_or("");
        let end = after
            .find("</Contents>")
            .ok_or_else(|| "a <Contents> element is not closed".to_owned())?;
        let contents = after.get(..end).unwrap_or("");
        let key =
            xml_element(contents, "Key").ok_or_else(|| "a <Contents> has no <Key>".to_owned())?;
        keys.push(key);
        rest = after.get(end..).unwrap_or("");
    }
    let truncated = match xml_element(xml, "IsTruncated").as_deref() {
        Some("true") => true,
        Some("false") | None => false,
        Some(other) => return Err(format!("<IsTruncated> is `{}`", printable(other, 16))),
    };
    let next = if truncated {
        match xml_element(xml, "NextContinuationToken") {
            Some(t) if !t.is_empty() => Some(t),
            _ => return Err("truncated without a <NextContinuationToken>".to_owned()),
        }
    } else {
        None
    };
    Ok(ListPage { keys, next })
}

/// Fuzzing entry point, not an API: `parse_list` on a ListObjectsV2 response body, as
/// `(keys, next continuation token)`.
#[doc(hidden)]
pub fn fuzz_parse_list(xml: &str) -> Result<(Vec<String>, Option<String>), String> {
    parse_list(xml).map(|p| (p.keys, p.next))
}

/// Fuzzing entry point, not an API: `xml_element`, which reads `<Code>` and `<Message>` of
/// error responses.
#[doc(hidden)]
pub fn fuzz_xml_element(xml: &str, name: &str) -> Option<String> {
    xml_element(xml, name)
}

/// Fuzzing entry point, not an API: `printable`, which cuts what an error response says.
#[doc(hidden)]
pub fn fuzz_printable(s: &str, max: usize) -> String {
    printable(s, max)
}

/// The text of the first `<name>…</name>` in `xml`, unescaped (`None` when absent or when it
/// does not unescape).
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let rest = xml.get(start..)?;
    let end = rest.find(&close)?;
    xml_unescape(rest.get(..end)?)
}

/// Replaces XML's predefined entities and character references.
fn xml_unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp)?);
        let after = rest.get(amp + 1..)?;
        let semi = after.find(';')?;
        let entity = after.get(..semi)?;
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    entity.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = after.get(semi + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::audit::trail::testing::{event_ids, rec, T0};
    use crate::audit::trail::{parse_digest_key, parse_log_key, SIGNATURE_META};
    use crate::audit::Sink;
    use crate::sigv4::{verify_request, HttpRequest};

    const KEY_ID: &str = "AKIAAUDITS3000000001";
    const SECRET: &str = "auditS3Secret/EXAMPLE+0000000000000000000";

    fn settings(endpoint: &str, prefix: Option<&str>) -> S3Audit {
        S3Audit {
            endpoint: endpoint.parse().unwrap(),
            bucket: "audit-bucket".into(),
            region: "eu-west-3".into(),
            prefix: prefix.map(str::to_owned),
            access_key_id: KEY_ID.into(),
            secret: SecretKey::new(SECRET),
            interval_seconds: 300,
            max_bytes: 1024 * 1024,
        }
    }

    fn now() -> i64 {
        i64::try_from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    }

    /// Verifies `request` with Tollgate's own SigV4 verifier.
    fn verify(request: &http::Request<Full<Bytes>>, body: &[u8]) {
        let uri = request.uri();
        let req = HttpRequest {
            method: request.method().as_str(),
            path: uri.path(),
            query: uri.query(),
            authority: None,
            headers: request.headers(),
        };
        verify_request(&req, body, SECRET, now(), 900, None).unwrap();
    }

    #[test]
    fn keys_are_encoded_once_with_slashes_kept() {
        let store = S3Store::new(&settings("http://127.0.0.1:9000/", Some("/audit/x/"))).unwrap();
        assert_eq!(
            store.url(Some("a/b c/ü+%/~x.json.gz"), &[]),
            "http://127.0.0.1:9000/audit-bucket/a/b%20c/%C3%BC%2B%25/~x.json.gz"
        );
        assert_eq!(
            store.url(None, &[("list-type", "2"), ("prefix", "a/b c+")]),
            "http://127.0.0.1:9000/audit-bucket?list-type=2&prefix=a%2Fb%20c%2B"
        );
        let with_path = S3Store::new(&settings("https://s3.example.com/base/", None)).unwrap();
        assert_eq!(
            with_path.url(Some("k"), &[]),
            "https://s3.example.com/base/audit-bucket/k"
        );
        assert_eq!(
            store.partial_key("audit/x/AWSLogs/1/CloudTrail/r/2025/01/15/f.json.gz"),
            "audit/x/.tollgate-partial/audit/x/AWSLogs/1/CloudTrail/r/2025/01/15/f.json.gz.partial"
        );
        assert_eq!(with_path.partial_key("k"), ".tollgate-partial/k.partial");
        assert!(S3Store::new(&settings("ftp://host/", None)).is_err());
        assert!(S3Store::new(&settings("http://host/?x=1", None)).is_err());
    }

    #[test]
    fn a_partial_is_never_taken_for_a_log_or_digest_file() {
        let store = S3Store::new(&settings("http://127.0.0.1:9000", None)).unwrap();
        let log = "AWSLogs/111122223333/CloudTrail/us-east-2/2025/01/15/\
                   111122223333_CloudTrail_us-east-2_20250115T1200Z_9nYN7gp2eWAJHIfT.json.gz";
        assert!(parse_log_key(log).is_some());
        let partial = store.partial_key(log);
        assert!(parse_log_key(&partial).is_none());
        assert!(parse_digest_key(&partial).is_none());
        assert!(!partial.starts_with("AWSLogs/"));
    }

    #[test]
    fn requests_are_signed_for_s3_with_the_body_hash_and_the_metadata() {
        let store = S3Store::new(&settings("http://127.0.0.1:9000", Some("p"))).unwrap();
        let body = b"\x1f\x8bgzip bytes";
        let key = "p/AWSLogs/123456789012/CloudTrail-Digest/eu-west-3/2025/01/15/a b+c.json.gz";
        let request = store
            .signed_request(
                &Method::PUT,
                Some(key),
                &[],
                &[
                    ("content-type", "application/x-gzip"),
                    ("x-amz-meta-signature", "00ff"),
                    ("x-amz-meta-signature-algorithm", "Ed25519"),
                ],
                body,
                SystemTime::now(),
            )
            .unwrap();
        verify(&request, body);
        let h = request.headers();
        assert_eq!(h["host"], "127.0.0.1:9000");
        assert_eq!(
            h["x-amz-content-sha256"],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body))
        );
        let auth = h["authorization"].to_str().unwrap();
        assert!(auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={KEY_ID}/")));
        assert!(auth.contains("/eu-west-3/s3/aws4_request"), "{auth}");
        for signed in [
            "host",
            "content-type",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-meta-signature",
            "x-amz-meta-signature-algorithm",
        ] {
            assert!(
                auth.split("SignedHeaders=")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
                    .split(';')
                    .any(|h| h == signed),
                "{signed} not signed: {auth}"
            );
        }
        assert!(!format!("{request:?}").contains(SECRET));

        // A listing with a continuation token full of reserved characters.
        let request = store
            .signed_request(
                &Method::GET,
                None,
                &[
                    ("list-type", "2"),
                    ("continuation-token", "1+ab/cd=="),
                    ("prefix", "p/AWSLogs/1 2/"),
                ],
                &[],
                b"",
                SystemTime::now(),
            )
            .unwrap();
        verify(&request, b"");
        // A tampered query does not verify.
        let mut tampered = request;
        *tampered.uri_mut() = tampered
            .uri()
            .to_string()
            .replace("prefix=p", "prefix=q")
            .parse()
            .unwrap();
        let uri = tampered.uri().clone();
        let req = HttpRequest {
            method: "GET",
            path: uri.path(),
            query: uri.query(),
            authority: None,
            headers: tampered.headers(),
        };
        assert!(verify_request(&req, b"", SECRET, now(), 900, None).is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let store = S3Store::new(&settings("http://127.0.0.1:9000", None)).unwrap();
        let text = format!("{store:?}");
        assert!(
            text.contains(KEY_ID) && text.contains("audit-bucket"),
            "{text}"
        );
        assert!(!text.contains(SECRET), "{text}");
    }

    #[test]
    fn list_pages_parse_with_escapes_and_tokens() {
        let page = parse_list(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>a/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>a/x&amp;y&lt;z&gt;&quot;&apos;&#65;&#x42;.json.gz</Key><LastModified>2025-01-15T12:00:00.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>a/plain</Key><Size>1</Size></Contents><NextContinuationToken>1+ab/cd==</NextContinuationToken></ListBucketResult>"#,
        )
        .unwrap();
        assert_eq!(
            page,
            ListPage {
                keys: vec!["a/x&y<z>\"'AB.json.gz".into(), "a/plain".into()],
                next: Some("1+ab/cd==".into()),
            }
        );
        let last = parse_list(
            "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>",
        )
        .unwrap();
        assert_eq!(
            last,
            ListPage {
                keys: vec![],
                next: None
            }
        );
        assert!(parse_list("<html>proxy error</html>").is_err());
        assert!(
            parse_list("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .is_err()
        );
        assert!(parse_list("<ListBucketResult><Contents><Key>a</Key>").is_err());
        assert!(parse_list(
            "<ListBucketResult><Contents><Key>a&bogus;</Key></Contents></ListBucketResult>"
        )
        .is_err());
        assert_eq!(
            xml_element(
                "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
                "Code"
            )
            .as_deref(),
            Some("NoSuchKey")
        );
    }

    /// Objects by key: bytes and `x-amz-meta-*` headers.
    type Objects = Mutex<BTreeMap<String, (Vec<u8>, Vec<(String, String)>)>>;

    /// A minimal S3 over plain HTTP/1.1 (one request per connection): checks every signature
    /// with Tollgate's verifier, lists two keys per page.
    struct FakeS3 {
        addr: String,
        objects: Arc<Objects>,
        requests: Arc<AtomicUsize>,
        failing: Arc<AtomicBool>,
    }

    impl FakeS3 {
        fn start() -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let objects = Arc::new(Mutex::new(BTreeMap::new()));
            let requests = Arc::new(AtomicUsize::new(0));
            let failing = Arc::new(AtomicBool::new(false));
            let (o, r, f) = (objects.clone(), requests.clone(), failing.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { break };
                    r.fetch_add(1, Ordering::SeqCst);
                    serve(conn, &o, f.load(Ordering::SeqCst));
                }
            });
            Self {
                addr,
                objects,
                requests,
                failing,
            }
        }

        fn keys(&self) -> Vec<String> {
            self.objects.lock().unwrap().keys().cloned().collect()
        }
    }

    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn escape(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    fn serve(conn: TcpStream, objects: &Objects, failing: bool) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap().to_owned();
        let target = parts.next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.append(
                HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                HeaderValue::from_str(v.trim()).unwrap(),
            );
        }
        let len: usize = headers
            .get("content-length")
            .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.clone(), None),
        };
        let req = HttpRequest {
            method: &method,
            path: &path,
            query: query.as_deref(),
            authority: None,
            headers: &headers,
        };
        let error = |status: &str, code: &str| {
            (
                status.to_owned(),
                Vec::new(),
                format!(
                    "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>"
                )
                .into_bytes(),
            )
        };
        let (status, extra, out): (String, Vec<(String, String)>, Vec<u8>) = if failing {
            error("503 Service Unavailable", "SlowDown")
        } else if verify_request(&req, &body, SECRET, now(), 900, None).is_err() {
            error("403 Forbidden", "SignatureDoesNotMatch")
        } else if let Some(key) = path.strip_prefix("/audit-bucket/") {
            let key = decode(key);
            let mut objects = objects.lock().unwrap();
            match method.as_str() {
                "PUT" => {
                    let meta = headers
                        .iter()
                        .filter(|(k, _)| k.as_str().starts_with("x-amz-meta-"))
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                        .collect();
                    objects.insert(key, (body, meta));
                    ("200 OK".into(), vec![], vec![])
                }
                "GET" => match objects.get(&key) {
                    Some((bytes, meta)) => ("200 OK".into(), meta.clone(), bytes.clone()),
                    None => error("404 Not Found", "NoSuchKey"),
                },
                "DELETE" => {
                    objects.remove(&key);
                    ("204 No Content".into(), vec![], vec![])
                }
                _ => error("405 Method Not Allowed", "MethodNotAllowed"),
            }
        } else if path == "/audit-bucket" && method == "GET" {
            let params: HashMap<String, String> = query
                .unwrap_or_default()
                .split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (decode(k), decode(v)))
                .collect();
            assert_eq!(params["list-type"], "2");
            let prefix = params.get("prefix").cloned().unwrap_or_default();
            // The token is the last key of the previous page, hex, with characters to encode.
            let after = params.get("continuation-token").map(|t| {
                String::from_utf8(hex::decode(t.trim_start_matches("t+/=")).unwrap()).unwrap()
            });
            let objects = objects.lock().unwrap();
            let matching: Vec<&String> = objects
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .filter(|k| after.as_ref().is_none_or(|a| *k > a))
                .collect();
            let page: Vec<&String> = matching.iter().take(2).copied().collect();
            let mut xml = format!(
                "<?xml version=\"1.0\"?><ListBucketResult><Name>audit-bucket</Name><IsTruncated>{}</IsTruncated>",
                matching.len() > 2
            );
            for k in &page {
                xml.push_str(&format!(
                    "<Contents><Key>{}</Key><Size>1</Size></Contents>",
                    escape(k)
                ));
            }
            if matching.len() > 2 {
                xml.push_str(&format!(
                    "<NextContinuationToken>t+/={}</NextContinuationToken>",
                    hex::encode(page.last().unwrap())
                ));
            }
            xml.push_str("</ListBucketResult>");
            ("200 OK".into(), vec![], xml.into_bytes())
        } else {
            error("400 Bad Request", "InvalidRequest")
        };
        let mut conn = conn;
        let mut head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
            out.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(&out).unwrap();
    }

    #[test]
    fn additions_to_a_partial_are_uploaded_at_most_every_interval() {
        let s3 = FakeS3::start();
        let mut store = S3Store::new(&settings(&format!("http://{}", s3.addr), None))
            .unwrap()
            .with_partial_upload_every(std::time::Duration::from_secs(3600));
        store.save_partial("AWSLogs/p", b"abc", true).unwrap();
        store.save_partial("AWSLogs/p", b"def", false).unwrap();
        // Kept in memory, not uploaded yet: the bucket still holds the first upload.
        let uploaded = store.get(&store.partial_key("AWSLogs/p")).unwrap().unwrap();
        assert_eq!(uploaded.bytes, b"abc");
        // A fresh save (after a failure) uploads at once.
        store.save_partial("AWSLogs/p", b"abcdefghi", true).unwrap();
        let uploaded = store.get(&store.partial_key("AWSLogs/p")).unwrap().unwrap();
        assert_eq!(uploaded.bytes, b"abcdefghi");
    }

    #[test]
    fn the_store_keeps_objects_metadata_and_partials_in_a_bucket() {
        let s3 = FakeS3::start();
        let mut store =
            S3Store::new(&settings(&format!("http://{}", s3.addr), Some("audit"))).unwrap();
        assert_eq!(store.get("audit/missing").unwrap(), None);
        store
            .put(
                "audit/AWSLogs/d & e.json.gz",
                b"digest",
                &[
                    (SIGNATURE_META, "abcd"),
                    ("x-amz-meta-signature-algorithm", "Ed25519"),
                ],
            )
            .unwrap();
        let o = store.get("audit/AWSLogs/d & e.json.gz").unwrap().unwrap();
        assert_eq!(o.bytes, b"digest");
        assert_eq!(o.meta(SIGNATURE_META), Some("abcd"));
        assert_eq!(o.meta("x-amz-meta-signature-algorithm"), Some("Ed25519"));

        // Partials: written whole, the increment added to what was kept.
        store
            .save_partial("audit/AWSLogs/p1", b"abc", true)
            .unwrap();
        store
            .save_partial("audit/AWSLogs/p1", b"def", false)
            .unwrap();
        store
            .save_partial("audit/AWSLogs/p2", b"xyz", true)
            .unwrap();
        store
            .save_partial("audit/AWSLogs/p2", b"XYZ", true)
            .unwrap();
        assert_eq!(
            store.partials().unwrap(),
            [
                ("audit/AWSLogs/p1".to_owned(), b"abcdef".to_vec()),
                ("audit/AWSLogs/p2".to_owned(), b"XYZ".to_vec()),
            ]
        );
        // Without a kept earlier part, an increment is refused (the trail then sends it whole).
        let mut other =
            S3Store::new(&settings(&format!("http://{}", s3.addr), Some("audit"))).unwrap();
        assert!(other
            .save_partial("audit/AWSLogs/p1", b"ghi", false)
            .is_err());

        // Many keys: the listing pages (two per page) and never shows partials.
        for i in 0..5 {
            store
                .put(&format!("audit/AWSLogs/k{i}"), b"x", &[])
                .unwrap();
        }
        let listed = store.list("audit/AWSLogs/").unwrap();
        assert_eq!(
            listed,
            [
                "audit/AWSLogs/d & e.json.gz",
                "audit/AWSLogs/k0",
                "audit/AWSLogs/k1",
                "audit/AWSLogs/k2",
                "audit/AWSLogs/k3",
                "audit/AWSLogs/k4",
            ]
        );
        assert!(store
            .list("")
            .unwrap()
            .iter()
            .all(|k| !k.contains(PARTIAL_DIR)));
        store.discard_partial("audit/AWSLogs/p1");
        store.discard_partial("audit/AWSLogs/p2");
        store.discard_partial("audit/AWSLogs/never-saved");
        assert!(store.partials().unwrap().is_empty());
        assert!(s3.keys().iter().all(|k| !k.contains(PARTIAL_DIR)));
    }

    #[test]
    fn errors_name_the_key_status_and_code_but_no_secret() {
        let s3 = FakeS3::start();
        let mut store = S3Store::new(&settings(&format!("http://{}", s3.addr), None)).unwrap();
        s3.failing.store(true, Ordering::SeqCst);
        let e = store.put("AWSLogs/k.json.gz", b"x", &[]).unwrap_err();
        assert_eq!(e.sink, "s3");
        for want in ["AWSLogs/k.json.gz", "503", "SlowDown", "audit-bucket"] {
            assert!(e.message.contains(want), "{want} not in {e}");
        }
        assert!(!e.message.contains(SECRET) && !e.message.contains("Signature="));
        assert!(store.get("k").unwrap_err().message.contains("SlowDown"));
        assert!(store
            .list("AWSLogs/")
            .unwrap_err()
            .message
            .contains("SlowDown"));

        // A wrong secret: the server refuses the signature.
        s3.failing.store(false, Ordering::SeqCst);
        let mut wrong = settings(&format!("http://{}", s3.addr), None);
        wrong.secret = SecretKey::new("not-the-secret");
        let mut store = S3Store::new(&wrong).unwrap();
        let e = store.put("AWSLogs/k.json.gz", b"x", &[]).unwrap_err();
        assert!(e.message.contains("SignatureDoesNotMatch"), "{e}");
        assert!(!e.message.contains("not-the-secret"), "{e}");

        // Nobody listening: the error says so, after one more try.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut store = S3Store::new(&settings(&format!("http://127.0.0.1:{port}"), None)).unwrap();
        let e = store.get("AWSLogs/k").unwrap_err();
        assert!(e.message.contains("cannot get `AWSLogs/k`"), "{e}");
    }

    #[test]
    fn a_trail_delivers_log_objects_and_signed_digests_into_the_bucket() {
        let s3 = FakeS3::start();
        let key = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/audit/ed25519.pem"),
        )
        .unwrap();
        let key = Arc::new(trail::DigestKey::from_pkcs8_pem(&key).unwrap());
        let digest = DigestConfig::new(key, "main", "us-east-1");
        let config = settings(&format!("http://{}", s3.addr), Some("audit"));
        let mut trail = s3_sink(&config, Some(digest.clone())).unwrap();
        trail
            .write(
                &[
                    rec("123456789012", "eu-west-3", T0, 1),
                    rec("123456789012", "eu-west-3", T0 + 1, 2),
                ],
                T0,
            )
            .unwrap();
        trail.tick(T0 + 1).unwrap();
        // The open object is kept as a partial outside AWSLogs/.
        let partials: Vec<String> = s3
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("audit/.tollgate-partial/audit/AWSLogs/"))
            .collect();
        assert_eq!(partials.len(), 1, "{:?}", s3.keys());
        trail
            .write(&[rec("123456789012", "eu-west-3", T0 + 2, 3)], T0 + 2)
            .unwrap();
        trail.tick(T0 + 3).unwrap();
        // The partial was rewritten whole: it decodes to the three records.
        let whole = s3.objects.lock().unwrap()[&partials[0]].0.clone();
        let mut decoder = flate2::read::GzDecoder::new(whole.as_slice());
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = decoder.read(&mut buf) {
            text.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(text).unwrap();
        for id in ["\"e1\"", "\"e2\"", "\"e3\""] {
            assert!(text.contains(id), "{id} not in the partial: {text}");
        }
        trail.close(T0 + 4).unwrap();

        let keys = s3.keys();
        assert!(keys.iter().all(|k| !k.contains(PARTIAL_DIR)), "{keys:?}");
        let logs: Vec<&String> = keys.iter().filter(|k| parse_log_key(k).is_some()).collect();
        assert_eq!(logs.len(), 1, "{keys:?}");
        let objects = s3.objects.lock().unwrap().clone();
        assert_eq!(event_ids(&objects[logs[0]].0), ["e1", "e2", "e3"]);
        let digests: Vec<&String> = keys
            .iter()
            .filter(|k| parse_digest_key(k).is_some())
            .collect();
        assert_eq!(digests.len(), 1, "{keys:?}");
        let (gz, meta) = &objects[digests[0]];
        let sig = &meta.iter().find(|(k, _)| k == SIGNATURE_META).unwrap().1;
        let content = trail::gunzip(gz).unwrap();
        let file: crate::audit::digest::DigestFile = serde_json::from_slice(&content).unwrap();
        assert_eq!(
            file.digest_s3_bucket, "audit-bucket",
            "the real bucket is named"
        );
        assert_eq!(file.log_files.len(), 1);
        assert_eq!(file.log_files[0].s3_object, *logs[0]);
        let public = digest.key.public_key();
        assert!(public.verify(
            file.string_to_sign(&crate::audit::digest::sha256_hex(&content))
                .as_bytes(),
            &hex::decode(sig).unwrap()
        ));
        assert!(keys
            .iter()
            .any(|k| k.starts_with("audit/AWSLogs/123456789012/CloudTrail-Digest/public-keys/")));

        // A second run continues the chain from the bucket.
        let mut second = s3_sink(&config, Some(digest)).unwrap();
        second
            .write(&[rec("123456789012", "eu-west-3", T0 + 10, 4)], T0 + 10)
            .unwrap();
        second.close(T0 + 11).unwrap();
        let objects = s3.objects.lock().unwrap().clone();
        let mut chained = 0;
        for (k, (gz, _)) in &objects {
            if parse_digest_key(k).is_some() {
                let file: crate::audit::digest::DigestFile =
                    serde_json::from_slice(&trail::gunzip(gz).unwrap()).unwrap();
                if file.previous_digest_s3_object.as_deref() == Some(digests[0].as_str()) {
                    assert_eq!(
                        file.previous_digest_signature.as_deref(),
                        Some(sig.as_str())
                    );
                    chained += 1;
                }
            }
        }
        assert_eq!(chained, 1);
        assert!(s3.requests.load(Ordering::SeqCst) > 0);
    }

    #[test]
    fn a_killed_run_leaves_a_partial_the_next_run_delivers() {
        let s3 = FakeS3::start();
        let config = settings(&format!("http://{}", s3.addr), None);
        let mut first = s3_sink(&config, None).unwrap();
        first
            .write(&[rec("123456789012", "eu-west-3", T0, 1)], T0)
            .unwrap();
        first.tick(T0 + 1).unwrap();
        drop(first.into_store());
        assert!(s3.keys().iter().all(|k| parse_log_key(k).is_none()));
        let mut second = s3_sink(&config, None).unwrap();
        second.tick(T0 + 2).unwrap();
        let keys = s3.keys();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(parse_log_key(&keys[0]).is_some());
        let objects = s3.objects.lock().unwrap().clone();
        assert_eq!(event_ids(&objects[&keys[0]].0), ["e1"]);
    }
}
