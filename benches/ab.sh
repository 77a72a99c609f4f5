#!/usr/bin/env bash
# A/B: two Tollgate binaries compared in real time, for judging a change to the request path.
#
# Sequential load runs on this kind of VM drift by ±20 % between reps, more than most changes.
# Here both binaries serve the load script's config at the same time from one core (core 1),
# each saturated by its own `wrk -t1 -c32` (core 0): the scheduler shares core 1 between them and
# both see the same host conditions at every moment, so the ratio of their CPU time per request
# (utime+stime ÷ requests) is steady to about ±2 %. The process started first has a small edge
# (≈ 1-2 % in A/A runs), so the script runs two phases with the start order swapped and reports
# the geometric mean of the two phases' median ratios.
#
# Usage: benches/ab.sh OLD_BINARY NEW_BINARY
#   env: D (s per rep, default 5), N (reps per phase, default 4), AUTHZ (0: authentication only;
#        default 1: ten policies, as benches/load.sh)
# Prints OLD ÷ NEW CPU per request: above 1, NEW is cheaper. Bounded (wrk runs are timed, a
# watchdog stops the script); everything started here is stopped on exit. Uses
# target/release/tollgate for the echo upstream and the config, and
# target/release/examples/sign_request (cargo build --release --bin tollgate --example sign_request).
set -euo pipefail
{
OLD=$(realpath "${1:?usage: benches/ab.sh OLD_BINARY NEW_BINARY}")
NEW=$(realpath "${2:?usage: benches/ab.sh OLD_BINARY NEW_BINARY}")
cd "$(dirname "$0")/.."
D=${D:-5}
N=${N:-4}
PATHQ="/api/v1/widgets/1234?limit=10"
CLK_TCK=$(getconf CLK_TCK)
die() { echo "ab.sh: $*" >&2; exit 1; }
source benches/load_common.sh
require_load_tools "wrk + upstream on core 0, both binaries on core 1"
BIN=target/release/tollgate
SIGN=target/release/examples/sign_request
for b in "$BIN" "$SIGN" "$OLD" "$NEW"; do [[ -x $b ]] || die "$b is missing"; done

begin_run tollgate-ab
start_watchdog $(( 60 + 2 * (N + 1) * (D + 3) ))

taskset -c 0 "$BIN" echo --listen 127.0.0.1:0 >"$TMP/echo.log" 2>&1 &
ECHO_PID=$!; PIDS+=("$ECHO_PID")
ECHO_ADDR=$(wait_addr "$TMP/echo.log" "echo upstream listening on" "$ECHO_PID")
write_load_config "$TMP" "$BIN" "$ECHO_ADDR" "${AUTHZ:-1}" ""

# start NAME BINARY: sets ${NAME}_PID and ${NAME}_ADDR.
start() {
    RUST_LOG=warn taskset -c 1 "$2" serve --config "$TMP/tollgate.toml" >"$TMP/$1.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    printf -v "$1_PID" '%s' "$pid"
    printf -v "$1_ADDR" '%s' "$(wait_addr "$TMP/$1.log" "proxy listening on" "$pid")"
}

# phase FIRST SECOND: starts both (FIRST first), N paired reps, prints per-rep OLD ÷ NEW and
# appends the phase's median to $TMP/medians.
phase() {
    start "$1" "$([[ $1 == old ]] && echo "$OLD" || echo "$NEW")"
    start "$2" "$([[ $2 == old ]] && echo "$OLD" || echo "$NEW")"
    local hdrs=() line i o0 n0 o1 n1 ro rn w
    while IFS= read -r line; do
        [[ -n $line ]] && hdrs+=(-H "$line")
    done < <("$SIGN" --url "http://$old_ADDR$PATHQ" --access-key "$AKID" --secret "$SECRET" \
        --region us-east-1 --service execute-api)
    for a in "$old_ADDR" "$new_ADDR"; do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "${hdrs[@]}" "http://$a$PATHQ") == 200 ]] \
            || die "the signed request is not allowed by $a"
        taskset -c 0 wrk -t1 -c32 -d2s "${hdrs[@]}" "http://$a$PATHQ" >/dev/null
    done
    : >"$TMP/ratios"
    for i in $(seq 1 "$N"); do
        o0=$(cpu_ticks "$old_PID"); n0=$(cpu_ticks "$new_PID")
        # Which wrk starts first alternates too.
        if (( i % 2 )); then
            taskset -c 0 wrk -t1 -c32 -d"${D}s" "${hdrs[@]}" "http://$old_ADDR$PATHQ" >"$TMP/old.wrk" & w=$!
            taskset -c 0 wrk -t1 -c32 -d"${D}s" "${hdrs[@]}" "http://$new_ADDR$PATHQ" >"$TMP/new.wrk"
        else
            taskset -c 0 wrk -t1 -c32 -d"${D}s" "${hdrs[@]}" "http://$new_ADDR$PATHQ" >"$TMP/new.wrk" & w=$!
            taskset -c 0 wrk -t1 -c32 -d"${D}s" "${hdrs[@]}" "http://$old_ADDR$PATHQ" >"$TMP/old.wrk"
        fi
        wait "$w"
        o1=$(cpu_ticks "$old_PID"); n1=$(cpu_ticks "$new_PID")
        if grep -q -e 'Non-2xx' -e 'Socket errors' "$TMP/old.wrk" "$TMP/new.wrk"; then
            die "non-2xx responses or socket errors in rep $i"
        fi
        ro=$(awk '/requests in/ {print $1}' "$TMP/old.wrk")
        rn=$(awk '/requests in/ {print $1}' "$TMP/new.wrk")
        awk -v ro="$ro" -v rn="$rn" -v co="$((o1 - o0))" -v cn="$((n1 - n0))" -v hz="$CLK_TCK" \
            -v tag="$1 first, rep $i" -v out="$TMP/ratios" 'BEGIN {
            r = (co / ro) / (cn / rn); print r >> out
            printf "   %s: old %.2f us CPU/req, new %.2f us CPU/req, old / new %.3f\n", tag,
                co / hz * 1e6 / ro, cn / hz * 1e6 / rn, r }'
    done
    sort -n "$TMP/ratios" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }' >>"$TMP/medians"
    kill "$old_PID" "$new_PID"
    wait "$old_PID" "$new_PID" 2>/dev/null || true
}

echo "== old $OLD"
echo "== new $NEW"
echo "== ${N} reps of ${D}s per phase, both on core 1 at once, wrk -t1 -c32 each (core 0), AUTHZ=${AUTHZ:-1}"
: >"$TMP/medians"
phase old new
phase new old
awk '{ m[NR] = $1 } END {
    printf "\nold / new CPU per request: %.3f (phase medians %.3f, old started first; %.3f, new started first)\n", sqrt(m[1] * m[2]), m[1], m[2]
    printf "(above 1: the new binary costs less CPU per request)\n" }' "$TMP/medians"
exit
}
