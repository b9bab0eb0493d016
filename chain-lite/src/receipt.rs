//! Receipts and logs in Ethereum's shape, their canonical encoding, and log filters.
//!
//! A receipt is produced when its transaction executes and is stored in the block, so replay
//! can compare it field by field with re-execution. Block hash and log indices within the
//! block are not stored: they follow from where the receipt sits, and lookups add them.

use crate::hex_serde;
use crate::submission::Address;
use merkle::keccak::keccak256;
use serde::{Deserialize, Serialize};
use types::H256;

/// Prefix of the receipt encoding hashed into `receipts_root`.
const RECEIPT_ENCODING: &[u8] = b"zerog-chain-lite-receipt-v1";

/// An Ethereum log: emitting address, up to four topics, data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    #[serde(with = "hex_serde::address")]
    pub address: Address,
    pub topics: Vec<H256>,
    #[serde(with = "hex_serde::bytes")]
    pub data: Vec<u8>,
}

/// What a transaction did. Unsigned dev submissions (`Transaction::FlowSubmit`) get one too,
/// with no gas, so every transaction has a receipt and every event a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub transaction_hash: H256,
    pub transaction_index: u64,
    pub block_number: u64,
    #[serde(with = "hex_serde::address")]
    pub from: Address,
    #[serde(with = "hex_serde::address")]
    pub to: Address,
    /// true: success (status 1); false: reverted (status 0).
    pub status: bool,
    pub gas_used: u64,
    /// Gas used by this and every earlier transaction of the block.
    pub cumulative_gas_used: u64,
    /// Wei per gas, as a decimal string: u128 does not survive every JSON reader.
    #[serde(with = "u128_string")]
    pub effective_gas_price: u128,
    pub logs: Vec<Log>,
    /// ABI `Error(string)` of a reverted call; empty on success.
    #[serde(with = "hex_serde::bytes")]
    pub revert_data: Vec<u8>,
}

mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u128, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Receipt {
    /// Status as Ethereum shows it.
    pub fn status_code(&self) -> u8 {
        u8::from(self.status)
    }

    /// Canonical encoding (fixed-width integers, length-prefixed lists), for `receipts_root`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(RECEIPT_ENCODING);
        out.extend_from_slice(self.transaction_hash.as_bytes());
        out.extend_from_slice(&self.transaction_index.to_be_bytes());
        out.extend_from_slice(&self.block_number.to_be_bytes());
        out.extend_from_slice(&self.from);
        out.extend_from_slice(&self.to);
        out.push(self.status_code());
        out.extend_from_slice(&self.gas_used.to_be_bytes());
        out.extend_from_slice(&self.cumulative_gas_used.to_be_bytes());
        out.extend_from_slice(&self.effective_gas_price.to_be_bytes());
        out.extend_from_slice(&(self.logs.len() as u64).to_be_bytes());
        for log in &self.logs {
            out.extend_from_slice(&log.address);
            out.extend_from_slice(&(log.topics.len() as u64).to_be_bytes());
            for topic in &log.topics {
                out.extend_from_slice(topic.as_bytes());
            }
            out.extend_from_slice(&(log.data.len() as u64).to_be_bytes());
            out.extend_from_slice(&log.data);
        }
        out.extend_from_slice(&(self.revert_data.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.revert_data);
    }
}

/// keccak256 over the receipts' canonical encodings in order.
pub fn receipts_root(receipts: &[Receipt]) -> H256 {
    let mut encoded = Vec::new();
    for receipt in receipts {
        receipt.encode(&mut encoded);
    }
    keccak256(&encoded)
}

/// An `eth_getLogs` query over sealed blocks `from_block..=to_block`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub from_block: u64,
    pub to_block: u64,
    /// Emitting addresses; empty matches any.
    pub addresses: Vec<Address>,
    /// Per position: `None` matches anything, `Some(set)` any topic in the set (Ethereum's
    /// OR-within, AND-across rule). A log with fewer topics than constrained positions fails.
    pub topics: Vec<Option<Vec<H256>>>,
}

impl LogFilter {
    pub fn matches(&self, log: &Log) -> bool {
        if !self.addresses.is_empty() && !self.addresses.contains(&log.address) {
            return false;
        }
        self.topics
            .iter()
            .enumerate()
            .all(|(position, wanted)| match wanted {
                None => true,
                Some(set) => log
                    .topics
                    .get(position)
                    .is_some_and(|topic| set.contains(topic)),
            })
    }
}

/// A log where it sits: what `eth_getLogs` returns for each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub log: Log,
    pub block_number: u64,
    pub block_hash: H256,
    pub transaction_hash: H256,
    pub transaction_index: u64,
    /// Position among all logs of the block.
    pub log_index: u64,
}
