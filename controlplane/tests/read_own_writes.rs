//! A client reads its own writes from the Ethereum facade: plain JSON-RPC calls, no client
//! library, no cache, no polling. Each round signs a one-sector Flow submission, sends it and at
//! once reads the receipt, the latest block, the head number, the sender's balance and nonce
//! (`latest` and `pending`), the Reward module's balance and its `rewards(0)` view: every answer
//! must show the transaction, in a sealed block.
//!
//! Half the rounds send every call as its own HTTP request, first read rotating from round to
//! round so that each kind of read comes straight after the send in some rounds. The other half
//! send the transaction and all the reads as one JSON-RPC batch (as ethers does), which the node
//! answers call by call within one request, before its block producer has a turn: there only
//! the node's rule of sealing the pending block before it answers a read makes the reads see the
//! transaction, so a read answered before the transaction's block is sealed fails this test
//! (balances, nonces and module views read the executed state, the pending block included; the
//! receipt, the latest block and the head are what show an unsealed block).
//! Every problem of every round is reported together.

mod common;

use alloy_primitives::{U256, keccak256};
use alloy_sol_types::SolCall;
use chain_lite::abi::{market, reward};
use chain_lite::{DEV_ACCOUNTS, FLOW_ADDRESS, MARKET_ADDRESS, REWARD_ADDRESS};
use common::{NodeProcess, Rpc};
use merkle::file::SubmissionNode;
use serde_json::{Value, json};
use std::time::Duration;
use types::H256;

const CHAIN_ID: u64 = 31_337;
const ROUNDS: u64 = 50;

fn hex_data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// A JSON-RPC quantity; `None` when the answer is not one.
fn quantity(value: &Value) -> Option<U256> {
    let digits = value.as_str()?.strip_prefix("0x")?;
    U256::from_str_radix(digits, 16).ok()
}

/// The 32-byte word at `index` of an `eth_call` answer, as a number.
fn word(value: &Value, index: usize) -> Option<U256> {
    let bytes = hex::decode(value.as_str()?.strip_prefix("0x")?).ok()?;
    let word = bytes.get(index * 32..(index + 1) * 32)?;
    Some(U256::from_be_slice(word))
}

/// A signed one-sector Flow submission from `key` (the first dev account) at `nonce`, paying `fee`; distinct per `round`.
fn signed_submission(key: &client::Payer, nonce: u64, fee: U256, round: u64) -> Vec<u8> {
    let root = H256(keccak256(format!("read_own_writes round {round}")).0);
    let submission = chain_lite::Submission {
        length: 256,
        tags: Vec::new(),
        nodes: vec![SubmissionNode { root, height: 0 }],
    };
    let transaction = client::chain::Transaction {
        nonce,
        gas_limit: 500_000,
        max_fee_per_gas: 2 * chain_lite::DEFAULT_GAS_PRICE,
        to: FLOW_ADDRESS,
        value: fee,
        input: chain_lite::abi::submit_calldata(&submission, DEV_ACCOUNTS[0].address),
    };
    key.sign(CHAIN_ID, &transaction).expect("signs")
}

/// The reads made right after the send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    Receipt,
    LatestBlock,
    BlockNumber,
    SenderBalance,
    Nonce,
    PendingNonce,
    RewardBalance,
    RewardPool,
}

const READS: [Read; 8] = [
    Read::Receipt,
    Read::LatestBlock,
    Read::BlockNumber,
    Read::SenderBalance,
    Read::Nonce,
    Read::PendingNonce,
    Read::RewardBalance,
    Read::RewardPool,
];

impl Read {
    fn call(self, sender: &str, hash: &str) -> (&'static str, Value) {
        let reward = hex_data(&REWARD_ADDRESS);
        let pool = hex_data(
            &reward::rewardsCall {
                pricingIndex: U256::ZERO,
            }
            .abi_encode(),
        );
        match self {
            Read::Receipt => ("eth_getTransactionReceipt", json!([hash])),
            Read::LatestBlock => ("eth_getBlockByNumber", json!(["latest", false])),
            Read::BlockNumber => ("eth_blockNumber", json!([])),
            Read::SenderBalance => ("eth_getBalance", json!([sender, "latest"])),
            Read::Nonce => ("eth_getTransactionCount", json!([sender, "latest"])),
            Read::PendingNonce => ("eth_getTransactionCount", json!([sender, "pending"])),
            Read::RewardBalance => ("eth_getBalance", json!([reward, "latest"])),
            Read::RewardPool => (
                "eth_call",
                json!([{ "to": reward, "data": pool }, "latest"]),
            ),
        }
    }
}

