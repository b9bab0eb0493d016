//! The seam between consensus and the executed chain: [`Ledger`].
//!
//! The node's control plane owns chain-lite and its index and implements [`Ledger`] over them
//! (persisting each executed block before `apply` returns); [`MemoryLedger`] implements it over
//! an in-memory chain-lite whose "disk" is a [`BlockStore`] that outlives a simulated crash.

use crate::block::ExecClaim;
use crate::heads::ExecutedHead;
use crate::{Address, Finalization};
use chain_lite::{Block, Chain, ChainConfig, ChainError, Dropped, OrderedTransaction, U256};
use commonware_utils::sync::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use types::H256;

/// A finalized block handed to the ledger, in height order.
#[derive(Clone, Debug)]
pub struct FinalizedBlock {
    pub height: u64,
    pub timestamp_ms: u64,
    /// The ordered block's digest, which the executed header records.
    pub consensus_digest: H256,
    /// Raw transactions, or already prechecked ones (from the mempool), in block order.
    pub transactions: Vec<OrderedTransaction>,
    /// The certificate that finalized it, for followers to check (absent only where marshal
    /// started from a floor and never saw it).
    pub finalization: Option<Finalization>,
    /// The executed header the block claims (which the validators that voted for it compared
    /// with their own execution); `None` only for the genesis block.
    pub claim: Option<ExecClaim>,
}

/// What executing a block did.
#[derive(Clone, Debug)]
pub struct Applied {
    pub head: ExecutedHead,
    /// Hashes of the transactions the block included, in order.
    pub included: Vec<H256>,
    /// Transactions the state refused (nonce gap, replay, funds), with why.
    pub dropped: Vec<Dropped>,
    /// Account after the block of every sender the block touched.
    pub accounts: Vec<(Address, AccountState)>,
}

/// What the mempool needs of an account at the executed head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountState {
    pub nonce: u64,
    pub balance: U256,
    /// The executed height it was read at.
    pub height: u64,
}

impl AccountState {
    /// `address` at `chain`'s head.
    pub fn of(chain: &Chain, address: &Address) -> AccountState {
        AccountState {
            nonce: chain.nonce(address),
            balance: chain.balance(address),
            height: chain.head().number(),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("height {height} cannot execute: the ledger is at {head}")]
    OutOfOrder { height: u64, head: u64 },
    #[error("executing height {height}: {source}")]
    Execution {
        height: u64,
        #[source]
        source: ChainError,
    },
    #[error("the ledger's storage failed: {reason}")]
    Storage { reason: String },
    #[error("the ledger is unavailable: {reason}")]
    Unavailable { reason: String },
}

/// The executed chain as consensus needs it. Reads may be answered from another thread (the
/// control plane's), so every method is asynchronous; none may block the runtime.
pub trait Ledger: Clone + Send + Sync + 'static {
    /// The highest executed height (0 = genesis) and its header.
    fn head(&self) -> impl Future<Output = Result<ExecutedHead, LedgerError>> + Send;

    /// The executed header at `height`, if executed.
    fn executed(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<Option<ExecutedHead>, LedgerError>> + Send;

    /// The nonce and balance of `address` after the executed head.
    fn account(
        &self,
        address: Address,
    ) -> impl Future<Output = Result<AccountState, LedgerError>> + Send;

    /// Executes `block` (height = head + 1) and returns only once the result is durable: after
    /// a crash, `head` reports it. An error leaves the ledger unchanged.
    fn apply(
        &self,
        block: FinalizedBlock,
    ) -> impl Future<Output = Result<Applied, LedgerError>> + Send;
}

/// Sealed blocks as a node's index would hold them: what survives a crash of a simulated
/// validator (the engine's own journals live in the runtime's storage).
#[derive(Clone, Default)]
pub struct BlockStore {
    blocks: Arc<Mutex<Vec<Block>>>,
    finalizations: Arc<Mutex<BTreeMap<u64, Finalization>>>,
    claims: Arc<Mutex<BTreeMap<u64, ExecClaim>>>,
}

impl BlockStore {
    pub fn blocks(&self) -> Vec<Block> {
        self.blocks.lock().clone()
    }

    pub fn finalization(&self, height: u64) -> Option<Finalization> {
        self.finalizations.lock().get(&height).cloned()
    }

    /// The execution claim of every executed block, by height.
    pub fn claims(&self) -> BTreeMap<u64, ExecClaim> {
        self.claims.lock().clone()
    }
}

struct MemoryState {
    chain: Chain,
    store: BlockStore,
}

/// chain-lite in memory behind [`Ledger`], persisting into a [`BlockStore`].
#[derive(Clone)]
pub struct MemoryLedger {
    state: Arc<Mutex<MemoryState>>,
}

impl MemoryLedger {
    /// A fresh chain at genesis.
    pub fn new(config: ChainConfig) -> MemoryLedger {
        let chain = Chain::new(config);
        let store = BlockStore::default();
        store.blocks.lock().push(chain.head().clone());
        MemoryLedger {
            state: Arc::new(Mutex::new(MemoryState { chain, store })),
        }
    }

