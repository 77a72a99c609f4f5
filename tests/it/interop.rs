//! Interop: real AWS clients (botocore/boto3, awscurl, requests-aws4auth)
//! against the real binary with its demo configuration.
//!
//! Each test starts `tollgate serve` on ephemeral ports and runs one script
//! from `tests/interop/` with the Python that `tests/run.sh` installs into
//! `target/interop-venv` (passed as `TOLLGATE_INTEROP_PYTHON`). The script
//! reads the banner (addresses, demo credentials) from `TOLLGATE_BANNER`,
//! prints a `NAME: N passed, N failed` summary and exits non-zero on any
//! failure; its output is shown when it fails.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{drain_into, Tollgate};

/// An interop script that runs longer than this is killed and fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(900);

pub(crate) fn interop_python() -> PathBuf {
    match std::env::var_os("TOLLGATE_INTEROP_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "TOLLGATE_INTEROP_PYTHON is not set. The interop tests drive real AWS clients \
             installed by the README test command: run `tests/run.sh` (it builds the venv \
             target/interop-venv and sets TOLLGATE_INTEROP_PYTHON), or set it to a Python \
             that has tests/interop/requirements.txt installed"
        ),
    }
}

/// Runs `tests/interop/SCRIPT ARGS...` against a fresh demo `tollgate` and
/// fails the test (with the script's output and tollgate's logs) unless it
/// exits 0.
fn run_script(script: &str, args: &[&str], env: &[(&str, &str)]) {
    run_script_against(&Tollgate::demo(), script, args, env);
}

/// [`run_script`] against a running `tollgate`.
pub(crate) fn run_script_against(
    tollgate: &Tollgate,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) {
    let python = interop_python();
    let script_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);

    let mut cmd = Command::new(&python);
    // No ambient AWS configuration, profile, endpoint or proxy may leak in.
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        let drop = n.starts_with("AWS_")
            || n.eq_ignore_ascii_case("http_proxy")
            || n.eq_ignore_ascii_case("https_proxy")
            || n.eq_ignore_ascii_case("all_proxy")
            || n == "BOTO_DISABLE_CRT";
        if drop {
            cmd.env_remove::<OsString>(name);
        }
    }
    cmd.arg(&script_path)
        .args(args)
        .arg("--proxy")
        .arg(tollgate.proxy_url())
        .arg("--admin")
        .arg(tollgate.admin_url())
        .env("TOLLGATE_BANNER", tollgate.banner())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_PROXY", "*")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run {} {}: {e}",
            python.display(),
            script_path.display()
        )
    });
    let output = Arc::new(Mutex::new(VecDeque::new()));
    let readers = [
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let out = Arc::clone(&output);
        thread::spawn(move || drain_into(r, &out))
    })
    .collect::<Vec<_>>();

    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the interop script") {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    for r in readers {
        let _ = r.join();
    }
    let text = output
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    let secs = started.elapsed().as_secs_f64();
    match status {
        Some(s) if s.success() => {
            let summary = text.lines().last().unwrap_or_default();
            println!("{script} {}: {summary} ({secs:.1} s)", args.join(" "));
        }
        other => panic!(
            "interop script {script} {} {} after {secs:.1} s\n\
             --- script output ---\n{text}\n\
             --- tollgate stderr (last 60 lines) ---\n{}",
            args.join(" "),
            match other {
                Some(s) => format!("failed ({s})"),
                None => format!("timed out ({SCRIPT_TIMEOUT:?})"),
            },
            tollgate.stderr_tail(60),
        ),
    }
}

#[test]
#[ignore = "interop: run by the README test command"]
fn botocore_python_signers() {
    run_script(
        "botocore_clients.py",
        &["--expect-signer", "python"],
        &[("BOTO_DISABLE_CRT", "true")],
    );
}

#[test]
#[ignore = "interop: run by the README test command"]
fn botocore_crt_signers() {
    run_script("botocore_clients.py", &["--expect-signer", "crt"], &[]);
}

#[test]
#[ignore = "interop: run by the README test command"]
fn awscurl_cli() {
    run_script("awscurl_client.py", &[], &[]);
}

#[test]
#[ignore = "interop: run by the README test command"]
fn requests_aws4auth() {
    run_script("aws4auth_client.py", &[], &[]);
}

#[test]
#[ignore = "interop: run by the README test command"]
fn refusals_and_spoofed_identity_headers() {
    run_script("negative.py", &[], &[]);
}

#[test]
#[ignore = "interop: run by the README test command"]
fn sts_boto3_and_aws_cli() {
    run_script("sts_clients.py", &[], &[]);
}

#[test]
#[ignore = "interop: run by the README test command"]
fn admin_endpoints_and_metrics() {
    run_script("metrics.py", &[], &[]);
}
