//! Storage macro benchmark: ingest and download through a real `zerog node --dev` process,
//! side by side with `fio` on the same disk in the same run, reported as ratios.
//!
//! ```sh
//! cargo build --release --bin zerog --bin storage-bench
//! target/release/storage-bench --size-mib 1024 --dir /path/on/the/disk
//! ```
//! The node binary is taken from beside this one. Results go to stdout as a Markdown table.

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use merkle::file::FileTree;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use types::SEGMENT_BYTES;

#[derive(Parser)]
struct Args {
    /// File size in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: usize,
    /// Folder on the disk under test (node data and fio's file go here).
    #[arg(long, default_value = "./bench-data")]
    dir: PathBuf,
    /// Segments per upload request.
    #[arg(long, default_value_t = 4)]
    segments_per_request: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Single-segment reads for the latency histogram.
    #[arg(long, default_value_t = 4000)]
    latency_reads: usize,
    /// Node shards (default: one per core).
    #[arg(long)]
    shards: Option<usize>,
}

/// Runs fio and returns its bandwidth in bytes per second.
fn fio(dir: &Path, mode: &str, size_mib: usize) -> anyhow::Result<f64> {
    let output = Command::new("fio")
        .args([
            "--name=bench",
            &format!("--filename={}", dir.join("fio.dat").display()),
            &format!("--size={size_mib}M"),
            &format!("--rw={mode}"),
            "--bs=1M",
            "--direct=1",
            "--ioengine=io_uring",
            "--iodepth=16",
            "--end_fsync=1",
            "--output-format=json",
        ])
        .output()
        .context("running fio (apt-get install fio)")?;
    if !output.status.success() {
        bail!("fio failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("fio's JSON")?;
    let job = &report["jobs"][0][if mode == "write" { "write" } else { "read" }];
    let bytes_per_second = job["bw_bytes"].as_f64().context("fio bw_bytes")?;
    Ok(bytes_per_second)
}

fn gbps(bytes: f64, seconds: f64) -> f64 {
    bytes / seconds / 1e9
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = args.size_mib * 1024 * 1024;
    std::fs::create_dir_all(&args.dir)?;
    let node_dir = args.dir.join("node");
    let _ = std::fs::remove_dir_all(&node_dir);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let data = harness::random_bytes(42, size);

    // Hashing bound: our tree on one core, times the cores.
    let started = Instant::now();
    let tree = FileTree::from_bytes(&data)?;
    let hash_seconds = started.elapsed().as_secs_f64();
    let hash_bound = size as f64 / hash_seconds * cores as f64;

    let fio_write = fio(&args.dir, "write", args.size_mib)?;
    let fio_read = fio(&args.dir, "read", args.size_mib)?;
    let _ = std::fs::remove_file(args.dir.join("fio.dat"));

    let node = bench::dev_node(&node_dir, args.shards)?.start()?;
    let url = node.rpc_url()?;
    let rpc = client::Client::new(&url)?;
    let receipt = rpc
        .call(
            "zerog_submit",
            json!([{ "length": size, "tags": "0x", "nodes": tree.nodes() }]),
        )
        .await?;
    let tx_seq = receipt["txSeq"].as_u64().context("txSeq")?;

    // Request bodies are encoded before the clock starts: the client's base64 is not the node's work.
    let layout = *tree.layout();
    let indices: Vec<u64> = (0..layout.data_segments).collect();
    let bodies: Vec<String> = indices
        .chunks(args.segments_per_request)
        .map(|chunk| {
            let segments: Vec<Value> = chunk
                .iter()
                .map(|&index| harness::segment_json(&tree, &data, index))
                .collect();
            json!([segments, tx_seq]).to_string()
        })
        .collect();
    let started = Instant::now();
    let mut uploads = futures_util::stream::iter(bodies)
        .map(|params| rpc.call_raw("zgs_uploadSegmentsByTxSeq", params))
        .buffer_unordered(args.parallel);
    while let Some(result) = uploads.next().await {
        result?;
    }
    drop(uploads);
    let ingest_seconds = started.elapsed().as_secs_f64();
    let info = rpc.call("zgs_getFileInfoByTxSeq", json!([tx_seq])).await?;
    if info["finalized"] != json!(true) {
        bail!("file not finalized after every segment was acknowledged: {info}");
    }

    // Download with proofs: throughput of the whole file, then verified.
    let started = Instant::now();
    let mut downloads = futures_util::stream::iter(indices.clone())
        .map(|index| {
            let rpc = &rpc;
            async move {
                let answer = rpc
                    .call(
                        "zgs_downloadSegmentWithProofByTxSeq",
                        json!([tx_seq, index]),
                    )
                    .await?;
                anyhow::Ok((index, answer))
            }
        })
        .buffer_unordered(args.parallel);
    let mut answers = Vec::with_capacity(indices.len());
    while let Some(result) = downloads.next().await {
        answers.push(result?);
    }
    drop(downloads);
    let download_seconds = started.elapsed().as_secs_f64();
    for (index, answer) in &answers {
        let bytes = harness::verified_segment(answer, &tree.root(), size as u64, *index)
            .map_err(anyhow::Error::msg)?;
        let start = *index as usize * SEGMENT_BYTES;
        if bytes[..layout.segment_data_bytes(*index) as usize]
            != data[start..start + layout.segment_data_bytes(*index) as usize]
        {
            bail!("segment {index} differs from what was uploaded");
        }
    }
    drop(answers);

    // Latency of single-segment reads with `parallel` readers at once.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let picks: Vec<u64> = (0..args.latency_reads)
        .map(|_| rng.gen_range(0..layout.data_segments))
        .collect();
    let mut reads = futures_util::stream::iter(picks)
        .map(|index| {
            let rpc = &rpc;
            async move {
                let started = Instant::now();
                rpc.call(
                    "zgs_downloadSegmentWithProofByTxSeq",
                    json!([tx_seq, index]),
                )
                .await?;
                anyhow::Ok(started.elapsed())
            }
        })
        .buffer_unordered(args.parallel);
    while let Some(result) = reads.next().await {
        histogram.record(result?.as_micros().max(1) as u64)?;
    }
    drop(reads);
    drop(node);

    let ingest = size as f64 / ingest_seconds;
    let download = size as f64 / download_seconds;
    let ingest_bound = fio_write.min(hash_bound);
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| file size | {} MiB, {} shards on {cores} cores |",
        args.size_mib,
        args.shards.unwrap_or(cores)
    );
    println!(
        "| tree build, one core | {:.3} GB/s (hashing bound of all cores {:.3} GB/s) |",
        gbps(size as f64, hash_seconds),
        hash_bound / 1e9
    );
    println!(
        "| fio O_DIRECT io_uring write | {:.3} GB/s |",
        fio_write / 1e9
    );
    println!(
        "| fio O_DIRECT io_uring read | {:.3} GB/s |",
        fio_read / 1e9
    );
    println!(
        "| ingest through zgs_uploadSegmentsByTxSeq | {:.3} GB/s |",
        ingest / 1e9
    );
    println!(
        "| ingest / min(fio write, hashing bound) | {:.2}x (target 0.8x) |",
        ingest / ingest_bound
    );
    println!("| download with proofs | {:.3} GB/s |", download / 1e9);
    println!("| download / fio read | {:.2}x |", download / fio_read);
    println!(
        "| single-segment read latency, {} in flight | p50 {} us, p99 {} us, p999 {} us |",
        args.parallel,
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999)
    );
    Ok(())
}
