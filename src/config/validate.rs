//! Checks a parsed config, collecting every finding, and compiles the result into a [`Snapshot`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::origin::{env_var_name, Origin};
use super::schema::{RawAuth, RawConfig, RawListeners, RawUpstream};
use super::secrets;
use super::Access;
use super::{
    Account, AuthSettings, Finding, Group, Index, InlinePolicy, Listeners, ManagedPolicy, Role,
    Snapshot, StsSettings, UpstreamSettings, UpstreamTarget, User,
};
use crate::credentials::{AccessKey, KeyStatus, KeyStore, Principal, SecretKey};
use crate::policy::{CompiledPolicy, PolicySet, PolicyType};

mod access;
mod audit;
mod sts;

pub(crate) use sts::is_sts_kid;

const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 15 * 60;
const MAX_CLOCK_SKEW_SECONDS: u64 = 60 * 60;
const DEFAULT_MAX_VERIFIED_BODY: u64 = 8 * 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MAX_SESSION_SECONDS: u64 = 3_600;
const MAX_SESSION_SECONDS: u64 = 43_200;
const MAX_TAGS: usize = 50;

/// A config that passed every check; compiling it cannot fail.
pub(crate) struct Validated {
    auth: AuthSettings,
    listeners: Listeners,
    upstream: UpstreamSettings,
    accounts: Vec<Account>,
    users: Vec<User>,
    groups: Vec<Group>,
    roles: Vec<Role>,
    policies: Vec<ManagedPolicy>,
    keys: Vec<ValidKey>,
    access: Access,
    sts: Option<StsSettings>,
    audit: super::AuditSettings,
    ext_authz: super::ExtAuthzSettings,
    limits: super::Limits,
    tls: Option<crate::tls::TlsSettings>,
    warnings: Vec<Finding>,
}

/// The secrets file, when one is named: its label, and what it holds (`None` when it could not
/// be read or parsed; that finding is already reported).
type SecretsSource = Option<(String, Option<secrets::SecretsFile>)>;

struct ValidKey {
    user: usize,
    id: String,
    status: KeyStatus,
    secret: SecretKey,
}

/// Checks everything, reading referenced files and secrets through `origin`. Returns every
/// finding when anything is wrong.
pub(crate) fn validate(raw: RawConfig, origin: &Origin<'_>) -> Result<Validated, Vec<Finding>> {
    let mut check = Check {
        origin,
        findings: Vec::new(),
        warnings: Vec::new(),
        accounts: Vec::new(),
        policy_arns: HashMap::new(),
        policy_names: HashMap::new(),
        group_arns: HashMap::new(),
        unique_ids: HashMap::new(),
    };
    let mut raw = raw;
    let trusted_proxies = std::mem::take(&mut raw.auth.trusted_proxies);
    let auth = check.auth(raw.auth);
    let listeners = check.listeners(raw.listeners);
    let upstream = check.upstream(raw.upstream, origin);
    let accounts = check.accounts(raw.accounts);
    let policies = check.policies(raw.policies);
    let groups = check.groups(raw.groups);
    let (users, key_refs) = check.users(raw.users);
    let roles = check.roles(raw.roles);
    let access = check.access(
        raw.organization,
        raw.resources,
        raw.mappings,
        &accounts,
        trusted_proxies,
    );
    let secrets_file = check.secrets_file(raw.secrets_file.as_deref());
    let keys = check.secrets(&secrets_file, key_refs);
    let sts = check.sts(raw.sts, raw.oidc_providers, &secrets_file, &users, &roles);
    let audit = check.audit(raw.audit, &secrets_file);
    let ext_authz = check.ext_authz(raw.ext_authz);
    let limits = check.limits(raw.limits);
    let tls = check.tls(raw.tls, origin);
    match (check.findings.is_empty(), auth, upstream, audit) {
        (true, Some(auth), Some(upstream), Some(audit)) => Ok(Validated {
            auth,
            listeners,
            upstream,
            accounts,
            users,
            groups,
            roles,
            policies,
            keys,
            access,
            sts,
            audit,
            ext_authz,
            limits,
            tls,
            warnings: check.warnings,
        }),
        _ => Err(check.findings),
    }
}

/// Builds the immutable snapshot.
pub(crate) fn compile(v: Validated, generation: u64) -> Snapshot {
    let principals: Vec<Arc<Principal>> = v
        .users
        .iter()
        .map(|u| {
            Arc::new(Principal::iam_user(
                u.arn.clone(),
                u.account.clone(),
                u.name.clone(),
                u.unique_id.clone(),
                u.tags.clone(),
            ))
        })
        .collect();
    let keys = KeyStore::new(v.keys.into_iter().filter_map(|k| {
        principals.get(k.user).map(|principal| AccessKey {
            id: Arc::from(k.id),
            secret: k.secret,
            status: k.status,
            principal: Arc::clone(principal),
        })
    }));
    fn by<T>(items: &[T], key: impl Fn(&T) -> &String) -> super::FastMap<String, usize> {
        items
            .iter()
            .enumerate()
            .map(|(i, t)| (key(t).clone(), i))
            .collect()
    }
    let compiled = compile_policies(&v.users, &v.groups, &v.roles, &v.policies);
    let index = Index {
        identity_sets: compiled.identity_sets.into_iter().collect(),
        compiled_policies: compiled.managed.into_iter().collect(),
        trust_policies: compiled.trust.into_iter().collect(),
        accounts: by(&v.accounts, |a| &a.id),
        users: by(&v.users, |u| &u.arn),
        groups: by(&v.groups, |g| &g.arn),
        roles: by(&v.roles, |r| &r.arn),
        policies: by(&v.policies, |p| &p.arn),
    };
    Snapshot {
        generation,
        keys,
        auth: v.auth,
        listeners: v.listeners,
        upstream: v.upstream,
        accounts: v.accounts,
        users: v.users,
        groups: v.groups,
        roles: v.roles,
        policies: v.policies,
        policy_warnings: v.warnings,
        access: v.access,
        sts: v.sts,
        audit: v.audit,
        ext_authz: v.ext_authz,
        limits: v.limits,
        tls: v.tls,
        sources: Vec::new(),
        index,
    }
}

