//! The gRPC service Envoy's `ext_authz` filter calls: `envoy.service.auth.v3.Authorization/Check`
//! (tonic, types from `envoy-types`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use envoy_types::ext_authz::v3::pb::{
    Address, Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue as EnvoyHeader, HeaderValueOption, HttpResponse, HttpStatus,
    OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use envoy_types::pb::google::rpc;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{CheckInput, Metadata, Verdict};
use crate::proxy::{Listener, ProxyState};

/// `google.rpc.Code` values used in `CheckResponse.status`.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;
const UNAVAILABLE: i32 = 14;

/// Largest `CheckRequest` accepted: the verified-body limit plus room for the headers.
fn max_message(state: &ProxyState) -> usize {
    let body = state.snapshot.load().auth.max_verified_body;
    usize::try_from(body)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20)
}

/// The `Authorization` service.
#[derive(Debug, Clone)]
pub struct Service {
    state: Arc<ProxyState>,
}

impl Service {
    /// A service deciding with `state`.
    pub fn new(state: Arc<ProxyState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Authorization for Service {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let connection_peer = request.remote_addr();
        let input = match input(request.into_inner(), connection_peer) {
            Ok(input) => input,
            Err(why) => return Err(tonic::Status::invalid_argument(why)),
        };
        let verdict = super::check(&self.state, input, Listener::ExtAuthzGrpc).await;
        Ok(tonic::Response::new(response(verdict)))
    }
}

/// Serves the gRPC service on `listener` until `stop` completes (open calls finish first),
/// on the same server as the HTTP listeners: `[limits]` (head size, connections) and `[tls]`
/// apply to it too (with `[tls]`, Envoy's cluster to it needs a TLS `transport_socket`).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: Arc<ProxyState>,
    stop: impl std::future::Future<Output = ()>,
) {
    let limit = max_message(&state);
    let (limits, tls) = (state.snapshot.load().limits, state.tls.clone());
    let service = AuthorizationServer::new(Service::new(state)).max_decoding_message_size(limit);
    crate::proxy::serve_connections(listener, stop, limits, tls, move |req, _peer| {
        let service = service.clone();
        async move {
            match tower::ServiceExt::oneshot(service, req).await {
                Ok(resp) => resp.map(crate::proxy::body::boxed),
                Err(never) => match never {},
            }
        }
    })
    .await;
}

/// Envoy's request as the head and body the pipeline takes.
pub fn input(req: CheckRequest, connection_peer: Option<SocketAddr>) -> Result<CheckInput, String> {
    let attributes = req.attributes.ok_or("CheckRequest has no attributes")?;
    let http_req = attributes
        .request
        .and_then(|r| r.http)
        .ok_or("CheckRequest has no attributes.request.http")?;
    let peer = attributes
        .source
        .and_then(|p| p.address)
        .and_then(|a| a.address)
        .and_then(|a| match a {
            Address::SocketAddress(s) => s
                .address
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, port_of(s.port_specifier))),
            _ => None,
        })
        .or(connection_peer)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut headers = HeaderMap::with_capacity(http_req.headers.len() + 1);
    let mut authority = None;
    match http_req.header_map {
        // `encode_raw_headers: true`: repeated headers stay separate.
        Some(map) => {
            for h in map.headers {
                let value = if h.raw_value.is_empty() {
                    h.value.into_bytes()
                } else {
                    h.raw_value
                };
                add_header(&mut headers, &mut authority, &h.key, value)?;
            }
        }
        None => {
            for (k, v) in http_req.headers {
                add_header(&mut headers, &mut authority, &k, v.into_bytes())?;
            }
        }
    }
    let authority = authority.or_else(|| (!http_req.host.is_empty()).then_some(http_req.host));
    if let Some(a) = authority {
        if !headers.contains_key(http::header::HOST) {
            let v = HeaderValue::from_str(&a).map_err(|_| "invalid :authority".to_owned())?;
            headers.insert(http::header::HOST, v);
        }
    }
    let method = http::Method::from_bytes(http_req.method.as_bytes())
        .map_err(|_| format!("invalid method {:?}", http_req.method))?;
    let path = if http_req.path.is_empty() {
        "/"
    } else {
        &http_req.path
    };
    let uri: http::Uri = path.parse().map_err(|_| format!("invalid path {path:?}"))?;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    // aws:SecureTransport: the client's connection to Envoy.
    if http_req.scheme == "https" {
        parts.extensions.insert(crate::tls::SecureTransport);
    }
    parts.method = method;
    parts.uri = uri;
    parts.headers = headers;
    parts.version = match http_req.protocol.as_str() {
        "HTTP/2" => http::Version::HTTP_2,
        "HTTP/3" => http::Version::HTTP_3,
        "HTTP/1.0" => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let body = if http_req.raw_body.is_empty() {
        Bytes::from(http_req.body.into_bytes())
    } else {
        Bytes::from(http_req.raw_body)
    };
    Ok(CheckInput {
        parts,
        body,
        peer,
        content_length_known: true,
    })
}