/// What the chain must read after each round, kept by arithmetic from the start.
#[derive(Clone, Debug)]
struct Expected {
    head: u64,
    nonce: u64,
    sender_balance: U256,
    reward_balance: U256,
    pool_total: U256,
}

impl Expected {
    /// The chain as the node reads it now (every call seals first, so this is settled).
    fn read(rpc: &Rpc, sender: &str) -> Expected {
        let number = |value: Value| quantity(&value).unwrap_or_else(|| panic!("{value}"));
        let (method, params) = Read::RewardPool.call(sender, "");
        let pool = rpc.call(method, params);
        Expected {
            head: number(rpc.call("eth_blockNumber", json!([]))).to(),
            nonce: number(rpc.call("eth_getTransactionCount", json!([sender, "latest"]))).to(),
            sender_balance: number(rpc.call("eth_getBalance", json!([sender, "latest"]))),
            reward_balance: number(rpc.call(
                "eth_getBalance",
                json!([hex_data(&REWARD_ADDRESS), "latest"]),
            )),
            pool_total: word(&pool, 0).unwrap_or_else(|| panic!("rewards(0): {pool}")),
        }
    }
}

/// Checks every answer of one round against `before` plus the round's transaction; returns
/// the problems found and what the transaction paid for gas, by its receipt.
fn check_round(
    answers: &[(Read, Value)],
    before: &Expected,
    hash: &str,
    fee: U256,
) -> (Vec<String>, U256) {
    let answer = |read: Read| {
        answers
            .iter()
            .find(|(which, _)| *which == read)
            .map(|(_, answer)| answer.clone())
            .unwrap_or(Value::Null)
    };
    let mut problems = Vec::new();
    let mut want = |read: Read, ok: bool, what: String| {
        if !ok {
            problems.push(format!("{read:?}: {what}: {}", answer(read)));
        }
    };
    let block = before.head + 1;
    let receipt = answer(Read::Receipt);
    want(
        Read::Receipt,
        receipt["transactionHash"] == hash
            && receipt["status"] == "0x1"
            && quantity(&receipt["blockNumber"]) == Some(U256::from(block))
            && receipt["logs"].as_array().map(Vec::len) == Some(1),
        format!("want the transaction's receipt, status 1, in block {block}, one Submit log"),
    );
    let latest = answer(Read::LatestBlock);
    want(
        Read::LatestBlock,
        quantity(&latest["number"]) == Some(U256::from(block))
            && latest["transactions"] == json!([hash])
            && !receipt["blockHash"].is_null()
            && latest["hash"] == receipt["blockHash"],
        format!("want block {block} holding the transaction alone, the receipt's block"),
    );
    want(
        Read::BlockNumber,
        quantity(&answer(Read::BlockNumber)) == Some(U256::from(block)),
        format!("want {block}"),
    );
    // Gas as the receipt reports it; without a receipt, at least the fee must be gone.
    let gas = quantity(&receipt["gasUsed"])
        .zip(quantity(&receipt["effectiveGasPrice"]))
        .map(|(used, price)| used * price);
    let sender_balance = quantity(&answer(Read::SenderBalance));
    match gas {
        Some(gas) => want(
            Read::SenderBalance,
            !gas.is_zero() && sender_balance == Some(before.sender_balance - fee - gas),
            format!(
                "want {} (before - fee - gasUsed x effectiveGasPrice)",
                before.sender_balance - fee - gas
            ),
        ),
        None => want(
            Read::SenderBalance,
            sender_balance.is_some_and(|balance| balance < before.sender_balance - fee),
            format!(
                "want less than {} (before - fee; no receipt to take the gas from)",
                before.sender_balance - fee
            ),
        ),
    }
    let nonce = U256::from(before.nonce + 1);
    want(
        Read::Nonce,
        quantity(&answer(Read::Nonce)) == Some(nonce),
        format!("want {nonce}"),
    );
    want(
        Read::PendingNonce,
        quantity(&answer(Read::PendingNonce)) == Some(nonce),
        format!("want {nonce}"),
    );
    let reward_balance = before.reward_balance + fee;
    want(
        Read::RewardBalance,
        quantity(&answer(Read::RewardBalance)) == Some(reward_balance),
        format!("want {reward_balance} (before + fee)"),
    );
    let pool_total = before.pool_total + fee;
    want(
        Read::RewardPool,
        word(&answer(Read::RewardPool), 0) == Some(pool_total),
        format!("want rewards(0).total = {pool_total} (before + fee)"),
    );
    (problems, gas.unwrap_or_default())
}

