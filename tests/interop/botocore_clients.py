"""Interop: botocore / boto3 signers against tollgate's demo configuration.

Which signer botocore uses depends on whether awscrt is importable and on
BOTO_DISABLE_CRT (reference/sigv4.md pitfall 15). This script takes the signer
classes from `botocore.auth.AUTH_TYPE_MAPS`, exactly as boto3 clients do, so
running it with `BOTO_DISABLE_CRT=true` tests the pure-Python signers and
running it without tests the CRT signers; `--expect-signer` makes sure the
intended one is in use.

Covers:
- SigV4Auth (execute-api): every method, encoded/unicode/`%2F`/`//` paths,
  arbitrary, repeated and empty query keys, repeated headers, bodies
  0 B - 1 MiB, JSON-protocol POSTs;
- SigV4Auth (sts): form-encoded POST bodies (no x-amz-content-sha256 header);
- S3SigV4Auth (s3): GET/PUT/HEAD/DELETE/POST on keys with spaces, unicode,
  `+`, `=`, `//`, reserved characters, with the query shapes of real S3
  operations (versionId, response-*, tagging, multipart uploads);
  UNSIGNED-PAYLOAD;
- presigned URLs: boto3 `generate_presigned_url` (s3v4) and SigV4QueryAuth
  (execute-api);
- a real boto3 S3 client (path style) doing put/get/head/list/delete,
  tagging and a multipart upload;
- authorization as the demo defines it: `reader` writes (S3, execute-api,
  sts:AssumeRole, presigned, boto3 client) get 403 AccessDenied with AWS's
  exact message.
"""

from __future__ import annotations

import io
import os
import sys

import boto3
import botocore
import botocore.auth
import botocore.parsers
import botocore.handlers
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import common
from common import (
    API_PATHS,
    BODY_SIZES,
    QUERIES,
    REGION,
    S3_KEYS,
    body_of,
    check_echo,
    ensure,
    quote_query,
    quote_s3_key,
    send_raw,
    target_of,
)

BUCKET = "interop-bucket"
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"]
SPOOF_HEADERS = [
    ("x-tollgate-principal-arn", "arn:aws:iam::123456789012:user/evil"),
    ("X-Tollgate-Anything", "spoofed"),
    ("X-Tollgate-Account-Id", "999999999999"),
]


def extra_args(p):
    p.add_argument(
        "--expect-signer",
        choices=["python", "crt"],
        help="fail unless botocore picked this signer family",
    )


ctx = common.parse_args("botocore", extra_args)
MAPS = botocore.auth.AUTH_TYPE_MAPS
V4, S3V4, V4Q, S3V4Q = MAPS["v4"], MAPS["s3v4"], MAPS["v4-query"], MAPS["s3v4-query"]
SIGNER = "crt" if V4.__module__.startswith("botocore.crt") else "python"
runner = common.Runner(ctx, f"botocore[{SIGNER}]")
print(
    f"botocore {botocore.__version__}, boto3 {boto3.__version__}, "
    f"BOTO_DISABLE_CRT={os.environ.get('BOTO_DISABLE_CRT')!r}: signers "
    + ", ".join(f"{c.__module__}.{c.__name__}" for c in (V4, S3V4, V4Q, S3V4Q)),
    flush=True,
)
if ctx.args.expect_signer and ctx.args.expect_signer != SIGNER:
    print(f"botocore: expected the {ctx.args.expect_signer} signer, botocore picked {SIGNER}")
    print("botocore: 0 passed, 1 failed")
    sys.exit(1)

ADMIN = ctx.key("admin")
READER = ctx.key("reader")


def creds(key: common.Key, token: str | None = None) -> Credentials:
    return Credentials(key.access_key_id, key.secret_access_key, token)


def sign_and_send(
    signer_cls,
    key: common.Key,
    service: str,
    method: str,
    target: str,
    *,
    headers=(),
    body: bytes = b"",
    context: dict | None = None,
    region: str = REGION,
):
    req = AWSRequest(method=method, url=ctx.proxy + target, data=body)
    for k, v in headers:
        req.headers[k] = v  # HTTPMessage: assignment appends, so repeats are kept
    if context:
        req.context.update(context)
    signer_cls(creds(key), service, region).add_auth(req)
    wire = list(req.headers.items())
    send_body = body if (body or method in ("PUT", "POST")) else None
    return send_raw(ctx.proxy, method, target_of(req.url), wire, send_body)


