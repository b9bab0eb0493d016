//! End-to-end DA dispersal on loopback: one `zerog node --dev` (chain and disperser) and six DA
//! nodes following its chain. Each round disperses one blob with `da_putBlob` (encode on the
//! disperser's data plane, send every member its shards, collect and aggregate signatures,
//! certify on the chain) and measures the time to the certificate's receipt; then one blob is
//! retrieved with `zerog da get` and compared.
//!
//! ```sh
//! cargo build --release --bin zerog --bin da-bench
//! target/release/da-bench --blobs 8 --size-mib 32
//! ```

use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, bail};
use clap::Parser;
use client::{Chain, Payer};
use hdrhistogram::Histogram;
use rand::{RngCore, SeedableRng};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Blobs to disperse.
    #[arg(long, default_value_t = 8)]
    blobs: usize,
    /// Payload of each blob, MiB (at most 32).
    #[arg(long, default_value_t = 32)]
    size_mib: usize,
    /// DA nodes.
    #[arg(long, default_value_t = 6)]
    nodes: usize,
    #[arg(long, default_value = "./bench-data")]
    dir: PathBuf,
}

fn millis(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.size_mib == 0 || args.size_mib > 32 {
        bail!("--size-mib must be 1..=32");
    }
    let root = args.dir.join("da-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let zerog = harness::Zerog::locate()?;
    let chain = bench::dev_node(&root.join("chain"), None)?.start()?;
    let chain_url = chain.rpc_url()?;
    // A dispersal of 32 MiB takes seconds; the limit only catches a stuck node.
    let rpc = client::Client::build(&chain_url, "node", Duration::from_secs(600))?;
    let chain = Chain::connect(rpc.clone()).await?;
    let funder = Payer::from_hex(chain_lite::DEV_ACCOUNTS[0].private_key)?;
    let keys: Vec<PrivateKeySigner> = (0..args.nodes)
        .map(|n| PrivateKeySigner::from_bytes(&[n as u8 + 0x61; 32].into()))
        .collect::<Result<_, _>>()?;
    for key in &keys {
        let ten_ether = U256::from(10u128 * 1_000_000_000_000_000_000);
        chain
            .send(&funder, key.address().into_array(), ten_ether, Vec::new())
            .await?;
    }
    let mut nodes = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let dir = root.join(format!("da-{n}"));
        let key = format!("0x{}", hex::encode(key.to_bytes()));
        let node = zerog
            .node(&dir)
            .args([
                "--chain-rpc",
                &chain_url,
                "--chain-poll-ms",
                "50",
                "--da",
                "--chain-key",
                &key,
                "--shards",
                "1",
            ])
            .start()?;
        let url = node.rpc_url()?;
        nodes.push((node, url));
    }
    for (_, url) in &nodes {
        let started = Instant::now();
        let node = client::Client::new(url)?;
        while node.call("da_status", json!([])).await.is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("DA node {url} never registered");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut payload = vec![0u8; args.size_mib << 20];
    let mut latency = Histogram::<u64>::new(3)?;
    let (mut encode_ms, mut disperse_ms) = (0u64, 0u64);
    let mut last_blob = String::new();
    let mut last_payload = Vec::new();
    let started = Instant::now();
    for _ in 0..args.blobs {
        rng.fill_bytes(&mut payload);
        let encoded = base64_simd::STANDARD.encode_to_string(&payload);
        let sent = Instant::now();
        let answer = rpc.call("da_putBlob", json!([encoded])).await?;
        latency.record(sent.elapsed().as_micros() as u64)?;
        encode_ms += answer["encodeMs"].as_u64().unwrap_or(0);
        disperse_ms += answer["disperseMs"].as_u64().unwrap_or(0);
        last_blob = answer["blobId"].as_str().context("blobId")?.to_string();
        last_payload.clone_from(&payload);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = (args.blobs * payload.len()) as f64;
    println!(
        "DA dispersal: {} blobs of {} MiB, {} DA nodes, k=1024 m=2048",
        args.blobs, args.size_mib, args.nodes
    );
    println!(
        "  throughput            {:.1} MB/s of payload (sequential blobs)",
        bytes / elapsed / 1e6
    );
    println!(
        "  latency to certificate p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        millis(&latency, 0.5),
        millis(&latency, 0.99),
        latency.max() as f64 / 1000.0
    );
    println!(
        "  per blob: encode {:.0} ms, disperse+sign {:.0} ms (means)",
        encode_ms as f64 / args.blobs as f64,
        disperse_ms as f64 / args.blobs as f64
    );
    let out = root.join("retrieved.bin");
    let get_started = Instant::now();
    let status = zerog
        .command()
        .args(["da", "get", "--quiet", &last_blob, "-o"])
        .arg(&out)
        .args(["--rpc", &chain_url])
        .status()?;
    if !status.success() || std::fs::read(&out)? != last_payload {
        bail!("retrieving {last_blob} failed or differed");
    }
    println!(
        "  retrieval (zerog da get, k shards verified and decoded) {:.0} ms",
        get_started.elapsed().as_secs_f64() * 1000.0
    );
    drop(nodes);
    drop(chain);
    Ok(())
}
