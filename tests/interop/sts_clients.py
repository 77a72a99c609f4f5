"""Interop: Tollgate's STS with real clients — boto3's STS client and the AWS CLI
(`aws sts ... --endpoint-url`) — and the temporary credentials it issues, used by
botocore's signer and awscurl through the proxy.

Checks what a user observes: exact ARNs and user ids from GetCallerIdentity,
the credentials' shapes, the decisions the role, session policy and user
policies give, and AWS's error codes for refusals (trust policy, session name,
duration, role chaining, tampered and truncated tokens, foreign key ids).

The demo configuration provides: admin (may assume `deployer`, whose policy
allows API calls under /deployments/), reader (read-only), the OIDC provider
https://oidc.tollgate.example (audience `tollgate-demo`) trusted by the
`web-app` role (read-only), with the test keys of tests/fixtures/oidc/.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

import common
from common import ACCOUNT_ID, REGION, ensure

ctx = common.parse_args("sts")
runner = common.Runner(ctx, "sts")
ADMIN = ctx.key("admin")
READER = ctx.key("reader")
DEPLOYER = f"arn:aws:iam::{ACCOUNT_ID}:role/deployer"
WEB_APP = f"arn:aws:iam::{ACCOUNT_ID}:role/web-app"
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "oidc")
ISSUER = "https://oidc.tollgate.example"
AUDIENCE = "tollgate-demo"
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


def sts_client(access_key: str, secret: str, token: str | None = None):
    return boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=ctx.proxy,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=NO_RETRY,
    )


def anonymous_sts():
    return boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=ctx.proxy,
        config=Config(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1}),
    )


def error_of(fn, *args, **kwargs) -> tuple[str, str, int]:
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        err = e.response.get("Error", {})
        return err.get("Code", ""), err.get("Message", ""), e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise common.CheckFailed("the call succeeded; an error was expected")


def api_call(creds: dict, method: str, path: str, token_override: str | None = None) -> common.Resp:
    """An execute-api request signed by botocore's SigV4Auth with the temporary credentials."""
    token = creds["SessionToken"] if token_override is None else token_override
    c = botocore.credentials.Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], token)
    url = ctx.proxy + path
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=b"")
    botocore.auth.SigV4Auth(c, "execute-api", REGION).add_auth(req)
    headers = [(k, v) for k, v in req.headers.items()]
    return common.send_raw(ctx.proxy, method, path, headers, b"" if method != "GET" else None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict, key_file: str = "rsa-private.pem", kid: str = "rsa-1") -> str:
    with open(os.path.join(FIXTURES, key_file), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(sig)}"


def web_token(**extra) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 600}
    claims.update(extra)
    return jwt(claims)


