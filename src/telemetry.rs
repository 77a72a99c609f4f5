//! Metrics (Prometheus), tracing setup and the admin listener (`/metrics`, `/healthz`, `/readyz`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric Tollgate exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `tollgate_requests_total{outcome, error_code}`.
    pub requests: IntCounterVec,
    /// `tollgate_request_duration_seconds{outcome}`.
    pub duration: HistogramVec,
    /// `tollgate_upstream_errors_total{kind}`.
    pub upstream_errors: IntCounterVec,
    /// `tollgate_signing_key_cache_hits_total`.
    pub cache_hits: IntCounter,
    /// `tollgate_signing_key_cache_misses_total`.
    pub cache_misses: IntCounter,
    /// `tollgate_config_generation`.
    pub config_generation: IntGauge,
    /// `tollgate_config_reloads_total{result}`: `success`, `failure` (the old config kept).
    pub config_reloads: IntCounterVec,
    /// `tollgate_audit_records_written_total{sink}`.
    pub audit_written: IntCounterVec,
    /// `tollgate_audit_queue_depth`: records waiting for the writer.
    pub audit_queue_depth: IntGauge,
    /// `tollgate_audit_records_dropped_total{reason}` (`overflow = "drop"` only).
    pub audit_dropped: IntCounterVec,
    /// `tollgate_audit_sink_errors_total{sink}`.
    pub audit_sink_errors: IntCounterVec,
    /// `tollgate_audit_refused_total`: calls refused with 503 because the audit could not keep
    /// up (`overflow = "fail-closed"`).
    pub audit_refused: IntCounter,
    /// The allowed-request series, resolved once (the hot path skips the label lookup).
    allowed: IntCounter,
    allowed_duration: prometheus::Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Buckets from 100 µs to 10 s: an authorization sidecar's own latency is sub-millisecond, the
