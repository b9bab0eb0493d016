//! Proposing and verifying ordered blocks (commonware's `Application`, wrapped by marshal's
//! `Deferred`, which checks the parent link, the height and the embedded context first).
//!
//! Verification is what every honest validator must decide alike, so it uses no local state
//! but one: the executed header a block claims, which a verifier compares with its own once it
//! has executed that height (it waits, never refuses, while it has not: an honest proposer
//! only claims a height it executed, hence one the network finalized).

use crate::block::{ExecClaim, OrderedBlock};
use crate::genesis::Genesis;
use crate::heads::Heads;
use crate::ledger::Ledger;
use crate::mempool::Mempool;
use crate::{Address, Context, Scheme};
use chain_lite::{Prechecked, TxError};
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::{Block as _, Heightable};
use commonware_cryptography::{Digested, Digestible};
use commonware_runtime::{Clock, Metrics, Spawner};
use commonware_utils::sync::Mutex;
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{debug, warn};
use types::H256;

/// Unexecuted ancestors a proposer reads to avoid including a transaction twice; a proposer
/// further behind its own execution proposes an empty block.
const MAX_UNEXECUTED_ANCESTORS: usize = 1024;
/// How often an idle proposer looks at the mempool again.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// Why a verifier refused a block. Each is permanent for the block: no later information can
/// make it valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("a block at height 0 is only ever the genesis block")]
    Genesis,
    #[error("timestamp {timestamp_ms} is not after the parent's {parent_ms}")]
    TimestampNotAfterParent { timestamp_ms: u64, parent_ms: u64 },
    #[error("{count} transactions; at most {max} per block")]
    TooManyTransactions { count: usize, max: usize },
    #[error("{bytes} bytes of transactions; at most {max} per block")]
    TooManyBytes { bytes: usize, max: usize },
    #[error("transaction {hash} appears twice")]
    DuplicateTransaction { hash: H256 },
    #[error("transaction {index} ({hash}) fails the stateless checks: {error}")]
    TransactionRefused {
        index: usize,
        hash: H256,
        error: Box<TxError>,
    },
    #[error("no execution claim")]
    MissingExecClaim,
    #[error("claims execution of height {claimed}, not below its own height {height}")]
    ClaimNotBelowBlock { claimed: u64, height: u64 },
    #[error("claims execution of height {claimed}, below the parent's claim of {parent}")]
    ClaimRegresses { claimed: u64, parent: u64 },
    #[error("claims a different header than its parent for height {height}")]
    ClaimDiffersFromParent { height: u64 },
    #[error("claims header {claimed} at height {height}; this node executed {executed}")]
    ClaimDiffersFromExecution {
        height: u64,
        claimed: H256,
        executed: H256,
    },
}

/// Timing a proposer and a verifier use.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How long a leader with an empty mempool waits for transactions before proposing an
    /// empty block. Keep it well below the leader timeout.
    pub idle_block: Duration,
    /// How far ahead of a verifier's clock a block's timestamp may be before it waits.
    pub max_clock_skew: Duration,
}

/// The proposer and verifier of ordered blocks.
#[derive(Clone)]
pub struct Application<L: Ledger> {
    genesis: Arc<Genesis>,
    ledger: L,
    heads: Heads,
    mempool: Arc<Mutex<Mempool>>,
    timing: Timing,
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

impl<L: Ledger> Application<L> {
    pub(crate) fn new(
        genesis: Arc<Genesis>,
        ledger: L,
        heads: Heads,
        mempool: Arc<Mutex<Mempool>>,
        timing: Timing,
    ) -> Application<L> {
        Application {
            genesis,
            ledger,
            heads,
            mempool,
            timing,
        }
    }

    /// The permanent rules of a block relative to its parent: everything but the comparison
    /// of its claim with this node's execution. `Ok(Some(claim))` names the claim still to
    /// compare (a claim equal to the parent's was compared when the parent was verified).
    pub fn check(
        &self,
        block: &OrderedBlock,
        parent: &OrderedBlock,
    ) -> Result<Option<ExecClaim>, BlockError> {
        check_block(&self.genesis, &self.mempool.lock(), block, parent)
    }

