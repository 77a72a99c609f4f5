//! A steady load for the operational tests (reload, SIGTERM): `connections` HTTP/1 clients on
//! 127.0.0.1, each sending the same signed request back to back until stopped — on one
//! keep-alive connection (reconnecting when the server closes it) or on a new connection per
//! call. Every call is kept with its start and end
//! times and what came back, for the tests to judge; nothing here asserts anything.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};

/// What one call got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A whole response: status, AWS error code (empty on success) and request id.
    Answered {
        status: u16,
        code: String,
        request_id: String,
    },
    /// The connection could not be opened, or was closed before any response arrived: the
    /// call was never accepted.
    NotAccepted,
    /// A response head arrived but its body broke off, or the server answered with garbage.
    Broken(String),
}

/// One call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    pub(crate) outcome: Outcome,
}

/// A running load; [`Load::finish`] stops it and returns every call.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<Call>>>,
    count: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts `connections` keep-alive clients of `addr`, each sending `GET path` with
    /// `headers` (a request signed once and replayed, as the load scripts do: valid within the
    /// clock-skew window).
    pub(crate) fn start(
        addr: &str,
        path: &str,
        headers: Vec<(String, String)>,
        connections: usize,
    ) -> Self {
        Self::start_with(addr, path, headers, connections, true)
    }

    /// [`Load::start`]; with `keep_alive` false each call opens its own connection and asks
    /// for it to be closed (`Connection: close`).
    pub(crate) fn start_with(
        addr: &str,
        path: &str,
        mut headers: Vec<(String, String)>,
        connections: usize,
        keep_alive: bool,
    ) -> Self {
        if !keep_alive {
            headers.push(("connection".to_owned(), "close".to_owned()));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, calls, count) = (stop.clone(), calls.clone(), count.clone());
            let (addr, uri) = (addr.to_owned(), format!("http://{addr}{path}"));
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let tasks: Vec<_> = (0..connections)
                        .map(|_| {
                            let (stop, calls, count) = (stop.clone(), calls.clone(), count.clone());
                            let (addr, uri, headers) = (addr.clone(), uri.clone(), headers.clone());
                            tokio::spawn(async move {
                                let mut mine = Vec::new();
                                let client = Client {
                                    addr: &addr,
                                    uri: &uri,
                                    headers: &headers,
                                    keep_alive,
                                };
                                client.run(&stop, &count, &mut mine).await;
                                calls.lock().unwrap().extend(mine);
                            })
                        })
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                });
            })
        };
        Self {
            stop,
            calls,
            count,
            thread: Some(thread),
        }
    }

    /// Calls made so far (answered or not).
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Stops sending, waits for the calls in progress, and returns every call, oldest start
    /// first.
    pub(crate) fn finish(mut self) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let mut calls = std::mem::take(&mut *self.calls.lock().unwrap());
        calls.sort_by_key(|c| c.start);
        calls
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One client.
struct Client<'a> {
    addr: &'a str,
    uri: &'a str,
    headers: &'a [(String, String)],
    keep_alive: bool,
}

impl Client<'_> {
    /// The client's loop: connect, send calls back to back, reconnect when closed.
    async fn run(&self, stop: &AtomicBool, count: &AtomicU64, calls: &mut Vec<Call>) {
        let Self {
            addr,
            uri,
            headers,
            keep_alive,
        } = *self;
        let mut sender: Option<hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>> = None;
        while !stop.load(Ordering::Relaxed) {
            let start = Instant::now();
            count.fetch_add(1, Ordering::Relaxed);
            let send = match sender.as_mut() {
                Some(s) if !s.is_closed() => s,
                _ => match open(addr).await {
                    Some(s) => sender.insert(s),
                    None => {
                        calls.push(Call {
                            start,
                            end: Instant::now(),
                            outcome: Outcome::NotAccepted,
                        });
                        // The listener is gone (or full): do not spin.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                },
            };
            let mut req = http::Request::builder().method("GET").uri(uri);
            for (k, v) in headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let req = req.body(Empty::new()).unwrap();
            let outcome = if send.ready().await.is_err() {
                sender = None;
                Outcome::NotAccepted
            } else {
                match send.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let request_id = resp
                            .headers()
                            .get("x-amzn-requestid")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let close = resp
                            .headers()
                            .get("connection")
                            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                        if close {
                            sender = None;
                        }
                        match resp.into_body().collect().await {
                            Ok(body) => Outcome::Answered {
                                status,
                                code: crate::proxy::error_code(&String::from_utf8_lossy(
                                    &body.to_bytes(),
                                ))
                                .to_owned(),
                                request_id,
                            },
                            Err(e) => {
                                sender = None;
                                Outcome::Broken(format!("{status}, then the body broke: {e}"))
                            }
                        }
                    }
                    // Closed (or reset) before a response arrived: hyper says the message was
                    // incomplete, or the request was canceled before it was sent.
                    Err(e) if e.is_incomplete_message() || e.is_canceled() => {
                        sender = None;
                        Outcome::NotAccepted
                    }
                    Err(e) => {
                        sender = None;
                        if is_reset(&e) {
                            Outcome::NotAccepted
                        } else {
                            Outcome::Broken(format!("{e:?}"))
                        }
                    }
                }
            };
            if !keep_alive {
                sender = None;
            }
            calls.push(Call {
                start,
                end: Instant::now(),
                outcome,
            });
        }
    }
}

/// A connection reset or broken pipe while sending or before any response byte: the server
/// closed the connection (an idle keep-alive connection at shutdown) as the request went out.
fn is_reset(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
        }
        source = s.source();
    }
    false
}

async fn open(addr: &str) -> Option<hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(send)
}
