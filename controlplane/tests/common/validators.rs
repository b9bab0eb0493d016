//! Networks of `zerog validator` processes for the tests that run them: `zerog validator-init`
//! with the p2p addresses the test chooses, validators started (and restarted) on their data
//! folders, signed transfers from the dev accounts, and the reads those tests compare.

use super::{Rpc, zerog};
use alloy_primitives::U256;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Validators of the networks these tests start.
pub const VALIDATORS: usize = 4;
/// How long a transaction may take to be final on two shared cores.
pub const FINALITY_TIMEOUT: Duration = Duration::from_secs(60);

/// Free ports on `ip` (an address of this host): bound, then released for the validators to
/// take.
pub fn free_ports(ip: &str, count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind((ip, 0)).expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("bound").port())
        .collect()
}

/// Points the p2p address of validator i in `genesis.json` at `addresses[i]` (addresses are
/// not part of the genesis hash; fixed base ports could collide with other tests).
pub fn set_p2p_addresses(genesis: &Path, addresses: &[String]) {
    let mut file: Value =
        serde_json::from_slice(&std::fs::read(genesis).expect("genesis")).expect("json");
    let validators = file["validators"].as_array_mut().expect("validators");
    assert_eq!(
        validators.len(),
        addresses.len(),
        "one address per validator"
    );
    for (validator, address) in validators.iter_mut().zip(addresses) {
        validator["p2p"] = json!(address);
    }
    std::fs::write(genesis, serde_json::to_vec_pretty(&file).expect("json")).expect("write");
}

/// `validator-init` for [`VALIDATORS`] in `dir`, each listening for peers on a free loopback
/// port; the network folder.
pub fn init_network(dir: &Path) -> PathBuf {
    let addresses = free_ports("127.0.0.1", VALIDATORS)
        .into_iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect::<Vec<_>>();
    init_network_at(dir, &addresses)
}

/// `validator-init` for one validator per p2p address in `dir`; the network folder.
pub fn init_network_at(dir: &Path, addresses: &[String]) -> PathBuf {
    let network = dir.join("network");
    let network_arg = network.to_str().expect("utf-8 path");
    let count = addresses.len().to_string();
    let printed = harness::cli(
        &zerog(),
        &["validator-init", "--count", &count, "--dir", network_arg],
    );
    assert_eq!(
        printed.matches("zerog validator --genesis").count(),
        addresses.len(),
        "one start command per validator:\n{printed}"
    );
    set_p2p_addresses(&network.join("genesis.json"), addresses);
    network
}

/// `zerog validator` for validator `index` of `network`, on its data folder (a restart when
/// the folder exists).
pub fn validator(network: &Path, index: usize) -> harness::Launch {
    let folder = network.join(format!("validator-{index}"));
    zerog().validator(
        &network.join("genesis.json"),
        &folder.join("key"),
        &folder.join("data"),
    )
}

/// Starts (or restarts, on its data folder) validator `index` of `network` on loopback.
pub fn start_validator(network: &Path, index: usize) -> (harness::Process, Rpc) {
    let process = validator(network, index)
        .start()
        .expect("a validator starts");
    let rpc = Rpc::new(&process.rpc_url().expect("rpc"));
    (process, rpc)
}

/// Starts all [`VALIDATORS`] of `network` on loopback, validator 0 first.
pub fn start_validators(network: &Path) -> (Vec<harness::Process>, Vec<Rpc>) {
    (0..VALIDATORS)
        .map(|index| start_validator(network, index))
        .unzip()
}

/// A node (`extra` makes it a DA node, for one) following the validator at `url` and checking
/// every block against the certificates of `network`'s validators.
pub fn start_checking_follower(
    data_dir: &Path,
    url: &str,
    network: &Path,
    extra: &[&str],
) -> super::NodeProcess {
    let genesis = network.join("genesis.json");
    let genesis = genesis.to_str().expect("utf-8 path");
    let flags = [
        "--chain-rpc",
        url,
        "--chain-poll-ms",
        "20",
        "--chain-genesis",
        genesis,
    ];
    super::NodeProcess::spawn(data_dir, &[&flags[..], extra].concat())
}