    /// The execution claim of a block built on `parent`: the highest executed height not above
    /// the parent and not below the parent's claim.
    async fn claim(&self, parent: &OrderedBlock) -> Option<ExecClaim> {
        let executed = self.ledger.head().await.ok()?;
        let parent_claim = parent.exec();
        if let Some(claim) = parent_claim
            && executed.height <= claim.height
        {
            return Some(claim);
        }
        if executed.height <= parent.height_u64() {
            return Some(ExecClaim {
                height: executed.height,
                header_hash: executed.header_hash,
            });
        }
        let at_parent = self.ledger.executed(parent.height_u64()).await.ok()??;
        Some(ExecClaim {
            height: at_parent.height,
            header_hash: at_parent.header_hash,
        })
    }

    /// What unexecuted ancestors of a new block already include: their hashes, and per sender
    /// the nonce after its last included transaction. `None` if the walk is too long.
    async fn unexecuted(
        &self,
        parent: &Digested<OrderedBlock>,
        ancestry: &mut (impl Ancestry<OrderedBlock> + 'static),
        executed_height: u64,
    ) -> Option<(HashSet<H256>, BTreeMap<Address, u64>)> {
        let mut skip = HashSet::new();
        let mut next_nonces: BTreeMap<Address, u64> = BTreeMap::new();
        let mut block = parent.clone();
        for _ in 0..MAX_UNEXECUTED_ANCESTORS {
            let block_ref = block.inner();
            if block_ref.height_u64() <= executed_height {
                return Some((skip, next_nonces));
            }
            for (raw, hash) in block_ref
                .transactions()
                .iter()
                .zip(block_ref.transaction_hashes())
            {
                skip.insert(*hash);
                let known = self.mempool.lock().get(hash);
                let transaction = match known {
                    Some(prechecked) => prechecked.transaction().clone(),
                    None => match Prechecked::new(self.genesis.chain(), raw.clone()) {
                        Ok(prechecked) => prechecked.transaction().clone(),
                        Err(_) => continue,
                    },
                };
                let next = next_nonces.entry(transaction.from).or_default();
                // A Byzantine proposer may include a nonce of u64::MAX; execution drops it.
                *next = (*next).max(transaction.nonce.saturating_add(1));
            }
            block = ancestry.next().await?;
        }
        debug!("too many unexecuted ancestors: proposing an empty block");
        None
    }
}

/// The permanent rules of `block` on `parent` (see [`Application::check`]); `mempool` only
/// saves the signature recovery of transactions it already admitted.
pub fn check_block(
    genesis: &Genesis,
    mempool: &Mempool,
    block: &OrderedBlock,
    parent: &OrderedBlock,
) -> Result<Option<ExecClaim>, BlockError> {
    if block.height_u64() == 0 {
        return Err(BlockError::Genesis);
    }
    if block.timestamp_ms() <= parent.timestamp_ms() {
        return Err(BlockError::TimestampNotAfterParent {
            timestamp_ms: block.timestamp_ms(),
            parent_ms: parent.timestamp_ms(),
        });
    }
    let limits = genesis.limits();
    let max = (limits.max_transactions as usize).min(genesis.chain().max_transactions_per_block);
    if block.transactions().len() > max {
        return Err(BlockError::TooManyTransactions {
            count: block.transactions().len(),
            max,
        });
    }
    if block.transaction_bytes() > limits.max_block_bytes as usize {
        return Err(BlockError::TooManyBytes {
            bytes: block.transaction_bytes(),
            max: limits.max_block_bytes as usize,
        });
    }
    let mut seen = HashSet::with_capacity(block.transactions().len());
    for (index, (raw, hash)) in block
        .transactions()
        .iter()
        .zip(block.transaction_hashes())
        .enumerate()
    {
        if !seen.insert(*hash) {
            return Err(BlockError::DuplicateTransaction { hash: *hash });
        }
        // The mempool admitted only prechecked transactions, under the same configuration.
        if mempool.contains(hash) {
            continue;
        }
        if let Err(error) = Prechecked::new(genesis.chain(), raw.clone()) {
            return Err(BlockError::TransactionRefused {
                index,
                hash: *hash,
                error: Box::new(error),
            });
        }
    }
    let claim = block.exec().ok_or(BlockError::MissingExecClaim)?;
    if claim.height >= block.height_u64() {
        return Err(BlockError::ClaimNotBelowBlock {
            claimed: claim.height,
            height: block.height_u64(),
        });
    }
    match parent.exec() {
        Some(parent_claim) if claim.height < parent_claim.height => {
            Err(BlockError::ClaimRegresses {
                claimed: claim.height,
                parent: parent_claim.height,
            })
        }
        Some(parent_claim) if claim.height == parent_claim.height => {
            if claim.header_hash == parent_claim.header_hash {
                Ok(None)
            } else {
                Err(BlockError::ClaimDiffersFromParent {
                    height: claim.height,
                })
            }
        }
        _ => Ok(Some(claim)),
    }
}

impl<E, L> commonware_consensus::Application<E> for Application<L>
where
    E: Clock + Spawner + Metrics,
    L: Ledger,
{
    type SigningScheme = Scheme;
    type Context = Context;
    type Block = OrderedBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, context): (E, Context),
        mut ancestry: impl Ancestry<OrderedBlock>,
        _input: (),
    ) -> Option<Digested<OrderedBlock>> {
        let parent = ancestry.next().await?;
        let executed = self.ledger.head().await.ok()?;
        let unexecuted = self
            .unexecuted(&parent, &mut ancestry, executed.height)
            .await;
        let limits = self.genesis.limits();
        let max_transactions =
            (limits.max_transactions as usize).min(self.genesis.chain().max_transactions_per_block);
        let deadline = runtime.current() + self.timing.idle_block;
        let selected = loop {
            let selected = match &unexecuted {
                Some((skip, next_nonces)) => self.mempool.lock().select(
                    skip,
                    next_nonces,
                    max_transactions,
                    limits.max_block_bytes as usize,
                ),
                None => Vec::new(),
            };
            if !selected.is_empty() || runtime.current() >= deadline {
                break selected;
            }
            runtime.sleep(IDLE_POLL).await;
        };
        let claim = self.claim(parent.inner()).await?;
        let timestamp_ms = millis(runtime.current()).max(parent.inner().timestamp_ms() + 1);
        let transactions = selected
            .iter()
            .map(|prechecked| prechecked.raw().to_vec())
            .collect();
        let block = OrderedBlock::new(
            context,
            parent.digest(),
            parent.height().next(),
            timestamp_ms,
            Some(claim),
            transactions,
        );
        debug!(
            height = block.height_u64(),
            transactions = block.transactions().len(),
            claim = claim.height,
            "proposing"
        );
        let digest = block.digest();
        Some(Digested::precomputed(block, digest))
    }

