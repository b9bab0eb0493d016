//! The subcommands that are clients of a node (`upload`, `download`, `info`, `status`, `da …`)
//! and `gateway`. Each handler turns parsed arguments into calls of the `client` crate (or the
//! DA client) and prints what a user reads; none of them holds node state.

pub mod da;
pub mod da_client;
pub mod devnet;
pub mod gateway;
pub mod progress;

use crate::cli::Command;
use anyhow::{Context, bail};
use progress::Bars;
use serde_json::json;

/// Runs a subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Node(args) => crate::node::boot::run(*args),
        Command::Gateway(args) => {
            init_logging(false);
            gateway::run(args)
        }
        Command::Da(command) => client_runtime()?.block_on(da::run(command)),
        Command::Devnet(args) => devnet::run(args),
        Command::Validator(args) => crate::validator::run(args),
        Command::ValidatorInit {
            count,
            dir,
            base_port,
        } => crate::validator::init::run(count, &dir, base_port),
        Command::Upload {
            file,
            rpc,
            key,
            replicas,
            quiet,
        } => client_runtime()?.block_on(async {
            let client = client::Client::new(&rpc)?;
            let key = key
                .as_deref()
                .unwrap_or(chain_lite::DEV_ACCOUNTS[0].private_key);
            let payer = client::Payer::from_hex(key).context("--key")?;
            let source = client::FileSource::open(&file)?;
            let bars = Bars::new(quiet);
            let uploaded =
                client::upload_replicated(&client, &source, &payer, &bars, replicas).await?;
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
            let size = client::download(&client, root, &out, &Bars::new(quiet)).await?;
            println!("{size} bytes verified and written to {}", out.display());
            Ok(())
        }),
        Command::Info { root, rpc } => client_runtime()?.block_on(async {
            let client = client::Client::new(&rpc)?;
            let info = client.call("zgs_getFileInfo", json!([root, false])).await?;
            if info.is_null() {
                bail!("no file with root {root} is known to the node");
            }
            println!("{}", serde_json::to_string_pretty(&info)?);
            Ok(())
        }),
        Command::Status { rpc } => client_runtime()?.block_on(async {
            let client = client::Client::new(&rpc)?;
            let status = client.call("zgs_getStatus", json!([])).await?;
            let shard = client.call("zgs_getShardConfig", json!([])).await?;
            let node = client.call("zerog_nodeStatus", json!([])).await?;
            let all = json!({ "status": status, "shardConfig": shard, "node": node });
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(())
        }),
    }
}

/// A single-threaded runtime for a client subcommand (and for the node's control plane).
pub fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")
}

/// Logs to stderr at `RUST_LOG`'s level (default `info`), as text or JSON lines.
pub fn init_logging(json: bool) {
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

/// Watches SIGTERM from the call on (inside a runtime); the future resolves when it arrives, or
/// never when it cannot be watched.
pub fn terminated() -> impl std::future::Future<Output = ()> {
    let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        match signal {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    }
}
