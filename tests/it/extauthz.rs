//! Envoy ext_authz without Envoy: the same signed requests sent to the proxy, to the HTTP-service
//! listener (as Envoy forwards them) and to the gRPC `Check` service (as Envoy describes them)
//! get the same decision, the same status and error, and the same audit record. Envoy itself
//! drives both services in `tests/it/envoy.rs`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sigv4::http_request::SignableBody;
use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
use envoy_types::pb::envoy::service::auth::v3::{
    attribute_context, authorization_client::AuthorizationClient, check_response::HttpResponse,
    AttributeContext, CheckRequest,
};
use serde_json::Value;

use crate::audit::records;
use crate::proxy::{error_code, send_raw, signed_headers, RawResponse};
use crate::support::Tollgate;

/// One request, signed (or not) for the proxy's address.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `None`: allowed; `Some((status, code))`: refused.
    expect: Option<(u16, &'static str)>,
}

/// What a listener decided.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    allowed: bool,
    status: u16,
    code: String,
    content_type: String,
    principal: Option<String>,
    request_id: String,
}

fn cases(tg: &Tollgate) -> Vec<Case> {
    let admin = tg.key("admin");
    let reader = tg.key("reader");
    let admin = (
        admin.access_key_id.as_str(),
        admin.secret_access_key.as_str(),
    );
    let reader = (
        reader.access_key_id.as_str(),
        reader.secret_access_key.as_str(),
    );
    let base = tg.proxy_url();
    let url = |p: &str| format!("{base}{p}");
    let sign = |method: &str, path: &str, service: &str, body: &[u8], key: (&str, &str)| {
        signed_headers(
            method,
            &url(path),
            service,
            SignableBody::Bytes(body),
            &[],
            key,
        )
    };
    // Signed for another path than the one sent.
    let tampered = sign("GET", "/orders/2", "execute-api", b"", admin);
    let unsigned = vec![("host".to_owned(), tg.proxy_addr.clone())];
    let mismatch = sign("PUT", "/bucket/key", "s3", b"hello", admin);
    vec![
        Case {
            name: "admin GET (execute-api)",
            method: "GET",
            path: "/orders/1?view=full",
            headers: sign("GET", "/orders/1?view=full", "execute-api", b"", admin),
            body: Vec::new(),
            expect: None,
        },
        Case {
            name: "admin POST with the body hash in the signature (execute-api)",
            method: "POST",
            path: "/orders",
            headers: sign("POST", "/orders", "execute-api", b"{\"n\":1}", admin),
            body: b"{\"n\":1}".to_vec(),
            expect: None,
        },
        Case {
            name: "admin PutObject (declared SHA-256)",
            method: "PUT",
            path: "/bucket/key",
            headers: sign("PUT", "/bucket/key", "s3", b"hello", admin),
            body: b"hello".to_vec(),
            expect: None,
        },
        Case {
            name: "reader GetObject",
            method: "GET",
            path: "/bucket/key",
            headers: sign("GET", "/bucket/key", "s3", b"", reader),
            body: Vec::new(),
            expect: None,
        },
        Case {
            name: "reader PutObject: denied by policy",
            method: "PUT",
            path: "/bucket/key",
            headers: sign("PUT", "/bucket/key", "s3", b"hello", reader),
            body: b"hello".to_vec(),
            expect: Some((403, "AccessDenied")),
        },
        Case {
            name: "PutObject whose body is not the signed one",
            method: "PUT",
            path: "/bucket/key",
            headers: mismatch,
            body: b"HELLO".to_vec(),
            expect: Some((400, "XAmzContentSHA256Mismatch")),
        },
        Case {
            name: "unsigned",
            method: "GET",
            path: "/orders/1",
            headers: unsigned,
            body: Vec::new(),
            expect: Some((403, "MissingAuthenticationToken")),
        },
        Case {
            name: "tampered path",
            method: "GET",
            path: "/orders/1",
            headers: tampered,
            body: Vec::new(),
            expect: Some((403, "SignatureDoesNotMatch")),
        },
        Case {
            name: "unknown key",
            method: "GET",
            path: "/orders/1",
            headers: sign(
                "GET",
                "/orders/1",
                "execute-api",
                b"",
                ("AKIAUNKNOWNKEY000000", admin.1),
            ),
            body: Vec::new(),
            expect: Some((403, "InvalidClientTokenId")),
        },
    ]
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What an HTTP response says; `principal` and `request_id` as the listener reports them.
fn seen(r: &RawResponse, principal: Option<String>, request_id: Option<&str>) -> Seen {
    let allowed = r.status == 200;
    Seen {
        allowed,
        status: r.status,
        code: error_code(&r.body).to_owned(),
        content_type: if allowed {
            String::new()
        } else {
            r.header("content-type").unwrap_or("").to_owned()
        },
        principal,
        request_id: request_id.unwrap_or("").to_owned(),
    }
}

fn via_proxy(tg: &Tollgate, c: &Case) -> Seen {
    let r = send_raw(&tg.proxy_addr, c.method, c.path, &c.headers, &c.body);
    let principal = (r.status == 200).then(|| {
        let echo: Value = serde_json::from_str(&r.body).unwrap();
        echo["headers"]["x-tollgate-principal-arn"][0]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("echo saw no principal: {}", r.body))
    });
    seen(&r, principal, r.header("x-amzn-requestid"))
}

