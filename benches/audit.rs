//! Audit records (`audit::record`): what the writer thread spends per record, alone and together
//! with the gzip compression of the log file body it goes into.
//!
//! Workloads:
//! - `role_get_object`: a typical data event — an `AssumedRole` session (role ARN and id,
//!   session context) calling S3 `GetObject`, a 60-byte user agent, `requestParameters`
//!   `bucketName` / `key` / `Host`, `additionalEventData` with the decision detail (signature
//!   version, authentication method, payload mode, decision, deciding policy and statement,
//!   action, mode), two resources and TLS details (reference `cloudtrail.md` §5, second record);
//!   ≈ 1.5 KB of JSON;
//! - `user_denied`: an `IAMUser` S3 `PutObject` refused with `AccessDenied` (error code and a
//!   190-byte IAM-style message, implicit-deny detail, one resource, no TLS); ≈ 1.1 KB.
//!
//! Group `serialize` (one record per call): `tollgate` is [`record::serialize`] (a fresh buffer,
//! every field formatted: event time, event id, source IP, session creation date, escaping).
//! Peer: `serde_json` is `serde_json::to_vec` of an equivalent `#[derive(Serialize)]` struct
//! tree that borrows the event's strings — given its best case: its event time, event id,
//! source IP and creation date are formatted beforehand, outside the measurement.
//!
//! Group `serialize_gzip` (per record, measured by batches of 1,000 distinct records — event and
//! request ids, times, object keys and source IPs vary, so the compressor does not see one record
//! repeated): each record is serialized with [`record::write_json`] into a reused buffer and fed,
//! comma-separated between `{"Records":[` and `]}` as a log file body, to a flate2
//! `GzEncoder<Vec<u8>>` (zlib-rs backend) that is finished at the end of the batch.
//! `tollgate_gzip_fast` uses `Compression::fast()` (level 1), `tollgate_gzip_default`
//! `Compression::default()` (level 6). `records/s` is what one core sustains.
//!
//! Every routine checks its result once before measuring (records parse and equal the peer's;
//! batches decompress to a body of 1,000 records), so a bench cannot silently measure something
//! else. A full run ends with a summary: interleaved rounds, minimum and median ns per record,
//! records per second at the minimum, and the ratio to the `serde_json` peer — stable on a
//! machine whose background load varies.
//!
//! Run: `cargo bench --bench audit`; results in `target/criterion/<group>/<function>/`.
//! `AUDIT_SUMMARY_ONLY=1 cargo bench --bench audit` prints the summary alone.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use flate2::write::GzEncoder;
use flate2::Compression;
use rand::{Rng, SeedableRng};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
#[path = "common/mod.rs"]
mod common;

use common::{interleaved_stats, run_criterion, wants_summary, Case};
use tollgate::audit::pipeline::Auditor;
use tollgate::audit::record;
use tollgate::audit::{
    Category, Detail, ErrorInfo, Event, Identity, ResourceRef, TlsDetails, Value,
};
use tollgate::audit::{Deferred, Serialized, Sink, SinkError};
use tollgate::config::Overflow;
use tollgate::credentials::{Principal, PrincipalKind, SessionContext};
use tollgate::sts::token::{SessionClaims, SessionKind};
use tollgate::telemetry::Metrics;

/// 2025-01-15T12:01:07Z.
const NOW: i64 = 1_736_942_467;
/// Records per gzip batch.
const BATCH: usize = 1_000;
const USER_AGENT: &str = "aws-sdk-rust/1.3.0 os/linux lang/rust/1.85.0 md/http#hyper-1";

fn role_claims() -> SessionClaims {
    SessionClaims {
        access_key_id: "ASIAEXAMPLEKEYID0001".into(),
        issued_at: NOW - 185,
        expires_at: NOW + 3415,
        account: "123456789012".into(),
        kind: SessionKind::AssumedRole,
        arn: "arn:aws:sts::123456789012:assumed-role/ci-runner/ci-session".into(),
        user_id: "AROAEXAMPLEROLEID1234:ci-session".into(),
        role_arn: Some("arn:aws:iam::123456789012:role/ci-runner".into()),
        role_id: Some("AROAEXAMPLEROLEID1234".into()),
        session_name: Some("ci-session".into()),
        source_identity: None,
        tags: vec![("team".into(), "blue".into()), ("env".into(), "dev".into())],
        transitive_tag_keys: vec![],
        session_policy: None,
        policy_arns: vec![],
        chained: false,
        mfa_authenticated: false,
        web_identity: None,
        parent_user_arn: None,
    }
}

