//! End-to-end segment throughput of the data plane on this machine: verified, O_DIRECT-written,
//! synced and indexed writes, then checksummed reads, with the request ring kept full.
//!
//! `cargo bench -p dataplane --bench write_path` (`ZEROG_BENCH_MIB` sets the file size,
//! `ZEROG_BENCH_ROUNDS` the rounds, `ZEROG_BENCH_SHARDS` the shard counts, default `1,2`,
//! `ZEROG_BENCH_VARIANTS` a comma-separated subset of the variants below). For each shard count, batches settled one after another
//! (`sequential`) and settled while the next batch is issued (`pipelined`), each with three
//! IO memory sizes, alternated round by round and each round in a rotated order:
//!
//! - `measured`: the default, two batches of full records per shard, registered as far as
//!   the kernel grants it (measured at start);
//! - `old plan`: what sizing from `RLIMIT_MEMLOCK` alone gave (a quarter of headroom, three
//!   rings per shard), which ignores `CAP_IPC_LOCK`;
//! - `heap`: glommio's minimum 64 KiB slab, smaller than one record, so every record buffer
//!   comes from the heap (reused, never registered).
//!
//! Each run prints its throughput and per-phase times; each configuration ends with the
//! median of its rounds per variant and the ratio to `old plan` (when it ran).

#[path = "../tests/common/mod.rs"]
mod common;

use common::TestFile;
use dataplane::{DataPlane, DataPlaneConfig, Request, Response, ShardClient};
use kernel_bypass::{GLOMMIO_MIN_IO_MEMORY_BYTES, MemlockBudget};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use types::SEGMENT_BYTES;

/// Sends every request with at most `capacity` in flight per shard; returns answers received.
fn pump(clients: &mut [ShardClient], requests: Vec<(usize, Request)>) -> Vec<Response> {
    let mut queues: Vec<VecDeque<Request>> = clients.iter().map(|_| VecDeque::new()).collect();
    for (shard, request) in requests {
        queues[shard].push_back(request);
    }
    let total: usize = queues.iter().map(VecDeque::len).sum();
    let mut answers = Vec::with_capacity(total);
    let mut drained = Vec::new();
    let mut next_id = 0u64;
    while answers.len() < total {
        for (client, queue) in clients.iter_mut().zip(queues.iter_mut()) {
            while let Some(request) = queue.pop_front() {
                match client.try_send(next_id, request) {
                    Ok(()) => next_id += 1,
                    Err(full) => {
                        queue.push_front(full.request);
                        break;
                    }
                }
            }
            if client.queue_depth() > 0 && client.wait(Duration::from_millis(1)) {
                client.drain(&mut drained);
                answers.extend(drained.drain(..).map(|(_, answer)| answer));
            }
        }
    }
    answers
}

/// An IO memory size to compare.
#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    io_memory_bytes_per_shard: Option<usize>,
}

/// Write and read throughput of one run, MB/s.
#[derive(Clone, Copy)]
struct Outcome {
    write_mbps: f64,
    read_mbps: f64,
}

