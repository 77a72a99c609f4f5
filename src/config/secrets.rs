//! The secrets file: `[access_keys]` mapping access key ids to secret access keys, and
//! `[sts_keys]` mapping session-token key ids to base64 keys, and `[audit_secrets]` (the digest
//! signing key and the S3 audit sink's secret).
//!
//! Nothing read from this file is ever echoed in a finding except access key ids and key ids:
//! parser messages have quoted text redacted, and values are only described ("must be a string").

use std::collections::HashMap;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use zeroize::Zeroizing;

use super::locate::locate;
use super::schema::one_line;
use super::validate::{is_access_key_id, is_sts_kid};
use super::Finding;

/// Secrets by name (secret access keys by access key id, session-token keys by key id).
pub(crate) type Secrets = HashMap<String, Zeroizing<String>>;

/// What a secrets file holds.
#[derive(Default)]
pub(crate) struct SecretsFile {
    /// `[access_keys]`: secret access keys by access key id.
    pub(crate) access_keys: Secrets,
    /// `[sts_keys]`: base64 session-token keys by key id.
    pub(crate) sts_keys: Secrets,
    /// `[audit_secrets]`: the digest signing key (PKCS#8 PEM) and the S3 sink's secret access
    /// key, by name.
    pub(crate) audit_secrets: Secrets,
}

/// A table of the secrets file.
struct Section {
    name: &'static str,
    valid_name: fn(&str) -> bool,
    name_rule: &'static str,
    shape: &'static str,
}

const ACCESS_KEYS: Section = Section {
    name: "access_keys",
    valid_name: is_access_key_id,
    name_rule: "an access key id (AKIA followed by 16 upper-case letters or digits)",
    shape: "must be a table of access key id = \"secret\"",
};

const STS_KEYS: Section = Section {
    name: "sts_keys",
    valid_name: is_sts_kid,
    name_rule: "a key id (1 to 32 of A-Z a-z 0-9 _ -)",
    shape: "must be a table of key id = \"base64 of 32 random bytes\"",
};

const AUDIT_SECRETS: Section = Section {
    name: "audit_secrets",
    valid_name: is_sts_kid,
    name_rule: "a name (1 to 32 of A-Z a-z 0-9 _ -)",
    shape: "must be a table of name = \"secret\" (a PKCS#8 PEM key or a secret access key)",
};

/// Parses a secrets file, adding a finding for each problem. Returns the secrets it could read.
pub(crate) fn parse(text: &str, label: &str, findings: &mut Vec<Finding>) -> Option<SecretsFile> {
    let finding = |key: Option<String>, message: String| Finding {
        file: label.to_owned(),
        line: None,
        column: None,
        key,
        message,
    };
    let table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(e) => {
            let location = e.span().map(|span| locate(text, span.start));
            findings.push(Finding {
                line: location.as_ref().map(|l| l.line),
                column: location.as_ref().map(|l| l.column),
                ..finding(
                    None,
                    format!("not valid TOML: {}", redact(&one_line(e.message()))),
                )
            });
            return None;
        }
    };
    let mut secrets = SecretsFile::default();
    for (name, value) in table {
        let (section, entries) = match name.as_str() {
            "access_keys" => (&ACCESS_KEYS, &mut secrets.access_keys),
            "sts_keys" => (&STS_KEYS, &mut secrets.sts_keys),
            "audit_secrets" => (&AUDIT_SECRETS, &mut secrets.audit_secrets),
            _ => {
                let shown = if is_access_key_id(&name) || is_section_name(&name) {
                    format!("`{name}`")
                } else {
                    "a key".to_owned()
                };
                findings.push(finding(
                    None,
                    format!(
                        "{shown} is not allowed at the top level; put access keys under \
                         [access_keys], session-token keys under [sts_keys] and audit keys \
                         under [audit_secrets]"
                    ),
                ));
                continue;
            }
        };
        let toml::Value::Table(keys) = value else {
            findings.push(finding(Some(name), section.shape.to_owned()));
            continue;
        };
        for (id, secret) in keys {
            if !(section.valid_name)(&id) {
                // The name may be a misplaced secret, so it is not shown.
                findings.push(finding(
                    Some(section.name.to_owned()),
                    format!("an entry's name is not {}", section.name_rule),
                ));
                continue;
            }
            match secret {
                toml::Value::String(secret) => {
                    entries.insert(id, Zeroizing::new(secret));
                }
                _ => findings.push(finding(
                    Some(format!("{}.{id}", section.name)),
                    "must be a string".to_owned(),
                )),
            }
        }
    }
    Some(secrets)
}

/// Why a secret access key is unusable, without revealing it.
pub(crate) fn check_secret(secret: &str) -> Option<&'static str> {
    if !secret.chars().all(|c| c.is_ascii_graphic()) {
        Some("contains whitespace, control or non-ASCII characters (a trailing newline?)")
    } else if !(16..=128).contains(&secret.len()) {
        Some("must be 16 to 128 characters long (AWS secret access keys have 40)")
    } else {
        None
    }
}

