"""Interop: requests tollgate must refuse, signed by real clients.

For each signer family (botocore's Python signers, botocore's CRT signers,
requests-aws4auth, awscurl where its CLI allows) and for both an S3 and a
non-S3 (execute-api) scope: tampered path / query / signed header / body,
clock 20 min off either way, wrong region, unknown key, inactive key, a
session token, UNSIGNED-PAYLOAD outside s3, expired and tampered presigned
URLs, a missing or malformed Authorization header. Each expects the exact
HTTP status and AWS error code (parsed from the XML or JSON body).

Authorization (after authentication): the demo's `reader` gets 403
AccessDenied with AWS's exact message for writes, even correctly signed; a
bad signature on a request that would be denied is still a signature error;
S3 requests Tollgate cannot map with certainty (unknown or repeated query
parameters, a sub-resource the method does not take, two sub-resources, a raw
`+` in the key) are refused with 403 AccessDenied, even for `admin`.

Also: client-sent `x-tollgate-*` headers (signed or not, any case, repeated)
never reach the upstream; the echo sees only the real principal.
"""

from __future__ import annotations

import contextlib
import datetime
import time

import boto3
import botocore.auth
import botocore.crt.auth
import requests
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from requests_aws4auth import AWS4Auth

import common
from common import (
    ACCOUNT_ID,
    REGION,
    UNKNOWN_ACCESS_KEY_ID,
    CheckFailed,
    Key,
    body_of,
    check_echo,
    check_error,
    ensure,
    send_raw,
    target_of,
)

ctx = common.parse_args("negative")
runner = common.Runner(ctx, "negative")
ADMIN = ctx.key("admin")
READER = ctx.key("reader")
INACTIVE = ctx.inactive_key()
UNKNOWN = Key("nobody", UNKNOWN_ACCESS_KEY_ID, ADMIN.secret_access_key)
WRONG_SECRET = Key("admin", ADMIN.access_key_id, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET")
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLETOKENnotissuedbytollgate//////////wEaDGV4YW1wbGU="
SKEW = 20 * 60
WRONG_REGION = "eu-west-1"
BUCKET = "interop-bucket"

# One S3 and one non-S3 request shape; both carry a query so it can be tampered.
# S3: `?tagging` is PutObjectTagging for the PUTs (PutObject takes no query
# parameter) and GetObjectTagging for the reader's GET.
SHAPES = {
    "s3": ("/interop-bucket/neg/obj%20key.txt", "tagging", "/interop-bucket/neg/other.txt"),
    "execute-api": ("/prod/neg/items", "x=1", "/prod/neg/other"),
}


@contextlib.contextmanager
def botocore_clock(offset_seconds: float):
    """Move the clock botocore's signers (Python and CRT) read."""
    real = botocore.compat.get_current_datetime
    delta = datetime.timedelta(seconds=offset_seconds)

    def fake(remove_tzinfo=True):
        return real(remove_tzinfo) + delta

    saved = (botocore.auth.get_current_datetime, botocore.crt.auth.get_current_datetime)
    botocore.auth.get_current_datetime = fake
    botocore.crt.auth.get_current_datetime = fake
    try:
        yield
    finally:
        botocore.auth.get_current_datetime, botocore.crt.auth.get_current_datetime = saved


class Signed:
    """A signed request, ready to be sent (possibly after tampering)."""

    def __init__(self, method, target, headers, body):
        self.method, self.target, self.headers, self.body = method, target, list(headers), body

    def send(self, *, target=None, body=None, headers=None):
        b = self.body if body is None else body
        send_body = b if (b or self.method in ("PUT", "POST")) else None
        return send_raw(ctx.proxy, self.method, target or self.target,
                        self.headers if headers is None else headers, send_body)


class BotocoreFamily:
    def __init__(self, name, v4, s3v4, v4q, s3v4q):
        self.name, self.v4, self.s3v4, self.v4q, self.s3v4q = name, v4, s3v4, v4q, s3v4q

    def sign(self, key, service, method, target, *, headers=(), body=b"", region=REGION,
             clock=0.0, token=None):
        req = AWSRequest(method=method, url=ctx.proxy + target, data=body)
        for k, v in headers:
            req.headers[k] = v
        cls = self.s3v4 if service == "s3" else self.v4
        with botocore_clock(clock):
            cls(Credentials(key.access_key_id, key.secret_access_key, token), service, region).add_auth(req)
        return Signed(method, target_of(req.url), req.headers.items(), body)

    def presign(self, key, service, target, *, expires=60, clock=0.0):
        req = AWSRequest(method="GET", url=ctx.proxy + target)
        cls = self.s3v4q if service == "s3" else self.v4q
        with botocore_clock(clock):
            cls(Credentials(key.access_key_id, key.secret_access_key), service, REGION,
                expires=expires).add_auth(req)
        return target_of(req.url)


class Aws4AuthFamily:
    name = "aws4auth"

    def sign(self, key, service, method, target, *, headers=(), body=b"", region=REGION,
             clock=0.0, token=None):
        hdrs = dict(headers)
        if clock:
            when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=clock)
            hdrs["x-amz-date"] = when.strftime("%Y%m%dT%H%M%SZ")
        req = requests.Request(method, ctx.proxy + target, headers=hdrs, data=body or None).prepare()
        AWS4Auth(key.access_key_id, key.secret_access_key, region, service, session_token=token)(req)
        return Signed(method, target_of(req.url), req.headers.items(), req.body or b"")


