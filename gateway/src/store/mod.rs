//! The metadata store: buckets, objects, multipart uploads and the accounting of storage files,
//! in one redb database (ACID, one fsync per commit). Object bytes are never here: an object
//! is a list of pieces, each a byte range of a finalized 0G file on the node. Every change of
//! which pieces are referenced goes through `adjust_refs` in the same transaction, so the
//! live/dead accounting can never disagree with the objects.

use crate::acl::Acl;
use crate::cors::CorsRule;
use crate::error::{Error, Result};
use crate::policy::Policy;

mod versions;
use kvstore::redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use kvstore::{FormatVersion, META};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use types::H256;
pub use versions::{Deleted, NULL_VERSION, Version, VersionListed, VersionRef, Versioning};
use versions::{VERSIONS, install};

/// Bumped when a record's meaning changes, with a step that converts the records; a store
/// newer than this build is refused. 2: buckets have an owner (and ACL, policy, CORS rules,
/// versioning state, public access block); format 1 buckets get the gateway's first key.
const FORMAT_VERSION: u64 = 2;

const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
const OBJECTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("objects");
const FILES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("files");
const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");

/// A byte range of a finalized 0G file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    pub root: H256,
    pub tx_seq: u64,
    pub file_size: u64,
    pub offset: u64,
    pub length: u64,
}

/// Checksums as S3 sends them (base64 of the big-endian digest; `-N` for composite ones).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksums {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub crc64nvme: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub size_bytes: u64,
    /// Without quotes: hex MD5, or `md5-of-md5s-N` for a multipart upload.
    pub etag: String,
    pub last_modified_ms: u64,
    pub content_type: Option<String>,
    /// Content-Encoding, Content-Disposition, Content-Language, Cache-Control, Expires.
    pub headers: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub checksums: Checksums,
    /// The user that wrote the object; `None`: the bucket's owner (objects written before
    /// buckets had owners).
    #[serde(default)]
    pub owner: Option<String>,
    /// `None`: private.
    #[serde(default)]
    pub acl: Option<Acl>,
    /// `None`: the null version (an object written while versioning was not enabled).
    #[serde(default)]
    pub version_id: Option<String>,
    /// The versioned write that made this version (orders a key's versions); 0 for an object
    /// written while versioning was never enabled.
    #[serde(default)]
    pub seq: u64,
    /// Part sizes of a multipart upload (empty otherwise).
    pub part_sizes: Vec<u64>,
    /// The checksums of each part of a multipart upload, as uploaded (empty otherwise, and for
    /// objects completed before they were kept).
    #[serde(default)]
    pub part_checksums: Vec<Checksums>,
    pub pieces: Vec<Piece>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketRecord {
    pub created_ms: u64,
    /// The user (access key) that created the bucket; for a bucket of format 1, the first key
    /// the gateway was configured with when the store was upgraded.
    pub owner: String,
    /// `None`: private.
    #[serde(default)]
    pub acl: Option<Acl>,
    /// The bucket policy as it was given (checked by `Policy::parse` before it is stored).
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub public_access_block: Option<PublicAccessBlock>,
    /// The CORS rules (checked by `cors::rules_of` before they are stored).
    #[serde(default)]
    pub cors: Option<Vec<CorsRule>>,
    #[serde(default)]
    pub versioning: Versioning,
}

/// A bucket's PublicAccessBlock configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Setting a public ACL (on the bucket or an object, in a write or by PutAcl) is refused.
    pub block_public_acls: bool,
    /// Grants to everyone or to every signed request count for nothing.
    pub ignore_public_acls: bool,
    /// Setting a public policy is refused.
    pub block_public_policy: bool,
    /// While the policy is public, it allows nothing to anyone but the owner.
    pub restrict_public_buckets: bool,
}

impl BucketRecord {
    pub fn new(owner: &str, created_ms: u64) -> BucketRecord {
        BucketRecord {
            created_ms,
            owner: owner.to_string(),
            acl: None,
            policy: None,
            public_access_block: None,
            cors: None,
            versioning: Versioning::Unversioned,
        }
    }

    pub fn block(&self) -> PublicAccessBlock {
        self.public_access_block.unwrap_or_default()
    }

    pub fn acl(&self) -> Acl {
        self.acl
            .clone()
            .unwrap_or_else(|| Acl::private(&self.owner))
    }
}

/// A bucket as requests see it: its record, and its policy parsed.
#[derive(Debug)]
pub struct BucketState {
    pub record: BucketRecord,
    pub policy: Option<Policy>,
}

impl BucketState {
    fn new(name: &str, record: BucketRecord) -> Result<BucketState> {
        let policy = match &record.policy {
            Some(text) => {
                Some(
                    Policy::parse(text, name, None).map_err(|error| Error::Corrupt {
                        detail: format!("the stored policy of bucket {name}: {error}"),
                    })?,
                )
            }
            None => None,
        };
        Ok(BucketState { record, policy })
    }
}

