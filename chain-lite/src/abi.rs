//! The Solidity interfaces of the native modules, written from the ABIs the official 0G SDK
//! ships (`FixedPriceFlow`, `FixedPrice` market), so selectors, event topics and return
//! encodings are exactly the contracts'. Struct names are ours; only the tuple shapes count
//! for selectors. `tests/modules.rs` pins every selector and topic the SDK computes.
//!
//! Reward has no ABI in the SDK: its interface here is chain-lite's own first cut, shaped
//! after 0G's `ChunkLinearReward` but not claiming compatibility with it.

use crate::submission::{Address, Submission};
use alloy_primitives::{B256, U256};
use alloy_sol_types::{SolCall, SolError, sol};

/// Flow (`FixedPriceFlow`): submissions, the `Submit` event, flow and epoch views.
pub mod flow {
    use super::sol;

    sol! {
        struct SubmissionNode {
            bytes32 root;
            uint256 height;
        }

        struct SubmissionData {
            uint256 length;
            bytes tags;
            SubmissionNode[] nodes;
        }

        struct Submission {
            SubmissionData data;
            address submitter;
        }

        struct MineContext {
            uint256 epoch;
            uint256 mineStart;
            bytes32 flowRoot;
            uint256 flowLength;
            bytes32 blockDigest;
            bytes32 digest;
        }

        struct EpochRange {
            uint128 start;
            uint128 end;
        }

        struct EpochRangeWithContextDigest {
            uint128 start;
            uint128 end;
            bytes32 digest;
        }

        event Submit(
            address indexed sender,
            bytes32 indexed identity,
            uint256 submissionIndex,
            uint256 startPos,
            uint256 length,
            SubmissionData submission
        );

        event NewEpoch(
            address indexed sender,
            uint256 indexed index,
            bytes32 startMerkleRoot,
            uint256 submissionIndex,
            uint256 flowLength,
            bytes32 context
        );

        function submit(Submission submission) external payable
            returns (uint256 index, bytes32 digest, uint256 startIndex, uint256 length);
        function batchSubmit(Submission[] submissions) external payable
            returns (uint256[] indexes, bytes32[] digests, uint256[] startIndexes, uint256[] lengths);
        function market() external view returns (address);
        function numSubmissions() external view returns (uint256);
        function submissionIndex() external view returns (uint256);
        function getFlowRootByTxSeq(uint256 txSeq) external view returns (bytes32);
        function computeFlowRoot() external returns (bytes32);
        function tree() external view returns (uint256 currentLength, uint256 unstagedHeight);
        function epoch() external view returns (uint256);
        function epochStartPosition() external view returns (uint256);
        function blocksPerEpoch() external view returns (uint256);
        function firstBlock() external view returns (uint256);
        function deployDelay() external view returns (uint256);
        function paused() external view returns (bool);
        function rootHistory() external view returns (address);
        function getContext() external view returns (MineContext);
        function makeContext() external;
        function makeContextWithResult() external returns (MineContext);
        function makeContextFixedTimes(uint256 cnt) external;
        function getEpochRange(bytes32 digest) external view returns (EpochRange);
        function getEpochRangeHistory(uint256 index) external view returns (EpochRangeWithContextDigest);
        function queryContextAtPosition(uint128 targetPosition) external
            returns (EpochRangeWithContextDigest range);
    }
}

/// Market (`FixedPrice`): the price per sector and the addresses it is wired to.
pub mod market {
    use super::sol;

    sol! {
        function pricePerSector() external view returns (uint256);
        function flow() external view returns (address);
        function reward() external view returns (address);
        function chargeFee(uint256 beforeLength, uint256 uploadSectors, uint256 paddingSectors) external;
    }
}

/// Reward: chain-lite's own interface (see the module header).
pub mod reward {
    use super::sol;

    sol! {
        event DistributeReward(
            uint256 indexed pricingIndex,
            address indexed beneficiary,
            bytes32 indexed minerId,
            uint256 amount
        );

        /// total: fees credited; released: the linear share unlocked by the last sealed block's
        /// time; claimed: paid out; startTime: seconds of the first credit.
        function rewards(uint256 pricingIndex) external view
            returns (uint256 total, uint256 released, uint256 claimed, uint256 startTime);
        function releaseSeconds() external view returns (uint256);
        function claimMineReward(uint256 pricingIndex, address beneficiary, bytes32 minerId) external;
    }
}

/// DA signer registry: chain-lite's own interface (zerog's DA, not 0G's contracts).
pub mod da_registry {
    use super::sol;