FAMILIES = [
    BotocoreFamily("botocore-python", botocore.auth.SigV4Auth, botocore.auth.S3SigV4Auth,
                   botocore.auth.SigV4QueryAuth, botocore.auth.S3SigV4QueryAuth),
    BotocoreFamily("botocore-crt", botocore.crt.auth.CrtSigV4Auth, botocore.crt.auth.CrtS3SigV4Auth,
                   botocore.crt.auth.CrtSigV4QueryAuth, botocore.crt.auth.CrtS3SigV4QueryAuth),
    Aws4AuthFamily(),
]


def expect(status, code, **kw):
    def check(resp):
        check_error(resp, status, code, **kw)
    return check


def expect_ok(key):
    def check(resp):
        ensure(200 <= resp.status < 300, f"control request failed: {resp.brief()}")
        h = resp.json().get("headers", {})
        ensure(h.get("x-tollgate-access-key-id") == [key.access_key_id], f"echo headers {h}")
    return check


def header_cases(fam, service):
    """(label, thunk returning a response, checker)."""
    path, query, other_path = SHAPES[service]
    target = f"{path}?{query}"
    s3 = service == "s3"
    body = body_of(1000, 3)
    ct = [("Content-Type", "application/octet-stream")]
    meta = [("x-amz-meta-color", "red")]

    def sign(key=ADMIN, method="PUT", headers=ct, b=body, **kw):
        return fam.sign(key, service, method, target, headers=headers, body=b, **kw)

    cases = [
        ("control: valid PUT", lambda: sign().send(), expect_ok(ADMIN)),
        ("control: reader GET", lambda: sign(READER, "GET", [], b"").send(), expect_ok(READER)),
        ("wrong secret", lambda: sign(WRONG_SECRET).send(), expect(403, "SignatureDoesNotMatch")),
        ("tampered path", lambda: sign().send(target=f"{other_path}?{query}"),
         expect(403, "SignatureDoesNotMatch")),
        ("tampered query", lambda: sign().send(target=f"{path}?{query}0"),
         expect(403, "SignatureDoesNotMatch")),
        ("extra query parameter", lambda: sign().send(target=f"{target}&y=1"),
         expect(403, "SignatureDoesNotMatch")),
        ("tampered signed header",
         lambda: (lambda s: s.send(headers=[(k, "blue" if k.lower() == "x-amz-meta-color" else v)
                                            for k, v in s.headers]))(sign(headers=ct + meta)),
         expect(403, "SignatureDoesNotMatch")),
        ("clock -20 min", lambda: sign(clock=-SKEW).send(),
         expect(403, "RequestTimeTooSkewed") if s3
         else expect(403, "SignatureDoesNotMatch", message_prefix="Signature expired:")),
        ("clock +20 min", lambda: sign(clock=SKEW).send(),
         expect(403, "RequestTimeTooSkewed") if s3
         else expect(403, "SignatureDoesNotMatch", message_prefix="Signature not yet current:")),
        (f"wrong region {WRONG_REGION}", lambda: sign(region=WRONG_REGION).send(),
         expect(400, "AuthorizationHeaderMalformed") if s3
         else expect(403, "SignatureDoesNotMatch",
                     message_contains="Credential should be scoped to a valid region")),
        ("unknown key", lambda: sign(UNKNOWN).send(),
         expect(403, "InvalidAccessKeyId") if s3 else expect(403, "InvalidClientTokenId")),
        ("inactive key", lambda: sign(INACTIVE).send(),
         expect(403, "InvalidAccessKeyId") if s3 else expect(403, "InvalidClientTokenId")),
        ("session token", lambda: sign(token=SESSION_TOKEN).send(),
         expect(400, "InvalidToken") if s3 else expect(403, "InvalidClientTokenId")),
    ]
    # A changed body: with a hex x-amz-content-sha256 header the hash check
    # fails; without one (botocore's non-S3 signer) the signature does.
    sends_hash_header = s3 or fam.name == "aws4auth"
    tampered = body_of(1000, 4)
    cases.append((
        "tampered body (same length)",
        lambda: sign().send(body=tampered),
        expect(400, "XAmzContentSHA256Mismatch") if sends_hash_header else expect(403, "SignatureDoesNotMatch"),
    ))
    if not s3:
        json_ct = [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "Svc.Op")]
        cases += [
            ("awsJson: clock -20 min",
             lambda: sign(headers=json_ct, b=b"{}", clock=-SKEW).send(),
             json_shape(expect(400, "InvalidSignatureException"))),
            # awsJson services answer an unknown key with 400
            # UnrecognizedClientException (reference/sigv4.md 11.1, 11.4).
            ("awsJson: unknown key",
             lambda: sign(UNKNOWN, headers=json_ct, b=b"{}").send(),
             json_shape(expect(400, "UnrecognizedClientException",
                               message_prefix="The security token included in the request is invalid"))),
        ]
        if isinstance(fam, BotocoreFamily):
            cases.append((
                "UNSIGNED-PAYLOAD outside s3",
                lambda: sign(headers=ct + [("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")]).send(),
                expect(403, "AccessDenied"),
            ))
    return cases


