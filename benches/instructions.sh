#!/usr/bin/env bash
# Instructions per request: the plain hyper pass-through and Tollgate (the load script's config)
# under valgrind's callgrind, driven by wrk on 127.0.0.1. Unlike requests/s on a shared VM, an
# instruction count does not move with the neighbours' load, so it shows small changes to the
# request path that benches/load.sh cannot separate from noise (see docs/performance.md). It
# counts user-space work only: the kernel's share (TCP, wake-ups) is not in it.
#
# Caveat: valgrind hides the CPU's SHA extensions, so SHA-256 runs the software implementation
# and is reported on its own line (on the real CPU, with SHA-NI, it is several times cheaper).
#
# Usage: benches/instructions.sh [--no-build]
#   env: DURATION (s of measured load per process, default 10), AUTHZ (0: authentication only;
#        default 1: authn + authz on ten policies), TOP (functions listed, default 25), KEEP (a
#        directory to copy both callgrind files into, for callgrind_annotate)
# Needs valgrind and wrk (installed with apt-get when missing), taskset and curl. Bounded by a
# watchdog; everything started here is stopped on exit.
set -euo pipefail
{

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
TOP=${TOP:-25}
PATHQ="/api/v1/widgets/1234?limit=10"

die() { echo "instructions.sh: $*" >&2; exit 1; }

source benches/load_common.sh
require_load_tools "wrk + upstream on core 0, the measured process on core 1"
if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
    echo "== installing valgrind (apt-get)"
    apt-get install -y valgrind >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y valgrind >/dev/null; }
    command -v callgrind_annotate >/dev/null || die "could not install valgrind"
fi

if [[ ${1:-} != "--no-build" ]]; then
    echo "== building release binaries (no-op when up to date)"
    cargo build --release --quiet --bin tollgate --example passthrough --example sign_request
fi
BIN=target/release/tollgate
PASS=target/release/examples/passthrough
SIGN=target/release/examples/sign_request
for b in "$BIN" "$PASS" "$SIGN"; do [[ -x $b ]] || die "$b is missing (run without --no-build)"; done

begin_run tollgate-instr

LIMIT=$(( 180 + 2 * (DURATION + 5) ))
start_watchdog "$LIMIT"

taskset -c 0 "$BIN" echo --listen 127.0.0.1:0 >"$TMP/echo.log" 2>&1 &
ECHO_PID=$!; PIDS+=("$ECHO_PID")
ECHO_ADDR=$(wait_addr "$TMP/echo.log" "echo upstream listening on" "$ECHO_PID")
write_load_config "$TMP" "$BIN" "$ECHO_ADDR" "${AUTHZ:-1}" ""

# measure NAME READY_PREFIX CMD...: starts CMD under callgrind (instrumentation off), warms it
# up, counts instructions over DURATION s of load, prints "NAME requests instructions".
measure() {
    local name=$1 ready=$2; shift 2
    local out=$TMP/$name.callgrind
    taskset -c 1 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$@" \
        >"$TMP/$name.log" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    local addr
    addr=$(wait_addr "$TMP/$name.log" "$ready" "$pid")
    local -a sig=()
    while IFS= read -r line; do
        [[ -n $line ]] && sig+=(-H "$line")
    done < <("$SIGN" --url "http://$addr$PATHQ" --access-key "$AKID" --secret "$SECRET" \
        --region us-east-1 --service execute-api)
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' "${sig[@]}" "http://$addr$PATHQ")
    [[ $code == 200 ]] || die "$name answered $code to the signed request"
    taskset -c 0 wrk -t1 -c4 -d3s "${sig[@]}" "http://$addr$PATHQ" >/dev/null
    callgrind_control -i on "$pid" >/dev/null 2>&1
    local res
    res=$(taskset -c 0 wrk -t1 -c4 -d"${DURATION}s" "${sig[@]}" "http://$addr$PATHQ")
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local reqs bad
    reqs=$(awk '/requests in/ {print $1}' <<<"$res")
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$res")
    [[ -z $bad ]] || die "$name: $bad non-2xx responses under load"
    local file
    file=$(ls "$out"* | grep -v '^$' | tail -1)
    echo "$name $reqs $file"
}

echo "== counting: wrk -t1 -c4 -d${DURATION}s against each process under callgrind"
read -r _ P_REQS P_FILE < <(measure passthrough "passthrough listening on" "$PASS" --listen 127.0.0.1:0 --upstream "http://$ECHO_ADDR")
read -r _ T_REQS T_FILE < <(RUST_LOG=warn measure tollgate "proxy listening on" "$BIN" serve --config "$TMP/tollgate.toml")

# total FILE: every instruction; sha FILE: the SHA-256 compression function's (exclusive).
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; }
sha() {
    callgrind_annotate "$1" 2>/dev/null |
        awk '/sha2::sha256::compress256|sha2::sha256::soft/ && !/=>/ {gsub(",", "", $1); s += $1} END {print s + 0}'
}
PT=$(total "$P_FILE"); TT=$(total "$T_FILE"); PS=$(sha "$P_FILE"); TS=$(sha "$T_FILE")
if [[ -n ${KEEP:-} ]]; then
    mkdir -p "$KEEP" && cp "$P_FILE" "$KEEP/callgrind.passthrough" && cp "$T_FILE" "$KEEP/callgrind.tollgate"
    echo "$P_REQS $T_REQS" >"$KEEP/requests"
fi

echo
echo "Instructions per request (user space, callgrind; $(nproc) vCPU, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)):"
echo
echo "| | requests | instructions/request | of which SHA-256 (software under valgrind) | without SHA-256 |"
echo "|---|---|---|---|---|"
awk -v n="$P_REQS" -v t="$PT" -v s="$PS" 'BEGIN {printf "| passthrough | %d | %.0f | %.0f | %.0f |\n", n, t / n, s / n, (t - s) / n}'
awk -v n="$T_REQS" -v t="$TT" -v s="$TS" 'BEGIN {printf "| tollgate | %d | %.0f | %.0f | %.0f |\n", n, t / n, s / n, (t - s) / n}'
awk -v pn="$P_REQS" -v pt="$PT" -v ps="$PS" -v tn="$T_REQS" -v tt="$TT" -v ts="$TS" 'BEGIN {
    printf "\nTollgate ÷ pass-through, without SHA-256: %.2f× (+%.0f instructions per request)\n", ((tt - ts) / tn) / ((pt - ps) / pn), (tt - ts) / tn - (pt - ps) / pn }'

echo
echo "Tollgate's request path, inclusive instructions per request (SHA-256 included):"
echo
callgrind_annotate --inclusive=yes "$T_FILE" 2>/dev/null |
    awk -v n="$T_REQS" -v top="$TOP" '
        /tollgate::/ && !/=>/ && !/\{\{closure\}\}::\{\{closure\}\}/ && $1 ~ /^[0-9,]+$/ {
            v = $1; gsub(",", "", v)
            f = $0; sub(/^.*:tollgate::/, "tollgate::", f); sub(/ \[.*$/, "", f)
            if (!(f in seen)) { seen[f] = 1; printf "%10.0f  %s\n", v / n, f; k++ }
            if (k >= top) exit
        }'
exit
}
