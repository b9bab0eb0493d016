//! The mempool: signed transactions waiting for a block, bounded by count, bytes and depth per
//! sender, with what proposers select and what execution evicts.
//!
//! Transactions enter through [`MempoolHandle::submit`] (the node's `eth_sendRawTransaction`)
//! or from another validator's gossip; either way they pass chain-lite's stateless prechecks
//! first, so a proposer never builds on a transaction a verifier refuses. Submitted ones are
//! gossiped to every validator in batches (validators are fully connected, nobody relays
//! another's), and again every few seconds while they are pending (a message sent while a
//! peer was unreachable is lost), so whoever leads next can include them. A sender's
//! transactions are kept by nonce, from the account nonce the ledger reports up to
//! [`MempoolLimits::max_per_sender`] beyond it; a nonce below the account's is a replay and refused, one already taken by a
//! pending transaction too (chain-lite's gas price is fixed: there is nothing to outbid). A
//! sender's pending transactions together may cost at most its balance (value plus gas limit
//! times gas price each), so an account cannot fill blocks with transactions it cannot pay for.

use crate::ledger::{AccountState, Applied, Ledger, LedgerError};
use crate::{Address, PublicKey};
use bytes::{Buf as _, BufMut};
use chain_lite::{ChainConfig, Prechecked, TxError, U256};
use commonware_codec::{Error as CodecError, ReadExt, Write, varint::UInt};
use commonware_cryptography::{Hasher, Keccak256};
use commonware_p2p::{Blocker, Receiver, Recipients, Sender};
use commonware_runtime::Clock;
use commonware_utils::sync::Mutex;
use futures::StreamExt;
use futures::channel::mpsc;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};
use types::H256;

/// Reads of an account admission makes while blocks execute under it before giving up.
const MAX_ACCOUNT_READS: usize = 16;
/// Most transactions in one gossip message.
pub const MAX_GOSSIP_TRANSACTIONS: usize = 256;
/// Most bytes of transactions in one gossip message (a single larger transaction goes alone).
pub const MAX_GOSSIP_BYTES: usize = 1024 * 1024;
/// Submitted transactions waiting to be gossiped; past it, a submission is kept locally only
/// (it is still proposed when this validator leads).
const MAX_OUTBOUND: usize = 16 * MAX_GOSSIP_TRANSACTIONS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    pub max_transactions: usize,
    pub max_bytes: usize,
    /// Nonces accepted beyond a sender's account nonce.
    pub max_per_sender: u64,
}

