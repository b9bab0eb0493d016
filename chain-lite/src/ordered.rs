//! Execution of blocks whose order a consensus engine decided.
//!
//! A consensus engine orders raw signed transactions; it cannot know which of them the state
//! will accept (a nonce gap, a balance spent by an earlier transaction of the same block), so
//! it checks only what needs no state ([`Prechecked::new`]: decoding, chain id, signature, gas
//! price, sizes) and chain-lite executes the finalized block in order, dropping each transaction
//! the state refuses. Dropping is deterministic (the same block on the same state drops the same
//! transactions for the same reasons), and a dropped transaction leaves no trace in the sealed
//! block, so the sealed block replays with [`Chain::replay`] like any other.

use crate::block::{Block, HEADER_VERSION};
use crate::chain::{Chain, ChainConfig, ChainError};
use crate::tx::{SignedTransaction, TxError, decode_transaction};
use types::H256;

/// A raw signed transaction that passed the stateless checks, with what they decoded (so
/// execution does not recover the sender again).
#[derive(Clone, Debug, PartialEq)]
pub struct Prechecked {
    pub(crate) raw: Vec<u8>,
    pub(crate) tx: SignedTransaction,
}

impl Prechecked {
    /// The checks every validator applies to a transaction before it enters a block, against
    /// the chain's fixed parameters alone: size, decoding, chain id, signature, gas price.
    pub fn new(config: &ChainConfig, raw: Vec<u8>) -> Result<Prechecked, TxError> {
        let tx = decode_transaction(
            &raw,
            config.chain_id,
            config.gas_price,
            config.max_calldata_bytes,
        )?;
        Ok(Prechecked { raw, tx })
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn transaction(&self) -> &SignedTransaction {
        &self.tx
    }

    pub fn hash(&self) -> H256 {
        self.tx.hash
    }

    pub fn into_raw(self) -> Vec<u8> {
        self.raw
    }
}

/// One transaction of an ordered block: raw bytes still to be checked, or already checked.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderedTransaction {
    Raw(Vec<u8>),
    Prechecked(Box<Prechecked>),
}

/// A transaction of an ordered block that execution dropped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Its position in the ordered block.
    pub index: usize,
    /// keccak256 of its raw bytes.
    pub hash: H256,
    pub error: TxError,
}

impl Chain {
    /// Executes a finalized consensus block: each transaction in order, dropping those the
    /// state refuses, then seals the block at `timestamp_ms` with a header that names
    /// `consensus_digest`. The pending block must be empty (a chain ordered by consensus takes
    /// transactions only through here).
    pub fn execute_ordered(
        &mut self,
        timestamp_ms: u64,
        consensus_digest: H256,
        transactions: impl IntoIterator<Item = OrderedTransaction>,
    ) -> Result<(&Block, Vec<Dropped>), ChainError> {
        let pending = self.pending_transactions().len();
        if pending > 0 {
            return Err(ChainError::PendingNotEmpty {
                transactions: pending,
            });
        }
        let mut dropped = Vec::new();
        for (index, transaction) in transactions.into_iter().enumerate() {
            let (hash, outcome) = match transaction {
                OrderedTransaction::Prechecked(prechecked) => (
                    prechecked.hash(),
                    self.execute_checked(*prechecked).map(drop),
                ),
                OrderedTransaction::Raw(raw) => {
                    let hash = merkle::keccak::keccak256(&raw);
                    let outcome = Prechecked::new(self.config(), raw)
                        .and_then(|prechecked| self.execute_checked(prechecked).map(drop));
                    (hash, outcome)
                }
            };
            if let Err(error) = outcome {
                dropped.push(Dropped { index, hash, error });
            }
        }
        let block = self.seal(timestamp_ms, HEADER_VERSION, consensus_digest);
        Ok((block, dropped))
    }
}
