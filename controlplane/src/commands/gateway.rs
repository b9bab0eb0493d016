//! `zerog gateway` and the gateway `zerog node --dev` starts beside itself: the command-line
//! glue around the `gateway` crate (credentials, payer key, listen address, signals).

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::Path;

use super::{client_runtime, terminated};
use crate::cli::GatewayArgs;

fn read_credentials(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading credentials from {}", path.display()))?;
    let mut credentials = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(access), Some(secret), None) => {
                credentials.push((access.to_string(), secret.to_string()))
            }
            _ => bail!(
                "{}:{}: expected `ACCESS_KEY SECRET_KEY`",
                path.display(),
                number + 1
            ),
        }
    }
    Ok(credentials)
}

pub fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let mut credentials = match &args.credentials {
        Some(path) => read_credentials(path)?,
        None => Vec::new(),
    };
    match (&args.access_key, &args.secret_key) {
        (Some(access), Some(secret)) => credentials.push((access.clone(), secret.clone())),
        (None, None) => {}
        _ => bail!("--access-key and --secret-key go together"),
    }
    if credentials.is_empty() {
        bail!(
            "no credentials: give --access-key and --secret-key or --credentials FILE (anonymous requests are always denied)"
        );
    }
    let payer_key = match args.key {
        Some(key) => key,
        None => {
            tracing::warn!("no --key: paying Flow submissions with dev account 1");
            chain_lite::DEV_ACCOUNTS[1].private_key.to_string()
        }
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let config = gateway::Config {
        node_url: args.node.clone(),
        data_dir: args.data_dir.clone(),
        credentials,
        payer_key,
        region: args.region,
        limits: gateway::Limits {
            max_object_bytes: args.max_object_mib * 1024 * 1024,
            max_body_memory_bytes: args.max_body_memory_mib * 1024 * 1024,
            ..gateway::Limits::default()
        },
    };
    let running =
        gateway::spawn(config, args.listen, args.threads).context("starting the S3 gateway")?;
    let runtime = client_runtime()?;
    // Watched before "ready" is printed: a SIGTERM sent right after it stops cleanly.
    let terminated = {
        let _context = runtime.enter();
        terminated()
    };
    println!("zerog gateway ready");
    println!("  s3       http://{}", running.address);
    println!("  node     {}", args.node);
    println!("  data     {}", args.data_dir.display());
    tracing::info!(address = %running.address, "gateway ready");
    runtime.block_on(async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
            () = terminated => tracing::info!("terminated, shutting down"),
        }
    });
    running.stop().context("stopping the S3 gateway")
}

/// The gateway of `zerog node --dev`: dev credentials, dev account 1 pays (account 0 is the
/// CLI's, so their nonces never race), data beside the node's.
pub fn start_dev(
    node_url: &str,
    node_data_dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<gateway::Running> {
    let data_dir = node_data_dir.join("gateway");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let config = gateway::Config {
        node_url: node_url.to_string(),
        data_dir,
        credentials: vec![(
            gateway::DEV_ACCESS_KEY.to_string(),
            gateway::DEV_SECRET_KEY.to_string(),
        )],
        payer_key: chain_lite::DEV_ACCOUNTS[1].private_key.to_string(),
        region: "us-east-1".to_string(),
        limits: gateway::Limits::default(),
    };
    gateway::spawn(config, listen, 2).context("starting the S3 gateway")
}
