//! The open-time upgrade of v2 files to today's format, and the store format version.

mod common;

use common::{
    LARGE_SIZES, crashed_names, edited_names, edited_numbers, fixture, large_value, number_value,
};
use kvstore::redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use kvstore::{Error, FormatVersion, Table, file_format_version, upgrade_path};
use std::path::Path;

const NUMBERS: TableDefinition<u64, &[u8]> = TableDefinition::new("numbers");
const NAMES: TableDefinition<&str, u64> = TableDefinition::new("names");
const BLOBS: TableDefinition<&[u8], ()> = TableDefinition::new("blobs");
const PAIRS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("pairs");
const OBJECTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("objects");
const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");
const ROOTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("roots");
const LARGE: TableDefinition<u64, &[u8]> = TableDefinition::new("large");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EMPTY: TableDefinition<u64, u64> = TableDefinition::new("empty");

fn all_tables() -> Vec<Table> {
    vec![
        Table::new(NUMBERS),
        Table::new(NAMES),
        Table::new(BLOBS),
        Table::new(PAIRS),
        Table::new(OBJECTS),
        Table::new(PARTS),
        Table::new(ROOTS),
        Table::new(LARGE),
        Table::new(META),
        Table::new(EMPTY),
    ]
}

fn check_tables_fixture(database: &kvstore::redb::Database) {
    let txn = database.begin_read().expect("read");
    let numbers = txn.open_table(NUMBERS).expect("numbers");
    assert_eq!(numbers.len().expect("len"), 5000);
    for (k, entry) in numbers.iter().expect("iter").enumerate() {
        let (key, value) = entry.expect("entry");
        assert_eq!(key.value(), k as u64);
        assert_eq!(value.value(), number_value(k as u64).as_slice());
    }
    let names = txn.open_table(NAMES).expect("names");
    assert_eq!(names.len().expect("len"), 300);
    assert_eq!(
        names.get("key-0017").expect("get").map(|v| v.value()),
        Some(289)
    );
    let blobs = txn.open_table(BLOBS).expect("blobs");
    assert_eq!(blobs.len().expect("len"), 200);
    assert!(blobs.get([3u8, 21].as_slice()).expect("get").is_some());
    let pairs = txn.open_table(PAIRS).expect("pairs");
    assert_eq!(
        pairs.get((12, 3)).expect("get").map(|v| v.value().to_vec()),
        Some(b"p123".to_vec())
    );
    // Variable-width tuple keys, re-encoded: point reads and ranges in the new encoding.
    let objects = txn.open_table(OBJECTS).expect("objects");
    assert_eq!(objects.len().expect("len"), 402);
    assert_eq!(
        objects
            .get(("b1", "dir/001/obj"))
            .expect("get")
            .map(|v| v.value().to_vec()),
        Some(b"object 1".to_vec())
    );
    assert_eq!(
        objects
            .get(("", ""))
            .expect("get")
            .map(|v| v.value().to_vec()),
        Some(b"empty".to_vec())
    );
    assert_eq!(
        objects
            .get(("b1", "é ü"))
            .expect("get")
            .map(|v| v.value().to_vec()),
        Some(b"utf8".to_vec())
    );
    let in_b2: Vec<String> = objects
        .range(("b2", "")..("b3", ""))
        .expect("range")
        .map(|entry| entry.expect("entry").0.value().1.to_string())
        .collect();
    let mut expected: Vec<String> = (0..400u64)
        .filter(|k| k % 3 == 2)
        .map(|k| format!("dir/{k:03}/obj"))
        .collect();
    expected.sort();
    assert_eq!(in_b2, expected);
    let parts = txn.open_table(PARTS).expect("parts");
    let of_upload_1: Vec<u32> = parts
        .range(("upload-1", 0)..=("upload-1", u32::MAX))
        .expect("range")
        .map(|entry| entry.expect("entry").0.value().1)
        .collect();
    assert_eq!(
        of_upload_1,
        (0..300u32).filter(|k| k % 4 == 1).collect::<Vec<_>>()
    );
    assert_eq!(
        parts
            .get(("upload-3", 7))
            .expect("get")
            .map(|v| v.value().to_vec()),
        Some(vec![7u8; 7])
    );
    let roots = txn.open_table(ROOTS).expect("roots");
    assert_eq!(
        roots
            .get(&[9u8; 32])
            .expect("get")
            .map(|v| v.value().to_vec()),
        Some(9u64.to_le_bytes().to_vec())
    );
    let large = txn.open_table(LARGE).expect("large");
    for (k, size) in LARGE_SIZES.iter().enumerate() {
        let value = large.get(k as u64).expect("get").expect("present");
        assert!(value.value() == large_value(k as u64, *size).as_slice());
    }
    let meta = txn.open_table(META).expect("meta");
    assert_eq!(
        meta.get("format_version").expect("get").map(|v| v.value()),
        Some(1)
    );
    assert_eq!(txn.open_table(EMPTY).expect("empty").len().expect("len"), 0);
}

