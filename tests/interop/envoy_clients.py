"""Interop: real AWS clients through a real Envoy whose ext_authz service is Tollgate.

Envoy runs deploy/envoy/grpc.yaml or deploy/envoy/http.yaml (ports rendered by
tests/interop/envoy_config.py), its `app` cluster pointing at Tollgate's echo
upstream. Every request goes to Envoy's listener (`--envoy URL`, and the
clients sign for that host); Envoy asks Tollgate (gRPC on 9191 or HTTP-service
mode on 9192 in the demo) and forwards allowed requests to the echo.

Checks, in both modes unless noted:
- boto3's S3 client (path style, the demo `admin` key): PutObject (bytes and a
  file-like body, which makes boto3 send `Expect: 100-continue`) and GetObject
  reach the echo with the admin's identity headers; the echo gets the body
  exactly as the client sent it;
- botocore's SigV4Auth (execute-api): GET with a query, POST with a body;
- awscurl (the CLI): GET, execute-api and s3;
- no signature: 403 MissingAuthenticationToken (as the proxy answers it);
- tampered path, signed header or signature: 403 SignatureDoesNotMatch;
- the demo `reader` writing: 403 AccessDenied with AWS's exact message (boto3
  PutObject, execute-api POST);
- client-sent x-tollgate-* headers (signed or not) never reach the upstream;
- /public/... (ext_authz disabled on that route) reaches the echo unsigned,
  without identity headers;
- a header the client signs that Envoy does not forward to Tollgate: allowed
  in gRPC mode (Envoy sends every header), 403 SignatureDoesNotMatch in HTTP
  mode (not in `allowed_headers`);
- bodies over Envoy's 1 MiB `max_request_bytes`: an S3 UNSIGNED-PAYLOAD PUT
  passes whole; a signed payload hash is not accepted on a partial body, also
  when the first 1 MiB matches the signed hash and more bytes follow
  (Content-Length or chunked);
- signed STS calls (routed by Envoy to Tollgate's api listener, when the
  banner shows one): GetCallerIdentity, and GetSessionToken whose temporary
  credentials then pass ext_authz;
- with `--envoy-admin`: Envoy's ext_authz counters show allowed and denied
  checks and no errors (a timeout or an unreachable Tollgate is an error);
- with `--access-log` (Envoy's stdout, its JSON access log): a line whose
  `authz` dynamic metadata says decision Allow for the admin and one that says
  Deny (gRPC mode); in HTTP mode the metadata comes from Tollgate's response
  headers (x-tollgate-principal-arn on allowed requests).

Run by hand (see deploy/envoy/README.md):

    target/interop-venv/bin/python tests/interop/envoy_clients.py --banner /tmp/tollgate.banner \\
        --envoy http://127.0.0.1:10000 --envoy-admin http://127.0.0.1:9911 --mode grpc \\
        --access-log /tmp/envoy.out
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import boto3
import botocore
import botocore.auth
import botocore.exceptions
import botocore.handlers
import botocore.parsers
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import common
from common import (
    ACCOUNT_ID,
    IDENTITY_HEADERS,
    REGION,
    CheckFailed,
    Key,
    body_of,
    check_error,
    ensure,
    principal_arn,
    send_raw,
    split_base,
    target_of,
)


def extra_args(p):
    p.add_argument("--envoy", required=True, help="Envoy's listener, e.g. http://127.0.0.1:10000")
    p.add_argument("--envoy-admin", help="Envoy's admin endpoint, e.g. http://127.0.0.1:9911")
    p.add_argument("--mode", choices=["grpc", "http"], required=True,
                   help="which deploy/envoy config Envoy runs: grpc.yaml or http.yaml")
    p.add_argument("--access-log", help="file receiving Envoy's stdout (its JSON access log)")


ctx = common.parse_args("envoy", extra_args)
MODE = ctx.args.mode
ENVOY = ctx.args.envoy.rstrip("/")
ENVOY_ADMIN = (ctx.args.envoy_admin or "").rstrip("/")
runner = common.Runner(ctx, f"envoy-{MODE}")
ADMIN = ctx.key("admin")
READER = ctx.key("reader")
BUCKET = "interop-bucket"
# Envoy's with_request_body.max_request_bytes in deploy/envoy/*.yaml.
MAX_REQUEST_BYTES = 1024 * 1024
SPOOF = [
    ("x-tollgate-principal-arn", f"arn:aws:iam::{ACCOUNT_ID}:user/evil"),
    ("X-Tollgate-Anything", "spoofed"),
    ("X-TOLLGATE-ACCOUNT-ID", "999999999999"),
    ("x-tollgate-access-key-id", "AKIAEVIL000000000000"),
    ("X-Tollgate-Request-Id", "not-a-real-request-id"),
]


def banner_text() -> str:
    if ctx.args.banner:
        with open(ctx.args.banner, encoding="utf-8") as f:
            return f.read()
    return os.environ.get("TOLLGATE_BANNER", "")


_api = re.search(r"api listening on (\S+)\s*$", banner_text(), re.M)
API = "http://" + _api.group(1) if _api else None

print(
    f"envoy-{MODE}: Envoy {ENVOY} (admin {ENVOY_ADMIN or '-'}), Tollgate proxy {ctx.proxy}, "
    f"api {API or '- (STS checks skipped)'}; botocore {botocore.__version__}, boto3 {boto3.__version__}, "
    f"boto3 signer {botocore.auth.AUTH_TYPE_MAPS['s3v4'].__module__}",
    flush=True,
)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def wait_ready(timeout: float = 15.0) -> None:
    """Envoy's admin answers /ready with LIVE once its listeners are up."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ENVOY_ADMIN + "/ready", timeout=2) as r:
                last = r.read().decode().strip()
                if r.status == 200 and last == "LIVE":
                    return
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise SystemExit(f"envoy-{MODE}: Envoy's admin {ENVOY_ADMIN}/ready never said LIVE (last: {last!r})")


