//! commit: the commitment to a coded blob — a BLAKE3 Merkle root over its `k + m` shards, bound
//! to `k`, `m` and the shard width — with per-shard proofs and their verification.
//!
//! Tree: the leaves are the coded shards in index order (data shards `0..k`, recovery shards
//! `k..k+m`), padded on the right with all-zero 32-byte leaves up to the next power of two, and
//! hashed pairwise up to one root. A proof is the shard index and the sibling at every level,
//! bottom-up, so its length is `log2(next_power_of_two(k + m))` (12 for 1024 + 2048). The leaf
//! does not hash the index: the path the verifier folds is chosen by the index bits, so a shard
//! verifies at exactly one position, and the verifier refuses indices ≥ `k + m`, so a padding
//! position is never a shard.
//!
//! Domain separation uses BLAKE3's keyed mode with three fixed 32-byte ASCII keys — shard leaves
//! ([`LEAF_KEY`]), inner nodes ([`NODE_KEY`]), blob ids ([`BLOB_ID_KEY`]) — so a leaf can never be
//! read as a node or an id, and the shard bytes are hashed chunk-aligned with BLAKE3's SIMD
//! many-chunk path (no prefix byte in front of them).
//!
//! A [`ShardCommitment`] is the root plus `k`, `m` and the shard width: everything a reader needs
//! to check a shard and decode. Its canonical 44-byte form (root, then `k`, `m`, width as u32
//! little-endian) hashed under [`BLOB_ID_KEY`] is the [`BlobId`].

use crate::blob::{DaError, DaParams, SHARD_WIDTH_ALIGN_BYTES};
use thiserror::Error;

/// BLAKE3 key of shard leaf hashes.
pub const LEAF_KEY: [u8; 32] = *b"zerog da v1 shard leaf blake3key";
/// BLAKE3 key of inner-node hashes (`left ‖ right`).
pub const NODE_KEY: [u8; 32] = *b"zerog da v1 merkle node blake3k.";
/// BLAKE3 key of blob ids (over the commitment's canonical bytes).
pub const BLOB_ID_KEY: [u8; 32] = *b"zerog da v1 blob id blake3 key..";
/// Bytes of a commitment's canonical form.
pub const COMMITMENT_BYTES: usize = 44;
/// Deepest tree: `k + m ≤ 65536` leaves.
pub const MAX_TREE_DEPTH: usize = 16;

/// The leaf hash of one coded shard.
pub fn leaf_hash(shard: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(&LEAF_KEY, shard).as_bytes()
}

/// The hash of an inner node from its two children.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut pair = [0u8; 64];
    pair[..32].copy_from_slice(left);
    pair[32..].copy_from_slice(right);
    *blake3::keyed_hash(&NODE_KEY, &pair).as_bytes()
}

/// Depth of the commitment tree over `total_shards` leaves (proof length).
pub fn tree_depth(total_shards: usize) -> usize {
    total_shards.next_power_of_two().trailing_zeros() as usize
}

/// Position of a coded shard: `0..k` data shards, `k..k+m` recovery shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardIndex(pub u32);

impl ShardIndex {
    /// The index as a `usize` for slicing.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

/// The 32-byte identifier of a blob, derived from its commitment alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

/// Commitment to a coded blob: Merkle root over the `k + m` shards, the parameters, the width.
/// Always well-formed once constructed (width a multiple of 64 within the limit for `k`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardCommitment {
    root: [u8; 32],
    params: DaParams,
    shard_width_bytes: u32,
}

impl ShardCommitment {
    /// A commitment from its parts; refuses a width that is zero, not a multiple of 64 or wider
    /// than the widest canonical shard for `params`.
    pub fn new(
        root: [u8; 32],
        params: DaParams,
        shard_width_bytes: usize,
    ) -> Result<ShardCommitment, DaError> {
        let max_bytes = params.max_shard_width_bytes();
        if shard_width_bytes == 0
            || !shard_width_bytes.is_multiple_of(SHARD_WIDTH_ALIGN_BYTES)
            || shard_width_bytes > max_bytes
        {
            return Err(DaError::InvalidShardWidth {
                width_bytes: shard_width_bytes,
                max_bytes,
            });
        }
        Ok(ShardCommitment {
            root,
            params,
            shard_width_bytes: u32::try_from(shard_width_bytes)
                .expect("the width limit is below 2^32"),
        })
    }

