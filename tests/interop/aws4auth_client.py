"""Interop: requests + requests-aws4auth against tollgate.

requests-aws4auth normalises every path (also for s3: `//` collapses), decodes
then re-encodes s3 paths and encodes non-S3 paths once more, parses the query
with `parse_qs` (so `+` means space) and signs host, content-type and x-amz-*
headers, always with an x-amz-content-sha256 header. Cases stay inside what
it signs the way AWS does: no `//` in S3 keys.

Arbitrary, repeated and empty query keys go to execute-api; S3 requests carry
the query shapes of real S3 operations (Tollgate refuses the rest). The
demo's `reader` sends some writes, which must get 403 AccessDenied with AWS's
exact message.
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
    headers = dict(headers or {})
    if key.user == "reader" and method not in ("GET", "HEAD"):
        # Most of the reader's writes are denied, before their body is read;
        # Tollgate may then close the connection without saying so
        # (common.DENIED_BODY_MAX), so do not let the session reuse it.
        headers["Connection"] = "close"
    r = session.request(method, url, headers=headers, data=body or None,
                        auth=auth(key, service), allow_redirects=False, timeout=60)
    wire = urllib.parse.urlsplit(r.request.url)
    resp = common.Resp(r.status_code, list(r.headers.items()), r.content)
    return resp, wire


def check(key, service, method, target, *, headers=None, body=b"", want_headers=None, query=None):
    """The echo for an allowed request; the exact AccessDenied for one the demo denies."""
    resp, wire = send(key, service, method, target, headers=headers, body=body)
    if service == "sts":
        return common.check_sts_answer(resp, body.decode(), key.user)
    denial = None if service == "sts" else common.demo_denial(key.user, service, method, wire.path, wire.query)
    return common.check_outcome(
        resp,
        denial,
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
        # Every third path is sent by the reader: GET/HEAD pass, writes are denied.
        key = READER if i % 3 == 0 else ADMIN
        denied = common.demo_denial(key.user, "execute-api", method, path) is not None
        if denied:
            # aws4auth sends the payload hash in a header, so the request is
            # denied before its body is read (see common.DENIED_BODY_MAX).
            body = body[: common.DENIED_BODY_MAX]
        runner.check(
            f"{method} {target} ({len(body)} B, {key.user}{', denied' if denied else ''})",
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
    methods = ("PUT", "GET", "HEAD", "DELETE") + (("POST",) if i % 2 else ())
    for method in methods:
        n += 1
        # Query shapes of real S3 operations (common.S3_OBJECT_QUERIES).
        options = common.S3_OBJECT_QUERIES[method]
        query = quote_query(options[(i // 2 if method == "POST" else n + i) % len(options)])
        target = path + ("?" + query if query else "")
        body = body_of(BODY_SIZES[i % len(BODY_SIZES)], i) if method in ("PUT", "POST") else b""
        headers = {}
        if method == "PUT":
            headers = {"Content-Type": "application/octet-stream", "x-amz-meta-origin": "aws4auth"}
        # The reader reads every other key and writes every fourth (denied).
        key = READER if ((method in ("GET", "HEAD") and i % 2 == 0) or i % 4 == 0) else ADMIN
        denied = common.demo_denial(key.user, "s3", method, path, query) is not None
        if denied:
            body = body[: common.DENIED_BODY_MAX]
        runner.check(
            f"{method} {target} ({len(body)} B, {key.user}{', denied' if denied else ''})",
            check, key, "s3", method, target, headers=headers, body=body,
        )

runner.begin("aws4auth sts POST")
STS_FORMS = [
    "Action=GetCallerIdentity&Version=2011-06-15",
    "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
    "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"
    "&RoleSessionName=aws4auth",
]
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}
for form in STS_FORMS:
    runner.check(f"POST / sts {form[:30]}... (admin)", check, ADMIN, "sts", "POST", "/",
                 headers=FORM_CT, body=form.encode())
# The demo's reader may call GetCallerIdentity only.
runner.check("POST / sts GetCallerIdentity (reader)", check, READER, "sts", "POST", "/",
             headers=FORM_CT, body=STS_FORMS[0].encode())


def reader_assume_role():
    resp, _ = send(READER, "sts", "POST", "/", headers=FORM_CT, body=STS_FORMS[2].encode())
    common.check_sts_answer(resp, STS_FORMS[2], "reader")


runner.check("POST / sts AssumeRole (reader, denied)", reader_assume_role)

# --------------------------------------------------------------------------
# Reader writes: AWS's exact AccessDenied, for S3 and execute-api
# --------------------------------------------------------------------------
runner.begin("aws4auth authorization")
for service, method, target, action, resource in (
    ("s3", "PUT", f"/{BUCKET}/reader/" + quote_s3_key("r\u00e9sum\u00e9 v2.txt"),
     "s3:PutObject", f"arn:aws:s3:::{BUCKET}/reader/r\u00e9sum\u00e9 v2.txt"),
    ("s3", "DELETE", f"/{BUCKET}/reader/a%2Fb?versionId=v1",
     "s3:DeleteObjectVersion", f"arn:aws:s3:::{BUCKET}/reader/a/b"),
    ("s3", "PUT", f"/{BUCKET}/reader/tags?tagging", "s3:PutObjectTagging", f"arn:aws:s3:::{BUCKET}/reader/tags"),
    ("execute-api", "POST", "/prod/orders/%C3%A9t%C3%A9?dry-run=1&dry-run=2",
     "execute-api:Invoke", f"{common.API_ARN_PREFIX}/POST/prod/orders/\u00e9t\u00e9"),
    ("execute-api", "PATCH", "/prod/orders/42", "execute-api:Invoke", f"{common.API_ARN_PREFIX}/PATCH/prod/orders/42"),
):
    def denied(service=service, method=method, target=target, action=action, resource=resource):
        body = b"{}" if method in ("PUT", "POST", "PATCH") else b""
        resp, _ = send(READER, service, method, target, headers={"Content-Type": "application/json"}, body=body)
        common.check_denied(resp, "reader", action, resource, method=method)

    runner.check(f"{method} {target} (reader, denied)", denied)

runner.finish(min_passed=100)
