//! The Ethereum facade against a real node process: a Flow submission signed like any wallet
//! would, read back through receipts, logs and the storage side's log sync; and every kind of
//! bad transaction refused with a clear error and no state change.

mod common;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use chain_lite::{DEV_ACCOUNTS, FLOW_ADDRESS};
use common::{NodeProcess, Rpc, random_bytes, segment_json};
use merkle::file::FileTree;
use serde_json::{Value, json};

const CHAIN_ID: u64 = 31337;
const GAS_PRICE: u128 = 1_000_000_000;

fn key(index: usize) -> PrivateKeySigner {
    DEV_ACCOUNTS[index].private_key.parse().expect("dev key")
}

fn hex_data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn eip1559(
    key: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: [u8; 20],
    value: U256,
    input: Vec<u8>,
) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 500_000,
        max_fee_per_gas: 2 * GAS_PRICE,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(to.into()),
        value,
        input: Bytes::from(input),
        access_list: Default::default(),
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::Eip1559(tx.into_signed(signature)).encoded_2718()
}

fn submit_calldata(tree: &FileTree, submitter: [u8; 20]) -> Vec<u8> {
    let submission = chain_lite::Submission {
        length: tree.size_bytes(),
        tags: Vec::new(),
        nodes: tree.nodes(),
    };
    chain_lite::abi::submit_calldata(&submission, submitter)
}

fn quantity(value: &Value) -> u128 {
    u128::from_str_radix(
        value.as_str().expect("quantity").trim_start_matches("0x"),
        16,
    )
    .expect("hex")
}

fn send(rpc: &Rpc, raw: &[u8]) -> Value {
    rpc.raw("eth_sendRawTransaction", json!([hex_data(raw)]))
}

