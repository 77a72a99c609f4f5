//! The reverse proxy: a hyper server (HTTP/1.1 and h2c) that authenticates every request and
//! forwards the allowed ones to the upstream with identity headers.

mod audit;
pub mod body;
pub mod chunked;
pub mod echo;
pub mod error;
mod forward;
pub(crate) mod gate;
mod handler;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::config::{Snapshot, UpstreamTarget};
use crate::sigv4::SigningKeyCache;
use crate::telemetry::Metrics;
use body::BoxBody;

pub use handler::handle;
pub(crate) use handler::{chunked_decoder, decode_chunked};

/// Signing keys cached at most (one per access key, day, region and service in use).
const SIGNING_KEY_CACHE_CAPACITY: usize = 16_384;

/// Where allowed requests go: scheme and authority of the upstream.
#[derive(Debug, Clone)]
pub struct UpstreamBase {
    /// `http`.
    pub scheme: http::uri::Scheme,
    /// `host:port`.
    pub authority: http::uri::Authority,
}

impl UpstreamBase {
    /// The upstream of a snapshot; `echo` is the address of the built-in echo server when the
    /// config asks for it.
    pub fn resolve(snapshot: &Snapshot, echo: Option<SocketAddr>) -> Result<Self, String> {
        match &snapshot.upstream.target {
            UpstreamTarget::Echo => {
                let addr = echo.ok_or("the built-in echo upstream is not running")?;
                let authority = addr.to_string().parse().map_err(|e| format!("{e}"))?;
                Ok(Self {
                    scheme: http::uri::Scheme::HTTP,
                    authority,
                })
            }
            UpstreamTarget::Url(uri) => {
                let scheme = uri.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP);
                let authority = uri.authority().cloned().ok_or("upstream URL has no host")?;
                Ok(Self { scheme, authority })
            }
        }
    }
}

/// Everything the request path shares.
pub struct ProxyState {
    /// The configuration in force; swapped whole on reload.
    pub snapshot: ArcSwap<Snapshot>,
    /// Signing keys, across snapshots (entries are tagged with their generation).
    pub signing_keys: SigningKeyCache,
    /// Opened session tokens (temporary credentials).
    pub sessions: crate::sts::session::SessionCache,
    /// OIDC providers' keys for `AssumeRoleWithWebIdentity` (rebuilt with the configuration).
    pub web_identity: arc_swap::ArcSwapOption<crate::sts::oidc::WebIdentityVerifier>,
    /// `aws:CurrentTime` / `aws:EpochTime` of the current second, formatted once.
    clock: ArcSwap<crate::authz::ClockStrings>,
    /// Metrics.
    pub metrics: Metrics,
    /// The upstream.
    pub upstream: UpstreamBase,
    /// The audit queue (disabled when no sink is configured).
    pub auditor: crate::audit::pipeline::Auditor,
    /// Calls being decided or forwarded now (`[limits] max_in_flight`).
    pub(crate) in_flight: std::sync::atomic::AtomicUsize,
    /// TLS for the HTTP listeners (`[tls]`), loaded at start and reloaded on file change.
    pub tls: Option<Arc<crate::tls::Tls>>,
    client: UpstreamClient,
}

/// The pooled upstream client: a plain-HTTP one for an `http://` upstream (no TLS layer to go
/// through on every read and write), a TLS-capable one for `https://`.
enum UpstreamClient {
    Plain(Client<HttpConnector, BoxBody>),
    Tls(Client<hyper_rustls::HttpsConnector<HttpConnector>, BoxBody>),
}

impl UpstreamClient {
    fn request(&self, req: hyper::Request<BoxBody>) -> hyper_util::client::legacy::ResponseFuture {
        match self {
            UpstreamClient::Plain(c) => c.request(req),
            UpstreamClient::Tls(c) => c.request(req),
        }
    }
}

