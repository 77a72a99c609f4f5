//! Running the real `tollgate` binary for integration tests.
//!
//! [`Tollgate::demo`] starts `tollgate serve` with the embedded demo
//! configuration on ephemeral ports, waits for its `... listening on ADDR`
//! lines, and kills it when dropped. Its stdout (the banner, with the demo
//! credentials as `export` lines) and stderr (logs) are kept for diagnostics.
#![allow(
    dead_code,
    reason = "shared helpers: each test module uses a different subset"
)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for integration tests.
pub const TOLLGATE_BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// How long `tollgate serve` may take to print its listening lines.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Lines of stderr kept for failure messages.
const STDERR_KEEP: usize = 4000;

/// `serve` arguments that put every listener on an ephemeral loopback port.
pub const EPHEMERAL_LISTENERS: [&str; 11] = [
    "serve",
    "--proxy-listen",
    "127.0.0.1:0",
    "--admin-listen",
    "127.0.0.1:0",
    "--api-listen",
    "127.0.0.1:0",
    "--ext-authz-grpc-listen",
    "127.0.0.1:0",
    "--ext-authz-http-listen",
    "127.0.0.1:0",
];

/// One access key from the banner's `export` lines.
#[derive(Clone, Debug)]
pub struct DemoKey {
    /// The user named by the `# user NAME ...` comment above the key.
    pub user: String,
    /// The comment line itself, e.g. `# user admin (...)`.
    pub comment: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A running `tollgate` process.
pub struct Tollgate {
    child: Child,
    /// `127.0.0.1:PORT` of the SigV4-verifying proxy listener.
    pub proxy_addr: String,
    /// `127.0.0.1:PORT` of the admin listener (`/healthz`, `/metrics`).
    pub admin_addr: String,
    /// `127.0.0.1:PORT` of the built-in echo upstream, when one runs.
    pub echo_addr: Option<String>,
    /// `127.0.0.1:PORT` of the api (STS) listener, when one runs.
    pub api_addr: Option<String>,
    /// `127.0.0.1:PORT` of the Envoy ext_authz gRPC service, when one runs.
    pub ext_authz_grpc_addr: Option<String>,
    /// `127.0.0.1:PORT` of the Envoy ext_authz HTTP service, when one runs.
    pub ext_authz_http_addr: Option<String>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// The process's working directory (the demo writes its audit files under `audit/` here).
    pub work_dir: tempfile::TempDir,
}

impl Tollgate {
    /// `tollgate serve` with the embedded demo configuration (proxy, admin
    /// and echo upstream all on ephemeral ports).
    pub fn demo() -> Self {
        Self::demo_with(Self::start(&EPHEMERAL_LISTENERS, true))
    }

    /// [`Self::demo`] run with one CPU to run on (`taskset -c 0`).
    pub fn demo_on_one_cpu() -> Self {
        Self::demo_with(Self::start_under(
            &["taskset", "-c", "0"],
            &EPHEMERAL_LISTENERS,
            true,
        ))
    }

    fn demo_with(tollgate: Self) -> Self {
        // The credentials follow the listening lines.
        tollgate.wait_for_stdout("the demo credentials of users admin and reader", |banner| {
            let keys = parse_keys(banner);
            ["admin", "reader"].iter().all(|user| {
                keys.iter()
                    .any(|k| k.user == *user && !k.secret_access_key.is_empty())
            })
        });
        tollgate
    }

    /// Waits (up to [`STARTUP_TIMEOUT`]) until `ready(stdout so far)` holds.
    pub fn wait_for_stdout(&self, what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !ready(&self.banner()) {
            if Instant::now() > deadline {
                self.fail(&format!(
                    "tollgate did not print {what} within {STARTUP_TIMEOUT:?}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `tollgate ARGS...` and waits until it prints
    /// `proxy listening on ADDR` and `admin listening on ADDR` (and
    /// `echo upstream listening on ADDR` when `expect_echo`).
    pub fn start(args: &[&str], expect_echo: bool) -> Self {
        Self::start_under(&[], args, expect_echo)
    }

    /// [`Self::start`] through a wrapper command (`wrapper... tollgate ARGS...`).
    pub fn start_under(wrapper: &[&str], args: &[&str], expect_echo: bool) -> Self {
        let work_dir = tempfile::tempdir().unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(TOLLGATE_BIN);
                c
            }
            None => Command::new(TOLLGATE_BIN),
        };
        let mut child = command
            .args(args)
            .current_dir(work_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {TOLLGATE_BIN} {}: {e}", args.join(" ")));

        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let stderr_lines = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel::<String>();

        let out = child.stdout.take().expect("stdout is piped");
        let keep = Arc::clone(&stdout_lines);
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push(line.clone());
                // The receiver is gone once startup is over; keep draining.
                let _ = tx.send(line);
            }
        });
        let err = child.stderr.take().expect("stderr is piped");
        let keep = Arc::clone(&stderr_lines);
        thread::spawn(move || drain_into(err, &keep));

        let mut proxy = None;
        let mut admin = None;
        let mut echo = None;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut tollgate = Tollgate {
            child,
            proxy_addr: String::new(),
            admin_addr: String::new(),
            echo_addr: None,
            api_addr: None,
            ext_authz_grpc_addr: None,
            ext_authz_http_addr: None,
            stdout: stdout_lines,
            stderr: stderr_lines,
            work_dir,
        };
        while proxy.is_none() || admin.is_none() || (expect_echo && echo.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let line = line.trim();
                    if let Some(a) = line.strip_prefix("proxy listening on ") {
                        proxy = Some(a.to_owned());
                    } else if let Some(a) = line.strip_prefix("admin listening on ") {
                        admin = Some(a.to_owned());
                    } else if let Some(a) = line.strip_prefix("echo upstream listening on ") {
                        echo = Some(a.to_owned());
                    } else if let Some(a) = line.strip_prefix("api listening on ") {
                        tollgate.api_addr = Some(a.to_owned());
                    } else if let Some(a) = line.strip_prefix("ext_authz gRPC listening on ") {
                        tollgate.ext_authz_grpc_addr = Some(a.to_owned());
                    } else if let Some(a) = line.strip_prefix("ext_authz HTTP listening on ") {
                        tollgate.ext_authz_http_addr = Some(a.to_owned());
                    }
                }
                Err(RecvTimeoutError::Timeout) => tollgate.fail(&format!(
                    "`tollgate {}` did not print its listening lines within {STARTUP_TIMEOUT:?}",
                    args.join(" ")
                )),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = tollgate.wait_exit(Duration::from_secs(5));
                    tollgate.fail(&format!(
                        "`tollgate {}` closed its stdout before printing its listening lines (exit: {status:?})",
                        args.join(" ")
                    ))
                }
            }
        }
        tollgate.proxy_addr = proxy.unwrap_or_default();
        tollgate.admin_addr = admin.unwrap_or_default();
        tollgate.echo_addr = echo;
        tollgate
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://` URL of the proxy listener.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }

