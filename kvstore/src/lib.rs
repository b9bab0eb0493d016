//! The workspace's one redb major (redb 4, file format v3) and the way stores written by
//! redb 2 (file format v2) come to it. redb 3 and later refuse v2 files and only redb 2 itself
//! can convert them, so rather than keep redb 2 in the build, this crate reads v2 files with
//! its own small read-only reader ([`v2`]) and, when a store is opened, copies a v2 file once
//! into a new file of today's format, renamed over the old one after it is complete and synced
//! ([`open`]). Stores also keep their own format version ([`FormatVersion`]).
//!
//! Stores use redb through [`redb`] as re-exported here, so every crate gets the same version.

mod types;
mod upgrade;
pub mod v2;
mod version;

pub use redb;
pub use types::V2Value;
pub use upgrade::{Table, file_format_version, open, open_with, upgrade_path};
pub use version::{FORMAT_VERSION_KEY, FormatVersion, META};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {operation}: {source}")]
    Io {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {operation}: {source}")]
    Redb {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("{path} is not a readable redb file of format v2: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path} is redb file format v{version}; only v2 is upgraded here (v1 needs redb 1 or 2 \
         to upgrade it, v3 is read by redb directly)"
    )]
    NotV2 { path: PathBuf, version: u8 },
    #[error("{path} is locked by another process (an older zerog still running on it?)")]
    InUse { path: PathBuf },
    #[error(
        "{path} has a table {table:?} this store does not know; upgrading would lose it, so the \
         file is left as it is"
    )]
    UnknownTable { path: PathBuf, table: String },
    #[error("{path}: table {table:?} holds {found}, this store expects {expected}")]
    TableType {
        path: PathBuf,
        table: String,
        found: String,
        expected: String,
    },
    #[error(
        "{path}: upgrade check failed: table {table:?} has {written} entries in the new file, \
         {read} in the old one (the old file is left as it is)"
    )]
    CountMismatch {
        path: PathBuf,
        table: String,
        read: u64,
        written: u64,
    },
    #[error(
        "{path}: the {store} has format version {found}, newer than this build reads \
         ({supported}); run a newer zerog"
    )]
    TooNew {
        path: PathBuf,
        store: String,
        found: u64,
        supported: u64,
    },
}

impl Error {
    pub(crate) fn redb(
        path: &std::path::Path,
        operation: &'static str,
        source: impl Into<redb::Error>,
    ) -> Error {
        Error::Redb {
            path: path.to_path_buf(),
            operation,
            source: Box::new(source.into()),
        }
    }
}
