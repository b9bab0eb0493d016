//! Storage nodes that each hold a shard of the flow (`--shard-position ID/NUM`, 0G's sharding):
//! two followers of one chain, shards 0/2 and 1/2. Each takes only the segments of its shard
//! (refusing the others with an error that names its shard), finalizes a file once its own
//! segments are stored, and serves them with proofs that verify against the file root (kept
//! from the upload, since it never sees the other segments). The setting is recorded in the
//! data folder: a changed one is refused.

mod common;

use common::{
    NodeProcess, Rpc, cli_fails, random_bytes, segment_json, serial, submit_on_chain,
    verified_segment,
};
use merkle::file::FileTree;
use serde_json::{Value, json};
use types::ShardConfig;

/// A follower of `chain_url` that stores shard `position`.
fn shard_node(dir: &std::path::Path, chain_url: &str, position: &str) -> NodeProcess {
    NodeProcess::spawn(
        dir,
        &[
            "--chain-rpc",
            chain_url,
            "--chain-poll-ms",
            "20",
            "--shard-position",
            position,
        ],
    )
}

/// Uploads every segment of `tree` that `position` owns to `node`, one call each; the number
/// uploaded.
fn upload_owned(
    node: &Rpc,
    position: ShardConfig,
    tree: &FileTree,
    data: &[u8],
    tx_seq: u64,
    first_flow_segment: u64,
) -> u64 {
    let mut uploaded = 0;
    for index in 0..tree.layout().data_segments {
        if (first_flow_segment + index) % position.num_shard != position.shard_id {
            continue;
        }
        node.call(
            "zgs_uploadSegmentsByTxSeq",
            json!([[segment_json(tree, data, index)], tx_seq]),
        );
        uploaded += 1;
    }
    uploaded
}

#[test]
fn two_nodes_of_half_the_flow_each_store_and_prove_their_own_segments() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let chain_node = NodeProcess::start(&dir.path().join("chain"));
    let chain = chain_node.rpc();
    let halves = ["0/2", "1/2"].map(|position| {
        let node = shard_node(
            &dir.path().join(position.replace('/', "-of-")),
            &chain_node.url,
            position,
        );
        (position.parse::<ShardConfig>().expect("valid"), node)
    });
    for (position, node) in &halves {
        assert_eq!(
            node.rpc().call("zgs_getShardConfig", json!([])),
            json!({ "numShard": 2, "shardId": position.shard_id }),
            "zgs_getShardConfig says which shard the node stores"
        );
    }

    // 7 segments and a bit: both shards hold a part, and the last segment is partial.
    let data = random_bytes(61, 7 * types::SEGMENT_BYTES + 1000);
    let tree = FileTree::from_bytes(&data).expect("a tree");
    let tx_seq = submit_on_chain(&chain, &tree);
    let info = chain.call("zgs_getFileInfoByTxSeq", json!([tx_seq]));
    let first_flow_segment = info["tx"]["startEntryIndex"].as_u64().expect("start") / 1024;
    let mut total = 0;
    for (position, node) in &halves {
        let rpc = node.rpc();
        rpc.wait_indexed(tx_seq);
        // A segment of the other shard is refused, naming this node's shard.
        let foreign = (0..tree.layout().data_segments)
            .find(|index| (first_flow_segment + index) % 2 != position.shard_id)
            .expect("the other shard holds a segment");
        let answer = rpc.raw(
            "zgs_uploadSegmentsByTxSeq",
            json!([[segment_json(&tree, &data, foreign)], tx_seq]),
        );
        assert_eq!(
            answer["error"]["data"]["kind"],
            json!("not_in_shard"),
            "{answer}"
        );
        let message = answer["error"]["message"].as_str().expect("a message");
        assert!(
            message.contains(&format!("stores shard {position}")),
            "{message}"
        );
        // Not finalized until every owned segment is stored.
        assert_eq!(
            rpc.call("zgs_checkFileFinalized", json!([tx_seq])),
            json!(false)
        );
        total += upload_owned(&rpc, *position, &tree, &data, tx_seq, first_flow_segment);
        common::wait_finalized(&rpc, tx_seq);
        let info = rpc.call("zgs_getFileInfoByTxSeq", json!([tx_seq]));
        assert_eq!(info["finalized"], json!(true));
    }
    assert_eq!(
        total,
        tree.layout().data_segments,
        "the two halves cover the file"
    );

    // Every segment is served with a proof against the file root by the node that owns it,
    // and by no other.
    for index in 0..tree.layout().data_segments {
        let owner = ((first_flow_segment + index) % 2) as usize;
        for (shard, (_, node)) in halves.iter().enumerate() {
            let answer = node.rpc().call(
                "zgs_downloadSegmentWithProofByTxSeq",
                json!([tx_seq, index]),
            );
            if shard != owner {
                assert_eq!(
                    answer,
                    Value::Null,
                    "segment {index} is not on shard {shard}"
                );
                continue;
            }
            verified_segment(&answer, &tree.root(), data.len() as u64, index)
                .unwrap_or_else(|error| panic!("from shard {shard}: {error}"));
        }
    }

    // The position is the data folder's: another is refused, the same one restarts.
    let [(_, first), (_, second)] = halves;
    let folder = first.data_dir.clone();
    first.stop();
    let refused = cli_fails(&[
        "node",
        "--chain-rpc",
        &chain_node.url,
        "--shard-position",
        "1/2",
        "--rpc",
        "127.0.0.1:0",
        "--data-dir",
        folder.to_str().expect("utf-8"),
    ]);
    assert!(
        refused.contains("stores shard 0/2 of the flow, not --shard-position 1/2"),
        "{refused}"
    );
    let again = shard_node(&folder, &chain_node.url, "0/2");
    let rpc = again.rpc();
    rpc.wait_indexed(tx_seq);
    assert_eq!(
        rpc.call("zgs_checkFileFinalized", json!([tx_seq])),
        json!(true)
    );
    let owned = (0..tree.layout().data_segments)
        .find(|index| (first_flow_segment + index).is_multiple_of(2))
        .expect("shard 0 holds a segment");
    assert!(
        !rpc.call(
            "zgs_downloadSegmentWithProofByTxSeq",
            json!([tx_seq, owned])
        )
        .is_null(),
        "proofs survive a restart"
    );
    again.stop();
    second.stop();
    chain_node.stop();
}

