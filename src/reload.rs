//! Hot reload: on SIGHUP, or when a file the configuration was built from changes (checked every
//! second), the configuration is read, validated and compiled again off the request path, then
//! swapped in whole. Calls already running finish on the snapshot they started with (each holds
//! its own `Arc`); caches keyed by generation (signing keys, opened session tokens) never serve
//! an entry of an older one. A configuration that does not validate is refused — logged with
//! every finding and counted in `tollgate_config_reloads_total{result="failure"}` — and the old
//! one keeps serving.
//!
//! Listener addresses, the upstream, the audit sinks, the `[tls]` file paths and the connection
//! limits are bound at start: a reload that changes them keeps the running ones and says so
//! (restart to apply).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{self, Snapshot};
use crate::proxy::ProxyState;
use crate::telemetry::Health;

/// How often the source files are checked for changes.
pub const POLL: Duration = Duration::from_secs(1);

/// What a file looked like when last seen: modification time and length (`None`: missing).
type Stamp = Option<(SystemTime, u64)>;

fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file on disk (watched, and read again on SIGHUP).
    File(PathBuf),
    /// The embedded demo (read again on SIGHUP; nothing to watch).
    Demo,
}

impl Source {
    fn load(&self, generation: u64) -> Result<Snapshot, config::ConfigError> {
        match self {
            Source::File(path) => config::load_file(path, generation),
            Source::Demo => config::load_demo(generation),
        }
    }
}

/// Why a reload was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// A source file changed.
    FileChange,
}

/// Reads the configuration again and swaps it in when it validates. Returns the new generation,
/// or `None` when the new configuration was refused (the old one keeps serving).
pub async fn reload(
    source: &Source,
    state: &ProxyState,
    health: &Health,
    trigger: Trigger,
) -> Option<u64> {
    let current = state.snapshot.load_full();
    let generation = current.generation + 1;
    let loading = source.clone();
    let loaded = tokio::task::spawn_blocking(move || loading.load(generation)).await;
    let next = match loaded {
        Ok(Ok(next)) => next,
        Ok(Err(e)) => {
            tracing::error!(
                ?trigger,
                "configuration reload refused; the configuration of generation {} keeps \
                 serving:\n{e}",
                current.generation
            );
            state
                .metrics
                .config_reloads
                .with_label_values(&["failure"])
                .inc();
            return None;
        }
        Err(e) => {
            tracing::error!(?trigger, error = %e, "configuration reload failed");
            state
                .metrics
                .config_reloads
                .with_label_values(&["failure"])
                .inc();
            return None;
        }
    };
    warn_about_restart_only(&current, &next);
    for w in &next.policy_warnings {
        tracing::warn!("policy: {w}");
    }
    let next = Arc::new(next);
    let verifier = crate::sts::service::verifier(&next);
    if let Some(v) = &verifier {
        for (provider, e) in v.refresh_all().await {
            tracing::warn!(%provider, error = %e, "OIDC provider keys could not be loaded");
        }
    }
    state.web_identity.store(verifier);
    state.snapshot.store(next);
    state
        .metrics
        .config_generation
        .set(i64::try_from(generation).unwrap_or(i64::MAX));
    state
        .metrics
        .config_reloads
        .with_label_values(&["success"])
        .inc();
    health.set_ready(generation);
    tracing::info!(generation, ?trigger, "configuration reloaded");
    Some(generation)
}

/// Logs what a reload cannot change in a running process.
fn warn_about_restart_only(old: &Snapshot, new: &Snapshot) {
    if old.listeners != new.listeners {
        tracing::warn!("listener addresses changed: they take effect at restart");
    }
    if old.upstream.target != new.upstream.target {
        tracing::warn!("the upstream changed: it takes effect at restart");
    }
    if old.tls != new.tls {
        tracing::warn!("[tls] files changed: they take effect at restart (new certificates in the same files are picked up live)");
    }
    if old.limits.max_connections != new.limits.max_connections
        || old.limits.header_read_timeout != new.limits.header_read_timeout
        || old.limits.max_header_bytes != new.limits.max_header_bytes
        || old.limits.max_headers != new.limits.max_headers
    {
        tracing::warn!("[limits] connection limits changed: they take effect at restart");
    }
    if format!("{:?}", old.audit) != format!("{:?}", new.audit) {
        tracing::warn!("[audit] changed: the running sinks are kept until restart");
    }
}

/// SIGHUP, caught from the moment this is made: make it before the listeners announce
/// themselves, so that a SIGHUP never finds the process without a handler (which would end it).
pub struct Signals(Hangup);

impl Signals {
    /// Installs the SIGHUP handler.
    pub fn install() -> Self {
        Self(hangup())
    }
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
    }
}

/// Reloads on SIGHUP and when a source file changes, until the task is dropped. OIDC key
/// refresh tasks follow the providers of the configuration in force.
pub async fn watch(source: Source, signals: Signals, state: Arc<ProxyState>, health: Arc<Health>) {
    let mut sighup = signals.0;
    let mut refresh = spawn_oidc_refresh(&state);
    let sources = |state: &ProxyState| state.snapshot.load().sources.clone();
    let mut watched = sources(&state);
    let mut seen = stamps(&watched);
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let trigger = tokio::select! {
            () = next_hangup(&mut sighup) => Trigger::Signal,
            _ = tick.tick() => {
                let now = stamps(&watched);
                if now == seen || matches!(source, Source::Demo) {
                    continue;
                }
                // A file is being rewritten: let it settle for a moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Trigger::FileChange
            }
        };
        let reloaded = reload(&source, &state, &health, trigger).await;
        if reloaded.is_some() {
            for task in refresh.drain(..) {
                task.abort();
            }
            refresh = spawn_oidc_refresh(&state);
            watched = sources(&state);
        }
        // A refused configuration is tried again at the next change (or SIGHUP), not every
        // second.
        seen = stamps(&watched);
    }
}

fn spawn_oidc_refresh(state: &ProxyState) -> Vec<tokio::task::JoinHandle<()>> {
    state
        .web_identity
        .load_full()
        .map(|v| v.spawn_refresh_tasks())
        .unwrap_or_default()
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(h: &mut Hangup) {
    match h {
        Some(s) => {
            let _ = s.recv().await;
        }
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}

/// The path a `--config` argument names, for [`Source::File`].
pub fn source(config: Option<&Path>) -> Source {
    match config {
        Some(p) => Source::File(p.to_path_buf()),
        None => Source::Demo,
    }
}
