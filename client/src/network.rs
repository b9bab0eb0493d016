//! The storage network as a client sees it: the nodes an indexer lists (any zerog node is one),
//! each with the shard of the flow it stores, and a choice of nodes that holds every shard the
//! asked number of times. A node that does not answer the indexer methods, or lists nothing, is
//! taken as a network of itself storing everything.

use crate::{Client, Error};
use serde_json::{Value, json};
use types::{FlowSegmentIndex, H256, ShardConfig};

/// Most nodes a client takes from an indexer's answer.
const MAX_NODES: usize = 1024;
/// Largest shard count a client accepts from an indexer.
const MAX_NUM_SHARD: u64 = 1 << 20;

/// One storage node: where it answers and what it stores.
#[derive(Clone)]
pub struct StorageNode {
    pub client: Client,
    pub shard: ShardConfig,
}

impl StorageNode {
    pub fn owns(&self, segment: FlowSegmentIndex) -> bool {
        self.shard.owns(segment)
    }
}

/// The storage nodes the indexer at `client` lists (`indexer_getShardedNodes`' trusted
/// nodes); `client` itself storing everything when it lists none or has no indexer.
pub async fn storage_nodes(client: &Client) -> Result<Vec<StorageNode>, Error> {
    let listed = match client.call("indexer_getShardedNodes", json!([])).await {
        Ok(answer) => parse_nodes(&answer["trusted"])?,
        Err(Error::Node(_)) => Vec::new(),
        Err(error) => return Err(error),
    };
    if listed.is_empty() {
        return Ok(vec![itself(client)]);
    }
    Ok(listed)
}

/// The nodes that hold the finalized file `root` (`indexer_getFileLocations`); `client`
/// itself when it names none or has no indexer.
pub async fn holders(client: &Client, root: H256) -> Result<Vec<StorageNode>, Error> {
    let listed = match client.call("indexer_getFileLocations", json!([root])).await {
        Ok(Value::Null) => Vec::new(),
        Ok(answer) => parse_nodes(&answer)?,
        Err(Error::Node(_)) => Vec::new(),
        Err(error) => return Err(error),
    };
    if listed.is_empty() {
        return Ok(vec![itself(client)]);
    }
    Ok(listed)
}

fn itself(client: &Client) -> StorageNode {
    StorageNode {
        client: client.clone(),
        shard: ShardConfig::ALL,
    }
}

/// `[{url, config: {numShard, shardId}}, …]` as nodes.
fn parse_nodes(list: &Value) -> Result<Vec<StorageNode>, Error> {
    let bad = |detail: String| Error::Answer {
        what: "the indexer's node list",
        detail,
    };
    let Some(entries) = list.as_array() else {
        return Err(bad(format!("not a list: {list}")));
    };
    entries
        .iter()
        .take(MAX_NODES)
        .map(|entry| {
            let url = entry["url"]
                .as_str()
                .ok_or_else(|| bad(format!("an entry without a url: {entry}")))?;
            let shard: ShardConfig = serde_json::from_value(entry["config"].clone())
                .map_err(|error| bad(format!("{url}: {error}")))?;
            let shard = ShardConfig::new(shard.num_shard, shard.shard_id)
                .ok()
                .filter(|shard| shard.num_shard <= MAX_NUM_SHARD)
                .ok_or_else(|| bad(format!("{url}: an impossible shard {shard}")))?;
            Ok(StorageNode {
                client: Client::new(url)?,
                shard,
            })
        })
        .collect()
}

/// Nodes among `nodes` that together hold every flow segment at least `replicas` times:
/// nodes that store more of the flow first, then in the indexer's order (which lists the
/// fastest first). An error names the shard that has too few nodes.
pub fn select(nodes: &[StorageNode], replicas: usize) -> Result<Vec<StorageNode>, Error> {
    let replicas = replicas.max(1);
    // Coverage is counted per residue of the finest shard count in play.
    let finest = nodes
        .iter()
        .map(|node| node.shard.num_shard)
        .max()
        .unwrap_or(1);
    let residues = usize::try_from(finest).unwrap_or(usize::MAX).min(1 << 20);
    let mut covered = vec![0usize; residues];
    let mut ordered: Vec<&StorageNode> = nodes.iter().collect();
    ordered.sort_by_key(|node| node.shard.num_shard);
    let mut chosen = Vec::new();
    for node in ordered {
        let mine: Vec<usize> = (0..residues)
            .filter(|&residue| node.owns(FlowSegmentIndex(residue as u64)))
            .collect();
        if mine.iter().any(|&residue| covered[residue] < replicas) {
            for residue in mine {
                covered[residue] += 1;
            }
            chosen.push(node.clone());
        }
        if covered.iter().all(|&count| count >= replicas) {
            return Ok(chosen);
        }
    }
    let short = covered
        .iter()
        .position(|&count| count < replicas)
        .unwrap_or_default();
    Err(Error::NotEnoughNodes {
        residue: short as u64,
        of: finest,
        found: covered.get(short).copied().unwrap_or_default(),
        replicas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(url: &str, shard: &str) -> StorageNode {
        StorageNode {
            client: Client::new(url).expect("a client"),
            shard: shard.parse().expect("a shard"),
        }
    }

    fn urls(nodes: &[StorageNode]) -> Vec<&str> {
        nodes.iter().map(|node| node.client.url()).collect()
    }

    #[test]
    fn selection_covers_every_shard_the_asked_number_of_times() {
        let network = [
            node("http://a", "0/2"),
            node("http://b", "1/2"),
            node("http://c", "0/2"),
            node("http://d", "1/2"),
        ];
        assert_eq!(
            urls(&select(&network, 1).expect("one")),
            ["http://a", "http://b"]
        );
        assert_eq!(urls(&select(&network, 2).expect("two")).len(), 4);
        let error = select(&network, 3).err().expect("three is too many");
        assert!(error.to_string().contains("2 of the 3"), "{error}");
        // Mixed shard counts: a node of the whole flow covers everything at once.
        let mixed = [
            node("http://q", "1/4"),
            node("http://all", "0/1"),
            node("http://h", "0/2"),
        ];
        assert_eq!(urls(&select(&mixed, 1).expect("one")), ["http://all"]);
        let quarters = [
            node("http://x", "0/4"),
            node("http://y", "1/4"),
            node("http://z", "2/4"),
        ];
        assert!(select(&quarters, 1).is_err(), "shard 3/4 has no node");
    }

    #[test]
    fn indexer_answers_parse_or_are_refused() {
        let answer = json!([{ "url": "http://a", "config": { "numShard": 2, "shardId": 1 }, "latency": 3, "since": 1 }]);
        let nodes = parse_nodes(&answer).expect("parses");
        assert_eq!(nodes[0].shard.to_string(), "1/2");
        for bad in [
            json!({}),
            json!([{ "config": { "numShard": 1, "shardId": 0 } }]),
            json!([{ "url": "http://a", "config": { "numShard": 3, "shardId": 0 } }]),
            json!([{ "url": "http://a", "config": { "numShard": 2, "shardId": 2 } }]),
        ] {
            assert!(parse_nodes(&bad).is_err(), "{bad}");
        }
    }
}
