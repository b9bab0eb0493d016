//! The S3 operations (s3s's `S3` trait) over the metadata store and the node client. Each
//! operation validates its input, moves bytes between the client and the node (bodies are
//! hashed on the way in, segments verified on the way out) and commits metadata in one store
//! transaction; any failure before the commit leaves the store as it was.

use crate::access::{self, Action, Decision, ObjectCheck};
use crate::acl::{self, Acl, Permission};
use crate::body::{self, Received, Wanted};
use crate::error::{Error, Result};
use crate::store::{
    BucketRecord, BucketState, Checksums, Listed, NULL_VERSION, ObjectRecord, PartRecord, Piece,
    Store, UploadRecord, Versioning, WriteCondition,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use s3s::dto::{self, ETag, ETagCondition, StreamingBlob, Timestamp};
use s3s::{S3, S3Request, S3Response, S3Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The region whose CreateBucket of an owned bucket succeeds and whose location constraint is
/// empty.
const US_EAST_1: &str = "us-east-1";

/// What the gateway refuses, by size and count.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest object (or part) body, as S3's single-PUT limit.
    pub max_object_bytes: u64,
    /// Smallest part of a multipart upload, the last excepted.
    pub min_part_bytes: u64,
    pub max_parts: i32,
    pub max_keys: usize,
    pub max_key_bytes: usize,
    pub max_metadata_bytes: usize,
    pub max_delete_keys: usize,
    /// Request bodies held in memory at once (beyond small ones); larger ones are spooled.
    pub max_body_memory_bytes: u64,
    /// Largest file of a browser form upload (POST object): s3s holds it in memory whole.
    pub max_form_upload_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_object_bytes: 5 * 1024 * 1024 * 1024,
            min_part_bytes: 5 * 1024 * 1024,
            max_parts: 10_000,
            max_keys: 1000,
            max_key_bytes: 1024,
            max_metadata_bytes: 2048,
            max_delete_keys: 1000,
            max_body_memory_bytes: 1024 * 1024 * 1024,
            max_form_upload_bytes: 64 * 1024 * 1024,
        }
    }
}

pub struct Gateway {
    store: Arc<Store>,
    node: client::Client,
    payer: Arc<client::Payer>,
    spool_dir: PathBuf,
    body_memory: body::MemoryBudget,
    limits: Limits,
    region: String,
    /// The configured access keys: the users grants and policies may name.
    pub(crate) users: Arc<BTreeSet<String>>,
}

impl Gateway {
    pub fn new(
        store: Arc<Store>,
        node: client::Client,
        payer: client::Payer,
        spool_dir: PathBuf,
        limits: Limits,
        region: String,
        users: BTreeSet<String>,
    ) -> Gateway {
        Gateway {
            store,
            node,
            payer: Arc::new(payer),
            spool_dir,
            body_memory: body::MemoryBudget::new(limits.max_body_memory_bytes),
            limits,
            region,
            users: Arc::new(users),
        }
    }

    /// Runs a store operation on the blocking pool (redb commits fsync).
    pub(crate) async fn store<T, F>(&self, operation: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || operation(&store))
            .await
            .map_err(|error| Error::Task {
                detail: error.to_string(),
            })?
    }

    async fn object(&self, bucket: &str, key: &str) -> Result<ObjectRecord> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.store(move |store| store.object(&bucket, &key)).await
    }

    /// The bucket's state as requests see it (404 NoSuchBucket if it is gone).
    pub(crate) fn bucket_state(&self, bucket: &str) -> Result<Arc<BucketState>> {
        self.store
            .cached_bucket(bucket)
            .ok_or_else(|| Error::NoSuchBucket {
                bucket: bucket.to_string(),
            })
    }

    /// Decides, in a handler, what [`Access`](crate::access::Access) leaves to it: `action` by
    /// `user` on `key` of `bucket`, an object's own grants included (`record`; `None` for one
    /// that does not exist, which only the bucket's owner and its listers may learn).
    pub(crate) fn authorize(
        &self,
        user: Option<&str>,
        bucket: &str,
        action: Action,
        key: Option<&str>,
        record: Option<&ObjectRecord>,
    ) -> Result<()> {
        let state = self.bucket_state(bucket)?;
        match access::decide(bucket, &state, user, action, key) {
            Decision::Allow => Ok(()),
            Decision::Deny => Err(access::denied()),
            Decision::Object(permission) => match record {
                Some(record) if access::object_allows(&state.record, record, user, permission) => {
                    Ok(())
                }
                _ => Err(access::denied()),
            },
        }
    }

    /// An object a request may read (its ACL included, `permission`), after what
    /// [`Access`](crate::access::Access) left to the object. A missing object is NoSuchKey to
    /// those who may list the bucket, AccessDenied to others.
    pub(crate) async fn object_for(
        &self,
        user: Option<&str>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        check: Option<Permission>,
    ) -> Result<ObjectRecord> {
        let found = {
            let (bucket, key, version) = (
                bucket.to_string(),
                key.to_string(),
                version.map(str::to_string),
            );
            self.store(move |store| store.object_version(&bucket, &key, version.as_deref()))
                .await
        };
        let Some(permission) = check else {
            return found;
        };
        let state = self.bucket_state(bucket)?;
        match found {
            Ok(record) if access::object_allows(&state.record, &record, user, permission) => {
                Ok(record)
            }
            Ok(_) => Err(access::denied()),
            Err(
                missing @ (Error::NoSuchKey { .. }
                | Error::KeyDeleted { .. }
                | Error::NoSuchVersion { .. }
                | Error::DeleteMarkerVersion { .. }),
            ) => match access::decide(bucket, &state, user, Action::ListBucket, None) {
                Decision::Allow => Err(missing),
                _ => Err(access::denied()),
            },
            Err(other) => Err(other),
        }
    }

    /// A source object of a copy, which its copier must be allowed to read.
    async fn copy_source_object(
        &self,
        user: Option<&str>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ObjectRecord> {
        let state = self.bucket_state(bucket)?;
        let check = match access::decide(bucket, &state, user, Action::GetObject, Some(key)) {
            Decision::Allow => None,
            Decision::Deny => return Err(access::denied()),
            Decision::Object(permission) => Some(permission),
        };
        self.object_for(user, bucket, key, version, check).await
    }

    /// The ACL a write asks for (`x-amz-acl`, or `x-amz-grant-*` headers), refused when the
    /// bucket blocks public ACLs and it is public. `None`: private.
    pub(crate) fn requested_acl(
        &self,
        bucket: &BucketRecord,
        owner: &str,
        canned: Option<&str>,
        grants: &[(Permission, Option<&str>)],
    ) -> Result<Option<Acl>> {
        let from_grants = Acl::from_grant_headers(grants, &self.users)?;
        let acl = match (canned, from_grants) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidRequest {
                    detail: "Specifying both Canned ACLs and Header Grants is not allowed".into(),
                });
            }
            (Some(canned), None) => Some(Acl::canned(canned, owner, &bucket.owner)?),
            (None, grants) => grants,
        };
        if let Some(acl) = &acl {
            check_public_acl(bucket, acl)?;
        }
        Ok(acl)
    }

    async fn require_bucket(&self, bucket: &str) -> Result<BucketRecord> {
        let bucket = bucket.to_string();
        self.store(move |store| store.bucket(&bucket)).await
    }

    /// Stores a received body as one 0G file on the node (none for an empty body) and returns
    /// the piece that covers it. The tree built while the body arrived spares a second pass.
    async fn store_bytes(
        &self,
        spool: &body::Spool,
        size_bytes: u64,
        tree: Option<&client::FileTree>,
    ) -> Result<Vec<Piece>> {
        if size_bytes == 0 {
            return Ok(Vec::new());
        }
        let source = spool.source();
        let uploaded = match tree {
            Some(tree) => {
                client::upload_with_tree(&self.node, source, tree, &self.payer, &client::NoProgress)
                    .await?
            }
            None => client::upload(&self.node, source, &self.payer, &client::NoProgress).await?,
        };
        Ok(vec![Piece {
            root: uploaded.file.root,
            tx_seq: uploaded.file.tx_seq,
            file_size: uploaded.file.size_bytes,
            offset: 0,
            length: size_bytes,
        }])
    }

    /// Stores a received body and finishes its MD5 beside the upload: the pieces and the MD5.
    async fn store_received(&self, received: Received) -> Result<(Vec<Piece>, [u8; 16])> {
        let Received {
            spool,
            size_bytes,
            tree,
            md5,
            ..
        } = received;
        let (pieces, md5) = tokio::try_join!(
            self.store_bytes(&spool, size_bytes, tree.as_ref()),
            md5.get()
        )?;
        Ok((pieces, md5))
    }

    /// Receives a body, checking it against Content-MD5 and the checksums given in headers or
    /// trailers.
    #[allow(clippy::too_many_arguments)]
    async fn receive<T>(
        &self,
        request: &S3Request<T>,
        body: Option<StreamingBlob>,
        content_length: Option<i64>,
        content_md5: Option<&str>,
        algorithm: Option<&dto::ChecksumAlgorithm>,
        mut given: Checksums,
    ) -> Result<Received> {
        let mut wanted = Wanted::covering(&given);
        if let Some(algorithm) = algorithm {
            wanted.add(algorithm.as_str())?;
        }
        if let Some(trailer) = request.headers.get("x-amz-trailer") {
            let name = trailer.to_str().unwrap_or("").trim().to_ascii_lowercase();
            if let Some(algorithm) = name.strip_prefix("x-amz-checksum-") {
                wanted.add(algorithm)?;
            }
        }
        let expected = content_length.and_then(|length| u64::try_from(length).ok());
        let mut received = body::receive(
            body,
            expected,
            self.limits.max_object_bytes,
            &self.spool_dir,
            &self.body_memory,
            wanted,
        )
        .await?;
        if let Some(trailers) = request.trailing_headers.as_ref().and_then(|t| t.take()) {
            let value = |name: &str| {
                trailers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_string)
            };
            given.crc32 = given.crc32.or(value("x-amz-checksum-crc32"));
            given.crc32c = given.crc32c.or(value("x-amz-checksum-crc32c"));
            given.sha1 = given.sha1.or(value("x-amz-checksum-sha1"));
            given.sha256 = given.sha256.or(value("x-amz-checksum-sha256"));
            given.crc64nvme = given.crc64nvme.or(value("x-amz-checksum-crc64nvme"));
        }
        if content_md5.is_some() {
            body::verify_content_md5(content_md5, &received.wait_md5().await?)?;
        }
        body::verify_checksums(&given, &received.checksums)?;
        Ok(received)
    }

    fn check_key(&self, key: &str) -> Result<()> {
        validate_key(key, self.limits.max_key_bytes)
    }

    fn check_metadata(&self, metadata: &Option<dto::Metadata>) -> Result<BTreeMap<String, String>> {
        let metadata: BTreeMap<String, String> =
            metadata.clone().unwrap_or_default().into_iter().collect();
        let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > self.limits.max_metadata_bytes {
            return Err(Error::MetadataTooLarge {
                limit_bytes: self.limits.max_metadata_bytes,
            });
        }
        Ok(metadata)
    }

    /// The bytes `[start, end)` of an object, read from its pieces in order, each segment
    /// verified against its file root.
    fn read(
        &self,
        pieces: &[Piece],
        start: u64,
        end: u64,
    ) -> impl Stream<Item = std::result::Result<Bytes, client::Error>> + Send + 'static {
        let mut ranges = Vec::new();
        let mut piece_start = 0u64;
        for piece in pieces {
            let piece_end = piece_start + piece.length;
            let from = start.max(piece_start);
            let to = end.min(piece_end);
            if from < to {
                ranges.push((
                    client::FileRef {
                        root: piece.root,
                        tx_seq: piece.tx_seq,
                        size_bytes: piece.file_size,
                    },
                    piece.offset + (from - piece_start),
                    to - from,
                ));
            }
            piece_start = piece_end;
        }
        let node = self.node.clone();
        futures_util::stream::iter(ranges)
            .map(move |(file, offset, length)| {
                client::read_range(node.clone(), file, offset, length)
            })
            .flatten()
    }

    /// MD5 and the wanted checksums of an object's bytes `[start, end)`, read back from the
    /// node (what UploadPartCopy's ETag needs).
    async fn hash_range(
        &self,
        pieces: &[Piece],
        start: u64,
        end: u64,
        wanted: Wanted,
    ) -> Result<([u8; 16], Checksums)> {
        use s3s::crypto::Checksum;
        let mut md5 = s3s::crypto::Md5::new();
        let mut hasher = wanted_hasher(wanted);
        let mut stream = std::pin::pin!(self.read(pieces, start, end));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            md5.update(&chunk);
            hasher.update(&chunk);
        }
        let digest = hasher.finalize();
        Ok((
            md5.finalize(),
            Checksums {
                crc32: digest.checksum_crc32,
                crc32c: digest.checksum_crc32c,
                sha1: digest.checksum_sha1,
                sha256: digest.checksum_sha256,
                crc64nvme: digest.checksum_crc64nvme,
            },
        ))
    }
}

