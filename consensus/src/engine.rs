//! Starting a validator: marshal, simplex, block broadcast, backfill, the mempool and the
//! executor, on whatever runtime and p2p network the caller gives.
//!
//! Storage partitions (all under the caller's prefix): `-simplex` is the voter's journal, the
//! votes this validator cast, synced before each vote leaves: it is what keeps a restarted
//! validator from signing a conflicting vote, so it must never be deleted while the key is in
//! use. `-marshal-*` hold finalized blocks, their certificates and marshal's delivery progress.

use crate::application::{Application, Timing};
use crate::block::OrderedBlock;
use crate::executor::{self, Execution};
use crate::genesis::Genesis;
use crate::heads::{ExecutedHead, Heads};
use crate::ledger::{Ledger, LedgerError};
use crate::mempool::{self, MempoolHandle, MempoolLimits};
use crate::{Finalization, PrivateKey, PublicKey, Scheme};
use commonware_broadcast::buffered;
use commonware_consensus::marshal::core::{Actor as Marshal, Mailbox};
use commonware_consensus::marshal::resolver::p2p as marshal_resolver;
use commonware_consensus::marshal::standard::{Deferred, Standard};
use commonware_consensus::marshal::{self, Start};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::{self, ForwardPolicy, SkipBudget, SkipPolicy};
use commonware_consensus::types::{Epoch, FixedEpocher, Height, ViewDelta};
use commonware_cryptography::certificate::{ConstantProvider, Verifier as _};
use commonware_cryptography::{Digested, Digestible, Keccak256, Signer as _};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_storage::archive::immutable;
use commonware_utils::{NZU16, NZU64, NZUsize, NonZeroDuration};
use futures::future::select_all;
use rand_core::CryptoRng;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// Epoch length: one epoch for the chain's life (a fixed validator set).
const SINGLE_EPOCH: u64 = u64::MAX;
const PAGE_CACHE_PAGES: usize = 1024;
const REPLAY_BUFFER: usize = 1024 * 1024;
const WRITE_BUFFER: usize = 64 * 1024;
const ITEMS_PER_SECTION: u64 = 4096;
/// Blocks a peer may have cached at this node per sender before older ones are evicted.
const BROADCAST_DEQUE: usize = 16;

/// Everything tunable, with defaults for validators on one host or a LAN.
#[derive(Clone, Copy, Debug)]
pub struct Parameters {
    /// A leader that has not proposed by then is nullified.
    pub leader_timeout: Duration,
    /// A proposal not certified by then is nullified.
    pub certification_timeout: Duration,
    /// How often a nullify vote is resent while a view is stuck.
    pub timeout_retry: Duration,
    /// Leaders inactive for this long are skipped straight away.
    pub skip_timeout: Duration,
    /// How long a certificate or block fetch waits for a peer.
    pub fetch_timeout: Duration,
    /// How long an idle leader waits for transactions.
    pub idle_block: Duration,
    pub max_clock_skew: Duration,
    /// Views of consensus data kept behind the finalized one (for lagging peers).
    pub view_retention: u64,
    /// Finalized heights fetched from peers at once while catching up.
    pub max_repair: usize,
    /// Finalized blocks delivered to the executor and not yet acknowledged.
    pub max_pending_acks: usize,
    pub mailbox_size: usize,
    pub mempool: MempoolLimits,
    /// How long a submitted transaction waits for others to share its gossip message.
    /// (How many messages a peer may send is the network's setting, given when the channels
    /// are registered.)
    pub gossip_interval: Duration,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            leader_timeout: Duration::from_secs(1),
            certification_timeout: Duration::from_secs(2),
            timeout_retry: Duration::from_millis(500),
            skip_timeout: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(2),
            idle_block: Duration::from_millis(500),
            max_clock_skew: Duration::from_millis(500),
            view_retention: 256,
            max_repair: 20,
            max_pending_acks: 16,
            mailbox_size: 1024,
            mempool: MempoolLimits::DEFAULT,
            gossip_interval: Duration::from_millis(5),
        }
    }
}

/// The p2p channels a validator uses, each a (sender, receiver) pair registered by the caller
/// on the same channel number at every validator.
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    /// Simplex's certificate fetches.
    pub resolver: (S, R),
    /// Blocks as their leaders broadcast them.
    pub broadcast: (S, R),
    /// Marshal's fetches of finalized blocks (catch-up).
    pub backfill: (S, R),
    /// Transactions gossiped between mempools.
    pub mempool: (S, R),
}

