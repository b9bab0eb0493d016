//! A deterministic network of validators: commonware's deterministic runtime (one seed drives
//! scheduling, time, link delays and losses), its simulated p2p network, and our real engine
//! (application, executor, mempool) over in-memory chain-lite, under a random signed workload,
//! with crashes and restarts and a Byzantine validator when a scenario asks. After every run,
//! [`check`] asserts the invariants on what every validator executed.

#![allow(dead_code)]

use alloy_consensus::{SignableTransaction, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use chain_lite::{Address, ChainConfig, GenesisAccount, Transaction};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::mocks::{conflicter, equivocator, nuller, relay::Relay};
use commonware_consensus::types::Epoch;
use commonware_cryptography::{Hasher, Keccak256};
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{Clock, Handle, Quota, Runner, Spawner, Supervisor, deterministic};
use commonware_utils::{NZU32, NZUsize};
use consensus::{
    BlockLimits, BlockStore, Channels, EngineConfig, ExecutedHead, Genesis, Handles, Ledger,
    MemoryLedger, Parameters, PrivateKey, PublicKey, max_message_size, public_keys, validator_keys,
    verify_finalization,
};
use rand::RngExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use types::H256;

pub const VALIDATORS: usize = 4;
const CLIENTS: usize = 8;
const GENESIS_BALANCE: u128 = 1_000_000_000_000_000_000_000;

/// The Byzantine validator a scenario runs in place of validator 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Byzantine {
    /// Sends different proposals to different validators.
    Equivocator,
    /// Signs a second, conflicting vote for every vote it sees.
    Conflicter,
    /// Votes to nullify every view.
    Nuller,
    /// Sends random bytes, some as large as the network admits, on every channel.
    Garbage,
    /// Sends random bytes on the mempool channel only, and takes no part in consensus.
    MempoolGarbage,
    /// Runs the real engine over a ledger that reports false executed headers, so every block
    /// it proposes claims an execution nobody else had (and it refuses honest claims).
    LyingClaims,
}

/// A ledger that executes honestly but misreports every executed header hash.
#[derive(Clone)]
struct LyingLedger(MemoryLedger);

fn lie(mut head: ExecutedHead) -> ExecutedHead {
    head.header_hash.0[0] ^= 0xff;
    head
}

impl Ledger for LyingLedger {
    async fn head(&self) -> Result<ExecutedHead, consensus::LedgerError> {
        self.0.head().await.map(lie)
    }

    async fn executed(&self, height: u64) -> Result<Option<ExecutedHead>, consensus::LedgerError> {
        self.0.executed(height).await.map(|head| head.map(lie))
    }

    async fn account(
        &self,
        address: Address,
    ) -> Result<consensus::AccountState, consensus::LedgerError> {
        self.0.account(address).await
    }

    async fn apply(
        &self,
        block: consensus::FinalizedBlock,
    ) -> Result<consensus::Applied, consensus::LedgerError> {
        self.0.apply(block).await
    }
}

#[derive(Clone)]
pub struct Scenario {
    pub seed: u64,
    pub link: Link,
    /// Height every honest validator must execute.
    pub heights: u64,
    pub byzantine: Option<Byzantine>,
    /// Crash-and-restart cycles of honest validators, one down at a time.
    pub crashes: usize,
    /// Simulated time within which the heights must be reached.
    pub time_limit: Duration,
}

impl Scenario {
    pub fn new(seed: u64, link: Link, heights: u64) -> Scenario {
        Scenario {
            seed,
            link,
            heights,
            byzantine: None,
            crashes: 0,
            time_limit: Duration::from_secs(120),
        }
    }
}

/// What a run left behind, for the checker and for comparing two runs of one seed.
pub struct Report {
    pub seed: u64,
    pub genesis: Arc<Genesis>,
    /// Per validator: the executed blocks (`None` for the Byzantine one).
    pub chains: Vec<Option<Vec<chain_lite::Block>>>,
    /// Per validator: total balances at its head.
    pub balances: Vec<Option<U256>>,
    /// Per validator: certificates stored with its blocks, by height.
    pub stores: Vec<Option<BlockStore>>,
    /// Every transaction the workload signed.
    pub sent: HashSet<H256>,
    pub genesis_total: U256,
    pub restarts: usize,
    /// Heads seen before each crash, and the head the restarted ledger recovered.
    pub recoveries: Vec<(usize, ExecutedHead, ExecutedHead, Option<ExecutedHead>)>,
    pub auditor: String,
    pub certificates_checked: usize,
    /// Who blocked whom (blocker, blocked) at the end of the run.
    pub blocked: Vec<(PublicKey, PublicKey)>,
    /// The validators' keys, validator 0 first.
    pub public_keys: Vec<PublicKey>,
}