fn wanted_hasher(wanted: Wanted) -> s3s::checksum::ChecksumHasher {
    use s3s::crypto::{Checksum, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
    s3s::checksum::ChecksumHasher {
        crc32: wanted.crc32.then(Crc32::new),
        crc32c: wanted.crc32c.then(Crc32c::new),
        sha1: wanted.sha1.then(Sha1::new),
        sha256: wanted.sha256.then(Sha256::new),
        crc64nvme: wanted.crc64nvme.then(Crc64Nvme::new),
    }
}

/// Keys are opaque to S3, but a gateway must not let one pass for something else: no control
/// characters (NUL included), no `.` or `..` path segments, and a bounded length.
pub fn validate_key(key: &str, max_bytes: usize) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey {
            key: key.to_string(),
            reason: "the key is empty",
        });
    }
    if key.len() > max_bytes {
        return Err(Error::KeyTooLong { limit: max_bytes });
    }
    if key.chars().any(char::is_control) {
        return Err(Error::InvalidKey {
            key: key.to_string(),
            reason: "control characters are not allowed in keys",
        });
    }
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(Error::InvalidKey {
            key: key.to_string(),
            reason: "`.` and `..` path segments are not allowed in keys",
        });
    }
    Ok(())
}

/// Who sends a request, and what its object must grant it (what `Access` left to the object).
fn read_check<T>(request: &S3Request<T>) -> (Option<String>, Option<Permission>) {
    (
        requester(request),
        request.extensions.get::<ObjectCheck>().map(|check| check.0),
    )
}

/// A public ACL is refused (403 AccessDenied) on a bucket that blocks public ACLs.
pub(crate) fn check_public_acl(bucket: &BucketRecord, acl: &Acl) -> Result<()> {
    if acl.is_public() && bucket.block().block_public_acls {
        return Err(Error::AccessDenied {
            detail: "Access Denied: the bucket's PublicAccessBlock blocks public ACLs".into(),
        });
    }
    Ok(())
}

/// The user a request is signed by; `None`: an anonymous request.
pub(crate) fn requester<T>(request: &S3Request<T>) -> Option<String> {
    request
        .credentials
        .as_ref()
        .map(|credentials| credentials.access_key.clone())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

fn seconds(timestamp: &Timestamp) -> i64 {
    time::OffsetDateTime::from(timestamp.clone()).unix_timestamp()
}

fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_string())
}

fn condition_matches(condition: &ETagCondition, current: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == current,
    }
}

/// Conditional GET/HEAD (RFC 9110 §13.2.2 order): If-Match, If-Unmodified-Since, If-None-Match,
/// If-Modified-Since.
fn check_read_conditions(
    record: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
) -> Result<()> {
    let modified_s = (record.last_modified_ms / 1000) as i64;
    if let Some(condition) = if_match {
        if !condition_matches(condition, &record.etag) {
            return Err(Error::PreconditionFailed {
                condition: "If-Match",
            });
        }
    } else if let Some(since) = if_unmodified_since
        && modified_s > seconds(since)
    {
        return Err(Error::PreconditionFailed {
            condition: "If-Unmodified-Since",
        });
    }
    let not_modified = || Error::NotModified {
        etag: record.etag.clone(),
        last_modified_ms: record.last_modified_ms,
    };
    if let Some(condition) = if_none_match {
        if condition_matches(condition, &record.etag) {
            return Err(not_modified());
        }
    } else if let Some(since) = if_modified_since
        && modified_s <= seconds(since)
    {
        return Err(not_modified());
    }
    Ok(())
}

/// Copy-source conditions answer 412 for every failure (S3's rule for copies).
fn check_copy_conditions(
    record: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
) -> Result<()> {
    match check_read_conditions(
        record,
        if_match,
        if_unmodified_since,
        if_none_match,
        if_modified_since,
    ) {
        Err(Error::NotModified { .. }) => Err(Error::PreconditionFailed {
            condition: "x-amz-copy-source-if-none-match / if-modified-since",
        }),
        other => other,
    }
}

fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> Result<WriteCondition> {
    let must_not_exist = match if_none_match {
        None => false,
        Some(ETagCondition::Any) => true,
        Some(ETagCondition::ETag(_)) => {
            return Err(Error::NotImplemented {
                what: "If-None-Match with an ETag on a write (only `*` is supported)".into(),
            });
        }
    };
    Ok(WriteCondition {
        must_not_exist,
        if_match: if_match.map(|condition| match condition {
            ETagCondition::Any => None,
            ETagCondition::ETag(tag) => Some(tag.value().to_string()),
        }),
    })
}

/// Runs the checks that may refuse a write before its body is read. On refusal the body is
/// drained (`body::drain`). Answering without reading it is not safe: for a request with
/// `Expect: 100-continue` hyper then sends the final status without `100 Continue` and, once
/// the body is dropped, takes whatever the socket holds at that moment for the body. A client
/// that waited sends no body, so that is either nothing (hyper closes the connection without
/// having said so in the response) or the start of the client's next request, which is then
/// parsed from the wrong byte and fails its signature check. Reading the body makes hyper send
/// `100 Continue`, so the client sends the body and the drain consumes it
/// (`tests/expect_continue.rs`).
async fn refuse_before_body<T>(
    body: &mut Option<dto::StreamingBlob>,
    checks: impl std::future::Future<Output = S3Result<T>>,
) -> S3Result<T> {
    match checks.await {
        Ok(checked) => Ok(checked),
        Err(error) => {
            crate::body::drain(body.take()).await;
            Err(error)
        }
    }
}

fn given_checksums(
    crc32: Option<String>,
    crc32c: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
    crc64nvme: Option<String>,
) -> Checksums {
    Checksums {
        crc32,
        crc32c,
        sha1,
        sha256,
        crc64nvme,
    }
}

/// The representation headers an object keeps. `aws-chunked` is how a body was sent, not how
/// it is stored: it is dropped from Content-Encoding (`gzip, aws-chunked` is stored `gzip`).
fn object_headers(
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<&Timestamp>,
) -> BTreeMap<String, String> {
    let content_encoding = content_encoding.and_then(|encoding| {
        let kept: Vec<&str> = encoding
            .split(',')
            .map(str::trim)
            .filter(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!kept.is_empty()).then(|| kept.join(", "))
    });
    let expires = expires.map(|expires| {
        let mut out = Vec::new();
        match expires.format(dto::TimestampFormat::HttpDate, &mut out) {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(_) => String::new(),
        }
    });
    [
        ("content-encoding", content_encoding),
        ("content-disposition", content_disposition),
        ("content-language", content_language),
        ("cache-control", cache_control),
        ("expires", expires.filter(|value| !value.is_empty())),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|value| (name.to_string(), value)))
    .collect()
}

