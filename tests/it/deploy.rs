//! The deployment files in `deploy/` (Kubernetes sidecar manifest, systemd unit, Dockerfile,
//! Grafana dashboard), checked by `tests/interop/deploy_check.py` with the interop Python:
//! the manifest against the Kubernetes schemas (`kubernetes-validate`, offline) and for the
//! wiring a schema cannot see, its Tollgate config with `tollgate check` and `tollgate serve`,
//! the dashboard's PromQL against a live `/metrics` of the demo started here, the unit with
//! `systemd-analyze` where it is installed, the Dockerfile's stages and `.dockerignore`.

use crate::interop::run_script_against;
use crate::support::{Tollgate, TOLLGATE_BIN};

#[test]
#[ignore = "interop: run by the README test command"]
fn deploy_files() {
    let tollgate = Tollgate::demo();
    let metrics_url = format!("{}/metrics", tollgate.admin_url());
    run_script_against(
        &tollgate,
        "deploy_check.py",
        &["--tollgate", TOLLGATE_BIN, "--metrics-url", &metrics_url],
        &[],
    );
}
