//! Helpers shared by the data plane's integration tests: files with proofs, and a blocking
//! request/response driver over a `ShardClient`.
#![allow(dead_code)]

use dataplane::{DataPlaneConfig, Request, Response, ShardClient, ShardStats, WriteSegment};
use merkle::file::FileTree;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use types::{FlowSegmentIndex, SEGMENT_BYTES, SegmentIndex, TxSeq};

/// How long a test waits for answers before declaring the shard stuck.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A temporary directory on the same disk as the build (never tmpfs, which has no O_DIRECT).
/// Also installs the test log subscriber.
pub fn data_dir() -> tempfile::TempDir {
    init_logs();
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary data dir")
}

/// Installs the test log subscriber (filtered by `RUST_LOG`), once.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Small extents and batches so that tests exercise rollover and batching quickly.
pub fn config(dir: &Path, shards: usize) -> DataPlaneConfig {
    DataPlaneConfig {
        data_dir: dir.to_path_buf(),
        shards,
        position: types::ShardConfig::ALL,
        extent_bytes: 2 * SEGMENT_BYTES as u64,
        max_disk_bytes: None,
        ring_capacity: 64,
        max_batch: 16,
        pipelined: true,
        io_memory_bytes_per_shard: None,
    }
}

/// A file of `size` pseudo-random bytes and its Merkle tree.
pub struct TestFile {
    pub tx_seq: TxSeq,
    pub data: Vec<u8>,
    pub tree: FileTree,
}

impl TestFile {
    pub fn new(tx_seq: u64, size: usize) -> TestFile {
        let mut state = tx_seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                // xorshift: varied bytes, no dependency.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let tree = FileTree::from_bytes(&data).expect("non-empty file");
        TestFile {
            tx_seq: TxSeq(tx_seq),
            data,
            tree,
        }
    }

    pub fn segments(&self) -> u64 {
        self.data.len().div_ceil(SEGMENT_BYTES) as u64
    }

    /// What a client uploads for `segment`: its bytes, zero-filled to whole chunks.
    pub fn upload(&self, segment: u64) -> Vec<u8> {
        let start = segment as usize * SEGMENT_BYTES;
        let end = (start + SEGMENT_BYTES).min(self.data.len());
        let mut bytes = self.data[start..end].to_vec();
        bytes.resize(bytes.len().div_ceil(256) * 256, 0);
        bytes
    }

    pub fn write(&self, segment: u64, flow_segment: u64) -> Request {
        Request::Write(self.write_segment(segment, flow_segment))
    }

    pub fn write_segment(&self, segment: u64, flow_segment: u64) -> WriteSegment {
        WriteSegment {
            tx_seq: self.tx_seq,
            file_root: self.tree.root(),
            file_size: self.data.len() as u64,
            segment: SegmentIndex(segment),
            flow_segment: FlowSegmentIndex(flow_segment),
            data: self.upload(segment),
            proof: self
                .tree
                .proof(SegmentIndex(segment))
                .expect("segment in range"),
        }
    }

    pub fn read(&self, segment: u64, flow_segment: u64) -> Request {
        Request::Read {
            tx_seq: self.tx_seq,
            segment: SegmentIndex(segment),
            flow_segment: FlowSegmentIndex(flow_segment),
        }
    }

    pub fn segment_root(&self, segment: u64) -> types::H256 {
        self.tree.segment_roots()[segment as usize]
    }
}

/// Sends `requests` together (so the shard can batch them) and returns the answers in order.
pub fn call_all(client: &mut ShardClient, requests: Vec<Request>) -> Vec<Response> {
    let count = requests.len();
    for (request_id, request) in requests.into_iter().enumerate() {
        client
            .try_send(request_id as u64, request)
            .expect("the ring has room");
    }
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut answers = HashMap::new();
    let mut drained = Vec::new();
    while answers.len() < count {
        assert!(
            Instant::now() < deadline,
            "shard {} did not answer in time",
            client.shard()
        );
        if client.wait(Duration::from_millis(500)) {
            client.drain(&mut drained);
            answers.extend(drained.drain(..));
        }
    }
    assert_eq!(client.queue_depth(), 0);
    (0..count as u64)
        .map(|id| answers.remove(&id).expect("every request answered once"))
        .collect()
}

pub fn call(client: &mut ShardClient, request: Request) -> Response {
    call_all(client, vec![request]).pop().expect("one answer")
}

pub fn stats(client: &mut ShardClient) -> ShardStats {
    match call(client, Request::Stats) {
        Response::Stats(stats) => stats,
        other => panic!("expected stats, got {other:?}"),
    }
}

/// Open-file flags (octal, as in `/proc/self/fdinfo`) of every descriptor of this process
/// whose path ends with `suffix` and lies under `dir`.
pub fn open_flags(dir: &Path, suffix: &str) -> Vec<u32> {
    let mut flags = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !(target.starts_with(dir) && target.to_string_lossy().ends_with(suffix)) {
            continue;
        }
        let info_path = Path::new("/proc/self/fdinfo").join(entry.file_name());
        let Ok(info) = std::fs::read_to_string(info_path) else {
            continue;
        };
        if let Some(line) = info.lines().find(|line| line.starts_with("flags:")) {
            let octal = line.trim_start_matches("flags:").trim();
            flags.push(u32::from_str_radix(octal, 8).expect("octal flags"));
        }
    }
    flags
}
