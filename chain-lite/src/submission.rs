//! Flow submissions: the contract's `Submission` struct, its validation and its digest, and
//! the `Submit` event.
//!
//! Validation is stricter than the contract's `SubmissionLibrary.valid` on one point: the nodes
//! must be exactly the decomposition of 0G's padded size of `length` (what every SDK sends),
//! where the contract also accepts a few shapes no SDK produces. The digest is the contract's
//! `identity`: keccak256 over the node roots concatenated (`abi.encodePacked(bytes32[])`).

use crate::hex_serde;
use merkle::file::{SubmissionNode, node_heights, padded_chunks};
use merkle::keccak::keccak256;
use serde::{Deserialize, Serialize};
use types::{H256, SectorIndex, TxSeq, chunks_for_bytes};

/// An Ethereum account address.
pub type Address = [u8; 20];

/// What a client submits to the Flow contract (the SDK's `SubmissionData`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// File size in bytes.
    pub length: u64,
    #[serde(with = "hex_serde::bytes")]
    pub tags: Vec<u8>,
    pub nodes: Vec<SubmissionNode>,
}

/// Largest file one submission may announce (512 GiB): a storage node keeps per-segment state
/// for every announced file, so the chain bounds what one transaction can make it hold.
pub const MAX_SUBMISSION_BYTES: u64 = 1 << 39;

/// Why a submission is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmissionError {
    #[error("submission length is 0 bytes; an empty file cannot be submitted")]
    ZeroLength,
    #[error("submission has no nodes")]
    NoNodes,
    #[error("submission length is {length} bytes; at most {max} are allowed")]
    TooLarge { length: u64, max: u64 },
    #[error("submission has {count} nodes; at most {max} are allowed")]
    TooManyNodes { count: usize, max: usize },
    #[error("tags are {bytes} bytes; at most {max} are allowed")]
    TagsTooLong { bytes: usize, max: usize },
    #[error("node {index} has height {height}; heights must be below 64")]
    NodeTooHigh { index: usize, height: u64 },
    #[error("node {index} has height {height}, not below the previous node's {previous}")]
    HeightsNotDecreasing {
        index: usize,
        height: u64,
        previous: u64,
    },
    #[error(
        "nodes cover {found_chunks} chunks but a file of {length_bytes} bytes pads to {expected_chunks}"
    )]
    SizeMismatch {
        length_bytes: u64,
        expected_chunks: u64,
        found_chunks: u64,
    },
}

/// Largest node height the contract accepts (`MAX_DEPTH` is 64, heights are below it).
const MAX_HEIGHT: u64 = 63;

impl Submission {
    /// Sectors the submission occupies in the flow: the sum of 2^height (the padded size).
    pub fn sectors(&self) -> u64 {
        // Saturating: this may run on an unvalidated submission.
        self.nodes.iter().fold(0u64, |sum, node| {
            sum.saturating_add(1u64 << node.height.min(MAX_HEIGHT))
        })
    }

    /// Checks the submission as the Flow contract would (see the module header).
    pub fn validate(&self, max_nodes: usize, max_tags_bytes: usize) -> Result<(), SubmissionError> {
        if self.length == 0 {
            return Err(SubmissionError::ZeroLength);
        }
        if self.length > MAX_SUBMISSION_BYTES {
            return Err(SubmissionError::TooLarge {
                length: self.length,
                max: MAX_SUBMISSION_BYTES,
            });
        }
        if self.nodes.is_empty() {
            return Err(SubmissionError::NoNodes);
        }
        if self.nodes.len() > max_nodes {
            return Err(SubmissionError::TooManyNodes {
                count: self.nodes.len(),
                max: max_nodes,
            });
        }
        if self.tags.len() > max_tags_bytes {
            return Err(SubmissionError::TagsTooLong {
                bytes: self.tags.len(),
                max: max_tags_bytes,
            });
        }
        for (index, node) in self.nodes.iter().enumerate() {
            if node.height > MAX_HEIGHT {
                return Err(SubmissionError::NodeTooHigh {
                    index,
                    height: node.height,
                });
            }
            if index > 0 && node.height >= self.nodes[index - 1].height {
                return Err(SubmissionError::HeightsNotDecreasing {
                    index,
                    height: node.height,
                    previous: self.nodes[index - 1].height,
                });
            }
        }
        let expected_chunks = padded_chunks(chunks_for_bytes(self.length));
        let found_chunks = self.sectors();
        let expected_heights: Vec<u64> = node_heights(expected_chunks)
            .into_iter()
            .map(u64::from)
            .collect();
        let found_heights: Vec<u64> = self.nodes.iter().map(|node| node.height).collect();
        if found_chunks != expected_chunks || expected_heights != found_heights {
            return Err(SubmissionError::SizeMismatch {
                length_bytes: self.length,
                expected_chunks,
                found_chunks,
            });
        }
        Ok(())
    }

    /// The contract's `identity`: keccak256 of the node roots, concatenated.
    pub fn digest(&self) -> H256 {
        submission_digest(&self.nodes)
    }
}

/// keccak256 of the node roots concatenated (`abi.encodePacked(bytes32[])`).
pub fn submission_digest(nodes: &[SubmissionNode]) -> H256 {
    let mut packed = Vec::with_capacity(nodes.len() * 32);
    for node in nodes {
        packed.extend_from_slice(node.root.as_bytes());
    }
    keccak256(&packed)
}

/// The Flow contract's `Submit(sender, identity, submissionIndex, startPos, length, submission)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitEvent {
    #[serde(with = "hex_serde::address")]
    pub sender: Address,
    /// The submission digest (see [`submission_digest`]).
    pub identity: H256,
    pub submission_index: TxSeq,
    pub start_pos: SectorIndex,
    /// Sectors occupied: the sum of 2^height.
    pub length: u64,
    pub submission: Submission,
}