# --------------------------------------------------------------------------
# SigV4Auth, service execute-api
# --------------------------------------------------------------------------
runner.begin("SigV4Auth execute-api")
n = 0
for i, path in enumerate(API_PATHS):
    for j, method in enumerate(METHODS):
        n += 1
        pairs = QUERIES[(i + j) % len(QUERIES)]
        query = quote_query(pairs)
        target = path + ("?" + query if query else "")
        body = body_of(BODY_SIZES[(i * 5 + j) % len(BODY_SIZES)], n) if method in ("PUT", "POST") else b""
        headers = [("Content-Type", "application/octet-stream")] if body else []
        want_headers = {}
        if n % 3 == 0:
            headers += [("X-Repeated", "first"), ("X-Repeated", "second")]
            want_headers["x-repeated"] = ["first", "second"]
        if n % 4 == 0:
            headers += SPOOF_HEADERS
        # Every third path is sent by the reader: its GET/HEAD pass, its writes
        # are denied (after the signature, body included, has been verified).
        key = READER if i % 3 == 0 else ADMIN
        denial = common.demo_denial(key.user, "execute-api", method, path, query)
        runner.check(
            f"{method} {target} ({len(body)} B, {key.user}{', denied' if denial else ''})",
            lambda: common.check_outcome(
                sign_and_send(V4, key, "execute-api", method, target, headers=headers, body=body),
                denial,
                method=method,
                path=path,
                query=query,
                body_length=len(body),
                user=key.user,
                access_key_id=key.access_key_id,
                headers=want_headers,
            ),
        )

# awsJson-style POSTs (X-Amz-Target + JSON content type).
for i in range(5):
    body = ('{"TableName": "t%d", "Key": {"id": {"S": "\\u00e9"}}}' % i).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.%d" % (i % 2)),
        ("X-Amz-Target", "DynamoDB_20120810.GetItem"),
    ]
    runner.check(
        f"POST / awsJson #{i}",
        lambda: check_echo(
            sign_and_send(V4, ADMIN, "execute-api", "POST", "/", headers=headers, body=body),
            method="POST",
            path="/",
            query="",
            body_length=len(body),
            user="admin",
            access_key_id=ADMIN.access_key_id,
            headers={"x-amz-target": ["DynamoDB_20120810.GetItem"]},
        ),
    )

# --------------------------------------------------------------------------
# SigV4Auth, service sts: form-encoded bodies, hashed but not in a header
# --------------------------------------------------------------------------
runner.begin("SigV4Auth sts POST")
STS_BODIES = [
    "Action=GetCallerIdentity&Version=2011-06-15",
    "Action=GetCallerIdentity&Version=2011-06-15&Extra=%C3%A9t%C3%A9",
    "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr"
    "&RoleSessionName=interop&DurationSeconds=900",
    "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=3600",
    "Action=DecodeAuthorizationMessage&Version=2011-06-15&EncodedMessage=" + "A" * 4000,
]
# The demo's reader may only call GetCallerIdentity; admin may call everything.
for i, form in enumerate(STS_BODIES * 2):
    body = form.encode()
    key = READER if (i >= len(STS_BODIES) and "GetCallerIdentity" in form) else ADMIN
    ct = "application/x-www-form-urlencoded; charset=utf-8"
    runner.check(
        f"POST / sts {form[:40]}... ({key.user})",
        lambda: common.check_sts_answer(
            sign_and_send(V4, key, "sts", "POST", "/", headers=[("Content-Type", ct)], body=body),
            form,
            key.user,
        ),
    )


def reader_assume_role():
    body = STS_BODIES[2].encode()
    ct = "application/x-www-form-urlencoded; charset=utf-8"
    resp = sign_and_send(V4, READER, "sts", "POST", "/", headers=[("Content-Type", ct)], body=body)
    common.check_sts_answer(resp, STS_BODIES[2], "reader")


runner.check("POST / sts AssumeRole (reader, denied)", reader_assume_role)

