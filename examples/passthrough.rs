//! A plain hyper 1 pass-through reverse proxy: Tollgate's proxy structure without authentication.
//!
//! The peer for `benches/load.sh`: same runtime (tokio: single-threaded on one CPU, multi-threaded
//! otherwise), same server (hyper-util `auto` builder, HTTP/1.1 and h2c), same upstream client
//! (hyper-util legacy pooled client, `TCP_NODELAY`, 90 s idle pool), same hop-by-hop header
//! removal and `Host` preservation. It does none of Tollgate's per-request work: no SigV4, no
//! request id, no identity headers, no metrics, no upstream timeout.
//!
//! ```text
//! cargo run --release --example passthrough -- --listen 127.0.0.1:8081 --upstream http://127.0.0.1:3000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "expect",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

struct State {
    client: Client<HttpConnector, BoxBody>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
}

fn boxed<B>(body: B) -> BoxBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

fn bad_gateway() -> Response<BoxBody> {
    let mut resp = Response::new(boxed(Full::new(Bytes::from_static(b"bad gateway\n"))));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<BoxBody> {
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let Ok(uri) = http::Uri::builder()
        .scheme(state.scheme.clone())
        .authority(state.authority.clone())
        .path_and_query(path_and_query)
        .build()
    else {
        return bad_gateway();
    };
    strip_hop_by_hop(&mut parts.headers);
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    match state
        .client
        .request(Request::from_parts(parts, boxed(body)))
        .await
    {
        Ok(resp) => {
            let (mut parts, incoming) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, boxed(incoming))
        }
        Err(_) => bad_gateway(),
    }
}

fn usage() -> ! {
    eprintln!("usage: passthrough --listen ADDR --upstream http://HOST:PORT");
    std::process::exit(2)
}

fn main() {
    let mut listen: Option<SocketAddr> = None;
    let mut upstream: Option<http::Uri> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().and_then(|v| v.parse().ok()),
            "--upstream" => upstream = args.next().and_then(|v| v.parse().ok()),
            _ => usage(),
        }
    }
    let (Some(listen), Some(upstream)) = (listen, upstream) else {
        usage()
    };
    let (Some(scheme), Some(authority)) =
        (upstream.scheme().cloned(), upstream.authority().cloned())
    else {
        usage()
    };

    // Tollgate's own runtime choice (single-threaded on one CPU).
    let runtime = tollgate::cli::runtime().expect("runtime");
    runtime.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let state = Arc::new(State {
            client,
            scheme,
            authority,
        });
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        println!(
            "passthrough listening on {}",
            listener.local_addr().expect("local addr")
        );
        loop {
            let (stream, _peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(&state, req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
}
