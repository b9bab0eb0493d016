//! End to end against a real `zerog node --dev` process: the CLI round trip, the JSON-RPC
//! surface, and every kind of bad input getting a clear error that changes nothing.

mod common;

use common::{NodeProcess, Rpc, cli, cli_fails, random_bytes, segment_json};
use merkle::file::FileTree;
use serde_json::{Value, json};
use types::{SEGMENT_BYTES, SegmentIndex};

fn submit(rpc: &Rpc, tree: &FileTree) -> u64 {
    let receipt = rpc.call(
        "zerog_submit",
        json!([{ "length": tree.size_bytes(), "tags": "0x", "nodes": tree.nodes() }]),
    );
    let tx_seq = receipt["txSeq"].as_u64().expect("txSeq");
    rpc.wait_indexed(tx_seq);
    tx_seq
}

#[test]
fn cli_round_trips_files_of_many_sizes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(&dir.path().join("node"));
    let rpc_flag = ["--rpc", node.url.as_str()];
    for (seed, size) in [
        (1u64, 1usize),
        (2, 255),
        (3, 256 * 1024),
        (4, 256 * 1024 + 1),
        (5, 3 * 1024 * 1024 + 17),
    ] {
        let data = random_bytes(seed, size);
        let input = dir.path().join(format!("in-{size}"));
        std::fs::write(&input, &data).expect("write input");
        let out = cli(&[
            &["upload", "--quiet", input.to_str().expect("utf-8")][..],
            &rpc_flag,
        ]
        .concat());
        let root = out
            .lines()
            .find_map(|line| line.strip_prefix("root "))
            .expect("upload prints the root")
            .to_string();
        assert_eq!(
            root,
            FileTree::from_bytes(&data).expect("tree").root().to_hex()
        );
        let output = dir.path().join(format!("out-{size}"));
        cli(&[
            &[
                "download",
                "--quiet",
                &root,
                "-o",
                output.to_str().expect("utf-8"),
            ][..],
            &rpc_flag,
        ]
        .concat());
        assert_eq!(
            std::fs::read(&output).expect("read output"),
            data,
            "size {size} round trip"
        );
        let info = cli(&[&["info", &root][..], &rpc_flag].concat());
        assert!(info.contains("\"finalized\": true"), "{info}");
        // A second upload of the same bytes finds the finalized file and writes nothing.
        let again = cli(&[
            &["upload", "--quiet", input.to_str().expect("utf-8")][..],
            &rpc_flag,
        ]
        .concat());
        assert!(again.contains(&root));
    }
    let status = cli(&[&["status"][..], &rpc_flag].concat());
    assert!(status.contains("\"nextTxSeq\": 5"), "{status}");

    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").expect("write");
    let error = cli_fails(&[&["upload", empty.to_str().expect("utf-8")][..], &rpc_flag].concat());
    assert!(error.contains("is empty"), "{error}");
    let small = dir.path().join("in-1");
    let error = cli_fails(
        &[
            &["upload", small.to_str().expect("utf-8"), "--key", "0xzz"][..],
            &rpc_flag,
        ]
        .concat(),
    );
    assert!(error.contains("--key"), "{error}");
    let unfunded = format!("0x{}", "01".repeat(32));
    let fresh = dir.path().join("fresh");
    std::fs::write(&fresh, random_bytes(99, 5000)).expect("write");
    let error = cli_fails(
        &[
            &["upload", fresh.to_str().expect("utf-8"), "--key", &unfunded][..],
            &rpc_flag,
        ]
        .concat(),
    );
    assert!(error.contains("insufficient funds"), "{error}");
    let error = cli_fails(
        &[
            &[
                "download",
                &format!("0x{}", "11".repeat(32)),
                "-o",
                "/dev/null",
            ][..],
            &rpc_flag,
        ]
        .concat(),
    );
    assert!(error.contains("no file with root"), "{error}");
    let rpc = node.rpc();
    assert!(rpc.metric("zerog_ingest_segments_total") >= 17.0);
    node.stop();
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(&dir.path().join("node"));
    let rpc = node.rpc();
    let data = random_bytes(7, 2 * SEGMENT_BYTES + 1000);
    let tree = FileTree::from_bytes(&data).expect("tree");
    let tx_seq = submit(&rpc, &tree);
    let upload =
        |segment: Value| rpc.error_kind("zgs_uploadSegmentByTxSeq", json!([segment, tx_seq]));

    let mut wrong_proof = segment_json(&tree, &data, 0);
    wrong_proof["proof"] =
        serde_json::to_value(tree.proof(SegmentIndex(1)).expect("proof")).expect("json");
    assert_eq!(upload(wrong_proof), "bad_proof");

    let mut wrong_root = segment_json(&tree, &data, 0);
    wrong_root["root"] = json!(format!("0x{}", "22".repeat(32)));
    assert_eq!(upload(wrong_root), "root_mismatch");

    let mut out_of_range = segment_json(&tree, &data, 0);
    out_of_range["index"] = json!(3);
    assert_eq!(upload(out_of_range), "segment_out_of_range");

    let mut truncated = segment_json(&tree, &data, 0);
    truncated["data"] = json!(base64_simd::STANDARD.encode_to_string(&data[..SEGMENT_BYTES - 256]));
    assert_eq!(upload(truncated), "data_length");

    let mut oversized = segment_json(&tree, &data, 2);
    oversized["data"] = json!(base64_simd::STANDARD.encode_to_string(vec![1u8; 2048]));
    assert_eq!(upload(oversized), "data_length");

    // Non-zero bytes in the zero-filled tail of the last chunk: the root cannot match.
    let mut tail = segment_json(&tree, &data, 2);
    let mut bytes = base64_simd::STANDARD
        .decode_to_vec(tail["data"].as_str().expect("data"))
        .expect("base64");
    *bytes.last_mut().expect("non-empty") = 1;
    tail["data"] = json!(base64_simd::STANDARD.encode_to_string(&bytes));
    assert_eq!(upload(tail), "bad_proof");

    let mut not_base64 = segment_json(&tree, &data, 0);
    not_base64["data"] = json!("***");
    assert_eq!(upload(not_base64), "bad_base64");

    assert_eq!(
        rpc.error_kind(
            "zgs_uploadSegmentByTxSeq",
            json!([segment_json(&tree, &data, 0), 99])
        ),
        "unknown_file"
    );
    assert_eq!(
        rpc.error_kind("zgs_uploadSegment", json!([{"root": "0x12"}])),
        "invalid_params"
    );
    assert_eq!(
        rpc.error_kind("zgs_noSuchMethod", json!([])),
        "method_not_found"
    );
    let twice = json!([
        [segment_json(&tree, &data, 0), segment_json(&tree, &data, 0)],
        tx_seq
    ]);
    assert_eq!(
        rpc.error_kind("zgs_uploadSegmentsByTxSeq", twice),
        "duplicate_segment"
    );

    let malformed = rpc.post(b"{\"jsonrpc\":\"2.0\",".to_vec());
    assert_eq!(malformed["error"]["code"], json!(-32700));
    let huge = rpc.post(vec![b' '; 49 * 1024 * 1024]);
    assert_eq!(huge["error"]["data"]["kind"], json!("body_too_large"));

    // Nothing above was written.
    assert_eq!(rpc.metric("zerog_ingest_segments_total"), 0.0);
    let info = rpc.call("zgs_getFileInfoByTxSeq", json!([tx_seq]));
    assert_eq!(info["uploadedSegNum"], json!(0));

    // The good segments go in; a repeat is a duplicate; once complete, the file is final.
    for index in 0..3 {
        rpc.call(
            "zgs_uploadSegmentByTxSeq",
            json!([segment_json(&tree, &data, index), tx_seq]),
        );
    }
    let info = rpc.call("zgs_getFileInfoByTxSeq", json!([tx_seq]));
    assert_eq!(info["finalized"], json!(true));
    assert_eq!(upload(segment_json(&tree, &data, 0)), "already_finalized");
    assert_eq!(rpc.metric("zerog_ingest_segments_total"), 3.0);
    assert!(rpc.metric("zerog_rpc_errors_total{kind=\"bad_proof\"}") >= 2.0);

    // Downloads: with proof, by chunk range, and out of range.
    let segment = rpc.call("zgs_downloadSegmentWithProof", json!([tree.root(), 1]));
    let bytes = base64_simd::STANDARD
        .decode_to_vec(segment["data"].as_str().expect("data"))
        .expect("base64");
    assert_eq!(bytes, &data[SEGMENT_BYTES..2 * SEGMENT_BYTES]);
    let proof = serde_json::from_value(segment["proof"].clone()).expect("proof");
    merkle::file::verify_segment(
        &tree.root(),
        data.len() as u64,
        SegmentIndex(1),
        &bytes,
        &proof,
    )
    .expect("verifies");
    let chunks = rpc.call("zgs_downloadSegment", json!([tree.root(), 1020, 1030]));
    assert_eq!(
        base64_simd::STANDARD
            .decode_to_vec(chunks.as_str().expect("base64"))
            .expect("base64"),
        &data[1020 * 256..1030 * 256]
    );
    assert_eq!(
        rpc.error_kind("zgs_downloadSegmentWithProof", json!([tree.root(), 3])),
        "segment_out_of_range"
    );
    assert_eq!(
        rpc.error_kind("zgs_downloadSegment", json!([tree.root(), 5, 5])),
        "chunk_range"
    );
    assert_eq!(
        rpc.call("zgs_checkFileFinalized", json!([tx_seq])),
        json!(true)
    );
    assert_eq!(
        rpc.call("zgs_checkFileFinalized", json!([tree.root()])),
        json!(true)
    );
    assert_eq!(
        rpc.call(
            "zgs_getFileInfo",
            json!([format!("0x{}", "33".repeat(32)), true])
        ),
        Value::Null
    );
    // Flow proofs: the identifier, data sectors and the padding after the file, each checked
    // against the flow root the node reports.
    let context = rpc.call("zgs_getFlowContext", json!([]));
    let flow_root: types::H256 = serde_json::from_value(context[0].clone()).expect("root");
    let flow_length = context[1].as_u64().expect("length");
    let start = info["tx"]["startEntryIndex"].as_u64().expect("start");
    let chunk_leaf = |chunk: u64| {
        let mut bytes = data[(chunk as usize * 256).min(data.len())..].to_vec();
        bytes.truncate(256);
        bytes.resize(256, 0);
        merkle::keccak::keccak256(&bytes)
    };
    let mut cases = vec![(0, merkle::flow::IDENTIFIER)];
    for chunk in [0u64, 5, 1023, 1024, 2047, 2051] {
        cases.push((start + chunk, chunk_leaf(chunk)));
    }
    cases.push((flow_length - 1, merkle::file::zero_hash(0)));
    for (sector, leaf) in cases {
        let proof: merkle::file::Proof =
            serde_json::from_value(rpc.call("zgs_getSectorProof", json!([sector, flow_root])))
                .expect("proof");
        assert!(
            merkle::flow::verify_flow_proof(
                &flow_root,
                types::SectorIndex(flow_length),
                types::SectorIndex(sector),
                &leaf,
                &proof
            ),
            "sector {sector} proof does not verify"
        );
    }
    assert_eq!(
        rpc.error_kind("zgs_getSectorProof", json!([flow_length, flow_root])),
        "sector_out_of_range"
    );
    assert_eq!(
        rpc.error_kind(
            "zgs_getSectorProof",
            json!([1, format!("0x{}", "44".repeat(32))])
        ),
        "unknown_flow_root"
    );
    assert_eq!(
        rpc.call("zgs_getShardConfig", json!([])),
        json!({"numShard": 1, "shardId": 0})
    );
    node.stop();
}
