//! Limits of the real binary: a slow request head (slowloris) is cut at
//! `header_read_timeout_ms`, an oversized head gets 431, an over-long URI 414, an oversized body
//! 413 `EntityTooLarge`, connections over `max_connections` 503, idle HTTP/2 connections get
//! GOAWAY at `idle_timeout_seconds` — and Tollgate keeps serving other clients throughout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_sigv4::http_request::SignableBody;

use crate::proxy::{alice_get, error_code, send_raw, signed_headers, write_config, KEY_ID, SECRET};
use crate::support::Tollgate;

fn start(limits: &str) -> (Tollgate, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "builtin:echo",
        &format!("\n[limits]\n{limits}\n"),
        5000,
    );
    let tg = Tollgate::start(&["serve", "--config", &config], true);
    (tg, dir)
}

/// A correctly signed GET: Tollgate still answers other clients.
fn still_serving(tg: &Tollgate) {
    let headers = alice_get(&tg.proxy_addr, "/orders/1");
    let r = send_raw(&tg.proxy_addr, "GET", "/orders/1", &headers, b"");
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Reads until the peer closes (or `limit` passes); returns what arrived and whether it closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), false)
}

#[test]
fn slow_heads_are_cut_and_oversized_heads_and_bodies_refused() {
    let (tg, _dir) =
        start("header_read_timeout_ms = 500\nmax_header_bytes = 8192\nmax_body_bytes = 1000\nmax_uri_bytes = 1024");

    // Slowloris: half a request head, then nothing. The connection is closed at the timeout;
    // meanwhile other clients are served.
    let mut slow = TcpStream::connect(&tg.proxy_addr).unwrap();
    slow.write_all(b"GET /orders/1 HTTP/1.1\r\nhost: x\r\nx-slow: 1\r\n")
        .unwrap();
    still_serving(&tg);
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(15));
    assert!(
        closed,
        "a request head left unfinished must not hold its connection"
    );
    still_serving(&tg);

    // A head over max_header_bytes: 431.
    let big = vec![("x-big".to_owned(), "a".repeat(10_000))];
    let r = send_raw(&tg.proxy_addr, "GET", "/orders/1", &big, b"");
    assert_eq!(r.status, 431, "{}", r.head);
    still_serving(&tg);

    // A correctly signed request whose URI is over max_uri_bytes (but whose head is within
    // max_header_bytes): 414, before the signature is checked.
    let long = format!("/orders/1?q={}", "a".repeat(1100));
    let headers = alice_get(&tg.proxy_addr, &long);
    let r = send_raw(&tg.proxy_addr, "GET", &long, &headers, b"");
    assert_eq!(
        (r.status, error_code(&r.body)),
        (414, "RequestURITooLong"),
        "{}",
        r.body
    );
    // At the limit it passes.
    let at_limit = format!("/orders/1?q={}", "a".repeat(1024 - "/orders/1?q=".len()));
    let headers = alice_get(&tg.proxy_addr, &at_limit);
    let r = send_raw(&tg.proxy_addr, "GET", &at_limit, &headers, b"");
    assert_eq!(r.status, 200, "{}", r.body);

    // A body over max_body_bytes, refused before it is read: 413 EntityTooLarge.
    let url = format!("{}/orders", tg.proxy_url());
    let body = vec![b'x'; 2000];
    let headers = signed_headers(
        "POST",
        &url,
        "execute-api",
        SignableBody::Bytes(&body),
        &[],
        (KEY_ID, SECRET),
    );
    let r = send_raw(&tg.proxy_addr, "POST", "/orders", &headers, &body);
    assert_eq!(
        (r.status, error_code(&r.body)),
        (413, "EntityTooLarge"),
        "{}",
        r.body
    );
    still_serving(&tg);
}

#[test]
fn connections_over_the_limit_get_503_and_the_rest_is_served() {
    let (tg, _dir) = start("max_connections = 3\nheader_read_timeout_ms = 30000");
    // Three idle connections take every place.
    let idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&tg.proxy_addr).unwrap())
        .collect();
    // Wait (bounded) until the third is counted: a fourth is then turned away.
    let started = Instant::now();
    let refused = loop {
        let mut extra = TcpStream::connect(&tg.proxy_addr).unwrap();
        let (text, closed) = read_until_closed(&mut extra, Duration::from_secs(2));
        if closed && text.starts_with("HTTP/1.1 503") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no 503 while 3 connections are open"
        );
    };
    assert!(
        refused.contains("<Code>ServiceUnavailable</Code>"),
        "{refused}"
    );
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    // Once they go, new clients are served again.
    drop(idle);
    let started = Instant::now();
    loop {
        let mut s = send_signed_get(&tg.proxy_addr, "/orders/1", false);
        let (text, _) = read_until_closed(&mut s, Duration::from_secs(5));
        if text.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not served again after the idle connections closed: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An upstream that accepts connections and never answers; counts what it accepted.
fn hanging_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (addr, accepted)
}

/// Sends alice's signed GET on a fresh connection without waiting for the answer; the
/// connection stays open after it when `keep_alive`.
fn send_signed_get(proxy: &str, path: &str, keep_alive: bool) -> TcpStream {
    let mut s = TcpStream::connect(proxy).unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\n");
    for (k, v) in &alice_get(proxy, path) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s
}

