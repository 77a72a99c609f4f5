//! The TOML file as written: serde structs that refuse unknown fields. Checked by `validate`.
//!
//! Most fields are optional here so that a missing value becomes a validation finding (and all
//! findings are reported together) rather than a parse error that stops at the first.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::locate::locate;
use super::{Finding, HostMode};
use crate::credentials::KeyStatus;

/// The whole config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) secrets_file: Option<String>,
    #[serde(default)]
    pub(crate) auth: RawAuth,
    #[serde(default)]
    pub(crate) listeners: RawListeners,
    #[serde(default)]
    pub(crate) upstream: RawUpstream,
    #[serde(default)]
    pub(crate) accounts: Vec<RawAccount>,
    #[serde(default)]
    pub(crate) users: Vec<RawUser>,
    #[serde(default)]
    pub(crate) groups: Vec<RawGroup>,
    #[serde(default)]
    pub(crate) roles: Vec<RawRole>,
    #[serde(default)]
    pub(crate) policies: Vec<RawPolicy>,
    pub(crate) organization: Option<RawOrganization>,
    #[serde(default)]
    pub(crate) resources: Vec<RawResource>,
    #[serde(default)]
    pub(crate) mappings: Vec<RawMapping>,
    pub(crate) sts: Option<RawSts>,
    #[serde(default)]
    pub(crate) oidc_providers: Vec<RawOidcProvider>,
    pub(crate) audit: Option<RawAudit>,
    #[serde(default)]
    pub(crate) ext_authz: RawExtAuthz,
    #[serde(default)]
    pub(crate) limits: RawLimits,
    pub(crate) tls: Option<RawTls>,
}

/// `[tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) client_ca_file: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) header_read_timeout_ms: Option<u64>,
    pub(crate) max_header_bytes: Option<u64>,
    pub(crate) max_headers: Option<u64>,
    pub(crate) max_uri_bytes: Option<u64>,
    pub(crate) idle_timeout_seconds: Option<u64>,
    pub(crate) max_connections: Option<u64>,
    pub(crate) max_body_bytes: Option<u64>,
    pub(crate) max_in_flight: Option<u64>,
    pub(crate) drain_timeout_seconds: Option<u64>,
    pub(crate) audit_flush_timeout_seconds: Option<u64>,
}

/// `[ext_authz]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExtAuthz {
    #[serde(default)]
    pub(crate) trust_unsent_payload: bool,
    pub(crate) max_request_bytes: Option<u64>,
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    pub(crate) overflow: Option<String>,
    pub(crate) queue_capacity: Option<u64>,
    pub(crate) request_parameters: Option<String>,
    #[serde(default)]
    pub(crate) event_sources: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) stdout: bool,
    pub(crate) files: Option<RawAuditFiles>,
    pub(crate) s3: Option<RawAuditS3>,
    pub(crate) digests: Option<RawAuditDigests>,
}

/// `[audit.files]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuditFiles {
    pub(crate) dir: Option<String>,
    pub(crate) interval_seconds: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) prefix: Option<String>,
}

/// `[audit.s3]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuditS3 {
    pub(crate) endpoint: Option<String>,
    pub(crate) bucket: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) interval_seconds: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
}

/// `[audit.digests]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuditDigests {
    pub(crate) key: Option<String>,
    pub(crate) interval_seconds: Option<u64>,
    pub(crate) trail_name: Option<String>,
    pub(crate) bucket: Option<String>,
    pub(crate) home_region: Option<String>,
}

/// `[sts]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSts {
    #[serde(default)]
    pub(crate) keys: Vec<String>,
    #[serde(default)]
    pub(crate) revocations: Vec<RawRevocation>,
}

/// `[[sts.revocations]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRevocation {
    pub(crate) role: Option<String>,
    pub(crate) principal: Option<String>,
    pub(crate) account: Option<String>,
    /// A string or a TOML offset date-time (`before = 2026-11-28T12:00:00Z` without quotes).
    pub(crate) before: Option<toml::Value>,
}

/// `[[oidc_providers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidcProvider {
    pub(crate) account: Option<String>,
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) audiences: Vec<String>,
    pub(crate) jwks_file: Option<String>,
    pub(crate) jwks_url: Option<String>,
    pub(crate) jwks: Option<String>,
    pub(crate) refresh_seconds: Option<u64>,
}