/// The stored Expires of an object, as a timestamp.
fn stored_expires(record: &ObjectRecord) -> Option<Timestamp> {
    record
        .headers
        .get("expires")
        .and_then(|value| Timestamp::parse(dto::TimestampFormat::HttpDate, value).ok())
}

/// The pieces covering bytes `[start, end)` of an object.
fn slice_pieces(pieces: &[Piece], start: u64, end: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut piece_start = 0u64;
    for piece in pieces {
        let piece_end = piece_start + piece.length;
        let from = start.max(piece_start);
        let to = end.min(piece_end);
        if from < to {
            out.push(Piece {
                offset: piece.offset + (from - piece_start),
                length: to - from,
                ..piece.clone()
            });
        }
        piece_start = piece_end;
    }
    out
}

/// S3's `encoding-type=url`: percent-encode all but unreserved characters and `/`.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A ListObjectsV2 continuation token: where the last page stopped, and whether that was a
/// common prefix (whose keys the next page skips).
fn encode_token(after: &str, is_prefix: bool) -> String {
    let mut raw = String::with_capacity(after.len() + 1);
    raw.push(if is_prefix { 'p' } else { 'k' });
    raw.push_str(after);
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(raw.as_bytes())
}

fn decode_token(token: &str) -> Result<(String, bool)> {
    let invalid = || Error::InvalidArgument {
        detail: "the continuation token is not valid".into(),
    };
    let raw = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(token)
        .map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    match raw.chars().next() {
        Some('p') => Ok((raw[1..].to_string(), true)),
        Some('k') => Ok((raw[1..].to_string(), false)),
        _ => Err(invalid()),
    }
}

/// The composite checksum of a multipart object: the checksum of the parts' binary
/// checksums, suffixed `-N`.
fn composite_checksum(algorithm: &str, parts: &[&PartRecord]) -> Result<Option<String>> {
    use s3s::crypto::{Checksum, Crc32, Crc32c, Sha1, Sha256};
    let pick = |part: &PartRecord| -> Option<String> {
        match algorithm {
            "CRC32" => part.checksums.crc32.clone(),
            "CRC32C" => part.checksums.crc32c.clone(),
            "SHA1" => part.checksums.sha1.clone(),
            "SHA256" => part.checksums.sha256.clone(),
            _ => None,
        }
    };
    let mut binary = Vec::new();
    for part in parts {
        let Some(value) = pick(part) else {
            return Ok(None);
        };
        let bytes = base64_simd::STANDARD
            .decode_to_vec(value.as_bytes())
            .map_err(|_| Error::Corrupt {
                detail: "a stored part checksum is not base64".into(),
            })?;
        binary.extend_from_slice(&bytes);
    }
    let digest: Vec<u8> = match algorithm {
        "CRC32" => Crc32::checksum(&binary).to_vec(),
        "CRC32C" => Crc32c::checksum(&binary).to_vec(),
        "SHA1" => Sha1::checksum(&binary).as_ref().to_vec(),
        "SHA256" => Sha256::checksum(&binary).as_ref().to_vec(),
        _ => return Ok(None),
    };
    Ok(Some(format!(
        "{}-{}",
        base64_simd::STANDARD.encode_to_string(&digest),
        parts.len()
    )))
}

fn set_composite(checksums: &mut Checksums, algorithm: &str, value: Option<String>) {
    match algorithm {
        "CRC32" => checksums.crc32 = value,
        "CRC32C" => checksums.crc32c = value,
        "SHA1" => checksums.sha1 = value,
        "SHA256" => checksums.sha256 = value,
        _ => {}
    }
}

/// Parses `bytes=first-last` of `x-amz-copy-source-range` against the source size.
fn copy_range(range: Option<&str>, size: u64) -> Result<(u64, u64)> {
    let Some(range) = range else {
        return Ok((0, size));
    };
    // Only `bytes=first-last` (no suffix or open range), and within the source: a copy never
    // takes fewer bytes than it names.
    let (first, last) = range
        .strip_prefix("bytes=")
        .and_then(|span| span.split_once('-'))
        .and_then(|(first, last)| Some((first.parse::<u64>().ok()?, last.parse::<u64>().ok()?)))
        .ok_or_else(|| Error::InvalidArgument {
            detail: format!("x-amz-copy-source-range {range:?} is not bytes=first-last"),
        })?;
    if first > last || last >= size {
        return Err(Error::InvalidRange { size_bytes: size });
    }
    Ok((first, last + 1))
}

/// The bucket, key and version (if named) of a copy's source.
fn copy_source(source: &dto::CopySource) -> Result<(String, String, Option<String>)> {
    match source {
        dto::CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_deref().map(str::to_string),
        )),
        _ => Err(Error::NotImplemented {
            what: "access-point copy sources".into(),
        }),
    }
}

/// The stored checksums, when the client asked for them (`x-amz-checksum-mode: ENABLED`).
fn checksum_output(record: &ObjectRecord, enabled: bool) -> Checksums {
    if enabled {
        record.checksums.clone()
    } else {
        Checksums::default()
    }
}

/// What GET and HEAD take from a request to decide which bytes of an object they describe.
struct ReadRequest<'a> {
    range: Option<dto::Range>,
    part_number: Option<i32>,
    /// GET refuses a Range with a partNumber; HEAD lets the Range win.
    refuse_range_with_part: bool,
    checksum_mode: Option<&'a dto::ChecksumMode>,
    if_match: Option<&'a ETagCondition>,
    if_unmodified_since: Option<&'a Timestamp>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
}

/// The bytes `[start, end)` of an object that a GET or HEAD answers for, after its conditions
/// passed, and the checksums it shows.
struct ReadView {
    start: u64,
    end: u64,
    /// A range or a part: answered with Content-Range, and without whole-object checksums.
    partial: bool,
    shown: Checksums,
}

impl ReadView {
    /// Checks the conditions, then resolves a range or a part number.
    fn resolve(record: &ObjectRecord, request: ReadRequest<'_>) -> Result<ReadView> {
        check_read_conditions(
            record,
            request.if_match,
            request.if_unmodified_since,
            request.if_none_match,
            request.if_modified_since,
        )?;
        let size = record.size_bytes;
        let (start, end, partial) = match (request.range, request.part_number) {
            (Some(_), Some(_)) if request.refuse_range_with_part => {
                return Err(Error::InvalidRequest {
                    detail: "Range and partNumber cannot be combined".into(),
                });
            }
            (Some(range), _) => {
                let checked = range
                    .check(size)
                    .map_err(|_| Error::InvalidRange { size_bytes: size })?;
                (checked.start, checked.end, true)
            }
            (None, Some(number)) => {
                let (start, end) = part_range(record, number)?;
                (start, end, true)
            }
            (None, None) => (0, size, false),
        };
        let enabled = request
            .checksum_mode
            .is_some_and(|mode| mode.as_str() == dto::ChecksumMode::ENABLED)
            && !partial;
        Ok(ReadView {
            start,
            end,
            partial,
            shown: checksum_output(record, enabled),
        })
    }

    fn content_range(&self, size_bytes: u64) -> Option<String> {
        self.partial.then(|| {
            format!(
                "bytes {}-{}/{size_bytes}",
                self.start,
                self.end.saturating_sub(1)
            )
        })
    }
}

/// The header fields GetObjectOutput and HeadObjectOutput share (same names in both s3s
/// types), from an object's record and a resolved `ReadView`, plus the fields given.
macro_rules! read_output {
    ($output:path, $record:expr, $read:expr $(, $field:ident: $value:expr)* $(,)?) => {{
        let record: &ObjectRecord = $record;
        let read: ReadView = $read;
        let content_range = read.content_range(record.size_bytes);
        $output {
            $($field: $value,)*
            content_length: Some((read.end - read.start) as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&record.etag)),
            last_modified: Some(timestamp(record.last_modified_ms)),
            content_type: record.content_type.clone(),
            content_encoding: record.headers.get("content-encoding").cloned(),
            content_disposition: record.headers.get("content-disposition").cloned(),
            content_language: record.headers.get("content-language").cloned(),
            cache_control: record.headers.get("cache-control").cloned(),
            expires: stored_expires(record),
            metadata: (!record.metadata.is_empty())
                .then(|| record.metadata.clone().into_iter().collect()),
            parts_count: (!record.part_sizes.is_empty())
                .then_some(record.part_sizes.len() as i32),
            checksum_crc32: read.shown.crc32,
            checksum_crc32c: read.shown.crc32c,
            checksum_sha1: read.shown.sha1,
            checksum_sha256: read.shown.sha256,
            checksum_crc64nvme: read.shown.crc64nvme,
            ..Default::default()
        }
    }};
}
/// The whole-object checksum GetObjectAttributes reports: the one the object was stored with,
/// composite (`…-N`) for a multipart upload.
fn whole_checksum(record: &ObjectRecord) -> Option<dto::Checksum> {
    let sums = &record.checksums;
    let any = [
        &sums.crc32,
        &sums.crc32c,
        &sums.sha1,
        &sums.sha256,
        &sums.crc64nvme,
    ]
    .into_iter()
    .flatten()
    .next()?;
    let kind = if any.contains('-') {
        dto::ChecksumType::COMPOSITE
    } else {
        dto::ChecksumType::FULL_OBJECT
    };
    Some(dto::Checksum {
        checksum_crc32: sums.crc32.clone(),
        checksum_crc32c: sums.crc32c.clone(),
        checksum_sha1: sums.sha1.clone(),
        checksum_sha256: sums.sha256.clone(),
        checksum_crc64nvme: sums.crc64nvme.clone(),
        checksum_type: Some(dto::ChecksumType::from_static(kind)),
    })
}

