//! S3 REST requests → the IAM authorization Amazon S3 performs for them.
//!
//! [`map_s3`] reads the method, host, raw path, raw query and headers of a request and returns the
//! operation, the policy action and resource ARN AWS checks, the further (action, resource) pairs
//! AWS also checks (copy source, ACL or tags set on upload, …) and the S3 condition keys the
//! request carries. It is pure: no I/O, no body.
//!
//! Anything it cannot map with certainty is an error, which the caller turns into a deny: an
//! unknown query parameter or sub-resource, two sub-resources at once, a method a sub-resource
//! does not take, a duplicated parameter or header, a raw `+` (AWS S3 reads it as a space, other
//! S3 implementations as a plus), malformed percent-encoding. Parsing the same request two ways —
//! one way here, another in the storage behind the proxy — is how authorization gets bypassed, so
//! ambiguity is refused rather than guessed.
//!
//! Two operations carry their object keys in the body: `DeleteObjects` (`POST /bucket?delete`,
//! an XML list of keys) and the browser upload form `PostObject` (`POST /bucket`, the key is a
//! form field). AWS authorizes them per key (`s3:DeleteObject` or `s3:DeleteObjectVersion` on
//! each `arn:aws:s3:::bucket/key`, `s3:PutObject` on the form's key). The body is not available
//! here, so their [`S3Request::resource`] is the placeholder `arn:aws:s3:::bucket/*` and
//! [`S3Request::requires_body`] is true: the caller must read the body and check
//! [`S3Request::per_key_checks`] for every key. The placeholder alone is not a safe decision: a
//! `Deny` on `arn:aws:s3:::bucket/private/*` does not match the literal `bucket/*`.

use http::header::{HeaderName, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method};

