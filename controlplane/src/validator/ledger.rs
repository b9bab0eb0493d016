//! The validator's executed chain behind consensus's [`Ledger`] seam.
//!
//! [`ValidatorChain`] owns chain-lite and the node index on the control-plane thread: it
//! executes each finalized block with `Chain::execute_ordered`, persists the sealed block and
//! its finalization certificate in one index transaction before answering, and rebuilds itself
//! by replaying the index at start. Consensus runs on its own runtime and threads and reaches
//! it only through [`ChannelLedger`], which sends each request over a bounded channel and
//! awaits the answer: the control plane stays single-threaded and the facade reads the same
//! chain the ledger writes, without locks.

use crate::index::Index;
use anyhow::Context as _;
use chain_lite::{Block, Chain, ChainConfig};
use commonware_codec::Encode as _;
use consensus::{
    AccountState, Address, Applied, ExecutedHead, FinalizedBlock, Ledger, LedgerError,
};
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// Ledger requests waiting for the control-plane thread; consensus waits beyond that.
pub const LEDGER_QUEUE: usize = 256;

/// chain-lite and the index it persists into, owned by the control-plane thread.
pub struct ValidatorChain {
    chain: Chain,
    index: Index,
    /// Set when a block executed in memory could not be persisted: the chain is then ahead of
    /// the disk and must execute nothing more.
    failed: Option<String>,
    /// Transactions executed and dropped by this process, for the metrics.
    included_total: u64,
    dropped_total: u64,
}

fn executed_head(block: &Block) -> ExecutedHead {
    ExecutedHead {
        height: block.number(),
        header_hash: block.hash(),
        consensus_digest: block.header.consensus_digest,
    }
}

impl ValidatorChain {
    /// Replays the blocks of `index` (checking every header) or, in a new index, seals and
    /// persists genesis.
    pub fn open(index: Index, config: ChainConfig) -> anyhow::Result<ValidatorChain> {
        let loaded = index.load()?;
        let chain = if loaded.blocks.is_empty() {
            let chain = Chain::new(config);
            let encoded = serde_json::to_vec(chain.head()).context("encoding genesis")?;
            index.put_finalized_block(0, &encoded, None)?;
            chain
        } else {
            let blocks = loaded
                .blocks
                .iter()
                .enumerate()
                .map(|(number, bytes)| {
                    serde_json::from_slice::<Block>(bytes)
                        .with_context(|| format!("stored block {number} is corrupt"))
                })
                .collect::<anyhow::Result<Vec<Block>>>()?;
            Chain::replay(config, blocks).context("replaying the stored blocks")?
        };
        Ok(ValidatorChain {
            chain,
            index,
            failed: None,
            included_total: 0,
            dropped_total: 0,
        })
    }

    /// The state machine, for the facade's reads.
    pub fn state(&self) -> &Chain {
        &self.chain
    }

    #[cfg(test)]
    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn head(&self) -> ExecutedHead {
        executed_head(self.chain.head())
    }

    pub fn executed(&self, height: u64) -> Option<ExecutedHead> {
        self.chain.block(height).map(executed_head)
    }

    /// Executes `block` (the height after the head) and persists it with its certificate
    /// before returning.
    pub fn apply(&mut self, block: FinalizedBlock) -> Result<Applied, LedgerError> {
        if let Some(reason) = &self.failed {
            return Err(LedgerError::Storage {
                reason: reason.clone(),
            });
        }
        let index = &self.index;
        let result =
            consensus::execute_finalized(&mut self.chain, block, |sealed, finalization| {
                let encoded = serde_json::to_vec(sealed).expect("a block always serializes");
                let finalization = finalization.map(|certificate| certificate.encode());
                index
                    .put_finalized_block(sealed.number(), &encoded, finalization.as_deref())
                    .map_err(|error| LedgerError::Storage {
                        reason: format!("persisting height {}: {error}", sealed.number()),
                    })
            });
        // Only persisting fails with a storage error, and only after the block executed.
        match &result {
            Ok(applied) => {
                self.included_total += applied.included.len() as u64;
                self.dropped_total += applied.dropped.len() as u64;
            }
            Err(LedgerError::Storage { reason }) => {
                tracing::error!(%reason, "the executed chain is ahead of its index; executing nothing more");
                self.failed = Some(reason.clone());
            }
            Err(_) => {}
        }
        result
    }

    /// Transactions executed and transactions dropped by execution since this process started.
    pub fn executed_totals(&self) -> (u64, u64) {
        (self.included_total, self.dropped_total)
    }

    /// Answers one request of [`ChannelLedger`]. A requester that went away is ignored.
    pub fn serve(&mut self, request: LedgerRequest) {
        match request {
            LedgerRequest::Head(reply) => {
                let _ = reply.send(self.head());
            }
            LedgerRequest::Executed(height, reply) => {
                let _ = reply.send(self.executed(height));
            }
            LedgerRequest::Account(address, reply) => {
                let _ = reply.send(AccountState::of(&self.chain, &address));
            }
            LedgerRequest::Apply(block, reply) => {
                let _ = reply.send(self.apply(*block));
            }
        }
    }
}

/// What consensus asks of the control-plane thread.
pub enum LedgerRequest {
    Head(oneshot::Sender<ExecutedHead>),
    Executed(u64, oneshot::Sender<Option<ExecutedHead>>),
    Account(Address, oneshot::Sender<AccountState>),
    Apply(
        Box<FinalizedBlock>,
        oneshot::Sender<Result<Applied, LedgerError>>,
    ),
}

