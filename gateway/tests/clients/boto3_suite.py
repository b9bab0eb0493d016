"""boto3 against the zerog S3 gateway: the S3 API surface the gateway promises, driven by the
real AWS SDK for Python. Run by gateway/tests/clients.rs with S3_ENDPOINT and dev keys in the
environment; every check raises on failure and the script exits non-zero."""

import base64
import datetime
import hashlib
import os
import sys
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore
import botocore.handlers
from botocore.config import Config

ENDPOINT = os.environ["S3_ENDPOINT"]
SEED = int(os.environ.get("SUITE_SEED", "7"))


def client(**config):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


S3 = client()


def data(size, salt=0):
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{SEED}-{salt}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def error_code(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{call.__name__} should have failed")


def crc32c(payload):
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ 0x82F63B78 if value & 1 else value >> 1
        table.append(value)
    crc = 0xFFFFFFFF
    for byte in payload:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def b64(raw):
    return base64.b64encode(raw).decode()


TESTS = []


def test(function):
    TESTS.append(function)
    return function


@test
def buckets():
    S3.create_bucket(Bucket="alpha")
    # In us-east-1 creating a bucket one already owns succeeds and leaves it as it is (other
    # regions answer 409 BucketAlreadyOwnedByYou: tests/clients/access_suite.py).
    S3.put_object(Bucket="alpha", Key="kept-across-create", Body=b"kept")
    S3.create_bucket(Bucket="alpha")
    assert S3.get_object(Bucket="alpha", Key="kept-across-create")["Body"].read() == b"kept"
    S3.delete_object(Bucket="alpha", Key="kept-across-create")
    S3.head_bucket(Bucket="alpha")
    assert error_code(S3.head_bucket, Bucket="missing-bucket")[1] == 404
    listed = S3.list_buckets()
    names = [bucket["Name"] for bucket in listed["Buckets"]]
    assert "alpha" in names, names
    assert listed["Owner"]["ID"] == os.environ["AWS_ACCESS_KEY_ID"], listed["Owner"]
    # The creator owns the bucket, which is private: its owner's FULL_CONTROL alone.
    acl = S3.get_bucket_acl(Bucket="alpha")
    assert acl["Owner"]["ID"] == os.environ["AWS_ACCESS_KEY_ID"], acl
    assert [(g["Grantee"]["Type"], g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]] == [
        ("CanonicalUser", os.environ["AWS_ACCESS_KEY_ID"], "FULL_CONTROL")
    ], acl
    assert S3.get_bucket_location(Bucket="alpha").get("LocationConstraint") in (None, "")
    S3.create_bucket(Bucket="to-delete")
    S3.put_object(Bucket="to-delete", Key="x", Body=b"x")
    assert error_code(S3.delete_bucket, Bucket="to-delete") == ("BucketNotEmpty", 409)
    S3.delete_object(Bucket="to-delete", Key="x")
    S3.delete_bucket(Bucket="to-delete")
    assert error_code(S3.head_bucket, Bucket="to-delete")[1] == 404
    assert error_code(S3.create_bucket, Bucket="Bad_Name")[1] == 400
    # The space route's first path segment is never a bucket.
    assert error_code(S3.create_bucket, Bucket="_zerog") == ("InvalidBucketName", 400)


@test
def objects_round_trip_with_metadata_and_awkward_keys():
    keys = [
        "plain.txt",
        "with space/and more spaces .bin",
        "ünïcødé/日本語/ключ",
        "plus+and&equals=percent%25raw%",
        "/".join(f"deep{level}" for level in range(40)) + "/leaf",
        "trailing/",
        "empty-object",
    ]
    for index, key in enumerate(keys):
        body = b"" if key == "empty-object" else data(1000 + index * 333, index)
        put = S3.put_object(
            Bucket="alpha",
            Key=key,
            Body=body,
            ContentType="application/x-test",
            Metadata={"colour": "blue", "number": str(index)},
        )
        assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"', (key, put["ETag"])
        got = S3.get_object(Bucket="alpha", Key=key)
        assert got["Body"].read() == body, key
        assert got["ContentType"] == "application/x-test"
        assert got["Metadata"] == {"colour": "blue", "number": str(index)}, got["Metadata"]
        assert got["ContentLength"] == len(body)
        head = S3.head_object(Bucket="alpha", Key=key)
        assert head["ETag"] == put["ETag"] and head["ContentLength"] == len(body)
    listed = [item["Key"] for item in S3.list_objects_v2(Bucket="alpha")["Contents"]]
    assert sorted(keys) == listed, listed
    S3.put_object(Bucket="alpha", Key="plain.txt", Body=b"overwritten")
    assert S3.get_object(Bucket="alpha", Key="plain.txt")["Body"].read() == b"overwritten"
    S3.delete_object(Bucket="alpha", Key="plain.txt")
    assert error_code(S3.get_object, Bucket="alpha", Key="plain.txt") == ("NoSuchKey", 404)
    assert error_code(S3.head_object, Bucket="alpha", Key="plain.txt")[1] == 404
    # Deleting a missing key succeeds, as in S3.
    S3.delete_object(Bucket="alpha", Key="plain.txt")
    assert error_code(S3.put_object, Bucket="no-such-bucket", Key="k", Body=b"x") == ("NoSuchBucket", 404)


@test
def path_tricks_and_limits_are_refused():
    for key in ["a/../b", "../escape", "./here", "nul\x00byte"]:
        # One shared connection: each PUT is refused before its body is read, and the next
        # request must still be parsed as sent (gateway/tests/expect_continue.rs).
        code, status = error_code(S3.put_object, Bucket="alpha", Key=key, Body=b"x")
        assert status == 400, (key, code, status)
    for key in ["a/../b", "../escape", "./here"]:
        assert error_code(S3.head_object, Bucket="alpha", Key=key)[1] in (400, 404), key
    code, status = error_code(S3.put_object, Bucket="alpha", Key="k" * 1025, Body=b"x")
    assert status == 400, (code, status)
    code, _ = error_code(
        S3.put_object, Bucket="alpha", Key="big-meta", Body=b"x", Metadata={"m": "v" * 3000}
    )
    assert code == "MetadataTooLarge", code


@test
def range_reads():
    body = data(700 * 1024 + 13, 99)
    S3.put_object(Bucket="alpha", Key="ranged", Body=body)
    for first, last in [(0, 0), (5, 300000), (262143, 262145), (len(body) - 10, len(body) - 1)]:
        got = S3.get_object(Bucket="alpha", Key="ranged", Range=f"bytes={first}-{last}")
        assert got["Body"].read() == body[first : last + 1], (first, last)
        assert got["ContentRange"] == f"bytes {first}-{last}/{len(body)}", got["ContentRange"]
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert S3.get_object(Bucket="alpha", Key="ranged", Range="bytes=-100")["Body"].read() == body[-100:]
    assert S3.get_object(Bucket="alpha", Key="ranged", Range="bytes=700000-")["Body"].read() == body[700000:]
    assert error_code(S3.get_object, Bucket="alpha", Key="ranged", Range=f"bytes={len(body)}-") == (
        "InvalidRange",
        416,
    )


@test
def conditional_requests():
    body = data(5000, 5)
    etag = S3.put_object(Bucket="alpha", Key="cond", Body=body)["ETag"]
    assert S3.get_object(Bucket="alpha", Key="cond", IfMatch=etag)["Body"].read() == body
    assert error_code(S3.get_object, Bucket="alpha", Key="cond", IfMatch='"nope"')[1] == 412
    assert error_code(S3.get_object, Bucket="alpha", Key="cond", IfNoneMatch=etag)[1] == 304
    assert S3.get_object(Bucket="alpha", Key="cond", IfNoneMatch='"other"')["Body"].read() == body
    modified = S3.head_object(Bucket="alpha", Key="cond")["LastModified"]
    assert error_code(S3.get_object, Bucket="alpha", Key="cond", IfModifiedSince=modified)[1] == 304
    earlier = modified.replace(year=modified.year - 1)
    assert S3.get_object(Bucket="alpha", Key="cond", IfModifiedSince=earlier)["Body"].read() == body
    assert error_code(S3.get_object, Bucket="alpha", Key="cond", IfUnmodifiedSince=earlier)[1] == 412
    assert error_code(S3.head_object, Bucket="alpha", Key="cond", IfMatch='"nope"')[1] == 412
    # Conditional writes: create-only and compare-and-swap.
    assert error_code(S3.put_object, Bucket="alpha", Key="cond", Body=b"x", IfNoneMatch="*")[1] == 412
    S3.put_object(Bucket="alpha", Key="cond-new", Body=b"first", IfNoneMatch="*")
    assert error_code(S3.put_object, Bucket="alpha", Key="cond", Body=b"x", IfMatch='"nope"')[1] == 412
    S3.put_object(Bucket="alpha", Key="cond", Body=b"swapped", IfMatch=etag)
    assert S3.get_object(Bucket="alpha", Key="cond")["Body"].read() == b"swapped"


@test
def content_md5_and_checksums():
    body = data(300 * 1024, 11)
    good = b64(hashlib.md5(body).digest())
    S3.put_object(Bucket="alpha", Key="md5", Body=body, ContentMD5=good)
    bad = b64(hashlib.md5(b"other").digest())
    assert error_code(S3.put_object, Bucket="alpha", Key="md5-bad", Body=body, ContentMD5=bad) == (
        "BadDigest",
        400,
    )
    assert error_code(S3.get_object, Bucket="alpha", Key="md5-bad")[0] == "NoSuchKey"
    expected = {
        "CRC32": b64(zlib.crc32(body).to_bytes(4, "big")),
        "CRC32C": b64(crc32c(body).to_bytes(4, "big")),
        "SHA256": b64(hashlib.sha256(body).digest()),
    }
    for algorithm, value in expected.items():
        key = f"sum-{algorithm}"
        # botocore computes CRC32C only with its optional CRT extension: give that one by value.
        how = {f"Checksum{algorithm}": value} if algorithm == "CRC32C" else {"ChecksumAlgorithm": algorithm}
        put = S3.put_object(Bucket="alpha", Key=key, Body=body, **how)
        assert put[f"Checksum{algorithm}"] == value, (algorithm, put)
        head = S3.head_object(Bucket="alpha", Key=key, ChecksumMode="ENABLED")
        assert head[f"Checksum{algorithm}"] == value, (algorithm, head)
        got = S3.get_object(Bucket="alpha", Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == body
        # A checksum given by value is verified too.
        S3.put_object(Bucket="alpha", Key=key + "-given", Body=body, **{f"Checksum{algorithm}": value})
        wrong = expected["CRC32"] if algorithm != "CRC32" else expected["CRC32C"]
        code, _ = error_code(
            S3.put_object, Bucket="alpha", Key=key + "-wrong", Body=body, **{f"Checksum{algorithm}": wrong}
        )
        assert code in ("BadDigest", "InvalidRequest"), code


@test
def copy_and_delete_objects():
    body = data(20000, 3)
    S3.put_object(Bucket="alpha", Key="source", Body=body, Metadata={"a": "1"}, ContentType="text/plain")
    copied = S3.copy_object(Bucket="alpha", Key="copy", CopySource={"Bucket": "alpha", "Key": "source"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = S3.get_object(Bucket="alpha", Key="copy")
    assert got["Body"].read() == body and got["Metadata"] == {"a": "1"}
    S3.copy_object(
        Bucket="alpha",
        Key="copy-replaced",
        CopySource={"Bucket": "alpha", "Key": "source"},
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="application/json",
    )
    head = S3.head_object(Bucket="alpha", Key="copy-replaced")
    assert head["Metadata"] == {"b": "2"} and head["ContentType"] == "application/json"
    assert error_code(
        S3.copy_object, Bucket="alpha", Key="source", CopySource={"Bucket": "alpha", "Key": "source"}
    ) == ("InvalidRequest", 400)
    assert error_code(
        S3.copy_object,
        Bucket="alpha",
        Key="x",
        CopySource={"Bucket": "alpha", "Key": "source"},
        CopySourceIfMatch='"nope"',
    )[1] == 412
    S3.put_object(Bucket="alpha", Key="del/1", Body=b"1")
    S3.put_object(Bucket="alpha", Key="del/2", Body=b"2")
    result = S3.delete_objects(
        Bucket="alpha", Delete={"Objects": [{"Key": "del/1"}, {"Key": "del/2"}, {"Key": "del/absent"}]}
    )
    assert sorted(item["Key"] for item in result["Deleted"]) == ["del/1", "del/2", "del/absent"]
    assert "Contents" not in S3.list_objects_v2(Bucket="alpha", Prefix="del/")


@test
def listing_v1_and_v2():
    S3.create_bucket(Bucket="listing")
    keys = [f"dir{d}/sub{s}/file{f}" for d in range(3) for s in range(2) for f in range(3)] + [
        "top1",
        "top2",
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: S3.put_object(Bucket="listing", Key=key, Body=key.encode()), keys))
    everything = []
    token = None
    while True:
        page = S3.list_objects_v2(Bucket="listing", MaxKeys=5, **({"ContinuationToken": token} if token else {}))
        everything += [item["Key"] for item in page.get("Contents", [])]
        assert page["KeyCount"] <= 5
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert everything == sorted(keys), everything
    grouped = S3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["dir0/", "dir1/", "dir2/"]
    assert [item["Key"] for item in grouped["Contents"]] == ["top1", "top2"]
    inner = S3.list_objects_v2(Bucket="listing", Prefix="dir1/", Delimiter="/")
    assert [p["Prefix"] for p in inner["CommonPrefixes"]] == ["dir1/sub0/", "dir1/sub1/"]
    # Pages of common prefixes resume after the prefix, not inside it.
    seen = []
    token = None
    while True:
        page = S3.list_objects_v2(
            Bucket="listing", Delimiter="/", MaxKeys=2, **({"ContinuationToken": token} if token else {})
        )
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])] + [i["Key"] for i in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == ["dir0/", "dir1/", "dir2/", "top1", "top2"], seen
    after = S3.list_objects_v2(Bucket="listing", StartAfter="dir2/sub1/file1")
    assert [item["Key"] for item in after["Contents"]] == ["dir2/sub1/file2", "top1", "top2"]
    v1 = S3.list_objects(Bucket="listing", Prefix="dir0/", MaxKeys=4)
    assert v1["IsTruncated"] and len(v1["Contents"]) == 4
    v1_rest = S3.list_objects(Bucket="listing", Prefix="dir0/", Marker=v1["Contents"][-1]["Key"])
    assert [i["Key"] for i in v1["Contents"] + v1_rest["Contents"]] == sorted(k for k in keys if k.startswith("dir0/"))
    v1_grouped = S3.list_objects(Bucket="listing", Delimiter="/", MaxKeys=2)
    assert v1_grouped["IsTruncated"] and v1_grouped["NextMarker"] == "dir1/", v1_grouped
    paginator = S3.get_paginator("list_objects")
    assert sum(len(page.get("Contents", [])) for page in paginator.paginate(Bucket="listing", PaginationConfig={"PageSize": 7})) == len(keys)


@test
def multipart_upload_copy_and_abort():
    part_size = 5 * 1024 * 1024
    parts_data = [data(part_size, 21), data(part_size, 22), data(1234, 23)]
    created = S3.create_multipart_upload(
        Bucket="alpha", Key="multi", ContentType="video/test", Metadata={"m": "p"}, ChecksumAlgorithm="CRC32"
    )
    upload_id = created["UploadId"]
    uploads = S3.list_multipart_uploads(Bucket="alpha")["Uploads"]
    assert any(u["UploadId"] == upload_id and u["Key"] == "multi" for u in uploads)
    etags = []
    for number, body in enumerate(parts_data, start=1):
        part = S3.upload_part(
            Bucket="alpha", Key="multi", UploadId=upload_id, PartNumber=number, Body=body, ChecksumAlgorithm="CRC32"
        )
        assert part["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        etags.append(part)
    listed = S3.list_parts(Bucket="alpha", Key="multi", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, part_size), (2, part_size), (3, 1234)]
    done = S3.complete_multipart_upload(
        Bucket="alpha",
        Key="multi",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": n, "ETag": p["ETag"], "ChecksumCRC32": p["ChecksumCRC32"]}
                for n, p in enumerate(etags, start=1)
            ]
        },
    )
    md5s = b"".join(hashlib.md5(body).digest() for body in parts_data)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"', done["ETag"]
    whole = b"".join(parts_data)
    got = S3.get_object(Bucket="alpha", Key="multi")
    assert got["Body"].read() == whole and got["ContentType"] == "video/test" and got["Metadata"] == {"m": "p"}
    assert S3.get_object(Bucket="alpha", Key="multi", PartNumber=2)["Body"].read() == parts_data[1]
    assert S3.get_object(Bucket="alpha", Key="multi", Range=f"bytes={part_size - 5}-{part_size + 4}")["Body"].read() == whole[part_size - 5 : part_size + 5]
    assert error_code(S3.list_parts, Bucket="alpha", Key="multi", UploadId=upload_id)[0] == "NoSuchUpload"

    # UploadPartCopy from the completed object, a range of it and a whole small object.
    copy = S3.create_multipart_upload(Bucket="alpha", Key="multi-copy")["UploadId"]
    first = S3.upload_part_copy(
        Bucket="alpha", Key="multi-copy", UploadId=copy, PartNumber=1,
        CopySource={"Bucket": "alpha", "Key": "multi"}, CopySourceRange=f"bytes=0-{part_size}",
    )["CopyPartResult"]
    second = S3.upload_part_copy(
        Bucket="alpha", Key="multi-copy", UploadId=copy, PartNumber=2,
        CopySource={"Bucket": "alpha", "Key": "multi"},
    )["CopyPartResult"]
    assert first["ETag"] == f'"{hashlib.md5(whole[: part_size + 1]).hexdigest()}"'
    S3.complete_multipart_upload(
        Bucket="alpha", Key="multi-copy", UploadId=copy,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]},
    )
    assert S3.get_object(Bucket="alpha", Key="multi-copy")["Body"].read() == whole[: part_size + 1] + whole

    # Too-small parts, wrong ETags, bad order, abort.
    small = S3.create_multipart_upload(Bucket="alpha", Key="small")["UploadId"]
    a = S3.upload_part(Bucket="alpha", Key="small", UploadId=small, PartNumber=1, Body=b"a" * 100)
    b = S3.upload_part(Bucket="alpha", Key="small", UploadId=small, PartNumber=2, Body=b"b" * 100)
    assert error_code(
        S3.complete_multipart_upload, Bucket="alpha", Key="small", UploadId=small,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": a["ETag"]}, {"PartNumber": 2, "ETag": b["ETag"]}]},
    ) == ("EntityTooSmall", 400)
    assert error_code(
        S3.complete_multipart_upload, Bucket="alpha", Key="small", UploadId=small,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0000"'}]},
    ) == ("InvalidPart", 400)
    assert error_code(
        S3.complete_multipart_upload, Bucket="alpha", Key="small", UploadId=small,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": b["ETag"]}, {"PartNumber": 1, "ETag": a["ETag"]}]},
    ) == ("InvalidPartOrder", 400)
    S3.abort_multipart_upload(Bucket="alpha", Key="small", UploadId=small)
    assert error_code(S3.list_parts, Bucket="alpha", Key="small", UploadId=small)[0] == "NoSuchUpload"
    assert error_code(
        S3.upload_part, Bucket="alpha", Key="small", UploadId=small, PartNumber=3, Body=b"x"
    )[0] == "NoSuchUpload"


