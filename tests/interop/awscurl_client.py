"""Interop: the awscurl CLI (one subprocess per request) against tollgate.

awscurl's own canonicalisation decides what it can sign correctly, and the
cases follow what it does, as a user of the CLI would see it:
- non-S3 services: the URL path is sent as given and encoded once more for
  the canonical request (AWS's double encoding), without normalisation, so
  paths are given percent-encoded and without `//`;
- s3: the URL holds the raw key (spaces, unicode, `+`, `=`, `//`); requests
  encodes it on the wire, awscurl encodes it once for the canonical request;
- the query is given raw (unencoded values) and awscurl encodes it;
- one value per header name (awscurl keeps headers in a dict); with `-H`,
  awscurl's default Accept/Content-Type headers are not sent.
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import requests

import common
from common import API_PATHS, BODY_SIZES, REGION, body_of, check_echo, ensure

ctx = common.parse_args("awscurl")
runner = common.Runner(ctx, "awscurl")
ADMIN = ctx.key("admin")
READER = ctx.key("reader")
BUCKET = "interop-bucket"
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"]
tmp = tempfile.mkdtemp(prefix="tollgate-awscurl-")


def wire_url(url: str) -> urllib.parse.SplitResult:
    """What requests (awscurl's transport) puts on the wire for this URL."""
    return urllib.parse.urlsplit(requests.Request("GET", url).prepare().url)


def body_file(size: int, seed: int) -> tuple[str, bytes]:
    data = body_of(size, seed)
    path = os.path.join(tmp, f"body-{size}-{seed}")
    with open(path, "wb") as f:
        f.write(data)
    return path, data


# Raw (unencoded) query strings as a user types them.
RAW_QUERIES = [
    "",
    "a=1",
    "b=2&a=1",
    "a=2&a=1&a=",
    "empty=&flag",
    "space=a b&unicode=\u00e9\u65e5",
    "slash=a/b&tilde=~&dash=-_.",
    "list-type=2&prefix=dir/&max-keys=10",
    "Z=upper&z=lower",
]

# Paths for execute-api: percent-encoded, no `//` (awscurl does not normalise).
AWSCURL_API_PATHS = [p for p in API_PATHS if "//" not in p]
# Raw keys for s3: what requests re-encodes identically to awscurl's canonical form.
AWSCURL_S3_KEYS = [
    "plain.txt",
    "dir/sub/file.json",
    "with space.txt",
    "unicode-\u00e9t\u00e9-\u65e5\u672c-\U0001f600.bin",
    "plus+sign+key",
    "equals=sign=key",
    "double//slash//key",
    "/leading-slash",
    "trailing/",
    "sub-delims !$'()*,;:@",
    "tilde~and-_.unreserved",
]

cases = []  # (label, argv-builder data)
n = 0
for i, path in enumerate(AWSCURL_API_PATHS):
    for j, method in enumerate(METHODS):
        n += 1
        query = RAW_QUERIES[(i + j) % len(RAW_QUERIES)]
        key = READER if (method == "GET" and i % 3 == 0) else ADMIN
        size = BODY_SIZES[(i * 5 + j) % len(BODY_SIZES)] if method in ("PUT", "POST") else 0
        headers = [("Content-Type", "application/json")]
        if n % 4 == 0:
            headers += [("x-tollgate-principal-arn", "arn:aws:iam::123456789012:user/evil"),
                        ("X-Tollgate-Anything", "spoofed")]
        if n % 3 == 0:
            headers += [("X-Amz-Meta-Note", "signed by awscurl")]
        cases.append(("execute-api", method, path, query, size, key, headers, n))

for i, raw_key in enumerate(AWSCURL_S3_KEYS):
    path = f"/{BUCKET}/{raw_key}"
    for j, method in enumerate(("PUT", "GET", "HEAD", "DELETE")):
        n += 1
        query = RAW_QUERIES[(i + j) % 4] if method == "GET" else ""
        key = READER if (method == "GET" and i % 2 == 0) else ADMIN
        size = BODY_SIZES[i % len(BODY_SIZES)] if method == "PUT" else 0
        headers = [("Content-Type", "application/octet-stream")]
        if method == "PUT":
            headers.append(("x-amz-meta-origin", "awscurl interop"))
        cases.append(("s3", method, path, query, size, key, headers, n))

for i, form in enumerate(
    [
        "Action=GetCallerIdentity&Version=2011-06-15",
        "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"
        "&RoleSessionName=awscurl",
    ]
):
    for key in (ADMIN, READER):
        n += 1
        cases.append(("sts", "POST", "/", "", form, key,
                      [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], n))


def run_case(case):
    service, method, path, query, size, key, headers, seed = case
    url = ctx.proxy + path + ("?" + query if query else "")
    argv = ["-X", method, "--service", service, "--region", REGION]
    for h, v in headers:
        argv += ["-H", f"{h}: {v}"]
    if isinstance(size, str):  # a form body given inline
        body = size.encode()
        argv += ["-d", size]
    elif size:
        fname, body = body_file(size, seed)
        argv += ["-d", "@" + fname, "--data-binary"]
    else:
        body = b""
    argv.append(url)
    r = common.run_awscurl(argv, key.access_key_id, key.secret_access_key)
    wire = wire_url(url)
    want_headers = {}
    if any(h.lower() == "x-amz-meta-note" for h, _ in headers):
        want_headers["x-amz-meta-note"] = ["signed by awscurl"]
    try:
        check_echo(
            r.resp,
            method=method,
            path=wire.path,
            query=wire.query,
            body_length=len(body),
            user=key.user,
            access_key_id=key.access_key_id,
            headers=want_headers,
        )
    except common.CheckFailed as e:
        tail = "\n".join(r.stderr.splitlines()[-25:])
        raise common.CheckFailed(f"{e}\n    awscurl -v stderr (last lines):\n{tail}") from None
    ensure(r.returncode == 0, f"awscurl exited {r.returncode}")


runner.begin("awscurl")
with ThreadPoolExecutor(max_workers=3) as pool:
    futures = [
        (f"{c[0]} {c[1]} {c[2]}?{c[3]} ({c[5].user})", pool.submit(run_case, c)) for c in cases
    ]
    for label, fut in futures:
        runner.check(label, fut.result)

runner.finish(min_passed=100)
