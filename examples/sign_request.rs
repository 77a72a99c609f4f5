//! Signs one request with the `aws-sigv4` crate at the current time and prints the headers a
//! client must send (`Authorization`, `X-Amz-Date`, `x-amz-content-sha256`, `host`), one
//! `Name: value` per line, for replaying with a load tool (valid for the server's clock-skew
//! window, 15 minutes by default).
//!
//! ```text
//! cargo run --release --example sign_request -- --url http://127.0.0.1:8080/api/v1/widgets/1234?limit=10 \
//!     --access-key AKIA... --secret ... [--method GET] [--region us-east-1] [--service execute-api]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;

fn usage() -> ! {
    eprintln!(
        "usage: sign_request --url URL --access-key ID --secret SECRET [--method GET] [--region us-east-1] [--service execute-api]"
    );
    std::process::exit(2)
}

fn main() {
    let (mut url, mut key, mut secret) = (None, None, None);
    let (mut method, mut region, mut service) = (
        "GET".to_owned(),
        "us-east-1".to_owned(),
        "execute-api".to_owned(),
    );
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--url" => url = Some(value),
            "--access-key" => key = Some(value),
            "--secret" => secret = Some(value),
            "--method" => method = value,
            "--region" => region = value,
            "--service" => service = value,
            _ => usage(),
        }
    }
    let (Some(url), Some(key), Some(secret)) = (url, key, secret) else {
        usage()
    };
    let uri: http::Uri = url.parse().unwrap_or_else(|_| usage());
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| usage());

    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let identity = Credentials::new(key, secret, None, None, "sign_request").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(&service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let headers = [("host", host.as_str())];
    let signable = SignableRequest::new(
        &method,
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut req = http::Request::builder()
        .method(method.as_str())
        .uri(&url)
        .body(())
        .expect("request");
    req.headers_mut()
        .insert(http::header::HOST, host.parse().expect("host header"));
    instructions.apply_to_request_http1x(&mut req);
    for name in [
        "authorization",
        "x-amz-date",
        "x-amz-content-sha256",
        "host",
    ] {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            let shown = match name {
                "authorization" => "Authorization",
                "x-amz-date" => "X-Amz-Date",
                "host" => "Host",
                other => other,
            };
            println!("{shown}: {v}");
        }
    }
}
