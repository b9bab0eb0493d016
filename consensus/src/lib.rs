//! consensus: chain-lite ordered by a BFT engine (commonware simplex + marshal).
//!
//! Key decision: order first, execute after finality. Consensus orders blocks of raw signed
//! transactions ([`OrderedBlock`]); `verify` applies only rules every honest validator decides
//! the same way without executing (timestamps, caps, chain-lite's stateless prechecks) plus one
//! check of an earlier execution: each block claims the executed header of a height this node
//! already executed ([`ExecClaim`]), and a verifier waits until it has executed that height
//! itself and compares. Finalized blocks reach the [`Executor`] from marshal in height order,
//! at least once; it executes them on chain-lite through a [`Ledger`] (which drops what the
//! state refuses, deterministically) and acknowledges a height only once the ledger made it
//! durable. So no speculative or forked chain state exists anywhere, and a finality certificate
//! of height `h` proves the order of `h` and the executed state of the height `h` claims.
//!
//! The crate runs on any commonware runtime (deterministic in tests, tokio in a node) and any
//! commonware p2p network (simulated in tests, `authenticated::lookup` in a node): [`start`]
//! takes a runtime context, the channels and the peer set, and returns [`Handles`].
#![forbid(unsafe_code)]

mod application;
mod block;
mod engine;
mod executor;
mod finality;
mod genesis;
mod heads;
mod ledger;
mod mempool;

pub use application::{Application, BlockError, Timing, check_block};
pub use block::{BLOCK_VERSION, BlockLimits, ExecClaim, OrderedBlock};
pub use engine::{
    Channels, EngineConfig, EngineError, Handles, Parameters, max_message_size, start,
};
pub use executor::Executor;
pub use finality::{FinalityError, FinalityProof};
pub use genesis::{Genesis, GenesisError, public_keys, validator_keys, verify_finalization};
pub use heads::{ExecutedHead, Heads};
pub use ledger::{
    AccountState, Applied, BlockStore, FinalizedBlock, Ledger, LedgerError, MemoryLedger,
    execute_finalized,
};
pub use mempool::{Mempool, MempoolError, MempoolHandle, MempoolLimits};

/// The digest of an ordered block: keccak256, the hash chain-lite uses everywhere.
pub type Digest = commonware_cryptography::keccak256::Digest;
/// A validator's identity and signing key (ed25519).
pub type PublicKey = commonware_cryptography::ed25519::PublicKey;
pub type PrivateKey = commonware_cryptography::ed25519::PrivateKey;
/// The certificate scheme: ed25519 signatures, a certificate lists its 2f+1 signers.
pub type Scheme = commonware_consensus::simplex::scheme::ed25519::Scheme;
/// What consensus tells a proposer and a verifier about a block: round, leader, parent.
pub type Context = commonware_consensus::simplex::types::Context<Digest, PublicKey>;
/// A finalization certificate: 2f+1 validators signed the finalize vote of a block.
pub type Finalization = commonware_consensus::simplex::types::Finalization<Scheme, Digest>;
/// An address on chain-lite.
pub type Address = chain_lite::Address;
