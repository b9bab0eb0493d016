//! Blocks, transactions and their hashes.
//!
//! Hashes use our own canonical encoding (fixed-width big-endian integers, length-prefixed
//! byte strings, a version tag), not Ethereum RLP: nothing outside zerog recomputes them, and
//! the Ethereum JSON-RPC facade only shows them. Changing the encoding changes every block
//! hash, so it carries a version.

use crate::hex_serde;
use crate::receipt::Receipt;
use crate::submission::{Address, Submission, SubmitEvent};
use merkle::keccak::keccak256;
use serde::{Deserialize, Serialize};
use types::H256;

/// Prefix of every encoded block header: bump it when the encoding changes.
/// v2 added receipts, the accounts root and gas used: v1 blocks (no accounts) are refused.
const BLOCK_ENCODING: &[u8] = b"zerog-chain-lite-block-v2";
const TRANSACTION_ENCODING: &[u8] = b"zerog-chain-lite-tx-v1";

/// A state transition: an unsigned dev Flow submission (`zerog_submit`, no fee, no gas, no
/// nonce) or a signed Ethereum transaction kept as its raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Transaction {
    FlowSubmit {
        #[serde(with = "hex_serde::address")]
        sender: Address,
        submission: Submission,
    },
    /// An `eth_sendRawTransaction` payload, exactly as received; replay decodes it again.
    Signed {
        #[serde(with = "hex_serde::bytes")]
        raw: Vec<u8>,
    },
}

impl Transaction {
    /// keccak256 of the canonical encoding; for a signed transaction keccak256 of its raw bytes,
    /// the Ethereum transaction hash.
    pub fn hash(&self) -> H256 {
        if let Transaction::Signed { raw } = self {
            return keccak256(raw);
        }
        let mut encoded = Vec::new();
        encoded.extend_from_slice(TRANSACTION_ENCODING);
        match self {
            Transaction::FlowSubmit { sender, submission } => {
                encoded.push(1);
                encoded.extend_from_slice(sender);
                encoded.extend_from_slice(&submission.length.to_be_bytes());
                encoded.extend_from_slice(&(submission.tags.len() as u64).to_be_bytes());
                encoded.extend_from_slice(&submission.tags);
                encoded.extend_from_slice(&(submission.nodes.len() as u64).to_be_bytes());
                for node in &submission.nodes {
                    encoded.extend_from_slice(&node.height.to_be_bytes());
                    encoded.extend_from_slice(node.root.as_bytes());
                }
            }
            Transaction::Signed { raw } => encoded.extend_from_slice(raw),
        }
        keccak256(&encoded)
    }
}

/// What a block commits to. `hash` is derived from the other fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockHeader {
    pub number: u64,
    pub parent_hash: H256,
    pub timestamp_ms: u64,
    /// keccak256 over the transaction hashes in order.
    pub transactions_root: H256,
    /// Flow state after the block.
    pub flow_root: H256,
    pub flow_length: u64,
    pub num_submissions: u64,
    /// keccak256 over the receipts' canonical encodings (see `receipt`).
    pub receipts_root: H256,
    /// keccak256 over every account (address, balance, nonce) in address order after the block.
    pub accounts_root: H256,
    pub gas_used: u64,
    pub hash: H256,
}

impl BlockHeader {
    /// The hash of every field but `hash` itself.
    pub fn compute_hash(&self) -> H256 {
        let mut encoded = Vec::with_capacity(BLOCK_ENCODING.len() + 8 * 5 + 32 * 5);
        encoded.extend_from_slice(BLOCK_ENCODING);
        encoded.extend_from_slice(&self.number.to_be_bytes());
        encoded.extend_from_slice(self.parent_hash.as_bytes());
        encoded.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        encoded.extend_from_slice(self.transactions_root.as_bytes());
        encoded.extend_from_slice(self.flow_root.as_bytes());
        encoded.extend_from_slice(&self.flow_length.to_be_bytes());
        encoded.extend_from_slice(&self.num_submissions.to_be_bytes());
        encoded.extend_from_slice(self.receipts_root.as_bytes());
        encoded.extend_from_slice(self.accounts_root.as_bytes());
        encoded.extend_from_slice(&self.gas_used.to_be_bytes());
        keccak256(&encoded)
    }
}

/// A sealed block: header, the transactions it executed, their receipts, and the Flow
/// `Submit` events (also in the receipts as logs; kept apart for the node's log sync).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    pub header: BlockHeader,
    pub transactions: Vec<Transaction>,
    /// One per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// `Submit` events in transaction order (one per Flow submission).
    pub submit_events: Vec<SubmitEvent>,
}

impl Block {
    pub fn number(&self) -> u64 {
        self.header.number
    }

    pub fn hash(&self) -> H256 {
        self.header.hash
    }

    pub fn parent_hash(&self) -> H256 {
        self.header.parent_hash
    }

    pub fn timestamp_ms(&self) -> u64 {
        self.header.timestamp_ms
    }
}

/// keccak256 over the transaction hashes concatenated (keccak of nothing for no transactions).
pub fn transactions_root(transactions: &[Transaction]) -> H256 {
    let mut hashes = Vec::with_capacity(transactions.len() * 32);
    for transaction in transactions {
        hashes.extend_from_slice(transaction.hash().as_bytes());
    }
    keccak256(&hashes)
}
