//! The validator role: `zerog validator-init` creates a network's keys and genesis, and
//! `zerog validator` runs consensus (the `consensus` crate on commonware's tokio runtime and
//! authenticated p2p) over chain-lite, with the Ethereum JSON-RPC facade and no storage data
//! plane. `zerog node --dev` keeps its embedded single-validator chain and shares none of this.
//!
//! Threads: consensus runs on its own runtime (`engine.rs`); the control-plane thread owns
//! chain-lite and the index (`ledger.rs`), serves the ledger's requests and the JSON-RPC
//! facade (`rpc.rs`) on one `LocalSet`.

pub mod engine;
pub mod genesis_file;
pub mod init;
pub mod ledger;
pub mod rpc;

use crate::cli::ValidatorArgs;
use crate::index::Index;
use anyhow::{Context as _, anyhow, bail};
use commonware_cryptography::Signer as _;
use genesis_file::{GenesisFile, public_key_hex, read_key};
use ledger::{LedgerRequest, ValidatorChain};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The file in a validator's data folder naming the genesis it was started with.
const GENESIS_HASH_FILE: &str = "genesis.hash";

/// Refuses a data folder made for another network: its chain and votes belong to that one.
fn claim_data_folder(data_dir: &Path, genesis_hash: &str) -> anyhow::Result<()> {
    let path = data_dir.join(GENESIS_HASH_FILE);
    match std::fs::read_to_string(&path) {
        Ok(stored) if stored.trim() == genesis_hash => Ok(()),
        Ok(stored) => bail!(
            "data folder {} belongs to the network of genesis {}, not {genesis_hash}; use another --data-dir",
            data_dir.display(),
            stored.trim()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, format!("{genesis_hash}\n"))
                .with_context(|| format!("writing {}", path.display()))
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// `zerog validator`.
pub fn run(args: ValidatorArgs) -> anyhow::Result<()> {
    crate::commands::init_logging(args.log_json);
    let loaded = GenesisFile::load(&args.genesis)?;
    let signer = read_key(&args.key)?;
    let public_key = signer.public_key();
    let entry = loaded.entry(&public_key).cloned().ok_or_else(|| {
        anyhow!(
            "key file {}: its public key {} is not a validator of genesis file {}",
            args.key.display(),
            public_key_hex(&public_key),
            args.genesis.display()
        )
    })?;
    let genesis_hash = format!("0x{}", hex::encode(loaded.genesis.hash().0));
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    claim_data_folder(&args.data_dir, &genesis_hash)?;
    let index = Index::open(&args.data_dir.join("node.redb"))?;
    // A node's folder (`--dev` or a follower) holds another history than this network's.
    crate::chain::claim_data_folder(
        &index,
        crate::chain::FolderKind::Validator,
        loaded.genesis.chain().chain_id,
    )?;
    let chain = ValidatorChain::open(index, loaded.genesis.chain().clone())?;
    let (ledger, requests) = ledger::channel();
    let peers = loaded
        .keys
        .iter()
        .cloned()
        .zip(loaded.file.validators.iter().map(|validator| validator.p2p))
        .collect();
    let listen = args.p2p.unwrap_or(entry.p2p);
    let rpc = args.rpc.unwrap_or(entry.rpc);
    let engine::ConsensusThread {
        thread,
        started,
        stopped,
    } = engine::spawn(engine::ConsensusConfig {
        genesis: Arc::new(loaded.genesis),
        signer,
        peers,
        listen,
        storage: args.data_dir.join("consensus"),
        ledger,
    })
    .context("starting the consensus thread")?;
    let data_dir = args.data_dir.clone();
    let runtime = crate::commands::client_runtime()?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, async move {
        let chain = Rc::new(RefCell::new(chain));
        let ledger_task = tokio::task::spawn_local(serve_ledger(chain.clone(), requests));
        let handles = started
            .await
            .map_err(|_| anyhow!("the consensus thread stopped before starting"))?
            .map_err(|error| anyhow!("consensus did not start: {error}"))?;
        let listener = tokio::net::TcpListener::bind(rpc)
            .await
            .with_context(|| format!("binding the JSON-RPC address {rpc}"))?;
        let address = listener
            .local_addr()
            .context("reading the JSON-RPC address")?;
        println!("zerog validator ready");
        println!("  rpc      http://{address}");
        println!("  p2p      {listen}");
        println!("  key      0x{}", public_key_hex(&public_key));
        println!("  genesis  {genesis_hash}");
        println!("  data     {}", data_dir.display());
        let service = Rc::new(rpc::ValidatorRpc {
            chain,
            handles,
            metrics: crate::metrics::Metrics::new(),
        });
        tokio::select! {
            () = crate::server::serve(listener, service) => Ok(()),
            () = crate::commands::terminated() => {
                tracing::info!("SIGTERM: stopping");
                Ok(())
            }
            _ = stopped => Err(anyhow!("consensus stopped; see the log for why")),
            _ = ledger_task => Err(anyhow!("the ledger stopped")),
        }
    });
    // Consensus state is synced before use: a stop at any point is a crash it recovers from,
    // so its thread is not waited for.
    drop(thread);
    result
}

/// Answers consensus's ledger requests on the control-plane thread until consensus is gone.
async fn serve_ledger(
    chain: Rc<RefCell<ValidatorChain>>,
    mut requests: mpsc::Receiver<LedgerRequest>,
) {
    while let Some(request) = requests.recv().await {
        chain.borrow_mut().serve(request);
    }
}
