"""Checks a directory written by Tollgate's file sink with the AWS CLI's own log validator.

Runs `aws cloudtrail validate-logs`' command class (awscli.customizations.cloudtrail.validation,
awscli 1.46.3) offline: its S3 and CloudTrail clients are replaced by stand-ins that read the
directory (digest signatures from the `.sig` side files, as S3 metadata) and return the given
public key from ListPublicKeys, with a fingerprint computed here (hex MD5 of the DER PKCS #1
key, or of the raw Ed25519 key). Everything else is the CLI's code: digest listing and name
parsing, chain traversal, `Sha256RSADigestValidator`, log file download and hashing. For an
Ed25519 key the validator is the CLI's with the RSA check replaced by `cryptography`'s Ed25519
(the CLI itself only knows RSA).

Then it tampers with copies of the directory (a log file changed, a log file deleted, a digest
changed) and expects the validator to report each. It also checks trailscraper's file name rule
with Python's `re` on every file.

    target/interop-venv/bin/python tests/interop/cloudtrail_digests.py DIR \
        --public-key tests/fixtures/audit/rsa2048.pub.pem \
        --account 123456789012 --region us-east-1 --trail main --home-region us-east-1 \
        --bucket tollgate-audit --start 2025-01-15T00:00:00Z --end 2025-01-16T00:00:00Z

Prints `cloudtrail_digests: N passed, N failed` and exits 1 on any failure. Needs no network.
"""

import argparse
import base64
import binascii
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)
from dateutil import parser as dateparser
from dateutil import tz

from awscli.customizations.cloudtrail import validation
from awscli.customizations.cloudtrail.validation import CloudTrailValidateLogs


class Ed25519DigestValidator(validation.Sha256RSADigestValidator):
    """The CLI's validator with Ed25519 in place of RSA: same signed string, same errors."""

    def validate(self, bucket, key, public_key, digest_data, inflated_digest):
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
        to_sign = self._create_string_to_sign(digest_data, inflated_digest)
        try:
            public.verify(binascii.unhexlify(digest_data["_signature"]), to_sign)
        except InvalidSignature:
            raise validation.DigestSignatureError(bucket, key)


def public_key_bytes(path):
    """What ListPublicKeys would return for the key: DER PKCS #1 for RSA, raw for Ed25519."""
    with open(path, "rb") as f:
        data = f.read()
    key = load_pem_public_key(data) if b"-----BEGIN" in data else load_der_public_key(data)
    if isinstance(key, Ed25519PublicKey):
        # DigestTraverser builds its validator by this name: Ed25519 digests get ours.
        validation.Sha256RSADigestValidator = Ed25519DigestValidator
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw), "Ed25519"
    return key.public_bytes(Encoding.DER, PublicFormat.PKCS1), "SHA256withRSA"

TRAILSCRAPER = re.compile(r"[0-9]+_CloudTrail_[a-z0-9-]+_[0-9TZ]+_[a-zA-Z0-9]+\.json\.gz")


class Objects:
    """The directory as a bucket: keys are paths relative to it."""

    def __init__(self, root, bucket):
        self.root = root
        self.bucket = bucket

    def keys(self):
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != ".partial"]
            for name in filenames:
                if name.endswith(".sig") or ".tmp-" in name:
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                out.append(rel.replace(os.sep, "/"))
        return sorted(out)


class FakeS3:
    def __init__(self, objects):
        self.objects = objects

    def get_object(self, Bucket, Key):
        if Bucket != self.objects.bucket:
            raise ClientError({"Error": {"Code": "NoSuchBucket", "Message": Bucket}}, "GetObject")
        path = os.path.join(self.objects.root, *Key.split("/"))
        if not os.path.isfile(path):
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")
        with open(path, "rb") as f:
            body = f.read()
        metadata = {}
        sig = path + ".sig"
        if os.path.isfile(sig):
            with open(sig) as f:
                metadata["signature"] = f.read().strip()
            metadata["signature-algorithm"] = "see digestSignatureAlgorithm"
        return {"Body": io.BytesIO(body), "Metadata": metadata}

    def get_paginator(self, name):
        assert name == "list_objects", name
        return FakePaginator(self.objects)


class FakePaginator:
    def __init__(self, objects):
        self.objects = objects

    def paginate(self, Bucket, Marker, Prefix):
        keys = [k for k in self.objects.keys() if k.startswith(Prefix) and k > Marker]
        return FakePages(keys)


class FakePages:
    def __init__(self, keys):
        self.keys = keys

    def search(self, expression):
        assert expression == "Contents[*].Key", expression
        return iter(self.keys)


class FakeClientProvider:
    def __init__(self, objects):
        self.client = FakeS3(objects)

    def get_client(self, bucket_name):
        return self.client


