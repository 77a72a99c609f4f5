//! TLS on the proxy listener: a test CA's certificate, HTTP/1.1 and HTTP/2 chosen by ALPN,
//! `aws:SecureTransport` true for calls over TLS, and a rotated certificate served to new
//! connections without a restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sigv4::http_request::SignableBody;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls;

use crate::proxy::{signed_headers, KEY_ID, SECRET};
use crate::support::Tollgate;

/// A test CA: (its certificate PEM, an issuer for leaf certificates).
fn test_ca() -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Tollgate test CA");
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// Writes a leaf certificate for 127.0.0.1 / localhost (and its key); returns its DER.
fn write_leaf(dir: &Path, ca: &Issuer<'static, KeyPair>, name: &str) -> Vec<u8> {
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    // Key first, certificate last, each replaced whole: a reader never sees half a file.
    for (file, text) in [("key.pem", key.serialize_pem()), ("cert.pem", cert.pem())] {
        let tmp = dir.join(format!("{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(file)).unwrap();
    }
    cert.der().to_vec()
}

fn write_config(dir: &Path) -> String {
    crate::proxy::write_config_with_policy(
        dir,
        "builtin:echo",
        "\n[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n",
        5000,
        r#"document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}'''"#,
    )
}

/// One signed GET over a new TLS connection offering `alpn`: (negotiated protocol, the server's
/// leaf certificate, status, body).
async fn call(addr: &str, ca_pem: &str, alpn: &[u8]) -> (Vec<u8>, Vec<u8>, u16, String) {
    try_call(addr, ca_pem, alpn, None).await.unwrap()
}

/// A client certificate (chain and key) for mutual TLS.
type ClientAuth = (
    Vec<rustls_pki_types::CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
);

/// [`call`] that may present a client certificate and reports failures instead of panicking.
async fn try_call(
    addr: &str,
    ca_pem: &str,
    alpn: &[u8],
    client: Option<ClientAuth>,
) -> Result<(Vec<u8>, Vec<u8>, u16, String), Box<dyn std::error::Error>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost")?;
    let tls = connector.connect(name, tcp).await?;
    let (_, session) = tls.get_ref();
    let negotiated = session.alpn_protocol().unwrap_or_default().to_vec();
    let leaf = session.peer_certificates().unwrap()[0].to_vec();

    let url = format!("https://{addr}/orders/1");
    let headers = signed_headers(
        "GET",
        &url,
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (KEY_ID, SECRET),
    );
    let mut req = http::Request::builder().method("GET");
    let h2 = negotiated == b"h2";
    req = req.uri(if h2 {
        url.clone()
    } else {
        "/orders/1".to_owned()
    });
    for (k, v) in &headers {
        if h2 && k == "host" {
            continue; // HTTP/2 carries it as :authority.
        }
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(Empty::<bytes::Bytes>::new()).unwrap();
    let resp = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await?;
        tokio::spawn(conn);
        send.send_request(req).await?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        send.send_request(req).await?
    };
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((
        negotiated,
        leaf,
        status,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

#[test]
fn tls_serves_http1_and_http2_as_secure_transport_and_rotates_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = test_ca();
    let first = write_leaf(dir.path(), &ca, "tollgate first");
    let config = write_config(dir.path());
    let tg = Tollgate::start(&["serve", "--config", &config], true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = tg.proxy_addr.clone();

    // The policy allows only aws:SecureTransport true: a 200 proves Tollgate saw TLS.
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let (negotiated, leaf, status, body) = rt.block_on(call(&addr, &ca_pem, alpn));
        assert_eq!(negotiated, alpn, "ALPN");
        assert_eq!(leaf, first);
        assert_eq!(status, 200, "{}: {body}", String::from_utf8_lossy(alpn));
        assert!(
            body.contains("arn:aws:iam::123456789012:user/alice"),
            "{body}"
        );
    }

    // Plain HTTP on the TLS listener is not served.
    let plain = std::net::TcpStream::connect(&addr).and_then(|mut s| {
        use std::io::{Read, Write};
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET /orders/1 HTTP/1.1\r\nhost: x\r\n\r\n")?;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Ok(out)
    });
    assert!(
        !String::from_utf8_lossy(&plain.unwrap_or_default()).contains("200 OK"),
        "plain HTTP answered on a TLS listener"
    );

    // A new certificate in place of the old: served to new connections, no restart.
    let second = write_leaf(dir.path(), &ca, "tollgate second");
    let started = Instant::now();
    loop {
        let (_, leaf, status, _) = rt.block_on(call(&addr, &ca_pem, b"http/1.1"));
        assert_eq!(status, 200);
        if leaf == second {
            break;
        }
        assert_eq!(leaf, first);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the rotated certificate was not served\n{}",
            tg.stderr_tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// boto3 and awscurl over HTTPS with the test CA, and botocore-signed requests over HTTP/2
/// with httpx (tests/interop/tls_clients.py).
#[test]
#[ignore = "interop: run by the README test command"]
fn boto3_awscurl_and_httpx_h2_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = test_ca();
    write_leaf(dir.path(), &ca, "tollgate");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let config = write_config(dir.path());
    let tg = Tollgate::start(&["serve", "--config", &config], true);
    let url = format!(
        "https://localhost:{}",
        tg.proxy_addr.rsplit(':').next().unwrap()
    );
    let ca_path = ca_file.to_string_lossy().into_owned();
    crate::interop::run_script_against(
        &tg,
        "tls_clients.py",
        &[
            "--url",
            &url,
            "--ca",
            &ca_path,
            "--access-key",
            KEY_ID,
            "--secret",
            SECRET,
            "--principal",
            "arn:aws:iam::123456789012:user/alice",
        ],
        &[("REQUESTS_CA_BUNDLE", &ca_path)],
    );
}

/// An HTTPS echo upstream (Tollgate's own echo behind Tollgate's TLS listener code) on a
/// runtime of its own; returns its port.
fn https_echo(dir: &Path) -> u16 {
    let settings = tollgate::tls::TlsSettings {
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
        client_ca_file: None,
    };
    let tls = tollgate::tls::Tls::load(&settings).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tollgate::proxy::serve_connections(
                listener,
                std::future::pending(),
                tollgate::config::Limits::default(),
                Some(tls),
                |req, _peer| async move {
                    let resp = tollgate::proxy::echo::echo(req)
                        .await
                        .unwrap_or_else(|never| match never {});
                    resp.map(tollgate::proxy::body::boxed)
                },
            )
            .await;
        });
    });
    port
}

