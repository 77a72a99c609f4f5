#!/usr/bin/env bash
# Load test: Tollgate against a plain hyper pass-through proxy, measured in one run.
#
# Method (docs/performance.md, reference/performance.md §4): everything on 127.0.0.1; wrk and the
# echo upstream pinned to core 0, the proxy under test pinned to core 1; HTTP/1.1 keep-alive,
# `wrk -t1 -c32 -d10s --latency`, GET /api/v1/widgets/1234?limit=10; REPS repetitions of
# direct → passthrough → tollgate (passthrough and tollgate swap places on even reps). For each run: requests/s, p50/p99, and the CPU time per
# request of the tested process (utime+stime from /proc/<pid>/stat ÷ requests served).
# Every config gets the same request bytes: a valid SigV4 signature for Tollgate, made once by
# `examples/sign_request.rs` at start-up and replayed (valid for the 15-minute clock-skew window),
# ignored by the echo upstream and the pass-through.
#
# Usage: benches/load.sh [--no-build]
#   env: DURATION (s, default 10), REPS (default 3), CONNS (default 32), AUTHZ (0: authentication
#        only; default 1: authn + authz on ten policies), OUT (also write the
#        results table to this file), PERF_RECORD (profile Tollgate into this perf.data file first;
#        PERF_ARGS, default -g, e.g. "--call-graph dwarf"; PERF_TARGET=passthrough profiles the
#        pass-through instead, PERF_TARGET=tollgate_audit the audited Tollgate), AUDIT (1: also run a second Tollgate with the same config plus the
#        audit file sink and digests — `tollgate_audit` — and report its ratio to `tollgate`), TLS (1: also
#        run a Tollgate with the same config plus `[tls]` (a self-signed certificate made with
#        openssl; wrk over HTTPS keep-alive, so handshakes are amortized) — `tollgate_tls` — and
#        report its ratio to `tollgate`), PAIRED (default 1: after the reps above, REPS paired
#        runs — the pass-through and Tollgate both on core 1 at the same time, each saturated by
#        its own wrk — whose CPU-per-request ratio is a capacity ratio that the VM's drifts cancel
#        out of, since both sides see the same moment; 0 skips them)
#
# Bounded: the measurement phase is killed by a watchdog (60 s plus the planned runs); everything started here is
# stopped on exit. Needs 2+ cores, taskset, wrk (installed with apt-get if missing) and curl.
set -euo pipefail
# The whole script is one compound command, read before it runs: editing this file during a run
# (bash otherwise reads a script as it goes) cannot break the run.
{

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-32}
WARMUP=2
PATHQ="/api/v1/widgets/1234?limit=10"
CLK_TCK=$(getconf CLK_TCK)

die() { echo "load.sh: $*" >&2; exit 1; }

source benches/load_common.sh
require_load_tools "wrk + upstream on core 0, proxy on core 1"

if [[ ${1:-} != "--no-build" ]]; then
    echo "== building release binaries (no-op when up to date)"
    cargo build --release --quiet --bin tollgate --example passthrough --example sign_request
fi
BIN=target/release/tollgate
PASS=target/release/examples/passthrough
SIGN=target/release/examples/sign_request
for b in "$BIN" "$PASS" "$SIGN"; do [[ -x $b ]] || die "$b is missing (run without --no-build)"; done

begin_run tollgate-load

# Bound the measurement phase (the build above is not bounded: it is a no-op once built): the
# runs it plans, plus a margin. (The sleep is killed with the watchdog so that no process
# outlives the script.)
LIMIT=$(( 60 + REPS * (3 + ${AUDIT:-0} + ${TLS:-0} + ${PAIRED:-1}) * (DURATION + 2) + 4 * WARMUP + (${PERF_RECORD:+1}0 > 0 ? DURATION : 0) ))
start_watchdog "$LIMIT"


# --- processes --------------------------------------------------------------------------------
echo "== starting echo upstream (core 0), passthrough (core 1), tollgate (core 1)"
taskset -c 0 "$BIN" echo --listen 127.0.0.1:0 >"$TMP/echo.log" 2>&1 &
ECHO_PID=$!; PIDS+=("$ECHO_PID")
ECHO_ADDR=$(wait_addr "$TMP/echo.log" "echo upstream listening on" "$ECHO_PID")

taskset -c 1 "$PASS" --listen 127.0.0.1:0 --upstream "http://$ECHO_ADDR" >"$TMP/pass.log" 2>&1 &
PASS_PID=$!; PIDS+=("$PASS_PID")
PASS_ADDR=$(wait_addr "$TMP/pass.log" "passthrough listening on" "$PASS_PID")