fn port_of(
    p: Option<envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier>,
) -> u16 {
    match p {
        Some(
            envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(v),
        ) => u16::try_from(v).unwrap_or(0),
        _ => 0,
    }
}

/// Adds one of Envoy's headers; pseudo-headers are left out (`:authority` is kept aside for
/// `host`).
fn add_header(
    headers: &mut HeaderMap,
    authority: &mut Option<String>,
    key: &str,
    value: Vec<u8>,
) -> Result<(), String> {
    if let Some(pseudo) = key.strip_prefix(':') {
        if pseudo == "authority" {
            *authority = Some(String::from_utf8(value).map_err(|_| "invalid :authority")?);
        }
        return Ok(());
    }
    let name = HeaderName::from_bytes(key.as_bytes())
        .map_err(|_| format!("invalid header name {key:?}"))?;
    let value = HeaderValue::from_maybe_shared(Bytes::from(value))
        .map_err(|_| format!("invalid value of header {key}"))?;
    headers.append(name, value);
    Ok(())
}

fn option(name: &str, value: &[u8]) -> HeaderValueOption {
    // Tollgate's own header values are ASCII: copied as they are (the lossy conversion is for
    // anything else).
    let value = match std::str::from_utf8(value) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    };
    HeaderValueOption {
        header: Some(EnvoyHeader {
            key: name.to_owned(),
            value,
            ..EnvoyHeader::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

fn metadata_struct(m: Metadata) -> Struct {
    let fields: HashMap<String, Value> = m
        .into_fields()
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_owned(),
                Value {
                    kind: Some(Kind::StringValue(v)),
                },
            )
        })
        .collect();
    Struct { fields }
}

/// The verdict as Envoy's `CheckResponse`.
pub fn response(verdict: Verdict) -> CheckResponse {
    match verdict {
        Verdict::Allow(a) => CheckResponse {
            status: Some(rpc::Status {
                code: OK,
                ..rpc::Status::default()
            }),
            dynamic_metadata: Some(metadata_struct(a.metadata)),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers: a
                    .headers
                    .iter()
                    .map(|(k, v)| option(k.as_str(), v.as_bytes()))
                    .collect(),
                headers_to_remove: a.remove,
                ..OkHttpResponse::default()
            })),
        },
        Verdict::Deny(d) => {
            let (parts, body) = d.response.into_parts();
            let code = if parts.status == http::StatusCode::SERVICE_UNAVAILABLE {
                UNAVAILABLE
            } else {
                PERMISSION_DENIED
            };
            CheckResponse {
                status: Some(rpc::Status {
                    code,
                    message: d.metadata.error_code.unwrap_or("").to_owned(),
                    ..rpc::Status::default()
                }),
                dynamic_metadata: Some(metadata_struct(d.metadata)),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus {
                        code: i32::from(parts.status.as_u16()),
                    }),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| option(k.as_str(), v.as_bytes()))
                        .collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                })),
            }
        }
    }
}