fn role_principal() -> Arc<Principal> {
    Arc::new(Principal::role_session(
        &[],
        SessionContext {
            claims: role_claims(),
            policies: None,
        },
    ))
}

fn user_principal() -> Arc<Principal> {
    Arc::new(Principal::iam_user(
        "arn:aws:iam::123456789012:user/alice".into(),
        "123456789012".into(),
        "alice".into(),
        "AIDAEXAMPLEUSERID0001".into(),
        vec![],
    ))
}

fn str_value(s: &str) -> Value {
    Value::Str(s.to_owned())
}

/// The `i`-th record of a workload; `i = 0` is the one measured alone.
fn role_get_object(i: u64, rng: &mut impl Rng, principal: &Arc<Principal>) -> Event {
    let key = format!("builds/{:04}/app-{:x}.tar.gz", i % 977, rng.gen::<u32>());
    Event {
        event_time: NOW + (i / 20) as i64,
        event_id: uuid::Uuid::from_u128(rng.gen()),
        request_id: Arc::from(uuid::Uuid::from_u128(rng.gen()).to_string()),
        identity: Identity::Principal {
            principal: principal.clone(),
            access_key_id: Arc::from("ASIAEXAMPLEKEYID0001"),
        },
        event_source: Arc::from("s3.amazonaws.com"),
        event_name: Arc::from("GetObject"),
        region: Arc::from("us-east-1"),
        source_ip: IpAddr::V4(Ipv4Addr::new(10, 0, (i % 7) as u8, (i % 251) as u8)),
        user_agent: Some(http::HeaderValue::from_static(USER_AGENT)),
        error: None,
        request_parameters: Some(vec![
            ("bucketName".into(), str_value("artifacts")),
            ("key".into(), Value::Str(key.clone())),
            (
                "Host".into(),
                str_value("artifacts.s3.us-east-1.amazonaws.com"),
            ),
        ]),
        response_elements: None,
        detail: Detail {
            signature_version: Some("SigV4"),
            authentication_method: Some("AuthHeader"),
            payload: Some("UNSIGNED-PAYLOAD"),
            decision: Some("Allowed"),
            policy: Some("arn:aws:iam::123456789012:policy/ci-artifacts-read".into()),
            statement: Some("ReadArtifacts".into()),
            denied_by: None,
            action: Some("s3:GetObject".into()),
            mode: Some("proxy"),
        },
        read_only: Some(true),
        resources: vec![
            ResourceRef {
                arn: format!("arn:aws:s3:::artifacts/{key}"),
                account_id: None,
                kind: Arc::from("AWS::S3::Object"),
            },
            ResourceRef {
                arn: "arn:aws:s3:::artifacts".into(),
                account_id: Some(Arc::from("123456789012")),
                kind: Arc::from("AWS::S3::Bucket"),
            },
        ],
        category: Category::Data,
        recipient_account: Arc::from("123456789012"),
        tls: Some(TlsDetails {
            version: "TLSv1.3".into(),
            cipher_suite: "TLS_AES_128_GCM_SHA256".into(),
            host: Some("artifacts.s3.us-east-1.amazonaws.com".into()),
        }),
    }
}

fn user_denied(i: u64, rng: &mut impl Rng, principal: &Arc<Principal>) -> Event {
    let key = format!("releases/{:04}/app-{:x}.tar.gz", i % 977, rng.gen::<u32>());
    Event {
        identity: Identity::Principal {
            principal: principal.clone(),
            access_key_id: Arc::from("AKIAEXAMPLEKEYID0002"),
        },
        event_name: Arc::from("PutObject"),
        source_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 251) as u8)),
        user_agent: Some(http::HeaderValue::from_static(
            "aws-cli/2.22.0 md/command#s3.cp",
        )),
        error: Some(ErrorInfo {
            code: "AccessDenied",
            message: format!(
                "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: \
                 s3:PutObject on resource: \"arn:aws:s3:::artifacts/{key}\" because no \
                 identity-based policy allows the s3:PutObject action"
            ),
        }),
        request_parameters: Some(vec![
            ("bucketName".into(), str_value("artifacts")),
            ("key".into(), Value::Str(key.clone())),
        ]),
        detail: Detail {
            signature_version: Some("SigV4"),
            authentication_method: Some("AuthHeader"),
            payload: Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            decision: Some("ImplicitDeny"),
            denied_by: Some("Identity"),
            action: Some("s3:PutObject".into()),
            mode: Some("proxy"),
            ..Detail::default()
        },
        read_only: Some(false),
        resources: vec![ResourceRef {
            arn: format!("arn:aws:s3:::artifacts/{key}"),
            account_id: None,
            kind: Arc::from("AWS::S3::Object"),
        }],
        tls: None,
        ..role_get_object(i, rng, principal)
    }
}

