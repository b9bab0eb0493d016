//! A storage node that follows a remote chain (`--chain-rpc`): it has no embedded chain and
//! learns files only from the Flow contract's Submit logs, read over HTTP `eth_getLogs` from
//! another node's Ethereum facade, exactly as it would from any EVM chain. Files submitted on
//! the chain are indexed, uploaded to the follower and downloaded verified; the follower's
//! rebuilt flow equals the chain's; progress survives kill -9; bad setups fail clearly.

mod common;

use common::{
    NodeProcess, Rpc, cli, cli_fails, random_bytes, segment_json, submit_on_chain, wait_finalized,
};
use merkle::file::FileTree;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn upload_all(node: &Rpc, tree: &FileTree, data: &[u8], tx_seq: u64) {
    let layout = tree.layout();
    let segments: Vec<Value> = (0..layout.data_segments)
        .map(|index| segment_json(tree, data, index))
        .collect();
    for batch in segments.chunks(16) {
        node.call("zgs_uploadSegmentsByTxSeq", json!([batch, tx_seq]));
    }
}

/// Waits until the follower's flow has caught up with the chain's, and returns it.
fn wait_same_flow(chain: &Rpc, follower: &Rpc) -> Value {
    let expected = chain.call("zgs_getFlowContext", json!([]));
    let started = Instant::now();
    loop {
        let seen = follower.call("zgs_getFlowContext", json!([]));
        if seen == expected {
            return seen;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "follower flow {seen} never reached the chain's {expected}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn download_and_compare(url: &str, dir: &std::path::Path, root: &str, data: &[u8]) {
    let output = dir.join(format!("download-{root}"));
    cli(&[
        "download",
        "--quiet",
        root,
        "-o",
        output.to_str().expect("utf-8"),
        "--rpc",
        url,
    ]);
    assert_eq!(std::fs::read(&output).expect("downloaded"), data);
}

#[test]
fn a_follower_node_indexes_stores_and_serves_files_of_a_remote_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain_node = NodeProcess::start(&dir.path().join("chain"));
    let chain = chain_node.rpc();
    let follower_dir = dir.path().join("follower");
    let follower_node = NodeProcess::start_follower(&follower_dir, &chain_node.url);
    let follower = follower_node.rpc();

    // The follower identifies the remote chain and refuses chain calls of its own.
    let status = follower.call("zgs_getStatus", json!([]));
    assert_eq!(status["networkIdentity"]["chainId"], json!(31337));
    assert_eq!(
        status["networkIdentity"]["flowAddress"],
        chain.call("zgs_getStatus", json!([]))["networkIdentity"]["flowAddress"]
    );
    assert_eq!(
        follower.error_kind("eth_chainId", json!([])),
        "no_embedded_chain"
    );
    let files: Vec<(Vec<u8>, FileTree)> = [(11u64, 1usize), (12, 300 * 1024), (13, 2 << 20)]
        .into_iter()
        .map(|(seed, size)| {
            let data = random_bytes(seed, size + 5);
            let tree = FileTree::from_bytes(&data).expect("tree");
            (data, tree)
        })
        .collect();
    assert_eq!(
        follower.error_kind(
            "zerog_submit",
            json!([{ "length": files[0].1.size_bytes(), "tags": "0x", "nodes": files[0].1.nodes() }])
        ),
        "no_embedded_chain"
    );

    // Files submitted on the chain reach the follower through its Submit logs.
    let mut seqs = Vec::new();
    for (data, tree) in &files {
        let tx_seq = submit_on_chain(&chain, tree);
        let info = follower.wait_indexed(tx_seq);
        assert_eq!(info["tx"]["dataMerkleRoot"], json!(tree.root()));
        assert_eq!(info["finalized"], json!(false));
        upload_all(&follower, tree, data, tx_seq);
        wait_finalized(&follower, tx_seq);
        seqs.push(tx_seq);
    }
    let context = wait_same_flow(&chain, &follower);
    for (data, tree) in &files {
        download_and_compare(&follower_node.url, dir.path(), &tree.root().to_hex(), data);
    }
    // A sector proof from the follower verifies against the chain's own flow root.
    let flow_root: types::H256 = serde_json::from_value(context[0].clone()).expect("root");
    let flow_length = context[1].as_u64().expect("length");
    let info = follower.call("zgs_getFileInfoByTxSeq", json!([seqs[2]]));
    let start = info["tx"]["startEntryIndex"].as_u64().expect("start");
    let proof: merkle::file::Proof =
        serde_json::from_value(follower.call("zgs_getSectorProof", json!([start + 3, flow_root])))
            .expect("proof");
    let leaf = merkle::keccak::keccak256(&files[2].0[3 * 256..4 * 256]);
    assert!(merkle::flow::verify_flow_proof(
        &flow_root,
        types::SectorIndex(flow_length),
        types::SectorIndex(start + 3),
        &leaf,
        &proof
    ));

    // kill -9: the follower resumes from its persisted progress, rebuilds the flow from the
    // files it synced, keeps what it stored and picks up what the chain announced meanwhile.
    follower_node.kill9();
    let later = random_bytes(14, 700 * 1024);
    let later_tree = FileTree::from_bytes(&later).expect("tree");
    let later_seq = submit_on_chain(&chain, &later_tree);
    let follower_node = NodeProcess::start_follower(&follower_dir, &chain_node.url);
    let follower = follower_node.rpc();
    for tx_seq in &seqs {
        assert_eq!(
            follower.call("zgs_checkFileFinalized", json!([tx_seq])),
            json!(true)
        );
    }
    follower.wait_indexed(later_seq);
    upload_all(&follower, &later_tree, &later, later_seq);
    wait_finalized(&follower, later_seq);
    wait_same_flow(&chain, &follower);
    download_and_compare(
        &follower_node.url,
        dir.path(),
        &later_tree.root().to_hex(),
        &later,
    );
    download_and_compare(
        &follower_node.url,
        dir.path(),
        &files[1].1.root().to_hex(),
        &files[1].0,
    );
    assert!(follower.metric("zerog_log_sync_next_block") > 0.0);
    follower_node.stop();

    // The follower's data folder belongs to the remote chain: a dev node refuses it.
    let refused = cli_fails(&[
        "node",
        "--dev",
        "--rpc",
        "127.0.0.1:0",
        "--data-dir",
        follower_dir.to_str().expect("utf-8"),
    ]);
    assert!(
        refused.contains("follows a remote chain with chain id 31337"),
        "{refused}"
    );
    chain_node.stop();
}

#[test]
fn an_unreachable_or_unsuitable_chain_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("node");
    let data_dir = data_dir.to_str().expect("utf-8");
    // Nothing listens on port 9 of loopback.
    let refused = cli_fails(&[
        "node",
        "--chain-rpc",
        "http://127.0.0.1:9",
        "--rpc",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
    ]);
    assert!(refused.contains("cannot reach the chain"), "{refused}");
    let refused = cli_fails(&["node", "--dev", "--chain-rpc", "http://127.0.0.1:9"]);
    assert!(refused.contains("cannot be used with"), "{refused}");
    let refused = cli_fails(&["node", "--data-dir", data_dir]);
    assert!(refused.contains("--chain-rpc"), "{refused}");
    let refused = cli_fails(&[
        "node",
        "--chain-rpc",
        "http://127.0.0.1:9",
        "--flow-address",
        "0x1234",
        "--data-dir",
        data_dir,
    ]);
    assert!(refused.contains("--flow-address"), "{refused}");
}