class FakeCloudTrail:
    def __init__(self, der):
        self.der = der

    def list_public_keys(self, StartTime, EndTime):
        return {
            "PublicKeyList": [
                {
                    "Value": base64.b64encode(self.der),
                    "ValidityStartTime": StartTime,
                    "ValidityEndTime": EndTime,
                    "Fingerprint": hashlib.md5(self.der).hexdigest(),
                }
            ]
        }


def validate(root, args, der):
    """Runs the CLI's validate-logs logic; returns its counters and its output."""
    cmd = CloudTrailValidateLogs(None)
    cmd.trail_arn = f"arn:aws:cloudtrail:{args.home_region}:{args.account}:trail/{args.trail}"
    cmd.is_verbose = True
    cmd.s3_bucket = args.bucket
    cmd.s3_prefix = args.prefix
    cmd.account_id = args.account
    cmd.start_time = dateparser.parse(args.start).replace(tzinfo=tz.tzutc())
    cmd.end_time = dateparser.parse(args.end).replace(tzinfo=tz.tzutc())
    cmd._source_region = args.region
    cmd.s3_client_provider = FakeClientProvider(Objects(root, args.bucket))
    cmd.cloudtrail_client = FakeCloudTrail(der)
    cmd.organization_client = None
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        cmd._call()
    counts = {
        "valid_digests": cmd._valid_digests,
        "invalid_digests": cmd._invalid_digests,
        "valid_logs": cmd._valid_logs,
        "invalid_logs": cmd._invalid_logs,
    }
    return counts, out.getvalue() + err.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--public-key", required=True)
    ap.add_argument("--account", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--trail", required=True)
    ap.add_argument("--home-region", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", default=None)
    ap.add_argument("--start", required=True)
    ap.add_argument("--end", required=True)
    args = ap.parse_args()

    der, algorithm = public_key_bytes(args.public_key)
    print(f"public key: {algorithm}, fingerprint {hashlib.md5(der).hexdigest()}")

    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name} {detail}")

    objects = Objects(args.dir, args.bucket)
    keys = objects.keys()
    base = (args.prefix + "/" if args.prefix else "") + f"AWSLogs/{args.account}/"
    logs = [k for k in keys if k.startswith(base + f"CloudTrail/{args.region}/")]
    digests = [k for k in keys if k.startswith(base + f"CloudTrail-Digest/{args.region}/")]
    check("the directory has log files and digests", logs and digests, f"{keys}")
    for k in logs:
        name = k.rsplit("/", 1)[-1]
        check(f"trailscraper accepts {name}", TRAILSCRAPER.match(name) is not None)
        with open(os.path.join(args.dir, *k.split("/")), "rb") as f:
            doc = json.loads(gzip.decompress(f.read()))
        check(f"{name} is a Records document", isinstance(doc.get("Records"), list) and doc["Records"])
    for k in digests:
        name = k.rsplit("/", 1)[-1]
        check(f"trailscraper skips {name}", TRAILSCRAPER.match(name) is None)

    listed = 0
    for k in digests:
        with open(os.path.join(args.dir, *k.split("/")), "rb") as f:
            listed += len(json.loads(gzip.decompress(f.read()))["logFiles"])

    counts, output = validate(args.dir, args, der)
    expected = {
        "valid_digests": len(digests),
        "invalid_digests": 0,
        "valid_logs": listed,
        "invalid_logs": 0,
    }
    check("validate-logs accepts every digest and log file", counts == expected,
          f"{counts} != {expected}\n{output}")

    def tampered(name, change, expect):
        with tempfile.TemporaryDirectory() as tmp:
            root = os.path.join(tmp, "copy")
            shutil.copytree(args.dir, root)
            change(root)
            counts, output = validate(root, args, der)
            ok = all(counts[k] == v for k, v in expect.items())
            check(f"validate-logs reports {name}", ok, f"{counts}, expected {expect}\n{output}")

    def path(root, key):
        return os.path.join(root, *key.split("/"))

    def alter_log(root):
        p = path(root, logs[0])
        with open(p, "rb") as f:
            doc = gzip.decompress(f.read())
        with open(p, "wb") as f:
            f.write(gzip.compress(doc.replace(b'"eventID":"', b'"eventID":"x', 1)))

    def delete_log(root):
        os.remove(path(root, logs[0]))

    def alter_digest(root):
        p = path(root, digests[-1])
        with open(p, "rb") as f:
            doc = json.loads(gzip.decompress(f.read()))
        doc["newestEventTime"] = "2000-01-01T00:00:00Z"
        with open(p, "wb") as f:
            f.write(gzip.compress(json.dumps(doc).encode()))

    tampered("an altered log file", alter_log, {"invalid_logs": 1, "invalid_digests": 0})
    tampered("a deleted log file", delete_log, {"invalid_logs": 1, "invalid_digests": 0})
    tampered("an altered digest", alter_digest, {"invalid_digests": 1})

    print(f"cloudtrail_digests: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