#[test]
fn every_read_right_after_a_transaction_sees_it_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(&dir.path().join("node"));
    let rpc = node.rpc();
    // Batches go out as they are, on their own client.
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client");
    let key = client::Payer::from_hex(DEV_ACCOUNTS[0].private_key).expect("dev key");
    let sender = hex_data(&DEV_ACCOUNTS[0].address);
    let price = rpc.call(
        "eth_call",
        json!([{
            "to": hex_data(&MARKET_ADDRESS),
            "data": hex_data(&market::pricePerSectorCall {}.abi_encode()),
        }, "latest"]),
    );
    let fee = word(&price, 0).unwrap_or_else(|| panic!("pricePerSector(): {price}"));
    assert!(!fee.is_zero(), "a Flow submission pays a fee");

    let mut expected = Expected::read(&rpc, &sender);
    let mut problems = Vec::new();
    for round in 0..ROUNDS {
        let raw = signed_submission(&key, expected.nonce, fee, round);
        let hash = hex_data(keccak256(&raw).as_slice());
        let first = usize::try_from(round / 2).expect("small") % READS.len();
        let order: Vec<Read> = (0..READS.len())
            .map(|k| READS[(first + k) % READS.len()])
            .collect();
        let batched = round % 2 == 1;
        let answers: Vec<(Read, Value)> = if batched {
            // id 0 is the send, id k + 1 the k-th read.
            let mut calls = vec![json!({
                "jsonrpc": "2.0", "id": 0,
                "method": "eth_sendRawTransaction", "params": [hex_data(&raw)],
            })];
            for (k, read) in order.iter().enumerate() {
                let (method, params) = read.call(&sender, &hash);
                calls.push(
                    json!({ "jsonrpc": "2.0", "id": k + 1, "method": method, "params": params }),
                );
            }
            let replies: Vec<Value> = http
                .post(&node.url)
                .json(&calls)
                .send()
                .and_then(reqwest::blocking::Response::json)
                .unwrap_or_else(|error| panic!("round {round}: the batch failed: {error}"));
            let reply = |id: usize| {
                let reply = replies
                    .iter()
                    .find(|reply| reply["id"] == id)
                    .unwrap_or_else(|| panic!("round {round}: no answer {id} in {replies:?}"));
                assert!(
                    reply.get("error").is_none(),
                    "round {round}: call {id} of the batch failed: {reply}"
                );
                reply["result"].clone()
            };
            assert_eq!(reply(0), json!(hash), "round {round}: the send's answer");
            order
                .iter()
                .enumerate()
                .map(|(k, read)| (*read, reply(k + 1)))
                .collect()
        } else {
            let sent = rpc.call("eth_sendRawTransaction", json!([hex_data(&raw)]));
            assert_eq!(sent, json!(hash), "round {round}: the send's answer");
            order
                .iter()
                .map(|read| {
                    let (method, params) = read.call(&sender, &hash);
                    (*read, rpc.call(method, params))
                })
                .collect()
        };
        let (found, gas) = check_round(&answers, &expected, &hash, fee);
        if found.is_empty() {
            expected = Expected {
                head: expected.head + 1,
                nonce: expected.nonce + 1,
                sender_balance: expected.sender_balance - fee - gas,
                reward_balance: expected.reward_balance + fee,
                pool_total: expected.pool_total + fee,
            };
        } else {
            let mode = if batched {
                "one batch"
            } else {
                "separate calls"
            };
            for problem in found {
                problems.push(format!(
                    "round {round} ({mode}, reads {order:?}): {problem}"
                ));
            }
            // Settle on what the node reads now, so one bad round does not fail every later one.
            expected = Expected::read(&rpc, &sender);
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) reading right after a transaction:\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
    node.stop();
}