/// The TLS client configuration for an `https://` upstream: roots from `ca_file` (PEM), or the
/// system's trust store (the Mozilla roots of `webpki-roots` when it has none).
pub fn upstream_tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_rustls::rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                roots
                    .add(cert.map_err(|e| format!("{}: {e}", path.display()))?)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificate in the file", path.display()));
            }
            builder.with_root_certificates(roots)
        }
        // The system's trust store; the Mozilla roots when it has none.
        None => match hyper_rustls::ConfigBuilderExt::with_native_roots(builder) {
            Ok(native) => native,
            Err(e) => {
                tracing::warn!(error = %e, "no system CA certificates: using the webpki roots");
                hyper_rustls::ConfigBuilderExt::with_webpki_roots(
                    rustls::ClientConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?,
                )
            }
        },
    };
    Ok(builder.with_no_client_auth())
}

impl std::fmt::Debug for ProxyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyState")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl ProxyState {
    /// Builds the state: the pooled upstream client (HTTP/1.1, `http://` or `https://`) uses
    /// the snapshot's connect timeout and upstream CA bundle. Fails only when that bundle cannot
    /// be loaded.
    pub fn new(
        snapshot: Arc<Snapshot>,
        metrics: Metrics,
        upstream: UpstreamBase,
        auditor: crate::audit::pipeline::Auditor,
    ) -> Result<Self, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(snapshot.upstream.connect_timeout));
        let builder = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .clone();
        let client = if upstream.scheme == http::uri::Scheme::HTTPS {
            // Roots only for an https upstream (reading the system store costs a few ms).
            let tls = upstream_tls_config(snapshot.upstream.ca_file.as_deref())?;
            connector.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_only()
                .enable_http1()
                .wrap_connector(connector);
            UpstreamClient::Tls(builder.build(connector))
        } else {
            connector.enforce_http(true);
            UpstreamClient::Plain(builder.build(connector))
        };
        metrics
            .config_generation
            .set(i64::try_from(snapshot.generation).unwrap_or(i64::MAX));
        let web_identity = crate::sts::service::verifier(&snapshot);
        Ok(Self {
            snapshot: ArcSwap::new(snapshot),
            signing_keys: SigningKeyCache::new(SIGNING_KEY_CACHE_CAPACITY),
            sessions: crate::sts::session::SessionCache::default(),
            web_identity: arc_swap::ArcSwapOption::new(web_identity),
            clock: ArcSwap::from_pointee(crate::authz::ClockStrings::new(0)),
            metrics,
            upstream,
            auditor,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            tls: None,
            client,
        })
    }
}

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The authorizing reverse proxy (STS calls are answered, everything else forwarded).
    Proxy,
    /// The api listener: STS only, nothing is forwarded.
    Api,
    /// Envoy's gRPC `Check` service.
    ExtAuthzGrpc,
    /// Envoy's HTTP-service mode.
    ExtAuthzHttp,
}

impl Listener {
    /// The listener's name in logs and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Proxy => "proxy",
            Listener::Api => "api",
            Listener::ExtAuthzGrpc => "extauthz-grpc",
            Listener::ExtAuthzHttp => "extauthz-http",
        }
    }
}

impl ProxyState {
    /// The formatted time strings for `now` (epoch seconds), rebuilt once per second.
    pub fn clock(&self, now: i64) -> Arc<crate::authz::ClockStrings> {
        let current = self.clock.load_full();
        if current.now == now {
            return current;
        }
        let fresh = Arc::new(crate::authz::ClockStrings::new(now));
        self.clock.store(fresh.clone());
        fresh
    }
}

/// Accepts connections on `listener` and serves each (HTTP/1.1, or HTTP/2 with prior
/// knowledge) until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ProxyState>) {
    serve_as(listener, state, Listener::Proxy).await;
}

/// [`serve`] for a given listener kind.
pub async fn serve_as(listener: tokio::net::TcpListener, state: Arc<ProxyState>, kind: Listener) {
    serve_until(listener, state, kind, std::future::pending()).await;
}

/// Serves until `stop` completes, then stops accepting and waits for the open connections to
/// finish their requests (idle keep-alive connections are closed, HTTP/2 gets GOAWAY). The
/// caller bounds the wait.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: Arc<ProxyState>,
    kind: Listener,
    stop: impl std::future::Future<Output = ()>,
) {
    let (limits, tls) = {
        let snapshot = state.snapshot.load();
        (snapshot.limits, state.tls.clone())
    };
    serve_connections(listener, stop, limits, tls, move |req, peer| {
        let state = state.clone();
        async move { handle(&state, req, peer, kind).await }
    })
    .await;
}

