//! A shard's segment index in redb: what is stored where, and where the write cursor stands.
//!
//! Tables:
//! - `segments`: `(tx_seq, segment)` → [`RecordEntry`] (versioned, fixed-size encoding).
//! - `extent_ends`: extent id → committed end offset, the highest end of a committed record.
//!   Restart takes the write cursor from the last extent's entry, so it never scans extents.
//! - `meta`: format version, the shard's id and the shard count it was created with, and
//!   running totals (segments, payload bytes).
//!
//! Every batch is one write transaction with `Durability::Immediate` (redb's default): it is
//! committed, and synced, before any answer of the batch leaves the shard.

use crate::DataPlaneError;
use crate::extent::Cursor;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use types::{FlowSegmentIndex, H256, SegmentIndex, TxSeq};

/// Version of the index's encoding; bump on any change to the tables or [`RecordEntry`].
pub(crate) const INDEX_FORMAT_VERSION: u64 = 1;
/// redb page cache per shard.
const INDEX_CACHE_BYTES: usize = 64 << 20;

const SEGMENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("segments");
const EXTENT_ENDS: TableDefinition<u64, u64> = TableDefinition::new("extent_ends");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_FORMAT: &str = "format_version";
const META_SHARD: &str = "shard";
const META_SHARDS: &str = "shards";
const META_SEGMENTS: &str = "segments";
const META_PAYLOAD_BYTES: &str = "payload_bytes";

/// Where one segment's bytes lie and how to check them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordEntry {
    pub(crate) extent: u64,
    pub(crate) offset: u64,
    pub(crate) length: u32,
    pub(crate) crc32c: u32,
    pub(crate) flow_segment: FlowSegmentIndex,
    pub(crate) segment_root: H256,
}

const ENTRY_VERSION: u8 = 1;
/// version ‖ extent ‖ offset ‖ length ‖ crc32c ‖ flow segment ‖ segment root, little-endian.
const ENTRY_BYTES: usize = 1 + 8 + 8 + 4 + 4 + 8 + 32;

impl RecordEntry {
    fn encode(&self) -> [u8; ENTRY_BYTES] {
        let mut out = [0u8; ENTRY_BYTES];
        out[0] = ENTRY_VERSION;
        out[1..9].copy_from_slice(&self.extent.to_le_bytes());
        out[9..17].copy_from_slice(&self.offset.to_le_bytes());
        out[17..21].copy_from_slice(&self.length.to_le_bytes());
        out[21..25].copy_from_slice(&self.crc32c.to_le_bytes());
        out[25..33].copy_from_slice(&self.flow_segment.0.to_le_bytes());
        out[33..65].copy_from_slice(&self.segment_root.0);
        out
    }

    fn decode(bytes: &[u8]) -> Result<RecordEntry, String> {
        if bytes.len() != ENTRY_BYTES || bytes[0] != ENTRY_VERSION {
            return Err(format!(
                "segment entry of {} bytes with version {:?}, expected {ENTRY_BYTES} bytes of version {ENTRY_VERSION}",
                bytes.len(),
                bytes.first()
            ));
        }
        let u64_at =
            |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("an 8-byte slice"));
        let u32_at =
            |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("a 4-byte slice"));
        Ok(RecordEntry {
            extent: u64_at(1),
            offset: u64_at(9),
            length: u32_at(17),
            crc32c: u32_at(21),
            flow_segment: FlowSegmentIndex(u64_at(25)),
            segment_root: H256(bytes[33..65].try_into().expect("a 32-byte slice")),
        })
    }
}

/// Key of a segment in the index.
pub(crate) type SegmentKey = (TxSeq, SegmentIndex);

fn raw_key(key: SegmentKey) -> (u64, u64) {
    (key.0.0, key.1.0)
}

/// What the index says about the shard at open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexTotals {
    pub(crate) segments: u64,
    pub(crate) payload_bytes: u64,
}

pub(crate) struct ShardIndex {
    db: Database,
    path: PathBuf,
}

