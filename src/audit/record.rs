//! The CloudTrail JSON of one audit [`Event`]: pure (no I/O, no clock, no randomness) and
//! hand-written into a byte buffer, because the writer thread serializes every decided call.
//!
//! The record follows `reference/cloudtrail.md` §2 and §9: `eventVersion` `1.11`, the always
//! present fields always present (`requestParameters` / `responseElements` as `null` when empty),
//! `errorCode` / `errorMessage` only on errors, `eventTime` as `YYYY-MM-DDTHH:MM:SSZ` with no
//! fractional seconds (trailscraper crashes on them), `mfaAuthenticated` and `creationDate` as
//! strings, and never `eventContext`. `userAgent` and `errorMessage` are cut to
//! [`MAX_FIELD_LEN`] bytes at a character boundary.
//!
//! The record holds only what the [`Event`] holds: it is the request path's job never to put a
//! secret access key, a session token or an `Authorization` value into an event.

use std::net::IpAddr;

use super::{Category, Detail, Event, Identity, ResourceRef, Serialized, TlsDetails, Value};
use crate::credentials::{Principal, PrincipalKind, SessionContext};

/// The `eventVersion` written.
pub const EVENT_VERSION: &str = "1.11";

/// The most bytes recorded of `userAgent` and of `errorMessage` (CloudTrail's 1 KB limit).
pub const MAX_FIELD_LEN: usize = 1024;

/// Nesting depth beyond which a [`Value`] is written as `null`, so that a pathological value can
/// never exhaust the writer thread's stack. The request path builds values two or three levels
/// deep.
pub const MAX_VALUE_DEPTH: usize = 32;

/// A typical record's size, to size a fresh buffer in one allocation.
const TYPICAL_RECORD_LEN: usize = 2048;

/// Serializes `event` into a fresh buffer, with what sinks need to place the record.
pub fn serialize(event: &Event) -> Serialized {
    let mut json = Vec::with_capacity(TYPICAL_RECORD_LEN);
    write_json(event, &mut json);
    Serialized {
        account: event.recipient_account.clone(),
        region: event.region.clone(),
        event_time: event.event_time,
        json,
    }
}

/// Appends the CloudTrail record of `event` to `out`: exactly one JSON object, no newline.
pub fn write_json(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"eventVersion\":\"");
    out.extend_from_slice(EVENT_VERSION.as_bytes());
    out.extend_from_slice(b"\",\"userIdentity\":");
    write_identity(&event.identity, out);
    out.extend_from_slice(b",\"eventTime\":\"");
    push_iso8601(out, event.event_time);
    out.extend_from_slice(b"\",\"eventSource\":");
    write_json_string(&event.event_source, out);
    out.extend_from_slice(b",\"eventName\":");
    write_json_string(&event.event_name, out);
    out.extend_from_slice(b",\"awsRegion\":");
    write_json_string(&event.region, out);
    out.extend_from_slice(b",\"sourceIPAddress\":\"");
    push_ip(out, event.source_ip);
    out.push(b'"');
    if let Some(agent) = &event.user_agent {
        out.extend_from_slice(b",\"userAgent\":");
        // `from_utf8` first: its ASCII fast path beats the lossy decoder's chunking.
        match std::str::from_utf8(agent.as_bytes()) {
            Ok(text) => write_json_string(truncate(text, MAX_FIELD_LEN), out),
            Err(_) => {
                let text = String::from_utf8_lossy(agent.as_bytes());
                write_json_string(truncate(&text, MAX_FIELD_LEN), out);
            }
        }
    }
    if let Some(error) = &event.error {
        out.extend_from_slice(b",\"errorCode\":");
        write_json_string(error.code, out);
        out.extend_from_slice(b",\"errorMessage\":");
        write_json_string(truncate(&error.message, MAX_FIELD_LEN), out);
    }
    out.extend_from_slice(b",\"requestParameters\":");
    write_object_or_null(event.request_parameters.as_deref(), out);
    out.extend_from_slice(b",\"responseElements\":");
    write_object_or_null(event.response_elements.as_deref(), out);
    write_detail(&event.detail, out);
    out.extend_from_slice(b",\"requestID\":");
    write_json_string(&event.request_id, out);
    out.extend_from_slice(b",\"eventID\":\"");
    let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(
        event
            .event_id
            .hyphenated()
            .encode_lower(&mut uuid)
            .as_bytes(),
    );
    out.push(b'"');
    if let Some(read_only) = event.read_only {
        out.extend_from_slice(b",\"readOnly\":");
        push_bool(out, read_only);
    }
    if !event.resources.is_empty() {
        out.extend_from_slice(b",\"resources\":[");
        for (i, resource) in event.resources.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_resource(resource, out);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"eventType\":\"AwsApiCall\",\"managementEvent\":");
    push_bool(out, event.category == Category::Management);
    out.extend_from_slice(b",\"recipientAccountId\":");
    write_json_string(&event.recipient_account, out);
    out.extend_from_slice(match event.category {
        Category::Management => b",\"eventCategory\":\"Management\"",
        Category::Data => b",\"eventCategory\":\"Data\"",
    });
    if let Some(tls) = &event.tls {
        write_tls(tls, out);
    }
    out.push(b'}');
}

