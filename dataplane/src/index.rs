//! A shard's segment index in redb: what is stored where, and where the write cursor stands.
//!
//! Tables:
//! - `segments`: `(tx_seq, segment)` → [`RecordEntry`] (versioned, fixed-size encoding).
//! - `da_shards`: `(blob id, shard index)` → [`DaEntry`] (versioned, fixed-size encoding): a
//!   stored DA shard's record and its expiry.
//! - `da_expiry`: `(expires_at_unix_s, blob id, shard index)` → `()`, the same entries in
//!   expiry order, so pruning reads only what it removes.
//! - `extent_ends`: extent id → committed end offset, the highest end of a committed record
//!   (segment or DA). Restart takes the write cursor from the last extent's entry, so it never
//!   scans extents.
//! - `meta`: format version, the shard's id and the shard count it was created with, and
//!   running totals (segments, payload bytes; DA shards, their shard and record bytes, and the
//!   record bytes and count of pruned DA shards).
//!
//! Every batch is one write transaction with `Durability::Immediate` (redb's default): it is
//! committed, and synced, before any answer of the batch leaves the shard. A prune is one
//! transaction too. Version 1 indexes (before DA) open as version 2 with empty DA tables.
//!
//! The database runs on the redb backend the shard's storage gives it (`storage.rs`): the
//! index file through redb's own file backend in production, the simulated disk in tests.

use crate::extent::Cursor;
use crate::{DaPruned, DataPlaneError, RECORD_ALIGNMENT};
use da::commit::{BlobId, ShardIndex as DaShardIndex};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use types::{FlowSegmentIndex, H256, SegmentIndex, TxSeq};

/// Version of the index's encoding; bump on any change to the tables or [`RecordEntry`].
pub(crate) const INDEX_FORMAT_VERSION: u64 = 3;
/// The format before segment proofs; it is read as version 3 with no proofs kept.
const INDEX_FORMAT_VERSION_BEFORE_PROOFS: u64 = 2;
/// The format before the DA tables; it is read as version 3 with no DA shards.
const INDEX_FORMAT_VERSION_BEFORE_DA: u64 = 1;
/// redb page cache per shard.
const INDEX_CACHE_BYTES: usize = 64 << 20;

const SEGMENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("segments");
/// A segment's proof against its file root (`merkle::file::Proof::to_bytes`), kept by a node
/// that holds only a shard of the flow: it cannot rebuild proofs from the other segments.
const SEGMENT_PROOFS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("segment_proofs");
const EXTENT_ENDS: TableDefinition<u64, u64> = TableDefinition::new("extent_ends");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const DA_SHARDS: TableDefinition<([u8; 32], u32), &[u8]> = TableDefinition::new("da_shards");
const DA_EXPIRY: TableDefinition<(u64, [u8; 32], u32), ()> = TableDefinition::new("da_expiry");

const META_FORMAT: &str = "format_version";
const META_SHARD: &str = "shard";
const META_SHARDS: &str = "shards";
const META_SEGMENTS: &str = "segments";
const META_PAYLOAD_BYTES: &str = "payload_bytes";
const META_DA_SHARDS: &str = "da_shards";
const META_DA_PAYLOAD_BYTES: &str = "da_payload_bytes";
const META_DA_RECORD_BYTES: &str = "da_record_bytes";
const META_DA_DEAD_RECORD_BYTES: &str = "da_dead_record_bytes";
const META_DA_SHARDS_PRUNED: &str = "da_shards_pruned";
const META_SEGMENTS_DROPPED: &str = "segments_dropped";
const META_SEGMENT_DEAD_RECORD_BYTES: &str = "segment_dead_record_bytes";

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

/// Where one DA shard's record lies, how to check it, and until when it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DaEntry {
    pub(crate) extent: u64,
    pub(crate) offset: u64,
    /// Bytes of the shard; the record is these and `proof_siblings` hashes of 32 bytes.
    pub(crate) data_length: u32,
    pub(crate) proof_siblings: u8,
    /// Over the whole record (shard bytes, then siblings).
    pub(crate) crc32c: u32,
    pub(crate) expires_at_unix_s: u64,
}

