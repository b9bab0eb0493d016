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

/// Prefix of every encoded block header of version 2: receipts, the accounts root and gas used
/// (version 1 blocks, without accounts, are refused).
const BLOCK_ENCODING_V2: &[u8] = b"zerog-chain-lite-block-v2";
/// Prefix of version 3: version 2 plus the state root and the consensus digest.
const BLOCK_ENCODING_V3: &[u8] = b"zerog-chain-lite-block-v3";

/// Header version 2: what data folders written before the state root hold. Their blocks keep
/// replaying as they were sealed; new blocks are sealed at [`HEADER_VERSION`].
pub const HEADER_V2: u8 = 2;
/// The header version new blocks are sealed with: it commits to the whole state
/// ([`BlockHeader::state_root`]) and to the consensus block that ordered it.
pub const HEADER_VERSION: u8 = 3;
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
    /// [`HEADER_V2`] or [`HEADER_VERSION`]; headers stored before versions existed are v2.
    #[serde(default = "header_v2")]
    pub version: u8,
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
    /// keccak256 over every module's state after the block (`Chain::state_root`); zero in v2.
    #[serde(default)]
    pub state_root: H256,
    /// The digest of the consensus block this block executes; zero where no consensus engine
    /// orders blocks (the embedded dev chain) and in v2.
    #[serde(default)]
    pub consensus_digest: H256,
    pub hash: H256,
}

fn header_v2() -> u8 {
    HEADER_V2
}

impl BlockHeader {
    /// The hash of every field but `hash` itself, in the encoding of the header's version
    /// (a v2 header hashes exactly as it did before versions existed).
    pub fn compute_hash(&self) -> H256 {
        let v3 = self.version >= HEADER_VERSION;
        let tag = if v3 {
            BLOCK_ENCODING_V3
        } else {
            BLOCK_ENCODING_V2
        };
        let mut encoded = Vec::with_capacity(tag.len() + 8 * 5 + 32 * 7);
        encoded.extend_from_slice(tag);
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
        if v3 {
            encoded.extend_from_slice(self.state_root.as_bytes());
            encoded.extend_from_slice(self.consensus_digest.as_bytes());
        }
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

    /// Checks that the header hashes to its `hash` and that the transactions and receipts are
    /// the ones it commits to, so a block whose header is trusted (by a parent link or a
    /// finality proof) can be trusted whole. `submit_events` is not committed to; readers of an
    /// untrusted block take the events from the receipts' logs.
    pub fn check_body(&self) -> Result<(), BodyError> {
        let header = &self.header;
        let computed = header.compute_hash();
        if computed != header.hash {
            return Err(BodyError::Hash {
                number: header.number,
                computed,
            });
        }
        if transactions_root(&self.transactions) != header.transactions_root {
            return Err(BodyError::Transactions {
                number: header.number,
            });
        }
        let receipts_match_transactions = self.receipts.len() == self.transactions.len()
            && self
                .receipts
                .iter()
                .zip(&self.transactions)
                .all(|(receipt, transaction)| {
                    receipt.transaction_hash == transaction.hash()
                        && receipt.block_number == header.number
                });
        if !receipts_match_transactions
            || crate::receipt::receipts_root(&self.receipts) != header.receipts_root
        {
            return Err(BodyError::Receipts {
                number: header.number,
            });
        }
        Ok(())
    }
}

/// Why a block's body does not match its header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("block {number}: the header hashes to {computed}, not the hash it carries")]
    Hash { number: u64, computed: H256 },
    #[error("block {number}: the transactions are not the ones the header commits to")]
    Transactions { number: u64 },
    #[error("block {number}: the receipts are not the ones the header commits to")]
    Receipts { number: u64 },
}

/// keccak256 over the transaction hashes concatenated (keccak of nothing for no transactions).
pub fn transactions_root(transactions: &[Transaction]) -> H256 {
    let mut hashes = Vec::with_capacity(transactions.len() * 32);
    for transaction in transactions {
        hashes.extend_from_slice(transaction.hash().as_bytes());
    }
    keccak256(&hashes)
}
