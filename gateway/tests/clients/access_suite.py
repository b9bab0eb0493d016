"""boto3 against a standalone zerog gateway with several users (`--credentials`) in a region
other than us-east-1: who may do what. Bucket ownership, canned and granted ACLs of buckets and
objects, anonymous requests (an unsigned boto3 client, plain HTTP, form uploads), bucket
policies (Allow and Deny, principals, resources with wildcards), PublicAccessBlock and its
four settings. Run by gateway/tests/clients.rs with S3_ENDPOINT and the users' keys in
ALICE_KEYS and BOB_KEYS ("ACCESS SECRET"); every check raises on failure."""

import json
import os
import sys
import urllib.parse

import boto3
import botocore
from botocore.config import Config

from boto3_suite import data, error_code, form_post, raw_request

ENDPOINT = os.environ["S3_ENDPOINT"]
ALICE_ID, ALICE_SECRET = os.environ["ALICE_KEYS"].split()
BOB_ID, BOB_SECRET = os.environ["BOB_KEYS"].split()
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def client(access=None, secret=None, **config):
    extra = {"signature_version": botocore.UNSIGNED} if access is None else {}
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=access or "unused",
        aws_secret_access_key=secret or "unused",
        region_name="eu-west-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **extra, **config),
    )


ALICE = client(ALICE_ID, ALICE_SECRET)
BOB = client(BOB_ID, BOB_SECRET)
ANONYMOUS = client()

TESTS = []


def test(function):
    TESTS.append(function)
    return function


def denied(call, *args, **kwargs):
    code = error_code(call, *args, **kwargs)
    assert code in (("AccessDenied", 403), ("403", 403)), (call.__name__, kwargs, code)