    /// The Merkle root over the coded shards.
    pub fn root(&self) -> &[u8; 32] {
        &self.root
    }

    /// `k` and `m`.
    pub fn params(&self) -> DaParams {
        self.params
    }

    /// Bytes in every coded shard.
    pub fn shard_width_bytes(&self) -> usize {
        self.shard_width_bytes as usize
    }

    /// Canonical form: root, `k`, `m`, width (u32 little-endian each).
    pub fn to_bytes(&self) -> [u8; COMMITMENT_BYTES] {
        let mut out = [0u8; COMMITMENT_BYTES];
        out[..32].copy_from_slice(&self.root);
        out[32..36].copy_from_slice(&(self.params.data_shards() as u32).to_le_bytes());
        out[36..40].copy_from_slice(&(self.params.recovery_shards() as u32).to_le_bytes());
        out[40..44].copy_from_slice(&self.shard_width_bytes.to_le_bytes());
        out
    }

    /// Parses the canonical form, with the same checks as [`ShardCommitment::new`].
    pub fn from_bytes(bytes: &[u8]) -> Result<ShardCommitment, DaError> {
        if bytes.len() != COMMITMENT_BYTES {
            return Err(DaError::Malformed {
                what: "shard commitment",
                reason: "not 44 bytes",
            });
        }
        let word = |at: usize| {
            u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4-byte slice")) as usize
        };
        let mut root = [0u8; 32];
        root.copy_from_slice(&bytes[..32]);
        let params = DaParams::new(word(32), word(36))?;
        ShardCommitment::new(root, params, word(40))
    }

    /// The blob id: BLAKE3 under [`BLOB_ID_KEY`] of the canonical form.
    pub fn blob_id(&self) -> BlobId {
        BlobId(*blake3::keyed_hash(&BLOB_ID_KEY, &self.to_bytes()).as_bytes())
    }

    /// Checks that `shard` is the coded shard at `index` under this commitment: the index is in
    /// range and is the proof's, the width is the committed one, the path has the tree's depth
    /// and folds to the root. Returns the shard's leaf hash.
    pub fn verify_shard(
        &self,
        index: ShardIndex,
        shard: &[u8],
        proof: &ShardProof,
    ) -> Result<[u8; 32], ShardRejection> {
        let total_shards = self.params.total_shards();
        if index.as_usize() >= total_shards {
            return Err(ShardRejection::IndexOutOfRange {
                index: index.0,
                total_shards,
            });
        }
        if proof.index != index {
            return Err(ShardRejection::ProofForOtherIndex {
                index: index.0,
                proof_index: proof.index.0,
            });
        }
        if shard.len() != self.shard_width_bytes() {
            return Err(ShardRejection::WrongWidth {
                index: index.0,
                expected_bytes: self.shard_width_bytes(),
                found_bytes: shard.len(),
            });
        }
        let depth = tree_depth(total_shards);
        if proof.siblings.len() != depth {
            return Err(ShardRejection::WrongProofLength {
                index: index.0,
                expected: depth,
                found: proof.siblings.len(),
            });
        }
        let leaf = leaf_hash(shard);
        if proof.fold(leaf) != self.root {
            return Err(ShardRejection::RootMismatch { index: index.0 });
        }
        Ok(leaf)
    }
}

