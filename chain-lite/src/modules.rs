//! Native modules at fixed addresses: Flow, Market and Reward, called with Ethereum ABI.
//!
//! Every call runs in two steps. `plan` reads state only: it decodes the calldata, checks
//! everything that can fail (fee, submission shape, flow capacity, claims) and computes the
//! return data and an [`Effect`]. `apply` then performs the effect and cannot fail. So
//! `eth_call` and `eth_estimateGas` are `plan` alone, a reverted transaction changes nothing
//! but its gas and nonce, and a batch is all or nothing without cloning the flow.
//!
//! Epochs (see `epoch`): `makeContext`, `makeContextWithResult`, `makeContextFixedTimes` and
//! `queryContextAtPosition` plan the epochs the executing block may start, and so does every
//! `submit`/`batchSubmit` before its inserts (the contract's `submit` calls `makeContext`
//! first), so a submission's `NewEpoch` logs precede its `Submit` logs in the receipt.
//!
//! Money: a Flow submission moves the whole `value` from the sender to the Reward module's
//! balance. The fee (sectors × pricePerSector, sectors = Σ 2^height as the SDK computes it) is
//! split between the alignment padding before the file and the file's own sectors in
//! proportion to their sizes (0G's `FixedPrice.chargeFee` split), and each part is credited to
//! the pools of the 8 GiB pricing chunks the range covers. Value above the fee is kept, not
//! refunded, and credited with the upload part, as 0G's market does with its surplus.
//!
//! Reward (first cut): a pool per pricing chunk releases its total linearly over
//! `reward_release_seconds` from its first credit, measured at the last sealed block's time
//! (a transaction executes before its own block has a timestamp). Addresses in
//! `reward_claimers` (a stand-in for the Mine module's PoRA check) claim the released, unclaimed
//! part to a beneficiary. Not yet: miners, PoRA answers, per-miner shares.

use crate::abi::{encode_revert_reason, flow, market, reward};
use crate::chain::Chain;
use crate::epoch::{DEPLOY_DELAY, EpochStep, FIRST_BLOCK, MAX_EPOCHS_PER_CALL, range_at_position};
use crate::receipt::Log;
use crate::submission::{Address, Submission, SubmitEvent};
use alloy_primitives::{B256, U256};
use alloy_sol_types::{SolCall, SolError, SolEvent};
use merkle::file::SubmissionNode;
use serde::{Deserialize, Serialize};
use types::H256;

/// The Flow module (0G's `FixedPriceFlow`).
pub const FLOW_ADDRESS: Address = address_from_low(0x1000);
/// The Market module (0G's `FixedPrice`).
pub const MARKET_ADDRESS: Address = address_from_low(0x1001);
/// The Reward module (pools per pricing chunk).
pub const REWARD_ADDRESS: Address = address_from_low(0x1002);
/// The DA signer registry (zerog's own interface, `abi::da_registry`).
pub const DA_REGISTRY_ADDRESS: Address = address_from_low(0x1003);
/// The DA entrance: certified blobs (`abi::da_entrance`).
pub const DA_ENTRANCE_ADDRESS: Address = address_from_low(0x1004);
/// The storage-node registry (`abi::storage_registry`).
pub const STORAGE_REGISTRY_ADDRESS: Address = address_from_low(0x1005);

/// Gas of any call into a module, on top of the intrinsic gas: one flat price, so estimates
/// are exact and cheap to compute.
pub const MODULE_CALL_GAS: u64 = 50_000;
/// Sectors in one pricing chunk: 8 GiB of 256-byte sectors.
pub const PRICING_CHUNK_SECTORS: u64 = 1 << 25;
/// Most pricing chunks one submission may span (512 GiB): bounds the work of crediting pools.
pub const MAX_CHUNKS_PER_SUBMISSION: u64 = 64;

/// Segment size in sectors, for the placement rule (a submission never straddles one).
const SEGMENT_SECTORS: u64 = 1024;

const fn address_from_low(low: u16) -> Address {
    let mut address = [0u8; 20];
    let bytes = low.to_be_bytes();
    address[18] = bytes[0];
    address[19] = bytes[1];
    address
}

