//! The chain state machine: pending block, sealing, views and replay.
//!
//! A transaction executes when it is submitted (so the caller gets its receipt, with the tx
//! sequence number and flow position, at once) and joins the pending block; `seal_block` turns
//! the pending block into a final one. Views answer for the executed state, which includes the
//! pending block; the node seals right after submitting, so the two differ only in between.

use crate::block::{Block, BlockHeader, Transaction, transactions_root};
use crate::submission::{Address, Submission, SubmissionError, SubmitEvent};
use merkle::flow::{FlowError, FlowLog};
use serde::{Deserialize, Serialize};
use types::{H256, SectorIndex, TxSeq};

/// Fixed parameters of a chain. Part of what replay must be given identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainConfig {
    pub chain_id: u64,
    pub genesis_timestamp_ms: u64,
    /// Most nodes in one submission (0G's SDKs send at most 4).
    pub max_nodes_per_submission: usize,
    pub max_tags_bytes: usize,
    pub max_transactions_per_block: usize,
    /// Widest block range one `logs` query may cover.
    pub max_log_block_range: u64,
    /// Most events one `logs` query may return, whatever the caller asks.
    pub max_logs: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            // 0G's Galileo testnet id; zerog's own chain may pick another.
            chain_id: 16_601,
            genesis_timestamp_ms: 0,
            max_nodes_per_submission: 4,
            max_tags_bytes: 4096,
            max_transactions_per_block: 10_000,
            max_log_block_range: 10_000,
            max_logs: 10_000,
        }
    }
}

/// What a Flow submission produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitReceipt {
    pub tx_seq: TxSeq,
    /// First sector of the file in the flow.
    pub start: SectorIndex,
    /// Sectors occupied (sum of 2^height).
    pub length: u64,
    /// Zero sectors inserted before `start`.
    pub padding_before: u64,
    pub identity: H256,
    /// Flow root right after this submission (`getFlowRootByTxSeq`).
    pub flow_root: H256,
    /// The block the submission is in (the pending one until sealed).
    pub block_number: u64,
    pub transaction_hash: H256,
}

/// Why the chain refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("invalid submission: {source}")]
    InvalidSubmission {
        #[source]
        source: SubmissionError,
    },
    #[error("the flow refused the submission: {source}")]
    Flow {
        #[source]
        source: FlowError,
    },
    #[error("the pending block already holds {max} transactions")]
    BlockFull { max: usize },
    #[error("log range {from_block}..={to_block} is inverted")]
    LogRangeInverted { from_block: u64, to_block: u64 },
    #[error("log range {from_block}..={to_block} spans more than {max_blocks} blocks")]
    LogRangeTooLarge {
        from_block: u64,
        to_block: u64,
        max_blocks: u64,
    },
    #[error(
        "more than {max_logs} logs in blocks {from_block}..={to_block}; query a narrower range"
    )]
    TooManyLogs {
        from_block: u64,
        to_block: u64,
        max_logs: usize,
    },
    #[error("replay: block {number}: {reason}")]
    Replay { number: u64, reason: String },
}

/// The chain: sealed blocks, the pending block and the Flow state.
#[derive(Clone, Debug)]
pub struct Chain {
    config: ChainConfig,
    blocks: Vec<Block>,
    pending_transactions: Vec<Transaction>,
    pending_events: Vec<SubmitEvent>,
    flow: FlowLog,
    /// `rootByTxSeq`: the flow root right after each submission.
    flow_roots: Vec<H256>,
}

impl Chain {
    /// A chain with its genesis block (number 0, no transactions) sealed.
    pub fn new(config: ChainConfig) -> Chain {
        let flow = FlowLog::new();
        let mut header = BlockHeader {
            number: 0,
            parent_hash: H256::ZERO,
            timestamp_ms: config.genesis_timestamp_ms,
            transactions_root: transactions_root(&[]),
            flow_root: flow.root(),
            flow_length: flow.length().0,
            num_submissions: 0,
            hash: H256::ZERO,
        };
        header.hash = header.compute_hash();
        let genesis = Block {
            header,
            transactions: Vec::new(),
            submit_events: Vec::new(),
        };
        Chain {
            config,
            blocks: vec![genesis],
            pending_transactions: Vec::new(),
            pending_events: Vec::new(),
            flow,
            flow_roots: Vec::new(),
        }
    }