fn client_keys() -> Vec<PrivateKeySigner> {
    (0..CLIENTS)
        .map(|index| {
            PrivateKeySigner::from_slice(&[index as u8 + 1; 32]).expect("a valid secp256k1 key")
        })
        .collect()
}

pub fn genesis() -> Arc<Genesis> {
    let keys = validator_keys(&[7; 32], VALIDATORS as u32);
    let chain = ChainConfig {
        genesis_accounts: client_keys()
            .iter()
            .map(|key| GenesisAccount {
                address: key.address().into_array(),
                balance: U256::from(GENESIS_BALANCE),
            })
            .collect(),
        ..ChainConfig::default()
    };
    let limits = BlockLimits {
        max_transactions: 1_000,
        max_block_bytes: 1024 * 1024,
        ..BlockLimits::DEFAULT
    };
    Arc::new(Genesis::new(chain, public_keys(&keys), limits).expect("a valid genesis"))
}

/// Engine parameters for a simulation: shorter idle waits than a node's.
pub fn parameters() -> Parameters {
    Parameters {
        idle_block: Duration::from_millis(100),
        ..Parameters::default()
    }
}

type Context = deterministic::Context;
type Sender = simulated::Sender<PublicKey, Context>;
type Receiver = simulated::Receiver<PublicKey>;

struct Node {
    key: PrivateKey,
    store: Option<BlockStore>,
    ledger: Option<MemoryLedger>,
    task: Option<Handle<()>>,
    handles: Option<Handles<MemoryLedger>>,
}

async fn register(
    oracle: &Oracle<PublicKey, Context>,
    key: &PublicKey,
) -> Channels<Sender, Receiver> {
    let control = oracle.control(key.clone());
    let quota = Quota::per_second(NZU32!(100_000));
    let mut pairs = Vec::new();
    for channel in Channels::<Sender, Receiver>::NUMBERS {
        pairs.push(
            control
                .register(channel, quota)
                .await
                .expect("the simulated network registers a channel"),
        );
    }
    let mut pairs = pairs.into_iter();
    let mut next = || pairs.next().expect("six channels");
    Channels {
        votes: next(),
        certificates: next(),
        resolver: next(),
        broadcast: next(),
        backfill: next(),
        mempool: next(),
    }
}

/// Starts (or restarts, recovering its ledger from its store) honest validator `index`.
async fn start_node(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    genesis: &Arc<Genesis>,
    node: &mut Node,
    index: usize,
) {
    use commonware_cryptography::Signer as _;
    let public_key = node.key.public_key();
    let channels = register(oracle, &public_key).await;
    let ledger = match &node.store {
        None => MemoryLedger::new(genesis.chain().clone()),
        Some(store) => MemoryLedger::recover(genesis.chain().clone(), store.clone())
            .expect("a restarted validator replays its stored blocks"),
    };
    node.store = Some(ledger.store());
    node.ledger = Some(ledger.clone());
    let config = EngineConfig {
        genesis: genesis.clone(),
        signer: node.key.clone(),
        partition_prefix: format!("validator{index}"),
        ledger,
        blocker: oracle.control(public_key.clone()),
        peer_provider: oracle.manager(),
        parameters: parameters(),
    };
    let (started, handles) = futures::channel::oneshot::channel();
    let task = context
        .child("validator")
        .with_attribute("index", index)
        .spawn(move |context| async move {
            let (handles, watcher) = consensus::start(context, config, channels)
                .await
                .expect("the engine starts");
            let _ = started.send(handles);
            let _ = watcher.await;
        });
    node.handles = Some(handles.await.expect("the engine reports its handles"));
    node.task = Some(task);
}

