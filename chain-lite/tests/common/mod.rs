//! What the chain-lite tests share: transactions signed with the dev keys, sent and sealed.
#![allow(dead_code)]

use alloy_consensus::{SignableTransaction, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolError;
use chain_lite::{Address, Chain, DEV_ACCOUNTS, Receipt};

pub const ETHER: u64 = 1_000_000_000_000_000_000;

pub fn dev_key(index: usize) -> PrivateKeySigner {
    DEV_ACCOUNTS[index].private_key.parse().expect("dev key")
}

/// A legacy transaction from `key` at its next nonce, as a wallet signs it.
pub fn signed(
    chain: &Chain,
    key: &PrivateKeySigner,
    to: Address,
    value: U256,
    input: Vec<u8>,
) -> Vec<u8> {
    let tx = TxLegacy {
        chain_id: Some(chain.config().chain_id),
        nonce: chain.nonce(&key.address().into_array()),
        gas_price: chain.gas_price(),
        gas_limit: 500_000,
        to: TxKind::Call(to.into()),
        value,
        input: Bytes::from(input),
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::Legacy(tx.into_signed(signature)).encoded_2718()
}

/// Sends a transaction and seals its block; its receipt.
pub fn send(
    chain: &mut Chain,
    key: &PrivateKeySigner,
    to: Address,
    value: U256,
    input: Vec<u8>,
) -> Receipt {
    let raw = signed(chain, key, to, value, input);
    let receipt = chain.send_raw_transaction(&raw).expect("accepted");
    let timestamp = chain.head().timestamp_ms() + 1000;
    chain.seal_block(timestamp);
    receipt
}

/// The reason of a reverted receipt.
pub fn revert_reason(receipt: &Receipt) -> String {
    assert!(!receipt.status, "expected a revert: {receipt:?}");
    let data = receipt.revert_data.clone();
    alloy_sol_types::Revert::abi_decode(&data)
        .map(|revert| revert.reason)
        .unwrap_or_else(|_| format!("undecodable revert {data:?}"))
}
