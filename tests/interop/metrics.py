"""Interop: the admin listener and its Prometheus metrics.

- /healthz and /readyz answer 200;
- /metrics parses with prometheus_client's own text parser;
- the families tollgate promises are there;
- `tollgate_requests_total` moves by exactly the traffic this script sends:
  N allowed requests (botocore-signed), and denied ones per error code
  (authorization denials, signed correctly, count as AccessDenied);
- the request-duration histogram counts every proxied request;
- the signing-key cache counts a miss then hits for a repeated key and day.
"""

from __future__ import annotations

import urllib.parse

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prometheus_client.parser import text_string_to_metric_families

import common
from common import REGION, UNKNOWN_ACCESS_KEY_ID, Key, check_echo, ensure, send_raw, target_of

ctx = common.parse_args("metrics")
runner = common.Runner(ctx, "metrics")
ADMIN = ctx.key("admin")
READER = ctx.key("reader")

REQUIRED_FAMILIES = {
    "tollgate_requests_total": "counter",
    "tollgate_request_duration_seconds": "histogram",
    "tollgate_signing_key_cache_hits_total": "counter",
    "tollgate_signing_key_cache_misses_total": "counter",
    "tollgate_upstream_errors_total": "counter",
}


def scrape():
    resp = send_raw(ctx.admin, "GET", "/metrics")
    ensure(resp.status == 200, f"/metrics: {resp.brief()}")
    ct = resp.header("content-type") or ""
    ensure(ct.startswith("text/plain"), f"/metrics content-type {ct!r}")
    text = resp.body.decode("utf-8")
    families = list(text_string_to_metric_families(text))
    samples = {}
    for fam in families:
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, families, samples


def total(samples, name, **labels):
    """Sum of the samples called `name` whose labels include `labels`."""
    out = 0.0
    for (n, lbls), v in samples.items():
        if n == name and all(dict(lbls).get(k) == val for k, val in labels.items()):
            out += v
    return out


def signed_get(key, service, path, method="GET"):
    req = AWSRequest(method=method, url=ctx.proxy + path)
    cls = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    cls(Credentials(key.access_key_id, key.secret_access_key), service, REGION).add_auth(req)
    return send_raw(ctx.proxy, method, target_of(req.url), list(req.headers.items()),
                    b"" if method in ("PUT", "POST") else None)


runner.begin("admin endpoints")
for path in ("/healthz", "/readyz"):
    runner.check(f"GET {path}", lambda: ensure(send_raw(ctx.admin, "GET", path).status == 200,
                                               f"{path}: {send_raw(ctx.admin, 'GET', path).brief()}"))

runner.begin("metrics format")
before = runner.check("scrape and parse /metrics (before traffic)", scrape)
if before is None:
    runner.finish()
_, _, samples0 = before

# --------------------------------------------------------------------------
# Traffic, then the deltas
# --------------------------------------------------------------------------
runner.begin("counters follow traffic")
N_ALLOWED_ADMIN, N_ALLOWED_READER = 12, 5
N_UNSIGNED, N_BAD_SIG, N_UNKNOWN = 4, 3, 2
N_ACCESS_DENIED = 3
allowed = 0
for i in range(N_ALLOWED_ADMIN):
    service, path = (("s3", f"/metrics-bucket/obj-{i}") if i % 2 else ("execute-api", f"/prod/metrics/{i}"))
    r = signed_get(ADMIN, service, path)
    runner.check(f"allowed admin #{i}", check_echo, r, method="GET", path=path, query="", body_length=0,
                 user="admin", access_key_id=ADMIN.access_key_id)
for i in range(N_ALLOWED_READER):
    r = signed_get(READER, "execute-api", f"/prod/metrics/reader/{i}")
    runner.check(f"allowed reader #{i}", check_echo, r, method="GET", path=f"/prod/metrics/reader/{i}",
                 query="", body_length=0, user="reader", access_key_id=READER.access_key_id)
for i in range(N_UNSIGNED):
    r = send_raw(ctx.proxy, "GET", f"/prod/metrics/anon/{i}")
    runner.check(f"unsigned #{i}", common.check_error, r, 403, "MissingAuthenticationToken")
bad = Key("admin", ADMIN.access_key_id, ADMIN.secret_access_key[::-1])
for i in range(N_BAD_SIG):
    r = signed_get(bad, "execute-api", f"/prod/metrics/bad/{i}")
    runner.check(f"bad signature #{i}", common.check_error, r, 403, "SignatureDoesNotMatch")
unknown = Key("nobody", UNKNOWN_ACCESS_KEY_ID, ADMIN.secret_access_key)
for i in range(N_UNKNOWN):
    r = signed_get(unknown, "execute-api", f"/prod/metrics/unknown/{i}")
    runner.check(f"unknown key #{i}", common.check_error, r, 403, "InvalidClientTokenId")