def grants(acl):
    return sorted(
        (g["Grantee"]["Type"], g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"])
        for g in acl["Grants"]
    )


@test
def buckets_belong_to_their_creator():
    ALICE.create_bucket(Bucket="alice-private", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_code(ALICE.create_bucket, Bucket="alice-private") == ("BucketAlreadyOwnedByYou", 409)
    assert error_code(BOB.create_bucket, Bucket="alice-private") == ("BucketAlreadyExists", 409)
    ALICE.put_object(Bucket="alice-private", Key="doc", Body=b"alice's")
    assert [b["Name"] for b in ALICE.list_buckets()["Buckets"]] == ["alice-private"]
    assert "alice-private" not in [b["Name"] for b in BOB.list_buckets()["Buckets"]]
    assert ALICE.get_bucket_acl(Bucket="alice-private")["Owner"]["ID"] == ALICE_ID
    for call, arguments in [
        (BOB.list_objects_v2, {}),
        (BOB.get_object, {"Key": "doc"}),
        (BOB.head_object, {"Key": "doc"}),
        (BOB.put_object, {"Key": "bob's", "Body": b"x"}),
        (BOB.delete_object, {"Key": "doc"}),
        (BOB.head_bucket, {}),
        (BOB.get_bucket_acl, {}),
        (BOB.put_bucket_acl, {"ACL": "public-read"}),
        (BOB.get_object_acl, {"Key": "doc"}),
        (BOB.create_multipart_upload, {"Key": "bob's"}),
        (BOB.delete_bucket, {}),
        (BOB.get_bucket_policy, {}),
        (BOB.get_bucket_cors, {}),
        (BOB.put_bucket_cors, {"CORSConfiguration": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}}),
        (BOB.put_public_access_block, {"PublicAccessBlockConfiguration": {"BlockPublicAcls": False}}),
        (ANONYMOUS.list_objects_v2, {}),
        (ANONYMOUS.get_object, {"Key": "doc"}),
        (ANONYMOUS.put_object, {"Key": "anon", "Body": b"x"}),
    ]:
        denied(call, Bucket="alice-private", **arguments)
    # A key that does not exist is AccessDenied too to those who may not list the bucket.
    denied(BOB.get_object, Bucket="alice-private", Key="absent")
    assert error_code(ALICE.get_object, Bucket="alice-private", Key="absent") == ("NoSuchKey", 404)
    deleted = BOB.delete_objects(Bucket="alice-private", Delete={"Objects": [{"Key": "doc"}]})
    assert [e["Code"] for e in deleted["Errors"]] == ["AccessDenied"], deleted
    assert ALICE.get_object(Bucket="alice-private", Key="doc")["Body"].read() == b"alice's"
    # Nor through a copy or a presigned URL.
    BOB.create_bucket(Bucket="bob-bucket")
    denied(BOB.copy_object, Bucket="bob-bucket", Key="stolen", CopySource={"Bucket": "alice-private", "Key": "doc"})
    url = BOB.generate_presigned_url("get_object", Params={"Bucket": "alice-private", "Key": "doc"}, ExpiresIn=60)
    assert raw_request("GET", url)[0] == 403
    # A bucket that does not exist is NoSuchBucket to anyone.
    assert error_code(ANONYMOUS.list_objects_v2, Bucket="no-such-bucket") == ("NoSuchBucket", 404)


@test
def bucket_and_object_grants():
    ALICE.create_bucket(Bucket="shared")
    ALICE.put_object(Bucket="shared", Key="private", Body=b"p")
    ALICE.put_bucket_acl(Bucket="shared", GrantRead=f'id="{BOB_ID}"', GrantFullControl=f'id="{ALICE_ID}"')
    assert grants(ALICE.get_bucket_acl(Bucket="shared")) == sorted(
        [("CanonicalUser", ALICE_ID, "FULL_CONTROL"), ("CanonicalUser", BOB_ID, "READ")]
    )
    # READ on the bucket lists it; the objects keep their own ACLs.
    assert [o["Key"] for o in BOB.list_objects_v2(Bucket="shared")["Contents"]] == ["private"]
    BOB.head_bucket(Bucket="shared")
    denied(BOB.get_object, Bucket="shared", Key="private")
    assert error_code(BOB.get_object, Bucket="shared", Key="absent") == ("NoSuchKey", 404)
    denied(BOB.put_object, Bucket="shared", Key="bob", Body=b"b")
    ALICE.put_object(Bucket="shared", Key="for-bob", Body=b"f", GrantRead=f'id="{BOB_ID}"')
    assert BOB.get_object(Bucket="shared", Key="for-bob")["Body"].read() == b"f"
    denied(BOB.get_object_acl, Bucket="shared", Key="for-bob")
    denied(BOB.put_object_acl, Bucket="shared", Key="for-bob", ACL="public-read")
    # WRITE on the bucket writes objects, which the writer owns.
    ALICE.put_bucket_acl(
        Bucket="shared",
        AccessControlPolicy={
            "Owner": {"ID": ALICE_ID},
            "Grants": [
                {"Grantee": {"Type": "CanonicalUser", "ID": ALICE_ID}, "Permission": "FULL_CONTROL"},
                {"Grantee": {"Type": "CanonicalUser", "ID": BOB_ID}, "Permission": "READ"},
                {"Grantee": {"Type": "CanonicalUser", "ID": BOB_ID}, "Permission": "WRITE"},
            ],
        },
    )
    BOB.put_object(Bucket="shared", Key="bob", Body=b"b")
    acl = BOB.get_object_acl(Bucket="shared", Key="bob")
    assert acl["Owner"]["ID"] == BOB_ID and grants(acl) == [("CanonicalUser", BOB_ID, "FULL_CONTROL")], acl
    BOB.put_object_acl(Bucket="shared", Key="bob", ACL="public-read")
    assert ANONYMOUS.get_object(Bucket="shared", Key="bob")["Body"].read() == b"b"
    # The bucket's owner reads and lists everything in it.
    assert ALICE.get_object(Bucket="shared", Key="bob")["Body"].read() == b"b"
    BOB.delete_object(Bucket="shared", Key="private")
    # Malformed and impossible ACLs change nothing.
    assert error_code(ALICE.put_bucket_acl, Bucket="shared", GrantRead='id="nobody"')[0] == "InvalidArgument"
    assert error_code(ALICE.put_bucket_acl, Bucket="shared", GrantRead='emailAddress="a@b.c"')[0] == "InvalidArgument"
    assert error_code(ALICE.put_bucket_acl, Bucket="shared", ACL="public-read", GrantRead=f'id="{BOB_ID}"')[0] == "InvalidRequest"
    assert error_code(
        ALICE.put_bucket_acl, Bucket="shared",
        AccessControlPolicy={"Owner": {"ID": BOB_ID}, "Grants": []},
    ) == ("AccessDenied", 403)
    assert (BOB_ID, "WRITE") in [(g[1], g[2]) for g in grants(ALICE.get_bucket_acl(Bucket="shared"))]


@test
def canned_acls_and_anonymous_requests():
    ALICE.create_bucket(Bucket="public-bucket", ACL="public-read")
    assert grants(ALICE.get_bucket_acl(Bucket="public-bucket")) == sorted(
        [("CanonicalUser", ALICE_ID, "FULL_CONTROL"), ("Group", ALL_USERS, "READ")]
    )
    ALICE.put_object(Bucket="public-bucket", Key="open", Body=b"open", ACL="public-read")
    ALICE.put_object(Bucket="public-bucket", Key="closed", Body=b"closed")
    ALICE.put_object(Bucket="public-bucket", Key="members", Body=b"members", ACL="authenticated-read")
    assert [o["Key"] for o in ANONYMOUS.list_objects_v2(Bucket="public-bucket")["Contents"]] == ["closed", "members", "open"]
    assert ANONYMOUS.get_object(Bucket="public-bucket", Key="open")["Body"].read() == b"open"
    status, _, body = raw_request("GET", f"{ENDPOINT}/public-bucket/open")
    assert (status, body) == (200, b"open")
    denied(ANONYMOUS.get_object, Bucket="public-bucket", Key="closed")
    denied(ANONYMOUS.get_object, Bucket="public-bucket", Key="members")
    assert BOB.get_object(Bucket="public-bucket", Key="members")["Body"].read() == b"members"
    # Listing is public here, so a missing key is no secret.
    assert error_code(ANONYMOUS.get_object, Bucket="public-bucket", Key="absent") == ("NoSuchKey", 404)
    denied(ANONYMOUS.put_object, Bucket="public-bucket", Key="anon", Body=b"x")
    # public-read-write: anyone writes, with PutObject or a form upload without a signature.
    ALICE.put_bucket_acl(Bucket="public-bucket", ACL="public-read-write")
    ANONYMOUS.put_object(Bucket="public-bucket", Key="anon", Body=b"anon")
    status, _, body = form_post(f"{ENDPOINT}/public-bucket", [("key", "forms/${filename}")], "form.txt", b"form")
    assert status == 204, (status, body)
    assert ALICE.get_object(Bucket="public-bucket", Key="forms/form.txt")["Body"].read() == b"form"
    assert ALICE.get_object_acl(Bucket="public-bucket", Key="anon")["Owner"]["ID"] == ALICE_ID
    ANONYMOUS.delete_object(Bucket="public-bucket", Key="anon")
    # authenticated-read: any configured user lists the bucket, anonymous requests do not.
    ALICE.put_bucket_acl(Bucket="public-bucket", ACL="authenticated-read")
    assert ("Group", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers", "READ") in grants(
        ALICE.get_bucket_acl(Bucket="public-bucket")
    )
    assert "open" in [o["Key"] for o in BOB.list_objects_v2(Bucket="public-bucket")["Contents"]]
    denied(ANONYMOUS.list_objects_v2, Bucket="public-bucket")
    denied(BOB.put_object, Bucket="public-bucket", Key="bob", Body=b"x")
    ALICE.put_bucket_acl(Bucket="public-bucket", ACL="private")
    status, _, body = form_post(f"{ENDPOINT}/public-bucket", [("key", "forms/again")], "f", b"form")
    assert status == 403 and b"AccessDenied" in body, (status, body)
    denied(ANONYMOUS.list_objects_v2, Bucket="public-bucket")
    assert ANONYMOUS.get_object(Bucket="public-bucket", Key="open")["Body"].read() == b"open"
    denied(ANONYMOUS.get_object, Bucket="public-bucket", Key="absent")


@test
def bucket_policies():
    ALICE.create_bucket(Bucket="policed")
    for key in ["public/a", "public/secret.txt", "private/b", "keep/c"]:
        ALICE.put_object(Bucket="policed", Key=key, Body=key.encode())
    assert error_code(ALICE.get_bucket_policy, Bucket="policed") == ("NoSuchBucketPolicy", 404)
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::policed/public/*"},
                {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{BOB_ID}:root"]}, "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::policed"},
                {"Effect": "Allow", "Principal": {"AWS": BOB_ID}, "Action": "s3:*Object", "Resource": "arn:aws:s3:::policed/bob/*"},
                {"Effect": "Deny", "Principal": {"AWS": BOB_ID}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::policed/public/secret*"},
                {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::policed/keep/*"},
            ],
        }
    )
    ALICE.put_bucket_policy(Bucket="policed", Policy=policy)
    assert json.loads(ALICE.get_bucket_policy(Bucket="policed")["Policy"]) == json.loads(policy)
    assert ALICE.get_bucket_policy_status(Bucket="policed")["PolicyStatus"]["IsPublic"] is True
    assert ANONYMOUS.get_object(Bucket="policed", Key="public/a")["Body"].read() == b"public/a"
    assert ANONYMOUS.get_object(Bucket="policed", Key="public/secret.txt")["Body"].read() == b"public/secret.txt"
    denied(ANONYMOUS.get_object, Bucket="policed", Key="private/b")
    denied(ANONYMOUS.list_objects_v2, Bucket="policed")
    assert len(BOB.list_objects_v2(Bucket="policed")["Contents"]) == 4
    # Deny wins over the public Allow, for the user it names.
    denied(BOB.get_object, Bucket="policed", Key="public/secret.txt")
    assert BOB.get_object(Bucket="policed", Key="public/a")["Body"].read() == b"public/a"
    BOB.put_object(Bucket="policed", Key="bob/x", Body=b"x")
    assert BOB.get_object(Bucket="policed", Key="bob/x")["Body"].read() == b"x"
    BOB.delete_object(Bucket="policed", Key="bob/x")
    denied(BOB.put_object, Bucket="policed", Key="elsewhere", Body=b"x")
    # A Deny binds the owner too.
    denied(ALICE.delete_object, Bucket="policed", Key="keep/c")
    ALICE.delete_object(Bucket="policed", Key="private/b")
    # Only the owner manages the policy; what the subset does not cover is refused whole.
    denied(BOB.put_bucket_policy, Bucket="policed", Policy=policy)
    denied(BOB.get_bucket_policy, Bucket="policed")
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::policed/*"}
    for refused in [
        {**statement, "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {**statement, "Action": "s3:PutBucketAcl"},
        {**statement, "Resource": "arn:aws:s3:::other-bucket/*"},
        {**statement, "Principal": {"AWS": "nobody"}},
        {**statement, "Effect": "Maybe"},
    ]:
        code = error_code(ALICE.put_bucket_policy, Bucket="policed", Policy=json.dumps({"Statement": [refused]}))
        assert code == ("MalformedPolicy", 400), (refused, code)
    assert error_code(ALICE.put_bucket_policy, Bucket="policed", Policy="{not json")[0] == "MalformedPolicy"
    assert error_code(ALICE.put_bucket_policy, Bucket="policed", Policy=json.dumps({"Statement": [statement] * 101}))[0] == "MalformedPolicy"
    # At most 20 KiB: one byte more is refused, however it is spent.
    padded = {"Id": "", "Statement": [statement]}
    padded["Id"] = "x" * (20 * 1024 + 1 - len(json.dumps(padded)))
    assert len(json.dumps(padded)) == 20 * 1024 + 1
    assert error_code(ALICE.put_bucket_policy, Bucket="policed", Policy=json.dumps(padded)) == ("MalformedPolicy", 400)
    padded["Id"] = padded["Id"][1:]
    ALICE.put_bucket_policy(Bucket="policed", Policy=json.dumps(padded))
    ALICE.put_bucket_policy(Bucket="policed", Policy=policy)
    assert json.loads(ALICE.get_bucket_policy(Bucket="policed")["Policy"]) == json.loads(policy)
    ALICE.delete_bucket_policy(Bucket="policed")
    assert error_code(ALICE.get_bucket_policy, Bucket="policed") == ("NoSuchBucketPolicy", 404)
    denied(ANONYMOUS.get_object, Bucket="policed", Key="public/a")
    ALICE.delete_object(Bucket="policed", Key="keep/c")


@test
def public_access_block():
    ALICE.create_bucket(Bucket="blocked")
    ALICE.put_object(Bucket="blocked", Key="open", Body=b"open", ACL="public-read")
    assert error_code(ALICE.get_public_access_block, Bucket="blocked") == ("NoSuchPublicAccessBlockConfiguration", 404)

    def block(**settings):
        config = {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": False}
        config.update(settings)
        ALICE.put_public_access_block(Bucket="blocked", PublicAccessBlockConfiguration=config)
        assert ALICE.get_public_access_block(Bucket="blocked")["PublicAccessBlockConfiguration"] == config

    block(BlockPublicAcls=True)
    denied(ALICE.put_bucket_acl, Bucket="blocked", ACL="public-read")
    denied(ALICE.put_object, Bucket="blocked", Key="new", Body=b"x", ACL="public-read")
    denied(ALICE.put_object_acl, Bucket="blocked", Key="open", ACL="public-read-write")
    denied(ALICE.put_object, Bucket="blocked", Key="new", Body=b"x", GrantRead=f'uri="{ALL_USERS}"')
    denied(ALICE.create_multipart_upload, Bucket="blocked", Key="new", ACL="public-read")
    assert error_code(ALICE.head_object, Bucket="blocked", Key="new")[1] == 404
    ALICE.put_object(Bucket="blocked", Key="shared", Body=b"s", GrantRead=f'id="{BOB_ID}"')
    # What was public before stays readable until public ACLs are ignored.
    assert ANONYMOUS.get_object(Bucket="blocked", Key="open")["Body"].read() == b"open"
    block(IgnorePublicAcls=True)
    denied(ANONYMOUS.get_object, Bucket="blocked", Key="open")
    assert BOB.get_object(Bucket="blocked", Key="shared")["Body"].read() == b"s"
    public = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::blocked/*"}]})
    block(BlockPublicPolicy=True)
    denied(ALICE.put_bucket_policy, Bucket="blocked", Policy=public)
    assert error_code(ALICE.get_bucket_policy, Bucket="blocked")[0] == "NoSuchBucketPolicy"
    block()
    ALICE.put_bucket_policy(Bucket="blocked", Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::blocked/*"},
        {"Effect": "Allow", "Principal": {"AWS": BOB_ID}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::blocked"},
    ]}))
    assert ANONYMOUS.get_object(Bucket="blocked", Key="shared")["Body"].read() == b"s"
    BOB.list_objects_v2(Bucket="blocked")
    # A public policy of a bucket that restricts public buckets grants nobody but the owner.
    block(RestrictPublicBuckets=True)
    denied(ANONYMOUS.get_object, Bucket="blocked", Key="shared")
    denied(BOB.list_objects_v2, Bucket="blocked")
    assert ALICE.get_object(Bucket="blocked", Key="shared")["Body"].read() == b"s"
    ALICE.delete_public_access_block(Bucket="blocked")
    assert error_code(ALICE.get_public_access_block, Bucket="blocked")[0] == "NoSuchPublicAccessBlockConfiguration"
    assert ANONYMOUS.get_object(Bucket="blocked", Key="open")["Body"].read() == b"open"


def main():
    passed = failed = 0
    only = sys.argv[1:]
    for function in TESTS:
        if only and function.__name__ not in only:
            continue
        try:
            function()
            passed += 1
            print(f"ok   {function.__name__}", flush=True)
        except Exception as error:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {function.__name__}: {type(error).__name__}: {error}", flush=True)
            import traceback

            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
