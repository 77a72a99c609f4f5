//! The CloudTrail record writer on events built from arbitrary input: every identity kind,
//! arbitrary text in every string field, arbitrary user-agent bytes (any `HeaderValue`,
//! invalid UTF-8 included), nested `requestParameters` / `responseElements` deeper than
//! `MAX_VALUE_DEPTH`, any `eventTime`. Must never panic, and `write_json` must always append
//! exactly one valid JSON object that says what the event says:
//!
//! - `serde_json` parses it; no object the writer makes has a key twice;
//! - every string field reads back as the event's text (`userAgent` and `errorMessage` cut to
//!   1 KB at a character boundary, invalid UTF-8 as U+FFFD), `eventTime` as `time::iso8601`,
//!   `sourceIPAddress` as the address, `eventID` as the hyphenated UUID;
//! - `requestParameters` / `responseElements` read back member for member, in order, with
//!   containers nested deeper than `MAX_VALUE_DEPTH` as `null`;
//! - `serialize` gives the same bytes; `write_json_string` reads back as its input.
//!
//! Input: consumed by `arbitrary::Unstructured` (any bytes make an event). Seeds
//! (`seeds/audit_record/`) are arbitrary bytes that drive the main shapes.
#![no_main]

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use tollgate::audit::record::{
    expiration_text, serialize, write_json, write_json_string, EVENT_VERSION, MAX_FIELD_LEN,
    MAX_VALUE_DEPTH,
};
use tollgate::audit::{
    Category, Detail, ErrorInfo, Event, Identity, ResourceRef, TlsDetails, Value,
};
use tollgate::credentials::{Principal, PrincipalKind, SessionContext};
use tollgate::sts::token::{SessionClaims, SessionKind, WebIdentityClaims};
use tollgate::time::iso8601;

