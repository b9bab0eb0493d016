//! Membership: which other storage nodes exist, which shard each stores, and whether they
//! answer. The chain's storage registry is the authority (a node registers itself there when it
//! has a chain account); a static peers file stands in on chains without the registry. Every
//! probe interval the list is re-read and each peer is asked for its shard (`zgs_getShardConfig`,
//! which must match what it registered) and status, which gives its latency. Peers are not
//! trusted with data: what they serve is verified against the chain's roots, and a peer that
//! serves something false is quarantined for a while (`repair.rs`).

use super::Node;
use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use anyhow::{Context, bail};
use chain_lite::STORAGE_REGISTRY_ADDRESS;
use chain_lite::abi::storage_registry;
use client::{Chain, Payer};
use futures_util::StreamExt;
use serde_json::json;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use types::ShardConfig;

/// Time a peer has to answer one probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Peers probed at once.
const PROBES_IN_FLIGHT: usize = 16;
/// Most peers a node keeps track of (the registry holds at most 4096 nodes).
pub const MAX_PEERS: usize = 4096;
/// Most lines a static peers file may hold.
const MAX_PEERS_FILE_BYTES: u64 = 1 << 20;

/// What the node knows of one other storage node.
#[derive(Clone, Debug)]
pub struct Peer {
    pub url: String,
    /// The shard it registered (or the peers file gives).
    pub shard: ShardConfig,
    /// It answered the last probe, with the shard it registered.
    pub healthy: bool,
    /// Round trip of its last status answer.
    pub latency_ms: u64,
    /// When it last answered, Unix seconds.
    pub last_seen_unix: i64,
    /// Failed probes and bad answers since start.
    pub errors: u64,
    /// Until when it is not asked for data (it served something that failed verification).
    pub quarantined_until: Option<Instant>,
}

impl Peer {
    /// Asked for data: healthy and not quarantined.
    pub fn usable(&self, now: Instant) -> bool {
        self.healthy && self.quarantined_until.is_none_or(|until| until <= now)
    }
}

/// The settings of membership, from the command line.
pub struct MembershipSettings {
    /// The URL this node registers and reports (never probed as a peer).
    pub endpoint: String,
    /// Register (or update) this node in the registry with this account and stake.
    pub register: Option<(Rc<Payer>, U256)>,
    /// The chain's JSON-RPC, where the registry is read.
    pub chain_url: String,
    /// A static list of peers (`URL ID/NUM` per line) for chains without the registry.
    pub peers_file: Option<PathBuf>,
    pub probe_every: Duration,
}

/// The peers of this node, refreshed by [`run`].
#[derive(Default)]
pub struct Peers {
    peers: RefCell<Vec<Peer>>,
    /// This node's own URL, once known.
    own_url: RefCell<String>,
}

impl Peers {
    /// A copy of the current list.
    pub fn list(&self) -> Vec<Peer> {
        self.peers.borrow().clone()
    }

    /// Keeps `peer` from being asked for data for `period`, and counts the error.
    pub fn quarantine(&self, url: &str, period: Duration) {
        if let Some(peer) = self.peers.borrow_mut().iter_mut().find(|p| p.url == url) {
            peer.quarantined_until = Some(Instant::now() + period);
            peer.errors += 1;
            tracing::warn!(peer = %url, seconds = period.as_secs(), "peer quarantined: it served a segment that failed verification");
        }
    }

    /// Counts an error of `peer` without quarantining it (a timeout, a refused call).
    pub fn count_error(&self, url: &str) {
        if let Some(peer) = self.peers.borrow_mut().iter_mut().find(|p| p.url == url) {
            peer.errors += 1;
        }
    }

    /// Replaces the list with `listed` (keeping what is known of peers still listed).
    fn replace(&self, listed: Vec<(String, ShardConfig)>) {
        let own = self.own_url.borrow().clone();
        let mut peers = self.peers.borrow_mut();
        let old = std::mem::take(&mut *peers);
        for (url, shard) in listed.into_iter().take(MAX_PEERS) {
            if url == own || peers.iter().any(|peer| peer.url == url) {
                continue;
            }
            let known = old
                .iter()
                .find(|peer| peer.url == url && peer.shard == shard);
            peers.push(known.cloned().unwrap_or(Peer {
                url,
                shard,
                healthy: false,
                latency_ms: 0,
                last_seen_unix: 0,
                errors: 0,
                quarantined_until: None,
            }));
        }
    }