# A temporary Tollgate config: one user, a fresh key, ten policies, a REST route mapping.
write_load_config "$TMP" "$BIN" "$ECHO_ADDR" "${AUTHZ:-1}" ""

RUST_LOG=warn taskset -c 1 "$BIN" serve --config "$TMP/tollgate.toml" >"$TMP/tollgate.log" 2>&1 &
TG_PID=$!; PIDS+=("$TG_PID")
TG_ADDR=$(wait_addr "$TMP/tollgate.log" "proxy listening on" "$TG_PID")

# AUDIT=1: the same config with the audit file sink (and signed digests) on, as its own process
# on the same core (its writer thread included in its CPU time).
AUD_PID=""; AUD_ADDR=""
if [[ ${AUDIT:-0} == 1 ]]; then
    AUDIT_KEY=$("$BIN" audit new-key | sed -n '/BEGIN PRIVATE KEY/,/END PRIVATE KEY/p')
    [[ -n $AUDIT_KEY ]] || die "could not parse 'tollgate audit new-key' output"
    { sed 's/^secrets_file = .*/secrets_file = "tollgate-audit.secrets.toml"/' "$TMP/tollgate.toml"
      printf '\n[audit]\n\n[audit.files]\ndir = "audit"\n\n[audit.digests]\nkey = "load"\n'; } >"$TMP/tollgate-audit.toml"
    { cat "$TMP/tollgate.secrets.toml"
      printf '\n[audit_secrets]\nload = """\n%s\n"""\n' "$AUDIT_KEY"; } >"$TMP/tollgate-audit.secrets.toml"
    chmod 600 "$TMP/tollgate-audit.secrets.toml"
    "$BIN" check --config "$TMP/tollgate-audit.toml" >/dev/null || die "generated audit config refused"
    RUST_LOG=warn taskset -c 1 "$BIN" serve --config "$TMP/tollgate-audit.toml" >"$TMP/tollgate-audit.log" 2>&1 &
    AUD_PID=$!; PIDS+=("$AUD_PID")
    AUD_ADDR=$(wait_addr "$TMP/tollgate-audit.log" "proxy listening on" "$AUD_PID")
fi

# TLS=1: the same config with [tls] (a self-signed certificate), as its own process on the
# same core.
TLS_PID=""; TLS_ADDR=""
if [[ ${TLS:-0} == 1 ]]; then
    command -v openssl >/dev/null || die "TLS=1 needs openssl (to make a test certificate)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$TMP/tls-key.pem" -out "$TMP/tls-cert.pem" >/dev/null 2>&1 || die "openssl could not make a certificate"
    { cat "$TMP/tollgate.toml"; printf '\n[tls]\ncert_file = "tls-cert.pem"\nkey_file = "tls-key.pem"\n'; } >"$TMP/tollgate-tls.toml"
    "$BIN" check --config "$TMP/tollgate-tls.toml" >/dev/null || die "generated TLS config refused"
    RUST_LOG=warn taskset -c 1 "$BIN" serve --config "$TMP/tollgate-tls.toml" >"$TMP/tollgate-tls.log" 2>&1 &
    TLS_PID=$!; PIDS+=("$TLS_PID")
    TLS_ADDR=$(wait_addr "$TMP/tollgate-tls.log" "proxy listening on" "$TLS_PID")
fi

# --- signed headers ---------------------------------------------------------------------------
SIG_HEADERS=()
while IFS= read -r line; do
    [[ -n $line ]] && SIG_HEADERS+=(-H "$line")
done < <("$SIGN" --url "http://$TG_ADDR$PATHQ" --access-key "$AKID" --secret "$SECRET" \
    --region us-east-1 --service execute-api)
