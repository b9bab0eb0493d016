//! The node index: what files exist (from the chain), where they sit in the flow, which are
//! finalized, and how far the log sync has read. One redb database, written by the control-plane
//! thread only; segment bytes and their locations live in the shards' own indexes.
//!
//! Records are small JSON values: they are read once at start and written once per file event,
//! never on the per-segment path, so a readable format costs nothing that matters.
//!
//! Format versions (`meta.format_version`): 0 is the layout of 2026-12, which recorded no
//! version (and was written by redb 2, file format v2, which `kvstore` upgrades at open); 1 is
//! the same tables with the version recorded. A folder written by a newer build is refused.

use kvstore::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use kvstore::{FormatVersion, META};
use merkle::file::SubmissionNode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use types::{H256, SectorIndex, TxSeq};

const FILES: TableDefinition<u64, &[u8]> = TableDefinition::new("files");
const SEGMENT_ROOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("segment_roots");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("chain_blocks");
/// A validator's finalization certificates by height (commonware codec), written with the
/// block they finalize. Empty on a `--dev` node, whose blocks need none.
const FINALIZATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("consensus_finalizations");

/// The version of the index's tables and records this build writes; see the module docs.
const INDEX_FORMAT_VERSION: u64 = 1;
/// The version of an index that recorded none: the layout of 2026-12.
const INDEX_FORMAT_UNVERSIONED: u64 = 0;

const LOG_SYNC_NEXT_BLOCK: &str = "log_sync_next_block";

/// A file as the chain announced it, plus whether all its data is stored here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub tx_seq: TxSeq,
    pub root: H256,
    pub size_bytes: u64,
    pub start: SectorIndex,
    pub nodes: Vec<SubmissionNode>,
    pub block_number: u64,
    pub finalized: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {path}: {operation}: {source}")]
    Store {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("index {path}: record for tx {tx_seq} is corrupt: {reason}")]
    Corrupt {
        path: PathBuf,
        tx_seq: u64,
        reason: String,
    },
    /// Opening or upgrading the store (the error names the file).
    #[error("node index: {0}")]
    Open(#[from] kvstore::Error),
}

pub struct Index {
    db: Database,
    path: PathBuf,
}

/// Everything the node needs at start, read in one pass.
pub struct Loaded {
    pub files: Vec<FileRecord>,
    pub blocks: Vec<Vec<u8>>,
    pub log_sync_next_block: u64,
}

impl Index {
    /// Opens (or creates) the index, upgrading an older one: a redb 2 file to today's file
    /// format, an older format version to [`INDEX_FORMAT_VERSION`].
    pub fn open(path: &Path) -> Result<Index, IndexError> {
        let db = kvstore::open(
            path,
            &[
                kvstore::Table::new(FILES),
                kvstore::Table::new(SEGMENT_ROOTS),
                kvstore::Table::new(BLOCKS),
                kvstore::Table::new(FINALIZATIONS),
                kvstore::Table::new(META),
            ],
        )?;
        let index = Index {
            db,
            path: path.to_path_buf(),
        };
        let txn = index
            .db
            .begin_write()
            .map_err(|e| index.error("begin", e))?;
        FormatVersion {
            store: "node index",
            path,
            current: INDEX_FORMAT_VERSION,
            unversioned: INDEX_FORMAT_UNVERSIONED,
        }
        // 0 → 1 changes no record: the index gains its version, recorded by `ensure`.
        .ensure(&txn, |_, _| Ok::<(), IndexError>(()))?;
        // Create the tables up front so that readers never see "table does not exist".
        {
            txn.open_table(FILES)
                .map_err(|e| index.error("create files", e))?;
            txn.open_table(SEGMENT_ROOTS)
                .map_err(|e| index.error("create segment roots", e))?;
            txn.open_table(BLOCKS)
                .map_err(|e| index.error("create blocks", e))?;
            txn.open_table(FINALIZATIONS)
                .map_err(|e| index.error("create finalizations", e))?;
            txn.open_table(META)
                .map_err(|e| index.error("create meta", e))?;
        }
        txn.commit().map_err(|e| index.error("commit", e))?;
        Ok(index)
    }