impl MempoolLimits {
    /// 100 000 transactions, 256 MiB, 64 per sender.
    pub const DEFAULT: MempoolLimits = MempoolLimits {
        max_transactions: 100_000,
        max_bytes: 256 * 1024 * 1024,
        max_per_sender: 64,
    };
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits::DEFAULT
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum MempoolError {
    #[error(transparent)]
    Invalid(#[from] TxError),
    #[error("already known: transaction {hash} is pending")]
    AlreadyKnown { hash: H256 },
    #[error("nonce too low: expected at least {expected}, got {got}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error("nonce {got} is more than {max_depth} ahead of the account nonce {expected}")]
    NonceTooFarAhead {
        expected: u64,
        got: u64,
        max_depth: u64,
    },
    #[error("another transaction with nonce {nonce} from this sender is pending")]
    NonceTaken { nonce: u64 },
    #[error(
        "insufficient funds: the sender's balance is {balance} wei; its pending transactions and this one may cost {required}"
    )]
    InsufficientFunds { balance: U256, required: U256 },
    #[error("the mempool is full ({what})")]
    Full { what: &'static str },
    #[error("the ledger could not answer: {source}")]
    Ledger {
        #[source]
        source: LedgerError,
    },
}

struct SenderQueue {
    /// The account as of the last execution (or ledger query).
    account: AccountState,
    by_nonce: ByNonce,
}

/// A sender's pending transactions by nonce: hash, and the most each may cost.
type ByNonce = BTreeMap<u64, (H256, U256)>;

/// The most a transaction may cost its sender: what chain-lite requires of the balance.
fn max_cost(prechecked: &Prechecked) -> U256 {
    let transaction = prechecked.transaction();
    transaction.value.saturating_add(
        U256::from(transaction.gas_limit)
            .saturating_mul(U256::from(transaction.effective_gas_price)),
    )
}

/// The pool itself, shared by the proposer, the executor and the admission paths.
pub struct Mempool {
    limits: MempoolLimits,
    /// Ordered by address so selection does not depend on hash-map order (simulations replay).
    senders: BTreeMap<Address, SenderQueue>,
    by_hash: HashMap<H256, Arc<Prechecked>>,
    total_bytes: usize,
    /// The executed height the pool has seen (account reads older than it are stale).
    executed_height: u64,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Mempool {
        Mempool {
            limits,
            senders: BTreeMap::new(),
            by_hash: HashMap::new(),
            total_bytes: 0,
            executed_height: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.total_bytes
    }

    pub fn contains(&self, hash: &H256) -> bool {
        self.by_hash.contains_key(hash)
    }

    pub fn get(&self, hash: &H256) -> Option<Arc<Prechecked>> {
        self.by_hash.get(hash).cloned()
    }

    /// The account the pool knows for `sender` (it forgets senders with nothing pending).
    pub fn known_account(&self, sender: &Address) -> Option<AccountState> {
        self.senders.get(sender).map(|queue| queue.account)
    }

    /// The nonce `sender`'s next transaction should carry: its account nonce plus the pending
    /// transactions that follow it without a gap. `None` if the pool holds nothing of it.
    pub fn pending_nonce(&self, sender: &Address) -> Option<u64> {
        let queue = self.senders.get(sender)?;
        let mut next = queue.account.nonce;
        while queue.by_nonce.contains_key(&next) {
            next += 1;
        }
        Some(next)
    }

    /// Admits a prechecked transaction of a sender whose account is `account` (what the pool
    /// knows of a sender it holds transactions of is at least as recent).
    pub fn insert(
        &mut self,
        prechecked: Prechecked,
        account: AccountState,
    ) -> Result<H256, MempoolError> {
        self.insert_checking(prechecked, account, true)
    }

    /// [`Mempool::insert`], checking the sender's funds or not: a transaction another
    /// validator gossips was checked against that validator's state, which may be ahead of
    /// this one's (a funding transfer it executed and this one not yet); refusing it here would
    /// leave this validator without a nonce the sender's later transactions wait for.
    fn insert_checking(
        &mut self,
        prechecked: Prechecked,
        account: AccountState,
        check_funds: bool,
    ) -> Result<H256, MempoolError> {
        let hash = prechecked.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::AlreadyKnown { hash });
        }
        let transaction = prechecked.transaction();
        let (sender, nonce) = (transaction.from, transaction.nonce);
        let known = self.senders.get(&sender);
        let expected = known.map_or(account.nonce, |queue| {
            queue.account.nonce.max(account.nonce)
        });
        let balance = known.map_or(account.balance, |queue| queue.account.balance);
        // What the sender's transactions that execute before this one may cost.
        let before = known.map_or(U256::ZERO, |queue| {
            queue
                .by_nonce
                .range(..nonce)
                .fold(U256::ZERO, |sum, (_, (_, cost))| sum.saturating_add(*cost))
        });
        if nonce < expected {
            return Err(MempoolError::NonceTooLow {
                expected,
                got: nonce,
            });
        }
        if nonce - expected >= self.limits.max_per_sender {
            return Err(MempoolError::NonceTooFarAhead {
                expected,
                got: nonce,
                max_depth: self.limits.max_per_sender,
            });
        }
        if self
            .senders
            .get(&sender)
            .is_some_and(|queue| queue.by_nonce.contains_key(&nonce))
        {
            return Err(MempoolError::NonceTaken { nonce });
        }
        if self.by_hash.len() >= self.limits.max_transactions {
            return Err(MempoolError::Full {
                what: "transaction count",
            });
        }
        let cost = max_cost(&prechecked);
        let required = before.saturating_add(cost);
        if check_funds && required > balance {
            return Err(MempoolError::InsufficientFunds { balance, required });
        }
        let bytes = prechecked.raw().len();
        if self.total_bytes + bytes > self.limits.max_bytes {
            return Err(MempoolError::Full { what: "bytes" });
        }
        let queue = self.senders.entry(sender).or_insert(SenderQueue {
            account: AccountState {
                nonce: expected,
                balance,
                height: account.height,
            },
            by_nonce: BTreeMap::new(),
        });
        queue.account.nonce = expected;
        queue.by_nonce.insert(nonce, (hash, cost));
        // Later nonces the balance no longer covers with this one before them would be dropped
        // at execution: evict them now (a transaction waiting for a gap never keeps an earlier
        // one out).
        let mut total = required;
        let unaffordable: Vec<H256> = if !check_funds {
            Vec::new()
        } else {
            queue
                .by_nonce
                .range(nonce + 1..)
                .filter_map(|(_, (later, cost))| {
                    total = total.saturating_add(*cost);
                    (total > balance).then_some(*later)
                })
                .collect()
        };
        self.total_bytes += bytes;
        self.by_hash.insert(hash, Arc::new(prechecked));
        for later in unaffordable {
            self.remove(&later);
        }
        Ok(hash)
    }

