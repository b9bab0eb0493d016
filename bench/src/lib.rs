//! What the benchmark binaries share: a `zerog node --dev` started through `harness` (the
//! `zerog` beside the benchmark, built in release mode; nothing is built here). They talk to it
//! with the `client` crate, as every other client does.

use harness::{Launch, Zerog};
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
