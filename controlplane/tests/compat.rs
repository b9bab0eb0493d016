//! Data-folder compatibility: today's `zerog` serves a whole `node --dev` data folder written
//! by the release of 2026-12 (`fixtures/data-folder-2026-12.tar.gz`, described in
//! `fixtures/README.md`): its files, chain, S3 objects and DA blob, before and after it takes a
//! new write and a restart. A store that cannot be opened, or a file that is lost, fails here.
//!
//! The node index and the gateway store were written by redb 2 (file format v2): the first
//! start upgrades them, once, with a log line each; the second upgrades nothing. The gateway
//! store is also of the gateway's format 1, whose buckets had no owner: the first start gives
//! them the first configured key (with a log line), and the bucket answers its ACL so.
//!
//! The node listens on 127.0.0.1:15678 because the fixture's chain records that endpoint for
//! its DA node, which is where `zerog da get` looks for the blob's shards.

mod common;

use common::{Rpc, cli};
use kvstore::redb::ReadableDatabase;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const RPC_ADDRESS: &str = "127.0.0.1:15678";
const RPC_URL: &str = "http://127.0.0.1:15678";
const BUCKET: &str = "fixture";
const PRESIGN_VALIDITY: Duration = Duration::from_secs(600);

/// A fixture file as `fixtures/README.md` states it: what it is, its bytes, its root.
struct FixtureFile {
    name: &'static str,
    index: u64,
    size: usize,
    root: &'static str,
}

const FILES: [FixtureFile; 3] = [
    FixtureFile {
        name: "file-0.bin",
        index: 0,
        size: 1,
        root: "0xd397b3b043d87fcd6fad1291ff0bfd16401c274896d8c63a923727f077b8e0b5",
    },
    FixtureFile {
        name: "file-1.bin",
        index: 1,
        size: 5_000,
        root: "0xc0a5d1ea4ee08a562a50e593424bf534b5de6a8a0fe4a4e10924ff0f410c7527",
    },
    FixtureFile {
        name: "file-2.bin",
        index: 2,
        size: 300_000,
        root: "0x7d78cbedd14784878dcaf4e5748c3ebbc02364726a5588bf1bf03ffa1be07fab",
    },
];
const GREETING: &[u8] = b"hello from the compatibility fixture\n";
const GREETING_ETAG: &str = "\"2ee3f53f914f780ef4e7f0776a073379\"";
const OBJECT_B_KEY: &str = "dir/object b.bin";
const OBJECT_B_ETAG: &str = "\"38b1d77d6ddfa1a2273bd0f4c79412ee\"";
const BLOB_ID: &str = "0x0d50c0d1cdd2b74e5f841ad389cb4e81698365a1fd5c63cd209ea7bcff1ad4b3";
const CHAIN_HEAD: u64 = 7;
/// `kvstore`'s log line for a redb file upgraded from file format v2.
const UPGRADE_LINE: &str = "upgraded a redb file from file format v2 to v3";
/// `kvstore`'s log line for the node index's format version 0 → 1.
const INDEX_FORMAT_LINE: &str = "upgraded the node index format";
/// `kvstore`'s log line for the gateway store's format version 1 → 2 (buckets gain an owner).
const GATEWAY_FORMAT_LINE: &str = "upgraded the gateway store format";

/// Byte `j` of fixture file `i`: `(j·(2i+1) + (j >> 8)·7 + 13·i) mod 256`.
fn fixture_bytes(index: u64, size: usize) -> Vec<u8> {
    (0..size as u64)
        .map(|j| ((j * (2 * index + 1) + (j >> 8) * 7 + 13 * index) % 256) as u8)
        .collect()
}

/// A `zerog node` on the fixture's folder, with the fixture's flags; its log goes to a file.
struct FixtureNode {
    /// Killed when dropped.
    process: harness::Process,
    s3_endpoint: String,
    keys: harness::S3Keys,
}

