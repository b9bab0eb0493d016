"""boto3 against the zerog S3 gateway: the S3 API surface the gateway promises, driven by the
real AWS SDK for Python. Run by gateway/tests/clients.rs with S3_ENDPOINT and dev keys in the
environment; every check raises on failure and the script exits non-zero."""

import base64
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
    assert error_code(S3.create_bucket, Bucket="alpha") == ("BucketAlreadyOwnedByYou", 409)
    S3.head_bucket(Bucket="alpha")
    assert error_code(S3.head_bucket, Bucket="missing-bucket")[1] == 404
    names = [bucket["Name"] for bucket in S3.list_buckets()["Buckets"]]
    assert "alpha" in names, names
    assert S3.get_bucket_location(Bucket="alpha").get("LocationConstraint") in (None, "")
    S3.create_bucket(Bucket="to-delete")
    S3.put_object(Bucket="to-delete", Key="x", Body=b"x")
    assert error_code(S3.delete_bucket, Bucket="to-delete") == ("BucketNotEmpty", 409)
    S3.delete_object(Bucket="to-delete", Key="x")
    S3.delete_bucket(Bucket="to-delete")
    assert error_code(S3.head_bucket, Bucket="to-delete")[1] == 404
    assert error_code(S3.create_bucket, Bucket="Bad_Name")[1] == 400


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
    assert error_code(S3.get_bucket_policy, Bucket="alpha") == ("NotImplemented", 501)
    assert error_code(S3.put_object_tagging, Bucket="alpha", Key="source", Tagging={"TagSet": []}) == (
        "NotImplemented",
        501,
    )


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
