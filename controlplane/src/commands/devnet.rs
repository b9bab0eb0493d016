//! `zerog devnet`: a whole local storage network in one command. It starts a chain-only dev node
//! (the chain, and an indexer that lists the network but stores nothing) and N storage nodes as
//! separate processes on loopback, each following the chain, with shards dealt so that every
//! shard has at least R owners; funds and registers each node's account in the chain's storage
//! registry; waits until the chain's indexer lists every node; prints the endpoints and dev keys;
//! and stops them all on Ctrl-C or SIGTERM. With `--validators N` the chain runs on N BFT
//! validators instead, and every storage node checks their finality certificates.

use super::{client_runtime, init_logging, terminated};
use alloy_primitives::U256;
use anyhow::{Context, bail};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use types::ShardConfig;

/// Most nodes one devnet starts.
const MAX_DEVNET_NODES: usize = 64;
/// What each node's account is given to pay its stake and transactions.
const NODE_FUNDS_WEI: u128 = 10 * 1_000_000_000_000_000_000;
/// How long the nodes have to find each other on the chain.
const LISTED_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(clap::Args)]
pub struct DevnetArgs {
    /// Storage nodes to start.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Owners every shard gets at least: the flow is split into the largest power of two of
    /// shards that N nodes can each give R owners.
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// Where the chain and every node keep their data (`chain/`, `node-0/`, …).
    #[arg(long, default_value = "./zerog-devnet")]
    pub data_dir: PathBuf,
    /// The chain's (and indexer's) JSON-RPC listen address; the storage nodes take free ports.
    #[arg(long, default_value = crate::cli::DEFAULT_RPC)]
    pub rpc: SocketAddr,
    /// Size of each node's pre-allocated extent files, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub extent_mib: u64,
    /// Data-plane shards (cores) of each storage node.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// How long a node waits before pulling a new file's segments from its peers, in ms.
    #[arg(long, default_value_t = 5_000)]
    pub repair_grace_ms: u64,
    /// Run the chain on this many BFT validators (`zerog validator` processes; the storage
    /// nodes check their finality certificates) instead of an embedded dev chain. Their keys
    /// and genesis live in `validators/` and are kept across restarts.
    #[arg(long, default_value_t = 0)]
    pub validators: u32,
    /// With --validators: validator i listens for peers on P + 2i and serves JSON-RPC on
    /// P + 2i + 1.
    #[arg(long, value_name = "P", default_value_t = 26_650)]
    pub validator_base_port: u16,
}

/// The chain a devnet runs on: an embedded dev chain in a chain-only node (which is also the
/// indexer), or validators (the storage nodes are then the indexers).
struct DevnetChain {
    processes: Vec<harness::Process>,
    /// Each validator's JSON-RPC (one for the dev chain).
    urls: Vec<String>,
    /// The validators' genesis file, which storage nodes check certificates against.
    genesis: Option<PathBuf>,
}

impl DevnetChain {
    fn start(zerog: &harness::Zerog, args: &DevnetArgs) -> anyhow::Result<DevnetChain> {
        if args.validators == 0 {
            let chain = zerog
                .node(&args.data_dir.join("chain"))
                .args([
                    "--dev",
                    "--chain-only",
                    "--shards",
                    "1",
                    "--extent-mib",
                    &args.extent_mib.to_string(),
                ])
                .args(["--rpc", &args.rpc.to_string()])
                .start()
                .context("starting the chain node")?;
            let url = chain.rpc_url()?;
            return Ok(DevnetChain {
                processes: vec![chain],
                urls: vec![url],
                genesis: None,
            });
        }
        let dir = args.data_dir.join("validators");
        let genesis = dir.join(crate::validator::init::GENESIS_FILE);
        if genesis.exists() {
            let loaded = crate::validator::genesis_file::GenesisFile::load(&genesis)?;
            let count = loaded.file.validators.len();
            if count != args.validators as usize {
                bail!(
                    "{} holds a network of {count} validators, not {}; use another --data-dir",
                    genesis.display(),
                    args.validators
                );
            }
        } else {
            crate::validator::init::init(args.validators, &dir, args.validator_base_port)?;
        }
        let mut processes = Vec::with_capacity(args.validators as usize);
        let mut urls = Vec::with_capacity(args.validators as usize);
        for index in 0..args.validators {
            let folder = crate::validator::init::validator_dir(&dir, index);
            let validator = zerog
                .validator(
                    &genesis,
                    &folder.join(crate::validator::init::KEY_FILE),
                    &folder.join("data"),
                )
                .start()
                .with_context(|| format!("starting validator {index}"))?;
            urls.push(validator.rpc_url()?);
            processes.push(validator);
        }
        Ok(DevnetChain {
            processes,
            urls,
            genesis: Some(genesis),
        })
    }
}

/// The shard each of `nodes` nodes stores, so that every shard has at least `replicas` owners.
pub fn deal_shards(nodes: usize, replicas: usize) -> anyhow::Result<Vec<ShardConfig>> {
    if nodes == 0 || nodes > MAX_DEVNET_NODES {
        bail!("--nodes must be 1 to {MAX_DEVNET_NODES}");
    }
    if replicas == 0 || replicas > nodes {
        bail!("--replicas must be 1 to --nodes ({nodes})");
    }
    let per_replica = (nodes / replicas).max(1);
    let num_shard = 1u64 << per_replica.ilog2();
    (0..nodes as u64)
        .map(|node| {
            ShardConfig::new(num_shard, node % num_shard)
                .map_err(|error| anyhow::anyhow!("dealing shards: {error}"))
        })
        .collect()
}

