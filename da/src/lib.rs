//! da: the data-availability layer's pure core. Blob format, Reed-Solomon coding,
//! shard commitments and proofs, the validity predicate, sampling bounds, BLS attestations and
//! optional KZG commitments. No IO and no async runtime: the data plane and the control plane
//! call into it.

pub mod attest;
pub mod blob;
pub mod codec;
pub mod commit;
pub mod kzg;
pub mod sample;
