//! Flow epochs and the mining context, as 0G's `Flow` contract keeps them.
//!
//! An epoch is `blocksPerEpoch` blocks counted from `firstBlock` (chain-lite's Flow exists from
//! genesis with no deploy delay, so `firstBlock` is 0). Epochs do not advance on their own:
//! the contract's `makeContext` advances them when called — by anyone, and by every `submit`
//! before it inserts — one epoch at a time while `firstBlock + (epoch + 1) × blocksPerEpoch`
//! is below the executing block's number. Each new epoch:
//!
//! - pushes the flow root into the root history (0G's `DigestHistory`, a ring of
//!   [`ROOT_HISTORY_WINDOW`] entries);
//! - takes as `blockDigest` the hash of the block where the epoch starts (`mineStart`) and as
//!   `digest` `keccak256(abi.encode(blockDigest, flowRoot, flowLength))`, and records the flow
//!   range `[epochStartPosition, flowLength)` under that digest; when the start block is more
//!   than [`BLOCK_HASH_WINDOW`] blocks back (0G reads it through EIP-2935, which keeps 8191),
//!   both digests are `EMPTY_HASH` (keccak of nothing) and no range is recorded;
//! - becomes the `MineContext` and emits `NewEpoch(sender, epoch, flowRoot, submissionIndex,
//!   flowLength, digest)`.
//!
//! Execution plans the new epochs from the state ([`EpochStep`]s, pure) and applies them
//! afterwards, like every module call (see `modules`). Two limits the contract does not have,
//! because chain-lite has no gas to stop a runaway loop: one call advances at most
//! [`MAX_EPOCHS_PER_CALL`] epochs (the rest on later calls, as the contract's
//! `makeContextFixedTimes` would), and `blocksPerEpoch = 0` disables epochs (the contract would
//! loop until out of gas).

use crate::block::Block;
use crate::receipt::Log;
use crate::submission::Address;
use alloy_primitives::{B256, U256};
use alloy_sol_types::SolEvent;
use merkle::keccak::keccak256;
use std::collections::HashMap;
use types::H256;

/// `Flow.firstBlock`: the module exists from genesis.
pub const FIRST_BLOCK: u64 = 0;
/// `Flow.deployDelay`.
pub const DEPLOY_DELAY: u64 = 0;
/// Capacity of the root history (the contract's `ROOT_AVAILABLE_WINDOW`).
pub const ROOT_HISTORY_WINDOW: usize = 1000;
/// How far back an epoch's start block may be and still give its hash (EIP-2935's window,
/// which 0G's `Blockhash.blockHash` reads); older starts get `EMPTY_HASH`.
pub const BLOCK_HASH_WINDOW: u64 = 8191;
/// Most epochs one call advances (see the module header).
pub const MAX_EPOCHS_PER_CALL: u64 = 1024;
/// keccak256 of no bytes: the contract's `EMPTY_HASH`.
pub const EMPTY_HASH: H256 = H256(
    alloy_primitives::b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470").0,
);

/// The contract's `MineContext`: what miners of the current epoch answer for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MineContext {
    pub epoch: u64,
    /// Block where the epoch starts.
    pub mine_start: u64,
    pub flow_root: H256,
    pub flow_length: u64,
    /// Hash of block `mine_start`, or `EMPTY_HASH`.
    pub block_digest: H256,
    /// `keccak256(abi.encode(block_digest, flow_root, flow_length))`, or `EMPTY_HASH`.
    pub digest: H256,
}

impl MineContext {
    pub(crate) fn to_abi(self) -> crate::abi::flow::MineContext {
        crate::abi::flow::MineContext {
            epoch: U256::from(self.epoch),
            mineStart: U256::from(self.mine_start),
            flowRoot: B256::from(self.flow_root.0),
            flowLength: U256::from(self.flow_length),
            blockDigest: B256::from(self.block_digest.0),
            digest: B256::from(self.digest.0),
        }
    }
}

/// Flow sectors `[start, end)` that an epoch's context covers, with its digest
/// (`EpochRangeWithContextDigest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochRange {
    pub start: u64,
    pub end: u64,
    pub digest: H256,
}

impl EpochRange {
    pub(crate) fn to_abi(self) -> crate::abi::flow::EpochRangeWithContextDigest {
        crate::abi::flow::EpochRangeWithContextDigest {
            start: u128::from(self.start),
            end: u128::from(self.end),
            digest: B256::from(self.digest.0),
        }
    }
}

