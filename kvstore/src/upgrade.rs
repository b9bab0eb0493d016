//! Opening a store: a file of redb file format v2 is upgraded once, at open, into today's
//! format; anything else goes straight to redb.
//!
//! The upgrade reads the v2 file with [`crate::v2`], writes every table into a fresh database
//! beside it (`<name>.v3-upgrade`) in one transaction through redb's own types, checks that each
//! table has as many entries as the v2 file records, syncs the new file, renames it over the
//! old one and syncs the folder. A crash before the rename leaves the v2 file untouched (the
//! partial new file is removed and the upgrade redone at the next open); the rename itself is
//! atomic, and the file it puts in place is complete and synced. So the store is always either
//! the old v2 file or the complete new one.

use crate::Error;
use crate::types::V2Value;
use crate::v2::{self, TableInfo, V2File};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTableMetadata, TableDefinition,
    TableHandle, WriteTransaction,
};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

type CopyFn = dyn Fn(&V2File, &TableInfo, &WriteTransaction) -> Result<u64, Error>;
type CountFn = dyn Fn(&Path, &ReadTransaction) -> Result<u64, Error>;

/// One table of a store, as the upgrade copies it: its name and its key and value types,
/// which must be those the v2 file recorded.
pub struct Table {
    name: String,
    key_type: String,
    value_type: String,
    copy: Box<CopyFn>,
    count: Box<CountFn>,
}

impl Table {
    /// The table of `definition`, copied entry by entry: each key and value decoded from redb
    /// 2's encoding into redb's typed value and inserted, so redb encodes it anew.
    pub fn new<K, V>(definition: TableDefinition<'static, K, V>) -> Table
    where
        K: redb::Key + V2Value + 'static,
        V: V2Value + 'static,
    {
        let name = definition.name().to_string();
        let copy = move |file: &V2File, info: &TableInfo, txn: &WriteTransaction| {
            let path = file.path();
            let mut table = txn
                .open_table(definition)
                .map_err(|e| Error::redb(path, "create a table in the new file", e))?;
            let mut copied = 0u64;
            file.for_each(info, &mut |key, value| {
                let bad = |what: &str, reason: String| Error::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("table {}: a {what}: {reason}", info.name),
                };
                let key = K::from_v2(key).map_err(|reason| bad("key", reason))?;
                let value = V::from_v2(value).map_err(|reason| bad("value", reason))?;
                table
                    .insert(key, value)
                    .map_err(|e| Error::redb(path, "insert into the new file", e))?;
                copied += 1;
                Ok(())
            })?;
            Ok(copied)
        };
        let count = move |path: &Path, txn: &ReadTransaction| -> Result<u64, Error> {
            match txn.open_table(definition) {
                Ok(table) => table
                    .len()
                    .map_err(|e| Error::redb(path, "count the new file's entries", e)),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                Err(e) => Err(Error::redb(path, "open a table of the new file", e)),
            }
        };
        Table {
            name,
            key_type: K::v2_type_name(),
            value_type: V::v2_type_name(),
            copy: Box::new(copy),
            count: Box::new(count),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Where an upgrade writes the new file before renaming it over `path`.
pub fn upgrade_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".v3-upgrade");
    path.with_file_name(name)
}

/// The redb file format version of the file at `path` (that of its primary commit slot), or
/// `None` when there is no file or it has no redb header yet (redb initializes such a file).
pub fn file_format_version(path: &Path) -> Result<Option<u8>, Error> {
    use std::io::Read;
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                operation: "open",
                source,
            });
        }
    };
    let mut head = Vec::with_capacity(v2::HEADER_BYTES);
    file.by_ref()
        .take(v2::HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            operation: "read the header",
            source,
        })?;
    if head.len() < v2::HEADER_BYTES || head[..v2::MAGIC.len()] != v2::MAGIC {
        return Ok(None);
    }
    let primary = usize::from(head[v2::MAGIC.len()] & 1);
    Ok(Some(head[v2::SLOT_AT[primary]]))
}

/// Opens (or creates) the store at `path` with redb's default settings; see [`open_with`].
pub fn open(path: &Path, tables: &[Table]) -> Result<Database, Error> {
    open_with(&Database::builder(), path, tables)
}

