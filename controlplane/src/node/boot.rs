//! Starting a node: open the index, the chain it follows (embedded, replayed from the index; or
//! a remote chain, whose flow is rebuilt from the synced files), the data plane and the compute
//! pool; catch up the log sync and recover upload progress; then serve JSON-RPC until SIGTERM,
//! with the block producer or the remote log sync, the DA side and (with `--dev`) the S3
//! gateway beside it. Stopping closes the rings, which lets the shards drain and stop.

use super::{Node, producer, sync};
use crate::chain::{self, ChainSource};
use crate::cli::NodeArgs;
use crate::commands::{client_runtime, init_logging, terminated};
use crate::da_node::setup::DaSetup;
use crate::index::{Index, Loaded};
use crate::{api, server, shards};
use anyhow::{Context, bail};
use consensus::Genesis;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// Runs `zerog node` until it is interrupted or terminated.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data folder {}", args.data_dir.display()))?;
    let shard_count = args.shards.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if shard_count == 0 {
        bail!("--shards must be at least 1");
    }
    let index = Index::open(&args.data_dir.join("node.redb"))?;
    let loaded = index.load()?;
    claim_shard_position(&index, args.shard_position, !loaded.files.is_empty())?;
    let runtime = client_runtime()?;
    let remote = match &args.chain_rpc {
        Some(url) => {
            let flow_address = parse_address(&args.flow_address).context("--flow-address")?;
            let connect = client::Chain::connect(client::Client::chain(url)?);
            let chain = runtime
                .block_on(connect)
                .context("asking the remote chain for its chain id")?;
            Some((chain, flow_address))
        }
        None => None,
    };
    let validators = match &args.chain_genesis {
        Some(path) => Some(std::sync::Arc::new(validators_genesis(
            path,
            remote.as_ref().map(|(chain, _)| chain.chain_id()),
        )?)),
        None => None,
    };
    let chain = open_chain(&index, &loaded, remote.as_ref())?;
    let remote = remote.map(|(chain, _)| (chain, validators));
    let config = dataplane::DataPlaneConfig {
        shards: shard_count,
        position: args.shard_position,
        extent_bytes: args.extent_mib * 1024 * 1024,
        max_disk_bytes: args.max_disk_mib.map(|mib| mib * 1024 * 1024),
        ..dataplane::DataPlaneConfig::new(args.data_dir.join("shards"))
    };
    let (data_plane, clients) =
        dataplane::DataPlane::start(config).context("starting the data plane")?;
    let io_memory = data_plane.buffer_report().clone();
    // One worker: the data plane has the cores; KZG jobs are occasional.
    let compute_pool = std::sync::Arc::new(
        compute::Pool::new(compute::PoolConfig {
            workers: 1,
            queue_depth: 16,
        })
        .context("starting the compute pool")?,
    );
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async move {
        let shards = shards::Shards::start(clients).context("attaching to the shard rings")?;
        let node = Rc::new(Node::new(
            index,
            chain,
            shards,
            loaded.files,
            loaded.log_sync_next_block,
            super::StorageRole {
                position: args.shard_position,
                stores_segments: !args.chain_only,
            },
            compute_pool,
        ));
        node.metrics.publish_io_memory(&io_memory);
        serve(node, &args, shard_count, remote).await
    });
    // The shard clients live in tasks of the LocalSet; dropping it closes the rings, which is
    // what lets the shards drain and stop.
    drop(local);
    drop(runtime);
    data_plane.shutdown().context("stopping the data plane")?;
    result
}

/// Meta keys of the shard position a data folder was made for.
const META_SHARD_ID: &str = "shard_position_id";
const META_NUM_SHARD: &str = "shard_position_num";

/// Records the part of the flow a data folder stores, and refuses to open it for another: its
/// segments and finalized files would not be the ones the new position promises.
fn claim_shard_position(
    index: &Index,
    position: types::ShardConfig,
    has_files: bool,
) -> anyhow::Result<()> {
    match (index.meta(META_SHARD_ID)?, index.meta(META_NUM_SHARD)?) {
        (Some(shard_id), Some(num_shard)) => {
            let stored = types::ShardConfig {
                num_shard,
                shard_id,
            };
            if stored != position {
                bail!(
                    "this data folder stores shard {stored} of the flow, not --shard-position \
                     {position}: start it with --shard-position {stored}, or use another \
                     --data-dir (a node that changes shard fills a new folder from its peers)"
                );
            }
            Ok(())
        }
        _ => {
            // Folders of earlier releases store everything; they are claimed as such only if
            // asked for that.
            if has_files && position != types::ShardConfig::ALL {
                bail!(
                    "this data folder stores the whole flow (shard 0/1), not --shard-position \
                     {position}; use another --data-dir"
                );
            }
            index.put_meta(META_SHARD_ID, position.shard_id)?;
            index.put_meta(META_NUM_SHARD, position.num_shard)?;
            Ok(())
        }
    }
}