def aws_cli(args: list[str], env_creds: dict) -> tuple[int, dict | None, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=env_creds["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=env_creds["SecretAccessKey"],
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_MAX_ATTEMPTS="1",
    )
    if env_creds.get("SessionToken"):
        env["AWS_SESSION_TOKEN"] = env_creds["SessionToken"]
    exe = os.path.join(os.path.dirname(sys.executable), "aws")
    p = subprocess.run(
        [exe, *args, "--endpoint-url", ctx.proxy, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = None
    if p.returncode == 0 and p.stdout.strip():
        out = json.loads(p.stdout)
    return p.returncode, out, p.stderr


def long_term(key) -> dict:
    return {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}


def check_credentials(creds: dict) -> None:
    ensure(creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20, f"access key id {creds['AccessKeyId']}")
    ensure(len(creds["SecretAccessKey"]) == 40, "secret is 40 characters")
    ensure(creds["SessionToken"].startswith("v1."), "sealed token")


# ---------------------------------------------------------------------------
runner.begin("get-caller-identity")
admin_sts = sts_client(ADMIN.access_key_id, ADMIN.secret_access_key)


def gci_user():
    r = admin_sts.get_caller_identity()
    ensure(r["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/admin", r["Arn"])
    ensure(r["Account"] == ACCOUNT_ID, r["Account"])
    ensure(r["UserId"].startswith("AIDA"), r["UserId"])
    return r["UserId"]


admin_user_id = runner.check("boto3 user", gci_user)


def cli_gci_user():
    rc, out, err = aws_cli(["sts", "get-caller-identity"], long_term(READER))
    ensure(rc == 0, f"aws exited {rc}: {err}")
    ensure(out["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/reader", out["Arn"])
    ensure(out["UserId"].startswith("AIDA"), out["UserId"])


runner.check("aws cli user", cli_gci_user)

# ---------------------------------------------------------------------------
runner.begin("assume-role")


def assume_plain():
    r = admin_sts.assume_role(RoleArn=DEPLOYER, RoleSessionName="sess1", DurationSeconds=900)
    creds = r["Credentials"]
    check_credentials(creds)
    ensure(r["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deployer/sess1", str(r["AssumedRoleUser"]))
    ensure(r["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA"), str(r["AssumedRoleUser"]))
    ensure(r["AssumedRoleUser"]["AssumedRoleId"].endswith(":sess1"), str(r["AssumedRoleUser"]))
    left = (r["Credentials"]["Expiration"].timestamp() - time.time())
    ensure(850 < left <= 905, f"expires in {left:.0f} s")
    ensure("PackedPolicySize" not in r, "no PackedPolicySize without policies or tags")
    return r


plain = runner.check("plain", assume_plain)
role_creds = plain["Credentials"] if plain else None


def session_identity():
    s = sts_client(role_creds["AccessKeyId"], role_creds["SecretAccessKey"], role_creds["SessionToken"])
    r = s.get_caller_identity()
    ensure(r["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deployer/sess1", r["Arn"])
    ensure(r["UserId"] == plain["AssumedRoleUser"]["AssumedRoleId"], r["UserId"])
    ensure(r["Account"] == ACCOUNT_ID, r["Account"])


runner.check("get-caller-identity of the session", session_identity)


def role_decisions():
    ok = api_call(role_creds, "POST", "/deployments/42")
    ensure(ok.status == 200, f"POST /deployments/42: {ok.brief()}")
    ensure(ok.header("x-tollgate-principal-arn") is None, "identity headers are for the upstream, not echoed as response headers")
    denied = api_call(role_creds, "GET", "/widgets/1")
    ensure(denied.status == 403, f"GET /widgets/1: {denied.brief()}")
    code, msg = common.aws_error(denied)
    ensure(code == "AccessDenied", f"{code} {msg}")
    ensure(f"assumed-role/deployer/sess1 is not authorized to perform: execute-api:Invoke" in (msg or ""), msg or "")


runner.check("role policy decides (boto signer)", role_decisions)


def upstream_identity():
    r = api_call(role_creds, "POST", "/deployments/7")
    echo = json.loads(r.body)
    raw = echo.get("headers", {})
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in pairs}
    ensure(headers.get("x-tollgate-principal-arn") == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deployer/sess1", str(headers))
    ensure(headers.get("x-tollgate-access-key-id") == role_creds["AccessKeyId"], str(headers))


runner.check("upstream sees the session", upstream_identity)


def awscurl_session():
    cmd = common.awscurl_cmd() + [
        "--service", "execute-api", "--region", REGION,
        "--access_key", role_creds["AccessKeyId"], "--secret_key", role_creds["SecretAccessKey"],
        "--session_token", role_creds["SessionToken"],
        "-X", "POST", "-d", "", ctx.proxy + "/deployments/awscurl",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, "AWS_CONFIG_FILE": "/dev/null"})
    ensure(p.returncode == 0, f"awscurl exited {p.returncode}: {p.stdout[-300:]} {p.stderr[-300:]}")
    cmd[cmd.index("POST")] = "GET"
    cmd[-1] = ctx.proxy + "/widgets/1"
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    ensure("<Code>AccessDenied</Code>" in p.stdout + p.stderr, f"awscurl GET was not refused: {p.stdout[-300:]} {p.stderr[-300:]}")


runner.check("awscurl with the session", awscurl_session)


def with_session_policy():
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/*/GET/*"}],
    }
    r = admin_sts.assume_role(RoleArn=DEPLOYER, RoleSessionName="scoped", Policy=json.dumps(policy))
    ensure(isinstance(r.get("PackedPolicySize"), int) and 0 < r["PackedPolicySize"] <= 100, str(r.get("PackedPolicySize")))
    c = r["Credentials"]
    # Intersection: the role allows /deployments/*, the session policy only GET.
    ensure(api_call(c, "GET", "/deployments/1").status == 200, "GET /deployments/1 allowed")
    ensure(api_call(c, "POST", "/deployments/1").status == 403, "POST /deployments/1 denied by the session policy")
    ensure(api_call(c, "GET", "/widgets/1").status == 403, "GET /widgets/1 denied by the role")


runner.check("session policy intersects", with_session_policy)


def with_tags_source_external():
    r = admin_sts.assume_role(
        RoleArn=DEPLOYER,
        RoleSessionName="tagged",
        ExternalId="ext-123",
        SourceIdentity="alice",
        Tags=[{"Key": "team", "Value": "blue"}, {"Key": "env", "Value": "dev"}],
        TransitiveTagKeys=["team"],
    )
    ensure(r.get("SourceIdentity") == "alice", str(r.get("SourceIdentity")))
    ensure(isinstance(r.get("PackedPolicySize"), int), "PackedPolicySize with tags")
    c = r["Credentials"]
    s = sts_client(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    # Chained: the source identity persists; 1 hour cap.
    chained = s.assume_role(RoleArn=DEPLOYER, RoleSessionName="chained", DurationSeconds=3600)
    ensure(chained.get("SourceIdentity") == "alice", f"chained source identity {chained.get('SourceIdentity')}")
    code, msg, status = error_of(s.assume_role, RoleArn=DEPLOYER, RoleSessionName="long", DurationSeconds=3601)
    ensure((code, status) == ("ValidationError", 400), f"{code} {status}")
    ensure("1 hour session limit for roles assumed by role chaining" in msg, msg)
    code, msg, status = error_of(s.assume_role, RoleArn=DEPLOYER, RoleSessionName="x2", Tags=[{"Key": "Team", "Value": "red"}])
    ensure((code, status) == ("InvalidParameterValue", 400), f"{code} {status}: {msg}")


runner.check("tags, source identity, external id, chaining", with_tags_source_external)


def cli_assume_role():
    rc, out, err = aws_cli(
        ["sts", "assume-role", "--role-arn", DEPLOYER, "--role-session-name", "cli1", "--source-identity", "bob",
         "--tags", "Key=team,Value=green"],
        long_term(ADMIN),
    )
    ensure(rc == 0, f"aws exited {rc}: {err}")
    ensure(out["AssumedRoleUser"]["Arn"].endswith("assumed-role/deployer/cli1"), str(out["AssumedRoleUser"]))
    check_credentials(out["Credentials"])
    rc, who, err = aws_cli(["sts", "get-caller-identity"], out["Credentials"])
    ensure(rc == 0, f"aws exited {rc}: {err}")
    ensure(who["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deployer/cli1", who["Arn"])


runner.check("aws cli assume-role", cli_assume_role)

# ---------------------------------------------------------------------------
runner.begin("get-session-token")


def session_token():
    reader = sts_client(READER.access_key_id, READER.secret_access_key)
    r = reader.get_session_token(DurationSeconds=900)
    c = r["Credentials"]
    check_credentials(c)
    s = sts_client(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    who = s.get_caller_identity()
    ensure(who["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/reader", who["Arn"])
    ensure(api_call(c, "GET", "/widgets/1").status == 200, "reader session GET allowed")
    ensure(api_call(c, "POST", "/widgets/1").status == 403, "reader session POST denied")
    code, _, status = error_of(s.get_session_token)
    ensure((code, status) == ("AccessDenied", 403), f"GetSessionToken with session credentials: {code} {status}")
    # GetSessionToken credentials count as temporary: chaining is capped at 1 hour.
    code, msg, status = error_of(s.assume_role, RoleArn=DEPLOYER, RoleSessionName="xx", DurationSeconds=7200)
    ensure((code, status) == ("ValidationError", 400), f"{code} {status}")
    ensure("role chaining" in msg, msg)


runner.check("boto3 get-session-token", session_token)


def cli_session_token():
    rc, out, err = aws_cli(["sts", "get-session-token", "--duration-seconds", "900"], long_term(ADMIN))
    ensure(rc == 0, f"aws exited {rc}: {err}")
    check_credentials(out["Credentials"])
    rc, who, err = aws_cli(["sts", "get-caller-identity"], out["Credentials"])
    ensure(rc == 0 and who["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/admin", f"{rc} {who} {err}")


runner.check("aws cli get-session-token", cli_session_token)

# ---------------------------------------------------------------------------
runner.begin("assume-role-with-web-identity")


def web_identity():
    r = anonymous_sts().assume_role_with_web_identity(
        RoleArn=WEB_APP, RoleSessionName="app1", WebIdentityToken=web_token()
    )
    ensure(r["SubjectFromWebIdentityToken"] == "user-42", r["SubjectFromWebIdentityToken"])
    ensure(r["Audience"] == AUDIENCE, r["Audience"])
    ensure(r["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/web-app/app1", str(r["AssumedRoleUser"]))
    c = r["Credentials"]
    check_credentials(c)
    ensure(api_call(c, "GET", "/widgets/1").status == 200, "web-app GET allowed")
    ensure(api_call(c, "DELETE", "/widgets/1").status == 403, "web-app DELETE denied")
    s = sts_client(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    ensure(s.get_caller_identity()["Arn"].endswith("assumed-role/web-app/app1"), "session identity")


runner.check("boto3", web_identity)


def web_identity_refusals():
    sts = anonymous_sts()
    code, _, status = error_of(sts.assume_role_with_web_identity, RoleArn=WEB_APP, RoleSessionName="aa", WebIdentityToken=web_token(aud="other"))
    ensure((code, status) == ("InvalidIdentityToken", 400), f"wrong audience: {code} {status}")
    code, _, status = error_of(sts.assume_role_with_web_identity, RoleArn=WEB_APP, RoleSessionName="aa", WebIdentityToken=web_token(exp=int(time.time()) - 10))
    ensure((code, status) == ("ExpiredTokenException", 400), f"expired: {code} {status}")
    forged = jwt({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 600}, "rsa-other-private.pem", "rsa-1")
    code, _, status = error_of(sts.assume_role_with_web_identity, RoleArn=WEB_APP, RoleSessionName="aa", WebIdentityToken=forged)
    ensure((code, status) == ("InvalidIdentityToken", 400), f"forged: {code} {status}")
    code, _, status = error_of(sts.assume_role_with_web_identity, RoleArn=DEPLOYER, RoleSessionName="aa", WebIdentityToken=web_token())
    ensure((code, status) == ("AccessDenied", 403), f"untrusted role: {code} {status}")


runner.check("refusals", web_identity_refusals)


def cli_web_identity():
    rc, out, err = aws_cli(
        ["sts", "assume-role-with-web-identity", "--role-arn", WEB_APP, "--role-session-name", "cli-web",
         "--web-identity-token", web_token()],
        {"AccessKeyId": "", "SecretAccessKey": ""},
    )
    ensure(rc == 0, f"aws exited {rc}: {err}")
    ensure(out["AssumedRoleUser"]["Arn"].endswith("assumed-role/web-app/cli-web"), str(out))


runner.check("aws cli", cli_web_identity)

# ---------------------------------------------------------------------------
runner.begin("refusals")


def trust_denied():
    reader = sts_client(READER.access_key_id, READER.secret_access_key)
    code, msg, status = error_of(reader.assume_role, RoleArn=DEPLOYER, RoleSessionName="nope")
    ensure((code, status) == ("AccessDenied", 403), f"{code} {status}")
    ensure(f"user/reader is not authorized to perform: sts:AssumeRole on resource: {DEPLOYER}" in msg, msg)


runner.check("trust policy", trust_denied)


def bad_session_name():
    code, msg, status = error_of(admin_sts.assume_role, RoleArn=DEPLOYER, RoleSessionName="a:b")
    ensure((code, status) == ("ValidationError", 400), f"{code} {status}")
    ensure("roleSessionName" in msg, msg)


runner.check("session name", bad_session_name)


def bad_duration():
    code, msg, status = error_of(admin_sts.assume_role, RoleArn=DEPLOYER, RoleSessionName="long", DurationSeconds=43200)
    ensure((code, status) == ("ValidationError", 400), f"{code} {status}")
    ensure("MaxSessionDuration" in msg, msg)


runner.check("duration", bad_duration)


def tampered_tokens():
    token = role_creds["SessionToken"]
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    for name, bad in [("tampered", flipped), ("truncated", token[: len(token) // 2]), ("garbage", "not-a-token")]:
        r = api_call(role_creds, "GET", "/deployments/1", token_override=bad)
        code, _ = common.aws_error(r)
        ensure((r.status, code) == (403, "InvalidClientTokenId"), f"{name}: {r.brief()}")
    # The right token with another access key id.
    other = dict(role_creds, AccessKeyId="ASIAAAAAAAAAAAAAAAAA")
    r = api_call(other, "GET", "/deployments/1")
    code, _ = common.aws_error(r)
    ensure((r.status, code) == (403, "InvalidClientTokenId"), f"foreign key id: {r.brief()}")
    # A long-term key with a session token.
    r = api_call(long_term(ADMIN) | {"SessionToken": token}, "GET", "/widgets/1")
    code, _ = common.aws_error(r)
    ensure((r.status, code) == (403, "InvalidClientTokenId"), f"AKIA with token: {r.brief()}")


runner.check("tampered, truncated, foreign tokens", tampered_tokens)

runner.finish(min_passed=15)
