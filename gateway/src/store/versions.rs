//! Versioning. Objects are already immutable files on the log, so a version is metadata: the
//! current version of a key stays in `objects` (listings and reads of the current object are
//! unchanged), every other version and every delete marker of a versioned bucket lies in
//! `versions`, keyed `(bucket, key, !seq)` so that a key's versions come newest first. `seq`
//! is a store-wide counter (`meta.version_seq`) taken by each versioned write; a non-null
//! version id is its 16 hex digits. Each record holds the references of its pieces, wherever it
//! lies, so a noncurrent version keeps its bytes live and a version deleted for good makes
//! them dead, as an overwritten object does in an unversioned bucket.
//!
//! The rule every write keeps: the newest version of a key is in `objects` if it is an object,
//! and `objects` has nothing for the key if it is a delete marker (or there is no version).

use super::{
    BUCKETS, BucketRecord, OBJECTS, ObjectRecord, Store, adjust_refs, decode, encode, no_bucket,
};
use crate::error::{Error, Result};
use kvstore::META;
use kvstore::redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

pub(super) const VERSIONS: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("versions");
/// The counter of versioned writes in `meta`.
const VERSION_SEQ: &str = "version_seq";
/// The version id of an object written while versioning was not enabled.
pub const NULL_VERSION: &str = "null";

/// A bucket's versioning state (S3's: never enabled, enabled, suspended).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

/// A delete marker: the newest version of a deleted key of a versioned bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteMarker {
    /// `None`: the null version (written while versioning was suspended).
    pub version_id: Option<String>,
    pub seq: u64,
    pub last_modified_ms: u64,
    /// The user that deleted the key; `None`: the bucket's owner.
    pub owner: Option<String>,
}

/// A version that is not the current object: an older object or a delete marker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Version {
    Object(Box<ObjectRecord>),
    DeleteMarker(DeleteMarker),
}

impl Version {
    fn version_id(&self) -> Option<&str> {
        match self {
            Version::Object(record) => record.version_id.as_deref(),
            Version::DeleteMarker(marker) => marker.version_id.as_deref(),
        }
    }

    fn seq(&self) -> u64 {
        match self {
            Version::Object(record) => record.seq,
            Version::DeleteMarker(marker) => marker.seq,
        }
    }
}

/// The id of the version written with `seq`.
pub fn version_id(seq: u64) -> String {
    format!("{seq:016x}")
}

/// A version id as a request names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionRef {
    Null,
    Seq(u64),
}

impl VersionRef {
    pub fn parse(id: &str) -> Result<VersionRef> {
        if id == NULL_VERSION {
            return Ok(VersionRef::Null);
        }
        match u64::from_str_radix(id, 16) {
            Ok(seq) if id.len() == 16 => Ok(VersionRef::Seq(seq)),
            _ => Err(Error::InvalidArgument {
                detail: "Invalid version id specified".into(),
            }),
        }
    }

    fn names(self, version_id: Option<&str>) -> bool {
        match (self, version_id) {
            (VersionRef::Null, None) => true,
            (VersionRef::Seq(seq), Some(id)) => version_id_matches(id, seq),
            _ => false,
        }
    }
}

fn version_id_matches(id: &str, seq: u64) -> bool {
    id == version_id(seq)
}

/// What a DELETE did: the version it made (a delete marker) or removed, and whether that is a
/// delete marker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

fn next_seq(txn: &WriteTransaction) -> Result<u64> {
    let mut meta = txn.open_table(META)?;
    let seq = meta.get(VERSION_SEQ)?.map_or(0, |value| value.value()) + 1;
    meta.insert(VERSION_SEQ, seq)?;
    Ok(seq)
}

pub(super) fn versioning_of(txn: &WriteTransaction, bucket: &str) -> Result<Versioning> {
    let record: BucketRecord = match txn.open_table(BUCKETS)?.get(bucket)? {
        Some(value) => decode(value.value(), "bucket")?,
        None => return Err(no_bucket(bucket)),
    };
    Ok(record.versioning)
}

/// The versions of `key`, newest first, with their table keys.
fn versions_of(txn: &WriteTransaction, bucket: &str, key: &str) -> Result<Vec<(u64, Version)>> {
    let table = txn.open_table(VERSIONS)?;
    let mut out = Vec::new();
    for entry in table.range((bucket, key, 0)..=(bucket, key, u64::MAX))? {
        let (name, value) = entry?;
        out.push((name.value().2, decode(value.value(), "version")?));
    }
    Ok(out)
}