#[test]
fn a_signed_flow_submission_is_stored_and_bad_transactions_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(&dir.path().join("node"));
    let rpc = node.rpc();
    assert_eq!(rpc.call("eth_chainId", json!([])), json!("0x7a69"));
    assert_eq!(rpc.call("net_version", json!([])), json!("31337"));
    let alice = DEV_ACCOUNTS[0].address;
    let alice_hex = hex_data(&alice);

    // A Flow submission paid at pricePerSector, signed like any wallet would.
    let data = random_bytes(11, 3 * 256 * 1024 + 5);
    let tree = FileTree::from_bytes(&data).expect("tree");
    let sectors: u64 = tree.nodes().iter().map(|node| 1u64 << node.height).sum();
    let price = quantity(&rpc.call("eth_call", json!([{ "to": "0x0000000000000000000000000000000000001001", "data": "0x61ec5082" }, "latest"])));
    let fee = U256::from(u128::from(sectors) * price);
    let raw = eip1559(
        &key(0),
        CHAIN_ID,
        0,
        FLOW_ADDRESS,
        fee,
        submit_calldata(&tree, alice),
    );
    let hash = rpc.call("eth_sendRawTransaction", json!([hex_data(&raw)]));
    let receipt = rpc.call("eth_getTransactionReceipt", json!([hash]));
    assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
    assert_eq!(receipt["logs"].as_array().map(Vec::len), Some(1));
    let logs = rpc.call(
        "eth_getLogs",
        json!([{ "fromBlock": "0x0", "toBlock": "latest", "address": hex_data(&FLOW_ADDRESS) }]),
    );
    assert_eq!(logs.as_array().map(Vec::len), Some(1));
    let transaction = rpc.call("eth_getTransactionByHash", json!([hash]));
    assert_eq!(transaction["from"], json!(alice_hex));
    let block = rpc.call("eth_getBlockByNumber", json!(["finalized", false]));
    assert_eq!(block["transactions"], json!([hash]));

    // The storage side learned of the file from the Submit log; its segments go in.
    let info = rpc.call("zgs_getFileInfo", json!([tree.root(), false]));
    let tx_seq = info["tx"]["seq"]
        .as_u64()
        .expect("the log sync announced the file");
    for index in 0..tree.layout().data_segments {
        rpc.call(
            "zgs_uploadSegmentByTxSeq",
            json!([segment_json(&tree, &data, index), tx_seq]),
        );
    }
    assert_eq!(
        rpc.call("zgs_checkFileFinalized", json!([tx_seq])),
        json!(true)
    );

    // Refused transactions: each a clear error, none changes balances, nonces or blocks.
    let state = |rpc: &Rpc| {
        (
            rpc.call("eth_getBalance", json!([alice_hex, "latest"])),
            rpc.call("eth_getTransactionCount", json!([alice_hex, "pending"])),
            rpc.call("eth_blockNumber", json!([])),
        )
    };
    let before = state(&rpc);
    let refusal = |raw: &[u8]| {
        let answer = send(&rpc, raw);
        answer["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("must be refused: {answer}"))
            .to_string()
    };
    assert!(refusal(&raw).contains("already"), "replay");
    let gap = eip1559(&key(0), CHAIN_ID, 5, [7; 20], U256::from(1), vec![]);
    assert!(refusal(&gap).contains("nonce too high"));
    let wrong_chain = eip1559(&key(0), 1, 1, [7; 20], U256::from(1), vec![]);
    assert!(refusal(&wrong_chain).contains("chain"));
    let poor: PrivateKeySigner =
        "0x0101010101010101010101010101010101010101010101010101010101010101"
            .parse()
            .expect("key");
    let broke = eip1559(&poor, CHAIN_ID, 0, [7; 20], U256::from(1), vec![]);
    assert!(refusal(&broke).contains("insufficient funds"));
    let mut tampered = eip1559(&key(0), CHAIN_ID, 1, [7; 20], U256::from(1), vec![]);
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    refusal(&tampered);
    refusal(&[0xf8, 0x01, 0x02]);
    let unprotected = {
        let tx = TxLegacy {
            chain_id: None,
            nonce: 1,
            gas_price: GAS_PRICE,
            gas_limit: 21_000,
            to: TxKind::Call([7u8; 20].into()),
            value: U256::from(1),
            input: Bytes::new(),
        };
        let signature = key(0).sign_hash_sync(&tx.signature_hash()).expect("signs");
        TxEnvelope::Legacy(tx.into_signed(signature)).encoded_2718()
    };
    refusal(&unprotected);
    let oversized = rpc.raw(
        "eth_sendRawTransaction",
        json!([hex_data(&vec![0u8; 200 * 1024])]),
    );
    assert_eq!(oversized["error"]["data"]["kind"], json!("data_too_large"));
    assert_eq!(state(&rpc), before, "refused transactions changed state");

    // Reverts come back the way ethers decodes them.
    let unknown = rpc.raw(
        "eth_call",
        json!([{ "to": hex_data(&FLOW_ADDRESS), "data": "0xdeadbeef" }, "latest"]),
    );
    assert_eq!(unknown["error"]["code"], json!(3));
    assert!(
        unknown["error"]["data"]
            .as_str()
            .is_some_and(|data| data.starts_with("0x08c379a0")),
        "{unknown}"
    );
    // An underpaid submission is mined as a revert and announces no file.
    let other = FileTree::from_bytes(&random_bytes(12, 1000)).expect("tree");
    let underpaid = eip1559(
        &key(0),
        CHAIN_ID,
        1,
        FLOW_ADDRESS,
        U256::from(1),
        submit_calldata(&other, alice),
    );
    let hash = rpc.call("eth_sendRawTransaction", json!([hex_data(&underpaid)]));
    assert_eq!(
        rpc.call("eth_getTransactionReceipt", json!([hash]))["status"],
        json!("0x0")
    );
    assert_eq!(
        rpc.call("zgs_getFileInfo", json!([other.root(), false])),
        Value::Null
    );

    let wide = rpc.raw(
        "eth_getLogs",
        json!([{ "fromBlock": "0x0", "toBlock": "0x2710" }]),
    );
    assert_eq!(wide["error"]["data"]["kind"], json!("log_range_too_large"));
    let old = rpc.raw("eth_getBalance", json!([alice_hex, "0x0"]));
    assert_eq!(old["error"]["data"]["kind"], json!("historical_state"));

    // Everything answered above survives kill -9: the chain replays to the same state, and the
    // file stays finalized and readable.
    let after = state(&rpc);
    let head = rpc.call("eth_getBlockByNumber", json!(["latest", false]));
    let data_dir = node.data_dir.clone();
    node.kill9();
    let node = NodeProcess::start(&data_dir);
    let rpc = node.rpc();
    assert_eq!(
        state(&rpc),
        after,
        "balances, nonces and height after restart"
    );
    assert_eq!(
        rpc.call("eth_getBlockByNumber", json!(["latest", false]))["hash"],
        head["hash"]
    );
    assert_eq!(
        rpc.call("eth_getTransactionReceipt", json!([hash]))["status"],
        json!("0x0")
    );
    assert_eq!(
        rpc.call("zgs_checkFileFinalized", json!([tx_seq])),
        json!(true)
    );
    let segment = rpc.call("zgs_downloadSegmentWithProofByTxSeq", json!([tx_seq, 0]));
    assert!(segment["data"].is_string(), "{segment}");
    node.stop();
}