/// consensus's [`Ledger`] as requests to the thread that owns the [`ValidatorChain`].
#[derive(Clone)]
pub struct ChannelLedger {
    requests: mpsc::Sender<LedgerRequest>,
}

/// A ledger handle and the receiver of its requests, for the owner of the chain to serve.
pub fn channel() -> (ChannelLedger, mpsc::Receiver<LedgerRequest>) {
    let (requests, receiver) = mpsc::channel(LEDGER_QUEUE);
    (ChannelLedger { requests }, receiver)
}

fn unavailable() -> LedgerError {
    LedgerError::Unavailable {
        reason: "the control plane stopped".to_string(),
    }
}

impl ChannelLedger {
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> LedgerRequest,
    ) -> Result<T, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .await
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())
    }
}

impl Ledger for ChannelLedger {
    fn head(&self) -> impl Future<Output = Result<ExecutedHead, LedgerError>> + Send {
        let ledger = self.clone();
        async move { ledger.ask(LedgerRequest::Head).await }
    }

    fn executed(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<Option<ExecutedHead>, LedgerError>> + Send {
        let ledger = self.clone();
        async move {
            ledger
                .ask(|reply| LedgerRequest::Executed(height, reply))
                .await
        }
    }

    fn account(
        &self,
        address: Address,
    ) -> impl Future<Output = Result<AccountState, LedgerError>> + Send {
        let ledger = self.clone();
        async move {
            ledger
                .ask(|reply| LedgerRequest::Account(address, reply))
                .await
        }
    }

    fn apply(
        &self,
        block: FinalizedBlock,
    ) -> impl Future<Output = Result<Applied, LedgerError>> + Send {
        let ledger = self.clone();
        async move {
            ledger
                .ask(|reply| LedgerRequest::Apply(Box::new(block), reply))
                .await?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use chain_lite::OrderedTransaction;
    use types::H256;

    fn transfer(nonce: u64) -> OrderedTransaction {
        let config = crate::validator::init::chain_config();
        let payer =
            client::Payer::from_hex(chain_lite::DEV_ACCOUNTS[0].private_key).expect("dev key");
        let raw = payer
            .sign(
                config.chain_id,
                &client::chain::Transaction {
                    nonce,
                    gas_limit: 21_000,
                    max_fee_per_gas: config.gas_price,
                    to: [9; 20],
                    value: U256::from(1_000u64),
                    input: Vec::new(),
                },
            )
            .expect("signs");
        OrderedTransaction::Raw(raw)
    }

    fn block(height: u64, transactions: Vec<OrderedTransaction>) -> FinalizedBlock {
        FinalizedBlock {
            height,
            timestamp_ms: 1_000 * height,
            consensus_digest: H256([height as u8; 32]),
            transactions,
            finalization: None,
            claim: None,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn executes_through_the_channel_persists_and_replays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.redb");
        let config = crate::validator::init::chain_config();
        let sender = chain_lite::DEV_ACCOUNTS[0].address;
        let mut chain =
            ValidatorChain::open(Index::open(&path).expect("index"), config.clone()).expect("open");
        assert_eq!(chain.head().height, 0);

        let applied = chain
            .apply(block(1, vec![transfer(0), transfer(1), transfer(5)]))
            .expect("height 1");
        assert_eq!(applied.included.len(), 2);
        assert_eq!(
            applied.dropped.len(),
            1,
            "a nonce gap is dropped, not an error"
        );
        assert!(
            applied
                .accounts
                .iter()
                .any(|(address, account)| *address == sender && account.nonce == 2)
        );
        assert_eq!(applied.head.consensus_digest, H256([1; 32]));
        assert!(matches!(
            chain.apply(block(3, Vec::new())),
            Err(LedgerError::OutOfOrder { height: 3, head: 1 })
        ));

        // Consensus's side: requests over the channel, served where the chain lives.
        let (ledger, mut requests) = channel();
        let server = tokio::spawn(async move {
            while let Some(request) = requests.recv().await {
                chain.serve(request);
            }
            chain
        });
        assert_eq!(ledger.head().await.expect("head").height, 1);
        let account = ledger.account(sender).await.expect("account");
        assert_eq!(account.nonce, 2);
        let spent = U256::from(2 * 1_000u64) + U256::from(2 * 21_000 * config.gas_price);
        assert_eq!(account.balance, chain_lite::DEV_BALANCE_WEI - spent);
        let applied = ledger
            .apply(block(2, vec![transfer(2)]))
            .await
            .expect("height 2");
        assert_eq!(applied.included.len(), 1);
        let executed = ledger.executed(2).await.expect("read").expect("executed");
        assert_eq!(executed, applied.head);
        assert!(ledger.executed(3).await.expect("read").is_none());
        drop(ledger);
        let chain = server.await.expect("server");
        let head = chain.head();
        drop(chain);

        let recovered =
            ValidatorChain::open(Index::open(&path).expect("index"), config).expect("replay");
        assert_eq!(
            recovered.head(),
            head,
            "a restart recovers the executed head"
        );
        assert_eq!(recovered.state().nonce(&sender), 3);
        assert!(recovered.index().finalization(2).expect("read").is_none());
    }
}
