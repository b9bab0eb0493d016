//! Four `zerog validator` processes under faults, as users see them through the Ethereum
//! facade: validators killed with SIGKILL (one at a time under a steady load of transfers, one
//! for hundreds of blocks, two at once) and network partitions (validators on a second host, a
//! network namespace cut off with nftables: two against two, three against one).
//!
//! What every test holds the network to: with three of four validators reachable, transactions
//! become final; with two, nothing does (and nothing is lost: it becomes final once a third
//! returns); a validator that was down or cut off catches up, every validator reports the same
//! block hash at every height, and no validator's height ever goes backwards, restarts
//! included (a watch thread polls every validator's height for the whole test).
//!
//! The tests run one at a time (each runs four validators, which need both cores of a CI
//! machine); the partition tests need root, as the test command runs.

mod common;

use common::validators::{
    FINALITY_TIMEOUT, VALIDATORS, assert_same_blocks, block_number, dev_address, free_ports,
    init_network_at, pending_nonce, quantity, send_transfer, transfer, validator,
    wait_receipt_within,
};
use common::{Rpc, serial};
use harness::Host;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the network gets to finalize again, or a validator to catch up, after a fault.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_secs(5);
/// Blocks that may still finalize after validators die or are cut off: views they had
/// already voted for complete, and finalized blocks waiting for execution are executed.
const IN_FLIGHT_BLOCKS: u64 = 3;
/// Dev accounts the load sends from.
const LOAD_ACCOUNTS: usize = chain_lite::DEV_ACCOUNTS.len();
/// Transfers each account of the load has sent and not yet seen executed, at most (the
/// mempool takes 64 per sender beyond its account nonce).
const LOAD_WINDOW: u64 = 24;
/// Pause between the load's rounds (one transfer per account each).
const LOAD_PACE: Duration = Duration::from_millis(10);
/// How often the watch reads every validator's height.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// Blocks the network finalizes while one validator is down in
/// [`a_validator_down_for_hundreds_of_blocks_catches_up_and_agrees`].
const BLOCKS_MISSED: u64 = 200;

/// Polls `done` until it holds; panics naming `what` after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where a validator runs.
#[derive(Clone)]
struct Place {
    /// The address it listens on for peers (and theirs for it).
    p2p_ip: String,
    /// The address of its JSON-RPC.
    rpc_ip: String,
    /// The network namespace it runs in, when not this one.
    netns: Option<String>,
}

/// Every validator on loopback.
fn on_loopback() -> Vec<Place> {
    (0..VALIDATORS)
        .map(|_| Place {
            p2p_ip: "127.0.0.1".to_string(),
            rpc_ip: "127.0.0.1".to_string(),
            netns: None,
        })
        .collect()
}

/// The last `inside` validators on `host`, the others on this side at the address the host
/// reaches (they reach each other there too): cutting the host off splits the network.
fn split(host: &Host, inside: usize) -> Vec<Place> {
    (0..VALIDATORS)
        .map(|index| {
            if index < VALIDATORS - inside {
                Place {
                    p2p_ip: host.gateway_ip().to_string(),
                    rpc_ip: "127.0.0.1".to_string(),
                    netns: None,
                }
            } else {
                Place {
                    p2p_ip: host.ip().to_string(),
                    rpc_ip: host.ip().to_string(),
                    netns: Some(host.name().to_string()),
                }
            }
        })
        .collect()
}

/// What a network shares with its load and its height watch.
struct Shared {
    /// The JSON-RPC URL of each validator while it runs.
    endpoints: Vec<Option<String>>,
    /// The next nonce the load sends from each dev account.
    next_nonce: Vec<u64>,
    /// Hashes of the transfers validators accepted from the load.
    sent: Vec<String>,
    /// The highest height each validator reported.
    highest: Vec<u64>,
    /// Each time a validator reported a lower height than before.
    went_back: Vec<String>,
}

/// Four validators from `zerog validator-init`, a watch of their heights and, when started,
/// a load of transfers; every process is killed when dropped.
struct Network {
    _dir: tempfile::TempDir,
    folder: PathBuf,
    places: Vec<Place>,
    processes: Vec<Option<harness::Process>>,
    shared: Arc<Mutex<Shared>>,
    watch_stop: Arc<AtomicBool>,
    watch: Option<JoinHandle<()>>,
    load_stop: Arc<AtomicBool>,
    load: Option<JoinHandle<()>>,
}

