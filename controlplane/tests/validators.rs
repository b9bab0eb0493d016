//! Four `zerog validator` processes on loopback, from `zerog validator-init`: transactions sent
//! to different validators reach the proposers through the mempools, wallets sending back to
//! back get consecutive pending nonces, and every validator reports the same blocks and the
//! same receipts once they are final. A validator killed with SIGKILL while the others go on
//! restarts from its data folder, catches up and takes part again. The official SDK uploads a
//! file through a devnet of four validators whose storage nodes check their certificates, a
//! DA node disperses a blob on the validators' chain, and a follower behind a lying relay
//! believes nothing the validators did not certify.

mod common;

use common::validators::{
    FINALITY_TIMEOUT, VALIDATORS, block_hash, init_network, pending_nonce, quantity,
    start_checking_follower, start_validator, start_validators, transfer, wait_receipt,
};
use common::{Rpc, serial, zerog};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Transfers each sender signs back to back.
const TRANSFERS_PER_SENDER: u64 = 3;

#[test]
fn four_validators_finalize_the_same_blocks_and_receipts() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let network = init_network(dir.path());
    let (processes, rpcs) = start_validators(&network);

    // Each dev account sends to its own validator, back to back with pending nonces.
    let mut hashes = Vec::new();
    for (account, rpc) in chain_lite::DEV_ACCOUNTS.iter().zip(&rpcs) {
        let address = format!("0x{}", hex::encode(account.address));
        let first = pending_nonce(rpc, &address);
        for offset in 0..TRANSFERS_PER_SENDER {
            let nonce = pending_nonce(rpc, &address);
            assert_eq!(
                nonce,
                first + offset,
                "the pending nonce counts the mempool"
            );
            let raw = transfer(account.private_key, nonce, 1_000 + offset);
            let hash = rpc.call("eth_sendRawTransaction", json!([raw]));
            hashes.push(hash.as_str().expect("a hash").to_string());
        }
    }

    for hash in &hashes {
        let receipts: Vec<Value> = rpcs.iter().map(|rpc| wait_receipt(rpc, hash)).collect();
        assert_eq!(receipts[0]["status"], json!("0x1"), "{hash}");
        for receipt in &receipts[1..] {
            assert_eq!(
                receipt, &receipts[0],
                "every validator has the same receipt"
            );
        }
        let number = receipts[0]["blockNumber"].clone();
        let blocks: Vec<Value> = rpcs
            .iter()
            .map(|rpc| rpc.call("eth_getBlockByNumber", json!([number, false])))
            .collect();
        for block in &blocks {
            assert_eq!(
                block["hash"], receipts[0]["blockHash"],
                "same block at {number}"
            );
            assert_eq!(block, &blocks[0]);
        }
    }
    // latest, finalized and safe are one head, the executed finalized one: read in that order
    // while blocks keep coming, each is at least the one before.
    for rpc in &rpcs {
        let head =
            |tag: &str| quantity(&rpc.call("eth_getBlockByNumber", json!([tag, false]))["number"]);
        let (latest, finalized, safe) = (head("latest"), head("finalized"), head("safe"));
        assert!(
            latest <= finalized && finalized <= safe,
            "{latest} {finalized} {safe}"
        );
    }
    // Every validator metric docs/metrics.md lists is exported; each validator executed
    // every transfer.
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"),
    )
    .expect("docs/metrics.md");
    let section = doc
        .split("\n## Validators")
        .nth(1)
        .expect("a validators section");
    let names: Vec<&str> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    assert!(names.len() >= 5, "{names:?}");
    for rpc in &rpcs {
        let text = rpc.metrics();
        for name in &names {
            assert!(text.contains(name), "{name} is not exported:\n{text}");
        }
        assert!(rpc.metric("zerog_validator_transactions_executed_total") >= hashes.len() as f64);
        assert!(rpc.metric("zerog_validator_executed_height") >= 1.0);
    }
    drop(processes);
}