def json_shape(inner):
    def check(resp):
        inner(resp)
        ct = (resp.header("content-type") or "").lower()
        ensure("json" in ct, f"awsJson request got a non-JSON error (content-type {ct!r}): {resp.brief()}")
        ensure("__type" in resp.json(), f"JSON error without __type: {resp.brief()}")
    return check


for fam in FAMILIES:
    for service in ("s3", "execute-api"):
        runner.begin(f"{fam.name} {service}")
        for label, thunk, checker in header_cases(fam, service):
            runner.check(label, lambda: checker(thunk()))

# --------------------------------------------------------------------------
# Authorization: after authentication, with the demo's policies
# --------------------------------------------------------------------------
WRONG_READER = Key("reader", READER.access_key_id, READER.secret_access_key[::-1])
S3_OBJ_PATH = "/interop-bucket/neg/r%C3%A9sum%C3%A9%20%2B%20notes.txt"
S3_OBJ_ARN = "arn:aws:s3:::interop-bucket/neg/r\u00e9sum\u00e9 + notes.txt"


def denied(action, resource, method="PUT"):
    def check(resp):
        common.check_denied(resp, "reader", action, resource, method=method)
    return check


def unmappable(reason, method="GET"):
    def check(resp):
        common.check_unmappable(resp, reason, method=method)
    return check


