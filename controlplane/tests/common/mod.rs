//! This package's `zerog` binary started through `harness`, with the panicking shapes the tests
//! here use: a node is started with 64 MiB extents, and no S3 gateway unless asked (tests run
//! nodes side by side, and the gateway has its own tests).
// Each test crate compiles this module and uses a part of it.
#![allow(dead_code, unused_imports)]

pub mod validators;

pub use harness::{
    Rpc, random_bytes, require_node_js, sdk_with_package, segment_json, test_seed,
    verified_segment, workspace_root,
};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The `zerog` binary cargo built for this package's tests.
pub const ZEROG: &str = env!("CARGO_BIN_EXE_zerog");

/// This package's `zerog` binary.
pub fn zerog() -> harness::Zerog {
    harness::Zerog::at(ZEROG)
}

/// A running `zerog node`; killed when dropped.
pub struct NodeProcess {
    process: harness::Process,
    pub url: String,
    pub data_dir: PathBuf,
}

impl NodeProcess {
    /// A dev node (embedded chain) with its JSON-RPC on a free loopback port.
    pub fn start(data_dir: &Path) -> NodeProcess {
        NodeProcess::start_with(data_dir, &[])
    }

    /// A dev node with more flags.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        NodeProcess::spawn(data_dir, &[&["--dev"], extra].concat())
    }

    /// A node that follows the chain at `chain_url` (no embedded chain), polling often.
    pub fn start_follower(data_dir: &Path, chain_url: &str) -> NodeProcess {
        NodeProcess::spawn(
            data_dir,
            &["--chain-rpc", chain_url, "--chain-poll-ms", "20"],
        )
    }

    /// A DA node following the chain at `chain_url`, paying with `chain_key`, on one data-plane
    /// shard.
    pub fn start_da(data_dir: &Path, chain_url: &str, chain_key: &str) -> NodeProcess {
        NodeProcess::spawn(
            data_dir,
            &[
                "--chain-rpc",
                chain_url,
                "--chain-poll-ms",
                "20",
                "--da",
                "--chain-key",
                chain_key,
                "--shards",
                "1",
            ],
        )
    }

    /// A node with exactly these flags (beside the data folder and the free port).
    pub fn spawn(data_dir: &Path, args: &[&str]) -> NodeProcess {
        let process = zerog()
            .test_node(data_dir)
            .args(args)
            .start()
            .expect("the node starts");
        let url = process.rpc_url().expect("a node prints its rpc endpoint");
        NodeProcess {
            process,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(self) {
        self.process.kill9().expect("kill -9");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(self) {
        self.process.stop().expect("a clean exit");
    }

    pub fn rpc(&self) -> Rpc {
        Rpc::new(&self.url)
    }
}

/// Runs the zerog CLI, returning stdout; panics with stderr on failure.
pub fn cli(args: &[&str]) -> String {
    harness::cli(&zerog(), args)
}

/// Runs the zerog CLI expecting failure; returns stderr.
pub fn cli_fails(args: &[&str]) -> String {
    harness::cli_fails(&zerog(), args)
}

/// Submits `tree` on the chain node (dev shortcut: a Flow submission without a signed
/// transaction, announced by the same Submit log); its tx seq.
pub fn submit_on_chain(chain: &Rpc, tree: &merkle::file::FileTree) -> u64 {
    let receipt = chain.call(
        "zerog_submit",
        serde_json::json!([{ "length": tree.size_bytes(), "tags": "0x", "nodes": tree.nodes() }]),
    );
    receipt["txSeq"].as_u64().expect("txSeq")
}

/// Waits (bounded) until `node` reports tx `tx_seq` finalized.
pub fn wait_finalized(node: &Rpc, tx_seq: u64) {
    let started = std::time::Instant::now();
    while node.call("zgs_checkFileFinalized", serde_json::json!([tx_seq]))
        != serde_json::json!(true)
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "tx {tx_seq} never finalized"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Held by a test that starts a network of processes, so the tests of one crate that do run one
/// at a time: each such network needs both cores of a CI machine to converge within its limits.
pub fn serial() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}
