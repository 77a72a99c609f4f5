//! CloudTrail-format audit: every decided call becomes one record.
//!
//! The request path builds an [`Event`] (cheap: shared `Arc`s and a few small strings) and hands
//! it to the [`pipeline`] with a non-blocking `try_send` on a bounded queue. One writer thread
//! drains the queue in batches, turns each event into its CloudTrail JSON ([`record`], pure) and
//! gives the batch to every configured [`Sink`]:
//!
//! - [`file`]: gzip'd `{"Records":[…]}` files in CloudTrail's S3 layout under a directory, one
//!   file per account and region per interval (or size limit), written to a temporary name,
//!   fsynced and renamed; hourly [`digest`] files chain them (signed), and [`verify`] checks a
//!   directory (`tollgate audit verify`);
//! - [`stdout`]: one JSON record per line;
//! - [`s3`]: the same objects, uploaded to an S3-compatible bucket.
//!
//! When the queue is full, or a sink cannot write, the configured overflow policy applies:
//! `fail-closed` (new calls get 503 `ServiceUnavailable`) or `drop` (counted).

pub mod digest;
pub mod file;
pub mod pipeline;
pub mod record;
pub mod s3;
pub mod stdout;
pub mod trail;
pub mod verify;

use std::net::IpAddr;
use std::sync::Arc;

use crate::credentials::Principal;

/// Who made a call, as the audit record tells it (`userIdentity`).
#[derive(Debug, Clone)]
pub enum Identity {
    /// An authenticated principal (IAM user, user session or role session), with the access key
    /// id that signed.
    Principal {
        /// The principal (its session claims, for temporary credentials).
        principal: Arc<Principal>,
        /// The access key id that signed (`AKIA…` or `ASIA…`).
        access_key_id: Arc<str>,
    },
    /// A caller of `AssumeRoleWithWebIdentity`, identified by its verified token.
    WebIdentity {
        /// The issuer without `https://`.
        provider: String,
        /// The audience that matched.
        audience: String,
        /// The `sub` claim.
        subject: String,
    },
    /// Authentication failed: only what the request claimed (never trusted).
    Unknown {
        /// The access key id the request claimed, when it had the shape of one.
        access_key_id: Option<String>,
    },
    /// An unsigned request.
    Anonymous,
}

/// A named error, as `errorCode` / `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The AWS error code (`AccessDenied`, `SignatureDoesNotMatch`, …).
    pub code: &'static str,
    /// The message the caller got.
    pub message: String,
}

/// One entry of `resources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    /// The ARN.
    pub arn: String,
    /// The owning account, when known.
    pub account_id: Option<Arc<str>>,
    /// `AWS::S3::Object`, `AWS::IAM::Role`, …
    pub kind: Arc<str>,
}

/// A JSON value for `requestParameters` / `responseElements`. Kept small on purpose: the request
/// path builds these, the writer serializes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// An array.
    List(Vec<Value>),
    /// An object, in order.
    Object(Vec<(String, Value)>),
}

/// Tollgate's decision detail (`additionalEventData`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// `SigV4` for signed calls.
    pub signature_version: Option<&'static str>,
    /// `AuthHeader` or `QueryString`.
    pub authentication_method: Option<&'static str>,
    /// The payload mode: `UNSIGNED-PAYLOAD`, `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, `sha256`, …
    pub payload: Option<&'static str>,
    /// `Allowed`, `ExplicitDeny` or `ImplicitDeny`, when a policy decision was made.
    pub decision: Option<&'static str>,
    /// The policy that decided (its name or ARN), and the statement (its `Sid` or index).
    pub policy: Option<String>,
    /// The deciding statement.
    pub statement: Option<String>,
    /// For implicit denies: the policy type that did not allow.
    pub denied_by: Option<&'static str>,
    /// The IAM action evaluated (`s3:GetObject`).
    pub action: Option<String>,
    /// The listener that took the call (`proxy`, `api`, `extauthz-grpc`, `extauthz-http`).
    pub mode: Option<&'static str>,
}

/// TLS details of the client connection (`tlsDetails`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsDetails {
    /// `TLSv1.3`.
    pub version: String,
    /// `TLS_AES_128_GCM_SHA256`.
    pub cipher_suite: String,
    /// The `Host` the client sent.
    pub host: Option<String>,
}

/// Management (control plane: STS) or data (proxied API calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `eventCategory: Management`, `managementEvent: true`.
    Management,
    /// `eventCategory: Data`, `managementEvent: false`.
    Data,
}