struct CompiledPolicies {
    managed: HashMap<String, Arc<CompiledPolicy>>,
    identity_sets: HashMap<String, Arc<PolicySet>>,
    /// Role ARN → its trust policy.
    trust: HashMap<String, Arc<PolicySet>>,
}

/// Compiles every managed policy once and indexes each user's (own + groups') and each role's
/// identity policies into a [`PolicySet`]; compiles each role's trust policy.
fn compile_policies(
    users: &[User],
    groups: &[Group],
    roles: &[Role],
    policies: &[ManagedPolicy],
) -> CompiledPolicies {
    let compile_as = |id: String, doc: &serde_json::Value, ty: PolicyType| {
        crate::policy::parse_policy_value(doc, ty)
            .document
            .map(|d| Arc::new(CompiledPolicy::compile(id, ty, &d)))
    };
    let compile = |id: String, doc: &serde_json::Value| compile_as(id, doc, PolicyType::Identity);
    let managed: HashMap<String, Arc<CompiledPolicy>> = policies
        .iter()
        .filter_map(|p| compile(p.arn.clone(), &p.document).map(|c| (p.arn.clone(), c)))
        .collect();
    let inline = |owner: &str, list: &[InlinePolicy]| -> Vec<Arc<CompiledPolicy>> {
        list.iter()
            .filter_map(|p| compile(format!("{owner}/{}", p.name), &p.document))
            .collect()
    };
    let attached = |arns: &[String]| -> Vec<Arc<CompiledPolicy>> {
        arns.iter()
            .filter_map(|a| managed.get(a).cloned())
            .collect()
    };
    let group_by_arn: HashMap<&str, &Group> = groups.iter().map(|g| (g.arn.as_str(), g)).collect();
    let mut identity_sets = HashMap::new();
    for u in users {
        let mut set = attached(&u.managed_policies);
        set.extend(inline(&u.arn, &u.inline_policies));
        for g in u.groups.iter().filter_map(|g| group_by_arn.get(g.as_str())) {
            set.extend(attached(&g.managed_policies));
            set.extend(inline(&g.arn, &g.inline_policies));
        }
        identity_sets.insert(u.arn.clone(), Arc::new(PolicySet::new(set)));
    }
    let mut trust = HashMap::new();
    for r in roles {
        let mut set = attached(&r.managed_policies);
        set.extend(inline(&r.arn, &r.inline_policies));
        identity_sets.insert(r.arn.clone(), Arc::new(PolicySet::new(set)));
        // Validation refused trust policies with errors, so this always compiles.
        let id = format!("{}/trust-policy", r.arn);
        if let Some(policy) = compile_as(id, &r.trust_policy, PolicyType::Trust) {
            trust.insert(r.arn.clone(), Arc::new(PolicySet::new(vec![policy])));
        }
    }
    CompiledPolicies {
        managed,
        identity_sets,
        trust,
    }
}

/// An access key awaiting its secret: (user index, key path, id, status). The user index is
/// `None` when the user itself was refused (its keys are still checked for findings).
type KeyRef = (Option<usize>, String, String, KeyStatus);

struct Check<'o> {
    origin: &'o Origin<'o>,
    findings: Vec<Finding>,
    /// Policy warnings (the config is still valid).
    warnings: Vec<Finding>,
    /// Valid, distinct account ids.
    accounts: Vec<String>,
    /// Policy ARN → account.
    policy_arns: HashMap<String, String>,
    /// (account, policy name) → ARN.
    policy_names: HashMap<(String, String), String>,
    /// (account, group name) → ARN.
    group_arns: HashMap<(String, String), String>,
    /// Unique id → key path of its owner.
    unique_ids: HashMap<String, String>,
}

/// What kind of IAM name is checked, for limits and messages.
#[derive(Clone, Copy)]
enum NameKind {
    User,
    Group,
    Role,
    Policy,
}

impl NameKind {
    fn what(self) -> &'static str {
        match self {
            NameKind::User => "user",
            NameKind::Group => "group",
            NameKind::Role => "role",
            NameKind::Policy => "policy",
        }
    }

    fn max_len(self) -> usize {
        match self {
            NameKind::User | NameKind::Role => 64,
            NameKind::Group | NameKind::Policy => 128,
        }
    }
}

