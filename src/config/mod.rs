//! Configuration: one TOML file (serde structs that refuse unknown fields) → [`validate`] (every
//! problem found, not just the first) → a compiled, immutable [`Snapshot`].
//!
//! IAM policy documents stay JSON files referenced by path; secret access keys and session-token
//! keys live in a separate secrets file or in `TOLLGATE_SECRET_<ACCESS_KEY_ID>` and
//! `TOLLGATE_STS_KEY_<KID>` environment variables, never in the main file. The reference for every
//! key is `docs/configuration.md`.
//!
//! [`validate`]: validate::validate

mod access;
mod audit;
mod demo;
mod locate;
mod origin;
mod schema;
mod secrets;
mod sts;
mod validate;

use std::collections::HashMap;

/// A hash map for configuration data on the request path: keys come from the configuration, not
/// from requests, so a fast (seeded) hasher is safe from flooding.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::credentials::{self, KeyStatus, SecretKey};

use origin::Origin;

/// Everything compiled from one configuration. Immutable: a reload builds a new one and swaps it.
pub struct Snapshot {
    /// Caller-provided counter, bumped on every successful reload.
    pub generation: u64,
    /// Every access key of every user, active and inactive.
    pub keys: credentials::KeyStore,
    /// Signature verification settings.
    pub auth: AuthSettings,
    /// Listening addresses.
    pub listeners: Listeners,
    /// Where allowed requests go.
    pub upstream: UpstreamSettings,
    /// The accounts, in config order.
    pub accounts: Vec<Account>,
    /// The IAM users, in config order.
    pub users: Vec<User>,
    /// The IAM groups, in config order.
    pub groups: Vec<Group>,
    /// The IAM roles, in config order.
    pub roles: Vec<Role>,
    /// The customer managed policies, in config order.
    pub policies: Vec<ManagedPolicy>,
    /// Policy validation warnings (errors refuse the config): reported by `tollgate check`.
    pub policy_warnings: Vec<Finding>,
    /// Organization, resources and request mappings: what authorization needs.
    pub access: Access,
    /// Session-token keys, revocations and OIDC providers (`[sts]`, `[[oidc_providers]]`).
    /// `None` without an `[sts]` section: temporary credentials are then refused and STS
    /// operations that issue credentials answer an error.
    pub sts: Option<StsSettings>,
    /// The audit pipeline's settings (`[audit]`); no sinks without the section.
    pub audit: AuditSettings,
    /// Envoy ext_authz settings (`[ext_authz]`).
    pub ext_authz: ExtAuthzSettings,
    /// Connection and request limits (`[limits]`).
    pub limits: Limits,
    /// TLS on the proxy, api and ext_authz HTTP listeners (`[tls]`); plain HTTP without it.
    pub tls: Option<crate::tls::TlsSettings>,
    /// The files this snapshot was built from (the config file first, then the policy, secrets
    /// and key files it names): what a reload watches. Empty for the embedded demo.
    pub sources: Vec<std::path::PathBuf>,
    index: Index,
}

/// Position of each entity by ARN (accounts by id), for O(1) lookups.
#[derive(Default)]
struct Index {
    /// User or role ARN → its compiled identity policies (own, groups', inline).
    identity_sets: FastMap<String, Arc<crate::policy::PolicySet>>,
    /// Managed policy ARN → compiled policy.
    compiled_policies: FastMap<String, Arc<crate::policy::CompiledPolicy>>,
    /// Role ARN → its compiled trust policy.
    trust_policies: FastMap<String, Arc<crate::policy::PolicySet>>,
    accounts: FastMap<String, usize>,
    users: FastMap<String, usize>,
    groups: FastMap<String, usize>,
    roles: FastMap<String, usize>,
    policies: FastMap<String, usize>,
}

impl Snapshot {
    /// The compiled identity policies of a user or role (managed, inline and, for users, their
    /// groups'), indexed by action.
    pub fn identity_policies(&self, principal_arn: &str) -> Option<&Arc<crate::policy::PolicySet>> {
        self.index.identity_sets.get(principal_arn)
    }