/// A bucket as format 1 wrote it.
#[derive(Deserialize)]
struct BucketRecordV1 {
    created_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: String,
    pub initiated_ms: u64,
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    /// The checksum algorithm named at creation (`CRC32`, …), if any.
    pub checksum_algorithm: Option<String>,
    /// The user that created the upload; `None`: the bucket's owner.
    #[serde(default)]
    pub initiator: Option<String>,
    /// The ACL the object gets when the upload completes; `None`: private.
    #[serde(default)]
    pub acl: Option<Acl>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartRecord {
    pub size_bytes: u64,
    pub etag: String,
    pub last_modified_ms: u64,
    pub checksums: Checksums,
    pub pieces: Vec<Piece>,
}

/// How many objects reference each stored file, and its size.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FileRecord {
    tx_seq: u64,
    size_bytes: u64,
    refs: u64,
}

/// Space accounting over every file the gateway stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpaceStats {
    pub files: u64,
    pub stored_bytes: u64,
    /// Bytes of files no object or part references any more: still on the log, dead.
    pub dead_bytes: u64,
    pub dead_files: u64,
    pub buckets: u64,
    /// Current objects.
    pub objects: u64,
    /// Noncurrent versions and delete markers of versioned buckets.
    pub versions: u64,
    pub uploads: u64,
}

/// What a conditional write requires of the current object.
#[derive(Clone, Debug, Default)]
pub struct WriteCondition {
    /// `If-None-Match: *`: no object may exist.
    pub must_not_exist: bool,
    /// `If-Match`: the current object's ETag must be this (or any, for `*`).
    pub if_match: Option<Option<String>>,
}

/// One entry of a listing.
pub enum Listed {
    Object {
        key: String,
        record: Box<ObjectRecord>,
    },
    Prefix(String),
}

pub struct Listing {
    pub entries: Vec<Listed>,
    pub truncated: bool,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialize")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|error| Error::Corrupt {
        detail: format!("{what}: {error}"),
    })
}

pub struct Store {
    db: Database,
    /// Every bucket's record as committed, for the checks each request makes before it reaches
    /// a handler (access, CORS), without a read transaction. Read at open; replaced, under
    /// `bucket_writes`, right after each commit that changes a bucket, so it never shows an
    /// older record than one already committed and answered.
    buckets: RwLock<HashMap<String, Arc<BucketState>>>,
    /// Held by every transaction that writes a bucket record, from its start to the update of
    /// `buckets`: two such commits cannot update the cache out of order.
    bucket_writes: Mutex<()>,
}

impl Store {
    /// Opens (or creates) the store; one written by redb 2 (file format v2) is upgraded to
    /// today's file format first, and one of an older format version to today's, its buckets
    /// given `first_user` as their owner.
    pub fn open(path: &Path, first_user: &str) -> Result<Store> {
        let db = kvstore::open(
            path,
            &[
                kvstore::Table::new(META),
                kvstore::Table::new(BUCKETS),
                kvstore::Table::new(OBJECTS),
                kvstore::Table::new(FILES),
                kvstore::Table::new(UPLOADS),
                kvstore::Table::new(PARTS),
                kvstore::Table::new(VERSIONS),
            ],
        )?;
        let txn = db.begin_write()?;
        FormatVersion {
            store: "gateway store",
            path,
            current: FORMAT_VERSION,
            // The store recorded its version from the start.
            unversioned: 1,
        }
        .ensure(&txn, |version, txn| match version {
            1 => give_buckets_an_owner(txn, first_user),
            _ => Ok::<(), Error>(()),
        })?;
        {
            txn.open_table(BUCKETS)?;
            txn.open_table(OBJECTS)?;
            txn.open_table(FILES)?;
            txn.open_table(UPLOADS)?;
            txn.open_table(PARTS)?;
            txn.open_table(VERSIONS)?;
        }
        txn.commit()?;
        let buckets = {
            let txn = db.begin_read()?;
            let mut buckets = HashMap::new();
            for entry in txn.open_table(BUCKETS)?.iter()? {
                let (name, value) = entry?;
                let name = name.value().to_string();
                let state = BucketState::new(&name, decode(value.value(), "bucket")?)?;
                buckets.insert(name, Arc::new(state));
            }
            buckets
        };
        Ok(Store {
            db,
            buckets: RwLock::new(buckets),
            bucket_writes: Mutex::new(()),
        })
    }

    /// The committed state of `bucket`, from memory.
    pub fn cached_bucket(&self, bucket: &str) -> Option<Arc<BucketState>> {
        self.buckets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(bucket)
            .cloned()
    }