    /// `http://` URL of the admin listener.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// Everything printed on stdout so far (the banner), one line each.
    pub fn banner(&self) -> String {
        let lines = self.stdout.lock().unwrap();
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }

    /// The last `n` lines of stderr (the logs).
    pub fn stderr_tail(&self, n: usize) -> String {
        let lines = self.stderr.lock().unwrap();
        let skip = lines.len().saturating_sub(n);
        lines
            .iter()
            .skip(skip)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The access keys printed as `export AWS_ACCESS_KEY_ID=...` /
    /// `export AWS_SECRET_ACCESS_KEY=...` under a `# user NAME ...` comment.
    pub fn keys(&self) -> Vec<DemoKey> {
        parse_keys(&self.banner())
    }

    /// The first key printed for `user`.
    pub fn key(&self, user: &str) -> DemoKey {
        self.keys()
            .into_iter()
            .find(|k| k.user == user && !k.secret_access_key.is_empty())
            .unwrap_or_else(|| panic!("no key for user `{user}` in the banner:\n{}", self.banner()))
    }

    /// The demo's audit directory (`audit/` in the working directory).
    pub fn audit_dir(&self) -> std::path::PathBuf {
        self.work_dir.path().join("audit")
    }

    /// Sends SIGTERM and waits (up to `limit`) for the process to exit; fails the test if it
    /// does not.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        self.send_sigterm();
        self.wait_for_exit(limit)
    }

    /// Sends SIGTERM without waiting.
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
    }

    /// Waits (up to `limit`) for the process to exit; fails the test if it does not.
    pub fn wait_for_exit(&mut self, limit: Duration) -> ExitStatus {
        match self.wait_exit(limit) {
            Some(status) => status,
            None => self.fail(&format!(
                "tollgate did not exit within {limit:?} of SIGTERM"
            )),
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn fail(&self, why: &str) -> ! {
        // Give the stderr reader a moment to collect the last lines.
        thread::sleep(Duration::from_millis(200));
        panic!(
            "{why}\n--- tollgate stdout ---\n{}--- tollgate stderr (last 80 lines) ---\n{}",
            self.banner(),
            self.stderr_tail(80)
        )
    }
}

impl Drop for Tollgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `r` line by line into `keep`, holding at most the last
/// [`STDERR_KEEP`] lines, until EOF.
pub fn drain_into(r: impl Read, keep: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(r).lines() {
        let Ok(line) = line else { break };
        let mut k = keep.lock().unwrap();
        if k.len() == STDERR_KEEP {
            k.pop_front();
        }
        k.push_back(line);
    }
}

/// Parses the banner's credential lines.
pub fn parse_keys(banner: &str) -> Vec<DemoKey> {
    let mut keys: Vec<DemoKey> = Vec::new();
    let mut user: Option<(String, String)> = None;
    for line in banner.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix('#') {
            if let Some(name) = rest.trim_start().strip_prefix("user ") {
                let name = name.split_whitespace().next().unwrap_or_default();
                user = Some((name.to_owned(), line.to_owned()));
            }
        } else if let Some(v) = line.strip_prefix("export AWS_ACCESS_KEY_ID=") {
            if let Some((name, comment)) = &user {
                keys.push(DemoKey {
                    user: name.clone(),
                    comment: comment.clone(),
                    access_key_id: unquote(v),
                    secret_access_key: String::new(),
                });
            }
        } else if let Some(v) = line.strip_prefix("export AWS_SECRET_ACCESS_KEY=") {
            if let Some(k) = keys.last_mut() {
                if k.secret_access_key.is_empty() {
                    k.secret_access_key = unquote(v);
                }
            }
        }
    }
    keys
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    v.to_owned()
}

/// Writes a file only its owner may read (Tollgate refuses group/other-readable secrets files).
pub fn write_private(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
