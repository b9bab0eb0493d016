//! Keccak-256 for the Merkle trees. Batch entry points hash many fixed-size messages at once.
//!
//! (Scalar placeholder: the multi-buffer kernels replace the bodies of the batch functions.)

use sha3::{Digest, Keccak256};
use types::{CHUNK_BYTES, H256};

/// Keccak-256 of arbitrary bytes.
pub fn keccak256(data: &[u8]) -> H256 {
    H256(Keccak256::digest(data).into())
}

/// Hashes consecutive 256-byte chunks: `out[i] = keccak(data[256 i .. 256 (i + 1)])`.
///
/// Panics if `data.len() != out.len() * 256` (a caller bug, never client input).
pub fn hash_chunks(data: &[u8], out: &mut [H256]) {
    assert_eq!(data.len(), out.len() * CHUNK_BYTES, "hash_chunks: length mismatch");
    for (chunk, slot) in data.chunks_exact(CHUNK_BYTES).zip(out.iter_mut()) {
        *slot = keccak256(chunk);
    }
}

/// Hashes consecutive pairs: `out[i] = keccak(children[2 i] ‖ children[2 i + 1])`.
///
/// Panics if `children.len() != out.len() * 2` (a caller bug, never client input).
pub fn hash_pairs(children: &[H256], out: &mut [H256]) {
    assert_eq!(children.len(), out.len() * 2, "hash_pairs: length mismatch");
    for (pair, slot) in children.chunks_exact(2).zip(out.iter_mut()) {
        *slot = hash_pair(&pair[0], &pair[1]);
    }
}

/// keccak(left ‖ right).
pub fn hash_pair(left: &H256, right: &H256) -> H256 {
    let mut hasher = Keccak256::new();
    hasher.update(left.0);
    hasher.update(right.0);
    H256(hasher.finalize().into())
}