#[test]
fn a_v2_file_is_upgraded_once_and_reads_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-tables.redb");
    assert_eq!(file_format_version(&path).expect("format"), Some(2));
    let database = kvstore::open(&path, &all_tables()).expect("upgrade");
    assert_eq!(file_format_version(&path).expect("format"), Some(3));
    assert!(!upgrade_path(&path).exists(), "no upgrade file is left");
    check_tables_fixture(&database);
    drop(database);
    // Opening again reads the new file as it is.
    let before = std::fs::read(&path).expect("read");
    let database = kvstore::open(&path, &all_tables()).expect("reopen");
    check_tables_fixture(&database);
    drop(database);
    assert_eq!(file_format_version(&path).expect("format"), Some(3));
    assert_eq!(before.len(), std::fs::read(&path).expect("read").len());
}

#[test]
fn edited_and_unclosed_files_are_upgraded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-edited.redb");
    let database =
        kvstore::open(&path, &[Table::new(NUMBERS), Table::new(NAMES)]).expect("upgrade");
    let txn = database.begin_read().expect("read");
    let numbers: Vec<(u64, Vec<u8>)> = txn
        .open_table(NUMBERS)
        .expect("numbers")
        .iter()
        .expect("iter")
        .map(|entry| {
            let (key, value) = entry.expect("entry");
            (key.value(), value.value().to_vec())
        })
        .collect();
    assert!(numbers == edited_numbers());
    let names: Vec<(String, u64)> = txn
        .open_table(NAMES)
        .expect("names")
        .iter()
        .expect("iter")
        .map(|entry| {
            let (key, value) = entry.expect("entry");
            (key.value().to_string(), value.value())
        })
        .collect();
    assert_eq!(names, edited_names());

    let path = fixture(dir.path(), "v2-crashed.redb");
    let database = kvstore::open(&path, &[Table::new(NAMES)]).expect("upgrade");
    let txn = database.begin_read().expect("read");
    let names: Vec<(String, u64)> = txn
        .open_table(NAMES)
        .expect("names")
        .iter()
        .expect("iter")
        .map(|entry| {
            let (key, value) = entry.expect("entry");
            (key.value().to_string(), value.value())
        })
        .collect();
    assert_eq!(names, crashed_names());
}

#[test]
fn an_unclosed_file_with_a_torn_last_commit_reads_the_one_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-crashed.redb");
    let mut bytes = std::fs::read(&path).expect("read");
    let primary = usize::from(bytes[9] & 1);
    // The last commit's slot, half written: its checksum no longer holds.
    bytes[64 + 128 * primary + 40] ^= 0xFF;
    std::fs::write(&path, &bytes).expect("write");
    let database = kvstore::open(&path, &[Table::new(NAMES)]).expect("upgrade");
    let txn = database.begin_read().expect("read");
    let names: Vec<(String, u64)> = txn
        .open_table(NAMES)
        .expect("names")
        .iter()
        .expect("iter")
        .map(|entry| {
            let (key, value) = entry.expect("entry");
            (key.value().to_string(), value.value())
        })
        .collect();
    // The first of the two commits.
    let expected: Vec<(String, u64)> = (0..50u64).map(|k| (format!("crash-{k:02}"), k)).collect();
    assert_eq!(names, expected);
}

/// The upgrade refuses, and leaves the v2 file byte for byte as it was, with no upgrade file.
fn refused(path: &Path, tables: &[Table]) -> Error {
    let before = std::fs::read(path).expect("read");
    let error = kvstore::open(path, tables).expect_err("the upgrade refuses");
    assert!(
        std::fs::read(path).expect("read") == before,
        "the old file changed"
    );
    assert!(!upgrade_path(path).exists(), "an upgrade file is left");
    assert_eq!(file_format_version(path).expect("format"), Some(2));
    error
}

#[test]
fn unknown_tables_and_other_types_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-edited.redb");
    let error = refused(&path, &[Table::new(NUMBERS)]);
    assert!(
        matches!(&error, Error::UnknownTable { table, .. } if table == "names"),
        "{error}"
    );
    const WRONG: TableDefinition<&str, u32> = TableDefinition::new("names");
    let error = refused(&path, &[Table::new(NUMBERS), Table::new(WRONG)]);
    assert!(matches!(error, Error::TableType { .. }), "{error}");
    assert!(error.to_string().contains("&str → u32"), "{error}");
}

#[test]
fn a_copy_that_fails_midway_leaves_the_old_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-tables.redb");
    // Damage a leaf of the `large` table, copied after `blobs` and `empty`, so the failure
    // comes when the new file already has tables in it.
    let mut bytes = std::fs::read(&path).expect("read");
    let needle = &large_value(3, LARGE_SIZES[3])[1000..1064];
    let at = bytes
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("the largest value is in the file");
    bytes[at] ^= 0x5A;
    std::fs::write(&path, &bytes).expect("write");
    let error = refused(&path, &all_tables());
    assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("v2-tables.redb"), "{error}");
}