/// Whether `address` is one of the native modules.
pub fn is_module(address: &Address) -> bool {
    [
        FLOW_ADDRESS,
        MARKET_ADDRESS,
        REWARD_ADDRESS,
        DA_REGISTRY_ADDRESS,
        DA_ENTRANCE_ADDRESS,
        STORAGE_REGISTRY_ADDRESS,
    ]
    .contains(address)
}

/// A reverted call: the reason and its `Error(string)` encoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("execution reverted: {reason}")]
pub struct Revert {
    pub reason: String,
    /// ABI `Error(string)`: what `eth_call` returns as revert data.
    pub data: Vec<u8>,
}

impl Revert {
    pub fn new(reason: impl Into<String>) -> Revert {
        let reason = reason.into();
        let data = encode_revert_reason(&reason);
        Revert { reason, data }
    }
}

/// Why `plan` refused: calldata that does not decode (refused before execution, like bad
/// RLP) or a revert (executed, status 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CallFailure {
    BadAbi(String),
    Revert(Revert),
}

impl From<Revert> for CallFailure {
    fn from(revert: Revert) -> Self {
        CallFailure::Revert(revert)
    }
}

/// A state change `plan` decided on and `apply` performs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Move `value` to `to` (possibly zero: a plain call to an account).
    Transfer { to: Address, value: U256 },
    /// Start these epochs (`makeContext`).
    Context { epochs: Vec<EpochStep> },
    /// Start these epochs, then append these checked submissions, paying `value` in total.
    Submit {
        epochs: Vec<EpochStep>,
        submissions: Vec<Submission>,
        value: U256,
    },
    Claim {
        pricing_index: u64,
        beneficiary: Address,
        miner_id: B256,
        amount: U256,
    },
    /// Register the sender as a DA signer, locking the stake it paid.
    DaRegister { signer: Box<crate::da::DaSigner> },
    /// Record a certified blob, paying its fee to the entrance.
    DaCertify {
        blob_id: H256,
        blob: crate::da::CertifiedBlob,
        signed_slots: u64,
        total_slots: u64,
        value: U256,
    },
    /// Register, update or remove the sender as a storage node.
    Storage(crate::storage::StorageChange),
    /// A view: nothing changes.
    None,
}

pub(crate) struct Outcome {
    pub output: Vec<u8>,
    pub effect: Effect,
}

/// Fees credited to one pricing chunk and what was paid out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewardPool {
    #[serde(with = "crate::hex_serde::u256")]
    pub total: U256,
    #[serde(with = "crate::hex_serde::u256")]
    pub claimed: U256,
    /// Seconds (block time) of the first credit: the release starts there.
    pub start_seconds: u64,
}

impl RewardPool {
    /// The part of `total` released at `now_seconds`: linear over `release_seconds`.
    pub fn released(&self, now_seconds: u64, release_seconds: u64) -> U256 {
        let elapsed = now_seconds.saturating_sub(self.start_seconds);
        if release_seconds == 0 || elapsed >= release_seconds {
            return self.total;
        }
        self.total * U256::from(elapsed) / U256::from(release_seconds)
    }
}

/// Fees the market recorded, split as `chargeFee` splits them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarketTotals {
    /// Fee share of the alignment padding sectors.
    pub padding_fees: U256,
    /// Fee share of the files' own sectors, plus any value paid above the fee.
    pub upload_fees: U256,
}

/// The `Submit` event as an Ethereum log from the Flow address.
pub fn submit_log(event: &SubmitEvent) -> Log {
    let data = flow::Submit {
        sender: event.sender.into(),
        identity: B256::from(event.identity.0),
        submissionIndex: U256::from(event.submission_index.0),
        startPos: U256::from(event.start_pos.0),
        length: U256::from(event.length),
        submission: crate::abi::submission_data(&event.submission),
    }
    .encode_log_data();
    Log {
        address: FLOW_ADDRESS,
        topics: data.topics().iter().map(|topic| H256(topic.0)).collect(),
        data: data.data.to_vec(),
    }
}