/// Why a shard was not accepted. A rejected shard is never used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ShardRejection {
    /// The index is not one of the `k + m` coded shards.
    #[error("shard index {index} out of range 0..{total_shards}")]
    IndexOutOfRange {
        /// The offered index.
        index: u32,
        /// `k + m`.
        total_shards: usize,
    },
    /// The proof is for another position.
    #[error("shard {index} offered with a proof for shard {proof_index}")]
    ProofForOtherIndex {
        /// The offered index.
        index: u32,
        /// The index the proof is for.
        proof_index: u32,
    },
    /// The shard is not the committed width.
    #[error("shard {index} is {found_bytes} bytes, the commitment says {expected_bytes}")]
    WrongWidth {
        /// The offered index.
        index: u32,
        /// Committed width.
        expected_bytes: usize,
        /// Offered length.
        found_bytes: usize,
    },
    /// The proof has the wrong number of siblings for the tree.
    #[error("proof for shard {index} has {found} siblings, the tree has depth {expected}")]
    WrongProofLength {
        /// The offered index.
        index: u32,
        /// Tree depth.
        expected: usize,
        /// Siblings offered.
        found: usize,
    },
    /// The shard and path do not hash to the committed root.
    #[error("shard {index} does not hash to the committed root")]
    RootMismatch {
        /// The offered index.
        index: u32,
    },
    /// A shard at this index was already accepted.
    #[error("shard {index} was already accepted")]
    Duplicate {
        /// The offered index.
        index: u32,
    },
}

/// Merkle proof of one coded shard: its index and the sibling hash at every level, bottom-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardProof {
    index: ShardIndex,
    siblings: Vec<[u8; 32]>,
}

impl ShardProof {
    /// A proof from its parts (as received; [`ShardCommitment::verify_shard`] checks it).
    pub fn new(index: ShardIndex, siblings: Vec<[u8; 32]>) -> ShardProof {
        ShardProof { index, siblings }
    }

    /// The shard index the proof is for.
    pub fn index(&self) -> ShardIndex {
        self.index
    }

    /// Sibling hashes, leaf level first.
    pub fn siblings(&self) -> &[[u8; 32]] {
        &self.siblings
    }

    /// Wire form: index (u32 LE), sibling count (u8), siblings.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + 32 * self.siblings.len());
        out.extend_from_slice(&self.index.0.to_le_bytes());
        out.push(u8::try_from(self.siblings.len()).expect("a proof is at most 16 deep"));
        for sibling in &self.siblings {
            out.extend_from_slice(sibling);
        }
        out
    }

    /// Parses the wire form; refuses more than [`MAX_TREE_DEPTH`] siblings and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<ShardProof, DaError> {
        let malformed = |reason| DaError::Malformed {
            what: "shard proof",
            reason,
        };
        if bytes.len() < 5 {
            return Err(malformed("shorter than its 5-byte header"));
        }
        let index = ShardIndex(u32::from_le_bytes(
            bytes[..4].try_into().expect("4-byte slice"),
        ));
        let count = bytes[4] as usize;
        if count > MAX_TREE_DEPTH {
            return Err(malformed("more siblings than the deepest tree"));
        }
        let body = &bytes[5..];
        if body.len() != 32 * count {
            return Err(malformed("length does not match the sibling count"));
        }
        let siblings = body
            .chunks_exact(32)
            .map(|chunk| chunk.try_into().expect("32-byte chunk"))
            .collect();
        Ok(ShardProof { index, siblings })
    }

    /// The root the path gives for `leaf` at this proof's index.
    fn fold(&self, leaf: [u8; 32]) -> [u8; 32] {
        let mut position = self.index.as_usize();
        let mut node = leaf;
        for sibling in &self.siblings {
            node = if position & 1 == 0 {
                node_hash(&node, sibling)
            } else {
                node_hash(sibling, &node)
            };
            position >>= 1;
        }
        node
    }
}

/// A complete binary tree stored heap-style (root at 1, leaves from `width`), reused across
/// blobs so a long-lived encoder or decoder allocates it once.
#[derive(Default)]
pub(crate) struct MerkleTree {
    nodes: Vec<[u8; 32]>,
    leaf_count: usize,
}