fn via_http_service(tg: &Tollgate, c: &Case) -> Seen {
    let addr = tg.ext_authz_http_addr.as_deref().unwrap();
    let r = send_raw(addr, c.method, c.path, &c.headers, &c.body);
    let allowed = r.status == 200;
    assert!(
        !allowed || r.body.is_empty(),
        "{}: an allow has no body: {}",
        c.name,
        r.body
    );
    let id = if allowed {
        r.header("x-tollgate-request-id")
    } else {
        r.header("x-amzn-requestid")
    };
    seen(
        &r,
        r.header("x-tollgate-principal-arn").map(str::to_owned),
        id,
    )
}

/// The `CheckRequest` Envoy sends for `c` (with `with_request_body`, as Envoy 1.40 fills it).
pub(crate) fn check_request(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> CheckRequest {
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if k == "host" {
            continue;
        }
        map.entry(k)
            .and_modify(|prev| {
                prev.push(',');
                prev.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    map.insert(":method".into(), method.into());
    map.insert(":path".into(), path.into());
    map.insert(":authority".into(), authority.into());
    map.insert(":scheme".into(), "http".into());
    map.insert("content-length".into(), body.len().to_string());
    if !body.is_empty() {
        map.insert("x-envoy-auth-partial-body".into(), "false".into());
    }
    let peer = |port: u32| attribute_context::Peer {
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: "127.0.0.1".into(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                ..SocketAddress::default()
            })),
        }),
        ..attribute_context::Peer::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer(40000)),
            destination: Some(peer(10000)),
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    id: "1".into(),
                    method: method.into(),
                    headers: map,
                    path: path.into(),
                    host: authority.into(),
                    scheme: "http".into(),
                    protocol: "HTTP/1.1".into(),
                    size: i64::try_from(body.len()).unwrap(),
                    raw_body: body.to_vec(),
                    ..attribute_context::HttpRequest::default()
                }),
                ..attribute_context::Request::default()
            }),
            ..AttributeContext::default()
        }),
    }
}

fn via_grpc(tg: &Tollgate, rt: &tokio::runtime::Runtime, c: &Case) -> Seen {
    let addr = format!("http://{}", tg.ext_authz_grpc_addr.as_deref().unwrap());
    let authority = header(&c.headers, "host").unwrap().to_owned();
    let req = check_request(&authority, c.method, c.path, &c.headers, &c.body);
    let resp = rt
        .block_on(async move {
            let mut client = AuthorizationClient::connect(addr).await?;
            Ok::<_, Box<dyn std::error::Error>>(client.check(req).await?.into_inner())
        })
        .unwrap();
    let status = resp.status.as_ref().map_or(-1, |s| s.code);
    let meta = |k: &str| {
        resp.dynamic_metadata
            .as_ref()
            .and_then(|m| m.fields.get(k))
            .and_then(|v| match &v.kind {
                Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(s)) => {
                    Some(s.clone())
                }
                _ => None,
            })
    };
    match resp.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            assert_eq!(status, 0, "{}", c.name);
            assert_eq!(meta("decision").as_deref(), Some("Allow"));
            let set = |name: &str| {
                ok.headers
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .find(|h| h.key == name)
                    .map(|h| h.value.clone())
            };
            assert_eq!(set("x-tollgate-principal-arn"), meta("principalArn"));
            Seen {
                allowed: true,
                status: 200,
                code: String::new(),
                content_type: String::new(),
                principal: set("x-tollgate-principal-arn"),
                request_id: set("x-tollgate-request-id").unwrap_or_default(),
            }
        }
        Some(HttpResponse::DeniedResponse(d)) => {
            assert_eq!(status, 7, "{}: google.rpc.Code PERMISSION_DENIED", c.name);
            assert_eq!(meta("decision").as_deref(), Some("Deny"));
            let code = error_code(&d.body).to_owned();
            assert_eq!(meta("errorCode").as_deref(), Some(code.as_str()));
            let h = |name: &str| {
                d.headers
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .find(|h| h.key == name)
                    .map(|h| h.value.clone())
                    .unwrap_or_default()
            };
            Seen {
                allowed: false,
                status: u16::try_from(d.status.map_or(403, |s| s.code)).unwrap(),
                code,
                content_type: h("content-type"),
                principal: None,
                request_id: h("x-amzn-requestid"),
            }
        }
        other => panic!("{}: unexpected response {other:?}", c.name),
    }
}