fn run(shards: usize, pipelined: bool, variant: Variant, file: &TestFile) -> Outcome {
    let dir = common::data_dir();
    let config = DataPlaneConfig {
        shards,
        position: types::ShardConfig::ALL,
        extent_bytes: 256 << 20,
        ring_capacity: 256,
        pipelined,
        io_memory_bytes_per_shard: variant.io_memory_bytes_per_shard,
        ..DataPlaneConfig::new(dir.path())
    };
    let (plane, mut clients) = DataPlane::start(config).expect("start");
    let segments = file.segments();
    let bytes = file.data.len() as f64;

    let writes = (0..segments)
        .map(|segment| {
            (
                plane.shard_for(types::FlowSegmentIndex(segment)),
                file.write(segment, segment),
            )
        })
        .collect();
    let started = Instant::now();
    let answers = pump(&mut clients, writes);
    let write_secs = started.elapsed().as_secs_f64();
    if let Some(answer) = answers
        .iter()
        .find(|answer| !matches!(answer, Response::Written { .. }))
    {
        panic!("a write was answered {answer:?}");
    }

    let reads = (0..segments)
        .map(|segment| {
            (
                plane.shard_for(types::FlowSegmentIndex(segment)),
                file.read(segment, segment),
            )
        })
        .collect();
    let started = Instant::now();
    let answers = pump(&mut clients, reads);
    let read_secs = started.elapsed().as_secs_f64();
    if let Some(answer) = answers
        .iter()
        .find(|answer| !matches!(answer, Response::Data(_)))
    {
        panic!("a read was answered {answer:?}");
    }

    let stats: Vec<_> = clients.iter_mut().map(common::stats).collect();
    let batches: u64 = stats.iter().map(|stats| stats.batches).sum();
    let mode = if pipelined { "pipelined" } else { "sequential" };
    let outcome = Outcome {
        write_mbps: bytes / write_secs / 1e6,
        read_mbps: bytes / read_secs / 1e6,
    };
    let report = plane.buffer_report();
    println!(
        "{mode:>10} {:<8} shards={shards} segments={segments} write {:.0} MB/s ({:.0} segments/s, {:.1} segments per batch) read {:.0} MB/s, buffers {}, pinned {} bytes (VmPin {:?} -> {:?})",
        variant.name,
        outcome.write_mbps,
        segments as f64 / write_secs,
        segments as f64 / batches as f64,
        outcome.read_mbps,
        report.mode,
        report.pinned_bytes,
        report.process_pinned_bytes_before,
        report.process_pinned_bytes_after,
    );
    // Milliseconds per batch in each phase, per shard (see `ShardStats`).
    for stats in &stats {
        let per_batch = |ns: u64| ns as f64 / stats.batches.max(1) as f64 / 1e6;
        println!(
            "           shard {} ms/batch: verify {:.2} place+copy {:.2} | write {:.2} sync {:.2} commit {:.2} | waited {:.2}",
            stats.shard,
            per_batch(stats.verify_ns),
            per_batch(stats.place_ns),
            per_batch(stats.write_ns),
            per_batch(stats.sync_ns),
            per_batch(stats.commit_ns),
            per_batch(stats.settle_wait_ns),
        );
    }
    plane.shutdown().expect("clean shutdown");
    outcome
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let mib = env_usize("ZEROG_BENCH_MIB", 64);
    let rounds = env_usize("ZEROG_BENCH_ROUNDS", 3).max(1);
    let file = TestFile::new(1, mib << 20);
    assert_eq!(file.data.len() % SEGMENT_BYTES, 0);
    let rlimit_only = MemlockBudget::with_limit(MemlockBudget::probe().limit_bytes);
    let desired = dataplane::default_io_memory_bytes(dataplane::DEFAULT_MAX_BATCH);
    let shard_counts: Vec<usize> = std::env::var("ZEROG_BENCH_SHARDS").map_or_else(
        |_| vec![1, 2],
        |counts| {
            counts
                .split(',')
                .filter_map(|c| c.trim().parse().ok())
                .collect()
        },
    );
    for shards in shard_counts {
        let all = [
            Variant {
                name: "measured",
                io_memory_bytes_per_shard: None,
            },
            Variant {
                name: "old plan",
                io_memory_bytes_per_shard: Some(rlimit_only.plan(shards, desired)),
            },
            Variant {
                name: "heap",
                io_memory_bytes_per_shard: Some(GLOMMIO_MIN_IO_MEMORY_BYTES),
            },
        ];
        let variants: Vec<Variant> = match std::env::var("ZEROG_BENCH_VARIANTS") {
            Ok(names) => all
                .into_iter()
                .filter(|variant| names.split(',').any(|name| name.trim() == variant.name))
                .collect(),
            Err(_) => all.to_vec(),
        };
        assert!(
            !variants.is_empty(),
            "ZEROG_BENCH_VARIANTS names no variant"
        );
        let baseline = variants
            .iter()
            .position(|variant| variant.name == "old plan")
            .unwrap_or(0);
        for pipelined in [false, true] {
            let mut outcomes: Vec<Vec<Outcome>> = variants.iter().map(|_| Vec::new()).collect();
            for round in 0..rounds {
                for turn in 0..variants.len() {
                    let which = (round + turn) % variants.len();
                    outcomes[which].push(run(shards, pipelined, variants[which], &file));
                }
            }
            let write =
                |which: usize| median(outcomes[which].iter().map(|o| o.write_mbps).collect());
            let read = |which: usize| median(outcomes[which].iter().map(|o| o.read_mbps).collect());
            let mode = if pipelined { "pipelined" } else { "sequential" };
            for (which, variant) in variants.iter().enumerate() {
                println!(
                    "SUMMARY {mode:>10} shards={shards} {:<8} io_memory={:<9} median of {rounds}: write {:.0} MB/s ({:.3}x {}) read {:.0} MB/s ({:.3}x)",
                    variant.name,
                    variant
                        .io_memory_bytes_per_shard
                        .map_or_else(|| desired.to_string(), |bytes| bytes.to_string()),
                    write(which),
                    write(which) / write(baseline),
                    variants[baseline].name,
                    read(which),
                    read(which) / read(baseline),
                );
            }
        }
    }
}