/// Opens (or creates) the store at `path` with `builder`'s settings. A file of format v2 is
/// first upgraded (see the module's documentation): every table in it must be one of `tables`
/// (a table the caller does not know would be lost, so the upgrade refuses).
pub fn open_with(
    builder: &redb::Builder,
    path: &Path,
    tables: &[Table],
) -> Result<Database, Error> {
    let temp = upgrade_path(path);
    match file_format_version(path)? {
        Some(v2::FORMAT_VERSION) => upgrade(builder, path, &temp, tables)?,
        Some(1) => {
            return Err(Error::NotV2 {
                path: path.to_path_buf(),
                version: 1,
            });
        }
        _ => {
            // A new file left by an upgrade that stopped before its rename, with the old file
            // since replaced or removed by hand: nothing reads it.
            if temp.exists() {
                tracing::warn!(path = %temp.display(), "removing a leftover upgrade file");
                remove(&temp)?;
            }
        }
    }
    builder
        .create(path)
        .map_err(|e| Error::redb(path, "open", e))
}

fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            operation: "remove",
            source,
        }),
    }
}

fn sync(path: &Path, what: &'static str) -> Result<(), Error> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            operation: what,
            source,
        })
}

fn upgrade(
    builder: &redb::Builder,
    path: &Path,
    temp: &Path,
    tables: &[Table],
) -> Result<(), Error> {
    let started = Instant::now();
    // redb locks the files it opens; holding the same lock keeps a process still running an
    // old release on this file from writing while it is copied.
    let lock = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        operation: "open",
        source,
    })?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::InUse {
                path: path.to_path_buf(),
            });
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                operation: "lock",
                source,
            });
        }
    }
    let file = V2File::open(path)?;
    let found = file.tables()?;
    let mut plan = Vec::with_capacity(found.len());
    for info in &found {
        let Some(table) = tables.iter().find(|table| table.name == info.name) else {
            return Err(Error::UnknownTable {
                path: path.to_path_buf(),
                table: info.name.clone(),
            });
        };
        if info.key_type != table.key_type
            || info.value_type != table.value_type
            || info.kind != v2::TableKind::Normal
        {
            return Err(Error::TableType {
                path: path.to_path_buf(),
                table: info.name.clone(),
                found: format!("{:?} {} → {}", info.kind, info.key_type, info.value_type),
                expected: format!("{} → {}", table.key_type, table.value_type),
            });
        }
        plan.push((info, table));
    }
    remove(temp)?;
    let copied = copy_all(builder, &file, temp, &plan);
    let counts = match copied {
        Ok(counts) => counts,
        Err(error) => {
            // The old file is untouched; the partial new one goes.
            let _ = std::fs::remove_file(temp);
            return Err(error);
        }
    };
    std::fs::rename(temp, path).map_err(|source| Error::Io {
        path: temp.to_path_buf(),
        operation: "rename over the old file",
        source,
    })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    sync(folder, "sync the folder after the rename")?;
    drop(lock);
    let entries: u64 = counts.iter().map(|(_, count)| count).sum();
    let per_table = counts
        .iter()
        .map(|(name, count)| format!("{name}={count}"))
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(
        path = %path.display(),
        from_format = v2::FORMAT_VERSION,
        to_format = 3,
        tables = counts.len(),
        entries,
        per_table = %per_table,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "upgraded a redb file from file format v2 to v3"
    );
    Ok(())
}

/// Writes every planned table into a new database at `temp`, checks the counts and syncs it.
fn copy_all(
    builder: &redb::Builder,
    file: &V2File,
    temp: &Path,
    plan: &[(&TableInfo, &Table)],
) -> Result<Vec<(String, u64)>, Error> {
    let database = builder
        .create(temp)
        .map_err(|e| Error::redb(temp, "create the new file", e))?;
    let txn = database
        .begin_write()
        .map_err(|e| Error::redb(temp, "begin the copy", e))?;
    let mut counts = Vec::with_capacity(plan.len());
    for (info, table) in plan {
        let copied = (table.copy)(file, info, &txn)?;
        counts.push((info.name.clone(), copied));
    }
    txn.commit()
        .map_err(|e| Error::redb(temp, "commit the copy", e))?;
    let read = database
        .begin_read()
        .map_err(|e| Error::redb(temp, "begin the check", e))?;
    for (info, table) in plan {
        let written = (table.count)(temp, &read)?;
        if written != info.length {
            return Err(Error::CountMismatch {
                path: file.path().to_path_buf(),
                table: info.name.clone(),
                read: info.length,
                written,
            });
        }
    }
    drop(read);
    drop(database);
    sync(temp, "sync the new file")?;
    Ok(counts)
}