impl Network {
    /// Starts validator i at `places[i]`, with its p2p address in the genesis file there, and
    /// the height watch.
    fn start(places: Vec<Place>) -> Network {
        let dir = tempfile::tempdir().expect("tempdir");
        // Ports free on loopback: no other process listens on them on any address here, and a
        // second host's namespace is empty.
        let addresses: Vec<String> = places
            .iter()
            .zip(free_ports("127.0.0.1", places.len()))
            .map(|(place, port)| format!("{}:{port}", place.p2p_ip))
            .collect();
        let folder = init_network_at(dir.path(), &addresses);
        let count = places.len();
        let shared = Arc::new(Mutex::new(Shared {
            endpoints: vec![None; count],
            next_nonce: vec![0; LOAD_ACCOUNTS],
            sent: Vec::new(),
            highest: vec![0; count],
            went_back: Vec::new(),
        }));
        let mut network = Network {
            _dir: dir,
            folder,
            places,
            processes: (0..count).map(|_| None).collect(),
            shared,
            watch_stop: Arc::new(AtomicBool::new(false)),
            watch: None,
            load_stop: Arc::new(AtomicBool::new(false)),
            load: None,
        };
        for index in 0..count {
            network.start_validator(index);
        }
        let (shared, stop) = (network.shared.clone(), network.watch_stop.clone());
        network.watch = Some(std::thread::spawn(move || watch_heights(&shared, &stop)));
        network
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts (or restarts, on its data folder) validator `index`.
    fn start_validator(&mut self, index: usize) {
        let place = &self.places[index];
        let mut launch =
            validator(&self.folder, index).args(["--rpc", &format!("{}:0", place.rpc_ip)]);
        if let Some(netns) = &place.netns {
            launch = launch.in_netns(netns);
        }
        let process = launch.start().expect("a validator starts");
        let url = process
            .rpc_url()
            .expect("a validator prints its rpc endpoint");
        self.processes[index] = Some(process);
        self.lock().endpoints[index] = Some(url);
    }

    /// SIGKILL validator `index`, once every transfer the load had sent (to it among others)
    /// is in another validator's mempool or executed: a mempool does not survive its process,
    /// and a transfer that died with it would leave a nonce gap no later transfer of its
    /// sender could fill.
    fn kill(&mut self, index: usize) {
        // The load sends under the lock: once the validator is off its list, nothing more is
        // sent to it.
        let next = {
            let mut shared = self.lock();
            shared.endpoints[index] = None;
            shared.next_nonce.clone()
        };
        if next.iter().any(|&nonce| nonce > 0) {
            let others: Vec<Rpc> = self
                .lock()
                .endpoints
                .iter()
                .flatten()
                .map(|url| Rpc::new(url))
                .collect();
            wait_until(
                "another validator has the load's transfers",
                FINALITY_TIMEOUT,
                || {
                    others.iter().any(|rpc| {
                        next.iter().enumerate().all(|(account, &nonce)| {
                            pending_nonce(rpc, &dev_address(account)) >= nonce
                        })
                    })
                },
            );
        }
        self.processes[index]
            .take()
            .expect("the validator runs")
            .kill9()
            .expect("killed");
    }

    fn rpc(&self, index: usize) -> Rpc {
        let url = self.lock().endpoints[index].clone();
        Rpc::new(&url.unwrap_or_else(|| panic!("validator {index} is not running")))
    }

    fn rpcs(&self, indices: &[usize]) -> Vec<Rpc> {
        indices.iter().map(|&index| self.rpc(index)).collect()
    }

    fn height(&self, index: usize) -> u64 {
        block_number(&self.rpc(index))
    }

    fn heights(&self, indices: &[usize]) -> Vec<u64> {
        indices.iter().map(|&index| self.height(index)).collect()
    }

    /// Waits until every validator in `indices` has executed `height`.
    fn wait_height(&self, indices: &[usize], height: u64, timeout: Duration) {
        let rpcs = self.rpcs(indices);
        wait_until(
            &format!("validators {indices:?} reach height {height}"),
            timeout,
            || rpcs.iter().all(|rpc| block_number(rpc) >= height),
        );
    }

    /// Asserts that `indices` report the same block hash at every height up to `top`.
    fn assert_same_blocks(&self, indices: &[usize], top: u64) {
        let rpcs = self.rpcs(indices);
        assert_same_blocks(&rpcs.iter().collect::<Vec<_>>(), top);
    }

    /// Asserts that no validator's height went backwards so far.
    fn assert_heights_never_went_back(&self) {
        let went_back = self.lock().went_back.clone();
        assert!(
            went_back.is_empty(),
            "heights went backwards: {went_back:?}"
        );
    }

    /// Starts sending transfers back to back, with consecutive nonces, from every dev account,
    /// to the running validators in turn.
    fn start_load(&mut self) {
        let (shared, stop) = (self.shared.clone(), self.load_stop.clone());
        self.load = Some(std::thread::spawn(move || send_load(&shared, &stop)));
    }

    /// Stops the load; the next nonce of each account and the hashes of the transfers sent.
    fn stop_load(&mut self) -> (Vec<u64>, Vec<String>) {
        self.load_stop.store(true, Ordering::Relaxed);
        self.load
            .take()
            .expect("a load runs")
            .join()
            .expect("the load thread");
        let shared = self.lock();
        (shared.next_nonce.clone(), shared.sent.clone())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.load_stop.store(true, Ordering::Relaxed);
        self.watch_stop.store(true, Ordering::Relaxed);
        for thread in [self.load.take(), self.watch.take()].into_iter().flatten() {
            let _ = thread.join();
        }
        // Before the folder goes: a validator whose storage vanished under it panics.
        self.processes.clear();
    }
}

/// A client per URL, made once (a validator restarts on another port).
fn client<'a>(clients: &'a mut HashMap<String, Rpc>, url: &str) -> &'a Rpc {
    clients
        .entry(url.to_string())
        .or_insert_with(|| Rpc::new(url))
}