/// The official SDK against a follower: it signs the Flow submission on the chain (`--rpc`)
/// and finds the storage node through the follower's indexer methods (`--indexer`), as it would
/// with 0G's own chain and storage nodes.
#[test]
fn the_official_sdk_uploads_to_a_follower_of_the_chain() {
    common::require_node_js();
    let sdk = common::sdk_with_package("@0gfoundation/0g-ts-sdk");
    let dir = tempfile::tempdir().expect("tempdir");
    let chain_node = NodeProcess::start(&dir.path().join("chain"));
    let follower_node = NodeProcess::start_follower(&dir.path().join("follower"), &chain_node.url);
    let data = random_bytes(21, (1 << 20) + 1);
    let input = dir.path().join("sdk-file");
    std::fs::write(&input, &data).expect("write input");
    let output = std::process::Command::new("node")
        .arg(sdk.join("e2e.cjs"))
        .args(["--rpc", &chain_node.url, "--indexer", &follower_node.url])
        .args(["--storage", &follower_node.url])
        .arg("--out")
        .arg(dir.path().join("downloads"))
        .arg(&input)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("node runs sdk/e2e.cjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "sdk/e2e.cjs failed: {stdout}");
    let line: Value = serde_json::from_str(stdout.lines().next().expect("one line per file"))
        .expect("a JSON line");
    let tree = FileTree::from_bytes(&data).expect("tree");
    assert_eq!(line["root"], json!(tree.root()), "{line}");
    let download = line["download"].as_str().expect("download path");
    assert_eq!(std::fs::read(download).expect("downloaded"), data);
    let tx_seq = line["txSeq"].as_u64().expect("txSeq");
    assert_eq!(
        follower_node
            .rpc()
            .call("zgs_checkFileFinalized", json!([tx_seq])),
        json!(true)
    );
    follower_node.stop();
    chain_node.stop();
}
