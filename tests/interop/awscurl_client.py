"""Interop: the awscurl CLI (one subprocess per request) against tollgate.

awscurl's own canonicalisation decides what it can sign correctly, and the
cases follow what it does, as a user of the CLI would see it:
- non-S3 services: the URL path is sent as given and encoded once more for
  the canonical request (AWS's double encoding), without normalisation, so
  paths are given percent-encoded and without `//`;
- s3: the URL holds the raw key (spaces, unicode, `=`, `//`); requests
  encodes it on the wire, awscurl encodes it once for the canonical request;
- a `+` in an S3 key goes on the wire raw (requests leaves it alone), which
  Tollgate refuses by design (403 AccessDenied "the S3 request cannot be
  authorized: ambiguous raw '+' …": AWS S3 reads it as a space, other S3
  implementations as a plus). awscurl cannot send `%2B` instead: it encodes
  the URL path once more for the canonical request (`%252B`), so the
  signature does not match. The refusal is asserted as a documented case;
- the query is given raw (unencoded values) and awscurl encodes it; arbitrary,
  repeated and empty query keys go to execute-api, S3 requests carry the
  query shapes of real S3 operations (no `=` inside values: awscurl
  canonicalises `a=b=c` wrongly);
- one value per header name (awscurl keeps headers in a dict); with `-H`,
  awscurl's default Accept/Content-Type headers are not sent;
- authorization as the demo defines it: the reader's writes get 403
  AccessDenied with AWS's exact message.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import requests

import common
from common import API_PATHS, BODY_SIZES, REGION, body_of, ensure

ctx = common.parse_args("awscurl")
runner = common.Runner(ctx, "awscurl")
ADMIN = ctx.key("admin")
READER = ctx.key("reader")
BUCKET = "interop-bucket"
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"]
tmp = tempfile.mkdtemp(prefix="tollgate-awscurl-")
# The request bodies written for awscurl (up to 5 MB) go when the script ends.
atexit.register(shutil.rmtree, tmp, ignore_errors=True)


def wire_url(url: str) -> urllib.parse.SplitResult:
    """What requests (awscurl's transport) puts on the wire for this URL."""
    return urllib.parse.urlsplit(requests.Request("GET", url).prepare().url)


def body_file(size: int, seed: int) -> tuple[str, bytes]:
    data = body_of(size, seed)
    path = os.path.join(tmp, f"body-{size}-{seed}")
    with open(path, "wb") as f:
        f.write(data)
    return path, data


# Raw (unencoded) query strings as a user types them (execute-api).
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

# Raw query strings of real S3 object operations, by method.
S3_RAW_QUERIES = {
    "GET": [
        "",
        "response-content-type=text/plain; charset utf-8&response-content-disposition=attachment",
        "versionId=3/L4kqtJlcpXroDTDmJ.rmsb",
        "tagging",
        "response-content-language=fr-CA&response-expires=Thu, 01 Dec 1994 16:00:00 GMT&partNumber=1",
        "uploadId=" + common.S3_UPLOAD_ID + "&max-parts=10",
    ],
    "PUT": ["", "tagging", "partNumber=3&uploadId=" + common.S3_UPLOAD_ID],
    "HEAD": ["", "versionId=3/L4kqtJlcpXroDTDmJ.rmsb"],
    "DELETE": ["", "versionId=3/L4kqtJlcpXroDTDmJ.rmsb", "tagging", "uploadId=" + common.S3_UPLOAD_ID],
    "POST": ["uploads", "uploadId=" + common.S3_UPLOAD_ID],
}
# Paths for execute-api: percent-encoded, no `//` (awscurl does not normalise).
AWSCURL_API_PATHS = [p for p in API_PATHS if "//" not in p]
# Raw keys for s3: what requests re-encodes identically to awscurl's canonical
# form (keys with `+`: PLUS_KEYS below).
AWSCURL_S3_KEYS = [
    "plain.txt",
    "dir/sub/file.json",
    "with space.txt",
    "unicode-\u00e9t\u00e9-\u65e5\u672c-\U0001f600.bin",
    "equals=sign=key",
    "double//slash//key",
    "/leading-slash",
    "trailing/",
    "sub-delims !$'()*,;:@",
    "tilde~and-_.unreserved",
]

cases = []  # (service, method, path, query, size or form, key, headers, seed)
n = 0
for i, path in enumerate(AWSCURL_API_PATHS):
    for j, method in enumerate(METHODS):
        n += 1
        query = RAW_QUERIES[(i + j) % len(RAW_QUERIES)]
        # Every third path is sent by the reader: GET/HEAD pass, writes are denied.
        key = READER if i % 3 == 0 else ADMIN
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
    methods = ("PUT", "GET", "HEAD", "DELETE") + (("POST",) if i % 3 == 1 else ())
    for j, method in enumerate(methods):
        n += 1
        options = S3_RAW_QUERIES[method]
        query = options[(i // 3 if method == "POST" else i + j) % len(options)]
        # The reader reads every other key and writes every fourth (denied).
        key = READER if ((method in ("GET", "HEAD") and i % 2 == 0) or i % 4 == 2) else ADMIN
        size = BODY_SIZES[i % len(BODY_SIZES)] if method in ("PUT", "POST") else 0
        headers = [("Content-Type", "application/octet-stream")]
        if method == "PUT":
            headers.append(("x-amz-meta-origin", "awscurl interop"))
        cases.append(("s3", method, path, query, size, key, headers, n))

STS_FORMS = [
    "Action=GetCallerIdentity&Version=2011-06-15",
    "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
    "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"
    "&RoleSessionName=awscurl",
]
FORM_CT = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
# The demo's reader may call GetCallerIdentity only (its AssumeRole is checked below).
for form, key in [(f, ADMIN) for f in STS_FORMS] + [(STS_FORMS[0], READER)]:
    n += 1
    cases.append(("sts", "POST", "/", "", form, key, FORM_CT, n))

# A raw `+` in an S3 key: refused by design, whoever signs (awscurl cannot send %2B).
PLUS_KEYS = ["plus+sign+key", "dir/a+b=c.txt"]
for raw_key in PLUS_KEYS:
    for method in ("PUT", "GET", "HEAD", "DELETE"):
        n += 1
        cases.append(("s3+", method, f"/{BUCKET}/{raw_key}", "", 100 if method == "PUT" else 0,
                      ADMIN, [("Content-Type", "application/octet-stream")], n))


def run_case(case):
    service, method, path, query, size, key, headers, seed = case
    plus_key = service == "s3+"
    service = "s3" if plus_key else service
    url = ctx.proxy + path + ("?" + query if query else "")
    wire = wire_url(url)
    denial = None if service == "sts" else common.demo_denial(key.user, service, method, wire.path, wire.query)
    if denial and not isinstance(size, str):
        # awscurl sends the payload hash in a header: the request is denied
        # before its body is read (see common.DENIED_BODY_MAX).
        size = min(size, common.DENIED_BODY_MAX)
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
    want_headers = {}
    if any(h.lower() == "x-amz-meta-note" for h, _ in headers):
        want_headers["x-amz-meta-note"] = ["signed by awscurl"]
    try:
        if service == "sts":
            common.check_sts_answer(r.resp, size, key.user)
            return
        if plus_key:
            ensure("+" in wire.path, f"requests encoded the `+`: {wire.path}")
            common.check_unmappable(
                r.resp,
                "ambiguous raw '+' in the object key: send %2B for a plus or %20 for a space",
                method=method,
            )
            return
        common.check_outcome(
            r.resp,
            denial,
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




def case_label(case) -> str:
    service, method, path, query, size, key, _, _ = case
    if service == "sts":
        return f"sts POST / {size.split('&')[0]} ({key.user})"
    if service == "s3+":
        return f"s3 {method} {path} (raw '+', refused)"
    wire = wire_url(ctx.proxy + path + ("?" + query if query else ""))
    denied = common.demo_denial(key.user, service, method, wire.path, wire.query) is not None
    return f"{service} {method} {path}?{query} ({key.user}{', denied' if denied else ''})"


def reader_sts(form: str, action: str):
    """The reader's STS call is denied: AWS's message (its resource is not compared:
    AWS names the role ARN for AssumeRole, Tollgate's aws-query mapping `*`)."""
    argv = ["-X", "POST", "--service", "sts", "--region", REGION, "-H", f"{FORM_CT[0][0]}: {FORM_CT[0][1]}",
            "-d", form, ctx.proxy + "/"]
    resp = common.run_awscurl(argv, READER.access_key_id, READER.secret_access_key).resp
    common.check_sts_answer(resp, form, "reader")


def reader_denied(service: str, method: str, url_path: str, action: str, resource: str, body: str | None = None):
    """A reader write with the exact AccessDenied message."""
    argv = ["-X", method, "--service", service, "--region", REGION, "-H", "Content-Type: application/json"]
    if body is not None:
        argv += ["-d", body]
    resp = common.run_awscurl(argv + [ctx.proxy + url_path], READER.access_key_id, READER.secret_access_key).resp
    common.check_denied(resp, "reader", action, resource, method=method)


EXTRA = [
    ("sts AssumeRole (reader, denied)", lambda: reader_sts(STS_FORMS[2], "sts:AssumeRole")),
    ("s3 PUT (reader, denied)", lambda: reader_denied(
        "s3", "PUT", f"/{BUCKET}/reader/\u00e9t\u00e9 notes.txt", "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/reader/\u00e9t\u00e9 notes.txt", "not for readers")),
    ("s3 DELETE ?versionId (reader, denied)", lambda: reader_denied(
        "s3", "DELETE", f"/{BUCKET}/reader/old.txt?versionId=v1", "s3:DeleteObjectVersion",
        f"arn:aws:s3:::{BUCKET}/reader/old.txt")),
    ("s3 POST ?uploads (reader, denied)", lambda: reader_denied(
        "s3", "POST", f"/{BUCKET}/reader/big.bin?uploads", "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/reader/big.bin")),
    ("execute-api PATCH (reader, denied)", lambda: reader_denied(
        "execute-api", "PATCH", "/prod/orders/42?dry-run=1&dry-run=", "execute-api:Invoke",
        f"{common.API_ARN_PREFIX}/PATCH/prod/orders/42", '{"state": "shipped"}')),
]

runner.begin("awscurl")
with ThreadPoolExecutor(max_workers=3) as pool:
    futures = [(case_label(c), pool.submit(run_case, c)) for c in cases]
    futures += [(label, pool.submit(fn)) for label, fn in EXTRA]
    for label, fut in futures:
        runner.check(label, fut.result)

runner.finish(min_passed=100)