/// The parts of an audit record that must not depend on the listener.
fn shape(rec: &Value) -> Value {
    let mut rec = rec.clone();
    let obj = rec.as_object_mut().unwrap();
    for volatile in ["eventID", "eventTime", "requestID"] {
        assert!(obj.remove(volatile).is_some(), "record without {volatile}");
    }
    let extra = obj
        .get_mut("additionalEventData")
        .and_then(Value::as_object_mut)
        .unwrap();
    extra.remove("Mode");
    rec
}

#[test]
fn proxy_and_both_ext_authz_modes_decide_and_record_alike() {
    let mut tg = Tollgate::demo();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin_arn = "arn:aws:iam::123456789012:user/admin";
    let reader_arn = "arn:aws:iam::123456789012:user/reader";
    let mut ids: Vec<(&'static str, [String; 3])> = Vec::new();
    for c in cases(&tg) {
        let proxy = via_proxy(&tg, &c);
        let http = via_http_service(&tg, &c);
        let grpc = via_grpc(&tg, &rt, &c);
        match c.expect {
            None => {
                assert!(proxy.allowed, "{}: proxy refused: {proxy:?}", c.name);
                let who = if c.headers.iter().any(|(_, v)| v.contains("READER")) {
                    reader_arn
                } else {
                    admin_arn
                };
                assert_eq!(proxy.principal.as_deref(), Some(who), "{}", c.name);
            }
            Some((status, code)) => {
                assert_eq!(
                    (proxy.status, proxy.code.as_str()),
                    (status, code),
                    "{}",
                    c.name
                );
            }
        }
        for (mode, seen) in [("HTTP", &http), ("gRPC", &grpc)] {
            let strip = |s: &Seen| Seen {
                request_id: String::new(),
                ..s.clone()
            };
            assert_eq!(strip(seen), strip(&proxy), "{}: {mode} vs proxy", c.name);
            assert_eq!(seen.request_id.len(), 36, "{}: {mode} request id", c.name);
        }
        ids.push((c.name, [proxy.request_id, http.request_id, grpc.request_id]));
    }

    // The client's connections close with its runtime (a GOAWAY would otherwise wait for it).
    drop(rt);
    let status = tg.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", tg.stderr_tail(40));
    let recs = records(&tg.audit_dir());
    let by_id: HashMap<&str, &Value> = recs
        .iter()
        .map(|r| (r["requestID"].as_str().unwrap(), r))
        .collect();
    assert_eq!(recs.len(), ids.len() * 3);
    for (name, [proxy, http, grpc]) in &ids {
        let rec = |id: &str| {
            *by_id
                .get(id)
                .unwrap_or_else(|| panic!("{name}: no record for request {id}"))
        };
        let (p, h, g) = (rec(proxy), rec(http), rec(grpc));
        assert_eq!(p["additionalEventData"]["Mode"], "proxy", "{name}");
        assert_eq!(h["additionalEventData"]["Mode"], "extauthz-http", "{name}");
        assert_eq!(g["additionalEventData"]["Mode"], "extauthz-grpc", "{name}");
        assert_eq!(shape(h), shape(p), "{name}: HTTP-service record vs proxy");
        assert_eq!(shape(g), shape(p), "{name}: gRPC record vs proxy");
    }
}

/// Sends one `CheckRequest` to the gRPC service at `addr`; returns (allowed, status, error code).
fn grpc_check(addr: &str, req: CheckRequest) -> (bool, u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = format!("http://{addr}");
    let resp = rt
        .block_on(async move {
            let mut client = AuthorizationClient::connect(addr).await?;
            Ok::<_, Box<dyn std::error::Error>>(client.check(req).await?.into_inner())
        })
        .unwrap();
    match resp.http_response {
        Some(HttpResponse::OkResponse(_)) => (true, 200, String::new()),
        Some(HttpResponse::DeniedResponse(d)) => (
            false,
            u16::try_from(d.status.map_or(403, |s| s.code)).unwrap(),
            error_code(&d.body).to_owned(),
        ),
        other => panic!("unexpected response {other:?}"),
    }
}

/// A signed body Envoy did not send (no `with_request_body`, or cut at `max_request_bytes`) is
/// refused unless `[ext_authz] trust_unsent_payload` says to take the signed hash on trust;
/// `UNSIGNED-PAYLOAD` passes either way; a body hashed into the signature never can.
#[test]
fn a_payload_envoy_did_not_send_passes_only_when_trusted() {
    let dir = tempfile::tempdir().unwrap();
    for trust in [false, true] {
        let config = crate::proxy::write_config(
            dir.path(),
            "http://127.0.0.1:9",
            &format!("\n[ext_authz]\ntrust_unsent_payload = {trust}\nmax_request_bytes = 1024\n"),
            1000,
        );
        let tg = Tollgate::start(
            &[
                "serve",
                "--config",
                &config,
                "--ext-authz-grpc-listen",
                "127.0.0.1:0",
            ],
            false,
        );
        let grpc = tg.ext_authz_grpc_addr.clone().unwrap();
        let key = (crate::proxy::KEY_ID, crate::proxy::SECRET);
        let url = "http://app.internal/bucket/key";
        let put = |body: SignableBody<'_>| {
            let mut h = signed_headers("PUT", url, "s3", body, &[], key);
            h.retain(|(k, _)| k != "host");
            h
        };
        let body = b"hello".to_vec();
        let signed = put(SignableBody::Bytes(&body));
        // Envoy without with_request_body: the length is known, the bytes are not.
        let mut unsent = check_request("app.internal", "PUT", "/bucket/key", &signed, b"");
        let set_length = |req: &mut CheckRequest, n: usize| {
            let http = req
                .attributes
                .as_mut()
                .and_then(|a| a.request.as_mut())
                .and_then(|r| r.http.as_mut())
                .unwrap();
            http.headers.insert("content-length".into(), n.to_string());
        };
        set_length(&mut unsent, body.len());
        let (allowed, status, code) = grpc_check(&grpc, unsent);
        if trust {
            assert!(allowed, "trusted: {status} {code}");
        } else {
            assert_eq!(
                (allowed, status, code.as_str()),
                (false, 403, "AccessDenied")
            );
        }
        // The whole body, sent: checked, whatever the setting.
        let whole = check_request("app.internal", "PUT", "/bucket/key", &signed, &body);
        assert!(grpc_check(&grpc, whole).0, "trust={trust}");
        let wrong = check_request("app.internal", "PUT", "/bucket/key", &signed, b"HELLO");
        assert_eq!(
            grpc_check(&grpc, wrong),
            (false, 400, "XAmzContentSHA256Mismatch".to_owned()),
            "trust={trust}"
        );
        // Cut at max_request_bytes (1024 here), Envoy saying it is not partial (as 1.40 does):
        // the declared length tells.
        let big = vec![b'x'; 3000];
        let signed_big = put(SignableBody::Bytes(&big));
        let mut cut = check_request(
            "app.internal",
            "PUT",
            "/bucket/key",
            &signed_big,
            &big[..1024],
        );
        set_length(&mut cut, big.len());
        let (allowed, _, code) = grpc_check(&grpc, cut);
        assert_eq!(allowed, trust, "trust={trust}: {code}");
        // UNSIGNED-PAYLOAD: nothing to check.
        let unsigned = put(SignableBody::UnsignedPayload);
        let mut req = check_request("app.internal", "PUT", "/bucket/key", &unsigned, b"");
        set_length(&mut req, body.len());
        assert!(grpc_check(&grpc, req).0, "trust={trust}");
        // A body hashed into the signature (no x-amz-content-sha256: execute-api) cannot be
        // verified without it, trusted or not.
        let api_url = "http://app.internal/orders";
        let mut api = signed_headers(
            "POST",
            api_url,
            "execute-api",
            SignableBody::Bytes(b"{}"),
            &[],
            key,
        );
        api.retain(|(k, _)| k != "host");
        let mut req = check_request("app.internal", "POST", "/orders", &api, b"");
        set_length(&mut req, 2);
        let (allowed, status, code) = grpc_check(&grpc, req);
        assert_eq!(
            (allowed, status, code.as_str()),
            (false, 403, "AccessDenied"),
            "trust={trust}"
        );
    }
}