fn insert_version(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    version: &Version,
) -> Result<()> {
    txn.open_table(VERSIONS)?
        .insert((bucket, key, !version.seq()), encode(version).as_slice())?;
    Ok(())
}

/// Takes the current object of `key` out of `objects`: kept as a version when the bucket keeps
/// versions (enabled; suspended for a non-null one), its references dropped otherwise.
fn retire_current(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    versioning: Versioning,
) -> Result<()> {
    let old: Option<ObjectRecord> = match txn.open_table(OBJECTS)?.remove((bucket, key))? {
        Some(value) => Some(decode(value.value(), "object")?),
        None => None,
    };
    let Some(mut old) = old else { return Ok(()) };
    let keep = match versioning {
        Versioning::Unversioned => false,
        Versioning::Enabled => true,
        Versioning::Suspended => old.version_id.is_some(),
    };
    if keep {
        if old.seq == 0 {
            // Written before versioning: it comes before every version that follows.
            old.seq = next_seq(txn)?;
        }
        insert_version(txn, bucket, key, &Version::Object(Box::new(old)))
    } else {
        adjust_refs(txn, &old.pieces, -1)
    }
}

/// Drops the null version of `key` from `versions`, if it is there (a suspended bucket
/// replaces it).
fn drop_null_version(txn: &WriteTransaction, bucket: &str, key: &str) -> Result<()> {
    for (table_seq, version) in versions_of(txn, bucket, key)? {
        if version.version_id().is_none() {
            txn.open_table(VERSIONS)?.remove((bucket, key, table_seq))?;
            if let Version::Object(record) = version {
                adjust_refs(txn, &record.pieces, -1)?;
            }
        }
    }
    Ok(())
}

/// After a version was deleted for good: when `key` has no current object, the newest version,
/// if it is an object, becomes current.
fn promote(txn: &WriteTransaction, bucket: &str, key: &str) -> Result<()> {
    if txn.open_table(OBJECTS)?.get((bucket, key))?.is_some() {
        return Ok(());
    }
    if let Some((table_seq, Version::Object(record))) =
        versions_of(txn, bucket, key)?.into_iter().next()
    {
        txn.open_table(VERSIONS)?.remove((bucket, key, table_seq))?;
        txn.open_table(OBJECTS)?
            .insert((bucket, key), encode(&*record).as_slice())?;
    }
    Ok(())
}

/// Makes `record` the current object of `key` in a bucket of `versioning`, the old current one
/// becoming a version or going; returns the new object's version id. The record's references
/// are added here.
pub(super) fn install(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
    versioning: Versioning,
) -> Result<Option<String>> {
    let mut record = record.clone();
    retire_current(txn, bucket, key, versioning)?;
    match versioning {
        Versioning::Unversioned => {
            record.version_id = None;
            record.seq = 0;
        }
        Versioning::Enabled => {
            record.seq = next_seq(txn)?;
            record.version_id = Some(version_id(record.seq));
        }
        Versioning::Suspended => {
            drop_null_version(txn, bucket, key)?;
            record.seq = next_seq(txn)?;
            record.version_id = None;
        }
    }
    txn.open_table(OBJECTS)?
        .insert((bucket, key), encode(&record).as_slice())?;
    adjust_refs(txn, &record.pieces, 1)?;
    Ok(record.version_id)
}

