//! What the benchmark binaries share: starting a real `zerog node` process (built next to the
//! benchmark, in release mode) and waiting for the endpoint it prints, and JSON-RPC calls.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A `zerog node` child process, killed when dropped.
pub struct NodeProcess {
    child: Child,
    pub url: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `zerog` binary beside the running benchmark.
pub fn zerog_exe() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name("zerog"))
}

impl NodeProcess {
    /// Runs `zerog node --rpc 127.0.0.1:0 ARGS…` and waits until it prints its RPC endpoint.
    pub fn start(args: &[&str]) -> anyhow::Result<NodeProcess> {
        let exe = zerog_exe()?;
        let mut child = Command::new(&exe)
            .args(["node", "--rpc", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!("starting {} (build it with --release first)", exe.display())
            })?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .context("the node exited before printing its endpoint")??;
            if let Some(url) = line.trim().strip_prefix("rpc") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(NodeProcess { child, url })
    }
}

/// One JSON-RPC call; a JSON-RPC error becomes an error naming the method.
pub async fn call(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> anyhow::Result<Value> {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let answer: Value = http.post(url).json(&body).send().await?.json().await?;
    if let Some(error) = answer.get("error") {
        bail!("{method}: {error}");
    }
    Ok(answer["result"].clone())
}

/// A 0x quantity.
pub fn quantity(value: &Value) -> anyhow::Result<u128> {
    let text = value.as_str().context("not a quantity")?;
    Ok(u128::from_str_radix(text.trim_start_matches("0x"), 16)?)
}