/// The ABI submission as ours; numbers past u64 cannot be valid and are refused here.
fn submission_from_abi(data: &flow::SubmissionData) -> Result<Submission, Revert> {
    let length = u64::try_from(data.length)
        .map_err(|_| Revert::new(format!("submission length {} is too large", data.length)))?;
    let nodes = data
        .nodes
        .iter()
        .map(|node| {
            // An absurd height becomes u64::MAX, which validation refuses with its index.
            let height = u64::try_from(node.height).unwrap_or(u64::MAX);
            SubmissionNode {
                root: H256(node.root.0),
                height,
            }
        })
        .collect();
    Ok(Submission {
        length,
        tags: data.tags.to_vec(),
        nodes,
    })
}

/// Where a submission of `nodes` lands in a flow of `length` sectors: (start, end). The
/// contract's rule, as `merkle::flow::FlowLog::append` applies it (that function has no
/// dry-run form); `tests/modules.rs` checks both agree. `None`: the flow would be full.
fn plan_placement(length: u64, nodes: &[SubmissionNode]) -> Option<(u64, u64)> {
    let first_height = u32::try_from(nodes.first()?.height).ok()?;
    let sectors = nodes.iter().try_fold(0u64, |sum, node| {
        sum.checked_add(1u64.checked_shl(u32::try_from(node.height).ok()?)?)
    })?;
    let mut start = merkle::flow::next_align(length, first_height)?;
    let last = start.checked_add(sectors - 1)?;
    if !start.is_multiple_of(SEGMENT_SECTORS) && start / SEGMENT_SECTORS != last / SEGMENT_SECTORS {
        let boundary = start.checked_next_multiple_of(SEGMENT_SECTORS)?;
        start = merkle::flow::next_align(boundary, first_height)?;
    }
    let end = start.checked_add(sectors)?;
    if end > 1u64 << merkle::flow::MAX_FLOW_HEIGHT {
        return None;
    }
    Some((start, end))
}

/// Decodes calldata for `C`, naming the function when it does not decode.
pub(crate) fn decode<C: SolCall>(input: &[u8]) -> Result<C, CallFailure> {
    C::abi_decode_validate(input).map_err(|error| {
        CallFailure::BadAbi(format!(
            "calldata for {} does not decode: {error}",
            C::SIGNATURE
        ))
    })
}

pub(crate) fn not_payable(value: U256, name: &str) -> Result<(), Revert> {
    if value.is_zero() {
        Ok(())
    } else {
        Err(Revert::new(format!("{name} is not payable")))
    }
}

pub(crate) fn view(output: Vec<u8>) -> Result<Outcome, CallFailure> {
    Ok(Outcome {
        output,
        effect: Effect::None,
    })
}

/// A read past the end of an array: Solidity's `Panic(0x32)`, as the contract reverts.
fn out_of_bounds(reason: String) -> CallFailure {
    let data =
        alloy_sol_types::Panic::from(alloy_sol_types::PanicKind::ArrayOutOfBounds).abi_encode();
    CallFailure::Revert(Revert { reason, data })
}

/// A `makeContext` variant's outcome: start `epochs`, return `output`.
fn context_outcome(output: Vec<u8>, epochs: Vec<EpochStep>) -> Outcome {
    Outcome {
        output,
        effect: Effect::Context { epochs },
    }
}

fn to_address(address: Address) -> alloy_primitives::Address {
    address.into()
}

impl Chain {
    /// Decides what a call does without changing anything (see the module header).
    pub(crate) fn plan(
        &self,
        from: Address,
        to: Address,
        input: &[u8],
        value: U256,
    ) -> Result<Outcome, CallFailure> {
        if !is_module(&to) {
            return Ok(Outcome {
                output: Vec::new(),
                effect: Effect::Transfer { to, value },
            });
        }
        let Some(selector) = input.get(..4) else {
            return Err(Revert::new(format!(
                "module 0x{} takes ABI calls; calldata of {} bytes has no selector",
                hex::encode(to),
                input.len()
            ))
            .into());
        };
        let selector: [u8; 4] = [selector[0], selector[1], selector[2], selector[3]];
        if to == FLOW_ADDRESS {
            self.plan_flow(selector, input, value)
        } else if to == MARKET_ADDRESS {
            self.plan_market(selector, input, value)
        } else if to == REWARD_ADDRESS {
            self.plan_reward(from, selector, input, value)
        } else if to == DA_REGISTRY_ADDRESS {
            self.plan_da_registry(from, selector, input, value)
        } else if to == STORAGE_REGISTRY_ADDRESS {
            self.plan_storage_registry(from, selector, input, value)
        } else {
            self.plan_da_entrance(selector, input, value)
        }
    }