def authz_cases(fam, service):
    def send(key, method, target, body=b"", headers=()):
        return fam.sign(key, service, method, target, headers=list(headers), body=body).send()

    ct = [("Content-Type", "application/octet-stream")]
    if service == "execute-api":
        api = "/prod/neg/orders/%C3%A9t%C3%A9%2F42"
        return [
            ("reader POST: AccessDenied", lambda: send(READER, "POST", api + "?x=1&x=2", b"{}", ct),
             denied("execute-api:Invoke", f"{common.API_ARN_PREFIX}/POST/prod/neg/orders/\u00e9t\u00e9/42")),
            ("reader DELETE: AccessDenied", lambda: send(READER, "DELETE", api),
             denied("execute-api:Invoke", f"{common.API_ARN_PREFIX}/DELETE/prod/neg/orders/\u00e9t\u00e9/42")),
            ("reader HEAD: allowed", lambda: send(READER, "HEAD", api),
             lambda r: ensure(r.status == 200, f"reader HEAD: {r.brief()}")),
            ("reader PUT, wrong secret: signature error first",
             lambda: send(WRONG_READER, "PUT", api, b"{}", ct), expect(403, "SignatureDoesNotMatch")),
        ]
    return [
        ("reader PUT: AccessDenied", lambda: send(READER, "PUT", S3_OBJ_PATH, b"data", ct),
         denied("s3:PutObject", S3_OBJ_ARN)),
        ("reader DELETE ?versionId: AccessDenied", lambda: send(READER, "DELETE", S3_OBJ_PATH + "?versionId=v1"),
         denied("s3:DeleteObjectVersion", S3_OBJ_ARN)),
        ("reader PUT ?tagging: AccessDenied", lambda: send(READER, "PUT", S3_OBJ_PATH + "?tagging", b"<T/>", ct),
         denied("s3:PutObjectTagging", S3_OBJ_ARN)),
        ("reader HEAD ?versionId: allowed", lambda: send(READER, "HEAD", S3_OBJ_PATH + "?versionId=v1"),
         lambda r: ensure(r.status == 200, f"reader HEAD: {r.brief()}")),
        ("reader PUT, wrong secret: signature error first",
         lambda: send(WRONG_READER, "PUT", S3_OBJ_PATH, b"data", ct), expect(403, "SignatureDoesNotMatch")),
        ("admin GET ?a=1: unmappable", lambda: send(ADMIN, "GET", S3_OBJ_PATH + "?a=1"),
         unmappable('unsupported s3 request: query parameter "a" with GetObject')),
        ("admin PUT ?versionId: unmappable", lambda: send(ADMIN, "PUT", S3_OBJ_PATH + "?versionId=v1", b"x", ct),
         unmappable('unsupported s3 request: query parameter "versionId" with PutObject')),
        ("admin GET duplicate versionId: unmappable",
         lambda: send(ADMIN, "GET", S3_OBJ_PATH + "?versionId=v1&versionId=v2"),
         unmappable('duplicate query parameter "versionId"')),
        ("admin POST ?tagging: unmappable", lambda: send(ADMIN, "POST", S3_OBJ_PATH + "?tagging", b"<T/>", ct),
         unmappable("unsupported s3 request: POST ?tagging on an object")),
        ("admin GET ?uploads on an object: unmappable", lambda: send(ADMIN, "GET", S3_OBJ_PATH + "?uploads"),
         unmappable("unsupported s3 request: GET ?uploads on an object")),
        ("admin GET ?tagging&acl: unmappable", lambda: send(ADMIN, "GET", S3_OBJ_PATH + "?tagging&acl"),
         unmappable("unsupported s3 request: two sub-resources: ?tagging and ?acl")),
        ("admin PUT raw '+' in the key: unmappable", lambda: send(ADMIN, "PUT", "/interop-bucket/neg/a+b", b"x", ct),
         unmappable("ambiguous raw '+' in the object key: send %2B for a plus or %20 for a space")),
        ("admin PUT %2B in the key: allowed", lambda: send(ADMIN, "PUT", "/interop-bucket/neg/a%2Bb", b"x", ct),
         expect_ok(ADMIN)),
    ]


for fam in FAMILIES:
    for service in ("s3", "execute-api"):
        runner.begin(f"{fam.name} {service} authorization")
        for label, thunk, checker in authz_cases(fam, service):
            runner.check(label, lambda: checker(thunk()))