[[ ${#SIG_HEADERS[@]} -eq 8 ]] || die "sign_request printed $((${#SIG_HEADERS[@]} / 2)) headers, expected 4"

check_status() {
    local want=$1; shift
    local got
    got=$(curl -s -o /dev/null -w '%{http_code}' "$@")
    [[ $got == "$want" ]] || die "expected HTTP $want from $*, got $got"
}
check_status 200 "http://$ECHO_ADDR$PATHQ"
check_status 200 "http://$PASS_ADDR$PATHQ"
check_status 200 "${SIG_HEADERS[@]}" "http://$TG_ADDR$PATHQ"
check_status 403 "http://$TG_ADDR$PATHQ"
if [[ -n $AUD_PID ]]; then
    check_status 200 "${SIG_HEADERS[@]}" "http://$AUD_ADDR$PATHQ"
    echo "   tollgate with audit $AUD_ADDR (pid $AUD_PID): signed request accepted (200)"
fi
if [[ -n $TLS_PID ]]; then
    check_status 200 -k "${SIG_HEADERS[@]}" "https://$TLS_ADDR$PATHQ"
    echo "   tollgate with TLS $TLS_ADDR (pid $TLS_PID): signed request over HTTPS accepted (200)"
fi
echo "   echo $ECHO_ADDR (pid $ECHO_PID), passthrough $PASS_ADDR (pid $PASS_PID), tollgate $TG_ADDR (pid $TG_PID)"
echo "   signed request accepted (200), unsigned refused (403)"

# --- load -------------------------------------------------------------------------------------

RESULTS="$TMP/results.tsv"
: >"$RESULTS"

# run NAME PID URL [wrk args...]: one measured wrk run; appends a row to $RESULTS.
run() {
    local name=$1 pid=$2 url=$3; shift 3
    local t0 t1 c0 c1 out reqs rps p50 p99 non2xx errs cpu_us busy steal
    t0=$(cpu_ticks "$pid"); c0=$(cpu1_stat)
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url")
    t1=$(cpu_ticks "$pid"); c1=$(cpu1_stat)
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(to_us "$(awk '$1=="50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1=="99%" {print $2}' <<<"$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
    errs=$(awk '/Socket errors:/ {s=0; for (i=3;i<=NF;i++) {gsub(",","",$i); if ($i ~ /^[0-9]+$/) s+=$i}; print s}' <<<"$out"); errs=${errs:-0}
    cpu_us=$(awk -v d="$((t1 - t0))" -v r="$reqs" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", d / hz * 1e6 / r}')
    read -r busy steal <<<"$(awk -v a="$c0" -v b="$c1" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[3] - x[3]; if (t <= 0) t = 1
        printf "%.0f %.1f", 100 * (y[1] - x[1]) / t, 100 * (y[2] - x[2]) / t }')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$name" "$rep" "$rps" "$p50" "$p99" "$cpu_us" "$reqs" "$non2xx" "$errs" "$busy/$steal" >>"$RESULTS"
    printf '   %-12s rep %s: %9.0f req/s  p50 %7.0f us  p99 %7.0f us  %6.2f us CPU/req  non-2xx %s  socket errors %s  cpu1 busy/steal %s%%\n' \
        "$name" "$rep" "$rps" "$p50" "$p99" "$cpu_us" "$non2xx" "$errs" "$busy/$steal"
    [[ $non2xx == 0 && $errs == 0 ]] || echo "   WARNING: $name had $non2xx non-2xx responses and $errs socket errors" >&2
}

echo "== warm-up (${WARMUP}s each, not recorded)"
for target in "$ECHO_ADDR" "$PASS_ADDR" "$TG_ADDR" $AUD_ADDR; do
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${SIG_HEADERS[@]}" "http://$target$PATHQ" >/dev/null
done
if [[ -n $TLS_PID ]]; then
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${SIG_HEADERS[@]}" "https://$TLS_ADDR$PATHQ" >/dev/null
fi

# PERF_RECORD=FILE: profile Tollgate under the same load with `perf record` (not measured).
# PERF_TARGET=passthrough profiles the pass-through instead (same load), for comparison.
if [[ -n ${PERF_RECORD:-} ]]; then
    if [[ ${PERF_TARGET:-tollgate} == passthrough ]]; then
        PERF_PID_OF=$PASS_PID; PERF_ADDR=$PASS_ADDR
    elif [[ ${PERF_TARGET:-tollgate} == tollgate_audit && -n $AUD_PID ]]; then
        PERF_PID_OF=$AUD_PID; PERF_ADDR=$AUD_ADDR
    else
        PERF_PID_OF=$TG_PID; PERF_ADDR=$TG_ADDR
    fi
    echo "== perf record of ${PERF_TARGET:-tollgate} under load → $PERF_RECORD"
    perf record -F 4999 ${PERF_ARGS:--g} -p "$PERF_PID_OF" -o "$PERF_RECORD" -- sleep "$DURATION" >/dev/null 2>&1 &
    PERF_PID=$!
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${SIG_HEADERS[@]}" "http://$PERF_ADDR$PATHQ" >/dev/null
    wait "$PERF_PID" || true
fi

# Odd reps run passthrough then tollgate, even reps the reverse, so that a drift in background
# load does not always favour the same side; the report uses per-rep ratios and their median.
echo "== measuring: wrk -t1 -c$CONNS -d${DURATION}s, $REPS reps of direct → passthrough ⇄ tollgate"
for rep in $(seq 1 "$REPS"); do
    run direct "$ECHO_PID" "http://$ECHO_ADDR$PATHQ" "${SIG_HEADERS[@]}"
    if (( rep % 2 )); then
        run passthrough "$PASS_PID" "http://$PASS_ADDR$PATHQ" "${SIG_HEADERS[@]}"
        run tollgate "$TG_PID" "http://$TG_ADDR$PATHQ" "${SIG_HEADERS[@]}"
    else
        run tollgate "$TG_PID" "http://$TG_ADDR$PATHQ" "${SIG_HEADERS[@]}"
        run passthrough "$PASS_PID" "http://$PASS_ADDR$PATHQ" "${SIG_HEADERS[@]}"
    fi
    if [[ -n $AUD_PID ]]; then
        run tollgate_audit "$AUD_PID" "http://$AUD_ADDR$PATHQ" "${SIG_HEADERS[@]}"
    fi
    if [[ -n $TLS_PID ]]; then
        run tollgate_tls "$TLS_PID" "https://$TLS_ADDR$PATHQ" "${SIG_HEADERS[@]}"
    fi
done

# Paired runs: the pass-through and Tollgate served at the same time from one core (core 1),
# each saturated by its own wrk (core 0). The scheduler shares core 1 between them, and both
# see the same host conditions at every moment, so the ratio of their CPU time per request is a
# capacity ratio that this VM's drifts (±20 % between sequential reps) mostly cancel out of.
PAIRED_RESULTS="$TMP/paired.tsv"
: >"$PAIRED_RESULTS"
if [[ ${PAIRED:-1} == 1 ]]; then
    echo "== paired: passthrough and tollgate on core 1 at once, wrk -t1 -c$CONNS -d${DURATION}s each, $REPS reps"
    for rep in $(seq 1 "$REPS"); do
        p0=$(cpu_ticks "$PASS_PID"); g0=$(cpu_ticks "$TG_PID")
        taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${SIG_HEADERS[@]}" "http://$PASS_ADDR$PATHQ" >"$TMP/paired.pass" &
        WRK_PASS=$!
        taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${SIG_HEADERS[@]}" "http://$TG_ADDR$PATHQ" >"$TMP/paired.tg"
        wait "$WRK_PASS"
        p1=$(cpu_ticks "$PASS_PID"); g1=$(cpu_ticks "$TG_PID")
        rp=$(awk '/requests in/ {print $1}' "$TMP/paired.pass")
        rt=$(awk '/requests in/ {print $1}' "$TMP/paired.tg")
        if grep -q -e 'Non-2xx' -e 'Socket errors' "$TMP/paired.pass" "$TMP/paired.tg"; then
            echo "   WARNING: paired rep $rep had non-2xx responses or socket errors" >&2
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$rep" "$rp" "$rt" "$((p1 - p0))" "$((g1 - g0))" >>"$PAIRED_RESULTS"
        awk -v rp="$rp" -v rt="$rt" -v cp="$((p1 - p0))" -v ct="$((g1 - g0))" -v hz="$CLK_TCK" -v rep="$rep" 'BEGIN {
            printf "   paired rep %s: passthrough %.0f req, %.2f us CPU/req; tollgate %.0f req, %.2f us CPU/req; capacity ratio %.3f\n",
                rep, rp, cp / hz * 1e6 / rp, rt, ct / hz * 1e6 / rt, (cp / rp) / (ct / rt) }'
    done
fi

# --- report -----------------------------------------------------------------------------------
paired_report() {
    [[ -s $PAIRED_RESULTS ]] || return 0
    echo
    echo "Paired (passthrough and tollgate on core 1 at the same time, each with its own wrk on core 0):"
    echo
    echo "| rep | passthrough req | passthrough CPU µs/req | tollgate req | tollgate CPU µs/req | capacity ratio (passthrough CPU/req ÷ tollgate CPU/req) | extra CPU µs/req |"
    echo "|---|---|---|---|---|---|---|"
    awk -F'\t' -v hz="$CLK_TCK" '
        function median(a, k,   i, j, t) {
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        { n++; pc = $4 / hz * 1e6 / $2; tc = $5 / hz * 1e6 / $3; r[n] = pc / tc; d[n] = tc - pc
          printf "| %s | %d | %.2f | %d | %.2f | %.3f | %+.2f |\n", $1, $2, pc, $3, tc, r[n], d[n] }
        END {
            printf "| median | | | | | %.3f | %+.2f |\n", median(r, n), median(d, n)
            printf "\nPaired one-core capacity ratio (median; for comparison, the goal line above is the sequential rps ratio): %.3f\n", median(r, n)
        }' "$PAIRED_RESULTS"
}

report() {
    echo
    echo "Machine: $(nproc) vCPU, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
    echo "wrk -t1 -c$CONNS -d${DURATION}s, $REPS reps; wrk + echo on core 0, proxy on core 1; CPU = tested process"
    echo
    echo "| config | rps (per rep) | p50 µs | p99 µs | CPU µs/req | median rps | median CPU µs/req | non-2xx | cpu1 busy/steal % |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for name in direct passthrough tollgate $([[ -n $AUD_PID ]] && echo tollgate_audit) $([[ -n $TLS_PID ]] && echo tollgate_tls); do
        awk -F'\t' -v n="$name" '
            function median(a, k,   i, j, t) {
                for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
            }
            $1 == n {
                k++; r[k] = $3; c[k] = $6
                rps = rps (k > 1 ? " / " : "") sprintf("%.1fk", $3 / 1000)
                p50 = p50 (k > 1 ? " / " : "") sprintf("%.0f", $4)
                p99 = p99 (k > 1 ? " / " : "") sprintf("%.0f", $5)
                cpu = cpu (k > 1 ? " / " : "") sprintf("%.2f", $6)
                bad += $8 + $9
                cs = cs (k > 1 ? " / " : "") $10
            }
            END {
                printf "| %s | %s | %s | %s | %s | %.1fk | %.2f | %d | %s |\n", n, rps, p50, p99, cpu, median(r, k) / 1000, median(c, k), bad, cs
            }' "$RESULTS"
    done
    echo
    echo "Ratios tollgate / passthrough (same rep):"
    echo
    echo "| rep | rps ratio | CPU µs/req ratio | extra CPU µs/req |"
    echo "|---|---|---|---|"
    awk -F'\t' '
        function median(a, k,   i, j, t) {
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        $1 == "passthrough" { pr[$2] = $3; pc[$2] = $6 }
        $1 == "tollgate"    { tr[$2] = $3; tc[$2] = $6; reps[++n] = $2 }
        END {
            for (i = 1; i <= n; i++) { k = reps[i]; rr[i] = tr[k] / pr[k]; cr[i] = tc[k] / pc[k]; d[i] = tc[k] - pc[k]
                printf "| %s | %.3f | %.3f | %+.2f |\n", k, rr[i], cr[i], d[i] }
            mr = median(rr, n); mc = median(cr, n); md = median(d, n)
            printf "| median | %.3f | %.3f | %+.2f |\n", mr, mc, md
            printf "\nGoal tollgate >= 0.90x passthrough rps (median of per-rep ratios): %.3f -> %s\n", mr, (mr >= 0.90 ? "MET" : "NOT MET")
            printf "One-core capacity ratio (passthrough CPU/req ÷ tollgate CPU/req, median): %.3f\n", 1 / mc
        }' "$RESULTS"
}
# variant_report NAME WHAT GOAL: NAME's ratios to `tollgate` (same rep); GOAL (a minimum rps
# ratio) is reported as met or not when given.
variant_report() {
    echo
    echo "Ratios $1 / tollgate (same rep; $2):"
    echo
    echo "| rep | rps ratio | CPU µs/req ratio | extra CPU µs/req |"
    echo "|---|---|---|---|"
    awk -F'\t' -v name="$1" -v goal="${3:-}" '
        function median(a, k,   i, j, t) {
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        $1 == "tollgate" { tr[$2] = $3; tc[$2] = $6 }
        $1 == name       { ar[$2] = $3; ac[$2] = $6; reps[++n] = $2 }
        END {
            for (i = 1; i <= n; i++) { k = reps[i]; rr[i] = ar[k] / tr[k]; cr[i] = ac[k] / tc[k]; d[i] = ac[k] - tc[k]
                printf "| %s | %.3f | %.3f | %+.2f |\n", k, rr[i], cr[i], d[i] }
            mr = median(rr, n); mc = median(cr, n); md = median(d, n)
            printf "| median | %.3f | %.3f | %+.2f |\n", mr, mc, md
            if (goal != "") printf "\nGoal %s >= %sx tollgate (median of per-rep rps ratios): %.3f -> %s\n", name, goal, mr, (mr >= goal + 0 ? "MET" : "NOT MET")
        }' "$RESULTS"
}
{ report
  paired_report
  [[ -z $AUD_PID ]] || variant_report tollgate_audit "audit file sink + digests on vs off" 0.95
  [[ -z $TLS_PID ]] || variant_report tollgate_tls "HTTPS (rustls, keep-alive) vs plain HTTP"
} | tee "${OUT:-/dev/null}"
exit
}
