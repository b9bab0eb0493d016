//! The storage node on the control-plane thread, one room per job, each owning its state:
//!
//! - `files`: the file table, finalization and recovery at start;
//! - `ingest`: the upload path (checks before the shards hash, writes through the rings);
//! - `reads`: the download path (segments, proofs, chunk ranges);
//! - `producer`: the embedded chain's block producer (transactions in, blocks sealed);
//! - `sync`: the log sync (Submit events of the embedded or a remote chain → files);
//! - `boot`: starting a node from its command-line arguments.
//!
//! [`Node`] only ties the rooms together with what they share: the index, the chain, the shard
//! rings and the metrics. Everything runs on the single control-plane thread, so state is in
//! `Cell`s and `RefCell`s, never blocking locks.

pub mod boot;
pub mod files;
mod finality;
pub mod ingest;
pub mod peers;
pub mod producer;
pub mod reads;
pub mod repair;
pub mod scrub;
pub mod sync;

use crate::chain::{ChainSource, EmbeddedChain};
use crate::da_node::DaHandles;
use crate::index::{FileRecord, Index};
use crate::metrics::{Metrics, ShardLabel, ShardPhaseLabel};
use crate::rpc::RpcError;
use crate::shards::Shards;
use dataplane::{Request, Response};
use files::FileTable;
use merkle::file::SubmissionNode;
use producer::Producer;
use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;
use sync::LogSync;
use types::H256;

/// What part of the flow a node stores: its shard, or nothing at all (a chain-only node).
#[derive(Clone, Copy, Debug)]
pub struct StorageRole {
    pub position: types::ShardConfig,
    pub stores_segments: bool,
}

pub struct Node {
    pub index: Index,
    /// The part of the flow this node stores (`--shard-position`).
    pub position: types::ShardConfig,
    /// `false` for a chain-only node: it stores no segments and is listed nowhere.
    pub stores_segments: bool,
    /// The other storage nodes and their health.
    pub peers: peers::Peers,
    /// What healing by pull remembers between rounds.
    pub repair: repair::Repair,
    pub chain: RefCell<ChainSource>,
    pub shards: Rc<Shards>,
    pub metrics: Metrics,
    pub files: FileTable,
    pub sync: LogSync,
    pub producer: Producer,
    /// DA: the chain as DA reads and pays it, the DA-node role, the encoder round robin.
    pub da: DaHandles,
    /// Workers for jobs that must not run on this thread (KZG multi-scalar multiplication).
    pub compute: Arc<compute::Pool>,
}

impl Node {
    pub fn new(
        index: Index,
        chain: ChainSource,
        shards: Rc<Shards>,
        files: Vec<FileRecord>,
        log_sync_next_block: u64,
        role: StorageRole,
        compute: Arc<compute::Pool>,
    ) -> Node {
        let StorageRole {
            position,
            stores_segments,
        } = role;
        let node = Node {
            index,
            position,
            stores_segments,
            peers: peers::Peers::default(),
            repair: repair::Repair::default(),
            chain: RefCell::new(chain),
            shards,
            metrics: Metrics::new(),
            files: FileTable::new(files, position),
            sync: LogSync::new(log_sync_next_block),
            producer: Producer::default(),
            da: DaHandles::default(),
            compute,
        };
        node.refresh_gauges();
        node
    }

    /// The embedded chain, for the Ethereum facade and the dev shortcut; a node that tails a
    /// remote chain refuses with a clear error.
    pub fn embedded(&self) -> Result<Ref<'_, EmbeddedChain>, RpcError> {
        Ref::filter_map(self.chain.borrow(), |source| match source {
            ChainSource::Embedded(chain) => Some(&**chain),
            ChainSource::Remote(_) => None,
        })
        .map_err(|_| no_embedded_chain())
    }

    pub fn embedded_mut(&self) -> Result<RefMut<'_, EmbeddedChain>, RpcError> {
        RefMut::filter_map(self.chain.borrow_mut(), |source| match source {
            ChainSource::Embedded(chain) => Some(&mut **chain),
            ChainSource::Remote(_) => None,
        })
        .map_err(|_| no_embedded_chain())
    }

    /// The data-plane shard (core) that stores `flow_segment`, which this node must own.
    pub fn core_for(&self, flow_segment: types::FlowSegmentIndex) -> usize {
        dataplane::shard_for(flow_segment, self.position, self.shards.count())
    }

    /// Publishes the file counts, the sync height and the chain height.
    pub fn refresh_gauges(&self) {
        let (files, finalized) = self.files.counts();
        self.metrics.files.set(files as i64);
        self.metrics.files_finalized.set(finalized as i64);
        self.metrics
            .log_sync_next_block
            .set(self.sync.next_block() as i64);
        self.metrics
            .chain_height
            .set(self.chain.borrow().head_number() as i64);
    }

    /// Asks every shard for its statistics and publishes queue depth, disk use, batches and
    /// time per write phase; a busy shard is skipped.
    pub async fn refresh_shard_gauges(&self) {
        for shard in 0..self.shards.count() {
            let label = ShardLabel {
                shard: shard.to_string(),
            };
            self.metrics
                .shard_queue_depth
                .get_or_create(&label)
                .set(self.shards.queue_depth(shard) as i64);
            let Ok(future) = self.shards.call(shard, Request::Stats) else {
                continue;
            };
            let Response::Stats(stats) = future.await else {
                continue;
            };
            self.metrics
                .shard_disk_used_bytes
                .get_or_create(&label)
                .set(stats.record_bytes_used as i64);
            self.metrics
                .shard_batches
                .get_or_create(&label)
                .set(stats.batches as i64);
            for (phase, nanoseconds) in [
                ("verify", stats.verify_ns),
                ("place", stats.place_ns),
                ("write", stats.write_ns),
                ("sync", stats.sync_ns),
                ("commit", stats.commit_ns),
                ("settle_wait", stats.settle_wait_ns),
            ] {
                self.metrics
                    .shard_phase_seconds
                    .get_or_create(&ShardPhaseLabel {
                        shard: shard.to_string(),
                        phase: phase.to_string(),
                    })
                    .set(nanoseconds as f64 / 1e9);
            }
        }
    }
}

fn no_embedded_chain() -> RpcError {
    RpcError::new(
        crate::rpc::METHOD_NOT_FOUND,
        "no_embedded_chain",
        "this node follows a remote chain: send chain calls and transactions to that chain's RPC",
    )
}

/// Submission nodes as 0G's `merkleNodes`: `[height, root]` pairs.
pub fn merkle_nodes(nodes: &[SubmissionNode]) -> Vec<(u64, H256)> {
    nodes.iter().map(|node| (node.height, node.root)).collect()
}
