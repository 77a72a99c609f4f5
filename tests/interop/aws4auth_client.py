"""Interop: requests + requests-aws4auth against tollgate.

requests-aws4auth normalises every path (also for s3: `//` collapses), decodes
then re-encodes s3 paths and encodes non-S3 paths once more, parses the query
with `parse_qs` (so `+` means space) and signs host, content-type and x-amz-*
headers, always with an x-amz-content-sha256 header. Cases stay inside what
it signs the way AWS does: no `//` in S3 keys.
"""

from __future__ import annotations

import urllib.parse

import requests
from requests_aws4auth import AWS4Auth

import common
from common import (
    API_PATHS,
    BODY_SIZES,
    QUERIES,
    REGION,
    S3_KEYS,
    body_of,
    check_echo,
    quote_query,
    quote_s3_key,
)

ctx = common.parse_args("aws4auth")
runner = common.Runner(ctx, "requests-aws4auth")
ADMIN = ctx.key("admin")
READER = ctx.key("reader")
BUCKET = "interop-bucket"
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"]
session = requests.Session()
session.trust_env = False


def auth(key: common.Key, service: str) -> AWS4Auth:
    return AWS4Auth(key.access_key_id, key.secret_access_key, REGION, service)


def send(key, service, method, target, *, headers=None, body=b""):
    url = ctx.proxy + target
    r = session.request(method, url, headers=headers or {}, data=body or None,
                        auth=auth(key, service), allow_redirects=False, timeout=60)
    wire = urllib.parse.urlsplit(r.request.url)
    resp = common.Resp(r.status_code, list(r.headers.items()), r.content)
    return resp, wire


def check(key, service, method, target, *, headers=None, body=b"", want_headers=None, query=None):
    resp, wire = send(key, service, method, target, headers=headers, body=body)
    return check_echo(
        resp,
        method=method,
        path=wire.path,
        query=wire.query if query is None else query,
        body_length=len(body),
        user=key.user,
        access_key_id=key.access_key_id,
        headers=want_headers,
    )


runner.begin("aws4auth execute-api")
# urlparse (used by requests-aws4auth) splits `;params` off the last segment.
AWS4AUTH_API_PATHS = [p for p in API_PATHS if ";" not in p]
n = 0
for i, path in enumerate(AWS4AUTH_API_PATHS):
    for j, method in enumerate(METHODS):
        n += 1
        query = quote_query(QUERIES[(i + j) % len(QUERIES)])
        target = path + ("?" + query if query else "")
        body = body_of(BODY_SIZES[(i * 5 + j) % len(BODY_SIZES)], n) if method in ("PUT", "POST") else b""
        headers = {"Content-Type": "application/octet-stream"} if body else {}
        want = {}
        if n % 3 == 0:
            headers["X-Amz-Meta-Note"] = "signed  by   aws4auth"
            want["x-amz-meta-note"] = ["signed  by   aws4auth"]
        if n % 4 == 0:
            headers["x-tollgate-principal-arn"] = "arn:aws:iam::123456789012:user/evil"
            headers["X-Tollgate-Anything"] = "spoofed"
        key = READER if (method == "GET" and i % 3 == 0) else ADMIN
        runner.check(
            f"{method} {target} ({len(body)} B, {key.user})",
            check, key, "execute-api", method, target, headers=headers, body=body, want_headers=want,
        )

# `+` in the query means a space to parse_qs (and to the server).
for target in ("/prod/plus?q=a+b", "/prod/plus?q=a+b&r=%2B"):
    runner.check(f"GET {target}", check, ADMIN, "execute-api", "GET", target)

runner.begin("aws4auth s3")
AWS4AUTH_S3_KEYS = [k for k in S3_KEYS if "//" not in k and not k.startswith("/")]
n = 0
for i, key_name in enumerate(AWS4AUTH_S3_KEYS):
    path = f"/{BUCKET}/" + quote_s3_key(key_name)
    for method in ("PUT", "GET", "HEAD", "DELETE"):
        n += 1
        query = quote_query(QUERIES[n % len(QUERIES)]) if method == "GET" else ""
        target = path + ("?" + query if query else "")
        body = body_of(BODY_SIZES[i % len(BODY_SIZES)], i) if method == "PUT" else b""
        headers = {}
        if method == "PUT":
            headers = {"Content-Type": "application/octet-stream", "x-amz-meta-origin": "aws4auth"}
        key = READER if (method == "GET" and i % 2 == 0) else ADMIN
        runner.check(
            f"{method} {target} ({len(body)} B, {key.user})",
            check, key, "s3", method, target, headers=headers, body=body,
        )

runner.begin("aws4auth sts POST")
for i, form in enumerate(
    [
        "Action=GetCallerIdentity&Version=2011-06-15",
        "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"
        "&RoleSessionName=aws4auth",
    ]
):
    for key in (ADMIN, READER):
        runner.check(
            f"POST / sts {form[:30]}... ({key.user})",
            check, key, "sts", "POST", "/",
            headers={"Content-Type": "application/x-www-form-urlencoded"}, body=form.encode(),
        )

runner.finish(min_passed=100)