impl ShardIndex {
    /// Opens (or creates) the index of shard `shard` of `shards`. An index created for another
    /// shard layout is refused: its segments would no longer be the ones routed here.
    pub(crate) fn open(
        path: &Path,
        shard: usize,
        shards: usize,
    ) -> Result<(ShardIndex, BTreeMap<u64, u64>, IndexTotals), DataPlaneError> {
        let db = Database::builder()
            .set_cache_size(INDEX_CACHE_BYTES)
            .create(path)
            .map_err(|error| index_error("open", path, error))?;
        let index = ShardIndex {
            db,
            path: path.to_path_buf(),
        };
        let (shard, shards) = (shard as u64, shards as u64);
        let txn = index
            .db
            .begin_write()
            .map_err(|error| index.error("begin", error))?;
        let (ends, totals) = {
            let mut meta = txn
                .open_table(META)
                .map_err(|error| index.error("open meta", error))?;
            let stored = |key: &str| -> Result<Option<u64>, DataPlaneError> {
                Ok(meta
                    .get(key)
                    .map_err(|error| index.error("read meta", error))?
                    .map(|v| v.value()))
            };
            match stored(META_FORMAT)? {
                None => {}
                Some(INDEX_FORMAT_VERSION) => {
                    let stored_shard = stored(META_SHARD)?.unwrap_or(u64::MAX);
                    let stored_shards = stored(META_SHARDS)?.unwrap_or(u64::MAX);
                    if (stored_shard, stored_shards) != (shard, shards) {
                        return Err(DataPlaneError::ShardLayout {
                            path: path.to_path_buf(),
                            stored_shard,
                            stored_shards,
                            shard,
                            shards,
                        });
                    }
                }
                Some(other) => {
                    return Err(DataPlaneError::IndexCorrupt {
                        path: path.to_path_buf(),
                        reason: format!(
                            "format version {other}, this build reads version {INDEX_FORMAT_VERSION}"
                        ),
                    });
                }
            }
            let totals = IndexTotals {
                segments: stored(META_SEGMENTS)?.unwrap_or(0),
                payload_bytes: stored(META_PAYLOAD_BYTES)?.unwrap_or(0),
            };
            for (key, value) in [
                (META_FORMAT, INDEX_FORMAT_VERSION),
                (META_SHARD, shard),
                (META_SHARDS, shards),
            ] {
                meta.insert(key, value)
                    .map_err(|error| index.error("write meta", error))?;
            }
            txn.open_table(SEGMENTS)
                .map_err(|error| index.error("open segments", error))?;
            let ends_table = txn
                .open_table(EXTENT_ENDS)
                .map_err(|error| index.error("open extent ends", error))?;
            let mut ends = BTreeMap::new();
            for item in ends_table
                .iter()
                .map_err(|error| index.error("read extent ends", error))?
            {
                let (extent, end) = item.map_err(|error| index.error("read extent ends", error))?;
                ends.insert(extent.value(), end.value());
            }
            (ends, totals)
        };
        txn.commit().map_err(|error| index.error("commit", error))?;
        Ok((index, ends, totals))
    }

    fn error(&self, operation: &'static str, error: impl Into<redb::Error>) -> DataPlaneError {
        index_error(operation, &self.path, error)
    }

    fn corrupt(&self, reason: String) -> DataPlaneError {
        DataPlaneError::IndexCorrupt {
            path: self.path.clone(),
            reason,
        }
    }

