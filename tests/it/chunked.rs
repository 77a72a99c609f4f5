//! aws-chunked bodies from real encoders decode and verify:
//!
//! - chunks and trailers signed by the `aws-sigv4` crate's own chunk and trailer signers,
//!   chained from the seed signature of a request that crate signed (the request goes through
//!   Tollgate's parser and verifier first, as the proxy does);
//! - bodies sent the way botocore sends `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (the aws-chunked
//!   framing *is* the HTTP/1.1 chunked framing) through a real hyper server, and aws-chunked
//!   inside HTTP chunked framing;
//! - the fuzz seeds (so they stay meaningful);
//! - interop (ignored, run by the README test command): real botocore `PutObject` requests,
//!   captured before sending, with every checksum algorithm and both botocore signers.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use proptest::prelude::*;
use sha2::Digest as _;
use tollgate::proxy::chunked::{aws_error, ChunkFailure, ChunkedBody};
use tollgate::sigv4::{
    self, ChunkError, ChunkSigning, ChunkedDecoder, HttpRequest, PayloadMode, Signature,
    StreamingMode,
};

const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2024-01-01T00:00:00Z.
const NOW: u64 = 1_704_067_200;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A request signed by `aws-sigv4` with a `STREAMING-…` payload, verified by Tollgate, and
/// the signing context its body is checked with.
struct SignedRequest {
    headers: http::HeaderMap,
    mode: StreamingMode,
    signing: ChunkSigning,
    /// The seed signature, hex.
    seed: String,
}

fn signing_params<'a>(
    identity: &'a aws_smithy_runtime_api::client::identity::Identity,
) -> v4::SigningParams<'a, SigningSettings> {
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    v4::SigningParams::builder()
        .identity(identity)
        .region("us-east-1")
        .name("s3")
        .time(UNIX_EPOCH + Duration::from_secs(NOW))
        .settings(settings)
        .build()
        .unwrap()
}

fn identity() -> aws_smithy_runtime_api::client::identity::Identity {
    Credentials::new(KEY, SECRET, None, None, "test").into()
}