# --------------------------------------------------------------------------
# S3SigV4Auth, service s3 (keys encoded once, as the S3 serializer does)
# --------------------------------------------------------------------------
runner.begin("S3SigV4Auth s3")
# Valid S3 operation shapes only (common.S3_OBJECT_QUERIES): the demo maps S3
# requests to IAM actions with a strict operation table and refuses the rest.
n = 0
for i, key_name in enumerate(S3_KEYS):
    path = f"/{BUCKET}/" + quote_s3_key(key_name)
    methods = ("PUT", "GET", "HEAD", "DELETE") + (("POST",) if i % 3 == 0 else ())
    for method in methods:
        n += 1
        options = common.S3_OBJECT_QUERIES[method]
        query = quote_query(options[(i // 3 if method == "POST" else n + i) % len(options)])
        target = path + ("?" + query if query else "")
        body = body_of(BODY_SIZES[i % len(BODY_SIZES)], i) if method in ("PUT", "POST") else b""
        headers = []
        if method == "PUT":
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("x-amz-meta-origin", "interop test"),
                ("x-amz-storage-class", "STANDARD"),
            ]
        # The reader reads every other key and writes every fifth (denied).
        key = READER if ((method in ("GET", "HEAD") and i % 2 == 0) or i % 5 == 0) else ADMIN
        denial = common.demo_denial(key.user, "s3", method, path, query)
        if denial:
            body = body[: common.DENIED_BODY_MAX]
        runner.check(
            f"{method} {target} ({len(body)} B, {key.user}{', denied' if denial else ''})",
            lambda: common.check_outcome(
                sign_and_send(S3V4, key, "s3", method, target, headers=headers, body=body),
                denial,
                method=method,
                path=path,
                query=query,
                body_length=len(body),
                user=key.user,
                access_key_id=key.access_key_id,
            ),
        )

# UNSIGNED-PAYLOAD is fine for s3.
unsigned_ctx = {"client_config": Config(s3={"payload_signing_enabled": False})}
for i, key_name in enumerate(S3_KEYS[:6]):
    path = f"/{BUCKET}/unsigned/" + quote_s3_key(key_name)
    body = body_of(BODY_SIZES[(i + 2) % len(BODY_SIZES)], i)

    def unsigned_put(path=path, body=body):
        req = AWSRequest(method="PUT", url=ctx.proxy + path, data=body)
        req.context.update(unsigned_ctx)
        S3V4(creds(ADMIN), "s3", REGION).add_auth(req)
        ensure(
            req.headers.get("X-Amz-Content-SHA256") == "UNSIGNED-PAYLOAD",
            f"signer did not use UNSIGNED-PAYLOAD: {dict(req.headers)}",
        )
        resp = send_raw(ctx.proxy, "PUT", path, list(req.headers.items()), body)
        return check_echo(
            resp,
            method="PUT",
            path=path,
            query="",
            body_length=len(body),
            user="admin",
            access_key_id=ADMIN.access_key_id,
        )

    runner.check(f"PUT {path} UNSIGNED-PAYLOAD ({len(body)} B)", unsigned_put)


def unsigned_put_reader():
    path = f"/{BUCKET}/unsigned/" + quote_s3_key(S3_KEYS[4])
    req = AWSRequest(method="PUT", url=ctx.proxy + path, data=b"not for readers")
    req.context.update(unsigned_ctx)
    S3V4(creds(READER), "s3", REGION).add_auth(req)
    resp = send_raw(ctx.proxy, "PUT", path, list(req.headers.items()), b"not for readers")
    common.check_denied(resp, "reader", "s3:PutObject", common.s3_arn(path))


runner.check("PUT UNSIGNED-PAYLOAD (reader, denied)", unsigned_put_reader)

# --------------------------------------------------------------------------
# Presigned URLs
# --------------------------------------------------------------------------
runner.begin("presigned")


def s3_client(key: common.Key, **cfg):
    return boto3.client(
        "s3",
        endpoint_url=ctx.proxy,
        region_name=REGION,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            **cfg,
        ),
    )


admin_s3 = s3_client(ADMIN)
reader_s3 = s3_client(READER)

for i, key_name in enumerate(S3_KEYS):
    path = f"/{BUCKET}/" + quote_s3_key(key_name)
    client, user = (reader_s3, READER) if i % 3 == 0 else (admin_s3, ADMIN)
    params = {"Bucket": BUCKET, "Key": key_name}
    if i % 4 == 1:
        params["ResponseContentType"] = "text/plain; charset=utf-8"
    url = client.generate_presigned_url("get_object", Params=params, ExpiresIn=300)
    want_query = ""
    if "ResponseContentType" in params:
        want_query = "response-content-type=text%2Fplain%3B%20charset%3Dutf-8"

    def presigned_get(url=url, path=path, user=user, want_query=want_query):
        ensure("X-Amz-Signature=" in url and "X-Amz-Credential=" in url, f"not a SigV4 presigned URL: {url}")
        return check_echo(
            send_raw(ctx.proxy, "GET", target_of(url)),
            method="GET",
            path=path,
            query=want_query,
            body_length=0,
            user=user.user,
            access_key_id=user.access_key_id,
            presigned=True,
        )

    runner.check(f"presigned GET {path} ({user.user})", presigned_get)

for i, key_name in enumerate(S3_KEYS[:8]):
    path = f"/{BUCKET}/presigned-put/" + quote_s3_key(key_name)
    body = body_of(BODY_SIZES[i % len(BODY_SIZES)], i)
    url = admin_s3.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": "presigned-put/" + key_name}, ExpiresIn=300
    )
    runner.check(
        f"presigned PUT {path} ({len(body)} B)",
        lambda: check_echo(
            send_raw(ctx.proxy, "PUT", target_of(url), [], body),
            method="PUT",
            path=path,
            query="",
            body_length=len(body),
            user="admin",
            access_key_id=ADMIN.access_key_id,
            presigned=True,
        ),
    )

