//! Flow submissions per second through the Ethereum facade, until the storage side has indexed
//! the last one: a real `zerog node --dev`, transactions signed beforehand like any wallet's
//! (EIP-1559, fee = sectors × pricePerSector), sent as JSON-RPC batches, one stream per account.
//!
//! ```sh
//! cargo build --release --bin zerog --bin flow-bench
//! target/release/flow-bench --transactions 20000
//! ```

use alloy_sol_types::SolCall;
use anyhow::bail;
use chain_lite::abi::market;
use clap::Parser;
use client::chain::Transaction;
use client::{Chain, Payer, wire};
use merkle::file::FileTree;
use rand::{RngCore, SeedableRng};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Flow submissions to send (split over the dev accounts).
    #[arg(long, default_value_t = 20_000)]
    transactions: usize,
    /// Transactions per JSON-RPC batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    #[arg(long, default_value = "./bench-data")]
    dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let node_dir = args.dir.join("flow-node");
    let _ = std::fs::remove_dir_all(&node_dir);
    std::fs::create_dir_all(&args.dir)?;
    let node = bench::dev_node(&node_dir, None)?.start()?;
    let url = node.rpc_url()?;
    let http = reqwest::Client::new();
    let rpc = client::Client::new(&url)?;
    let chain = Chain::connect(rpc.clone()).await?;
    let gas_price = wire::read_quantity(&rpc.call("eth_gasPrice", json!([])).await?, "gas price")?;
    let price_word = chain
        .view(
            chain_lite::MARKET_ADDRESS,
            &market::pricePerSectorCall {}.abi_encode(),
        )
        .await?;
    let price = market::pricePerSectorCall::abi_decode_returns(&price_word)?;

    // Sign everything before the clock starts: one tiny file per submission.
    let keys: Vec<Payer> = chain_lite::DEV_ACCOUNTS
        .iter()
        .map(|account| Payer::from_hex(account.private_key))
        .collect::<Result<_, _>>()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let started = Instant::now();
    let mut streams: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
    for index in 0..args.transactions {
        let account = index % keys.len();
        let nonce = (index / keys.len()) as u64;
        let mut content = [0u8; 200];
        rng.fill_bytes(&mut content);
        let tree = FileTree::from_bytes(&content)?;
        let submission = chain_lite::Submission {
            length: content.len() as u64,
            tags: Vec::new(),
            nodes: tree.nodes(),
        };
        let transaction = Transaction {
            nonce,
            gas_limit: 200_000,
            max_fee_per_gas: gas_price,
            to: chain_lite::FLOW_ADDRESS,
            value: price,
            input: chain_lite::abi::submit_calldata(&submission, keys[account].address()),
        };
        let raw = keys[account].sign(chain.chain_id(), &transaction)?;
        streams[account].push(format!("0x{}", hex::encode(raw)));
    }
    let signing = started.elapsed();

    // One stream per account keeps each account's nonces in order; batches within a stream are
    // sent one after another.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for stream in streams {
        let (http, url, batch) = (http.clone(), url.clone(), args.batch);
        tasks.push(tokio::spawn(async move {
            for chunk in stream.chunks(batch) {
                let body: Vec<Value> = chunk
                    .iter()
                    .enumerate()
                    .map(|(id, raw)| json!({ "jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction", "params": [raw] }))
                    .collect();
                let answers: Vec<Value> = http.post(&url).json(&body).send().await?.json().await?;
                if let Some(error) = answers.iter().find_map(|answer| answer.get("error")) {
                    bail!("a transaction was refused: {error}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let sent = started.elapsed();
    // Finalized and indexed: the storage side knows the last tx seq.
    let last = (args.transactions - 1) as u64;
    loop {
        if !rpc
            .call("zgs_getFileInfoByTxSeq", json!([last]))
            .await?
            .is_null()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("tx {last} never indexed");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let indexed = started.elapsed();
    let blocks = wire::read_u64(&rpc.call("eth_blockNumber", json!([])).await?, "block")?;
    drop(node);
    let per_second = args.transactions as f64 / indexed.as_secs_f64();
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| Flow submissions | {} in {blocks} blocks, {} accounts, batches of {} |",
        args.transactions,
        keys.len(),
        args.batch
    );
    println!(
        "| signing (client, before the clock) | {:.2} s |",
        signing.as_secs_f64()
    );
    println!(
        "| all accepted by eth_sendRawTransaction | {:.3} s |",
        sent.as_secs_f64()
    );
    println!(
        "| all finalized and indexed by the storage side | {:.3} s |",
        indexed.as_secs_f64()
    );
    println!(
        "| **submissions per second** | **{per_second:.0}/s** (target 10 000/s: {:.2}x; 0G's claimed 2 500 TPS: {:.2}x) |",
        per_second / 10_000.0,
        per_second / 2_500.0
    );
    Ok(())
}
