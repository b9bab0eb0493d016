//! The command line: every subcommand and flag of `zerog`, and nothing that runs. `main.rs`
//! parses with these types and hands each subcommand to its handler (`node::boot` for
//! `zerog node`, `commands` for the clients and the gateway).

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use types::H256;

/// 0G's default storage RPC port.
pub const DEFAULT_RPC: &str = "127.0.0.1:5678";

#[derive(Parser)]
#[command(
    name = "zerog",
    version,
    about = "zerog: a 0G-compatible storage appliance"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a storage node.
    Node(Box<NodeArgs>),
    /// Upload a file: compute its root, submit it on chain, upload its segments, wait until finalized.
    Upload {
        file: PathBuf,
        #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
        rpc: String,
        /// Private key (0x-hex) that signs and pays the Flow submission; defaults to the first
        /// dev account of `zerog node --dev`.
        #[arg(long, env = "ZEROG_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Nodes of every shard that get the file (through the indexer at --rpc; a single node
        /// is a network of itself).
        #[arg(long, default_value_t = 1)]
        replicas: usize,
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
    /// Run a local storage network: a chain node and N storage nodes sharing the flow by shard.
    Devnet(crate::commands::devnet::DevnetArgs),
    /// Run an S3-compatible gateway in front of a node (through its public JSON-RPC API).
    Gateway(GatewayArgs),
    /// Data availability: disperse, retrieve and sample blobs.
    #[command(subcommand)]
    Da(DaCommand),
    /// Run a validator: consensus, chain-lite, the mempool and the Ethereum JSON-RPC facade,
    /// without a storage data plane.
    Validator(ValidatorArgs),
    /// Create keys and a genesis for a network of validators on this host (loopback addresses
    /// from --base-port), and print the command that starts each.
    ValidatorInit {
        /// Validators (tolerating f faults takes 3f+1).
        #[arg(long, default_value_t = 4)]
        count: u32,
        /// Where genesis.json and validator-i/key are written; must not hold a genesis yet.
        #[arg(long)]
        dir: PathBuf,
        /// Validator i listens for peers on BASE+2i and serves JSON-RPC on BASE+2i+1.
        #[arg(long, default_value_t = 30_300)]
        base_port: u16,
    },
}