/// The answer to a connection over `max_connections`, written before closing it.
fn over_capacity_response() -> Vec<u8> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code>\
        <Message>Too many open connections; retry later.</Message></Error>";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accepts connections on `listener` and serves each (HTTP/1.1, or HTTP/2 with prior
/// knowledge) with `handler` until `stop` completes; then drains as [`serve_until`] says.
/// `limits` bound the request head (size, header count, the time to send it) and the number of
/// open connections: beyond it a new connection is answered 503 and closed. With `tls`, every
/// connection is TLS (ALPN picks HTTP/2 or HTTP/1.1; the handshake must finish within the
/// header read timeout) and its requests carry [`crate::tls::SecureTransport`] (and, with
/// mutual TLS, the client's [`crate::tls::ClientCert`]).
pub async fn serve_connections<F, Fut>(
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()>,
    limits: crate::config::Limits,
    tls: Option<Arc<crate::tls::Tls>>,
    handler: F,
) where
    F: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<BoxBody>> + Send + 'static,
{
    // Every connection task holds a receiver: `send` asks them to finish, `closed` waits
    // until they all have.
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(());
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        // The read buffer bounds the head: a longer one gets 431. (hyper's minimum is 8 KiB,
        // which the configuration enforces.)
        .max_buf_size(usize::try_from(limits.max_header_bytes.max(8192)).unwrap_or(8192));
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes);
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            conn = listener.accept() => match conn {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stop.as_mut() => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: max_connections reached");
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    stream.write_all(&over_capacity_response()),
                )
                .await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let handler = handler.clone();
        let secure = tls.is_some();
        let activity = Arc::new(Activity::default());
        let svc = {
            let activity = activity.clone();
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                if secure {
                    req.extensions_mut().insert(crate::tls::SecureTransport);
                }
                let open = activity.begin();
                // The handler's future is large (authentication, authorization, the upstream
                // call: ≈ 4.5 KB, held twice in this block when unboxed: 9.6 KB) and hyper moves
                // the service future into its dispatcher for every request. Boxed, it is copied
                // once into the heap and the later moves are of a pointer.
                let response = Box::pin(handler(req, peer));
                async move {
                    let response = response.await;
                    drop(open);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let shutdown = shutdown_rx.clone();
        let builder = builder.clone();
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        let handshake_timeout = limits.header_read_timeout;
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let served = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    drive(
                        conn,
                        |c| c.graceful_shutdown(),
                        shutdown,
                        &activity,
                        idle_timeout,
                    )
                    .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let client_cert = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| crate::tls::ClientCert::from_der(c))
                                .map(Arc::new);
                            let svc = hyper::service::service_fn(
                                move |mut req: hyper::Request<hyper::body::Incoming>| {
                                    if let Some(c) = &client_cert {
                                        req.extensions_mut().insert(c.clone());
                                    }
                                    hyper::service::Service::call(&svc, req)
                                },
                            );
                            let conn = builder.serve_connection(TokioIo::new(stream), svc);
                            drive(
                                conn,
                                |c| c.graceful_shutdown(),
                                shutdown,
                                &activity,
                                idle_timeout,
                            )
                            .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    drop(shutdown_rx);
    // Ask every open connection to finish (HTTP/1: close after the call in progress; HTTP/2:
    // GOAWAY), then wait until they have.
    let _ = shutdown.send(());
    shutdown.closed().await;
}

/// What a connection is doing, for its idle timeout: calls open now, and a count that moves
/// whenever one starts or ends. Updated with two uncontended atomic operations per call.
#[derive(Default)]
struct Activity {
    open: std::sync::atomic::AtomicUsize,
    events: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> OpenCall {
        use std::sync::atomic::Ordering::Relaxed;
        self.open.fetch_add(1, Relaxed);
        self.events.fetch_add(1, Relaxed);
        OpenCall(self.clone())
    }

    /// The event count while no call is open, `None` while one is.
    fn quiet_mark(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let mark = self.events.load(Relaxed);
        (self.open.load(Relaxed) == 0).then_some(mark)
    }
}

/// A call counted as open on its connection until dropped.
struct OpenCall(Arc<Activity>);

