//! A do-nothing Envoy ext_authz gRPC service: every `Check` is allowed at once, with no headers
//! and no metadata.
//!
//! The peer for `benches/load_envoy.sh`: the same stack as Tollgate's ext_authz gRPC service
//! (tonic 0.14 server, envoy-types, Tollgate's tokio runtime choice, `TCP_NODELAY`) with none of its
//! work — no SigV4, no policy, no audit, no identity headers. Envoy + this service is the floor
//! that Envoy's own ext_authz round trip costs; Tollgate's share is what it adds above it.
//!
//! ```text
//! cargo run --release --example null_extauthz -- --listen 127.0.0.1:9191
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::rpc;

struct Null;

#[tonic::async_trait]
impl Authorization for Null {
    async fn check(
        &self,
        _request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(CheckResponse {
            status: Some(rpc::Status::default()),
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse::default())),
            dynamic_metadata: None,
        }))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:0".to_owned();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().expect("--listen ADDR"),
            other => panic!("unknown argument {other} (usage: --listen ADDR)"),
        }
    }
    // Tollgate's own runtime choice (single-threaded on one CPU).
    let rt = tollgate::cli::runtime().expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
        println!(
            "null ext_authz listening on {}",
            listener.local_addr().unwrap()
        );
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_service(AuthorizationServer::new(Null))
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
}