const DA_ENTRY_VERSION: u8 = 1;
/// version ‖ extent ‖ offset ‖ data length ‖ proof siblings ‖ crc32c ‖ expiry, little-endian.
const DA_ENTRY_BYTES: usize = 1 + 8 + 8 + 4 + 1 + 4 + 8;

impl DaEntry {
    /// Bytes of the record: the shard and its proof's siblings.
    pub(crate) fn length(&self) -> u64 {
        crate::da_store::record_length(self.data_length as usize, self.proof_siblings as usize)
            as u64
    }

    /// Extent bytes the record takes (4 KiB-aligned).
    pub(crate) fn record_bytes(&self) -> u64 {
        self.length().div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT
    }

    fn encode(&self) -> [u8; DA_ENTRY_BYTES] {
        let mut out = [0u8; DA_ENTRY_BYTES];
        out[0] = DA_ENTRY_VERSION;
        out[1..9].copy_from_slice(&self.extent.to_le_bytes());
        out[9..17].copy_from_slice(&self.offset.to_le_bytes());
        out[17..21].copy_from_slice(&self.data_length.to_le_bytes());
        out[21] = self.proof_siblings;
        out[22..26].copy_from_slice(&self.crc32c.to_le_bytes());
        out[26..34].copy_from_slice(&self.expires_at_unix_s.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<DaEntry, String> {
        if bytes.len() != DA_ENTRY_BYTES || bytes[0] != DA_ENTRY_VERSION {
            return Err(format!(
                "DA entry of {} bytes with version {:?}, expected {DA_ENTRY_BYTES} bytes of version {DA_ENTRY_VERSION}",
                bytes.len(),
                bytes.first()
            ));
        }
        let u64_at =
            |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("an 8-byte slice"));
        let u32_at =
            |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("a 4-byte slice"));
        Ok(DaEntry {
            extent: u64_at(1),
            offset: u64_at(9),
            data_length: u32_at(17),
            proof_siblings: bytes[21],
            crc32c: u32_at(22),
            expires_at_unix_s: u64_at(26),
        })
    }
}

/// Key of a DA shard in the index.
pub(crate) type DaKey = (BlobId, DaShardIndex);

fn raw_da_key(key: DaKey) -> ([u8; 32], u32) {
    (key.0.0, key.1.0)
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
    /// DA shards in the index, their shard bytes and their extent bytes.
    pub(crate) da_shards: u64,
    pub(crate) da_payload_bytes: u64,
    pub(crate) da_record_bytes: u64,
    /// Extent bytes of pruned DA records (dead space) and how many were pruned, ever.
    pub(crate) da_dead_record_bytes: u64,
    pub(crate) da_shards_pruned: u64,
    /// Damaged segments dropped from the index, ever, and the extent bytes they leave dead.
    pub(crate) segments_dropped: u64,
    pub(crate) segment_dead_record_bytes: u64,
}

impl IndexTotals {
    fn write(&self, meta: &mut redb::Table<&str, u64>) -> Result<(), redb::StorageError> {
        for (key, value) in [
            (META_SEGMENTS, self.segments),
            (META_PAYLOAD_BYTES, self.payload_bytes),
            (META_DA_SHARDS, self.da_shards),
            (META_DA_PAYLOAD_BYTES, self.da_payload_bytes),
            (META_DA_RECORD_BYTES, self.da_record_bytes),
            (META_DA_DEAD_RECORD_BYTES, self.da_dead_record_bytes),
            (META_DA_SHARDS_PRUNED, self.da_shards_pruned),
            (META_SEGMENTS_DROPPED, self.segments_dropped),
            (
                META_SEGMENT_DEAD_RECORD_BYTES,
                self.segment_dead_record_bytes,
            ),
        ] {
            meta.insert(key, value)?;
        }
        Ok(())
    }
}

pub(crate) struct ShardIndex {
    db: Database,
    path: PathBuf,
}

