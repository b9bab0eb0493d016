//! What the benchmark binaries share: a `zerog node --dev` started through `harness` (the
//! `zerog` beside the benchmark, built in release mode; nothing is built here), and async
//! JSON-RPC calls, so a benchmark's client never blocks its runtime.

use anyhow::{Context, bail};
use harness::{Launch, Zerog};
use serde_json::{Value, json};
use std::path::Path;

/// `zerog node --dev` in `data_dir`, without its S3 gateway, on `shards` data-plane shards (by
/// default one per core). Add flags to the launch, then start it.
pub fn dev_node(data_dir: &Path, shards: Option<usize>) -> anyhow::Result<Launch> {
    let mut launch = Zerog::locate()?.node(data_dir).arg("--dev");
    if let Some(shards) = shards {
        launch = launch.args(["--shards", &shards.to_string()]);
    }
    Ok(launch)
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