impl FixtureNode {
    fn start(data_dir: &Path, log: &Path) -> FixtureNode {
        let process = common::zerog()
            .node(data_dir)
            .args([
                "--dev",
                "--da",
                "--da-retention-secs",
                "3153600000",
                "--shards",
                "2",
                "--extent-mib",
                "4",
                "--rpc",
                RPC_ADDRESS,
                "--s3",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info")
            .stderr_to(log)
            .start()
            .expect("the node starts on the fixture's folder");
        let s3_endpoint = process.s3_url().expect("the node prints its S3 endpoint");
        assert!(
            s3_endpoint.starts_with("http://"),
            "the S3 gateway did not start on the fixture's store: {s3_endpoint}"
        );
        // `access KEY secret SECRET`
        let keys = process.s3_keys().expect("the node prints its S3 keys");
        FixtureNode {
            process,
            s3_endpoint,
            keys,
        }
    }

    /// SIGTERM and wait for a clean exit (the error quotes the end of the log).
    fn stop(self) {
        self.process.stop().expect("a clean exit");
    }

    fn s3(&self) -> S3 {
        S3 {
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            bucket: Bucket::new(
                self.s3_endpoint.parse().expect("the S3 endpoint is a URL"),
                UrlStyle::Path,
                BUCKET,
                "us-east-1",
            )
            .expect("bucket"),
            credentials: Credentials::new(self.keys.access.clone(), self.keys.secret.clone()),
        }
    }
}

/// SigV4-presigned requests to the dev gateway.
struct S3 {
    http: reqwest::blocking::Client,
    bucket: Bucket,
    credentials: Credentials,
}

impl S3 {
    /// The body and ETag of `key`.
    fn get(&self, key: &str) -> (Vec<u8>, String) {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(PRESIGN_VALIDITY);
        let response = self.http.get(url.as_str()).send().expect("GetObject");
        assert!(
            response.status().is_success(),
            "GetObject {key}: {}",
            response.status()
        );
        let etag = response
            .headers()
            .get("etag")
            .expect("GetObject answers an ETag")
            .to_str()
            .expect("an ASCII ETag")
            .to_string();
        (response.bytes().expect("body").to_vec(), etag)
    }

    /// The bucket's ACL document (GetBucketAcl, a GET of the bucket with `acl`).
    fn bucket_acl(&self) -> String {
        let mut action = self.bucket.get_object(Some(&self.credentials), "");
        action.query_mut().insert("acl", "");
        let url = action.sign(PRESIGN_VALIDITY);
        let response = self.http.get(url.as_str()).send().expect("GetBucketAcl");
        assert!(
            response.status().is_success(),
            "GetBucketAcl: {}",
            response.status()
        );
        response.text().expect("body")
    }

    /// The keys ListObjectsV2 returns for the bucket (a GET of the bucket with `list-type=2`).
    fn list(&self) -> Vec<String> {
        let mut action = self.bucket.get_object(Some(&self.credentials), "");
        action.query_mut().insert("list-type", "2");
        let url = action.sign(PRESIGN_VALIDITY);
        let response = self.http.get(url.as_str()).send().expect("ListObjectsV2");
        assert!(
            response.status().is_success(),
            "ListObjectsV2: {}",
            response.status()
        );
        let body = response.text().expect("body");
        body.split("<Key>")
            .skip(1)
            .map(|rest| {
                rest.split("</Key>")
                    .next()
                    .expect("split yields at least one part")
                    .to_string()
            })
            .collect()
    }
}

/// Everything a user relies on in the fixture, and the hashes of blocks 1..=7.
fn check_served(dir: &Path, node: &FixtureNode, extra: Option<(&str, &[u8])>) -> Vec<Value> {
    let rpc = Rpc::new(RPC_URL);
    let rpc_flag = ["--rpc", RPC_URL];
    // Files: finalized, and a download that verifies every proof gives exactly their bytes.
    let mut files: Vec<(&str, String, Vec<u8>)> = FILES
        .iter()
        .map(|file| {
            (
                file.name,
                file.root.to_string(),
                fixture_bytes(file.index, file.size),
            )
        })
        .collect();
    if let Some((root, bytes)) = extra {
        files.push(("the new file", root.to_string(), bytes.to_vec()));
    }
    for (n, (name, root, bytes)) in files.iter().enumerate() {
        let info = rpc.call("zgs_getFileInfo", json!([root, false]));
        assert_eq!(
            info["finalized"],
            json!(true),
            "file {name} ({root}): {info}"
        );
        let out = dir.join(format!("download-{n}"));
        let _ = std::fs::remove_file(&out);
        cli(&[
            &[
                "download",
                "--quiet",
                root,
                "-o",
                out.to_str().expect("utf-8"),
            ][..],
            &rpc_flag,
        ]
        .concat());
        assert!(
            std::fs::read(&out).expect("downloaded") == *bytes,
            "file {name} ({root}) downloads other bytes"
        );
    }
    // The chain: replayed to its head at least, accounts funded.
    let head = rpc.call("eth_blockNumber", json!([]));
    let head = u64::from_str_radix(
        head.as_str()
            .expect("a hex quantity")
            .trim_start_matches("0x"),
        16,
    )
    .expect("a hex quantity");
    assert!(head >= CHAIN_HEAD, "chain head {head} < {CHAIN_HEAD}");
    for account in chain_lite::DEV_ACCOUNTS {
        let address = format!("0x{}", hex::encode(account.address));
        let balance = rpc.call("eth_getBalance", json!([address, "latest"]));
        let balance = balance.as_str().expect("a hex quantity");
        assert!(
            !balance
                .trim_start_matches("0x")
                .trim_start_matches('0')
                .is_empty(),
            "dev account {address} has balance {balance}"
        );
    }
    let hashes: Vec<Value> = (1..=CHAIN_HEAD)
        .map(|number| {
            let block = rpc.call(
                "eth_getBlockByNumber",
                json!([format!("0x{number:x}"), false]),
            );
            assert!(block["hash"].is_string(), "block {number}: {block}");
            block["hash"].clone()
        })
        .collect();
    // S3: both objects with their bytes and ETags, and listed.
    let s3 = node.s3();
    let (body, etag) = s3.get("greeting.txt");
    assert_eq!(body, GREETING);
    assert_eq!(etag, GREETING_ETAG);
    let (body, etag) = s3.get(OBJECT_B_KEY);
    assert!(
        body == fixture_bytes(3, 70_000),
        "{OBJECT_B_KEY} has other bytes"
    );
    assert_eq!(etag, OBJECT_B_ETAG);
    let keys = s3.list();
    assert_eq!(
        keys,
        vec![OBJECT_B_KEY.to_string(), "greeting.txt".to_string()]
    );
    // The bucket, written before buckets had owners, is the first configured key's (the dev
    // key) and private: its owner's FULL_CONTROL and nothing else.
    let acl = s3.bucket_acl();
    let owner = format!(
        "<Owner><DisplayName>{0}</DisplayName><ID>{0}</ID></Owner>",
        node.keys.access
    );
    assert!(acl.contains(&owner), "{acl}");
    assert_eq!(acl.matches("<Grant>").count(), 1, "{acl}");
    assert!(
        acl.contains(&format!("<ID>{}</ID>", node.keys.access))
            && acl.contains("<Permission>FULL_CONTROL</Permission>"),
        "{acl}"
    );
    // DA: the blob, retrieved from its holders (this node) and decoded.
    let out = dir.join("blob.out");
    let _ = std::fs::remove_file(&out);
    cli(&[
        "da",
        "get",
        "--quiet",
        BLOB_ID,
        "-o",
        out.to_str().expect("utf-8"),
        "--rpc",
        RPC_URL,
    ]);
    assert!(
        std::fs::read(&out).expect("blob written") == fixture_bytes(4, 10_000),
        "the blob decodes to other bytes"
    );
    hashes
}

#[test]
fn data_folder_of_2026_12_is_served_and_takes_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data folder");
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join("data-folder-2026-12.tar.gz");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&data)
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar xzf {} failed", archive.display());