impl ShardIndex {
    /// Opens (or creates) the index of shard `shard` of `shards` on `backend` (the shard's
    /// storage provides it; `path` names it in messages). An index created for another shard
    /// layout is refused: its segments would no longer be the ones routed here.
    pub(crate) fn open(
        backend: impl redb::StorageBackend,
        path: &Path,
        shard: usize,
        shards: usize,
    ) -> Result<(ShardIndex, BTreeMap<u64, u64>, IndexTotals), DataPlaneError> {
        let db = Database::builder()
            .set_cache_size(INDEX_CACHE_BYTES)
            .create_with_backend(backend)
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
                Some(
                    INDEX_FORMAT_VERSION
                    | INDEX_FORMAT_VERSION_BEFORE_PROOFS
                    | INDEX_FORMAT_VERSION_BEFORE_DA,
                ) => {
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
                da_shards: stored(META_DA_SHARDS)?.unwrap_or(0),
                da_payload_bytes: stored(META_DA_PAYLOAD_BYTES)?.unwrap_or(0),
                da_record_bytes: stored(META_DA_RECORD_BYTES)?.unwrap_or(0),
                da_dead_record_bytes: stored(META_DA_DEAD_RECORD_BYTES)?.unwrap_or(0),
                da_shards_pruned: stored(META_DA_SHARDS_PRUNED)?.unwrap_or(0),
                segments_dropped: stored(META_SEGMENTS_DROPPED)?.unwrap_or(0),
                segment_dead_record_bytes: stored(META_SEGMENT_DEAD_RECORD_BYTES)?.unwrap_or(0),
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
            txn.open_table(SEGMENT_PROOFS)
                .map_err(|error| index.error("open segment proofs", error))?;
            txn.open_table(DA_SHARDS)
                .map_err(|error| index.error("open DA shards", error))?;
            txn.open_table(DA_EXPIRY)
                .map_err(|error| index.error("open DA expiry", error))?;
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

    /// The proof kept for a segment, if this shard keeps proofs and holds the segment.
    pub(crate) fn proof(&self, key: SegmentKey) -> Result<Option<Vec<u8>>, DataPlaneError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|error| self.error("begin read", error))?;
        let table = txn
            .open_table(SEGMENT_PROOFS)
            .map_err(|error| self.error("open segment proofs", error))?;
        Ok(table
            .get(raw_key(key))
            .map_err(|error| self.error("read segment proof", error))?
            .map(|value| value.value().to_vec()))
    }

    /// Commits the entries of one batch (segments and DA shards), the new committed ends of the
    /// extents they touched and the new totals, durably, in one transaction.
    pub(crate) fn commit(
        &self,
        entries: &[(SegmentKey, RecordEntry)],
        proofs: &[(SegmentKey, Box<[u8]>)],
        da_entries: &[(DaKey, DaEntry)],
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
            if !proofs.is_empty() {
                let mut table = txn
                    .open_table(SEGMENT_PROOFS)
                    .map_err(|error| self.error("open segment proofs", error))?;
                for (key, proof) in proofs {
                    table
                        .insert(raw_key(*key), &**proof)
                        .map_err(|error| self.error("insert segment proof", error))?;
                }
            }
            if !da_entries.is_empty() {
                let mut da_shards = txn
                    .open_table(DA_SHARDS)
                    .map_err(|error| self.error("open DA shards", error))?;
                let mut da_expiry = txn
                    .open_table(DA_EXPIRY)
                    .map_err(|error| self.error("open DA expiry", error))?;
                for (key, entry) in da_entries {
                    let (blob, index) = raw_da_key(*key);
                    da_shards
                        .insert((blob, index), entry.encode().as_slice())
                        .map_err(|error| self.error("insert DA shard", error))?;
                    da_expiry
                        .insert((entry.expires_at_unix_s, blob, index), ())
                        .map_err(|error| self.error("insert DA expiry", error))?;
                }
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
            totals
                .write(&mut meta)
                .map_err(|error| self.error("write meta", error))?;
        }
        txn.commit().map_err(|error| self.error("commit", error))
    }

