//! What the audit pipeline needs from the configuration (`[audit]`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::audit::digest::DigestKey;
use crate::credentials::SecretKey;

use super::FastMap;

/// Default queue capacity (records waiting for the writer).
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
/// Default log file interval: CloudTrail publishes about every 5 minutes.
pub const DEFAULT_FILE_INTERVAL_SECONDS: u64 = 300;
/// Default size limit of one log file (uncompressed).
pub const DEFAULT_FILE_MAX_BYTES: u64 = 50 * 1024 * 1024;
/// Default digest interval: CloudTrail delivers digests hourly.
pub const DEFAULT_DIGEST_INTERVAL_SECONDS: u64 = 3_600;

/// What happens when a record cannot be queued or a sink cannot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// New calls get 503 `ServiceUnavailable`: nothing unaudited passes (the default).
    FailClosed,
    /// Calls go on; records that cannot be kept are dropped and counted.
    Drop,
}

/// How much of a request goes into `requestParameters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestParameters {
    /// `null`.
    None,
    /// What names the resource: S3 bucket and key, route captures, the STS parameters that AWS
    /// records (the default).
    Identifiers,
    /// Identifiers plus every query parameter, with signing parameters left out.
    Full,
}

/// `[audit.files]`: CloudTrail-layout files under a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAudit {
    /// The directory (`AWSLogs/…` goes under it).
    pub dir: PathBuf,
    /// A log file is closed after this many seconds.
    pub interval_seconds: u64,
    /// … or when it holds this many (uncompressed) bytes.
    pub max_bytes: u64,
    /// A key prefix in front of `AWSLogs/`.
    pub prefix: Option<String>,
}

/// `[audit.s3]`: the same objects uploaded to an S3-compatible bucket.
#[derive(Clone)]
pub struct S3Audit {
    /// The endpoint, e.g. `http://127.0.0.1:5000` (path-style requests).
    pub endpoint: http::Uri,
    /// The bucket.
    pub bucket: String,
    /// The bucket's region (the signing region).
    pub region: String,
    /// A key prefix in front of `AWSLogs/`.
    pub prefix: Option<String>,
    /// The access key id Tollgate signs uploads with.
    pub access_key_id: String,
    /// Its secret (from `[audit_secrets]` or `TOLLGATE_AUDIT_SECRET_<NAME>`).
    pub secret: SecretKey,
    /// A log object is closed after this many seconds.
    pub interval_seconds: u64,
    /// … or when it holds this many (uncompressed) bytes.
    pub max_bytes: u64,
}

impl fmt::Debug for S3Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Audit")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("interval_seconds", &self.interval_seconds)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// `[audit.digests]`: hourly signed digest files chaining the log files.
#[derive(Debug, Clone)]
pub struct DigestSettings {
    /// The signing key (Ed25519 or RSA), from `[audit_secrets]` or the environment.
    pub key: Arc<DigestKey>,
    /// Seconds per digest.
    pub interval_seconds: u64,
    /// The trail name in digest file names.
    pub trail_name: String,
    /// The bucket name written in digests (`digestS3Bucket`, `logFiles[].s3Bucket`).
    pub bucket: String,
    /// The home region in digest file names.
    pub home_region: String,
}

/// `[audit]`. Without the section there are no sinks: nothing is recorded (Tollgate warns at
/// start).
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Full queue or failing sink: refuse calls, or drop records.
    pub overflow: Overflow,
    /// Records that may wait for the writer.
    pub queue_capacity: usize,
    /// What `requestParameters` holds.
    pub request_parameters: RequestParameters,
    /// `eventSource` per scope service; others get `<service>.amazonaws.com`.
    pub event_sources: FastMap<String, Arc<str>>,
    /// JSON lines on standard output.
    pub stdout: bool,
    /// CloudTrail-layout files.
    pub files: Option<FileAudit>,
    /// An S3-compatible bucket.
    pub s3: Option<S3Audit>,
    /// Digest files (for the files and S3 sinks).
    pub digests: Option<DigestSettings>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            overflow: Overflow::FailClosed,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            request_parameters: RequestParameters::Identifiers,
            event_sources: FastMap::default(),
            stdout: false,
            files: None,
            s3: None,
            digests: None,
        }
    }
}

impl AuditSettings {
    /// True when at least one sink is configured.
    pub fn enabled(&self) -> bool {
        self.stdout || self.files.is_some() || self.s3.is_some()
    }

    /// The `eventSource` of a scope service.
    pub fn event_source(&self, service: &str) -> Arc<str> {
        match self.event_sources.get(service) {
            Some(s) => s.clone(),
            None => Arc::from(format!("{service}.amazonaws.com")),
        }
    }
}