    sol! {
        event SignerRegistered(address indexed signer, bytes pubkey, string endpoint, uint256 stake);

        /// Registers the sender as a DA signer: its BLS12-381 public key (48 bytes, compressed
        /// G1), the proof of possession of that key (96 bytes), the URL retrievers and
        /// dispersers use, and `value` as stake. A signer joins quorums from the next epoch.
        function registerSigner(bytes pubkey, bytes pop, string endpoint) external payable;
        /// A signer's record; `pop` lets any reader re-check the key before trusting it.
        function signer(address account) external view
            returns (bytes pubkey, bytes pop, string endpoint, uint256 stake, uint64 registeredBlock);
        function signerCount() external view returns (uint256);
        /// The DA epoch the next block belongs to, blocks per epoch, and how many epochs back
        /// a certificate's epoch may be.
        function epoch() external view returns (uint64 current, uint64 blocksPerEpoch, uint64 certificateWindow);
        /// Quorum `quorumId` of `epochNumber`: for each slot, the signer holding it.
        function quorumSlots(uint64 epochNumber, uint32 quorumId) external view returns (address[] slots);
        function quorumCount() external view returns (uint32);
    }
}

/// Storage-node registry: which nodes store which shard of the flow, and where they answer
/// (chain-lite's own interface; 0G's nodes find each other by gossip instead).
pub mod storage_registry {
    use super::sol;

    sol! {
        event NodeRegistered(address indexed node, string endpoint, uint64 shardId, uint64 numShard, uint256 stake);
        event NodeUpdated(address indexed node, string endpoint, uint64 shardId, uint64 numShard);
        event NodeLeft(address indexed node, uint256 stake);

        /// Registers the sender as a storage node that stores shard `shardId` of `numShard`
        /// (flow segment k iff k mod numShard == shardId; numShard a power of two) and answers
        /// 0G's storage RPC at `endpoint`; `value` is its stake.
        function register(string endpoint, uint64 shardId, uint64 numShard) external payable;
        /// Changes the sender's endpoint or shard.
        function update(string endpoint, uint64 shardId, uint64 numShard) external;
        /// Removes the sender and returns its stake.
        function leave() external;
        /// A node's record (empty endpoint and zero stake: not registered).
        function node(address account) external view
            returns (string endpoint, uint64 shardId, uint64 numShard, uint256 stake, uint64 registeredBlock);
        /// Every registered node, in address order.
        function nodes() external view
            returns (address[] accounts, string[] endpoints, uint64[] shardIds, uint64[] numShards);
        function nodeCount() external view returns (uint256);
    }
}

/// DA entrance: certified blobs (chain-lite's own interface).
pub mod da_entrance {
    use super::sol;

    sol! {
        event BlobCertified(bytes32 indexed blobId, uint64 epoch, uint32 quorumId, bytes commitment, uint64 signedSlots, uint64 totalSlots);

        /// Records a blob as available: its shard commitment (`da::commit`, 44 bytes) and the
        /// quorum's aggregate certificate (`da::attest::Certificate` encoding: blob id, epoch,
        /// quorum, signer bitmap over the quorum's signers in address order, signed and total
        /// slots, aggregate BLS signature). `value` pays `blobFee()`.
        function submitCertificate(bytes commitment, bytes certificate) external payable;
        function isAvailable(bytes32 blobId) external view returns (bool);
        function blobInfo(bytes32 blobId) external view
            returns (bytes commitment, uint64 epoch, uint32 quorumId, uint64 blockNumber);
        function blobFee() external view returns (uint256);
    }
}

/// ABI encoding of `Error(string)`: the revert data ethers decodes into `reason`.
pub fn encode_revert_reason(reason: &str) -> Vec<u8> {
    alloy_sol_types::Revert {
        reason: reason.to_string(),
    }
    .abi_encode()
}

/// A submission in the Flow ABI's shape (`SubmissionData`).
pub fn submission_data(submission: &Submission) -> flow::SubmissionData {
    flow::SubmissionData {
        length: U256::from(submission.length),
        tags: submission.tags.clone().into(),
        nodes: submission
            .nodes
            .iter()
            .map(|node| flow::SubmissionNode {
                root: B256::from(node.root.0),
                height: U256::from(node.height),
            })
            .collect(),
    }
}

/// Calldata of Flow `submit(Submission)` as wallets and the SDK send it.
pub fn submit_calldata(submission: &Submission, submitter: Address) -> Vec<u8> {
    flow::submitCall {
        submission: flow::Submission {
            data: submission_data(submission),
            submitter: submitter.into(),
        },
    }
    .abi_encode()
}