/// CloudTrail's `AssumeRole` `credentials.expiration` text, `MMM d, yyyy, h:mm:ss a` in UTC:
/// `Jan 15, 2025, 12:58:02 PM` (12-hour clock: midnight is `12:00:00 AM`, noon `12:00:00 PM`).
pub fn expiration_text(epoch: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day) = crate::time::civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    let hour = secs / 3600;
    let (hour12, meridiem) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    let month = usize::try_from(month)
        .ok()
        .and_then(|m| m.checked_sub(1))
        .and_then(|m| MONTHS.get(m))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{month} {day}, {year:04}, {hour12}:{:02}:{:02} {meridiem}",
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Appends `s` as a JSON string, quotes included: `"` and `\` escaped, control characters as
/// `\b`, `\t`, `\n`, `\f`, `\r` or `\u00XX`; everything else (all of non-ASCII) as is.
pub fn write_json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    push_escaped(out, s);
    out.push(b'"');
}

// ---------------------------------------------------------------------------------------------
// userIdentity
// ---------------------------------------------------------------------------------------------

fn write_identity(identity: &Identity, out: &mut Vec<u8>) {
    match identity {
        Identity::Principal {
            principal,
            access_key_id,
        } => write_principal(principal, access_key_id, out),
        Identity::WebIdentity {
            provider,
            audience,
            subject,
        } => {
            out.extend_from_slice(b"{\"type\":\"WebIdentityUser\",\"principalId\":\"");
            push_escaped(out, provider);
            out.push(b':');
            push_escaped(out, audience);
            out.push(b':');
            push_escaped(out, subject);
            out.extend_from_slice(b"\",\"userName\":");
            write_json_string(subject, out);
            out.extend_from_slice(b",\"identityProvider\":");
            write_json_string(provider, out);
            out.push(b'}');
        }
        Identity::Unknown { access_key_id } => {
            out.extend_from_slice(b"{\"type\":\"Unknown\",\"principalId\":\"\"");
            if let Some(id) = access_key_id {
                out.extend_from_slice(b",\"accessKeyId\":");
                write_json_string(id, out);
            }
            out.push(b'}');
        }
        Identity::Anonymous => out.extend_from_slice(
            b"{\"type\":\"AWSAccount\",\"principalId\":\"\",\"accountId\":\"ANONYMOUS_PRINCIPAL\"}",
        ),
    }
}

fn write_principal(principal: &Principal, access_key_id: &str, out: &mut Vec<u8>) {
    let session = principal.session.as_ref();
    match principal.kind {
        PrincipalKind::IamUser => {
            out.extend_from_slice(b"{\"type\":\"IAMUser\",\"principalId\":");
            write_json_string(&principal.unique_id, out);
            write_common(principal, access_key_id, out);
            out.extend_from_slice(b",\"userName\":");
            write_json_string(&principal.name, out);
            if let Some(session) = session {
                // GetSessionToken credentials: the issuer is the user itself, which CloudTrail
                // shows as an empty `sessionIssuer`.
                out.extend_from_slice(b",\"sessionContext\":{\"sessionIssuer\":{},");
                write_session_attributes(session, out);
                out.push(b'}');
            }
        }
        PrincipalKind::AssumedRole => {
            out.extend_from_slice(b"{\"type\":\"AssumedRole\",\"principalId\":");
            write_json_string(
                session.map_or(principal.unique_id.as_str(), |s| s.claims.user_id.as_str()),
                out,
            );
            write_common(principal, access_key_id, out);
            // A role principal always carries its session (`Principal::role_session`); without
            // one there is nothing to put in `sessionContext`, and trailscraper only requires
            // `sessionIssuer.arn` when `sessionContext` is present.
            if let Some(session) = session {
                write_role_session_context(session, out);
            }
        }
    }
    out.push(b'}');
}

/// `,"arn":…,"accountId":…,"accessKeyId":…`
fn write_common(principal: &Principal, access_key_id: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"arn\":");
    write_json_string(&principal.arn, out);
    out.extend_from_slice(b",\"accountId\":");
    write_json_string(&principal.account_id, out);
    out.extend_from_slice(b",\"accessKeyId\":");
    write_json_string(access_key_id, out);
}

fn write_role_session_context(session: &SessionContext, out: &mut Vec<u8>) {
    let claims = &session.claims;
    let role_arn = claims.role_arn.as_deref().unwrap_or("");
    let role_name = role_arn.rsplit_once('/').map_or("", |(_, name)| name);
    out.extend_from_slice(
        b",\"sessionContext\":{\"sessionIssuer\":{\"type\":\"Role\",\"principalId\":",
    );
    write_json_string(claims.role_id.as_deref().unwrap_or(""), out);
    out.extend_from_slice(b",\"arn\":");
    write_json_string(role_arn, out);
    out.extend_from_slice(b",\"accountId\":");
    write_json_string(&claims.account, out);
    out.extend_from_slice(b",\"userName\":");
    write_json_string(role_name, out);
    out.extend_from_slice(b"},");
    if let Some(web) = &claims.web_identity {
        out.extend_from_slice(b"\"webIdFederationData\":{\"federatedProvider\":");
        write_json_string(
            &crate::sts::oidc::federated_principal(&web.provider, &claims.account),
            out,
        );
        out.extend_from_slice(b",\"attributes\":{}},");
    }
    write_session_attributes(session, out);
    out.push(b'}');
}

/// `"attributes":{"creationDate":…,"mfaAuthenticated":…}` and `,"sourceIdentity":…` when set.
fn write_session_attributes(session: &SessionContext, out: &mut Vec<u8>) {
    let claims = &session.claims;
    out.extend_from_slice(b"\"attributes\":{\"creationDate\":\"");
    push_iso8601(out, claims.issued_at);
    out.extend_from_slice(if claims.mfa_authenticated {
        b"\",\"mfaAuthenticated\":\"true\"}"
    } else {
        b"\",\"mfaAuthenticated\":\"false\"}"
    });
    if let Some(source) = &claims.source_identity {
        out.extend_from_slice(b",\"sourceIdentity\":");
        write_json_string(source, out);
    }
}

// ---------------------------------------------------------------------------------------------
// Other parts
// ---------------------------------------------------------------------------------------------

/// `,"additionalEventData":{…}` when at least one field is set.
fn write_detail(detail: &Detail, out: &mut Vec<u8>) {
    let fields: [(&[u8], Option<&str>); 9] = [
        (b"SignatureVersion", detail.signature_version),
        (b"AuthenticationMethod", detail.authentication_method),
        (b"PayloadMode", detail.payload),
        (b"Decision", detail.decision),
        (b"DecidingPolicy", detail.policy.as_deref()),
        (b"DecidingStatement", detail.statement.as_deref()),
        (b"DeniedBy", detail.denied_by),
        (b"Action", detail.action.as_deref()),
        (b"Mode", detail.mode),
    ];
    let mut first = true;
    for (key, value) in fields {
        let Some(value) = value else { continue };
        out.extend_from_slice(if first {
            b",\"additionalEventData\":{\""
        } else {
            b",\""
        });
        first = false;
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        write_json_string(value, out);
    }
    if !first {
        out.push(b'}');
    }
}

fn write_resource(resource: &ResourceRef, out: &mut Vec<u8>) {
    out.push(b'{');
    if let Some(account) = &resource.account_id {
        out.extend_from_slice(b"\"accountId\":");
        write_json_string(account, out);
        out.push(b',');
    }
    out.extend_from_slice(b"\"type\":");
    write_json_string(&resource.kind, out);
    out.extend_from_slice(b",\"ARN\":");
    write_json_string(&resource.arn, out);
    out.push(b'}');
}

fn write_tls(tls: &TlsDetails, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"tlsDetails\":{\"tlsVersion\":");
    write_json_string(&tls.version, out);
    out.extend_from_slice(b",\"cipherSuite\":");
    write_json_string(&tls.cipher_suite, out);
    if let Some(host) = &tls.host {
        out.extend_from_slice(b",\"clientProvidedHostHeader\":");
        write_json_string(host, out);
    }
    out.push(b'}');
}

fn write_object_or_null(members: Option<&[(String, Value)]>, out: &mut Vec<u8>) {
    match members {
        Some(members) => write_object(members, out, 1),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_object(members: &[(String, Value)], out: &mut Vec<u8>, depth: usize) {
    out.push(b'{');
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_string(key, out);
        out.push(b':');
        write_value(value, out, depth + 1);
    }
    out.push(b'}');
}

fn write_value(value: &Value, out: &mut Vec<u8>, depth: usize) {
    match value {
        Value::Str(s) => write_json_string(s, out),
        Value::Int(n) => push_i64(out, *n),
        Value::Bool(b) => push_bool(out, *b),
        Value::List(_) | Value::Object(_) if depth > MAX_VALUE_DEPTH => {
            out.extend_from_slice(b"null");
        }
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out, depth + 1);
            }
            out.push(b']');
        }
        Value::Object(members) => write_object(members, out, depth),
    }
}

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

/// The longest prefix of `s` of at most `max` bytes that ends at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The index of the first byte of `bytes` that JSON requires escaped: eight bytes at a time
/// (a control byte, `"` or `\\` sets the high bit of its lane; the test is exact for "some lane
/// matched", and the byte loop then finds which).
fn find_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    let mut offset = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(lanes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let v = u64::from_ne_bytes(lanes);
        let quote = v ^ QUOTES;
        let backslash = v ^ BACKSLASHES;
        let hits = (v.wrapping_sub(SPACES) & !v)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash);
        if hits & HIGHS != 0 {
            break;
        }
        offset += 8;
    }
    let rest = bytes.get(offset..)?;
    rest.iter()
        .position(|&b| needs_escape(b))
        .map(|i| offset + i)
}

/// The escaped contents of a JSON string, without quotes.
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s.as_bytes();
    while let Some(pos) = find_escape(rest) {
        let Some((clean, tail)) = rest.split_at_checked(pos) else {
            break;
        };
        out.extend_from_slice(clean);
        let Some((&b, after)) = tail.split_first() else {
            break;
        };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                let lo = HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
            }
        }
        rest = after;
    }
    out.extend_from_slice(rest);
}

fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut len = 0;
    for slot in buf.iter_mut().rev() {
        // `n % 10` is a single digit.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    let start = buf.len() - len;
    out.extend_from_slice(buf.get(start..).unwrap_or_default());
}

fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        // Only hex digits, `:` and `.`: nothing to escape.
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            // Writing to a `Vec` cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// Two ASCII digits of `n` (0–99).
fn two_digits(n: u32) -> [u8; 2] {
    // Both quotients are single digits for n < 100.
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the same text as [`crate::time::iso8601`] without its allocation.
fn push_iso8601(out: &mut Vec<u8>, epoch: i64) {
    let (year, month, day) = crate::time::civil_from_days(epoch.div_euclid(86_400));
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        out.extend_from_slice(crate::time::iso8601(epoch).as_bytes());
        return;
    };
    // Both fit a u32: 0 ≤ secs < 86 400.
    let secs = epoch.rem_euclid(86_400) as u32;
    let [y0, y1] = two_digits(year / 100);
    let [y2, y3] = two_digits(year % 100);
    let [mo0, mo1] = two_digits(month);
    let [d0, d1] = two_digits(day);
    let [h0, h1] = two_digits(secs / 3600);
    let [mi0, mi1] = two_digits(secs % 3600 / 60);
    let [s0, s1] = two_digits(secs % 60);
    out.extend_from_slice(&[
        y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1,
        b'Z',
    ]);
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::audit::ErrorInfo;
    use crate::sts::token::{self, KeyRing, SessionClaims, SessionKind, WebIdentityClaims};

    /// Epoch seconds of a UTC civil time.
    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        crate::time::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s
    }

    fn uuid(s: &str) -> uuid::Uuid {
        uuid::Uuid::parse_str(s).unwrap()
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_owned())
    }

    fn obj(members: &[(&str, Value)]) -> Vec<(String, Value)> {
        members
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn alice() -> Arc<Principal> {
        Arc::new(Principal::iam_user(
            "arn:aws:iam::123456789012:user/alice".into(),
            "123456789012".into(),
            "alice".into(),
            "AIDAEXAMPLEUSERID0001".into(),
            vec![],
        ))
    }

    fn alice_identity() -> Identity {
        Identity::Principal {
            principal: alice(),
            access_key_id: Arc::from("AKIAEXAMPLEKEYID0002"),
        }
    }

    fn ci_runner_claims() -> SessionClaims {
        SessionClaims {
            access_key_id: "ASIAEXAMPLEKEYID0001".into(),
            issued_at: at(2025, 1, 15, 11, 58, 2),
            expires_at: at(2025, 1, 15, 12, 58, 2),
            account: "123456789012".into(),
            kind: SessionKind::AssumedRole,
            arn: "arn:aws:sts::123456789012:assumed-role/ci-runner/ci-session".into(),
            user_id: "AROAEXAMPLEROLEID1234:ci-session".into(),
            role_arn: Some("arn:aws:iam::123456789012:role/ci-runner".into()),
            role_id: Some("AROAEXAMPLEROLEID1234".into()),
            session_name: Some("ci-session".into()),
            source_identity: None,
            tags: vec![],
            transitive_tag_keys: vec![],
            session_policy: None,
            policy_arns: vec![],
            chained: false,
            mfa_authenticated: false,
            web_identity: None,
            parent_user_arn: None,
        }
    }

    fn role_identity(claims: SessionClaims) -> Identity {
        let access_key_id = Arc::from(claims.access_key_id.as_str());
        Identity::Principal {
            principal: Arc::new(Principal::role_session(
                &[],
                SessionContext {
                    claims,
                    policies: None,
                },
            )),
            access_key_id,
        }
    }

    /// An event with every optional part absent.
    fn minimal(identity: Identity) -> Event {
        Event {
            event_time: at(2025, 1, 15, 12, 1, 7),
            event_id: uuid("0c5f8a1e-6f42-4a8e-9d31-7c2b9e0f1a23"),
            request_id: Arc::from("7f3c1a2b-0d4e-4f5a-9b6c-1d2e3f4a5b6c"),
            identity,
            event_source: Arc::from("s3.amazonaws.com"),
            event_name: Arc::from("GetObject"),
            region: Arc::from("us-east-1"),
            source_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            user_agent: None,
            error: None,
            request_parameters: None,
            response_elements: None,
            detail: Detail::default(),
            read_only: None,
            resources: vec![],
            category: Category::Data,
            recipient_account: Arc::from("123456789012"),
            tls: None,
        }
    }

    fn tls(host: &str) -> Option<TlsDetails> {
        Some(TlsDetails {
            version: "TLSv1.3".into(),
            cipher_suite: "TLS_AES_128_GCM_SHA256".into(),
            host: Some(host.into()),
        })
    }

    fn to_string(event: &Event) -> String {
        let mut out = Vec::new();
        write_json(event, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn to_value(event: &Event) -> serde_json::Value {
        let mut out = Vec::new();
        write_json(event, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    /// Reference §5, first record.
    fn assume_role_event() -> Event {
        Event {
            event_time: at(2025, 1, 15, 11, 58, 2),
            event_id: uuid("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"),
            request_id: Arc::from("c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f"),
            event_source: Arc::from("sts.amazonaws.com"),
            event_name: Arc::from("AssumeRole"),
            source_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            user_agent: Some(http::HeaderValue::from_static(
                "aws-cli/2.22.0 md/command#sts.assume-role",
            )),
            request_parameters: Some(obj(&[
                ("roleArn", s("arn:aws:iam::123456789012:role/ci-runner")),
                ("roleSessionName", s("ci-session")),
                ("durationSeconds", Value::Int(3600)),
                ("sourceIdentity", s("alice")),
            ])),
            response_elements: Some(obj(&[
                (
                    "credentials",
                    Value::Object(obj(&[
                        ("accessKeyId", s("ASIAEXAMPLEKEYID0001")),
                        ("sessionToken", s("IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN")),
                        (
                            "expiration",
                            Value::Str(expiration_text(at(2025, 1, 15, 12, 58, 2))),
                        ),
                    ])),
                ),
                (
                    "assumedRoleUser",
                    Value::Object(obj(&[
                        ("assumedRoleId", s("AROAEXAMPLEROLEID1234:ci-session")),
                        (
                            "arn",
                            s("arn:aws:sts::123456789012:assumed-role/ci-runner/ci-session"),
                        ),
                    ])),
                ),
                ("sourceIdentity", s("alice")),
            ])),
            read_only: Some(true),
            resources: vec![ResourceRef {
                arn: "arn:aws:iam::123456789012:role/ci-runner".into(),
                account_id: Some(Arc::from("123456789012")),
                kind: Arc::from("AWS::IAM::Role"),
            }],
            category: Category::Management,
            tls: tls("sts.us-east-1.amazonaws.com"),
            ..minimal(alice_identity())
        }
    }

    /// Reference §5, second record (without `bytesTransferredOut`, which `Detail` cannot hold).
    fn get_object_event() -> Event {
        Event {
            user_agent: Some(http::HeaderValue::from_static(
                "aws-sdk-rust/1.3.0 os/linux lang/rust/1.85.0",
            )),
            request_parameters: Some(obj(&[
                ("bucketName", s("artifacts")),
                ("key", s("builds/app.tar.gz")),
                ("Host", s("artifacts.s3.us-east-1.amazonaws.com")),
            ])),
            detail: Detail {
                signature_version: Some("SigV4"),
                authentication_method: Some("AuthHeader"),
                ..Detail::default()
            },
            read_only: Some(true),
            resources: vec![
                ResourceRef {
                    arn: "arn:aws:s3:::artifacts/builds/app.tar.gz".into(),
                    account_id: None,
                    kind: Arc::from("AWS::S3::Object"),
                },
                ResourceRef {
                    arn: "arn:aws:s3:::artifacts".into(),
                    account_id: Some(Arc::from("123456789012")),
                    kind: Arc::from("AWS::S3::Bucket"),
                },
            ],
            tls: tls("artifacts.s3.us-east-1.amazonaws.com"),
            ..minimal(role_identity(ci_runner_claims()))
        }
    }

    /// Reference §5, third record.
    fn denied_put_event() -> Event {
        Event {
            event_time: at(2025, 1, 15, 12, 2, 44),
            event_id: uuid("9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"),
            request_id: Arc::from("3b9d2e71-5c0a-4c6f-8e12-a4b5c6d7e8f9"),
            event_name: Arc::from("PutObject"),
            source_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            user_agent: Some(http::HeaderValue::from_static(
                "aws-cli/2.22.0 md/command#s3.cp",
            )),
            error: Some(ErrorInfo {
                code: "AccessDenied",
                message:
                    "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: \
                          s3:PutObject on resource: \"arn:aws:s3:::artifacts/builds/app.tar.gz\" \
                          because no identity-based policy allows the s3:PutObject action"
                        .into(),
            }),
            request_parameters: Some(obj(&[
                ("bucketName", s("artifacts")),
                ("key", s("builds/app.tar.gz")),
            ])),
            read_only: Some(false),
            resources: vec![ResourceRef {
                arn: "arn:aws:s3:::artifacts/builds/app.tar.gz".into(),
                account_id: None,
                kind: Arc::from("AWS::S3::Object"),
            }],
            ..minimal(alice_identity())
        }
    }

    const EXAMPLE_ASSUME_ROLE: &str = r#"{"eventVersion":"1.11",
 "userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEUSERID0001","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAEXAMPLEKEYID0002","userName":"alice"},
 "eventTime":"2025-01-15T11:58:02Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1",
 "sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.22.0 md/command#sts.assume-role",
 "requestParameters":{"roleArn":"arn:aws:iam::123456789012:role/ci-runner","roleSessionName":"ci-session","durationSeconds":3600,"sourceIdentity":"alice"},
 "responseElements":{"credentials":{"accessKeyId":"ASIAEXAMPLEKEYID0001","sessionToken":"IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN","expiration":"Jan 15, 2025, 12:58:02 PM"},
   "assumedRoleUser":{"assumedRoleId":"AROAEXAMPLEROLEID1234:ci-session","arn":"arn:aws:sts::123456789012:assumed-role/ci-runner/ci-session"},
   "sourceIdentity":"alice"},
 "requestID":"c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f","eventID":"5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9","readOnly":true,
 "resources":[{"ARN":"arn:aws:iam::123456789012:role/ci-runner","accountId":"123456789012","type":"AWS::IAM::Role"}],
 "eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management",
 "tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"sts.us-east-1.amazonaws.com"}}"#;

    const EXAMPLE_GET_OBJECT: &str = r#"{"eventVersion":"1.11",
 "userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEROLEID1234:ci-session","arn":"arn:aws:sts::123456789012:assumed-role/ci-runner/ci-session","accountId":"123456789012","accessKeyId":"ASIAEXAMPLEKEYID0001",
   "sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEROLEID1234","arn":"arn:aws:iam::123456789012:role/ci-runner","accountId":"123456789012","userName":"ci-runner"},
     "attributes":{"creationDate":"2025-01-15T11:58:02Z","mfaAuthenticated":"false"}}},
 "eventTime":"2025-01-15T12:01:07Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",
 "sourceIPAddress":"192.0.2.10","userAgent":"aws-sdk-rust/1.3.0 os/linux lang/rust/1.85.0",
 "requestParameters":{"bucketName":"artifacts","key":"builds/app.tar.gz","Host":"artifacts.s3.us-east-1.amazonaws.com"},
 "responseElements":null,
 "additionalEventData":{"SignatureVersion":"SigV4","AuthenticationMethod":"AuthHeader","bytesTransferredOut":52311},
 "requestID":"7f3c1a2b-0d4e-4f5a-9b6c-1d2e3f4a5b6c","eventID":"0c5f8a1e-6f42-4a8e-9d31-7c2b9e0f1a23","readOnly":true,
 "resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::artifacts/builds/app.tar.gz"},{"accountId":"123456789012","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::artifacts"}],
 "eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012","eventCategory":"Data",
 "tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"artifacts.s3.us-east-1.amazonaws.com"}}"#;

    const EXAMPLE_DENIED_PUT: &str = r#"{"eventVersion":"1.11",
 "userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLEUSERID0001","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAEXAMPLEKEYID0002","userName":"alice"},
 "eventTime":"2025-01-15T12:02:44Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1",
 "sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.22.0 md/command#s3.cp",
 "errorCode":"AccessDenied",
 "errorMessage":"User: arn:aws:iam::123456789012:user/alice is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::artifacts/builds/app.tar.gz\" because no identity-based policy allows the s3:PutObject action",
 "requestParameters":{"bucketName":"artifacts","key":"builds/app.tar.gz"},"responseElements":null,
 "requestID":"3b9d2e71-5c0a-4c6f-8e12-a4b5c6d7e8f9","eventID":"9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d","readOnly":false,
 "resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::artifacts/builds/app.tar.gz"}],
 "eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012","eventCategory":"Data"}"#;

    /// The top-level keys of a record, in the order written.
    const KEY_ORDER: [&str; 22] = [
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "errorCode",
        "errorMessage",
        "requestParameters",
        "responseElements",
        "additionalEventData",
        "requestID",
        "eventID",
        "readOnly",
        "resources",
        "eventType",
        "managementEvent",
        "recipientAccountId",
        "eventCategory",
        "tlsDetails",
    ];

    /// Asserts that the top-level keys present in `json` appear in [`KEY_ORDER`] order.
    fn assert_key_order(json: &str) {
        let positions: Vec<usize> = KEY_ORDER
            .iter()
            .filter_map(|k| json.find(&format!("\"{k}\":")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
    }

    #[test]
    fn reference_example_assume_role() {
        let event = assume_role_event();
        let expected: serde_json::Value = serde_json::from_str(EXAMPLE_ASSUME_ROLE).unwrap();
        assert_eq!(to_value(&event), expected);
        assert_key_order(&to_string(&event));
    }

    #[test]
    fn reference_example_get_object() {
        let event = get_object_event();
        let mut expected: serde_json::Value = serde_json::from_str(EXAMPLE_GET_OBJECT).unwrap();
        expected["additionalEventData"]
            .as_object_mut()
            .unwrap()
            .remove("bytesTransferredOut");
        assert_eq!(to_value(&event), expected);
        // Without the one field `Detail` cannot hold, this example is also byte-exact (its
        // resource keys happen to be in our order).
        let compact = EXAMPLE_GET_OBJECT
            .replace("\n ", "")
            .replace("  ", "")
            .replace(",\"bytesTransferredOut\":52311", "");
        assert_eq!(to_string(&event), compact);
    }

    #[test]
    fn reference_example_denied_put() {
        let event = denied_put_event();
        let expected: serde_json::Value = serde_json::from_str(EXAMPLE_DENIED_PUT).unwrap();
        assert_eq!(to_value(&event), expected);
        assert_eq!(to_string(&event), EXAMPLE_DENIED_PUT.replace("\n ", ""));
    }

    #[test]
    fn serialize_fills_placement_fields() {
        let event = Event {
            recipient_account: Arc::from("210987654321"),
            region: Arc::from("eu-west-3"),
            ..get_object_event()
        };
        let record = serialize(&event);
        assert_eq!(&*record.account, "210987654321");
        assert_eq!(&*record.region, "eu-west-3");
        assert_eq!(record.event_time, event.event_time);
        assert_eq!(record.json, to_string(&event).into_bytes());
        let v: serde_json::Value = serde_json::from_slice(&record.json).unwrap();
        assert_eq!(v["recipientAccountId"], "210987654321");
        assert_eq!(v["awsRegion"], "eu-west-3");
    }

    #[test]
    fn write_json_appends_one_object() {
        let mut out = b"{\"Records\":[".to_vec();
        write_json(&get_object_event(), &mut out);
        out.push(b',');
        write_json(&denied_put_event(), &mut out);
        out.extend_from_slice(b"]}");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Records"].as_array().unwrap().len(), 2);
        assert!(!to_string(&get_object_event()).ends_with('\n'));
    }

    #[test]
    fn optional_fields_absent_and_nulls_present() {
        let event = minimal(Identity::Anonymous);
        let text = to_string(&event);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for absent in [
            "userAgent",
            "errorCode",
            "errorMessage",
            "additionalEventData",
            "readOnly",
            "resources",
            "tlsDetails",
            "eventContext",
        ] {
            assert!(!keys.contains(&absent), "{absent} in {text}");
        }
        assert_eq!(v["requestParameters"], serde_json::Value::Null);
        assert_eq!(v["responseElements"], serde_json::Value::Null);
        assert_eq!(v["eventType"], "AwsApiCall");
        assert_eq!(v["managementEvent"], false);
        assert_eq!(v["eventCategory"], "Data");
        assert_eq!(v["eventVersion"], "1.11");
        assert_eq!(keys.len(), 15, "{text}");
        assert_key_order(&text);
    }

    #[test]
    fn every_field_present_in_order() {
        let event = Event {
            error: Some(ErrorInfo {
                code: "AccessDenied",
                message: "no".into(),
            }),
            response_elements: Some(vec![]),
            detail: Detail {
                signature_version: Some("SigV4"),
                authentication_method: Some("QueryString"),
                payload: Some("UNSIGNED-PAYLOAD"),
                decision: Some("ExplicitDeny"),
                policy: Some("arn:aws:iam::123456789012:policy/deny-all".into()),
                statement: Some("DenyAll".into()),
                denied_by: Some("Identity"),
                action: Some("s3:GetObject".into()),
                mode: Some("proxy"),
            },
            category: Category::Management,
            tls: Some(TlsDetails {
                version: "TLSv1.2".into(),
                cipher_suite: "ECDHE-RSA-AES128-GCM-SHA256".into(),
                host: None,
            }),
            ..get_object_event()
        };
        let text = to_string(&event);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_object().unwrap().len(), KEY_ORDER.len());
        assert_key_order(&text);
        assert_eq!(
            v["additionalEventData"],
            json!({
                "SignatureVersion": "SigV4",
                "AuthenticationMethod": "QueryString",
                "PayloadMode": "UNSIGNED-PAYLOAD",
                "Decision": "ExplicitDeny",
                "DecidingPolicy": "arn:aws:iam::123456789012:policy/deny-all",
                "DecidingStatement": "DenyAll",
                "DeniedBy": "Identity",
                "Action": "s3:GetObject",
                "Mode": "proxy",
            })
        );
        // Detail keys in the documented order.
        let detail = text.split("\"additionalEventData\":").nth(1).unwrap();
        assert!(detail.starts_with(
            "{\"SignatureVersion\":\"SigV4\",\"AuthenticationMethod\":\"QueryString\",\
             \"PayloadMode\":\"UNSIGNED-PAYLOAD\",\"Decision\":\"ExplicitDeny\",\"DecidingPolicy\":"
        ));
        assert_eq!(v["responseElements"], json!({}));
        assert_eq!(v["managementEvent"], true);
        assert_eq!(v["eventCategory"], "Management");
        assert_eq!(
            v["tlsDetails"],
            json!({"tlsVersion": "TLSv1.2", "cipherSuite": "ECDHE-RSA-AES128-GCM-SHA256"})
        );
    }

    #[test]
    fn single_detail_field() {
        let event = Event {
            detail: Detail {
                mode: Some("extauthz-grpc"),
                ..Detail::default()
            },
            ..minimal(Identity::Anonymous)
        };
        assert_eq!(
            to_value(&event)["additionalEventData"],
            json!({"Mode": "extauthz-grpc"})
        );
    }

    #[test]
    fn ipv6_source() {
        for (ip, text) in [
            (IpAddr::V6(Ipv6Addr::LOCALHOST), "::1"),
            (
                IpAddr::V6("2001:db8::8a2e:370:7334".parse().unwrap()),
                "2001:db8::8a2e:370:7334",
            ),
            (
                IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()),
                "::ffff:192.0.2.1",
            ),
            (IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)), "0.0.0.0"),
            (
                IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
                "255.255.255.255",
            ),
        ] {
            let event = Event {
                source_ip: ip,
                ..minimal(Identity::Anonymous)
            };
            assert_eq!(to_value(&event)["sourceIPAddress"], text);
            assert_eq!(ip.to_string(), text);
        }
    }

    // -----------------------------------------------------------------------------------------
    // userIdentity
    // -----------------------------------------------------------------------------------------

    fn identity_of(identity: Identity) -> serde_json::Value {
        to_value(&minimal(identity))["userIdentity"].clone()
    }

    #[test]
    fn identity_iam_user() {
        assert_eq!(
            identity_of(alice_identity()),
            json!({
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEUSERID0001",
                "arn": "arn:aws:iam::123456789012:user/alice",
                "accountId": "123456789012",
                "accessKeyId": "AKIAEXAMPLEKEYID0002",
                "userName": "alice",
            })
        );
    }

    #[test]
    fn identity_iam_user_session() {
        let claims = SessionClaims {
            access_key_id: "ASIAEXAMPLEKEYID0009".into(),
            kind: SessionKind::SessionToken,
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            user_id: "AIDAEXAMPLEUSERID0001".into(),
            role_arn: None,
            role_id: None,
            session_name: None,
            mfa_authenticated: true,
            parent_user_arn: Some("arn:aws:iam::123456789012:user/alice".into()),
            ..ci_runner_claims()
        };
        let principal = Principal::user_session(
            &alice(),
            SessionContext {
                claims: claims.clone(),
                policies: None,
            },
        );
        let identity = Identity::Principal {
            principal: Arc::new(principal.clone()),
            access_key_id: Arc::from("ASIAEXAMPLEKEYID0009"),
        };
        assert_eq!(
            identity_of(identity),
            json!({
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEUSERID0001",
                "arn": "arn:aws:iam::123456789012:user/alice",
                "accountId": "123456789012",
                "accessKeyId": "ASIAEXAMPLEKEYID0009",
                "userName": "alice",
                "sessionContext": {
                    "sessionIssuer": {},
                    "attributes": {"creationDate": "2025-01-15T11:58:02Z", "mfaAuthenticated": "true"},
                },
            })
        );
        let with_source = Principal::user_session(
            &alice(),
            SessionContext {
                claims: SessionClaims {
                    source_identity: Some("alice@example.com".into()),
                    mfa_authenticated: false,
                    ..claims
                },
                policies: None,
            },
        );
        let v = identity_of(Identity::Principal {
            principal: Arc::new(with_source),
            access_key_id: Arc::from("ASIAEXAMPLEKEYID0009"),
        });
        assert_eq!(
            v["sessionContext"],
            json!({
                "sessionIssuer": {},
                "attributes": {"creationDate": "2025-01-15T11:58:02Z", "mfaAuthenticated": "false"},
                "sourceIdentity": "alice@example.com",
            })
        );
    }

    #[test]
    fn identity_assumed_role() {
        let claims = SessionClaims {
            source_identity: Some("alice".into()),
            mfa_authenticated: true,
            role_arn: Some("arn:aws:iam::123456789012:role/teams/platform/ci-runner".into()),
            ..ci_runner_claims()
        };
        assert_eq!(
            identity_of(role_identity(claims)),
            json!({
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLEROLEID1234:ci-session",
                "arn": "arn:aws:sts::123456789012:assumed-role/ci-runner/ci-session",
                "accountId": "123456789012",
                "accessKeyId": "ASIAEXAMPLEKEYID0001",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAEXAMPLEROLEID1234",
                        "arn": "arn:aws:iam::123456789012:role/teams/platform/ci-runner",
                        "accountId": "123456789012",
                        "userName": "ci-runner",
                    },
                    "attributes": {"creationDate": "2025-01-15T11:58:02Z", "mfaAuthenticated": "true"},
                    "sourceIdentity": "alice",
                },
            })
        );
    }

    #[test]
    fn identity_assumed_role_web_identity() {
        let claims = SessionClaims {
            kind: SessionKind::WebIdentity,
            web_identity: Some(WebIdentityClaims {
                provider: "oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
                audience: "sts.amazonaws.com".into(),
                subject: "system:serviceaccount:default:app".into(),
                amr: vec![],
            }),
            ..ci_runner_claims()
        };
        let v = identity_of(role_identity(claims.clone()));
        assert_eq!(
            v["sessionContext"]["webIdFederationData"],
            json!({
                "federatedProvider":
                    "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
                "attributes": {},
            })
        );
        assert_eq!(
            v["sessionContext"]["sessionIssuer"]["arn"],
            "arn:aws:iam::123456789012:role/ci-runner"
        );
        // sessionIssuer, webIdFederationData, attributes: in that order.
        let text = to_string(&minimal(role_identity(claims.clone())));
        let issuer = text.find("\"sessionIssuer\"").unwrap();
        let web = text.find("\"webIdFederationData\"").unwrap();
        let attributes = text.find("\"attributes\":{\"creationDate\"").unwrap();
        assert!(issuer < web && web < attributes);
        // A well-known provider is named as AWS names it (`aws:FederatedProvider`).
        let google = SessionClaims {
            web_identity: Some(WebIdentityClaims {
                provider: "accounts.google.com".into(),
                ..claims.web_identity.clone().unwrap()
            }),
            ..claims
        };
        assert_eq!(
            identity_of(role_identity(google))["sessionContext"]["webIdFederationData"]
                ["federatedProvider"],
            "accounts.google.com"
        );
    }

    #[test]
    fn identity_assumed_role_without_role_arn_keeps_issuer_arn() {
        let claims = SessionClaims {
            role_arn: None,
            role_id: None,
            ..ci_runner_claims()
        };
        let v = identity_of(role_identity(claims));
        assert_eq!(
            v["sessionContext"]["sessionIssuer"],
            json!({
                "type": "Role",
                "principalId": "",
                "arn": "",
                "accountId": "123456789012",
                "userName": "",
            })
        );
    }

    #[test]
    fn identity_web_identity_user() {
        assert_eq!(
            identity_of(Identity::WebIdentity {
                provider: "accounts.google.com".into(),
                audience: "app1.apps.googleusercontent.com".into(),
                subject: "1234567890".into(),
            }),
            json!({
                "type": "WebIdentityUser",
                "principalId": "accounts.google.com:app1.apps.googleusercontent.com:1234567890",
                "userName": "1234567890",
                "identityProvider": "accounts.google.com",
            })
        );
        // Escaping applies inside the composed principalId too.
        let v = identity_of(Identity::WebIdentity {
            provider: "p\"".into(),
            audience: "a\\".into(),
            subject: "s\n".into(),
        });
        assert_eq!(v["principalId"], "p\":a\\:s\n");
    }

    #[test]
    fn identity_unknown_and_anonymous() {
        assert_eq!(
            identity_of(Identity::Unknown {
                access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into())
            }),
            json!({"type": "Unknown", "principalId": "", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"})
        );
        assert_eq!(
            identity_of(Identity::Unknown {
                access_key_id: None
            }),
            json!({"type": "Unknown", "principalId": ""})
        );
        assert_eq!(
            identity_of(Identity::Anonymous),
            json!({"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"})
        );
    }

    /// A role session opened from a really sealed token: neither the token nor the derived
    /// secret reaches the record.
    #[test]
    fn no_secret_or_token_in_record() {
        use rand::SeedableRng;
        let ring = KeyRing::new(vec![("k1".into(), [7u8; 32])]).unwrap();
        let claims = SessionClaims {
            access_key_id: String::new(),
            source_identity: Some("alice".into()),
            web_identity: Some(WebIdentityClaims {
                provider: "oidc.example.com".into(),
                audience: "sts.amazonaws.com".into(),
                subject: "repo:org/app".into(),
                amr: vec!["authenticated".into()],
            }),
            ..ci_runner_claims()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let issued = token::seal(&ring, &claims, &mut rng).unwrap();
        let token_text = issued.session_token.expose().to_owned();
        let secret = issued.secret_access_key.expose().to_owned();
        let opened = token::open(
            &ring,
            &token_text,
            &issued.access_key_id,
            claims.issued_at + 60,
        )
        .unwrap();
        assert_eq!(opened.secret.expose(), secret);
        let principal = Principal::role_session(
            &[("team".into(), "blue".into())],
            SessionContext {
                claims: opened.claims,
                policies: None,
            },
        );
        let event = Event {
            identity: Identity::Principal {
                principal: Arc::new(principal),
                access_key_id: Arc::from(issued.access_key_id.as_str()),
            },
            user_agent: Some(http::HeaderValue::from_static("aws-cli/2.22.0")),
            detail: Detail {
                signature_version: Some("SigV4"),
                decision: Some("Allowed"),
                ..Detail::default()
            },
            ..get_object_event()
        };
        let text = to_string(&event);
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        assert!(text.contains(&issued.access_key_id));
        assert!(!text.contains(&token_text), "{text}");
        assert!(!text.contains(&secret), "{text}");
        // Not even a recognisable piece of either.
        let (_, token_payload) = token_text.rsplit_once('.').unwrap();
        assert!(!text.contains(&token_payload[..24]));
        assert!(!text.contains(&secret[..16]));
        assert!(!text.contains("v1.k1."));
    }

    // -----------------------------------------------------------------------------------------
    // Escaping and truncation
    // -----------------------------------------------------------------------------------------

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_json_string(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_serde_json() {
        for (input, expected) in [
            ("plain", r#""plain""#),
            ("a\"b", r#""a\"b""#),
            ("a\\b", r#""a\\b""#),
            ("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#),
            ("\u{0}\u{1}\u{1f}", r#""\u0000\u0001\u001f""#),
            ("\u{7f}", "\"\u{7f}\""),
            ("/", r#""/""#),
            ("é€😀", "\"é€😀\""),
            ("\u{2028}\u{2029}", "\"\u{2028}\u{2029}\""),
            ("", r#""""#),
            ("\"\"\\\\", r#""\"\"\\\\""#),
            ("end\\", r#""end\\""#),
        ] {
            assert_eq!(escaped(input), expected, "{input:?}");
            assert_eq!(escaped(input), serde_json::to_string(input).unwrap());
            assert_eq!(
                serde_json::from_str::<String>(&escaped(input)).unwrap(),
                input
            );
        }
        for b in 0u8..0x20 {
            let input = char::from(b).to_string();
            assert_eq!(escaped(&input), serde_json::to_string(&input).unwrap());
        }
    }

    #[test]
    fn user_agent_escaped_and_non_utf8_decoded_lossily() {
        let agent = |bytes: &[u8]| {
            let event = Event {
                user_agent: Some(http::HeaderValue::from_bytes(bytes).unwrap()),
                ..minimal(Identity::Anonymous)
            };
            to_value(&event)["userAgent"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            agent(b"curl/8.5 \"quoted\" \\ back\tslash"),
            "curl/8.5 \"quoted\" \\ back\tslash"
        );
        assert_eq!(agent("agent/é€".as_bytes()), "agent/é€");
        assert_eq!(agent(b"agent/\xff\xfe 1.0"), "agent/\u{fffd}\u{fffd} 1.0");
        assert_eq!(agent(b"agent/\xc3"), "agent/\u{fffd}");
    }

    #[test]
    fn truncate_at_char_boundary() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("a€", 3), "a");
        assert_eq!(truncate("a😀", 4), "a");
        assert_eq!(truncate("a😀", 5), "a😀");
        assert_eq!(truncate("😀", 0), "");
    }

    #[test]
    fn long_fields_truncated_to_1024_bytes() {
        let message = |m: String| {
            let event = Event {
                error: Some(ErrorInfo {
                    code: "AccessDenied",
                    message: m,
                }),
                ..minimal(Identity::Anonymous)
            };
            to_value(&event)["errorMessage"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let exact = "m".repeat(1024);
        assert_eq!(message(exact.clone()), exact);
        assert_eq!(message("m".repeat(5000)), exact);
        assert_eq!(message(format!("{}é", "m".repeat(1023))), "m".repeat(1023));
        assert_eq!(
            message(format!("{}€tail", "m".repeat(1022))),
            "m".repeat(1022)
        );
        assert_eq!(message(format!("{}😀", "m".repeat(1021))), "m".repeat(1021));
        // The limit counts recorded bytes, before escaping.
        let quotes = "\"".repeat(2000);
        assert_eq!(message(quotes), "\"".repeat(1024));

        let agent = |bytes: Vec<u8>| {
            let event = Event {
                user_agent: Some(http::HeaderValue::from_bytes(&bytes).unwrap()),
                ..minimal(Identity::Anonymous)
            };
            to_value(&event)["userAgent"].as_str().unwrap().to_owned()
        };
        assert_eq!(agent(vec![b'x'; 3000]), "x".repeat(1024));
        assert_eq!(agent(vec![b'x'; 1024]), "x".repeat(1024));
        // Each invalid byte becomes U+FFFD (3 bytes): 341 of them fit.
        assert_eq!(agent(vec![0xff; 1000]), "\u{fffd}".repeat(341));
        let mut bytes = vec![b'x'; 1023];
        bytes.extend_from_slice("é".as_bytes());
        assert_eq!(agent(bytes), "x".repeat(1023));
    }

    // -----------------------------------------------------------------------------------------
    // Values
    // -----------------------------------------------------------------------------------------

    #[test]
    fn values_serialize_naturally() {
        let event = Event {
            request_parameters: Some(obj(&[
                ("s", s("x\"y")),
                ("zero", Value::Int(0)),
                ("neg", Value::Int(-42)),
                ("min", Value::Int(i64::MIN)),
                ("max", Value::Int(i64::MAX)),
                ("t", Value::Bool(true)),
                ("f", Value::Bool(false)),
                ("empty_list", Value::List(vec![])),
                ("empty_object", Value::Object(vec![])),
                (
                    "tags",
                    Value::List(vec![
                        Value::Object(obj(&[("key", s("team")), ("value", s("blue"))])),
                        Value::List(vec![Value::Int(1), s("2")]),
                    ]),
                ),
            ])),
            response_elements: Some(obj(&[("ok", Value::Bool(true))])),
            ..minimal(Identity::Anonymous)
        };
        let text = to_string(&event);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["requestParameters"],
            json!({
                "s": "x\"y",
                "zero": 0,
                "neg": -42,
                "min": i64::MIN,
                "max": i64::MAX,
                "t": true,
                "f": false,
                "empty_list": [],
                "empty_object": {},
                "tags": [{"key": "team", "value": "blue"}, [1, "2"]],
            })
        );
        assert_eq!(v["responseElements"], json!({"ok": true}));
        // Members stay in order.
        assert!(text.contains(
            "\"requestParameters\":{\"s\":\"x\\\"y\",\"zero\":0,\"neg\":-42,\
             \"min\":-9223372036854775808,\"max\":9223372036854775807,"
        ));
    }

    #[test]
    fn deep_values_are_cut_not_overflowed() {
        let mut deep = Value::Int(1);
        for i in 0..10_000 {
            deep = if i % 2 == 0 {
                Value::List(vec![deep])
            } else {
                Value::Object(vec![("k".into(), deep)])
            };
        }
        let event = Event {
            request_parameters: Some(vec![("deep".into(), deep)]),
            ..minimal(Identity::Anonymous)
        };
        let mut out = Vec::new();
        write_json(&event, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(
            v["requestParameters"]["deep"].is_object() || v["requestParameters"]["deep"].is_array()
        );
        assert!(out.windows(4).any(|w| w == b"null"));
        // Dropping the deep value recurses too; leak it to keep the test about the writer.
        std::mem::forget(event);
        // Shallow values keep every level.
        let mut shallow = Value::Int(7);
        for _ in 0..(MAX_VALUE_DEPTH - 1) {
            shallow = Value::List(vec![shallow]);
        }
        let event = Event {
            request_parameters: Some(vec![("v".into(), shallow)]),
            ..minimal(Identity::Anonymous)
        };
        let text = to_string(&event);
        assert!(
            text.contains(&format!("{}7{}", "[".repeat(31), "]".repeat(31))),
            "{text}"
        );
    }

    // -----------------------------------------------------------------------------------------
    // Times
    // -----------------------------------------------------------------------------------------

    #[test]
    fn expiration_text_format() {
        for (epoch, text) in [
            (at(2025, 1, 15, 12, 58, 2), "Jan 15, 2025, 12:58:02 PM"),
            (at(2019, 10, 2, 23, 12, 29), "Oct 2, 2019, 11:12:29 PM"),
            (0, "Jan 1, 1970, 12:00:00 AM"),
            (at(2024, 2, 29, 0, 0, 0), "Feb 29, 2024, 12:00:00 AM"),
            (at(2024, 2, 29, 0, 59, 59), "Feb 29, 2024, 12:59:59 AM"),
            (at(2024, 3, 1, 1, 0, 0), "Mar 1, 2024, 1:00:00 AM"),
            (at(2024, 4, 9, 11, 59, 59), "Apr 9, 2024, 11:59:59 AM"),
            (at(2024, 5, 5, 12, 0, 0), "May 5, 2024, 12:00:00 PM"),
            (at(2024, 6, 30, 12, 30, 5), "Jun 30, 2024, 12:30:05 PM"),
            (at(2024, 7, 4, 13, 0, 0), "Jul 4, 2024, 1:00:00 PM"),
            (at(2024, 8, 1, 9, 5, 7), "Aug 1, 2024, 9:05:07 AM"),
            (at(2024, 9, 10, 23, 59, 59), "Sep 10, 2024, 11:59:59 PM"),
            (at(2024, 11, 11, 18, 0, 0), "Nov 11, 2024, 6:00:00 PM"),
            (at(2024, 12, 31, 23, 59, 59), "Dec 31, 2024, 11:59:59 PM"),
        ] {
            assert_eq!(expiration_text(epoch), text, "{epoch}");
        }
    }

    #[test]
    fn event_time_format() {
        let event = Event {
            event_time: at(2025, 1, 5, 3, 4, 9),
            ..minimal(Identity::Anonymous)
        };
        let text = to_string(&event);
        assert!(
            text.contains("\"eventTime\":\"2025-01-05T03:04:09Z\""),
            "{text}"
        );
        for epoch in [
            0,
            -1,
            86_399,
            951_782_400,
            at(9999, 12, 31, 23, 59, 59),
            at(10_000, 1, 1, 0, 0, 0),
            at(-1, 12, 31, 0, 0, 0),
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            push_iso8601(&mut out, epoch);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                crate::time::iso8601(epoch),
                "{epoch}"
            );
        }
    }

    fn is_event_time(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 20
            && b.iter().enumerate().all(|(i, &c)| match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'Z',
                _ => c.is_ascii_digit(),
            })
    }

    // -----------------------------------------------------------------------------------------
    // Properties
    // -----------------------------------------------------------------------------------------

    /// Header-value bytes: anything but controls other than tab, and DEL.
    fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_map(|b| {
                if (b < 0x20 && b != b'\t') || b == 0x7f {
                    b'x'
                } else {
                    b
                }
            }),
            0..1300,
        )
    }

    /// Strings heavy in characters that need escaping, plus arbitrary Unicode.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\"\\\\\u{0}-\u{1f}a é€😀\u{2028}\u{7f}]{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn escaper_matches_serde_json(s in text()) {
            let out = escaped(&s);
            prop_assert_eq!(&out, &serde_json::to_string(&s).unwrap());
            prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }

        #[test]
        fn find_escape_matches_byte_scan(bytes in proptest::collection::vec(
            prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>()],
            0..64,
        )) {
            prop_assert_eq!(
                find_escape(&bytes),
                bytes.iter().position(|&b| needs_escape(b))
            );
        }

        #[test]
        fn event_time_matches_iso8601(epoch in -62_167_219_200i64..253_402_300_800) {
            let mut out = Vec::new();
            push_iso8601(&mut out, epoch);
            let text = String::from_utf8(out).unwrap();
            prop_assert!(is_event_time(&text), "{}", text);
            prop_assert_eq!(text, crate::time::iso8601(epoch));
        }

        #[test]
        fn random_strings_round_trip(
            f in proptest::collection::vec(text(), 24),
            agent in header_bytes(),
            message_extra in "[a€😀]{0,400}",
            variant in 0u8..5,
            epoch in 0i64..4_102_444_800,
            n in any::<i64>(),
            flag in any::<bool>(),
        ) {
            let g = |i: usize| f[i].clone();
            let identity = match variant {
                0 => Identity::Principal {
                    principal: Arc::new(Principal::iam_user(g(0), g(1), g(2), g(3), vec![])),
                    access_key_id: Arc::from(g(4).as_str()),
                },
                1 => role_identity(SessionClaims {
                    access_key_id: g(4),
                    account: g(1),
                    arn: g(0),
                    user_id: g(3),
                    role_arn: Some(format!("{}/{}", g(5), g(2).replace('/', ""))),
                    role_id: Some(g(6)),
                    source_identity: Some(g(7)),
                    web_identity: Some(WebIdentityClaims {
                        provider: g(8),
                        audience: g(9),
                        subject: g(10),
                        amr: vec![],
                    }),
                    ..ci_runner_claims()
                }),
                2 => Identity::WebIdentity { provider: g(8), audience: g(9), subject: g(10) },
                3 => Identity::Unknown { access_key_id: Some(g(4)) },
                _ => Identity::Anonymous,
            };
            let message = format!("{}{}", g(11), message_extra.repeat(3));
            let event = Event {
                event_time: epoch,
                request_id: Arc::from(g(12).as_str()),
                identity,
                event_source: Arc::from(g(13).as_str()),
                event_name: Arc::from(g(14).as_str()),
                region: Arc::from(g(15).as_str()),
                user_agent: Some(http::HeaderValue::from_bytes(&agent).unwrap()),
                error: Some(ErrorInfo { code: "AccessDenied", message: message.clone() }),
                request_parameters: Some(vec![
                    (g(16), Value::Str(g(17))),
                    ("n".into(), Value::Int(n)),
                    ("list".into(), Value::List(vec![Value::Str(g(18)), Value::Bool(flag)])),
                ]),
                response_elements: Some(vec![(
                    "nested".into(),
                    Value::Object(vec![(g(18), Value::Str(g(19)))]),
                )]),
                detail: Detail {
                    policy: Some(g(19)),
                    statement: Some(g(20)),
                    action: Some(g(21)),
                    ..Detail::default()
                },
                read_only: Some(flag),
                resources: vec![ResourceRef {
                    arn: g(22),
                    account_id: Some(Arc::from(g(23).as_str())),
                    kind: Arc::from(g(0).as_str()),
                }],
                recipient_account: Arc::from(g(1).as_str()),
                tls: Some(TlsDetails { version: g(2), cipher_suite: g(3), host: Some(g(5)) }),
                ..minimal(Identity::Anonymous)
            };
            let record = serialize(&event);
            let v: serde_json::Value = serde_json::from_slice(&record.json).unwrap();
            prop_assert!(is_event_time(v["eventTime"].as_str().unwrap()));
            prop_assert_eq!(&v["requestID"], &json!(g(12)));
            prop_assert_eq!(&v["eventSource"], &json!(g(13)));
            prop_assert_eq!(&v["eventName"], &json!(g(14)));
            prop_assert_eq!(&v["awsRegion"], &json!(g(15)));
            prop_assert_eq!(&v["recipientAccountId"], &json!(g(1)));
            let lossy = String::from_utf8_lossy(&agent);
            prop_assert_eq!(&v["userAgent"], &json!(truncate(&lossy, MAX_FIELD_LEN)));
            prop_assert!(v["userAgent"].as_str().unwrap().len() <= MAX_FIELD_LEN);
            prop_assert_eq!(&v["errorMessage"], &json!(truncate(&message, MAX_FIELD_LEN)));
            // A generated key equal to "n" or "list" is overwritten by the later member, in the
            // parsed output as in this map.
            let mut parameters = serde_json::Map::new();
            parameters.insert(g(16), json!(g(17)));
            parameters.insert("n".into(), json!(n));
            parameters.insert("list".into(), json!([g(18), flag]));
            prop_assert_eq!(&v["requestParameters"], &serde_json::Value::Object(parameters));
            prop_assert_eq!(&v["responseElements"]["nested"], &json!({ g(18): g(19) }));
            prop_assert_eq!(&v["additionalEventData"]["DecidingPolicy"], &json!(g(19)));
            prop_assert_eq!(&v["additionalEventData"]["DecidingStatement"], &json!(g(20)));
            prop_assert_eq!(&v["additionalEventData"]["Action"], &json!(g(21)));
            prop_assert_eq!(&v["readOnly"], &json!(flag));
            prop_assert_eq!(
                &v["resources"],
                &json!([{ "accountId": g(23), "type": g(0), "ARN": g(22) }])
            );
            prop_assert_eq!(
                &v["tlsDetails"],
                &json!({ "tlsVersion": g(2), "cipherSuite": g(3), "clientProvidedHostHeader": g(5) })
            );
            let identity = &v["userIdentity"];
            match variant {
                0 => prop_assert_eq!(
                    identity,
                    &json!({
                        "type": "IAMUser", "principalId": g(3), "arn": g(0), "accountId": g(1),
                        "accessKeyId": g(4), "userName": g(2),
                    })
                ),
                1 => {
                    prop_assert_eq!(&identity["principalId"], &json!(g(3)));
                    prop_assert_eq!(&identity["arn"], &json!(g(0)));
                    prop_assert_eq!(&identity["accessKeyId"], &json!(g(4)));
                    let issuer = &identity["sessionContext"]["sessionIssuer"];
                    prop_assert_eq!(
                        &issuer["arn"],
                        &json!(format!("{}/{}", g(5), g(2).replace('/', "")))
                    );
                    prop_assert_eq!(&issuer["userName"], &json!(g(2).replace('/', "")));
                    prop_assert_eq!(&issuer["principalId"], &json!(g(6)));
                    prop_assert_eq!(&identity["sessionContext"]["sourceIdentity"], &json!(g(7)));
                    prop_assert_eq!(
                        &identity["sessionContext"]["webIdFederationData"]["federatedProvider"],
                        &json!(crate::sts::oidc::federated_principal(&g(8), &g(1)))
                    );
                }
                2 => prop_assert_eq!(
                    identity,
                    &json!({
                        "type": "WebIdentityUser",
                        "principalId": format!("{}:{}:{}", g(8), g(9), g(10)),
                        "userName": g(10),
                        "identityProvider": g(8),
                    })
                ),
                3 => prop_assert_eq!(
                    identity,
                    &json!({ "type": "Unknown", "principalId": "", "accessKeyId": g(4) })
                ),
                _ => prop_assert_eq!(&identity["type"], &json!("AWSAccount")),
            }
        }
    }
}
