//! Checks `[sts]` (key ids, their keys from the secrets file or the environment, revocations) and
//! `[[oidc_providers]]`.

use std::collections::HashMap;
use std::time::Duration;

use zeroize::Zeroizing;

use super::super::origin::sts_key_env_var_name;
use super::super::schema::{RawOidcProvider, RawRevocation, RawSts};
use super::super::secrets::{self, STS_KEY_LEN};
use super::super::sts::{OidcProviderConfig, Revocation, RevocationTarget, Revocations};
use super::super::{Finding, Role, StsSettings, User};
use super::{is_account_id, Check, SecretsSource, NOT_ACCOUNT_ID};
use crate::sts::oidc::{
    Jwks, JwksSource, OidcConfigError, OidcProvider, MAX_AUDIENCES, MAX_URL_OR_CLIENT_ID_LEN,
    MIN_REFRESH,
};
use crate::sts::token::KeyRing;
use crate::time::AmzDate;

/// How `before` is written, for messages.
const TIME_EXAMPLE: &str = "2026-11-28T12:00:00Z";

/// One decoded key: (key id, raw key).
type RingEntry = (String, Zeroizing<[u8; STS_KEY_LEN]>);

impl Check<'_> {
    /// `[sts]` and `[[oidc_providers]]`; `None` without an `[sts]` section or when anything in
    /// them is wrong (with findings).
    pub(super) fn sts(
        &mut self,
        raw: Option<RawSts>,
        providers: Vec<RawOidcProvider>,
        file: &SecretsSource,
        users: &[User],
        roles: &[Role],
    ) -> Option<StsSettings> {
        if raw.is_none() && !providers.is_empty() {
            self.at(
                "oidc_providers",
                "needs an [sts] section with session-token keys: web identity sessions are \
                 sealed with them",
            );
        }
        let oidc_providers = self.oidc_providers(providers);
        let raw = raw?;
        let ring = self.key_ring(raw.keys, file);
        let revocations = self.revocations(raw.revocations, users, roles);
        Some(StsSettings {
            ring: std::sync::Arc::new(ring?),
            revocations: revocations?,
            oidc_providers,
        })
    }

    /// The key ring of `sts.keys`, each key from `TOLLGATE_STS_KEY_<KID>` or `[sts_keys]`.
    fn key_ring(&mut self, kids: Vec<String>, file: &SecretsSource) -> Option<KeyRing> {
        if kids.is_empty() {
            self.at(
                "sts.keys",
                "must list at least one key id, newest first (the first seals new session \
                 tokens; the keys themselves go under [sts_keys] in the secrets file)",
            );
            return None;
        }
        let mut ok = true;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut env_names: HashMap<String, (String, usize)> = HashMap::new();
        let mut keys: Vec<RingEntry> = Vec::new();
        for (i, kid) in kids.into_iter().enumerate() {
            let item = format!("sts.keys[{i}]");
            if !is_sts_kid(&kid) {
                // Not echoed: it may be a key pasted in the wrong place.
                self.at(
                    item,
                    "is not a key id (1 to 32 of A-Z a-z 0-9 _ -); the key itself goes under \
                     [sts_keys] in the secrets file",
                );
                ok = false;
                continue;
            }
            if let Some(first) = seen.get(&kid) {
                let message = format!("duplicate key id `{kid}` (also sts.keys[{first}])");
                self.at(item, message);
                ok = false;
                continue;
            }
            let env_name = sts_key_env_var_name(&kid);
            if let Some((other, first)) = env_names.get(&env_name) {
                let message = format!(
                    "key ids `{other}` (sts.keys[{first}]) and `{kid}` would share the \
                     environment variable {env_name}; rename one"
                );
                self.at(item, message);
                ok = false;
                continue;
            }
            seen.insert(kid.clone(), i);
            env_names.insert(env_name.clone(), (kid.clone(), i));
            match self.sts_key(&item, &kid, &env_name, file) {
                Some(key) => keys.push((kid, key)),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        // `KeyRing::new` wipes the copies it is given; the `Zeroizing` originals are wiped here.
        let ring = KeyRing::new(keys.iter().map(|(kid, key)| (kid.clone(), **key)).collect());
        ring.map_err(|e| self.at("sts.keys", e.to_string())).ok()
    }

    /// The key of `kid`: `TOLLGATE_STS_KEY_<KID>` first, then `[sts_keys]` in the secrets file.
    fn sts_key(
        &mut self,
        item: &str,
        kid: &str,
        env_name: &str,
        file: &SecretsSource,
    ) -> Option<Zeroizing<[u8; STS_KEY_LEN]>> {
        let (text, file_label, key) = match self.origin.env_sts_key(kid) {
            Some(Ok(text)) => (text, "environment".to_owned(), env_name.to_owned()),
            Some(Err(())) => {
                self.in_file("environment", env_name, "is not valid UTF-8");
                return None;
            }
            None => match file {
                Some((label, Some(secrets))) => match secrets.sts_keys.get(kid) {
                    Some(text) => (text.clone(), label.clone(), format!("sts_keys.{kid}")),
                    None => {
                        let message = format!(
                            "no key for `{kid}`: add it under [sts_keys] in `{label}` or set \
                             {env_name}"
                        );
                        self.at(item, message);
                        return None;
                    }
                },
                // The secrets file is unreadable; that finding is already reported.
                Some((_, None)) => return None,
                None => {
                    let message =
                        format!("no key for `{kid}`: set {env_name} or name a `secrets_file`");
                    self.at(item, message);
                    return None;
                }
            },
        };
        match secrets::decode_sts_key(&text) {
            Ok(key) => Some(key),
            Err(message) => {
                self.in_file(&file_label, &key, message);
                None
            }
        }
    }

    fn in_file(&mut self, file: &str, key: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            file: file.to_owned(),
            line: None,
            column: None,
            key: Some(key.to_owned()),
            message: message.into(),
        });
    }

    fn revocations(
        &mut self,
        raw: Vec<RawRevocation>,
        users: &[User],
        roles: &[Role],
    ) -> Option<Revocations> {
        let mut ok = true;
        let mut entries = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let key = format!("sts.revocations[{i}]");
            let before = self.before(&key, r.before);
            let targets: Vec<(&str, String)> = [
                ("role", r.role),
                ("principal", r.principal),
                ("account", r.account),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, v)))
            .collect();
            let target = match targets.as_slice() {
                [] => {
                    self.at(
                        &key,
                        "needs one of `role`, `principal` or `account`: whose sessions to revoke",
                    );
                    None
                }
                [(name, value)] => self.revocation_target(&key, name, value, users, roles),
                _ => {
                    self.at(
                        &key,
                        "give only one of `role`, `principal` and `account` (one entry per \
                         target)",
                    );
                    None
                }
            };
            match (target, before) {
                (Some(target), Some(before)) => entries.push(Revocation { target, before }),
                _ => ok = false,
            }
        }
        ok.then(|| Revocations::new(entries))
    }

    fn revocation_target(
        &mut self,
        key: &str,
        name: &str,
        value: &str,
        users: &[User],
        roles: &[Role],
    ) -> Option<RevocationTarget> {
        let item = format!("{key}.{name}");
        let is_role = roles.iter().any(|r| r.arn == value);
        let is_user = users.iter().any(|u| u.arn == value);
        let problem = match name {
            "role" if is_role => return Some(RevocationTarget::Role(value.to_owned())),
            "role" if is_user => format!("`{value}` is a user: use `principal = …`"),
            "role" if !value.starts_with("arn:") => {
                format!("`{value}` is not a role ARN (arn:aws:iam::<account>:role<path><name>)")
            }
            "role" => format!("unknown role `{value}` (no [[roles]] entry has this ARN)"),
            "principal" if is_user => return Some(RevocationTarget::Principal(value.to_owned())),
            "principal" if is_role => format!("`{value}` is a role: use `role = …`"),
            "principal" if !value.starts_with("arn:") => {
                format!("`{value}` is not a user ARN (arn:aws:iam::<account>:user<path><name>)")
            }
            "principal" => format!("unknown user `{value}` (no [[users]] entry has this ARN)"),
            _ if !is_account_id(value) => format!("`{value}` {NOT_ACCOUNT_ID}"),
            _ if !self.accounts.iter().any(|a| a == value) => {
                format!("account `{value}` is not defined in [[accounts]]")
            }
            _ => return Some(RevocationTarget::Account(value.to_owned())),
        };
        self.at(item, problem);
        None
    }

    /// `before`: a string or a TOML offset date-time.
    fn before(&mut self, key: &str, raw: Option<toml::Value>) -> Option<i64> {
        let item = format!("{key}.before");
        let text = match raw {
            None => {
                self.at(
                    item,
                    format!(
                        "is required: sessions issued before this time are refused, e.g. \
                         \"{TIME_EXAMPLE}\""
                    ),
                );
                return None;
            }
            Some(toml::Value::String(text)) => text,
            Some(toml::Value::Datetime(datetime)) => datetime.to_string(),
            Some(_) => {
                self.at(item, format!("must be a time such as \"{TIME_EXAMPLE}\""));
                return None;
            }
        };
        let epoch = parse_timestamp(&text);
        if epoch.is_none() {
            self.at(
                item,
                format!(
                    "`{text}` is not a time such as {TIME_EXAMPLE} (date, `T`, time to the \
                     second, then `Z` or an offset such as +01:00)"
                ),
            );
        }
        epoch
    }

    fn oidc_providers(&mut self, raw: Vec<RawOidcProvider>) -> Vec<OidcProviderConfig> {
        let mut providers: Vec<OidcProviderConfig> = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for (i, p) in raw.into_iter().enumerate() {
            let key = format!("oidc_providers[{i}]");
            if let Some(config) = self.oidc_provider(&key, p) {
                let name = config.provider.provider().to_owned();
                if let Some(first) = seen.get(&name) {
                    let message = format!(
                        "issuer `{}` is also configured by {first}; an issuer can be trusted \
                         by one provider entry only",
                        config.provider.issuer_url()
                    );
                    self.at(format!("{key}.url"), message);
                } else {
                    seen.insert(name, key);
                    providers.push(config);
                }
            }
        }
        providers
    }

    fn oidc_provider(&mut self, key: &str, p: RawOidcProvider) -> Option<OidcProviderConfig> {
        let account = self.account_of(key, p.account.as_deref());
        let mut ok = true;
        match &p.url {
            None => {
                self.at(
                    format!("{key}.url"),
                    "is required: the issuer URL that tokens carry in `iss`, e.g. \
                     \"https://token.actions.githubusercontent.com\"",
                );
                ok = false;
            }
            Some(url) if !url.starts_with("https://") => {
                let message = format!("{} must begin with https://", shown_url(url));
                self.at(format!("{key}.url"), message);
                ok = false;
            }
            Some(_) => {}
        }
        if p.audiences.is_empty() || p.audiences.len() > MAX_AUDIENCES {
            let message = format!(
                "must list 1 to {MAX_AUDIENCES} client ids (the `aud` values tokens may carry), \
                 not {}",
                p.audiences.len()
            );
            self.at(format!("{key}.audiences"), message);
            ok = false;
        }
        for (j, audience) in p.audiences.iter().enumerate() {
            let count = audience.chars().count();
            if count == 0
                || count > MAX_URL_OR_CLIENT_ID_LEN
                || audience.chars().any(char::is_control)
            {
                self.at(
                    format!("{key}.audiences[{j}]"),
                    format!(
                        "must be 1 to {MAX_URL_OR_CLIENT_ID_LEN} characters without control \
                         characters"
                    ),
                );
                ok = false;
            }
        }
        let is_url = p.jwks_url.is_some();
        let jwks = self.jwks_source(key, p.jwks_file, p.jwks_url, p.jwks);
        let refresh = match p.refresh_seconds {
            None => None,
            Some(_) if !is_url => {
                self.at(
                    format!("{key}.refresh_seconds"),
                    "applies only to `jwks_url` (a `jwks_file` is read when the configuration \
                     is loaded)",
                );
                ok = false;
                None
            }
            Some(seconds) if seconds < MIN_REFRESH.as_secs() => {
                let message = format!("must be at least {}", MIN_REFRESH.as_secs());
                self.at(format!("{key}.refresh_seconds"), message);
                ok = false;
                None
            }
            Some(seconds) => Some(Duration::from_secs(seconds)),
        };
        let (Some(account), Some(jwks), Some(url), true) = (account, jwks, p.url, ok) else {
            return None;
        };
        let built = OidcProvider::new(url, p.audiences, jwks).and_then(|provider| match refresh {
            Some(refresh) => provider.with_refresh(refresh),
            None => Ok(provider),
        });
        match built {
            Ok(provider) => {
                if let JwksSource::Url(url) = provider.jwks() {
                    if url.starts_with("http://") {
                        self.warnings.push(Finding {
                            file: self.origin.label().to_owned(),
                            line: None,
                            column: None,
                            key: Some(format!("{key}.jwks_url")),
                            message: "uses plain http: anyone on the path can replace the keys"
                                .to_owned(),
                        });
                    }
                }
                Some(OidcProviderConfig { account, provider })
            }
            Err(e) => {
                let field = match &e {
                    OidcConfigError::IssuerNotHttps(_) | OidcConfigError::IssuerInvalid { .. } => {
                        ".url"
                    }
                    OidcConfigError::NoAudiences(_)
                    | OidcConfigError::TooManyAudiences { .. }
                    | OidcConfigError::InvalidAudience(_) => ".audiences",
                    OidcConfigError::InvalidJwksUrl(_) => ".jwks_url",
                    OidcConfigError::EmptyJwksPath => ".jwks_file",
                    OidcConfigError::InvalidInlineJwks(_) => ".jwks",
                    OidcConfigError::RefreshTooShort => ".refresh_seconds",
                    _ => "",
                };
                self.at(format!("{key}{field}"), e.to_string());
                None
            }
        }
    }

    /// Exactly one of `jwks_file` (read and checked now, kept inline), `jwks_url` and `jwks`.
    fn jwks_source(
        &mut self,
        key: &str,
        file: Option<String>,
        url: Option<String>,
        inline: Option<String>,
    ) -> Option<JwksSource> {
        match (file, url, inline) {
            (Some(reference), None, None) => {
                let item = format!("{key}.jwks_file");
                let label = self.origin.file_label(&reference);
                match self.origin.read_text(&reference) {
                    Ok(text) => match Jwks::from_json(text.as_bytes()) {
                        Ok(_) => Some(JwksSource::Inline(text)),
                        Err(e) => {
                            self.at(item, format!("`{label}`: {e}"));
                            None
                        }
                    },
                    Err(message) => {
                        self.at(item, message);
                        None
                    }
                }
            }
            (None, Some(url), None) => Some(JwksSource::Url(url)),
            (None, None, Some(text)) => match Jwks::from_json(text.as_bytes()) {
                Ok(_) => Some(JwksSource::Inline(text)),
                Err(e) => {
                    self.at(format!("{key}.jwks"), e.to_string());
                    None
                }
            },
            (None, None, None) => {
                self.at(
                    key,
                    "needs one of `jwks_file`, `jwks_url` or `jwks` (inline JSON): where the \
                     provider's signing keys come from",
                );
                None
            }
            _ => {
                self.at(key, "give only one of `jwks_file`, `jwks_url` and `jwks`");
                None
            }
        }
    }
}