/// A storage node of a network: follows `chain_url`, stores `position`, registers itself with
/// `key` in the chain's storage registry, probes and repairs often.
fn network_node(dir: &std::path::Path, chain_url: &str, position: &str, key: &str) -> NodeProcess {
    NodeProcess::spawn(
        dir,
        &[
            "--chain-rpc",
            chain_url,
            "--chain-poll-ms",
            "20",
            "--shard-position",
            position,
            "--chain-key",
            key,
            "--peer-probe-ms",
            "100",
            "--repair-interval-ms",
            "50",
            "--repair-grace-ms",
            "0",
        ],
    )
}

/// Waits (bounded) until `rpc`'s indexer lists `count` storage nodes.
fn wait_listed(rpc: &Rpc, count: usize) -> Value {
    let started = std::time::Instant::now();
    loop {
        let nodes = rpc.call("indexer_getShardedNodes", json!([]));
        if nodes["trusted"].as_array().map(Vec::len) == Some(count) {
            return nodes;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the indexer never listed {count} nodes: {nodes}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Two replicas of shard 0/2 and one of 1/2 find each other through the chain's registry; a
/// file uploaded to one replica only is pulled by the other, which then serves it with proofs;
/// every node (and the chain-only node, which lists no storage of its own) is an indexer of
/// the network.
#[test]
fn nodes_find_each_other_on_chain_and_a_replica_heals_by_pull() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let chain_node = NodeProcess::start_with(&dir.path().join("chain"), &["--chain-only"]);
    let chain = chain_node.rpc();
    let keys = chain_lite::DEV_ACCOUNTS.map(|account| account.private_key);
    let first = network_node(&dir.path().join("a"), &chain_node.url, "0/2", keys[0]);
    let replica = network_node(&dir.path().join("b"), &chain_node.url, "0/2", keys[1]);
    let other = network_node(&dir.path().join("c"), &chain_node.url, "1/2", keys[2]);

    let listed = wait_listed(&chain, 3);
    let mut urls: Vec<&str> = listed["trusted"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|node| node["url"].as_str().expect("a url"))
        .collect();
    urls.sort_unstable();
    let mut expected = [&first.url, &replica.url, &other.url].map(String::as_str);
    expected.sort_unstable();
    assert_eq!(
        urls, expected,
        "the chain-only node lists the storage nodes, not itself"
    );
    wait_listed(&replica.rpc(), 3);

    let data = random_bytes(62, 9 * types::SEGMENT_BYTES + 7);
    let tree = FileTree::from_bytes(&data).expect("a tree");
    let tx_seq = submit_on_chain(&chain, &tree);
    let info = chain.call("zgs_getFileInfoByTxSeq", json!([tx_seq]));
    let first_flow_segment = info["tx"]["startEntryIndex"].as_u64().expect("start") / 1024;
    // The client sends shard 0 to one replica only, and shard 1 to its node.
    for (node, position) in [(&first, "0/2"), (&other, "1/2")] {
        let rpc = node.rpc();
        rpc.wait_indexed(tx_seq);
        let position: ShardConfig = position.parse().expect("valid");
        upload_owned(&rpc, position, &tree, &data, tx_seq, first_flow_segment);
        common::wait_finalized(&rpc, tx_seq);
    }
    // The other replica pulls shard 0 from the first and finalizes.
    let rpc = replica.rpc();
    common::wait_finalized(&rpc, tx_seq);
    assert!(rpc.metric("zerog_repair_pulled_segments_total") >= 1.0);
    for index in 0..tree.layout().data_segments {
        if !(first_flow_segment + index).is_multiple_of(2) {
            continue;
        }
        let answer = rpc.call(
            "zgs_downloadSegmentWithProofByTxSeq",
            json!([tx_seq, index]),
        );
        verified_segment(&answer, &tree.root(), data.len() as u64, index)
            .unwrap_or_else(|error| panic!("pulled: {error}"));
    }
    // `zerog status` shows what repair did and the peers as this node sees them.
    let printed = common::cli(&["status", "--rpc", &replica.url]);
    let status: Value = serde_json::from_str(&printed).expect("status prints JSON");
    let node_status = &status["node"];
    assert_eq!(node_status["shard"], json!("0/2"), "{printed}");
    assert_eq!(
        node_status["repair"]["missingSegments"],
        json!(0),
        "{printed}"
    );
    assert!(
        node_status["repair"]["pulledSegments"].as_u64() >= Some(1),
        "{printed}"
    );
    let peers = node_status["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 2, "{printed}");
    assert!(
        peers.iter().all(|peer| peer["usable"] == json!(true)),
        "{printed}"
    );
    assert_eq!(status["status"]["connectedPeers"], json!(2), "{printed}");
    // Every node reports where the file is: all three hold it finalized.
    let locations = chain.call("indexer_getFileLocations", json!([tree.root()]));
    assert_eq!(locations.as_array().map(Vec::len), Some(3), "{locations}");
    for node in [first, replica, other] {
        node.stop();
    }
    chain_node.stop();
}

/// One line of `sdk/e2e.cjs`'s output, the fields this test reads.
#[derive(serde::Deserialize, Debug)]
struct SdkLine {
    file: Option<String>,
    size: Option<u64>,
    download: Option<std::path::PathBuf>,
    segments: Option<u64>,
    error: Option<String>,
}

/// Runs the official SDK (`sdk/e2e.cjs`, indexer mode) against `chain_url`: uploads `files` with
/// `expectedReplica = replicas`, downloads each through the indexer and checks every segment's
/// proof on every holder the indexer names.
fn sdk_round_trip(
    chain_url: &str,
    out: &std::path::Path,
    replicas: u64,
    files: &[(std::path::PathBuf, Vec<u8>)],
) {
    let sdk = common::sdk_with_package("@0gfoundation/0g-ts-sdk");
    let output = std::process::Command::new("node")
        .arg(sdk.join("e2e.cjs"))
        .args(["--rpc", chain_url, "--out"])
        .arg(out)
        .args(["--replicas", &replicas.to_string()])
        // The SDK interleaves the nodes' upload tasks only up to the shortest node's list, so
        // tasks must cover a node's segments of a file in as few as the other nodes': ten
        // segments a task does for these files.
        .args(["--task-size", "10"])
        .args(files.iter().map(|(path, _)| path))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("node runs sdk/e2e.cjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<SdkLine> = stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    if let Some(failed) = lines.iter().find(|line| line.error.is_some()) {
        panic!(
            "the SDK failed on {:?} with expectedReplica {replicas}: {} (rerun with ZEROG_E2E_VERBOSE=1)",
            failed.file,
            failed.error.as_deref().unwrap_or_default()
        );
    }
    assert!(
        output.status.success(),
        "sdk/e2e.cjs: {}\n{stdout}",
        output.status
    );
    assert_eq!(lines.len(), files.len(), "{stdout}");
    for ((path, data), line) in files.iter().zip(&lines) {
        assert_eq!(line.file.as_deref(), path.to_str());
        assert_eq!(line.size, Some(data.len() as u64));
        let downloaded = std::fs::read(line.download.as_ref().expect("a download")).expect("read");
        assert!(
            downloaded == *data,
            "{}: downloaded bytes differ",
            path.display()
        );
        // Each segment was checked on every holder of its shard: `replicas` of them.
        let segments = data.len().div_ceil(types::SEGMENT_BYTES) as u64;
        assert_eq!(
            line.segments,
            Some(segments * replicas),
            "{}",
            path.display()
        );
    }
}

/// The official SDK, unmodified, against `zerog devnet` (4 storage nodes: 2 shards × 2
/// replicas): files of 1 B, 1 MiB + 1 and 50 MiB uploaded through the indexer with
/// `expectedReplica` 1 and 2, downloaded through the indexer, every segment's proof checked on
/// every holder; then the CLI's upload and download on the same network. About a minute on two
/// cores: the SDK hashes each file twice in JavaScript.
#[test]
fn the_official_sdk_uploads_to_and_downloads_from_a_devnet_of_two_shards_by_two_replicas() {
    let _serial = serial();
    common::require_node_js();
    let dir = tempfile::tempdir().expect("tempdir");
    let devnet = common::zerog()
        .devnet(&dir.path().join("devnet"))
        .args(["--nodes", "4", "--replicas", "2", "--extent-mib", "64"])
        // The SDK's own upload fills every replica here: repair stays out of its way.
        .args(["--repair-grace-ms", "600000"])
        .start()
        .expect("the devnet starts");
    let chain_url = devnet.rpc_url().expect("the devnet prints its rpc");
    let shards: Vec<String> = devnet
        .lines()
        .iter()
        .filter_map(|line| line.trim().strip_prefix("node ").map(str::to_string))
        .collect();
    assert_eq!(shards.len(), 4, "{:?}", devnet.lines());
    assert_eq!(
        shards
            .iter()
            .filter(|line| line.ends_with("shard 0/2"))
            .count(),
        2,
        "{shards:?}"
    );
    let seed = common::test_seed();
    eprintln!("network sdk seed {seed}; rerun with ZEROG_TEST_SEED={seed}");
    for replicas in [1u64, 2] {
        let files: Vec<(std::path::PathBuf, Vec<u8>)> = [1, (1 << 20) + 1, 50 << 20]
            .into_iter()
            .enumerate()
            .map(|(i, size)| {
                let data = random_bytes(seed ^ (replicas << 40) ^ i as u64, size);
                let path = dir.path().join(format!("file-{replicas}-{size}"));
                std::fs::write(&path, &data).expect("write");
                (path, data)
            })
            .collect();
        sdk_round_trip(
            &chain_url,
            &dir.path().join(format!("out-{replicas}")),
            replicas,
            &files,
        );
    }

    // The CLI against the same network: it spreads the segments over the nodes of each shard
    // (two of each with --replicas 2) and downloads from the holders the indexer names.
    let data = random_bytes(seed ^ 77, 3 * types::SEGMENT_BYTES + 5);
    let input = dir.path().join("cli-file");
    std::fs::write(&input, &data).expect("write");
    let input = input.to_str().expect("utf-8");
    let upload = ["upload", "--quiet", "--rpc", &chain_url, input];
    let printed = common::cli(&[&upload[..], &["--replicas", "2"]].concat());
    let root = printed
        .lines()
        .find_map(|line| line.strip_prefix("root "))
        .expect("the upload prints the root")
        .to_string();
    let locations = Rpc::new(&chain_url).call("indexer_getFileLocations", json!([root]));
    assert_eq!(locations.as_array().map(Vec::len), Some(4), "{locations}");
    let output = dir.path().join("cli-file.out");
    let output_path = output.to_str().expect("utf-8");
    common::cli(&[
        "download",
        "--quiet",
        &root,
        "-o",
        output_path,
        "--rpc",
        &chain_url,
    ]);
    assert!(
        std::fs::read(&output).expect("read") == data,
        "the CLI download differs"
    );
    let refused = common::cli_fails(&[&upload[..], &["--replicas", "3"]].concat());
    assert!(refused.contains("cannot hold 3 replicas"), "{refused}");
    devnet.stop().expect("the devnet stops cleanly");
}