    fn plan_flow(
        &self,
        selector: [u8; 4],
        input: &[u8],
        value: U256,
    ) -> Result<Outcome, CallFailure> {
        let length = self.flow.length().0;
        match selector {
            flow::submitCall::SELECTOR => {
                let call: flow::submitCall = decode(input)?;
                let (submissions, returns) = self.plan_submissions(&[call.submission], value)?;
                let (index, digest, start, length) = returns[0];
                let epochs = self.plan_epochs(MAX_EPOCHS_PER_CALL);
                Ok(Outcome {
                    output: flow::submitCall::abi_encode_returns(&flow::submitReturn {
                        index,
                        digest,
                        startIndex: start,
                        length,
                    }),
                    effect: Effect::Submit {
                        epochs,
                        submissions,
                        value,
                    },
                })
            }
            flow::batchSubmitCall::SELECTOR => {
                let call: flow::batchSubmitCall = decode(input)?;
                let (submissions, returns) = self.plan_submissions(&call.submissions, value)?;
                let output = flow::batchSubmitCall::abi_encode_returns(&flow::batchSubmitReturn {
                    indexes: returns.iter().map(|r| r.0).collect(),
                    digests: returns.iter().map(|r| r.1).collect(),
                    startIndexes: returns.iter().map(|r| r.2).collect(),
                    lengths: returns.iter().map(|r| r.3).collect(),
                });
                // The first `submit` of the batch catches the epochs up; the others find
                // nothing to do in the same block.
                let epochs = self.plan_epochs(MAX_EPOCHS_PER_CALL);
                Ok(Outcome {
                    output,
                    effect: Effect::Submit {
                        epochs,
                        submissions,
                        value,
                    },
                })
            }
            flow::marketCall::SELECTOR => {
                decode::<flow::marketCall>(input)?;
                not_payable(value, "market()")?;
                view(flow::marketCall::abi_encode_returns(&to_address(
                    MARKET_ADDRESS,
                )))
            }
            flow::numSubmissionsCall::SELECTOR => {
                decode::<flow::numSubmissionsCall>(input)?;
                not_payable(value, "numSubmissions()")?;
                view(flow::numSubmissionsCall::abi_encode_returns(&U256::from(
                    self.num_submissions(),
                )))
            }
            flow::submissionIndexCall::SELECTOR => {
                decode::<flow::submissionIndexCall>(input)?;
                not_payable(value, "submissionIndex()")?;
                view(flow::submissionIndexCall::abi_encode_returns(&U256::from(
                    self.num_submissions(),
                )))
            }
            flow::getFlowRootByTxSeqCall::SELECTOR => {
                let call: flow::getFlowRootByTxSeqCall = decode(input)?;
                not_payable(value, "getFlowRootByTxSeq(uint256)")?;
                // Like the contract's mapping: an unknown sequence number reads as zero.
                let root = u64::try_from(call.txSeq)
                    .ok()
                    .and_then(|seq| self.flow_root_by_tx_seq(types::TxSeq(seq)))
                    .unwrap_or(H256::ZERO);
                view(flow::getFlowRootByTxSeqCall::abi_encode_returns(
                    &B256::from(root.0),
                ))
            }
            flow::computeFlowRootCall::SELECTOR => {
                decode::<flow::computeFlowRootCall>(input)?;
                not_payable(value, "computeFlowRoot()")?;
                view(flow::computeFlowRootCall::abi_encode_returns(&B256::from(
                    self.flow.root().0,
                )))
            }
            flow::treeCall::SELECTOR => {
                decode::<flow::treeCall>(input)?;
                not_payable(value, "tree()")?;
                // The flow tree is always fully computed: nothing is staged.
                view(flow::treeCall::abi_encode_returns(&flow::treeReturn {
                    currentLength: U256::from(length),
                    unstagedHeight: U256::ZERO,
                }))
            }
            flow::epochCall::SELECTOR => {
                decode::<flow::epochCall>(input)?;
                not_payable(value, "epoch()")?;
                view(flow::epochCall::abi_encode_returns(&U256::from(
                    self.epoch(),
                )))
            }
            flow::epochStartPositionCall::SELECTOR => {
                decode::<flow::epochStartPositionCall>(input)?;
                not_payable(value, "epochStartPosition()")?;
                view(flow::epochStartPositionCall::abi_encode_returns(
                    &U256::from(self.epoch_start_position()),
                ))
            }
            flow::firstBlockCall::SELECTOR => {
                decode::<flow::firstBlockCall>(input)?;
                not_payable(value, "firstBlock()")?;
                view(flow::firstBlockCall::abi_encode_returns(&U256::from(
                    FIRST_BLOCK,
                )))
            }
            flow::deployDelayCall::SELECTOR => {
                decode::<flow::deployDelayCall>(input)?;
                not_payable(value, "deployDelay()")?;
                view(flow::deployDelayCall::abi_encode_returns(&U256::from(
                    DEPLOY_DELAY,
                )))
            }
            flow::blocksPerEpochCall::SELECTOR => {
                decode::<flow::blocksPerEpochCall>(input)?;
                not_payable(value, "blocksPerEpoch()")?;
                view(flow::blocksPerEpochCall::abi_encode_returns(&U256::from(
                    self.config().blocks_per_epoch,
                )))
            }
            flow::pausedCall::SELECTOR => {
                decode::<flow::pausedCall>(input)?;
                not_payable(value, "paused()")?;
                view(flow::pausedCall::abi_encode_returns(&false))
            }
            flow::rootHistoryCall::SELECTOR => {
                decode::<flow::rootHistoryCall>(input)?;
                not_payable(value, "rootHistory()")?;
                view(flow::rootHistoryCall::abi_encode_returns(
                    &alloy_primitives::Address::ZERO,
                ))
            }
            flow::getContextCall::SELECTOR => {
                decode::<flow::getContextCall>(input)?;
                not_payable(value, "getContext()")?;
                view(flow::getContextCall::abi_encode_returns(
                    &self.mine_context().to_abi(),
                ))
            }
            flow::makeContextCall::SELECTOR => {
                decode::<flow::makeContextCall>(input)?;
                not_payable(value, "makeContext()")?;
                Ok(context_outcome(
                    Vec::new(),
                    self.plan_epochs(MAX_EPOCHS_PER_CALL),
                ))
            }
            flow::makeContextWithResultCall::SELECTOR => {
                decode::<flow::makeContextWithResultCall>(input)?;
                not_payable(value, "makeContextWithResult()")?;
                let epochs = self.plan_epochs(MAX_EPOCHS_PER_CALL);
                let context = epochs
                    .last()
                    .map_or_else(|| self.mine_context(), |step| step.context);
                let output = flow::makeContextWithResultCall::abi_encode_returns(&context.to_abi());
                Ok(context_outcome(output, epochs))
            }
            flow::makeContextFixedTimesCall::SELECTOR => {
                let call: flow::makeContextFixedTimesCall = decode(input)?;
                not_payable(value, "makeContextFixedTimes(uint256)")?;
                // The contract loops `for (i = 0; i <= cnt; ++i)`: up to cnt + 1 epochs.
                let times = u64::try_from(call.cnt)
                    .unwrap_or(u64::MAX)
                    .saturating_add(1)
                    .min(MAX_EPOCHS_PER_CALL);
                Ok(context_outcome(Vec::new(), self.plan_epochs(times)))
            }
            flow::getEpochRangeCall::SELECTOR => {
                let call: flow::getEpochRangeCall = decode(input)?;
                not_payable(value, "getEpochRange(bytes32)")?;
                // Like the contract's mapping: an unknown digest reads as the zero range.
                let range = self.epoch_range(&H256(call.digest.0));
                view(flow::getEpochRangeCall::abi_encode_returns(
                    &flow::EpochRange {
                        start: range.map_or(0, |range| u128::from(range.start)),
                        end: range.map_or(0, |range| u128::from(range.end)),
                    },
                ))
            }
            flow::getEpochRangeHistoryCall::SELECTOR => {
                let call: flow::getEpochRangeHistoryCall = decode(input)?;
                not_payable(value, "getEpochRangeHistory(uint256)")?;
                let ranges = self.epoch_ranges();
                let range = usize::try_from(call.index)
                    .ok()
                    .and_then(|index| ranges.get(index))
                    .ok_or_else(|| {
                        out_of_bounds(format!(
                            "array out-of-bounds access: getEpochRangeHistory({}) with {} epoch \
                             ranges recorded",
                            call.index,
                            ranges.len()
                        ))
                    })?;
                view(flow::getEpochRangeHistoryCall::abi_encode_returns(
                    &range.to_abi(),
                ))
            }
            flow::queryContextAtPositionCall::SELECTOR => {
                let call: flow::queryContextAtPositionCall = decode(input)?;
                not_payable(value, "queryContextAtPosition(uint128)")?;
                // `makeContext` first: the answer may be an epoch this call starts.
                let epochs = self.plan_epochs(MAX_EPOCHS_PER_CALL);
                if call.targetPosition >= u128::from(length) {
                    return Err(Revert::new("Queried position exceeds upper bound").into());
                }
                let position = u64::try_from(call.targetPosition).unwrap_or(u64::MAX);
                let range = range_at_position(self.epoch_ranges(), &epochs, position)
                    .ok_or_else(|| Revert::new("Can not find proper context"))?;
                let output = flow::queryContextAtPositionCall::abi_encode_returns(&range.to_abi());
                Ok(context_outcome(output, epochs))
            }
            other => Err(unknown_selector(other)),
        }
    }