    fn error(
        &self,
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> IndexError {
        store_error(operation, &self.path, source)
    }

    pub fn load(&self) -> Result<Loaded, IndexError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| self.error("begin read", e))?;
        let files_table = txn
            .open_table(FILES)
            .map_err(|e| self.error("open files", e))?;
        let mut files = Vec::new();
        for entry in files_table
            .iter()
            .map_err(|e| self.error("scan files", e))?
        {
            let (key, value) = entry.map_err(|e| self.error("read file", e))?;
            let record: FileRecord =
                serde_json::from_slice(value.value()).map_err(|e| IndexError::Corrupt {
                    path: self.path.clone(),
                    tx_seq: key.value(),
                    reason: e.to_string(),
                })?;
            files.push(record);
        }
        let blocks_table = txn
            .open_table(BLOCKS)
            .map_err(|e| self.error("open blocks", e))?;
        let mut blocks = Vec::new();
        for entry in blocks_table
            .iter()
            .map_err(|e| self.error("scan blocks", e))?
        {
            let (_, value) = entry.map_err(|e| self.error("read block", e))?;
            blocks.push(value.value().to_vec());
        }
        let meta = txn
            .open_table(META)
            .map_err(|e| self.error("open meta", e))?;
        let log_sync_next_block = meta
            .get(LOG_SYNC_NEXT_BLOCK)
            .map_err(|e| self.error("read sync progress", e))?
            .map(|value| value.value())
            .unwrap_or(0);
        Ok(Loaded {
            files,
            blocks,
            log_sync_next_block,
        })
    }

    /// A small counter or flag from the meta table (see the keys in `chain.rs`).
    pub fn meta(&self, key: &str) -> Result<Option<u64>, IndexError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| self.error("begin read", e))?;
        let meta = txn
            .open_table(META)
            .map_err(|e| self.error("open meta", e))?;
        Ok(meta
            .get(key)
            .map_err(|e| self.error("read meta", e))?
            .map(|value| value.value()))
    }

    pub fn put_meta(&self, key: &str, value: u64) -> Result<(), IndexError> {
        let txn = self.db.begin_write().map_err(|e| self.error("begin", e))?;
        {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| self.error("open meta", e))?;
            meta.insert(key, value)
                .map_err(|e| self.error("write meta", e))?;
        }
        txn.commit().map_err(|e| self.error("commit meta", e))
    }

    /// Appends one sealed chain block (the embedded chain's persistence).
    pub fn put_block(&self, number: u64, encoded: &[u8]) -> Result<(), IndexError> {
        let txn = self.db.begin_write().map_err(|e| self.error("begin", e))?;
        {
            let mut table = txn
                .open_table(BLOCKS)
                .map_err(|e| self.error("open blocks", e))?;
            table
                .insert(number, encoded)
                .map_err(|e| self.error("insert block", e))?;
        }
        txn.commit().map_err(|e| self.error("commit block", e))
    }

    /// Appends one block a validator executed, with the certificate that finalized it, in one
    /// transaction: after a crash both are there or neither.
    pub fn put_finalized_block(
        &self,
        number: u64,
        encoded: &[u8],
        finalization: Option<&[u8]>,
    ) -> Result<(), IndexError> {
        let txn = self.db.begin_write().map_err(|e| self.error("begin", e))?;
        {
            let mut blocks = txn
                .open_table(BLOCKS)
                .map_err(|e| self.error("open blocks", e))?;
            blocks
                .insert(number, encoded)
                .map_err(|e| self.error("insert block", e))?;
            if let Some(finalization) = finalization {
                let mut finalizations = txn
                    .open_table(FINALIZATIONS)
                    .map_err(|e| self.error("open finalizations", e))?;
                finalizations
                    .insert(number, finalization)
                    .map_err(|e| self.error("insert finalization", e))?;
            }
        }
        txn.commit().map_err(|e| self.error("commit block", e))
    }

    /// The finalization certificate stored with block `number`, encoded. Read by tests only
    /// until followers fetch certificates.
    #[cfg(test)]
    pub fn finalization(&self, number: u64) -> Result<Option<Vec<u8>>, IndexError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| self.error("begin read", e))?;
        let table = txn
            .open_table(FINALIZATIONS)
            .map_err(|e| self.error("open finalizations", e))?;
        Ok(table
            .get(number)
            .map_err(|e| self.error("read finalization", e))?
            .map(|value| value.value().to_vec()))
    }

    /// Records the files announced by blocks up to `next_block - 1` and the new sync progress,
    /// atomically: a crash leaves either both or neither.
    pub fn put_synced(&self, files: &[FileRecord], next_block: u64) -> Result<(), IndexError> {
        let txn = self.db.begin_write().map_err(|e| self.error("begin", e))?;
        {
            let mut table = txn
                .open_table(FILES)
                .map_err(|e| self.error("open files", e))?;
            for record in files {
                let encoded = serde_json::to_vec(record).expect("a file record always serializes");
                table
                    .insert(record.tx_seq.0, encoded.as_slice())
                    .map_err(|e| self.error("insert file", e))?;
            }
            let mut meta = txn
                .open_table(META)
                .map_err(|e| self.error("open meta", e))?;
            meta.insert(LOG_SYNC_NEXT_BLOCK, next_block)
                .map_err(|e| self.error("write sync progress", e))?;
        }
        txn.commit().map_err(|e| self.error("commit sync", e))
    }

    /// Marks a file finalized and keeps its segment roots, from which download proofs are built.
    pub fn put_finalized(
        &self,
        record: &FileRecord,
        segment_roots: &[H256],
    ) -> Result<(), IndexError> {
        debug_assert!(record.finalized);
        let txn = self.db.begin_write().map_err(|e| self.error("begin", e))?;
        {
            let mut table = txn
                .open_table(FILES)
                .map_err(|e| self.error("open files", e))?;
            let encoded = serde_json::to_vec(record).expect("a file record always serializes");
            table
                .insert(record.tx_seq.0, encoded.as_slice())
                .map_err(|e| self.error("update file", e))?;
            let mut roots = txn
                .open_table(SEGMENT_ROOTS)
                .map_err(|e| self.error("open segment roots", e))?;
            let flat: Vec<u8> = segment_roots.iter().flat_map(|root| root.0).collect();
            roots
                .insert(record.tx_seq.0, flat.as_slice())
                .map_err(|e| self.error("insert segment roots", e))?;
        }
        txn.commit()
            .map_err(|e| self.error("commit finalization", e))
    }

    pub fn segment_roots(&self, tx_seq: TxSeq) -> Result<Option<Vec<H256>>, IndexError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| self.error("begin read", e))?;
        let table = txn
            .open_table(SEGMENT_ROOTS)
            .map_err(|e| self.error("open segment roots", e))?;
        let Some(value) = table
            .get(tx_seq.0)
            .map_err(|e| self.error("read segment roots", e))?
        else {
            return Ok(None);
        };
        let bytes = value.value();
        if bytes.len() % 32 != 0 {
            return Err(IndexError::Corrupt {
                path: self.path.clone(),
                tx_seq: tx_seq.0,
                reason: format!("segment roots of {} bytes", bytes.len()),
            });
        }
        Ok(Some(
            bytes
                .chunks_exact(32)
                .map(|chunk| H256(chunk.try_into().expect("chunks_exact yields 32 bytes")))
                .collect(),
        ))
    }
}

