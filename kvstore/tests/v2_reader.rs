//! The v2 reader on files written by redb 2.6.4 (`tests/fixtures/README.md`), and on those
//! files truncated or corrupted: every damage is an error, never a panic.

mod common;

use common::{crashed_names, edited_names, edited_numbers, fixture, tables_expected};
use kvstore::Error;
use kvstore::v2::{TableKind, V2File};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The fixtures' page size.
const PAGE_SIZE: usize = 4096;

fn names_of(file: &V2File) -> Vec<String> {
    file.tables()
        .expect("tables")
        .into_iter()
        .map(|table| table.name)
        .collect()
}

#[test]
fn every_table_and_entry_of_the_tables_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-tables.redb");
    let file = V2File::open(&path).expect("open");
    assert!(!file.header().recovery_required);
    assert_eq!(file.header().page_size, 4096);
    let tables = file.tables().expect("tables");
    let expected = tables_expected();
    assert_eq!(
        tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        expected.iter().map(|e| e.name).collect::<Vec<_>>()
    );
    for (table, expected) in tables.iter().zip(&expected) {
        let name = expected.name;
        assert_eq!(table.kind, TableKind::Normal);
        assert_eq!(table.key_type, expected.key_type, "{name}");
        assert_eq!(table.value_type, expected.value_type, "{name}");
        assert_eq!(table.length, expected.entries.len() as u64, "{name}");
        let read = file.entries(table).expect("entries");
        assert!(read == expected.entries, "table {name} reads other entries");
    }
    // The shapes the fixture was made for: a three-level tree (branches of branches), and
    // values of up to 300 000 bytes on multi-page leaves under a branch.
    let stats = |name: &str| {
        let table = tables.iter().find(|t| t.name == name).expect("table");
        file.for_each(table, &mut |_, _| Ok(())).expect("walk")
    };
    assert_eq!(stats("numbers").depth, 3);
    assert!(stats("numbers").pages > 100);
    assert_eq!(stats("large").depth, 2);
    assert_eq!(stats("meta").depth, 1);
    let width = |name: &str| {
        let table = tables.iter().find(|t| t.name == name).expect("table");
        (table.fixed_key_width, table.fixed_value_width)
    };
    assert_eq!(width("numbers"), (Some(8), None));
    assert_eq!(width("blobs"), (None, Some(0)));
    assert_eq!(width("pairs"), (Some(16), None));
    assert_eq!(width("objects"), (None, None));
    assert_eq!(width("roots"), (Some(32), None));
    assert!(tables.iter().any(|t| t.name == "empty" && t.root.is_none()));
    file.verify().expect("every checksum holds");
}

#[test]
fn a_file_after_deletes_and_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-edited.redb");
    let file = V2File::open(&path).expect("open");
    // `gone` was deleted in the last commit.
    assert_eq!(names_of(&file), vec!["names", "numbers"]);
    let tables = file.tables().expect("tables");
    let numbers: Vec<(u64, Vec<u8>)> = file
        .entries(&tables[1])
        .expect("numbers")
        .into_iter()
        .map(|(key, value)| {
            (
                u64::from_le_bytes(key.try_into().expect("8-byte key")),
                value,
            )
        })
        .collect();
    assert!(numbers == edited_numbers(), "numbers reads other entries");
    let names: Vec<(String, u64)> = file
        .entries(&tables[0])
        .expect("names")
        .into_iter()
        .map(|(key, value)| {
            (
                String::from_utf8(key).expect("utf-8"),
                u64::from_le_bytes(value.try_into().expect("8-byte value")),
            )
        })
        .collect();
    assert_eq!(names, edited_names());
}

#[test]
fn a_file_that_was_not_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-crashed.redb");
    let file = V2File::open(&path).expect("open");
    assert!(file.header().recovery_required);
    let tables = file.tables().expect("tables");
    assert_eq!(names_of(&file), vec!["names"]);
    let names: Vec<(String, u64)> = file
        .entries(&tables[0])
        .expect("names")
        .into_iter()
        .map(|(key, value)| {
            (
                String::from_utf8(key).expect("utf-8"),
                u64::from_le_bytes(value.try_into().expect("8-byte value")),
            )
        })
        .collect();
    assert_eq!(names, crashed_names());
}

/// Opens and reads everything; the result, never a panic.
fn read_all(path: &Path) -> Result<u64, Error> {
    let file = V2File::open(path)?;
    let mut entries = 0;
    for table in file.tables()? {
        file.for_each(&table, &mut |_, _| {
            entries += 1;
            Ok(())
        })?;
    }
    Ok(entries)
}