    /// Rebuilds a chain from its sealed blocks (genesis first), re-executing every transaction
    /// and checking each block's header and events against what execution produces.
    pub fn replay(config: ChainConfig, blocks: Vec<Block>) -> Result<Chain, ChainError> {
        let mut chain = Chain::new(config);
        let mut blocks = blocks.into_iter();
        let genesis = blocks.next().ok_or(ChainError::Replay {
            number: 0,
            reason: "no genesis block".to_string(),
        })?;
        if genesis != chain.blocks[0] {
            return Err(ChainError::Replay {
                number: 0,
                reason: "genesis differs from this configuration's".to_string(),
            });
        }
        for stored in blocks {
            let number = stored.header.number;
            let mismatch = |reason: &str| ChainError::Replay {
                number,
                reason: reason.to_string(),
            };
            if number != chain.head().number() + 1 {
                return Err(mismatch("block numbers are not consecutive"));
            }
            for transaction in &stored.transactions {
                match transaction {
                    Transaction::FlowSubmit { sender, submission } => {
                        chain.submit(*sender, submission.clone()).map_err(|error| {
                            ChainError::Replay {
                                number,
                                reason: format!("transaction refused: {error}"),
                            }
                        })?;
                    }
                }
            }
            let sealed = chain.seal_block(stored.header.timestamp_ms);
            if sealed.header.timestamp_ms != stored.header.timestamp_ms {
                return Err(mismatch("timestamp goes backwards"));
            }
            if sealed.submit_events != stored.submit_events {
                return Err(mismatch("events differ from re-execution"));
            }
            if sealed.header != stored.header {
                return Err(mismatch("header differs from re-execution"));
            }
        }
        Ok(chain)
    }

    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// Validates and executes a Flow submission into the pending block.
    pub fn submit(
        &mut self,
        sender: Address,
        submission: Submission,
    ) -> Result<SubmitReceipt, ChainError> {
        if self.pending_transactions.len() >= self.config.max_transactions_per_block {
            return Err(ChainError::BlockFull {
                max: self.config.max_transactions_per_block,
            });
        }
        submission
            .validate(
                self.config.max_nodes_per_submission,
                self.config.max_tags_bytes,
            )
            .map_err(|source| ChainError::InvalidSubmission { source })?;
        let placement = self
            .flow
            .append(&submission.nodes)
            .map_err(|source| ChainError::Flow { source })?;
        let tx_seq = TxSeq(self.flow_roots.len() as u64);
        let flow_root = self.flow.root();
        self.flow_roots.push(flow_root);
        let event = SubmitEvent {
            sender,
            identity: submission.digest(),
            submission_index: tx_seq,
            start_pos: placement.start,
            length: placement.end.0 - placement.start.0,
            submission,
        };
        let transaction = Transaction::FlowSubmit {
            sender,
            submission: event.submission.clone(),
        };
        let receipt = SubmitReceipt {
            tx_seq,
            start: placement.start,
            length: event.length,
            padding_before: placement.padding_before,
            identity: event.identity,
            flow_root,
            block_number: self.head().number() + 1,
            transaction_hash: transaction.hash(),
        };
        self.pending_transactions.push(transaction);
        self.pending_events.push(event);
        Ok(receipt)
    }

    /// Seals the pending block (possibly empty). Timestamps never go backwards: an earlier
    /// `timestamp_ms` than the parent's is raised to the parent's.
    pub fn seal_block(&mut self, timestamp_ms: u64) -> &Block {
        let parent = &self.blocks[self.blocks.len() - 1].header;
        let transactions = std::mem::take(&mut self.pending_transactions);
        let mut header = BlockHeader {
            number: parent.number + 1,
            parent_hash: parent.hash,
            timestamp_ms: timestamp_ms.max(parent.timestamp_ms),
            transactions_root: transactions_root(&transactions),
            flow_root: self.flow.root(),
            flow_length: self.flow.length().0,
            num_submissions: self.flow_roots.len() as u64,
            hash: H256::ZERO,
        };
        header.hash = header.compute_hash();
        let submit_events = std::mem::take(&mut self.pending_events);
        self.blocks.push(Block {
            header,
            transactions,
            submit_events,
        });
        &self.blocks[self.blocks.len() - 1]
    }

    /// The latest sealed block.
    pub fn head(&self) -> &Block {
        &self.blocks[self.blocks.len() - 1]
    }

    /// The latest final block: with one validator, every sealed block is final.
    pub fn finalized(&self) -> &Block {
        self.head()
    }

    pub fn block(&self, number: u64) -> Option<&Block> {
        usize::try_from(number)
            .ok()
            .and_then(|index| self.blocks.get(index))
    }

    /// All sealed blocks, genesis first (what the node persists).
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Transactions executed but not yet sealed.
    pub fn pending_transactions(&self) -> &[Transaction] {
        &self.pending_transactions
    }

    /// `getFlowRootByTxSeq`: the flow root right after submission `tx_seq`.
    pub fn flow_root_by_tx_seq(&self, tx_seq: TxSeq) -> Option<H256> {
        usize::try_from(tx_seq.0)
            .ok()
            .and_then(|index| self.flow_roots.get(index))
            .copied()
    }

    /// `numSubmissions`.
    pub fn num_submissions(&self) -> u64 {
        self.flow_roots.len() as u64
    }

    /// Flow root and length (sectors, identifier and padding included), as `getFlowContext`.
    pub fn flow_context(&self) -> (H256, SectorIndex) {
        (self.flow.root(), self.flow.length())
    }

    /// The flow log itself, for placement and proofs.
    pub fn flow(&self) -> &FlowLog {
        &self.flow
    }

    /// `Submit` events of sealed blocks `from_block..=to_block` (`to_block` past the head is
    /// read as the head), at most `max_logs` (and the configured cap); a query that would return
    /// more fails rather than truncating silently.
    pub fn logs(
        &self,
        from_block: u64,
        to_block: u64,
        max_logs: usize,
    ) -> Result<Vec<(u64, SubmitEvent)>, ChainError> {
        if from_block > to_block {
            return Err(ChainError::LogRangeInverted {
                from_block,
                to_block,
            });
        }
        let max_blocks = self.config.max_log_block_range;
        if to_block - from_block >= max_blocks {
            return Err(ChainError::LogRangeTooLarge {
                from_block,
                to_block,
                max_blocks,
            });
        }
        let max_logs = max_logs.min(self.config.max_logs);
        let last = to_block.min(self.head().number());
        let mut logs = Vec::new();
        for number in from_block..=last {
            let Some(block) = self.block(number) else {
                break;
            };
            for event in &block.submit_events {
                if logs.len() == max_logs {
                    return Err(ChainError::TooManyLogs {
                        from_block,
                        to_block,
                        max_logs,
                    });
                }
                logs.push((number, event.clone()));
            }
        }
        Ok(logs)
    }
}