/// The validators' genesis of `--chain-genesis`, which must be the remote chain's.
fn validators_genesis(path: &Path, remote_chain_id: Option<u64>) -> anyhow::Result<Genesis> {
    let genesis = crate::validator::genesis_file::GenesisFile::load(path)?.genesis;
    let chain_id = genesis.chain().chain_id;
    if remote_chain_id != Some(chain_id) {
        bail!(
            "--chain-genesis {} is the genesis of chain id {chain_id}, but --chain-rpc serves chain id {}",
            path.display(),
            remote_chain_id.map_or("none".to_string(), |id| id.to_string())
        );
    }
    Ok(genesis)
}

/// The chain the data folder follows: the embedded dev chain replayed from its blocks, or a
/// remote chain's flow rebuilt from the synced files. A folder made for another chain is
/// refused.
fn open_chain(
    index: &Index,
    loaded: &Loaded,
    remote: Option<&(client::Chain, [u8; 20])>,
) -> anyhow::Result<ChainSource> {
    match remote {
        None => {
            chain::claim_data_folder(index, chain::FolderKind::Embedded, chain::DEV_CHAIN_ID)?;
            Ok(ChainSource::Embedded(Box::new(
                chain::EmbeddedChain::open(index, &loaded.blocks)
                    .context("replaying the embedded chain")?,
            )))
        }
        Some((remote, flow_address)) => {
            chain::claim_data_folder(index, chain::FolderKind::Remote, remote.chain_id())?;
            Ok(ChainSource::Remote(
                chain::RemoteFlow::rebuild(remote.chain_id(), *flow_address, &loaded.files)
                    .context("rebuilding the flow from the synced files")?,
            ))
        }
    }
}

/// Catches up, starts the node's tasks and serves until the process is told to stop.
async fn serve(
    node: Rc<Node>,
    args: &NodeArgs,
    shard_count: usize,
    remote: Option<(client::Chain, Option<std::sync::Arc<Genesis>>)>,
) -> anyhow::Result<()> {
    // Watched before "ready" is printed: a SIGTERM sent right after it stops cleanly.
    let terminated = terminated();
    sync::sync_embedded(&node).map_err(|error| anyhow::anyhow!("log sync: {error}"))?;
    node.files
        .recover(&node.shards, &node.index)
        .await
        .context("recovering upload progress")?;
    node.refresh_gauges();
    match remote {
        None => {
            tokio::task::spawn_local(producer::run(node.clone()));
        }
        Some((remote, validators)) => {
            let poll = Duration::from_millis(args.chain_poll_ms.max(1));
            tokio::task::spawn_local(sync::run_remote(node.clone(), remote, validators, poll));
        }
    }
    let listener = tokio::net::TcpListener::bind(args.rpc)
        .await
        .with_context(|| format!("cannot listen on {}", args.rpc))?;
    let address = listener.local_addr()?;
    // The node's account: one payer (one nonce lock) for every transaction it sends.
    let payer = payer_from_args(args)?;
    // DA and membership flags are checked before the node says it is ready.
    let da_setup = DaSetup::from_args(args, address, payer.clone())?;
    da_setup.configure(&node);
    let membership = membership_settings(args, address, payer)?;
    api::indexer::set_public_url(membership.endpoint.clone());
    print_ready(&node, args, address, shard_count);
    let _gateway = if args.dev && args.s3 != "off" {
        start_dev_gateway(&format!("http://{address}"), &args.data_dir, &args.s3)
    } else {
        None
    };
    tracing::info!(%address, shards = shard_count, "node ready");
    tokio::task::spawn_local(da_setup.run(node.clone()));
    tokio::task::spawn_local(super::peers::run(node.clone(), membership));
    if node.stores_segments {
        tokio::task::spawn_local(super::repair::run(node.clone(), repair_settings(args)));
        tokio::task::spawn_local(super::scrub::run(
            node.clone(),
            super::scrub::ScrubSettings {
                max_bytes_per_sec: args.scrub_max_mbps.saturating_mul(1_000_000),
                pause: Duration::from_millis(args.scrub_pause_ms),
            },
        ));
    }
    tokio::select! {
        () = server::serve(listener, node.clone()) => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
        () = terminated => tracing::info!("terminated, shutting down"),
    }
    Ok(())
}