/// A session-token key id: 1 to 32 of `A-Z a-z 0-9 _ -` (the key ring's rule).
pub(crate) fn is_sts_kid(kid: &str) -> bool {
    (1..=32).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A URL for a message; one with user information (a credential?) is not echoed.
fn shown_url(url: &str) -> String {
    if url.contains('@') {
        "the url".to_owned()
    } else {
        format!("`{url}`")
    }
}

/// Parses an RFC 3339 time to the second, `YYYY-MM-DDTHH:MM:SS` followed by `Z` or `±HH:MM`,
/// into epoch seconds. Impossible dates (Feb 30) and fractional seconds are refused.
///
/// `crate::time` parses only SigV4's basic format; this rewrites the date and time into it and
/// lets `AmzDate` check them.
fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || separators.iter().any(|&(i, c)| at(i) != Some(c)) {
        return None;
    }
    let part = |range: std::ops::Range<usize>| text.get(range);
    let basic = format!(
        "{}{}{}T{}{}{}Z",
        part(0..4)?,
        part(5..7)?,
        part(8..10)?,
        part(11..13)?,
        part(14..16)?,
        part(17..19)?
    );
    let utc = AmzDate::parse(&basic)?.epoch();
    let offset = match part(19..b.len())? {
        "Z" => 0,
        zone => {
            let sign = match zone.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let (hours, minutes) = zone.get(1..)?.split_once(':')?;
            let two_digits = |s: &str| {
                (s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit()))
                    .then(|| s.parse::<i64>().ok())
                    .flatten()
            };
            let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    Some(utc - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp("2026-11-28T12:00:00Z"), Some(1_795_867_200));
        assert_eq!(
            parse_timestamp("2026-11-28T13:30:00+01:30"),
            Some(1_795_867_200)
        );
        assert_eq!(
            parse_timestamp("2026-11-28T10:00:00-02:00"),
            Some(1_795_867_200)
        );
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28T12:00:00",
            "2026-11-28 12:00:00Z",
            "2026-11-28T12:00Z",
            "2026-11-28T12:00:00.5Z",
            "2026-02-30T12:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T12:00:00z",
            "2026-11-28T12:00:00+1:00",
            "2026-11-28T12:00:00+24:00",
            "20261128T120000Z",
            "２026-11-28T12:00:00Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn kids() {
        assert!(is_sts_kid("2026-11"));
        assert!(is_sts_kid("a_B-9"));
        assert!(is_sts_kid(&"k".repeat(32)));
        assert!(!is_sts_kid(&"k".repeat(33)));
        assert!(!is_sts_kid(""));
        assert!(!is_sts_kid("a.b"));
        assert!(!is_sts_kid("q83vEjRWeJq83vEjRWeJq83v+/=="));
    }
}