/// DeleteObject: without a version, the current object goes (unversioned) or a delete marker
/// becomes the newest version; with one, that version is deleted for good (a missing one is
/// no error, as in S3).
pub(super) fn delete(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    version: Option<VersionRef>,
    owner: Option<&str>,
    now_ms: u64,
) -> Result<Deleted> {
    let versioning = versioning_of(txn, bucket)?;
    let Some(version) = version else {
        retire_current(txn, bucket, key, versioning)?;
        if versioning == Versioning::Unversioned {
            return Ok(Deleted::default());
        }
        if versioning == Versioning::Suspended {
            drop_null_version(txn, bucket, key)?;
        }
        let seq = next_seq(txn)?;
        let marker = DeleteMarker {
            version_id: (versioning == Versioning::Enabled).then(|| version_id(seq)),
            seq,
            last_modified_ms: now_ms,
            owner: owner.map(str::to_string),
        };
        insert_version(txn, bucket, key, &Version::DeleteMarker(marker.clone()))?;
        return Ok(Deleted {
            version_id: Some(
                marker
                    .version_id
                    .unwrap_or_else(|| NULL_VERSION.to_string()),
            ),
            delete_marker: true,
        });
    };
    let shown = |id: Option<&str>| Some(id.unwrap_or(NULL_VERSION).to_string());
    let current: Option<ObjectRecord> = match txn.open_table(OBJECTS)?.get((bucket, key))? {
        Some(value) => Some(decode(value.value(), "object")?),
        None => None,
    };
    if let Some(current) = current
        && version.names(current.version_id.as_deref())
    {
        txn.open_table(OBJECTS)?.remove((bucket, key))?;
        adjust_refs(txn, &current.pieces, -1)?;
        promote(txn, bucket, key)?;
        return Ok(Deleted {
            version_id: shown(current.version_id.as_deref()),
            delete_marker: false,
        });
    }
    for (table_seq, found) in versions_of(txn, bucket, key)? {
        if version.names(found.version_id()) {
            txn.open_table(VERSIONS)?.remove((bucket, key, table_seq))?;
            let delete_marker = match &found {
                Version::Object(record) => {
                    adjust_refs(txn, &record.pieces, -1)?;
                    false
                }
                Version::DeleteMarker(_) => true,
            };
            promote(txn, bucket, key)?;
            return Ok(Deleted {
                version_id: shown(found.version_id()),
                delete_marker,
            });
        }
    }
    Ok(Deleted {
        version_id: Some(match version {
            VersionRef::Null => NULL_VERSION.to_string(),
            VersionRef::Seq(seq) => version_id(seq),
        }),
        delete_marker: false,
    })
}

/// Where a version of a key lies.
pub(super) enum Located {
    Current(Box<ObjectRecord>),
    Older { table_seq: u64, version: Version },
}

/// Finds version `version` of `key` (`None`: the current object).
pub(super) fn locate(
    current: Option<ObjectRecord>,
    versions: impl IntoIterator<Item = (u64, Version)>,
    version: VersionRef,
) -> Option<Located> {
    if let Some(current) = current
        && version.names(current.version_id.as_deref())
    {
        return Some(Located::Current(Box::new(current)));
    }
    versions
        .into_iter()
        .find(|(_, found)| version.names(found.version_id()))
        .map(|(table_seq, version)| Located::Older { table_seq, version })
}

/// Makes a failed read at the head of `entries` an error now, so that what follows peeks only
/// at entries that were read.
fn surface_error<T, E>(
    entries: &mut std::iter::Peekable<impl Iterator<Item = std::result::Result<T, E>>>,
) -> std::result::Result<(), E> {
    if matches!(entries.peek(), Some(Err(_)))
        && let Some(Err(error)) = entries.next()
    {
        return Err(error);
    }
    Ok(())
}

/// One entry of a ListObjectVersions page.
pub enum VersionListed {
    Version {
        key: String,
        version: Version,
        is_latest: bool,
    },
    Prefix(String),
}

pub struct VersionListing {
    pub entries: Vec<VersionListed>,
    pub truncated: bool,
}