// ---------------------------------------------------------------------------------------------
// The serde_json peer: the same record as a derived `Serialize` struct tree
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerRecord<'a> {
    event_version: &'static str,
    user_identity: PeerIdentity<'a>,
    event_time: String,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    request_parameters: Option<PeerObject<'a>>,
    response_elements: Option<PeerObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_event_data: Option<PeerDetail<'a>>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<PeerResource<'a>>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_details: Option<PeerTls<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerIdentity<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    principal_id: &'a str,
    arn: &'a str,
    account_id: &'a str,
    access_key_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_context: Option<PeerSessionContext<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerSessionContext<'a> {
    session_issuer: PeerIssuer<'a>,
    attributes: PeerAttributes,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerIssuer<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    principal_id: &'a str,
    arn: &'a str,
    account_id: &'a str,
    user_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerAttributes {
    creation_date: String,
    mfa_authenticated: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PeerDetail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authentication_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_mode: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deciding_policy: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deciding_statement: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'a str>,
}

#[derive(Serialize)]
struct PeerResource<'a> {
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "ARN")]
    arn: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerTls<'a> {
    tls_version: &'a str,
    cipher_suite: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_provided_host_header: Option<&'a str>,
}

/// `requestParameters` / `responseElements`, serialized in order.
struct PeerObject<'a>(&'a [(String, Value)]);

impl Serialize for PeerObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &PeerValue(v))?;
        }
        map.end()
    }
}

struct PeerValue<'a>(&'a Value);

impl Serialize for PeerValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Str(v) => s.serialize_str(v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&PeerValue(item))?;
                }
                seq.end()
            }
            Value::Object(members) => PeerObject(members).serialize(s),
        }
    }
}