/// The result of `method` at `rpc`, or `None` when the validator is gone or refuses.
fn try_call(rpc: &Rpc, method: &str, params: Value) -> Option<Value> {
    let answer = rpc.try_raw(method, params).ok()?;
    answer.get("result").cloned()
}

/// Reads every running validator's height until stopped, recording each that went backwards.
fn watch_heights(shared: &Mutex<Shared>, stop: &AtomicBool) {
    let mut clients = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let endpoints = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .endpoints
            .clone();
        for (index, url) in endpoints.iter().enumerate() {
            let Some(url) = url else { continue };
            // A validator killed meanwhile does not answer.
            let Some(height) = try_call(client(&mut clients, url), "eth_blockNumber", json!([]))
            else {
                continue;
            };
            let height = quantity(&height);
            let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if height < shared.highest[index] {
                let was = shared.highest[index];
                shared
                    .went_back
                    .push(format!("validator {index}: {was} then {height}"));
            }
            shared.highest[index] = shared.highest[index].max(height);
        }
        std::thread::sleep(WATCH_INTERVAL);
    }
}

/// Sends transfers until stopped: each round, one from every dev account whose unexecuted
/// transfers are fewer than [`LOAD_WINDOW`], each to the next running validator. A refused
/// or unanswered transfer is sent again, with the same nonce, in a later round.
fn send_load(shared: &Mutex<Shared>, stop: &AtomicBool) {
    let mut clients = HashMap::new();
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        for account in 0..LOAD_ACCOUNTS {
            // Held while sending: a validator about to be killed is taken off the list first.
            let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
            let live: Vec<String> = shared.endpoints.iter().flatten().cloned().collect();
            if live.is_empty() {
                continue;
            }
            turn += 1;
            let rpc = client(&mut clients, &live[turn % live.len()]);
            let address = dev_address(account);
            let Some(executed) =
                try_call(rpc, "eth_getTransactionCount", json!([address, "latest"]))
            else {
                continue;
            };
            let next = shared.next_nonce[account];
            if next >= quantity(&executed) + LOAD_WINDOW {
                continue;
            }
            let raw = transfer(
                chain_lite::DEV_ACCOUNTS[account].private_key,
                next,
                next + 1,
            );
            let Ok(answer) = rpc.try_raw("eth_sendRawTransaction", json!([raw])) else {
                continue;
            };
            let hash = match answer.get("result").and_then(Value::as_str) {
                Some(hash) => hash.to_string(),
                None => {
                    // Accepted before (an answer that never came back): the same nonce and
                    // value sign the same transaction.
                    let message = answer["error"]["message"].as_str().unwrap_or_default();
                    if !(message.contains("already known") || message.contains("nonce too low")) {
                        continue;
                    }
                    let bytes = hex::decode(raw.trim_start_matches("0x")).expect("hex");
                    format!("{}", alloy_primitives::keccak256(bytes))
                }
            };
            shared.sent.push(hash);
            shared.next_nonce[account] = next + 1;
        }
        std::thread::sleep(LOAD_PACE);
    }
}

const ALL: [usize; VALIDATORS] = [0, 1, 2, 3];

/// Every validator but `index`.
fn others(index: usize) -> Vec<usize> {
    ALL.into_iter().filter(|&other| other != index).collect()
}