def envoy_stats() -> dict[str, int]:
    with urllib.request.urlopen(ENVOY_ADMIN + "/stats?filter=ext_authz", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            out[name.strip()] = int(value)
    return out


def check_upstream(resp, *, method: str, path: str, query: str | None, body_length: int,
                   key: Key, headers: dict[str, list[str]] | None = None) -> dict:
    """A 2xx from the echo behind Envoy, with Tollgate's identity headers and no others.

    Like common.check_echo, except that the answer comes from the echo through
    Envoy: an x-amzn-RequestId on it is optional (Tollgate may add one), but
    when present it is the request id the upstream received.
    """
    ensure(200 <= resp.status < 300, f"expected 2xx from the upstream, got {resp.brief()}")
    e = resp.json()
    ensure(e.get("method") == method, f"echo saw method {e.get('method')!r}, sent {method!r}")
    ensure(e.get("path") == path, f"echo saw path {e.get('path')!r}, sent {path!r}")
    if query is not None:
        ensure((e.get("query") or "") == query, f"echo saw query {e.get('query')!r}, sent {query!r}")
    ensure(e.get("body_length") == body_length,
           f"echo saw body_length {e.get('body_length')!r}, the client sent {body_length}")
    h = e.get("headers") or {}
    want = {
        "x-tollgate-principal-arn": [principal_arn(key.user)],
        "x-tollgate-account-id": [ACCOUNT_ID],
        "x-tollgate-access-key-id": [key.access_key_id],
    }
    for name, vals in want.items():
        ensure(h.get(name) == vals, f"echo saw {name}={h.get(name)!r}, want {vals!r}")
    rid = h.get("x-tollgate-request-id") or []
    ensure(len(rid) == 1 and rid[0] and rid[0] != "not-a-real-request-id",
           f"echo saw x-tollgate-request-id={rid!r}")
    client_rid = resp.header("x-amzn-RequestId")
    if client_rid is not None:
        ensure(client_rid == rid[0], f"client got x-amzn-RequestId {client_rid!r}, upstream {rid[0]!r}")
    extra = sorted(n for n in h if n.startswith("x-tollgate-") and n not in want and n != "x-tollgate-request-id")
    ensure(not extra, f"client-sent x-tollgate-* headers reached the upstream: {extra}")
    for name, vals in (headers or {}).items():
        ensure(h.get(name) == vals, f"echo saw {name}={h.get(name)!r}, want {vals!r}")
    return e


class Signed:
    """A request signed by botocore's Python signers for Envoy's host, sent with send_raw."""

    def __init__(self, key: Key, service: str, method: str, target: str, *, headers=(), body=b"",
                 token: str | None = None, context: dict | None = None):
        req = AWSRequest(method=method, url=ENVOY + target, data=body)
        for k, v in headers:
            req.headers[k] = v
        if context:
            req.context.update(context)
        cls = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
        cls(Credentials(key.access_key_id, key.secret_access_key, token), service, REGION).add_auth(req)
        self.method, self.target, self.body = method, target_of(req.url), body
        self.headers = list(req.headers.items())

    def send(self, *, target=None, headers=None, body=None):
        b = self.body if body is None else body
        send_body = b if (b or self.method in ("PUT", "POST")) else None
        return send_raw(ENVOY, self.method, target or self.target,
                        self.headers if headers is None else headers, send_body)


def send_split(method: str, target: str, headers, first: bytes, rest: bytes, *, chunked: bool,
               pause: float = 0.3):
    """Send `first`, pause, then `rest` (with a pause, Envoy's ext_authz buffer fills with
    exactly `first` when that is max_request_bytes long). Returns a Resp, or None when Envoy
    closed the connection without an answer the client could read (a request refused while
    its body was still being sent)."""
    host, port = split_base(ENVOY)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", urllib.parse.urlsplit(ENVOY).netloc)
        for k, v in headers:
            conn.putheader(k, v)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(len(first) + len(rest)))
        conn.endheaders()
        frame = (lambda b: b"%x\r\n%s\r\n" % (len(b), b)) if chunked else (lambda b: b)
        try:
            conn.send(frame(first))
            time.sleep(pause)
            conn.send(frame(rest) + (b"0\r\n\r\n" if chunked else b""))
        except OSError:
            pass  # denied and closed after the first part: the answer may still be readable
        try:
            r = conn.getresponse()
            return common.Resp(r.status, list(r.getheaders()), r.read())
        except (OSError, http.client.HTTPException):
            return None
    finally:
        conn.close()