    // The stores redb 2 wrote (file format v2) and those redb 4 wrote (v3).
    let node_index = data.join("node.redb");
    let gateway_store = data.join("gateway").join("meta.redb");
    let shard_indexes = [0, 1].map(|k| data.join(format!("shards/shard-{k}/index.redb")));
    assert_eq!(format_of(&node_index), Some(2));
    assert_eq!(format_of(&gateway_store), Some(2));
    for index in &shard_indexes {
        assert_eq!(format_of(index), Some(3));
    }

    let first_log = dir.path().join("first.log");
    let node = FixtureNode::start(&data, &first_log);
    let hashes = check_served(dir.path(), &node, None);
    // Upgraded at the first open, each with its log line; nothing left beside them.
    for store in [&node_index, &gateway_store] {
        assert_eq!(format_of(store), Some(3), "{}", store.display());
        assert!(!kvstore::upgrade_path(store).exists());
    }
    let log = std::fs::read_to_string(&first_log).expect("the first log");
    assert_eq!(
        log.matches(UPGRADE_LINE).count(),
        2,
        "one file-format upgrade per redb 2 store:\n{log}"
    );
    assert_eq!(
        log.matches(INDEX_FORMAT_LINE).count(),
        1,
        "the node index gains its format version:\n{log}"
    );
    assert_eq!(
        log.matches(GATEWAY_FORMAT_LINE).count(),
        1,
        "the gateway store's buckets gain their owner:\n{log}"
    );

