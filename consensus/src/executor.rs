//! Execution of finalized blocks: marshal's reporter.
//!
//! Marshal delivers every finalized block in height order, at least once (again after a
//! restart, from the last height acknowledged), and waits for each acknowledgement. The
//! executor executes a block through the [`Ledger`] and acknowledges it only once the ledger
//! returned, that is once the result is durable; a height the ledger already holds (redelivered
//! after a crash) is checked against the digest the ledger recorded and acknowledged without
//! executing again. Anything inconsistent stops execution: the acknowledgement is dropped,
//! which stops marshal, so a node whose chain disagrees with consensus stops before it builds
//! on it.

use crate::Scheme;
use crate::block::OrderedBlock;
use crate::heads::Heads;
use crate::ledger::{FinalizedBlock, Ledger, LedgerError};
use crate::mempool::Mempool;
use chain_lite::OrderedTransaction;
use commonware_actor::Feedback;
use commonware_consensus::marshal::Update;
use commonware_consensus::marshal::core::Mailbox;
use commonware_consensus::marshal::standard::Standard;
use commonware_consensus::{Heightable, Reporter};
use commonware_cryptography::{Digested, Digestible};
use commonware_utils::Acknowledgement;
use commonware_utils::sync::Mutex;
use futures::StreamExt;
use futures::channel::mpsc;
use std::sync::Arc;
use tracing::{debug, error};
use types::H256;

/// Marshal's reporter: forwards each update to the execution task.
#[derive(Clone)]
pub struct Executor {
    sender: mpsc::UnboundedSender<Update<OrderedBlock>>,
}

impl Reporter for Executor {
    type Activity = Update<OrderedBlock>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        // Marshal holds at most `max_pending_acks` blocks unacknowledged, which bounds the
        // queue.
        match self.sender.unbounded_send(activity) {
            Ok(()) => Feedback::Ok,
            Err(_) => Feedback::Closed,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ExecutionError {
    #[error(
        "height {height}: the ledger executed consensus block {recorded}, consensus finalized {finalized}"
    )]
    Diverged {
        height: u64,
        recorded: H256,
        finalized: H256,
    },
    #[error("height {height}: the ledger reports its head at {head} but has no block there")]
    Missing { height: u64, head: u64 },
    #[error("height {height} arrived with the ledger at {head}: a gap")]
    Gap { height: u64, head: u64 },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

pub(crate) struct Execution<L: Ledger> {
    pub ledger: L,
    pub heads: Heads,
    pub mempool: Arc<Mutex<Mempool>>,
    pub marshal: Mailbox<Scheme, Standard<OrderedBlock>>,
}

pub(crate) fn channel() -> (Executor, mpsc::UnboundedReceiver<Update<OrderedBlock>>) {
    let (sender, receiver) = mpsc::unbounded();
    (Executor { sender }, receiver)
}

impl<L: Ledger> Execution<L> {
    /// Executes what marshal delivers until marshal stops or execution must stop.
    pub async fn run(self, mut updates: mpsc::UnboundedReceiver<Update<OrderedBlock>>) {
        while let Some(update) = updates.next().await {
            let Update::Block(block, acknowledgement) = update else {
                continue;
            };
            let height = block.height().get();
            match self.execute(&block).await {
                Ok(()) => acknowledgement.acknowledge(),
                Err(error) => {
                    error!(height, %error, "execution stopped; this node must be repaired");
                    // Dropping the acknowledgement stops marshal.
                    return;
                }
            }
        }
    }

    async fn execute(&self, block: &Digested<OrderedBlock>) -> Result<(), ExecutionError> {
        let height = block.height().get();
        let finalized = H256(block.digest().0);
        let head = self.ledger.head().await?;
        if height == 0 {
            // chain-lite's genesis is the ledger's height 0; the genesis block orders nothing.
            return Ok(());
        }
        if height <= head.height {
            let recorded = self
                .ledger
                .executed(height)
                .await?
                .ok_or(ExecutionError::Missing {
                    height,
                    head: head.height,
                })?;
            if recorded.consensus_digest != finalized {
                return Err(ExecutionError::Diverged {
                    height,
                    recorded: recorded.consensus_digest,
                    finalized,
                });
            }
            debug!(height, "already executed");
            return Ok(());
        }
        if height != head.height + 1 {
            return Err(ExecutionError::Gap {
                height,
                head: head.height,
            });
        }
        let finalization = self.marshal.get_finalization(block.height()).await;
        let transactions = {
            let mempool = self.mempool.lock();
            block
                .inner()
                .transactions()
                .iter()
                .zip(block.inner().transaction_hashes())
                .map(|(raw, hash)| match mempool.get(hash) {
                    Some(prechecked) => {
                        OrderedTransaction::Prechecked(Box::new((*prechecked).clone()))
                    }
                    None => OrderedTransaction::Raw(raw.clone()),
                })
                .collect()
        };
        let applied = self
            .ledger
            .apply(FinalizedBlock {
                height,
                timestamp_ms: block.inner().timestamp_ms(),
                consensus_digest: finalized,
                transactions,
                finalization,
                claim: block.inner().exec(),
            })
            .await?;
        debug_assert_eq!(applied.head.height, height);
        debug_assert_eq!(applied.head.consensus_digest, finalized);
        self.mempool.lock().on_executed(&applied);
        debug!(
            height,
            included = applied.included.len(),
            dropped = applied.dropped.len(),
            "executed"
        );
        self.heads.advance(applied.head);
        Ok(())
    }
}