#[test]
fn truncated_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-tables.redb");
    let bytes = std::fs::read(&path).expect("read");
    let damaged = dir.path().join("damaged.redb");
    for len in [
        0,
        10,
        100,
        319,
        4096,
        8192,
        65536,
        bytes.len() / 2,
        bytes.len() - 4096,
    ] {
        std::fs::write(&damaged, &bytes[..len]).expect("write");
        let error = read_all(&damaged).expect_err("a truncated file is an error");
        let message = error.to_string();
        assert!(
            message.contains("damaged.redb"),
            "the error names the file: {message}"
        );
    }
}

#[test]
fn corrupted_files_are_errors_never_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-tables.redb");
    let bytes = std::fs::read(&path).expect("read");
    let damaged = dir.path().join("damaged.redb");
    let total: u64 = tables_expected()
        .iter()
        .map(|table| table.entries.len() as u64)
        .sum();
    assert_eq!(read_all(&path).expect("the intact file reads"), total);

    // The magic number, the page size and the commit slot.
    for (at, value) in [(0usize, b'x'), (13, 0xFF), (64, 9), (72, 0x55), (100, 1)] {
        let mut copy = bytes.clone();
        copy[at] ^= value;
        std::fs::write(&damaged, &copy).expect("write");
        let error = read_all(&damaged).expect_err("a damaged header is an error");
        assert!(error.to_string().contains("damaged.redb"), "{error}");
    }

    // Bytes of the data pages flipped in turn (about 600 of them, spread over every page that
    // holds something), in place: either an error, or, for a byte no commit reads, the same
    // entries.
    let used: Vec<usize> = (PAGE_SIZE..bytes.len())
        .filter(|&at| bytes[at] != 0)
        .collect();
    std::fs::write(&damaged, &bytes).expect("write");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&damaged)
        .expect("open to damage");
    let mut errors = 0;
    for &at in used.iter().step_by(used.len() / 600 + 1) {
        file.write_all_at(&[bytes[at] ^ 0x5A], at as u64)
            .expect("flip");
        match read_all(&damaged) {
            Ok(entries) => assert_eq!(entries, total, "flip at {at} changed the entries"),
            Err(_) => errors += 1,
        }
        file.write_all_at(&[bytes[at]], at as u64).expect("restore");
    }
    assert!(errors > 100, "only {errors} flips were noticed");
}

#[test]
fn hostile_page_numbers_and_counts_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = fixture(dir.path(), "v2-tables.redb");
    let bytes = std::fs::read(&path).expect("read");
    let damaged = dir.path().join("damaged.redb");
    // The primary slot's user root (slot 0 at 64, root at +8: page number, checksum, length),
    // with the slot's checksum (at +112) made right again, so the reader must refuse the root
    // itself: far away, of a huge order, in a region that does not exist, the header page, a
    // wrong page checksum, a wrong count.
    assert_eq!(bytes[9] & 1, 0, "slot 0 is the fixture's primary");
    let root = u64::from_le_bytes(bytes[72..80].try_into().expect("8 bytes"));
    for (at, raw) in [
        (72, u64::MAX),
        (72, 31u64 << 59),
        (72, 0xFFFFFu64 << 20),
        (72, 0),
        (72, root + 1),
        (80, 0),
        (96, 12345),
    ] {
        if bytes[at..at + 8] == raw.to_le_bytes() {
            continue;
        }
        let mut copy = bytes.clone();
        copy[at..at + 8].copy_from_slice(&raw.to_le_bytes());
        let checksum = xxhash_rust::xxh3::xxh3_128(&copy[64..176]);
        copy[176..192].copy_from_slice(&checksum.to_le_bytes());
        std::fs::write(&damaged, &copy).expect("write");
        let error = read_all(&damaged)
            .err()
            .unwrap_or_else(|| panic!("root field at {at} set to {raw:#x} reads"));
        assert!(
            matches!(error, Error::Corrupt { .. }),
            "{at}: {raw:#x}: {error}"
        );
    }
}

#[test]
fn files_of_other_formats_are_named_as_such() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("current.redb");
    drop(kvstore::redb::Database::create(&path).expect("create"));
    let error = V2File::open(&path).err().expect("a v3 file is not read");
    assert!(matches!(error, Error::NotV2 { version: 3, .. }), "{error}");
    let path = dir.path().join("text.redb");
    std::fs::write(&path, vec![b'x'; 10_000]).expect("write");
    let error = V2File::open(&path).err().expect("not redb");
    assert!(
        error.to_string().contains("no redb magic number"),
        "{error}"
    );
    assert_eq!(kvstore::file_format_version(&path).expect("format"), None);
}