    /// The compiled trust policy of a role (a [`PolicyType::Trust`] policy saying who may
    /// assume it), by role ARN.
    ///
    /// [`PolicyType::Trust`]: crate::policy::PolicyType::Trust
    pub fn trust_policy(&self, role_arn: &str) -> Option<&Arc<crate::policy::PolicySet>> {
        self.index.trust_policies.get(role_arn)
    }

    /// The OIDC provider whose issuer a web identity token's `iss` names, when STS is
    /// configured. See [`StsSettings::oidc_provider_for_issuer`].
    pub fn oidc_provider_for_issuer(&self, iss: &str) -> Option<&OidcProviderConfig> {
        self.sts
            .as_ref()
            .and_then(|sts| sts.oidc_provider_for_issuer(iss))
    }

    /// A compiled managed policy by ARN.
    pub fn compiled_policy(&self, arn: &str) -> Option<&Arc<crate::policy::CompiledPolicy>> {
        self.index.compiled_policies.get(arn)
    }

    /// The account with this 12-digit id.
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.index
            .accounts
            .get(id)
            .and_then(|&i| self.accounts.get(i))
    }

    /// The user with this ARN (`arn:aws:iam::<account>:user<path><name>`).
    pub fn user(&self, arn: &str) -> Option<&User> {
        self.index.users.get(arn).and_then(|&i| self.users.get(i))
    }

    /// The group with this ARN (`arn:aws:iam::<account>:group<path><name>`).
    pub fn group(&self, arn: &str) -> Option<&Group> {
        self.index.groups.get(arn).and_then(|&i| self.groups.get(i))
    }

    /// The role with this ARN (`arn:aws:iam::<account>:role<path><name>`).
    pub fn role(&self, arn: &str) -> Option<&Role> {
        self.index.roles.get(arn).and_then(|&i| self.roles.get(i))
    }

    /// The managed policy with this ARN (`arn:aws:iam::<account>:policy<path><name>`).
    pub fn policy(&self, arn: &str) -> Option<&ManagedPolicy> {
        self.index
            .policies
            .get(arn)
            .and_then(|&i| self.policies.get(i))
    }
}

impl fmt::Debug for Snapshot {
    // Derived `Debug` of every part; secrets print as `SecretKey(***)`. The index is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("keys", &self.keys)
            .field("auth", &self.auth)
            .field("listeners", &self.listeners)
            .field("upstream", &self.upstream)
            .field("accounts", &self.accounts)
            .field("users", &self.users)
            .field("groups", &self.groups)
            .field("roles", &self.roles)
            .field("policies", &self.policies)
            .field("sts", &self.sts)
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

/// A small sorted set of names (regions, services). Configurations list a handful, so a linear
/// scan of short strings beats hashing on the request path; entries are shared `Arc<str>` so a
/// request keeps the matched name without allocating.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameSet(Vec<Arc<str>>);

impl NameSet {
    /// The stored name equal to `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<str>> {
        self.0.iter().find(|n| ***n == *name)
    }

    /// Whether `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|n| &**n)
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for NameSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut names: Vec<Arc<str>> = iter.into_iter().map(|s| Arc::from(s.as_ref())).collect();
        names.sort();
        names.dedup();
        Self(names)
    }
}

/// How signatures are checked (`[auth]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Regions a credential scope may name (never empty).
    pub regions: NameSet,
    /// Services a credential scope may name (never empty).
    pub services: NameSet,
    /// How far `X-Amz-Date` may be from the local clock, either way. Default 15 minutes.
    pub clock_skew: Duration,
    /// Largest body whose SHA-256 is checked against `x-amz-content-sha256`. Default 8 MiB.
    pub max_verified_body: u64,
    /// Services (a subset of `services`) for which `UNSIGNED-PAYLOAD` is accepted.
    pub unsigned_payload_services: NameSet,
    /// Include `CanonicalRequest` and `StringToSign` in `SignatureDoesNotMatch` errors, as AWS
    /// does. Default false.
    pub expose_signing_details: bool,
}