    /// Drops damaged segments (and their kept proofs) from the index in one durable
    /// transaction, so that they are never served again and a fresh copy can be written;
    /// their extent bytes stay dead. Returns the new totals; keys not in the index are skipped.
    pub(crate) fn drop_segments(
        &self,
        keys: &[SegmentKey],
        totals: &IndexTotals,
    ) -> Result<IndexTotals, DataPlaneError> {
        let mut totals = totals.clone();
        let txn = self
            .db
            .begin_write()
            .map_err(|error| self.error("begin write", error))?;
        {
            let mut segments = txn
                .open_table(SEGMENTS)
                .map_err(|error| self.error("open segments", error))?;
            let mut proofs = txn
                .open_table(SEGMENT_PROOFS)
                .map_err(|error| self.error("open segment proofs", error))?;
            for key in keys {
                let removed = segments
                    .remove(raw_key(*key))
                    .map_err(|error| self.error("remove segment", error))?;
                let Some(removed) = removed else {
                    continue;
                };
                let entry =
                    RecordEntry::decode(removed.value()).map_err(|reason| self.corrupt(reason))?;
                drop(removed);
                proofs
                    .remove(raw_key(*key))
                    .map_err(|error| self.error("remove segment proof", error))?;
                let (Some(segments_left), Some(payload_left)) = (
                    totals.segments.checked_sub(1),
                    totals.payload_bytes.checked_sub(u64::from(entry.length)),
                ) else {
                    return Err(self.corrupt(format!(
                        "dropping segment {} of tx {} from totals of {} segments and {} bytes: the totals do not match the entries",
                        key.1, key.0, totals.segments, totals.payload_bytes
                    )));
                };
                totals.segments = segments_left;
                totals.payload_bytes = payload_left;
                totals.segments_dropped += 1;
                totals.segment_dead_record_bytes +=
                    u64::from(entry.length).div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT;
            }
            let mut meta = txn
                .open_table(META)
                .map_err(|error| self.error("open meta", error))?;
            totals
                .write(&mut meta)
                .map_err(|error| self.error("write meta", error))?;
        }
        txn.commit().map_err(|error| self.error("commit", error))?;
        Ok(totals)
    }

