#!/usr/bin/env bash
# The README test command: every test, including the interop tests that drive
# real AWS clients (boto3/botocore with both signers, awscurl,
# requests-aws4auth) against the real binary.
#
# Needs only python3 (with venv) and cargo: the clients are installed from
# PyPI into target/interop-venv, which is reused while
# tests/interop/requirements.txt (and the Python version) stay the same.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
venv=target/interop-venv
requirements=tests/interop/requirements.txt
python=${PYTHON:-python3}

step() { printf '\n==> %s\n' "$*"; }

command -v "$python" >/dev/null || { echo "tests/run.sh: $python not found (the interop tests need Python 3)" >&2; exit 1; }
key=$({ "$python" -c 'import sys; print(sys.version)'; cat "$requirements"; } | sha256sum | cut -d' ' -f1)
stamp=$venv/.requirements.sha256
if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$key" ]]; then
    step "reusing the interop venv $venv (requirements unchanged)"
else
    step "creating the interop venv $venv from $requirements"
    rm -rf "$venv"
    mkdir -p target
    "$python" -m venv "$venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        "$venv/bin/python" -m pip install --quiet --requirement "$requirements"
    "$venv/bin/python" -m pip check
    echo "$key" >"$stamp"
fi
"$venv/bin/python" - <<'PY'
import awscrt, boto3, botocore, prometheus_client, requests, requests_aws4auth
from importlib.metadata import version
print("interop clients:", ", ".join(f"{p} {version(p)}" for p in
      ("boto3", "botocore", "awscrt", "awscurl", "requests-aws4auth", "requests", "prometheus_client")))
PY
"$venv/bin/envoy" --version | grep -v '^$' | head -1

# trailscraper pins an older boto3, so it gets a venv of its own.
ts_venv=target/trailscraper-venv
ts_requirements=tests/interop/trailscraper-requirements.txt
ts_key=$({ "$python" -c 'import sys; print(sys.version)'; cat "$ts_requirements"; } | sha256sum | cut -d' ' -f1)
ts_stamp=$ts_venv/.requirements.sha256
if [[ -x $ts_venv/bin/trailscraper && -f $ts_stamp && $(cat "$ts_stamp") == "$ts_key" ]]; then
    step "reusing the trailscraper venv $ts_venv (requirements unchanged)"
else
    step "creating the trailscraper venv $ts_venv from $ts_requirements"
    rm -rf "$ts_venv"
    "$python" -m venv "$ts_venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        "$ts_venv/bin/python" -m pip install --quiet --requirement "$ts_requirements"
    "$ts_venv/bin/python" -m pip check
    echo "$ts_key" >"$ts_stamp"
fi
"$ts_venv/bin/trailscraper" --version

export TOLLGATE_INTEROP_PYTHON=$PWD/$venv/bin/python
export TOLLGATE_TRAILSCRAPER=$PWD/$ts_venv/bin/trailscraper
# Benches are left out here: criterion's harness does not take libtest's --include-ignored.
step "TOLLGATE_INTEROP_PYTHON=$TOLLGATE_INTEROP_PYTHON TOLLGATE_TRAILSCRAPER=$TOLLGATE_TRAILSCRAPER cargo test --lib --bins --tests --examples -- --include-ignored"
cargo test --lib --bins --tests --examples -- --include-ignored

step "cargo test --benches (each benchmark run once, as a test)"
cargo test --benches

step "tests/run.sh: all tests passed in $((SECONDS - started)) s"
