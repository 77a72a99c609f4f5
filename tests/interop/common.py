"""Shared helpers for the interop scripts.

Every script takes the proxy and admin URLs and the demo credentials from the
banner that `tollgate serve` prints (`--banner FILE`, or the text itself in
the environment variable TOLLGATE_BANNER); `--proxy URL` / `--admin URL`
override the addresses. The Rust harness (tests/it/interop.rs) passes the
banner through the environment.

Run by hand:

    cargo run -- serve > /tmp/tollgate.banner &
    target/interop-venv/bin/python tests/interop/botocore_clients.py --banner /tmp/tollgate.banner

A script prints one line per failure and a closing summary such as
`botocore: 240 passed, 0 failed`, and exits non-zero when anything failed.
"""

from __future__ import annotations

import argparse
import ast
import http.client
import json
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
INACTIVE_ACCESS_KEY_ID = "AKIATOLLGATEINACTIVE"
# A well-formed access key id that the demo configuration does not know.
UNKNOWN_ACCESS_KEY_ID = "AKIAUNKNOWNKEY000000"
IDENTITY_HEADERS = (
    "x-tollgate-principal-arn",
    "x-tollgate-account-id",
    "x-tollgate-access-key-id",
    "x-tollgate-request-id",
)


def principal_arn(user: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:user/{user}"


class CheckFailed(Exception):
    """A check of an observable behaviour did not hold."""


def ensure(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


# --------------------------------------------------------------------------
# Banner and arguments
# --------------------------------------------------------------------------


@dataclass
class Key:
    user: str
    access_key_id: str
    secret_access_key: str = ""
    comment: str = ""


@dataclass
class Banner:
    proxy: str | None = None
    admin: str | None = None
    echo: str | None = None
    keys: list[Key] = field(default_factory=list)


_LISTEN_RE = re.compile(r"(proxy|admin|echo upstream) listening on (\S+)\s*$")
_USER_RE = re.compile(r"^#\s*user\s+(\S+)(.*)$")
_EXPORT_RE = re.compile(r"^export\s+(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=(.*)$")


def _unquote_shell(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def parse_banner(text: str) -> Banner:
    b = Banner()
    user, comment = None, ""
    for raw in text.splitlines():
        line = raw.strip()
        m = _LISTEN_RE.search(line)
        if m:
            url = "http://" + m.group(2)
            if m.group(1) == "proxy":
                b.proxy = url
            elif m.group(1) == "admin":
                b.admin = url
            else:
                b.echo = url
            continue
        m = _USER_RE.match(line)
        if m:
            user, comment = m.group(1), m.group(2).strip()
            continue
        m = _EXPORT_RE.match(line)
        if m and user is not None:
            value = _unquote_shell(m.group(2))
            if m.group(1) == "AWS_ACCESS_KEY_ID":
                b.keys.append(Key(user, value, comment=comment))
            elif b.keys and b.keys[-1].user == user and not b.keys[-1].secret_access_key:
                b.keys[-1].secret_access_key = value
    return b


@dataclass
class Ctx:
    name: str
    proxy: str
    admin: str
    keys: list[Key]
    args: argparse.Namespace

    @property
    def proxy_host(self) -> str:
        return urllib.parse.urlsplit(self.proxy).netloc

    def key(self, user: str) -> Key:
        for k in self.keys:
            if (
                k.user == user
                and k.access_key_id != INACTIVE_ACCESS_KEY_ID
                and "inactive" not in k.comment.lower()
                and k.secret_access_key
            ):
                return k
        raise SystemExit(
            f"{self.name}: no active key for user `{user}` in the banner "
            f"(keys seen: {[(k.user, k.access_key_id) for k in self.keys]})"
        )

    def inactive_key(self) -> Key:
        """The demo's inactive key; its secret if the banner shows it, else the reader's."""
        for k in self.keys:
            if k.access_key_id == INACTIVE_ACCESS_KEY_ID and k.secret_access_key:
                return k
        return Key("reader", INACTIVE_ACCESS_KEY_ID, self.key("reader").secret_access_key)


def parse_args(name: str, extra=None) -> Ctx:
    p = argparse.ArgumentParser(description=f"tollgate interop: {name}")
    p.add_argument("--banner", help="file holding the stdout of `tollgate serve`")
    p.add_argument("--proxy", help="proxy base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--admin", help="admin base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("-v", "--verbose", action="store_true", help="print every check")
    if extra:
        extra(p)
    args = p.parse_args()
    if args.banner:
        with open(args.banner, encoding="utf-8") as f:
            text = f.read()
    else:
        text = os.environ.get("TOLLGATE_BANNER", "")
    b = parse_banner(text)
    proxy = (args.proxy or os.environ.get("TOLLGATE_PROXY_URL") or b.proxy or "").rstrip("/")
    admin = (args.admin or os.environ.get("TOLLGATE_ADMIN_URL") or b.admin or "").rstrip("/")
    keys = list(b.keys)
    if not keys and os.environ.get("AWS_ACCESS_KEY_ID"):
        keys.append(
            Key("admin", os.environ["AWS_ACCESS_KEY_ID"], os.environ.get("AWS_SECRET_ACCESS_KEY", ""))
        )
    if not proxy or not admin or not keys:
        raise SystemExit(
            f"{name}: need the proxy URL, the admin URL and the demo credentials: pass "
            "--banner FILE (stdout of `tollgate serve`) or set TOLLGATE_BANNER "
            f"(got proxy={proxy!r} admin={admin!r} keys={len(keys)})"
        )
    return Ctx(name, proxy, admin, keys, args)


# --------------------------------------------------------------------------
# HTTP: a raw sender that puts exactly the given bytes on the wire
# --------------------------------------------------------------------------


@dataclass
class Resp:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise CheckFailed(f"response body is not JSON ({e}): {self.brief()}") from None

    def brief(self) -> str:
        body = self.body[:600].decode("utf-8", "replace")
        return f"HTTP {self.status} {body!r}"


def split_base(url: str) -> tuple[str, int]:
    u = urllib.parse.urlsplit(url)
    return u.hostname or "127.0.0.1", u.port or 80


def send_raw(
    base: str,
    method: str,
    target: str,
    headers=(),
    body: bytes | None = None,
    timeout: float = 60.0,
) -> Resp:
    """Send `method target` with exactly these headers (repeats kept, order kept).

    Adds `Host` (from `base`) and `Content-Length` (when a body is given) only
    when the caller did not.
    """
    host, port = split_base(base)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        names = {k.lower() for k, _ in headers}
        if "host" not in names:
            conn.putheader("Host", urllib.parse.urlsplit(base).netloc)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, list(r.getheaders()), data)
    finally:
        conn.close()


def target_of(url: str) -> str:
    """The request target (path + query) of an absolute URL, unchanged."""
    u = urllib.parse.urlsplit(url)
    return u.path + (("?" + u.query) if u.query else "")


# --------------------------------------------------------------------------
# awscurl: the real CLI, run as a subprocess
# --------------------------------------------------------------------------

# Runs awscurl in-process with its clock moved by OFFSET seconds (awscurl has
# no option for the signing time; its `__now` is a module-level function).
_AWSCURL_CLOCK_WRAPPER = """
import datetime, sys
import awscurl.awscurl as m
_offset = datetime.timedelta(seconds=float(sys.argv.pop(1)))
setattr(m, "__now", lambda: datetime.datetime.utcnow() + _offset)
sys.exit(m.main())
"""


def awscurl_cmd() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "awscurl")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "awscurl"]


@dataclass
class AwscurlResult:
    resp: Resp
    argv: list[str]
    stderr: str
    returncode: int


def run_awscurl(
    args: list[str],
    access_key_id: str,
    secret_access_key: str,
    *,
    session_token: str | None = None,
    clock_offset_seconds: float | None = None,
    timeout: float = 120.0,
) -> AwscurlResult:
    """Run `awscurl -v ARGS` with the given credentials; parse status, headers, body.

    awscurl prints the body on stdout and, with -v, the status and the
    response headers on stderr.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    }
    env["AWS_ACCESS_KEY_ID"] = access_key_id
    env["AWS_SECRET_ACCESS_KEY"] = secret_access_key
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_CONFIG_FILE"] = os.devnull
    env["NO_PROXY"] = "*"
    if session_token:
        env["AWS_SESSION_TOKEN"] = session_token
    if clock_offset_seconds is None:
        argv = awscurl_cmd() + ["-v"] + args
    else:
        argv = [sys.executable, "-c", _AWSCURL_CLOCK_WRAPPER, str(clock_offset_seconds), "-v"] + args
    p = subprocess.run(argv, env=env, capture_output=True, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace").replace(secret_access_key, "***")
    m = re.search(r"Response code: (\d+)", err)
    if not m:
        raise CheckFailed(
            f"awscurl printed no response code (exit {p.returncode}): {' '.join(argv[-3:])}\n"
            + "\n".join(err.splitlines()[-15:])
        )
    headers: list[tuple[str, str]] = []
    for line in err[m.end():].splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                headers = [(str(k), str(v)) for k, v in ast.literal_eval(line).items()]
            except (ValueError, SyntaxError):
                pass
            break
    return AwscurlResult(Resp(int(m.group(1)), headers, p.stdout), argv, err, p.returncode)


# --------------------------------------------------------------------------
# What the echo upstream saw, and AWS errors
# --------------------------------------------------------------------------


def strip_auth_params(query: str) -> str:
    """The query without presign parameters (X-Amz-*), order kept."""
    if not query:
        return ""
    parts = [p for p in query.split("&") if not p.lower().startswith("x-amz-")]
    return "&".join(parts)


def check_echo(
    resp: Resp,
    *,
    method: str,
    path: str,
    query: str | None,
    body_length: int,
    user: str,
    access_key_id: str,
    headers: dict[str, list[str]] | None = None,
    presigned: bool = False,
) -> dict | None:
    """Assert a 2xx from the echo upstream with the right identity headers."""
    ensure(200 <= resp.status < 300, f"expected 2xx, got {resp.brief()}")
    rid = resp.header("x-amzn-RequestId")
    ensure(bool(rid), f"response has no x-amzn-RequestId header: {resp.headers}")
    if method == "HEAD":
        ensure(resp.body == b"", f"HEAD response has a body: {resp.body[:100]!r}")
        return None
    e = resp.json()
    ensure(e.get("method") == method, f"echo saw method {e.get('method')!r}, sent {method!r}")
    ensure(e.get("path") == path, f"echo saw path {e.get('path')!r}, sent {path!r}")
    if query is not None:
        seen = e.get("query") or ""
        if presigned:
            seen = strip_auth_params(seen)
        ensure(seen == query, f"echo saw query {seen!r}, sent {query!r}")
    ensure(
        e.get("body_length") == body_length,
        f"echo saw body_length {e.get('body_length')!r}, sent {body_length}",
    )
    h = e.get("headers") or {}
    want = {
        "x-tollgate-principal-arn": [principal_arn(user)],
        "x-tollgate-account-id": [ACCOUNT_ID],
        "x-tollgate-access-key-id": [access_key_id],
        "x-tollgate-request-id": [rid],
    }
    for name, vals in want.items():
        ensure(h.get(name) == vals, f"echo saw {name}={h.get(name)!r}, want {vals!r}")
    extra = sorted(n for n in h if n.startswith("x-tollgate-") and n not in want)
    ensure(not extra, f"client-sent x-tollgate-* headers reached the upstream: {extra}")
    for name, vals in (headers or {}).items():
        ensure(h.get(name) == vals, f"echo saw {name}={h.get(name)!r}, want {vals!r}")
    return e


def check_sts_answer(resp: Resp, form: str, user: str) -> None:
    """A signed STS call is answered by Tollgate's STS (never forwarded): the signature over the
    form body verified, and the operation gave what the demo says."""
    params = dict(urllib.parse.parse_qsl(form))
    action = params.get("Action")
    body = resp.body.decode("utf-8", "replace")
    if action == "GetCallerIdentity":
        ensure(resp.status == 200, f"GetCallerIdentity: {resp.brief()}")
        ensure(f"<Arn>{principal_arn(user)}</Arn>" in body, f"GetCallerIdentity: {resp.brief()}")
    elif action == "GetSessionToken":
        ensure(resp.status == 200, f"GetSessionToken: {resp.brief()}")
        ensure("<AccessKeyId>ASIA" in body, f"GetSessionToken: {resp.brief()}")
    elif action == "AssumeRole":
        check_error(
            resp, 403, "AccessDenied",
            message_prefix=f"User: {principal_arn(user)} is not authorized to perform: "
            f"sts:AssumeRole on resource: {params.get('RoleArn')}",
        )
    else:
        check_error(resp, 400, "InvalidAction")


def aws_error(resp: Resp) -> tuple[str | None, str | None]:
    """(code, message) from an AWS-shaped error body (REST-XML, query XML or awsJson)."""
    ct = (resp.header("content-type") or "").lower()
    text = resp.body.decode("utf-8", "replace").strip()
    if "json" in ct or text.startswith("{"):
        try:
            d = json.loads(text)
        except ValueError:
            return None, None
        code = d.get("__type") or d.get("code") or d.get("Code")
        if code:
            code = code.split("#")[-1].split(":")[0]
        return code, d.get("message") or d.get("Message")
    if not text:
        return None, None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None, None

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    code = msg = None
    for el in root.iter():
        if local(el.tag) == "Code" and code is None:
            code = (el.text or "").strip()
        elif local(el.tag) == "Message" and msg is None:
            msg = (el.text or "").strip()
    return code, msg


def check_error(
    resp: Resp,
    status: int,
    code: str,
    *,
    message: str | None = None,
    message_prefix: str | None = None,
    message_contains: str | None = None,
) -> None:
    got_code, got_msg = aws_error(resp)
    ensure(
        resp.status == status and got_code == code,
        f"expected {status} {code}, got {resp.brief()}",
    )
    if message is not None:
        ensure(got_msg == message, f"{code}: message {got_msg!r}, want {message!r}")
    if message_prefix is not None:
        ensure(
            (got_msg or "").startswith(message_prefix),
            f"{code}: message {got_msg!r} does not start with {message_prefix!r}",
        )
    if message_contains is not None:
        ensure(
            message_contains in (got_msg or ""),
            f"{code}: message {got_msg!r} does not contain {message_contains!r}",
        )
    if code != "MissingAuthenticationToken" or resp.body:
        ensure(bool(resp.header("x-amzn-RequestId")), f"error has no x-amzn-RequestId: {resp.headers}")


# --------------------------------------------------------------------------
# Authorization as the demo configuration defines it
# --------------------------------------------------------------------------
#
# config/demo.toml: `admin` may do everything; `reader` may only do S3 Get*/List*,
# execute-api GET/HEAD and sts:GetCallerIdentity. Everything else is 403
# AccessDenied with AWS's message. Tollgate authenticates first: a request with
# a bad signature gets the signature error even when it would also be denied.

API_ARN_PREFIX = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:demo/prod"
# S3 requests Tollgate refuses because it cannot map them to one IAM action
# with certainty (unknown or duplicate query parameters, a raw `+`, a
# sub-resource the method does not take): 403 AccessDenied with this prefix.
S3_UNMAPPABLE_PREFIX = "the S3 request cannot be authorized: "


def access_denied_message(user: str, action: str, resource: str) -> str:
    """AWS's implicit-deny message for an IAM user."""
    return (
        f"User: {principal_arn(user)} is not authorized to perform: {action} on resource: "
        f"{resource} because no identity-based policy allows the {action} action"
    )


def api_arn(method: str, wire_path: str) -> str:
    """The demo's execute-api resource: `.../demo/prod/<METHOD>/<decoded path>`."""
    return f"{API_ARN_PREFIX}/{method}/" + urllib.parse.unquote(wire_path[1:])


def s3_arn(wire_path: str) -> str:
    """`arn:aws:s3:::bucket/key` (key decoded, never normalised) of a path-style wire path."""
    return "arn:aws:s3:::" + urllib.parse.unquote(wire_path[1:])


# The IAM action of each S3 object operation this suite sends, by (method,
# sub-resource): (action, action when the request names a versionId).
# "Required permissions for Amazon S3 API operations", Amazon S3 User Guide.
_S3_OBJECT_ACTIONS = {
    ("GET", ""): ("s3:GetObject", "s3:GetObjectVersion"),
    ("HEAD", ""): ("s3:GetObject", "s3:GetObjectVersion"),
    ("PUT", ""): ("s3:PutObject", "s3:PutObject"),
    ("DELETE", ""): ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    ("GET", "tagging"): ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    ("PUT", "tagging"): ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    ("DELETE", "tagging"): ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    ("POST", "uploads"): ("s3:PutObject", "s3:PutObject"),
    ("PUT", "uploadId"): ("s3:PutObject", "s3:PutObject"),
    ("POST", "uploadId"): ("s3:PutObject", "s3:PutObject"),
    ("GET", "uploadId"): ("s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts"),
    ("DELETE", "uploadId"): ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
}


def s3_object_action(method: str, query: str) -> str:
    names = [urllib.parse.unquote(p.split("=", 1)[0]) for p in query.split("&") if p]
    sub = next((n for n in names if n in ("tagging", "uploads", "uploadId")), "")
    plain, versioned = _S3_OBJECT_ACTIONS[(method, sub)]
    return versioned if "versionId" in names else plain


def demo_denial(user: str, service: str, method: str, wire_path: str, query: str = ""):
    """(action, resource) the demo denies `user` for this request, or None if it is allowed.

    `wire_path`/`query` as sent (percent-encoded); s3 paths are path-style object paths.
    """
    if user == "admin":
        return None
    if service == "execute-api":
        return None if method in ("GET", "HEAD") else ("execute-api:Invoke", api_arn(method, wire_path))
    if service == "s3":
        action = s3_object_action(method, strip_auth_params(query))
        if action.startswith(("s3:Get", "s3:List")):
            return None
        return action, s3_arn(wire_path)
    raise ValueError(f"demo_denial: service {service}")


# A request signed with its payload hash in a header (S3, and every
# aws4auth/awscurl request) is denied as soon as its headers are verified,
# without reading the body, and the connection is then closed. A client that
# writes a large body without `Expect: 100-continue` may get EPIPE/ECONNRESET
# instead of the 403, and a keep-alive client may reuse the closed connection:
# the 403 carries no `Connection: close`, and even a 1-byte body is sometimes
# left unread. So requests expected to be denied carry small bodies and, when
# a client pools connections, `Connection: close`; boto3, which sends
# `Expect: 100-continue` for file-like bodies, is checked with 1 MiB.
DENIED_BODY_MAX = 4096


def check_denied(resp: Resp, user: str, action: str, resource: str, *, method: str = "GET") -> None:
    """403 AccessDenied with AWS's exact message (a HEAD answer has no body)."""
    if method == "HEAD":
        ensure(resp.status == 403 and resp.body == b"", f"expected 403 without a body, got {resp.brief()}")
        ensure(bool(resp.header("x-amzn-RequestId")), f"error has no x-amzn-RequestId: {resp.headers}")
        return
    check_error(resp, 403, "AccessDenied", message=access_denied_message(user, action, resource))


def check_unmappable(resp: Resp, reason: str, *, method: str = "GET") -> None:
    """403 AccessDenied: Tollgate refuses an S3 request it cannot map (`reason` is exact)."""
    if method == "HEAD":
        ensure(resp.status == 403 and resp.body == b"", f"expected 403 without a body, got {resp.brief()}")
        return
    check_error(resp, 403, "AccessDenied", message=S3_UNMAPPABLE_PREFIX + reason)


def check_outcome(resp: Resp, denial, **echo) -> dict | None:
    """`check_echo(resp, **echo)` when `denial` is None, else the exact AccessDenied."""
    if denial is None:
        return check_echo(resp, **echo)
    check_denied(resp, echo["user"], *denial, method=echo["method"])
    return None


# --------------------------------------------------------------------------
# Test cases: paths, queries, bodies
# --------------------------------------------------------------------------


def quote_s3_key(key: str) -> str:
    """Encode an S3 key the way the AWS SDKs put it in the URL path."""
    return urllib.parse.quote(key, safe="/~")


def quote_query(pairs) -> str:
    """A canonically encoded query string (RFC 3986 unreserved characters kept)."""
    return "&".join(
        urllib.parse.quote(k, safe="-_.~") + ("=" + urllib.parse.quote(v, safe="-_.~") if v is not None else "")
        for k, v in pairs
    )


# Object keys that SDKs encode once (S3 rules: no normalisation).
S3_KEYS = [
    "plain.txt",
    "dir/sub/file.json",
    "with space.txt",
    "spaces  two  and trailing ",
    "unicode-\u00e9t\u00e9-\u65e5\u672c-\U0001f600.bin",
    "plus+sign+key",
    "equals=sign=key",
    "both+and=and&amp;",
    "double//slash//key",
    "/leading-slash",
    "trailing/",
    "reserved !$'()*,;:@[]^`{}|",
    "tilde~and-_.unreserved",
    "percent%20literal",
    "a%2Fb-encoded-slash-literal",
]

# Paths (already percent-encoded as they go on the wire) for non-S3 services.
# Non-S3 services normalise (`//` collapses) and encode the wire path once more.
API_PATHS = [
    "/",
    "/prod/items",
    "/prod/items/",
    "/prod/items/42",
    "/prod/with%20space",
    "/prod/" + urllib.parse.quote("\u00fcnic\u00f8de-\u65e5\u672c-\U0001f600"),
    "/prod/a%2Fb",
    "/prod//double//slash",
    "//leading-double",
    "/prod/reserved-%21%24%27%28%29%2A%2C%3B%3A%40",
    "/prod/sub-delims-!$'()*,;=:@",
    "/prod/plus+equals=",
    "/prod/tilde~unreserved-_.",
    "/prod/percent-%25-literal",
]

# (pairs) -> encoded query; None value means "key without `=`".
QUERIES = [
    [],
    [("a", "1")],
    [("b", "2"), ("a", "1")],
    [("a", "2"), ("a", "1"), ("a", "")],
    [("empty", ""), ("flag", None)],
    [("", "empty-key")],
    [("space", "a b"), ("plus", "a+b"), ("eq", "x=y"), ("amp", "p&q")],
    [("unicode", "\u00e9\u65e5\U0001f600"), ("slash", "a/b"), ("tilde", "~")],
    [("list-type", "2"), ("prefix", "dir/"), ("delimiter", "/"), ("max-keys", "10")],
    [("Z", "upper"), ("z", "lower"), ("_", "under"), ("-", "dash")],
]


# Query strings (pairs) of valid S3 object operations, by method, as boto3
# sends them: Tollgate maps S3 requests with a strict operation table and
# refuses unknown or repeated parameters (arbitrary queries go to execute-api).
S3_VERSION_ID = "3/L4kqtJlcpXroDTDmJ+rmsb"
S3_UPLOAD_ID = "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA~-_."
S3_OBJECT_QUERIES = {
    "GET": [
        [],
        [("versionId", S3_VERSION_ID)],
        [("response-content-type", "text/plain; charset=utf-8"),
         ("response-content-disposition", 'attachment; filename="r\u00e9sum\u00e9 x+y.txt"')],
        [("tagging", None)],
        [("uploadId", S3_UPLOAD_ID), ("max-parts", "10")],
        [("partNumber", "1"), ("versionId", S3_VERSION_ID)],
        [("response-cache-control", "no-cache"), ("response-content-encoding", "gzip"),
         ("response-content-language", "fr-CA"), ("response-expires", "Thu, 01 Dec 1994 16:00:00 GMT")],
    ],
    "HEAD": [[], [("versionId", S3_VERSION_ID)], [("partNumber", "2")]],
    "PUT": [[], [("tagging", None)], [("partNumber", "7"), ("uploadId", S3_UPLOAD_ID)]],
    "POST": [[("uploads", None)], [("uploadId", S3_UPLOAD_ID)]],
    "DELETE": [[], [("versionId", S3_VERSION_ID)], [("tagging", None)], [("uploadId", S3_UPLOAD_ID)]],
}


def body_of(n: int, seed: int = 0) -> bytes:
    """n bytes, not all the same (so hashes differ), deterministic."""
    if n == 0:
        return b""
    pattern = bytes((i * 31 + seed * 7) & 0xFF for i in range(256))
    return (pattern * (n // 256 + 1))[:n]


BODY_SIZES = [0, 1, 100, 4096, 65536 + 3, 1024 * 1024]


# --------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------


class Runner:
    def __init__(self, ctx: Ctx, label: str | None = None):
        self.ctx = ctx
        self.label = label or ctx.name
        self.passed = 0
        self.failed = 0
        self.failures: list[str] = []
        self.sections: dict[str, list[int]] = {}
        self.section = "-"
        self.started = time.monotonic()

    def begin(self, section: str) -> None:
        self.section = section
        self.sections.setdefault(section, [0, 0])

    def check(self, name: str, fn, *args, **kwargs):
        counts = self.sections.setdefault(self.section, [0, 0])
        try:
            out = fn(*args, **kwargs)
        except CheckFailed as e:
            self._fail(counts, name, str(e))
            return None
        except Exception as e:  # noqa: BLE001 - a client blowing up is a failure too
            tb = traceback.format_exc(limit=4)
            self._fail(counts, name, f"{type(e).__name__}: {e}\n{tb}")
            return None
        self.passed += 1
        counts[0] += 1
        if self.ctx.args.verbose:
            print(f"ok   [{self.section}] {name}", flush=True)
        return out

    def _fail(self, counts, name: str, why: str) -> None:
        self.failed += 1
        counts[1] += 1
        line = f"FAIL [{self.section}] {name}: {why}"
        self.failures.append(line)
        print(line, flush=True)

    def finish(self, min_passed: int = 1) -> None:
        secs = time.monotonic() - self.started
        for s, (p, f) in self.sections.items():
            print(f"  {s}: {p} passed, {f} failed", flush=True)
        if self.failures:
            print(f"\n{len(self.failures)} failure(s):", flush=True)
            for line in self.failures[:50]:
                print("  " + line.splitlines()[0], flush=True)
        ok = self.failed == 0
        if self.passed + self.failed < min_passed:
            print(
                f"{self.label}: only {self.passed + self.failed} checks ran, want at least {min_passed}",
                flush=True,
            )
            ok = False
        print(f"({secs:.1f} s)", flush=True)
        print(f"{self.label}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(0 if ok else 1)