    // The old folder takes a new file.
    let new_bytes = fixture_bytes(5, 12_345);
    let new_file = dir.path().join("new.bin");
    std::fs::write(&new_file, &new_bytes).expect("write the new file");
    let uploaded = cli(&[
        "upload",
        "--quiet",
        new_file.to_str().expect("utf-8"),
        "--rpc",
        RPC_URL,
    ]);
    let new_root = uploaded
        .lines()
        .find_map(|line| line.strip_prefix("root "))
        .expect("upload prints the root")
        .to_string();
    node.stop();

    // A restart on the same folder serves the old files and the new one, on the same chain,
    // and upgrades nothing again.
    let second_log = dir.path().join("second.log");
    let node = FixtureNode::start(&data, &second_log);
    let again = check_served(dir.path(), &node, Some((&new_root, &new_bytes)));
    assert_eq!(again, hashes, "blocks 1..=7 changed across the restart");
    node.stop();
    let log = std::fs::read_to_string(&second_log).expect("the second log");
    assert!(
        !log.contains(UPGRADE_LINE)
            && !log.contains(INDEX_FORMAT_LINE)
            && !log.contains(GATEWAY_FORMAT_LINE),
        "the second start upgraded again:\n{log}"
    );
    for store in [&node_index, &gateway_store]
        .into_iter()
        .chain(&shard_indexes)
    {
        assert_eq!(format_of(store), Some(3), "{}", store.display());
    }
    let index = kvstore::redb::Database::open(&node_index).expect("the node index opens");
    let txn = index.begin_read().expect("read");
    let meta = txn.open_table(kvstore::META).expect("meta");
    assert_eq!(
        meta.get(kvstore::FORMAT_VERSION_KEY)
            .expect("read")
            .map(|value| value.value()),
        Some(1),
        "the node index records format version 1"
    );
}

/// The redb file format of the file at `path` (from its header).
fn format_of(path: &Path) -> Option<u8> {
    kvstore::file_format_version(path).expect("the header reads")
}
