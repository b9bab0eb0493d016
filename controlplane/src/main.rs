//! `zerog`: the appliance's one binary. `zerog node` runs a storage node (control plane on one
//! tokio thread, data plane on one glommio executor per core); the other subcommands are
//! clients of a node's JSON-RPC API.
#![forbid(unsafe_code)]

mod api;
mod chain;
mod client;
mod da_client;
mod da_node;
mod eth;
mod gateway_cmd;
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
    /// Run an S3-compatible gateway in front of a node (through its public JSON-RPC API).
    Gateway(gateway_cmd::GatewayArgs),
    /// Data availability: disperse, retrieve and sample blobs.
    #[command(subcommand)]
    Da(DaCommand),
}

#[derive(Subcommand)]
enum DaCommand {
    /// Disperse FILE (at most 32 MiB) through the node at --rpc: it encodes on its data plane,
    /// sends each quorum member its shards, aggregates their signatures and certifies the blob
    /// on the chain. Prints the blob id.
    Put {
        file: PathBuf,
        #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
        rpc: String,
        /// Data shards k (a smaller k suits small deployments and tests).
        #[arg(long, default_value_t = da::blob::DEFAULT_DATA_SHARDS)]
        data_shards: usize,
        /// Recovery shards m.
        #[arg(long, default_value_t = da::blob::DEFAULT_RECOVERY_SHARDS)]
        recovery_shards: usize,
        /// Also compute the payload's KZG commitments (EIP-4844 sub-blobs of 4096 elements,
        /// 31 payload bytes per element) and print them.
        #[arg(long)]
        kzg: bool,
        #[arg(long)]
        quiet: bool,
    },
    /// Retrieve a certified blob from its holders: every shard verified before decoding, and
    /// the validity rule applied.
    Get {
        blob_id: String,
        #[arg(short, long)]
        out: PathBuf,
        /// The chain's JSON-RPC (where the blob is certified).
        #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
        rpc: String,
        #[arg(long)]
        quiet: bool,
    },
    /// Check availability by sampling random shards from their holders.
    Sample {
        blob_id: String,
        /// Shards to sample.
        #[arg(long, default_value_t = 30)]
        samples: usize,
        /// The chain's JSON-RPC.
        #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
        rpc: String,
    },
}

