"""Interop over TLS: boto3 and the awscurl CLI reach the upstream through Tollgate's HTTPS
listener, trusting a test CA (boto3 `verify=CA`; awscurl through REQUESTS_CA_BUNDLE); and
requests signed by botocore's `SigV4Auth` go over HTTP/2 (ALPN h2) with httpx.

The Rust harness (tests/it/tls.rs) starts Tollgate with `[tls]` and a policy that allows only
`aws:SecureTransport` true, so a 200 also proves Tollgate saw the TLS connection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import boto3
from botocore.config import Config

import common

p = argparse.ArgumentParser()
p.add_argument("--url", required=True, help="https://127.0.0.1:PORT")
p.add_argument("--ca", required=True, help="PEM of the CA that signed Tollgate's certificate")
p.add_argument("--access-key", required=True)
p.add_argument("--secret", required=True)
p.add_argument("--principal", required=True, help="the ARN the upstream must see")
# Passed by the harness to every script; not used here.
p.add_argument("--proxy")
p.add_argument("--admin")
args = p.parse_args()

failures = 0
passed = 0


def check(name: str, ok: bool, detail: str = "") -> None:
    global failures, passed
    if ok:
        passed += 1
    else:
        failures += 1
        print(f"FAIL {name}: {detail}", flush=True)


s3 = boto3.client(
    "s3",
    endpoint_url=args.url,
    region_name="us-east-1",
    aws_access_key_id=args.access_key,
    aws_secret_access_key=args.secret,
    verify=args.ca,
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
# PutObject: boto3 streams it aws-chunked with STREAMING-UNSIGNED-PAYLOAD-TRAILER over HTTPS.
# The echo's JSON answer is not S3's XML, which botocore turns into a 500 for PutObject (and
# retries), so what the upstream saw is read from the raw answer instead.
seen_put = {}
s3.meta.events.register(
    "after-call.s3.PutObject",
    lambda http_response, **kw: seen_put.update(status=http_response.status_code, body=http_response.content),
)
try:
    s3.put_object(Bucket="tls-bucket", Key="hello.txt", Body=b"over TLS")
except Exception:  # noqa: BLE001 - the echo's JSON is not S3's answer; checked below
    pass
put_echo = json.loads(seen_put.get("body") or b"{}")
check(
    "boto3 PutObject: the upstream gets the decoded body and the principal",
    put_echo.get("body_length") == len(b"over TLS")
    and put_echo.get("headers", {}).get("x-tollgate-principal-arn") == [args.principal],
    json.dumps(put_echo)[:500],
)
got = s3.get_object(Bucket="tls-bucket", Key="hello.txt")
echo = json.loads(got["Body"].read())
check(
    "boto3 GetObject reaches the upstream with the principal",
    echo["headers"].get("x-tollgate-principal-arn") == [args.principal],
    json.dumps(echo)[:500],
)

env_ca = os.environ.get("REQUESTS_CA_BUNDLE")
check("REQUESTS_CA_BUNDLE is the test CA", env_ca == args.ca, str(env_ca))
r = common.run_awscurl(
    ["-X", "GET", "--service", "execute-api", "--region", "us-east-1", f"{args.url}/orders/1"],
    args.access_key,
    args.secret,
)
check("awscurl GET over TLS", r.resp.status == 200, f"{r.resp.status} {r.stderr[-500:]}")
try:
    body = json.loads(r.resp.body)
    seen = body["headers"].get("x-tollgate-principal-arn")
except Exception as e:  # noqa: BLE001 - reported as a failure
    seen = f"unparsable body ({e}): {r.resp.body[:300]!r}"
check("awscurl reaches the upstream with the principal", seen == [args.principal], str(seen))

# HTTP/2 over TLS: botocore signs, httpx (with h2) negotiates h2 by ALPN and sends the
# signed headers; the host travels as :authority.
import httpx  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402


def signed_h2(method: str, url: str, body: bytes = b"") -> dict[str, str]:
    req = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(args.access_key, args.secret), "execute-api", "us-east-1").add_auth(req)
    return dict(req.headers.items())


with httpx.Client(http2=True, verify=args.ca) as h2:
    for i in range(20):
        method, body = ("POST", f"order {i}".encode()) if i % 2 else ("GET", b"")
        url = f"{args.url}/orders/{i}?page={i}"
        resp = h2.request(method, url, headers=signed_h2(method, url, body), content=body)
        check(f"httpx h2 {method} {i}: HTTP/2", resp.http_version == "HTTP/2", resp.http_version)
        check(f"httpx h2 {method} {i}: 200", resp.status_code == 200, f"{resp.status_code} {resp.text[:300]}")
        if resp.status_code == 200:
            echo = resp.json()
            check(
                f"httpx h2 {method} {i}: the upstream gets the principal and the body",
                echo["headers"].get("x-tollgate-principal-arn") == [args.principal]
                and echo.get("body_length") == len(body),
                json.dumps(echo)[:500],
            )
    # A tampered signature over HTTP/2: SignatureDoesNotMatch, as over HTTP/1.1.
    url = f"{args.url}/orders/1"
    headers = signed_h2("GET", url)
    sig = headers["Authorization"]
    headers["Authorization"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    resp = h2.get(url, headers=headers)
    check(
        "httpx h2 tampered: 403 SignatureDoesNotMatch",
        resp.http_version == "HTTP/2" and resp.status_code == 403 and "SignatureDoesNotMatch" in resp.text,
        f"{resp.http_version} {resp.status_code} {resp.text[:300]}",
    )

print(f"tls: {passed} passed, {failures} failed", flush=True)
sys.exit(1 if failures else 0)
