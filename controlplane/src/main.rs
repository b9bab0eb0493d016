//! `zerog`: the appliance's one binary. `zerog node` runs a storage node (control plane on one
//! tokio thread, data plane on one glommio executor per core); the other subcommands are
//! clients of a node's JSON-RPC API.
#![forbid(unsafe_code)]

mod api;
mod chain;
mod client;
mod eth;
mod index;
mod indexer;
mod metrics;
mod node;
mod remote;
mod rpc;
mod sector;
mod server;
mod shards;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use types::H256;

/// 0G's default storage RPC port.
const DEFAULT_RPC: &str = "127.0.0.1:5678";

#[derive(Parser)]
#[command(
    name = "zerog",
    version,
    about = "zerog: a 0G-compatible storage appliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a storage node.
    Node(NodeArgs),
    /// Upload a file: compute its root, submit it on chain, upload its segments, wait until finalized.
    Upload {
        file: PathBuf,
        #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
        rpc: String,
        /// Private key (0x-hex) that signs and pays the Flow submission; defaults to the first
        /// dev account of `zerog node --dev`.
        #[arg(long, env = "ZEROG_KEY", hide_env_values = true)]
        key: Option<String>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Download a file by root, verifying every segment's proof.
    Download {
        root: H256,
        #[arg(short, long)]
        out: PathBuf,
        #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
        rpc: String,
        #[arg(long)]
        quiet: bool,
    },
    /// Show what the node knows about a file.
    Info {
        root: H256,
        #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
        rpc: String,
    },
    /// Show the node's status.
    Status {
        #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
        rpc: String,
    },
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("chain").required(true).args(["dev", "chain_rpc"])))]
struct NodeArgs {
    /// Development mode: embedded single-validator chain, data in a local folder.
    #[arg(long)]
    dev: bool,
    /// Follow a remote EVM chain instead of embedding one: its JSON-RPC URL. The node reads
    /// the Flow contract's Submit events from final blocks with `eth_getLogs`.
    #[arg(long, value_name = "URL")]
    chain_rpc: Option<String>,
    /// The Flow contract's address on the remote chain.
    #[arg(long, value_name = "ADDRESS", default_value_t = format!("0x{}", hex::encode(chain_lite::FLOW_ADDRESS)))]
    flow_address: String,
    /// How often to poll the remote chain for new final blocks, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    chain_poll_ms: u64,
    /// Where the node keeps its index, chain and extents.
    #[arg(long, default_value = "./zerog-data")]
    data_dir: PathBuf,
    /// JSON-RPC and metrics listen address.
    #[arg(long, default_value = DEFAULT_RPC)]
    rpc: SocketAddr,
    /// Data-plane shards (glommio executors); default one per core.
    #[arg(long)]
    shards: Option<usize>,
    /// Size of each pre-allocated extent file, in MiB.
    #[arg(long, default_value_t = 1024)]
    extent_mib: u64,
    /// Refuse writes once the extents would exceed this many MiB.
    #[arg(long)]
    max_disk_mib: Option<u64>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(args) => run_node(args),
        Command::Upload {
            file,
            rpc,
            key,
            quiet,
        } => client_runtime()?.block_on(async {
            let client = client::Client::new(&rpc)?;
            let key = key
                .as_deref()
                .unwrap_or(chain_lite::DEV_ACCOUNTS[0].private_key);
            let key: alloy_signer_local::PrivateKeySigner = key
                .parse()
                .map_err(|_| anyhow::anyhow!("--key is not a 32-byte hex private key"))?;
            let uploaded = client::upload(&client, &file, &key, quiet).await?;
            if uploaded.already_stored {
                eprintln!("already stored and finalized");
            }
            println!("root {}", uploaded.root);
            println!("txSeq {}", uploaded.tx_seq);
            Ok(())
        }),
        Command::Download {
            root,
            out,
            rpc,
            quiet,
        } => client_runtime()?.block_on(async {
            let client = client::Client::new(&rpc)?;
            let size = client::download(&client, root, &out, quiet).await?;
            println!("{size} bytes verified and written to {}", out.display());
            Ok(())
        }),
        Command::Info { root, rpc } => client_runtime()?.block_on(async {
            let client = client::Client::new(&rpc)?;
            let info = client
                .call("zgs_getFileInfo", serde_json::json!([root, false]))
                .await?;
            if info.is_null() {
                bail!("no file with root {root} is known to the node");
            }
            println!("{}", serde_json::to_string_pretty(&info)?);
            Ok(())
        }),
        Command::Status { rpc } => client_runtime()?.block_on(async {
            let client = client::Client::new(&rpc)?;
            let status = client.call("zgs_getStatus", serde_json::json!([])).await?;
            let shard = client
                .call("zgs_getShardConfig", serde_json::json!([]))
                .await?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "status": status, "shardConfig": shard })
                )?
            );
            Ok(())
        }),
    }
}

fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")
}

fn init_logging(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run_node(args: NodeArgs) -> anyhow::Result<()> {
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
    let index = index::Index::open(&args.data_dir.join("node.redb"))?;
    let loaded = index.load()?;
    let runtime = client_runtime()?;
    let remote_rpc = match &args.chain_rpc {
        Some(url) => Some(remote::ChainRpc::new(url)?),
        None => None,
    };
    let chain = match &remote_rpc {
        None => {
            chain::claim_data_folder(&index, false, api::DEV_CHAIN_ID)?;
            chain::ChainSource::Embedded(Box::new(
                chain::EmbeddedChain::open(&index, &loaded.blocks)
                    .context("replaying the embedded chain")?,
            ))
        }
        Some(rpc) => {
            let flow_address = parse_address(&args.flow_address).context("--flow-address")?;
            let chain_id = runtime
                .block_on(rpc.chain_id())
                .context("asking the remote chain for its chain id")?;
            chain::claim_data_folder(&index, true, chain_id)?;
            chain::ChainSource::Remote(
                chain::RemoteFlow::rebuild(chain_id, flow_address, &loaded.files)
                    .context("rebuilding the flow from the synced files")?,
            )
        }
    };
    let chain_line = match &chain {
        chain::ChainSource::Embedded(_) => format!(
            "embedded (dev), chain id {}, JSON-RPC on the same port",
            api::DEV_CHAIN_ID
        ),
        chain::ChainSource::Remote(remote) => format!(
            "remote {}, chain id {}, polled every {} ms",
            args.chain_rpc.as_deref().unwrap_or_default(),
            remote.chain_id,
            args.chain_poll_ms
        ),
    };
    let flow_address = chain.flow_address();
    let config = dataplane::DataPlaneConfig {
        shards: shard_count,
        extent_bytes: args.extent_mib * 1024 * 1024,
        max_disk_bytes: args.max_disk_mib.map(|mib| mib * 1024 * 1024),
        ..dataplane::DataPlaneConfig::new(args.data_dir.join("shards"))
    };
    let (data_plane, clients) =
        dataplane::DataPlane::start(config).context("starting the data plane")?;

    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async move {
        let shards = shards::Shards::start(clients).context("attaching to the shard rings")?;
        let node = Rc::new(node::Node::new(
            index,
            chain,
            shards,
            loaded.files,
            loaded.log_sync_next_block,
        ));
        node.sync_logs()
            .map_err(|error| anyhow::anyhow!("log sync: {error}"))?;
        node.recover().await.context("recovering upload progress")?;
        match remote_rpc {
            None => {
                tokio::task::spawn_local(node.clone().run_block_producer());
            }
            Some(rpc) => {
                let poll = std::time::Duration::from_millis(args.chain_poll_ms.max(1));
                tokio::task::spawn_local(remote::run_log_sync(node.clone(), rpc, poll));
            }
        }
        let listener = tokio::net::TcpListener::bind(args.rpc)
            .await
            .with_context(|| format!("cannot listen on {}", args.rpc))?;
        let address = listener.local_addr()?;
        indexer::set_public_url(indexer::url_for_listen_address(address));
        println!("zerog node ready");
        println!("  rpc      http://{address}");
        println!("  metrics  http://{address}/metrics");
        println!("  data     {}", args.data_dir.display());
        println!("  shards   {shard_count}");
        println!("  chain    {chain_line}");
        println!("  flow     0x{}", hex::encode(flow_address));
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
        tracing::info!(%address, shards = shard_count, "node ready");
        tokio::select! {
            () = server::serve(listener, node.clone()) => {}
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
            () = terminated() => tracing::info!("terminated, shutting down"),
        }
        anyhow::Ok(())
    });
    // The shard clients live in tasks of the LocalSet; dropping it closes the rings, which is
    // what lets the shards drain and stop.
    drop(local);
    drop(runtime);
    data_plane.shutdown().context("stopping the data plane")?;
    result
}

fn parse_address(text: &str) -> anyhow::Result<[u8; 20]> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(digits).context("not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("an address is 20 bytes (40 hex digits)"))
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}