# Presigned writes made by the reader: the URL is valid, the action is not allowed.
for op, method, key_name in (("put_object", "PUT", S3_KEYS[3]), ("delete_object", "DELETE", S3_KEYS[8])):
    path = f"/{BUCKET}/" + quote_s3_key(key_name)
    url = reader_s3.generate_presigned_url(op, Params={"Bucket": BUCKET, "Key": key_name}, ExpiresIn=300)
    action = "s3:PutObject" if method == "PUT" else "s3:DeleteObject"
    runner.check(
        f"presigned {method} {path} (reader, denied)",
        lambda: common.check_denied(
            send_raw(ctx.proxy, method, target_of(url), [], b"x" if method == "PUT" else None),
            "reader", action, common.s3_arn(path), method=method),
    )

for method in ("HEAD", "DELETE"):
    path = f"/{BUCKET}/" + quote_s3_key(S3_KEYS[4])
    op = "head_object" if method == "HEAD" else "delete_object"
    url = admin_s3.generate_presigned_url(op, Params={"Bucket": BUCKET, "Key": S3_KEYS[4]}, ExpiresIn=60)
    runner.check(
        f"presigned {method} {path}",
        lambda: check_echo(
            send_raw(ctx.proxy, method, target_of(url)),
            method=method,
            path=path,
            query="",
            body_length=0,
            user="admin",
            access_key_id=ADMIN.access_key_id,
            presigned=True,
        ),
    )

# Low-level query signers: S3SigV4QueryAuth and SigV4QueryAuth (execute-api).
for signer_cls, service, paths in (
    (S3V4Q, "s3", [f"/{BUCKET}/" + quote_s3_key(k) for k in S3_KEYS[:6]]),
    (V4Q, "execute-api", API_PATHS[:8]),
):
    for i, path in enumerate(paths):
        if service == "s3":
            # GetObject's response-* overrides (S3 refuses unknown parameters).
            pairs = [("response-content-type", f"text/plain; v={i}"),
                     ("response-content-disposition", 'attachment; filename="x y.txt"')] if i % 2 else []
        else:
            pairs = [("a", str(i)), ("b", "x y")] if i % 2 else []
        query = quote_query(pairs)
        user = READER if i % 3 == 2 else ADMIN

        def low_level_presign(signer_cls=signer_cls, service=service, path=path, query=query, user=user):
            req = AWSRequest(method="GET", url=ctx.proxy + path + ("?" + query if query else ""))
            signer_cls(creds(user), service, REGION, expires=120).add_auth(req)
            wire = [(k, v) for k, v in req.headers.items() if k.lower() == "host"]
            return check_echo(
                send_raw(ctx.proxy, "GET", target_of(req.url), wire),
                method="GET",
                path=path,
                query=query,
                body_length=0,
                user=user.user,
                access_key_id=user.access_key_id,
                presigned=True,
            )

        runner.check(f"{signer_cls.__name__} GET {path}?{query} ({user.user})", low_level_presign)

# --------------------------------------------------------------------------
# A real boto3 S3 client. The echo answers JSON, so operations whose output
# is XML fail to parse: the HTTP exchange is captured with an event hook and
# asserted on instead.
# --------------------------------------------------------------------------
runner.begin("boto3 s3 client")