    /// Checks submissions as one batch: shape, placement one after another, pricing-chunk
    /// span, and the total fee against `value`. Returns them with the contract's return values
    /// (index, digest, start, length) for each.
    #[allow(clippy::type_complexity)]
    fn plan_submissions(
        &self,
        abi_submissions: &[flow::Submission],
        value: U256,
    ) -> Result<(Vec<Submission>, Vec<(U256, B256, U256, U256)>), Revert> {
        if abi_submissions.is_empty() {
            return Err(Revert::new("batchSubmit needs at least one submission"));
        }
        let config = self.config();
        let mut length = self.flow.length().0;
        let mut fee = U256::ZERO;
        let mut submissions = Vec::with_capacity(abi_submissions.len());
        let mut returns = Vec::with_capacity(abi_submissions.len());
        for (position, abi) in abi_submissions.iter().enumerate() {
            let submission = submission_from_abi(&abi.data)?;
            submission
                .validate(config.max_nodes_per_submission, config.max_tags_bytes)
                .map_err(|error| Revert::new(format!("invalid submission {position}: {error}")))?;
            let (start, end) = plan_placement(length, &submission.nodes)
                .ok_or_else(|| Revert::new(format!("submission {position}: the flow is full")))?;
            let chunks = end.div_ceil(PRICING_CHUNK_SECTORS) - length / PRICING_CHUNK_SECTORS;
            if chunks > MAX_CHUNKS_PER_SUBMISSION {
                return Err(Revert::new(format!(
                    "submission {position} spans {chunks} pricing chunks of 8 GiB; chain-lite \
                     accepts at most {MAX_CHUNKS_PER_SUBMISSION}"
                )));
            }
            let sectors = submission.sectors();
            fee = fee.saturating_add(U256::from(sectors).saturating_mul(config.price_per_sector));
            returns.push((
                U256::from(self.num_submissions() + position as u64),
                B256::from(submission.digest().0),
                U256::from(start),
                U256::from(sectors),
            ));
            submissions.push(submission);
            length = end;
        }
        if value < fee {
            return Err(Revert::new(format!(
                "not enough fee: {fee} wei due ({} sectors at {} wei), {value} wei paid",
                submissions.iter().map(Submission::sectors).sum::<u64>(),
                config.price_per_sector
            )));
        }
        Ok((submissions, returns))
    }

