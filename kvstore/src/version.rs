//! A store's own format version, kept in its `meta` table (`&str → u64`) under
//! `format_version`, and the steps that bring an older store to the current version. This is
//! about what the records mean, independent of redb's file format.

use crate::Error;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use std::path::Path;

/// The `meta` table every store keeps its counters and flags in.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The key of the format version in [`META`].
pub const FORMAT_VERSION_KEY: &str = "format_version";

/// What a store says about its format version.
pub struct FormatVersion<'a> {
    /// What the store is, for messages ("node index").
    pub store: &'a str,
    pub path: &'a Path,
    /// The version this build writes.
    pub current: u64,
    /// The version of a store written before it recorded one.
    pub unversioned: u64,
}

impl FormatVersion<'_> {
    /// Reads the store's version in `txn` and brings it to [`FormatVersion::current`]: a new
    /// (empty) store records the current version; an older one runs `step(v, txn)` for each
    /// version `v` it is behind, which moves it from `v` to `v + 1`, logging each, then records
    /// the current version, all in `txn`, so the upgrade commits whole or not at all. A store
    /// newer than this build is refused. Call it before opening any other table in `txn`.
    /// Returns the version the store had (the current one for a new store).
    pub fn ensure<E: From<Error>>(
        &self,
        txn: &WriteTransaction,
        mut step: impl FnMut(u64, &WriteTransaction) -> Result<(), E>,
    ) -> Result<u64, E> {
        let redb = |operation: &'static str, e: redb::Error| Error::redb(self.path, operation, e);
        let fresh = txn
            .list_tables()
            .map_err(|e| redb("list tables", e.into()))?
            .next()
            .is_none();
        let meta = txn
            .open_table(META)
            .map_err(|e| redb("open meta", e.into()))?;
        let recorded = meta
            .get(FORMAT_VERSION_KEY)
            .map_err(|e| redb("read the format version", e.into()))?
            .map(|value| value.value());
        let found = match recorded {
            Some(version) => version,
            None if fresh => self.current,
            None => self.unversioned,
        };
        if found > self.current {
            return Err(Error::TooNew {
                path: self.path.to_path_buf(),
                store: self.store.to_string(),
                found,
                supported: self.current,
            }
            .into());
        }
        drop(meta);
        for version in found..self.current {
            step(version, txn)?;
            tracing::info!(
                path = %self.path.display(),
                store = self.store,
                from = version,
                to = version + 1,
                "upgraded the {} format",
                self.store
            );
        }
        if recorded != Some(self.current) {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| redb("open meta", e.into()))?;
            meta.insert(FORMAT_VERSION_KEY, self.current)
                .map_err(|e| redb("record the format version", e.into()))?;
        }
        Ok(found)
    }
}