class Capture:
    """The HTTP exchange of a boto3 S3 client's last call (the echo's JSON is not S3's XML)."""

    def __init__(self, client):
        self.last = None
        client.meta.events.unregister("before-parse.s3.*", botocore.handlers._handle_200_error)
        client.meta.events.register("before-parse.s3.*", self.hook)

    def hook(self, response_dict, **kwargs):
        body = response_dict.get("body")
        self.last = common.Resp(
            response_dict.get("status_code"),
            list((response_dict.get("headers") or {}).items()),
            body if isinstance(body, (bytes, bytearray)) else b"",
        )

    def take(self) -> common.Resp:
        last, self.last = self.last, None
        ensure(last is not None, "boto3 sent no request (or got no response)")
        return last


def s3_client(key: Key):
    c = boto3.client(
        "s3",
        endpoint_url=ENVOY,
        region_name=REGION,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1}),
    )
    return c, Capture(c)


def call(operation, **params):
    try:
        return operation(**params)
    except botocore.parsers.ResponseParserError:
        return None


def expect(status, code, **kw):
    def check(resp):
        ensure(resp is not None, f"no answer (connection closed), want {status} {code}")
        check_error(resp, status, code, **kw)
    return check


def not_allowed(resp):
    """Refused: any 4xx, or a connection Envoy closed without an answer (never the upstream's 2xx)."""
    if resp is None:
        return
    ensure(400 <= resp.status < 500, f"expected a refusal (4xx), got {resp.brief()}")
    ensure(b'"body_length"' not in resp.body, f"the upstream answered: {resp.brief()}")


if ENVOY_ADMIN:
    wait_ready()
stats_before = envoy_stats() if ENVOY_ADMIN else {}

# --------------------------------------------------------------------------
# boto3 S3 client
# --------------------------------------------------------------------------
runner.begin("boto3 s3")
admin_s3, admin_cap = s3_client(ADMIN)
reader_s3, reader_cap = s3_client(READER)
# Connection: close on the reader's denied writes (see common.DENIED_BODY_MAX).
reader_s3.meta.events.register(
    "before-send.s3.*", lambda request, **kw: request.headers.__setitem__("Connection", "close"))