    /// The chain rebuilt from `store` (replaying and checking every block), as a restarted
    /// node rebuilds it from its index.
    pub fn recover(config: ChainConfig, store: BlockStore) -> Result<MemoryLedger, LedgerError> {
        let chain =
            Chain::replay(config, store.blocks()).map_err(|error| LedgerError::Storage {
                reason: format!("replaying the stored blocks: {error}"),
            })?;
        Ok(MemoryLedger {
            state: Arc::new(Mutex::new(MemoryState { chain, store })),
        })
    }

    /// What survives a crash of this ledger.
    pub fn store(&self) -> BlockStore {
        self.state.lock().store.clone()
    }

    /// Reads the chain (for checks; never from consensus code).
    pub fn with_chain<R>(&self, read: impl FnOnce(&Chain) -> R) -> R {
        read(&self.state.lock().chain)
    }
}

fn executed_head(block: &Block) -> ExecutedHead {
    ExecutedHead {
        height: block.number(),
        header_hash: block.hash(),
        consensus_digest: block.header.consensus_digest,
    }
}

impl Ledger for MemoryLedger {
    fn head(&self) -> impl Future<Output = Result<ExecutedHead, LedgerError>> + Send {
        let head = executed_head(self.state.lock().chain.head());
        async move { Ok(head) }
    }

    fn executed(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<Option<ExecutedHead>, LedgerError>> + Send {
        let executed = self.state.lock().chain.block(height).map(executed_head);
        async move { Ok(executed) }
    }

    fn account(
        &self,
        address: Address,
    ) -> impl Future<Output = Result<AccountState, LedgerError>> + Send {
        let account = AccountState::of(&self.state.lock().chain, &address);
        async move { Ok(account) }
    }

    fn apply(
        &self,
        block: FinalizedBlock,
    ) -> impl Future<Output = Result<Applied, LedgerError>> + Send {
        let result = apply_in_memory(&mut self.state.lock(), block);
        async move { result }
    }
}

fn apply_in_memory(state: &mut MemoryState, block: FinalizedBlock) -> Result<Applied, LedgerError> {
    let store = &state.store;
    let claim = block.claim;
    execute_finalized(&mut state.chain, block, |sealed, finalization| {
        store.blocks.lock().push(sealed.clone());
        if let Some(claim) = claim {
            store.claims.lock().insert(sealed.number(), claim);
        }
        if let Some(finalization) = finalization {
            store
                .finalizations
                .lock()
                .insert(sealed.number(), finalization.clone());
        }
        Ok(())
    })
}

/// What every ledger does with a finalized block: executes it on `chain` (it must be the
/// height after the head), has `persist` make the sealed block and its certificate durable,
/// and describes the result. An error from `persist` is returned as it is, after execution:
/// the chain in memory is then ahead of the ledger's storage.
pub fn execute_finalized(
    chain: &mut Chain,
    block: FinalizedBlock,
    persist: impl FnOnce(&Block, Option<&Finalization>) -> Result<(), LedgerError>,
) -> Result<Applied, LedgerError> {
    let head = chain.head().number();
    if block.height != head + 1 {
        return Err(LedgerError::OutOfOrder {
            height: block.height,
            head,
        });
    }
    let mut senders: BTreeSet<Address> = block
        .transactions
        .iter()
        .filter_map(|transaction| match transaction {
            OrderedTransaction::Prechecked(prechecked) => Some(prechecked.transaction().from),
            OrderedTransaction::Raw(_) => None,
        })
        .collect();
    let (sealed, dropped) = chain
        .execute_ordered(
            block.timestamp_ms,
            block.consensus_digest,
            block.transactions,
        )
        .map_err(|source| LedgerError::Execution {
            height: block.height,
            source,
        })?;
    persist(sealed, block.finalization.as_ref())?;
    // Senders and recipients: a pending sender that received funds may pay for more.
    senders.extend(
        sealed
            .receipts
            .iter()
            .flat_map(|receipt| [receipt.from, receipt.to]),
    );
    let included = sealed
        .transactions
        .iter()
        .map(chain_lite::Transaction::hash)
        .collect();
    let head = executed_head(sealed);
    let accounts = senders
        .into_iter()
        .map(|sender| (sender, AccountState::of(chain, &sender)))
        .collect();
    Ok(Applied {
        head,
        included,
        dropped,
        accounts,
    })
}
