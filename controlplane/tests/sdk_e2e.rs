//! The official 0G TypeScript SDK, unmodified, end to end against a real `zerog node --dev`.
//!
//! Writes files of 1 B, 256 KiB + 1 B, 10 MiB and 100 MiB (random content; the seed is printed,
//! `ZEROG_TEST_SEED` replays it), then runs `sdk/e2e.cjs` once over all of them: for each file
//! the SDK's `Indexer` (served by the node's `indexer_*` methods) picks the node, the SDK signs
//! and sends the Flow `submit` through the node's Ethereum facade, uploads the segments with
//! `zgs_uploadSegmentsByTxSeq` and waits for finality, downloads the file through the indexer,
//! and then every data segment is fetched again with its proof and checked with the SDK's own
//! `Proof` against the root (the SDK's downloader ignores its proof flag). Here we check that the
//! SDK's roots are `FileTree`'s, that the downloaded bytes are the originals, that each Flow
//! transaction has a successful receipt and that the node reports every file finalized.
//!
//! Time (2 cores, debug build): about a minute. The slowest part is the SDK hashing in
//! JavaScript (~15 MB/s): it hashes each file twice while uploading (`merkleTree`, then
//! `createSubmission`) and the proof check hashes it once more, ~20 s each pass for 100 MiB
//! together; the uploader also sleeps 1 s before each of its two polls per file.
//!
//! The SDK is pinned in `sdk/package.json`; without `sdk/node_modules` (`npm ci --prefix sdk`)
//! or without `node` on the PATH this test fails, it never skips.

mod common;

use common::{NodeProcess, random_bytes, require_node_js, sdk_with_package, test_seed};
use merkle::file::FileTree;
use serde::Deserialize;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;
use types::H256;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const SIZES: [usize; 4] = [1, 256 * KIB + 1, 10 * MIB, 100 * MIB];

/// One line of `sdk/e2e.cjs`'s output.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SdkLine {
    file: Option<String>,
    size: Option<u64>,
    root: Option<H256>,
    tx_seq: Option<u64>,
    tx_hash: Option<String>,
    download: Option<PathBuf>,
    segments: Option<u64>,
    upload_ms: Option<u64>,
    download_ms: Option<u64>,
    verify_ms: Option<u64>,
    error: Option<String>,
}

#[test]
fn official_sdk_uploads_and_downloads_through_the_indexer() {
    let sdk = sdk_with_package("@0gfoundation/0g-ts-sdk");
    require_node_js();
    let seed = test_seed();
    eprintln!("sdk e2e seed {seed}; rerun with ZEROG_TEST_SEED={seed}");

    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut files = Vec::new();
    for (i, size) in SIZES.into_iter().enumerate() {
        let data = random_bytes(seed.wrapping_add(i as u64), size);
        let path = dir.path().join(format!("file-{size}"));
        std::fs::write(&path, &data).expect("write a test file");
        let root = FileTree::from_bytes(&data).expect("non-empty file").root();
        files.push((path, data, root));
    }
    eprintln!("files written and hashed in {:?}", started.elapsed());

    let node = NodeProcess::start(&dir.path().join("node"));
    let rpc = node.rpc();
    // The indexer names this node, reachable at the URL it printed, and no file yet.
    let nodes = rpc.call("indexer_getShardedNodes", json!([]));
    assert_eq!(nodes["trusted"][0]["url"], node.url.as_str(), "{nodes}");
    assert_eq!(
        nodes["trusted"][0]["config"],
        json!({ "numShard": 1, "shardId": 0 })
    );
    assert_eq!(
        rpc.call("indexer_getFileLocations", json!([files[0].2])),
        serde_json::Value::Null
    );
    let started = Instant::now();
    let output = Command::new("node")
        .arg(sdk.join("e2e.cjs"))
        .args(["--rpc", &node.url, "--indexer", &node.url, "--out"])
        .arg(dir.path().join("downloads"))
        .args(files.iter().map(|(path, _, _)| path))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("node runs sdk/e2e.cjs");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("sdk/e2e.cjs ran {elapsed:?}:\n{stdout}");
    let lines: Vec<SdkLine> = stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("bad line from e2e.cjs ({error}): {line}"))
        })
        .collect();
    if let Some(failed) = lines.iter().find(|line| line.error.is_some()) {
        panic!(
            "the SDK failed on {:?}: {} (rerun with ZEROG_E2E_VERBOSE=1 for the SDK's log)",
            failed.file,
            failed.error.as_deref().unwrap_or_default()
        );
    }
    assert!(
        output.status.success(),
        "sdk/e2e.cjs exited with {}",
        output.status
    );
    assert_eq!(lines.len(), files.len(), "one line per file: {stdout}");

    let mut tx_seqs = Vec::new();
    for ((path, data, root), line) in files.iter().zip(&lines) {
        let name = path.display();
        assert_eq!(
            line.file.as_deref(),
            path.to_str(),
            "lines come in file order"
        );
        assert_eq!(line.size, Some(data.len() as u64), "{name}: size");
        assert_eq!(
            line.root,
            Some(*root),
            "{name}: the SDK's root is FileTree's"
        );
        let download = line.download.as_ref().expect("download path");
        let downloaded = std::fs::read(download).expect("read the SDK's download");
        assert!(
            downloaded == *data,
            "{name}: downloaded bytes differ from the original"
        );
        assert_eq!(
            line.segments,
            Some(data.len().div_ceil(types::SEGMENT_BYTES) as u64),
            "{name}: every data segment verified with its proof"
        );

        let tx_seq = line.tx_seq.expect("txSeq");
        tx_seqs.push(tx_seq);
        let tx_hash = line.tx_hash.as_deref().expect("txHash");
        let receipt = rpc.call("eth_getTransactionReceipt", json!([tx_hash]));
        assert_eq!(
            receipt["status"], "0x1",
            "{name}: Flow submit receipt {receipt}"
        );
        let info = rpc.call("zgs_getFileInfo", json!([root, false]));
        assert_eq!(info["finalized"], true, "{name}: not finalized: {info}");
        assert_eq!(info["tx"]["seq"], tx_seq, "{name}: {info}");
        assert_eq!(
            rpc.call("zgs_checkFileFinalized", json!([tx_seq])),
            true,
            "{name}: checkFileFinalized"
        );
        let locations = rpc.call("indexer_getFileLocations", json!([root]));
        assert_eq!(
            locations[0]["url"],
            node.url.as_str(),
            "{name}: {locations}"
        );
        eprintln!(
            "{:>9} B  upload {:>6} ms  download {:>5} ms  proof check {:>6} ms  tx {tx_seq}",
            data.len(),
            line.upload_ms.unwrap_or_default(),
            line.download_ms.unwrap_or_default(),
            line.verify_ms.unwrap_or_default(),
        );
    }
    tx_seqs.sort_unstable();
    tx_seqs.dedup();
    assert_eq!(tx_seqs.len(), files.len(), "one Flow submission per file");
    node.stop();
}
