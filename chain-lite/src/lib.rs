//! chain-lite: the small chain zerog embeds, as a pure deterministic state machine.
//!
//! Key decision: a block is its list of transactions plus a header that commits to the state
//! after them (flow root, flow length, submission count), and the whole state is a function of
//! the blocks. The node persists sealed blocks and rebuilds state with [`Chain::replay`], which
//! re-executes every transaction and checks each header and event against the stored block, so
//! a corrupted or reordered log is refused rather than silently believed. There is one
//! validator, so a sealed block is final at once (`finalized() == head()`).
//!
//! Today the only transaction is a Flow submission (0G's `Flow.submit`), executed with
//! `merkle::flow::FlowLog` exactly as the contract places nodes and computes the flow root.
//! Seams for later: [`Transaction`] grows variants for signed Ethereum transactions and calls to
//! native modules at fixed addresses; blocks grow event lists beside `submit_events` (NewEpoch,
//! module events); accounts and fees live beside the flow state in [`Chain`]. No IO, no async
//! runtime.
#![forbid(unsafe_code)]

mod block;
mod chain;
mod hex_serde;
mod submission;

pub use block::{Block, BlockHeader, Transaction};
pub use chain::{Chain, ChainConfig, ChainError, SubmitReceipt};
pub use submission::{Address, Submission, SubmissionError, SubmitEvent, submission_digest};