for label, key_name, body, file_like in (
    ("bytes body", "envoy/plain.txt", body_of(1000, 1), False),
    ("file-like body (Expect: 100-continue)", "envoy/with space \u00e9t\u00e9.bin", body_of(65536 + 3, 2), True),
):
    path = f"/{BUCKET}/" + common.quote_s3_key(key_name)

    def put(key_name=key_name, body=body, file_like=file_like, path=path):
        call(admin_s3.put_object, Bucket=BUCKET, Key=key_name,
             Body=io.BytesIO(body) if file_like else body, ContentType="application/octet-stream")
        resp = admin_cap.take()
        e = check_upstream(resp, method="PUT", path=path, query=None, body_length=len(body), key=ADMIN)
        h = e["headers"]
        ensure(h.get("content-length") == [str(len(body))],
               f"upstream saw content-length {h.get('content-length')!r}, sent {len(body)}")

    runner.check(f"put_object {label} ({len(body)} B)", put)

    def get(key_name=key_name, path=path):
        out = admin_s3.get_object(Bucket=BUCKET, Key=key_name)
        admin_cap.take()
        resp = common.Resp(out["ResponseMetadata"]["HTTPStatusCode"],
                           list(out["ResponseMetadata"]["HTTPHeaders"].items()), out["Body"].read())
        check_upstream(resp, method="GET", path=path, query="", body_length=0, key=ADMIN)

    runner.check(f"get_object {key_name!r}", get)


def reader_put_denied():
    key_name = "envoy/r\u00e9sum\u00e9.txt"
    try:
        reader_s3.put_object(Bucket=BUCKET, Key=key_name, Body=b"reader write")
    except botocore.exceptions.ClientError as e:
        reader_cap.take()
        meta, err = e.response["ResponseMetadata"], e.response["Error"]
        ensure(meta["HTTPStatusCode"] == 403, f"put_object: HTTP {meta['HTTPStatusCode']}, want 403")
        ensure(err.get("Code") == "AccessDenied", f"put_object: error code {err.get('Code')!r}")
        want = common.access_denied_message("reader", "s3:PutObject", f"arn:aws:s3:::{BUCKET}/{key_name}")
        ensure(err.get("Message") == want, f"put_object: message {err.get('Message')!r}, want {want!r}")
        ensure(bool(meta.get("RequestId")), f"put_object: boto3 found no RequestId: {meta}")
        return
    reader_cap.take()
    raise CheckFailed("the reader's put_object was not refused")


runner.check("put_object by the reader: 403 AccessDenied", reader_put_denied)


def reader_get_allowed():
    out = reader_s3.get_object(Bucket=BUCKET, Key="envoy/plain.txt")
    reader_cap.take()
    resp = common.Resp(out["ResponseMetadata"]["HTTPStatusCode"],
                       list(out["ResponseMetadata"]["HTTPHeaders"].items()), out["Body"].read())
    check_upstream(resp, method="GET", path=f"/{BUCKET}/envoy/plain.txt", query="", body_length=0, key=READER)


runner.check("get_object by the reader: allowed", reader_get_allowed)

# --------------------------------------------------------------------------
# botocore SigV4Auth, execute-api
# --------------------------------------------------------------------------
runner.begin("sigv4 execute-api")
API_PATH = "/prod/envoy/items/%C3%A9t%C3%A9"
API_QUERY = "b=2&a=1&a=0&empty="


def api_get():
    s = Signed(ADMIN, "execute-api", "GET", f"{API_PATH}?{API_QUERY}")
    check_upstream(s.send(), method="GET", path=API_PATH, query=API_QUERY, body_length=0, key=ADMIN)


def api_post(size: int):
    def run():
        body = body_of(size, 7)
        s = Signed(ADMIN, "execute-api", "POST", API_PATH, body=body,
                   headers=[("Content-Type", "application/json"), ("X-Amz-Target", "Svc.Op")])
        check_upstream(s.send(), method="POST", path=API_PATH, query="", body_length=size, key=ADMIN,
                       headers={"x-amz-target": ["Svc.Op"]})
    return run


runner.check("admin GET with a query", api_get)
runner.check("admin POST 2000 B (body hash in the signature only)", api_post(2000))
runner.check("admin POST 300 KiB", api_post(300 * 1024))


def api_reader_post_denied():
    s = Signed(READER, "execute-api", "POST", API_PATH, body=b"{}", headers=[("Content-Type", "application/json")])
    common.check_denied(s.send(), "reader", "execute-api:Invoke",
                        common.api_arn("POST", API_PATH))