/// `keccak256(abi.encode(bytes32 blockDigest, bytes32 flowRoot, uint256 flowLength))`.
pub fn context_digest(block_digest: H256, flow_root: H256, flow_length: u64) -> H256 {
    let mut encoded = [0u8; 96];
    encoded[..32].copy_from_slice(block_digest.as_bytes());
    encoded[32..64].copy_from_slice(flow_root.as_bytes());
    encoded[88..].copy_from_slice(&flow_length.to_be_bytes());
    keccak256(&encoded)
}

/// One new epoch, decided by `plan` and written by `apply`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EpochStep {
    pub context: MineContext,
    /// The range recorded under `context.digest` (none for an `EMPTY_HASH` context).
    pub range: Option<EpochRange>,
    /// `submissionIndex` when the epoch began (for `NewEpoch`).
    pub submission_index: u64,
}

/// The contract's `DigestHistory`: the last `ROOT_HISTORY_WINDOW` roots by insertion index.
#[derive(Clone, Debug)]
struct DigestHistory {
    slots: Vec<H256>,
    next_index: u64,
    /// Every inserted root folded in order: the window is a function of it (see `state`).
    digest: H256,
}

impl DigestHistory {
    fn new() -> DigestHistory {
        DigestHistory {
            slots: vec![H256::ZERO; ROOT_HISTORY_WINDOW],
            next_index: 0,
            digest: H256::ZERO,
        }
    }

    fn insert(&mut self, digest: H256) {
        let slot = (self.next_index % self.slots.len() as u64) as usize;
        self.slots[slot] = digest;
        self.next_index += 1;
        self.digest = crate::state::Encoder::default()
            .h256(self.digest)
            .h256(digest)
            .hash();
    }

    fn at(&self, index: u64) -> Option<H256> {
        let capacity = self.slots.len() as u64;
        let oldest = self.next_index.saturating_sub(capacity);
        (index < self.next_index && index >= oldest)
            .then(|| self.slots[(index % capacity) as usize])
    }
}

/// Epoch state of the Flow module.
#[derive(Clone, Debug)]
pub(crate) struct Epochs {
    pub epoch: u64,
    /// `epochStartPosition`: where the next recorded range starts.
    pub start_position: u64,
    pub context: MineContext,
    /// `epochRangeHistory`, oldest first (positions increase).
    pub ranges: Vec<EpochRange>,
    /// `epochRanges`: digest → index in `ranges`.
    by_digest: HashMap<H256, usize>,
    /// `ranges` folded in order (see `state`), so the state root does not rehash them all.
    ranges_digest: H256,
    root_history: DigestHistory,
}

impl Epochs {
    /// Epoch 0 over the empty flow (root and length of the identifier alone).
    pub fn new(flow_root: H256, flow_length: u64) -> Epochs {
        Epochs {
            epoch: 0,
            start_position: 0,
            context: MineContext {
                epoch: 0,
                mine_start: FIRST_BLOCK,
                flow_root,
                flow_length,
                block_digest: EMPTY_HASH,
                digest: EMPTY_HASH,
            },
            ranges: Vec::new(),
            by_digest: HashMap::new(),
            ranges_digest: H256::ZERO,
            root_history: DigestHistory::new(),
        }
    }

    /// Writes the epoch state in the state root's encoding (`by_digest` is an index of
    /// `ranges`, so it is not written).
    pub(crate) fn encode(&self, encoder: &mut crate::state::Encoder) {
        let context = &self.context;
        encoder
            .u64(self.epoch)
            .u64(self.start_position)
            .u64(context.epoch)
            .u64(context.mine_start)
            .h256(context.flow_root)
            .u64(context.flow_length)
            .h256(context.block_digest)
            .h256(context.digest)
            .u64(self.ranges.len() as u64)
            .h256(self.ranges_digest)
            .u64(self.root_history.next_index)
            .h256(self.root_history.digest);
    }

    /// `getEpochRange`: the range recorded under `digest`, if any.
    pub fn range(&self, digest: &H256) -> Option<EpochRange> {
        self.by_digest.get(digest).map(|&index| self.ranges[index])
    }

