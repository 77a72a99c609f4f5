//! Command-line interface: `serve`, `check`, `keys create`, `echo`.

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

/// Runs a parsed command line. Returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve {
            config,
            proxy_listen,
            admin_listen,
            api_listen,
        } => {
            let snapshot = match &config {
                Some(path) => config::load_file(path, 1).map_err(|e| anyhow::anyhow!("{e}"))?,
                None => config::load_demo(1).map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            runtime()?.block_on(serve(
                snapshot,
                config.is_none(),
                [proxy_listen, admin_listen, api_listen],
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
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
    demo: bool,
    [proxy_listen, admin_listen, api_listen]: [Option<SocketAddr>; 3],
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
    let state = Arc::new(ProxyState::new(
        Arc::new(snapshot),
        metrics.clone(),
        upstream,
    ));
    if let Some(v) = state.web_identity.load_full() {
        for (provider, e) in v.refresh_all().await {
            tracing::warn!(%provider, error = %e, "OIDC provider keys could not be loaded");
        }
        let _ = v.spawn_refresh_tasks();
    }
    if let Some(listener) = api_listener {
        let addr = listener.local_addr()?;
        tokio::spawn(proxy::serve_as(
            listener,
            state.clone(),
            proxy::Listener::Api,
        ));
        say(format!("api listening on {addr}"));
    }
    tokio::spawn(proxy::serve(proxy_listener, state));
    tokio::spawn(telemetry::serve_admin(
        admin_listener,
        metrics,
        health.clone(),
    ));
    say(format!("proxy listening on {proxy_addr}"));
    say(format!("admin listening on {admin_addr}"));
    if demo {
        print_demo(
            proxy_addr,
            admin_addr,
            regions.first().map_or("us-east-1", String::as_str),
        );
    }
    health.set_ready(generation);
    tracing::info!(%proxy_addr, %admin_addr, generation, "tollgate ready");
    shutdown_signal().await;
    health.set_not_ready();
    tracing::info!("shutting down");
    Ok(())
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
