//! The indexer methods the official SDK's `Indexer` client calls, served by every node: any
//! node is an indexer of its network.
//!
//! The SDK asks the indexer which storage nodes exist (`indexer_getShardedNodes`, then builds a
//! `StorageNode` client for each trusted node's `url` and spreads segments over them by shard)
//! and which nodes hold a file (`indexer_getFileLocations`, for downloads). The answer is this
//! node (unless it stores nothing) and every peer that answered its last probe (`node/peers.rs`:
//! the chain's storage registry, or `--peers`); file locations are those of them that report
//! the file finalized. The URL this node reports for itself is set once the listener is bound.
//!
//! Shapes follow 0G's indexer (`0g-storage-client`): a `ShardedNode` is
//! `{url, config: {numShard, shardId}, latency, since}` (latency in ms, since a Unix time in
//! seconds); node locations are a map from IP to `{city, region, country, loc, timezone}`.

use crate::node::Node;
use crate::node::files::FileState;
use crate::rpc::{Params, RpcError};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use types::{H256, ShardConfig};

/// The URL clients reach this node's JSON-RPC at; set once by `main` after binding.
static PUBLIC_URL: OnceLock<String> = OnceLock::new();

/// Records the URL this node reports to indexer clients. The first call wins (one node per
/// process); later calls are ignored.
pub fn set_public_url(url: String) {
    let _ = PUBLIC_URL.set(url);
}

/// The URL a client on this host reaches a listener bound to `address` at: a wildcard address
/// (`0.0.0.0`, `::`) is reported as the loopback of the same family, since a wildcard is not
/// something a client can connect to.
pub fn url_for_listen_address(address: SocketAddr) -> String {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, address.port()))
}

/// 0G's `ShardedNode`.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShardedNode {
    pub url: String,
    pub config: ShardConfig,
    /// RPC latency in milliseconds as the indexer measured it; this node is local to itself.
    pub latency: i64,
    /// When the entry was last refreshed, Unix seconds.
    pub since: i64,
}

/// This node as an indexer entry.
pub fn this_node(url: &str, config: ShardConfig, now_unix: i64) -> ShardedNode {
    ShardedNode {
        url: url.to_string(),
        config,
        latency: 0,
        since: now_unix,
    }
}

/// One entry of `indexer_getNodeLocations` (IP → location). A node knows no geography, so the
/// entry (keyed by the host of its URL) carries empty fields.
pub fn node_locations(url: &str) -> Value {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    // Strip the port: `[::1]:5678` → `::1`, `127.0.0.1:5678` → `127.0.0.1`.
    let ip = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(ip, _)| ip),
    };
    json!({
        ip: { "city": "", "region": "", "country": "", "loc": "", "timezone": "" }
    })
}

/// How long a peer has to say whether it holds a file.
const FILE_LOCATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Peers asked at once about a file.
const FILE_LOCATION_QUERIES: usize = 16;

/// This node, if it stores segments, and every usable peer, as indexer entries.
fn network(node: &Node, url: &str, now: i64) -> Vec<ShardedNode> {
    let mut nodes = Vec::new();
    if node.stores_segments {
        nodes.push(this_node(url, node.position, now));
    }
    let instant = std::time::Instant::now();
    nodes.extend(
        node.peers
            .list()
            .into_iter()
            .filter(|peer| peer.usable(instant))
            .map(|peer| ShardedNode {
                url: peer.url,
                config: peer.shard,
                latency: i64::try_from(peer.latency_ms).unwrap_or(i64::MAX),
                since: peer.last_seen_unix,
            }),
    );
    nodes
}

/// `indexer_getFileLocations`: the nodes that hold the file finalized (this one, and peers that
/// say so), or `null` when none does (0G's indexer lists a node only once the file is
/// finalized there).
async fn file_locations(node: &Node, url: &str, root: H256) -> Value {
    let now = now_unix();
    let mut found = Vec::new();
    if node.stores_segments && finalized_here(node, &root) {
        found.push(this_node(url, node.position, now));
    }
    let peers = network(node, url, now)
        .into_iter()
        .filter(|entry| entry.url != url);
    let mut asked = futures_util::stream::iter(peers)
        .map(|entry| async move {
            let rpc = client::Client::build(&entry.url, "storage node", FILE_LOCATION_TIMEOUT)
                .ok()?
                .with_response_limit(64 << 10);
            let info = rpc
                .call("zgs_getFileInfo", json!([root, true]))
                .await
                .ok()?;
            (info.get("finalized") == Some(&Value::Bool(true))).then_some(entry)
        })
        .buffered(FILE_LOCATION_QUERIES);
    while let Some(answer) = asked.next().await {
        found.extend(answer);
    }
    if found.is_empty() {
        Value::Null
    } else {
        json!(found)
    }
}

fn public_url() -> Result<&'static str, RpcError> {
    PUBLIC_URL.get().map(String::as_str).ok_or_else(|| {
        RpcError::internal(
            "the node's public URL is not known yet (set when the RPC listener binds)",
        )
    })
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Whether a file with `root` is finalized on this node.
fn finalized_here(node: &Node, root: &H256) -> bool {
    node.files
        .readable_tx_for_root(root)
        .and_then(|tx_seq| node.files.with_file(tx_seq, FileState::complete))
        .unwrap_or(false)
}

pub async fn dispatch(node: &Node, method: &str, mut params: Params) -> Result<Value, RpcError> {
    match method {
        "indexer_getShardedNodes" => {
            params.at_most(0)?;
            let trusted = network(node, public_url()?, now_unix());
            Ok(json!({ "trusted": trusted, "discovered": [] }))
        }
        "indexer_getNodeLocations" => {
            params.at_most(0)?;
            let mut locations = serde_json::Map::new();
            for entry in network(node, public_url()?, now_unix()) {
                if let Value::Object(location) = node_locations(&entry.url) {
                    locations.extend(location);
                }
            }
            Ok(Value::Object(locations))
        }
        "indexer_getFileLocations" => {
            params.at_most(1)?;
            let root: H256 = params.required(0, "root")?;
            Ok(file_locations(node, public_url()?, root).await)
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_have_the_shape_the_sdk_reads() {
        let value = json!([this_node(
            "http://127.0.0.1:5678",
            ShardConfig::ALL,
            1_700_000_000
        )]);
        assert_eq!(
            value,
            json!([{
                "url": "http://127.0.0.1:5678",
                "config": { "numShard": 1, "shardId": 0 },
                "latency": 0,
                "since": 1_700_000_000,
            }])
        );
    }

    #[test]
    fn node_locations_are_keyed_by_ip() {
        let empty = json!({ "city": "", "region": "", "country": "", "loc": "", "timezone": "" });
        assert_eq!(
            node_locations("http://127.0.0.1:5678"),
            json!({ "127.0.0.1": empty.clone() })
        );
        assert_eq!(node_locations("http://[::1]:80/"), json!({ "::1": empty }));
    }

    #[test]
    fn wildcard_listen_addresses_are_reported_as_loopback() {
        let url = |text: &str| url_for_listen_address(text.parse().expect("a socket address"));
        assert_eq!(url("0.0.0.0:5678"), "http://127.0.0.1:5678");
        assert_eq!(url("[::]:5678"), "http://[::1]:5678");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80");
    }
}