    /// Runs a transaction that may write bucket records and, once it has committed, puts
    /// what it returns for each bucket into the cache (`None`: the bucket is gone).
    fn write_buckets<T>(
        &self,
        write: impl FnOnce(&WriteTransaction) -> Result<(T, Vec<(String, Option<BucketRecord>)>)>,
    ) -> Result<T> {
        let _serial = self
            .bucket_writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let txn = self.db.begin_write()?;
        let (out, changed) = write(&txn)?;
        let states = changed
            .into_iter()
            .map(|(name, record)| {
                let state = record
                    .map(|record| BucketState::new(&name, record).map(Arc::new))
                    .transpose()?;
                Ok((name, state))
            })
            .collect::<Result<Vec<_>>>()?;
        txn.commit()?;
        let mut cache = self.buckets.write().unwrap_or_else(PoisonError::into_inner);
        for (name, state) in states {
            match state {
                Some(state) => cache.insert(name, state),
                None => cache.remove(&name),
            };
        }
        Ok(out)
    }

    /// Creates a bucket. One that exists is BucketAlreadyOwnedByYou to its owner and
    /// BucketAlreadyExists to anyone else, and is left as it is.
    pub fn create_bucket(&self, bucket: &str, record: BucketRecord) -> Result<()> {
        self.write_buckets(|txn| {
            let mut buckets = txn.open_table(BUCKETS)?;
            if let Some(existing) = buckets.get(bucket)? {
                let existing: BucketRecord = decode(existing.value(), "bucket")?;
                let bucket = bucket.to_string();
                return Err(if existing.owner == record.owner {
                    Error::BucketAlreadyOwnedByYou { bucket }
                } else {
                    Error::BucketAlreadyExists { bucket }
                });
            }
            buckets.insert(bucket, encode(&record).as_slice())?;
            Ok(((), vec![(bucket.to_string(), Some(record))]))
        })
    }

    /// Changes a bucket's record (its ACL, policy, …) with `change`, which may refuse.
    pub fn update_bucket(
        &self,
        bucket: &str,
        change: impl FnOnce(&mut BucketRecord) -> Result<()>,
    ) -> Result<()> {
        self.write_buckets(|txn| {
            let mut buckets = txn.open_table(BUCKETS)?;
            let mut record: BucketRecord = match buckets.get(bucket)? {
                Some(value) => decode(value.value(), "bucket")?,
                None => return Err(no_bucket(bucket)),
            };
            change(&mut record)?;
            buckets.insert(bucket, encode(&record).as_slice())?;
            Ok(((), vec![(bucket.to_string(), Some(record))]))
        })
    }

