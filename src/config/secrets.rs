//! The secrets file: `[access_keys]` mapping access key ids to secret access keys.
//!
//! Nothing read from this file is ever echoed in a finding except access key ids: parser
//! messages have quoted text redacted, and values are only described ("must be a string").

use std::collections::HashMap;

use zeroize::Zeroizing;

use super::locate::locate;
use super::schema::one_line;
use super::validate::is_access_key_id;
use super::Finding;

/// Secret access keys by access key id.
pub(crate) type Secrets = HashMap<String, Zeroizing<String>>;

/// Parses a secrets file, adding a finding for each problem. Returns the secrets it could read.
pub(crate) fn parse(text: &str, label: &str, findings: &mut Vec<Finding>) -> Option<Secrets> {
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
    let mut secrets = Secrets::new();
    for (name, value) in table {
        if name != "access_keys" {
            let shown = if is_access_key_id(&name) || is_section_name(&name) {
                format!("`{name}`")
            } else {
                "a key".to_owned()
            };
            findings.push(finding(
                None,
                format!(
                    "{shown} is not allowed at the top level; put access keys under [access_keys]"
                ),
            ));
            continue;
        }
        let toml::Value::Table(keys) = value else {
            findings.push(finding(
                Some("access_keys".to_owned()),
                "must be a table of access key id = \"secret\"".to_owned(),
            ));
            continue;
        };
        for (id, secret) in keys {
            if !is_access_key_id(&id) {
                // The name may be a misplaced secret, so it is not shown.
                findings.push(finding(
                    Some("access_keys".to_owned()),
                    "an entry's name is not an access key id (AKIA followed by 16 upper-case \
                     letters or digits)"
                        .to_owned(),
                ));
                continue;
            }
            match secret {
                toml::Value::String(secret) => {
                    secrets.insert(id, Zeroizing::new(secret));
                }
                _ => findings.push(finding(
                    Some(format!("access_keys.{id}")),
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
                    AKIAAAAAAAAAAAAAAAAC = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"\n";
        let secrets = parse(text, "s.toml", &mut findings).unwrap();
        assert_eq!(secrets.len(), 1);
        let mut all: Vec<String> = findings.iter().map(ToString::to_string).collect();
        all.sort();
        assert_eq!(
            all,
            [
                "s.toml: `stray` is not allowed at the top level; put access keys under [access_keys]",
                "s.toml: access_keys.AKIAAAAAAAAAAAAAAAAA: must be a string",
                "s.toml: access_keys: an entry's name is not an access key id (AKIA followed by \
                 16 upper-case letters or digits)",
            ]
        );
        assert!(!all.concat().contains("12345678901234567"));
        assert!(!all.concat().contains("SeCrEt"));
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