#[test]
fn calls_over_max_in_flight_are_shed_with_503_and_served_again_after() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, accepted) = hanging_upstream();
    let config = write_config(
        dir.path(),
        &format!("http://{upstream}"),
        "\n[limits]\nmax_in_flight = 2\n",
        3000,
    );
    let tg = Tollgate::start(&["serve", "--config", &config], false);
    // Two calls wait on the upstream (until its 3 s timeout)…
    let mut waiting: Vec<TcpStream> = (0..2)
        .map(|i| send_signed_get(&tg.proxy_addr, &format!("/orders/{i}"), false))
        .collect();
    // …(once the upstream holds both)…
    let started = Instant::now();
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the two calls never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // …so a third is shed at once.
    let mut s = send_signed_get(&tg.proxy_addr, "/orders/9", false);
    let (shed, _) = read_until_closed(&mut s, Duration::from_secs(10));
    assert!(shed.starts_with("HTTP/1.1 503"), "not shed: {shed}");
    assert!(shed.contains("<Code>ServiceUnavailable</Code>"), "{shed}");
    assert!(
        shed.to_ascii_lowercase().contains("retry-after: 1"),
        "{shed}"
    );
    // An S3 call is shed with S3's own code.
    let s3 = signed_headers(
        "GET",
        &format!("http://{}/bucket/key", tg.proxy_addr),
        "s3",
        SignableBody::Bytes(b""),
        &[],
        (KEY_ID, SECRET),
    );
    let r = send_raw(&tg.proxy_addr, "GET", "/bucket/key", &s3, b"");
    assert_eq!(
        (r.status, error_code(&r.body)),
        (503, "SlowDown"),
        "{}",
        r.body
    );
    // The waiting calls end at the upstream timeout (504); then calls pass again.
    for s in &mut waiting {
        let (text, _) = read_until_closed(s, Duration::from_secs(15));
        assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    }
    let mut s = send_signed_get(&tg.proxy_addr, "/orders/10", false);
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(15));
    assert!(
        text.starts_with("HTTP/1.1 504"),
        "served (by the hanging upstream) again: {text}"
    );
}

/// An HTTP/1 keep-alive connection left idle after a call is closed at `header_read_timeout_ms`
/// (the wait for the next request head is that timeout): idle connections do not pile up.
#[test]
fn idle_keep_alive_connections_are_closed_at_the_header_read_timeout() {
    let (tg, _dir) = start("header_read_timeout_ms = 500");
    let mut s = send_signed_get(&tg.proxy_addr, "/orders/1", true);
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive connection was kept open");
    still_serving(&tg);
}

/// HTTP/2 connections (h2c, prior knowledge) with no call open for `idle_timeout_seconds` get
/// GOAWAY and are closed; a call that takes longer than the idle timeout (its body arrives
/// slowly) is not cut, and the connection closes only once it has been idle that long.
#[test]
fn idle_http2_connections_are_closed_but_open_calls_are_not_cut() {
    use http_body_util::BodyExt;
    let (tg, _dir) = start("idle_timeout_seconds = 1");
    let url = format!("{}/orders", tg.proxy_url());
    let body: Vec<u8> = b"0123456789".repeat(3);
    let headers = signed_headers(
        "POST",
        &url,
        "execute-api",
        SignableBody::Bytes(&body),
        &[],
        (KEY_ID, SECRET),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&tg.proxy_addr)
            .await
            .unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        let closed = tokio::spawn(async move {
            let _ = conn.await;
            Instant::now()
        });
        // The body comes in three parts 700 ms apart: the call is open for 1.4 s, longer than
        // the idle timeout.
        let (tx, rx) = tokio::sync::mpsc::channel::<
            Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>,
        >(4);
        let parts: Vec<bytes::Bytes> = body.chunks(10).map(bytes::Bytes::copy_from_slice).collect();
        tokio::spawn(async move {
            for (i, part) in parts.into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                }
                let _ = tx.send(Ok(hyper::body::Frame::data(part))).await;
            }
        });
        let stream_body = ChannelBody(rx);
        let mut req = http::Request::builder().method("POST").uri(&url);
        for (k, v) in &headers {
            if k != "host" {
                req = req.header(k, v);
            }
        }
        let resp = send
            .send_request(req.body(stream_body).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let echo = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(
            String::from_utf8_lossy(&echo).contains("orders"),
            "{}",
            String::from_utf8_lossy(&echo)
        );
        let answered = Instant::now();
        // Now idle: the server closes the connection between 1 and 1.25 s later.
        let closed_at = tokio::time::timeout(Duration::from_secs(10), closed)
            .await
            .expect("an idle HTTP/2 connection was kept open")
            .unwrap();
        let idle = closed_at - answered;
        assert!(
            idle >= Duration::from_millis(900),
            "closed after only {idle:?} of idleness"
        );
    });
    still_serving(&tg);
}

/// A request body whose frames come from a channel.
struct ChannelBody(
    tokio::sync::mpsc::Receiver<Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>>,
);

impl hyper::body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0.poll_recv(cx)
    }
}
