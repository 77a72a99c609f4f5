//! Checks `[audit]`: overflow policy, queue, sinks, digest key and the S3 sink's secret.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::super::audit::{
    AuditSettings, DigestSettings, FileAudit, Overflow, RequestParameters, S3Audit,
    DEFAULT_DIGEST_INTERVAL_SECONDS, DEFAULT_FILE_INTERVAL_SECONDS, DEFAULT_FILE_MAX_BYTES,
    DEFAULT_QUEUE_CAPACITY,
};
use super::super::origin::audit_secret_env_var_name;
use super::super::schema::{RawAudit, RawAuditDigests, RawAuditFiles, RawAuditS3};
use super::{is_sts_kid, Check, SecretsSource};
use crate::audit::digest::DigestKey;
use crate::credentials::SecretKey;

/// Largest queue accepted (records; each waiting record holds a few hundred bytes).
const MAX_QUEUE_CAPACITY: u64 = 16 * 1024 * 1024;

impl Check<'_> {
    /// `[audit]`; the default (no sinks) without the section. `None` when anything is wrong
    /// (with findings).
    pub(super) fn audit(
        &mut self,
        raw: Option<RawAudit>,
        file: &SecretsSource,
    ) -> Option<AuditSettings> {
        let Some(raw) = raw else {
            return Some(AuditSettings::default());
        };
        let mut ok = true;
        let overflow = match raw.overflow.as_deref() {
            None | Some("fail-closed") => Overflow::FailClosed,
            Some("drop") => Overflow::Drop,
            Some(other) => {
                self.at(
                    "audit.overflow",
                    format!("`{other}` is not `fail-closed` (the default) or `drop`"),
                );
                ok = false;
                Overflow::FailClosed
            }
        };
        let queue_capacity = match raw.queue_capacity {
            None => DEFAULT_QUEUE_CAPACITY,
            Some(n) if (1..=MAX_QUEUE_CAPACITY).contains(&n) => {
                usize::try_from(n).unwrap_or(DEFAULT_QUEUE_CAPACITY)
            }
            Some(n) => {
                self.at(
                    "audit.queue_capacity",
                    format!("{n} is not between 1 and {MAX_QUEUE_CAPACITY}"),
                );
                ok = false;
                DEFAULT_QUEUE_CAPACITY
            }
        };
        let request_parameters = match raw.request_parameters.as_deref() {
            None | Some("identifiers") => RequestParameters::Identifiers,
            Some("none") => RequestParameters::None,
            Some("full") => RequestParameters::Full,
            Some(other) => {
                self.at(
                    "audit.request_parameters",
                    format!("`{other}` is not `none`, `identifiers` (the default) or `full`"),
                );
                ok = false;
                RequestParameters::Identifiers
            }
        };
        let mut event_sources = super::super::FastMap::default();
        for (service, source) in raw.event_sources {
            let valid = |s: &str| {
                !s.is_empty()
                    && s.len() <= 128
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            };
            if !valid(&service) || !valid(&source) {
                self.at(
                    format!("audit.event_sources.{service}"),
                    "service and event source must be 1 to 128 of A-Z a-z 0-9 . - _ \
                     (e.g. orders = \"orders.internal.example.com\")",
                );
                ok = false;
                continue;
            }
            event_sources.insert(service, Arc::from(source));
        }
        let files = raw.files.and_then(|f| self.audit_files(f));
        let s3 = raw.s3.and_then(|s| self.audit_s3(s, file));
        let digests = raw.digests.and_then(|d| self.audit_digests(d, file));
        if !ok {
            return None;
        }
        Some(AuditSettings {
            overflow,
            queue_capacity,
            request_parameters,
            event_sources,
            stdout: raw.stdout,
            files,
            s3,
            digests,
        })
    }

    fn interval(&mut self, key: &str, raw: Option<u64>, default: u64) -> u64 {
        match raw {
            None => default,
            Some(n) if (1..=86_400).contains(&n) => n,
            Some(n) => {
                self.at(key, format!("{n} is not between 1 and 86400 seconds"));
                default
            }
        }
    }

    fn max_bytes(&mut self, key: &str, raw: Option<u64>) -> u64 {
        match raw {
            None => DEFAULT_FILE_MAX_BYTES,
            Some(n) if (1024..=1024 * 1024 * 1024).contains(&n) => n,
            Some(n) => {
                self.at(key, format!("{n} is not between 1024 and 1073741824 bytes"));
                DEFAULT_FILE_MAX_BYTES
            }
        }
    }

    fn prefix(&mut self, key: &str, raw: Option<String>) -> Option<String> {
        let prefix = raw?.trim_matches('/').to_owned();
        let valid = prefix.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        });
        if !valid {
            self.at(
                key,
                "must be path segments of A-Z a-z 0-9 . - _ separated by `/` (no `..`)",
            );
            return None;
        }
        Some(prefix)
    }

    fn audit_files(&mut self, raw: RawAuditFiles) -> Option<FileAudit> {
        let interval_seconds = self.interval(
            "audit.files.interval_seconds",
            raw.interval_seconds,
            DEFAULT_FILE_INTERVAL_SECONDS,
        );
        let max_bytes = self.max_bytes("audit.files.max_bytes", raw.max_bytes);
        let prefix = self.prefix("audit.files.prefix", raw.prefix);
        let Some(dir) = raw.dir.filter(|d| !d.trim().is_empty()) else {
            self.at(
                "audit.files.dir",
                "is required: the directory the CloudTrail-layout files go under",
            );
            return None;
        };
        Some(FileAudit {
            dir: self.origin.resolve_path(&dir),
            interval_seconds,
            max_bytes,
            prefix,
        })
    }

    fn audit_s3(&mut self, raw: RawAuditS3, file: &SecretsSource) -> Option<S3Audit> {
        let interval_seconds = self.interval(
            "audit.s3.interval_seconds",
            raw.interval_seconds,
            DEFAULT_FILE_INTERVAL_SECONDS,
        );
        let max_bytes = self.max_bytes("audit.s3.max_bytes", raw.max_bytes);
        let prefix = self.prefix("audit.s3.prefix", raw.prefix);
        let endpoint = match raw.endpoint.as_deref().map(str::parse::<http::Uri>) {
            Some(Ok(uri))
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some() =>
            {
                Some(uri)
            }
            Some(_) => {
                self.at(
                    "audit.s3.endpoint",
                    "is not an http:// or https:// url with a host",
                );
                None
            }
            None => {
                self.at(
                    "audit.s3.endpoint",
                    "is required, e.g. `http://127.0.0.1:5000`",
                );
                None
            }
        };
        let bucket = raw.bucket.filter(|b| {
            (3..=63).contains(&b.len())
                && b.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        });
        if bucket.is_none() {
            self.at(
                "audit.s3.bucket",
                "is required: a bucket name (3 to 63 of a-z 0-9 - .)",
            );
        }
        let region = raw.region.unwrap_or_else(|| "us-east-1".to_owned());
        let access_key_id = raw.access_key_id.filter(|k| {
            (1..=128).contains(&k.len()) && k.bytes().all(|c| c.is_ascii_alphanumeric())
        });
        let Some(access_key_id) = access_key_id else {
            self.at(
                "audit.s3.access_key_id",
                "is required: the access key id uploads are signed with (its secret goes under \
                 [audit_secrets] in the secrets file, named by the access key id)",
            );
            return None;
        };
        let secret = self.audit_secret("audit.s3.access_key_id", &access_key_id, file)?;
        Some(S3Audit {
            endpoint: endpoint?,
            bucket: bucket?,
            region,
            prefix,
            access_key_id,
            secret: SecretKey::new(secret.as_str()),
            interval_seconds,
            max_bytes,
        })
    }

    fn audit_digests(
        &mut self,
        raw: RawAuditDigests,
        file: &SecretsSource,
    ) -> Option<DigestSettings> {
        let interval_seconds = self.interval(
            "audit.digests.interval_seconds",
            raw.interval_seconds,
            DEFAULT_DIGEST_INTERVAL_SECONDS,
        );
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        };
        let trail_name = raw.trail_name.unwrap_or_else(|| "tollgate".to_owned());
        if !name_ok(&trail_name) {
            self.at(
                "audit.digests.trail_name",
                "must be 1 to 128 of A-Z a-z 0-9 - .",
            );
        }
        let bucket = raw.bucket.unwrap_or_else(|| "tollgate-audit".to_owned());
        if !name_ok(&bucket) {
            self.at(
                "audit.digests.bucket",
                "must be 1 to 128 of A-Z a-z 0-9 - .",
            );
        }
        let home_region = raw.home_region.unwrap_or_else(|| "us-east-1".to_owned());
        if !name_ok(&home_region) {
            self.at(
                "audit.digests.home_region",
                "must be a region name, e.g. us-east-1",
            );
        }
        let Some(name) = raw.key else {
            self.at(
                "audit.digests.key",
                "is required: the name of the signing key under [audit_secrets] (create one \
                 with `tollgate audit new-key`)",
            );
            return None;
        };
        let pem = self.audit_secret("audit.digests.key", &name, file)?;
        let key = match DigestKey::from_pkcs8_pem(&pem) {
            Ok(key) => key,
            Err(e) => {
                // The message describes the key without showing it.
                self.at("audit.digests.key", format!("`{name}`: {e}"));
                return None;
            }
        };
        if !name_ok(&trail_name) || !name_ok(&bucket) || !name_ok(&home_region) {
            return None;
        }
        Some(DigestSettings {
            key: Arc::new(key),
            interval_seconds,
            trail_name,
            bucket,
            home_region,
        })
    }

    /// A secret named `name`: `TOLLGATE_AUDIT_SECRET_<NAME>` first, then `[audit_secrets]`.
    fn audit_secret(
        &mut self,
        item: &str,
        name: &str,
        file: &SecretsSource,
    ) -> Option<Zeroizing<String>> {
        if !is_sts_kid(name) {
            self.at(item, "is not a name (1 to 32 of A-Z a-z 0-9 _ -)");
            return None;
        }
        let env_name = audit_secret_env_var_name(name);
        match self.origin.env_audit_secret(name) {
            Some(Ok(text)) => Some(text),
            Some(Err(())) => {
                self.at(item, format!("{env_name} is not valid UTF-8"));
                None
            }
            None => match file {
                Some((label, Some(secrets))) => match secrets.audit_secrets.get(name) {
                    Some(text) => Some(text.clone()),
                    None => {
                        let message = format!(
                            "no secret named `{name}`: add it under [audit_secrets] in `{label}` \
                             or set {env_name}"
                        );
                        self.at(item, message);
                        None
                    }
                },
                Some((_, None)) => None,
                None => {
                    let message = format!(
                        "no secret named `{name}`: set {env_name} or name a `secrets_file`"
                    );
                    self.at(item, message);
                    None
                }
            },
        }
    }
}
