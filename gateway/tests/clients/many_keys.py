"""Writes N keys (deep prefixes, awkward characters) with boto3 and lists them back page by page
with ListObjectsV2 continuation tokens, ListObjects v1 markers and a delimiter. Most objects
are empty (metadata only, no storage file); every hundredth carries bytes, so the listing also
covers objects stored on the node."""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

COUNT = int(sys.argv[1])
S3 = boto3.client(
    "s3",
    endpoint_url=os.environ["S3_ENDPOINT"],
    config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
)
S3.create_bucket(Bucket="many")
keys = [f"group{index % 7}/sub {index % 13}/key+{index:05d}&=ü" for index in range(COUNT)]


def put(item):
    index, key = item
    body = f"payload {index}".encode() if index % 100 == 0 else b""
    S3.put_object(Bucket="many", Key=key, Body=body)


with ThreadPoolExecutor(16) as pool:
    list(pool.map(put, enumerate(keys)))

listed = []
token = None
pages = 0
while True:
    extra = {"ContinuationToken": token} if token else {}
    page = S3.list_objects_v2(Bucket="many", MaxKeys=1000, **extra)
    pages += 1
    listed += [item["Key"] for item in page.get("Contents", [])]
    if not page["IsTruncated"]:
        break
    token = page["NextContinuationToken"]
assert listed == sorted(keys), "v2 listing differs"
assert pages == -(-COUNT // 1000), pages

marker_listed = []
marker = ""
while True:
    page = S3.list_objects(Bucket="many", Marker=marker, MaxKeys=777)
    contents = page.get("Contents", [])
    marker_listed += [item["Key"] for item in contents]
    if not page["IsTruncated"]:
        break
    marker = contents[-1]["Key"]
assert marker_listed == sorted(keys), "v1 listing differs"

groups = S3.list_objects_v2(Bucket="many", Delimiter="/")
assert [p["Prefix"] for p in groups["CommonPrefixes"]] == [f"group{g}/" for g in range(7)]
inner = S3.list_objects_v2(Bucket="many", Prefix="group3/", Delimiter="/")
assert len(inner["CommonPrefixes"]) == 13
print(f"listed {len(listed)} keys in {pages} pages")
