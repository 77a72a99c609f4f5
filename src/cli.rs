//! Command-line interface: `serve`, `check`, `keys create`, `audit verify`, `audit new-key`,
//! `echo`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rand::Rng;

use crate::config::{self, Snapshot, UpstreamTarget};
use crate::credentials::KeyStatus;
use crate::proxy::{self, ProxyState, UpstreamBase};
use crate::telemetry::{self, Health, Metrics};

/// Tollgate: AWS SigV4 authentication and IAM authorization in front of any HTTP service.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
pub struct Cli {
    /// Log format on stderr: `text` (default) or `json` (one object per line). `RUST_LOG`
    /// filters (default `info`).
    #[arg(long, global = true, value_enum, default_value_t = crate::telemetry::LogFormat::Text)]
    pub log_format: crate::telemetry::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy and admin listeners (the embedded demo when no --config is given).
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Override the proxy listener address (e.g. 127.0.0.1:0 in tests).
        #[arg(long)]
        proxy_listen: Option<SocketAddr>,
        /// Override the admin listener address.
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
        /// Override (or turn on) the api listener address (STS on its own).
        #[arg(long)]
        api_listen: Option<SocketAddr>,
        /// Override (or turn on) the Envoy ext_authz gRPC listener address.
        #[arg(long)]
        ext_authz_grpc_listen: Option<SocketAddr>,
        /// Override (or turn on) the Envoy ext_authz HTTP-service listener address.
        #[arg(long)]
        ext_authz_http_listen: Option<SocketAddr>,
    },
    /// Validate a configuration file; exit code 1 with every finding on error.
    Check {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Access key utilities.
    Keys {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Audit file utilities: check a directory against its digests, make a signing key.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Simulate IAM policy evaluation: `aws iam simulate-custom-policy` input, or a configured
    /// user or role (see docs/simulate.md).
    Simulate(crate::simulate::SimulateArgs),
    /// Write a configuration from `aws iam get-account-authorization-details` output and
    /// `aws organizations describe-policy` SCPs/RCPs (see docs/configuration.md).
    Import(crate::import::ImportArgs),
    /// Run only the built-in echo upstream (for load tests and examples).
    Echo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
}

/// `tollgate keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random access key id and secret access key.
    Create,
}

/// `tollgate audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the log files and digest chain under a directory (exit code 1 on any finding).
    Verify {
        /// The directory the file sink writes (the one holding `AWSLogs/`).
        dir: PathBuf,
        /// The public key the digests are signed with (PEM or DER; SubjectPublicKeyInfo, or
        /// PKCS #1 for RSA). Without it, the key exported into the directory is used.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Print a new Ed25519 digest signing key (PKCS #8 PEM, for the secrets file), its public
    /// key and fingerprint.
    NewKey,
}

/// Runs a parsed command line. Returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve {
            config,
            proxy_listen,
            admin_listen,
            api_listen,
            ext_authz_grpc_listen,
            ext_authz_http_listen,
        } => {
            let snapshot = match &config {
                Some(path) => config::load_file(path, 1).map_err(|e| anyhow::anyhow!("{e}"))?,
                None => config::load_demo(1).map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            runtime()?.block_on(serve(
                snapshot,
                crate::reload::source(config.as_deref()),
                [
                    proxy_listen,
                    admin_listen,
                    api_listen,
                    ext_authz_grpc_listen,
                    ext_authz_http_listen,
                ],
            ))?;
            Ok(0)
        }
        Command::Check { config } => match config::load_file(&config, 1) {
            Ok(s) => {
                for w in &s.policy_warnings {
                    println!("warning: {w}");
                }
                println!(
                    "{}: ok ({} accounts, {} users, {} access keys, {} roles, {} policies)",
                    config.display(),
                    s.accounts.len(),
                    s.users.len(),
                    s.keys.len(),
                    s.roles.len(),
                    s.policies.len()
                );
                Ok(0)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(1)
            }
        },
        Command::Keys {
            command: KeysCommand::Create,
        } => {
            let (id, secret) = new_access_key();
            println!("# new access key: put the id in the config's access_keys and the secret in the secrets file");
            println!("access_key_id = \"{id}\"");
            println!("secret_access_key = \"{secret}\"");
            println!("# secrets file line:\n{id} = \"{secret}\"");
            Ok(0)
        }
        Command::Simulate(args) => Ok(crate::simulate::run(&args)),
        Command::Import(args) => Ok(crate::import::run(&args)),
        Command::Audit {
            command: AuditCommand::Verify { dir, public_key },
        } => {
            let report = crate::audit::verify::verify_dir(&dir, public_key.as_deref());
            println!("{}: {}", dir.display(), report.summary());
            for note in &report.notes {
                println!("note: {note}");
            }
            for finding in &report.findings {
                println!("{finding}");
            }
            Ok(i32::from(!report.is_clean()))
        }
        Command::Audit {
            command: AuditCommand::NewKey,
        } => {
            let (key, pem) = crate::audit::digest::DigestKey::generate_ed25519()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let public = key.public_key();
            println!("# new Ed25519 digest signing key (PKCS#8). For the secrets file, with");
            println!("# `[audit.digests] key = \"digest-key\"` in the configuration:");
            println!("[audit_secrets]");
            print!("digest-key = \"\"\"\n{}\"\"\"\n", pem.as_str());
            println!(
                "# public key (fingerprint {}): keep a copy to verify with",
                public.fingerprint()
            );
            println!("# (`tollgate audit verify DIR --public-key FILE`)");
            print!("{}", public.to_spki_pem());
            Ok(0)
        }
        Command::Echo { listen } => {
            runtime()?.block_on(async move {
                let listener = telemetry::bind(listen, "echo upstream").await?;
                println!("echo upstream listening on {}", listener.local_addr()?);
                proxy::echo::serve(listener).await;
                anyhow::Ok(())
            })?;
            Ok(0)
        }
    }
}