class Capture:
    def __init__(self, client):
        self.last = None
        # botocore turns an S3 200 whose body is not XML into a 500 (to retry
        # a truncated response); the echo's body is JSON, so switch that off.
        client.meta.events.unregister("before-parse.s3.*", botocore.handlers._handle_200_error)
        client.meta.events.register("before-parse.s3.*", self.hook)

    def hook(self, response_dict, **kwargs):
        body = response_dict.get("body")
        self.last = {
            "status": response_dict.get("status_code"),
            "headers": dict(response_dict.get("headers") or {}),
            "body": body if isinstance(body, (bytes, bytearray)) else None,
        }

    def take(self):
        last, self.last = self.last, None
        ensure(last is not None, "boto3 sent no request (or got no response)")
        return last


def call(operation, **params):
    """Run a boto3 operation; the echo's JSON body fails boto3's XML parsing,
    which is expected: the captured HTTP exchange is what gets checked."""
    try:
        return operation(**params)
    except botocore.parsers.ResponseParserError:
        return None


def as_resp(cap) -> common.Resp:
    return common.Resp(cap["status"], list(cap["headers"].items()), cap["body"] or b"")


caps = {id(admin_s3): Capture(admin_s3), id(reader_s3): Capture(reader_s3)}
BOTO_KEYS = [S3_KEYS[i] for i in (0, 1, 2, 4, 5, 6, 8, 9, 11)]

for i, key_name in enumerate(BOTO_KEYS):
    path = f"/{BUCKET}/" + quote_s3_key(key_name)
    size = BODY_SIZES[i % len(BODY_SIZES)]
    body = body_of(size, i)
    cap = caps[id(admin_s3)]

    def put(key_name=key_name, body=body, path=path, cap=cap, i=i):
        stream = io.BytesIO(body) if i % 2 else body  # file-like → Expect: 100-continue
        call(
            admin_s3.put_object,
            Bucket=BUCKET, Key=key_name, Body=stream, ContentType="application/octet-stream",
            Metadata={"source": "boto3 interop"},
        )
        c = cap.take()
        return check_echo(
            as_resp(c), method="PUT", path=path, query=None, body_length=len(body),
            user="admin", access_key_id=ADMIN.access_key_id,
        )

    runner.check(f"boto3 put_object {key_name!r} ({size} B)", put)

    for user, client in ((ADMIN, admin_s3), (READER, reader_s3)):
        def get(key_name=key_name, path=path, user=user, client=client):
            out = client.get_object(Bucket=BUCKET, Key=key_name)
            caps[id(client)].take()
            raw = out["Body"].read()
            resp = common.Resp(out["ResponseMetadata"]["HTTPStatusCode"],
                               list(out["ResponseMetadata"]["HTTPHeaders"].items()), raw)
            return check_echo(
                resp, method="GET", path=path, query="", body_length=0,
                user=user.user, access_key_id=user.access_key_id,
            )

        runner.check(f"boto3 get_object {key_name!r} ({user.user})", get)

    def head(key_name=key_name):
        out = admin_s3.head_object(Bucket=BUCKET, Key=key_name)
        caps[id(admin_s3)].take()
        ensure(out["ResponseMetadata"]["HTTPStatusCode"] == 200, f"head_object: {out['ResponseMetadata']}")
        ensure(
            bool(out["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid")),
            "head_object: no x-amzn-RequestId",
        )

    runner.check(f"boto3 head_object {key_name!r}", head)

    def delete(key_name=key_name, path=path):
        call(admin_s3.delete_object, Bucket=BUCKET, Key=key_name)
        c = caps[id(admin_s3)].take()
        return check_echo(
            as_resp(c), method="DELETE", path=path, query="", body_length=0,
            user="admin", access_key_id=ADMIN.access_key_id,
        )

    runner.check(f"boto3 delete_object {key_name!r}", delete)

for prefix in ("", "dir/", "unicode-\u00e9", "with space", "a+b=c"):
    def list_v2(prefix=prefix):
        cap = caps[id(admin_s3)]
        call(admin_s3.list_objects_v2, Bucket=BUCKET, Prefix=prefix, Delimiter="/", MaxKeys=10)
        c = cap.take()
        e = check_echo(
            as_resp(c), method="GET", path=f"/{BUCKET}", query=None, body_length=0,
            user="admin", access_key_id=ADMIN.access_key_id,
        )
        q = e["query"]
        ensure("list-type=2" in q, f"list_objects_v2 query {q!r}")
        ensure(("prefix=" + common.urllib.parse.quote(prefix, safe="-_.~")) in q or not prefix, f"query {q!r}")

    runner.check(f"boto3 list_objects_v2 prefix={prefix!r}", list_v2)