/// `[organization]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOrganization {
    pub(crate) id: String,
    pub(crate) root_id: Option<String>,
    pub(crate) management_account: Option<String>,
    pub(crate) scps: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) rcps: Vec<String>,
    #[serde(default)]
    pub(crate) units: Vec<RawUnit>,
    #[serde(default)]
    pub(crate) policies: Vec<RawOrgPolicy>,
}

/// `[[organization.units]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUnit {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) parent: Option<String>,
    pub(crate) scps: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) rcps: Vec<String>,
}

/// `[[organization.policies]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOrgPolicy {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) file: Option<String>,
    pub(crate) document: Option<String>,
}

/// `[[resources]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResource {
    #[serde(default)]
    pub(crate) arns: Vec<String>,
    pub(crate) account: Option<String>,
    pub(crate) policy_file: Option<String>,
    pub(crate) policy: Option<String>,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
}

/// `[[mappings]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapping {
    pub(crate) service: String,
    pub(crate) mode: String,
    pub(crate) iam_service: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) unmatched: Option<String>,
    pub(crate) resource: Option<String>,
    #[serde(default)]
    pub(crate) virtual_host_suffixes: Vec<String>,
    #[serde(default)]
    pub(crate) routes: Vec<RawRoute>,
}

/// `[[mappings.routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) method: Option<String>,
    pub(crate) path: String,
    pub(crate) action: String,
    pub(crate) resource: Option<String>,
    #[serde(default)]
    pub(crate) keys: BTreeMap<String, String>,
}

/// `[auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    #[serde(default)]
    pub(crate) regions: Vec<String>,
    #[serde(default)]
    pub(crate) services: Vec<String>,
    pub(crate) clock_skew_seconds: Option<u64>,
    pub(crate) max_verified_body_bytes: Option<u64>,
    #[serde(default)]
    pub(crate) unsigned_payload_services: Vec<String>,
    #[serde(default)]
    pub(crate) expose_signing_details: bool,
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<String>,
}

/// `[listeners]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListeners {
    pub(crate) proxy: Option<String>,
    pub(crate) admin: Option<String>,
    pub(crate) api: Option<String>,
    pub(crate) ext_authz_grpc: Option<String>,
    pub(crate) ext_authz_http: Option<String>,
}

/// `[upstream]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub(crate) url: Option<String>,
    pub(crate) connect_timeout_ms: Option<u64>,
    pub(crate) request_timeout_ms: Option<u64>,
    #[serde(default)]
    pub(crate) host: HostMode,
    pub(crate) ca_file: Option<String>,
}

/// `[[accounts]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccount {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) parent: Option<String>,
    pub(crate) scps: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) rcps: Vec<String>,
}

/// `[[users]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUser {
    pub(crate) account: Option<String>,
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) unique_id: Option<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    #[serde(default)]
    pub(crate) policies: Vec<String>,
    #[serde(default)]
    pub(crate) inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) access_keys: Vec<RawAccessKey>,
}

/// `[[users.access_keys]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccessKey {
    pub(crate) id: String,
    #[serde(default = "active")]
    pub(crate) status: KeyStatus,
}

fn active() -> KeyStatus {
    KeyStatus::Active
}

/// `[[groups]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    pub(crate) account: Option<String>,
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) unique_id: Option<String>,
    #[serde(default)]
    pub(crate) policies: Vec<String>,
    #[serde(default)]
    pub(crate) inline_policies: BTreeMap<String, String>,
}

/// `[[roles]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    pub(crate) account: Option<String>,
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) unique_id: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) trust_policy: Option<String>,
    #[serde(default)]
    pub(crate) policies: Vec<String>,
    #[serde(default)]
    pub(crate) inline_policies: BTreeMap<String, String>,
    pub(crate) max_session_duration_seconds: Option<u64>,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
}

/// `[[policies]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub(crate) account: Option<String>,
    pub(crate) name: String,
    pub(crate) path: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) document: Option<String>,
}

/// Parses the config text; a syntax or schema error becomes one finding with line, column and
/// key path.
pub(crate) fn parse(text: &str, label: &str) -> Result<RawConfig, Finding> {
    toml::from_str(text).map_err(|e| {
        let location = e.span().map(|span| locate(text, span.start));
        Finding {
            file: label.to_owned(),
            line: location.as_ref().map(|l| l.line),
            column: location.as_ref().map(|l| l.column),
            key: location.and_then(|l| l.key),
            message: one_line(e.message()),
        }
    })
}

/// Joins a multi-line parser message into one line.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
