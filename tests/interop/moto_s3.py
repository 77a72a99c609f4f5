"""boto3's S3 client against Tollgate in front of moto's S3 server (a real S3 implementation).

admin may do everything; reader may only read and list; lister may only list under `home/`
(an `s3:prefix` condition); cleaner may delete anything but `secret/*` (an explicit Deny), which
DeleteObjects must honour for every key of its XML body, however the XML is written. Every call goes through Tollgate's SigV4 verification, the S3
operation table and the IAM policies; moto stores the objects.

Usage: moto_s3.py PROXY_URL  (credentials in TG_<USER>_KEY / TG_<USER>_SECRET)
"""
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

proxy = sys.argv[1]
passed = failed = 0


def client(user):
    return boto3.client(
        "s3",
        endpoint_url=proxy,
        region_name="us-east-1",
        aws_access_key_id=os.environ[f"TG_{user.upper()}_KEY"],
        aws_secret_access_key=os.environ[f"TG_{user.upper()}_SECRET"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


def check(name, fn, expect_error=None):
    global passed, failed
    try:
        fn()
        if expect_error:
            failed += 1
            print(f"FAIL {name}: expected {expect_error}, the call succeeded")
        else:
            passed += 1
    except ClientError as e:
        code = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if expect_error and code == expect_error and status == 403:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {name}: {status} {code}: {e.response['Error'].get('Message')}")
    except Exception as e:  # noqa: BLE001 - report anything else as a failure
        failed += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def ensure(cond, msg):
    if not cond:
        raise AssertionError(msg)


admin, reader, lister = client("admin"), client("reader"), client("lister")
cleaner = client("cleaner")
B = "tollgate-interop"

check("admin create_bucket", lambda: admin.create_bucket(Bucket=B))
check("admin put_object small", lambda: admin.put_object(Bucket=B, Key="docs/a.txt", Body=b"hello world"))
check("admin put_object unicode key", lambda: admin.put_object(Bucket=B, Key="docs/été 日本/b c+d=e.txt", Body=b"x" * 1000))
check("admin put_object home/", lambda: admin.put_object(Bucket=B, Key="home/alice/notes.txt", Body=b"notes"))


def multipart():
    part = b"p" * (5 * 1024 * 1024)
    up = admin.create_multipart_upload(Bucket=B, Key="big/object.bin")
    parts = []
    for n, body in enumerate([part, b"tail" * 1000], start=1):
        r = admin.upload_part(Bucket=B, Key="big/object.bin", PartNumber=n, UploadId=up["UploadId"], Body=body)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    admin.complete_multipart_upload(Bucket=B, Key="big/object.bin", UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    head = admin.head_object(Bucket=B, Key="big/object.bin")
    ensure(head["ContentLength"] == len(part) + 4000, f"multipart size {head['ContentLength']}")


check("admin multipart upload", multipart)


def get_back():
    body = admin.get_object(Bucket=B, Key="docs/a.txt")["Body"].read()
    ensure(body == b"hello world", f"got {body!r}")
    body = admin.get_object(Bucket=B, Key="docs/été 日本/b c+d=e.txt")["Body"].read()
    ensure(body == b"x" * 1000, "unicode key body")


check("admin get_object", get_back)


def listing(c):
    v2 = c.list_objects_v2(Bucket=B, Prefix="docs/")
    ensure(v2["KeyCount"] == 2, f"list v2 {v2.get('KeyCount')}")
    v1 = c.list_objects(Bucket=B, Delimiter="/")
    prefixes = sorted(p["Prefix"] for p in v1.get("CommonPrefixes", []))
    ensure(prefixes == ["big/", "docs/", "home/"], f"list v1 {prefixes}")


check("admin list v1/v2", lambda: listing(admin))
check("admin copy_object", lambda: admin.copy_object(Bucket=B, Key="docs/copy.txt", CopySource={"Bucket": B, "Key": "docs/a.txt"}))
check("admin put_object_tagging", lambda: admin.put_object_tagging(Bucket=B, Key="docs/a.txt", Tagging={"TagSet": [{"Key": "team", "Value": "blue"}]}))
check(
    "admin get_object_tagging",
    lambda: ensure(admin.get_object_tagging(Bucket=B, Key="docs/a.txt")["TagSet"] == [{"Key": "team", "Value": "blue"}], "tags"),
)

# reader: reads and lists, every write refused with 403 AccessDenied.
check("reader get_object", lambda: reader.get_object(Bucket=B, Key="docs/a.txt")["Body"].read())
check("reader list", lambda: reader.list_objects_v2(Bucket=B, Prefix="docs/"))
check("reader head_object", lambda: reader.head_object(Bucket=B, Key="big/object.bin"))
check("reader put_object", lambda: reader.put_object(Bucket=B, Key="docs/evil.txt", Body=b"x"), "AccessDenied")
check("reader delete_object", lambda: reader.delete_object(Bucket=B, Key="docs/a.txt"), "AccessDenied")
check("reader copy_object", lambda: reader.copy_object(Bucket=B, Key="docs/c2.txt", CopySource={"Bucket": B, "Key": "docs/a.txt"}), "AccessDenied")
check("reader put_object_tagging", lambda: reader.put_object_tagging(Bucket=B, Key="docs/a.txt", Tagging={"TagSet": []}), "AccessDenied")
check("reader create_multipart_upload", lambda: reader.create_multipart_upload(Bucket=B, Key="x"), "AccessDenied")
check("reader create_bucket", lambda: reader.create_bucket(Bucket="other-bucket"), "AccessDenied")

# lister: s3:ListBucket only when s3:prefix is under home/.
check("lister list home/", lambda: lister.list_objects_v2(Bucket=B, Prefix="home/"))
check("lister list docs/", lambda: lister.list_objects_v2(Bucket=B, Prefix="docs/"), "AccessDenied")
check("lister list everything", lambda: lister.list_objects_v2(Bucket=B), "AccessDenied")
check("lister get_object", lambda: lister.get_object(Bucket=B, Key="home/alice/notes.txt"), "AccessDenied")

# Deletes (admin), and the object is gone from moto.
check("admin delete_object", lambda: admin.delete_object(Bucket=B, Key="docs/copy.txt"))


def gone():
    keys = [o["Key"] for o in admin.list_objects_v2(Bucket=B, Prefix="docs/")["Contents"]]
    ensure("docs/copy.txt" not in keys, f"still listed: {keys}")


check("deleted object is gone", gone)
check("reader sees the admin's write", lambda: ensure(reader.get_object(Bucket=B, Key="home/alice/notes.txt")["Body"].read() == b"notes", "body"))

# DeleteObjects: every key of the body is authorized; one denied key refuses the whole call.
for k in ["public/a", "public/b", "public/c", "secret/x"]:
    check(f"admin put {k}", lambda k=k: admin.put_object(Bucket=B, Key=k, Body=b"x"))


def exists(key):
    return any(o["Key"] == key for o in admin.list_objects_v2(Bucket=B).get("Contents", []))


def delete_allowed():
    r = cleaner.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "public/a"}, {"Key": "public/b"}]})
    ensure(sorted(d["Key"] for d in r.get("Deleted", [])) == ["public/a", "public/b"], f"{r}")
    ensure(not exists("public/a") and not exists("public/b"), "still there")