# Sub-resource operations: tagging, a multipart upload, a copy; reads by the reader.
MPU_KEY = S3_KEYS[4]  # unicode
MPU_PATH = f"/{BUCKET}/" + quote_s3_key(MPU_KEY)
UPLOAD_ID = common.S3_UPLOAD_ID
TAGS = {"TagSet": [{"Key": "team", "Value": "interop"}, {"Key": "note", "Value": "\u00e9t\u00e9 x+y"}]}
PART = body_of(65536 + 3, 9)


def boto_op(client, op, params, *, method, path, query_has, body_length=None, user=ADMIN):
    """Run a boto3 operation and check the echoed exchange: method, path, the
    query parameters it must carry, the identity headers."""
    def run():
        cap = caps[id(client)]
        call(getattr(client, op), **params)
        c = cap.take()
        e = check_echo(
            as_resp(c), method=method, path=path, query=None,
            body_length=echoed_length(c) if body_length is None else body_length,
            user=user.user, access_key_id=user.access_key_id,
        )
        names = [p.split("=", 1)[0] for p in (e["query"] or "").split("&") if p]
        for q in query_has:
            ensure(q in names, f"{op}: query {e['query']!r} lacks {q!r}")
        return e
    return run


def echoed_length(c):
    """The echoed body length, for operations whose body boto3 builds (XML documents)."""
    return common.json.loads(c["body"] or b"{}").get("body_length")


for label, client, op, params, method, path, query_has, blen, user in (
    ("put_object_tagging", admin_s3, "put_object_tagging",
     {"Bucket": BUCKET, "Key": MPU_KEY, "Tagging": TAGS}, "PUT", MPU_PATH, ["tagging"], None, ADMIN),
    ("get_object_tagging (reader)", reader_s3, "get_object_tagging",
     {"Bucket": BUCKET, "Key": MPU_KEY}, "GET", MPU_PATH, ["tagging"], 0, READER),
    ("get_object_tagging versionId (reader)", reader_s3, "get_object_tagging",
     {"Bucket": BUCKET, "Key": MPU_KEY, "VersionId": common.S3_VERSION_ID}, "GET", MPU_PATH,
     ["tagging", "versionId"], 0, READER),
    ("delete_object_tagging", admin_s3, "delete_object_tagging",
     {"Bucket": BUCKET, "Key": MPU_KEY}, "DELETE", MPU_PATH, ["tagging"], 0, ADMIN),
    ("create_multipart_upload", admin_s3, "create_multipart_upload",
     {"Bucket": BUCKET, "Key": MPU_KEY, "ContentType": "video/mp2t"}, "POST", MPU_PATH, ["uploads"], 0, ADMIN),
    ("upload_part", admin_s3, "upload_part",
     {"Bucket": BUCKET, "Key": MPU_KEY, "UploadId": UPLOAD_ID, "PartNumber": 1, "Body": PART},
     "PUT", MPU_PATH, ["uploadId", "partNumber"], len(PART), ADMIN),
    ("list_parts (reader)", reader_s3, "list_parts",
     {"Bucket": BUCKET, "Key": MPU_KEY, "UploadId": UPLOAD_ID, "MaxParts": 5}, "GET", MPU_PATH,
     ["uploadId", "max-parts"], 0, READER),
    ("list_multipart_uploads (reader)", reader_s3, "list_multipart_uploads",
     {"Bucket": BUCKET, "Prefix": "unicode-"}, "GET", f"/{BUCKET}", ["uploads", "prefix"], 0, READER),
    ("complete_multipart_upload", admin_s3, "complete_multipart_upload",
     {"Bucket": BUCKET, "Key": MPU_KEY, "UploadId": UPLOAD_ID,
      "MultipartUpload": {"Parts": [{"ETag": '"0123456789abcdef0123456789abcdef"', "PartNumber": 1}]}},
     "POST", MPU_PATH, ["uploadId"], None, ADMIN),
    ("abort_multipart_upload", admin_s3, "abort_multipart_upload",
     {"Bucket": BUCKET, "Key": MPU_KEY, "UploadId": UPLOAD_ID}, "DELETE", MPU_PATH, ["uploadId"], 0, ADMIN),
    ("copy_object", admin_s3, "copy_object",
     {"Bucket": BUCKET, "Key": "copies/" + S3_KEYS[2], "CopySource": {"Bucket": BUCKET, "Key": MPU_KEY}},
     "PUT", f"/{BUCKET}/copies/" + quote_s3_key(S3_KEYS[2]), [], 0, ADMIN),
):
    runner.check(f"boto3 {label}",
                 boto_op(client, op, params, method=method, path=path, query_has=query_has,
                         body_length=blen, user=user))


