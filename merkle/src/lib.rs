//! 0G storage formats, exactly: Keccak-256 leaves and nodes, the file Merkle tree with its
//! submission nodes and segment proofs, and the flow log (placement, flow root, sector proofs).
//!
//! Pure functions of their inputs: no IO, no async runtime. The only `unsafe` is in the SIMD
//! Keccak kernels, which hash many fixed-size messages at once; everything above them sees a
//! safe batch API (`keccak::hash_chunks`, `keccak::hash_pairs`).

pub mod file;
pub mod flow;
pub mod keccak;