impl Check<'_> {
    fn at(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding {
            file: self.origin.label().to_owned(),
            line: None,
            column: None,
            key: Some(key.into()),
            message: message.into(),
        });
    }

    fn auth(&mut self, raw: RawAuth) -> Option<AuthSettings> {
        let regions = self.names_list("auth.regions", raw.regions, "region", "[\"us-east-1\"]");
        let services = self.names_list(
            "auth.services",
            raw.services,
            "service",
            "[\"execute-api\"]",
        );
        let mut unsigned = Vec::new();
        for (i, service) in raw.unsigned_payload_services.into_iter().enumerate() {
            if !services.contains(&service) {
                self.at(
                    format!("auth.unsigned_payload_services[{i}]"),
                    format!("`{service}` is not listed in auth.services"),
                );
            }
            unsigned.push(service);
        }
        let skew = raw.clock_skew_seconds.unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS);
        if !(1..=MAX_CLOCK_SKEW_SECONDS).contains(&skew) {
            self.at(
                "auth.clock_skew_seconds",
                format!("must be 1 to {MAX_CLOCK_SKEW_SECONDS} (AWS allows 900)"),
            );
        }
        if regions.is_empty() || services.is_empty() {
            return None;
        }
        Some(AuthSettings {
            regions: regions.into_iter().collect(),
            services: services.into_iter().collect(),
            clock_skew: Duration::from_secs(skew),
            max_verified_body: raw
                .max_verified_body_bytes
                .unwrap_or(DEFAULT_MAX_VERIFIED_BODY),
            unsigned_payload_services: unsigned.into_iter().collect(),
            expose_signing_details: raw.expose_signing_details,
        })
    }

    /// A non-empty list of `[a-z0-9-]+` names (regions, services).
    fn names_list(
        &mut self,
        key: &str,
        names: Vec<String>,
        what: &str,
        example: &str,
    ) -> HashSet<String> {
        if names.is_empty() {
            self.at(
                key,
                format!("must list at least one {what}, e.g. {example}"),
            );
        }
        let mut set = HashSet::new();
        for (i, name) in names.into_iter().enumerate() {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                self.at(
                    format!("{key}[{i}]"),
                    format!(
                        "`{name}` is not a {what} name (lower-case letters, digits and hyphens)"
                    ),
                );
            }
            set.insert(name);
        }
        set
    }

    fn tls(
        &mut self,
        raw: Option<super::schema::RawTls>,
        origin: &Origin<'_>,
    ) -> Option<crate::tls::TlsSettings> {
        let raw = raw?;
        let (Some(cert), Some(key)) = (raw.cert_file, raw.key_file) else {
            self.at("tls", "needs both `cert_file` and `key_file` (PEM)");
            return None;
        };
        let settings = crate::tls::TlsSettings {
            cert_file: origin.resolve_path(&cert),
            key_file: origin.resolve_path(&key),
            client_ca_file: raw.client_ca_file.map(|c| origin.resolve_path(&c)),
        };
        if let Err(e) = crate::tls::server_config(&settings) {
            self.at("tls", format!("cannot load the certificate: {e}"));
            return None;
        }
        Some(settings)
    }

    fn limits(&mut self, raw: super::schema::RawLimits) -> super::Limits {
        let d = super::Limits::default();
        let mut within =
            |key: &str, value: Option<u64>, min: u64, max: u64, default: u64| match value {
                Some(v) if v < min || v > max => {
                    self.at(
                        format!("limits.{key}"),
                        format!("{v} is out of range: {min} to {max}"),
                    );
                    default
                }
                Some(v) => v,
                None => default,
            };
        let timeout = within(
            "header_read_timeout_ms",
            raw.header_read_timeout_ms,
            1,
            3_600_000,
            u64::try_from(d.header_read_timeout.as_millis()).unwrap_or(10_000),
        );
        let header_bytes = within(
            "max_header_bytes",
            raw.max_header_bytes,
            8192,
            16 * 1024 * 1024,
            u64::from(d.max_header_bytes),
        );
        let headers = within("max_headers", raw.max_headers, 1, 10_000, 100);
        let uri = within(
            "max_uri_bytes",
            raw.max_uri_bytes,
            256,
            16 * 1024 * 1024,
            u64::try_from(d.max_uri_bytes).unwrap_or(16 * 1024),
        );
        let idle = within(
            "idle_timeout_seconds",
            raw.idle_timeout_seconds,
            1,
            86_400,
            d.idle_timeout.as_secs(),
        );
        let connections = within(
            "max_connections",
            raw.max_connections,
            1,
            10_000_000,
            10_000,
        );
        let body = within(
            "max_body_bytes",
            raw.max_body_bytes,
            1,
            u64::MAX,
            d.max_body_bytes,
        );
        let in_flight = within("max_in_flight", raw.max_in_flight, 1, 10_000_000, 4096);
        let drain = within(
            "drain_timeout_seconds",
            raw.drain_timeout_seconds,
            0,
            3600,
            d.drain_timeout.as_secs(),
        );
        let flush = within(
            "audit_flush_timeout_seconds",
            raw.audit_flush_timeout_seconds,
            1,
            3600,
            d.audit_flush_timeout.as_secs(),
        );
        super::Limits {
            header_read_timeout: std::time::Duration::from_millis(timeout),
            max_header_bytes: u32::try_from(header_bytes).unwrap_or(d.max_header_bytes),
            max_headers: usize::try_from(headers).unwrap_or(d.max_headers),
            max_uri_bytes: usize::try_from(uri).unwrap_or(d.max_uri_bytes),
            idle_timeout: std::time::Duration::from_secs(idle),
            max_connections: usize::try_from(connections).unwrap_or(d.max_connections),
            max_body_bytes: body,
            max_in_flight: usize::try_from(in_flight).unwrap_or(d.max_in_flight),
            drain_timeout: std::time::Duration::from_secs(drain),
            audit_flush_timeout: std::time::Duration::from_secs(flush),
        }
    }

    fn ext_authz(&mut self, raw: super::schema::RawExtAuthz) -> super::ExtAuthzSettings {
        let defaults = super::ExtAuthzSettings::default();
        let max_request_bytes = match raw.max_request_bytes {
            Some(0) => {
                self.at(
                    "ext_authz.max_request_bytes",
                    "must be Envoy's with_request_body.max_request_bytes (at least 1)".to_owned(),
                );
                defaults.max_request_bytes
            }
            Some(n) => n,
            None => defaults.max_request_bytes,
        };
        super::ExtAuthzSettings {
            trust_unsent_payload: raw.trust_unsent_payload,
            max_request_bytes,
        }
    }

    fn listeners(&mut self, raw: RawListeners) -> Listeners {
        let defaults = Listeners::default();
        let proxy = self.socket_addr("listeners.proxy", raw.proxy, defaults.proxy);
        let admin = self.socket_addr("listeners.admin", raw.admin, defaults.admin);
        if proxy == admin && proxy.port() != 0 {
            self.at(
                "listeners.admin",
                format!("`{admin}` is also the proxy listener's address"),
            );
        }
        let mut taken = vec![("proxy", proxy), ("admin", admin)];
        let mut optional = |check: &mut Self, name: &'static str, raw: Option<String>| {
            let key = format!("listeners.{name}");
            let addr = raw.map(|text| check.socket_addr(&key, Some(text), defaults.proxy))?;
            if let Some((other, _)) = taken.iter().find(|(_, a)| *a == addr && addr.port() != 0) {
                check.at(
                    &key,
                    format!("`{addr}` is also the {other} listener's address"),
                );
            }
            taken.push((name, addr));
            Some(addr)
        };
        let api = optional(self, "api", raw.api);
        let ext_authz_grpc = optional(self, "ext_authz_grpc", raw.ext_authz_grpc);
        let ext_authz_http = optional(self, "ext_authz_http", raw.ext_authz_http);
        Listeners {
            proxy,
            admin,
            api,
            ext_authz_grpc,
            ext_authz_http,
        }
    }

    fn socket_addr(&mut self, key: &str, raw: Option<String>, default: SocketAddr) -> SocketAddr {
        let Some(text) = raw else {
            return default;
        };
        text.parse().unwrap_or_else(|_| {
            self.at(
                key,
                format!("`{text}` is not a socket address (ip:port, e.g. 127.0.0.1:8080)"),
            );
            default
        })
    }

    fn upstream(&mut self, raw: RawUpstream, origin: &Origin<'_>) -> Option<UpstreamSettings> {
        let connect = self.millis(
            "upstream.connect_timeout_ms",
            raw.connect_timeout_ms,
            DEFAULT_CONNECT_TIMEOUT_MS,
        );
        let request = self.millis(
            "upstream.request_timeout_ms",
            raw.request_timeout_ms,
            DEFAULT_REQUEST_TIMEOUT_MS,
        );
        let target = match raw.url {
            None => {
                self.at(
                    "upstream.url",
                    "is required: `http://host:port`, or `builtin:echo` for a test upstream",
                );
                None
            }
            Some(url) => match upstream_target(&url) {
                Ok(target) => Some(target),
                Err(message) => {
                    self.at("upstream.url", message);
                    None
                }
            },
        }?;
        let ca_file = raw.ca_file.map(|f| origin.resolve_path(&f));
        if let Some(ca) = &ca_file {
            if let Err(e) = crate::proxy::upstream_tls_config(Some(ca)) {
                self.at("upstream.ca_file", e);
            }
        }
        Some(UpstreamSettings {
            target,
            connect_timeout: connect,
            request_timeout: request,
            host: raw.host,
            ca_file,
        })
    }

    fn millis(&mut self, key: &str, raw: Option<u64>, default: u64) -> Duration {
        let ms = raw.unwrap_or(default);
        if ms == 0 {
            self.at(key, "must be at least 1");
        }
        Duration::from_millis(ms)
    }

    fn accounts(&mut self, raw: Vec<super::schema::RawAccount>) -> Vec<Account> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut accounts = Vec::new();
        for (i, a) in raw.into_iter().enumerate() {
            let key = format!("accounts[{i}]");
            if !is_account_id(&a.id) {
                self.at(format!("{key}.id"), format!("`{}` {NOT_ACCOUNT_ID}", a.id));
                continue;
            }
            if let Some(first) = seen.get(&a.id) {
                self.at(
                    format!("{key}.id"),
                    format!("duplicate account id `{}` (also accounts[{first}])", a.id),
                );
                continue;
            }
            if a.name.trim().is_empty() {
                self.at(format!("{key}.name"), "must not be empty");
            }
            seen.insert(a.id.clone(), i);
            self.accounts.push(a.id.clone());
            accounts.push(Account {
                id: a.id,
                name: a.name,
                parent: a.parent,
                scps: a.scps,
                rcps: a.rcps,
            });
        }
        accounts
    }

    /// The account an entity belongs to; `None` (with a finding) when unusable.
    fn account_of(&mut self, key: &str, given: Option<&str>) -> Option<String> {
        match given {
            Some(id) if !is_account_id(id) => {
                self.at(format!("{key}.account"), format!("`{id}` {NOT_ACCOUNT_ID}"));
                None
            }
            Some(id) if !self.accounts.iter().any(|a| a == id) => {
                self.at(
                    format!("{key}.account"),
                    format!("account `{id}` is not defined in [[accounts]]"),
                );
                None
            }
            Some(id) => Some(id.to_owned()),
            None => match self.accounts.as_slice() {
                [only] => Some(only.clone()),
                _ => {
                    self.at(
                        format!("{key}.account"),
                        "is required unless [[accounts]] defines exactly one account",
                    );
                    None
                }
            },
        }
    }

    fn name(&mut self, key: &str, name: &str, kind: NameKind) {
        let valid = (1..=kind.max_len()).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !valid {
            self.at(
                format!("{key}.name"),
                format!(
                    "`{name}` is not a valid {} name (1 to {} of A-Z a-z 0-9 + = , . @ _ -)",
                    kind.what(),
                    kind.max_len()
                ),
            );
        }
    }

    fn path(&mut self, key: &str, path: Option<String>) -> String {
        let path = path.unwrap_or_else(|| "/".to_owned());
        let valid = path.len() <= 512
            && path.starts_with('/')
            && path.ends_with('/')
            && path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
        if !valid {
            self.at(
                format!("{key}.path"),
                format!("`{path}` is not an IAM path (`/` or `/division/team/`)"),
            );
        }
        path
    }

    /// The configured unique id (checked) or one derived from the ARN.
    fn unique_id(&mut self, key: &str, given: Option<String>, prefix: &str, arn: &str) -> String {
        let id = match given {
            Some(id) => {
                let rest = id.strip_prefix(prefix).unwrap_or("");
                let valid = (16..=124).contains(&rest.len())
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                if !valid {
                    self.at(
                        format!("{key}.unique_id"),
                        format!(
                            "`{id}` is not a unique id ({prefix} followed by at least 16 \
                             upper-case letters or digits)"
                        ),
                    );
                }
                id
            }
            None => derived_unique_id(prefix, arn),
        };
        if let Some(other) = self.unique_ids.get(&id) {
            let message = format!("duplicate unique id `{id}` (also {other})");
            self.at(format!("{key}.unique_id"), message);
        } else {
            self.unique_ids.insert(id.clone(), key.to_owned());
        }
        id
    }

    /// Records `name` in `seen` (case-insensitively, as IAM does), or reports a duplicate.
    fn unique_name(
        &mut self,
        seen: &mut HashMap<(String, String), String>,
        key: &str,
        account: &str,
        name: &str,
        what: &str,
    ) {
        let slot = (account.to_owned(), name.to_ascii_lowercase());
        if let Some(first) = seen.get(&slot) {
            let message =
                format!("duplicate {what} name `{name}` in account `{account}` (also {first})");
            self.at(format!("{key}.name"), message);
        } else {
            seen.insert(slot, key.to_owned());
        }
    }

    fn policies(&mut self, raw: Vec<super::schema::RawPolicy>) -> Vec<ManagedPolicy> {
        let mut seen = HashMap::new();
        let mut policies = Vec::new();
        for (i, p) in raw.into_iter().enumerate() {
            let key = format!("policies[{i}]");
            let account = self.account_of(&key, p.account.as_deref());
            self.name(&key, &p.name, NameKind::Policy);
            let path = self.path(&key, p.path);
            let document = match (p.file, p.document) {
                (Some(file), None) => {
                    self.document_file(&format!("{key}.file"), &file, PolicyType::Identity)
                }
                (None, Some(text)) => {
                    self.document_text(&format!("{key}.document"), &text, PolicyType::Identity)
                }
                (Some(_), Some(_)) => {
                    self.at(&key, "give either `file` or `document`, not both");
                    None
                }
                (None, None) => {
                    self.at(
                        &key,
                        "needs `file = \"policy.json\"` or `document = '''{…}'''`",
                    );
                    None
                }
            };
            let Some(account) = account else { continue };
            self.unique_name(&mut seen, &key, &account, &p.name, "policy");
            let arn = format!("arn:aws:iam::{account}:policy{path}{}", p.name);
            self.policy_arns.insert(arn.clone(), account.clone());
            self.policy_names
                .insert((account.clone(), p.name.clone()), arn.clone());
            if let Some(document) = document {
                policies.push(ManagedPolicy {
                    name: p.name,
                    account,
                    path,
                    arn,
                    description: p.description,
                    document,
                });
            }
        }
        policies
    }

    /// Resolves managed policy references (names in the entity's account, or ARNs) to ARNs.
    fn policy_refs(&mut self, key: &str, account: &str, refs: Vec<String>) -> Vec<String> {
        let mut arns = Vec::new();
        for (i, reference) in refs.into_iter().enumerate() {
            let item = format!("{key}.policies[{i}]");
            if reference.starts_with("arn:") {
                match self.policy_arns.get(&reference) {
                    Some(owner) if owner == account => arns.push(reference),
                    Some(owner) => {
                        let message = format!(
                            "policy `{reference}` belongs to account `{owner}`, not `{account}`"
                        );
                        self.at(item, message);
                    }
                    None => self.at(
                        item,
                        format!("unknown policy `{reference}` (not defined in [[policies]])"),
                    ),
                }
            } else if let Some(arn) = self
                .policy_names
                .get(&(account.to_owned(), reference.clone()))
            {
                arns.push(arn.clone());
            } else {
                self.at(
                    item,
                    format!(
                        "unknown policy `{reference}` (no [[policies]] entry with that name in \
                         account `{account}`)"
                    ),
                );
            }
        }
        arns
    }

    fn inline_policies(&mut self, key: &str, raw: BTreeMap<String, String>) -> Vec<InlinePolicy> {
        let mut policies = Vec::new();
        for (name, file) in raw {
            let item = format!(
                "{key}.inline_policies.{}",
                super::locate::display_segment(&name)
            );
            let valid = (1..=128).contains(&name.chars().count())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !valid {
                self.at(
                    &item,
                    format!("`{name}` is not a valid policy name (1 to 128 of A-Z a-z 0-9 + = , . @ _ -)"),
                );
            }
            if let Some(document) = self.document_file(&item, &file, PolicyType::Identity) {
                policies.push(InlinePolicy { name, document });
            }
        }
        policies
    }

    fn document_file(
        &mut self,
        key: &str,
        reference: &str,
        ty: PolicyType,
    ) -> Option<serde_json::Value> {
        let label = self.origin.file_label(reference);
        match self.origin.read_text(reference) {
            Ok(text) => self.document(key, &text, &format!("`{label}`"), ty),
            Err(message) => {
                self.at(key, message);
                None
            }
        }
    }

    fn document_text(
        &mut self,
        key: &str,
        text: &str,
        ty: PolicyType,
    ) -> Option<serde_json::Value> {
        self.document(key, text, "the document", ty)
    }

    /// Parses a policy document: JSON, an object, with a `Statement`.
    fn document(
        &mut self,
        key: &str,
        text: &str,
        shown: &str,
        ty: PolicyType,
    ) -> Option<serde_json::Value> {
        match serde_json::from_str::<serde_json::Value>(text) {
            Err(e) => {
                self.at(key, format!("{shown} is not valid JSON: {e}"));
                None
            }
            Ok(value) if value.get("Statement").is_none() => {
                self.at(
                    key,
                    format!("{shown} is not a policy document (a JSON object with a `Statement`)"),
                );
                None
            }
            Ok(value) => {
                // The IAM policy grammar: errors refuse the config, warnings are reported by
                // `tollgate check`.
                let parsed = crate::policy::parse_policy_value(&value, ty);
                let mut ok = true;
                for f in parsed.findings {
                    let message = format!("{shown}: {}: {}", f.path, f.message);
                    match f.severity {
                        crate::policy::Severity::Error => {
                            ok = false;
                            self.at(key, message);
                        }
                        crate::policy::Severity::Warning => self.warnings.push(Finding {
                            file: self.origin.label().to_owned(),
                            line: None,
                            column: None,
                            key: Some(key.to_owned()),
                            message,
                        }),
                    }
                }
                ok.then_some(value)
            }
        }
    }

    fn tags(&mut self, key: &str, raw: BTreeMap<String, String>) -> Vec<(String, String)> {
        if raw.len() > MAX_TAGS {
            self.at(
                format!("{key}.tags"),
                format!("at most {MAX_TAGS} tags are allowed"),
            );
        }
        let tag_chars = |s: &str| {
            s.chars()
                .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
        };
        let mut lower = HashSet::new();
        for (tag, value) in &raw {
            let item = format!("{key}.tags.{}", super::locate::display_segment(tag));
            if !(1..=128).contains(&tag.chars().count()) || !tag_chars(tag) {
                self.at(
                    &item,
                    "tag keys are 1 to 128 letters, digits, spaces and _ . : / = + - @",
                );
            } else if tag.to_ascii_lowercase().starts_with("aws:") {
                self.at(&item, "tag keys starting with `aws:` are reserved");
            } else if !lower.insert(tag.to_lowercase()) {
                self.at(&item, "another tag key differs only in case");
            }
            if value.chars().count() > 256 || !tag_chars(value) {
                self.at(
                    &item,
                    "tag values are 0 to 256 letters, digits, spaces and _ . : / = + - @",
                );
            }
        }
        raw.into_iter().collect()
    }

    fn groups(&mut self, raw: Vec<super::schema::RawGroup>) -> Vec<Group> {
        let mut seen = HashMap::new();
        let mut groups = Vec::new();
        for (i, g) in raw.into_iter().enumerate() {
            let key = format!("groups[{i}]");
            let account = self.account_of(&key, g.account.as_deref());
            self.name(&key, &g.name, NameKind::Group);
            let path = self.path(&key, g.path);
            let inline_policies = self.inline_policies(&key, g.inline_policies);
            let Some(account) = account else { continue };
            self.unique_name(&mut seen, &key, &account, &g.name, "group");
            let arn = format!("arn:aws:iam::{account}:group{path}{}", g.name);
            let unique_id = self.unique_id(&key, g.unique_id, "AGPA", &arn);
            let managed_policies = self.policy_refs(&key, &account, g.policies);
            self.group_arns
                .insert((account.clone(), g.name.clone()), arn.clone());
            groups.push(Group {
                account,
                name: g.name,
                path,
                arn,
                unique_id,
                managed_policies,
                inline_policies,
            });
        }
        groups
    }

    fn users(&mut self, raw: Vec<super::schema::RawUser>) -> (Vec<User>, Vec<KeyRef>) {
        let mut seen = HashMap::new();
        let mut key_ids: HashMap<String, String> = HashMap::new();
        let mut users = Vec::new();
        let mut keys = Vec::new();
        for (i, u) in raw.into_iter().enumerate() {
            let key = format!("users[{i}]");
            let account = self.account_of(&key, u.account.as_deref());
            self.name(&key, &u.name, NameKind::User);
            let path = self.path(&key, u.path);
            let inline_policies = self.inline_policies(&key, u.inline_policies);
            let tags = self.tags(&key, u.tags);
            let mut access_keys = Vec::new();
            let mut user_keys = Vec::new();
            for (j, k) in u.access_keys.into_iter().enumerate() {
                let item = format!("{key}.access_keys[{j}].id");
                if !is_access_key_id(&k.id) {
                    self.at(
                        &item,
                        format!(
                            "`{}` is not an access key id (AKIA followed by 16 upper-case \
                             letters or digits)",
                            k.id
                        ),
                    );
                    continue;
                }
                if let Some(first) = key_ids.get(&k.id) {
                    let message = format!("duplicate access key id `{}` (also {first})", k.id);
                    self.at(&item, message);
                    continue;
                }
                key_ids.insert(k.id.clone(), item.clone());
                access_keys.push(k.id.clone());
                user_keys.push((item, k.id, k.status));
            }
            let Some(account) = account else {
                keys.extend(
                    user_keys
                        .into_iter()
                        .map(|(item, id, status)| (None, item, id, status)),
                );
                continue;
            };
            self.unique_name(&mut seen, &key, &account, &u.name, "user");
            let arn = format!("arn:aws:iam::{account}:user{path}{}", u.name);
            let unique_id = self.unique_id(&key, u.unique_id, "AIDA", &arn);
            let managed_policies = self.policy_refs(&key, &account, u.policies);
            let mut groups = Vec::new();
            for (j, group) in u.groups.into_iter().enumerate() {
                match self.group_arns.get(&(account.clone(), group.clone())) {
                    Some(arn) => groups.push(arn.clone()),
                    None => self.at(
                        format!("{key}.groups[{j}]"),
                        format!(
                            "unknown group `{group}` (no [[groups]] entry with that name in \
                             account `{account}`)"
                        ),
                    ),
                }
            }
            keys.extend(
                user_keys
                    .into_iter()
                    .map(|(item, id, status)| (Some(users.len()), item, id, status)),
            );
            users.push(User {
                account,
                name: u.name,
                path,
                arn,
                unique_id,
                groups,
                managed_policies,
                inline_policies,
                tags,
                access_keys,
            });
        }
        (users, keys)
    }

    fn roles(&mut self, raw: Vec<super::schema::RawRole>) -> Vec<Role> {
        let mut seen = HashMap::new();
        let mut roles = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let key = format!("roles[{i}]");
            let account = self.account_of(&key, r.account.as_deref());
            self.name(&key, &r.name, NameKind::Role);
            let path = self.path(&key, r.path);
            let inline_policies = self.inline_policies(&key, r.inline_policies);
            let tags = self.tags(&key, r.tags);
            let trust_policy = match r.trust_policy {
                Some(file) => {
                    self.document_file(&format!("{key}.trust_policy"), &file, PolicyType::Trust)
                }
                None => {
                    self.at(
                        format!("{key}.trust_policy"),
                        "is required: a JSON policy file saying who may assume the role",
                    );
                    None
                }
            };
            let seconds = r
                .max_session_duration_seconds
                .unwrap_or(DEFAULT_MAX_SESSION_SECONDS);
            if !(DEFAULT_MAX_SESSION_SECONDS..=MAX_SESSION_SECONDS).contains(&seconds) {
                self.at(
                    format!("{key}.max_session_duration_seconds"),
                    format!(
                        "must be {DEFAULT_MAX_SESSION_SECONDS} to {MAX_SESSION_SECONDS} (1 to 12 hours)"
                    ),
                );
            }
            let Some(account) = account else { continue };
            self.unique_name(&mut seen, &key, &account, &r.name, "role");
            let arn = format!("arn:aws:iam::{account}:role{path}{}", r.name);
            let unique_id = self.unique_id(&key, r.unique_id, "AROA", &arn);
            let managed_policies = self.policy_refs(&key, &account, r.policies);
            let Some(trust_policy) = trust_policy else {
                continue;
            };
            roles.push(Role {
                account,
                name: r.name,
                path,
                arn,
                unique_id,
                description: r.description,
                trust_policy,
                managed_policies,
                inline_policies,
                max_session_duration: Duration::from_secs(seconds),
                tags,
            });
        }
        roles
    }

    /// Reads and parses the secrets file, if one is named.
    fn secrets_file(&mut self, secrets_file: Option<&str>) -> SecretsSource {
        secrets_file.map(|reference| {
            let label = self.origin.file_label(reference);
            let secrets = match self.origin.read_secrets(reference) {
                Ok(text) => secrets::parse(&text, &label, &mut self.findings),
                Err(message) => {
                    self.at("secrets_file", message);
                    None
                }
            };
            (label, secrets)
        })
    }

    /// Finds a secret for every access key: `TOLLGATE_SECRET_<ID>` first, then the secrets file.
    fn secrets(&mut self, file: &SecretsSource, refs: Vec<KeyRef>) -> Vec<ValidKey> {
        let mut keys = Vec::new();
        for (user, item, id, status) in refs {
            let env_name = env_var_name(&id);
            let (secret, file_label, key) = match self.origin.env_secret(&id) {
                Some(Ok(secret)) => (secret, "environment".to_owned(), env_name),
                Some(Err(())) => {
                    self.findings.push(Finding {
                        file: "environment".to_owned(),
                        line: None,
                        column: None,
                        key: Some(env_name),
                        message: "is not valid UTF-8".to_owned(),
                    });
                    continue;
                }
                None => match file {
                    Some((label, Some(secrets))) => match secrets.access_keys.get(&id) {
                        Some(secret) => {
                            (secret.clone(), label.clone(), format!("access_keys.{id}"))
                        }
                        None => {
                            let message = format!(
                                "no secret for `{id}`: add it under [access_keys] in `{label}` \
                                 or set {env_name}"
                            );
                            self.at(item, message);
                            continue;
                        }
                    },
                    // The secrets file is unreadable; that finding is already reported.
                    Some((_, None)) => continue,
                    None => {
                        self.at(
                            item,
                            format!(
                                "no secret for `{id}`: set {env_name} or name a `secrets_file`"
                            ),
                        );
                        continue;
                    }
                },
            };
            if let Some(problem) = secrets::check_secret(&secret) {
                self.findings.push(Finding {
                    file: file_label,
                    line: None,
                    column: None,
                    key: Some(key),
                    message: problem.to_owned(),
                });
                continue;
            }
            let Some(user) = user else { continue };
            keys.push(ValidKey {
                user,
                id,
                status,
                secret: SecretKey::new(secret.as_str()),
            });
        }
        keys
    }
}

