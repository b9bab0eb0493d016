//! Starts and stops real `zerog node --dev` processes and talks to them over JSON-RPC.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ZEROG: &str = env!("CARGO_BIN_EXE_zerog");

pub struct NodeProcess {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl NodeProcess {
    /// Starts a dev node on a free loopback port and waits until it prints its endpoints.
    pub fn start(data_dir: &Path) -> NodeProcess {
        NodeProcess::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        // No dev S3 gateway: tests run nodes side by side, and the gateway has its own tests.
        let mut args = vec!["--dev", "--s3", "off"];
        args.extend_from_slice(extra);
        NodeProcess::spawn(data_dir, &args)
    }

    /// Starts a node that follows the chain at `chain_url` (no embedded chain), polling often.
    pub fn start_follower(data_dir: &Path, chain_url: &str) -> NodeProcess {
        NodeProcess::spawn(
            data_dir,
            &["--chain-rpc", chain_url, "--chain-poll-ms", "20"],
        )
    }

    /// Starts a DA node following the chain at `chain_url`, paying with `chain_key`, on one
    /// data-plane shard.
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

    fn spawn(data_dir: &Path, extra: &[&str]) -> NodeProcess {
        let mut child = Command::new(ZEROG)
            .args([
                "node",
                "--rpc",
                "127.0.0.1:0",
                "--extent-mib",
                "64",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the zerog binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the node prints its endpoints before anything else")
                .expect("stdout is readable");
            if let Some(url) = line.trim().strip_prefix("rpc") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        NodeProcess {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let status = self.child.wait().expect("reap");
        assert!(status.success(), "node exited with {status}");
    }

    pub fn rpc(&self) -> Rpc {
        Rpc::new(&self.url)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Rpc {
    http: reqwest::blocking::Client,
    url: String,
}

impl Rpc {
    pub fn new(url: &str) -> Rpc {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Rpc {
            http,
            url: url.to_string(),
        }
    }

    /// The whole JSON-RPC answer (result or error).
    pub fn raw(&self, method: &str, params: Value) -> Value {
        self.post(
            json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
                .to_string()
                .into_bytes(),
        )
    }

    pub fn post(&self, body: Vec<u8>) -> Value {
        self.http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("the node answers")
            .json()
            .expect("the answer is JSON")
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        let answer = self.raw(method, params);
        if let Some(error) = answer.get("error") {
            panic!("{method} failed: {error}");
        }
        answer["result"].clone()
    }

    /// The error's `data.kind` (or `already_finalized` for 0G's bare string).
    pub fn error_kind(&self, method: &str, params: Value) -> String {
        let answer = self.raw(method, params);
        let error = answer
            .get("error")
            .unwrap_or_else(|| panic!("{method} should fail: {answer}"));
        match &error["data"] {
            Value::String(text) if text == "already uploaded and finalized" => {
                "already_finalized".to_string()
            }
            data => data["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("error without kind: {error}"))
                .to_string(),
        }
    }

    pub fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .expect("metrics")
            .text()
            .expect("text")
    }

    pub fn metric(&self, name: &str) -> f64 {
        let text = self.metrics();
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .map(|value| value.trim().parse().expect("a number"))
            .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
    }

    /// Waits until the node knows tx `tx_seq` (bounded).
    pub fn wait_indexed(&self, tx_seq: u64) -> Value {
        let started = Instant::now();
        loop {
            let info = self.call("zgs_getFileInfoByTxSeq", json!([tx_seq]));
            if !info.is_null() {
                return info;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tx {tx_seq} never indexed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Deterministic pseudo-random bytes for test files.
pub fn random_bytes(seed: u64, size: usize) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = vec![0u8; size];
    rng.fill_bytes(&mut data);
    data
}

/// Runs the zerog CLI, returning stdout; panics with stderr on failure.
pub fn cli(args: &[&str]) -> String {
    let output = Command::new(ZEROG).args(args).output().expect("zerog runs");
    assert!(
        output.status.success(),
        "zerog {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Runs the zerog CLI expecting failure; returns stderr.
pub fn cli_fails(args: &[&str]) -> String {
    let output = Command::new(ZEROG).args(args).output().expect("zerog runs");
    assert!(!output.status.success(), "zerog {args:?} should fail");
    String::from_utf8(output.stderr).expect("utf-8")
}

/// One `SegmentWithProof` of `data` (whose tree is `tree`) as a client uploads it.
pub fn segment_json(tree: &merkle::file::FileTree, data: &[u8], index: u64) -> Value {
    let layout = tree.layout();
    let start = index as usize * types::SEGMENT_BYTES;
    let mut bytes = data[start..start + layout.segment_data_bytes(index) as usize].to_vec();
    bytes.resize(layout.segment_upload_bytes(index) as usize, 0);
    json!({
        "root": tree.root(),
        "data": base64_simd::STANDARD.encode_to_string(&bytes),
        "index": index,
        "proof": tree.proof(types::SegmentIndex(index)).expect("index in range"),
        "fileSize": tree.size_bytes(),
    })
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("controlplane sits inside the workspace")
        .to_path_buf()
}

/// A seed for random test data: `ZEROG_TEST_SEED` when set (to replay a run), else fresh.
pub fn test_seed() -> u64 {
    match std::env::var("ZEROG_TEST_SEED") {
        Ok(text) => text.trim().parse().expect("ZEROG_TEST_SEED must be a u64"),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos();
            nanos as u64 ^ u64::from(std::process::id())
        }
    }
}

/// The npm folder `sdk/`, checked to hold `package` (`sdk/node_modules/<package>`). Tests that
/// drive JavaScript tooling fail here, never skip, when `npm ci --prefix sdk` was not run.
pub fn sdk_with_package(package: &str) -> PathBuf {
    let sdk = workspace_root().join("sdk");
    let installed = sdk.join("node_modules").join(package).join("package.json");
    assert!(
        installed.is_file(),
        "npm package {package} is not installed: {} is missing; run `npm ci --prefix sdk` \
         (pinned in sdk/package.json and sdk/package-lock.json)",
        installed.display()
    );
    sdk
}

/// Panics with a clear message unless Node.js (`node` on the PATH) runs.
pub fn require_node_js() {
    match Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`node --version` failed ({}): Node.js is needed to run the sdk/ scripts",
            output.status
        ),
        Err(error) => {
            panic!("cannot run `node` ({error}): Node.js is needed to run the sdk/ scripts")
        }
    }
}