    fn plan_market(
        &self,
        selector: [u8; 4],
        input: &[u8],
        value: U256,
    ) -> Result<Outcome, CallFailure> {
        match selector {
            market::pricePerSectorCall::SELECTOR => {
                decode::<market::pricePerSectorCall>(input)?;
                not_payable(value, "pricePerSector()")?;
                view(market::pricePerSectorCall::abi_encode_returns(
                    &self.config().price_per_sector,
                ))
            }
            market::flowCall::SELECTOR => {
                decode::<market::flowCall>(input)?;
                not_payable(value, "flow()")?;
                view(market::flowCall::abi_encode_returns(&to_address(
                    FLOW_ADDRESS,
                )))
            }
            market::rewardCall::SELECTOR => {
                decode::<market::rewardCall>(input)?;
                not_payable(value, "reward()")?;
                view(market::rewardCall::abi_encode_returns(&to_address(
                    REWARD_ADDRESS,
                )))
            }
            market::chargeFeeCall::SELECTOR => Err(Revert::new(
                "chargeFee is internal: the Flow module charges fees as it executes submissions",
            )
            .into()),
            other => Err(unknown_selector(other)),
        }
    }

    fn plan_reward(
        &self,
        from: Address,
        selector: [u8; 4],
        input: &[u8],
        value: U256,
    ) -> Result<Outcome, CallFailure> {
        let release = self.config().reward_release_seconds;
        match selector {
            reward::rewardsCall::SELECTOR => {
                let call: reward::rewardsCall = decode(input)?;
                not_payable(value, "rewards(uint256)")?;
                let pool = u64::try_from(call.pricingIndex)
                    .ok()
                    .and_then(|index| self.reward_pool(index))
                    .cloned()
                    .unwrap_or_default();
                view(reward::rewardsCall::abi_encode_returns(
                    &reward::rewardsReturn {
                        total: pool.total,
                        released: pool.released(self.now_seconds(), release),
                        claimed: pool.claimed,
                        startTime: U256::from(pool.start_seconds),
                    },
                ))
            }
            reward::releaseSecondsCall::SELECTOR => {
                decode::<reward::releaseSecondsCall>(input)?;
                not_payable(value, "releaseSeconds()")?;
                view(reward::releaseSecondsCall::abi_encode_returns(&U256::from(
                    release,
                )))
            }
            reward::claimMineRewardCall::SELECTOR => {
                let call: reward::claimMineRewardCall = decode(input)?;
                not_payable(value, "claimMineReward")?;
                if !self.config().reward_claimers.contains(&from) {
                    return Err(Revert::new(format!(
                        "0x{} may not claim rewards: only the configured claimers (the Mine \
                         module's stand-in) may",
                        hex::encode(from)
                    ))
                    .into());
                }
                let pricing_index = u64::try_from(call.pricingIndex)
                    .map_err(|_| Revert::new("no such pricing chunk"))?;
                let pool = self.reward_pool(pricing_index).ok_or_else(|| {
                    Revert::new(format!("pricing chunk {pricing_index} has no reward"))
                })?;
                let amount = pool
                    .released(self.now_seconds(), release)
                    .saturating_sub(pool.claimed);
                if amount.is_zero() {
                    return Err(Revert::new(format!(
                        "pricing chunk {pricing_index} has nothing released to claim yet"
                    ))
                    .into());
                }
                Ok(Outcome {
                    output: Vec::new(),
                    effect: Effect::Claim {
                        pricing_index,
                        beneficiary: call.beneficiary.into_array(),
                        miner_id: call.minerId,
                        amount,
                    },
                })
            }
            other => Err(unknown_selector(other)),
        }
    }

