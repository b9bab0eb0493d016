//! `zerog da put | get | sample`: what the user reads. The work is the DA client's
//! (`da_client.rs`): dispersal through a node, retrieval and sampling that trust only the chain.

use super::da_client;
use crate::cli::DaCommand;
use anyhow::{Context, bail};
use std::path::Path;

pub async fn run(command: DaCommand) -> anyhow::Result<()> {
    match command {
        DaCommand::Put {
            file,
            rpc,
            data_shards,
            recovery_shards,
            kzg,
            quiet,
        } => {
            let params = da::blob::DaParams::new(data_shards, recovery_shards)?;
            put(&rpc, &file, params, kzg, quiet).await
        }
        DaCommand::Get {
            blob_id,
            out,
            rpc,
            quiet,
        } => get(&rpc, &blob_id, &out, quiet).await,
        DaCommand::Sample {
            blob_id,
            samples,
            rpc,
        } => sample(&rpc, &blob_id, samples).await,
    }
}

async fn put(
    rpc: &str,
    file: &Path,
    params: da::blob::DaParams,
    kzg: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let answer = da_client::put(rpc, file, params, kzg, quiet).await?;
    println!("blob {}", answer["blobId"].as_str().unwrap_or("?"));
    println!(
        "certified by {} of {} slots in epoch {} (transaction {})",
        answer["signedSlots"], answer["totalSlots"], answer["epoch"], answer["transactionHash"]
    );
    for commitment in answer["kzgCommitments"].as_array().into_iter().flatten() {
        println!("kzg {}", commitment.as_str().unwrap_or("?"));
    }
    if let Some(failures) = answer["failures"].as_array()
        && !failures.is_empty()
    {
        eprintln!("nodes that did not sign: {failures:?}");
    }
    Ok(())
}

async fn get(rpc: &str, blob_id: &str, out: &Path, quiet: bool) -> anyhow::Result<()> {
    let blob = da_client::parse_blob_id(blob_id)?;
    let retrieved = da_client::get(rpc, &blob, quiet).await?;
    for problem in retrieved.rejected.iter().chain(&retrieved.unreachable) {
        eprintln!("skipped: {problem}");
    }
    let Some(payload) = retrieved.payload else {
        bail!(
            "blob {blob_id} is empty by the validity rule ({}); nothing written",
            retrieved.empty_reason.unwrap_or_default()
        );
    };
    // Written beside the target and renamed: a reader never sees half a blob.
    let partial = out.with_extension("partial");
    std::fs::write(&partial, &payload)
        .and_then(|()| std::fs::rename(&partial, out))
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} bytes from {} verified shards written to {}",
        payload.len(),
        retrieved.verified,
        out.display()
    );
    Ok(())
}

async fn sample(rpc: &str, blob_id: &str, samples: usize) -> anyhow::Result<()> {
    let blob = da_client::parse_blob_id(blob_id)?;
    let sampled = da_client::sample(rpc, &blob, samples).await?;
    for failure in &sampled.failures {
        eprintln!("failed: {failure}");
    }
    let bound = da::sample::fooling_probability(&sampled.params, sampled.asked);
    println!(
        "{} of {} sampled shards available and verified",
        sampled.verified, sampled.asked
    );
    if sampled.verified != sampled.asked {
        bail!(
            "the blob failed sampling: {} shards missing or invalid",
            sampled.asked - sampled.verified
        );
    }
    println!("if the blob were unavailable, the chance of this outcome is at most {bound:.3e}");
    Ok(())
}