# --------------------------------------------------------------------------
# Presigned URLs
# --------------------------------------------------------------------------
runner.begin("presigned")
S3_OBJ = "/interop-bucket/neg/presigned%20obj.txt"
API_OBJ = "/prod/neg/presigned"
for fam in FAMILIES[:2]:
    for service, target in (("s3", S3_OBJ), ("execute-api", API_OBJ)):
        runner.check(
            f"{fam.name} {service}: control",
            lambda: expect_ok(ADMIN)(send_raw(ctx.proxy, "GET", fam.presign(ADMIN, service, target))),
        )
        runner.check(
            f"{fam.name} {service}: signed 20 min ago, expires after 60 s",
            lambda: expect(403, "AccessDenied", message_prefix="Request has expired")(
                send_raw(ctx.proxy, "GET", fam.presign(ADMIN, service, target, expires=60, clock=-SKEW))
            ),
        )
        runner.check(
            f"{fam.name} {service}: X-Amz-Expires raised after signing",
            lambda: expect(403, "SignatureDoesNotMatch")(
                send_raw(ctx.proxy, "GET",
                         fam.presign(ADMIN, service, target, expires=60).replace("X-Amz-Expires=60",
                                                                                 "X-Amz-Expires=600"))
            ),
        )
        runner.check(
            f"{fam.name} {service}: path changed",
            lambda: expect(403, "SignatureDoesNotMatch")(
                send_raw(ctx.proxy, "GET", fam.presign(ADMIN, service, target).replace("/neg/", "/neg2/", 1))
            ),
        )
        runner.check(
            f"{fam.name} {service}: unknown key",
            lambda: (expect(403, "InvalidAccessKeyId") if service == "s3"
                     else expect(403, "InvalidClientTokenId"))(
                send_raw(ctx.proxy, "GET", fam.presign(UNKNOWN, service, target))
            ),
        )

for fam in FAMILIES[:2]:
    runner.check(
        f"{fam.name} s3: presigned GET ?a=1 (unmappable)",
        lambda: unmappable('unsupported s3 request: query parameter "a" with GetObject')(
            send_raw(ctx.proxy, "GET", fam.presign(ADMIN, "s3", S3_OBJ + "?a=1"))),
    )

s3 = boto3.client(
    "s3", endpoint_url=ctx.proxy, region_name=REGION,
    aws_access_key_id=ADMIN.access_key_id, aws_secret_access_key=ADMIN.secret_access_key,
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
short = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "neg/short"}, ExpiresIn=1)
runner.check("boto3 presigned GET, valid", lambda: expect_ok(ADMIN)(send_raw(ctx.proxy, "GET", target_of(
    s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "neg/ok"}, ExpiresIn=60)))))
