//! The checked-in v2 fixtures (`tests/fixtures/README.md`) and what they hold.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

/// Decompresses `tests/fixtures/<name>.gz` into `dir/<name>`.
pub fn fixture(dir: &Path, name: &str) -> PathBuf {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(format!("{name}.gz"));
    let compressed = std::fs::read(&archive).expect("the fixture is checked in");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut bytes)
        .expect("the fixture is gzip");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the fixture");
    path
}

pub fn number_value(k: u64) -> Vec<u8> {
    format!("v{k:05}")
        .repeat(1 + (k % 20) as usize)
        .into_bytes()
}

pub fn large_value(k: u64, size: usize) -> Vec<u8> {
    (0..size as u64)
        .map(|j| ((j * 31 + k * 17 + (j >> 8)) % 251) as u8)
        .collect()
}

pub const LARGE_SIZES: [usize; 4] = [4_000, 5_000, 70_000, 300_000];

/// redb 2's encoding of a variable-width tuple.
pub fn v2_tuple(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in &parts[..parts.len() - 1] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// One table of `v2-tables.redb`: its entries are raw v2 encodings, in key order.
pub struct ExpectedTable {
    pub name: &'static str,
    pub key_type: &'static str,
    pub value_type: &'static str,
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

fn table(
    name: &'static str,
    key_type: &'static str,
    value_type: &'static str,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
) -> ExpectedTable {
    ExpectedTable {
        name,
        key_type,
        value_type,
        entries,
    }
}

/// `v2-tables.redb`'s tables, in name order.
pub fn tables_expected() -> Vec<ExpectedTable> {
    let mut out = Vec::new();
    // In name order, as redb's table tree keeps them.
    let mut blobs: Vec<(Vec<u8>, Vec<u8>)> = (0..200u64)
        .map(|k| (vec![k as u8, (k * 7) as u8], Vec::new()))
        .collect();
    blobs.sort();
    out.push(table("blobs", "&[u8]", "()", blobs));
    out.push(table("empty", "u64", "u64", Vec::new()));
    out.push(table(
        "large",
        "u64",
        "&[u8]",
        LARGE_SIZES
            .iter()
            .enumerate()
            .map(|(k, &size)| {
                (
                    (k as u64).to_le_bytes().to_vec(),
                    large_value(k as u64, size),
                )
            })
            .collect(),
    ));
    out.push(table(
        "meta",
        "&str",
        "u64",
        vec![(b"format_version".to_vec(), 1u64.to_le_bytes().to_vec())],
    ));
    out.push(table(
        "names",
        "&str",
        "u64",
        (0..300u64)
            .map(|k| {
                (
                    format!("key-{k:04}").into_bytes(),
                    (k * k).to_le_bytes().to_vec(),
                )
            })
            .collect(),
    ));
    out.push(table(
        "numbers",
        "u64",
        "&[u8]",
        (0..5000u64)
            .map(|k| (k.to_le_bytes().to_vec(), number_value(k)))
            .collect(),
    ));
    // (&str, &str) compares element by element: bucket, then key.
    let mut objects: Vec<((String, String), Vec<u8>)> = (0..400u64)
        .map(|k| {
            (
                (format!("b{}", k % 3), format!("dir/{k:03}/obj")),
                format!("object {k}").into_bytes(),
            )
        })
        .collect();
    objects.push(((String::new(), String::new()), b"empty".to_vec()));
    objects.push((("b1".to_string(), "é ü".to_string()), b"utf8".to_vec()));
    objects.sort();
    out.push(table(
        "objects",
        "(&str,&str)",
        "&[u8]",
        objects
            .into_iter()
            .map(|((bucket, key), value)| (v2_tuple(&[bucket.as_bytes(), key.as_bytes()]), value))
            .collect(),
    ));
    out.push(table(
        "pairs",
        "(u64,u64)",
        "&[u8]",
        (0..500u64)
            .map(|k| {
                let mut key = (k / 10).to_le_bytes().to_vec();
                key.extend_from_slice(&(k % 10).to_le_bytes());
                (key, format!("p{k}").into_bytes())
            })
            .collect(),
    ));
    let mut parts: Vec<((String, u32), Vec<u8>)> = (0..300u32)
        .map(|k| {
            (
                (format!("upload-{}", k % 4), k),
                vec![k as u8; (k % 50) as usize],
            )
        })
        .collect();
    parts.sort();
    out.push(table(
        "parts",
        "(&str,u32)",
        "&[u8]",
        parts
            .into_iter()
            .map(|((upload, k), value)| (v2_tuple(&[upload.as_bytes(), &k.to_le_bytes()]), value))
            .collect(),
    ));
    out.push(table(
        "roots",
        "[u8;32]",
        "&[u8]",
        (0..50u64)
            .map(|k| (vec![k as u8; 32], k.to_le_bytes().to_vec()))
            .collect(),
    ));
    out
}

/// `v2-edited.redb`'s `numbers` (u64 → &[u8]) after its deletes and overwrites.
pub fn edited_numbers() -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = (0..3000u64)
        .filter(|k| k % 3 != 0)
        .map(|k| {
            let value = if k % 5 == 0 {
                format!("second-{k}").repeat(3)
            } else {
                format!("first-{k}")
            };
            (k, value.into_bytes())
        })
        .collect();
    out.extend((3000..3100u64).map(|k| (k, format!("late-{k}").into_bytes())));
    out
}

/// `v2-edited.redb`'s `names` (&str → u64).
pub fn edited_names() -> Vec<(String, u64)> {
    (0..100u64)
        .filter(|k| k % 2 == 0)
        .map(|k| (format!("name-{k:03}"), if k == 0 { 1000 } else { k }))
        .collect()
}

/// `v2-crashed.redb`'s `names` (&str → u64): the second of its two commits.
pub fn crashed_names() -> Vec<(String, u64)> {
    (0..50u64)
        .map(|k| (format!("crash-{k:02}"), k + 100))
        .collect()
}