/// One S3 request in IAM terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Request {
    /// The S3 API operation, e.g. `GetObject`, `ListObjectsV2`, `CopyObject`.
    pub operation: &'static str,
    /// The policy action AWS checks for it, e.g. `s3:GetObject` (`s3:GetObjectVersion` when the
    /// request names a version).
    pub action: &'static str,
    /// `arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key`, or `*` for `ListBuckets`.
    pub resource: String,
    /// The bucket, if the request addresses one.
    pub bucket: Option<String>,
    /// The object key, percent-decoded and never normalized (`a//b`, `./x` are kept).
    pub key: Option<String>,
    /// S3 condition keys present in the request (single-valued; absent keys are left out).
    pub condition_keys: Vec<(&'static str, String)>,
    /// Further (action, resource) pairs AWS also checks, all of which must be allowed.
    pub extra_actions: Vec<(&'static str, String)>,
}

impl S3Request {
    /// Whether the request's keys are in its body (`DeleteObjects`, `PostObject`): the caller must
    /// authorize [`Self::per_key_checks`] for every key of the body, not just [`Self::resource`].
    pub fn requires_body(&self) -> bool {
        matches!(self.operation, "DeleteObjects" | "PostObject")
    }

    /// Every (action, resource) pair to authorize: the main one, then the extras.
    pub fn checks(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        std::iter::once((self.action, self.resource.as_str()))
            .chain(self.extra_actions.iter().map(|(a, r)| (*a, r.as_str())))
    }

    /// For an operation whose keys are in the body ([`Self::requires_body`]): the (action,
    /// resource) pairs AWS checks for one key of the body. `DeleteObjects`: `s3:DeleteObject`, or
    /// `s3:DeleteObjectVersion` when the entry has a `<VersionId>`, plus
    /// `s3:BypassGovernanceRetention` when the request bypasses governance retention.
    /// `PostObject`: `s3:PutObject` (the form's `acl`/`tagging` fields are the caller's to map).
    /// Empty for every other operation.
    pub fn per_key_checks(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let Some(bucket) = self.bucket.as_deref() else {
            return Vec::new();
        };
        let arn = object_arn(bucket, key);
        match self.operation {
            "DeleteObjects" => {
                let action = if version_id.is_some() {
                    "s3:DeleteObjectVersion"
                } else {
                    "s3:DeleteObject"
                };
                let mut out = vec![(action, arn.clone())];
                if self
                    .extra_actions
                    .iter()
                    .any(|(a, _)| *a == "s3:BypassGovernanceRetention")
                {
                    out.push(("s3:BypassGovernanceRetention", arn));
                }
                out
            }
            "PostObject" => vec![("s3:PutObject", arn)],
            _ => Vec::new(),
        }
    }
}

/// Why a request could not be mapped. Every variant means "deny".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3MapError {
    /// The bucket (from the host or the first path segment) is not a bucket name.
    #[error("invalid bucket name: {0:?}")]
    InvalidBucketName(String),
    /// The path is not an origin-form path (`/…`).
    #[error("invalid request path: {0:?}")]
    InvalidPath(String),
    /// A method / sub-resource / parameter combination this table does not know.
    #[error("unsupported s3 request: {0}")]
    Unsupported(String),
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded.
    #[error("malformed percent-encoding in {0}")]
    MalformedEncoding(&'static str),
    /// A raw `+`: AWS S3 reads it as a space, other implementations as a plus.
    #[error("ambiguous raw '+' in {0}: send %2B for a plus or %20 for a space")]
    AmbiguousPlus(&'static str),
    /// A query parameter or header given twice (or both as header and query parameter).
    #[error("duplicate {0}")]
    Duplicate(String),
    /// A header this mapping reads is not visible ASCII.
    #[error("invalid value for header {0}")]
    InvalidHeader(&'static str),
    /// `x-amz-copy-source` is not `bucket/key[?versionId=id]`.
    #[error("invalid x-amz-copy-source: {0:?}")]
    InvalidCopySource(String),
}

/// `arn:aws:s3:::bucket`.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// `arn:aws:s3:::bucket/key` (the key as stored: decoded, not normalized).
pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

// ---------------------------------------------------------------------------------------------
// The operation table.
//
// Sources (AWS documentation):
// - "Required permissions for Amazon S3 API operations", Amazon S3 User Guide,
//   https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
//   (operation → required and conditionally required actions, per resource type);
// - "Actions, resources, and condition keys for Amazon S3", Service Authorization Reference,
//   https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
//   (resource types and the condition keys of each action);
// - "Amazon S3 condition keys" (User Guide, amazon-s3-policy-keys) and "Amazon S3 Signature
//   Version 4 Authentication Specific Policy Keys" (API Reference,
//   bucket-policy-s3-sigv4-conditions) for the condition key values;
// - each operation's API Reference page for its request shape (method, sub-resource, headers).
// ---------------------------------------------------------------------------------------------

/// Query parameters that select an operation (sub-resources). At most one may be present.
const SELECTORS: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
];

/// Bucket sub-resource operations: (sub-resource, method, operation, action).
///
/// `DELETE` of a configuration is authorized by the `Put…` action (AWS documents no
/// `Delete…Configuration` actions), except `DeleteBucketPolicy` and `DeleteBucketWebsite`, which
/// have their own. A `GET` of `analytics`, `metrics`, `inventory` or `intelligent-tiering` without
/// `id=` is the `List…Configurations` operation, authorized by the same `Get…` action.
#[rustfmt::skip]
const BUCKET_SUBRESOURCE_OPS: &[(&str, &str, &str, &str)] = &[
    ("accelerate", "GET", "GetBucketAccelerateConfiguration", "s3:GetAccelerateConfiguration"),
    ("accelerate", "PUT", "PutBucketAccelerateConfiguration", "s3:PutAccelerateConfiguration"),
    ("acl", "GET", "GetBucketAcl", "s3:GetBucketAcl"),
    ("acl", "PUT", "PutBucketAcl", "s3:PutBucketAcl"),
    ("analytics", "GET", "GetBucketAnalyticsConfiguration", "s3:GetAnalyticsConfiguration"),
    ("analytics", "PUT", "PutBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration"),
    ("analytics", "DELETE", "DeleteBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration"),
    ("cors", "GET", "GetBucketCors", "s3:GetBucketCORS"),
    ("cors", "PUT", "PutBucketCors", "s3:PutBucketCORS"),
    ("cors", "DELETE", "DeleteBucketCors", "s3:PutBucketCORS"),
    ("delete", "POST", "DeleteObjects", "s3:DeleteObject"),
    ("encryption", "GET", "GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    ("encryption", "PUT", "PutBucketEncryption", "s3:PutEncryptionConfiguration"),
    ("encryption", "DELETE", "DeleteBucketEncryption", "s3:PutEncryptionConfiguration"),
    ("intelligent-tiering", "GET", "GetBucketIntelligentTieringConfiguration", "s3:GetIntelligentTieringConfiguration"),
    ("intelligent-tiering", "PUT", "PutBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration"),
    ("intelligent-tiering", "DELETE", "DeleteBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration"),
    ("inventory", "GET", "GetBucketInventoryConfiguration", "s3:GetInventoryConfiguration"),
    ("inventory", "PUT", "PutBucketInventoryConfiguration", "s3:PutInventoryConfiguration"),
    ("inventory", "DELETE", "DeleteBucketInventoryConfiguration", "s3:PutInventoryConfiguration"),
    ("lifecycle", "GET", "GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
    ("lifecycle", "PUT", "PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
    ("lifecycle", "DELETE", "DeleteBucketLifecycle", "s3:PutLifecycleConfiguration"),
    ("location", "GET", "GetBucketLocation", "s3:GetBucketLocation"),
    ("logging", "GET", "GetBucketLogging", "s3:GetBucketLogging"),
    ("logging", "PUT", "PutBucketLogging", "s3:PutBucketLogging"),
    ("metrics", "GET", "GetBucketMetricsConfiguration", "s3:GetMetricsConfiguration"),
    ("metrics", "PUT", "PutBucketMetricsConfiguration", "s3:PutMetricsConfiguration"),
    ("metrics", "DELETE", "DeleteBucketMetricsConfiguration", "s3:PutMetricsConfiguration"),
    ("notification", "GET", "GetBucketNotificationConfiguration", "s3:GetBucketNotification"),
    ("notification", "PUT", "PutBucketNotificationConfiguration", "s3:PutBucketNotification"),
    ("object-lock", "GET", "GetObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration"),
    ("object-lock", "PUT", "PutObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration"),
    ("ownershipControls", "GET", "GetBucketOwnershipControls", "s3:GetBucketOwnershipControls"),
    ("ownershipControls", "PUT", "PutBucketOwnershipControls", "s3:PutBucketOwnershipControls"),
    ("ownershipControls", "DELETE", "DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls"),
    ("policy", "GET", "GetBucketPolicy", "s3:GetBucketPolicy"),
    ("policy", "PUT", "PutBucketPolicy", "s3:PutBucketPolicy"),
    ("policy", "DELETE", "DeleteBucketPolicy", "s3:DeleteBucketPolicy"),
    ("policyStatus", "GET", "GetBucketPolicyStatus", "s3:GetBucketPolicyStatus"),
    ("publicAccessBlock", "GET", "GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    ("publicAccessBlock", "PUT", "PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    ("publicAccessBlock", "DELETE", "DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    ("replication", "GET", "GetBucketReplication", "s3:GetReplicationConfiguration"),
    ("replication", "PUT", "PutBucketReplication", "s3:PutReplicationConfiguration"),
    ("replication", "DELETE", "DeleteBucketReplication", "s3:PutReplicationConfiguration"),
    ("requestPayment", "GET", "GetBucketRequestPayment", "s3:GetBucketRequestPayment"),
    ("requestPayment", "PUT", "PutBucketRequestPayment", "s3:PutBucketRequestPayment"),
    ("tagging", "GET", "GetBucketTagging", "s3:GetBucketTagging"),
    ("tagging", "PUT", "PutBucketTagging", "s3:PutBucketTagging"),
    ("tagging", "DELETE", "DeleteBucketTagging", "s3:PutBucketTagging"),
    ("uploads", "GET", "ListMultipartUploads", "s3:ListBucketMultipartUploads"),
    ("versioning", "GET", "GetBucketVersioning", "s3:GetBucketVersioning"),
    ("versioning", "PUT", "PutBucketVersioning", "s3:PutBucketVersioning"),
    ("versions", "GET", "ListObjectVersions", "s3:ListBucketVersions"),
    ("website", "GET", "GetBucketWebsite", "s3:GetBucketWebsite"),
    ("website", "PUT", "PutBucketWebsite", "s3:PutBucketWebsite"),
    ("website", "DELETE", "DeleteBucketWebsite", "s3:DeleteBucketWebsite"),
];

/// Object operations: (sub-resource or "" for none, method, operation, action, action when the
/// request has `versionId=`, further query parameters the operation takes).
type ObjectOp = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

/// `GetObject`/`HeadObject` parameters besides `versionId`.
const GET_OBJECT_PARAMS: &[&str] = &[
    "versionId",
    "partNumber",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
];

#[rustfmt::skip]
const OBJECT_OPS: &[ObjectOp] = &[
    ("", "GET", "GetObject", "s3:GetObject", "s3:GetObjectVersion", GET_OBJECT_PARAMS),
    ("", "HEAD", "HeadObject", "s3:GetObject", "s3:GetObjectVersion", GET_OBJECT_PARAMS),
    ("", "PUT", "PutObject", "s3:PutObject", "s3:PutObject", &[]),
    ("", "DELETE", "DeleteObject", "s3:DeleteObject", "s3:DeleteObjectVersion", &["versionId"]),
    ("acl", "GET", "GetObjectAcl", "s3:GetObjectAcl", "s3:GetObjectVersionAcl", &["versionId"]),
    ("acl", "PUT", "PutObjectAcl", "s3:PutObjectAcl", "s3:PutObjectVersionAcl", &["versionId"]),
    ("attributes", "GET", "GetObjectAttributes", "s3:GetObjectAttributes", "s3:GetObjectVersionAttributes", &["versionId"]),
    ("legal-hold", "GET", "GetObjectLegalHold", "s3:GetObjectLegalHold", "s3:GetObjectLegalHold", &["versionId"]),
    ("legal-hold", "PUT", "PutObjectLegalHold", "s3:PutObjectLegalHold", "s3:PutObjectLegalHold", &["versionId"]),
    ("restore", "POST", "RestoreObject", "s3:RestoreObject", "s3:RestoreObject", &["versionId"]),
    ("retention", "GET", "GetObjectRetention", "s3:GetObjectRetention", "s3:GetObjectRetention", &["versionId"]),
    ("retention", "PUT", "PutObjectRetention", "s3:PutObjectRetention", "s3:PutObjectRetention", &["versionId"]),
    ("select", "POST", "SelectObjectContent", "s3:GetObject", "s3:GetObject", &["select-type"]),
    ("tagging", "GET", "GetObjectTagging", "s3:GetObjectTagging", "s3:GetObjectVersionTagging", &["versionId"]),
    ("tagging", "PUT", "PutObjectTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging", &["versionId"]),
    ("tagging", "DELETE", "DeleteObjectTagging", "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging", &["versionId"]),
    ("torrent", "GET", "GetObjectTorrent", "s3:GetObjectTorrent", "s3:GetObjectVersionTorrent", &["versionId"]),
    ("uploads", "POST", "CreateMultipartUpload", "s3:PutObject", "s3:PutObject", &[]),
    ("uploadId", "PUT", "UploadPart", "s3:PutObject", "s3:PutObject", &["partNumber"]),
    ("uploadId", "POST", "CompleteMultipartUpload", "s3:PutObject", "s3:PutObject", &[]),
    ("uploadId", "DELETE", "AbortMultipartUpload", "s3:AbortMultipartUpload", "s3:AbortMultipartUpload", &[]),
    ("uploadId", "GET", "ListParts", "s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts", &["max-parts", "part-number-marker", "encoding-type"]),
];

/// `ListObjects` (v1) parameters.
const LIST_V1_PARAMS: &[&str] = &["prefix", "delimiter", "marker", "max-keys", "encoding-type"];
/// `ListObjectsV2` parameters.
const LIST_V2_PARAMS: &[&str] = &[
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "encoding-type",
    "continuation-token",
    "fetch-owner",
    "start-after",
];
/// `ListObjectVersions` parameters besides `versions`.
const LIST_VERSIONS_PARAMS: &[&str] = &[
    "prefix",
    "delimiter",
    "max-keys",
    "encoding-type",
    "key-marker",
    "version-id-marker",
];
/// `ListMultipartUploads` parameters besides `uploads`.
const LIST_UPLOADS_PARAMS: &[&str] = &[
    "prefix",
    "delimiter",
    "max-uploads",
    "encoding-type",
    "key-marker",
    "upload-id-marker",
];
/// `ListBuckets` parameters.
const LIST_BUCKETS_PARAMS: &[&str] = &[
    "max-buckets",
    "continuation-token",
    "prefix",
    "bucket-region",
];

/// The ACL headers and their condition keys (`PutObject`, `CopyObject`,
/// `CreateMultipartUpload`, `PutObjectAcl`, `CreateBucket`, `PutBucketAcl`).
const ACL_KEYS: &[(&str, &str)] = &[
    ("x-amz-acl", "s3:x-amz-acl"),
    ("x-amz-grant-full-control", "s3:x-amz-grant-full-control"),
    ("x-amz-grant-read", "s3:x-amz-grant-read"),
    ("x-amz-grant-read-acp", "s3:x-amz-grant-read-acp"),
    ("x-amz-grant-write", "s3:x-amz-grant-write"),
    ("x-amz-grant-write-acp", "s3:x-amz-grant-write-acp"),
];

/// Headers of the object-creating operations (`PutObject`, `CopyObject`,
/// `CreateMultipartUpload`) and their condition keys, besides the ACL ones.
const WRITE_KEYS: &[(&str, &str)] = &[
    (
        "x-amz-server-side-encryption",
        "s3:x-amz-server-side-encryption",
    ),
    (
        "x-amz-server-side-encryption-aws-kms-key-id",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
    ),
    (
        "x-amz-server-side-encryption-customer-algorithm",
        "s3:x-amz-server-side-encryption-customer-algorithm",
    ),
    ("x-amz-storage-class", "s3:x-amz-storage-class"),
    (
        "x-amz-website-redirect-location",
        "s3:x-amz-website-redirect-location",
    ),
    ("x-amz-object-lock-mode", "s3:object-lock-mode"),
    (
        "x-amz-object-lock-retain-until-date",
        "s3:object-lock-retain-until-date",
    ),
    ("x-amz-object-lock-legal-hold", "s3:object-lock-legal-hold"),
];

/// Maps an S3 REST request to the IAM authorization AWS S3 performs for it.
///
/// - `host`: the `Host` header (or `:authority`). When it is `<bucket>.<suffix>` for one of
///   `virtual_host_suffixes` (compared case-insensitively; the longest matching suffix wins; a
///   suffix without a port matches any port), the request is virtual-hosted-style and the whole
///   path is the key; otherwise it is path-style (`/bucket/key`).
/// - `raw_path`, `query`: as received, still percent-encoded.
///
/// Condition keys: the request's S3 keys as AWS defines them, for the operations AWS defines them
/// on (see the tables above), plus `s3:authType` and `s3:signatureversion` read from how the
/// request is signed (an `Authorization: AWS4-…` header → `REST-HEADER`, an `X-Amz-Algorithm`
/// query parameter → `REST-QUERY-STRING`, the upload form → `POST`) and `s3:x-amz-content-sha256`
/// from the header (AWS ignores the query-parameter form). The caller, having verified the
/// signature, adds the time- and connection-dependent ones (`s3:signatureAge`, `s3:TlsVersion`)
/// and the global `aws:*` keys. Presigned URLs may carry `x-amz-*` request headers as query
/// parameters (SDK presigners hoist them); they are read from either place, and giving one in
/// both places is an error.
pub fn map_s3(
    method: &Method,
    host: Option<&str>,
    raw_path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    virtual_host_suffixes: &[String],
) -> Result<S3Request, S3MapError> {
    let query = Query::parse(query.unwrap_or(""))?;
    let amz = Amz {
        headers,
        query: &query,
    };
    let (bucket, key) = locate(host, raw_path, virtual_host_suffixes)?;
    let selector = query.selector()?;
    let method = method.as_str();
    let mut req = match (bucket, key) {
        (None, _) => service_op(method, selector, &query)?,
        (Some(bucket), None) => bucket_op(method, bucket, selector, &query, &amz)?,
        (Some(bucket), Some(key)) => object_op(method, bucket, key, selector, &query, &amz)?,
    };
    auth_keys(&mut req, headers, &query)?;
    Ok(req)
}

fn unsupported(method: &str, what: &str) -> S3MapError {
    S3MapError::Unsupported(format!("{method} {what}"))
}

/// `GET /`: `ListBuckets`, the only service-level operation.
fn service_op(
    method: &str,
    selector: Option<&str>,
    query: &Query,
) -> Result<S3Request, S3MapError> {
    if method != "GET" {
        return Err(unsupported(method, "on the service endpoint"));
    }
    if let Some(sel) = selector {
        return Err(unsupported(
            method,
            &format!("?{sel} on the service endpoint"),
        ));
    }
    query.allow_only(LIST_BUCKETS_PARAMS, "ListBuckets")?;
    Ok(S3Request {
        operation: "ListBuckets",
        action: "s3:ListAllMyBuckets",
        resource: "*".to_owned(),
        bucket: None,
        key: None,
        condition_keys: Vec::new(),
        extra_actions: Vec::new(),
    })
}

fn new_request(
    operation: &'static str,
    action: &'static str,
    resource: String,
    bucket: String,
    key: Option<String>,
) -> S3Request {
    S3Request {
        operation,
        action,
        resource,
        bucket: Some(bucket),
        key,
        condition_keys: Vec::new(),
        extra_actions: Vec::new(),
    }
}

fn bucket_op(
    method: &str,
    bucket: String,
    selector: Option<&str>,
    query: &Query,
    amz: &Amz<'_>,
) -> Result<S3Request, S3MapError> {
    let arn = bucket_arn(&bucket);
    let Some(sel) = selector else {
        return bucket_plain_op(method, bucket, arn, query, amz);
    };
    let &(_, _, mut operation, action) = BUCKET_SUBRESOURCE_OPS
        .iter()
        .find(|(s, m, _, _)| *s == sel && *m == method)
        .ok_or_else(|| unsupported(method, &format!("?{sel} on a bucket")))?;
    match sel {
        "analytics" | "metrics" | "inventory" | "intelligent-tiering" => {
            if method == "GET" && !query.has("id") {
                operation = match sel {
                    "analytics" => "ListBucketAnalyticsConfigurations",
                    "metrics" => "ListBucketMetricsConfigurations",
                    "inventory" => "ListBucketInventoryConfigurations",
                    _ => "ListBucketIntelligentTieringConfigurations",
                };
                query.allow_only(&[sel, "continuation-token"], operation)?;
            } else {
                query.allow_only(&[sel, "id"], operation)?;
            }
        }
        "versions" => query.allow_only_with(sel, LIST_VERSIONS_PARAMS, operation)?,
        "uploads" => query.allow_only_with(sel, LIST_UPLOADS_PARAMS, operation)?,
        _ => query.allow_only(&[sel], operation)?,
    }
    if operation == "DeleteObjects" {
        // The keys are in the body: see the module documentation.
        let mut req = new_request(operation, action, format!("{arn}/*"), bucket, None);
        if amz.flag("x-amz-bypass-governance-retention")? {
            req.extra_actions
                .push(("s3:BypassGovernanceRetention", req.resource.clone()));
        }
        return Ok(req);
    }
    let mut req = new_request(operation, action, arn, bucket, None);
    match operation {
        "ListObjectVersions" => list_keys(&mut req, query)?,
        "PutBucketAcl" => amz.collect(ACL_KEYS, &mut req.condition_keys)?,
        _ => {}
    }
    Ok(req)
}

/// Bucket requests without a sub-resource.
fn bucket_plain_op(
    method: &str,
    bucket: String,
    arn: String,
    query: &Query,
    amz: &Amz<'_>,
) -> Result<S3Request, S3MapError> {
    match method {
        "GET" => {
            let v2 = match query.value("list-type")? {
                None => false,
                Some(v) if v == "2" => true,
                Some(v) => return Err(unsupported(method, &format!("?list-type={v}"))),
            };
            let operation = if v2 { "ListObjectsV2" } else { "ListObjects" };
            query.allow_only(if v2 { LIST_V2_PARAMS } else { LIST_V1_PARAMS }, operation)?;
            let mut req = new_request(operation, "s3:ListBucket", arn, bucket, None);
            list_keys(&mut req, query)?;
            Ok(req)
        }
        "HEAD" => {
            query.allow_only(&[], "HeadBucket")?;
            Ok(new_request(
                "HeadBucket",
                "s3:ListBucket",
                arn,
                bucket,
                None,
            ))
        }
        "PUT" => {
            query.allow_only(&[], "CreateBucket")?;
            let mut req = new_request("CreateBucket", "s3:CreateBucket", arn.clone(), bucket, None);
            amz.collect(ACL_KEYS, &mut req.condition_keys)?;
            amz.collect(
                &[("x-amz-object-ownership", "s3:x-amz-object-ownership")],
                &mut req.condition_keys,
            )?;
            if req
                .condition_keys
                .iter()
                .any(|(k, _)| k.starts_with("s3:x-amz-acl") || k.starts_with("s3:x-amz-grant-"))
            {
                req.extra_actions.push(("s3:PutBucketAcl", arn.clone()));
            }
            if amz.flag("x-amz-bucket-object-lock-enabled")? {
                req.extra_actions
                    .push(("s3:PutBucketObjectLockConfiguration", arn.clone()));
                req.extra_actions
                    .push(("s3:PutBucketVersioning", arn.clone()));
            }
            if req
                .condition_keys
                .iter()
                .any(|(k, _)| *k == "s3:x-amz-object-ownership")
            {
                req.extra_actions
                    .push(("s3:PutBucketOwnershipControls", arn));
            }
            Ok(req)
        }
        "DELETE" => {
            query.allow_only(&[], "DeleteBucket")?;
            Ok(new_request(
                "DeleteBucket",
                "s3:DeleteBucket",
                arn,
                bucket,
                None,
            ))
        }
        "POST" => {
            // The browser upload form: `multipart/form-data` to the bucket, key in the body.
            let form = amz.header(CONTENT_TYPE)?.is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
            if !form {
                return Err(unsupported(
                    method,
                    "on a bucket without a sub-resource (not a multipart/form-data upload)",
                ));
            }
            query.allow_only(&[], "PostObject")?;
            Ok(new_request(
                "PostObject",
                "s3:PutObject",
                format!("{arn}/*"),
                bucket,
                None,
            ))
        }
        _ => Err(unsupported(method, "on a bucket")),
    }
}

fn object_op(
    method: &str,
    bucket: String,
    key: String,
    selector: Option<&str>,
    query: &Query,
    amz: &Amz<'_>,
) -> Result<S3Request, S3MapError> {
    let sel = selector.unwrap_or("");
    let &(_, _, mut operation, action, version_action, params) = OBJECT_OPS
        .iter()
        .find(|(s, m, ..)| *s == sel && *m == method)
        .ok_or_else(|| match selector {
            Some(sel) => unsupported(method, &format!("?{sel} on an object")),
            None => unsupported(method, "on an object"),
        })?;
    query.allow_only_with(sel, params, operation)?;
    let arn = object_arn(&bucket, &key);
    let copy_source = amz.get("x-amz-copy-source")?;
    if copy_source.is_some() {
        operation = match operation {
            "PutObject" => "CopyObject",
            "UploadPart" => "UploadPartCopy",
            _ => {
                return Err(unsupported(
                    method,
                    &format!("x-amz-copy-source with {operation}"),
                ))
            }
        };
    }
    if matches!(operation, "UploadPart" | "UploadPartCopy") && !query.has("partNumber") {
        return Err(unsupported(method, "?uploadId without partNumber"));
    }
    if operation == "SelectObjectContent" && query.value("select-type")?.as_deref() != Some("2") {
        return Err(unsupported(method, "?select without select-type=2"));
    }
    let version = if params.contains(&"versionId") {
        query.value("versionId")?
    } else {
        None
    };
    let action = if version.is_some() {
        version_action
    } else {
        action
    };
    let mut req = new_request(operation, action, arn.clone(), bucket, Some(key));
    let bypass = amz.flag("x-amz-bypass-governance-retention")?;

    match operation {
        "GetObjectAttributes" => {
            let read = if version.is_some() {
                "s3:GetObjectVersion"
            } else {
                "s3:GetObject"
            };
            req.extra_actions.push((read, arn.clone()));
        }
        "PutObject" | "CopyObject" | "CreateMultipartUpload" => {
            amz.collect(ACL_KEYS, &mut req.condition_keys)?;
            amz.collect(WRITE_KEYS, &mut req.condition_keys)?;
            let has = |name: &str| req.condition_keys.iter().any(|(k, _)| *k == name);
            let acl = ACL_KEYS.iter().any(|(_, k)| has(k));
            let retention = has("s3:object-lock-mode") || has("s3:object-lock-retain-until-date");
            let legal_hold = has("s3:object-lock-legal-hold");
            if acl {
                req.extra_actions.push(("s3:PutObjectAcl", arn.clone()));
            }
            if amz.get("x-amz-tagging")?.is_some() {
                req.extra_actions.push(("s3:PutObjectTagging", arn.clone()));
            }
            if retention {
                req.extra_actions
                    .push(("s3:PutObjectRetention", arn.clone()));
            }
            if legal_hold {
                req.extra_actions
                    .push(("s3:PutObjectLegalHold", arn.clone()));
            }
        }
        "PutObjectAcl" => amz.collect(ACL_KEYS, &mut req.condition_keys)?,
        "DeleteObject" | "PutObjectRetention" if bypass => {
            req.extra_actions
                .push(("s3:BypassGovernanceRetention", arn.clone()));
        }
        _ => {}
    }

    if let Some(raw) = copy_source {
        let src = CopySource::parse(&raw)?;
        let read = if src.version_id.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        req.extra_actions
            .insert(0, (read, object_arn(&src.bucket, &src.key)));
        req.condition_keys.push((
            "s3:x-amz-copy-source",
            format!("{}/{}", src.bucket, src.key),
        ));
        if operation == "CopyObject" {
            amz.collect(
                &[("x-amz-metadata-directive", "s3:x-amz-metadata-directive")],
                &mut req.condition_keys,
            )?;
        }
    }
    if let Some(v) = version {
        req.condition_keys.push(("s3:VersionId", v));
    }
    Ok(req)
}

/// `s3:prefix`, `s3:delimiter`, `s3:max-keys` from the query, when present (an empty `prefix=`
/// is present and empty).
fn list_keys(req: &mut S3Request, query: &Query) -> Result<(), S3MapError> {
    for (param, key) in [
        ("prefix", "s3:prefix"),
        ("delimiter", "s3:delimiter"),
        ("max-keys", "s3:max-keys"),
    ] {
        if let Some(v) = query.value(param)? {
            req.condition_keys.push((key, v));
        }
    }
    Ok(())
}

/// `s3:authType`, `s3:signatureversion`, `s3:x-amz-content-sha256`.
fn auth_keys(req: &mut S3Request, headers: &HeaderMap, query: &Query) -> Result<(), S3MapError> {
    let amz = Amz { headers, query };
    // Only AWS signatures name a signature version: `AWS4-HMAC-SHA256` (or another `AWS4-…`
    // algorithm), `AWS` for signature version 2.
    let header_alg = amz
        .header(AUTHORIZATION)?
        .and_then(|a| a.split_whitespace().next())
        .filter(|alg| *alg == "AWS" || alg.starts_with("AWS4-"))
        .map(str::to_owned);
    if let Some(alg) = header_alg {
        req.condition_keys
            .push(("s3:authType", "REST-HEADER".to_owned()));
        req.condition_keys.push(("s3:signatureversion", alg));
    } else if let Some(alg) = query
        .value_ignore_case("x-amz-algorithm")?
        .filter(|alg| alg.starts_with("AWS4-"))
    {
        req.condition_keys
            .push(("s3:authType", "REST-QUERY-STRING".to_owned()));
        req.condition_keys.push(("s3:signatureversion", alg));
    } else if req.operation == "PostObject" {
        req.condition_keys.push(("s3:authType", "POST".to_owned()));
    }
    if let Some(sha) = amz.header(HeaderName::from_static("x-amz-content-sha256"))? {
        req.condition_keys
            .push(("s3:x-amz-content-sha256", sha.to_owned()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bucket and key.
// ---------------------------------------------------------------------------------------------

/// The bucket and key a request addresses (`key` is `None` for an empty key: `/bucket/` is the
/// bucket).
fn locate(
    host: Option<&str>,
    raw_path: &str,
    suffixes: &[String],
) -> Result<(Option<String>, Option<String>), S3MapError> {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| S3MapError::InvalidPath(raw_path.to_owned()))?;
    if let Some(bucket) = host.and_then(|h| virtual_host_bucket(h, suffixes)) {
        validate_bucket(&bucket)?;
        let key = percent_decode(rest, "the object key")?;
        return Ok((Some(bucket), non_empty(key)));
    }
    if rest.is_empty() {
        return Ok((None, None));
    }
    let (raw_bucket, raw_key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket = percent_decode(raw_bucket, "the bucket name")?;
    validate_bucket(&bucket)?;
    let key = percent_decode(raw_key, "the object key")?;
    Ok((Some(bucket), non_empty(key)))
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// The bucket label of a virtual-hosted-style host, if the host is `<bucket>.<suffix>`.
fn virtual_host_bucket(host: &str, suffixes: &[String]) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let without_port = match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let mut best: Option<(usize, &str)> = None;
    for suffix in suffixes {
        let suffix = suffix.trim().trim_start_matches('.').to_ascii_lowercase();
        if suffix.is_empty() {
            continue;
        }
        let candidate = if suffix.contains(':') {
            host
        } else {
            without_port
        };
        let Some(label) = candidate
            .strip_suffix(suffix.as_str())
            .and_then(|p| p.strip_suffix('.'))
        else {
            continue;
        };
        if best.is_none_or(|(len, _)| suffix.len() > len) {
            best = Some((suffix.len(), label));
        }
    }
    best.map(|(_, label)| label.to_owned())
}

/// Loose bucket-name check: 3–255 characters of letters, digits, `.`, `-`, `_` (the legacy
/// us-east-1 rules, a superset of today's), starting with a letter or digit. What matters here is
/// that a bucket name cannot carry `/`, `*`, `?`, `:` or `$` into a resource ARN.
fn validate_bucket(bucket: &str) -> Result<(), S3MapError> {
    let ok = (3..=255).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && bucket
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(S3MapError::InvalidBucketName(bucket.to_owned()))
    }
}

/// Percent-decodes a path segment or query component. A raw `+` is refused (AWS S3 reads it as a
/// space; other implementations as a plus); the result must be UTF-8.
fn percent_decode(raw: &str, what: &'static str) -> Result<String, S3MapError> {
    if !raw.contains(['%', '+']) {
        return Ok(raw.to_owned());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = bytes.next().and_then(hex_value);
                let lo = bytes.next().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                    _ => return Err(S3MapError::MalformedEncoding(what)),
                }
            }
            b'+' => return Err(S3MapError::AmbiguousPlus(what)),
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| S3MapError::MalformedEncoding(what))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `x-amz-copy-source`: `bucket/key` or `/bucket/key`, percent-encoded, optionally followed by
/// `?versionId=…`.
struct CopySource {
    bucket: String,
    key: String,
    version_id: Option<String>,
}

impl CopySource {
    fn parse(raw: &str) -> Result<Self, S3MapError> {
        let invalid = || S3MapError::InvalidCopySource(raw.to_owned());
        let trimmed = raw.trim();
        let trimmed = trimmed.strip_prefix('/').unwrap_or(trimmed);
        let (path, version_id) = match trimmed.split_once('?') {
            None => (trimmed, None),
            Some((path, q)) => {
                let v = q
                    .strip_prefix("versionId=")
                    .filter(|v| !v.contains('&'))
                    .ok_or_else(invalid)?;
                (path, Some(percent_decode(v, "x-amz-copy-source")?))
            }
        };
        let (b, k) = path.split_once('/').ok_or_else(invalid)?;
        let bucket = percent_decode(b, "x-amz-copy-source")?;
        validate_bucket(&bucket).map_err(|_| invalid())?;
        let key = percent_decode(k, "x-amz-copy-source")?;
        if key.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            bucket,
            key,
            version_id,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Query and headers.
// ---------------------------------------------------------------------------------------------

/// The query string: decoded names, raw values (decoded when read, so that a parameter this
/// mapping does not read — a session token, a signature — is never rejected for its encoding).
struct Query<'a> {
    params: Vec<(String, Option<&'a str>)>,
}

impl<'a> Query<'a> {
    fn parse(raw: &'a str) -> Result<Self, S3MapError> {
        let mut params: Vec<(String, Option<&'a str>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (part, None),
            };
            let name = percent_decode(name, "a query parameter name")?;
            // `x-amz-*` names are header names, compared case-insensitively.
            let lower = name.to_ascii_lowercase();
            let seen_as = if lower.starts_with("x-amz-") {
                lower
            } else {
                name.clone()
            };
            if !seen.insert(seen_as) {
                return Err(S3MapError::Duplicate(format!("query parameter {name:?}")));
            }
            params.push((name, value));
        }
        Ok(Self { params })
    }

    fn has(&self, name: &str) -> bool {
        self.params.iter().any(|(n, _)| n == name)
    }

    /// The decoded value of `name` (`Some("")` for `?name` and `?name=`).
    fn value(&self, name: &str) -> Result<Option<String>, S3MapError> {
        match self.params.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, v)) => percent_decode(v.unwrap_or(""), "a query parameter").map(Some),
        }
    }

    fn value_ignore_case(&self, name: &str) -> Result<Option<String>, S3MapError> {
        match self
            .params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            None => Ok(None),
            Some((_, v)) => percent_decode(v.unwrap_or(""), "a query parameter").map(Some),
        }
    }

    /// The one sub-resource, if any.
    fn selector(&self) -> Result<Option<&'static str>, S3MapError> {
        let mut found: Option<&'static str> = None;
        for (name, _) in &self.params {
            if let Some(sel) = SELECTORS.iter().find(|s| **s == name.as_str()) {
                if let Some(first) = found {
                    return Err(S3MapError::Unsupported(format!(
                        "two sub-resources: ?{first} and ?{sel}"
                    )));
                }
                found = Some(sel);
            }
        }
        Ok(found)
    }

    /// Every parameter is one of `allowed`, an `x-amz-*` parameter (presigned-URL
    /// authentication, or a header given as a query parameter) or the SDKs' `x-id=` operation
    /// hint.
    fn allow_only(&self, allowed: &[&str], operation: &str) -> Result<(), S3MapError> {
        for (name, _) in &self.params {
            let benign = name.eq_ignore_ascii_case("x-id")
                || name
                    .get(..6)
                    .is_some_and(|p| p.eq_ignore_ascii_case("x-amz-"))
                || allowed.contains(&name.as_str());
            if !benign {
                return Err(S3MapError::Unsupported(format!(
                    "query parameter {name:?} with {operation}"
                )));
            }
        }
        Ok(())
    }

    /// [`Self::allow_only`] with the sub-resource itself allowed too.
    fn allow_only_with(
        &self,
        selector: &str,
        allowed: &[&str],
        operation: &str,
    ) -> Result<(), S3MapError> {
        if selector.is_empty() {
            return self.allow_only(allowed, operation);
        }
        let mut all = Vec::with_capacity(allowed.len() + 1);
        all.push(selector);
        all.extend_from_slice(allowed);
        self.allow_only(&all, operation)
    }
}

/// Request headers, and `x-amz-*` headers given as query parameters.
struct Amz<'a> {
    headers: &'a HeaderMap,
    query: &'a Query<'a>,
}

impl Amz<'_> {
    /// A header's single value.
    fn header(&self, name: HeaderName) -> Result<Option<&str>, S3MapError> {
        let mut values = self.headers.get_all(&name).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(S3MapError::Duplicate(format!("header {name}")));
        }
        first
            .to_str()
            .map(Some)
            .map_err(|_| S3MapError::InvalidHeader(static_name(&name)))
    }

    /// An `x-amz-*` value from the headers or, for presigned URLs, the query.
    fn get(&self, name: &'static str) -> Result<Option<String>, S3MapError> {
        let header = self.header(HeaderName::from_static(name))?;
        let param = self.query.value_ignore_case(name)?;
        match (header, param) {
            (Some(_), Some(_)) => Err(S3MapError::Duplicate(format!(
                "{name} (header and query parameter)"
            ))),
            (Some(h), None) => Ok(Some(h.trim().to_owned())),
            (None, p) => Ok(p),
        }
    }

    /// A `true`/`false` header (case-insensitive), absent meaning false.
    fn flag(&self, name: &'static str) -> Result<bool, S3MapError> {
        Ok(self
            .get(name)?
            .is_some_and(|v| v.eq_ignore_ascii_case("true")))
    }

    /// Pushes `(condition key, value)` for each header of `table` that is present.
    fn collect(
        &self,
        table: &[(&'static str, &'static str)],
        out: &mut Vec<(&'static str, String)>,
    ) -> Result<(), S3MapError> {
        for (header, key) in table {
            if let Some(v) = self.get(header)? {
                out.push((key, v));
            }
        }
        Ok(())
    }
}

/// A `'static` name for the headers this module reads (for error values).
fn static_name(name: &HeaderName) -> &'static str {
    const KNOWN: &[&str] = &[
        "authorization",
        "content-type",
        "x-amz-content-sha256",
        "x-amz-copy-source",
        "x-amz-metadata-directive",
        "x-amz-tagging",
        "x-amz-bypass-governance-retention",
        "x-amz-bucket-object-lock-enabled",
        "x-amz-object-ownership",
    ];
    let s = name.as_str();
    ACL_KEYS
        .iter()
        .chain(WRITE_KEYS)
        .map(|(h, _)| *h)
        .chain(KNOWN.iter().copied())
        .find(|k| *k == s)
        .unwrap_or("a request header")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    type Pairs = &'static [(&'static str, &'static str)];
    /// (method, host, target, headers, operation, action, resource, condition keys, extras).
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Pairs,
        &'static str,
        &'static str,
        &'static str,
        Pairs,
        Pairs,
    );
    /// (method, host, target, headers, expected error).
    type ErrCase = (
        &'static str,
        &'static str,
        &'static str,
        Pairs,
        fn(&S3MapError) -> bool,
    );

    /// Path-style endpoint.
    const PATH: &str = "s3.us-east-1.amazonaws.com";
    /// Virtual-hosted-style endpoint of `demo-bucket`.
    const VHOST: &str = "demo-bucket.s3.us-east-1.amazonaws.com";
    const B: &str = "arn:aws:s3:::demo-bucket";
    const O: &str = "arn:aws:s3:::demo-bucket/photos/cat.jpg";
    const NONE: Pairs = &[];

    fn suffixes() -> Vec<String> {
        [
            "s3.amazonaws.com",
            "s3.us-east-1.amazonaws.com",
            "localhost:9000",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    fn run(
        method: &str,
        host: &str,
        target: &str,
        headers: Pairs,
    ) -> Result<S3Request, S3MapError> {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let host = if host.is_empty() { None } else { Some(host) };
        map_s3(
            &Method::from_bytes(method.as_bytes()).unwrap(),
            host,
            path,
            query,
            &map,
            &suffixes(),
        )
    }

    /// (method, host, path?query, headers) → (operation, action, resource, condition keys, extra
    /// actions). Request shapes are the ones boto3/botocore send.
    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // --- service ---
        ("GET", PATH, "/", NONE, "ListBuckets", "s3:ListAllMyBuckets", "*", NONE, NONE),
        ("GET", "s3.amazonaws.com", "/?max-buckets=10&prefix=logs", NONE, "ListBuckets", "s3:ListAllMyBuckets", "*", NONE, NONE),
        // --- listing ---
        ("GET", PATH, "/demo-bucket?list-type=2&prefix=a%2F&encoding-type=url", NONE,
            "ListObjectsV2", "s3:ListBucket", B, &[("s3:prefix", "a/")], NONE),
        ("GET", PATH, "/demo-bucket?list-type=2&prefix=photos%2F2024%2F&delimiter=%2F&max-keys=100&encoding-type=url", NONE,
            "ListObjectsV2", "s3:ListBucket", B, &[("s3:prefix", "photos/2024/"), ("s3:delimiter", "/"), ("s3:max-keys", "100")], NONE),
        ("GET", VHOST, "/?list-type=2&prefix=&delimiter=%2F&encoding-type=url", NONE,
            "ListObjectsV2", "s3:ListBucket", B, &[("s3:prefix", ""), ("s3:delimiter", "/")], NONE),
        ("GET", PATH, "/demo-bucket?list-type=2&continuation-token=1abc%3D%3D&fetch-owner=true&start-after=k&encoding-type=url", NONE,
            "ListObjectsV2", "s3:ListBucket", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?encoding-type=url&marker=k1&max-keys=5&prefix=logs%2F", NONE,
            "ListObjects", "s3:ListBucket", B, &[("s3:prefix", "logs/"), ("s3:max-keys", "5")], NONE),
        ("GET", PATH, "/demo-bucket", NONE, "ListObjects", "s3:ListBucket", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket/", NONE, "ListObjects", "s3:ListBucket", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?versions&delimiter=%2F&encoding-type=url&key-marker=k&max-keys=2&prefix=docs%2F&version-id-marker=v1", NONE,
            "ListObjectVersions", "s3:ListBucketVersions", B, &[("s3:prefix", "docs/"), ("s3:delimiter", "/"), ("s3:max-keys", "2")], NONE),
        ("GET", PATH, "/demo-bucket?uploads&encoding-type=url&max-uploads=10&prefix=big%2F", NONE,
            "ListMultipartUploads", "s3:ListBucketMultipartUploads", B, NONE, NONE),
        // --- bucket ---
        ("HEAD", PATH, "/demo-bucket", NONE, "HeadBucket", "s3:ListBucket", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket", NONE, "CreateBucket", "s3:CreateBucket", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket", &[("x-amz-acl", "private"), ("x-amz-bucket-object-lock-enabled", "True"), ("x-amz-object-ownership", "BucketOwnerEnforced")],
            "CreateBucket", "s3:CreateBucket", B, &[("s3:x-amz-acl", "private"), ("s3:x-amz-object-ownership", "BucketOwnerEnforced")],
            &[("s3:PutBucketAcl", B), ("s3:PutBucketObjectLockConfiguration", B), ("s3:PutBucketVersioning", B), ("s3:PutBucketOwnershipControls", B)]),
        ("PUT", VHOST, "/", NONE, "CreateBucket", "s3:CreateBucket", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket", NONE, "DeleteBucket", "s3:DeleteBucket", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?location", NONE, "GetBucketLocation", "s3:GetBucketLocation", B, NONE, NONE),
        ("GET", VHOST, "/?location", NONE, "GetBucketLocation", "s3:GetBucketLocation", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?acl", NONE, "GetBucketAcl", "s3:GetBucketAcl", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?acl", &[("x-amz-acl", "public-read"), ("x-amz-grant-read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")],
            "PutBucketAcl", "s3:PutBucketAcl", B, &[("s3:x-amz-acl", "public-read"), ("s3:x-amz-grant-read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")], NONE),
        ("GET", PATH, "/demo-bucket?tagging", NONE, "GetBucketTagging", "s3:GetBucketTagging", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?tagging", NONE, "PutBucketTagging", "s3:PutBucketTagging", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?tagging", NONE, "DeleteBucketTagging", "s3:PutBucketTagging", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?versioning", NONE, "GetBucketVersioning", "s3:GetBucketVersioning", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?versioning", NONE, "PutBucketVersioning", "s3:PutBucketVersioning", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?policy", NONE, "GetBucketPolicy", "s3:GetBucketPolicy", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?policy", NONE, "PutBucketPolicy", "s3:PutBucketPolicy", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?policy", NONE, "DeleteBucketPolicy", "s3:DeleteBucketPolicy", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?policyStatus", NONE, "GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?cors", NONE, "GetBucketCors", "s3:GetBucketCORS", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?cors", NONE, "PutBucketCors", "s3:PutBucketCORS", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?cors", NONE, "DeleteBucketCors", "s3:PutBucketCORS", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?lifecycle", NONE, "GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?lifecycle", NONE, "PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?lifecycle", NONE, "DeleteBucketLifecycle", "s3:PutLifecycleConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?website", NONE, "GetBucketWebsite", "s3:GetBucketWebsite", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?website", NONE, "PutBucketWebsite", "s3:PutBucketWebsite", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?website", NONE, "DeleteBucketWebsite", "s3:DeleteBucketWebsite", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?logging", NONE, "GetBucketLogging", "s3:GetBucketLogging", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?logging", NONE, "PutBucketLogging", "s3:PutBucketLogging", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?notification", NONE, "GetBucketNotificationConfiguration", "s3:GetBucketNotification", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?notification", NONE, "PutBucketNotificationConfiguration", "s3:PutBucketNotification", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?encryption", NONE, "GetBucketEncryption", "s3:GetEncryptionConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?encryption", NONE, "PutBucketEncryption", "s3:PutEncryptionConfiguration", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?encryption", NONE, "DeleteBucketEncryption", "s3:PutEncryptionConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?replication", NONE, "GetBucketReplication", "s3:GetReplicationConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?replication", NONE, "PutBucketReplication", "s3:PutReplicationConfiguration", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?replication", NONE, "DeleteBucketReplication", "s3:PutReplicationConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?object-lock", NONE, "GetObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?object-lock", NONE, "PutObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?ownershipControls", NONE, "GetBucketOwnershipControls", "s3:GetBucketOwnershipControls", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?ownershipControls", NONE, "PutBucketOwnershipControls", "s3:PutBucketOwnershipControls", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?ownershipControls", NONE, "DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?publicAccessBlock", NONE, "GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?publicAccessBlock", NONE, "PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?publicAccessBlock", NONE, "DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?id=archive&intelligent-tiering", NONE, "GetBucketIntelligentTieringConfiguration", "s3:GetIntelligentTieringConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?intelligent-tiering", NONE, "ListBucketIntelligentTieringConfigurations", "s3:GetIntelligentTieringConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?id=archive&intelligent-tiering", NONE, "PutBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?id=archive&intelligent-tiering", NONE, "DeleteBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?analytics&id=a1", NONE, "GetBucketAnalyticsConfiguration", "s3:GetAnalyticsConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?analytics&continuation-token=t", NONE, "ListBucketAnalyticsConfigurations", "s3:GetAnalyticsConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?analytics&id=a1", NONE, "PutBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?analytics&id=a1", NONE, "DeleteBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?id=m1&metrics", NONE, "GetBucketMetricsConfiguration", "s3:GetMetricsConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?metrics", NONE, "ListBucketMetricsConfigurations", "s3:GetMetricsConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?id=m1&metrics", NONE, "PutBucketMetricsConfiguration", "s3:PutMetricsConfiguration", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?id=m1&metrics", NONE, "DeleteBucketMetricsConfiguration", "s3:PutMetricsConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?id=i1&inventory", NONE, "GetBucketInventoryConfiguration", "s3:GetInventoryConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?inventory", NONE, "ListBucketInventoryConfigurations", "s3:GetInventoryConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?id=i1&inventory", NONE, "PutBucketInventoryConfiguration", "s3:PutInventoryConfiguration", B, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket?id=i1&inventory", NONE, "DeleteBucketInventoryConfiguration", "s3:PutInventoryConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?accelerate", NONE, "GetBucketAccelerateConfiguration", "s3:GetAccelerateConfiguration", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?accelerate", NONE, "PutBucketAccelerateConfiguration", "s3:PutAccelerateConfiguration", B, NONE, NONE),
        ("GET", PATH, "/demo-bucket?requestPayment", NONE, "GetBucketRequestPayment", "s3:GetBucketRequestPayment", B, NONE, NONE),
        ("PUT", PATH, "/demo-bucket?requestPayment", NONE, "PutBucketRequestPayment", "s3:PutBucketRequestPayment", B, NONE, NONE),
        ("POST", PATH, "/demo-bucket?delete", &[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
            "DeleteObjects", "s3:DeleteObject", "arn:aws:s3:::demo-bucket/*", NONE, NONE),
        ("POST", PATH, "/demo-bucket?delete", &[("x-amz-bypass-governance-retention", "true")],
            "DeleteObjects", "s3:DeleteObject", "arn:aws:s3:::demo-bucket/*", NONE, &[("s3:BypassGovernanceRetention", "arn:aws:s3:::demo-bucket/*")]),
        ("POST", VHOST, "/", &[("content-type", "multipart/form-data; boundary=9431149156168")],
            "PostObject", "s3:PutObject", "arn:aws:s3:::demo-bucket/*", &[("s3:authType", "POST")], NONE),
        // --- objects ---
        ("GET", PATH, "/demo-bucket/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY%2BMTRCxf3vjVBH40Nr8X8gdRQBpUMLUo", NONE,
            "GetObject", "s3:GetObjectVersion", O, &[("s3:VersionId", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo")], NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?partNumber=2", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?response-content-type=image%2Fjpeg&response-content-disposition=attachment", NONE,
            "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?x-id=GetObject", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("HEAD", PATH, "/demo-bucket/photos/cat.jpg", NONE, "HeadObject", "s3:GetObject", O, NONE, NONE),
        ("HEAD", PATH, "/demo-bucket/photos/cat.jpg?versionId=v2", NONE, "HeadObject", "s3:GetObjectVersion", O, &[("s3:VersionId", "v2")], NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg",
            &[("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=abc"),
              ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
            "PutObject", "s3:PutObject", O,
            &[("s3:authType", "REST-HEADER"), ("s3:signatureversion", "AWS4-HMAC-SHA256"), ("s3:x-amz-content-sha256", "UNSIGNED-PAYLOAD")], NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg",
            &[("x-amz-acl", "bucket-owner-full-control"), ("x-amz-server-side-encryption", "aws:kms"),
              ("x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:us-east-1:111122223333:key/k1"),
              ("x-amz-storage-class", "STANDARD_IA"), ("x-amz-tagging", "project=blue&team=a")],
            "PutObject", "s3:PutObject", O,
            &[("s3:x-amz-acl", "bucket-owner-full-control"), ("s3:x-amz-server-side-encryption", "aws:kms"),
              ("s3:x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:us-east-1:111122223333:key/k1"),
              ("s3:x-amz-storage-class", "STANDARD_IA")],
            &[("s3:PutObjectAcl", O), ("s3:PutObjectTagging", O)]),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg",
            &[("x-amz-object-lock-mode", "GOVERNANCE"), ("x-amz-object-lock-retain-until-date", "2030-01-01T00:00:00Z"), ("x-amz-object-lock-legal-hold", "ON")],
            "PutObject", "s3:PutObject", O,
            &[("s3:object-lock-mode", "GOVERNANCE"), ("s3:object-lock-retain-until-date", "2030-01-01T00:00:00Z"), ("s3:object-lock-legal-hold", "ON")],
            &[("s3:PutObjectRetention", O), ("s3:PutObjectLegalHold", O)]),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg", &[("x-amz-copy-source", "src-bucket/in/dog.jpg")],
            "CopyObject", "s3:PutObject", O, &[("s3:x-amz-copy-source", "src-bucket/in/dog.jpg")],
            &[("s3:GetObject", "arn:aws:s3:::src-bucket/in/dog.jpg")]),
        ("PUT", VHOST, "/photos/cat.jpg",
            &[("x-amz-copy-source", "/src-bucket/my%20docs/r%C3%A9sum%C3%A9.pdf?versionId=v%2B1"), ("x-amz-metadata-directive", "REPLACE")],
            "CopyObject", "s3:PutObject", O,
            &[("s3:x-amz-copy-source", "src-bucket/my docs/résumé.pdf"), ("s3:x-amz-metadata-directive", "REPLACE")],
            &[("s3:GetObjectVersion", "arn:aws:s3:::src-bucket/my docs/résumé.pdf")]),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg", &[("x-amz-copy-source", "src-bucket/a.jpg"), ("x-amz-tagging-directive", "REPLACE"), ("x-amz-tagging", "k=v")],
            "CopyObject", "s3:PutObject", O, &[("s3:x-amz-copy-source", "src-bucket/a.jpg")],
            &[("s3:GetObject", "arn:aws:s3:::src-bucket/a.jpg"), ("s3:PutObjectTagging", O)]),
        ("DELETE", PATH, "/demo-bucket/photos/cat.jpg", NONE, "DeleteObject", "s3:DeleteObject", O, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket/photos/cat.jpg?versionId=v1", NONE, "DeleteObject", "s3:DeleteObjectVersion", O, &[("s3:VersionId", "v1")], NONE),
        ("DELETE", PATH, "/demo-bucket/photos/cat.jpg?versionId=v1", &[("x-amz-bypass-governance-retention", "true")],
            "DeleteObject", "s3:DeleteObjectVersion", O, &[("s3:VersionId", "v1")], &[("s3:BypassGovernanceRetention", O)]),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?acl", NONE, "GetObjectAcl", "s3:GetObjectAcl", O, NONE, NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?acl&versionId=v1", NONE, "GetObjectAcl", "s3:GetObjectVersionAcl", O, &[("s3:VersionId", "v1")], NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?acl", &[("x-amz-acl", "public-read")], "PutObjectAcl", "s3:PutObjectAcl", O, &[("s3:x-amz-acl", "public-read")], NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?acl&versionId=v1", NONE, "PutObjectAcl", "s3:PutObjectVersionAcl", O, &[("s3:VersionId", "v1")], NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?tagging", NONE, "GetObjectTagging", "s3:GetObjectTagging", O, NONE, NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?tagging&versionId=v1", NONE, "GetObjectTagging", "s3:GetObjectVersionTagging", O, &[("s3:VersionId", "v1")], NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?tagging", NONE, "PutObjectTagging", "s3:PutObjectTagging", O, NONE, NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?tagging&versionId=v1", NONE, "PutObjectTagging", "s3:PutObjectVersionTagging", O, &[("s3:VersionId", "v1")], NONE),
        ("DELETE", PATH, "/demo-bucket/photos/cat.jpg?tagging", NONE, "DeleteObjectTagging", "s3:DeleteObjectTagging", O, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket/photos/cat.jpg?tagging&versionId=v1", NONE, "DeleteObjectTagging", "s3:DeleteObjectVersionTagging", O, &[("s3:VersionId", "v1")], NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?attributes", &[("x-amz-object-attributes", "ETag,ObjectSize")],
            "GetObjectAttributes", "s3:GetObjectAttributes", O, NONE, &[("s3:GetObject", O)]),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?attributes&versionId=v1", NONE,
            "GetObjectAttributes", "s3:GetObjectVersionAttributes", O, &[("s3:VersionId", "v1")], &[("s3:GetObjectVersion", O)]),
        ("POST", PATH, "/demo-bucket/photos/cat.jpg?restore", NONE, "RestoreObject", "s3:RestoreObject", O, NONE, NONE),
        ("POST", PATH, "/demo-bucket/photos/cat.jpg?restore&versionId=v1", NONE, "RestoreObject", "s3:RestoreObject", O, &[("s3:VersionId", "v1")], NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?retention", NONE, "GetObjectRetention", "s3:GetObjectRetention", O, NONE, NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?retention", &[("x-amz-bypass-governance-retention", "true")],
            "PutObjectRetention", "s3:PutObjectRetention", O, NONE, &[("s3:BypassGovernanceRetention", O)]),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?legal-hold", NONE, "GetObjectLegalHold", "s3:GetObjectLegalHold", O, NONE, NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?legal-hold", NONE, "PutObjectLegalHold", "s3:PutObjectLegalHold", O, NONE, NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?torrent", NONE, "GetObjectTorrent", "s3:GetObjectTorrent", O, NONE, NONE),
        ("POST", PATH, "/demo-bucket/photos/cat.jpg?select&select-type=2", NONE, "SelectObjectContent", "s3:GetObject", O, NONE, NONE),
        // --- multipart ---
        ("POST", PATH, "/demo-bucket/photos/cat.jpg?uploads", NONE, "CreateMultipartUpload", "s3:PutObject", O, NONE, NONE),
        ("POST", PATH, "/demo-bucket/photos/cat.jpg?uploads", &[("x-amz-acl", "private"), ("x-amz-tagging", "a=b"), ("x-amz-server-side-encryption", "AES256")],
            "CreateMultipartUpload", "s3:PutObject", O, &[("s3:x-amz-acl", "private"), ("s3:x-amz-server-side-encryption", "AES256")],
            &[("s3:PutObjectAcl", O), ("s3:PutObjectTagging", O)]),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?partNumber=1&uploadId=VXBsb2FkIElE", NONE, "UploadPart", "s3:PutObject", O, NONE, NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?partNumber=2&uploadId=VXBsb2FkIElE", &[("x-amz-copy-source", "src-bucket/big.bin"), ("x-amz-copy-source-range", "bytes=0-5242879")],
            "UploadPartCopy", "s3:PutObject", O, &[("s3:x-amz-copy-source", "src-bucket/big.bin")], &[("s3:GetObject", "arn:aws:s3:::src-bucket/big.bin")]),
        ("POST", PATH, "/demo-bucket/photos/cat.jpg?uploadId=VXBsb2FkIElE", NONE, "CompleteMultipartUpload", "s3:PutObject", O, NONE, NONE),
        ("DELETE", PATH, "/demo-bucket/photos/cat.jpg?uploadId=VXBsb2FkIElE", NONE, "AbortMultipartUpload", "s3:AbortMultipartUpload", O, NONE, NONE),
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?max-parts=10&part-number-marker=3&uploadId=VXBsb2FkIElE", NONE, "ListParts", "s3:ListMultipartUploadParts", O, NONE, NONE),
        // --- keys ---
        ("GET", PATH, "/demo-bucket/my%20file.txt", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket/my file.txt", NONE, NONE),
        ("GET", PATH, "/demo-bucket/caf%C3%A9/%E2%9C%93.txt", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket/café/✓.txt", NONE, NONE),
        ("GET", PATH, "/demo-bucket/a%2Fb", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket/a/b", NONE, NONE),
        ("GET", PATH, "/demo-bucket/a//b", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket/a//b", NONE, NONE),
        ("GET", PATH, "/demo-bucket/./x", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket/./x", NONE, NONE),
        ("GET", PATH, "/demo-bucket//lead", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket//lead", NONE, NONE),
        ("GET", PATH, "/demo-bucket/a%2Bb%2A%3F", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket/a+b*?", NONE, NONE),
        // --- hosts ---
        ("GET", VHOST, "/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", "demo-bucket.s3.amazonaws.com", "/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", "Demo-Bucket.S3.AmazonAWS.com", "/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", "demo-bucket.s3.amazonaws.com:443", "/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", "my.dotted.bucket.s3.us-east-1.amazonaws.com", "/k", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::my.dotted.bucket/k", NONE, NONE),
        ("GET", "demo-bucket.localhost:9000", "/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", "localhost:9000", "/demo-bucket/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", "demo-bucket.localhost:9001", "/demo-bucket/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", "minio.internal:9000", "/demo-bucket/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", "", "/demo-bucket/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", O, NONE, NONE),
        ("GET", VHOST, "/demo-bucket/photos/cat.jpg", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket/demo-bucket/photos/cat.jpg", NONE, NONE),
        ("GET", VHOST, "//x", NONE, "GetObject", "s3:GetObject", "arn:aws:s3:::demo-bucket//x", NONE, NONE),
        // --- presigned URLs ---
        ("GET", PATH, "/demo-bucket/photos/cat.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=abc", NONE,
            "GetObject", "s3:GetObject", O, &[("s3:authType", "REST-QUERY-STRING"), ("s3:signatureversion", "AWS4-HMAC-SHA256")], NONE),
        ("PUT", PATH, "/demo-bucket/photos/cat.jpg?x-amz-acl=public-read&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQo+raw/token&X-Amz-Signature=abc", NONE,
            "PutObject", "s3:PutObject", O,
            &[("s3:x-amz-acl", "public-read"), ("s3:authType", "REST-QUERY-STRING"), ("s3:signatureversion", "AWS4-HMAC-SHA256")],
            &[("s3:PutObjectAcl", O)]),
    ];

    fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
        v.sort();
        v
    }

    fn owned(p: Pairs) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn operation_table() {
        assert!(CASES.len() >= 60, "{} cases", CASES.len());
        for &(method, host, target, headers, op, action, resource, keys, extra) in CASES {
            let what = format!("{method} {host} {target}");
            let got = run(method, host, target, headers).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got.operation, op, "{what}");
            assert_eq!(got.action, action, "{what}");
            assert_eq!(got.resource, resource, "{what}");
            let got_keys = got
                .condition_keys
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            assert_eq!(
                sorted(got_keys),
                sorted(owned(keys)),
                "{what}: condition keys"
            );
            let got_extra: Vec<_> = got
                .extra_actions
                .iter()
                .map(|(a, r)| ((*a).to_owned(), r.clone()))
                .collect();
            assert_eq!(got_extra, owned(extra), "{what}: extra actions");
        }
    }

    #[test]
    fn every_table_row_is_exercised() {
        for (sel, method, op, _) in BUCKET_SUBRESOURCE_OPS {
            assert!(
                CASES.iter().any(|c| c.0 == *method && c.4 == *op),
                "no case for {method} ?{sel} ({op})"
            );
        }
        for (sel, method, op, ..) in OBJECT_OPS {
            assert!(
                CASES.iter().any(|c| c.0 == *method && c.4 == *op),
                "no case for {method} ?{sel} ({op})"
            );
        }
    }

    #[test]
    fn bucket_and_key_fields() {
        let r = run("GET", PATH, "/demo-bucket/caf%C3%A9%20menu/a//b", NONE).unwrap();
        assert_eq!(r.bucket.as_deref(), Some("demo-bucket"));
        assert_eq!(r.key.as_deref(), Some("café menu/a//b"));
        let r = run("GET", VHOST, "/", NONE).unwrap();
        assert_eq!(
            (r.bucket.as_deref(), r.key.as_deref()),
            (Some("demo-bucket"), None)
        );
        let r = run("GET", PATH, "/", NONE).unwrap();
        assert_eq!((r.bucket, r.key), (None, None));
        let r = run("GET", PATH, "", NONE).unwrap();
        assert_eq!(r.operation, "ListBuckets");
    }

    #[test]
    fn ipv6_host_is_path_style() {
        let r = run("GET", "[::1]:9000", "/demo-bucket/k", NONE).unwrap();
        assert_eq!(r.resource, "arn:aws:s3:::demo-bucket/k");
    }

    #[test]
    fn auth_keys_only_for_aws_signatures() {
        let r = run(
            "GET",
            PATH,
            "/demo-bucket/k",
            &[("authorization", "Bearer abc")],
        )
        .unwrap();
        assert!(r.condition_keys.is_empty(), "{:?}", r.condition_keys);
        let r = run("GET", PATH, "/demo-bucket/k?X-Amz-Algorithm=HMAC", NONE).unwrap();
        assert!(r.condition_keys.is_empty(), "{:?}", r.condition_keys);
        let r = run(
            "GET",
            PATH,
            "/demo-bucket/k",
            &[("authorization", "AWS AKIDEXAMPLE:sig")],
        )
        .unwrap();
        assert_eq!(
            r.condition_keys,
            vec![
                ("s3:authType", "REST-HEADER".to_owned()),
                ("s3:signatureversion", "AWS".to_owned())
            ]
        );
    }

    #[test]
    fn long_query_is_linear() {
        let query: Vec<String> = (0..20_000).map(|i| format!("p{i}=v")).collect();
        let target = format!("/demo-bucket/k?{}", query.join("&"));
        let start = std::time::Instant::now();
        assert!(matches!(
            run("GET", PATH, &target, NONE),
            Err(S3MapError::Unsupported(_))
        ));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn longest_suffix_wins() {
        let suffixes = vec!["amazonaws.com".to_owned(), "s3.amazonaws.com".to_owned()];
        let r = map_s3(
            &Method::GET,
            Some("demo-bucket.s3.amazonaws.com"),
            "/k",
            None,
            &HeaderMap::new(),
            &suffixes,
        )
        .unwrap();
        assert_eq!(r.resource, "arn:aws:s3:::demo-bucket/k");
        // A suffix with a port matches only that port; one without matches any.
        let suffixes = vec!["localhost:9000".to_owned()];
        let r = map_s3(
            &Method::GET,
            Some("demo-bucket.localhost:9001"),
            "/other/k",
            None,
            &HeaderMap::new(),
            &suffixes,
        )
        .unwrap();
        assert_eq!(r.resource, "arn:aws:s3:::other/k");
    }

    /// Requests that must be refused (the caller denies).
    #[test]
    fn errors() {
        use S3MapError::*;
        #[rustfmt::skip]
        let cases: &[ErrCase] = &[
            ("GET", PATH, "/demo-bucket/k?policy", NONE, |e| matches!(e, Unsupported(_))),
            ("GET", PATH, "/demo-bucket?acl&tagging", NONE, |e| matches!(e, Unsupported(_))),
            ("GET", PATH, "/demo-bucket/k?uploads&uploadId=x", NONE, |e| matches!(e, Unsupported(_))),
            ("GET", PATH, "/demo-bucket?foo", NONE, |e| matches!(e, Unsupported(_))),
            ("GET", PATH, "/demo-bucket?events", NONE, |e| matches!(e, Unsupported(_))),
            ("GET", PATH, "/demo-bucket/k?prefix=a", NONE, |e| matches!(e, Unsupported(_))),
            ("PUT", PATH, "/demo-bucket/k?versionId=v1", NONE, |e| matches!(e, Unsupported(_))),
            ("GET", PATH, "/demo-bucket?list-type=3", NONE, |e| matches!(e, Unsupported(_))),
            ("GET", PATH, "/?acl", NONE, |e| matches!(e, Unsupported(_))),
            ("PUT", PATH, "/", NONE, |e| matches!(e, Unsupported(_))),
            ("DELETE", PATH, "/demo-bucket?acl", NONE, |e| matches!(e, Unsupported(_))),
            ("DELETE", PATH, "/demo-bucket?versioning", NONE, |e| matches!(e, Unsupported(_))),
            ("PATCH", PATH, "/demo-bucket/k", NONE, |e| matches!(e, Unsupported(_))),
            ("OPTIONS", PATH, "/demo-bucket/k", NONE, |e| matches!(e, Unsupported(_))),
            ("POST", PATH, "/demo-bucket/k", NONE, |e| matches!(e, Unsupported(_))),
            ("POST", PATH, "/demo-bucket", &[("content-type", "application/xml")], |e| matches!(e, Unsupported(_))),
            ("PUT", PATH, "/demo-bucket/k?uploadId=x", NONE, |e| matches!(e, Unsupported(_))),
            ("POST", PATH, "/demo-bucket/k?select", NONE, |e| matches!(e, Unsupported(_))),
            ("PUT", PATH, "/demo-bucket/k?tagging", &[("x-amz-copy-source", "src-bucket/k")], |e| matches!(e, Unsupported(_))),
            ("GET", PATH, "/demo-bucket/k?versionId=a&versionId=b", NONE, |e| matches!(e, Duplicate(_))),
            ("PUT", PATH, "/demo-bucket/k?x-amz-acl=private&X-Amz-Acl=public-read", NONE, |e| matches!(e, Duplicate(_))),
            ("PUT", PATH, "/demo-bucket/k?x-amz-acl=public-read", &[("x-amz-acl", "private")], |e| matches!(e, Duplicate(_))),
            ("PUT", PATH, "/demo-bucket/k", &[("x-amz-acl", "private"), ("x-amz-acl", "public-read")], |e| matches!(e, Duplicate(_))),
            ("GET", PATH, "/demo_bucket!/k", NONE, |e| matches!(e, InvalidBucketName(_))),
            ("GET", PATH, "/ab/k", NONE, |e| matches!(e, InvalidBucketName(_))),
            ("GET", PATH, "/demo-bucket%2Fk", NONE, |e| matches!(e, InvalidBucketName(_))),
            ("GET", PATH, "/-bucket/k", NONE, |e| matches!(e, InvalidBucketName(_))),
            ("GET", "ab.s3.amazonaws.com", "/k", NONE, |e| matches!(e, InvalidBucketName(_))),
            ("GET", "bad*name.s3.amazonaws.com", "/k", NONE, |e| matches!(e, InvalidBucketName(_))),
            ("GET", PATH, "/demo-bucket/k%zz", NONE, |e| matches!(e, MalformedEncoding(_))),
            ("GET", PATH, "/demo-bucket/k%4", NONE, |e| matches!(e, MalformedEncoding(_))),
            ("GET", PATH, "/demo-bucket/%FF", NONE, |e| matches!(e, MalformedEncoding(_))),
            ("GET", PATH, "/demo-bucket?list-type=2&prefix=%E2%9C", NONE, |e| matches!(e, MalformedEncoding(_))),
            ("GET", PATH, "/demo-bucket/a+b", NONE, |e| matches!(e, AmbiguousPlus(_))),
            ("GET", PATH, "/demo-bucket?list-type=2&prefix=a+b", NONE, |e| matches!(e, AmbiguousPlus(_))),
            ("GET", PATH, "*", NONE, |e| matches!(e, InvalidPath(_))),
            ("GET", PATH, "http://evil/demo-bucket/k", NONE, |e| matches!(e, InvalidPath(_))),
            ("PUT", PATH, "/demo-bucket/k", &[("x-amz-copy-source", "no-key-here")], |e| matches!(e, InvalidCopySource(_))),
            ("PUT", PATH, "/demo-bucket/k", &[("x-amz-copy-source", "src-bucket/")], |e| matches!(e, InvalidCopySource(_))),
            ("PUT", PATH, "/demo-bucket/k", &[("x-amz-copy-source", "src-bucket/k?partNumber=1")], |e| matches!(e, InvalidCopySource(_))),
            ("PUT", PATH, "/demo-bucket/k", &[("x-amz-copy-source", "arn:aws:s3:us-west-2:111122223333:accesspoint/ap/object/k")], |e| matches!(e, InvalidCopySource(_))),
            ("PUT", PATH, "/demo-bucket/k", &[("x-amz-copy-source", "src-bucket/a+b")], |e| matches!(e, AmbiguousPlus(_))),
        ];
        for (method, host, target, headers, check) in cases {
            let got = run(method, host, target, headers);
            match &got {
                Err(e) if check(e) => {}
                other => panic!("{method} {host} {target}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn non_ascii_header_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amz-acl",
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        let err = map_s3(
            &Method::PUT,
            Some(PATH),
            "/demo-bucket/k",
            None,
            &headers,
            &suffixes(),
        )
        .unwrap_err();
        assert_eq!(err, S3MapError::InvalidHeader("x-amz-acl"));
        assert_eq!(err.to_string(), "invalid value for header x-amz-acl");
    }

    #[test]
    fn body_dependent_operations() {
        let r = run(
            "POST",
            PATH,
            "/demo-bucket?delete",
            &[("x-amz-bypass-governance-retention", "true")],
        )
        .unwrap();
        assert!(r.requires_body());
        assert_eq!(
            r.per_key_checks("a b/c", None),
            vec![
                (
                    "s3:DeleteObject",
                    "arn:aws:s3:::demo-bucket/a b/c".to_owned()
                ),
                (
                    "s3:BypassGovernanceRetention",
                    "arn:aws:s3:::demo-bucket/a b/c".to_owned()
                )
            ]
        );
        let r = run("POST", PATH, "/demo-bucket?delete", NONE).unwrap();
        assert_eq!(
            r.per_key_checks("k", Some("v1")),
            vec![(
                "s3:DeleteObjectVersion",
                "arn:aws:s3:::demo-bucket/k".to_owned()
            )]
        );
        let r = run(
            "POST",
            PATH,
            "/demo-bucket",
            &[("content-type", "multipart/form-data; boundary=x")],
        )
        .unwrap();
        assert!(r.requires_body());
        assert_eq!(
            r.per_key_checks("up/x.txt", None),
            vec![(
                "s3:PutObject",
                "arn:aws:s3:::demo-bucket/up/x.txt".to_owned()
            )]
        );
        let r = run("GET", PATH, "/demo-bucket/k", NONE).unwrap();
        assert!(!r.requires_body());
        assert!(r.per_key_checks("k", None).is_empty());
    }

    #[test]
    fn checks_lists_main_then_extras() {
        let r = run(
            "PUT",
            PATH,
            "/demo-bucket/k",
            &[
                ("x-amz-copy-source", "src-bucket/s"),
                ("x-amz-acl", "private"),
            ],
        )
        .unwrap();
        let checks: Vec<_> = r.checks().collect();
        assert_eq!(
            checks,
            vec![
                ("s3:PutObject", "arn:aws:s3:::demo-bucket/k"),
                ("s3:GetObject", "arn:aws:s3:::src-bucket/s"),
                ("s3:PutObjectAcl", "arn:aws:s3:::demo-bucket/k")
            ]
        );
    }

    #[test]
    fn error_messages_are_lower_case() {
        let e = run("GET", PATH, "/demo-bucket?foo", NONE).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported s3 request: query parameter \"foo\" with ListObjects"
        );
        let e = run("GET", PATH, "/ab/k", NONE).unwrap_err();
        assert_eq!(e.to_string(), "invalid bucket name: \"ab\"");
        let e = run("GET", PATH, "/demo-bucket/a+b", NONE).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ambiguous raw '+' in the object key: send %2B for a plus or %20 for a space"
        );
    }
}