/// The node's chain account: `--chain-key`, or with `--dev` the first dev account.
fn payer_from_args(args: &NodeArgs) -> anyhow::Result<Option<Rc<client::Payer>>> {
    let key = match (&args.chain_key, args.dev) {
        (Some(key), _) => key.as_str(),
        (None, true) => chain_lite::DEV_ACCOUNTS[0].private_key,
        (None, false) => return Ok(None),
    };
    let payer = client::Payer::from_hex(key)
        .map_err(|_| anyhow::anyhow!("--chain-key is not a 32-byte hex private key"))?;
    Ok(Some(Rc::new(payer)))
}

/// Membership from the flags: a storage node with an explicit `--chain-key` registers itself.
fn membership_settings(
    args: &NodeArgs,
    address: SocketAddr,
    payer: Option<Rc<client::Payer>>,
) -> anyhow::Result<super::peers::MembershipSettings> {
    let own_url = api::indexer::url_for_listen_address(address);
    let stake: alloy_primitives::U256 = args
        .storage_stake_wei
        .parse()
        .context("--storage-stake-wei")?;
    let register = match payer {
        Some(payer) if args.chain_key.is_some() && !args.chain_only => Some((payer, stake)),
        _ => None,
    };
    if let Some(path) = &args.peers {
        super::peers::read_peers_file(path).context("--peers")?;
    }
    Ok(super::peers::MembershipSettings {
        endpoint: args.storage_endpoint.clone().unwrap_or(own_url.clone()),
        register,
        chain_url: args.chain_rpc.clone().unwrap_or(own_url),
        peers_file: args.peers.clone(),
        probe_every: Duration::from_millis(args.peer_probe_ms.max(10)),
    })
}

fn repair_settings(args: &NodeArgs) -> super::repair::RepairSettings {
    super::repair::RepairSettings {
        every: Duration::from_millis(args.repair_interval_ms.max(10)),
        grace: Duration::from_millis(args.repair_grace_ms),
        segments_in_flight: 64,
        per_peer: 16,
        request_timeout: Duration::from_secs(15),
        quarantine: Duration::from_secs(args.peer_quarantine_secs),
        max_bytes_per_sec: args.repair_max_mbps.map(|mbps| mbps * 1_000_000),
    }
}

/// What a user (and the test launcher) reads: every endpoint, then the dev accounts.
fn print_ready(node: &Node, args: &NodeArgs, address: SocketAddr, shard_count: usize) {
    let chain = node.chain.borrow();
    let chain_line = match &*chain {
        ChainSource::Embedded(_) => format!(
            "embedded (dev), chain id {}, JSON-RPC on the same port",
            chain::DEV_CHAIN_ID
        ),
        ChainSource::Remote(remote) => format!(
            "remote {}, chain id {}, polled every {} ms, {}",
            args.chain_rpc.as_deref().unwrap_or_default(),
            remote.chain_id,
            args.chain_poll_ms,
            if args.chain_genesis.is_some() {
                "blocks checked against the genesis validators' certificates"
            } else {
                "trusting its finalized tag"
            }
        ),
    };
    println!("zerog node ready");
    println!("  rpc      http://{address}");
    println!("  metrics  http://{address}/metrics");
    println!("  data     {}", args.data_dir.display());
    println!("  shards   {shard_count}");
    println!("  position {} of the flow", node.position);
    println!("  chain    {chain_line}");
    println!("  flow     0x{}", hex::encode(chain.flow_address()));
    if args.dev {
        println!("  market   0x{}", hex::encode(chain_lite::MARKET_ADDRESS));
        println!("  reward   0x{}", hex::encode(chain_lite::REWARD_ADDRESS));
        for account in chain_lite::DEV_ACCOUNTS {
            println!(
                "  dev account 0x{} key {}",
                hex::encode(account.address),
                account.private_key
            );
        }
    }
}

/// The dev node's S3 gateway; a gateway that cannot start is reported and the node runs on.
fn start_dev_gateway(
    node_url: &str,
    data_dir: &std::path::Path,
    listen: &str,
) -> Option<gateway::Running> {
    let started = listen
        .parse::<SocketAddr>()
        .with_context(|| format!("--s3 {listen} is not an address"))
        .and_then(|listen| crate::commands::gateway::start_dev(node_url, data_dir, listen));
    match started {
        Ok(running) => {
            println!("  s3       http://{}", running.address);
            println!(
                "  s3 keys  access {} secret {}",
                gateway::DEV_ACCESS_KEY,
                gateway::DEV_SECRET_KEY
            );
            Some(running)
        }
        Err(error) => {
            println!("  s3       off ({error:#})");
            tracing::warn!(error = format!("{error:#}"), "the S3 gateway did not start");
            None
        }
    }
}

fn parse_address(text: &str) -> anyhow::Result<[u8; 20]> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(digits).context("not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("an address is 20 bytes (40 hex digits)"))
}