    /// `rootHistory.at(index)`: the flow root epoch `index + 1` began with, while in the window.
    pub fn root_at(&self, index: u64) -> Option<H256> {
        self.root_history.at(index)
    }

    /// Writes a planned epoch and returns its `NewEpoch` log.
    pub fn apply(&mut self, sender: Address, step: EpochStep) -> Log {
        let context = step.context;
        self.root_history.insert(context.flow_root);
        if let Some(range) = step.range {
            self.by_digest.insert(range.digest, self.ranges.len());
            self.ranges.push(range);
            self.ranges_digest = crate::state::Encoder::default()
                .h256(self.ranges_digest)
                .u64(range.start)
                .u64(range.end)
                .h256(range.digest)
                .hash();
            self.start_position = range.end;
        }
        self.epoch = context.epoch;
        self.context = context;
        let data = crate::abi::flow::NewEpoch {
            sender: sender.into(),
            index: U256::from(context.epoch),
            startMerkleRoot: B256::from(context.flow_root.0),
            submissionIndex: U256::from(step.submission_index),
            flowLength: U256::from(context.flow_length),
            context: B256::from(context.digest.0),
        }
        .encode_log_data();
        Log {
            address: crate::modules::FLOW_ADDRESS,
            topics: data.topics().iter().map(|topic| H256(topic.0)).collect(),
            data: data.data.to_vec(),
        }
    }
}

/// What `plan_steps` reads from the chain.
pub(crate) struct EpochInputs<'a> {
    pub blocks_per_epoch: u64,
    /// Number of the block the call executes in.
    pub block_number: u64,
    /// The sealed blocks, genesis first (for the epoch start's hash).
    pub blocks: &'a [Block],
    pub flow_root: H256,
    pub flow_length: u64,
    pub submission_index: u64,
}

/// The epochs `makeContext` would start now, at most `limit` of them (pure).
pub(crate) fn plan_steps(epochs: &Epochs, inputs: &EpochInputs<'_>, limit: u64) -> Vec<EpochStep> {
    let mut steps = Vec::new();
    if inputs.blocks_per_epoch == 0 {
        return steps;
    }
    let mut epoch = epochs.epoch;
    let mut start_position = epochs.start_position;
    while (steps.len() as u64) < limit {
        let Some(next_start) = epoch
            .checked_add(1)
            .and_then(|next| next.checked_mul(inputs.blocks_per_epoch))
            .and_then(|blocks| blocks.checked_add(FIRST_BLOCK))
        else {
            break;
        };
        if next_start >= inputs.block_number {
            break;
        }
        let hash = (next_start.saturating_add(BLOCK_HASH_WINDOW) >= inputs.block_number)
            .then(|| usize::try_from(next_start).ok())
            .flatten()
            .and_then(|number| inputs.blocks.get(number))
            .map(Block::hash);
        let (block_digest, digest, range) = match hash {
            Some(block_digest) => {
                let digest = context_digest(block_digest, inputs.flow_root, inputs.flow_length);
                let range = EpochRange {
                    start: start_position,
                    end: inputs.flow_length,
                    digest,
                };
                start_position = inputs.flow_length;
                (block_digest, digest, Some(range))
            }
            None => (EMPTY_HASH, EMPTY_HASH, None),
        };
        epoch += 1;
        steps.push(EpochStep {
            context: MineContext {
                epoch,
                mine_start: next_start,
                flow_root: inputs.flow_root,
                flow_length: inputs.flow_length,
                block_digest,
                digest,
            },
            range,
            submission_index: inputs.submission_index,
        });
    }
    steps
}

/// `queryContextAtPosition`'s search over the recorded ranges followed by `planned` ones.
pub(crate) fn range_at_position(
    recorded: &[EpochRange],
    planned: &[EpochStep],
    position: u64,
) -> Option<EpochRange> {
    let planned: Vec<EpochRange> = planned.iter().filter_map(|step| step.range).collect();
    let at = |index: usize| {
        if index < recorded.len() {
            recorded[index]
        } else {
            planned[index - recorded.len()]
        }
    };
    let (mut low, mut high) = (0, recorded.len() + planned.len());
    while high > low {
        let middle = (low + high) / 2;
        let range = at(middle);
        if position >= range.end {
            low = middle + 1;
        } else if position >= range.start {
            return Some(range);
        } else {
            high = middle;
        }
    }
    None
}