    async fn verify(
        &mut self,
        (runtime, _context): (E, Context),
        mut ancestry: impl Ancestry<OrderedBlock>,
    ) -> bool {
        let (Some(block), Some(parent)) = (ancestry.next().await, ancestry.next().await) else {
            warn!("verification without a block and its parent");
            return false;
        };
        let height = block.height().get();
        debug_assert_eq!(block.parent(), parent.digest());
        let claim = match self.check(block.inner(), parent.inner()) {
            Ok(claim) => claim,
            Err(error) => {
                warn!(height, digest = %block.digest(), %error, "refused a block");
                return false;
            }
        };
        // A timestamp ahead of this node's clock: wait until it is not (never refuse: clocks
        // differ, and the leader may be right).
        let skew_ms = self.timing.max_clock_skew.as_millis() as u64;
        let now_ms = millis(runtime.current());
        let timestamp_ms = block.inner().timestamp_ms();
        if timestamp_ms > now_ms + skew_ms {
            let wait = Duration::from_millis(timestamp_ms - now_ms - skew_ms);
            debug!(height, ?wait, "block from the future: waiting");
            runtime.sleep(wait).await;
        }
        let Some(claim) = claim else {
            return true;
        };
        self.heads.wait_for(claim.height).await;
        match self.ledger.executed(claim.height).await {
            Ok(Some(executed)) if executed.header_hash == claim.header_hash => true,
            Ok(Some(executed)) => {
                let error = BlockError::ClaimDiffersFromExecution {
                    height: claim.height,
                    claimed: claim.header_hash,
                    executed: executed.header_hash,
                };
                warn!(height, digest = %block.digest(), %error, "refused a block");
                false
            }
            // Neither says the block is invalid: abstain (consensus drops the request when the
            // view moves on) rather than vote against a block that may be valid.
            Ok(None) => {
                warn!(
                    height,
                    claimed = claim.height,
                    "the ledger lost an executed height; abstaining"
                );
                futures::future::pending().await
            }
            Err(error) => {
                warn!(height, %error, "the ledger could not answer; abstaining");
                futures::future::pending().await
            }
        }
    }
}