    fn remove(&mut self, hash: &H256) {
        let Some(prechecked) = self.by_hash.remove(hash) else {
            return;
        };
        self.total_bytes -= prechecked.raw().len();
        let transaction = prechecked.transaction();
        if let Some(queue) = self.senders.get_mut(&transaction.from) {
            if queue
                .by_nonce
                .get(&transaction.nonce)
                .is_some_and(|(pending, _)| pending == hash)
            {
                queue.by_nonce.remove(&transaction.nonce);
            }
            if queue.by_nonce.is_empty() {
                self.senders.remove(&transaction.from);
            }
        }
    }

    /// Forgets what a block executed: its transactions, those it dropped, and every pending
    /// transaction whose nonce the new account nonces passed.
    pub fn on_executed(&mut self, applied: &Applied) {
        self.executed_height = self.executed_height.max(applied.head.height);
        for hash in applied.included.iter() {
            self.remove(hash);
        }
        for dropped in applied.dropped.iter() {
            // A transaction waiting for an earlier nonce may still execute later.
            if !matches!(dropped.error, TxError::NonceTooHigh { .. }) {
                self.remove(&dropped.hash);
            }
        }
        for (sender, account) in applied.accounts.iter() {
            let stale: Vec<H256> = match self.senders.get_mut(sender) {
                Some(queue) => {
                    queue.account.nonce = queue.account.nonce.max(account.nonce);
                    queue.account.balance = account.balance;
                    queue
                        .by_nonce
                        .range(..account.nonce)
                        .map(|(_, (hash, _))| *hash)
                        .collect()
                }
                None => continue,
            };
            for hash in stale {
                self.remove(&hash);
            }
        }
    }

    /// Transactions for a block: per sender, consecutive nonces from the later of its account
    /// nonce and `next_nonces` (what unexecuted ancestors already include), skipping `skip`;
    /// senders take turns one transaction at a time, so one busy sender cannot fill a block.
    pub fn select(
        &self,
        skip: &HashSet<H256>,
        next_nonces: &BTreeMap<Address, u64>,
        max_transactions: usize,
        max_bytes: usize,
    ) -> Vec<Arc<Prechecked>> {
        let mut cursors: Vec<(u64, &ByNonce)> = self
            .senders
            .iter()
            .map(|(sender, queue)| {
                let from = next_nonces
                    .get(sender)
                    .map_or(queue.account.nonce, |next| (*next).max(queue.account.nonce));
                (from, &queue.by_nonce)
            })
            .collect();
        let mut selected = Vec::new();
        let mut bytes = 0usize;
        loop {
            let mut progressed = false;
            for (next, by_nonce) in cursors.iter_mut() {
                if selected.len() >= max_transactions {
                    return selected;
                }
                let Some((hash, _)) = by_nonce.get(next) else {
                    continue;
                };
                let Some(prechecked) = self.by_hash.get(hash) else {
                    continue;
                };
                *next += 1;
                if skip.contains(hash) {
                    progressed = true;
                    continue;
                }
                if bytes + prechecked.raw().len() > max_bytes {
                    return selected;
                }
                bytes += prechecked.raw().len();
                selected.push(prechecked.clone());
                progressed = true;
            }
            if !progressed {
                return selected;
            }
        }
    }
}