impl<S, R> Channels<S, R> {
    /// The channel numbers, in field order, that [`Channels`] is registered on by convention.
    pub const NUMBERS: [u64; 6] = [0, 1, 2, 3, 4, 5];
}

pub struct EngineConfig<L, B, P> {
    pub genesis: Arc<Genesis>,
    pub signer: PrivateKey,
    /// Prefix of every storage partition of this validator.
    pub partition_prefix: String,
    pub ledger: L,
    /// Blocks peers that send invalid messages.
    pub blocker: B,
    /// The peer set (fetches and block eviction follow it).
    pub peer_provider: P,
    pub parameters: Parameters,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("this key is not one of the genesis validators")]
    NotAValidator,
    #[error("the ledger: {source}")]
    Ledger {
        #[source]
        source: LedgerError,
    },
    #[error("opening storage partition {partition}: {reason}")]
    Storage { partition: String, reason: String },
    #[error(
        "the ledger is at height {ledger} but consensus storage says {marshal} was executed: the ledger lost acknowledged blocks"
    )]
    LedgerBehind { ledger: u64, marshal: u64 },
    #[error(
        "the ledger holds height {head} with consensus block {ledger_digest}, marshal finalized {marshal_digest} there"
    )]
    Inconsistent {
        head: u64,
        ledger_digest: types::H256,
        marshal_digest: types::H256,
    },
}

/// The largest message any channel carries for this genesis: the network's `max_size` (or
/// `max_message_size`) must admit it.
pub fn max_message_size(genesis: &Genesis) -> usize {
    let participants = genesis.validators().len() as u32;
    let limits = genesis.limits();
    let marshal =
        marshal::max_payload_size::<Standard<OrderedBlock>, Scheme>(participants, &limits);
    let simplex = simplex::max_payload_size::<Scheme, crate::Digest>(participants);
    let gossip = mempool::MAX_GOSSIP_BYTES.max(limits.max_transaction_bytes as usize)
        + 5 * (mempool::MAX_GOSSIP_TRANSACTIONS + 1);
    marshal.max(simplex).max(gossip)
}

/// A running validator's handles.
#[derive(Clone)]
pub struct Handles<L: Ledger> {
    pub mempool: MempoolHandle<L>,
    pub heads: Heads,
    marshal: Mailbox<Scheme, Standard<OrderedBlock>>,
}

impl<L: Ledger> Handles<L> {
    /// The certificate that finalized `height`, if this validator stored it.
    pub async fn finalization(&self, height: u64) -> Option<Finalization> {
        self.marshal.get_finalization(Height::new(height)).await
    }

    /// The finalized block at `height`, if this validator stored it.
    pub async fn block(&self, height: u64) -> Option<OrderedBlock> {
        self.marshal
            .get_block(Height::new(height))
            .await
            .map(|block| block.inner().clone())
    }
}

type Archive<E, V> = immutable::Archive<E, crate::Digest, V>;

async fn archive<E, V>(
    context: E,
    prefix: &str,
    name: &str,
    codec_config: V::Cfg,
) -> Result<Archive<E, V>, EngineError>
where
    E: Storage + Metrics + Clock,
    V: commonware_codec::Codec + Send + Sync,
{
    let partition = format!("{prefix}-marshal-{name}");
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(PAGE_CACHE_PAGES));
    immutable::Archive::init(
        context,
        immutable::Config {
            metadata_partition: format!("{partition}-metadata"),
            freezer_table_partition: format!("{partition}-freezer-table"),
            freezer_table_initial_size: 64,
            freezer_table_resize_frequency: 10,
            freezer_table_resize_chunk_size: 64,
            freezer_key_partition: format!("{partition}-freezer-key"),
            freezer_key_page_cache: page_cache,
            freezer_value_partition: format!("{partition}-freezer-value"),
            freezer_value_target_size: 64 * 1024 * 1024,
            freezer_value_compression: None,
            ordinal_partition: format!("{partition}-ordinal"),
            items_per_section: NZU64!(ITEMS_PER_SECTION),
            freezer_key_write_buffer: NZUsize!(WRITE_BUFFER),
            freezer_value_write_buffer: NZUsize!(WRITE_BUFFER),
            ordinal_write_buffer: NZUsize!(WRITE_BUFFER),
            replay_buffer: NZUsize!(REPLAY_BUFFER),
            codec_config,
        },
    )
    .await
    .map_err(|error| EngineError::Storage {
        partition,
        reason: error.to_string(),
    })
}

