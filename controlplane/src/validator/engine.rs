//! The consensus side of a validator: commonware's tokio runtime on threads of its own, its
//! authenticated p2p network (`lookup`: the fixed validator set with the addresses of the
//! genesis file) and the `consensus` engine over a [`ChannelLedger`]. Nothing here touches
//! chain-lite: execution is requested from the control-plane thread through the ledger.

use super::ledger::ChannelLedger;
use commonware_cryptography::{ChaCha20Poly1305, Signer as _};
use commonware_p2p::AddressableManager as _;
use commonware_p2p::authenticated::lookup;
use commonware_runtime::{Quota, Runner as _, Supervisor as _};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::ordered::Map;
use commonware_utils::{NZU32, NZUsize};
use consensus::{
    Channels, EngineConfig, Genesis, Handles, Parameters, PrivateKey, PublicKey, max_message_size,
};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Worker threads of the consensus runtime.
const CONSENSUS_THREADS: usize = 2;
/// Messages per second a peer may send on one channel. Each channel's inbound mailbox holds
/// one second's burst per peer, allocated up front, so this sizes memory as much as it limits
/// peers; mempool gossip batches transactions, so a thousand messages carry far more.
const CHANNEL_MESSAGES_PER_SECOND: u32 = 1_000;
/// The p2p network's internal mailboxes.
const NETWORK_MAILBOX: usize = 1_024;
/// Peer set id of the genesis validators (the set never changes).
const GENESIS_PEER_SET: u64 = 0;
/// Prefix of the engine's storage partitions in the consensus folder.
const PARTITION_PREFIX: &str = "validator";

pub struct ConsensusConfig {
    pub genesis: Arc<Genesis>,
    pub signer: PrivateKey,
    /// Every validator (this one included) and where it listens for peers.
    pub peers: Vec<(PublicKey, SocketAddr)>,
    pub listen: SocketAddr,
    /// The folder of the engine's journals and archives.
    pub storage: PathBuf,
    pub ledger: ChannelLedger,
}

/// What the consensus thread reports once the engine is up (or why it could not start).
pub type Started = Result<Handles<ChannelLedger>, String>;

/// The running consensus thread.
pub struct ConsensusThread {
    pub thread: std::thread::JoinHandle<()>,
    /// Answers once the engine has started, which needs the ledger to be served meanwhile.
    pub started: oneshot::Receiver<Started>,
    /// Resolves (with an error) when the engine and its runtime have stopped.
    pub stopped: oneshot::Receiver<()>,
}

/// Starts the consensus runtime on its own thread, which ends when the engine stops.
pub fn spawn(config: ConsensusConfig) -> std::io::Result<ConsensusThread> {
    let (started_sender, started) = oneshot::channel();
    let (stopped_sender, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("consensus".into())
        .spawn(move || {
            run(config, started_sender);
            drop(stopped_sender);
        })?;
    Ok(ConsensusThread {
        thread,
        started,
        stopped,
    })
}

fn run(config: ConsensusConfig, started: oneshot::Sender<Started>) {
    let runtime = commonware_runtime::tokio::Config::new()
        .with_worker_threads(CONSENSUS_THREADS)
        .with_storage_directory(config.storage.clone());
    commonware_runtime::tokio::Runner::new(runtime).start(|context| async move {
        let ConsensusConfig {
            genesis,
            signer,
            peers,
            listen,
            storage: _,
            ledger,
        } = config;
        let handshake = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: signer.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let max_message = u32::try_from(max_message_size(&genesis)).unwrap_or(u32::MAX);
        let peer_count = NonZeroUsize::new(peers.len()).unwrap_or(NZUsize!(1));
        let mut p2p = lookup::Config::local(
            handshake,
            &genesis.namespace(),
            listen,
            peer_count,
            max_message,
            NZUsize!(NETWORK_MAILBOX),
        );
        // The validator set never changes: one peer set to track.
        p2p.tracked_peer_sets = NZUsize!(1);
        let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p);
        let addresses = Map::from_iter_dedup(
            peers
                .into_iter()
                .map(|(key, address)| (key, commonware_p2p::Address::from(address))),
        );
        let _ = oracle.track(GENESIS_PEER_SET, addresses);
        let quota = Quota::per_second(NZU32!(CHANNEL_MESSAGES_PER_SECOND));
        let mut pairs = Channels::<(), ()>::NUMBERS
            .map(|channel| network.register(channel, quota))
            .into_iter();
        let mut next = || pairs.next().expect("one pair per channel number");
        let channels = Channels {
            votes: next(),
            certificates: next(),
            resolver: next(),
            broadcast: next(),
            backfill: next(),
            mempool: next(),
        };
        let network_task = network.start();
        let public_key = signer.public_key();
        let engine = EngineConfig {
            genesis,
            signer,
            partition_prefix: PARTITION_PREFIX.to_string(),
            ledger,
            blocker: oracle.clone(),
            peer_provider: oracle,
            parameters: Parameters::default(),
        };
        match consensus::start(context.child("consensus"), engine, channels).await {
            Ok((handles, engine_task)) => {
                tracing::info!(validator = %public_key, "consensus running");
                let _ = started.send(Ok(handles));
                let _ = engine_task.await;
            }
            Err(error) => {
                let _ = started.send(Err(error.to_string()));
            }
        }
        network_task.abort();
    });
}
