//! Four `zerog validator` processes on loopback, from `zerog validator-init`: transactions sent
//! to different validators reach the proposers through the mempools, wallets sending back to
//! back get consecutive pending nonces, and every validator reports the same blocks and the
//! same receipts once they are final.

mod common;

use alloy_primitives::U256;
use common::{Rpc, serial, zerog};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const VALIDATORS: usize = 4;
/// Transfers each sender signs back to back.
const TRANSFERS_PER_SENDER: u64 = 3;
/// How long a transaction may take to be final on two shared cores.
const FINALITY_TIMEOUT: Duration = Duration::from_secs(60);

/// Free loopback ports: bound, then released for the validators to take.
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("bound").port())
        .collect()
}

/// Points each validator's p2p address in `genesis.json` at a free port (addresses are not part
/// of the genesis hash; fixed base ports could collide with other tests).
fn use_free_p2p_ports(genesis: &Path) {
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(genesis).expect("genesis")).expect("json");
    let validators = file["validators"].as_array_mut().expect("validators");
    for (validator, port) in validators.iter_mut().zip(free_ports(VALIDATORS)) {
        validator["p2p"] = json!(format!("127.0.0.1:{port}"));
    }
    std::fs::write(genesis, serde_json::to_vec_pretty(&file).expect("json")).expect("write");
}

fn transfer(key: &str, nonce: u64, value: u64) -> String {
    let payer = client::Payer::from_hex(key).expect("dev key");
    let raw = payer
        .sign(
            31337,
            &client::chain::Transaction {
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: chain_lite::DEFAULT_GAS_PRICE,
                to: [0xde; 20],
                value: U256::from(value),
                input: Vec::new(),
            },
        )
        .expect("signs");
    format!("0x{}", hex::encode(raw))
}

fn pending_nonce(rpc: &Rpc, address: &str) -> u64 {
    let count = rpc.call("eth_getTransactionCount", json!([address, "pending"]));
    u64::from_str_radix(
        count.as_str().expect("a quantity").trim_start_matches("0x"),
        16,
    )
    .expect("hex")
}

/// The receipt of `hash` once `rpc` has it, within [`FINALITY_TIMEOUT`].
fn wait_receipt(rpc: &Rpc, hash: &str) -> Value {
    let deadline = Instant::now() + FINALITY_TIMEOUT;
    loop {
        let receipt = rpc.call("eth_getTransactionReceipt", json!([hash]));
        if !receipt.is_null() {
            return receipt;
        }
        assert!(
            Instant::now() < deadline,
            "{hash} not final at {} within {FINALITY_TIMEOUT:?}",
            rpc.url()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn four_validators_finalize_the_same_blocks_and_receipts() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let network = dir.path().join("network");
    let network_arg = network.to_str().expect("utf-8 path");
    let printed = harness::cli(
        &zerog(),
        &["validator-init", "--count", "4", "--dir", network_arg],
    );
    assert_eq!(
        printed.matches("zerog validator --genesis").count(),
        VALIDATORS,
        "one start command per validator:\n{printed}"
    );
    let genesis = network.join("genesis.json");
    use_free_p2p_ports(&genesis);
    let processes: Vec<harness::Process> = (0..VALIDATORS)
        .map(|index| {
            let folder = network.join(format!("validator-{index}"));
            zerog()
                .validator(&genesis, &folder.join("key"), &folder.join("data"))
                .start()
                .expect("a validator starts")
        })
        .collect();
    let rpcs: Vec<Rpc> = processes
        .iter()
        .map(|process| Rpc::new(&process.rpc_url().expect("rpc")))
        .collect();

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
    let number = |block: Value| {
        let text = block["number"].as_str().expect("a number").to_string();
        u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex")
    };
    for rpc in &rpcs {
        let latest = number(rpc.call("eth_getBlockByNumber", json!(["latest", false])));
        let finalized = number(rpc.call("eth_getBlockByNumber", json!(["finalized", false])));
        let safe = number(rpc.call("eth_getBlockByNumber", json!(["safe", false])));
        assert!(
            latest <= finalized && finalized <= safe,
            "{latest} {finalized} {safe}"
        );
    }
    drop(processes);
}