    /// Performs a planned effect for a transaction from `from`. Returns the logs it emitted.
    pub(crate) fn apply(&mut self, from: Address, effect: Effect) -> Vec<Log> {
        match effect {
            Effect::None => Vec::new(),
            Effect::Transfer { to, value } => {
                self.move_value(from, to, value);
                Vec::new()
            }
            Effect::Context { epochs } => self.apply_epochs(from, epochs),
            Effect::Submit {
                epochs,
                submissions,
                value,
            } => {
                self.move_value(from, REWARD_ADDRESS, value);
                let price = self.config().price_per_sector;
                let mut fee_total = U256::ZERO;
                let count = submissions.len();
                // `makeContext` runs before the first insert: its `NewEpoch` logs come first.
                let mut logs = self.apply_epochs(from, epochs);
                logs.reserve(count);
                for (position, submission) in submissions.into_iter().enumerate() {
                    let before = self.flow.length().0;
                    let sectors = submission.sectors();
                    // `plan` checked shape and placement; append cannot fail here.
                    let Ok(event) = self.append_submission(from, submission) else {
                        continue;
                    };
                    let fee = U256::from(sectors).saturating_mul(price);
                    fee_total = fee_total.saturating_add(fee);
                    let padding = event.start_pos.0 - before;
                    let mut upload_part = fee;
                    let mut padding_part = U256::ZERO;
                    if padding > 0 {
                        padding_part = fee * U256::from(padding) / U256::from(padding + sectors);
                        upload_part = fee - padding_part;
                    }
                    if position + 1 == count {
                        // What was paid above the fee goes with the last file's sectors.
                        upload_part += value.saturating_sub(fee_total);
                    }
                    self.credit_range(before, event.start_pos.0, padding_part);
                    self.credit_range(event.start_pos.0, event.start_pos.0 + sectors, upload_part);
                    self.market.padding_fees += padding_part;
                    self.market.upload_fees += upload_part;
                    logs.push(submit_log(&event));
                }
                logs
            }
            Effect::DaRegister { signer } => self.apply_da_register(from, *signer),
            Effect::Storage(change) => self.apply_storage(from, change),
            Effect::DaCertify {
                blob_id,
                blob,
                signed_slots,
                total_slots,
                value,
            } => self.apply_da_certify(from, blob_id, blob, signed_slots, total_slots, value),
            Effect::Claim {
                pricing_index,
                beneficiary,
                miner_id,
                amount,
            } => {
                if let Some(pool) = self.rewards.get_mut(&pricing_index) {
                    pool.claimed += amount;
                }
                self.move_value(REWARD_ADDRESS, beneficiary, amount);
                let data = reward::DistributeReward {
                    pricingIndex: U256::from(pricing_index),
                    beneficiary: beneficiary.into(),
                    minerId: miner_id,
                    amount,
                }
                .encode_log_data();
                vec![Log {
                    address: REWARD_ADDRESS,
                    topics: data.topics().iter().map(|topic| H256(topic.0)).collect(),
                    data: data.data.to_vec(),
                }]
            }
        }
    }

    /// Credits `amount` to the pools of the pricing chunks covering sectors `start..end`, in
    /// proportion to the sectors in each; rounding dust goes to the last chunk.
    fn credit_range(&mut self, start: u64, end: u64, amount: U256) {
        if amount.is_zero() || end <= start {
            return;
        }
        let now = self.now_seconds();
        let total = U256::from(end - start);
        let mut credited = U256::ZERO;
        let mut position = start;
        while position < end {
            let chunk = position / PRICING_CHUNK_SECTORS;
            let chunk_end = ((chunk + 1) * PRICING_CHUNK_SECTORS).min(end);
            let share = if chunk_end == end {
                amount - credited
            } else {
                amount * U256::from(chunk_end - position) / total
            };
            credited += share;
            let pool = self.rewards.entry(chunk).or_insert_with(|| RewardPool {
                start_seconds: now,
                ..RewardPool::default()
            });
            pool.total += share;
            position = chunk_end;
        }
    }
}

pub(crate) fn unknown_selector(selector: [u8; 4]) -> CallFailure {
    CallFailure::Revert(Revert::new(format!(
        "unknown selector 0x{}",
        hex::encode(selector)
    )))
}