@test
def interrupted_multipart_upload_resumes():
    part_size = 5 * 1024 * 1024
    bodies = [data(part_size, 31), data(part_size, 32), data(777, 33)]
    upload_id = S3.create_multipart_upload(Bucket="alpha", Key="resumed")["UploadId"]
    S3.upload_part(Bucket="alpha", Key="resumed", UploadId=upload_id, PartNumber=1, Body=bodies[0])
    # The "client" goes away; a new one finds the upload and the parts already stored.
    fresh = client()
    found = [u for u in fresh.list_multipart_uploads(Bucket="alpha", Prefix="resumed")["Uploads"]]
    assert [u["UploadId"] for u in found] == [upload_id]
    done = {p["PartNumber"]: p["ETag"] for p in fresh.list_parts(Bucket="alpha", Key="resumed", UploadId=upload_id)["Parts"]}
    assert list(done) == [1]
    for number in (2, 3):
        done[number] = fresh.upload_part(
            Bucket="alpha", Key="resumed", UploadId=upload_id, PartNumber=number, Body=bodies[number - 1]
        )["ETag"]
    fresh.complete_multipart_upload(
        Bucket="alpha", Key="resumed", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(done.items())]},
    )
    assert fresh.get_object(Bucket="alpha", Key="resumed")["Body"].read() == b"".join(bodies)