/// The account of devnet node `index`: a fixed key, so a restarted devnet keeps its accounts.
fn node_key(index: usize) -> String {
    let key = merkle::keccak::keccak256(format!("zerog devnet node {index}").as_bytes());
    format!("0x{}", hex::encode(key.0))
}

pub fn run(args: DevnetArgs) -> anyhow::Result<()> {
    init_logging(false);
    let shards = deal_shards(args.nodes, args.replicas)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let zerog = harness::Zerog::at(std::env::current_exe().context("finding this binary")?);
    let extent = args.extent_mib.to_string();
    let chain = DevnetChain::start(&zerog, &args)?;
    let chain_url = chain.urls[0].clone();
    let runtime = client_runtime()?;
    runtime.block_on(fund_nodes(&chain_url, args.nodes))?;
    let mut nodes = Vec::with_capacity(args.nodes);
    for (index, shard) in shards.iter().enumerate() {
        let node = zerog
            .node(&args.data_dir.join(format!("node-{index}")))
            .args([
                "--chain-rpc",
                &chain.urls[index % chain.urls.len()],
                "--chain-poll-ms",
                "100",
            ])
            .args(
                chain
                    .genesis
                    .iter()
                    .flat_map(|genesis| [OsStr::new("--chain-genesis"), genesis.as_os_str()]),
            )
            .args(["--shard-position", &shard.to_string()])
            .args(["--chain-key", &node_key(index)])
            .args([
                "--shards",
                &args.shards.to_string(),
                "--extent-mib",
                &extent,
            ])
            .args(["--peer-probe-ms", "1000"])
            .args(["--repair-grace-ms", &args.repair_grace_ms.to_string()])
            .start()
            .with_context(|| format!("starting storage node {index}"))?;
        nodes.push(node);
    }
    let urls = nodes
        .iter()
        .map(harness::Process::rpc_url)
        .collect::<Result<Vec<_>, _>>()?;
    // The dev chain's node is an indexer; validators are not, every storage node is.
    let indexer = if chain.genesis.is_some() {
        urls[0].clone()
    } else {
        chain_url.clone()
    };
    runtime.block_on(wait_listed(&indexer, args.nodes))?;
    println!("zerog devnet ready");
    for (index, (url, shard)) in urls.iter().zip(&shards).enumerate() {
        println!("  node {index:<3} {url} shard {shard}");
    }
    if chain.genesis.is_some() {
        for (index, url) in chain.urls.iter().enumerate() {
            println!("  validator {index:<3} {url}");
        }
    }
    for account in chain_lite::DEV_ACCOUNTS {
        println!(
            "  dev account 0x{} key {}",
            hex::encode(account.address),
            account.private_key
        );
    }
    println!("  rpc      {chain_url}");
    println!("  indexer  {indexer}");
    tracing::info!(nodes = args.nodes, %chain_url, "devnet ready");
    runtime.block_on(async {
        let terminated = terminated();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, stopping the devnet"),
            () = terminated => tracing::info!("terminated, stopping the devnet"),
        }
    });
    let mut failures = Vec::new();
    for (index, node) in nodes.into_iter().enumerate() {
        if let Err(error) = node.stop() {
            failures.push(format!("node {index}: {error}"));
        }
    }
    for (index, process) in chain.processes.into_iter().enumerate() {
        if let Err(error) = process.stop() {
            failures.push(format!("chain process {index}: {error}"));
        }
    }
    if !failures.is_empty() {
        bail!("the devnet did not stop cleanly: {}", failures.join("; "));
    }
    Ok(())
}

/// Funds every node's account from the first dev account.
async fn fund_nodes(chain_url: &str, nodes: usize) -> anyhow::Result<()> {
    let chain = client::Chain::connect(client::Client::chain(chain_url)?).await?;
    let funder = client::Payer::from_hex(chain_lite::DEV_ACCOUNTS[0].private_key)?;
    for index in 0..nodes {
        let payer = client::Payer::from_hex(&node_key(index))?;
        chain
            .send(
                &funder,
                payer.address(),
                U256::from(NODE_FUNDS_WEI),
                Vec::new(),
            )
            .await
            .with_context(|| format!("funding the account of node {index}"))?;
    }
    Ok(())
}

/// Waits until the chain's indexer lists `count` storage nodes.
async fn wait_listed(chain_url: &str, count: usize) -> anyhow::Result<()> {
    let rpc = client::Client::chain(chain_url)?;
    let started = Instant::now();
    loop {
        let nodes = rpc
            .call("indexer_getShardedNodes", serde_json::json!([]))
            .await?;
        let listed = nodes["trusted"].as_array().map_or(0, Vec::len);
        if listed == count {
            return Ok(());
        }
        if started.elapsed() > LISTED_TIMEOUT {
            bail!(
                "only {listed} of {count} storage nodes were listed after {} s",
                LISTED_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_dealt_so_every_shard_has_its_replicas() {
        let dealt = |nodes, replicas| {
            deal_shards(nodes, replicas)
                .expect("valid")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(dealt(4, 2), ["0/2", "1/2", "0/2", "1/2"]);
        assert_eq!(dealt(4, 1), ["0/4", "1/4", "2/4", "3/4"]);
        assert_eq!(dealt(5, 2), ["0/2", "1/2", "0/2", "1/2", "0/2"]);
        assert_eq!(dealt(3, 3), ["0/1", "0/1", "0/1"]);
        assert_eq!(dealt(6, 2), ["0/2", "1/2", "0/2", "1/2", "0/2", "1/2"]);
        assert!(deal_shards(2, 3).is_err());
        assert!(deal_shards(0, 1).is_err());
    }
}