#[test]
fn a_crashed_validator_restarts_from_its_data_and_catches_up() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let network = init_network(dir.path());
    let (mut processes, mut rpcs) = start_validators(&network);
    let account = &chain_lite::DEV_ACCOUNTS[0];
    let address = format!("0x{}", hex::encode(account.address));
    let first = wait_receipt(
        &rpcs[0],
        rpcs[0]
            .call(
                "eth_sendRawTransaction",
                json!([transfer(account.private_key, 0, 1)]),
            )
            .as_str()
            .expect("a hash"),
    );

    // Every validator executes it before the crash: validator 1 is asked for the next nonce
    // below, and a validator that has neither executed nor heard of nonce 0 would answer 0.
    for rpc in &rpcs[1..] {
        let executed = wait_receipt(rpc, first["transactionHash"].as_str().expect("hash"));
        assert_eq!(executed, first);
    }

    // Validator 3 crashes; three of four keep finalizing.
    let crashed = processes.pop().expect("four");
    rpcs.pop();
    crashed.kill9().expect("killed");
    let mut hashes = Vec::new();
    for _ in 0..TRANSFERS_PER_SENDER {
        let nonce = pending_nonce(&rpcs[1], &address);
        let raw = transfer(account.private_key, nonce, 7);
        let hash = rpcs[1].call("eth_sendRawTransaction", json!([raw]));
        hashes.push(hash.as_str().expect("a hash").to_string());
    }
    let receipts: Vec<Value> = hashes
        .iter()
        .map(|hash| wait_receipt(&rpcs[2], hash))
        .collect();
    let last = receipts.last().expect("transfers");

    // Restarted on its data folder, it replays what it executed and fetches what it missed.
    let (restarted, rpc) = start_validator(&network, VALIDATORS - 1);
    let number = quantity(&rpc.call("eth_blockNumber", json!([])));
    assert!(
        number >= quantity(&first["blockNumber"]),
        "the restarted validator recovered its executed head from its index ({number})"
    );
    for hash in &hashes {
        assert_eq!(wait_receipt(&rpc, hash), wait_receipt(&rpcs[0], hash));
    }
    let height = quantity(&last["blockNumber"]);
    for number in 1..=height {
        assert_eq!(
            block_hash(&rpc, number),
            block_hash(&rpcs[0], number),
            "block {number}"
        );
    }
    // It takes part again: a transaction sent to it becomes final everywhere.
    let nonce = pending_nonce(&rpc, &address);
    let hash = rpc.call(
        "eth_sendRawTransaction",
        json!([transfer(account.private_key, nonce, 9)]),
    );
    let hash = hash.as_str().expect("a hash");
    assert_eq!(wait_receipt(&rpc, hash), wait_receipt(&rpcs[0], hash));

    // A chain index that lost blocks consensus saw executed is refused, not re-executed.
    restarted.kill9().expect("killed");
    let data = network.join("validator-3").join("data");
    std::fs::remove_file(data.join("node.redb")).expect("remove the index");
    let folder = network.join("validator-3");
    let refused = zerog()
        .validator(&network.join("genesis.json"), &folder.join("key"), &data)
        // The error's last lines are what the harness quotes: no backtrace after it.
        .env("RUST_LIB_BACKTRACE", "0")
        .env("RUST_BACKTRACE", "0")
        .start()
        .err()
        .expect("an index behind consensus storage is refused");
    assert!(
        refused.to_string().contains("lost acknowledged blocks"),
        "{refused}"
    );
    drop(processes);
}

#[test]
fn bad_genesis_and_key_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = init_network(&dir.path().join("ours"));
    let theirs = init_network(&dir.path().join("theirs"));
    let genesis = ours.join("genesis.json");
    let data = dir.path().join("data");
    let start = |genesis: &Path, key: &Path| {
        harness::cli_fails(
            &zerog(),
            &[
                "validator",
                "--genesis",
                genesis.to_str().expect("utf-8"),
                "--key",
                key.to_str().expect("utf-8"),
                "--data-dir",
                data.to_str().expect("utf-8"),
            ],
        )
    };
    let stranger = start(&genesis, &theirs.join("validator-0").join("key"));
    assert!(
        stranger.contains("is not a validator of genesis file"),
        "{stranger}"
    );
    let missing = start(
        &dir.path().join("nowhere.json"),
        &ours.join("validator-0").join("key"),
    );
    assert!(
        missing.contains("nowhere.json") && missing.contains("cannot read"),
        "{missing}"
    );
    let key = ours.join("validator-0").join("key");
    std::fs::write(&key, "not hex\n").expect("write");
    let garbled = start(&genesis, &key);
    assert!(garbled.contains("not hex"), "{garbled}");
}

