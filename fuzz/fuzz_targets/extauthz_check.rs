//! Envoy ext_authz: a `CheckRequest` as Envoy sends it — raw protobuf bytes, or one built from
//! arbitrary method, path, headers (Envoy's pseudo-headers, lengths, the partial-body flag,
//! SigV4 headers) and body — through the whole gRPC path: `grpc::input`, the shared pipeline
//! (`extauthz::check` over the embedded demo configuration) and `grpc::response`. Must never
//! panic, and must never allow: nothing the fuzzer makes is signed with a demo secret. Every
//! refusal is an AWS-shaped 4xx/5xx with a body and a non-OK gRPC status.
//!
//! Input: the first byte selects the mode; even → the rest is a protobuf `CheckRequest`,
//! odd → the rest drives a structured one.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use envoy_types::pb::envoy::service::auth::v3::{
    attribute_context, check_response::HttpResponse, AttributeContext, CheckRequest,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tollgate::audit::pipeline::Auditor;
use tollgate::extauthz::{self, grpc, Verdict};
use tollgate::proxy::{Listener, ProxyState, UpstreamBase};

const NAMES: [&str; 16] = [
    ":authority",
    ":path",
    ":method",
    "host",
    "content-length",
    "transfer-encoding",
    "x-envoy-auth-partial-body",
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "x-amz-decoded-content-length",
    "content-encoding",
    "content-type",
    "x-forwarded-for",
    "x-tollgate-principal-arn",
];

fn state() -> &'static Arc<ProxyState> {
    static STATE: OnceLock<Arc<ProxyState>> = OnceLock::new();
    STATE.get_or_init(|| {
        let snapshot = Arc::new(tollgate::config::load_demo(1).expect("the demo config loads"));
        let metrics = tollgate::telemetry::Metrics::new().expect("metrics");
        let upstream = UpstreamBase {
            scheme: http::uri::Scheme::HTTP,
            authority: http::uri::Authority::from_static("127.0.0.1:9"),
        };
        Arc::new(
            ProxyState::new(snapshot, metrics, upstream, Auditor::disabled())
                .expect("the state builds"),
        )
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn structured(u: &mut Unstructured<'_>) -> Result<CheckRequest> {
    let mut headers = HashMap::new();
    for _ in 0..u.int_in_range(0..=10)? {
        let name = if u.ratio(7, 8)? {
            (*u.choose(&NAMES)?).to_owned()
        } else {
            u.arbitrary::<String>()?
        };
        let value = if u.ratio(1, 2)? {
            (*u.choose(&["0", "5", "1048576", "true", "false", "chunked", "UNSIGNED-PAYLOAD",
                "AWS4-HMAC-SHA256 Credential=AKIATOLLGATEADMIN001/20261129/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                "20261129T000000Z", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])?)
            .to_owned()
        } else {
            u.arbitrary::<String>()?
        };
        headers.insert(name, value);
    }
    let body: Vec<u8> = u.arbitrary()?;
    Ok(CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: (*u.choose(&["GET", "PUT", "POST", "DELETE", "HEAD", "G ET", ""])?)
                        .to_owned(),
                    path: u.arbitrary()?,
                    host: u.arbitrary()?,
                    protocol: (*u.choose(&["HTTP/1.1", "HTTP/2", "HTTP/1.0", ""])?).to_owned(),
                    headers,
                    size: i64::try_from(body.len()).unwrap_or(-1),
                    raw_body: if u.ratio(3, 4)? { body } else { Vec::new() },
                    ..attribute_context::HttpRequest::default()
                }),
                ..attribute_context::Request::default()
            }),
            ..AttributeContext::default()
        }),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let req = if mode % 2 == 0 {
        match CheckRequest::decode(rest) {
            Ok(req) => req,
            Err(_) => return,
        }
    } else {
        match structured(&mut Unstructured::new(rest)) {
            Ok(req) => req,
            Err(_) => return,
        }
    };
    let Ok(input) = grpc::input(req, None) else {
        return;
    };
    assert!(input.parts.headers.keys().all(|k| !k.as_str().starts_with(':')));
    let verdict = runtime().block_on(extauthz::check(state(), input, Listener::ExtAuthzGrpc));
    let Verdict::Deny(denied) = &verdict else {
        panic!("allowed: {verdict:?}");
    };
    let status = denied.response.status().as_u16();
    assert!((400..600).contains(&status), "{status}");
    assert!(!denied.response.body().is_empty());
    assert_eq!(denied.metadata.decision, "Deny");
    let resp = grpc::response(verdict);
    assert_ne!(resp.status.map(|s| s.code), Some(0));
    match resp.http_response {
        Some(HttpResponse::DeniedResponse(d)) => {
            assert_eq!(d.status.map(|s| s.code), Some(i32::from(status)));
            assert!(!d.body.is_empty());
        }
        other => panic!("{other:?}"),
    }
});
