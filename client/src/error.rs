//! The client's one error type: what failed, with the node's own words when it refused.

use std::path::PathBuf;
use types::H256;

/// A JSON-RPC error answered by the node (`kind` is its stable `data.kind`, see docs/rpc.md).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method}: error {code}: {message}")]
pub struct NodeError {
    pub method: String,
    pub code: i64,
    pub message: String,
    pub kind: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the HTTP client: {source}")]
    HttpClient { source: reqwest::Error },
    #[error("cannot reach the {peer} at {url}{hint}: {source}", hint = if *peer == "node" { " (is `zerog node` running?)" } else { "" })]
    Unreachable {
        peer: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{method}: answered HTTP {status} without a JSON-RPC answer: {detail}")]
    NotJson {
        method: String,
        status: u16,
        detail: String,
    },
    #[error("{method}: {url} answered more than {max_bytes} bytes; refused")]
    AnswerTooLarge {
        method: String,
        url: String,
        max_bytes: usize,
    },
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("unexpected answer for {what}: {detail}")]
    Answer { what: &'static str, detail: String },
    #[error("unexpected answer: {0}")]
    Wire(#[from] crate::wire::WireError),
    #[error("the key is not a 32-byte hex private key")]
    BadKey,
    #[error("signing the submission: {detail}")]
    Sign { detail: String },
    #[error("transaction {hash} reverted: {reason}")]
    Reverted { hash: H256, reason: String },
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    #[error(
        "the network cannot hold {replicas} replicas: flow segments k with k mod {of} = {residue} \
         have {found} of the {replicas} nodes needed"
    )]
    NotEnoughNodes {
        residue: u64,
        of: u64,
        found: usize,
        replicas: usize,
    },
    #[error("the file is empty: 0G files hold at least one byte")]
    EmptyFile,
    #[error("the prebuilt tree covers {tree_bytes} bytes but the source holds {source_bytes}")]
    TreeSize { tree_bytes: u64, source_bytes: u64 },
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        source: std::io::Error,
    },
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Merkle { source: merkle::file::MerkleError },
    #[error("no file with root {root} is known to the node")]
    UnknownFile { root: H256 },
    #[error("file {root} is not completely uploaded yet (finalized = false)")]
    NotFinalized { root: H256 },
    #[error("the node does not hold segment {index} of {root}")]
    MissingSegment { root: H256, index: u64 },
    #[error("segment {index} of {root} failed verification: {source}")]
    Verification {
        root: H256,
        index: u64,
        source: merkle::file::ProofError,
    },
}

impl Error {
    /// The node's error kind, when the node refused the call.
    pub fn node_kind(&self) -> Option<&str> {
        match self {
            Error::Node(error) => Some(error.kind.as_str()),
            _ => None,
        }
    }
}