impl<'a> PeerRecord<'a> {
    /// The peer's view of an event (only the identity shapes the workloads use).
    fn from(e: &'a Event) -> Self {
        let Identity::Principal {
            principal,
            access_key_id,
        } = &e.identity
        else {
            panic!("workloads use principals");
        };
        let session_context = principal.session.as_ref().map(|s| {
            let role_arn = s.claims.role_arn.as_deref().unwrap_or("");
            PeerSessionContext {
                session_issuer: PeerIssuer {
                    kind: "Role",
                    principal_id: s.claims.role_id.as_deref().unwrap_or(""),
                    arn: role_arn,
                    account_id: &s.claims.account,
                    user_name: role_arn.rsplit_once('/').map_or("", |(_, n)| n),
                },
                attributes: PeerAttributes {
                    creation_date: tollgate::time::iso8601(s.claims.issued_at),
                    mfa_authenticated: if s.claims.mfa_authenticated {
                        "true"
                    } else {
                        "false"
                    },
                },
            }
        });
        let is_user = principal.kind == PrincipalKind::IamUser;
        let d = &e.detail;
        PeerRecord {
            event_version: "1.11",
            user_identity: PeerIdentity {
                kind: principal.kind.as_str(),
                principal_id: &principal.unique_id,
                arn: &principal.arn,
                account_id: &principal.account_id,
                access_key_id,
                user_name: is_user.then_some(principal.name.as_str()),
                session_context,
            },
            event_time: tollgate::time::iso8601(e.event_time),
            event_source: &e.event_source,
            event_name: &e.event_name,
            aws_region: &e.region,
            source_ip_address: e.source_ip.to_string(),
            user_agent: e.user_agent.as_ref().map(|a| a.to_str().unwrap()),
            error_code: e.error.as_ref().map(|x| x.code),
            error_message: e.error.as_ref().map(|x| x.message.as_str()),
            request_parameters: e.request_parameters.as_deref().map(PeerObject),
            response_elements: e.response_elements.as_deref().map(PeerObject),
            additional_event_data: Some(PeerDetail {
                signature_version: d.signature_version,
                authentication_method: d.authentication_method,
                payload_mode: d.payload,
                decision: d.decision,
                deciding_policy: d.policy.as_deref(),
                deciding_statement: d.statement.as_deref(),
                denied_by: d.denied_by,
                action: d.action.as_deref(),
                mode: d.mode,
            }),
            request_id: &e.request_id,
            event_id: e.event_id.hyphenated().to_string(),
            read_only: e.read_only,
            resources: e
                .resources
                .iter()
                .map(|r| PeerResource {
                    account_id: r.account_id.as_deref(),
                    kind: &r.kind,
                    arn: &r.arn,
                })
                .collect(),
            event_type: "AwsApiCall",
            management_event: e.category == Category::Management,
            recipient_account_id: &e.recipient_account,
            event_category: match e.category {
                Category::Management => "Management",
                Category::Data => "Data",
            },
            tls_details: e.tls.as_ref().map(|t| PeerTls {
                tls_version: &t.version,
                cipher_suite: &t.cipher_suite,
                client_provided_host_header: t.host.as_deref(),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture and cases
// ---------------------------------------------------------------------------------------------

struct Workload {
    name: &'static str,
    /// `BATCH` distinct events; the first is the one serialized alone.
    events: Vec<Event>,
}

fn fixture() -> Vec<Workload> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let role = role_principal();
    let user = user_principal();
    let workloads = vec![
        Workload {
            name: "role_get_object",
            events: (0..BATCH as u64)
                .map(|i| role_get_object(i, &mut rng, &role))
                .collect(),
        },
        Workload {
            name: "user_denied",
            events: (0..BATCH as u64)
                .map(|i| user_denied(i, &mut rng, &user))
                .collect(),
        },
    ];
    assert_eq!(USER_AGENT.len(), 60);
    for w in &workloads {
        let first = &w.events[0];
        let ours = record::serialize(first);
        let parsed: serde_json::Value = serde_json::from_slice(&ours.json).unwrap();
        let peer = serde_json::to_vec(&PeerRecord::from(first)).unwrap();
        let peer_parsed: serde_json::Value = serde_json::from_slice(&peer).unwrap();
        assert_eq!(parsed, peer_parsed, "{}: peer record differs", w.name);
        let body = gzip_batch(&w.events, Compression::default(), &mut Vec::new());
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut text)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["Records"].as_array().unwrap().len(), BATCH);
        let fast = gzip_batch(&w.events, Compression::fast(), &mut Vec::new());
        println!(
            "{}: record {} bytes (peer {}); batch of {BATCH}: {} bytes, gzip fast {} ({:.1}×), \
             default {} ({:.1}×)",
            w.name,
            ours.json.len(),
            peer.len(),
            text.len(),
            fast.len(),
            text.len() as f64 / fast.len() as f64,
            body.len(),
            text.len() as f64 / body.len() as f64,
        );
    }
    workloads
}

/// A log file body of `events`, gzip'd; `scratch` is the reused record buffer.
fn gzip_batch(events: &[Event], level: Compression, scratch: &mut Vec<u8>) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::with_capacity(events.len() * 256), level);
    gz.write_all(b"{\"Records\":[").unwrap();
    for (i, event) in events.iter().enumerate() {
        scratch.clear();
        if i > 0 {
            scratch.push(b',');
        }
        record::write_json(event, scratch);
        gz.write_all(scratch).unwrap();
    }
    gz.write_all(b"]}").unwrap();
    gz.finish().unwrap()
}

fn cases(workloads: &[Workload]) -> Vec<Case<'_>> {
    let mut out = Vec::new();
    for w in workloads {
        let first = &w.events[0];
        out.push(Case {
            group: "serialize",
            name: format!("tollgate/{}", w.name),
            units: 1,
            routine: Box::new(move || record::serialize(black_box(first)).json.len()),
        });
        let peer = PeerRecord::from(first);
        out.push(Case {
            group: "serialize",
            name: format!("serde_json/{}", w.name),
            units: 1,
            routine: Box::new(move || serde_json::to_vec(black_box(&peer)).unwrap().len()),
        });
        for (function, level) in [
            ("tollgate_gzip_fast", Compression::fast()),
            ("tollgate_gzip_default", Compression::default()),
        ] {
            let mut scratch = Vec::with_capacity(2048);
            out.push(Case {
                group: "serialize_gzip",
                name: format!("{function}/{}", w.name),
                units: BATCH as u32,
                routine: Box::new(move || {
                    gzip_batch(black_box(&w.events), level, &mut scratch).len()
                }),
            });
        }
    }
    out
}

/// A sink that keeps nothing: the enqueue bench measures the request path's side only.
struct NullSink;

impl Sink for NullSink {
    fn name(&self) -> &'static str {
        "null"
    }
    fn write(&mut self, batch: &[Arc<Serialized>], _now: i64) -> Result<(), SinkError> {
        black_box(batch.len());
        Ok(())
    }
    fn tick(&mut self, _now: i64) -> Result<(), SinkError> {
        Ok(())
    }
    fn close(&mut self, _now: i64) -> Result<(), SinkError> {
        Ok(())
    }
}