check("cleaner delete_objects public/*", delete_allowed)
check(
    "cleaner delete_objects with a secret key",
    lambda: cleaner.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "public/c"}, {"Key": "secret/x"}]}),
    "AccessDenied",
)
check("nothing deleted by the refused call", lambda: ensure(exists("public/c") and exists("secret/x"), "deleted"))


def raw_delete(body):
    """DeleteObjects with a hand-written XML body, signed by botocore (S3SigV4Auth)."""
    import base64
    import hashlib

    import urllib3
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{proxy}/{B}?delete"
    headers = {
        "Content-Type": "application/xml",
        "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
    }
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    creds = Credentials(os.environ["TG_CLEANER_KEY"], os.environ["TG_CLEANER_SECRET"])
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    return urllib3.PoolManager().request("POST", url, body=body, headers=dict(req.headers.items()))


# The same Deny, with the secret key written so that a string search would read another key:
# behind a comment, in a CDATA section, as character references. Each is refused, and moto
# still has the object.
for name, body in [
    ("comment", b"<Delete><Object><!-- <Key>public/c</Key> --><Key>secret/x</Key></Object></Delete>"),
    ("CDATA", b"<Delete><Object><Key><![CDATA[secret/x]]></Key></Object></Delete>"),
    ("character references", b"<Delete><Object><Key>&#115;ecret/x</Key></Object></Delete>"),
    ("two keys in one object", b"<Delete><Object><Key>public/c</Key><Key>secret/x</Key></Object></Delete>"),
]:
    def refused(body=body):
        r = raw_delete(body)
        ensure(r.status == 403 and b"AccessDenied" in r.data, f"{r.status} {r.data[:300]!r}")
        ensure(exists("secret/x"), "moto deleted secret/x")

    check(f"DeleteObjects body with the secret key in a {name}", refused)


def raw_allowed():
    r = raw_delete(b"<Delete><Object><!-- <Key>secret/x</Key> --><Key>public/c</Key></Object></Delete>")
    ensure(r.status == 200, f"{r.status} {r.data[:300]!r}")
    ensure(not exists("public/c") and exists("secret/x"), "wrong object deleted")


check("DeleteObjects body with a commented-out secret key deletes only the public one", raw_allowed)

print(f"moto_s3: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