/// Submission and queries, shared by everyone outside consensus that holds transactions.
#[derive(Clone)]
pub struct MempoolHandle<L: Ledger> {
    pool: Arc<Mutex<Mempool>>,
    config: Arc<ChainConfig>,
    max_transaction_bytes: usize,
    ledger: L,
    outbound: Arc<Mutex<VecDeque<Vec<u8>>>>,
    wake: mpsc::Sender<()>,
    /// Most gossiped transactions remembered for gossiping again (the pool's capacity).
    max_tracked: usize,
}

impl<L: Ledger> MempoolHandle<L> {
    /// Checks a raw signed transaction and admits it; gossips it to the other validators.
    /// Answers its hash (what `eth_sendRawTransaction` returns).
    pub async fn submit(&self, raw: Vec<u8>) -> Result<H256, MempoolError> {
        self.admit(raw.clone(), true).await?;
        let hash = H256(Keccak256::hash(&[&raw]).0);
        let queued = {
            let mut outbound = self.outbound.lock();
            if outbound.len() < MAX_OUTBOUND {
                outbound.push_back(raw);
                true
            } else {
                false
            }
        };
        if queued {
            // A full wake-up channel already holds a wake-up.
            let _ = self.wake.clone().try_send(());
        } else {
            debug!(%hash, "gossip queue full: the transaction stays local");
        }
        Ok(hash)
    }

    /// Checks and admits `raw`; its sender's funds only where `check_funds` (a submission to
    /// this validator, not another's gossip).
    async fn admit(&self, raw: Vec<u8>, check_funds: bool) -> Result<H256, MempoolError> {
        if raw.len() > self.max_transaction_bytes {
            return Err(MempoolError::Invalid(TxError::TooLarge {
                bytes: raw.len(),
                max: self.max_transaction_bytes,
            }));
        }
        let hash = H256(Keccak256::hash(&[&raw]).0);
        if self.pool.lock().contains(&hash) {
            return Err(MempoolError::AlreadyKnown { hash });
        }
        let prechecked = Prechecked::new(&self.config, raw)?;
        let sender = prechecked.transaction().from;
        for _ in 0..MAX_ACCOUNT_READS {
            let known = self.pool.lock().known_account(&sender);
            let account = match known {
                Some(account) => account,
                None => self
                    .ledger
                    .account(sender)
                    .await
                    .map_err(|source| MempoolError::Ledger { source })?,
            };
            let mut pool = self.pool.lock();
            // A block of this sender executed while the ledger answered: its nonce and balance
            // are stale, and a queue started from them would wait for a nonce already spent.
            if pool.known_account(&sender).is_none() && account.height < pool.executed_height {
                continue;
            }
            return pool.insert_checking(prechecked, account, check_funds);
        }
        Err(MempoolError::Ledger {
            source: LedgerError::Unavailable {
                reason: format!(
                    "the executed head moved on during {MAX_ACCOUNT_READS} reads of an account"
                ),
            },
        })
    }

    /// The nonce of `sender`'s next transaction counting what the pool holds
    /// (`eth_getTransactionCount(addr, "pending")`).
    pub async fn pending_nonce(&self, sender: Address) -> Result<u64, MempoolError> {
        if let Some(nonce) = self.pool.lock().pending_nonce(&sender) {
            return Ok(nonce);
        }
        self.ledger
            .account(sender)
            .await
            .map(|account| account.nonce)
            .map_err(|source| MempoolError::Ledger { source })
    }

    /// Transactions pending.
    pub fn len(&self) -> usize {
        self.pool.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.pool.lock().is_empty()
    }

    /// Bytes of the pending transactions.
    pub fn bytes(&self) -> usize {
        self.pool.lock().bytes()
    }