    /// Looks up many DA shards in one read transaction.
    pub(crate) fn da_lookup_many(
        &self,
        keys: &[DaKey],
    ) -> Result<Vec<Option<DaEntry>>, DataPlaneError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self
            .db
            .begin_read()
            .map_err(|error| self.error("begin read", error))?;
        let table = txn
            .open_table(DA_SHARDS)
            .map_err(|error| self.error("open DA shards", error))?;
        keys.iter()
            .map(|key| {
                let found = table
                    .get(raw_da_key(*key))
                    .map_err(|error| self.error("read DA shard", error))?;
                found
                    .map(|value| {
                        DaEntry::decode(value.value()).map_err(|reason| self.corrupt(reason))
                    })
                    .transpose()
            })
            .collect()
    }

    /// Removes up to `limit` DA shards with `expires_at_unix_s <= now_unix_s` in one durable
    /// transaction, from the oldest expiry on; returns what went and the new totals. Commits
    /// nothing when nothing has expired.
    pub(crate) fn da_prune(
        &self,
        now_unix_s: u64,
        limit: usize,
        totals: &IndexTotals,
    ) -> Result<(DaPruned, IndexTotals), DataPlaneError> {
        let txn = self
            .db
            .begin_write()
            .map_err(|error| self.error("begin write", error))?;
        let mut pruned = DaPruned::default();
        let mut totals = totals.clone();
        {
            let mut expiry = txn
                .open_table(DA_EXPIRY)
                .map_err(|error| self.error("open DA expiry", error))?;
            let mut expired = Vec::new();
            for item in expiry
                .range(..=(now_unix_s, [u8::MAX; 32], u32::MAX))
                .map_err(|error| self.error("range DA expiry", error))?
                .take(limit.saturating_add(1))
            {
                let (key, _unit) = item.map_err(|error| self.error("range DA expiry", error))?;
                expired.push(key.value());
            }
            pruned.more = expired.len() > limit;
            expired.truncate(limit);
            if expired.is_empty() {
                return Ok((pruned, totals));
            }
            let mut shards = txn
                .open_table(DA_SHARDS)
                .map_err(|error| self.error("open DA shards", error))?;
            for (expires_at_unix_s, blob, index) in expired {
                expiry
                    .remove((expires_at_unix_s, blob, index))
                    .map_err(|error| self.error("remove DA expiry", error))?;
                let removed = shards
                    .remove((blob, index))
                    .map_err(|error| self.error("remove DA shard", error))?;
                let Some(removed) = removed else {
                    return Err(self.corrupt(format!(
                        "DA expiry entry ({expires_at_unix_s}, {}, {index}) has no shard entry",
                        hex_prefix(&blob)
                    )));
                };
                let entry =
                    DaEntry::decode(removed.value()).map_err(|reason| self.corrupt(reason))?;
                pruned.shards += 1;
                pruned.payload_bytes += u64::from(entry.data_length);
                pruned.record_bytes += entry.record_bytes();
            }
            let less = |total: u64, pruned: u64, what: &str| {
                total.checked_sub(pruned).ok_or_else(|| {
                    self.corrupt(format!(
                        "pruning {pruned} DA {what} from a total of {total}: the totals do not match the entries"
                    ))
                })
            };
            totals.da_shards = less(totals.da_shards, pruned.shards, "shards")?;
            totals.da_payload_bytes = less(
                totals.da_payload_bytes,
                pruned.payload_bytes,
                "payload bytes",
            )?;
            totals.da_record_bytes =
                less(totals.da_record_bytes, pruned.record_bytes, "record bytes")?;
            totals.da_dead_record_bytes += pruned.record_bytes;
            totals.da_shards_pruned += pruned.shards;
            let mut meta = txn
                .open_table(META)
                .map_err(|error| self.error("open meta", error))?;
            totals
                .write(&mut meta)
                .map_err(|error| self.error("write meta", error))?;
        }
        txn.commit().map_err(|error| self.error("commit", error))?;
        Ok((pruned, totals))
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

/// The first bytes of a blob id in hex, for messages.
fn hex_prefix(blob: &[u8; 32]) -> String {
    blob[..8].iter().map(|byte| format!("{byte:02x}")).collect()
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

    /// The index on a real file, as the production storage opens it.
    fn open_file(
        path: &Path,
        shard: usize,
        shards: usize,
    ) -> Result<(ShardIndex, BTreeMap<u64, u64>, IndexTotals), DataPlaneError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .expect("index file");
        let backend = redb::backends::FileBackend::new(file).expect("file backend");
        ShardIndex::open(backend, path, shard, shards)
    }

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
            let (index, ends, totals) = open_file(&path, 1, 2).expect("create");
            assert!(ends.is_empty());
            assert_eq!(totals, IndexTotals::default());
            let key = (TxSeq(5), SegmentIndex(0));
            let ends = BTreeMap::from([(0, 4096)]);
            let totals = IndexTotals {
                segments: 1,
                payload_bytes: 1000,
                ..IndexTotals::default()
            };
            index
                .commit(&[(key, entry(0, 0))], &[], &[], &ends, &totals)
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
        let (_index, ends, totals) = open_file(&path, 1, 2).expect("reopen");
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
            open_file(&path, 1, 4),
            Err(DataPlaneError::ShardLayout {
                stored_shards: 2,
                shards: 4,
                ..
            })
        ));
    }

    fn da_entry(offset: u64, expires_at_unix_s: u64) -> DaEntry {
        DaEntry {
            extent: 0,
            offset,
            data_length: 5000,
            proof_siblings: 4,
            crc32c: 0x1234_5678,
            expires_at_unix_s,
        }
    }

    #[test]
    fn da_entries_round_trip_and_reject_other_versions() {
        let original = da_entry(12_288, 77);
        let bytes = original.encode();
        assert_eq!(DaEntry::decode(&bytes), Ok(original));
        assert_eq!(original.length(), 5000 + 4 * 32);
        assert_eq!(original.record_bytes(), 8192);
        let mut other = bytes;
        other[0] = 2;
        assert!(DaEntry::decode(&other).is_err());
        assert!(DaEntry::decode(&bytes[..20]).is_err());
    }

    #[test]
    fn da_prune_removes_expired_entries_in_expiry_order_and_persists_totals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        let key = |blob: u8, index: u32| (BlobId([blob; 32]), DaShardIndex(index));
        let entries = [
            (key(1, 0), da_entry(0, 10)),
            (key(1, 1), da_entry(8192, 10)),
            (key(2, 0), da_entry(16_384, 20)),
            (key(3, 7), da_entry(24_576, 5)),
        ];
        let stored = IndexTotals {
            da_shards: 4,
            da_payload_bytes: 4 * 5000,
            da_record_bytes: 4 * 8192,
            ..IndexTotals::default()
        };
        {
            let (index, _, totals) = open_file(&path, 0, 1).expect("create");
            assert_eq!(totals, IndexTotals::default());
            index
                .commit(&[], &[], &entries, &BTreeMap::from([(0, 32_768)]), &stored)
                .expect("commit");
            let found = index
                .da_lookup_many(&[key(1, 1), key(9, 0)])
                .expect("lookup");
            assert_eq!(found, vec![Some(entries[1].1), None]);

            // A limit of two takes the two earliest expiries and says more are due.
            let (pruned, totals) = index.da_prune(10, 2, &stored).expect("prune");
            assert_eq!((pruned.shards, pruned.more), (2, true));
            let (pruned, totals) = index.da_prune(10, 2, &totals).expect("prune");
            assert_eq!(
                pruned,
                DaPruned {
                    shards: 1,
                    payload_bytes: 5000,
                    record_bytes: 8192,
                    more: false
                }
            );
            assert_eq!(totals.da_shards, 1);
            assert_eq!(totals.da_dead_record_bytes, 3 * 8192);
            let left = index
                .da_lookup_many(&entries.map(|(key, _)| key))
                .expect("lookup");
            assert_eq!(left, vec![None, None, Some(entries[2].1), None]);
        }
        let (_index, ends, totals) = open_file(&path, 0, 1).expect("reopen");
        assert_eq!(ends, BTreeMap::from([(0, 32_768)]));
        assert_eq!(
            totals,
            IndexTotals {
                da_shards: 1,
                da_payload_bytes: 5000,
                da_record_bytes: 8192,
                da_dead_record_bytes: 3 * 8192,
                da_shards_pruned: 3,
                ..IndexTotals::default()
            }
        );
    }

    #[test]
    fn an_index_from_before_da_opens_with_empty_da_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        let key = (TxSeq(5), SegmentIndex(0));
        {
            let (index, _, _) = open_file(&path, 0, 1).expect("create");
            let totals = IndexTotals {
                segments: 1,
                payload_bytes: 1000,
                ..IndexTotals::default()
            };
            index
                .commit(
                    &[(key, entry(0, 0))],
                    &[],
                    &[],
                    &BTreeMap::from([(0, 4096)]),
                    &totals,
                )
                .expect("commit");
            // What a version 1 index holds: no DA tables, no DA totals.
            let txn = index.db.begin_write().expect("begin");
            txn.delete_table(DA_SHARDS).expect("delete");
            txn.delete_table(DA_EXPIRY).expect("delete");
            {
                let mut meta = txn.open_table(META).expect("meta");
                meta.insert(META_FORMAT, INDEX_FORMAT_VERSION_BEFORE_DA)
                    .expect("version");
                for key in [META_DA_SHARDS, META_DA_PAYLOAD_BYTES, META_DA_RECORD_BYTES] {
                    meta.remove(key).expect("remove");
                }
            }
            txn.commit().expect("commit");
        }
        let (index, _, totals) = open_file(&path, 0, 1).expect("open version 1");
        assert_eq!(totals.segments, 1);
        assert_eq!(totals.da_shards, 0);
        assert_eq!(
            index.lookup_many(&[key]).expect("lookup"),
            vec![Some(entry(0, 0))]
        );
        let da_key = (BlobId([1; 32]), DaShardIndex(0));
        assert_eq!(index.da_lookup_many(&[da_key]).expect("lookup"), vec![None]);
        let (pruned, _) = index.da_prune(u64::MAX, 10, &totals).expect("prune");
        assert_eq!(pruned, DaPruned::default());
        let txn = index.db.begin_read().expect("read");
        let meta = txn.open_table(META).expect("meta");
        assert_eq!(
            meta.get(META_FORMAT).expect("get").map(|v| v.value()),
            Some(INDEX_FORMAT_VERSION)
        );
    }
}