async fn start_byzantine(
    context: &Context,
    oracle: &Oracle<PublicKey, Context>,
    genesis: &Arc<Genesis>,
    key: PrivateKey,
    kind: Byzantine,
) -> Handle<()> {
    use commonware_cryptography::Signer as _;
    let channels = register(oracle, &key.public_key()).await;
    let scheme = genesis
        .signer(key.clone())
        .expect("validator 0 is in the genesis");
    let context = context.child("byzantine");
    match kind {
        Byzantine::Equivocator => {
            let engine = equivocator::Equivocator::<_, _, _, Keccak256>::new(
                context,
                equivocator::Config {
                    scheme,
                    elector: RoundRobin::<Keccak256>::default(),
                    epoch: Epoch::zero(),
                    relay: Arc::new(Relay::new()),
                },
            );
            engine.start(channels.votes, channels.certificates)
        }
        Byzantine::Conflicter => {
            let engine = conflicter::Conflicter::<_, _, Keccak256>::new(
                context,
                conflicter::Config { scheme },
            );
            engine.start(channels.votes)
        }
        Byzantine::Nuller => {
            let engine = nuller::Nuller::<_, _, Keccak256>::new(context, nuller::Config { scheme });
            engine.start(channels.votes)
        }
        Byzantine::Garbage => {
            let max_size = max_message_size(genesis);
            let senders = vec![
                channels.votes.0,
                channels.certificates.0,
                channels.resolver.0,
                channels.broadcast.0,
                channels.backfill.0,
                channels.mempool.0,
            ];
            context.spawn(move |context| garbage(context, senders, max_size))
        }
        Byzantine::MempoolGarbage => {
            let max_size = max_message_size(genesis);
            context.spawn(move |context| garbage(context, vec![channels.mempool.0], max_size))
        }
        Byzantine::LyingClaims => {
            let public_key = key.public_key();
            let config = EngineConfig {
                genesis: genesis.clone(),
                signer: key,
                partition_prefix: "liar".to_string(),
                ledger: LyingLedger(MemoryLedger::new(genesis.chain().clone())),
                blocker: oracle.control(public_key),
                peer_provider: oracle.manager(),
                parameters: parameters(),
            };
            context.spawn(move |context| async move {
                let (_handles, watcher) = consensus::start(context, config, channels)
                    .await
                    .expect("the lying validator's engine starts");
                let _ = watcher.await;
            })
        }
    }
}

/// Random messages on the channels of `senders`, to every validator.
async fn garbage(mut context: Context, mut senders: Vec<Sender>, max_size: usize) {
    use commonware_p2p::{Recipients, Sender as _};
    loop {
        let pause = Duration::from_millis(context.random_range(1..20u64));
        context.sleep(pause).await;
        let length = if context.random_bool(0.05) {
            max_size
        } else {
            context.random_range(0..512usize)
        };
        let mut message = vec![0u8; length];
        context.fill(&mut message[..]);
        // Sometimes a plausible prefix: a small count or tag first.
        if let Some(first) = message.first_mut()
            && context.random_bool(0.5)
        {
            *first = context.random_range(0..4u8);
        }
        let channel = context.random_range(0..senders.len());
        senders[channel].send(Recipients::All, message, false);
    }
}

/// A signed transfer (legacy, EIP-155) at the chain's gas price.
pub fn transfer(
    chain: &ChainConfig,
    key: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: U256,
) -> Vec<u8> {
    let tx = TxLegacy {
        chain_id: Some(chain.chain_id),
        nonce,
        gas_price: chain.gas_price,
        gas_limit: 21_000,
        to: TxKind::Call(to.into()),
        value,
        input: Bytes::new(),
    };
    let signature = key
        .sign_hash_sync(&tx.signature_hash())
        .expect("a local key signs");
    TxEnvelope::Legacy(tx.into_signed(signature)).encoded_2718()
}

fn keccak(bytes: &[u8]) -> H256 {
    H256(Keccak256::hash(&[bytes]).0)
}

type Live = Arc<Mutex<Vec<Option<Handles<MemoryLedger>>>>>;