/// A first port of `count` consecutive free loopback ports, below the ephemeral range (so no
/// outgoing connection takes one meanwhile).
fn free_port_range(count: u16) -> u16 {
    (20_000..30_000)
        .step_by(97)
        .find(|base| {
            (0..count)
                .all(|offset| std::net::TcpListener::bind(("127.0.0.1", base + offset)).is_ok())
        })
        .expect("a free port range")
}

/// `zerog devnet --validators 4`: two storage nodes (one per shard) follow four validators and
/// check their certificates. The official SDK submits a file through a validator's facade (its
/// transaction goes through the mempool and is final before its receipt exists), finds the
/// nodes through a storage node's indexer (the nodes registered through the validators) and
/// uploads and downloads the file.
#[test]
fn the_official_sdk_uploads_through_a_devnet_of_four_validators() {
    common::require_node_js();
    let sdk = common::sdk_with_package("@0gfoundation/0g-ts-sdk");
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let base_port = free_port_range(2 * VALIDATORS as u16).to_string();
    let devnet = zerog()
        .devnet(&dir.path().join("devnet"))
        .args(["--validators", "4", "--validator-base-port", &base_port])
        .args(["--nodes", "2", "--replicas", "1", "--extent-mib", "64"])
        .start()
        .expect("the devnet starts");
    let chain_url = devnet.rpc_url().expect("the devnet prints its rpc");
    let indexer = devnet
        .field("indexer")
        .expect("the devnet prints its indexer");
    let printed = devnet.lines();
    assert_eq!(
        printed
            .iter()
            .filter(|line| line.trim().starts_with("validator "))
            .count(),
        VALIDATORS,
        "{printed:?}"
    );
    let data = common::random_bytes(23, (1 << 20) + 1);
    let input = dir.path().join("sdk-file");
    std::fs::write(&input, &data).expect("write input");
    let output = std::process::Command::new("node")
        .arg(sdk.join("e2e.cjs"))
        .args(["--rpc", &chain_url, "--indexer", &indexer])
        // The SDK interleaves the nodes' upload tasks only up to the shortest node's list:
        // tasks of ten segments cover each node's share of this file in one.
        .args(["--task-size", "10"])
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
    assert!(line.get("error").is_none_or(Value::is_null), "{line}");
    let tree = merkle::file::FileTree::from_bytes(&data).expect("tree");
    assert_eq!(line["root"], json!(tree.root()), "{line}");
    let download = line["download"].as_str().expect("download path");
    assert_eq!(std::fs::read(download).expect("downloaded"), data);
    let tx_seq = line["txSeq"].as_u64().expect("txSeq");
    assert_eq!(
        Rpc::new(&indexer).call("zgs_checkFileFinalized", json!([tx_seq])),
        json!(true)
    );
    devnet.stop().expect("the devnet stops cleanly");
}

/// What the lying relay in front of a validator does to its answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lie {
    /// Passes every answer on as it is.
    None,
    /// Rewrites the blocks it serves into a history of its own: every timestamp moved, every
    /// header hash recomputed and every parent link fixed up, so the blocks are consistent
    /// among themselves.
    Blocks,
    /// Flips a bit of every finality certificate it serves.
    Certificate,
}

/// A JSON-RPC relay to `upstream` that lies as told; its URL.
fn lying_relay(upstream: &str, lie: std::sync::Arc<std::sync::Mutex<Lie>>) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let upstream = Rpc::new(&upstream);
            let lie = lie.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("a length");
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("the body");
                    let request: Value = serde_json::from_slice(&body).expect("JSON");
                    let mut answer = upstream.post(body);
                    tell(
                        *lie.lock().expect("lie"),
                        &request["method"],
                        &mut answer["result"],
                    );
                    let answer = answer.to_string();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        answer.len()
                    );
                    if writer
                        .write_all(head.as_bytes())
                        .and_then(|()| writer.write_all(answer.as_bytes()))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// Applies `lie` to the result of a call of `method`.
fn tell(lie: Lie, method: &Value, result: &mut Value) {
    match (lie, method.as_str()) {
        (Lie::Blocks, Some("zerog_getBlocks")) => {
            let mut blocks: Vec<chain_lite::Block> =
                serde_json::from_value(result.take()).expect("blocks");
            let mut parent = None;
            for block in &mut blocks {
                block.header.timestamp_ms += 1;
                if let Some(parent) = parent {
                    block.header.parent_hash = parent;
                }
                block.header.hash = block.header.compute_hash();
                parent = Some(block.header.hash);
            }
            *result = serde_json::to_value(blocks).expect("JSON");
        }
        (Lie::Certificate, Some("zerog_getFinality")) => {
            let hex = result["finalization"].as_str().expect("a certificate");
            let mut bytes = hex::decode(hex.trim_start_matches("0x")).expect("hex");
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            result["finalization"] = json!(format!("0x{}", hex::encode(bytes)));
        }
        _ => {}
    }
}