impl Drop for OpenCall {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.open.fetch_sub(1, Relaxed);
        self.0.events.fetch_add(1, Relaxed);
    }
}

/// Serves one connection until it ends. It is asked to finish (`graceful_shutdown`: HTTP/1
/// closes after the call in progress, HTTP/2 sends GOAWAY and lets open streams finish) when
/// the listener shuts down, or when no call has been open on it for `idle_timeout` — checked
/// four times per period, so an idle connection closes between 1 and 1.25 periods after its
/// last call.
///
/// The connection is polled whenever the task wakes (two or three times per call). The
/// shutdown signal and the idle ticks are polled only when one of them woke the task: they
/// have their own waker ([`ControlWake`]), so a call does not pay for checking them.
async fn drive<C, E>(
    conn: C,
    graceful_shutdown: impl Fn(std::pin::Pin<&mut C>),
    shutdown: tokio::sync::watch::Receiver<()>,
    activity: &Activity,
    idle_timeout: std::time::Duration,
) -> Result<(), E>
where
    C: std::future::Future<Output = Result<(), E>>,
{
    use std::future::Future;
    use std::sync::atomic::Ordering;
    use std::task::{Context, Poll};
    let mut conn = std::pin::pin!(conn);
    // The receiver itself stays here until the connection has ended: the listener waits for
    // every receiver to be dropped before it reports that its connections are done.
    let mut signal = shutdown.clone();
    let mut stop = std::pin::pin!(async move {
        let _ = signal.changed().await;
    });
    let tick = idle_timeout / 4;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The event count at the last tick, and how many ticks in a row it has stayed quiet.
    let mut last = activity.quiet_mark();
    let mut quiet_ticks = 0u32;
    let mut finishing = false;
    let control = Arc::new(ControlWake::default());
    let control_waker = std::task::Waker::from(control.clone());
    let mut task_waker: Option<std::task::Waker> = None;
    let served = std::future::poll_fn(move |cx| loop {
        // The task's waker, for the control waker to pass wake-ups on to (it changes rarely,
        // if ever: the check is a comparison).
        if !task_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            task_waker = Some(cx.waker().clone());
            control.set_task(cx.waker().clone());
        }
        if let Poll::Ready(served) = conn.as_mut().poll(cx) {
            return Poll::Ready(served);
        }
        if finishing
            || !control.woken.load(Ordering::Acquire)
            || !control.woken.swap(false, Ordering::AcqRel)
        {
            return Poll::Pending;
        }
        let mut control_cx = Context::from_waker(&control_waker);
        if stop.as_mut().poll(&mut control_cx).is_ready() {
            finishing = true;
        }
        while !finishing && ticks.poll_tick(&mut control_cx).is_ready() {
            let now = activity.quiet_mark();
            quiet_ticks = if now.is_some() && now == last {
                quiet_ticks + 1
            } else {
                0
            };
            last = now;
            if quiet_ticks >= 4 {
                tracing::debug!("closing an idle connection");
                finishing = true;
            }
        }
        if !finishing {
            return Poll::Pending;
        }
        // Asked to finish: hyper needs the connection polled again to act on it.
        graceful_shutdown(conn.as_mut());
    })
    .await;
    drop(shutdown);
    served
}

/// The waker of a connection's shutdown signal and idle ticks: notes that one of them fired,
/// then wakes the connection's task.
struct ControlWake {
    woken: std::sync::atomic::AtomicBool,
    task: std::sync::Mutex<Option<std::task::Waker>>,
}

impl Default for ControlWake {
    fn default() -> Self {
        // Woken at first, so that both are polled once (which registers them).
        Self {
            woken: std::sync::atomic::AtomicBool::new(true),
            task: std::sync::Mutex::new(None),
        }
    }
}

impl ControlWake {
    fn set_task(&self, waker: std::task::Waker) {
        if let Ok(mut task) = self.task.lock() {
            *task = Some(waker);
        }
    }
}

impl std::task::Wake for ControlWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, std::sync::atomic::Ordering::Release);
        if let Ok(task) = self.task.lock() {
            if let Some(waker) = task.as_ref() {
                waker.wake_by_ref();
            }
        }
    }
}
