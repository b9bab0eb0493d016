//! Kill -9 durability: a real node process is killed at random moments while several clients
//! upload, then restarted. Every segment it acknowledged must read back and verify against the
//! file's proof; the rest can be uploaded again, and the file then finalizes and downloads.
//!
//! Rounds: `ZEROG_CRASH_ROUNDS` (default 12); seed: `ZEROG_TEST_SEED` (printed).

mod common;

use common::{NodeProcess, Rpc, random_bytes, test_seed};
use merkle::file::FileTree;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use types::{SEGMENT_BYTES, SegmentIndex};

struct TestFile {
    data: Vec<u8>,
    tree: FileTree,
    tx_seq: u64,
}

fn segment_json(file: &TestFile, index: u64) -> Value {
    common::segment_json(&file.tree, &file.data, index)
}

/// Reads segment `index` back through the chunk-range API and verifies it with the proof the
/// client computed itself (the node serves proofs only for finalized files).
fn assert_reads_back(rpc: &Rpc, file: &TestFile, index: u64) {
    let layout = file.tree.layout();
    let start = index * 1024;
    let end = (start + 1024).min(layout.chunks);
    let answer = rpc.call(
        "zgs_downloadSegmentByTxSeq",
        json!([file.tx_seq, start, end]),
    );
    let bytes = base64_simd::STANDARD
        .decode_to_vec(answer.as_str().unwrap_or_else(|| {
            panic!("acknowledged segment {index} of tx {} is gone", file.tx_seq)
        }))
        .expect("base64");
    let proof = file.tree.proof(SegmentIndex(index)).expect("proof");
    merkle::file::verify_segment(
        &file.tree.root(),
        file.tree.size_bytes(),
        SegmentIndex(index),
        &bytes,
        &proof,
    )
    .unwrap_or_else(|error| {
        panic!(
            "segment {index} of tx {} does not verify: {error}",
            file.tx_seq
        )
    });
}

#[test]
fn acknowledged_segments_survive_kill_9() {
    let seed = test_seed();
    let rounds: usize = std::env::var("ZEROG_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    eprintln!("crash test seed {seed} ({rounds} rounds); rerun with ZEROG_TEST_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("node");
    let mut finished: Vec<TestFile> = Vec::new();

    for round in 0..rounds {
        let node = NodeProcess::start(&data_dir);
        let rpc = node.rpc();
        let size = rng.gen_range(SEGMENT_BYTES..6 * SEGMENT_BYTES * 4);
        let data = random_bytes(seed ^ round as u64, size);
        let tree = FileTree::from_bytes(&data).expect("tree");
        let receipt = rpc.call(
            "zerog_submit",
            json!([{ "length": size, "tags": "0x", "nodes": tree.nodes() }]),
        );
        let tx_seq = receipt["txSeq"].as_u64().expect("txSeq");
        rpc.wait_indexed(tx_seq);
        let file = Arc::new(TestFile { data, tree, tx_seq });
        let segments = file.tree.layout().data_segments;

        // Several clients upload one segment per call; each records what the node acknowledged.
        let next = Arc::new(AtomicU64::new(0));
        let acknowledged = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let uploaders: Vec<_> = (0..4)
            .map(|_| {
                let (file, next, acknowledged, url) = (file.clone(), next.clone(), acknowledged.clone(), node.url.clone());
                std::thread::spawn(move || {
                    let http = reqwest::blocking::Client::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        if index >= segments {
                            return;
                        }
                        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "zgs_uploadSegmentByTxSeq",
                                           "params": [segment_json(&file, index), file.tx_seq] });
                        let Ok(response) = http.post(&url).json(&body).send() else { return };
                        let Ok(answer) = response.json::<Value>() else { return };
                        assert!(answer.get("error").is_none(), "upload of segment {index} failed: {answer}");
                        acknowledged.0.lock().expect("lock").push(index);
                        acknowledged.1.notify_all();
                    }
                })
            })
            .collect();
        // Kill once a random number of segments is acknowledged: other uploads are then in
        // flight, at every stage from parsing to the shard's sync.
        let target = rng.gen_range(0..segments) as usize;
        {
            let (lock, condvar) = &*acknowledged;
            let guard = lock.lock().expect("lock");
            let (_guard, timeout) = condvar
                .wait_timeout_while(guard, Duration::from_secs(60), |acked| acked.len() < target)
                .expect("lock");
            assert!(
                !timeout.timed_out(),
                "round {round}: {target} acknowledgements never came"
            );
        }
        node.kill9();
        for uploader in uploaders {
            uploader.join().expect("uploader thread");
        }
        let acknowledged = acknowledged.0.lock().expect("lock").clone();

        let node = NodeProcess::start(&data_dir);
        let rpc = node.rpc();
        for &index in &acknowledged {
            assert_reads_back(&rpc, &file, index);
        }
        // Earlier rounds' files are still complete and readable.
        for old in &finished {
            assert_eq!(
                rpc.call("zgs_checkFileFinalized", json!([old.tx_seq])),
                json!(true)
            );
            assert_reads_back(&rpc, old, old.tree.layout().data_segments - 1);
        }
        // What was not acknowledged can be uploaded again (it may have landed before the kill).
        for index in 0..segments {
            if acknowledged.contains(&index) {
                continue;
            }
            let answer = rpc.raw(
                "zgs_uploadSegmentByTxSeq",
                json!([segment_json(&file, index), tx_seq]),
            );
            if let Some(error) = answer.get("error") {
                // Stored before the kill without an acknowledgement; "finalized" once every
                // remaining segment was.
                let duplicate = error["data"]["kind"] == json!("duplicate_segment");
                let finalized = error["data"] == json!("already uploaded and finalized");
                assert!(duplicate || finalized, "re-upload of {index}: {error}");
            }
        }
        assert_eq!(
            rpc.call("zgs_checkFileFinalized", json!([tx_seq])),
            json!(true),
            "round {round}"
        );
        for index in 0..segments {
            let answer = rpc.call(
                "zgs_downloadSegmentWithProofByTxSeq",
                json!([tx_seq, index]),
            );
            common::verified_segment(&answer, &file.tree.root(), size as u64, index)
                .expect("served proof verifies");
        }
        eprintln!(
            "round {round}: {} of {segments} segments acknowledged before kill -9",
            acknowledged.len()
        );
        node.kill9();
        finished.push(Arc::try_unwrap(file).unwrap_or_else(|_| panic!("uploaders are joined")));
    }
}