impl MerkleTree {
    /// Prepares for `leaf_count` leaves (all zero until written).
    pub(crate) fn reset(&mut self, leaf_count: usize) {
        let width = leaf_count.next_power_of_two();
        self.nodes.clear();
        self.nodes.resize(2 * width, [0u8; 32]);
        self.leaf_count = leaf_count;
    }

    /// The `leaf_count` real leaves, to be filled before [`MerkleTree::build`].
    pub(crate) fn leaves_mut(&mut self) -> &mut [[u8; 32]] {
        let width = self.nodes.len() / 2;
        &mut self.nodes[width..width + self.leaf_count]
    }

    /// Hashes the inner nodes from the leaves (the padding leaves stay zero).
    pub(crate) fn build(&mut self) {
        let width = self.nodes.len() / 2;
        for position in (1..width).rev() {
            self.nodes[position] =
                node_hash(&self.nodes[2 * position], &self.nodes[2 * position + 1]);
        }
    }

    /// The root (after [`MerkleTree::build`]).
    pub(crate) fn root(&self) -> [u8; 32] {
        self.nodes[1]
    }

    /// The proof of leaf `index` (after [`MerkleTree::build`]).
    pub(crate) fn proof(&self, index: ShardIndex) -> ShardProof {
        assert!(index.as_usize() < self.leaf_count, "proof of a real leaf");
        let width = self.nodes.len() / 2;
        let mut position = width + index.as_usize();
        let mut siblings = Vec::with_capacity(width.trailing_zeros() as usize);
        while position > 1 {
            siblings.push(self.nodes[position ^ 1]);
            position >>= 1;
        }
        ShardProof { index, siblings }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_of(leaves: &[[u8; 32]]) -> MerkleTree {
        let mut tree = MerkleTree::default();
        tree.reset(leaves.len());
        tree.leaves_mut().copy_from_slice(leaves);
        tree.build();
        tree
    }

    #[test]
    fn every_leaf_proves_against_the_root_at_its_own_index_only() {
        for leaf_count in [2usize, 3, 5, 8, 12, 48] {
            let shards: Vec<Vec<u8>> = (0..leaf_count).map(|i| vec![i as u8; 64]).collect();
            let leaves: Vec<[u8; 32]> = shards.iter().map(|s| leaf_hash(s)).collect();
            let tree = tree_of(&leaves);
            let params = DaParams::new(leaf_count / 2, leaf_count - leaf_count / 2);
            let Ok(params) = params else { continue };
            let commitment =
                ShardCommitment::new(tree.root(), params, 64).expect("64 is a valid width");
            for index in 0..leaf_count {
                let proof = tree.proof(ShardIndex(index as u32));
                assert_eq!(proof.siblings().len(), tree_depth(leaf_count));
                assert_eq!(
                    commitment.verify_shard(ShardIndex(index as u32), &shards[index], &proof),
                    Ok(leaves[index])
                );
                let other = (index + 1) % leaf_count;
                assert!(
                    commitment
                        .verify_shard(ShardIndex(index as u32), &shards[other], &proof)
                        .is_err()
                );
                assert_eq!(
                    ShardProof::from_bytes(&proof.to_bytes()).expect("round trip"),
                    proof
                );
            }
        }
    }

    #[test]
    fn commitment_bytes_round_trip_and_bad_widths_are_refused() {
        let params = DaParams::new(4, 8).expect("supported params");
        let commitment =
            ShardCommitment::new([7u8; 32], params, 128).expect("well-formed commitment");
        assert_eq!(
            ShardCommitment::from_bytes(&commitment.to_bytes()).expect("round trip"),
            commitment
        );
        for width in [0usize, 2, 100, params.max_shard_width_bytes() + 64] {
            assert!(ShardCommitment::new([7u8; 32], params, width).is_err());
        }
        let other = ShardCommitment::new([7u8; 32], params, 192).expect("well-formed commitment");
        assert_ne!(commitment.blob_id(), other.blob_id());
    }
}