runner.check("reader POST: 403 AccessDenied", api_reader_post_denied)


def custom_signed_header():
    s = Signed(ADMIN, "execute-api", "GET", API_PATH, headers=[("X-Custom-Signed", "yes")])
    auth = dict((k.lower(), v) for k, v in s.headers)["authorization"]
    ensure("x-custom-signed" in auth, f"botocore did not sign x-custom-signed: {auth}")
    resp = s.send()
    if MODE == "grpc":
        check_upstream(resp, method="GET", path=API_PATH, query="", body_length=0, key=ADMIN,
                       headers={"x-custom-signed": ["yes"]})
    else:
        check_error(resp, 403, "SignatureDoesNotMatch")


runner.check(
    "a signed custom header: " + ("allowed (gRPC sends every header)" if MODE == "grpc"
                                  else "403 SignatureDoesNotMatch (not in allowed_headers)"),
    custom_signed_header,
)

# --------------------------------------------------------------------------
# awscurl
# --------------------------------------------------------------------------
runner.begin("awscurl")


def awscurl_get(service: str, url_path: str, query: str):
    def run():
        url = ENVOY + url_path + ("?" + query if query else "")
        argv = ["-X", "GET", "--service", service, "--region", REGION, url]
        r = common.run_awscurl(argv, ADMIN.access_key_id, ADMIN.secret_access_key)
        try:
            check_upstream(r.resp, method="GET", path=url_path, query=query, body_length=0, key=ADMIN)
        except CheckFailed as e:
            tail = "\n".join(r.stderr.splitlines()[-20:])
            raise CheckFailed(f"{e}\n    awscurl -v stderr (last lines):\n{tail}") from None
        ensure(r.returncode == 0, f"awscurl exited {r.returncode}")
    return run


runner.check("GET execute-api", awscurl_get("execute-api", "/prod/envoy/awscurl", "x=1&y=two"))
runner.check("GET s3", awscurl_get("s3", f"/{BUCKET}/envoy/awscurl.txt", ""))

# --------------------------------------------------------------------------
# Refused: no signature, tampered
# --------------------------------------------------------------------------
runner.begin("refused")
for target in (f"/{BUCKET}/envoy/anon.txt", "/prod/envoy/anon", "/"):
    runner.check(f"no signature GET {target}: 403 MissingAuthenticationToken",
                 lambda target=target: expect(403, "MissingAuthenticationToken")(send_raw(ENVOY, "GET", target)))
runner.check("no signature PUT with a body: 403 MissingAuthenticationToken",
             lambda: expect(403, "MissingAuthenticationToken")(
                 send_raw(ENVOY, "PUT", f"/{BUCKET}/envoy/anon.txt", [], b"data")))


def tampered(service: str, how: str):
    def run():
        path = f"/{BUCKET}/envoy/tamper.txt" if service == "s3" else "/prod/envoy/tamper"
        s = Signed(ADMIN, service, "PUT", path + "?tagging" if service == "s3" else path + "?x=1",
                   headers=[("Content-Type", "application/octet-stream"), ("X-Amz-Meta-Color", "red")],
                   body=body_of(500, 3))
        if how == "path":
            resp = s.send(target=s.target.replace("tamper", "tampered", 1))
        elif how == "signed header":
            resp = s.send(headers=[(k, "blue" if k.lower() == "x-amz-meta-color" else v) for k, v in s.headers])
        else:  # signature
            def flip(v: str) -> str:
                return v[:-1] + ("0" if v[-1] != "0" else "1")
            resp = s.send(headers=[(k, flip(v) if k.lower() == "authorization" else v) for k, v in s.headers])
        check_error(resp, 403, "SignatureDoesNotMatch")
    return run


for service in ("s3", "execute-api"):
    for how in ("path", "signed header", "signature"):
        runner.check(f"{service}: {how} changed after signing: 403 SignatureDoesNotMatch", tampered(service, how))

# --------------------------------------------------------------------------
# Client-sent x-tollgate-* headers
# --------------------------------------------------------------------------
runner.begin("spoofed x-tollgate-*")