    /// Queues again for gossip what `sent` holds that was sent [`REGOSSIP_AFTER`] before `now`
    /// and is still pending; forgets what left the pool.
    fn requeue_stale(
        &self,
        sent: &mut VecDeque<(H256, std::time::SystemTime)>,
        now: std::time::SystemTime,
    ) {
        let pool = self.pool.lock();
        let mut outbound = self.outbound.lock();
        while let Some((hash, at)) = sent.front() {
            let stale = now
                .duration_since(*at)
                .is_ok_and(|age| age >= REGOSSIP_AFTER);
            if !stale || outbound.len() >= MAX_OUTBOUND {
                return;
            }
            if let Some(prechecked) = pool.get(hash) {
                outbound.push_back(prechecked.raw().to_vec());
            }
            sent.pop_front();
        }
    }
}

/// The pool, its handle and the receiving end of its wake-ups (for the gossip task).
pub(crate) fn new<L: Ledger>(
    limits: MempoolLimits,
    config: Arc<ChainConfig>,
    max_transaction_bytes: usize,
    ledger: L,
) -> (Arc<Mutex<Mempool>>, MempoolHandle<L>, mpsc::Receiver<()>) {
    let pool = Arc::new(Mutex::new(Mempool::new(limits)));
    let (wake, woken) = mpsc::channel(1);
    let handle = MempoolHandle {
        pool: pool.clone(),
        config,
        max_transaction_bytes,
        ledger,
        outbound: Arc::new(Mutex::new(VecDeque::new())),
        wake,
        max_tracked: limits.max_transactions,
    };
    (pool, handle, woken)
}

/// Encodes a batch of raw transactions for the mempool channel.
fn encode_batch(batch: &[Vec<u8>]) -> Vec<u8> {
    let mut message = Vec::new();
    UInt(batch.len() as u32).write(&mut message);
    for raw in batch {
        UInt(raw.len() as u32).write(&mut message);
        message.put_slice(raw);
    }
    message
}

/// Decodes a gossip batch, refusing one past the limits before allocating for it.
pub(crate) fn decode_batch(
    mut message: bytes::Bytes,
    max_transaction_bytes: usize,
) -> Result<Vec<Vec<u8>>, CodecError> {
    let count: u32 = UInt::read(&mut message)?.into();
    if count as usize > MAX_GOSSIP_TRANSACTIONS {
        return Err(CodecError::InvalidLength(count as usize));
    }
    let mut batch = Vec::with_capacity((count as usize).min(message.remaining()));
    for _ in 0..count {
        let length: u32 = UInt::read(&mut message)?.into();
        if length as usize > max_transaction_bytes {
            return Err(CodecError::InvalidLength(length as usize));
        }
        if message.remaining() < length as usize {
            return Err(CodecError::EndOfBuffer);
        }
        batch.push(message.split_to(length as usize).to_vec());
    }
    if message.has_remaining() {
        return Err(CodecError::ExtraData(message.remaining()));
    }
    Ok(batch)
}

/// How long a transaction submitted here may stay pending before it is gossiped again (a
/// gossip message sent while a peer was unreachable, or restarting, never reached it).
pub const REGOSSIP_AFTER: Duration = Duration::from_secs(3);

/// Sends what was submitted here to every validator, in batches, `interval` after the first
/// transaction of a batch arrived; and again, every [`REGOSSIP_AFTER`], what is still pending.
pub(crate) async fn gossip<L: Ledger>(
    clock: impl Clock,
    handle: MempoolHandle<L>,
    mut woken: mpsc::Receiver<()>,
    mut sender: impl Sender<PublicKey = PublicKey>,
    interval: Duration,
) {
    // What this validator gossiped and when, oldest first.
    let mut sent: VecDeque<(H256, std::time::SystemTime)> = VecDeque::new();
    loop {
        let woke = {
            let next = woken.next();
            let tick = clock.sleep(REGOSSIP_AFTER);
            futures::pin_mut!(next, tick);
            match futures::future::select(next, tick).await {
                futures::future::Either::Left((None, _)) => return,
                futures::future::Either::Left((Some(()), _)) => true,
                futures::future::Either::Right(((), _)) => false,
            }
        };
        if woke {
            clock.sleep(interval).await;
        } else {
            handle.requeue_stale(&mut sent, clock.current());
        }
        loop {
            let batch: Vec<Vec<u8>> = {
                let mut outbound = handle.outbound.lock();
                let mut batch = Vec::new();
                let mut bytes = 0;
                while let Some(raw) = outbound.front() {
                    if batch.len() >= MAX_GOSSIP_TRANSACTIONS
                        || (!batch.is_empty() && bytes + raw.len() > MAX_GOSSIP_BYTES)
                    {
                        break;
                    }
                    bytes += raw.len();
                    batch.extend(outbound.pop_front());
                }
                batch
            };
            if batch.is_empty() {
                break;
            }
            let now = clock.current();
            for raw in &batch {
                if sent.len() < handle.max_tracked {
                    sent.push_back((H256(Keccak256::hash(&[raw.as_slice()]).0), now));
                }
            }
            sender.send(Recipients::All, encode_batch(&batch), false);
        }
    }
}

