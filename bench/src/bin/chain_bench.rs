//! Finalized Flow submissions per second on a BFT chain of four `zerog validator`s on loopback,
//! beside the same load against `zerog node --dev`, then how fast a validator killed with
//! SIGKILL catches up.
//!
//! The load: `--senders` derived keys, funded by transfers from the dev accounts before the
//! clock starts, each with its Flow submissions (one tiny file each, EIP-1559, fee = sectors ×
//! pricePerSector) signed beforehand. Submissions go out as JSON-RPC batches spread over the
//! validators' facades; a sender never has more than `--window` submissions beyond its last
//! final one (the validators' mempools hold 64 nonces per sender). A transaction is final when
//! its hash appears in a block of validator 0 (a validator's blocks are all finalized): its
//! latency is from the moment its batch was sent to the moment the poller saw that block.
//! CPU per transaction is each validator's utime + stime from `/proc/PID/stat` across the load.
//!
//! Catch-up: after the load, validator 3 is killed with SIGKILL, a second load goes through the
//! other three, then validator 3 restarts on its data folder; blocks per second is the heights
//! it executed from its restart until its head reached the others' head at that moment.
//!
//! ```sh
//! cargo build --release --bin zerog --bin chain-bench
//! target/release/chain-bench
//! ```

use alloy_primitives::{U256, keccak256};
use alloy_sol_types::SolCall;
use anyhow::{Context as _, bail};
use chain_lite::abi::market;
use clap::Parser;
use client::chain::Transaction;
use client::{Payer, wire};
use harness::{Process, Zerog};
use hdrhistogram::Histogram;
use merkle::file::FileTree;
use rand::{RngCore, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VALIDATORS: usize = 4;
/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;
/// How long one load may take before the bench gives up.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// A stream whose sent transactions made no progress this long sends them again.
const REBROADCAST_AFTER: Duration = Duration::from_secs(10);
/// Gas limit of one Flow submission.
const SUBMIT_GAS: u64 = 200_000;

#[derive(Parser)]
struct Args {
    /// Flow submissions of the measured load (split over the senders).
    #[arg(long, default_value_t = 20_000)]
    transactions: usize,
    /// Flow submissions sent through three validators while the fourth is down.
    #[arg(long, default_value_t = 8_000)]
    catchup_transactions: usize,
    /// Funded senders (derived keys), each with its own nonce stream.
    #[arg(long, default_value_t = 128)]
    senders: usize,
    /// Most submissions of one sender beyond its last final one.
    #[arg(long, default_value_t = 48)]
    window: u64,
    /// Most transactions in one JSON-RPC batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Seconds validator 3 stays down (at least: the three others' load runs first), the
    /// others finalizing empty blocks after their load.
    #[arg(long, default_value_t = 20)]
    down_seconds: u64,
    /// Submitting tasks per RPC endpoint (each owns some senders and has one batch in flight).
    #[arg(long, default_value_t = 4)]
    tasks_per_endpoint: usize,
    /// Skip the `zerog node --dev` side.
    #[arg(long)]
    no_dev: bool,
    #[arg(long, default_value = "./bench-data")]
    dir: PathBuf,
}

/// One JSON-RPC call.
async fn call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> anyhow::Result<Value> {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let mut answer: Value = http.post(url).json(&body).send().await?.json().await?;
    if let Some(error) = answer.get("error") {
        bail!("{method} at {url}: {error}");
    }
    Ok(answer["result"].take())
}

async fn block_number(http: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    Ok(wire::read_u64(
        &call(http, url, "eth_blockNumber", json!([])).await?,
        "block number",
    )?)
}

/// A signed transaction: its raw hex for `eth_sendRawTransaction` and its hash as blocks list it.
#[derive(Clone)]
struct Signed {
    raw: String,
    hash: String,
}

fn signed(raw: Vec<u8>) -> Signed {
    Signed {
        hash: format!("0x{}", hex::encode(keccak256(&raw))),
        raw: format!("0x{}", hex::encode(raw)),
    }
}

/// One sender's transactions, in nonce order.
struct Stream {
    /// The sender, 0x-hex.
    address: String,
    transactions: Vec<Signed>,
}

/// What one load measured.
struct Measured {
    transactions: usize,
    elapsed: Duration,
    blocks: u64,
    /// Submit-to-final latency, microseconds.
    latency: Histogram<u64>,
    /// Submissions sent again: refused as too far ahead of a validator's view of the sender, or
    /// rebroadcast after no progress.
    resent: u64,
    /// utime + stime seconds of each measured process across the load.
    cpu_seconds: Vec<f64>,
    /// utime + stime seconds of this process (the load generator) across the load.
    generator_cpu_seconds: f64,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.transactions as f64 / self.elapsed.as_secs_f64()
    }

    fn millis(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// CPU milliseconds per transaction of each measured process.
    fn cpu_ms_per_transaction(&self) -> Vec<f64> {
        self.cpu_seconds
            .iter()
            .map(|seconds| seconds * 1000.0 / self.transactions as f64)
            .collect()
    }
}

/// utime + stime of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("malformed {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the name.
    let ticks = |index: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(index)
            .with_context(|| format!("short {path}"))?
            .parse()?)
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / TICKS_PER_SECOND)
}