/// Each validator in turn is killed under load and restarted on its data folder while the
/// load goes on: every transfer becomes final, all four report the same block at every
/// height, and no height ever goes backwards (a restarted validator recovers its head).
#[test]
fn validators_killed_in_turn_under_load_lose_nothing_and_agree() {
    let _serial = serial();
    let mut network = Network::start(on_loopback());
    network.start_load();
    network.wait_height(&ALL, 5, FINALITY_TIMEOUT);
    for index in ALL {
        network.kill(index);
        let live = others(index);
        let top = network.heights(&live).into_iter().max().expect("three");
        network.wait_height(&live, top + 10, RECOVERY_TIMEOUT);
        network.start_validator(index);
        let top = network.heights(&live).into_iter().max().expect("three");
        network.wait_height(&[index], top, RECOVERY_TIMEOUT);
    }
    let (next_nonce, sent) = network.stop_load();
    assert!(sent.len() > 100, "a load: {} transfers", sent.len());

    // Every transfer accepted is final everywhere.
    for rpc in network.rpcs(&ALL) {
        wait_until(
            &format!("{} executes every transfer", rpc.url()),
            RECOVERY_TIMEOUT,
            || {
                next_nonce.iter().enumerate().all(|(account, &next)| {
                    let count = rpc.call(
                        "eth_getTransactionCount",
                        json!([dev_address(account), "latest"]),
                    );
                    quantity(&count) == next
                })
            },
        );
    }
    let rpc = network.rpc(0);
    for hash in &sent {
        let receipt = rpc.call("eth_getTransactionReceipt", json!([hash]));
        assert_eq!(receipt["status"], json!("0x1"), "{hash}: {receipt}");
    }
    let top = network.heights(&ALL).into_iter().min().expect("four");
    eprintln!("{} transfers final in {top} blocks", sent.len());
    network.assert_same_blocks(&ALL, top);
    network.assert_heights_never_went_back();
}

/// A validator down while the others finalize hundreds of blocks (a load keeps blocks
/// coming faster than the idle pace) catches up once restarted and agrees on every block.
#[test]
fn a_validator_down_for_hundreds_of_blocks_catches_up_and_agrees() {
    let _serial = serial();
    let mut network = Network::start(on_loopback());
    network.start_load();
    network.wait_height(&ALL, 3, FINALITY_TIMEOUT);
    let down = 3;
    network.kill(down);
    let live = others(down);
    let from = network.height(0);
    let started = Instant::now();
    network.wait_height(&live, from + BLOCKS_MISSED, RECOVERY_TIMEOUT);
    eprintln!(
        "{BLOCKS_MISSED} blocks in {:?} with a validator down",
        started.elapsed()
    );
    network.start_validator(down);
    let top = network.heights(&live).into_iter().max().expect("three");
    let started = Instant::now();
    network.wait_height(&[down], top, RECOVERY_TIMEOUT);
    eprintln!("caught up {} blocks in {:?}", top - from, started.elapsed());
    network.stop_load();
    network.assert_same_blocks(&ALL, top);
    network.assert_heights_never_went_back();
}

/// Asserts that nothing finalizes at `indices` for a while (they stopped at most
/// [`IN_FLIGHT_BLOCKS`] above `before`) and that `pending` stays without a receipt.
fn assert_finality_stopped(network: &Network, indices: &[usize], before: &[u64], pending: &[&str]) {
    // Sleeps: what is asserted is that nothing happens meanwhile. The first wait lets what was
    // in flight settle, the second must see no block at all.
    std::thread::sleep(QUIET);
    let settled = network.heights(indices);
    for ((index, &was), &now) in indices.iter().zip(before).zip(&settled) {
        assert!(
            now <= was + IN_FLIGHT_BLOCKS,
            "validator {index} finalized {was} to {now} without a quorum"
        );
    }
    std::thread::sleep(QUIET);
    assert_eq!(
        network.heights(indices),
        settled,
        "validators {indices:?} finalize without a quorum"
    );
    for rpc in network.rpcs(indices) {
        for hash in pending {
            assert_eq!(
                rpc.call("eth_getTransactionReceipt", json!([hash])),
                Value::Null,
                "{hash} final at {} without a quorum",
                rpc.url()
            );
        }
    }
}

