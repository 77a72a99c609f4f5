# Shared by benches/load.sh and benches/load_envoy.sh (sourced; both define `die` first).

# Checks for 2+ cores, taskset and curl; installs wrk with apt-get when it is missing.
require_load_tools() {
    if [[ $(nproc) -lt 2 ]]; then die "needs at least 2 cores ($1)"; fi
    command -v taskset >/dev/null || die "taskset (util-linux) is required"
    command -v curl >/dev/null || die "curl is required"
    if ! command -v wrk >/dev/null; then
        echo "== installing wrk (apt-get)"
        if ! apt-get install -y wrk >/dev/null 2>&1; then
            apt-get update >/dev/null && apt-get install -y wrk >/dev/null
        fi
        command -v wrk >/dev/null || die "could not install wrk"
    fi
}

# begin_run NAME: a temporary directory ($TMP, under $TMPDIR, named after NAME), the list of
# processes this script starts ($PIDS: append every one) and traps that, on exit or interrupt,
# stop them and the watchdog and remove $TMP. Call it from the script itself, not a subshell.
begin_run() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    PIDS=()
    WATCHDOG=""
    trap end_run EXIT
    trap 'echo "$(basename "$0"): interrupted" >&2; exit 130' INT TERM
}

end_run() {
    trap - EXIT INT TERM
    [[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}

# Waits for "<prefix> ADDR" in a log file and prints ADDR.
wait_addr() {
    local log=$1 prefix=$2 pid=$3 i
    for i in $(seq 1 100); do
        if addr=$(grep -m1 -o "$prefix [0-9.:]*" "$log" 2>/dev/null); then
            echo "${addr##* }"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "process $pid exited before listening"; }
        sleep 0.1
    done
    cat "$log" >&2
    die "timed out waiting for '$prefix' in $log"
}

# utime+stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "busy steal total" jiffies of cpu1 from /proc/stat.
cpu1_stat() { awk '$1=="cpu1" {busy=$2+$3+$4+$7+$8; print busy, $9, busy+$5+$6+$9}' /proc/stat; }

# to_us VALUE: wrk latency ("521.00us", "1.23ms", "2.00s") → µs.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n
    }'
}

# write_load_config DIR BIN UPSTREAM_ADDR AUTHZ EXTRA_LISTENERS: a Tollgate config in DIR
# (tollgate.toml, tollgate.secrets.toml, team*.json): one user with a fresh key (sets AKID and
# SECRET), ten managed policies with 50 statements in all (conditions, wildcards, a Deny), one
# of which allows GET /api/v1/widgets/1234 — authentication + authorization as a real principal
# would see it. AUTHZ=0 measures authentication alone: a mapping without routes that lets
# authenticated calls through (`unmatched = "authenticated"`), so no policy is evaluated.
# EXTRA_LISTENERS are added lines of [listeners]. The config is checked with `tollgate check`.
write_load_config() {
    local dir=$1 bin=$2 upstream=$3 authz=$4 extra=$5 keys i widget mapping
    keys=$("$bin" keys create)
    AKID=$(sed -n 's/^access_key_id = "\(.*\)"$/\1/p' <<<"$keys")
    SECRET=$(sed -n 's/^secret_access_key = "\(.*\)"$/\1/p' <<<"$keys")
    [[ -n $AKID && -n $SECRET ]] || die "could not parse 'tollgate keys create' output"
    local names=() policies=""
    for i in $(seq 0 9); do
        names+=("\"Team$i\"")
        widget=$((i * 1000)); [[ $i == 2 ]] && widget=1234
        cat >"$dir/team$i.json" <<EOF
{ "Version": "2012-10-17", "Statement": [
  { "Sid": "Read$i", "Effect": "Allow", "Action": ["svc$i:Get*", "svc$i:List*"], "Resource": "arn:aws:svc$i:*:123456789012:thing/*",
    "Condition": { "StringEquals": { "aws:PrincipalTag/team": "load" } } },
  { "Sid": "Write$i", "Effect": "Allow", "Action": ["svc$i:Put*", "svc$i:Delete*"], "Resource": "arn:aws:svc$i:*:123456789012:thing/\${aws:username}/*" },
  { "Sid": "Net$i", "Effect": "Deny", "Action": "svc$i:*", "Resource": "*", "Condition": { "NotIpAddress": { "aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"] } } },
  { "Sid": "Tags$i", "Effect": "Allow", "Action": "svc$i:TagResource", "Resource": "*", "Condition": { "ForAllValues:StringEquals": { "aws:TagKeys": ["team", "cost"] } } },
  { "Sid": "Widgets$i", "Effect": "Allow", "Action": "widgets:GetWidget", "Resource": "arn:aws:widgets:us-east-1:123456789012:widget/$widget",
    "Condition": { "Null": { "aws:SecureTransport": "false" }, "IpAddress": { "aws:SourceIp": "127.0.0.0/8" } } }
] }
EOF
        policies+="[[policies]]"$'\n'"name = \"Team$i\""$'\n'"file = \"team$i.json\""$'\n\n'
    done
    if [[ $authz == 0 ]]; then
        mapping=$'[[mappings]]\nservice = "execute-api"\nmode = "rest"\nunmatched = "authenticated"'
    else
        mapping=$'[[mappings]]\nservice = "execute-api"\nmode = "rest"\n\n[[mappings.routes]]\nmethod = "GET"\npath = "/api/v1/widgets/{id}"\naction = "widgets:GetWidget"\nresource = "arn:aws:widgets:${region}:${account}:widget/{id}"'
    fi
    cat >"$dir/tollgate.toml" <<EOF
secrets_file = "tollgate.secrets.toml"

[auth]
regions = ["us-east-1"]
services = ["execute-api"]

[listeners]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"
$extra

[upstream]
url = "http://$upstream"

[[accounts]]
id = "123456789012"
name = "load"

$policies
[[users]]
name = "loadgen"
policies = [$(IFS=,; echo "${names[*]}")]
tags = { team = "load" }

[[users.access_keys]]
id = "$AKID"

$mapping
EOF
    printf '[access_keys]\n%s = "%s"\n' "$AKID" "$SECRET" >"$dir/tollgate.secrets.toml"
    chmod 600 "$dir/tollgate.secrets.toml"
    "$bin" check --config "$dir/tollgate.toml" >/dev/null || die "generated config refused (see above)"
}

# start_watchdog LIMIT: after LIMIT seconds, sends this script SIGTERM (its cleanup trap stops
# what it started). Sets WATCHDOG to the watchdog's pid, for the cleanup to kill.
start_watchdog() {
    local limit=$1 name
    name=$(basename "$0")
    (
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        sleep "$limit" </dev/null >/dev/null 2>&1 &
        s=$!
        wait "$s"
        echo "$name: watchdog: over $limit s, stopping" >&2
        kill -TERM $$
    ) &
    WATCHDOG=$!
}