/// A page of the parts of a multipart object: those after `marker`, at most `max` (≤ 1000).
fn object_parts(record: &ObjectRecord, marker: i32, max: i32) -> dto::GetObjectAttributesParts {
    let max = max.clamp(0, 1000);
    let first = usize::try_from(marker.max(0)).unwrap_or(0);
    let total = record.part_sizes.len();
    let shown: Vec<dto::ObjectPart> = record
        .part_sizes
        .iter()
        .enumerate()
        .skip(first)
        .take(max as usize)
        .map(|(index, size)| {
            let sums = record
                .part_checksums
                .get(index)
                .cloned()
                .unwrap_or_default();
            dto::ObjectPart {
                part_number: Some(index as i32 + 1),
                size: Some(*size as i64),
                checksum_crc32: sums.crc32,
                checksum_crc32c: sums.crc32c,
                checksum_sha1: sums.sha1,
                checksum_sha256: sums.sha256,
                checksum_crc64nvme: sums.crc64nvme,
            }
        })
        .collect();
    let last = shown.last().and_then(|part| part.part_number);
    let truncated = first + shown.len() < total;
    dto::GetObjectAttributesParts {
        total_parts_count: Some(total as i32),
        part_number_marker: Some(marker.max(0)),
        next_part_number_marker: last,
        max_parts: Some(max),
        is_truncated: Some(truncated),
        parts: Some(shown),
    }
}

/// Byte range of part `number` (1-based) of a multipart object.
fn part_range(record: &ObjectRecord, number: i32) -> Result<(u64, u64)> {
    let index = usize::try_from(number - 1).map_err(|_| Error::InvalidArgument {
        detail: "partNumber starts at 1".into(),
    })?;
    if record.part_sizes.is_empty() && number == 1 {
        return Ok((0, record.size_bytes));
    }
    let size = *record.part_sizes.get(index).ok_or(Error::InvalidRange {
        size_bytes: record.size_bytes,
    })?;
    let start: u64 = record.part_sizes[..index].iter().sum();
    Ok((start, start + size))
}

/// What PutObject and a form upload (PostObject) both say about the object to write; the two
/// s3s inputs name these fields alike.
struct PutRequest {
    bucket: String,
    key: String,
    body: Option<StreamingBlob>,
    content_length: Option<i64>,
    content_md5: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
    metadata: Option<dto::Metadata>,
    checksum_algorithm: Option<dto::ChecksumAlgorithm>,
    given: Checksums,
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    canned_acl: Option<String>,
    grant_full_control: Option<String>,
    grant_read: Option<String>,
    grant_read_acp: Option<String>,
    grant_write_acp: Option<String>,
    /// Whether the handler decides the writer's access (a form upload, whose key is in the
    /// body); PutObject's was decided before the handler.
    authorize: bool,
    /// What the request asks for that the gateway does not keep (refused before the body).
    unkept: Result<()>,
}

impl PutRequest {
    fn grants(&self) -> [(Permission, Option<&str>); 4] {
        object_grants(
            self.grant_full_control.as_deref(),
            self.grant_read.as_deref(),
            self.grant_read_acp.as_deref(),
            self.grant_write_acp.as_deref(),
        )
    }
}