    fn record_probe(&self, url: &str, outcome: &anyhow::Result<u64>) {
        let mut peers = self.peers.borrow_mut();
        let Some(peer) = peers.iter_mut().find(|peer| peer.url == url) else {
            return;
        };
        match outcome {
            Ok(latency_ms) => {
                if !peer.healthy {
                    tracing::info!(peer = %url, shard = %peer.shard, "peer answers");
                }
                peer.healthy = true;
                peer.latency_ms = *latency_ms;
                peer.last_seen_unix = now_unix();
            }
            Err(error) => {
                if peer.healthy {
                    tracing::warn!(peer = %url, error = %format!("{error:#}"), "peer stopped answering");
                }
                peer.healthy = false;
                peer.errors += 1;
            }
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Registers this node (when it has an account), then keeps the peer list and its health
/// current for as long as the node runs.
pub async fn run(node: Rc<Node>, settings: MembershipSettings) {
    *node.peers.own_url.borrow_mut() = settings.endpoint.clone();
    let chain = connect(&settings.chain_url).await;
    if let Some((payer, stake)) = &settings.register {
        let mut delay = Duration::from_millis(200);
        loop {
            match register(&chain, payer, &settings.endpoint, node.position, *stake).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot register in the storage registry yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    loop {
        let mut listed = match registry_nodes(&chain).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::debug!(error = %format!("{error:#}"), "the storage registry is not readable");
                Vec::new()
            }
        };
        if let Some(path) = &settings.peers_file {
            match read_peers_file(path) {
                Ok(file_peers) => listed.extend(file_peers),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot read the peers file")
                }
            }
        }
        node.peers.replace(listed);
        probe_all(&node).await;
        node.metrics
            .peers_healthy
            .set(node.peers.list().iter().filter(|peer| peer.healthy).count() as i64);
        tokio::time::sleep(settings.probe_every).await;
    }
}

async fn connect(url: &str) -> Chain {
    let mut delay = Duration::from_millis(100);
    loop {
        match client::Client::chain(url) {
            Ok(rpc) => match Chain::connect(rpc).await {
                Ok(chain) => return chain,
                Err(error) => tracing::debug!(%error, "cannot reach the chain for membership yet"),
            },
            Err(error) => tracing::warn!(%error, "cannot build the chain client"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Registers the node, or updates its record when its endpoint or shard changed.
async fn register(
    chain: &Chain,
    payer: &Payer,
    endpoint: &str,
    shard: ShardConfig,
    stake: U256,
) -> anyhow::Result<()> {
    let call = storage_registry::nodeCall {
        account: payer.address().into(),
    };
    let record = storage_registry::nodeCall::abi_decode_returns(
        &chain
            .view(STORAGE_REGISTRY_ADDRESS, &call.abi_encode())
            .await?,
    )
    .context("the chain has no storage registry (use --peers for a static list)")?;
    let (input, value, what) = if record.stake.is_zero() {
        let call = storage_registry::registerCall {
            endpoint: endpoint.to_string(),
            shardId: shard.shard_id,
            numShard: shard.num_shard,
        };
        (call.abi_encode(), stake, "registered")
    } else if record.endpoint != endpoint
        || (record.shardId, record.numShard) != (shard.shard_id, shard.num_shard)
    {
        let call = storage_registry::updateCall {
            endpoint: endpoint.to_string(),
            shardId: shard.shard_id,
            numShard: shard.num_shard,
        };
        (call.abi_encode(), U256::ZERO, "updated")
    } else {
        tracing::info!(%endpoint, %shard, "storage node already registered");
        return Ok(());
    };
    chain
        .send(payer, STORAGE_REGISTRY_ADDRESS, value, input)
        .await?;
    tracing::info!(%endpoint, %shard, account = %payer.address_hex(), "storage node {what}");
    Ok(())
}

/// Every node of the registry: URL and shard.
async fn registry_nodes(chain: &Chain) -> anyhow::Result<Vec<(String, ShardConfig)>> {
    let output = chain
        .view(
            STORAGE_REGISTRY_ADDRESS,
            &storage_registry::nodesCall {}.abi_encode(),
        )
        .await?;
    let nodes = storage_registry::nodesCall::abi_decode_returns(&output)
        .context("decoding the storage registry's nodes()")?;
    let count = nodes.endpoints.len();
    if nodes.shardIds.len() != count || nodes.numShards.len() != count {
        bail!("the storage registry's nodes() lists are of different lengths");
    }
    Ok((0..count)
        .filter_map(|i| {
            let shard = ShardConfig::new(nodes.numShards[i], nodes.shardIds[i]).ok()?;
            Some((nodes.endpoints[i].clone(), shard))
        })
        .collect())
}

/// A static peers file: one `URL ID/NUM` a line; `#` starts a comment.
pub fn read_peers_file(path: &Path) -> anyhow::Result<Vec<(String, ShardConfig)>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_PEERS_FILE_BYTES {
        bail!(
            "{} is {size} bytes; a peers file holds at most {MAX_PEERS_FILE_BYTES}",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut peers = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(url), Some(shard), None) = (fields.next(), fields.next(), fields.next()) else {
            bail!("{}:{}: expected `URL ID/NUM`", path.display(), number + 1);
        };
        let shard: ShardConfig = shard
            .parse()
            .map_err(|error| anyhow::anyhow!("{}:{}: {error}", path.display(), number + 1))?;
        peers.push((url.to_string(), shard));
    }
    Ok(peers)
}

/// Probes every peer, a bounded number at once.
async fn probe_all(node: &Node) {
    let peers = node.peers.list();
    let mut probes = futures_util::stream::iter(peers)
        .map(|peer| async move {
            let outcome = probe(&peer).await;
            (peer.url, outcome)
        })
        .buffer_unordered(PROBES_IN_FLIGHT);
    while let Some((url, outcome)) = probes.next().await {
        node.peers.record_probe(&url, &outcome);
    }
}

/// One probe: the peer's shard must be the one it registered; the status call's round trip is
/// its latency.
async fn probe(peer: &Peer) -> anyhow::Result<u64> {
    let rpc = client::Client::build(&peer.url, "storage node", PROBE_TIMEOUT)?
        .with_response_limit(64 << 10);
    let config: ShardConfig =
        serde_json::from_value(rpc.call("zgs_getShardConfig", json!([])).await?)
            .context("zgs_getShardConfig answered something other than a shard")?;
    if config != peer.shard {
        bail!(
            "it stores shard {config}, but is listed with {}",
            peer.shard
        );
    }
    let started = Instant::now();
    rpc.call("zgs_getStatus", json!([])).await?;
    Ok(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_files_list_urls_and_shards_and_refuse_what_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("peers");
        std::fs::write(
            &path,
            "# two nodes\nhttp://10.0.0.1:5678 0/2\n\nhttp://10.0.0.2:5678 1/2 # second\n",
        )
        .expect("write");
        let peers = read_peers_file(&path).expect("reads");
        assert_eq!(
            peers,
            vec![
                (
                    "http://10.0.0.1:5678".to_string(),
                    ShardConfig::new(2, 0).expect("valid")
                ),
                (
                    "http://10.0.0.2:5678".to_string(),
                    ShardConfig::new(2, 1).expect("valid")
                ),
            ]
        );
        for bad in ["http://a", "http://a 1/3", "http://a 0/2 extra"] {
            std::fs::write(&path, bad).expect("write");
            let error = read_peers_file(&path).expect_err(bad).to_string();
            assert!(error.contains(":1:"), "{error}");
        }
    }

    #[test]
    fn the_list_keeps_what_it_knows_and_never_holds_this_node() {
        let peers = Peers::default();
        *peers.own_url.borrow_mut() = "http://me".to_string();
        let half = ShardConfig::new(2, 0).expect("valid");
        peers.replace(vec![
            ("http://me".to_string(), half),
            ("http://a".to_string(), half),
            ("http://a".to_string(), half),
        ]);
        assert_eq!(peers.list().len(), 1);
        peers.record_probe("http://a", &Ok(7));
        peers.replace(vec![("http://a".to_string(), half)]);
        let peer = &peers.list()[0];
        assert!(peer.healthy && peer.latency_ms == 7);
        peers.quarantine("http://a", Duration::from_secs(60));
        assert!(!peers.list()[0].usable(Instant::now()));
        // A peer listed with another shard is a new peer: probed again before use.
        peers.replace(vec![(
            "http://a".to_string(),
            ShardConfig::new(2, 1).expect("valid"),
        )]);
        assert!(!peers.list()[0].healthy);
    }
}