/// Signs `PUT /bucket/key` for an aws-chunked body, then runs Tollgate's parse and seed
/// verification on it, as the proxy does before it decodes the body.
fn signed_request(trailer: Option<&str>, decoded_len: usize) -> SignedRequest {
    let url = "https://s3.amazonaws.com/bucket/key";
    let len = decoded_len.to_string();
    let mut headers = vec![
        ("host", "s3.amazonaws.com"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", len.as_str()),
    ];
    if let Some(t) = trailer {
        headers.push(("x-amz-trailer", t));
    }
    let body = if trailer.is_some() {
        SignableBody::StreamingSignedPayloadTrailer
    } else {
        SignableBody::Precomputed(sigv4::STREAMING_SIGNED.to_owned())
    };
    let identity = identity();
    let params = signing_params(&identity).into();
    let signable = SignableRequest::new("PUT", url, headers.clone().into_iter(), body).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder()
        .method("PUT")
        .uri(url)
        .body(())
        .unwrap();
    for (k, v) in &headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    instructions.apply_to_request_http1x(&mut req);
    let headers = req.headers().clone();

    let http_req = HttpRequest {
        method: "PUT",
        path: "/bucket/key",
        query: None,
        authority: None,
        headers: &headers,
    };
    let parsed = sigv4::parse(&http_req, NOW as i64, 900).unwrap();
    let mode = StreamingMode::detect(&parsed.payload_mode(), &headers)
        .unwrap()
        .unwrap();
    let scope = parsed.scope();
    let key = sigv4::derive_signing_key(SECRET, scope.date, scope.region, scope.service);
    let mut sts = Vec::new();
    parsed
        .string_to_sign(&mut sts, &http_req, mode.as_str())
        .unwrap();
    assert!(
        sigv4::verify(&key, &sts, &parsed.signature),
        "seed signature"
    );
    let seed = parsed.signature.to_hex();
    SignedRequest {
        signing: ChunkSigning::from_parsed(&parsed, Arc::new(key)),
        headers,
        mode,
        seed,
    }
}

impl SignedRequest {
    fn decoder(&self) -> ChunkedDecoder {
        ChunkedDecoder::new(
            self.mode,
            Some(self.signing.clone()),
            sigv4::decoded_content_length(&self.headers).unwrap(),
            self.headers
                .get("x-amz-trailer")
                .map(|v| v.to_str().unwrap()),
        )
        .unwrap()
    }
}

/// An aws-chunked body whose chunk and trailer signatures come from `aws-sigv4`.
/// `trailers`: `Some` in the signed-trailer mode (the trailer signature is added).
fn sdk_signed_body(
    seed: &str,
    data: &[u8],
    chunk: usize,
    trailers: Option<&[(&str, String)]>,
) -> Vec<u8> {
    let identity = identity();
    let params = signing_params(&identity);
    let mut running = seed.to_owned();
    let mut body = Vec::new();
    for piece in data.chunks(chunk).chain(std::iter::once(&b""[..])) {
        let out = v4::sign_chunk(&Bytes::copy_from_slice(piece), &running, &params).unwrap();
        running = out.signature().to_owned();
        body.extend_from_slice(
            format!("{:x};chunk-signature={running}\r\n", piece.len()).as_bytes(),
        );
        if !piece.is_empty() {
            body.extend_from_slice(piece);
            body.extend_from_slice(b"\r\n");
        }
    }
    if let Some(trailers) = trailers {
        let mut headers = aws_smithy_runtime_api::http::Headers::new();
        for (n, v) in trailers {
            headers.insert(n.to_string(), v.clone());
            body.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
        }
        let out = v4::sign_trailer(&headers, &running, &params).unwrap();
        body.extend_from_slice(
            format!("x-amz-trailer-signature:{}\r\n", out.signature()).as_bytes(),
        );
    }
    body.extend_from_slice(b"\r\n");
    body
}

fn decode_in_pieces(
    mut dec: ChunkedDecoder,
    body: &[u8],
    piece: usize,
) -> Result<Vec<u8>, ChunkError> {
    let mut out = Vec::new();
    for p in body.chunks(piece.max(1)) {
        dec.feed(Bytes::copy_from_slice(p), &mut out)?;
    }
    dec.finish()?;
    Ok(out.concat())
}

fn crc32(data: &[u8]) -> String {
    b64(&crc32fast::hash(data).to_be_bytes())
}

#[test]
fn sdk_signed_chunks_decode() {
    let data: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
    let req = signed_request(None, data.len());
    assert_eq!(req.mode, StreamingMode::Signed);
    let body = sdk_signed_body(&req.seed, &data, 65_536, None);
    assert_eq!(decode_in_pieces(req.decoder(), &body, 1000).unwrap(), data);
    // A flipped data byte in the third chunk fails that chunk.
    let header = "10000;chunk-signature=".len() + 64 + 2;
    let mut bad = body.clone();
    bad[2 * (header + 65_536 + 2) + header + 10] ^= 1;
    assert_eq!(
        decode_in_pieces(req.decoder(), &bad, 1000),
        Err(ChunkError::ChunkSignature)
    );
}

#[test]
fn sdk_signed_trailers_decode() {
    let data = b"the quick brown fox jumps over the lazy dog".repeat(100);
    let req = signed_request(Some("x-amz-checksum-crc32"), data.len());
    assert_eq!(req.mode, StreamingMode::SignedTrailer);
    let trailers = [("x-amz-checksum-crc32", crc32(&data))];
    let body = sdk_signed_body(&req.seed, &data, 1024, Some(&trailers));
    assert_eq!(decode_in_pieces(req.decoder(), &body, 333).unwrap(), data);
    // A wrong checksum signed by the SDK is a checksum error; an unsigned change is a
    // signature error.
    let wrong = [("x-amz-checksum-crc32", crc32(b"x"))];
    let body = sdk_signed_body(&req.seed, &data, 1024, Some(&wrong));
    assert!(matches!(
        decode_in_pieces(req.decoder(), &body, 333),
        Err(ChunkError::ChecksumMismatch(_))
    ));
    let good = sdk_signed_body(&req.seed, &data, 1024, Some(&trailers));
    let text = String::from_utf8(good).unwrap();
    let forged = text.replace(&trailers[0].1, &wrong[0].1);
    assert_eq!(
        decode_in_pieces(req.decoder(), forged.as_bytes(), 333),
        Err(ChunkError::TrailerSignature)
    );
    // The error a client gets.
    let e = aws_error(&ChunkError::TrailerSignature);
    assert_eq!((e.status.as_u16(), e.code), (403, "SignatureDoesNotMatch"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any data, chunk size and feeding decodes to the data; any single-byte change fails.
    #[test]
    fn sdk_signed_bodies_roundtrip(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        chunk in 1usize..1500,
        piece in 1usize..700,
        with_trailer in any::<bool>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let trailer = with_trailer.then_some("x-amz-checksum-crc32");
        let req = signed_request(trailer, data.len());
        let trailers: Vec<(&str, String)> = trailer.map(|t| (t, crc32(&data))).into_iter().collect();
        let body = sdk_signed_body(&req.seed, &data, chunk, trailer.map(|_| &trailers[..]));
        prop_assert_eq!(decode_in_pieces(req.decoder(), &body, piece).unwrap(), data);
        let mut bad = body.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 1 << bit;
        let case_only = bad[i].is_ascii_alphabetic() && bad[i].eq_ignore_ascii_case(&body[i]);
        let result = decode_in_pieces(req.decoder(), &bad, piece);
        prop_assert!(result.is_err() || case_only, "byte {} accepted", i);
    }
}

/// Serves one request on a real hyper HTTP/1.1 server: the body goes through [`ChunkedBody`]
/// and the response is the decoded body (200) or the AWS error code (400/403).
async fn through_hyper(head: &str, wire_body: &[u8], decoder: ChunkedDecoder) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let decoder = std::sync::Mutex::new(Some(decoder));
    let server = async move {
        let (stream, _) = listener.accept().await.unwrap();
        let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let decoder = decoder.lock().unwrap().take().unwrap();
            async move {
                let http_chunked = req
                    .headers()
                    .get("transfer-encoding")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
                let failure = ChunkFailure::new();
                let body =
                    ChunkedBody::new(req.into_body(), decoder, http_chunked, failure.clone());
                let resp = match body.collect().await {
                    Ok(c) => http::Response::new(http_body_util::Full::new(c.to_bytes())),
                    Err(_) => {
                        let e = aws_error(failure.get().unwrap());
                        let mut r =
                            http::Response::new(http_body_util::Full::new(Bytes::from(e.code)));
                        *r.status_mut() = e.status;
                        r
                    }
                };
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
            .await;
    };
    let server = tokio::spawn(server);
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(wire_body).await.unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let _ = server.await;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status: u16 = String::from_utf8_lossy(&response[9..12]).parse().unwrap();
    (status, response[split + 4..].to_vec())
}

fn te_head(extra: &str) -> String {
    format!(
        "PUT /bucket/key HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         transfer-encoding: chunked\r\ncontent-encoding: aws-chunked\r\n{extra}\r\n"
    )
}

/// botocore's body format for `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
fn botocore_style(data: &[u8], chunk: usize, trailer: &str, value: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in data.chunks(chunk) {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("0\r\n{trailer}:{value}\r\n\r\n").as_bytes());
    body
}

fn unsigned_decoder(len: usize) -> ChunkedDecoder {
    ChunkedDecoder::new(
        StreamingMode::UnsignedTrailer,
        None,
        Some(len as u64),
        Some("x-amz-checksum-crc32"),
    )
    .unwrap()
}

#[tokio::test]
async fn hyper_dechunked_unsigned_trailer_bodies() {
    let data: Vec<u8> = (0..70_000u32).map(|n| (n % 7) as u8).collect();
    let head = te_head("x-amz-trailer: x-amz-checksum-crc32\r\n");
    // The aws-chunked framing is the HTTP framing: hyper strips it and hands over the trailer.
    let wire = botocore_style(&data, 1 << 20, "x-amz-checksum-crc32", &crc32(&data));
    let (status, body) = through_hyper(&head, &wire, unsigned_decoder(data.len())).await;
    assert_eq!(status, 200);
    assert_eq!(body, data);
    // A wrong checksum, and a body that is shorter than declared.
    let wire = botocore_style(&data, 65_536, "x-amz-checksum-crc32", &crc32(b"x"));
    let (status, body) = through_hyper(&head, &wire, unsigned_decoder(data.len())).await;
    assert_eq!((status, body.as_slice()), (400, &b"BadDigest"[..]));
    let wire = botocore_style(&data, 65_536, "x-amz-checksum-crc32", &crc32(&data));
    let (status, body) = through_hyper(&head, &wire, unsigned_decoder(data.len() + 1)).await;
    assert_eq!((status, body.as_slice()), (400, &b"IncompleteBody"[..]));
    // Empty object.
    let wire = botocore_style(b"", 1, "x-amz-checksum-crc32", "AAAAAA==");
    let (status, body) = through_hyper(&head, &wire, unsigned_decoder(0)).await;
    assert_eq!((status, body.len()), (200, 0));
}

#[tokio::test]
async fn hyper_aws_chunked_inside_http_chunked() {
    // Go's HTTP client frames a body of unknown length itself: aws-chunked inside HTTP chunks.
    let data = b"framed twice".repeat(1000);
    let inner = botocore_style(&data, 4096, "x-amz-checksum-crc32", &crc32(&data));
    let mut wire = Vec::new();
    for piece in inner.chunks(1000) {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let head = te_head("x-amz-trailer: x-amz-checksum-crc32\r\n");
    let (status, body) = through_hyper(&head, &wire, unsigned_decoder(data.len())).await;
    assert_eq!(status, 200);
    assert_eq!(body, data);
    // And with Content-Length: the bytes are aws-chunked.
    let head = format!(
        "PUT /bucket/key HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n",
        inner.len()
    );
    let (status, body) = through_hyper(&head, &inner, unsigned_decoder(data.len())).await;
    assert_eq!(status, 200);
    assert_eq!(body, data);
}

#[tokio::test]
async fn hyper_signed_chunks_with_content_length() {
    let data = b"signed over the wire".repeat(500);
    let req = signed_request(Some("x-amz-checksum-crc32"), data.len());
    let trailers = [("x-amz-checksum-crc32", crc32(&data))];
    let wire = sdk_signed_body(&req.seed, &data, 4096, Some(&trailers));
    let head = format!(
        "PUT /bucket/key HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n",
        wire.len()
    );
    let (status, body) = through_hyper(&head, &wire, req.decoder()).await;
    assert_eq!(status, 200);
    assert_eq!(body, data);
    // A changed trailer signature: found once the whole body was read (a failure in the
    // middle would have the server close with unread request bytes, which resets the
    // connection and can lose the response).
    let mut bad = wire.clone();
    let at = wire.len() - 5;
    bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
    let (status, body) = through_hyper(&head, &bad, req.decoder()).await;
    assert_eq!(
        (status, body.as_slice()),
        (403, &b"SignatureDoesNotMatch"[..])
    );
}

/// The fuzz target's conventions (see `fuzz/fuzz_targets/aws_chunked.rs`): every seed is a
/// valid body, so the fuzzer starts from inputs that pass verification.
#[test]
fn fuzz_seeds_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/aws_chunked");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let [ctl, _split, len, body @ ..] = input.as_slice() else {
            panic!("{}: too short", path.display())
        };
        let mode = match ctl & 3 {
            0 => StreamingMode::Signed,
            1 => StreamingMode::SignedTrailer,
            _ => StreamingMode::UnsignedTrailer,
        };
        let declared = match (ctl >> 2) & 3 {
            0 => None,
            1 => Some("x-amz-checksum-crc32"),
            2 => Some("x-amz-checksum-sha256"),
            _ => Some("x-amz-checksum-crc64nvme, x-amz-meta-a"),
        };
        let signing = ChunkSigning {
            key: Arc::new(sigv4::derive_signing_key(
                "secret",
                "20130524",
                "us-east-1",
                "s3",
            )),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed: Signature::from_hex(
                "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            )
            .unwrap(),
        };
        let expected = (ctl & 0x10 != 0).then_some(u64::from(*len));
        let mut dec = ChunkedDecoder::new(mode, Some(signing), expected, declared).unwrap();
        let mut out = Vec::new();
        if ctl & 0x20 != 0 {
            dec.assume_dechunked().unwrap();
            let (data, trailers) = body.split_at(body.iter().position(|&b| b == 0).unwrap());
            dec.feed(Bytes::copy_from_slice(data), &mut out).unwrap();
            let mut map = http::HeaderMap::new();
            for line in std::str::from_utf8(&trailers[1..]).unwrap().lines() {
                let (k, v) = line.split_once(':').unwrap();
                map.append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            dec.http_trailers(&map).unwrap();
        } else {
            dec.feed(Bytes::copy_from_slice(body), &mut out)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        dec.finish()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 5, "seeds found: {n}");
}

/// Python that builds real botocore `PutObject` requests (endpoint `https://…`, so botocore
/// uses `STREAMING-UNSIGNED-PAYLOAD-TRAILER`), captures them before sending and prints one JSON
/// object per request: headers, body and data (base64).
const BOTOCORE_CAPTURE: &str = r#"
import base64, json, os, sys
import botocore.session
from botocore.config import Config

class Captured(Exception):
    pass

algorithms = sys.argv[1].split(",")
session = botocore.session.get_session()
for algorithm in algorithms:
    for size in (0, 1, 70000, 1100000):
        client = session.create_client(
            "s3", region_name="us-east-1", endpoint_url="https://s3.example.com",
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="interop-secret",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        seen = {}
        def before_send(request, **kwargs):
            body = request.body
            raw = body.read() if hasattr(body, "read") else (body or b"")
            if isinstance(raw, str):
                raw = raw.encode()
            seen["headers"] = [[k, v.decode() if isinstance(v, bytes) else v]
                               for k, v in request.headers.items()]
            seen["url"] = request.url
            seen["body"] = base64.b64encode(raw).decode()
            raise Captured()
        client.meta.events.register("before-send.s3.PutObject", before_send)
        data = os.urandom(size)
        try:
            client.put_object(Bucket="bucket", Key="key", Body=data, ChecksumAlgorithm=algorithm)
        except Captured:
            pass
        seen["data"] = base64.b64encode(data).decode()
        seen["algorithm"] = algorithm
        print(json.dumps(seen), flush=True)
"#;

/// Runs [`BOTOCORE_CAPTURE`] with the interop Python; `crt`: leave botocore's CRT signer on.
fn botocore_requests(algorithms: &str, crt: bool) -> Vec<serde_json::Value> {
    let python = std::env::var_os("TOLLGATE_INTEROP_PYTHON")
        .filter(|p| !p.is_empty())
        .expect("TOLLGATE_INTEROP_PYTHON is not set: run tests/run.sh, or point it to a Python with botocore");
    let mut cmd = std::process::Command::new(python);
    cmd.arg("-c").arg(BOTOCORE_CAPTURE).arg(algorithms);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if crt {
        cmd.env_remove("BOTO_DISABLE_CRT");
    } else {
        cmd.env("BOTO_DISABLE_CRT", "true");
    }
    let out = cmd.output().expect("run python");
    assert!(
        out.status.success(),
        "botocore capture failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Verifies one captured botocore request the way the proxy does (seed signature, mode,
/// decoder from the headers), then decodes its body as aws-chunked bytes and, through hyper,
/// as the HTTP chunked framing botocore sends it with.
async fn check_botocore_request(r: &serde_json::Value) {
    let engine = base64::engine::general_purpose::STANDARD;
    let data = engine.decode(r["data"].as_str().unwrap()).unwrap();
    let body = engine.decode(r["body"].as_str().unwrap()).unwrap();
    let what = format!("{} {} bytes", r["algorithm"], data.len());
    let mut headers = http::HeaderMap::new();
    for pair in r["headers"].as_array().unwrap() {
        let (k, v) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        headers.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let url: http::Uri = r["url"].as_str().unwrap().parse().unwrap();
    let http_req = HttpRequest {
        method: "PUT",
        path: url.path(),
        query: url.query(),
        authority: url.authority().map(|a| a.as_str()),
        headers: &headers,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let parsed = sigv4::parse(&http_req, now, 900).unwrap_or_else(|e| panic!("{what}: {e}"));
    let payload = parsed.payload_mode();
    assert_eq!(
        payload,
        PayloadMode::Streaming(sigv4::STREAMING_UNSIGNED_TRAILER),
        "{what}"
    );
    let mode = StreamingMode::detect(&payload, &headers).unwrap().unwrap();
    let scope = parsed.scope();
    let key = sigv4::derive_signing_key("interop-secret", scope.date, scope.region, scope.service);
    let mut sts = Vec::new();
    parsed
        .string_to_sign(&mut sts, &http_req, mode.as_str())
        .unwrap();
    assert!(
        sigv4::verify(&key, &sts, &parsed.signature),
        "{what}: seed signature"
    );
    assert!(sigv4::is_aws_chunked(&headers), "{what}");
    let trailer = headers
        .get("x-amz-trailer")
        .map(|v| v.to_str().unwrap().to_owned());
    let decoder = || {
        ChunkedDecoder::new(
            mode,
            None,
            sigv4::decoded_content_length(&headers).unwrap(),
            trailer.as_deref(),
        )
        .unwrap()
    };
    assert!(decoder().checksum_algorithm().is_some(), "{what}");
    assert_eq!(
        decode_in_pieces(decoder(), &body, 7919).unwrap(),
        data,
        "{what}"
    );
    // One flipped data byte is caught by the checksum.
    if !data.is_empty() {
        let mut bad = body.clone();
        let at = body.iter().position(|&b| b == b'\n').unwrap() + 1;
        bad[at] ^= 1;
        assert!(
            matches!(
                decode_in_pieces(decoder(), &bad, 7919),
                Err(ChunkError::ChecksumMismatch(_))
            ),
            "{what}"
        );
    }
    // As botocore puts it on the wire: the aws-chunked framing is the HTTP chunked framing.
    let head = te_head(&format!(
        "x-amz-trailer: {}\r\n",
        trailer.as_deref().unwrap_or_default()
    ));
    let (status, out) = through_hyper(&head, &body, decoder()).await;
    assert_eq!(status, 200, "{what}: {}", String::from_utf8_lossy(&out));
    assert_eq!(out, data, "{what}");
    assert_eq!(
        sha2::Sha256::digest(&out)[..],
        sha2::Sha256::digest(&data)[..]
    );
}

#[tokio::test]
#[ignore = "interop: run by the README test command"]
async fn interop_botocore_unsigned_trailer_bodies() {
    // With awscrt installed botocore signs with the CRT signer and computes CRC32C and
    // CRC64NVME; without it (BOTO_DISABLE_CRT) it signs in Python.
    let crt = botocore_requests("CRC32,CRC32C,CRC64NVME,SHA1,SHA256", true);
    let python = botocore_requests("CRC32,SHA1,SHA256", false);
    assert_eq!(crt.len(), 20);
    assert_eq!(python.len(), 12);
    for r in crt.iter().chain(&python) {
        check_botocore_request(r).await;
    }
}