@test
def presigned_urls():
    body = data(4321, 41)
    v4 = client(signature_version="s3v4")
    put_url = v4.generate_presigned_url("put_object", Params={"Bucket": "alpha", "Key": "presigned key+&="}, ExpiresIn=300)
    assert "X-Amz-Signature=" in put_url, put_url
    request = urllib.request.Request(put_url, data=body, method="PUT")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    get_url = v4.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "presigned key+&="}, ExpiresIn=300)
    with urllib.request.urlopen(get_url) as response:
        assert response.read() == body
    tampered = get_url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")
    try:
        urllib.request.urlopen(tampered)
        raise AssertionError("a tampered presigned URL must be refused")
    except urllib.error.HTTPError as error:
        assert error.code == 403, error.code


def streaming_put(key, body, chunk_size, corrupt_chunk=None):
    """PutObject with a SigV4 streaming body (`aws-chunked`, STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
    botocore signs the seed request, each chunk carries a signature chained from the previous
    one. Returns the HTTP status and body."""
    import hmac
    import http.client
    import urllib.parse

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.Session().get_credentials().get_frozen_credentials()
    chunks = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)] + [b""]
    signature_length = len(";chunk-signature=") + 64 + 4
    encoded_length = sum(len(f"{len(c):x}") + signature_length + len(c) for c in chunks)
    url = f"{ENDPOINT}/alpha/{urllib.parse.quote(key)}"
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={
            "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "Content-Encoding": "aws-chunked",
            "X-Amz-Decoded-Content-Length": str(len(body)),
            "Content-Length": str(encoded_length),
        },
    )
    class StreamingAuth(S3SigV4Auth):
        def payload(self, request):
            return "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"

    StreamingAuth(credentials, "s3", "us-east-1").add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    authorization = request.headers["Authorization"]
    previous = authorization.split("Signature=")[1]
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"

    def sign(key, message):
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    signing_key = sign(sign(sign(sign(("AWS4" + credentials.secret_key).encode(), amz_date[:8]), "us-east-1"), "s3"), "aws4_request")
    empty = hashlib.sha256(b"").hexdigest()
    payload = bytearray()
    for index, chunk in enumerate(chunks):
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, empty, hashlib.sha256(chunk).hexdigest()]
        )
        signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        previous = signature
        if index == corrupt_chunk:
            signature = "0" * 64
        payload += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
    assert len(payload) == encoded_length
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    connection.putrequest("PUT", parsed.path, skip_accept_encoding=True)
    for name, value in request.headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(bytes(payload))
    response = connection.getresponse()
    return response.status, response.read()


@test
def streaming_sigv4_chunked_upload():
    body = data(200 * 1024 + 17, 51)
    status, answer = streaming_put("streamed object", body, 64 * 1024)
    assert status == 200, (status, answer)
    got = S3.get_object(Bucket="alpha", Key="streamed object")
    assert got["Body"].read() == body and got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    status, answer = streaming_put("streamed tampered", body, 64 * 1024, corrupt_chunk=1)
    assert status in (400, 403), (status, answer)
    assert error_code(S3.head_object, Bucket="alpha", Key="streamed tampered")[1] == 404