/// Signs and submits transfers from the funded clients at random intervals, each client to
/// its own validator (the next live one if that one is down), with the nonce that validator's
/// mempool says is next.
async fn workload(
    mut context: Context,
    genesis: Arc<Genesis>,
    live: Live,
    sent: Arc<Mutex<HashSet<H256>>>,
) {
    let clients = client_keys();
    let chain = genesis.chain().clone();
    loop {
        let pause = context.random_range(5..40u64);
        context.sleep(Duration::from_millis(pause)).await;
        let client = context.random_range(0..CLIENTS);
        let handles = {
            let live = live.lock().expect("live list");
            (0..VALIDATORS)
                .map(|offset| (client + offset) % VALIDATORS)
                .find_map(|index| live[index].clone())
        };
        let Some(handles) = handles else { continue };
        let sender = clients[client].address().into_array();
        let Ok(nonce) = handles.mempool.pending_nonce(sender).await else {
            continue;
        };
        let to = if context.random_bool(0.5) {
            clients[context.random_range(0..CLIENTS)]
                .address()
                .into_array()
        } else {
            let mut fresh = [0u8; 20];
            fresh[0] = 0xee;
            fresh[19] = context.random_range(0..64u8);
            fresh
        };
        let value = U256::from(context.random_range(1..1_000_000_000_000u64));
        let raw = transfer(&chain, &clients[client], nonce, to, value);
        sent.lock().expect("sent set").insert(keccak(&raw));
        let _ = handles.mempool.submit(raw).await;
    }
}

/// Runs a scenario to the end and reports what every validator executed.
pub fn run(scenario: &Scenario) -> Report {
    // `ZEROG_SIM_LOG=debug` (an env-filter) shows what the validators do.
    if std::env::var_os("ZEROG_SIM_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("ZEROG_SIM_LOG"))
            .with_test_writer()
            .try_init();
    }
    let config = deterministic::Config::default()
        .with_seed(scenario.seed)
        .with_timeout(Some(scenario.time_limit + Duration::from_secs(60)));
    let scenario = scenario.clone();
    deterministic::Runner::new(config).start(|context| simulate(context, scenario))
}