fn run_da(command: DaCommand) -> anyhow::Result<()> {
    client_runtime()?.block_on(async {
        match command {
            DaCommand::Put {
                file,
                rpc,
                data_shards,
                recovery_shards,
                kzg,
                quiet,
            } => {
                let params = da::blob::DaParams::new(data_shards, recovery_shards)?;
                let answer = da_client::put(&rpc, &file, params, kzg, quiet).await?;
                println!("blob {}", answer["blobId"].as_str().unwrap_or("?"));
                println!(
                    "certified by {} of {} slots in epoch {} (transaction {})",
                    answer["signedSlots"], answer["totalSlots"], answer["epoch"], answer["transactionHash"]
                );
                for commitment in answer["kzgCommitments"].as_array().into_iter().flatten() {
                    println!("kzg {}", commitment.as_str().unwrap_or("?"));
                }
                if let Some(failures) = answer["failures"].as_array()
                    && !failures.is_empty()
                {
                    eprintln!("nodes that did not sign: {failures:?}");
                }
                Ok(())
            }
            DaCommand::Get {
                blob_id,
                out,
                rpc,
                quiet,
            } => {
                let blob = da_client::parse_blob_id(&blob_id)?;
                let retrieved = da_client::get(&rpc, &blob, quiet).await?;
                for problem in retrieved.rejected.iter().chain(&retrieved.unreachable) {
                    eprintln!("skipped: {problem}");
                }
                match (retrieved.payload, retrieved.empty_reason) {
                    (Some(payload), _) => {
                        // Written beside the target and renamed: a reader never sees half a blob.
                        let partial = out.with_extension("partial");
                        std::fs::write(&partial, &payload)
                            .and_then(|()| std::fs::rename(&partial, &out))
                            .with_context(|| format!("cannot write {}", out.display()))?;
                        println!(
                            "{} bytes from {} verified shards written to {}",
                            payload.len(),
                            retrieved.verified,
                            out.display()
                        );
                        Ok(())
                    }
                    (None, reason) => bail!(
                        "blob {blob_id} is empty by the validity rule ({}); nothing written",
                        reason.unwrap_or_default()
                    ),
                }
            }
            DaCommand::Sample {
                blob_id,
                samples,
                rpc,
            } => {
                let blob = da_client::parse_blob_id(&blob_id)?;
                let sampled = da_client::sample(&rpc, &blob, samples).await?;
                for failure in &sampled.failures {
                    eprintln!("failed: {failure}");
                }
                let bound = da::sample::fooling_probability(&sampled.params, sampled.asked);
                println!(
                    "{} of {} sampled shards available and verified",
                    sampled.verified, sampled.asked
                );
                if sampled.verified == sampled.asked {
                    println!(
                        "if the blob were unavailable, the chance of this outcome is at most {bound:.3e}"
                    );
                    Ok(())
                } else {
                    bail!("the blob failed sampling: {} shards missing or invalid", sampled.asked - sampled.verified)
                }
            }
        }
    })
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
    /// The node's chain account (hex private key): pays DA registration and certificates.
    /// With --dev it defaults to the first dev account.
    #[arg(long, env = "ZEROG_CHAIN_KEY", hide_env_values = true)]
    chain_key: Option<String>,
    /// Serve as a DA node: register on the chain, store and serve coded shards, sign.
    #[arg(long)]
    da: bool,
    /// The DA node's BLS key seed (hex, 32 bytes or more); default: a random seed kept in the
    /// data folder (`da-bls.seed`).
    #[arg(long, env = "ZEROG_DA_BLS_SEED", hide_env_values = true)]
    da_bls_seed: Option<String>,
    /// Stake (wei) a DA node registers with.
    #[arg(long, default_value = "1000000000000000000")]
    da_stake_wei: String,
    /// URL retrievers and dispersers reach this DA node at; default: the RPC address.
    #[arg(long, value_name = "URL")]
    da_endpoint: Option<String>,
    /// How long a DA node keeps shards.
    #[arg(long, default_value_t = 14 * 24 * 3600)]
    da_retention_secs: u64,
    /// How often a DA node prunes expired shards.
    #[arg(long, default_value_t = 60)]
    da_prune_secs: u64,
    /// Most MiB of DA shards a DA node keeps (beyond it, `da_storeShards` is refused).
    #[arg(long)]
    da_max_mib: Option<u64>,
    /// Serve `da_putBlob` (disperse blobs, paying certificates from --chain-key). On by
    /// default with --dev.
    #[arg(long)]
    da_disperse: bool,
    /// With --dev: where the built-in S3 gateway listens (`off` for none). It signs requests
    /// with the dev credentials printed at start.
    #[arg(long, default_value = "127.0.0.1:9000")]
    s3: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(args) => run_node(args),
        Command::Gateway(args) => {
            init_logging(false);
            gateway_cmd::run(args)
        }
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
            let payer = client::Payer::from_hex(key).context("--key")?;
            let source = client::FileSource::open(&file)?;
            let uploaded =
                client::upload(&client, &source, &payer, &client::Bars::new(quiet)).await?;
            if uploaded.already_stored {
                eprintln!("already stored and finalized");
            }
            println!("root {}", uploaded.file.root);
            println!("txSeq {}", uploaded.file.tx_seq);
            Ok(())
        }),
        Command::Download {
            root,
            out,
            rpc,
            quiet,
        } => client_runtime()?.block_on(async {
            let client = client::Client::new(&rpc)?;
            let size = client::download(&client, root, &out, &client::Bars::new(quiet)).await?;
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
        Command::Da(command) => run_da(command),
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
        let node = Rc::new(node::Node::new(
            index,
            chain,
            shards,
            loaded.files,
            loaded.log_sync_next_block,
            compute_pool,
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
        let _gateway = if args.dev && args.s3 != "off" {
            start_dev_gateway(&format!("http://{address}"), &args.data_dir, &args.s3)
        } else {
            None
        };
        tracing::info!(%address, shards = shard_count, "node ready");
        let da_setup = DaSetup::from_args(&args, address)?;
        tokio::task::spawn_local(da_setup.run(node.clone()));
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

/// The dev node's S3 gateway; a gateway that cannot start is reported and the node runs on.
fn start_dev_gateway(
    node_url: &str,
    data_dir: &std::path::Path,
    listen: &str,
) -> Option<gateway::Running> {
    let started = listen
        .parse::<SocketAddr>()
        .with_context(|| format!("--s3 {listen} is not an address"))
        .and_then(|listen| gateway_cmd::start_dev(node_url, data_dir, listen));
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

/// What the DA side of a node needs once its RPC server runs.
struct DaSetup {
    chain_url: String,
    chain_key: Option<alloy_signer_local::PrivateKeySigner>,
    /// Whether `da_putBlob` is served (it spends the chain account).
    disperse: bool,
    role: Option<DaRoleSetup>,
}

struct DaRoleSetup {
    seed: Vec<u8>,
    endpoint: String,
    stake: alloy_primitives::U256,
    retention: std::time::Duration,
    prune_every: std::time::Duration,
    quota_bytes: Option<u64>,
}

impl DaSetup {
    fn from_args(args: &NodeArgs, address: SocketAddr) -> anyhow::Result<DaSetup> {
        let own_url = indexer::url_for_listen_address(address);
        let chain_url = args.chain_rpc.clone().unwrap_or_else(|| own_url.clone());
        let chain_key = match (&args.chain_key, args.dev) {
            (Some(key), _) => Some(key.as_str()),
            (None, true) => Some(chain_lite::DEV_ACCOUNTS[0].private_key),
            (None, false) => None,
        }
        .map(|key| {
            key.parse::<alloy_signer_local::PrivateKeySigner>()
                .map_err(|_| anyhow::anyhow!("--chain-key is not a 32-byte hex private key"))
        })
        .transpose()?;
        let disperse = args.dev || args.da_disperse;
        if args.da_disperse && chain_key.is_none() {
            bail!("--da-disperse needs --chain-key: the disperser pays for certificates");
        }
        let role = if args.da {
            if chain_key.is_none() {
                bail!("--da needs --chain-key: a DA node registers itself and pays its stake");
            }
            if args.da_retention_secs < MIN_DA_RETENTION_SECS {
                bail!("--da-retention-secs must be at least {MIN_DA_RETENTION_SECS}");
            }
            let seed = match &args.da_bls_seed {
                Some(seed) => hex::decode(seed.strip_prefix("0x").unwrap_or(seed))
                    .context("--da-bls-seed is not hex")?,
                None => da_seed_from_folder(&args.data_dir)?,
            };
            Some(DaRoleSetup {
                seed,
                endpoint: args.da_endpoint.clone().unwrap_or(own_url),
                stake: args.da_stake_wei.parse().context("--da-stake-wei")?,
                retention: std::time::Duration::from_secs(args.da_retention_secs),
                prune_every: std::time::Duration::from_secs(args.da_prune_secs.max(1)),
                quota_bytes: args.da_max_mib.map(|mib| mib << 20),
            })
        } else {
            None
        };
        Ok(DaSetup {
            chain_url,
            chain_key,
            disperse,
            role,
        })
    }

    /// Connects DA to the chain, registers a DA node and starts its pruner. A DA node that
    /// cannot register stops: it would store shards nobody asks it for. A node that only
    /// disperses keeps trying to reach the chain and keeps serving storage meanwhile.
    async fn run(self, node: Rc<node::Node>) {
        let Some(role) = self.role else {
            let mut delay = std::time::Duration::from_millis(100);
            loop {
                match da_node::DaChain::connect(
                    &self.chain_url,
                    self.chain_key.clone(),
                    self.disperse,
                )
                .await
                {
                    Ok(chain) => {
                        node.set_da(Rc::new(chain), None);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "cannot reach the chain for DA yet; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(std::time::Duration::from_secs(30));
                    }
                }
            }
        };
        let result = async {
            let key = self.chain_key.expect("--da is refused without a chain key");
            let address = key.address().into_array();
            let chain = Rc::new(
                da_node::DaChain::connect(&self.chain_url, Some(key), self.disperse).await?,
            );
            let da_role = Rc::new(da_node::DaRole::new(
                &role.seed,
                address,
                role.retention,
                role.quota_bytes,
            )?);
            let registered = da_role.register(&chain, &role.endpoint, role.stake).await?;
            tracing::info!(
                signer = %format!("0x{}", hex::encode(address)),
                endpoint = %role.endpoint,
                newly_registered = registered,
                "DA node ready"
            );
            node.set_da(chain, Some(da_role));
            tokio::task::spawn_local(da_node::run_pruner(node, role.prune_every));
            anyhow::Ok(())
        }
        .await;
        if let Err(error) = result {
            tracing::error!(error = %format!("{error:#}"), "DA setup failed; stopping");
            std::process::exit(1);
        }
    }
}

/// Shortest retention a DA node accepts: shards must outlive the dispersal that signs for them.
const MIN_DA_RETENTION_SECS: u64 = 60;

/// The DA BLS seed kept in the data folder, created (32 random bytes, owner-only) on first use.
fn da_seed_from_folder(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("da-bls.seed");
    if let Ok(seed) = std::fs::read(&path) {
        anyhow::ensure!(
            seed.len() >= 32,
            "{} is shorter than 32 bytes",
            path.display()
        );
        return Ok(seed);
    }
    let mut seed = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut seed))
        .context("reading /dev/urandom")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&seed)?;
    file.sync_all()?;
    Ok(seed)
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