/// What the proxy hands over per call: a boxed value whose record the writer assembles (the
/// proxy's own `Facts` holds the same kind of fields: shared `Arc`s, header values, a few
/// small strings).
struct Handover {
    event: Event,
}

impl Deferred for Handover {
    fn into_event(self: Box<Self>) -> Event {
        self.event
    }
}

/// Calls per timed chunk of the enqueue bench; the queue drains (untimed) between chunks so the
/// writer thread never makes the producer wait or refuse.
const ENQUEUE_CHUNK: u64 = 4_096;

/// `admit` + boxing + `submit` of `iters` calls, timed; the writer drains between chunks, untimed.
fn enqueue(auditor: &Auditor, template: &Event, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(ENQUEUE_CHUNK);
        let events: Vec<Handover> = (0..n)
            .map(|_| Handover {
                event: Event {
                    identity: template.identity.clone(),
                    request_id: template.request_id.clone(),
                    event_source: template.event_source.clone(),
                    event_name: template.event_name.clone(),
                    region: template.region.clone(),
                    recipient_account: template.recipient_account.clone(),
                    user_agent: template.user_agent.clone(),
                    request_parameters: None,
                    response_elements: None,
                    resources: Vec::new(),
                    error: None,
                    detail: Detail::default(),
                    tls: None,
                    ..*template
                },
            })
            .collect();
        let t = Instant::now();
        for e in events {
            match auditor.admit() {
                Ok(ticket) => ticket.submit(Box::new(e)),
                Err(r) => panic!("enqueue refused: {r:?}"),
            }
        }
        total += t.elapsed();
        while auditor.queued() > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        left -= n;
    }
    total
}

fn run_enqueue(c: &mut Criterion, auditor: &Auditor, template: &Event) {
    let mut g = c.benchmark_group("enqueue");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tollgate/admit_submit", |b| {
        b.iter_custom(|iters| enqueue(auditor, template, iters))
    });
    g.finish();
}

/// Interleaved rounds (~25 ms per routine per round); the minimum and median per routine.
fn summary(cases: &mut [Case<'_>]) {
    const ROUNDS: usize = 9;
    let stats = interleaved_stats(cases, ROUNDS);
    println!();
    println!(
        "Summary: {ROUNDS} interleaved rounds of ~25 ms per routine; min and median ns per record, \
         records/s on one core at the min."
    );
    println!("`vs serde_json` = the peer's min ÷ this min, same workload (serialize group).");
    println!();
    println!("| group | function/workload | min ns/record | median ns/record | records/s | vs serde_json |");
    println!("|---|---|---|---|---|---|");
    for (i, case) in cases.iter().enumerate() {
        let workload = case.name.split_once('/').map_or("", |(_, w)| w);
        let peer = cases
            .iter()
            .zip(&stats)
            .find(|(c, _)| c.name == format!("serde_json/{workload}"))
            .map(|(_, s)| s.0);
        let ratio = match peer {
            Some(p) if case.name.starts_with("tollgate/") => format!("{:.2}×", p / stats[i].0),
            _ => String::new(),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} |",
            case.group,
            case.name,
            stats[i].0,
            stats[i].1,
            1e9 / stats[i].0,
            ratio
        );
    }
}

fn main() {
    let workloads = fixture();
    let mut cases = cases(&workloads);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .without_plots()
        .configure_from_args();
    let auditor = Auditor::start(
        vec![Box::new(NullSink)],
        65_536,
        Overflow::FailClosed,
        Metrics::new().unwrap(),
    )
    .unwrap();
    let template = workloads[0].events[0].clone();
    // Checked once before measuring: the call is admitted and its record reaches the sink.
    let before = auditor.queued();
    assert_eq!(before, 0);
    assert!(enqueue(&auditor, &template, 10) > Duration::ZERO);
    let summary_only = std::env::var_os("AUDIT_SUMMARY_ONLY").is_some();
    if !summary_only {
        run_criterion(&mut c, &mut cases);
        run_enqueue(&mut c, &auditor, &template);
        c.final_summary();
    }
    if summary_only || wants_summary() {
        summary(&mut cases);
        let mut per_call: Vec<f64> = (0..9)
            .map(|_| enqueue(&auditor, &template, 40_960).as_nanos() as f64 / 40_960.0)
            .collect();
        per_call.sort_by(f64::total_cmp);
        println!();
        println!(
            "| enqueue | tollgate/admit_submit (request path: reserve a place, box the facts, send) | {:.0} | {:.0} | {:.0} | goal ≤ 500 ns |",
            per_call[0],
            per_call[per_call.len() / 2],
            1e9 / per_call[0]
        );
    }
    auditor.shutdown(Duration::from_secs(5));
}
