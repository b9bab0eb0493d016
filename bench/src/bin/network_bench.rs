//! Storage network benchmarks, each side by side with its baseline in one run, reported as
//! ratios:
//!
//! - catch-up: an empty node pulling a file from one peer (repair: verified pulls through the
//!   normal write path) vs the same file uploaded to that peer directly by the CLI's upload
//!   path; the tree is built before either clock starts.
//! - sharding overhead: the same file uploaded to two storage nodes of half the flow each
//!   (each segment to its owner) vs to one node of the whole flow, both behind the same
//!   chain-only node with the same poll interval, timed from the first segment sent to the
//!   last acknowledged.
//!
//! ```sh
//! cargo build --release --bin zerog --bin network-bench
//! target/release/network-bench --dir /path/on/the/disk
//! ```
//! Every process is a real `zerog` on loopback; the binary is taken from beside this one.

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::StreamExt;
use harness::{Process, Zerog};
use merkle::file::FileTree;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use types::ShardConfig;

#[derive(Parser)]
struct Args {
    /// Size of the file the empty node catches up on, in MiB.
    #[arg(long, default_value_t = 2048)]
    catchup_mib: usize,
    /// Size of the file of the sharding comparison, in MiB.
    #[arg(long, default_value_t = 1024)]
    sharding_mib: usize,
    /// Folder on the disk under test (every node's data goes here).
    #[arg(long, default_value = "./bench-data")]
    dir: PathBuf,
    /// How often storage nodes poll the chain, in milliseconds.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Segments per upload request (sharding comparison).
    #[arg(long, default_value_t = 4)]
    segments_per_request: usize,
    /// Upload requests in flight (sharding comparison).
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Data-plane shards of each half-flow node in the sharding comparison (default: half the
    /// cores, so the two nodes together have one per core, as the whole-flow node does).
    #[arg(long)]
    half_node_shards: Option<usize>,
    /// Run only `catchup` or `sharding`.
    #[arg(long)]
    only: Option<String>,
}

/// How long a node gets to finalize what it was sent or is pulling.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(1800);

fn mbps(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e6
}

/// A chain-only dev node: the chain of the network, storing nothing.
fn chain_node(dir: &Path) -> anyhow::Result<Process> {
    Ok(Zerog::locate()?
        .node(dir)
        .args(["--dev", "--chain-only", "--peer-probe-ms", "200"])
        .start()?)
}

/// A storage node of `position` following `chain_url`, registered with dev account `account`.
/// Repair waits `grace_ms` before pulling a file; the scrub is off (it would read beside the
/// measured work).
fn storage_node(
    dir: &Path,
    chain_url: &str,
    poll_ms: u64,
    position: &str,
    account: usize,
    grace_ms: u64,
    shards: Option<usize>,
) -> anyhow::Result<Process> {
    let mut launch = Zerog::locate()?.node(dir);
    if let Some(shards) = shards {
        launch = launch.args(["--shards", &shards.to_string()]);
    }
    Ok(launch
        .args([
            "--chain-rpc",
            chain_url,
            "--chain-poll-ms",
            &poll_ms.to_string(),
            "--shard-position",
            position,
            "--chain-key",
            chain_lite::DEV_ACCOUNTS[account].private_key,
            "--peer-probe-ms",
            "200",
            "--repair-interval-ms",
            "50",
            "--repair-grace-ms",
            &grace_ms.to_string(),
            "--scrub-max-mbps",
            "0",
        ])
        .start()?)
}

/// Waits until `rpc`'s indexer lists `count` storage nodes.
async fn wait_listed(rpc: &client::Client, count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let nodes = rpc.call("indexer_getShardedNodes", json!([])).await?;
        if nodes["trusted"].as_array().map(Vec::len) == Some(count) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the indexer never listed {count} nodes: {nodes}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `rpc` knows tx `tx_seq` (`finalized: false` is enough) or has finalized it.
async fn wait_for(rpc: &client::Client, tx_seq: u64, finalized: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let info = rpc.call("zgs_getFileInfoByTxSeq", json!([tx_seq])).await?;
        if !info.is_null() && (!finalized || info["finalized"] == json!(true)) {
            return Ok(());
        }
        if started.elapsed() > FINALIZE_TIMEOUT {
            bail!("tx {tx_seq} not there after {FINALIZE_TIMEOUT:?}: {info}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Downloads a few segments with proofs from `rpc` and checks them against `tree` and `data`.
async fn spot_check(
    rpc: &client::Client,
    tx_seq: u64,
    tree: &FileTree,
    data: &[u8],
    position: ShardConfig,
    first_flow_segment: u64,
) -> anyhow::Result<()> {
    let layout = *tree.layout();
    let step = (layout.data_segments / 16).max(1);
    for index in (0..layout.data_segments).step_by(step as usize) {
        if !position.owns(types::FlowSegmentIndex(first_flow_segment + index)) {
            continue;
        }
        let answer = rpc
            .call(
                "zgs_downloadSegmentWithProofByTxSeq",
                json!([tx_seq, index]),
            )
            .await?;
        let bytes = harness::verified_segment(&answer, &tree.root(), data.len() as u64, index)
            .map_err(anyhow::Error::msg)?;
        let start = index as usize * types::SEGMENT_BYTES;
        let length = layout.segment_data_bytes(index) as usize;
        if bytes[..length] != data[start..start + length] {
            bail!("segment {index} differs from what was uploaded");
        }
    }
    Ok(())
}

struct CatchUp {
    /// Two direct uploads, one before and one after the catch-up.
    direct_seconds: [f64; 2],
    catchup_seconds: f64,
    pulled_bytes: f64,
}

/// The CLI's upload of the file to one node; an empty node catching up from it; the CLI's
/// upload again, to a fresh node with the others gone (so the order of the runs favours
/// neither side).
async fn catch_up(args: &Args, dir: &Path) -> anyhow::Result<CatchUp> {
    let size = args.catchup_mib << 20;
    let data = bytes::Bytes::from(harness::random_bytes(71, size));
    let tree = FileTree::from_bytes(&data)?;
    let chain = chain_node(&dir.join("chain"))?;
    let chain_url = chain.rpc_url()?;
    let rpc = client::Client::new(&chain_url)?;
    let payer = client::Payer::from_hex(chain_lite::DEV_ACCOUNTS[2].private_key)?;
    let node = |name: &str, account| {
        storage_node(
            &dir.join(name),
            &chain_url,
            args.poll_ms,
            "0/1",
            account,
            0,
            None,
        )
    };
    let direct = |_| async {
        let started = Instant::now();
        let uploaded =
            client::upload_with_tree(&rpc, &data, &tree, &payer, &client::NoProgress).await?;
        anyhow::Ok((started.elapsed().as_secs_f64(), uploaded.file.tx_seq))
    };

    let peer = node("peer", 0)?;
    wait_listed(&rpc, 1).await?;
    let (first_direct, tx_seq) = direct(()).await?;

    let started = Instant::now();
    let empty = node("empty", 1)?;
    let empty_rpc = client::Client::new(&empty.rpc_url()?)?;
    wait_for(&empty_rpc, tx_seq, true).await?;
    let catchup_seconds = started.elapsed().as_secs_f64();
    let metrics = reqwest::get(format!("{}/metrics", empty.rpc_url()?))
        .await?
        .text()
        .await?;
    let pulled_bytes = metrics
        .lines()
        .find_map(|line| line.strip_prefix("zerog_repair_pulled_bytes_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .context("the empty node reports its pulled bytes")?;
    spot_check(&empty_rpc, tx_seq, &tree, &data, ShardConfig::ALL, 0).await?;
    for (process, name) in [(empty, "empty"), (peer, "peer")] {
        process.stop()?;
        std::fs::remove_dir_all(dir.join(name))?;
    }

    let fresh = node("fresh", 1)?;
    wait_listed(&rpc, 1).await?;
    let (second_direct, _) = direct(()).await?;
    fresh.stop()?;
    chain.stop()?;
    Ok(CatchUp {
        direct_seconds: [first_direct, second_direct],
        catchup_seconds,
        pulled_bytes,
    })
}

/// Submits `tree` on the chain (dev shortcut) and returns its tx seq and first flow segment.
async fn submit(rpc: &client::Client, tree: &FileTree) -> anyhow::Result<(u64, u64)> {
    let receipt = rpc
        .call(
            "zerog_submit",
            json!([{ "length": tree.size_bytes(), "tags": "0x", "nodes": tree.nodes() }]),
        )
        .await?;
    let tx_seq = receipt["txSeq"].as_u64().context("txSeq")?;
    let info = rpc.call("zgs_getFileInfoByTxSeq", json!([tx_seq])).await?;
    let start = info["tx"]["startEntryIndex"]
        .as_u64()
        .context("startEntryIndex")?;
    Ok((tx_seq, start / types::SEGMENT_CHUNKS as u64))
}

/// Uploads `tree` to `nodes` (each gets the segments its shard owns) with `parallel` requests
/// in flight over all of them; request bodies are encoded first. Seconds from the first
/// segment sent to the last acknowledged.
async fn timed_upload(
    args: &Args,
    nodes: &[(client::Client, ShardConfig)],
    tree: &FileTree,
    data: &[u8],
    tx_seq: u64,
    first_flow_segment: u64,
) -> anyhow::Result<f64> {
    let mut per_node: Vec<Vec<(usize, String)>> = Vec::new();
    for (n, (_, position)) in nodes.iter().enumerate() {
        let owned: Vec<u64> = (0..tree.layout().data_segments)
            .filter(|index| position.owns(types::FlowSegmentIndex(first_flow_segment + index)))
            .collect();
        per_node.push(
            owned
                .chunks(args.segments_per_request)
                .map(|chunk| {
                    let segments: Vec<Value> = chunk
                        .iter()
                        .map(|&index| harness::segment_json(tree, data, index))
                        .collect();
                    (n, json!([segments, tx_seq]).to_string())
                })
                .collect(),
        );
    }
    // Interleaved, so every node has work from the start.
    let longest = per_node.iter().map(Vec::len).max().unwrap_or(0);
    let mut bodies = Vec::new();
    for at in 0..longest {
        for list in &mut per_node {
            if at < list.len() {
                bodies.push(std::mem::take(&mut list[at]));
            }
        }
    }
    let started = Instant::now();
    let mut uploads = futures_util::stream::iter(bodies)
        .map(|(n, params)| nodes[n].0.call_raw("zgs_uploadSegmentsByTxSeq", params))
        .buffer_unordered(args.parallel);
    while let Some(result) = uploads.next().await {
        result?;
    }
    Ok(started.elapsed().as_secs_f64())
}

struct Sharding {
    /// Each side twice, in the order whole, halves, halves, whole.
    whole_seconds: [f64; 2],
    halves_seconds: [f64; 2],
}

/// One upload of the file to nodes of `positions` (fresh data folders, the file submitted
/// anew), each node with `shards` data-plane shards; the seconds it took.
async fn sharded_upload(
    args: &Args,
    dir: &Path,
    chain_url: &str,
    positions: &[&str],
    shards: Option<usize>,
    tree: &FileTree,
    data: &[u8],
) -> anyhow::Result<f64> {
    // Repair stays out of the measured uploads.
    let quiet = 3_600_000;
    let mut nodes = Vec::new();
    let mut processes = Vec::new();
    for (n, position) in positions.iter().enumerate() {
        let process = storage_node(
            &dir.join(format!("node-{n}")),
            chain_url,
            args.poll_ms,
            position,
            n,
            quiet,
            shards,
        )?;
        nodes.push((
            client::Client::new(&process.rpc_url()?)?,
            position.parse::<ShardConfig>()?,
        ));
        processes.push(process);
    }
    let (tx_seq, first) = submit(&client::Client::new(chain_url)?, tree).await?;
    for (node, _) in &nodes {
        wait_for(node, tx_seq, false).await?;
    }
    let seconds = timed_upload(args, &nodes, tree, data, tx_seq, first).await?;
    for (node, position) in &nodes {
        wait_for(node, tx_seq, true).await?;
        spot_check(node, tx_seq, tree, data, *position, first).await?;
    }
    for process in processes {
        process.stop()?;
    }
    std::fs::remove_dir_all(dir)?;
    Ok(seconds)
}

/// The same file to one node of the whole flow and to two nodes of half the flow each, both
/// twice (whole, halves, halves, whole), behind one chain-only node.
async fn sharding(args: &Args, dir: &Path) -> anyhow::Result<Sharding> {
    let size = args.sharding_mib << 20;
    let data = harness::random_bytes(72, size);
    let tree = FileTree::from_bytes(&data)?;
    let chain = chain_node(&dir.join("chain"))?;
    let chain_url = chain.rpc_url()?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let half_shards = args.half_node_shards.unwrap_or((cores / 2).max(1));
    let mut whole_seconds = [0.0; 2];
    let mut halves_seconds = [0.0; 2];
    for (round, halves_first) in [false, true].into_iter().enumerate() {
        let mut sides = [(false, None), (true, Some(half_shards))];
        if halves_first {
            sides.reverse();
        }
        for (halves, shards) in sides {
            let positions: &[&str] = if halves { &["0/2", "1/2"] } else { &["0/1"] };
            let run_dir = dir.join(format!("run-{round}-{halves}"));
            let seconds =
                sharded_upload(args, &run_dir, &chain_url, positions, shards, &tree, &data).await?;
            if halves {
                halves_seconds[round] = seconds;
            } else {
                whole_seconds[round] = seconds;
            }
        }
    }
    chain.stop()?;
    Ok(Sharding {
        whole_seconds,
        halves_seconds,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run = |name: &str| args.only.as_deref().is_none_or(|only| only == name);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!("| measurement | value |");
    println!("|---|---|");
    println!("| machine | {cores} cores; every process on loopback |");
    if run("catchup") {
        let dir = args.dir.join("catchup");
        let _ = std::fs::remove_dir_all(&dir);
        let result = catch_up(&args, &dir).await?;
        let size = args.catchup_mib << 20;
        let [before, after] = result.direct_seconds.map(|seconds| mbps(size, seconds));
        let direct = (before + after) / 2.0;
        let pulled = mbps(size, result.catchup_seconds);
        println!(
            "| direct upload by the CLI's path, {} MiB, to one node (before, after) | {before:.0}, {after:.0} MB/s |",
            args.catchup_mib
        );
        println!(
            "| catch-up of an empty node from that node | {pulled:.0} MB/s ({:.2} s, {:.0} MB pulled) |",
            result.catchup_seconds,
            result.pulled_bytes / 1e6
        );
        println!(
            "| **catch-up / mean direct upload** | **{:.2}x** (target 0.7x) |",
            pulled / direct
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    if run("sharding") {
        let dir = args.dir.join("sharding");
        let _ = std::fs::remove_dir_all(&dir);
        let result = sharding(&args, &dir).await?;
        let size = args.sharding_mib << 20;
        let whole = result.whole_seconds.map(|seconds| mbps(size, seconds));
        let halves = result.halves_seconds.map(|seconds| mbps(size, seconds));
        println!(
            "| 1 node x all of the flow, {} MiB, chain poll {} ms (runs 1, 4) | {:.0}, {:.0} MB/s |",
            args.sharding_mib, args.poll_ms, whole[0], whole[1]
        );
        println!(
            "| 2 nodes x half of the flow each, {} data-plane shards each (runs 2, 3) | {:.0}, {:.0} MB/s |",
            args.half_node_shards.unwrap_or((cores / 2).max(1)),
            halves[0],
            halves[1]
        );
        println!(
            "| **two halves / one whole** (means) | **{:.2}x** (target 0.9x) |",
            (halves[0] + halves[1]) / (whole[0] + whole[1])
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