async fn simulate(mut context: Context, scenario: Scenario) -> Report {
    use commonware_cryptography::Signer as _;
    let genesis = genesis();
    let keys = validator_keys(&[7; 32], VALIDATORS as u32);
    let public: Vec<PublicKey> = keys.iter().map(|key| key.public_key()).collect();
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: max_message_size(&genesis) as u32,
            max_peers_per_set: NZUsize!(VALIDATORS),
            disconnect_on_block: false,
            tracked_peer_sets: NZUsize!(1),
        },
        public.clone(),
    )
    .await;
    network.start();
    for from in &public {
        for to in &public {
            if from != to {
                oracle
                    .add_link(from.clone(), to.clone(), scenario.link.clone())
                    .await
                    .expect("a link between two validators");
            }
        }
    }

    let honest: Vec<usize> = match scenario.byzantine {
        Some(_) => (1..VALIDATORS).collect(),
        None => (0..VALIDATORS).collect(),
    };
    let mut nodes: Vec<Node> = keys
        .iter()
        .map(|key| Node {
            key: key.clone(),
            store: None,
            ledger: None,
            task: None,
            handles: None,
        })
        .collect();
    let live: Live = Arc::new(Mutex::new(vec![None; VALIDATORS]));
    let mut byzantine_task = None;
    if let Some(kind) = scenario.byzantine {
        byzantine_task =
            Some(start_byzantine(&context, &oracle, &genesis, keys[0].clone(), kind).await);
    }
    for &index in &honest {
        start_node(&context, &oracle, &genesis, &mut nodes[index], index).await;
        live.lock().expect("live list")[index] = nodes[index].handles.clone();
    }

    let sent = Arc::new(Mutex::new(HashSet::new()));
    let workload_task = context.child("workload").spawn({
        let genesis = genesis.clone();
        let live = live.clone();
        let sent = sent.clone();
        move |context| workload(context, genesis, live, sent)
    });

    let start = context.current();
    let deadline = start + scenario.time_limit;
    let mut crashes_left = scenario.crashes;
    let mut next_crash = (crashes_left > 0)
        .then(|| start + Duration::from_millis(context.random_range(1_000..3_000)));
    // A crashed validator: its index, the head it had, and when it restarts.
    let mut down: Option<(usize, ExecutedHead, std::time::SystemTime)> = None;
    let mut recoveries = Vec::new();
    let mut restarts = 0;
    loop {
        context.sleep(Duration::from_millis(100)).await;
        let now = context.current();
        if let Some((index, before, restart_at)) = down
            && now >= restart_at
        {
            start_node(&context, &oracle, &genesis, &mut nodes[index], index).await;
            let ledger = nodes[index].ledger.clone().expect("started");
            let recovered = ledger.head().await.expect("the ledger answers");
            let at_before = ledger.executed(before.height).await.expect("answers");
            recoveries.push((index, before, recovered, at_before));
            live.lock().expect("live list")[index] = nodes[index].handles.clone();
            restarts += 1;
            down = None;
            next_crash = (crashes_left > 0)
                .then(|| now + Duration::from_millis(context.random_range(1_000..3_000)));
        }
        if down.is_none()
            && let Some(at) = next_crash
            && now >= at
        {
            let index = honest[context.random_range(0..honest.len())];
            let node = &mut nodes[index];
            let before = node
                .handles
                .as_ref()
                .and_then(|handles| handles.heads.head())
                .expect("a running validator has a head");
            live.lock().expect("live list")[index] = None;
            node.handles = None;
            if let Some(task) = node.task.take() {
                task.abort();
                let _ = task.await;
            }
            crashes_left -= 1;
            next_crash = None;
            let restart_at = now + Duration::from_millis(context.random_range(500..3_000));
            down = Some((index, before, restart_at));
        }
        let heights: Vec<u64> = honest
            .iter()
            .map(|&index| {
                nodes[index]
                    .handles
                    .as_ref()
                    .and_then(|handles| handles.heads.head())
                    .map_or(0, |head| head.height)
            })
            .collect();
        let done = down.is_none()
            && crashes_left == 0
            && heights.iter().all(|height| *height >= scenario.heights);
        if done {
            break;
        }
        assert!(
            now < deadline,
            "seed {}: liveness: executed heights {heights:?} after {:?} of simulated time, \
             {} wanted",
            scenario.seed,
            scenario.time_limit,
            scenario.heights
        );
    }
    workload_task.abort();
    if let Some(task) = byzantine_task {
        task.abort();
    }

    let mut chains = vec![None; VALIDATORS];
    let mut balances = vec![None; VALIDATORS];
    let mut stores = vec![None; VALIDATORS];
    for &index in &honest {
        let ledger = nodes[index].ledger.clone().expect("started");
        chains[index] = Some(ledger.store().blocks());
        balances[index] = Some(ledger.with_chain(|chain| {
            chain
                .accounts()
                .fold(U256::ZERO, |sum, (_, account)| sum + account.balance)
        }));
        stores[index] = nodes[index].store.clone();
    }
    let mut certificates_checked = 0;
    for (chain, store) in chains.iter().zip(&stores) {
        let (Some(chain), Some(store)) = (chain, store) else {
            continue;
        };
        for block in chain.iter().skip(1) {
            let Some(finalization) = store.finalization(block.number()) else {
                continue;
            };
            assert!(
                verify_finalization(&genesis, &finalization, &mut context),
                "seed {}: the certificate of height {} does not verify",
                scenario.seed,
                block.number()
            );
            assert_eq!(
                finalization.proposal.payload.0,
                block.header.consensus_digest.0,
                "seed {}: the certificate of height {} finalizes another block",
                scenario.seed,
                block.number()
            );
            certificates_checked += 1;
        }
    }
    let genesis_total = genesis
        .chain()
        .genesis_accounts
        .iter()
        .fold(U256::ZERO, |sum, account| sum + account.balance);
    let sent = sent.lock().expect("sent set").clone();
    Report {
        seed: scenario.seed,
        genesis,
        chains,
        balances,
        stores,
        sent,
        genesis_total,
        restarts,
        recoveries,
        auditor: context.auditor().state(),
        certificates_checked,
        blocked: oracle.blocked().await.expect("the network answers"),
        public_keys: public,
    }
}