/// Dev account `account`'s address, as JSON-RPC takes it.
pub fn dev_address(account: usize) -> String {
    format!(
        "0x{}",
        hex::encode(chain_lite::DEV_ACCOUNTS[account].address)
    )
}

/// A signed transfer of `value` from the dev account with private key `key`, hex.
pub fn transfer(key: &str, nonce: u64, value: u64) -> String {
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

/// Sends a transfer from dev account `account` with `nonce` to `rpc`; its hash.
pub fn send_transfer(rpc: &Rpc, account: usize, nonce: u64) -> String {
    let raw = transfer(
        chain_lite::DEV_ACCOUNTS[account].private_key,
        nonce,
        nonce + 1,
    );
    rpc.call("eth_sendRawTransaction", json!([raw]))
        .as_str()
        .expect("a hash")
        .to_string()
}

pub fn pending_nonce(rpc: &Rpc, address: &str) -> u64 {
    quantity(&rpc.call("eth_getTransactionCount", json!([address, "pending"])))
}

/// The receipt of `hash` once `rpc` has it, within [`FINALITY_TIMEOUT`].
pub fn wait_receipt(rpc: &Rpc, hash: &str) -> Value {
    wait_receipt_within(rpc, hash, FINALITY_TIMEOUT)
}

/// The receipt of `hash` once `rpc` has it, within `timeout`.
pub fn wait_receipt_within(rpc: &Rpc, hash: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let receipt = rpc.call("eth_getTransactionReceipt", json!([hash]));
        if !receipt.is_null() {
            return receipt;
        }
        assert!(
            Instant::now() < deadline,
            "{hash} not final at {} within {timeout:?}",
            rpc.url()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn quantity(value: &Value) -> u64 {
    let text = value.as_str().expect("a quantity");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex")
}

/// The executed finalized head `rpc` reports.
pub fn block_number(rpc: &Rpc) -> u64 {
    quantity(&rpc.call("eth_blockNumber", json!([])))
}

pub fn block_hash(rpc: &Rpc, number: u64) -> Value {
    rpc.call(
        "eth_getBlockByNumber",
        json!([format!("0x{number:x}"), false]),
    )["hash"]
        .clone()
}

/// The hashes of blocks 1 to `top` at `rpc`, in one batch request (`null` for a block it does
/// not have).
pub fn block_hashes(rpc: &Rpc, top: u64) -> Vec<Value> {
    let calls: Vec<Value> = (1..=top)
        .map(|number| {
            json!({
                "jsonrpc": "2.0",
                "id": number,
                "method": "eth_getBlockByNumber",
                "params": [format!("0x{number:x}"), false],
            })
        })
        .collect();
    let answers = rpc.post(serde_json::to_vec(&calls).expect("json"));
    let mut answers = answers.as_array().expect("a batch answer").clone();
    answers.sort_by_key(|answer| answer["id"].as_u64().expect("an id"));
    assert_eq!(answers.len(), calls.len(), "one answer per call");
    answers
        .into_iter()
        .map(|answer| answer["result"]["hash"].clone())
        .collect()
}

/// Asserts that every validator in `rpcs` has the same block hash at every height from 1 to
/// `top` (each must have executed `top`).
pub fn assert_same_blocks(rpcs: &[&Rpc], top: u64) {
    let first = block_hashes(rpcs[0], top);
    for (number, hash) in (1..).zip(&first) {
        assert!(hash.is_string(), "{} has no block {number}", rpcs[0].url());
    }
    for rpc in &rpcs[1..] {
        let hashes = block_hashes(rpc, top);
        for ((number, ours), theirs) in (1..).zip(&first).zip(&hashes) {
            assert_eq!(
                theirs,
                ours,
                "block {number} at {} and {}",
                rpc.url(),
                rpcs[0].url()
            );
        }
    }
}