def raw_request(method, url, headers=None, body=b"", chunks=None):
    """One request over a fresh connection, redirects not followed: (status, headers, body).
    With `chunks`, the body is sent with chunked transfer encoding, one HTTP chunk each."""
    import http.client
    import urllib.parse

    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    connection.putrequest(method, target, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    if chunks is None:
        if body or method in ("PUT", "POST"):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if body:
            connection.send(body)
    else:
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for chunk in chunks:
            if chunk:
                connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    answer = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    connection.close()
    return answer


@test
def deleting_a_bucket_aborts_its_incomplete_uploads():
    S3.create_bucket(Bucket="cascade")
    S3.put_object(Bucket="cascade", Key="object", Body=b"object")
    upload = S3.create_multipart_upload(Bucket="cascade", Key="pending")["UploadId"]
    S3.upload_part(Bucket="cascade", Key="pending", UploadId=upload, PartNumber=1, Body=data(1000, 61))
    assert error_code(S3.delete_bucket, Bucket="cascade") == ("BucketNotEmpty", 409)
    # A client that cleans up deletes the objects it sees, then the bucket: the upload it
    # never saw does not keep the bucket.
    for item in S3.list_objects_v2(Bucket="cascade")["Contents"]:
        S3.delete_object(Bucket="cascade", Key=item["Key"])
    S3.delete_bucket(Bucket="cascade")
    assert error_code(S3.head_bucket, Bucket="cascade")[1] == 404
    assert error_code(S3.list_parts, Bucket="cascade", Key="pending", UploadId=upload) == ("NoSuchBucket", 404)
    S3.create_bucket(Bucket="cascade")
    assert "Uploads" not in S3.list_multipart_uploads(Bucket="cascade")
    S3.delete_bucket(Bucket="cascade")


@test
def a_deleted_bucket_is_no_such_bucket_for_every_request():
    S3.create_bucket(Bucket="gone")
    S3.put_object(Bucket="gone", Key="k", Body=b"x")
    S3.delete_object(Bucket="gone", Key="k")
    S3.delete_bucket(Bucket="gone")
    calls = [
        (S3.get_object, {"Key": "k"}),
        (S3.put_object, {"Key": "k", "Body": b"x"}),
        (S3.delete_object, {"Key": "k"}),
        (S3.list_objects, {}),
        (S3.list_objects_v2, {}),
        (S3.list_multipart_uploads, {}),
        (S3.create_multipart_upload, {"Key": "k"}),
        (S3.get_bucket_location, {}),
        (S3.delete_bucket, {}),
        (S3.delete_objects, {"Delete": {"Objects": [{"Key": "k"}]}}),
        (S3.copy_object, {"Key": "c", "CopySource": {"Bucket": "alpha", "Key": "source"}}),
        (S3.get_object_attributes, {"Key": "k", "ObjectAttributes": ["ETag"]}),
        (S3.upload_part, {"Key": "k", "UploadId": "0" * 32, "PartNumber": 1, "Body": b"x"}),
    ]
    for call, arguments in calls:
        assert error_code(call, Bucket="gone", **arguments) == ("NoSuchBucket", 404), call.__name__
    for call, arguments in [(S3.head_bucket, {}), (S3.head_object, {"Key": "k"})]:
        assert error_code(call, Bucket="gone", **arguments)[1] == 404, call.__name__
    url = client(signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": "gone", "Key": "k"}, ExpiresIn=60
    )
    status, _, body = raw_request("GET", url)
    assert status == 404 and b"NoSuchBucket" in body, (status, body)


@test
def listing_edge_cases():
    S3.create_bucket(Bucket="edges")
    keys = ["a b+c/d&e=f", "a b+c/g", "plain", "x%y"]
    for key in keys:
        S3.put_object(Bucket="edges", Key=key, Body=b"")
    for call in (S3.list_objects, S3.list_objects_v2):
        page = call(Bucket="edges", MaxKeys=0)
        assert page["IsTruncated"] is False and "Contents" not in page and "CommonPrefixes" not in page, page
    page = S3.list_objects_v2(Bucket="edges", ContinuationToken="")
    assert [item["Key"] for item in page["Contents"]] == keys, page
    assert all("Owner" not in item for item in S3.list_objects_v2(Bucket="edges")["Contents"])
    me = os.environ["AWS_ACCESS_KEY_ID"]
    owned = S3.list_objects_v2(Bucket="edges", FetchOwner=True)["Contents"]
    assert all(item["Owner"]["ID"] == me for item in owned), owned
    assert all(item["Owner"]["ID"] == me for item in S3.list_objects(Bucket="edges")["Contents"])
    # Asked for explicitly, botocore leaves the names as the gateway encoded them.
    encoded = S3.list_objects_v2(Bucket="edges", EncodingType="url", Prefix="a b", Delimiter="/", StartAfter="a")
    assert encoded["EncodingType"] == "url"
    assert encoded["Prefix"] == "a%20b" and encoded["StartAfter"] == "a", encoded
    assert [p["Prefix"] for p in encoded["CommonPrefixes"]] == ["a%20b%2Bc/"], encoded
    encoded = S3.list_objects_v2(Bucket="edges", EncodingType="url")
    assert [item["Key"] for item in encoded["Contents"]] == ["a%20b%2Bc/d%26e%3Df", "a%20b%2Bc/g", "plain", "x%25y"]
    v1 = S3.list_objects(Bucket="edges", EncodingType="url", Delimiter="/", MaxKeys=1, Marker="a b")
    assert v1["Marker"] == "a%20b" and v1["NextMarker"] == "a%20b%2Bc/" and v1["Delimiter"] == "/", v1
    assert error_code(S3.list_objects_v2, Bucket="edges", EncodingType="base64")[0] == "InvalidArgument"
    # Not asked for, nothing is encoded (botocore asks unless told not to).
    plain = client()
    for operation in ("ListObjects", "ListObjectsV2"):
        plain.meta.events.unregister(
            f"before-parameter-build.s3.{operation}", botocore.handlers.set_list_objects_encoding_type_url
        )
    for call in (plain.list_objects, plain.list_objects_v2):
        page = call(Bucket="edges", Prefix="a b+c/", Delimiter="&")
        assert "EncodingType" not in page, page
        assert page["Prefix"] == "a b+c/" and page["Delimiter"] == "&", page
        assert [item["Key"] for item in page["Contents"]] == ["a b+c/g"], page
        assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a b+c/d&"], page
    for key in keys:
        S3.delete_object(Bucket="edges", Key=key)
    S3.delete_bucket(Bucket="edges")


def sigv4_headers(method, url, payload_hash, headers):
    """`headers` plus SigV4 signature headers (botocore's signer, payload hash as given)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.Session().get_credentials().get_frozen_credentials()
    request = AWSRequest(method=method, url=url, headers={"X-Amz-Content-SHA256": payload_hash, **headers})

    class Signer(S3SigV4Auth):
        def payload(self, request):
            return payload_hash

    Signer(credentials, "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items()), credentials.secret_key


def aws_chunked(body, chunk_size, mode, signed_headers, secret_key):
    """The aws-chunked encoding of `body` in `mode` (signed chunks chained from the seed
    signature, or unsigned), with a CRC32 trailer for the -TRAILER modes."""
    import hmac

    signed = mode.startswith("STREAMING-AWS4-HMAC-SHA256")
    trailer = mode.endswith("TRAILER")
    amz_date = signed_headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    previous = signed_headers["Authorization"].split("Signature=")[1]

    def hmac_sha256(key, message):
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    key = hmac_sha256(hmac_sha256(hmac_sha256(hmac_sha256(("AWS4" + secret_key).encode(), amz_date[:8]), "us-east-1"), "s3"), "aws4_request")
    empty = hashlib.sha256(b"").hexdigest()
    out = bytearray()
    for chunk in [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)] + [b""]:
        if signed:
            to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, empty, hashlib.sha256(chunk).hexdigest()])
            previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
            out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode()
        else:
            out += f"{len(chunk):x}\r\n".encode()
        if chunk or not trailer:
            out += chunk + b"\r\n"
    if trailer:
        line = f"x-amz-checksum-crc32:{b64(zlib.crc32(body).to_bytes(4, 'big'))}"
        out += line.encode() + b"\r\n"
        if signed:
            to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous, hashlib.sha256((line + "\n").encode()).hexdigest()])
            out += b"x-amz-trailer-signature:" + hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest().encode() + b"\r\n"
        out += b"\r\n"
    return bytes(out)


@test
def bodies_without_content_length():
    """Chunked transfer encoding, no Content-Length, in every x-amz-content-sha256 mode that
    allows it: UNSIGNED-PAYLOAD, and the three aws-chunked modes (whose length is the signed
    x-amz-decoded-content-length)."""
    import urllib.parse

    body = data(300 * 1024 + 5, 71)
    modes = [
        "UNSIGNED-PAYLOAD",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    ]
    for mode in modes:
        key = f"chunked {mode}"
        url = f"{ENDPOINT}/alpha/{urllib.parse.quote(key)}"
        extra = {}
        if mode != "UNSIGNED-PAYLOAD":
            extra = {"Content-Encoding": "gzip, aws-chunked", "X-Amz-Decoded-Content-Length": str(len(body))}
            if mode.endswith("TRAILER"):
                extra["X-Amz-Trailer"] = "x-amz-checksum-crc32"
        headers, secret = sigv4_headers("PUT", url, mode, extra)
        if mode == "UNSIGNED-PAYLOAD":
            payload = body
        else:
            payload = aws_chunked(body, 64 * 1024, mode, headers, secret)
        pieces = [payload[i : i + 50_000] for i in range(0, len(payload), 50_000)]
        status, _, answer = raw_request("PUT", url, headers, chunks=pieces)
        assert status == 200, (mode, status, answer)
        got = S3.get_object(Bucket="alpha", Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == body, mode
        assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"', mode
        if mode != "UNSIGNED-PAYLOAD":
            assert got["ContentEncoding"] == "gzip", (mode, got.get("ContentEncoding"))
        if mode.endswith("TRAILER"):
            assert got["ChecksumCRC32"] == b64(zlib.crc32(body).to_bytes(4, "big")), mode


@test
def put_object_headers_and_digests():
    S3.put_object(Bucket="alpha", Key="encoded", Body=b"x", ContentEncoding="gzip, aws-chunked")
    assert S3.head_object(Bucket="alpha", Key="encoded")["ContentEncoding"] == "gzip"
    S3.put_object(Bucket="alpha", Key="encoded", Body=b"x", ContentEncoding="aws-chunked")
    assert "ContentEncoding" not in S3.head_object(Bucket="alpha", Key="encoded")
    when = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    S3.put_object(Bucket="alpha", Key="expiring", Body=b"x", Expires=when)
    for answer in (S3.head_object(Bucket="alpha", Key="expiring"), S3.get_object(Bucket="alpha", Key="expiring")):
        assert answer["ExpiresString"] == "Tue, 06 May 2031 07:08:09 GMT", answer
    assert error_code(S3.put_object, Bucket="alpha", Key="empty-md5", Body=b"x", ContentMD5="") == ("InvalidDigest", 400)
    assert error_code(S3.put_object, Bucket="alpha", Key="empty-md5", Body=b"x", ContentMD5="bm90LW1kNQ==") == ("InvalidDigest", 400)
    assert error_code(S3.head_object, Bucket="alpha", Key="empty-md5")[1] == 404
    # A conditional GET that matches answers 304 with the ETag (and Last-Modified).
    put = S3.put_object(Bucket="alpha", Key="revalidated", Body=b"cache me")
    try:
        S3.get_object(Bucket="alpha", Key="revalidated", IfNoneMatch=put["ETag"])
        raise AssertionError("a matching If-None-Match must answer 304")
    except botocore.exceptions.ClientError as error:
        headers = error.response["ResponseMetadata"]["HTTPHeaders"]
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 304
        assert headers["etag"] == put["ETag"], headers
        assert "last-modified" in headers, headers


@test
def multipart_part_resent_and_copy_ranges():
    part_size = 5 * 1024 * 1024
    upload = S3.create_multipart_upload(Bucket="alpha", Key="resent")["UploadId"]
    first = S3.upload_part(Bucket="alpha", Key="resent", UploadId=upload, PartNumber=1, Body=data(part_size, 81))
    second = S3.upload_part(Bucket="alpha", Key="resent", UploadId=upload, PartNumber=1, Body=data(part_size, 82))
    assert first["ETag"] != second["ETag"]
    tail = S3.upload_part(Bucket="alpha", Key="resent", UploadId=upload, PartNumber=2, Body=b"tail")
    listed = S3.list_parts(Bucket="alpha", Key="resent", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == [(1, second["ETag"]), (2, tail["ETag"])]
    assert error_code(
        S3.complete_multipart_upload, Bucket="alpha", Key="resent", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": tail["ETag"]}]},
    ) == ("InvalidPart", 400)
    S3.complete_multipart_upload(
        Bucket="alpha", Key="resent", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": second["ETag"]}, {"PartNumber": 2, "ETag": tail["ETag"]}]},
    )
    assert S3.get_object(Bucket="alpha", Key="resent")["Body"].read() == data(part_size, 82) + b"tail"
    copy = S3.create_multipart_upload(Bucket="alpha", Key="copy-ranges")["UploadId"]
    size = S3.head_object(Bucket="alpha", Key="source")["ContentLength"]
    for bad, code in [
        (f"bytes=0-{size}", "InvalidRange"),
        ("bytes=10-5", "InvalidRange"),
        (f"bytes={size}-{size + 10}", "InvalidRange"),
        ("bytes=-5", "InvalidArgument"),
        ("bytes=5-", "InvalidArgument"),
        ("items=0-5", "InvalidArgument"),
    ]:
        got = error_code(
            S3.upload_part_copy, Bucket="alpha", Key="copy-ranges", UploadId=copy, PartNumber=1,
            CopySource={"Bucket": "alpha", "Key": "source"}, CopySourceRange=bad,
        )
        assert got[0] == code, (bad, got)
    assert "Parts" not in S3.list_parts(Bucket="alpha", Key="copy-ranges", UploadId=copy)
    S3.abort_multipart_upload(Bucket="alpha", Key="copy-ranges", UploadId=copy)


@test
def object_attributes_and_torrent():
    part_size = 5 * 1024 * 1024
    bodies = [data(part_size, 91), data(part_size, 92), data(10, 93)]
    upload = S3.create_multipart_upload(Bucket="alpha", Key="attributes", ChecksumAlgorithm="CRC32")["UploadId"]
    parts = [
        S3.upload_part(Bucket="alpha", Key="attributes", UploadId=upload, PartNumber=n, Body=b, ChecksumAlgorithm="CRC32")
        for n, b in enumerate(bodies, start=1)
    ]
    done = S3.complete_multipart_upload(
        Bucket="alpha", Key="attributes", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": p["ETag"], "ChecksumCRC32": p["ChecksumCRC32"]} for n, p in enumerate(parts, start=1)]},
    )
    everything = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    attributes = S3.get_object_attributes(Bucket="alpha", Key="attributes", ObjectAttributes=everything)
    assert attributes["ETag"].strip('"') == done["ETag"].strip('"'), attributes
    assert attributes["ObjectSize"] == sum(len(b) for b in bodies)
    assert attributes["StorageClass"] == "STANDARD"
    assert attributes["Checksum"]["ChecksumCRC32"] == done["ChecksumCRC32"] and done["ChecksumCRC32"].endswith("-3")
    assert attributes["Checksum"]["ChecksumType"] == "COMPOSITE"
    listed = attributes["ObjectParts"]
    assert listed["TotalPartsCount"] == 3 and not listed["IsTruncated"]
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in listed["Parts"]] == [
        (n, len(b), p["ChecksumCRC32"]) for n, (b, p) in enumerate(zip(bodies, parts), start=1)
    ]
    page = S3.get_object_attributes(Bucket="alpha", Key="attributes", ObjectAttributes=["ObjectParts"], MaxParts=2)["ObjectParts"]
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 2 and len(page["Parts"]) == 2, page
    rest = S3.get_object_attributes(
        Bucket="alpha", Key="attributes", ObjectAttributes=["ObjectParts"], MaxParts=2, PartNumberMarker=2
    )["ObjectParts"]
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and not rest["IsTruncated"], rest
    body = data(777, 94)
    S3.put_object(Bucket="alpha", Key="attributes-single", Body=body, ChecksumAlgorithm="SHA256")
    single = S3.get_object_attributes(Bucket="alpha", Key="attributes-single", ObjectAttributes=everything)
    assert single["ObjectSize"] == 777 and "ObjectParts" not in single
    assert single["Checksum"]["ChecksumSHA256"] == b64(hashlib.sha256(body).digest())
    only_size = S3.get_object_attributes(Bucket="alpha", Key="attributes-single", ObjectAttributes=["ObjectSize"])
    assert "ETag" not in only_size and "Checksum" not in only_size
    assert error_code(S3.get_object_attributes, Bucket="alpha", Key="absent", ObjectAttributes=["ETag"]) == ("NoSuchKey", 404)
    # No object is a torrent: 404 NoSuchKey, as S3 answers.
    assert error_code(S3.get_object_torrent, Bucket="alpha", Key="attributes-single") == ("NoSuchKey", 404)


@test
def presigned_url_expiry_is_bounded():
    v4 = client(signature_version="s3v4")
    too_long = v4.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "source"}, ExpiresIn=604801)
    status, _, body = raw_request("GET", too_long)
    assert status == 400 and b"AuthorizationQueryParametersError" in body, (status, body)
    week = v4.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "source"}, ExpiresIn=604800)
    assert raw_request("GET", week)[0] == 200
    negative = week.replace("X-Amz-Expires=604800", "X-Amz-Expires=-1")
    status, _, body = raw_request("GET", negative)
    assert status == 400 and b"AuthorizationQueryParametersError" in body, (status, body)
    # Signed two hours ago for one minute: expired.
    import botocore.auth

    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: real(remove_tzinfo) - datetime.timedelta(hours=2)
    try:
        expired = v4.generate_presigned_url("get_object", Params={"Bucket": "alpha", "Key": "source"}, ExpiresIn=60)
    finally:
        botocore.auth.get_current_datetime = real
    status, _, body = raw_request("GET", expired)
    assert status == 403 and b"AccessDenied" in body and b"Request has expired" in body, (status, body)


def form_post(url, fields, filename, content):
    """A browser form upload: multipart/form-data with `fields` in order, then the file."""
    boundary = "----zerog-form-" + hashlib.sha256(content).hexdigest()[:16]
    body = bytearray()
    for name, value in fields:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    return raw_request("POST", url, {"Content-Type": f"multipart/form-data; boundary={boundary}"}, bytes(body))


@test
def browser_form_uploads():
    v4 = client(signature_version="s3v4")
    conditions = [["starts-with", "$key", "forms/"], ["content-length-range", 1, 4096], ["starts-with", "$success_action_status", ""]]

    def presigned(key, status=None, redirect=None, expires=300, extra_conditions=()):
        fields = {}
        conds = list(conditions) + list(extra_conditions)
        if status is not None:
            fields["success_action_status"] = status
        if redirect is not None:
            fields["success_action_redirect"] = redirect
            conds.append({"success_action_redirect": redirect})
        post = v4.generate_presigned_post("alpha", key, Fields=fields, Conditions=conds, ExpiresIn=expires)
        return post["url"], list(post["fields"].items())

    content = b"hello from a form\n"
    url, fields = presigned("forms/${filename}", status="201")
    status, headers, body = form_post(url, fields, "hello.txt", content)
    assert status == 201, (status, body)
    etag = f'"{hashlib.md5(content).hexdigest()}"'
    assert b"<Key>forms/hello.txt</Key>" in body and b"<Bucket>alpha</Bucket>" in body, body
    assert etag.encode() in body.replace(b"&quot;", b'"'), body
    assert headers["etag"] == etag, headers
    assert S3.get_object(Bucket="alpha", Key="forms/hello.txt")["Body"].read() == content
    url, fields = presigned("forms/plain")
    status, headers, _ = form_post(url, fields, "ignored.txt", content)
    assert status == 204 and headers["etag"] == etag, (status, headers)
    url, fields = presigned("forms/ok", status="200")
    assert form_post(url, fields, "x", content)[0] == 200
    url, fields = presigned("forms/redirected", redirect="http://example.com/done")
    status, headers, _ = form_post(url, fields, "x", content)
    assert status == 303, status
    assert headers["location"] == f"http://example.com/done?bucket=alpha&key=forms%2Fredirected&etag=%22{hashlib.md5(content).hexdigest()}%22", headers
    # A field outside the policy's conditions, a key the policy does not allow, an expired
    # policy, a file over the range and a forged signature.
    url, fields = presigned("forms/denied")
    fields = [(name, "elsewhere/key" if name == "key" else value) for name, value in fields]
    status, _, body = form_post(url, fields, "x", content)
    assert status == 403 and b"AccessDenied" in body and b"Policy Condition failed" in body, (status, body)
    url, fields = presigned("forms/meta")
    status, _, body = form_post(url, fields + [("x-amz-meta-extra", "1")], "x", content)
    assert status == 403 and b"AccessDenied" in body, (status, body)
    url, fields = presigned("forms/expired", expires=-60)
    status, _, body = form_post(url, fields, "x", content)
    assert status == 403 and b"AccessDenied" in body, (status, body)
    url, fields = presigned("forms/large")
    status, _, body = form_post(url, fields, "x", b"x" * 5000)
    assert status == 400 and b"EntityTooLarge" in body, (status, body)
    url, fields = presigned("forms/forged")
    fields = [(name, "0" * 64 if name == "x-amz-signature" else value) for name, value in fields]
    status, _, body = form_post(url, fields, "x", content)
    assert status == 403 and b"SignatureDoesNotMatch" in body, (status, body)
    for key in ["forms/denied", "elsewhere/key", "forms/meta", "forms/expired", "forms/large", "forms/forged"]:
        assert error_code(S3.head_object, Bucket="alpha", Key=key)[1] == 404, key
    # Anonymous (no policy, no signature): the bucket's access decides, and alpha is private.
    status, _, body = form_post(f"{ENDPOINT}/alpha", [("key", "forms/anonymous")], "x", content)
    assert status == 403 and b"AccessDenied" in body, (status, body)


@test
def cors_rules_preflights_and_headers():
    S3.create_bucket(Bucket="web")
    S3.put_object(Bucket="web", Key="page", Body=b"<html/>")
    status, _, body = raw_request(
        "OPTIONS", f"{ENDPOINT}/web/page", {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    )
    assert status == 403 and b"CORS is not enabled" in body, (status, body)
    assert error_code(S3.get_bucket_cors, Bucket="web") == ("NoSuchCORSConfiguration", 404)
    rules = [
        {
            "ID": "app",
            "AllowedOrigins": ["https://app.example", "https://*.example.org"],
            "AllowedMethods": ["GET", "PUT"],
            "AllowedHeaders": ["content-type", "x-amz-*"],
            "ExposeHeaders": ["ETag", "x-amz-version-id"],
            "MaxAgeSeconds": 600,
        },
        {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
    ]
    S3.put_bucket_cors(Bucket="web", CORSConfiguration={"CORSRules": rules})
    assert S3.get_bucket_cors(Bucket="web")["CORSRules"] == rules
    # Preflights need no signature and are answered from the rules.
    status, headers, _ = raw_request(
        "OPTIONS",
        f"{ENDPOINT}/web/page",
        {
            "Origin": "https://a.example.org",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "Content-Type, X-Amz-Date",
        },
    )
    assert status == 200, (status, headers)
    assert headers["access-control-allow-origin"] == "https://a.example.org"
    assert headers["access-control-allow-methods"] == "GET, PUT"
    assert headers["access-control-allow-headers"] == "content-type, x-amz-date"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-version-id"
    assert headers["access-control-max-age"] == "600"
    status, headers, _ = raw_request("OPTIONS", f"{ENDPOINT}/web", {"Origin": "https://any.where", "Access-Control-Request-Method": "HEAD"})
    assert status == 200 and headers["access-control-allow-origin"] == "*", headers
    for refused in [
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        {"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"},
        {"Origin": "https://app.example", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"},
    ]:
        status, headers, body = raw_request("OPTIONS", f"{ENDPOINT}/web/page", refused)
        assert status == 403 and b"AccessForbidden" in body, (refused, status, body)
        assert "access-control-allow-origin" not in headers
    status, _, body = raw_request("OPTIONS", f"{ENDPOINT}/web/page", {"Access-Control-Request-Method": "GET"})
    assert status == 400, (status, body)
    assert raw_request("OPTIONS", f"{ENDPOINT}/no-such-web/x", {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})[0] == 404
    # A request with an allowed Origin gets the headers; signed, presigned or refused alike.
    v4 = client(signature_version="s3v4")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": "web", "Key": "page"}, ExpiresIn=60)
    status, headers, body = raw_request("GET", url, {"Origin": "https://app.example"})
    assert (status, body) == (200, b"<html/>")
    assert headers["access-control-allow-origin"] == "https://app.example", headers
    assert headers["access-control-expose-headers"] == "ETag, x-amz-version-id"
    status, headers, _ = raw_request("GET", f"{ENDPOINT}/web/page", {"Origin": "https://app.example"})
    assert status == 403 and headers["access-control-allow-origin"] == "https://app.example", (status, headers)
    status, headers, _ = raw_request("GET", url, {"Origin": "https://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in headers, headers
    assert "access-control-allow-origin" not in raw_request("GET", url)[1]
    with_origin = client()
    with_origin.meta.events.register("before-sign.s3.GetObject", lambda request, **_: request.headers.add_header("Origin", "https://app.example"))
    got = with_origin.get_object(Bucket="web", Key="page")
    assert got["ResponseMetadata"]["HTTPHeaders"]["access-control-allow-origin"] == "https://app.example"
    # Bad rules are refused whole: an unknown method, two wildcards, more than 100 rules,
    # more than 64 KiB of origins, methods and headers.
    for bad in [
        [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}],
        [{"AllowedOrigins": ["https://*.*.example"], "AllowedMethods": ["GET"]}],
        [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101,
        [{"AllowedOrigins": [f"https://{'o' * 8000}.example"], "AllowedMethods": ["GET"]}] * 9,
    ]:
        code = error_code(S3.put_bucket_cors, Bucket="web", CORSConfiguration={"CORSRules": bad})
        assert code[1] == 400, (code, bad[0], len(bad))
    assert S3.get_bucket_cors(Bucket="web")["CORSRules"] == rules
    # The limits themselves are allowed.
    at_limits = [{"AllowedOrigins": [f"https://{'o' * 600}.example"], "AllowedMethods": ["GET"]}] * 100
    S3.put_bucket_cors(Bucket="web", CORSConfiguration={"CORSRules": at_limits})
    assert len(S3.get_bucket_cors(Bucket="web")["CORSRules"]) == 100
    S3.put_bucket_cors(Bucket="web", CORSConfiguration={"CORSRules": rules})
    S3.delete_bucket_cors(Bucket="web")
    assert error_code(S3.get_bucket_cors, Bucket="web") == ("NoSuchCORSConfiguration", 404)
    status, headers, _ = raw_request("GET", url, {"Origin": "https://app.example"})
    assert status == 200 and "access-control-allow-origin" not in headers, headers


def space():
    """The gateway's space accounting (GET /_zerog/space, signed with botocore's signer)."""
    import json

    url = f"{ENDPOINT}/_zerog/space"
    headers, _ = sigv4_headers("GET", url, hashlib.sha256(b"").hexdigest(), {})
    status, _, body = raw_request("GET", url, headers)
    assert status == 200, (status, body)
    return json.loads(body)


@test
def versioning():
    S3.create_bucket(Bucket="versioned")
    assert "Status" not in S3.get_bucket_versioning(Bucket="versioned")
    put = S3.put_object(Bucket="versioned", Key="doc", Body=b"before")
    assert "VersionId" not in put
    S3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    assert S3.get_bucket_versioning(Bucket="versioned")["Status"] == "Enabled"
    v1 = S3.put_object(Bucket="versioned", Key="doc", Body=b"one")["VersionId"]
    v2 = S3.put_object(Bucket="versioned", Key="doc", Body=b"two")["VersionId"]
    assert v1 and v2 and v1 != v2 and "null" not in (v1, v2)
    got = S3.get_object(Bucket="versioned", Key="doc")
    assert got["Body"].read() == b"two" and got["VersionId"] == v2
    for version, body in [(v1, b"one"), (v2, b"two"), ("null", b"before")]:
        got = S3.get_object(Bucket="versioned", Key="doc", VersionId=version)
        assert got["Body"].read() == body and got["VersionId"] == version, version
        assert S3.head_object(Bucket="versioned", Key="doc", VersionId=version)["ContentLength"] == len(body)
    assert error_code(S3.get_object, Bucket="versioned", Key="doc", VersionId="0" * 16) == ("NoSuchVersion", 404)
    assert error_code(S3.get_object, Bucket="versioned", Key="doc", VersionId="bogus")[0] == "InvalidArgument"
    before = space()
    deleted = S3.delete_object(Bucket="versioned", Key="doc")
    marker = deleted["VersionId"]
    assert deleted["DeleteMarker"] is True and marker not in (v1, v2)
    try:
        S3.get_object(Bucket="versioned", Key="doc")
        raise AssertionError("a deleted key is 404")
    except botocore.exceptions.ClientError as error:
        headers = error.response["ResponseMetadata"]["HTTPHeaders"]
        assert error.response["Error"]["Code"] == "NoSuchKey", error.response
        assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker, headers
    assert error_code(S3.head_object, Bucket="versioned", Key="doc")[1] == 404
    assert error_code(S3.get_object, Bucket="versioned", Key="doc", VersionId=marker) == ("MethodNotAllowed", 405)
    assert "Contents" not in S3.list_objects_v2(Bucket="versioned")
    # Versions are metadata: deleting the key made nothing dead.
    assert space()["dead_files"] == before["dead_files"] and space()["versions"] == before["versions"] + 2
    listing = S3.list_object_versions(Bucket="versioned")
    assert [(m["VersionId"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [(marker, True)]
    assert [(v["VersionId"], v["IsLatest"], v["Size"]) for v in listing["Versions"]] == [
        (v2, False, 3), (v1, False, 3), ("null", False, 6)
    ], listing["Versions"]
    assert listing["Versions"][0]["ETag"] == f'"{hashlib.md5(b"two").hexdigest()}"'
    # Page by page, one entry a page.
    seen, key_marker, version_marker = [], None, None
    while True:
        markers = {"KeyMarker": key_marker, "VersionIdMarker": version_marker} if key_marker else {}
        page = S3.list_object_versions(Bucket="versioned", MaxKeys=1, **markers)
        seen += [v["VersionId"] for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if not page["IsTruncated"]:
            break
        key_marker, version_marker = page["NextKeyMarker"], page["NextVersionIdMarker"]
    assert seen == [marker, v2, v1, "null"], seen
    paginated = S3.get_paginator("list_object_versions").paginate(Bucket="versioned", PaginationConfig={"PageSize": 2})
    assert sum(len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) for p in paginated) == 4
    # Deleting the marker brings the key back; deleting a version for good makes it dead.
    S3.delete_object(Bucket="versioned", Key="doc", VersionId=marker)
    assert S3.get_object(Bucket="versioned", Key="doc")["Body"].read() == b"two"
    gone = S3.delete_object(Bucket="versioned", Key="doc", VersionId=v2)
    assert gone["VersionId"] == v2 and "DeleteMarker" not in gone, gone
    assert S3.get_object(Bucket="versioned", Key="doc")["VersionId"] == v1
    after = space()
    assert after["dead_files"] == before["dead_files"] + 1 and after["dead_bytes"] > before["dead_bytes"], (before, after)
    # Copies from a version, multipart and DeleteObjects name versions too.
    copied = S3.copy_object(Bucket="versioned", Key="copy", CopySource={"Bucket": "versioned", "Key": "doc", "VersionId": "null"})
    assert copied["CopySourceVersionId"] == "null" and copied["VersionId"]
    assert S3.get_object(Bucket="versioned", Key="copy")["Body"].read() == b"before"
    upload = S3.create_multipart_upload(Bucket="versioned", Key="multi")["UploadId"]
    part = S3.upload_part(Bucket="versioned", Key="multi", UploadId=upload, PartNumber=1, Body=b"part")
    done = S3.complete_multipart_upload(
        Bucket="versioned", Key="multi", UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    )
    assert done["VersionId"]
    result = S3.delete_objects(
        Bucket="versioned",
        Delete={"Objects": [{"Key": "copy"}, {"Key": "multi", "VersionId": done["VersionId"]}]},
    )
    by_key = {d["Key"]: d for d in result["Deleted"]}
    assert by_key["copy"]["DeleteMarker"] is True and by_key["copy"]["DeleteMarkerVersionId"], result
    assert by_key["multi"]["VersionId"] == done["VersionId"] and "DeleteMarker" not in by_key["multi"], result
    assert error_code(S3.head_object, Bucket="versioned", Key="multi")[1] == 404
    # Suspended: writes are the null version, replacing the one there.
    S3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Suspended"})
    assert S3.get_bucket_versioning(Bucket="versioned")["Status"] == "Suspended"
    S3.put_object(Bucket="versioned", Key="doc", Body=b"suspended")
    got = S3.get_object(Bucket="versioned", Key="doc")
    assert got["Body"].read() == b"suspended" and got["VersionId"] == "null"
    ids = [v["VersionId"] for v in S3.list_object_versions(Bucket="versioned", Prefix="doc")["Versions"]]
    assert ids == ["null", v1], ids
    assert error_code(
        S3.put_bucket_versioning, Bucket="versioned", VersioningConfiguration={"Status": "Sometimes"}
    )[1] == 400
    # Versions and markers keep the bucket; removing them all lets it go.
    assert error_code(S3.delete_bucket, Bucket="versioned") == ("BucketNotEmpty", 409)
    while True:
        page = S3.list_object_versions(Bucket="versioned")
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        if not entries:
            break
        S3.delete_objects(
            Bucket="versioned", Delete={"Objects": [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in entries]}
        )
    S3.delete_bucket(Bucket="versioned")


@test
def anonymous_and_wrong_keys_are_denied():
    for url in [f"{ENDPOINT}/", f"{ENDPOINT}/alpha", f"{ENDPOINT}/alpha/source"]:
        try:
            urllib.request.urlopen(url)
            raise AssertionError(f"anonymous GET {url} must be denied")
        except urllib.error.HTTPError as error:
            assert error.code == 403, (url, error.code)
            assert b"AccessDenied" in error.read()
    wrong = boto3.client(
        "s3", endpoint_url=ENDPOINT, aws_access_key_id="zerog-dev", aws_secret_access_key="wrong",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    assert error_code(wrong.list_buckets) == ("SignatureDoesNotMatch", 403)
    unknown = boto3.client(
        "s3", endpoint_url=ENDPOINT, aws_access_key_id="nobody", aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    assert error_code(unknown.list_buckets)[1] == 403


@test
def unsupported_operations_answer_not_implemented():
    """What docs/gateway.md lists as NotImplemented answers 501, and a write asking for what
    the gateway does not keep (tags, Object Lock, customer encryption keys) is refused whole."""
    bucket = {"Bucket": "alpha"}
    obj = {"Bucket": "alpha", "Key": "source"}
    calls = [
        (S3.get_bucket_lifecycle_configuration, bucket),
        (S3.put_bucket_lifecycle_configuration, {**bucket, "LifecycleConfiguration": {"Rules": [
            {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}
        ]}}),
        (S3.get_bucket_tagging, bucket),
        (S3.put_bucket_tagging, {**bucket, "Tagging": {"TagSet": []}}),
        (S3.get_object_tagging, obj),
        (S3.put_object_tagging, {**obj, "Tagging": {"TagSet": []}}),
        (S3.delete_object_tagging, obj),
        (S3.get_object_lock_configuration, bucket),
        (S3.get_object_retention, obj),
        (S3.get_object_legal_hold, obj),
        (S3.get_bucket_encryption, bucket),
        (S3.get_bucket_website, bucket),
        (S3.get_bucket_replication, bucket),
        (S3.get_bucket_logging, bucket),
        (S3.get_bucket_notification_configuration, bucket),
        (S3.get_bucket_ownership_controls, bucket),
        (S3.get_bucket_accelerate_configuration, bucket),
        (S3.get_bucket_request_payment, bucket),
        (S3.list_bucket_analytics_configurations, bucket),
        (S3.list_bucket_inventory_configurations, bucket),
        (S3.list_bucket_metrics_configurations, bucket),
        (S3.list_bucket_intelligent_tiering_configurations, bucket),
        (S3.restore_object, {**obj, "RestoreRequest": {"Days": 1}}),
        (S3.select_object_content, {**obj, "Expression": "select * from s3object", "ExpressionType": "SQL",
                                    "InputSerialization": {"CSV": {}}, "OutputSerialization": {"CSV": {}}}),
        (S3.put_bucket_versioning, {**bucket, "MFA": "device 123456",
                                    "VersioningConfiguration": {"Status": "Enabled", "MFADelete": "Enabled"}}),
        (S3.put_bucket_acl, {**bucket, "ACL": "log-delivery-write"}),
        (S3.put_object, {**obj, "Key": "aws-exec-read", "Body": b"x", "ACL": "aws-exec-read"}),
        (S3.create_bucket, {"Bucket": "locked", "ObjectLockEnabledForBucket": True}),
    ]
    refused_writes = [
        {"Tagging": "team=storage"},
        {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": datetime.datetime(2031, 1, 1)},
        {"ObjectLockLegalHoldStatus": "ON"},
        {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32},
    ]
    for settings in refused_writes:
        calls += [
            (S3.put_object, {**obj, "Key": "unkept", "Body": b"x", **settings}),
            (S3.copy_object, {**obj, "Key": "unkept", "CopySource": {"Bucket": "alpha", "Key": "source"}, **settings}),
            (S3.create_multipart_upload, {**obj, "Key": "unkept", **settings}),
        ]
    for call, arguments in calls:
        assert error_code(call, **arguments) == ("NotImplemented", 501), (call.__name__, arguments)
    assert error_code(S3.head_object, Bucket="alpha", Key="unkept")[1] == 404
    assert error_code(S3.head_bucket, Bucket="locked")[1] == 404
    assert "Uploads" not in S3.list_multipart_uploads(Bucket="alpha", Prefix="unkept")
    # A form upload's tagging field is refused too.
    post = client(signature_version="s3v4").generate_presigned_post(
        "alpha", "unkept", Fields={"tagging": "<Tagging/>"}, Conditions=[{"tagging": "<Tagging/>"}]
    )
    status, _, body = form_post(post["url"], list(post["fields"].items()), "x", b"x")
    assert status == 501 and b"NotImplemented" in body, (status, body)


def main():
    passed = failed = 0
    only = sys.argv[1:]
    for function in TESTS:
        if only and function.__name__ not in only:
            continue
        started = time.monotonic()
        try:
            function()
            passed += 1
            print(f"ok   {function.__name__} ({time.monotonic() - started:.2f} s)", flush=True)
        except Exception as error:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {function.__name__}: {type(error).__name__}: {error}", flush=True)
            import traceback

            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
