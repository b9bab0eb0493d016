//! chain-lite: the small chain zerog embeds, as a pure deterministic state machine.
//!
//! Key decision: a block is its list of transactions plus a header that commits to the state
//! after them (flow root, flow length, submission count, receipts, accounts, and the root of
//! all module state), and the whole
//! state is a function of the blocks. The node persists sealed blocks and rebuilds state with
//! [`Chain::replay`], which re-executes every transaction and checks each header, receipt and
//! event against the stored block, so a corrupted or reordered log is refused rather than
//! silently believed. On the embedded dev chain there is one validator, so a sealed block is
//! final at once (`finalized() == head()`). Where a consensus engine orders blocks, it checks
//! transactions with [`Prechecked::new`] (no state needed) and hands each finalized block to
//! [`Chain::execute_ordered`], which drops deterministically what the state refuses and seals a
//! header naming the consensus block. Headers (v3) commit to every module's state through
//! [`Chain::state_root`], so two chains that diverge anywhere disagree on their next header;
//! v2 headers of older data folders keep replaying as they were sealed.
//!
//! Transactions are signed Ethereum transactions (legacy with EIP-155, EIP-2930, EIP-1559;
//! alloy decodes them and recovers the sender) or the unsigned dev Flow submission. There is
//! no EVM: calls go to native modules at fixed addresses ([`FLOW_ADDRESS`], [`MARKET_ADDRESS`],
//! [`REWARD_ADDRESS`]) that speak the ABI of 0G's contracts, and value moves between
//! accounts. Flow submissions execute with `merkle::flow::FlowLog` exactly as the contract
//! places nodes and computes the flow root. No IO, no async runtime.
#![forbid(unsafe_code)]

pub mod abi;
mod block;
mod chain;
pub mod da;
mod epoch;
mod hex_serde;
mod modules;
mod ordered;
mod receipt;
mod state;
pub mod storage;
mod submission;
mod tx;

pub use alloy_primitives::U256;
pub use block::{Block, BlockHeader, BodyError, HEADER_V2, HEADER_VERSION, Transaction};
pub use chain::{
    Account, Chain, ChainConfig, ChainError, DEFAULT_GAS_PRICE, DEFAULT_MAX_CALLDATA_BYTES,
    DEFAULT_PRICE_PER_SECTOR, DEV_ACCOUNTS, DEV_BALANCE_WEI, DevAccount, EstimateError,
    GenesisAccount, SubmitReceipt, TransactionLookup,
};
pub use epoch::{
    BLOCK_HASH_WINDOW, DEPLOY_DELAY, EMPTY_HASH, EpochRange, FIRST_BLOCK, MAX_EPOCHS_PER_CALL,
    MineContext, ROOT_HISTORY_WINDOW, context_digest,
};
pub use modules::{
    DA_ENTRANCE_ADDRESS, DA_REGISTRY_ADDRESS, FLOW_ADDRESS, MARKET_ADDRESS,
    MAX_CHUNKS_PER_SUBMISSION, MODULE_CALL_GAS, MarketTotals, PRICING_CHUNK_SECTORS,
    REWARD_ADDRESS, Revert, RewardPool, STORAGE_REGISTRY_ADDRESS, is_module, submit_log,
};
pub use ordered::{Dropped, OrderedTransaction, Prechecked};
pub use receipt::{Log, LogEntry, LogFilter, Receipt};
pub use submission::{
    Address, MAX_SUBMISSION_BYTES, Submission, SubmissionError, SubmitEvent, submission_digest,
};
pub use tx::{
    ACCESS_LIST_ADDRESS_GAS, ACCESS_LIST_STORAGE_KEY_GAS, CALLDATA_NONZERO_BYTE_GAS,
    CALLDATA_ZERO_BYTE_GAS, RAW_OVERHEAD_BYTES, SignedTransaction, TX_BASE_GAS, TxError,
    calldata_gas, decode_transaction,
};