reader_s3 = boto3.client(
    "s3", endpoint_url=ctx.proxy, region_name=REGION,
    aws_access_key_id=READER.access_key_id, aws_secret_access_key=READER.secret_access_key,
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
)
runner.check("boto3 presigned PUT by the reader: AccessDenied", lambda: denied(
    "s3:PutObject", "arn:aws:s3:::interop-bucket/neg/r\u00e9sum\u00e9.txt")(send_raw(
        ctx.proxy, "PUT", target_of(reader_s3.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": "neg/r\u00e9sum\u00e9.txt"}, ExpiresIn=60)),
        [], b"data")))
time.sleep(2.5)
runner.check(
    "boto3 presigned GET, ExpiresIn=1 used 2.5 s later",
    lambda: expect(403, "AccessDenied", message_prefix="Request has expired")(
        send_raw(ctx.proxy, "GET", target_of(short))
    ),
)

# --------------------------------------------------------------------------
# No signature at all, malformed Authorization
# --------------------------------------------------------------------------
runner.begin("unsigned and malformed")
now = datetime.datetime.now(datetime.timezone.utc)
amz_date = now.strftime("%Y%m%dT%H%M%SZ")
scope_date = now.strftime("%Y%m%d")
for target in ("/interop-bucket/neg/anon.txt", "/interop-bucket", "/prod/neg/anon", "/"):
    runner.check(f"no auth GET {target}", lambda: expect(403, "MissingAuthenticationToken")(
        send_raw(ctx.proxy, "GET", target)))
runner.check("no auth PUT with body", lambda: expect(403, "MissingAuthenticationToken")(
    send_raw(ctx.proxy, "PUT", "/interop-bucket/neg/anon.txt", [], b"data")))
runner.check("no auth, awsJson content type", lambda: json_shape(expect(403, "MissingAuthenticationToken"))(
    send_raw(ctx.proxy, "POST", "/", [("Content-Type", "application/x-amz-json-1.0"),
                                      ("X-Amz-Target", "Svc.Op")], b"{}")))
runner.check("no auth, only x-amz-date", lambda: expect(403, "MissingAuthenticationToken")(
    send_raw(ctx.proxy, "GET", "/prod/neg/anon", [("X-Amz-Date", amz_date)])))

for service, code in (("execute-api", "IncompleteSignature"), ("s3", "AuthorizationHeaderMalformed")):
    cred = f"{ADMIN.access_key_id}/{scope_date}/{REGION}/{service}/aws4_request"
    target = "/interop-bucket/neg/x" if service == "s3" else "/prod/neg/x"
    for label, value in (
        ("no SignedHeaders", f"AWS4-HMAC-SHA256 Credential={cred}, Signature={'0' * 64}"),
        ("no Signature", f"AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;x-amz-date"),
    ):
        hdrs = [("Authorization", value), ("X-Amz-Date", amz_date)]
        if service == "s3":
            hdrs.append(("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"))
        runner.check(f"{service}: Authorization with {label}",
                     lambda: expect(400, code)(send_raw(ctx.proxy, "GET", target, hdrs)))
runner.check("Authorization without Credential", lambda: expect(400, "IncompleteSignature")(
    send_raw(ctx.proxy, "GET", "/prod/neg/x",
             [("Authorization", f"AWS4-HMAC-SHA256 SignedHeaders=host, Signature={'0' * 64}"),
              ("X-Amz-Date", amz_date)])))

# --------------------------------------------------------------------------
# awscurl: what its command line can express
# --------------------------------------------------------------------------
runner.begin("awscurl")


def awscurl(key, service, url_path, *, region=REGION, token=None, clock=None, method="GET", data=None):
    argv = ["-X", method, "--service", service, "--region", region]
    if data is not None:
        argv += ["-H", "Content-Type: application/json", "-d", data]
    argv.append(ctx.proxy + url_path)
    return common.run_awscurl(argv, key.access_key_id, key.secret_access_key,
                              session_token=token, clock_offset_seconds=clock).resp


for service, path in (("s3", "/interop-bucket/neg/awscurl.txt"), ("execute-api", "/prod/neg/awscurl")):
    s3svc = service == "s3"
    for label, thunk, checker in (
        ("control", lambda: awscurl(ADMIN, service, path), expect_ok(ADMIN)),
        ("wrong secret", lambda: awscurl(WRONG_SECRET, service, path), expect(403, "SignatureDoesNotMatch")),
        ("wrong region", lambda: awscurl(ADMIN, service, path, region=WRONG_REGION),
         expect(400, "AuthorizationHeaderMalformed") if s3svc
         else expect(403, "SignatureDoesNotMatch", message_contains="Credential should be scoped to a valid region")),
        ("unknown key", lambda: awscurl(UNKNOWN, service, path),
         expect(403, "InvalidAccessKeyId") if s3svc else expect(403, "InvalidClientTokenId")),
        ("inactive key", lambda: awscurl(INACTIVE, service, path),
         expect(403, "InvalidAccessKeyId") if s3svc else expect(403, "InvalidClientTokenId")),
        ("session token", lambda: awscurl(ADMIN, service, path, token=SESSION_TOKEN),
         expect(400, "InvalidToken") if s3svc else expect(403, "InvalidClientTokenId")),
        ("clock -20 min", lambda: awscurl(ADMIN, service, path, clock=-SKEW),
         expect(403, "RequestTimeTooSkewed") if s3svc
         else expect(403, "SignatureDoesNotMatch", message_prefix="Signature expired:")),
        ("clock +20 min", lambda: awscurl(ADMIN, service, path, clock=SKEW),
         expect(403, "RequestTimeTooSkewed") if s3svc
         else expect(403, "SignatureDoesNotMatch", message_prefix="Signature not yet current:")),
    ):
        runner.check(f"{service}: {label}", lambda: checker(thunk()))

runner.check("s3: reader PUT (AccessDenied)", lambda: denied(
    "s3:PutObject", "arn:aws:s3:::interop-bucket/neg/awscurl \u00e9t\u00e9.txt")(
        awscurl(READER, "s3", "/interop-bucket/neg/awscurl \u00e9t\u00e9.txt", method="PUT", data="x")))
runner.check("execute-api: reader DELETE (AccessDenied)", lambda: denied(
    "execute-api:Invoke", f"{common.API_ARN_PREFIX}/DELETE/prod/neg/awscurl")(
        awscurl(READER, "execute-api", "/prod/neg/awscurl", method="DELETE")))
runner.check("s3: reader PUT, wrong secret (signature error first)", lambda: expect(403, "SignatureDoesNotMatch")(
    awscurl(WRONG_READER, "s3", "/interop-bucket/neg/awscurl.txt", method="PUT", data="x")))
runner.check("s3: GET ?a=1 (unmappable)", lambda: unmappable(
    'unsupported s3 request: query parameter "a" with GetObject')(
        awscurl(ADMIN, "s3", "/interop-bucket/neg/awscurl.txt?a=1")))

# --------------------------------------------------------------------------
# Spoofed identity headers never reach the upstream
# --------------------------------------------------------------------------
runner.begin("spoofed x-tollgate-*")
SPOOF = [
    ("x-tollgate-principal-arn", f"arn:aws:iam::{ACCOUNT_ID}:user/evil"),
    ("X-Tollgate-Anything", "spoofed"),
    ("X-TOLLGATE-ACCOUNT-ID", "999999999999"),
    ("x-tollgate-access-key-id", "AKIAEVIL000000000000"),
    ("X-Tollgate-Request-Id", "not-a-real-request-id"),
    ("x-tollgate-principal-arn", f"arn:aws:iam::{ACCOUNT_ID}:root"),
]
py = FAMILIES[0]


def spoof_check(key, signed_spoof: bool, service: str):
    path = "/interop-bucket/spoof.txt" if service == "s3" else "/prod/spoof"
    extra = SPOOF if signed_spoof else []
    s = py.sign(key, service, "GET", path, headers=extra)
    headers = s.headers if signed_spoof else s.headers + SPOOF
    return check_echo(s.send(headers=headers), method="GET", path=path, query="", body_length=0,
                      user=key.user, access_key_id=key.access_key_id)


for service in ("s3", "execute-api"):
    for key in (ADMIN, READER):
        runner.check(f"{service} {key.user}: spoof headers added after signing",
                     spoof_check, key, False, service)
        runner.check(f"{service} {key.user}: spoof headers signed by the client",
                     spoof_check, key, True, service)


def spoof_aws4auth():
    r = requests.get(ctx.proxy + "/prod/spoof", headers=dict(SPOOF[:3]),
                     auth=AWS4Auth(ADMIN.access_key_id, ADMIN.secret_access_key, REGION, "execute-api"))
    return check_echo(common.Resp(r.status_code, list(r.headers.items()), r.content), method="GET",
                      path="/prod/spoof", query="", body_length=0, user="admin",
                      access_key_id=ADMIN.access_key_id)


runner.check("aws4auth: spoof headers", spoof_aws4auth)


def spoof_unauthenticated():
    resp = send_raw(ctx.proxy, "GET", "/prod/spoof", SPOOF)
    check_error(resp, 403, "MissingAuthenticationToken")
    if b"evil" in resp.body:
        raise CheckFailed(f"spoofed principal echoed in an error: {resp.brief()}")


runner.check("no auth + spoof headers still denied", spoof_unauthenticated)

runner.finish(min_passed=100)