/// Decodes a session-token key: standard or URL-safe base64 (padding optional) of exactly 32
/// bytes. The error says what is wrong without revealing the key.
pub(crate) fn decode_sts_key(text: &str) -> Result<Zeroizing<[u8; STS_KEY_LEN]>, String> {
    const HINT: &str = "generate one with `head -c 32 /dev/urandom | base64`";
    const fn lenient(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
        GeneralPurpose::new(
            alphabet,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        )
    }
    const STANDARD: GeneralPurpose = lenient(&base64::alphabet::STANDARD);
    const URL_SAFE: GeneralPurpose = lenient(&base64::alphabet::URL_SAFE);
    if !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "contains whitespace, control or non-ASCII characters (a trailing newline?)".to_owned(),
        );
    }
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| format!("is not base64; {HINT}"))?,
    );
    let mut key = Zeroizing::new([0u8; STS_KEY_LEN]);
    if bytes.len() != STS_KEY_LEN {
        return Err(format!(
            "must be the base64 of exactly {STS_KEY_LEN} bytes, not {}; {HINT}",
            bytes.len()
        ));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Length of a session-token key in bytes (AES-256).
pub(crate) const STS_KEY_LEN: usize = 32;

fn is_section_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// Replaces text quoted in backticks (which could come from the file) with `…`, keeping the short
/// punctuation the parser quotes in "expected …" lists.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut quoted = true;
    for part in parts {
        if quoted {
            out.push('`');
            out.push_str(if part.chars().count() <= 2 {
                part
            } else {
                "…"
            });
            out.push('`');
        } else {
            out.push_str(part);
        }
        quoted = !quoted;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_long_quotes_only() {
        assert_eq!(redact("expected newline, `#`"), "expected newline, `#`");
        assert_eq!(redact("duplicate key `wJalrXUtnFEMI`"), "duplicate key `…`");
    }

    #[test]
    fn check_secret_rules() {
        assert_eq!(
            check_secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            None
        );
        assert!(check_secret("short").unwrap().contains("16 to 128"));
        assert!(check_secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n")
            .unwrap()
            .contains("trailing newline"));
    }

    #[test]
    fn parse_reports_without_echoing_values() {
        let mut findings = Vec::new();
        let text = "stray = 1\n[access_keys]\nAKIAAAAAAAAAAAAAAAAA = 12345678901234567\n\
                    \"SeCrEtVaLuEaBcDeFgHiJ\" = \"AKIAAAAAAAAAAAAAAAAB\"\n\
                    AKIAAAAAAAAAAAAAAAAC = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"\n\
                    [sts_keys]\nk-1 = \"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\"\n\
                    k-2 = 7\n\"c2VjcmV0IGtleSBpbiB0aGUgbmFtZQ==\" = \"x\"\n";
        let secrets = parse(text, "s.toml", &mut findings).unwrap();
        assert_eq!(secrets.access_keys.len(), 1);
        assert_eq!(secrets.sts_keys.len(), 1);
        assert!(secrets.sts_keys.contains_key("k-1"));
        let mut all: Vec<String> = findings.iter().map(ToString::to_string).collect();
        all.sort();
        assert_eq!(
            all,
            [
                "s.toml: `stray` is not allowed at the top level; put access keys under \
                 [access_keys], session-token keys under [sts_keys] and audit keys under \
                 [audit_secrets]",
                "s.toml: access_keys.AKIAAAAAAAAAAAAAAAAA: must be a string",
                "s.toml: access_keys: an entry's name is not an access key id (AKIA followed by \
                 16 upper-case letters or digits)",
                "s.toml: sts_keys.k-2: must be a string",
                "s.toml: sts_keys: an entry's name is not a key id (1 to 32 of A-Z a-z 0-9 _ -)",
            ]
        );
        let everything = all.concat();
        for hidden in ["12345678901234567", "SeCrEt", "c2VjcmV0", "q83vEjRW"] {
            assert!(!everything.contains(hidden), "{hidden}");
        }
    }

    #[test]
    fn sections_must_be_tables() {
        let mut findings = Vec::new();
        parse(
            "access_keys = 1\nsts_keys = \"k\"\n",
            "s.toml",
            &mut findings,
        )
        .unwrap();
        let mut all: Vec<String> = findings.iter().map(ToString::to_string).collect();
        all.sort();
        assert_eq!(
            all,
            [
                "s.toml: access_keys: must be a table of access key id = \"secret\"",
                "s.toml: sts_keys: must be a table of key id = \"base64 of 32 random bytes\"",
            ]
        );
    }

    #[test]
    fn sts_keys_decode_without_echoing() {
        // Standard base64 with or without padding, and URL-safe base64.
        let key = decode_sts_key("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=").unwrap();
        assert_eq!(&key[..4], [0xab, 0xcd, 0xef, 0x12]);
        assert!(decode_sts_key("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80").is_ok());
        let url_safe = decode_sts_key("__________________________________________8=").unwrap();
        assert_eq!(*url_safe, [0xff; 32]);
        assert!(decode_sts_key("//////////////////////////////////////////8=").is_ok());

        let short = decode_sts_key("c2hvcnQ=").unwrap_err();
        assert_eq!(
            short,
            "must be the base64 of exactly 32 bytes, not 5; generate one with \
             `head -c 32 /dev/urandom | base64`"
        );
        let not_base64 = decode_sts_key("not*base64!").unwrap_err();
        assert!(not_base64.starts_with("is not base64;"), "{not_base64}");
        assert!(!not_base64.contains("not*base64"));
        let newline = decode_sts_key("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n").unwrap_err();
        assert!(newline.contains("trailing newline"), "{newline}");
        assert!(!newline.contains("q83v"));
    }

    #[test]
    fn syntax_error_has_position_and_no_content() {
        let mut findings = Vec::new();
        let text = "[access_keys]\nAKIAAAAAAAAAAAAAAAAA = \"wJalrXUtnFEMI/K7MDENG+bPx\" trailing\n";
        assert!(parse(text, "s.toml", &mut findings).is_none());
        let shown = findings[0].to_string();
        assert!(shown.starts_with("s.toml:2:"), "{shown}");
        assert!(shown.contains("not valid TOML"), "{shown}");
        assert!(
            !shown.contains("wJalr") && !shown.contains("trailing"),
            "{shown}"
        );
    }
}