/// The invariants every run must keep: agreement, no regression across restarts, validity,
/// conservation, liveness (checked while running) and certificates on the executed blocks.
pub fn check(scenario: &Scenario, report: &Report) {
    let seed = report.seed;
    let chains: Vec<(usize, &Vec<chain_lite::Block>)> = report
        .chains
        .iter()
        .enumerate()
        .filter_map(|(index, chain)| chain.as_ref().map(|chain| (index, chain)))
        .collect();
    assert!(!chains.is_empty());

    // Agreement: same header (hence same consensus block and same full state) at every height
    // every validator that has it.
    let mut by_height: BTreeMap<u64, (usize, H256, H256)> = BTreeMap::new();
    for (index, chain) in &chains {
        for (position, block) in chain.iter().enumerate() {
            assert_eq!(
                block.number(),
                position as u64,
                "seed {seed}: validator {index}: gap"
            );
            let header = (*index, block.hash(), block.header.consensus_digest);
            match by_height.get(&block.number()) {
                None => {
                    by_height.insert(block.number(), header);
                }
                Some((other, hash, digest)) => {
                    assert_eq!(
                        (hash, digest),
                        (&header.1, &header.2),
                        "seed {seed}: agreement: validators {other} and {index} differ at height {}",
                        block.number()
                    );
                }
            }
        }
    }

    // Claims: every executed block claims a header this chain has at that height (validators
    // vote only for claims they executed themselves, so a finality proof proves the header).
    for (index, store) in report.stores.iter().enumerate() {
        let (Some(store), Some(chain)) = (store, &report.chains[index]) else {
            continue;
        };
        for (height, claim) in store.claims() {
            let claimed = chain.get(claim.height as usize).unwrap_or_else(|| {
                panic!(
                    "seed {seed}: height {height} claims unknown height {}",
                    claim.height
                )
            });
            assert_eq!(
                claimed.hash(),
                claim.header_hash,
                "seed {seed}: validator {index}: block {height} claims a header of height {} nobody executed",
                claim.height
            );
        }
    }

    // No regression: a restarted validator recovered at least what it had, unchanged.
    for (index, before, recovered, at_before) in &report.recoveries {
        assert!(
            recovered.height >= before.height,
            "seed {seed}: validator {index} restarted at {} after executing {}",
            recovered.height,
            before.height
        );
        assert_eq!(
            at_before.map(|head| head.header_hash),
            Some(before.header_hash),
            "seed {seed}: validator {index}: height {} changed across a restart",
            before.height
        );
    }

    // Validity: every executed transaction was signed by the workload, none twice.
    for (index, chain) in &chains {
        let mut seen = HashSet::new();
        for block in chain.iter() {
            for transaction in &block.transactions {
                let Transaction::Signed { raw } = transaction else {
                    panic!("seed {seed}: validator {index}: an unsigned transaction executed");
                };
                let hash = keccak(raw);
                assert!(
                    report.sent.contains(&hash),
                    "seed {seed}: validator {index}: executed {hash}, which no client sent"
                );
                assert!(
                    seen.insert(hash),
                    "seed {seed}: validator {index}: executed {hash} twice"
                );
            }
        }
    }

    // Conservation: balances plus burned gas equal the genesis total.
    for (index, chain) in &chains {
        let burned = chain.iter().flat_map(|block| block.receipts.iter()).fold(
            U256::ZERO,
            |sum, receipt| {
                sum + U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price)
            },
        );
        let balances = report.balances[*index].expect("an honest validator's balances");
        assert_eq!(
            balances + burned,
            report.genesis_total,
            "seed {seed}: validator {index}: balances {balances} + burned {burned} is not the \
             genesis total"
        );
    }

    // Liveness (the run waited for it) and progress of execution.
    for (index, chain) in &chains {
        assert!(
            chain.len() as u64 > scenario.heights,
            "seed {seed}: validator {index} executed {} heights",
            chain.len() - 1
        );
    }
    // Not vacuous: the workload's transactions were ordered and executed.
    let executed = executed_transactions(report);
    assert!(
        executed > 0,
        "seed {seed}: no transaction executed out of {} sent",
        report.sent.len()
    );
    assert!(
        report.certificates_checked > 0,
        "seed {seed}: no finalization certificate was stored with the executed blocks"
    );
    assert_eq!(report.restarts, scenario.crashes, "seed {seed}: restarts");
}

/// Executed header hashes per validator: two runs of one seed must give the same.
pub fn headers(report: &Report) -> Vec<Vec<H256>> {
    report
        .chains
        .iter()
        .map(|chain| {
            chain
                .iter()
                .flatten()
                .map(chain_lite::Block::hash)
                .collect()
        })
        .collect()
}

/// Seeds per scenario: `default`, or `ZEROG_SIM_SEEDS` for long runs.
pub fn seeds(default: u64) -> u64 {
    std::env::var("ZEROG_SIM_SEEDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Transactions executed by the first honest validator.
pub fn executed_transactions(report: &Report) -> usize {
    report.chains.iter().flatten().next().map_or(0, |chain| {
        chain.iter().map(|block| block.transactions.len()).sum()
    })
}