fn store_error(
    operation: &'static str,
    path: &Path,
    source: impl std::error::Error + Send + Sync + 'static,
) -> IndexError {
    IndexError::Store {
        operation,
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tx_seq: u64, finalized: bool) -> FileRecord {
        FileRecord {
            tx_seq: TxSeq(tx_seq),
            root: H256([tx_seq as u8; 32]),
            size_bytes: 1000,
            start: SectorIndex(1),
            nodes: vec![SubmissionNode {
                height: 2,
                root: H256([9; 32]),
            }],
            block_number: 1,
            finalized,
        }
    }

    #[test]
    fn records_and_progress_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        {
            let index = Index::open(&path).expect("open");
            index.put_block(0, b"genesis").expect("block");
            index
                .put_synced(&[record(0, false), record(1, false)], 2)
                .expect("sync");
            index
                .put_finalized(&record(1, true), &[H256([1; 32]), H256([2; 32])])
                .expect("finalize");
        }
        let index = Index::open(&path).expect("reopen");
        let loaded = index.load().expect("load");
        assert_eq!(loaded.files, vec![record(0, false), record(1, true)]);
        assert_eq!(loaded.blocks, vec![b"genesis".to_vec()]);
        assert_eq!(loaded.log_sync_next_block, 2);
        assert_eq!(
            index.segment_roots(TxSeq(1)).expect("read"),
            Some(vec![H256([1; 32]), H256([2; 32])])
        );
        assert_eq!(index.segment_roots(TxSeq(0)).expect("read"), None);
    }

    #[test]
    fn a_new_index_records_its_format_version_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        {
            let index = Index::open(&path).expect("open");
            assert_eq!(
                index.meta(kvstore::FORMAT_VERSION_KEY).expect("meta"),
                Some(INDEX_FORMAT_VERSION)
            );
            index
                .put_meta(kvstore::FORMAT_VERSION_KEY, INDEX_FORMAT_VERSION + 1)
                .expect("meta");
        }
        let error = Index::open(&path).err().expect("a newer index is refused");
        assert!(
            matches!(error, IndexError::Open(kvstore::Error::TooNew { .. })),
            "{error}"
        );
        assert!(
            error.to_string().contains("newer than this build"),
            "{error}"
        );
    }

    #[test]
    fn an_index_without_a_version_is_the_first_layout_and_is_upgraded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.redb");
        {
            // What the release of 2026-12 wrote: the tables, no version.
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("begin");
            {
                let encoded = serde_json::to_vec(&record(0, false)).expect("json");
                txn.open_table(FILES)
                    .expect("files")
                    .insert(0, encoded.as_slice())
                    .expect("insert");
                txn.open_table(META)
                    .expect("meta")
                    .insert(LOG_SYNC_NEXT_BLOCK, 3)
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        let index = Index::open(&path).expect("open");
        assert_eq!(
            index.meta(kvstore::FORMAT_VERSION_KEY).expect("meta"),
            Some(INDEX_FORMAT_VERSION)
        );
        let loaded = index.load().expect("load");
        assert_eq!(loaded.files, vec![record(0, false)]);
        assert_eq!(loaded.log_sync_next_block, 3);
    }
}