/// Tollgate's async runtime: with one CPU to run on (an affinity mask or a CPU quota of one),
/// the single-threaded scheduler, which has no work-stealing queues to synchronise; with more,
/// one worker per CPU. The load-test peers (`examples/`) use it too, so that they compare like
/// for like.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A new access key id (`AKIA` + 16 base32 characters) and a 40-character secret.
pub fn new_access_key() -> (String, String) {
    const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rngs::OsRng;
    let pick = |rng: &mut rand::rngs::OsRng, set: &[u8]| -> char {
        char::from(*set.get(rng.gen_range(0..set.len())).unwrap_or(&b'A'))
    };
    let id: String = std::iter::once("AKIA".to_owned())
        .chain((0..16).map(|_| pick(&mut rng, BASE32).to_string()))
        .collect();
    let secret: String = (0..40).map(|_| pick(&mut rng, SECRET)).collect();
    (id, secret)
}

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

async fn serve(
    mut snapshot: Snapshot,
    source: crate::reload::Source,
    [proxy_listen, admin_listen, api_listen, grpc_listen, http_listen]: [Option<SocketAddr>; 5],
) -> anyhow::Result<()> {
    if let Some(a) = proxy_listen {
        snapshot.listeners.proxy = a;
    }
    if let Some(a) = admin_listen {
        snapshot.listeners.admin = a;
    }
    if let Some(a) = api_listen {
        snapshot.listeners.api = Some(a);
    }
    if let Some(a) = grpc_listen {
        snapshot.listeners.ext_authz_grpc = Some(a);
    }
    if let Some(a) = http_listen {
        snapshot.listeners.ext_authz_http = Some(a);
    }
    let signals = crate::reload::Signals::install();
    let metrics = Metrics::new().context("cannot register metrics")?;
    let health = Arc::new(Health::default());

    let echo_addr = match snapshot.upstream.target {
        UpstreamTarget::Echo => {
            let listener =
                telemetry::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "the echo upstream").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(proxy::echo::serve(listener));
            say(format!("echo upstream listening on {addr}"));
            Some(addr)
        }
        UpstreamTarget::Url(_) => None,
    };
    let upstream = UpstreamBase::resolve(&snapshot, echo_addr).map_err(|e| anyhow::anyhow!(e))?;
    let proxy_listener = telemetry::bind(snapshot.listeners.proxy, "the proxy").await?;
    let admin_listener = telemetry::bind(snapshot.listeners.admin, "the admin endpoints").await?;
    let api_listener = match snapshot.listeners.api {
        Some(addr) => Some(telemetry::bind(addr, "the api (STS)").await?),
        None => None,
    };
    let grpc_listener = match snapshot.listeners.ext_authz_grpc {
        Some(addr) => Some(telemetry::bind(addr, "the ext_authz gRPC service").await?),
        None => None,
    };
    let http_listener = match snapshot.listeners.ext_authz_http {
        Some(addr) => Some(telemetry::bind(addr, "the ext_authz HTTP service").await?),
        None => None,
    };
    let proxy_addr = proxy_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let generation = snapshot.generation;
    let regions = {
        snapshot
            .auth
            .regions
            .iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let audit_settings = snapshot.audit.clone();
    let auditor = start_audit(&audit_settings, &metrics)?;
    let tls = match &snapshot.tls {
        Some(settings) => {
            let tls = crate::tls::Tls::load(settings).map_err(|e| anyhow::anyhow!("[tls]: {e}"))?;
            tokio::spawn(tls.clone().watch());
            Some(tls)
        }
        None => None,
    };
    let mut state = ProxyState::new(
        Arc::new(snapshot),
        metrics.clone(),
        upstream,
        auditor.clone(),
    )
    .map_err(|e| anyhow::anyhow!("upstream TLS: {e}"))?;
    state.tls = tls;
    let state = Arc::new(state);
    if let Some(v) = state.web_identity.load_full() {
        for (provider, e) in v.refresh_all().await {
            tracing::warn!(%provider, error = %e, "OIDC provider keys could not be loaded");
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut servers = Vec::new();
    let optional = [
        (api_listener, "api", Side::Proxy(proxy::Listener::Api)),
        (grpc_listener, "ext_authz gRPC", Side::ExtAuthzGrpc),
        (http_listener, "ext_authz HTTP", Side::ExtAuthzHttp),
    ];
    for (listener, what, side) in optional {
        let Some(listener) = listener else { continue };
        let addr = listener.local_addr()?;
        let (state, stop) = (state.clone(), stopped(stop_rx.clone()));
        servers.push(match side {
            Side::Proxy(kind) => tokio::spawn(proxy::serve_until(listener, state, kind, stop)),
            Side::ExtAuthzGrpc => {
                tokio::spawn(crate::extauthz::grpc::serve_until(listener, state, stop))
            }
            Side::ExtAuthzHttp => tokio::spawn(crate::extauthz::http_service::serve_until(
                listener, state, stop,
            )),
        });
        say(format!("{what} listening on {addr}"));
    }
    let reload_state = state.clone();
    servers.push(tokio::spawn(proxy::serve_until(
        proxy_listener,
        state,
        proxy::Listener::Proxy,
        stopped(stop_rx),
    )));
    tokio::spawn(telemetry::serve_admin(
        admin_listener,
        metrics,
        health.clone(),
    ));
    say(format!("proxy listening on {proxy_addr}"));
    say(format!("admin listening on {admin_addr}"));
    match (&audit_settings.files, audit_settings.enabled()) {
        (Some(files), _) => {
            let dir = std::env::current_dir()
                .map(|cwd| cwd.join(&files.dir))
                .unwrap_or_else(|_| files.dir.clone());
            say(format!("audit files under {}", dir.display()));
        }
        (None, true) => {}
        (None, false) => {
            tracing::warn!("no [audit] sinks are configured: calls are not recorded");
        }
    }
    if matches!(source, crate::reload::Source::Demo) {
        print_demo(
            proxy_addr,
            admin_addr,
            regions.first().map_or("us-east-1", String::as_str),
        );
    }
    health.set_ready(generation);
    let shutdown_state = reload_state.clone();
    let watcher = tokio::spawn(crate::reload::watch(
        source,
        signals,
        reload_state,
        health.clone(),
    ));
    tracing::info!(%proxy_addr, %admin_addr, generation, "tollgate ready");
    shutdown_signal().await;
    health.set_not_ready();
    watcher.abort();
    let limits = shutdown_state.snapshot.load().limits;
    drop(shutdown_state);
    let (drain_timeout, flush_timeout) = (limits.drain_timeout, limits.audit_flush_timeout);
    tracing::info!(?drain_timeout, "shutting down: draining open calls");
    let _ = stop_tx.send(true);
    let drain = async {
        for server in servers {
            let _ = server.await;
        }
    };
    if tokio::time::timeout(drain_timeout, drain).await.is_err() {
        tracing::warn!(
            "calls still open after {drain_timeout:?}; exiting without them (their audit \
             records may be missing)"
        );
    }
    // Every call has ended (or the wait timed out): flush and close the audit sinks.
    let closing = tokio::task::spawn_blocking(move || auditor.shutdown(flush_timeout));
    let _ = closing.await;
    tracing::info!("stopped");
    Ok(())
}

/// What an optional listener serves.
enum Side {
    Proxy(proxy::Listener),
    ExtAuthzGrpc,
    ExtAuthzHttp,
}

/// Starts the audit writer over the configured sinks.
fn start_audit(
    settings: &config::AuditSettings,
    metrics: &Metrics,
) -> anyhow::Result<crate::audit::pipeline::Auditor> {
    let sinks = crate::audit::sinks(settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::audit::pipeline::Auditor::start(
        sinks,
        settings.queue_capacity,
        settings.overflow,
        metrics.clone(),
    )
    .context("cannot start the audit writer")
}

fn print_demo(proxy: SocketAddr, admin: SocketAddr, region: &str) {
    say("");
    say("Demo mode (embedded config/demo.toml): these keys are public demo values, loopback only.");
    for c in config::demo_credentials() {
        let status = match c.status {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "INACTIVE: requests signed with it are refused",
        };
        say(format!("# user {} ({status})", c.user));
        say(format!("export AWS_ACCESS_KEY_ID={}", c.access_key_id));
        say(format!(
            "export AWS_SECRET_ACCESS_KEY={}",
            c.secret.expose()
        ));
    }
    say("");
    say("Try it (after exporting the admin keys above):");
    say(format!(
        "  awscurl --service execute-api --region {region} http://{proxy}/orders/42"
    ));
    say(format!(
        "  python3 -c \"import boto3; s3 = boto3.client('s3', endpoint_url='http://{proxy}', region_name='{region}'); print(s3.list_objects_v2(Bucket='demo')['ResponseMetadata']['HTTPStatusCode'])\""
    ));
    say(format!("  curl http://{admin}/metrics"));
    say("");
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keys_have_aws_shape() {
        let (id, secret) = new_access_key();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(secret.len(), 40);
        assert_ne!(new_access_key().1, secret);
    }
}
