//! End-to-end segment throughput of the data plane on this machine: verified, O_DIRECT-written,
//! synced and indexed writes, then checksummed reads, with the request ring kept full.
//!
//! `cargo bench -p dataplane --bench write_path` (set `ZEROG_BENCH_MIB` for the file size).
//! Each shard count runs twice: batches settled one after another (`sequential`) and settled
//! while the next batch is issued (`pipelined`), each followed by its per-phase times.

#[path = "../tests/common/mod.rs"]
mod common;

use common::TestFile;
use dataplane::{DataPlane, DataPlaneConfig, Request, Response, ShardClient};
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

fn run(shards: usize, pipelined: bool, file: &TestFile) {
    let dir = common::data_dir();
    let config = DataPlaneConfig {
        shards,
        extent_bytes: 256 << 20,
        ring_capacity: 256,
        pipelined,
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
    assert!(
        answers
            .iter()
            .all(|answer| matches!(answer, Response::Written { .. }))
    );

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
    assert!(
        answers
            .iter()
            .all(|answer| matches!(answer, Response::Data(_)))
    );

    let stats: Vec<_> = clients.iter_mut().map(common::stats).collect();
    let batches: u64 = stats.iter().map(|stats| stats.batches).sum();
    let mode = if pipelined { "pipelined" } else { "sequential" };
    println!(
        "{mode:>10} shards={shards} segments={segments} write {:.0} MB/s ({:.0} segments/s, {:.1} segments per batch) read {:.0} MB/s, buffers {}",
        bytes / write_secs / 1e6,
        segments as f64 / write_secs,
        segments as f64 / batches as f64,
        bytes / read_secs / 1e6,
        plane.buffer_mode(),
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
}

fn main() {
    let mib: usize = std::env::var("ZEROG_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let file = TestFile::new(1, mib << 20);
    assert_eq!(file.data.len() % SEGMENT_BYTES, 0);
    for shards in [1, 2] {
        for pipelined in [false, true] {
            run(shards, pipelined, &file);
        }
    }
}
