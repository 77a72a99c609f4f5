//! The audit trail's object names and times: `parse_log_key`, `parse_digest_key` and
//! `parse_iso8601` on arbitrary text, and on names and times the writer renders. Must never
//! panic, and the parsers must be exact:
//!
//! - a key either parser accepts re-renders to the same string through `log_key` /
//!   `digest_key` (a log name's time is a whole minute); no key is both;
//! - a key the writer renders (path-safe account and region as the trail makes them, a prefix
//!   with its `/`s trimmed, any year 0000–9999) parses back to what it was made from;
//! - a parsed ISO 8601 time re-formats to the same text (leap seconds, `:60`, to the next
//!   minute); every formatted time in years 0000–9999 parses back to itself.
//!
//! Input: the first byte selects the mode; 0 → the rest is a key for both key parsers, 1 → the
//! rest is an ISO 8601 time, otherwise → the rest drives the names and times rendered. Seeds
//! (`seeds/audit_names/`) hold keys a file sink wrote (the demo's audit directory and the
//! `audit::verify` tests), a partial's and a public key's path, and times.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tollgate::audit::trail::{
    digest_key, log_key, parse_digest_key, parse_iso8601, parse_log_key, DigestName, LogName,
};
use tollgate::time::{days_from_civil, iso8601};

/// 0000-01-01T00:00:00Z
fn min_time() -> i64 {
    days_from_civil(0, 1, 1) * 86_400
}

/// 9999-12-31T23:59:59Z
fn max_time() -> i64 {
    days_from_civil(10_000, 1, 1) * 86_400 - 1
}

/// The `prefix` argument of `log_key` / `digest_key` for a parsed prefix.
fn rendered_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

fn check_key(key: &str) {
    let log = parse_log_key(key);
    if let Some(name) = &log {
        assert_eq!(name.time.rem_euclid(60), 0, "{key:?}: {name:?}");
        let suffix = key
            .strip_suffix(".json.gz")
            .and_then(|s| s.rsplit_once('_'))
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("{key:?} was parsed without its suffix"));
        let again = log_key(
            &rendered_prefix(name.prefix),
            name.account,
            name.region,
            name.time,
            suffix,
        );
        assert_eq!(again, key, "the log key {key:?} parses to {name:?}");
    }
    let digest = parse_digest_key(key);
    if let Some(name) = &digest {
        let again = digest_key(
            &rendered_prefix(&name.prefix),
            &name.account,
            &name.region,
            &name.trail,
            &name.home_region,
            name.time,
        );
        assert_eq!(again, key, "the digest key {key:?} parses to {name:?}");
    }
    assert!(
        log.is_none() || digest.is_none(),
        "{key:?} is both a log and a digest key"
    );
}

fn check_iso8601(text: &str) {
    let Some(t) = parse_iso8601(text) else {
        return;
    };
    let again = iso8601(t);
    if text.get(17..19) == Some("60") {
        // A leap second is the first second of the next minute.
        assert_eq!(parse_iso8601(&again), Some(t), "{text:?}");
        assert!(again.ends_with(":00Z"), "{text:?} → {again:?}");
    } else {
        assert_eq!(again, text, "{text:?} parses to {t}");
    }
}

/// 1 to `max` bytes of `alphabet`.
fn word(u: &mut Unstructured<'_>, alphabet: &[u8], max: usize) -> Result<String> {
    let len = u.int_in_range(1..=max)?;
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(char::from(*u.choose(alphabet)?));
    }
    Ok(s)
}

const UPPER_LOWER_DIGIT_DASH: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-";
const LOWER_DIGIT_DASH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// What `audit.digests.trail_name` and `home_region` may hold.
const NAME: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.";

fn rendered(u: &mut Unstructured<'_>) -> Result<()> {
    // The prefix as `Trail::new` makes it: any text, `/`s trimmed, `/` appended.
    let raw: &str = u.arbitrary()?;
    let trimmed = raw.trim_matches('/');
    let prefix = rendered_prefix(trimmed);
    let account = if u.arbitrary()? {
        word(u, UPPER_LOWER_DIGIT_DASH, 64)?
    } else {
        "unknown".to_owned()
    };
    let region = word(u, LOWER_DIGIT_DASH, 64)?;
    let t = u.int_in_range(min_time()..=max_time())?;

    let suffix = word(u, ALPHANUMERIC, 24)?;
    let key = log_key(&prefix, &account, &region, t, &suffix);
    assert_eq!(
        parse_log_key(&key),
        Some(LogName {
            prefix: trimmed,
            account: &account,
            region: &region,
            time: t - t.rem_euclid(60),
        }),
        "{key:?}"
    );
    assert_eq!(parse_digest_key(&key), None, "{key:?}");

    let trail = word(u, NAME, 128)?;
    let home_region = word(u, NAME, 128)?;
    let key = digest_key(&prefix, &account, &region, &trail, &home_region, t);
    assert_eq!(
        parse_digest_key(&key),
        Some(DigestName {
            prefix: trimmed.to_owned(),
            account: account.clone(),
            region: region.clone(),
            trail,
            home_region,
            time: t,
        }),
        "{key:?}"
    );
    assert_eq!(parse_log_key(&key), None, "{key:?}");

    let text = iso8601(t);
    assert_eq!(parse_iso8601(&text), Some(t), "{text:?}");
    check_iso8601(&text);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => check_key(&String::from_utf8_lossy(rest)),
        1 => check_iso8601(&String::from_utf8_lossy(rest)),
        _ => {
            let _ = rendered(&mut Unstructured::new(rest));
        }
    }
});