/// Everything one audit record says, gathered on the request path. The writer assigns nothing:
/// `event_id` and `event_time` are set when the call completes.
#[derive(Debug, Clone)]
pub struct Event {
    /// Completion time, epoch seconds (`eventTime`).
    pub event_time: i64,
    /// `eventID`: a random UUID (v4).
    pub event_id: uuid::Uuid,
    /// `requestID`: equal to the `x-amzn-RequestId` returned.
    pub request_id: Arc<str>,
    /// `userIdentity`.
    pub identity: Identity,
    /// `eventSource` (`s3.amazonaws.com`, or the configured name of an internal API).
    pub event_source: Arc<str>,
    /// `eventName` (`GetObject`, `AssumeRole`, or the HTTP method for unmapped calls).
    pub event_name: Arc<str>,
    /// `awsRegion`.
    pub region: Arc<str>,
    /// `sourceIPAddress`.
    pub source_ip: IpAddr,
    /// `userAgent` (at most 1 KB is recorded).
    pub user_agent: Option<http::HeaderValue>,
    /// `errorCode` / `errorMessage`.
    pub error: Option<ErrorInfo>,
    /// `requestParameters` (`None` → JSON `null`).
    pub request_parameters: Option<Vec<(String, Value)>>,
    /// `responseElements` (`None` → JSON `null`). Never holds a secret access key.
    pub response_elements: Option<Vec<(String, Value)>>,
    /// `additionalEventData`.
    pub detail: Detail,
    /// `readOnly`, when known.
    pub read_only: Option<bool>,
    /// `resources`.
    pub resources: Vec<ResourceRef>,
    /// `eventCategory` / `managementEvent`.
    pub category: Category,
    /// `recipientAccountId`: the account whose trail receives the record (the resource owner).
    pub recipient_account: Arc<str>,
    /// `tlsDetails`, for TLS connections.
    pub tls: Option<TlsDetails>,
}

/// An event whose record is assembled by the writer thread rather than on the request path:
/// the request path only moves what it learned into a box.
pub trait Deferred: Send {
    /// The finished event.
    fn into_event(self: Box<Self>) -> Event;
}

impl Deferred for Event {
    fn into_event(self: Box<Self>) -> Event {
        *self
    }
}

/// One record, serialized, with what sinks need to place it.
#[derive(Debug, Clone)]
pub struct Serialized {
    /// `recipientAccountId`: selects the account directory.
    pub account: Arc<str>,
    /// `awsRegion`: selects the region directory.
    pub region: Arc<str>,
    /// `eventTime`, epoch seconds.
    pub event_time: i64,
    /// The record's JSON object (no trailing newline).
    pub json: Vec<u8>,
}

/// A sink failed; the writer keeps the batch for it and retries.
#[derive(Debug, thiserror::Error)]
#[error("{sink}: {message}")]
pub struct SinkError {
    /// The sink (`files`, `stdout`, `s3`).
    pub sink: &'static str,
    /// What went wrong (a path and the OS error, an HTTP status…). Never a secret.
    pub message: String,
}

/// Where records go. Sinks are driven by one writer thread, so they may block.
pub trait Sink: Send {
    /// The sink's name, for metrics and logs.
    fn name(&self) -> &'static str;
    /// Takes a batch of records. On error nothing of the batch counts as delivered to this
    /// sink: the writer calls `write` again later with the same batch (so a sink must not keep
    /// a partial batch on failure).
    fn write(&mut self, batch: &[Arc<Serialized>], now: i64) -> Result<(), SinkError>;
    /// Called about once a second (and after each batch): closes files whose interval ended,
    /// writes digests, retries pending deliveries.
    fn tick(&mut self, now: i64) -> Result<(), SinkError>;
    /// Shutdown: closes and delivers everything open.
    fn close(&mut self, now: i64) -> Result<(), SinkError>;
}

/// The sinks `[audit]` asks for (none without the section).
pub fn sinks(settings: &crate::config::AuditSettings) -> Result<Vec<Box<dyn Sink>>, SinkError> {
    let digest = settings.digests.as_ref().map(|d| trail::DigestConfig {
        interval_secs: d.interval_seconds,
        trail_name: d.trail_name.clone(),
        home_region: d.home_region.clone(),
        bucket: d.bucket.clone(),
        key: d.key.clone(),
    });
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(f) = &settings.files {
        std::fs::create_dir_all(&f.dir).map_err(|e| SinkError {
            sink: "files",
            message: format!("cannot create the audit directory {}: {e}", f.dir.display()),
        })?;
        sinks.push(Box::new(file::file_sink(
            f.dir.clone(),
            trail::TrailConfig {
                prefix: f.prefix.clone(),
                interval_secs: f.interval_seconds,
                max_bytes: f.max_bytes,
                digest: digest.clone(),
            },
        )));
    }
    if let Some(s3) = &settings.s3 {
        sinks.push(Box::new(s3::s3_sink(s3, digest.clone())?));
    }
    if settings.stdout {
        sinks.push(Box::new(stdout::StdoutSink));
    }
    Ok(sinks)
}