def spoof(key: Key, service: str, signed: bool):
    def run():
        path = f"/{BUCKET}/envoy/spoof.txt" if service == "s3" else "/prod/envoy/spoof"
        s = Signed(key, service, "GET", path, headers=SPOOF if signed else [])
        resp = s.send() if signed else s.send(headers=s.headers + SPOOF)
        check_upstream(resp, method="GET", path=path, query="", body_length=0, key=key)
    return run


for service in ("s3", "execute-api"):
    for key in (ADMIN, READER):
        for signed in (False, True):
            runner.check(f"{service} {key.user}: spoofed headers {'signed' if signed else 'added after signing'}",
                         spoof(key, service, signed))


def spoof_unsigned():
    resp = send_raw(ENVOY, "GET", "/prod/envoy/spoof", SPOOF)
    check_error(resp, 403, "MissingAuthenticationToken")
    ensure(b"evil" not in resp.body, f"spoofed principal echoed in an error: {resp.brief()}")


runner.check("no signature + spoofed headers: still 403", spoof_unsigned)

# --------------------------------------------------------------------------
# Per-route opt-out: /public
# --------------------------------------------------------------------------
runner.begin("/public (ext_authz disabled)")


def public(target: str, path: str, query: str):
    def run():
        resp = send_raw(ENVOY, "GET", target, SPOOF[:1] + SPOOF[2:])
        ensure(resp.status == 200, f"expected 200 from the upstream, got {resp.brief()}")
        e = resp.json()
        ensure(e.get("path") == path and (e.get("query") or "") == query, f"echo saw {e.get('path')!r} {e.get('query')!r}")
        h = e.get("headers") or {}
        leaked = [n for n in IDENTITY_HEADERS if n in h]
        ensure(not leaked, f"identity headers reached the upstream on a public route: { {n: h[n] for n in leaked} }")
    return run


runner.check("GET /public/readme.txt unsigned: reaches the upstream, no identity headers",
             public("/public/readme.txt", "/public/readme.txt", ""))
runner.check("GET /public?x=1 unsigned: reaches the upstream", public("/public?x=1", "/public", "x=1"))
runner.check("GET /publicity unsigned: not public (403)",
             lambda: expect(403, "MissingAuthenticationToken")(send_raw(ENVOY, "GET", "/publicity")))

# --------------------------------------------------------------------------
# Bodies larger than Envoy's max_request_bytes (Tollgate gets the first 1 MiB)
# --------------------------------------------------------------------------
runner.begin("bodies over 1 MiB")
BIG = 2 * 1024 * 1024 + 5


def unsigned_payload_big():
    body = body_of(BIG, 11)
    s = Signed(ADMIN, "s3", "PUT", f"/{BUCKET}/envoy/big-unsigned.bin",
               headers=[("Content-Type", "application/octet-stream")], body=body,
               context={"client_config": Config(s3={"payload_signing_enabled": False})})
    sha = dict((k.lower(), v) for k, v in s.headers).get("x-amz-content-sha256")
    ensure(sha == "UNSIGNED-PAYLOAD", f"signer did not use UNSIGNED-PAYLOAD: {sha!r}")
    check_upstream(s.send(), method="PUT", path=f"/{BUCKET}/envoy/big-unsigned.bin", query=None,
                   body_length=BIG, key=ADMIN)


def signed_payload_big():
    body = body_of(BIG, 12)
    s = Signed(ADMIN, "s3", "PUT", f"/{BUCKET}/envoy/big-signed.bin",
               headers=[("Content-Type", "application/octet-stream")], body=body)
    headers = [(k, v) for k, v in s.headers if k.lower() != "content-length"]
    not_allowed(send_split("PUT", s.target, headers, body, b"", chunked=False, pause=0))


def signed_prefix_then_more(chunked: bool):
    """The signed hash covers exactly the first 1 MiB; more bytes follow it. Envoy's check
    request then carries exactly the signed bytes (and, observed with Envoy 1.40,
    x-envoy-auth-partial-body: false), so only Tollgate's own rule keeps the extra
    bytes from reaching the upstream."""
    def run():
        first = body_of(MAX_REQUEST_BYTES, 13)
        s = Signed(ADMIN, "s3", "PUT", f"/{BUCKET}/envoy/prefix.bin",
                   headers=[("Content-Type", "application/octet-stream")], body=first)
        headers = [(k, v) for k, v in s.headers if k.lower() not in ("content-length", "transfer-encoding")]
        not_allowed(send_split("PUT", s.target, headers, first, b"appended after signing" * 40, chunked=chunked))
    return run