# The reader's writes are denied before their body is read, after which
# Tollgate may close the connection without `Connection: close`
# (common.DENIED_BODY_MAX): this client asks for the close itself, so that
# botocore's pool does not reuse a dead connection.
reader_w_s3 = s3_client(READER)
reader_w_s3.meta.events.register(
    "before-send.s3.*", lambda request, **kw: request.headers.__setitem__("Connection", "close"))
caps[id(reader_w_s3)] = Capture(reader_w_s3)


def reader_denied(op, params, action, path):
    """The reader's boto3 write fails with boto3's own parse of AWS's AccessDenied."""
    def run():
        try:
            getattr(reader_w_s3, op)(**params)
        except botocore.exceptions.ClientError as e:
            caps[id(reader_w_s3)].take()
            meta, err = e.response["ResponseMetadata"], e.response["Error"]
            ensure(meta["HTTPStatusCode"] == 403, f"{op}: HTTP {meta['HTTPStatusCode']}, want 403")
            ensure(err.get("Code") == "AccessDenied", f"{op}: error code {err.get('Code')!r}")
            want = common.access_denied_message("reader", action, common.s3_arn(path))
            ensure(err.get("Message") == want, f"{op}: message {err.get('Message')!r}, want {want!r}")
            ensure(bool(meta.get("RequestId")), f"{op}: boto3 found no RequestId: {meta}")
            return
        caps[id(reader_w_s3)].take()
        raise common.CheckFailed(f"reader {op} was not refused")
    return run


for op, params, action, path in (
    ("put_object", {"Bucket": BUCKET, "Key": S3_KEYS[2], "Body": b"reader write"},
     "s3:PutObject", f"/{BUCKET}/" + quote_s3_key(S3_KEYS[2])),
    # File-like 1 MiB body: boto3 sends `Expect: 100-continue` and gets the 403 before the body.
    ("put_object", {"Bucket": BUCKET, "Key": S3_KEYS[6], "Body": io.BytesIO(body_of(1024 * 1024, 5))},
     "s3:PutObject", f"/{BUCKET}/" + quote_s3_key(S3_KEYS[6])),
    ("delete_object", {"Bucket": BUCKET, "Key": S3_KEYS[5]},
     "s3:DeleteObject", f"/{BUCKET}/" + quote_s3_key(S3_KEYS[5])),
    ("delete_object", {"Bucket": BUCKET, "Key": S3_KEYS[5], "VersionId": common.S3_VERSION_ID},
     "s3:DeleteObjectVersion", f"/{BUCKET}/" + quote_s3_key(S3_KEYS[5])),
    ("put_object_tagging", {"Bucket": BUCKET, "Key": MPU_KEY, "Tagging": TAGS},
     "s3:PutObjectTagging", MPU_PATH),
    ("create_multipart_upload", {"Bucket": BUCKET, "Key": MPU_KEY}, "s3:PutObject", MPU_PATH),
    ("abort_multipart_upload", {"Bucket": BUCKET, "Key": MPU_KEY, "UploadId": UPLOAD_ID},
     "s3:AbortMultipartUpload", MPU_PATH),
    ("copy_object", {"Bucket": BUCKET, "Key": S3_KEYS[0], "CopySource": {"Bucket": BUCKET, "Key": MPU_KEY}},
     "s3:PutObject", f"/{BUCKET}/" + quote_s3_key(S3_KEYS[0])),
):
    extra = "".join(
        [" VersionId" if "VersionId" in params else "",
         " 1 MiB file-like body" if isinstance(params.get("Body"), io.BytesIO) else ""]
    )
    runner.check(f"boto3 {op} {params['Key']!r}{extra} (reader, denied)", reader_denied(op, params, action, path))

runner.finish(min_passed=200)