#[test]
fn a_file_locked_by_another_process_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-edited.redb");
    // redb 2 holds an exclusive lock on the files it has open, as an older zerog would.
    let holder = std::fs::File::open(&path).expect("open");
    holder.try_lock().expect("lock");
    let error = refused(&path, &[Table::new(NUMBERS), Table::new(NAMES)]);
    assert!(matches!(error, Error::InUse { .. }), "{error}");
    drop(holder);
    kvstore::open(&path, &[Table::new(NUMBERS), Table::new(NAMES)]).expect("upgrade");
    assert_eq!(file_format_version(&path).expect("format"), Some(3));
}

#[test]
fn a_leftover_upgrade_file_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-edited.redb");
    // What a crash during an earlier upgrade leaves: a partial new file beside the old one.
    std::fs::write(upgrade_path(&path), b"a partial file").expect("write");
    let database =
        kvstore::open(&path, &[Table::new(NUMBERS), Table::new(NAMES)]).expect("upgrade");
    let txn = database.begin_read().expect("read");
    assert_eq!(
        txn.open_table(NUMBERS)
            .expect("numbers")
            .len()
            .expect("len"),
        edited_numbers().len() as u64
    );
    assert!(!upgrade_path(&path).exists());
}

#[test]
fn new_and_current_files_open_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new.redb");
    assert_eq!(file_format_version(&path).expect("format"), None);
    let database = kvstore::open(&path, &[]).expect("create");
    let txn = database.begin_write().expect("write");
    txn.open_table(NAMES)
        .expect("names")
        .insert("a", 1)
        .expect("insert");
    txn.commit().expect("commit");
    drop(database);
    assert_eq!(file_format_version(&path).expect("format"), Some(3));
    // Tables the caller does not list are no concern outside an upgrade.
    let database = kvstore::open(&path, &[]).expect("open");
    let txn = database.begin_read().expect("read");
    assert_eq!(
        txn.open_table(NAMES)
            .expect("names")
            .get("a")
            .expect("get")
            .map(|v| v.value()),
        Some(1)
    );
}

fn version_of(database: &kvstore::redb::Database) -> Option<u64> {
    let txn = database.begin_read().expect("read");
    let meta = txn.open_table(kvstore::META).expect("meta");
    meta.get(kvstore::FORMAT_VERSION_KEY)
        .expect("get")
        .map(|v| v.value())
}

#[test]
fn format_versions_upgrade_step_by_step_and_newer_stores_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let database = kvstore::open(&path, &[]).expect("create");
    let spec = FormatVersion {
        store: "test store",
        path: &path,
        current: 3,
        unversioned: 1,
    };
    // A new store records the current version and runs no step.
    let txn = database.begin_write().expect("write");
    let found = spec
        .ensure(&txn, |_, _| -> Result<(), Error> {
            panic!("a new store needs no step")
        })
        .expect("ensure");
    txn.commit().expect("commit");
    assert_eq!(found, 3);
    assert_eq!(version_of(&database), Some(3));

    // A store that predates the version key is `unversioned` and goes up one step at a time.
    let txn = database.begin_write().expect("write");
    txn.open_table(kvstore::META)
        .expect("meta")
        .remove(kvstore::FORMAT_VERSION_KEY)
        .expect("remove");
    txn.open_table(NAMES)
        .expect("names")
        .insert("data", 1)
        .expect("insert");
    txn.commit().expect("commit");
    let txn = database.begin_write().expect("write");
    let mut steps = Vec::new();
    let found = spec
        .ensure(&txn, |from, _| -> Result<(), Error> {
            steps.push(from);
            Ok(())
        })
        .expect("ensure");
    txn.commit().expect("commit");
    assert_eq!((found, steps), (1, vec![1, 2]));
    assert_eq!(version_of(&database), Some(3));

    // A failing step leaves the store as it was (the caller does not commit).
    let txn = database.begin_write().expect("write");
    txn.open_table(kvstore::META)
        .expect("meta")
        .insert(kvstore::FORMAT_VERSION_KEY, 2)
        .expect("insert");
    txn.commit().expect("commit");
    let txn = database.begin_write().expect("write");
    let failed = spec.ensure(&txn, |_, _| -> Result<(), Error> {
        Err(Error::InUse { path: path.clone() })
    });
    assert!(failed.is_err());
    drop(txn);
    assert_eq!(version_of(&database), Some(2));

    // Newer than this build: refused, with both versions in the message.
    let older = FormatVersion { current: 1, ..spec };
    let txn = database.begin_write().expect("write");
    let error = older
        .ensure(&txn, |_, _| -> Result<(), Error> { Ok(()) })
        .expect_err("a newer store is refused");
    assert!(
        matches!(
            error,
            Error::TooNew {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("test store"), "{error}");
}