impl Store {
    /// An object of `key` for a read: the current one (a key whose newest version is a delete
    /// marker is NoSuchKey with that marker), or version `version` (a delete marker is
    /// MethodNotAllowed, an unknown one NoSuchVersion).
    pub fn object_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<ObjectRecord> {
        let version = version.map(VersionRef::parse).transpose()?;
        let txn = self.db.begin_read()?;
        if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
            return Err(no_bucket(bucket));
        }
        let current: Option<ObjectRecord> = match txn.open_table(OBJECTS)?.get((bucket, key))? {
            Some(value) => Some(decode(value.value(), "object")?),
            None => None,
        };
        let versions = || -> Result<Vec<(u64, Version)>> {
            let table = txn.open_table(VERSIONS)?;
            let mut out = Vec::new();
            for entry in table.range((bucket, key, 0)..=(bucket, key, u64::MAX))? {
                let (name, value) = entry?;
                out.push((name.value().2, decode(value.value(), "version")?));
            }
            Ok(out)
        };
        let Some(version) = version else {
            if let Some(current) = current {
                return Ok(current);
            }
            // The newest version of a deleted key is a delete marker.
            let marker = match versions()?.into_iter().next() {
                Some((_, Version::DeleteMarker(marker))) => Some(
                    marker
                        .version_id
                        .unwrap_or_else(|| NULL_VERSION.to_string()),
                ),
                _ => None,
            };
            return Err(match marker {
                Some(marker_version_id) => Error::KeyDeleted {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    marker_version_id,
                },
                None => Error::NoSuchKey {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                },
            });
        };
        match locate(current, versions()?, version) {
            Some(Located::Current(record)) => Ok(*record),
            Some(Located::Older {
                version: Version::Object(record),
                ..
            }) => Ok(*record),
            Some(Located::Older {
                version: Version::DeleteMarker(marker),
                ..
            }) => Err(Error::DeleteMarkerVersion {
                version_id: marker
                    .version_id
                    .unwrap_or_else(|| NULL_VERSION.to_string()),
                last_modified_ms: marker.last_modified_ms,
            }),
            None => Err(Error::NoSuchVersion {
                key: key.to_string(),
            }),
        }
    }

    /// ListObjectVersions: the versions and delete markers of `bucket`'s keys starting with
    /// `prefix`, keys in order and each key's versions newest first, after (`key_marker`,
    /// `version_marker`), grouped by `delimiter`, at most `max` entries (a common prefix counts
    /// as one).
    pub fn versions(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        version_marker: Option<&str>,
        max: usize,
    ) -> Result<VersionListing> {
        let version_marker = version_marker.map(VersionRef::parse).transpose()?;
        let txn = self.db.begin_read()?;
        if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
            return Err(no_bucket(bucket));
        }
        let mut listing = VersionListing {
            entries: Vec::new(),
            truncated: false,
        };
        if max == 0 {
            return Ok(listing);
        }
        let delimiter = delimiter.filter(|d| !d.is_empty());
        // A key marker that is a common prefix of the last page: its keys were listed.
        let marker_prefix = key_marker.filter(|marker| {
            version_marker.is_none()
                && delimiter.is_some_and(|d| {
                    marker.len() > prefix.len() && marker.starts_with(prefix) && marker.ends_with(d)
                })
        });
        let start = match key_marker {
            Some(marker) if marker > prefix => marker,
            _ => prefix,
        };
        let objects = txn.open_table(OBJECTS)?;
        let versions = txn.open_table(VERSIONS)?;
        let mut current = objects.range((bucket, start)..)?.peekable();
        let mut older = versions.range((bucket, start, 0)..)?.peekable();
        let mut last_prefix: Option<String> = None;
        loop {
            // The next key of either table, within the bucket and the prefix.
            surface_error(&mut current)?;
            surface_error(&mut older)?;
            let next_current = match current.peek() {
                Some(Ok((name, _))) if name.value().0 == bucket => Some(name.value().1.to_string()),
                _ => None,
            };
            let next_older = match older.peek() {
                Some(Ok((name, _))) if name.value().0 == bucket => Some(name.value().1.to_string()),
                _ => None,
            };
            let key = match (next_current, next_older) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if !key.starts_with(prefix) {
                break;
            }
            // This key's entries, newest first: its current object, then its versions.
            let mut all: Vec<Version> = Vec::new();
            if matches!(current.peek(), Some(Ok((name, _))) if name.value().1 == key)
                && let Some(entry) = current.next()
            {
                let (_, value) = entry?;
                all.push(Version::Object(Box::new(decode(value.value(), "object")?)));
            }
            loop {
                surface_error(&mut older)?;
                let same = matches!(
                    older.peek(),
                    Some(Ok((name, _))) if name.value().0 == bucket && name.value().1 == key
                );
                if !same {
                    break;
                }
                let Some(entry) = older.next() else {
                    break;
                };
                let (_, value) = entry?;
                all.push(decode(value.value(), "version")?);
            }
            let skip_key = key_marker.is_some_and(|marker| {
                key.as_str() < marker || (key.as_str() == marker && version_marker.is_none())
            }) || marker_prefix.is_some_and(|marker| key.starts_with(marker));
            if skip_key {
                continue;
            }
            if let Some(skip) = &last_prefix
                && key.starts_with(skip.as_str())
            {
                continue;
            }
            let common = delimiter.and_then(|delimiter| {
                key[prefix.len()..]
                    .find(delimiter)
                    .map(|at| key[..prefix.len() + at + delimiter.len()].to_string())
            });
            if let Some(common) = common {
                if listing.entries.len() == max {
                    listing.truncated = true;
                    break;
                }
                last_prefix = Some(common.clone());
                listing.entries.push(VersionListed::Prefix(common));
                continue;
            }
            // Resuming inside the marker's key: only the versions after the marker.
            let mut first = 0;
            if key_marker == Some(key.as_str())
                && let Some(marker) = version_marker
            {
                first = match marker {
                    VersionRef::Seq(seq) => all
                        .iter()
                        .position(|version| version.seq() < seq)
                        .unwrap_or(all.len()),
                    VersionRef::Null => all
                        .iter()
                        .position(|version| version.version_id().is_none())
                        .map_or(all.len(), |at| at + 1),
                };
            }
            for (index, version) in all.drain(..).enumerate().skip(first) {
                if listing.entries.len() == max {
                    listing.truncated = true;
                    return Ok(listing);
                }
                listing.entries.push(VersionListed::Version {
                    key: key.clone(),
                    version,
                    is_latest: index == 0,
                });
            }
        }
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{piece, record};
    use crate::store::{BucketRecord, WriteCondition};

    fn versioned_store(dir: &std::path::Path) -> Store {
        let store = Store::open(&dir.join("meta.redb"), "owner").expect("open");
        store
            .create_bucket("b", BucketRecord::new("owner", 1))
            .expect("bucket");
        store
    }

    fn set(store: &Store, versioning: Versioning) {
        store
            .update_bucket("b", |record| {
                record.versioning = versioning;
                Ok(())
            })
            .expect("versioning");
    }

    fn put(store: &Store, key: &str, byte: u8) -> Option<String> {
        store
            .put_object(
                "b",
                key,
                &record(vec![piece(byte, 10)]),
                &WriteCondition::default(),
            )
            .expect("put")
    }

    /// `key:version:latest` for each entry of a listing (`*` for a delete marker's version).
    fn listed(listing: &VersionListing) -> Vec<String> {
        listing
            .entries
            .iter()
            .map(|entry| match entry {
                VersionListed::Prefix(prefix) => format!("{prefix}/"),
                VersionListed::Version {
                    key,
                    version,
                    is_latest,
                } => {
                    let (id, kind) = match version {
                        Version::Object(record) => (record.version_id.clone(), ""),
                        Version::DeleteMarker(marker) => (marker.version_id.clone(), "*"),
                    };
                    format!(
                        "{key}:{}{kind}:{}",
                        id.unwrap_or_else(|| NULL_VERSION.into()),
                        if *is_latest { "latest" } else { "old" }
                    )
                }
            })
            .collect()
    }

    #[test]
    fn versions_accumulate_and_deletes_make_markers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = versioned_store(dir.path());
        assert_eq!(put(&store, "k", 1), None, "unversioned: a null version");
        set(&store, Versioning::Enabled);
        let v2 = put(&store, "k", 2).expect("a version id");
        let v3 = put(&store, "k", 3).expect("a version id");
        assert_eq!(
            store.object("b", "k").expect("current").version_id,
            Some(v3.clone())
        );
        let old = store
            .object_version("b", "k", Some(NULL_VERSION))
            .expect("null");
        assert_eq!(old.pieces, vec![piece(1, 10)]);
        assert_eq!(
            store.space().expect("space").dead_files,
            0,
            "old versions are live"
        );
        let deleted = store
            .delete_object("b", "k", None, None, 5)
            .expect("delete");
        assert!(deleted.delete_marker);
        let marker = deleted.version_id.expect("the marker's id");
        assert!(matches!(
            store.object("b", "k"),
            Err(Error::KeyDeleted { marker_version_id, .. }) if marker_version_id == marker
        ));
        assert!(matches!(
            store.object_version("b", "k", Some(&marker)),
            Err(Error::DeleteMarkerVersion { .. })
        ));
        assert!(
            store
                .list("b", "", None, None, false, 10)
                .expect("list")
                .entries
                .is_empty()
        );
        let all = store
            .versions("b", "", None, None, None, 10)
            .expect("versions");
        assert_eq!(
            listed(&all),
            [
                format!("k:{marker}*:latest"),
                format!("k:{v3}:old"),
                format!("k:{v2}:old"),
                "k:null:old".to_string()
            ]
        );
        // Removing the marker brings the newest object back; removing that, the next.
        store
            .delete_object("b", "k", Some(&marker), None, 6)
            .expect("unmark");
        assert_eq!(
            store.object("b", "k").expect("back").version_id,
            Some(v3.clone())
        );
        let gone = store
            .delete_object("b", "k", Some(&v3), None, 7)
            .expect("delete v3");
        assert_eq!(
            (gone.version_id, gone.delete_marker),
            (Some(v3.clone()), false)
        );
        assert_eq!(
            store.object("b", "k").expect("promoted").version_id,
            Some(v2.clone())
        );
        let space = store.space().expect("space");
        assert_eq!(
            (space.dead_files, space.dead_bytes, space.versions),
            (1, 10, 1)
        );
        assert!(matches!(
            store.object_version("b", "k", Some(&v3)),
            Err(Error::NoSuchVersion { .. })
        ));
        assert!(matches!(
            store.object_version("b", "k", Some("not-a-version")),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            store.delete_bucket("b"),
            Err(Error::BucketNotEmpty { .. })
        ));
        for id in [v2.as_str(), NULL_VERSION] {
            store
                .delete_object("b", "k", Some(id), None, 8)
                .expect("delete");
        }
        assert_eq!(store.space().expect("space").dead_files, 3);
        store.delete_bucket("b").expect("empty at last");
    }

    #[test]
    fn a_suspended_bucket_keeps_one_null_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = versioned_store(dir.path());
        set(&store, Versioning::Suspended);
        assert_eq!(put(&store, "k", 1), None);
        set(&store, Versioning::Enabled);
        let v2 = put(&store, "k", 2).expect("a version");
        set(&store, Versioning::Suspended);
        assert_eq!(put(&store, "k", 3), None);
        // The first null version was replaced; v2 stays.
        let all = store
            .versions("b", "", None, None, None, 10)
            .expect("versions");
        assert_eq!(
            listed(&all),
            ["k:null:latest".to_string(), format!("k:{v2}:old")]
        );
        assert_eq!(store.space().expect("space").dead_files, 1);
        let deleted = store
            .delete_object("b", "k", None, None, 9)
            .expect("delete");
        assert_eq!(
            (deleted.version_id.as_deref(), deleted.delete_marker),
            (Some(NULL_VERSION), true)
        );
        assert_eq!(
            store.space().expect("space").dead_files,
            2,
            "the null object is gone"
        );
    }

    #[test]
    fn version_listings_page_by_key_and_version_markers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = versioned_store(dir.path());
        set(&store, Versioning::Enabled);
        let a1 = put(&store, "a", 1).expect("version");
        let a2 = put(&store, "a", 2).expect("version");
        put(&store, "d/x", 3);
        put(&store, "d/y", 4);
        let c1 = put(&store, "c", 5).expect("version");
        let mut pages = Vec::new();
        let (mut key, mut version) = (None::<String>, None::<String>);
        loop {
            let page = store
                .versions("b", "", Some("/"), key.as_deref(), version.as_deref(), 2)
                .expect("page");
            pages.push(listed(&page));
            if !page.truncated {
                break;
            }
            match page.entries.last() {
                Some(VersionListed::Version {
                    key: k, version: v, ..
                }) => {
                    key = Some(k.clone());
                    version = match v {
                        Version::Object(record) => record.version_id.clone(),
                        Version::DeleteMarker(marker) => marker.version_id.clone(),
                    };
                }
                Some(VersionListed::Prefix(prefix)) => {
                    key = Some(prefix.clone());
                    version = None;
                }
                None => break,
            }
        }
        assert_eq!(
            pages,
            [
                vec![format!("a:{a2}:latest"), format!("a:{a1}:old")],
                vec![format!("c:{c1}:latest"), "d//".to_string()],
            ]
        );
        let inside = store
            .versions("b", "d/", None, None, None, 10)
            .expect("prefix");
        assert_eq!(inside.entries.len(), 2);
        let after_first = store
            .versions("b", "", None, Some("a"), Some(&a2), 10)
            .expect("resume");
        assert_eq!(listed(&after_first)[0], format!("a:{a1}:old"));
    }
}