/// An `https://` upstream: verified against `[upstream] ca_file`; with the default roots (which
/// do not know the test CA) the call fails as a 502, never as an unverified success.
#[test]
fn https_upstreams_are_verified_against_their_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = test_ca();
    write_leaf(dir.path(), &ca, "upstream");
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    let port = https_echo(dir.path());
    for (ca_line, want) in [("ca_file = \"ca.pem\"\n", 200), ("", 502)] {
        // `ca_file` belongs in [upstream]: it rides on the url's line (the `#"` comments out
        // the url's closing quote).
        let config = crate::proxy::write_config(
            dir.path(),
            &format!("https://localhost:{port}\"\n{ca_line}#\""),
            "",
            5000,
        );
        let tg = Tollgate::start(&["serve", "--config", &config], false);
        let headers = crate::proxy::alice_get(&tg.proxy_addr, "/orders/1");
        let r = crate::proxy::send_raw(&tg.proxy_addr, "GET", "/orders/1", &headers, b"");
        assert_eq!(r.status, want, "{ca_line:?}: {}", r.body);
        if want == 200 {
            assert!(
                r.body.contains("arn:aws:iam::123456789012:user/alice"),
                "{}",
                r.body
            );
        } else {
            assert_eq!(
                crate::proxy::error_code(&r.body),
                "BadGateway",
                "{}",
                r.body
            );
        }
    }
}

/// A client certificate signed by `ca` for `cn`.
fn client_cert(ca: &Issuer<'static, KeyPair>, cn: &str) -> ClientAuth {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

/// Mutual TLS: a client certificate is required, and its subject is a condition key
/// (`tollgate:ClientCertCommonName`, `tollgate:ClientCertSubject`).
#[test]
fn client_certificates_are_required_and_their_subject_is_a_condition_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = test_ca();
    write_leaf(dir.path(), &ca, "tollgate");
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    let config = crate::proxy::write_config_with_policy(
        dir.path(),
        "builtin:echo",
        "\n[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\nclient_ca_file = \"ca.pem\"\n",
        5000,
        r#"document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"tollgate:ClientCertCommonName":"orders-web"},"StringLike":{"tollgate:ClientCertSubject":"*O=Example*"}}}]}'''"#,
    );
    let tg = Tollgate::start(&["serve", "--config", &config], true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = tg.proxy_addr.clone();
    let (_, _, status, body) = rt
        .block_on(try_call(
            &addr,
            &ca_pem,
            b"h2",
            Some(client_cert(&ca, "orders-web")),
        ))
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (_, _, status, body) = rt
        .block_on(try_call(
            &addr,
            &ca_pem,
            b"http/1.1",
            Some(client_cert(&ca, "intruder")),
        ))
        .unwrap();
    assert_eq!(
        (status, crate::proxy::error_code(&body)),
        (403, "AccessDenied"),
        "{body}"
    );
    // No certificate: no answer at all.
    let none = rt.block_on(try_call(&addr, &ca_pem, b"http/1.1", None));
    assert!(
        none.is_err(),
        "served without a client certificate: {:?}",
        none.ok()
    );
}

/// With `[tls]`, the ext_authz gRPC listener speaks gRPC over TLS (ALPN h2): a `Check` of an
/// unsigned request is answered with Tollgate's denial.
#[test]
fn the_ext_authz_grpc_listener_speaks_tls_too() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca) = test_ca();
    write_leaf(dir.path(), &ca, "tollgate");
    let config = write_config(dir.path());
    let tg = Tollgate::start(
        &[
            "serve",
            "--config",
            &config,
            "--ext-authz-grpc-listen",
            "127.0.0.1:0",
        ],
        true,
    );
    let addr = tg.ext_authz_grpc_addr.clone().unwrap();
    let check = crate::extauthz::check_request(
        "app.internal",
        "GET",
        "/orders/1",
        &[("user-agent".to_owned(), "tls-test".to_owned())],
        b"",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = rt.block_on(async {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(
                rustls_pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        // One gRPC message: no compression, big-endian length, the protobuf.
        let message = check.encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&message);
        let req = http::Request::builder()
            .method("POST")
            .uri(format!(
                "https://{addr}/envoy.service.auth.v3.Authorization/Check"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(bytes::Bytes::from(framed)))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    });
    assert_eq!(status, 200);
    assert!(body.len() > 5, "no gRPC message in {body:?}");
    let resp =
        envoy_types::pb::envoy::service::auth::v3::CheckResponse::decode(&body[5..]).unwrap();
    assert_eq!(resp.status.map(|s| s.code), Some(7), "PERMISSION_DENIED");
    match resp.http_response {
        Some(
            envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse::DeniedResponse(
                d,
            ),
        ) => {
            assert_eq!(
                crate::proxy::error_code(&d.body),
                "MissingAuthenticationToken",
                "{}",
                d.body
            );
        }
        other => panic!("{other:?}"),
    }
}