/// Listening addresses (`[listeners]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listeners {
    /// The authorizing reverse proxy. Default `127.0.0.1:8080`.
    pub proxy: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`. Default `127.0.0.1:9901`.
    pub admin: SocketAddr,
    /// STS on its own, for deployments where Envoy (ext_authz) fronts the service. Off unless
    /// configured (`127.0.0.1:8081` in the demo): a sidecar opens no port it does not need.
    pub api: Option<SocketAddr>,
    /// Envoy ext_authz, gRPC `Check` (`127.0.0.1:9191` in the demo). Off unless configured.
    pub ext_authz_grpc: Option<SocketAddr>,
    /// Envoy ext_authz, HTTP-service mode (`127.0.0.1:9192` in the demo). Off unless configured.
    pub ext_authz_http: Option<SocketAddr>,
}

/// Connection and request limits (`[limits]`). The connection limits (everything but
/// `max_body_bytes`) are bound when the listeners start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's whole head (HTTP/1; slowloris). Default 10 s.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), HTTP/1 and HTTP/2; at least 8 KiB.
    /// Default 64 KiB; larger → 431.
    pub max_header_bytes: u32,
    /// Most headers in a request (HTTP/1). Default 100; more → 431.
    pub max_headers: usize,
    /// Longest request target (path and query, as sent). Default 16 KiB; longer → 414
    /// `RequestURITooLong`, before the signature is looked at.
    pub max_uri_bytes: usize,
    /// A connection with no call open for this long is closed (HTTP/2: GOAWAY). Default 60 s.
    /// HTTP/1 connections waiting for their next request also close at `header_read_timeout`.
    pub idle_timeout: Duration,
    /// Open connections per listener. Default 10,000; beyond, a new connection gets 503
    /// `ServiceUnavailable` and is closed.
    pub max_connections: usize,
    /// Largest request body (its `Content-Length`, or an aws-chunked body's
    /// `x-amz-decoded-content-length`). Default 5 GiB (S3's single-PUT limit); larger → 413
    /// `EntityTooLarge`.
    pub max_body_bytes: u64,
    /// Calls being decided or forwarded at once, all listeners together; beyond it a call gets
    /// 503 (`SlowDown` for S3, `ServiceUnavailable` otherwise) at once: load shedding. Default
    /// 4,096.
    pub max_in_flight: usize,
    /// After SIGTERM, how long open calls may take to finish. Default 25 s.
    pub drain_timeout: Duration,
    /// After that, how long the audit sinks may take to flush and close. Default 30 s.
    pub audit_flush_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_uri_bytes: 16 * 1024,
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_body_bytes: 5 * 1024 * 1024 * 1024,
            max_in_flight: 4096,
            drain_timeout: Duration::from_secs(25),
            audit_flush_timeout: Duration::from_secs(30),
        }
    }
}

/// Envoy ext_authz settings (`[ext_authz]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtAuthzSettings {
    /// Accept a signed request whose payload cannot be checked because Envoy did not send the
    /// body (no `with_request_body`, or cut at `max_request_bytes`): the declared
    /// `x-amz-content-sha256` (or aws-chunked seed signature) is then taken on trust. Default
    /// false: such requests are refused unless they are `UNSIGNED-PAYLOAD`.
    pub trust_unsent_payload: bool,
    /// Envoy's `with_request_body.max_request_bytes` (default 1 MiB, as in `deploy/envoy/`).
    /// Envoy does not reliably mark a body it cut at that size as partial, so a body this long
    /// counts as whole only when the request's own `Content-Length` says so.
    pub max_request_bytes: u64,
}

impl Default for ExtAuthzSettings {
    fn default() -> Self {
        Self {
            trust_unsent_payload: false,
            max_request_bytes: 1 << 20,
        }
    }
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            proxy: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            admin: SocketAddr::from((Ipv4Addr::LOCALHOST, 9901)),
            api: None,
            ext_authz_grpc: None,
            ext_authz_http: None,
        }
    }
}

/// Where allowed requests are forwarded (`[upstream]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSettings {
    /// The upstream service.
    pub target: UpstreamTarget,
    /// Time allowed to open a connection. Default 2 s.
    pub connect_timeout: Duration,
    /// Time allowed until the response headers arrive. Default 30 s.
    pub request_timeout: Duration,
    /// Which `Host` header the upstream sees.
    pub host: HostMode,
    /// For an `https://` upstream: the PEM CA bundle its certificate must chain to (default:
    /// the Mozilla roots of `webpki-roots`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// The upstream service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTarget {
    /// `builtin:echo`: answer every allowed request with a description of it (for demos and tests).
    Echo,
    /// An `http://host:port` service; the URI has a scheme and an authority, and no path.
    Url(http::Uri),
}