/// The `x-amz-grant-*` headers of an object write, by permission.
fn object_grants<'a>(
    full_control: Option<&'a str>,
    read: Option<&'a str>,
    read_acp: Option<&'a str>,
    write_acp: Option<&'a str>,
) -> [(Permission, Option<&'a str>); 4] {
    [
        (Permission::FullControl, full_control),
        (Permission::Read, read),
        (Permission::ReadAcp, read_acp),
        (Permission::WriteAcp, write_acp),
    ]
}

/// The `x-amz-grant-*` headers of a bucket ACL, by permission.
pub(crate) fn bucket_grants<'a>(
    full_control: Option<&'a str>,
    read: Option<&'a str>,
    read_acp: Option<&'a str>,
    write: Option<&'a str>,
    write_acp: Option<&'a str>,
) -> [(Permission, Option<&'a str>); 5] {
    [
        (Permission::FullControl, full_control),
        (Permission::Read, read),
        (Permission::ReadAcp, read_acp),
        (Permission::Write, write),
        (Permission::WriteAcp, write_acp),
    ]
}

/// A [`PutRequest`] taken out of a `PutObjectInput` or a `PostObjectInput`.
/// Object writes that ask for what the gateway does not keep are refused, not half done: a
/// client told its object was written with tags, a retention lock or its own encryption key
/// would rely on them. Tags and Object Lock are not stored; SSE-C would claim an encryption
/// the bytes on the network never get.
fn refuse_unkept_write_settings(
    tagging: bool,
    object_lock: bool,
    sse_customer: bool,
) -> Result<()> {
    let what = if tagging {
        "object tagging (x-amz-tagging)"
    } else if object_lock {
        "Object Lock (x-amz-object-lock-*)"
    } else if sse_customer {
        "server-side encryption with customer keys (x-amz-server-side-encryption-customer-*)"
    } else {
        return Ok(());
    };
    Err(Error::NotImplemented { what: what.into() })
}

/// [`refuse_unkept_write_settings`] for an object write's input (PutObject, a form upload,
/// CopyObject, CreateMultipartUpload: the fields are named alike).
macro_rules! refuse_unkept_write_settings {
    ($input:expr) => {{
        let input = &$input;
        refuse_unkept_write_settings(
            input.tagging.is_some(),
            input.object_lock_mode.is_some()
                || input.object_lock_retain_until_date.is_some()
                || input.object_lock_legal_hold_status.is_some(),
            input.sse_customer_algorithm.is_some(),
        )
    }};
}

macro_rules! put_request {
    ($input:expr) => {{
        let input = &mut $input;
        PutRequest {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            body: input.body.take(),
            content_length: input.content_length,
            content_md5: input.content_md5.take(),
            content_type: input.content_type.take(),
            content_encoding: input.content_encoding.take(),
            content_disposition: input.content_disposition.take(),
            content_language: input.content_language.take(),
            cache_control: input.cache_control.take(),
            expires: input.expires.take(),
            metadata: input.metadata.take(),
            checksum_algorithm: input.checksum_algorithm.take(),
            given: given_checksums(
                input.checksum_crc32.take(),
                input.checksum_crc32c.take(),
                input.checksum_sha1.take(),
                input.checksum_sha256.take(),
                input.checksum_crc64nvme.take(),
            ),
            if_match: input.if_match.take(),
            if_none_match: input.if_none_match.take(),
            canned_acl: input.acl.take().map(|acl| acl.as_str().to_string()),
            grant_full_control: input.grant_full_control.take(),
            grant_read: input.grant_read.take(),
            grant_read_acp: input.grant_read_acp.take(),
            grant_write_acp: input.grant_write_acp.take(),
            authorize: false,
            unkept: refuse_unkept_write_settings!(input),
        }
    }};
}

/// What a write stored: the answer's ETag, checksums and version id.
struct Written {
    etag: String,
    checksums: Checksums,
    version_id: Option<String>,
}

/// A Content-MD5 that is not the base64 of 16 bytes is refused before the body is read, an
/// empty one included (s3s passes that on as no header at all).
fn check_content_md5_syntax(headers: &http::HeaderMap, content_md5: Option<&str>) -> Result<()> {
    let Some(given) = content_md5.or_else(|| {
        headers
            .get("content-md5")
            .map(|value| value.to_str().unwrap_or(""))
    }) else {
        return Ok(());
    };
    match base64_simd::STANDARD.decode_to_vec(given.trim()) {
        Ok(decoded) if decoded.len() == 16 => Ok(()),
        _ => Err(Error::InvalidDigest),
    }
}

impl Gateway {
    /// The length a PutObject or UploadPart body announces: its Content-Length, unless the
    /// front layer found none (a chunked transfer, `LengthUnknown`); for an `aws-chunked` body
    /// sent without one, the decoded length its signed `x-amz-decoded-content-length` gives.
    fn announced_length<T>(request: &S3Request<T>, content_length: Option<i64>) -> Option<i64> {
        if request
            .extensions
            .get::<crate::front::LengthUnknown>()
            .is_some()
        {
            return None;
        }
        content_length.or_else(|| {
            request
                .headers
                .get("x-amz-decoded-content-length")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<i64>().ok())
        })
    }

    /// Receives, stores and commits one object (PutObject, a form upload).
    async fn write_object<T>(
        &self,
        request: &S3Request<T>,
        put: &mut PutRequest,
    ) -> S3Result<Written> {
        let mut body = put.body.take();
        let user = requester(request);
        let unkept = std::mem::replace(&mut put.unkept, Ok(()));
        let (metadata, condition, acl) = refuse_before_body(&mut body, async {
            unkept?;
            self.check_key(&put.key)?;
            if put.authorize {
                self.authorize(
                    user.as_deref(),
                    &put.bucket,
                    Action::PutObject,
                    Some(&put.key),
                    None,
                )?;
            }
            check_content_md5_syntax(&request.headers, put.content_md5.as_deref())?;
            let metadata = self.check_metadata(&put.metadata)?;
            let condition = write_condition(put.if_match.as_ref(), put.if_none_match.as_ref())?;
            let bucket = self.require_bucket(&put.bucket).await?;
            let owner = user.clone().unwrap_or_else(|| bucket.owner.clone());
            let acl =
                self.requested_acl(&bucket, &owner, put.canned_acl.as_deref(), &put.grants())?;
            if condition.must_not_exist && self.object(&put.bucket, &put.key).await.is_ok() {
                return Err(Error::PreconditionFailed {
                    condition: "If-None-Match",
                }
                .into());
            }
            S3Result::Ok((metadata, condition, acl))
        })
        .await?;
        let received = self
            .receive(
                request,
                body,
                Self::announced_length(request, put.content_length),
                put.content_md5.as_deref(),
                put.checksum_algorithm.as_ref(),
                std::mem::take(&mut put.given),
            )
            .await?;
        let size_bytes = received.size_bytes;
        let checksums = received.checksums.clone();
        // The ETag's MD5 finishes on its own thread while the bytes go to the node.
        let (pieces, md5) = self.store_received(received).await?;
        let record = ObjectRecord {
            size_bytes,
            etag: hex::encode(md5),
            last_modified_ms: now_ms(),
            content_type: put.content_type.take(),
            headers: object_headers(
                put.content_encoding.take(),
                put.content_disposition.take(),
                put.content_language.take(),
                put.cache_control.take(),
                put.expires.as_ref(),
            ),
            metadata,
            checksums,
            owner: user,
            acl,
            version_id: None,
            seq: 0,
            part_sizes: Vec::new(),
            part_checksums: Vec::new(),
            pieces,
        };
        let (bucket, key) = (put.bucket.clone(), put.key.clone());
        let mut written = Written {
            etag: record.etag.clone(),
            checksums: record.checksums.clone(),
            version_id: None,
        };
        written.version_id = self
            .store(move |store| store.put_object(&bucket, &key, &record, &condition))
            .await?;
        Ok(written)
    }
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let owner = requester(&req).ok_or_else(|| Error::AccessDenied {
            detail: "Access Denied".into(),
        })?;
        let input = req.input;
        if input.object_lock_enabled_for_bucket == Some(true) {
            // A bucket created for Object Lock promises retention the gateway does not keep.
            return Err(Error::NotImplemented {
                what: "Object Lock (x-amz-bucket-object-lock-enabled)".into(),
            }
            .into());
        }
        if !s3s::path::check_bucket_name(&input.bucket) {
            return Err(Error::InvalidBucketName {
                bucket: input.bucket,
                reason: "not an S3 bucket name",
            }
            .into());
        }
        let mut record = BucketRecord::new(&owner, now_ms());
        record.acl = self.requested_acl(
            &record,
            &owner,
            input.acl.as_ref().map(dto::BucketCannedACL::as_str),
            &bucket_grants(
                input.grant_full_control.as_deref(),
                input.grant_read.as_deref(),
                input.grant_read_acp.as_deref(),
                input.grant_write.as_deref(),
                input.grant_write_acp.as_deref(),
            ),
        )?;
        let bucket = input.bucket;
        let location = format!("/{bucket}");
        let created = self
            .store(move |store| store.create_bucket(&bucket, record))
            .await;
        match created {
            Ok(()) => {}
            // us-east-1 answers a CreateBucket of a bucket the caller owns with success (and
            // leaves the bucket as it is); every other region with 409.
            Err(Error::BucketAlreadyOwnedByYou { .. }) if self.region == US_EAST_1 => {}
            Err(error) => return Err(error.into()),
        }
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(location),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        let name = bucket.clone();
        let aborted = self
            .store(move |store| store.delete_bucket(&bucket))
            .await?;
        if aborted > 0 {
            tracing::info!(bucket = %name, aborted, "deleted a bucket and its incomplete multipart uploads");
        }
        Ok(S3Response::new(dto::DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(dto::HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..Default::default()
        }))
    }

    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        // Each user lists the buckets it owns.
        let user = requester(&req).unwrap_or_default();
        let mut buckets = self.store(|store| store.buckets()).await?;
        buckets.retain(|(_, record)| record.owner == user);
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|(name, record)| dto::Bucket {
                        name: Some(name),
                        creation_date: Some(timestamp(record.created_ms)),
                        bucket_region: Some(self.region.clone()),
                    })
                    .collect(),
            ),
            owner: Some(acl::owner(&user)),
            ..Default::default()
        }))
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<dto::GetBucketAclInput>,
    ) -> S3Result<S3Response<dto::GetBucketAclOutput>> {
        self.get_bucket_acl_op(req).await
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<dto::PutBucketAclInput>,
    ) -> S3Result<S3Response<dto::PutBucketAclOutput>> {
        self.put_bucket_acl_op(req).await
    }

    async fn get_object_acl(
        &self,
        req: S3Request<dto::GetObjectAclInput>,
    ) -> S3Result<S3Response<dto::GetObjectAclOutput>> {
        self.get_object_acl_op(req).await
    }

    async fn put_object_acl(
        &self,
        req: S3Request<dto::PutObjectAclInput>,
    ) -> S3Result<S3Response<dto::PutObjectAclOutput>> {
        self.put_object_acl_op(req).await
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<dto::GetBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::GetBucketPolicyOutput>> {
        self.get_bucket_policy_op(req).await
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<dto::PutBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::PutBucketPolicyOutput>> {
        self.put_bucket_policy_op(req).await
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<dto::DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketPolicyOutput>> {
        self.delete_bucket_policy_op(req).await
    }

    async fn get_bucket_policy_status(
        &self,
        req: S3Request<dto::GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<dto::GetBucketPolicyStatusOutput>> {
        self.get_bucket_policy_status_op(req).await
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<dto::GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<dto::GetPublicAccessBlockOutput>> {
        self.get_public_access_block_op(req).await
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<dto::PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<dto::PutPublicAccessBlockOutput>> {
        self.put_public_access_block_op(req).await
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<dto::DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<dto::DeletePublicAccessBlockOutput>> {
        self.delete_public_access_block_op(req).await
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<dto::GetBucketCorsInput>,
    ) -> S3Result<S3Response<dto::GetBucketCorsOutput>> {
        self.get_bucket_cors_op(req).await
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<dto::PutBucketCorsInput>,
    ) -> S3Result<S3Response<dto::PutBucketCorsOutput>> {
        self.put_bucket_cors_op(req).await
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<dto::DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketCorsOutput>> {
        self.delete_bucket_cors_op(req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
        self.get_bucket_versioning_op(req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<dto::PutBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::PutBucketVersioningOutput>> {
        self.put_bucket_versioning_op(req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<dto::ListObjectVersionsInput>,
    ) -> S3Result<S3Response<dto::ListObjectVersionsOutput>> {
        self.list_object_versions_op(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        // us-east-1 is answered as an empty constraint, as S3 does.
        let constraint = (self.region != US_EAST_1)
            .then(|| dto::BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(dto::GetBucketLocationOutput {
            location_constraint: constraint,
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let mut req = req;
        let mut put = put_request!(req.input);
        let written = self.write_object(&req, &mut put).await?;
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: Some(etag(&written.etag)),
            version_id: written.version_id,
            checksum_crc32: written.checksums.crc32,
            checksum_crc32c: written.checksums.crc32c,
            checksum_sha1: written.checksums.sha1,
            checksum_sha256: written.checksums.sha256,
            checksum_crc64nvme: written.checksums.crc64nvme,
            ..Default::default()
        }))
    }

    /// A browser form upload: s3s has checked the signature (when there is one) and the
    /// policy's conditions, and answers with `success_action_redirect` or
    /// `success_action_status`; the object is written as PutObject writes it.
    async fn post_object(
        &self,
        req: S3Request<dto::PostObjectInput>,
    ) -> S3Result<S3Response<dto::PostObjectOutput>> {
        let mut req = req;
        let mut put = put_request!(req.input);
        put.authorize = true;
        let written = self.write_object(&req, &mut put).await?;
        let mut response = S3Response::new(dto::PostObjectOutput {
            // s3s writes this value into the redirect's `etag` parameter and the 201 body's
            // ETag element, where S3 gives the quoted ETag.
            e_tag: Some(ETag::Strong(format!("\"{}\"", written.etag))),
            version_id: written.version_id.clone(),
            ..Default::default()
        });
        if let Ok(value) = http::HeaderValue::from_str(&format!("\"{}\"", written.etag)) {
            response.headers.insert(http::header::ETAG, value);
        }
        // A redirect's Location is s3s's (these headers would replace it).
        if req.input.success_action_redirect.is_none() {
            let location = format!("/{}/{}", put.bucket, url_encode(&put.key));
            if let Ok(value) = http::HeaderValue::from_str(&location) {
                response.headers.insert(http::header::LOCATION, value);
            }
        }
        Ok(response)
    }

    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        let (user, check) = read_check(&req);
        let input = req.input;
        let record = self
            .object_for(
                user.as_deref(),
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                check,
            )
            .await?;
        let version_id = self.shown_version(&input.bucket, &record);
        let read = ReadView::resolve(
            &record,
            ReadRequest {
                range: input.range,
                part_number: input.part_number,
                refuse_range_with_part: true,
                checksum_mode: input.checksum_mode.as_ref(),
                if_match: input.if_match.as_ref(),
                if_unmodified_since: input.if_unmodified_since.as_ref(),
                if_none_match: input.if_none_match.as_ref(),
                if_modified_since: input.if_modified_since.as_ref(),
            },
        )?;
        let stream = self.read(&record.pieces, read.start, read.end);
        Ok(S3Response::new(read_output!(
            dto::GetObjectOutput,
            &record,
            read,
            body: Some(StreamingBlob::wrap(stream)),
            version_id: version_id,
        )))
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let (user, check) = read_check(&req);
        let input = req.input;
        let record = self
            .object_for(
                user.as_deref(),
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                check,
            )
            .await?;
        let version_id = self.shown_version(&input.bucket, &record);
        let read = ReadView::resolve(
            &record,
            ReadRequest {
                range: input.range,
                part_number: input.part_number,
                refuse_range_with_part: false,
                checksum_mode: input.checksum_mode.as_ref(),
                if_match: input.if_match.as_ref(),
                if_unmodified_since: input.if_unmodified_since.as_ref(),
                if_none_match: input.if_none_match.as_ref(),
                if_modified_since: input.if_modified_since.as_ref(),
            },
        )?;
        Ok(S3Response::new(read_output!(
            dto::HeadObjectOutput,
            &record,
            read,
            version_id: version_id,
        )))
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<dto::GetObjectAttributesInput>,
    ) -> S3Result<S3Response<dto::GetObjectAttributesOutput>> {
        let (user, check) = read_check(&req);
        let input = req.input;
        let record = self
            .object_for(
                user.as_deref(),
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                check,
            )
            .await?;
        // The attributes come in one header, comma-separated.
        let asked = |name: &str| {
            input
                .object_attributes
                .iter()
                .flat_map(|attribute| attribute.as_str().split(','))
                .any(|attribute| attribute.trim().eq_ignore_ascii_case(name))
        };
        let checksum = asked(dto::ObjectAttributes::CHECKSUM)
            .then(|| whole_checksum(&record))
            .flatten();
        let object_parts =
            if asked(dto::ObjectAttributes::OBJECT_PARTS) && !record.part_sizes.is_empty() {
                Some(object_parts(
                    &record,
                    input.part_number_marker.unwrap_or(0),
                    input.max_parts.unwrap_or(1000),
                ))
            } else {
                None
            };
        Ok(S3Response::new(dto::GetObjectAttributesOutput {
            e_tag: asked(dto::ObjectAttributes::ETAG).then(|| etag(&record.etag)),
            object_size: asked(dto::ObjectAttributes::OBJECT_SIZE)
                .then_some(record.size_bytes as i64),
            storage_class: asked(dto::ObjectAttributes::STORAGE_CLASS)
                .then(|| dto::StorageClass::from_static(dto::StorageClass::STANDARD)),
            checksum,
            object_parts,
            last_modified: Some(timestamp(record.last_modified_ms)),
            version_id: self.shown_version(&input.bucket, &record),
            ..Default::default()
        }))
    }

    /// No object is served as a torrent: S3 answers 404 NoSuchKey for such objects.
    async fn get_object_torrent(
        &self,
        req: S3Request<dto::GetObjectTorrentInput>,
    ) -> S3Result<S3Response<dto::GetObjectTorrentOutput>> {
        let (user, check) = read_check(&req);
        let input = req.input;
        self.object_for(user.as_deref(), &input.bucket, &input.key, None, check)
            .await?;
        Err(Error::NoTorrent {
            bucket: input.bucket,
            key: input.key,
        }
        .into())
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let user = requester(&req);
        let input = req.input;
        let (bucket, key, version) = (input.bucket, input.key, input.version_id);
        let deleted = self
            .store(move |store| {
                store.delete_object(&bucket, &key, version.as_deref(), user.as_deref(), now_ms())
            })
            .await?;
        Ok(S3Response::new(dto::DeleteObjectOutput {
            delete_marker: deleted.delete_marker.then_some(true),
            version_id: deleted.version_id,
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let user = requester(&req);
        let input = req.input;
        if input.delete.objects.len() > self.limits.max_delete_keys {
            return Err(Error::InvalidRequest {
                detail: format!(
                    "at most {} keys can be deleted in one request",
                    self.limits.max_delete_keys
                ),
            }
            .into());
        }
        self.require_bucket(&input.bucket).await?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            let (bucket, key) = (input.bucket.clone(), object.key.clone());
            // Each key is the requester's to delete or not, as a DeleteObject of it would be.
            let allowed = self.authorize(
                user.as_deref(),
                &bucket,
                Action::DeleteObject,
                Some(&key),
                None,
            );
            let version = object.version_id.clone();
            let owner = user.clone();
            let outcome = match allowed {
                Ok(()) => {
                    self.store(move |store| {
                        store.delete_object(
                            &bucket,
                            &key,
                            version.as_deref(),
                            owner.as_deref(),
                            now_ms(),
                        )
                    })
                    .await
                }
                Err(error) => Err(error),
            };
            match outcome {
                Ok(outcome) => {
                    if !quiet {
                        // A delete marker made (no version named) or removed (its id named).
                        deleted.push(dto::DeletedObject {
                            key: Some(object.key),
                            delete_marker: outcome.delete_marker.then_some(true),
                            delete_marker_version_id: outcome
                                .delete_marker
                                .then(|| outcome.version_id.clone())
                                .flatten(),
                            version_id: object.version_id.clone(),
                        });
                    }
                }
                Err(error) => {
                    let s3 = error.to_s3();
                    errors.push(dto::Error {
                        code: Some(s3.code().as_str().to_string()),
                        key: Some(object.key),
                        message: s3.message().map(str::to_string),
                        version_id: object.version_id,
                    });
                }
            }
        }
        Ok(S3Response::new(dto::DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        let user = requester(&req);
        let input = req.input;
        refuse_unkept_write_settings!(input)?;
        self.check_key(&input.key)?;
        let (source_bucket, source_key, source_version) = copy_source(&input.copy_source)?;
        let source = self
            .copy_source_object(
                user.as_deref(),
                &source_bucket,
                &source_key,
                source_version.as_deref(),
            )
            .await?;
        let bucket_record = self.require_bucket(&input.bucket).await?;
        let owner = user.clone().unwrap_or_else(|| bucket_record.owner.clone());
        let acl = self.requested_acl(
            &bucket_record,
            &owner,
            input.acl.as_ref().map(dto::ObjectCannedACL::as_str),
            &object_grants(
                input.grant_full_control.as_deref(),
                input.grant_read.as_deref(),
                input.grant_read_acp.as_deref(),
                input.grant_write_acp.as_deref(),
            ),
        )?;
        check_copy_conditions(
            &source,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
        )?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|directive| directive.as_str() == dto::MetadataDirective::REPLACE);
        if !replace && source_bucket == input.bucket && source_key == input.key {
            return Err(Error::InvalidRequest {
                detail: "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata".into(),
            }
            .into());
        }
        // The copy is a new object: the copier's, with the ACL the copy asks for.
        let mut record = source.clone();
        record.last_modified_ms = now_ms();
        record.owner = user;
        record.acl = acl;
        if replace {
            record.metadata = self.check_metadata(&input.metadata)?;
            record.content_type = input.content_type.clone();
            record.headers = object_headers(
                input.content_encoding.clone(),
                input.content_disposition.clone(),
                input.content_language.clone(),
                input.cache_control.clone(),
                input.expires.as_ref(),
            );
        }
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let stored = record.clone();
        let version_id = self
            .store(move |store| {
                store.put_object(&bucket, &key, &stored, &WriteCondition::default())
            })
            .await?;
        let source_version_id = self.shown_version(&source_bucket, &source);
        let checksums = record.checksums;
        Ok(S3Response::new(dto::CopyObjectOutput {
            version_id,
            copy_source_version_id: source_version_id,
            copy_object_result: Some(dto::CopyObjectResult {
                e_tag: Some(etag(&record.etag)),
                last_modified: Some(timestamp(record.last_modified_ms)),
                checksum_crc32: checksums.crc32,
                checksum_crc32c: checksums.crc32c,
                checksum_sha1: checksums.sha1,
                checksum_sha256: checksums.sha256,
                checksum_crc64nvme: checksums.crc64nvme,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        let input = req.input;
        let max = self.max_keys(input.max_keys);
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
        let marker = input.marker.clone().filter(|m| !m.is_empty());
        let listing = {
            let (bucket, prefix, delimiter, marker) = (
                input.bucket.clone(),
                prefix.clone(),
                delimiter.clone(),
                marker.clone(),
            );
            self.store(move |store| {
                store.list(
                    &bucket,
                    &prefix,
                    delimiter.as_deref(),
                    marker.as_deref(),
                    false,
                    max,
                )
            })
            .await?
        };
        let url = url_encoding(input.encoding_type.as_ref())?;
        let encode = |text: &str| {
            if url {
                url_encode(text)
            } else {
                text.to_string()
            }
        };
        let next_marker = if listing.truncated && delimiter.is_some() {
            listing.entries.last().map(|entry| match entry {
                Listed::Object { key, .. } => encode(key),
                Listed::Prefix(prefix) => encode(prefix),
            })
        } else {
            None
        };
        // ListObjects (v1) always names each object's owner.
        let bucket_owner = self.bucket_owner(&input.bucket);
        let (contents, common_prefixes) =
            split_listing(listing.entries, &encode, Some(&bucket_owner));
        Ok(S3Response::new(dto::ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encode(&prefix)),
            marker: Some(marker.as_deref().map(encode).unwrap_or_default()),
            max_keys: Some(max as i32),
            is_truncated: Some(listing.truncated),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            delimiter: delimiter.as_deref().map(encode),
            next_marker,
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let input = req.input;
        let max = self.max_keys(input.max_keys);
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
        // An empty continuation token is the same as none.
        let token = input
            .continuation_token
            .clone()
            .filter(|token| !token.is_empty());
        let (after, after_is_prefix) = match (&token, &input.start_after) {
            (Some(token), _) => {
                let (after, is_prefix) = decode_token(token)?;
                (Some(after), is_prefix)
            }
            (None, Some(start)) if !start.is_empty() => (Some(start.clone()), false),
            _ => (None, false),
        };
        let listing = {
            let (bucket, prefix, delimiter) =
                (input.bucket.clone(), prefix.clone(), delimiter.clone());
            self.store(move |store| {
                store.list(
                    &bucket,
                    &prefix,
                    delimiter.as_deref(),
                    after.as_deref(),
                    after_is_prefix,
                    max,
                )
            })
            .await?
        };
        let url = url_encoding(input.encoding_type.as_ref())?;
        let encode = |text: &str| {
            if url {
                url_encode(text)
            } else {
                text.to_string()
            }
        };
        let next = if listing.truncated {
            listing.entries.last().map(|entry| match entry {
                Listed::Object { key, .. } => encode_token(key, false),
                Listed::Prefix(prefix) => encode_token(prefix, true),
            })
        } else {
            None
        };
        let count = listing.entries.len() as i32;
        // ListObjectsV2 names owners only when asked (`fetch-owner=true`).
        let with_owner = input.fetch_owner.unwrap_or(false);
        let bucket_owner = with_owner.then(|| self.bucket_owner(&input.bucket));
        let (contents, common_prefixes) =
            split_listing(listing.entries, &encode, bucket_owner.as_deref());
        Ok(S3Response::new(dto::ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode(&prefix)),
            max_keys: Some(max as i32),
            key_count: Some(count),
            continuation_token: input.continuation_token,
            is_truncated: Some(listing.truncated),
            next_continuation_token: next,
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            delimiter: delimiter.as_deref().map(encode),
            encoding_type: input.encoding_type,
            start_after: input.start_after.as_deref().map(encode),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        let user = requester(&req);
        let input = req.input;
        refuse_unkept_write_settings!(input)?;
        self.check_key(&input.key)?;
        let metadata = self.check_metadata(&input.metadata)?;
        let bucket_record = self.require_bucket(&input.bucket).await?;
        let owner = user.clone().unwrap_or_else(|| bucket_record.owner.clone());
        let acl = self.requested_acl(
            &bucket_record,
            &owner,
            input.acl.as_ref().map(dto::ObjectCannedACL::as_str),
            &object_grants(
                input.grant_full_control.as_deref(),
                input.grant_read.as_deref(),
                input.grant_read_acp.as_deref(),
                input.grant_write_acp.as_deref(),
            ),
        )?;
        let algorithm = match &input.checksum_algorithm {
            Some(algorithm) => {
                let mut probe = Wanted::default();
                probe.add(algorithm.as_str())?;
                Some(algorithm.as_str().to_ascii_uppercase())
            }
            None => None,
        };
        let upload_id = format!("{:032x}", rand::random::<u128>());
        let record = UploadRecord {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            initiated_ms: now_ms(),
            content_type: input.content_type.clone(),
            headers: object_headers(
                input.content_encoding.clone(),
                input.content_disposition.clone(),
                input.content_language.clone(),
                input.cache_control.clone(),
                input.expires.as_ref(),
            ),
            metadata,
            checksum_algorithm: algorithm,
            initiator: user,
            acl,
        };
        let id = upload_id.clone();
        self.store(move |store| store.create_upload(&id, &record))
            .await?;
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            checksum_algorithm: input.checksum_algorithm,
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        let mut req = req;
        let mut body = req.input.body.take();
        let input = &req.input;
        let (part_number, upload) = refuse_before_body(&mut body, async {
            let part_number = self.check_part_number(input.part_number)?;
            check_content_md5_syntax(&req.headers, input.content_md5.as_deref())?;
            let upload = {
                let id = input.upload_id.clone();
                self.store(move |store| store.upload(&id)).await?
            };
            if upload.bucket != input.bucket || upload.key != input.key {
                return Err(Error::NoSuchUpload {
                    upload_id: input.upload_id.clone(),
                }
                .into());
            }
            S3Result::Ok((part_number, upload))
        })
        .await?;
        let algorithm = input.checksum_algorithm.clone().or_else(|| {
            upload
                .checksum_algorithm
                .clone()
                .map(dto::ChecksumAlgorithm::from)
        });
        let given = given_checksums(
            input.checksum_crc32.clone(),
            input.checksum_crc32c.clone(),
            input.checksum_sha1.clone(),
            input.checksum_sha256.clone(),
            input.checksum_crc64nvme.clone(),
        );
        let received = self
            .receive(
                &req,
                body,
                Self::announced_length(&req, input.content_length),
                input.content_md5.as_deref(),
                algorithm.as_ref(),
                given,
            )
            .await?;
        let size_bytes = received.size_bytes;
        let checksums = received.checksums.clone();
        // The ETag's MD5 finishes on its own thread while the bytes go to the node.
        let (pieces, md5) = self.store_received(received).await?;
        let record = PartRecord {
            size_bytes,
            etag: hex::encode(md5),
            last_modified_ms: now_ms(),
            checksums,
            pieces,
        };
        let id = input.upload_id.clone();
        let stored = record.clone();
        self.store(move |store| store.put_part(&id, part_number, &stored))
            .await?;
        let checksums = record.checksums;
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(etag(&record.etag)),
            checksum_crc32: checksums.crc32,
            checksum_crc32c: checksums.crc32c,
            checksum_sha1: checksums.sha1,
            checksum_sha256: checksums.sha256,
            checksum_crc64nvme: checksums.crc64nvme,
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<dto::UploadPartCopyInput>,
    ) -> S3Result<S3Response<dto::UploadPartCopyOutput>> {
        let user = requester(&req);
        let input = req.input;
        let part_number = self.check_part_number(input.part_number)?;
        let upload = {
            let id = input.upload_id.clone();
            self.store(move |store| store.upload(&id)).await?
        };
        if upload.bucket != input.bucket || upload.key != input.key {
            return Err(Error::NoSuchUpload {
                upload_id: input.upload_id.clone(),
            }
            .into());
        }
        let (source_bucket, source_key, source_version) = copy_source(&input.copy_source)?;
        let source = self
            .copy_source_object(
                user.as_deref(),
                &source_bucket,
                &source_key,
                source_version.as_deref(),
            )
            .await?;
        check_copy_conditions(
            &source,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
        )?;
        let (start, end) = copy_range(input.copy_source_range.as_deref(), source.size_bytes)?;
        let mut wanted = Wanted::default();
        if let Some(algorithm) = &upload.checksum_algorithm {
            wanted.add(algorithm)?;
        }
        let (md5, checksums) = self.hash_range(&source.pieces, start, end, wanted).await?;
        let record = PartRecord {
            size_bytes: end - start,
            etag: hex::encode(md5),
            last_modified_ms: now_ms(),
            checksums,
            pieces: slice_pieces(&source.pieces, start, end),
        };
        let id = input.upload_id.clone();
        let stored = record.clone();
        self.store(move |store| store.put_part(&id, part_number, &stored))
            .await?;
        let checksums = record.checksums;
        Ok(S3Response::new(dto::UploadPartCopyOutput {
            copy_part_result: Some(dto::CopyPartResult {
                e_tag: Some(etag(&record.etag)),
                last_modified: Some(timestamp(record.last_modified_ms)),
                checksum_crc32: checksums.crc32,
                checksum_crc32c: checksums.crc32c,
                checksum_sha1: checksums.sha1,
                checksum_sha256: checksums.sha256,
                checksum_crc64nvme: checksums.crc64nvme,
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        let user = requester(&req);
        let input = req.input;
        let upload = {
            let id = input.upload_id.clone();
            self.store(move |store| store.upload(&id)).await?
        };
        if upload.bucket != input.bucket || upload.key != input.key {
            return Err(Error::NoSuchUpload {
                upload_id: input.upload_id.clone(),
            }
            .into());
        }
        let condition = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        let requested = input
            .multipart_upload
            .and_then(|upload| upload.parts)
            .unwrap_or_default();
        if requested.is_empty() {
            return Err(Error::InvalidRequest {
                detail: "You must specify at least one part".into(),
            }
            .into());
        }
        let stored: BTreeMap<u32, PartRecord> = {
            let id = input.upload_id.clone();
            let max = self.limits.max_parts as usize;
            self.store(move |store| store.parts(&id, 0, max))
                .await?
                .0
                .into_iter()
                .collect()
        };
        let mut chosen: Vec<&PartRecord> = Vec::with_capacity(requested.len());
        let mut previous = 0i32;
        for part in &requested {
            let number = part.part_number.unwrap_or(0);
            if number <= previous {
                return Err(Error::InvalidPartOrder.into());
            }
            previous = number;
            let record = u32::try_from(number)
                .ok()
                .and_then(|n| stored.get(&n))
                .ok_or_else(|| Error::InvalidPart {
                    part_number: number,
                    reason: "was not uploaded".into(),
                })?;
            if let Some(given) = &part.e_tag
                && given.value().trim_matches('"') != record.etag
            {
                return Err(Error::InvalidPart {
                    part_number: number,
                    reason: "its ETag does not match the uploaded part".into(),
                }
                .into());
            }
            chosen.push(record);
        }
        for (index, record) in chosen.iter().enumerate() {
            if index + 1 < chosen.len() && record.size_bytes < self.limits.min_part_bytes {
                return Err(Error::EntityTooSmall {
                    part_number: requested[index].part_number.unwrap_or(0),
                    size_bytes: record.size_bytes,
                }
                .into());
            }
        }
        let mut md5s = Vec::with_capacity(chosen.len() * 16);
        for record in &chosen {
            md5s.extend_from_slice(&hex::decode(&record.etag).map_err(|_| Error::Corrupt {
                detail: "a stored part ETag is not hex".into(),
            })?);
        }
        let etag_value = {
            use s3s::crypto::Checksum;
            format!(
                "{}-{}",
                hex::encode(s3s::crypto::Md5::checksum(&md5s)),
                chosen.len()
            )
        };
        let mut checksums = Checksums::default();
        if let Some(algorithm) = &upload.checksum_algorithm {
            let value = composite_checksum(algorithm, &chosen)?;
            set_composite(&mut checksums, algorithm, value);
        }
        let record = ObjectRecord {
            size_bytes: chosen.iter().map(|part| part.size_bytes).sum(),
            etag: etag_value.clone(),
            last_modified_ms: now_ms(),
            content_type: upload.content_type.clone(),
            headers: upload.headers.clone(),
            metadata: upload.metadata.clone(),
            checksums: checksums.clone(),
            owner: user,
            acl: upload.acl.clone(),
            version_id: None,
            seq: 0,
            part_sizes: chosen.iter().map(|part| part.size_bytes).collect(),
            part_checksums: chosen.iter().map(|part| part.checksums.clone()).collect(),
            pieces: chosen
                .iter()
                .flat_map(|part| part.pieces.iter().cloned())
                .collect(),
        };
        let id = input.upload_id.clone();
        let version_id = self
            .store(move |store| store.complete_upload(&id, &record, &condition))
            .await?;
        Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
            version_id,
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(etag(&etag_value)),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            checksum_crc32: checksums.crc32,
            checksum_crc32c: checksums.crc32c,
            checksum_sha1: checksums.sha1,
            checksum_sha256: checksums.sha256,
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let id = req.input.upload_id;
        self.store(move |store| store.abort_upload(&id)).await?;
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        let input = req.input;
        let upload = {
            let id = input.upload_id.clone();
            self.store(move |store| store.upload(&id)).await?
        };
        if upload.bucket != input.bucket || upload.key != input.key {
            return Err(Error::NoSuchUpload {
                upload_id: input.upload_id.clone(),
            }
            .into());
        }
        let max = input
            .max_parts
            .map_or(1000, |max| max.clamp(0, 1000) as usize);
        let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
        let (parts, truncated) = {
            let id = input.upload_id.clone();
            self.store(move |store| store.parts(&id, marker, max))
                .await?
        };
        let next = parts.last().map(|(number, _)| *number as i32);
        let initiator = upload
            .initiator
            .clone()
            .unwrap_or_else(|| self.bucket_owner(&input.bucket));
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max as i32),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: next,
            is_truncated: Some(truncated),
            checksum_algorithm: upload.checksum_algorithm.map(dto::ChecksumAlgorithm::from),
            parts: Some(
                parts
                    .into_iter()
                    .map(|(number, part)| dto::Part {
                        part_number: Some(number as i32),
                        e_tag: Some(etag(&part.etag)),
                        size: Some(part.size_bytes as i64),
                        last_modified: Some(timestamp(part.last_modified_ms)),
                        checksum_crc32: part.checksums.crc32,
                        checksum_crc32c: part.checksums.crc32c,
                        checksum_sha1: part.checksums.sha1,
                        checksum_sha256: part.checksums.sha256,
                        checksum_crc64nvme: part.checksums.crc64nvme,
                    })
                    .collect(),
            ),
            owner: Some(acl::owner(&initiator)),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        let input = req.input;
        let max = input
            .max_uploads
            .map_or(1000, |max| max.clamp(0, 1000) as usize);
        let uploads = {
            let bucket = input.bucket.clone();
            self.store(move |store| store.uploads(&bucket)).await?
        };
        let bucket_owner = self.bucket_owner(&input.bucket);
        let prefix = input.prefix.clone().unwrap_or_default();
        let key_marker = input.key_marker.clone().unwrap_or_default();
        let id_marker = input.upload_id_marker.clone().unwrap_or_default();
        let mut selected: Vec<(String, UploadRecord)> = uploads
            .into_iter()
            .filter(|(id, upload)| {
                upload.key.starts_with(&prefix)
                    && (key_marker.is_empty()
                        || upload.key > key_marker
                        || (upload.key == key_marker && !id_marker.is_empty() && *id > id_marker))
            })
            .collect();
        let truncated = selected.len() > max;
        selected.truncate(max);
        let (next_key, next_id) = match (truncated, selected.last()) {
            (true, Some((id, upload))) => (Some(upload.key.clone()), Some(id.clone())),
            _ => (None, None),
        };
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: next_key,
            next_upload_id_marker: next_id,
            uploads: Some(
                selected
                    .into_iter()
                    .map(|(id, upload)| dto::MultipartUpload {
                        key: Some(upload.key),
                        upload_id: Some(id),
                        initiated: Some(timestamp(upload.initiated_ms)),
                        checksum_algorithm: upload
                            .checksum_algorithm
                            .map(dto::ChecksumAlgorithm::from),
                        owner: Some(acl::owner(
                            upload.initiator.as_deref().unwrap_or(&bucket_owner),
                        )),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}

impl Gateway {
    /// The version id an answer shows for an object: its own, `null` for a null version of a
    /// versioned bucket, none in a bucket that never had versioning.
    fn shown_version(&self, bucket: &str, record: &ObjectRecord) -> Option<String> {
        match &record.version_id {
            Some(id) => Some(id.clone()),
            None => self
                .store
                .cached_bucket(bucket)
                .filter(|state| state.record.versioning != Versioning::Unversioned)
                .map(|_| NULL_VERSION.to_string()),
        }
    }

    /// The owner of a bucket (empty for one deleted since the request was checked).
    pub(crate) fn bucket_owner(&self, bucket: &str) -> String {
        self.store
            .cached_bucket(bucket)
            .map(|state| state.record.owner.clone())
            .unwrap_or_default()
    }

    pub(crate) fn max_keys(&self, asked: Option<i32>) -> usize {
        asked.map_or(self.limits.max_keys, |max| {
            (max.max(0) as usize).min(self.limits.max_keys)
        })
    }

    fn check_part_number(&self, number: i32) -> Result<u32> {
        if !(1..=self.limits.max_parts).contains(&number) {
            return Err(Error::InvalidArgument {
                detail: format!(
                    "part number must be an integer between 1 and {}",
                    self.limits.max_parts
                ),
            });
        }
        Ok(number as u32)
    }
}

/// Whether a listing's `encoding-type` asks for URL-encoded names; S3 knows only `url`.
pub(crate) fn url_encoding(encoding_type: Option<&dto::EncodingType>) -> Result<bool> {
    match encoding_type.map(dto::EncodingType::as_str) {
        None => Ok(false),
        Some(dto::EncodingType::URL) => Ok(true),
        Some(_) => Err(Error::InvalidArgument {
            detail: "Invalid Encoding Method specified in Request".into(),
        }),
    }
}

/// Listed objects and common prefixes; each object with its owner when `bucket_owner` is
/// given (an object without one of its own is the bucket owner's).
fn split_listing(
    entries: Vec<Listed>,
    encode: &dyn Fn(&str) -> String,
    bucket_owner: Option<&str>,
) -> (Vec<dto::Object>, Vec<dto::CommonPrefix>) {
    let mut contents = Vec::new();
    let mut prefixes = Vec::new();
    for entry in entries {
        match entry {
            Listed::Object { key, record } => contents.push(dto::Object {
                key: Some(encode(&key)),
                size: Some(record.size_bytes as i64),
                e_tag: Some(etag(&record.etag)),
                last_modified: Some(timestamp(record.last_modified_ms)),
                storage_class: Some(dto::ObjectStorageClass::from_static(
                    dto::ObjectStorageClass::STANDARD,
                )),
                owner: bucket_owner.map(|bucket_owner| {
                    acl::owner(record.owner.as_deref().unwrap_or(bucket_owner))
                }),
                ..Default::default()
            }),
            Listed::Prefix(prefix) => prefixes.push(dto::CommonPrefix {
                prefix: Some(encode(&prefix)),
            }),
        }
    }
    (contents, prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_path_tricks_are_refused() {
        for bad in ["", "a/../b", "..", "./x", "a/.", "nul\0byte", "tab\there"] {
            assert!(validate_key(bad, 1024).is_err(), "{bad:?} must be refused");
        }
        for good in [
            "a b",
            "ünï/cødé",
            "a+b&c=d%e",
            "a..b/c.",
            ".hidden",
            "deep/".repeat(50).as_str(),
        ] {
            validate_key(good, 1024).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
        assert!(matches!(
            validate_key(&"k".repeat(1025), 1024),
            Err(Error::KeyTooLong { .. })
        ));
    }

    #[test]
    fn copy_ranges_are_first_last_within_the_source() {
        assert_eq!(copy_range(None, 10).expect("whole"), (0, 10));
        assert_eq!(copy_range(Some("bytes=2-5"), 10).expect("valid"), (2, 6));
        assert_eq!(
            copy_range(Some("bytes=9-9"), 10).expect("last byte"),
            (9, 10)
        );
        for out_of_range in ["bytes=0-10", "bytes=5-4", "bytes=10-12"] {
            assert!(
                matches!(
                    copy_range(Some(out_of_range), 10),
                    Err(Error::InvalidRange { .. })
                ),
                "{out_of_range}"
            );
        }
        for malformed in ["bytes=-5", "bytes=5-", "5-6", "bytes=a-b"] {
            assert!(
                matches!(
                    copy_range(Some(malformed), 10),
                    Err(Error::InvalidArgument { .. })
                ),
                "{malformed}"
            );
        }
    }

    #[test]
    fn aws_chunked_is_not_a_stored_content_encoding() {
        let encoding = |given: &str| {
            object_headers(Some(given.into()), None, None, None, None)
                .get("content-encoding")
                .cloned()
        };
        assert_eq!(encoding("gzip, aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(encoding("aws-chunked,br").as_deref(), Some("br"));
        assert_eq!(encoding("aws-chunked"), None);
    }

    #[test]
    fn url_encoding_matches_s3() {
        assert_eq!(url_encode("a b+c&d=e%f/ü"), "a%20b%2Bc%26d%3De%25f/%C3%BC");
    }

    #[test]
    fn tokens_round_trip() {
        for (after, is_prefix) in [("a/b", false), ("dir/", true), ("ü+&=%", false)] {
            assert_eq!(
                decode_token(&encode_token(after, is_prefix)).expect("valid"),
                (after.to_string(), is_prefix)
            );
        }
        assert!(decode_token("!!!").is_err());
    }

    #[test]
    fn slices_cover_ranges_across_pieces() {
        let piece = |byte: u8, offset: u64, length: u64| Piece {
            root: types::H256([byte; 32]),
            tx_seq: 0,
            file_size: 100,
            offset,
            length,
        };
        let pieces = [piece(1, 0, 10), piece(2, 5, 20)];
        assert_eq!(
            slice_pieces(&pieces, 8, 15),
            [piece(1, 8, 2), piece(2, 5, 5)]
        );
        assert_eq!(slice_pieces(&pieces, 10, 30), [piece(2, 5, 20)]);
        assert!(slice_pieces(&pieces, 30, 30).is_empty());
    }
}