fn nonzero(value: usize) -> NonZeroUsize {
    NonZeroUsize::new(value.max(1)).expect("at least one")
}

/// Starts a validator under `context` (every task is its child: aborting the caller's task
/// stops them all). Returns its handles and a task that ends when any part of the engine ends.
pub async fn start<E, L, B, P, S, R>(
    context: E,
    config: EngineConfig<L, B, P>,
    channels: Channels<S, R>,
) -> Result<(Handles<L>, Handle<()>), EngineError>
where
    E: Clock + Spawner + Storage + Metrics + CryptoRng,
    L: Ledger,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let EngineConfig {
        genesis,
        signer,
        partition_prefix: prefix,
        ledger,
        blocker,
        peer_provider,
        parameters,
    } = config;
    let public_key = signer.public_key();
    let scheme = genesis.signer(signer).ok_or(EngineError::NotAValidator)?;
    let limits = genesis.limits();
    let mailbox_size = nonzero(parameters.mailbox_size);

    // The executed head the ledger recovered, before anything can ask for it.
    let head = ledger
        .head()
        .await
        .map_err(|source| EngineError::Ledger { source })?;
    let heads = Heads::new(head);
    let (pool, mempool_handle, woken) = mempool::new(
        parameters.mempool,
        Arc::new(genesis.chain().clone()),
        limits.max_transaction_bytes as usize,
        ledger.clone(),
    );

    // Block broadcast and backfill.
    let (broadcast_engine, buffer) = buffered::Engine::<_, PublicKey, OrderedBlock, _, _>::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: public_key.clone(),
            mailbox_size,
            deque_size: BROADCAST_DEQUE,
            priority: false,
            codec_config: limits,
            peer_provider: peer_provider.clone(),
            strategy: Sequential,
        },
    );
    let resolver = marshal_resolver::init(
        context.child("backfill"),
        marshal_resolver::Config {
            public_key: public_key.clone(),
            peer_provider,
            blocker: blocker.clone(),
            mailbox_size,
            fetch_timeout: NonZeroDuration::new(parameters.fetch_timeout)
                .unwrap_or(NonZeroDuration::new(Duration::from_secs(1)).expect("one second")),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );

    // Marshal: finalized blocks and certificates, ordered delivery to the executor.
    let finalizations = archive::<_, Finalization>(
        context.child("finalizations"),
        &prefix,
        "finalizations",
        scheme.certificate_codec_config(),
    )
    .await?;
    let blocks =
        archive::<_, Arc<OrderedBlock>>(context.child("blocks"), &prefix, "blocks", limits).await?;
    let epocher = FixedEpocher::new(NZU64!(SINGLE_EPOCH));
    let (marshal_actor, marshal_mailbox, floor) = Marshal::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::new(scheme.clone()),
            epocher: epocher.clone(),
            start: Start::Genesis({
                let block = genesis.block();
                let digest = block.digest();
                Digested::precomputed(block, digest)
            }),
            partition_prefix: format!("{prefix}-marshal"),
            mailbox_size,
            view_retention: ViewDelta::new(parameters.view_retention),
            prunable_items_per_section: NZU64!(ITEMS_PER_SECTION),
            page_cache: CacheRef::new(NZU16!(4096), NZUsize!(PAGE_CACHE_PAGES)),
            replay_buffer: NZUsize!(REPLAY_BUFFER),
            key_write_buffer: NZUsize!(WRITE_BUFFER),
            value_write_buffer: NZUsize!(WRITE_BUFFER),
            block_codec_config: limits,
            max_repair: nonzero(parameters.max_repair),
            max_pending_acks: nonzero(parameters.max_pending_acks),
            strategy: Sequential,
        },
    )
    .await;

    let application = Application::new(
        genesis.clone(),
        ledger.clone(),
        heads.clone(),
        pool.clone(),
        Timing {
            idle_block: parameters.idle_block,
            max_clock_skew: parameters.max_clock_skew,
        },
    );
    let deferred = Deferred::new(
        context.child("application"),
        application,
        marshal_mailbox.clone(),
        epocher,
    );
    let mempool_blocker = blocker.clone();
    let consensus = simplex::Engine::new(
        context.child("simplex"),
        simplex::Config {
            scheme,
            elector: RoundRobin::<Keccak256>::default(),
            blocker,
            automaton: deferred.clone(),
            relay: deferred.clone(),
            reporter: deferred,
            track_historical_votes: false,
            strategy: Sequential,
            partition: format!("{prefix}-simplex"),
            mailbox_size,
            epoch: Epoch::zero(),
            floor: simplex::Floor::Genesis(genesis.block().digest()),
            replay_buffer: NZUsize!(REPLAY_BUFFER),
            write_buffer: NZUsize!(WRITE_BUFFER),
            page_cache: CacheRef::new(NZU16!(4096), NZUsize!(PAGE_CACHE_PAGES)),
            leader_timeout: parameters.leader_timeout,
            certification_timeout: parameters.certification_timeout,
            timeout_retry: parameters.timeout_retry,
            view_retention: ViewDelta::new(parameters.view_retention),
            skip: SkipPolicy::Enabled {
                timeout: parameters.skip_timeout,
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NonZeroDuration::new(parameters.fetch_timeout)
                .unwrap_or(NonZeroDuration::new(Duration::from_secs(1)).expect("one second")),
            fetch_retry_delay: Duration::from_millis(100),
            forward: ForwardPolicy::Disabled,
        },
    );

    // Start order: the executor and marshal before consensus, so a restarted engine's
    // replayed activity finds its consumers.
    let (executor, updates) = executor::channel();
    let execution = Execution {
        ledger,
        heads: heads.clone(),
        mempool: pool,
        marshal: marshal_mailbox.clone(),
    };
    let executor_task = context
        .child("executor")
        .spawn(move |_| execution.run(updates));
    let broadcast_task = broadcast_engine.start(channels.broadcast);
    let marshal_task = marshal_actor.start(executor, buffer, resolver);
    // Marshal answers only once started; consensus must not start on an inconsistent ledger.
    check_consistency(
        &marshal_mailbox,
        head,
        floor.processed().map(|p| p.height()),
    )
    .await?;
    let consensus_task = consensus.start(channels.votes, channels.certificates, channels.resolver);
    let (mempool_sender, mempool_receiver) = channels.mempool;
    let gossip_handle = mempool_handle.clone();
    let interval = parameters.gossip_interval;
    let gossip_task = context
        .child("gossip")
        .spawn(move |clock| mempool::gossip(clock, gossip_handle, woken, mempool_sender, interval));
    let receive_handle = mempool_handle.clone();
    let receive_task = context
        .child("mempool")
        .spawn(move |_| mempool::receive(receive_handle, mempool_receiver, mempool_blocker));
    info!(validator = %public_key, executed = head.height, "consensus started");

    let tasks = vec![
        executor_task,
        broadcast_task,
        marshal_task,
        consensus_task,
        gossip_task,
        receive_task,
    ];
    let watcher = context.child("engine").spawn(move |_| async move {
        let (result, index, _) = select_all(tasks).await;
        error!(
            task = index,
            ?result,
            "a consensus task ended; the validator stopped"
        );
    });
    Ok((
        Handles {
            mempool: mempool_handle,
            heads,
            marshal: marshal_mailbox,
        },
        watcher,
    ))
}

/// A ledger behind marshal's delivered height lost blocks it acknowledged; one whose executed
/// head names another consensus block than marshal finalized there follows another chain.
/// Either way the node must not start.
async fn check_consistency(
    marshal: &Mailbox<Scheme, Standard<OrderedBlock>>,
    head: ExecutedHead,
    processed: Option<Height>,
) -> Result<(), EngineError> {
    if let Some(processed) = processed
        && processed.get() > head.height
    {
        return Err(EngineError::LedgerBehind {
            ledger: head.height,
            marshal: processed.get(),
        });
    }
    if head.height == 0 {
        return Ok(());
    }
    let Some(block) = marshal.get_block(Height::new(head.height)).await else {
        // Marshal does not hold the ledger's head: its storage is older than the ledger's.
        // It redelivers from its own processed height; the executor skips what the ledger has.
        info!(
            ledger = head.height,
            marshal = processed.map(|height| height.get()),
            "marshal storage is behind the ledger"
        );
        return Ok(());
    };
    let marshal_digest = types::H256(block.digest().0);
    if marshal_digest != head.consensus_digest {
        return Err(EngineError::Inconsistent {
            head: head.height,
            ledger_digest: head.consensus_digest,
            marshal_digest,
        });
    }
    Ok(())
}