# Authorization denials (same signing scopes as the allowed traffic): the
# reader's writes, and an S3 request Tollgate cannot map (even for admin).
for i, method in enumerate(("PUT", "DELETE")):
    path = f"/prod/metrics/reader/{i}"
    r = signed_get(READER, "execute-api", path, method)
    runner.check(f"reader {method} denied #{i}", common.check_denied, r, "reader", "execute-api:Invoke",
                 common.api_arn(method, path))
r = signed_get(ADMIN, "s3", "/metrics-bucket/obj?a=1")
runner.check("unmappable s3 request", common.check_unmappable, r,
             'unsupported s3 request: query parameter "a" with GetObject')
# Admin-listener requests are not proxied requests and must not count.
for _ in range(3):
    send_raw(ctx.admin, "GET", "/healthz")

after = runner.check("scrape and parse /metrics (after traffic)", scrape)
if after is None:
    runner.finish()
text1, families1, samples1 = after

# Labelled families may print nothing before their first sample, so their
# presence is checked after the traffic.
runner.begin("metrics format")
for name, typ in REQUIRED_FAMILIES.items():
    def has_family(name=name, typ=typ):
        # prometheus_client names counter families without `_total`.
        base = name[: -len("_total")] if typ == "counter" and name.endswith("_total") else name
        fam = [f for f in families1 if f.name in (name, base)]
        ensure(fam, f"no metric family {name} in /metrics:\n{text1[:2000]}")
        ensure(fam[0].type == typ, f"{name} has type {fam[0].type}, want {typ}")

    runner.check(f"family {name} ({typ})", has_family)

N_ALLOWED = N_ALLOWED_ADMIN + N_ALLOWED_READER
N_DENIED = N_UNSIGNED + N_BAD_SIG + N_UNKNOWN + N_ACCESS_DENIED


def delta(name, **labels):
    return total(samples1, name, **labels) - total(samples0, name, **labels)


def eq(label, got, want):
    ensure(got == want, f"{label}: moved by {got:g}, want {want:g}")


runner.begin("counters follow traffic")
runner.check("requests_total{outcome=allowed,error_code=none}", lambda: eq(
    "allowed", delta("tollgate_requests_total", outcome="allowed", error_code="none"), N_ALLOWED))
runner.check("requests_total{outcome=allowed} (all codes)", lambda: eq(
    "allowed", delta("tollgate_requests_total", outcome="allowed"), N_ALLOWED))
runner.check("requests_total{outcome=denied}", lambda: eq(
    "denied", delta("tollgate_requests_total", outcome="denied"), N_DENIED))
for code, n in (("MissingAuthenticationToken", N_UNSIGNED), ("SignatureDoesNotMatch", N_BAD_SIG),
                ("InvalidClientTokenId", N_UNKNOWN), ("AccessDenied", N_ACCESS_DENIED)):
    runner.check(f"requests_total{{outcome=denied,error_code={code}}}", lambda: eq(
        code, delta("tollgate_requests_total", outcome="denied", error_code=code), n))
runner.check("requests_total (everything)", lambda: eq(
    "total", delta("tollgate_requests_total"), N_ALLOWED + N_DENIED))
runner.check("request_duration_seconds_count", lambda: eq(
    "histogram count", delta("tollgate_request_duration_seconds_count"), N_ALLOWED + N_DENIED))
runner.check("request_duration_seconds_bucket{le=+Inf}", lambda: eq(
    "+Inf bucket", delta("tollgate_request_duration_seconds_bucket", le="+Inf"), N_ALLOWED + N_DENIED))
runner.check("request_duration_seconds_sum grows", lambda: ensure(
    delta("tollgate_request_duration_seconds_sum") > 0, "duration sum did not grow"))


def cache_counts():
    hits = delta("tollgate_signing_key_cache_hits_total")
    misses = delta("tollgate_signing_key_cache_misses_total")
    # Allowed and AccessDenied traffic used 3 (key, day, region, service)
    # scopes: admin with s3 and execute-api, reader with execute-api. Each of
    # those requests looks its signing key up once (authorization comes after
    # the signature check); the bad-signature ones may or may not be counted.
    # A fresh process misses once per scope, a warm one never.
    lookups = hits + misses
    lo, hi = N_ALLOWED + N_ACCESS_DENIED, N_ALLOWED + N_ACCESS_DENIED + N_BAD_SIG
    ensure(lo <= lookups <= hi, f"cache hits {hits:g} + misses {misses:g}: want {lo}..{hi} lookups")
    ensure(misses <= 3, f"{misses:g} misses for 3 distinct scopes")


runner.check("signing-key cache hits/misses", cache_counts)

runner.finish(min_passed=30)