/// Admits what other validators gossip. A message that does not decode is logged and its
/// sender blocked (an honest validator encodes every batch within the limits of the same
/// genesis); transactions that fail admission are dropped quietly (duplicates are normal).
pub(crate) async fn receive<L: Ledger>(
    handle: MempoolHandle<L>,
    mut receiver: impl Receiver<PublicKey = PublicKey>,
    mut blocker: impl Blocker<PublicKey = PublicKey>,
) {
    while let Ok((peer, message)) = receiver.recv().await {
        let batch = match decode_batch(message.into(), handle.max_transaction_bytes) {
            Ok(batch) => batch,
            Err(error) => {
                warn!(%peer, %error, "refused a malformed mempool message; blocking the peer");
                let _ = blocker.block(peer);
                continue;
            }
        };
        for raw in batch {
            if let Err(error) = handle.admit(raw, false).await {
                debug!(%peer, %error, "gossiped transaction not admitted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryLedger, validator_keys};
    use commonware_cryptography::Signer as _;
    use commonware_p2p::simulated::{self, Link, Network};
    use commonware_runtime::{Quota, Runner, Spawner, Supervisor, deterministic};
    use commonware_utils::{NZU32, NZUsize, probability};

    /// Legacy transfers of 1 wei to 0x0909…09 at nonces 0 and 1, signed for the default chain
    /// (id 31337, 1 gwei) by the key of 32 bytes of 5 (library code signs nothing itself).
    const SIGNED: [&str; 2] = [
        "f86580843b9aca0082520894090909090909090909090909090909090909090901808281d5a0dc7f9487ca03b0a05f3b9955e0ad3e2f617ebfa76b2bdc82313a2536443d2037a06c5b6bfde4263f8ce0232467c764a5500500d8e86afb7d376d93e772581cb6a9",
        "f86501843b9aca0082520894090909090909090909090909090909090909090901808281d5a0e012a6ec3d8243ce53740de3fb097a01c2904fa3fe310aaac482f174c075b328a04be0df7325e4e118338a124555d7b4f69f8c72e71a5388bf9330d01a3e7d1394",
    ];

    fn signed_transfer(nonce: usize) -> Vec<u8> {
        let text = SIGNED[nonce];
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
            .collect()
    }

    fn sender(chain: &ChainConfig) -> Address {
        Prechecked::new(chain, signed_transfer(0))
            .expect("a valid transfer")
            .transaction()
            .from
    }

    /// A ledger whose first account read predates a block the pool already saw executed.
    #[derive(Clone)]
    struct RacingLedger {
        reads: Arc<std::sync::atomic::AtomicU64>,
    }

    impl Ledger for RacingLedger {
        async fn head(&self) -> Result<crate::ExecutedHead, LedgerError> {
            Err(LedgerError::Unavailable {
                reason: "not in this test".into(),
            })
        }

        async fn executed(&self, _: u64) -> Result<Option<crate::ExecutedHead>, LedgerError> {
            Ok(None)
        }

        async fn account(&self, _: Address) -> Result<AccountState, LedgerError> {
            let read = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Before block 1 executed the sender was at nonce 0; after it, at nonce 1.
            Ok(AccountState {
                nonce: read.min(1),
                balance: U256::from(10u64).pow(U256::from(21u64)),
                height: read.min(1),
            })
        }

        async fn apply(&self, _: crate::FinalizedBlock) -> Result<Applied, LedgerError> {
            Err(LedgerError::Unavailable {
                reason: "not in this test".into(),
            })
        }
    }

    /// Admission reads an account again when a block executed while the ledger answered, so a
    /// sender's queue never starts at a nonce already spent (it would never be proposed).
    #[test]
    fn an_account_read_older_than_the_executed_head_is_read_again() {
        deterministic::Runner::default().start(|_| async move {
            let chain = Arc::new(ChainConfig::default());
            let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let ledger = RacingLedger {
                reads: reads.clone(),
            };
            let (pool, handle, _) = new(MempoolLimits::DEFAULT, chain.clone(), 1 << 16, ledger);
            pool.lock().on_executed(&Applied {
                head: crate::ExecutedHead {
                    height: 1,
                    header_hash: H256::ZERO,
                    consensus_digest: H256::ZERO,
                },
                included: Vec::new(),
                dropped: Vec::new(),
                accounts: Vec::new(),
            });
            handle.submit(signed_transfer(1)).await.expect("admitted");
            assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
            assert_eq!(pool.lock().pending_nonce(&sender(&chain)), Some(2));
            assert!(matches!(
                handle.submit(signed_transfer(0)).await,
                Err(MempoolError::NonceTooLow { .. })
            ));
        });
    }

    /// A transaction gossiped while its only peer was unreachable reaches that peer once the
    /// link is back, without being submitted again.
    #[test]
    fn a_pending_transaction_is_gossiped_again_after_a_lost_message() {
        deterministic::Runner::default().start(|context| async move {
            let chain = Arc::new(ChainConfig {
                genesis_accounts: vec![chain_lite::GenesisAccount {
                    address: sender(&ChainConfig::default()),
                    balance: U256::from(10u64).pow(U256::from(21u64)),
                }],
                ..ChainConfig::default()
            });
            let keys: Vec<PublicKey> = validator_keys(&[3; 32], 2)
                .iter()
                .map(|key| key.public_key())
                .collect();
            let (network, oracle) = Network::new_with_peers(
                context.child("network"),
                simulated::Config {
                    max_size: 1 << 20,
                    max_peers_per_set: NZUsize!(2),
                    disconnect_on_block: false,
                    tracked_peer_sets: NZUsize!(1),
                },
                keys.clone(),
            )
            .await;
            network.start();
            let quota = Quota::per_second(NZU32!(1_000));
            let (a_sender, _) = oracle
                .control(keys[0].clone())
                .register(5, quota)
                .await
                .expect("registers");
            let (_, b_receiver) = oracle
                .control(keys[1].clone())
                .register(5, quota)
                .await
                .expect("registers");
            let pool = |chain: &Arc<ChainConfig>| {
                new(
                    MempoolLimits::DEFAULT,
                    chain.clone(),
                    1 << 16,
                    MemoryLedger::new((**chain).clone()),
                )
            };
            let (_, a, a_woken) = pool(&chain);
            let (_, b, _) = pool(&chain);
            let gossiper = a.clone();
            context.child("gossip").spawn(move |clock| {
                gossip(clock, gossiper, a_woken, a_sender, Duration::from_millis(5))
            });
            let receiver = b.clone();
            let blocker = oracle.control(keys[1].clone());
            context
                .child("receive")
                .spawn(move |_| receive(receiver, b_receiver, blocker));

            // No link yet: the first gossip message is lost.
            let hash = a.submit(signed_transfer(0)).await.expect("admitted");
            context.sleep(Duration::from_millis(500)).await;
            assert!(b.is_empty(), "nothing reached b without a link");
            let link = Link {
                latency: Duration::from_millis(10),
                jitter: Duration::from_millis(1),
                success_rate: probability!(1.0),
            };
            oracle
                .add_link(keys[0].clone(), keys[1].clone(), link)
                .await
                .expect("a link");
            context.sleep(REGOSSIP_AFTER * 2).await;
            assert_eq!(b.len(), 1, "the transaction was gossiped again");
            assert!(b.pool.lock().contains(&hash));
        });
    }
}
