//! Dropping expired DA shards: every period, each data-plane shard removes the index entries
//! whose expiry has passed (in bounded commits); the extents keep the bytes as dead space.

use super::now_unix;
use crate::node::Node;
use dataplane::{Request, Response};
use std::rc::Rc;
use std::time::Duration;

/// Prunes expired shards on every data-plane shard, forever, every `period`.
pub async fn run(node: Rc<Node>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let now = now_unix();
        for shard in 0..node.shards.count() {
            prune_shard(&node, shard, now).await;
        }
    }
}

/// Prunes one data-plane shard until it reports nothing more expired; a failure waits for the
/// next period.
async fn prune_shard(node: &Node, shard: usize, now_unix_s: u64) {
    loop {
        let Ok(future) = node.shards.call(shard, Request::DaPrune { now_unix_s }) else {
            return;
        };
        match future.await {
            Response::DaPruned(pruned) => {
                node.metrics.da_shards_pruned.inc_by(pruned.shards);
                if pruned.shards > 0 {
                    tracing::info!(
                        shard,
                        pruned = pruned.shards,
                        bytes = pruned.record_bytes,
                        "pruned expired DA shards"
                    );
                }
                if !pruned.more {
                    return;
                }
            }
            other => {
                tracing::warn!(shard, ?other, "DA prune failed; retried next period");
                return;
            }
        }
    }
}