#[derive(Subcommand)]
pub enum DaCommand {
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

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("chain").required(true).args(["dev", "chain_rpc"])))]
pub struct NodeArgs {
    /// Development mode: embedded single-validator chain, data in a local folder.
    #[arg(long)]
    pub dev: bool,
    /// Follow a remote EVM chain instead of embedding one: its JSON-RPC URL. The node reads
    /// the Flow contract's Submit events from final blocks with `eth_getLogs`.
    #[arg(long, value_name = "URL")]
    pub chain_rpc: Option<String>,
    /// The genesis file of the zerog validators behind `--chain-rpc` (`zerog validator-init`
    /// writes it). The node then checks every block it reads against a finality certificate
    /// of those validators instead of trusting the RPC's `finalized` tag.
    #[arg(long, value_name = "FILE", requires = "chain_rpc")]
    pub chain_genesis: Option<PathBuf>,
    /// The Flow contract's address on the remote chain.
    #[arg(long, value_name = "ADDRESS", default_value_t = format!("0x{}", hex::encode(chain_lite::FLOW_ADDRESS)))]
    pub flow_address: String,
    /// How often to poll the remote chain for new final blocks, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub chain_poll_ms: u64,
    /// Where the node keeps its index, chain and extents.
    #[arg(long, default_value = "./zerog-data")]
    pub data_dir: PathBuf,
    /// JSON-RPC and metrics listen address.
    #[arg(long, default_value = DEFAULT_RPC)]
    pub rpc: SocketAddr,
    /// Data-plane shards (glommio executors); default one per core.
    #[arg(long)]
    pub shards: Option<usize>,
    /// Which part of the flow this node stores, as 0G's `ID/NUM`: flow segment k iff
    /// k mod NUM == ID (NUM a power of two). Recorded in the data folder; default everything.
    #[arg(long, value_name = "ID/NUM", default_value = "0/1")]
    pub shard_position: types::ShardConfig,
    /// Size of each pre-allocated extent file, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub extent_mib: u64,
    /// Refuse writes once the extents would exceed this many MiB.
    #[arg(long)]
    pub max_disk_mib: Option<u64>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// The node's chain account (hex private key): registers the node in the chain's
    /// storage registry and pays DA registration and certificates. With --dev it defaults to
    /// the first dev account (which pays for DA only: a dev node registers nothing unless given
    /// a key).
    #[arg(long, env = "ZEROG_CHAIN_KEY", hide_env_values = true)]
    pub chain_key: Option<String>,
    /// The URL other nodes and clients reach this storage node at, as registered on the chain;
    /// default: the RPC address.
    #[arg(long, value_name = "URL")]
    pub storage_endpoint: Option<String>,
    /// Stake (wei) a storage node registers with.
    #[arg(long, default_value = "1000000000000000000")]
    pub storage_stake_wei: String,
    /// Peers for chains without the storage registry: a file of `URL ID/NUM` lines.
    #[arg(long, value_name = "FILE")]
    pub peers: Option<PathBuf>,
    /// How often the peer list is re-read and every peer probed, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub peer_probe_ms: u64,
    /// How often repair looks for missing segments of this node's shard, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub repair_interval_ms: u64,
    /// How long after learning of a file repair waits before pulling its segments (the
    /// uploader is sending them meanwhile), in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub repair_grace_ms: u64,
    /// Most MB per second repair pulls (default: no limit beyond yielding to client uploads).
    #[arg(long)]
    pub repair_max_mbps: Option<u64>,
    /// Most MB per second the background scrub re-reads stored segments at (CRC, segment
    /// root and kept proof checked; damaged ones are dropped and pulled again); 0 turns it off.
    #[arg(long, default_value_t = 8)]
    pub scrub_max_mbps: u64,
    /// Pause between two scrub passes over every finalized file, in milliseconds.
    #[arg(long, default_value_t = 3_600_000)]
    pub scrub_pause_ms: u64,
    /// How long a peer that served a segment failing verification is not asked again, in
    /// seconds.
    #[arg(long, default_value_t = 600)]
    pub peer_quarantine_secs: u64,
    /// With --dev: serve the chain only; store no segments and never be listed as a storage
    /// node (the chain of a local network, `zerog devnet`).
    #[arg(long, requires = "dev")]
    pub chain_only: bool,
    /// Serve as a DA node: register on the chain, store and serve coded shards, sign.
    #[arg(long)]
    pub da: bool,
    /// The DA node's BLS key seed (hex, 32 bytes or more); default: a random seed kept in the
    /// data folder (`da-bls.seed`).
    #[arg(long, env = "ZEROG_DA_BLS_SEED", hide_env_values = true)]
    pub da_bls_seed: Option<String>,
    /// Stake (wei) a DA node registers with.
    #[arg(long, default_value = "1000000000000000000")]
    pub da_stake_wei: String,
    /// URL retrievers and dispersers reach this DA node at; default: the RPC address.
    #[arg(long, value_name = "URL")]
    pub da_endpoint: Option<String>,
    /// How long a DA node keeps shards.
    #[arg(long, default_value_t = 14 * 24 * 3600)]
    pub da_retention_secs: u64,
    /// How often a DA node prunes expired shards.
    #[arg(long, default_value_t = 60)]
    pub da_prune_secs: u64,
    /// Most MiB of DA shards a DA node keeps (beyond it, `da_storeShards` is refused).
    #[arg(long)]
    pub da_max_mib: Option<u64>,
    /// Serve `da_putBlob` (disperse blobs, paying certificates from --chain-key). On by
    /// default with --dev.
    #[arg(long)]
    pub da_disperse: bool,
    /// With --dev: where the built-in S3 gateway listens (`off` for none). It signs requests
    /// with the dev credentials printed at start.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub s3: String,
}

#[derive(clap::Args)]
pub struct ValidatorArgs {
    /// The network's genesis file (`zerog validator-init` writes it).
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// This validator's key file (hex ed25519 secret, mode 0600).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Where the validator keeps its chain index and consensus storage.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Where to listen for peers; default: this validator's address in the genesis.
    #[arg(long, value_name = "ADDR")]
    pub p2p: Option<SocketAddr>,
    /// JSON-RPC listen address; default: this validator's RPC address in the genesis.
    #[arg(long, value_name = "ADDR")]
    pub rpc: Option<SocketAddr>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
}

#[derive(clap::Args)]
pub struct GatewayArgs {
    /// The node's JSON-RPC URL (any zerog or 0G-compatible node).
    #[arg(long, env = "ZEROG_RPC", default_value = "http://127.0.0.1:5678")]
    pub node: String,
    /// S3 listen address.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Where the gateway keeps its metadata store and spool files.
    #[arg(long, default_value = "./zerog-gateway")]
    pub data_dir: PathBuf,
    /// Access key id (with --secret-key).
    #[arg(long, env = "ZEROG_S3_ACCESS_KEY")]
    pub access_key: Option<String>,
    /// Secret key of --access-key.
    #[arg(long, env = "ZEROG_S3_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// A file of credentials, one `ACCESS_KEY SECRET_KEY` pair a line (`#` starts a comment).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Private key (0x-hex) that signs and pays the Flow submissions of stored objects.
    #[arg(long, env = "ZEROG_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The region the gateway answers for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Largest object or part body accepted, in MiB.
    #[arg(long, default_value_t = 5 * 1024)]
    pub max_object_mib: u64,
    /// Request bodies the gateway keeps in memory at once, in MiB; a large body that does not
    /// fit is spooled to the data folder instead.
    #[arg(long, default_value_t = 1024)]
    pub max_body_memory_mib: u64,
    /// Worker threads of the gateway's runtime.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
}