    /// Changes a version's record in place (its ACL) with `change`, which sees its bucket's
    /// record and may refuse; nothing else about the object changes. `version`: `None` for
    /// the current object.
    pub fn update_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        change: impl FnOnce(&BucketRecord, &mut ObjectRecord) -> Result<()>,
    ) -> Result<()> {
        let version = version.map(VersionRef::parse).transpose()?;
        let txn = self.db.begin_write()?;
        {
            let bucket_record: BucketRecord = match txn.open_table(BUCKETS)?.get(bucket)? {
                Some(value) => decode(value.value(), "bucket")?,
                None => return Err(no_bucket(bucket)),
            };
            let mut objects = txn.open_table(OBJECTS)?;
            let current: Option<ObjectRecord> = match objects.get((bucket, key))? {
                Some(value) => Some(decode(value.value(), "object")?),
                None => None,
            };
            let missing = || Error::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
            };
            match version {
                None => {
                    let mut record = current.ok_or_else(missing)?;
                    change(&bucket_record, &mut record)?;
                    objects.insert((bucket, key), encode(&record).as_slice())?;
                }
                Some(version) => {
                    let mut older = txn.open_table(VERSIONS)?;
                    let mut found = Vec::new();
                    for entry in older.range((bucket, key, 0)..=(bucket, key, u64::MAX))? {
                        let (name, value) = entry?;
                        found.push((name.value().2, decode(value.value(), "version")?));
                    }
                    match versions::locate(current, found, version) {
                        Some(versions::Located::Current(mut record)) => {
                            change(&bucket_record, &mut record)?;
                            objects.insert((bucket, key), encode(&*record).as_slice())?;
                        }
                        Some(versions::Located::Older {
                            table_seq,
                            version: Version::Object(mut record),
                        }) => {
                            change(&bucket_record, &mut record)?;
                            older.insert(
                                (bucket, key, table_seq),
                                encode(&Version::Object(record)).as_slice(),
                            )?;
                        }
                        Some(versions::Located::Older { .. }) => {
                            return Err(Error::InvalidRequest {
                                detail: "the version named is a delete marker".into(),
                            });
                        }
                        None => {
                            return Err(Error::NoSuchVersion {
                                key: key.to_string(),
                            });
                        }
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Deletes an empty bucket. Incomplete multipart uploads do not keep it: they are aborted
    /// with it (their parts lose their references), so a client that deletes every object and
    /// then the bucket is never stuck on uploads it cannot see. Returns how many were aborted.
    pub fn delete_bucket(&self, bucket: &str) -> Result<usize> {
        self.write_buckets(|txn| {
            let mut buckets = txn.open_table(BUCKETS)?;
            if buckets.get(bucket)?.is_none() {
                return Err(no_bucket(bucket));
            }
            let objects = txn.open_table(OBJECTS)?;
            let has_objects = objects
                .range((bucket, "")..)?
                .next()
                .transpose()?
                .is_some_and(|(key, _)| key.value().0 == bucket);
            // Versions and delete markers are objects too, as S3 counts them.
            let has_versions = txn
                .open_table(VERSIONS)?
                .range((bucket, "", 0)..)?
                .next()
                .transpose()?
                .is_some_and(|(key, _)| key.value().0 == bucket);
            if has_objects || has_versions {
                return Err(Error::BucketNotEmpty {
                    bucket: bucket.to_string(),
                });
            }
            let mut uploads = txn.open_table(UPLOADS)?;
            let mut ids = Vec::new();
            for entry in uploads.iter()? {
                let (id, value) = entry?;
                let upload: UploadRecord = decode(value.value(), "upload")?;
                if upload.bucket == bucket {
                    ids.push(id.value().to_string());
                }
            }
            for id in &ids {
                uploads.remove(id.as_str())?;
                for part in remove_parts(txn, id)? {
                    adjust_refs(txn, &part.pieces, -1)?;
                }
            }
            buckets.remove(bucket)?;
            Ok((ids.len(), vec![(bucket.to_string(), None)]))
        })
    }

    pub fn bucket(&self, bucket: &str) -> Result<BucketRecord> {
        let txn = self.db.begin_read()?;
        let buckets = txn.open_table(BUCKETS)?;
        let record = buckets.get(bucket)?.ok_or_else(|| no_bucket(bucket))?;
        decode(record.value(), "bucket")
    }

    pub fn buckets(&self) -> Result<Vec<(String, BucketRecord)>> {
        let txn = self.db.begin_read()?;
        let buckets = txn.open_table(BUCKETS)?;
        let mut out = Vec::new();
        for entry in buckets.iter()? {
            let (name, value) = entry?;
            out.push((name.value().to_string(), decode(value.value(), "bucket")?));
        }
        Ok(out)
    }

    /// The current object of `key` (see [`Store::object_version`]).
    pub fn object(&self, bucket: &str, key: &str) -> Result<ObjectRecord> {
        self.object_version(bucket, key, None)
    }

    /// Writes an object: in an unversioned bucket it replaces the current one (whose pieces
    /// lose their reference), in a versioned one it becomes the newest version. Returns its
    /// version id (`None` for a null version).
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<String>> {
        let txn = self.db.begin_write()?;
        let version_id = {
            let versioning = versions::versioning_of(&txn, bucket)?;
            let old: Option<ObjectRecord> = match txn.open_table(OBJECTS)?.get((bucket, key))? {
                Some(value) => Some(decode(value.value(), "object")?),
                None => None,
            };
            check_condition(old.as_ref(), condition)?;
            install(&txn, bucket, key, record, versioning)?
        };
        txn.commit()?;
        Ok(version_id)
    }

    /// Deletes an object (`version`: `None`) or one version of it for good; deleting a missing
    /// key or version is not an error (S3 semantics). In a versioned bucket a delete without a
    /// version makes a delete marker, owned by `owner`.
    pub fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        owner: Option<&str>,
        now_ms: u64,
    ) -> Result<Deleted> {
        let version = version.map(VersionRef::parse).transpose()?;
        let txn = self.db.begin_write()?;
        let deleted = versions::delete(&txn, bucket, key, version, owner, now_ms)?;
        txn.commit()?;
        Ok(deleted)
    }

    /// Keys of `bucket` starting with `prefix`, strictly after `after` (and, when
    /// `after_is_prefix`, not under it: a continuation after a common prefix), grouped by
    /// `delimiter`, at most `max` entries.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        after_is_prefix: bool,
        max: usize,
    ) -> Result<Listing> {
        let txn = self.db.begin_read()?;
        if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
            return Err(no_bucket(bucket));
        }
        if max == 0 {
            // S3 answers `max-keys=0` with an empty page that is not truncated.
            return Ok(Listing {
                entries: Vec::new(),
                truncated: false,
            });
        }
        let objects = txn.open_table(OBJECTS)?;
        let start = match after {
            Some(after) if after > prefix => after,
            _ => prefix,
        };
        let mut entries = Vec::new();
        let mut truncated = false;
        let mut last_prefix: Option<String> = None;
        for entry in objects.range((bucket, start)..)? {
            let (name, value) = entry?;
            let (entry_bucket, key) = name.value();
            if entry_bucket != bucket || !key.starts_with(prefix) {
                break;
            }
            if after.is_some_and(|after| key <= after) {
                continue;
            }
            if let Some(skip) = &last_prefix
                && key.starts_with(skip.as_str())
            {
                continue;
            }
            if let Some(after) = after
                && after_is_prefix
                && key.starts_with(after)
            {
                continue;
            }
            let common = delimiter.filter(|d| !d.is_empty()).and_then(|delimiter| {
                key[prefix.len()..]
                    .find(delimiter)
                    .map(|at| key[..prefix.len() + at + delimiter.len()].to_string())
            });
            if entries.len() == max {
                truncated = true;
                break;
            }
            match common {
                Some(common) => {
                    last_prefix = Some(common.clone());
                    entries.push(Listed::Prefix(common));
                }
                None => entries.push(Listed::Object {
                    key: key.to_string(),
                    record: Box::new(decode(value.value(), "object")?),
                }),
            }
        }
        Ok(Listing { entries, truncated })
    }

    pub fn create_upload(&self, upload_id: &str, record: &UploadRecord) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            if txn
                .open_table(BUCKETS)?
                .get(record.bucket.as_str())?
                .is_none()
            {
                return Err(no_bucket(&record.bucket));
            }
            txn.open_table(UPLOADS)?
                .insert(upload_id, encode(record).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn upload(&self, upload_id: &str) -> Result<UploadRecord> {
        let txn = self.db.begin_read()?;
        let uploads = txn.open_table(UPLOADS)?;
        let value = uploads
            .get(upload_id)?
            .ok_or_else(|| no_upload(upload_id))?;
        decode(value.value(), "upload")
    }

    pub fn put_part(&self, upload_id: &str, part_number: u32, record: &PartRecord) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            if txn.open_table(UPLOADS)?.get(upload_id)?.is_none() {
                return Err(no_upload(upload_id));
            }
            let mut parts = txn.open_table(PARTS)?;
            let old = parts.insert((upload_id, part_number), encode(record).as_slice())?;
            let old: Option<PartRecord> = match old {
                Some(value) => Some(decode(value.value(), "part")?),
                None => None,
            };
            adjust_refs(&txn, &record.pieces, 1)?;
            if let Some(old) = old {
                adjust_refs(&txn, &old.pieces, -1)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Parts of an upload after `after`, at most `max`; and whether more remain.
    pub fn parts(
        &self,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<(u32, PartRecord)>, bool)> {
        let txn = self.db.begin_read()?;
        if txn.open_table(UPLOADS)?.get(upload_id)?.is_none() {
            return Err(no_upload(upload_id));
        }
        let parts = txn.open_table(PARTS)?;
        let mut out = Vec::new();
        for entry in parts.range((upload_id, after.saturating_add(1))..=(upload_id, u32::MAX))? {
            let (name, value) = entry?;
            if out.len() == max {
                return Ok((out, true));
            }
            out.push((name.value().1, decode(value.value(), "part")?));
        }
        Ok((out, false))
    }

    /// Uploads of a bucket, ordered by key then upload id.
    pub fn uploads(&self, bucket: &str) -> Result<Vec<(String, UploadRecord)>> {
        let txn = self.db.begin_read()?;
        if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
            return Err(no_bucket(bucket));
        }
        let uploads = txn.open_table(UPLOADS)?;
        let mut out = Vec::new();
        for entry in uploads.iter()? {
            let (id, value) = entry?;
            let record: UploadRecord = decode(value.value(), "upload")?;
            if record.bucket == bucket {
                out.push((id.value().to_string(), record));
            }
        }
        out.sort_by(|a, b| (&a.1.key, &a.0).cmp(&(&b.1.key, &b.0)));
        Ok(out)
    }

    /// Completes an upload: the object takes the pieces of the parts named; every other part
    /// loses its reference; the upload is gone.
    pub fn complete_upload(
        &self,
        upload_id: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<String>> {
        let txn = self.db.begin_write()?;
        let version_id = {
            let mut uploads = txn.open_table(UPLOADS)?;
            let upload: UploadRecord = match uploads.remove(upload_id)? {
                Some(value) => decode(value.value(), "upload")?,
                None => return Err(no_upload(upload_id)),
            };
            let versioning = versions::versioning_of(&txn, &upload.bucket)?;
            let removed = remove_parts(&txn, upload_id)?;
            let key = (upload.bucket.as_str(), upload.key.as_str());
            let old: Option<ObjectRecord> = match txn.open_table(OBJECTS)?.get(key)? {
                Some(value) => Some(decode(value.value(), "object")?),
                None => None,
            };
            check_condition(old.as_ref(), condition)?;
            let version_id = install(&txn, key.0, key.1, record, versioning)?;
            for part in removed {
                adjust_refs(&txn, &part.pieces, -1)?;
            }
            version_id
        };
        txn.commit()?;
        Ok(version_id)
    }

    pub fn abort_upload(&self, upload_id: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut uploads = txn.open_table(UPLOADS)?;
            if uploads.remove(upload_id)?.is_none() {
                return Err(no_upload(upload_id));
            }
            for part in remove_parts(&txn, upload_id)? {
                adjust_refs(&txn, &part.pieces, -1)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub fn space(&self) -> Result<SpaceStats> {
        let txn = self.db.begin_read()?;
        let mut stats = SpaceStats::default();
        for entry in txn.open_table(FILES)?.iter()? {
            let (_, value) = entry?;
            let file: FileRecord = decode(value.value(), "file")?;
            stats.files += 1;
            stats.stored_bytes += file.size_bytes;
            if file.refs == 0 {
                stats.dead_files += 1;
                stats.dead_bytes += file.size_bytes;
            }
        }
        stats.buckets = txn.open_table(BUCKETS)?.len()?;
        stats.objects = txn.open_table(OBJECTS)?.len()?;
        stats.versions = txn.open_table(VERSIONS)?.len()?;
        stats.uploads = txn.open_table(UPLOADS)?.len()?;
        Ok(stats)
    }
}

/// Format 1 → 2: every bucket is owned by `owner`, private, unversioned. Objects keep their
/// records: an object without an owner is its bucket's owner's.
fn give_buckets_an_owner(txn: &WriteTransaction, owner: &str) -> Result<()> {
    let mut buckets = txn.open_table(BUCKETS)?;
    let mut upgraded = Vec::new();
    for entry in buckets.iter()? {
        let (name, value) = entry?;
        let old: BucketRecordV1 = decode(value.value(), "bucket of format 1")?;
        upgraded.push((
            name.value().to_string(),
            BucketRecord::new(owner, old.created_ms),
        ));
    }
    for (name, record) in &upgraded {
        buckets.insert(name.as_str(), encode(record).as_slice())?;
    }
    tracing::info!(
        buckets = upgraded.len(),
        owner,
        "gateway store: buckets of format 1 are owned by the first configured key"
    );
    Ok(())
}

fn check_condition(old: Option<&ObjectRecord>, condition: &WriteCondition) -> Result<()> {
    if condition.must_not_exist && old.is_some() {
        return Err(Error::PreconditionFailed {
            condition: "If-None-Match",
        });
    }
    if let Some(expected) = &condition.if_match {
        let holds = match (old, expected) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(old), Some(etag)) => old.etag == *etag,
        };
        if !holds {
            return Err(Error::PreconditionFailed {
                condition: "If-Match",
            });
        }
    }
    Ok(())
}

fn remove_parts(txn: &WriteTransaction, upload_id: &str) -> Result<Vec<PartRecord>> {
    let mut parts = txn.open_table(PARTS)?;
    let mut removed = Vec::new();
    let mut numbers = Vec::new();
    for entry in parts.range((upload_id, 0u32)..=(upload_id, u32::MAX))? {
        let (name, value) = entry?;
        numbers.push(name.value().1);
        removed.push(decode(value.value(), "part")?);
    }
    for number in numbers {
        parts.remove((upload_id, number))?;
    }
    Ok(removed)
}

/// Adds `delta` references to the file of each piece; a file seen for the first time is
/// recorded (its bytes now count as stored), and one whose count reaches 0 is dead.
fn adjust_refs(txn: &WriteTransaction, pieces: &[Piece], delta: i64) -> Result<()> {
    let mut files = txn.open_table(FILES)?;
    for piece in pieces {
        let mut record = match files.get(&piece.root.0)? {
            Some(value) => decode(value.value(), "file")?,
            None => FileRecord {
                tx_seq: piece.tx_seq,
                size_bytes: piece.file_size,
                refs: 0,
            },
        };
        record.refs = if delta >= 0 {
            record.refs + delta.unsigned_abs()
        } else {
            record
                .refs
                .checked_sub(delta.unsigned_abs())
                .ok_or_else(|| Error::Corrupt {
                    detail: format!("file {} lost more references than it had", piece.root),
                })?
        };
        files.insert(&piece.root.0, encode(&record).as_slice())?;
    }
    Ok(())
}

fn no_bucket(bucket: &str) -> Error {
    Error::NoSuchBucket {
        bucket: bucket.to_string(),
    }
}

fn no_upload(upload_id: &str) -> Error {
    Error::NoSuchUpload {
        upload_id: upload_id.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(pieces: Vec<Piece>) -> ObjectRecord {
        ObjectRecord {
            size_bytes: pieces.iter().map(|p| p.length).sum(),
            etag: "e".into(),
            last_modified_ms: 0,
            content_type: None,
            headers: BTreeMap::new(),
            metadata: BTreeMap::new(),
            checksums: Checksums::default(),
            owner: None,
            acl: None,
            version_id: None,
            seq: 0,
            part_sizes: Vec::new(),
            part_checksums: Vec::new(),
            pieces,
        }
    }

    pub(crate) fn piece(byte: u8, size: u64) -> Piece {
        Piece {
            root: H256([byte; 32]),
            tx_seq: u64::from(byte),
            file_size: size,
            offset: 0,
            length: size,
        }
    }

    fn keys(listing: &Listing) -> Vec<String> {
        listing
            .entries
            .iter()
            .map(|entry| match entry {
                Listed::Object { key, .. } => key.clone(),
                Listed::Prefix(prefix) => format!("{prefix}*"),
            })
            .collect()
    }

    #[test]
    fn overwrite_and_delete_make_files_dead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("meta.redb"), "owner").expect("open");
        store
            .create_bucket("b", BucketRecord::new("owner", 1))
            .expect("bucket");
        store
            .put_object(
                "b",
                "k",
                &record(vec![piece(1, 100)]),
                &WriteCondition::default(),
            )
            .expect("put");
        store
            .put_object(
                "b",
                "copy",
                &record(vec![piece(1, 100)]),
                &WriteCondition::default(),
            )
            .expect("put");
        store
            .put_object(
                "b",
                "k",
                &record(vec![piece(2, 50)]),
                &WriteCondition::default(),
            )
            .expect("overwrite");
        let space = store.space().expect("space");
        assert_eq!((space.stored_bytes, space.dead_bytes), (150, 0));
        store
            .delete_object("b", "copy", None, None, 0)
            .expect("delete");
        let space = store.space().expect("space");
        assert_eq!(
            (space.stored_bytes, space.dead_bytes, space.dead_files),
            (150, 100, 1)
        );
        assert!(matches!(
            store.delete_bucket("b"),
            Err(Error::BucketNotEmpty { .. })
        ));
        store
            .delete_object("b", "k", None, None, 0)
            .expect("delete");
        store.delete_bucket("b").expect("empty bucket deletes");
    }

    #[test]
    fn deleting_a_bucket_aborts_its_uploads_and_frees_their_parts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("meta.redb"), "owner").expect("open");
        store
            .create_bucket("b", BucketRecord::new("owner", 1))
            .expect("bucket");
        store
            .create_bucket("other", BucketRecord::new("owner", 1))
            .expect("bucket");
        let upload = |bucket: &str| UploadRecord {
            bucket: bucket.into(),
            key: "k".into(),
            initiated_ms: 0,
            content_type: None,
            headers: BTreeMap::new(),
            metadata: BTreeMap::new(),
            checksum_algorithm: None,
            initiator: None,
            acl: None,
        };
        store.create_upload("u1", &upload("b")).expect("upload");
        store.create_upload("u2", &upload("other")).expect("upload");
        let part = PartRecord {
            size_bytes: 10,
            etag: "e".into(),
            last_modified_ms: 0,
            checksums: Checksums::default(),
            pieces: vec![piece(7, 10)],
        };
        store.put_part("u1", 1, &part).expect("part");
        store
            .put_object("b", "k", &record(vec![]), &WriteCondition::default())
            .expect("put");
        assert!(matches!(
            store.delete_bucket("b"),
            Err(Error::BucketNotEmpty { .. })
        ));
        store
            .delete_object("b", "k", None, None, 0)
            .expect("delete");
        assert_eq!(store.delete_bucket("b").expect("deleted"), 1);
        assert!(store.cached_bucket("b").is_none());
        assert!(matches!(
            store.upload("u1"),
            Err(Error::NoSuchUpload { .. })
        ));
        store.upload("u2").expect("another bucket's upload stays");
        let space = store.space().expect("space");
        assert_eq!(
            (space.uploads, space.dead_files, space.dead_bytes),
            (1, 1, 10)
        );
    }

    #[test]
    fn conditions_are_checked_in_the_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("meta.redb"), "owner").expect("open");
        store
            .create_bucket("b", BucketRecord::new("owner", 1))
            .expect("bucket");
        let create_only = WriteCondition {
            must_not_exist: true,
            ..WriteCondition::default()
        };
        store
            .put_object("b", "k", &record(vec![]), &create_only)
            .expect("first");
        assert!(matches!(
            store.put_object("b", "k", &record(vec![]), &create_only),
            Err(Error::PreconditionFailed { .. })
        ));
        let wrong = WriteCondition {
            if_match: Some(Some("other".into())),
            ..WriteCondition::default()
        };
        assert!(store.put_object("b", "k", &record(vec![]), &wrong).is_err());
        let right = WriteCondition {
            if_match: Some(Some("e".into())),
            ..WriteCondition::default()
        };
        store
            .put_object("b", "k", &record(vec![]), &right)
            .expect("matching etag");
    }

    #[test]
    fn listing_groups_by_delimiter_and_resumes_after_prefixes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("meta.redb"), "owner").expect("open");
        store
            .create_bucket("b", BucketRecord::new("owner", 1))
            .expect("bucket");
        store
            .create_bucket("c", BucketRecord::new("owner", 1))
            .expect("bucket");
        for key in ["a/1", "a/2", "a/b/3", "b", "c/x", "d"] {
            store
                .put_object("b", key, &record(vec![]), &WriteCondition::default())
                .expect("put");
        }
        store
            .put_object("c", "a/9", &record(vec![]), &WriteCondition::default())
            .expect("put");
        let all = store.list("b", "", None, None, false, 100).expect("list");
        assert_eq!(keys(&all), ["a/1", "a/2", "a/b/3", "b", "c/x", "d"]);
        let grouped = store
            .list("b", "", Some("/"), None, false, 2)
            .expect("list");
        assert_eq!(keys(&grouped), ["a/*", "b"]);
        assert!(grouped.truncated);
        let rest = store
            .list("b", "", Some("/"), Some("b"), false, 2)
            .expect("list");
        assert_eq!(keys(&rest), ["c/*", "d"]);
        assert!(!rest.truncated);
        let after_prefix = store
            .list("b", "", Some("/"), Some("a/"), true, 10)
            .expect("list");
        assert_eq!(keys(&after_prefix), ["b", "c/*", "d"]);
        let inside = store
            .list("b", "a/", Some("/"), None, false, 10)
            .expect("list");
        assert_eq!(keys(&inside), ["a/1", "a/2", "a/b/*"]);
        let start_after = store
            .list("b", "a/", None, Some("a/1"), false, 10)
            .expect("list");
        assert_eq!(keys(&start_after), ["a/2", "a/b/3"]);
        // A start-after that only looks like a common prefix is a key position.
        let user_start = store
            .list("b", "", Some("/"), Some("a/"), false, 10)
            .expect("list");
        assert_eq!(keys(&user_start), ["a/*", "b", "c/*", "d"]);
    }

    #[test]
    fn a_store_of_format_1_gives_its_buckets_the_first_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.redb");
        {
            // A store as format 1 wrote it: a bucket with its creation time only, an object
            // without owner or ACL.
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("begin");
            txn.open_table(META)
                .expect("meta")
                .insert(kvstore::FORMAT_VERSION_KEY, 1)
                .expect("version");
            txn.open_table(BUCKETS)
                .expect("buckets")
                .insert("old", br#"{"created_ms":5}"#.as_slice())
                .expect("bucket");
            let object = br#"{"size_bytes":0,"etag":"e","last_modified_ms":6,"content_type":null,
                "headers":{},"metadata":{},"checksums":{},"part_sizes":[],"pieces":[]}"#;
            txn.open_table(OBJECTS)
                .expect("objects")
                .insert(("old", "k"), object.as_slice())
                .expect("object");
            txn.commit().expect("commit");
        }
        for _ in 0..2 {
            let store = Store::open(&path, "first").expect("opens, upgraded once");
            let bucket = store.bucket("old").expect("kept");
            assert_eq!((bucket.owner.as_str(), bucket.created_ms), ("first", 5));
            assert_eq!(bucket.acl(), Acl::private("first"));
            assert_eq!(
                store.cached_bucket("old").expect("cached").record.owner,
                "first"
            );
            let object = store.object("old", "k").expect("kept");
            assert_eq!(
                (object.owner, object.acl, object.etag),
                (None, None, "e".into())
            );
            let txn = store.db.begin_read().expect("read");
            let version = txn
                .open_table(META)
                .expect("meta")
                .get(kvstore::FORMAT_VERSION_KEY)
                .expect("read")
                .map(|value| value.value());
            assert_eq!(version, Some(FORMAT_VERSION));
        }
    }

    #[test]
    fn a_store_newer_than_this_gateway_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.redb");
        {
            let store = Store::open(&path, "owner").expect("open");
            let txn = store.db.begin_write().expect("begin");
            txn.open_table(META)
                .expect("meta")
                .insert(kvstore::FORMAT_VERSION_KEY, FORMAT_VERSION + 1)
                .expect("insert");
            txn.commit().expect("commit");
        }
        let error = Store::open(&path, "owner").err().expect("refused");
        assert!(
            matches!(&error, Error::Open { source } if matches!(**source, kvstore::Error::TooNew { .. })),
            "{error}"
        );
        assert!(error.to_string().contains("meta.redb"), "{error}");
    }
}