const NOT_ACCOUNT_ID: &str = "is not an account id (12 digits)";

fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.chars().all(|c| c.is_ascii_digit())
}

/// `AKIA` followed by 16 upper-case letters or digits.
pub(crate) fn is_access_key_id(id: &str) -> bool {
    id.strip_prefix("AKIA").is_some_and(|rest| {
        rest.len() == 16
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    })
}

/// `prefix` + the first 16 base32 characters of SHA-256(ARN): stable across replicas and restarts.
pub(crate) fn derived_unique_id(prefix: &str, arn: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const LEN: usize = 16;
    let digest = Sha256::digest(arn.as_bytes());
    let mut out = String::with_capacity(prefix.len() + LEN);
    out.push_str(prefix);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in digest {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = (acc >> bits) & 31;
            if let Some(&c) = ALPHABET.get(index as usize) {
                out.push(char::from(c));
            }
        }
        acc &= (1 << bits) - 1;
        if out.len() >= prefix.len() + LEN {
            break;
        }
    }
    out.truncate(prefix.len() + LEN);
    out
}

fn upstream_target(url: &str) -> Result<UpstreamTarget, String> {
    if url == "builtin:echo" {
        return Ok(UpstreamTarget::Echo);
    }
    // Never echo a URL that may carry credentials.
    let shown = if url.contains('@') {
        "the url".to_owned()
    } else {
        format!("`{url}`")
    };
    let uri: http::Uri = url.parse().map_err(|_| {
        format!("{shown} is not a url; expected `http://host:port` or `builtin:echo`")
    })?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "scheme `{other}` is not supported; expected `http://host:port`, `https://host:port` or `builtin:echo`"
            ))
        }
        None => {
            return Err(format!(
                "{shown} is not an absolute url; expected `http://host:port` or `builtin:echo`"
            ))
        }
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("{shown} has no host"));
    };
    if authority.as_str().contains('@') {
        return Err("the url must not contain credentials".to_owned());
    }
    if authority.host().is_empty() {
        return Err(format!("{shown} has no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{shown} has a path or query; give only `http://host:port` (paths are forwarded as \
             the client sent them)"
        ));
    }
    Ok(UpstreamTarget::Url(uri))
}