/// Shared between the submitters and the poller of final blocks.
struct Progress {
    /// Per stream: how many of its transactions are final.
    finalized: Vec<u64>,
    /// Sent and not yet final: hash → (stream, when first sent).
    pending: HashMap<String, (usize, Instant)>,
    done: usize,
}

/// Sends `streams` through `urls` (stream i's transactions through one endpoint, in nonce
/// order, at most `window` beyond its last final one) and waits until every transaction is in
/// a block of `observer`. `pids` are the processes whose CPU time is measured.
async fn drive(
    http: &reqwest::Client,
    urls: &[String],
    observer: &str,
    streams: &[Stream],
    window: u64,
    args: &Args,
    pids: &[u32],
) -> anyhow::Result<Measured> {
    let total: usize = streams.iter().map(|stream| stream.transactions.len()).sum();
    let progress = Arc::new(Mutex::new(Progress {
        finalized: vec![0; streams.len()],
        pending: HashMap::with_capacity(total),
        done: 0,
    }));
    let (advanced, watch) = tokio::sync::watch::channel(0u64);
    let first_block = block_number(http, observer).await? + 1;
    let cpu_before = pids
        .iter()
        .map(|pid| cpu_seconds(*pid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let generator_before = cpu_seconds(std::process::id())?;
    let started = Instant::now();

    let tasks_count = (urls.len() * args.tasks_per_endpoint).min(streams.len());
    let mut tasks = Vec::new();
    for task in 0..tasks_count {
        let owned: Vec<(usize, Vec<Signed>)> = streams
            .iter()
            .enumerate()
            .filter(|(index, _)| index % tasks_count == task)
            .map(|(index, stream)| (index, stream.transactions.clone()))
            .collect();
        let urls = urls.to_vec();
        let (http, progress, mut watch, batch) =
            (http.clone(), progress.clone(), watch.clone(), args.batch);
        tasks.push(tokio::spawn(async move {
            let mut sent = vec![0usize; owned.len()];
            // Per owned stream: its final count when last seen, and since when.
            let mut seen: Vec<(u64, Instant)> = vec![(0, Instant::now()); owned.len()];
            // Per owned stream: the endpoint it sends to (the next one after a rebroadcast).
            let mut endpoint = vec![task % urls.len(); owned.len()];
            let mut resent = 0u64;
            loop {
                // What each owned stream may send now.
                let mut chosen: Vec<(usize, usize)> = Vec::new();
                {
                    let mut progress = progress.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    let now = Instant::now();
                    for (slot, (stream, transactions)) in owned.iter().enumerate() {
                        let allowed = (progress.finalized[*stream] as usize + window as usize)
                            .min(transactions.len());
                        while sent[slot] < allowed && chosen.len() < batch {
                            let transaction = &transactions[sent[slot]];
                            progress
                                .pending
                                .entry(transaction.hash.clone())
                                .or_insert((*stream, now));
                            chosen.push((slot, sent[slot]));
                            sent[slot] += 1;
                        }
                    }
                }
                if chosen.is_empty() {
                    if owned
                        .iter()
                        .zip(&sent)
                        .all(|((_, transactions), sent)| *sent == transactions.len())
                    {
                        return anyhow::Ok(resent);
                    }
                    let _ = tokio::time::timeout(Duration::from_millis(50), watch.changed()).await;
                    // A wallet's rebroadcast: a stream whose sent transactions made no progress
                    // for a while sends them again, to the next endpoint (one a validator
                    // dropped stays dropped, and one it holds but never proposes stays there).
                    let progress = progress.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    for (slot, (stream, _)) in owned.iter().enumerate() {
                        let finalized = progress.finalized[*stream];
                        if finalized != seen[slot].0 {
                            seen[slot] = (finalized, Instant::now());
                        } else if (finalized as usize) < sent[slot]
                            && seen[slot].1.elapsed() > REBROADCAST_AFTER
                        {
                            resent += (sent[slot] - finalized as usize) as u64;
                            sent[slot] = finalized as usize;
                            endpoint[slot] = (endpoint[slot] + 1) % urls.len();
                            seen[slot].1 = Instant::now();
                        }
                    }
                    continue;
                }
                let mut groups: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
                for (slot, index) in chosen {
                    groups.entry(endpoint[slot]).or_default().push((slot, index));
                }
                for (target, chosen) in groups {
                    let url = &urls[target];
                    let body: Vec<Value> = chosen
                        .iter()
                        .enumerate()
                        .map(|(id, (slot, index))| json!({ "jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction", "params": [owned[*slot].1[*index].raw] }))
                        .collect();
                    let answers: Vec<Value> =
                        http.post(url).json(&body).send().await?.json().await?;
                    for answer in &answers {
                        let Some(error) = answer.get("error") else {
                            continue;
                        };
                        let message = error["message"].as_str().unwrap_or_default();
                        if message.contains("already known") || message.contains("nonce too low") {
                            continue;
                        }
                        if !message.contains("ahead of the account nonce") {
                            bail!("a transaction was refused by {url}: {error}");
                        }
                        // This validator has not executed as far as the poller: send it again.
                        let id = answer["id"].as_u64().context("an answer without id")? as usize;
                        let (slot, index) = *chosen.get(id).context("an unknown answer id")?;
                        sent[slot] = sent[slot].min(index);
                        resent += 1;
                    }
                }
            }
        }));
    }

    // The poller: every new block of the observer, its transactions final.
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut next = first_block;
    let mut last_block_at = Instant::now();
    while progress
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .done
        < total
    {
        if started.elapsed() > LOAD_TIMEOUT {
            let (done, pending, stuck) = {
                let progress = progress.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                let stuck = progress.pending.values().map(|(stream, _)| *stream).min();
                (progress.done, progress.pending.len(), stuck)
            };
            // Each validator's view of one stuck sender: account nonce and pending nonce.
            let mut views = Vec::new();
            if let Some(stream) = stuck {
                let address = &streams[stream].address;
                for url in urls {
                    let latest = call(
                        http,
                        url,
                        "eth_getTransactionCount",
                        json!([address, "latest"]),
                    )
                    .await?;
                    let pending = call(
                        http,
                        url,
                        "eth_getTransactionCount",
                        json!([address, "pending"]),
                    )
                    .await?;
                    views.push(format!("{url}: latest {latest} pending {pending}"));
                }
            }
            bail!(
                "the load did not finish within {LOAD_TIMEOUT:?}: {done} of {total} final, {pending} sent and not final; {observer} at height {}, its last new block {:.1} s ago; a stuck sender's nonces: {}",
                next - 1,
                last_block_at.elapsed().as_secs_f64(),
                views.join(", ")
            );
        }
        let head = block_number(http, observer).await?;
        if head < next {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        let body: Vec<Value> = (next..=head)
            .map(|number| json!({ "jsonrpc": "2.0", "id": number, "method": "eth_getBlockByNumber", "params": [format!("0x{number:x}"), false] }))
            .collect();
        let blocks: Vec<Value> = http.post(observer).json(&body).send().await?.json().await?;
        let seen = Instant::now();
        {
            let mut progress = progress.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            for block in &blocks {
                let hashes = block["result"]["transactions"]
                    .as_array()
                    .with_context(|| format!("a block without transactions: {block}"))?;
                for hash in hashes {
                    let hash = hash.as_str().unwrap_or_default().to_ascii_lowercase();
                    if let Some((stream, sent)) = progress.pending.remove(&hash) {
                        latency.record((seen - sent).as_micros().max(1) as u64)?;
                        progress.finalized[stream] += 1;
                        progress.done += 1;
                    }
                }
            }
        }
        next = head + 1;
        last_block_at = Instant::now();
        let _ = advanced.send(head);
    }
    let elapsed = started.elapsed();
    let cpu_after = pids
        .iter()
        .map(|pid| cpu_seconds(*pid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let generator_cpu_seconds = cpu_seconds(std::process::id())? - generator_before;
    let mut resent = 0;
    for task in tasks {
        resent += task.await??;
    }
    Ok(Measured {
        transactions: total,
        elapsed,
        blocks: next - first_block,
        latency,
        resent,
        cpu_seconds: cpu_after
            .iter()
            .zip(&cpu_before)
            .map(|(after, before)| after - before)
            .collect(),
        generator_cpu_seconds,
    })
}

/// Transactions in the blocks `from..=to` of `url`.
async fn transactions_in(
    http: &reqwest::Client,
    url: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<usize> {
    let mut count = 0;
    for number in from..=to {
        let block = call(
            http,
            url,
            "eth_getBlockByNumber",
            json!([format!("0x{number:x}"), false]),
        )
        .await?;
        count += block["transactions"].as_array().map_or(0, Vec::len);
    }
    Ok(count)
}

/// The benchmark's senders: keys derived from a fixed seed.
fn sender_keys(count: usize) -> anyhow::Result<Vec<Payer>> {
    (0..count)
        .map(|index| {
            let key = keccak256(format!("zerog chain-bench sender {index}"));
            Ok(Payer::from_hex(&format!("0x{}", hex::encode(key)))?)
        })
        .collect()
}

/// Chain parameters every signed transaction depends on.
struct Prices {
    chain_id: u64,
    gas_price: u128,
    price_per_sector: U256,
}

async fn read_prices(http: &reqwest::Client, url: &str) -> anyhow::Result<Prices> {
    let chain_id = wire::read_u64(
        &call(http, url, "eth_chainId", json!([])).await?,
        "chain id",
    )?;
    let gas_price = wire::read_quantity(
        &call(http, url, "eth_gasPrice", json!([])).await?,
        "gas price",
    )?;
    let data = format!(
        "0x{}",
        hex::encode(market::pricePerSectorCall {}.abi_encode())
    );
    let to = format!("0x{}", hex::encode(chain_lite::MARKET_ADDRESS));
    let word = call(
        http,
        url,
        "eth_call",
        json!([{ "to": to, "data": data }, "latest"]),
    )
    .await?;
    let word = hex::decode(word.as_str().unwrap_or_default().trim_start_matches("0x"))?;
    let price_per_sector = market::pricePerSectorCall::abi_decode_returns(&word)?;
    Ok(Prices {
        chain_id,
        gas_price,
        price_per_sector,
    })
}

/// `per_sender` Flow submissions of each sender, nonces from `first_nonce`, one 200-byte file each.
fn sign_submissions(
    keys: &[Payer],
    prices: &Prices,
    first_nonce: u64,
    per_sender: usize,
    seed: u64,
) -> anyhow::Result<Vec<Stream>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    keys.iter()
        .map(|key| {
            let transactions = (0..per_sender as u64)
                .map(|offset| {
                    let mut content = [0u8; 200];
                    rng.fill_bytes(&mut content);
                    let tree = FileTree::from_bytes(&content)?;
                    let submission = chain_lite::Submission {
                        length: content.len() as u64,
                        tags: Vec::new(),
                        nodes: tree.nodes(),
                    };
                    let transaction = Transaction {
                        nonce: first_nonce + offset,
                        gas_limit: SUBMIT_GAS,
                        max_fee_per_gas: prices.gas_price,
                        to: chain_lite::FLOW_ADDRESS,
                        value: prices.price_per_sector,
                        input: chain_lite::abi::submit_calldata(&submission, key.address()),
                    };
                    Ok(signed(key.sign(prices.chain_id, &transaction)?))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(Stream {
                address: key.address_hex(),
                transactions,
            })
        })
        .collect()
}

/// Funds every sender with `amount` wei from the dev accounts (on a fresh chain) and waits
/// until the transfers are final.
async fn fund(
    http: &reqwest::Client,
    urls: &[String],
    observer: &str,
    keys: &[Payer],
    amount: U256,
    prices: &Prices,
    args: &Args,
) -> anyhow::Result<()> {
    let dev: Vec<Payer> = chain_lite::DEV_ACCOUNTS
        .iter()
        .map(|account| Payer::from_hex(account.private_key))
        .collect::<Result<_, _>>()?;
    let mut streams: Vec<Stream> = dev
        .iter()
        .map(|payer| Stream {
            address: payer.address_hex(),
            transactions: Vec::new(),
        })
        .collect();
    for (index, key) in keys.iter().enumerate() {
        let funder = index % dev.len();
        let transaction = Transaction {
            nonce: streams[funder].transactions.len() as u64,
            gas_limit: 21_000,
            max_fee_per_gas: prices.gas_price,
            to: key.address(),
            value: amount,
            input: Vec::new(),
        };
        streams[funder]
            .transactions
            .push(signed(dev[funder].sign(prices.chain_id, &transaction)?));
    }
    for payer in &dev {
        let nonce = wire::read_u64(
            &call(
                http,
                observer,
                "eth_getTransactionCount",
                json!([payer.address_hex(), "latest"]),
            )
            .await?,
            "nonce",
        )?;
        if nonce != 0 {
            bail!(
                "dev account {} has sent before: the chain is not fresh",
                payer.address_hex()
            );
        }
    }
    drive(http, urls, observer, &streams, args.window, args, &[]).await?;
    Ok(())
}

/// Free loopback ports: bound, then released for the validators to take.
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect()
}

/// `validator-init` for four in `network`, each validator's p2p address on a free port.
fn init_network(zerog: &Zerog, network: &Path) -> anyhow::Result<()> {
    let output = zerog
        .command()
        .args([
            "validator-init",
            "--count",
            &VALIDATORS.to_string(),
            "--dir",
        ])
        .arg(network)
        .output()?;
    if !output.status.success() {
        bail!(
            "zerog validator-init failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let genesis = network.join("genesis.json");
    let mut file: Value = serde_json::from_slice(&std::fs::read(&genesis)?)?;
    let validators = file["validators"]
        .as_array_mut()
        .context("genesis.json without validators")?;
    for (validator, port) in validators.iter_mut().zip(free_ports(VALIDATORS)?) {
        validator["p2p"] = json!(format!("127.0.0.1:{port}"));
    }
    std::fs::write(&genesis, serde_json::to_vec_pretty(&file)?)?;
    Ok(())
}

/// Starts (or restarts, on its data folder) validator `index` of `network`, its log in the
/// network folder.
fn start_validator(zerog: &Zerog, network: &Path, index: usize) -> anyhow::Result<Process> {
    let folder = network.join(format!("validator-{index}"));
    Ok(zerog
        .validator(
            &network.join("genesis.json"),
            &folder.join("key"),
            &folder.join("data"),
        )
        .stderr_to(&network.join(format!("validator-{index}.log")))
        .start()?)
}

fn print_load(name: &str, measured: &Measured) {
    let cpu: Vec<String> = measured
        .cpu_ms_per_transaction()
        .iter()
        .map(|ms| format!("{ms:.3}"))
        .collect();
    println!(
        "| {name} | {} in {:.2} s, {} blocks | **{:.0}/s** | {:.0} / {:.0} ms | {} ms | {:.3} ms | {} |",
        measured.transactions,
        measured.elapsed.as_secs_f64(),
        measured.blocks,
        measured.per_second(),
        measured.millis(0.5),
        measured.millis(0.99),
        cpu.join(", "),
        measured.generator_cpu_seconds * 1000.0 / measured.transactions as f64,
        measured.resent,
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.window == 0 || args.window > 64 {
        bail!("--window must be 1 to 64 (the validators' mempools hold 64 nonces per sender)");
    }
    if args.senders == 0 {
        bail!("--senders must be at least 1");
    }
    let zerog = Zerog::locate()?;
    let http = reqwest::Client::new();
    let dir = args.dir.join("chain-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let keys = sender_keys(args.senders)?;
    let per_sender = args.transactions.div_ceil(args.senders);
    let catchup_per_sender = args.catchup_transactions.div_ceil(args.senders);

    // The validators first: their prices sign every submission (the dev chain's must match).
    let network = dir.join("network");
    init_network(&zerog, &network)?;
    let mut validators = (0..VALIDATORS)
        .map(|index| start_validator(&zerog, &network, index))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let urls = validators
        .iter()
        .map(|process| Ok(process.rpc_url()?))
        .collect::<anyhow::Result<Vec<String>>>()?;
    let prices = read_prices(&http, &urls[0]).await?;
    let started = Instant::now();
    let streams = sign_submissions(&keys, &prices, 0, per_sender, 5)?;
    let catchup_streams =
        sign_submissions(&keys, &prices, per_sender as u64, catchup_per_sender, 6)?;
    let signing = started.elapsed();
    let cost = (prices.price_per_sector + U256::from(prices.gas_price) * U256::from(SUBMIT_GAS))
        * U256::from(per_sender + catchup_per_sender);
    let amount = cost * U256::from(2u64);
    if amount * U256::from(args.senders) > chain_lite::DEV_BALANCE_WEI {
        bail!("the dev accounts cannot fund {} senders", args.senders);
    }

    let observer = urls[0].clone();
    fund(&http, &urls, &observer, &keys, amount, &prices, &args).await?;
    let pids: Vec<u32> = validators.iter().map(Process::id).collect();
    let bft = drive(&http, &urls, &observer, &streams, args.window, &args, &pids).await?;
    eprintln!(
        "4 validators: {:.0}/s, p50 {:.0} ms, p99 {:.0} ms",
        bft.per_second(),
        bft.millis(0.5),
        bft.millis(0.99)
    );

    // Catch-up: validator 3 down while the others finalize a load, then restarted.
    let victim = VALIDATORS - 1;
    let victim_height = block_number(&http, &urls[victim]).await?;
    validators.remove(victim).kill9()?;
    let down = Instant::now();
    let three = drive(
        &http,
        &urls[..victim],
        &observer,
        &catchup_streams,
        args.window,
        &args,
        &pids[..victim],
    )
    .await?;
    let down_for = Duration::from_secs(args.down_seconds);
    if down.elapsed() < down_for {
        tokio::time::sleep(down_for - down.elapsed()).await;
    }
    let downtime = down.elapsed();
    let restarting = Instant::now();
    let target = block_number(&http, &observer).await?;
    let restarted = start_validator(&zerog, &network, victim)?;
    let ready = restarting.elapsed();
    let restarted_url = restarted.rpc_url()?;
    let height_at_ready = block_number(&http, &restarted_url).await?;
    loop {
        if block_number(&http, &restarted_url).await? >= target {
            break;
        }
        if restarting.elapsed() > LOAD_TIMEOUT {
            bail!("the restarted validator did not reach height {target} within {LOAD_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let caught_up = restarting.elapsed();
    let missed = target - victim_height;
    let missed_transactions = transactions_in(&http, &observer, victim_height + 1, target).await?;
    drop(restarted);
    drop(validators);

    // The same load against `zerog node --dev`.
    let dev = if args.no_dev {
        None
    } else {
        let node_dir = dir.join("dev-node");
        let node = bench::dev_node(&node_dir, None)?.start()?;
        let url = node.rpc_url()?;
        let dev_prices = read_prices(&http, &url).await?;
        if (
            dev_prices.chain_id,
            dev_prices.gas_price,
            dev_prices.price_per_sector,
        ) != (prices.chain_id, prices.gas_price, prices.price_per_sector)
        {
            bail!(
                "the dev chain's prices differ from the validators': the signed load does not fit"
            );
        }
        let urls = vec![url.clone()];
        fund(&http, &urls, &url, &keys, amount, &prices, &args).await?;
        let measured = drive(
            &http,
            &urls,
            &url,
            &streams,
            args.window,
            &args,
            &[node.id()],
        )
        .await?;
        Some(measured)
    };

    let raw_bytes = streams
        .first()
        .and_then(|stream| stream.transactions.first())
        .map_or(0, |transaction| (transaction.raw.len() - 2) / 2);
    println!(
        "Flow submissions of {raw_bytes} bytes: {} from {} senders ({per_sender} each, at most {} beyond the last final one), batches of up to {}, {} submitting tasks per endpoint; signing {:.2} s before the clock",
        per_sender * args.senders,
        args.senders,
        args.window,
        args.batch,
        args.tasks_per_endpoint,
        signing.as_secs_f64()
    );
    println!();
    println!(
        "| chain | submissions | final per second | p50 / p99 submit-to-final | CPU per tx, each process | load generator CPU per tx | resent |"
    );
    println!("|---|---|---|---|---|---|---|");
    print_load("4 validators", &bft);
    print_load("3 of 4 validators (one down)", &three);
    if let Some(dev) = &dev {
        print_load("`node --dev`", dev);
    }
    println!();
    if let Some(dev) = &dev {
        println!(
            "4 validators / `--dev`: {:.2}x submissions per second, {:.2}x p50 latency",
            bft.per_second() / dev.per_second(),
            bft.millis(0.5) / dev.millis(0.5)
        );
    }
    let after_ready = caught_up.saturating_sub(ready).as_secs_f64().max(0.001);
    println!(
        "catch-up: validator {victim} down {:.1} s ({missed} blocks, {missed_transactions} transactions behind), restarted: ready in {:.2} s at height {height_at_ready}, reached height {target} after {:.2} s: **{:.0} blocks/s** ({:.0} transactions/s) from the restart, {:.0} blocks/s after ready",
        downtime.as_secs_f64(),
        ready.as_secs_f64(),
        caught_up.as_secs_f64(),
        missed as f64 / caught_up.as_secs_f64(),
        missed_transactions as f64 / caught_up.as_secs_f64(),
        target.saturating_sub(height_at_ready) as f64 / after_ready,
    );
    println!(
        "load average at the end (1/5/15 min, every process of the machine): {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}