/// A storage node given the validators' genesis checks every block against their finality
/// certificates: a validator that rewrites its blocks or forges a certificate feeds it
/// nothing, and once answers are true again it catches up.
#[test]
fn a_follower_believes_only_blocks_the_validators_certified() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let network = init_network(dir.path());
    let (processes, rpcs) = start_validators(&network);
    let account = &chain_lite::DEV_ACCOUNTS[0];
    let hash = rpcs[0].call(
        "eth_sendRawTransaction",
        json!([transfer(account.private_key, 0, 1)]),
    );
    // The relay's validator can prove the transfer's block final, so there is history to lie
    // about.
    let receipt = wait_receipt(&rpcs[2], hash.as_str().expect("a hash"));
    let deadline = Instant::now() + FINALITY_TIMEOUT;
    loop {
        let proof = rpcs[2].raw("zerog_getFinality", json!([]));
        if proof["result"]["executed"]["number"].as_u64() >= Some(quantity(&receipt["blockNumber"]))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no finality proof: {proof}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let lie = std::sync::Arc::new(std::sync::Mutex::new(Lie::Blocks));
    let relay = lying_relay(rpcs[2].url(), lie.clone());
    let follower = start_checking_follower(&dir.path().join("follower"), &relay, &network, &[]);
    let rpc = follower.rpc();
    let wait_for_errors = |count: f64| {
        let deadline = Instant::now() + FINALITY_TIMEOUT;
        while rpc.metric("zerog_log_sync_errors_total") < count {
            assert!(
                Instant::now() < deadline,
                "no sync errors within {FINALITY_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for told in [Lie::Blocks, Lie::Certificate] {
        *lie.lock().expect("lie") = told;
        let errors = rpc.metric("zerog_log_sync_errors_total");
        wait_for_errors(errors + 3.0);
        assert_eq!(
            rpc.metric("zerog_log_sync_next_block"),
            0.0,
            "the follower recorded nothing of a history it could not check"
        );
    }

    *lie.lock().expect("lie") = Lie::None;
    let head = quantity(&rpcs[2].call("eth_blockNumber", json!([])));
    let deadline = Instant::now() + FINALITY_TIMEOUT;
    while (rpc.metric("zerog_log_sync_next_block") as u64) <= head {
        assert!(
            Instant::now() < deadline,
            "the follower did not catch up to block {head} within {FINALITY_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    follower.stop();
    drop(processes);
}

/// A DA node follows validators like a storage node: it registers through a validator's
/// facade, checks their certificates for what it syncs, disperses a blob whose certificate is
/// recorded through the validators, and `zerog da get` against another validator reads the
/// blob back, verified shard by shard against the chain's record.
#[test]
fn a_da_node_disperses_on_a_chain_of_four_validators() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let network = init_network(dir.path());
    let (processes, rpcs) = start_validators(&network);
    let da_node = start_checking_follower(
        &dir.path().join("da"),
        rpcs[1].url(),
        &network,
        &[
            "--da",
            "--da-disperse",
            "--chain-key",
            chain_lite::DEV_ACCOUNTS[1].private_key,
            "--shards",
            "1",
        ],
    );
    let payload = common::random_bytes(31, 3 << 20);
    let input = dir.path().join("blob.bin");
    std::fs::write(&input, &payload).expect("write blob");
    let input = input.to_str().expect("utf-8");
    let put = common::cli(&["da", "put", "--quiet", input, "--rpc", &da_node.url]);
    let blob = put
        .lines()
        .find_map(|line| line.strip_prefix("blob "))
        .expect("da put prints the blob id")
        .to_string();
    assert!(put.contains("certified by"), "{put}");
    let output = dir.path().join("blob.out");
    let output_path = output.to_str().expect("utf-8");
    common::cli(&[
        "da",
        "get",
        "--quiet",
        &blob,
        "-o",
        output_path,
        "--rpc",
        rpcs[3].url(),
    ]);
    assert!(
        std::fs::read(&output).expect("read") == payload,
        "the blob read back differs"
    );
    da_node.stop();
    drop(processes);
}