/// Which `Host` header the upstream sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    /// Keep the client's `Host` (the one it signed). The default.
    #[default]
    Preserve,
    /// Rewrite `Host` to the upstream URL's authority.
    Upstream,
}

/// An AWS account (`[[accounts]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The 12-digit account id.
    pub id: String,
    /// A friendly name (like an account alias).
    pub name: String,
    /// The organizational unit it belongs to (`None`: the root), when there is an organization.
    pub parent: Option<String>,
    /// SCP names attached to the account (`None`: FullAWSAccess).
    pub scps: Option<Vec<String>>,
    /// RCP names attached to the account (RCPFullAWSAccess is always attached too).
    pub rcps: Vec<String>,
}

/// An inline policy embedded in a user, group or role.
#[derive(Debug, Clone, PartialEq)]
pub struct InlinePolicy {
    /// The policy name.
    pub name: String,
    /// The parsed policy document (a JSON object with a `Statement`).
    pub document: serde_json::Value,
}

/// An IAM user (`[[users]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The 12-digit account id.
    pub account: String,
    /// The user name.
    pub name: String,
    /// The IAM path, `/` or `/a/b/`.
    pub path: String,
    /// `arn:aws:iam::<account>:user<path><name>`.
    pub arn: String,
    /// `AIDA…`: configured, or derived from the ARN so that every replica agrees.
    pub unique_id: String,
    /// ARNs of the groups the user belongs to.
    pub groups: Vec<String>,
    /// ARNs of the managed policies attached to the user.
    pub managed_policies: Vec<String>,
    /// Inline policies, by name.
    pub inline_policies: Vec<InlinePolicy>,
    /// Tags (`aws:PrincipalTag/*`), sorted by key.
    pub tags: Vec<(String, String)>,
    /// The user's access key ids, in config order.
    pub access_keys: Vec<String>,
}

/// An IAM group (`[[groups]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The 12-digit account id.
    pub account: String,
    /// The group name.
    pub name: String,
    /// The IAM path.
    pub path: String,
    /// `arn:aws:iam::<account>:group<path><name>`.
    pub arn: String,
    /// `AGPA…`: configured, or derived from the ARN.
    pub unique_id: String,
    /// ARNs of the managed policies attached to the group.
    pub managed_policies: Vec<String>,
    /// Inline policies, by name.
    pub inline_policies: Vec<InlinePolicy>,
}

/// An IAM role (`[[roles]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// The 12-digit account id.
    pub account: String,
    /// The role name.
    pub name: String,
    /// The IAM path.
    pub path: String,
    /// `arn:aws:iam::<account>:role<path><name>`.
    pub arn: String,
    /// `AROA…`: configured, or derived from the ARN.
    pub unique_id: String,
    /// A free-text description.
    pub description: Option<String>,
    /// The parsed trust policy (who may assume the role).
    pub trust_policy: serde_json::Value,
    /// ARNs of the managed policies attached to the role.
    pub managed_policies: Vec<String>,
    /// Inline policies, by name.
    pub inline_policies: Vec<InlinePolicy>,
    /// Longest session `AssumeRole` may grant (1 to 12 hours). Default 1 hour.
    pub max_session_duration: Duration,
    /// Tags (`aws:PrincipalTag/*` for sessions of this role), sorted by key.
    pub tags: Vec<(String, String)>,
}

/// A customer managed policy (`[[policies]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedPolicy {
    /// The policy name.
    pub name: String,
    /// The 12-digit account id.
    pub account: String,
    /// The IAM path.
    pub path: String,
    /// `arn:aws:iam::<account>:policy<path><name>`.
    pub arn: String,
    /// A free-text description.
    pub description: Option<String>,
    /// The parsed policy document (a JSON object with a `Statement`), for the policy engine.
    pub document: serde_json::Value,
}