runner.check(f"s3 UNSIGNED-PAYLOAD PUT {BIG} B: allowed, the upstream gets it all", unsigned_payload_big)
runner.check(f"s3 signed-payload PUT {BIG} B: refused (partial body)", signed_payload_big)
runner.check("s3 signed 1 MiB + appended bytes (Content-Length): refused", signed_prefix_then_more(False))
runner.check("s3 signed 1 MiB + appended bytes (chunked): refused", signed_prefix_then_more(True))

# --------------------------------------------------------------------------
# Signed STS calls: Envoy routes them to Tollgate's api listener
# --------------------------------------------------------------------------
if API:
    runner.begin("sts via the api route")
    FORM_CT = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]

    def sts(form: str, key: Key = ADMIN) -> common.Resp:
        return Signed(key, "sts", "POST", "/", headers=FORM_CT, body=form.encode()).send()

    for form, key in (("Action=GetCallerIdentity&Version=2011-06-15", ADMIN),
                      ("Action=GetCallerIdentity&Version=2011-06-15", READER)):
        runner.check(f"GetCallerIdentity ({key.user})",
                     lambda form=form, key=key: common.check_sts_answer(sts(form, key), form, key.user))

    def session_token_through_extauthz():
        form = "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900"
        resp = sts(form)
        common.check_sts_answer(resp, form, "admin")
        root = ET.fromstring(resp.body)
        found = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
        temp = Key("admin", found["AccessKeyId"], found["SecretAccessKey"])
        s = Signed(temp, "execute-api", "GET", "/prod/envoy/session", token=found["SessionToken"])
        check_upstream(s.send(), method="GET", path="/prod/envoy/session", query="", body_length=0, key=temp)

    runner.check("GetSessionToken, then its credentials through ext_authz", session_token_through_extauthz)

# --------------------------------------------------------------------------
# Envoy's view: stats and the access log
# --------------------------------------------------------------------------
runner.begin("envoy stats and access log")

if ENVOY_ADMIN:
    def stats_check():
        after = envoy_stats()
        d = {n: after.get(f"http.ingress_http.ext_authz.{n}", 0) - stats_before.get(f"http.ingress_http.ext_authz.{n}", 0)
             for n in ("ok", "denied", "error", "failure_mode_allowed")}
        ensure(d["ok"] > 0 and d["denied"] > 0, f"ext_authz counters during this run: {d}")
        ensure(d["error"] == 0 and d["failure_mode_allowed"] == 0,
               f"ext_authz errors (Tollgate timed out, failed or was unreachable): {d}")

    runner.check("ext_authz.ok and .denied counted, no .error", stats_check)

if ctx.args.access_log:
    ADMIN_ARN = principal_arn("admin")

    def log_lines() -> list[dict]:
        out = []
        with open(ctx.args.access_log, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        return out

    def allowed_line(d: dict) -> bool:
        a = d.get("authz") or {}
        if MODE == "grpc":
            return a.get("decision") == "Allow" and a.get("principalArn") == ADMIN_ARN and d.get("code") == 200
        return a.get("x-tollgate-principal-arn") == ADMIN_ARN and d.get("code") == 200

    def denied_line(d: dict) -> bool:
        a = d.get("authz") or {}
        if d.get("code") != 403 or d.get("details") != "ext_authz_denied":
            return False
        return a.get("decision") == "Deny" if MODE == "grpc" else True

    def access_log_check():
        # Envoy flushes its access log about once a second.
        deadline = time.monotonic() + 10
        while True:
            lines = log_lines()
            if (any(map(allowed_line, lines)) and any(map(denied_line, lines))) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        what = ("authz.decision Allow + principalArn admin" if MODE == "grpc"
                else "authz x-tollgate-principal-arn admin")
        ensure(any(map(allowed_line, lines)),
               f"no access log line with code 200 and {what} among {len(lines)}: {lines[-3:]}")
        ensure(any(map(denied_line, lines)),
               f"no access log line with 403 ext_authz_denied{' and authz.decision Deny' if MODE == 'grpc' else ''} "
               f"among {len(lines)}: {lines[-3:]}")

    runner.check("an allowed line (admin) and a denied line", access_log_check)

runner.finish(min_passed=30)
