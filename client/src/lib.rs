//! client: a zerog (0G) node's clients over public JSON-RPC only, so whatever uses them (the
//! `zerog` CLI, the S3 gateway, the DA node, the benchmarks) can front a remote node or chain.
//!
//! Key decision: one client per protocol. [`rpc::Client`] is the JSON-RPC transport (time and
//! answer-size limits, the node's typed errors); [`wire`] reads and writes Ethereum's 0x
//! quantities and data for clients and for the node's own facade alike; [`chain`] signs, sends
//! and awaits Ethereum transactions with one nonce discipline; [`transfer`] uploads and
//! downloads 0G files, verifying every downloaded segment. Progress is reported through a
//! callback trait so that this crate draws nothing.
#![forbid(unsafe_code)]

pub mod chain;
mod error;
pub mod network;
pub mod rpc;
mod source;
pub mod transfer;
pub mod wire;

pub use chain::{Chain, Payer};
pub use error::{Error, NodeError};
pub use merkle::file::{FileTree, FileTreeBuilder};
pub use rpc::Client;
pub use source::{FileSource, Source};
pub use transfer::{
    FileRef, PARALLEL_REQUESTS, Uploaded, build_tree, download, locate, read_range, read_segment,
    upload, upload_replicated, upload_with_tree,
};

/// What a progress callback is told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Hash,
    Upload,
    Download,
}

/// Progress of a long operation; the CLI draws bars with it, the gateway ignores it.
pub trait Progress: Sync {
    fn start(&self, _phase: Phase, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