/// With two of four validators down nothing finalizes, and a transfer sent meanwhile is not
/// lost: once one of the two is back it becomes final.
#[test]
fn two_of_four_down_stops_finality_until_one_returns() {
    let _serial = serial();
    let mut network = Network::start(on_loopback());
    let first = send_transfer(&network.rpc(0), 0, 0);
    for rpc in network.rpcs(&ALL) {
        wait_receipt_within(&rpc, &first, FINALITY_TIMEOUT);
    }
    network.kill(2);
    network.kill(3);
    let live = [0, 1];
    let before = network.heights(&live);
    let waiting = send_transfer(&network.rpc(1), 0, 1);
    assert_finality_stopped(&network, &live, &before, &[&waiting]);

    network.start_validator(2);
    let live = [0, 1, 2];
    let receipts: Vec<Value> = network
        .rpcs(&live)
        .iter()
        .map(|rpc| wait_receipt_within(rpc, &waiting, RECOVERY_TIMEOUT))
        .collect();
    assert_eq!(receipts[0]["status"], json!("0x1"));
    for receipt in &receipts[1..] {
        assert_eq!(receipt, &receipts[0]);
    }
    network.assert_same_blocks(&live, quantity(&receipts[0]["blockNumber"]));
    network.assert_heights_never_went_back();
}

/// The JSON-RPC ports of validators `indices` (on a second host): the test keeps reading them
/// through a cut.
fn rpc_ports(network: &Network, indices: &[usize]) -> Vec<u16> {
    network
        .rpcs(indices)
        .iter()
        .map(|rpc| {
            let port = rpc.url().rsplit(':').next().expect("a port");
            port.parse().expect("a port number")
        })
        .collect()
}

/// Two validators on a second host cut off from the other two: neither side finalizes
/// anything, and transfers sent to either side meanwhile become final once the partition
/// heals, with all four agreeing on every block.
#[test]
fn a_two_two_partition_finalizes_nothing_until_it_heals() {
    let _serial = serial();
    let host = Host::create();
    let network = Network::start(split(&host, 2));
    // Across the namespaces, the four finalize.
    let first = send_transfer(&network.rpc(0), 0, 0);
    for rpc in network.rpcs(&ALL) {
        wait_receipt_within(&rpc, &first, FINALITY_TIMEOUT);
    }

    host.cut_keeping(&rpc_ports(&network, &[2, 3]));
    let before = network.heights(&ALL);
    let outside = send_transfer(&network.rpc(0), 0, 1);
    let inside = send_transfer(&network.rpc(3), 1, 0);
    assert_finality_stopped(&network, &ALL, &before, &[&outside, &inside]);

    host.heal();
    let mut top = 0;
    for rpc in network.rpcs(&ALL) {
        for hash in [&outside, &inside] {
            let receipt = wait_receipt_within(&rpc, hash, RECOVERY_TIMEOUT);
            assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
            top = top.max(quantity(&receipt["blockNumber"]));
        }
    }
    network.assert_same_blocks(&ALL, top);
    network.assert_heights_never_went_back();
}

/// One validator on a second host cut off from the other three: the three go on finalizing
/// (the one does not), and once the partition heals the one catches up and agrees.
#[test]
fn a_three_one_partition_keeps_the_three_finalizing_and_the_one_catches_up() {
    let _serial = serial();
    let host = Host::create();
    let network = Network::start(split(&host, 1));
    let first = send_transfer(&network.rpc(0), 0, 0);
    for rpc in network.rpcs(&ALL) {
        wait_receipt_within(&rpc, &first, FINALITY_TIMEOUT);
    }

    let alone = 3;
    let three = others(alone);
    host.cut_keeping(&rpc_ports(&network, &[alone]));
    let before = network.height(alone);
    let during = send_transfer(&network.rpc(1), 0, 1);
    let receipt = wait_receipt_within(&network.rpc(0), &during, RECOVERY_TIMEOUT);
    let top = network.heights(&three).into_iter().max().expect("three");
    network.wait_height(&three, top + 10, RECOVERY_TIMEOUT);
    // Meanwhile the one cut off finalized nothing new.
    assert!(
        network.height(alone) <= before + IN_FLIGHT_BLOCKS,
        "validator {alone} finalized alone"
    );
    assert_eq!(
        network
            .rpc(alone)
            .call("eth_getTransactionReceipt", json!([during])),
        Value::Null
    );

    host.heal();
    let top = network.heights(&three).into_iter().max().expect("three");
    network.wait_height(&[alone], top, RECOVERY_TIMEOUT);
    assert_eq!(
        wait_receipt_within(&network.rpc(alone), &during, FINALITY_TIMEOUT),
        receipt
    );
    network.assert_same_blocks(&ALL, top);
    network.assert_heights_never_went_back();
}