/// upstream's is what fills the higher buckets.
const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tollgate_requests_total",
                "Requests decided, by outcome and AWS error code (`none` when allowed).",
            ),
            &["outcome", "error_code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_request_duration_seconds",
                "Time from request head received to response head sent, by outcome.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["outcome"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "tollgate_upstream_errors_total",
                "Upstream failures, by kind (connect, timeout, reset).",
            ),
            &["kind"],
        )?;
        let cache_hits = IntCounter::new(
            "tollgate_signing_key_cache_hits_total",
            "Signature verifications that found their signing key in the cache.",
        )?;
        let cache_misses = IntCounter::new(
            "tollgate_signing_key_cache_misses_total",
            "Signature verifications that derived their signing key.",
        )?;
        let config_generation = IntGauge::new(
            "tollgate_config_generation",
            "Generation of the configuration in use.",
        )?;
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "tollgate_config_reloads_total",
                "Configuration reloads (SIGHUP or a changed file), by result: success, or \
                 failure (the new configuration was refused; the old one keeps serving).",
            ),
            &["result"],
        )?;
        let audit_written = IntCounterVec::new(
            Opts::new(
                "tollgate_audit_records_written_total",
                "Audit records delivered, by sink (files, stdout, s3).",
            ),
            &["sink"],
        )?;
        let audit_queue_depth = IntGauge::new(
            "tollgate_audit_queue_depth",
            "Audit records waiting for the writer.",
        )?;
        let audit_dropped = IntCounterVec::new(
            Opts::new(
                "tollgate_audit_records_dropped_total",
                "Audit records dropped (overflow = \"drop\"), by reason (queue_full, sink_backlog).",
            ),
            &["reason"],
        )?;
        let audit_sink_errors = IntCounterVec::new(
            Opts::new(
                "tollgate_audit_sink_errors_total",
                "Failed audit sink operations, by sink (retried).",
            ),
            &["sink"],
        )?;
        let audit_refused = IntCounter::new(
            "tollgate_audit_refused_total",
            "Calls refused with 503 because the audit queue was full or a sink was failing \
             (overflow = \"fail-closed\").",
        )?;
        registry.register(Box::new(audit_written.clone()))?;
        registry.register(Box::new(audit_queue_depth.clone()))?;
        registry.register(Box::new(audit_dropped.clone()))?;
        registry.register(Box::new(audit_sink_errors.clone()))?;
        registry.register(Box::new(audit_refused.clone()))?;
        for reason in ["queue_full", "sink_backlog"] {
            audit_dropped.with_label_values(&[reason]);
        }
        // Every sink's series exist from the start: dashboards see zeros, not gaps.
        for sink in ["files", "stdout", "s3"] {
            audit_written.with_label_values(&[sink]);
            audit_sink_errors.with_label_values(&[sink]);
        }
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(cache_hits.clone()))?;
        registry.register(Box::new(cache_misses.clone()))?;
        registry.register(Box::new(config_generation.clone()))?;
        registry.register(Box::new(config_reloads.clone()))?;
        for result in ["success", "failure"] {
            config_reloads.with_label_values(&[result]);
        }
        // Pre-create the common series so dashboards see zeros rather than gaps.
        let allowed = requests.with_label_values(&["allowed", "none"]);
        let allowed_duration = duration.with_label_values(&["allowed"]);
        for kind in ["connect", "timeout", "reset"] {
            upstream_errors.with_label_values(&[kind]);
        }
        Ok(Self {
            registry,
            requests,
            duration,
            upstream_errors,
            cache_hits,
            cache_misses,
            config_generation,
            config_reloads,
            audit_written,
            audit_queue_depth,
            audit_dropped,
            audit_sink_errors,
            audit_refused,
            allowed,
            allowed_duration,
        })
    }

    /// Counts one decided request and its duration (seconds).
    pub fn record(&self, outcome: &str, error_code: &str, seconds: f64) {
        if outcome == "allowed" {
            self.allowed.inc();
            self.allowed_duration.observe(seconds);
        } else {
            self.requests
                .with_label_values(&[outcome, error_code])
                .inc();
            self.duration.with_label_values(&[outcome]).observe(seconds);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(4096);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

/// Liveness/readiness flags shared with the admin listener.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    generation: AtomicU64,
}

impl Health {
    /// Marks the process ready with the loaded config generation.
    pub fn set_ready(&self, generation: u64) {
        self.generation.store(generation, Ordering::Relaxed);
        self.ready.store(true, Ordering::Release);
    }

    /// Marks the process not ready (shutting down).
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

/// Answers one admin request.
pub fn admin_response<B>(
    req: &Request<B>,
    metrics: &Metrics,
    health: &Health,
) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/metrics") => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        (&http::Method::GET, "/healthz") => text(StatusCode::OK, "text/plain", "ok\n"),
        (&http::Method::GET, "/readyz") => {
            if health.ready.load(Ordering::Acquire) {
                let g = health.generation.load(Ordering::Relaxed);
                text(
                    StatusCode::OK,
                    "text/plain",
                    format!("ready generation={g}\n"),
                )
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n")
            }
        }
        (_, "/metrics" | "/healthz" | "/readyz") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Serves the admin listener until the task is dropped.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    health: Arc<Health>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                continue;
            }
        };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let resp = admin_response(&req, &metrics, &health);
                async move { Ok::<_, Infallible>(resp) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// Binds a listener, describing the address on failure.
pub async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}"))
    })
}

/// Sets up `tracing` to stderr; `RUST_LOG` overrides the default `info` level.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message` and the fields).
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_and_count() {
        let m = Metrics::new().unwrap();
        m.requests
            .with_label_values(&["denied", "SignatureDoesNotMatch"])
            .inc();
        let out = String::from_utf8(m.render()).unwrap();
        assert!(out.contains("tollgate_requests_total{error_code=\"SignatureDoesNotMatch\",outcome=\"denied\"} 1"), "{out}");
        assert!(out.contains("# TYPE tollgate_request_duration_seconds histogram"));
    }

    #[test]
    fn admin_routes() {
        let m = Metrics::new().unwrap();
        let h = Health::default();
        let get = |p: &str| Request::builder().uri(p).body(()).unwrap();
        assert_eq!(admin_response(&get("/healthz"), &m, &h).status(), 200);
        assert_eq!(admin_response(&get("/readyz"), &m, &h).status(), 503);
        h.set_ready(3);
        assert_eq!(admin_response(&get("/readyz"), &m, &h).status(), 200);
        assert_eq!(admin_response(&get("/nope"), &m, &h).status(), 404);
    }
}