    /// Looks up many segments in one read transaction.
    pub(crate) fn lookup_many(
        &self,
        keys: &[SegmentKey],
    ) -> Result<Vec<Option<RecordEntry>>, DataPlaneError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self
            .db
            .begin_read()
            .map_err(|error| self.error("begin read", error))?;
        let table = txn
            .open_table(SEGMENTS)
            .map_err(|error| self.error("open segments", error))?;
        keys.iter()
            .map(|key| {
                let found = table
                    .get(raw_key(*key))
                    .map_err(|error| self.error("read segment", error))?;
                found
                    .map(|value| {
                        RecordEntry::decode(value.value()).map_err(|reason| self.corrupt(reason))
                    })
                    .transpose()
            })
            .collect()
    }

    /// Segments of `tx_seq` held here, in segment order.
    pub(crate) fn stored(
        &self,
        tx_seq: TxSeq,
    ) -> Result<Vec<(SegmentIndex, H256)>, DataPlaneError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|error| self.error("begin read", error))?;
        let table = txn
            .open_table(SEGMENTS)
            .map_err(|error| self.error("open segments", error))?;
        let range = table
            .range((tx_seq.0, 0)..=(tx_seq.0, u64::MAX))
            .map_err(|error| self.error("range segments", error))?;
        range
            .map(|item| {
                let (key, value) = item.map_err(|error| self.error("range segments", error))?;
                let entry =
                    RecordEntry::decode(value.value()).map_err(|reason| self.corrupt(reason))?;
                Ok((SegmentIndex(key.value().1), entry.segment_root))
            })
            .collect()
    }

    /// Commits the entries of one batch, the new committed ends of the extents they touched and
    /// the new totals, durably, in one transaction.
    pub(crate) fn commit(
        &self,
        entries: &[(SegmentKey, RecordEntry)],
        extent_ends: &BTreeMap<u64, u64>,
        totals: &IndexTotals,
    ) -> Result<(), DataPlaneError> {
        let txn = self
            .db
            .begin_write()
            .map_err(|error| self.error("begin write", error))?;
        {
            let mut segments = txn
                .open_table(SEGMENTS)
                .map_err(|error| self.error("open segments", error))?;
            for (key, entry) in entries {
                segments
                    .insert(raw_key(*key), entry.encode().as_slice())
                    .map_err(|error| self.error("insert segment", error))?;
            }
            let mut ends = txn
                .open_table(EXTENT_ENDS)
                .map_err(|error| self.error("open extent ends", error))?;
            for (extent, end) in extent_ends {
                ends.insert(*extent, *end)
                    .map_err(|error| self.error("write extent end", error))?;
            }
            let mut meta = txn
                .open_table(META)
                .map_err(|error| self.error("open meta", error))?;
            meta.insert(META_SEGMENTS, totals.segments)
                .map_err(|error| self.error("write meta", error))?;
            meta.insert(META_PAYLOAD_BYTES, totals.payload_bytes)
                .map_err(|error| self.error("write meta", error))?;
        }
        txn.commit().map_err(|error| self.error("commit", error))
    }
}

fn index_error(
    operation: &'static str,
    path: &Path,
    error: impl Into<redb::Error>,
) -> DataPlaneError {
    DataPlaneError::Index {
        operation,
        path: path.to_path_buf(),
        source: Box::new(error.into()),
    }
}

/// The write cursor implied by the committed ends: the end of the last extent's records.
pub(crate) fn cursor_from_ends(ends: &BTreeMap<u64, u64>) -> Cursor {
    ends.last_key_value().map_or(
        Cursor {
            extent: 0,
            offset: 0,
        },
        |(extent, end)| Cursor {
            extent: *extent,
            offset: *end,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(extent: u64, offset: u64) -> RecordEntry {
        RecordEntry {
            extent,
            offset,
            length: 1000,
            crc32c: 0xdead_beef,
            flow_segment: FlowSegmentIndex(42),
            segment_root: H256([7; 32]),
        }
    }

    #[test]
    fn entries_round_trip_and_reject_other_versions() {
        let original = entry(3, 8192);
        let bytes = original.encode();
        assert_eq!(RecordEntry::decode(&bytes), Ok(original));
        let mut other = bytes;
        other[0] = 2;
        assert!(RecordEntry::decode(&other).is_err());
        assert!(RecordEntry::decode(&bytes[..10]).is_err());
    }

    #[test]
    fn commits_survive_reopen_and_layout_is_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        {
            let (index, ends, totals) = ShardIndex::open(&path, 1, 2).expect("create");
            assert!(ends.is_empty());
            assert_eq!(totals, IndexTotals::default());
            let key = (TxSeq(5), SegmentIndex(0));
            let ends = BTreeMap::from([(0, 4096)]);
            let totals = IndexTotals {
                segments: 1,
                payload_bytes: 1000,
            };
            index
                .commit(&[(key, entry(0, 0))], &ends, &totals)
                .expect("commit");
            assert_eq!(
                index.lookup_many(&[key]).expect("lookup"),
                vec![Some(entry(0, 0))]
            );
            assert_eq!(
                index.stored(TxSeq(5)).expect("stored"),
                vec![(SegmentIndex(0), H256([7; 32]))]
            );
            assert!(index.stored(TxSeq(6)).expect("stored").is_empty());
        }
        let (_index, ends, totals) = ShardIndex::open(&path, 1, 2).expect("reopen");
        assert_eq!(
            cursor_from_ends(&ends),
            Cursor {
                extent: 0,
                offset: 4096
            }
        );
        assert_eq!(totals.segments, 1);
        drop(_index);
        assert!(matches!(
            ShardIndex::open(&path, 1, 4),
            Err(DataPlaneError::ShardLayout {
                stored_shards: 2,
                shards: 4,
                ..
            })
        ));
    }
}