/// Parsed JSON that keeps object members in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(J::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// No object has a key twice, except inside the caller-built parameter objects.
    fn assert_unique_keys(&self) {
        match self {
            J::Arr(items) => items.iter().for_each(J::assert_unique_keys),
            J::Obj(members) => {
                for (i, (k, v)) in members.iter().enumerate() {
                    assert!(
                        !members[..i].iter().any(|(seen, _)| seen == k),
                        "the key {k:?} is written twice"
                    );
                    if k != "requestParameters" && k != "responseElements" {
                        v.assert_unique_keys();
                    }
                }
            }
            _ => {}
        }
    }
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> std::result::Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> std::result::Result<J, E> {
                Ok(J::Int(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> std::result::Result<J, E> {
                Ok(J::Int(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> std::result::Result<J, E> {
                Ok(J::Float(n))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<J, E> {
                Ok(J::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<J, E> {
                Ok(J::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> std::result::Result<J, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(J::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> std::result::Result<J, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = a.next_entry()? {
                    members.push(member);
                }
                Ok(J::Obj(members))
            }
        }
        d.deserialize_any(V)
    }
}

fn jstr(s: &str) -> J {
    J::Str(s.to_owned())
}

/// What `requestParameters` members read back as (`depth`: as the writer counts it).
fn expected_members(members: &[(String, Value)], depth: usize) -> J {
    J::Obj(
        members
            .iter()
            .map(|(k, v)| (k.clone(), expected_value(v, depth + 1)))
            .collect(),
    )
}

fn expected_value(value: &Value, depth: usize) -> J {
    match value {
        Value::Str(s) => jstr(s),
        Value::Int(n) => J::Int((*n).into()),
        Value::Bool(b) => J::Bool(*b),
        Value::List(_) | Value::Object(_) if depth > MAX_VALUE_DEPTH => J::Null,
        Value::List(items) => J::Arr(items.iter().map(|v| expected_value(v, depth + 1)).collect()),
        Value::Object(members) => expected_members(members, depth),
    }
}

fn expected_params(members: Option<&[(String, Value)]>) -> J {
    members.map_or(J::Null, |m| expected_members(m, 1))
}

/// The longest prefix of at most `max` bytes ending at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `&'static str` fields: the values the request path uses, and some that need escaping.
const STATIC: &[&str] = &[
    "",
    "AccessDenied",
    "SignatureDoesNotMatch",
    "SigV4",
    "AuthHeader",
    "QueryString",
    "UNSIGNED-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "Allowed",
    "ExplicitDeny",
    "ImplicitDeny",
    "proxy",
    "extauthz-grpc",
    "quote\"back\\slash",
    "ctl\u{0}\u{1f}\n\r\t\u{8}\u{c}\u{7f}",
    "ünï\u{2028}\u{fffd}😀",
];

fn pick(u: &mut Unstructured<'_>) -> Result<&'static str> {
    u.choose(STATIC).copied()
}

fn opt_pick(u: &mut Unstructured<'_>) -> Result<Option<&'static str>> {
    Ok(if u.arbitrary()? { Some(pick(u)?) } else { None })
}

fn value(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    let max = if depth > 40 { 2 } else { 6 };
    Ok(match u.int_in_range(0..=max)? {
        0 => Value::Str(u.arbitrary()?),
        1 => Value::Int(u.arbitrary()?),
        2 => Value::Bool(u.arbitrary()?),
        3 => Value::List(
            (0..u.int_in_range(0..=3)?)
                .map(|_| value(u, depth + 1))
                .collect::<Result<_>>()?,
        ),
        4 | 5 => Value::Object(members(u, depth + 1)?),
        // Past `MAX_VALUE_DEPTH` cheaply: a chain of single-item containers around a value.
        _ => {
            let mut v = value(u, depth + 40)?;
            for _ in 0..u.int_in_range(MAX_VALUE_DEPTH - 8..=MAX_VALUE_DEPTH + 8)? {
                v = if u.arbitrary()? {
                    Value::List(vec![v])
                } else {
                    Value::Object(vec![(u.arbitrary()?, v)])
                };
            }
            v
        }
    })
}

fn members(u: &mut Unstructured<'_>, depth: usize) -> Result<Vec<(String, Value)>> {
    (0..u.int_in_range(0..=3)?)
        .map(|_| Ok((u.arbitrary()?, value(u, depth)?)))
        .collect()
}

fn opt_members(u: &mut Unstructured<'_>) -> Result<Option<Vec<(String, Value)>>> {
    Ok(if u.arbitrary()? {
        Some(members(u, 0)?)
    } else {
        None
    })
}

fn claims(u: &mut Unstructured<'_>, kind: SessionKind) -> Result<SessionClaims> {
    Ok(SessionClaims {
        access_key_id: u.arbitrary()?,
        issued_at: u.arbitrary()?,
        expires_at: u.arbitrary()?,
        account: u.arbitrary()?,
        kind,
        arn: u.arbitrary()?,
        user_id: u.arbitrary()?,
        role_arn: u.arbitrary()?,
        role_id: u.arbitrary()?,
        session_name: u.arbitrary()?,
        source_identity: u.arbitrary()?,
        tags: u.arbitrary()?,
        transitive_tag_keys: vec![],
        session_policy: None,
        policy_arns: vec![],
        chained: u.arbitrary()?,
        mfa_authenticated: u.arbitrary()?,
        web_identity: if u.arbitrary()? {
            Some(WebIdentityClaims {
                provider: u.arbitrary()?,
                audience: u.arbitrary()?,
                subject: u.arbitrary()?,
                amr: vec![],
            })
        } else {
            None
        },
        parent_user_arn: None,
    })
}

fn identity(u: &mut Unstructured<'_>) -> Result<Identity> {
    Ok(match u.int_in_range(0..=5)? {
        0 | 1 => {
            let user = Principal::iam_user(
                u.arbitrary()?,
                u.arbitrary()?,
                u.arbitrary()?,
                u.arbitrary()?,
                u.arbitrary()?,
            );
            let principal = if u.arbitrary()? {
                let claims = claims(u, SessionKind::SessionToken)?;
                Principal::user_session(
                    &user,
                    SessionContext {
                        claims,
                        policies: None,
                    },
                )
            } else {
                user
            };
            Identity::Principal {
                principal: Arc::new(principal),
                access_key_id: Arc::from(u.arbitrary::<&str>()?),
            }
        }
        2 => {
            let kind = if u.arbitrary()? {
                SessionKind::AssumedRole
            } else {
                SessionKind::WebIdentity
            };
            let claims = claims(u, kind)?;
            Identity::Principal {
                principal: Arc::new(Principal::role_session(
                    &[],
                    SessionContext {
                        claims,
                        policies: None,
                    },
                )),
                access_key_id: Arc::from(u.arbitrary::<&str>()?),
            }
        }
        3 => Identity::WebIdentity {
            provider: u.arbitrary()?,
            audience: u.arbitrary()?,
            subject: u.arbitrary()?,
        },
        4 => Identity::Unknown {
            access_key_id: u.arbitrary()?,
        },
        _ => Identity::Anonymous,
    })
}

/// Any bytes a `HeaderValue` can hold (visible ASCII, tab, space and obs-text 0x80–0xFF).
fn user_agent(u: &mut Unstructured<'_>) -> Result<Option<http::HeaderValue>> {
    if !u.arbitrary()? {
        return Ok(None);
    }
    // Long enough to be cut now and then.
    let mut bytes: Vec<u8> = u.arbitrary()?;
    if u.arbitrary()? {
        let times = u.int_in_range(1..=12)?;
        bytes = bytes.repeat(times * (MAX_FIELD_LEN / bytes.len().max(1) / 4 + 1));
    }
    bytes.retain(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    Ok(http::HeaderValue::from_bytes(&bytes).ok())
}

fn event(u: &mut Unstructured<'_>) -> Result<Event> {
    let source_ip = if u.arbitrary()? {
        IpAddr::from(u.arbitrary::<[u8; 4]>()?)
    } else {
        IpAddr::from(u.arbitrary::<[u8; 16]>()?)
    };
    Ok(Event {
        event_time: u.arbitrary()?,
        event_id: uuid::Uuid::from_bytes(u.arbitrary()?),
        request_id: Arc::from(u.arbitrary::<&str>()?),
        identity: identity(u)?,
        event_source: Arc::from(u.arbitrary::<&str>()?),
        event_name: Arc::from(u.arbitrary::<&str>()?),
        region: Arc::from(u.arbitrary::<&str>()?),
        source_ip,
        user_agent: user_agent(u)?,
        error: if u.arbitrary()? {
            let mut message: String = u.arbitrary()?;
            if u.arbitrary()? {
                message = message.repeat(MAX_FIELD_LEN / message.len().max(1) + 1);
            }
            Some(ErrorInfo {
                code: pick(u)?,
                message,
            })
        } else {
            None
        },
        request_parameters: opt_members(u)?,
        response_elements: opt_members(u)?,
        detail: Detail {
            signature_version: opt_pick(u)?,
            authentication_method: opt_pick(u)?,
            payload: opt_pick(u)?,
            decision: opt_pick(u)?,
            policy: u.arbitrary()?,
            statement: u.arbitrary()?,
            denied_by: opt_pick(u)?,
            action: u.arbitrary()?,
            mode: opt_pick(u)?,
        },
        read_only: u.arbitrary()?,
        resources: (0..u.int_in_range(0..=3)?)
            .map(|_| {
                Ok(ResourceRef {
                    arn: u.arbitrary()?,
                    account_id: u.arbitrary::<Option<&str>>()?.map(Arc::from),
                    kind: Arc::from(u.arbitrary::<&str>()?),
                })
            })
            .collect::<Result<_>>()?,
        category: if u.arbitrary()? {
            Category::Management
        } else {
            Category::Data
        },
        recipient_account: Arc::from(u.arbitrary::<&str>()?),
        tls: if u.arbitrary()? {
            Some(TlsDetails {
                version: u.arbitrary()?,
                cipher_suite: u.arbitrary()?,
                host: u.arbitrary()?,
            })
        } else {
            None
        },
    })
}

fn check_identity(identity: &Identity, v: &J) {
    match identity {
        Identity::Principal {
            principal,
            access_key_id,
        } => {
            assert_eq!(v.str("arn"), Some(principal.arn.as_str()));
            assert_eq!(v.str("accountId"), Some(principal.account_id.as_str()));
            assert_eq!(v.str("accessKeyId"), Some(&**access_key_id));
            if let Some(session) = &principal.session {
                let context = v.get("sessionContext").expect("sessionContext");
                let attributes = context.get("attributes").expect("attributes");
                let created = iso8601(session.claims.issued_at);
                assert_eq!(attributes.str("creationDate"), Some(created.as_str()));
                assert_eq!(
                    attributes.str("mfaAuthenticated"),
                    Some(if session.claims.mfa_authenticated {
                        "true"
                    } else {
                        "false"
                    })
                );
                if principal.kind == PrincipalKind::AssumedRole {
                    assert_eq!(
                        context.get("sessionIssuer").and_then(|i| i.str("arn")),
                        Some(session.claims.role_arn.as_deref().unwrap_or(""))
                    );
                }
                assert_eq!(
                    context.str("sourceIdentity"),
                    session.claims.source_identity.as_deref()
                );
            }
        }
        Identity::WebIdentity {
            provider,
            audience,
            subject,
        } => {
            assert_eq!(v.str("type"), Some("WebIdentityUser"));
            let id = format!("{provider}:{audience}:{subject}");
            assert_eq!(v.str("principalId"), Some(id.as_str()));
            assert_eq!(v.str("userName"), Some(subject.as_str()));
            assert_eq!(v.str("identityProvider"), Some(provider.as_str()));
        }
        Identity::Unknown { access_key_id } => {
            assert_eq!(v.str("type"), Some("Unknown"));
            assert_eq!(v.str("accessKeyId"), access_key_id.as_deref());
        }
        Identity::Anonymous => assert_eq!(v.str("accountId"), Some("ANONYMOUS_PRINCIPAL")),
    }
}

fn check(event: &Event) {
    let mut out = Vec::new();
    write_json(event, &mut out);
    let v: J = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "write_json wrote invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    });
    // Exactly one value: `from_slice` refuses anything after it.
    v.assert_unique_keys();
    assert_eq!(serialize(event).json, out);

    assert_eq!(v.str("eventVersion"), Some(EVENT_VERSION));
    assert_eq!(v.str("eventTime"), Some(iso8601(event.event_time).as_str()));
    assert_eq!(v.str("eventSource"), Some(&*event.event_source));
    assert_eq!(v.str("eventName"), Some(&*event.event_name));
    assert_eq!(v.str("awsRegion"), Some(&*event.region));
    assert_eq!(
        v.str("sourceIPAddress"),
        Some(event.source_ip.to_string().as_str())
    );
    assert_eq!(v.str("requestID"), Some(&*event.request_id));
    assert_eq!(
        v.str("eventID"),
        Some(event.event_id.hyphenated().to_string().as_str())
    );
    assert_eq!(v.str("recipientAccountId"), Some(&*event.recipient_account));
    assert_eq!(
        v.str("userAgent").map(str::to_owned),
        event.user_agent.as_ref().map(|a| {
            truncate(&String::from_utf8_lossy(a.as_bytes()), MAX_FIELD_LEN).to_owned()
        })
    );
    assert_eq!(v.str("errorCode"), event.error.as_ref().map(|e| e.code));
    assert_eq!(
        v.str("errorMessage"),
        event
            .error
            .as_ref()
            .map(|e| truncate(&e.message, MAX_FIELD_LEN))
    );
    assert_eq!(
        v.get("requestParameters"),
        Some(&expected_params(event.request_parameters.as_deref()))
    );
    assert_eq!(
        v.get("responseElements"),
        Some(&expected_params(event.response_elements.as_deref()))
    );
    assert_eq!(v.get("readOnly"), event.read_only.map(J::Bool).as_ref());
    assert_eq!(
        v.get("managementEvent"),
        Some(&J::Bool(event.category == Category::Management))
    );
    match v.get("resources") {
        None => assert!(event.resources.is_empty()),
        Some(J::Arr(items)) => {
            assert_eq!(items.len(), event.resources.len());
            for (item, r) in items.iter().zip(&event.resources) {
                assert_eq!(item.str("ARN"), Some(r.arn.as_str()));
                assert_eq!(item.str("type"), Some(&*r.kind));
                assert_eq!(item.str("accountId"), r.account_id.as_deref());
            }
        }
        Some(other) => panic!("resources is {other:?}"),
    }
    let tls = v.get("tlsDetails");
    assert_eq!(tls.is_some(), event.tls.is_some());
    if let (Some(got), Some(t)) = (tls, &event.tls) {
        assert_eq!(got.str("tlsVersion"), Some(t.version.as_str()));
        assert_eq!(got.str("cipherSuite"), Some(t.cipher_suite.as_str()));
        assert_eq!(got.str("clientProvidedHostHeader"), t.host.as_deref());
    }
    let d = &event.detail;
    let extra = v.get("additionalEventData");
    let fields = [
        ("SignatureVersion", d.signature_version),
        ("AuthenticationMethod", d.authentication_method),
        ("PayloadMode", d.payload),
        ("Decision", d.decision),
        ("DecidingPolicy", d.policy.as_deref()),
        ("DecidingStatement", d.statement.as_deref()),
        ("DeniedBy", d.denied_by),
        ("Action", d.action.as_deref()),
        ("Mode", d.mode),
    ];
    assert_eq!(extra.is_some(), fields.iter().any(|(_, f)| f.is_some()));
    if let Some(extra) = extra {
        for (name, field) in fields {
            assert_eq!(extra.str(name), field, "{name}");
        }
    }
    check_identity(
        &event.identity,
        v.get("userIdentity").expect("userIdentity"),
    );

    // Appends: whatever was in the buffer stays in front.
    let mut appended = b"[".to_vec();
    write_json(event, &mut appended);
    appended.push(b']');
    assert!(serde_json::from_slice::<J>(&appended).is_ok());
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(event) = event(&mut u) {
        check(&event);
        let _ = expiration_text(event.event_time);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let mut out = Vec::new();
        write_json_string(s, &mut out);
        assert_eq!(
            serde_json::from_slice::<String>(&out).ok().as_deref(),
            Some(s)
        );
    }
});