pub use access::{Access, Mapping, MappingMode, OrgPath, Organization, ResourceEntry};
pub use audit::{AuditSettings, DigestSettings, FileAudit, Overflow, RequestParameters, S3Audit};
pub use sts::{OidcProviderConfig, Revocation, RevocationTarget, Revocations, StsSettings};

/// Where the config came from, for error messages.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// Read from (or standing for) this file: relative paths in it resolve against its directory,
    /// and `TOLLGATE_SECRET_*` and `TOLLGATE_STS_KEY_*` environment variables are read.
    File(&'a Path),
    /// Built into the binary under this name: referenced files are looked up among the embedded
    /// demo files, and the environment is not read.
    Embedded(&'static str),
}

/// One problem in the configuration: `<file>[:<line>[:<column>]]: [<key path>: ]<what is wrong>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<String>,
    message: String,
}

impl Finding {
    /// The file at fault (the config file, a policy file, the secrets file, or `environment`).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The 1-based line, when known (TOML syntax and schema errors).
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The key path, e.g. `users[1].access_keys[0].id`, when the problem has one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration has problems; every one found is listed, one per line.
    #[error("{}", lines(.0))]
    Invalid(Vec<Finding>),
}

impl ConfigError {
    /// Every problem found.
    pub fn findings(&self) -> &[Finding] {
        match self {
            ConfigError::Invalid(findings) => findings,
        }
    }
}

fn lines(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One demo access key, for printing at startup.
#[derive(Debug, Clone)]
pub struct DemoCredential {
    /// The user the key belongs to.
    pub user: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (`Debug` hides it; these are public demo values, printed on purpose).
    pub secret: SecretKey,
    /// Whether the key is usable.
    pub status: KeyStatus,
}

/// Reads and compiles a config file. Relative `secrets_file`, policy, trust-policy and
/// `jwks_file` paths resolve against the config file's directory;
/// `TOLLGATE_SECRET_<ACCESS_KEY_ID>` and `TOLLGATE_STS_KEY_<KID>` environment variables provide
/// or override secrets.
pub fn load_file(path: &Path, generation: u64) -> Result<Snapshot, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Invalid(vec![Finding {
            file: path.display().to_string(),
            line: None,
            column: None,
            key: None,
            message: format!("cannot read: {e}"),
        }])
    })?;
    load_str(&text, Source::File(path), generation)
}

/// Compiles config text. See [`Source`] for how referenced files and secrets are found.
pub fn load_str(text: &str, source: Source<'_>, generation: u64) -> Result<Snapshot, ConfigError> {
    let origin = match source {
        Source::File(path) => Origin::disk(path, &origin::process_env),
        Source::Embedded(name) => Origin::embedded(name, demo::FILES),
    };
    load_with(text, &origin, generation)
}

fn load_with(text: &str, origin: &Origin<'_>, generation: u64) -> Result<Snapshot, ConfigError> {
    let raw = schema::parse(text, origin.label()).map_err(|f| ConfigError::Invalid(vec![f]))?;
    let validated = validate::validate(raw, origin).map_err(ConfigError::Invalid)?;
    let mut snapshot = validate::compile(validated, generation);
    snapshot.sources = origin.files_read();
    Ok(snapshot)
}

/// The built-in demo (`config/demo.toml`, its secrets and policies, embedded in the binary).
pub fn load_demo(generation: u64) -> Result<Snapshot, ConfigError> {
    load_str(
        demo::CONFIG,
        Source::Embedded(demo::CONFIG_NAME),
        generation,
    )
}

/// The demo's access keys (user, key id, secret, status) in config order, for printing at startup.
pub fn demo_credentials() -> Vec<DemoCredential> {
    // The demo is embedded and tested to load; should it ever fail, there is nothing to print.
    let Ok(snapshot) = load_demo(0) else {
        return Vec::new();
    };
    snapshot
        .users
        .iter()
        .flat_map(|user| {
            user.access_keys.iter().filter_map(|id| {
                snapshot.keys.get(id).map(|key| DemoCredential {
                    user: user.name.clone(),
                    access_key_id: key.id.to_string(),
                    secret: key.secret.clone(),
                    status: key.status,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
