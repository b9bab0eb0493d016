//! Prometheus metrics served at `/metrics`. Names are part of the node's interface: they are
//! listed in `docs/metrics.md`, and a test checks that every documented name is exported.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    pub shard: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardPhaseLabel {
    pub shard: String,
    pub phase: String,
}

pub struct Metrics {
    registry: Registry,
    pub ingest_bytes: Counter,
    pub ingest_segments: Counter,
    pub download_bytes: Counter,
    pub download_segments: Counter,
    pub rpc_errors: Family<KindLabel, Counter>,
    pub rpc_duration: Family<MethodLabel, Histogram>,
    pub segment_write_duration: Histogram,
    pub segment_read_duration: Histogram,
    pub shard_queue_depth: Family<ShardLabel, Gauge>,
    pub shard_disk_used_bytes: Family<ShardLabel, Gauge>,
    pub shard_batches: Family<ShardLabel, Gauge>,
    pub shard_phase_seconds: Family<ShardPhaseLabel, Gauge<f64, AtomicU64>>,
    pub files: Gauge,
    pub files_finalized: Gauge,
    pub log_sync_next_block: Gauge,
    pub chain_height: Gauge,
    pub log_sync_errors: Counter,
    pub da_shards_stored: Counter,
    pub da_shards_served: Counter,
    pub da_shards_pruned: Counter,
    pub da_blobs_dispersed: Counter,
}

fn latency_histogram() -> Histogram {
    // 10 µs .. ~42 s in powers of two: covers a cached read and a slow fsync alike.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 22))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("zerog");
        let ingest_bytes = Counter::default();
        registry.register(
            "ingest_bytes",
            "Segment bytes acknowledged durable",
            ingest_bytes.clone(),
        );
        let ingest_segments = Counter::default();
        registry.register(
            "ingest_segments",
            "Segments acknowledged durable",
            ingest_segments.clone(),
        );
        let download_bytes = Counter::default();
        registry.register(
            "download_bytes",
            "Segment bytes served to clients",
            download_bytes.clone(),
        );
        let download_segments = Counter::default();
        registry.register(
            "download_segments",
            "Segments served to clients",
            download_segments.clone(),
        );
        let rpc_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "rpc_errors",
            "JSON-RPC errors answered, by kind",
            rpc_errors.clone(),
        );
        let rpc_duration = Family::<MethodLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "rpc_duration_seconds",
            "JSON-RPC call latency by method",
            rpc_duration.clone(),
        );
        let segment_write_duration = latency_histogram();
        registry.register(
            "segment_write_duration_seconds",
            "Shard round trip of one segment write: hash, verify, write, sync",
            segment_write_duration.clone(),
        );
        let segment_read_duration = latency_histogram();
        registry.register(
            "segment_read_duration_seconds",
            "Shard round trip of one segment read",
            segment_read_duration.clone(),
        );
        let shard_queue_depth = Family::<ShardLabel, Gauge>::default();
        registry.register(
            "shard_queue_depth",
            "Requests sent to a shard and not yet answered",
            shard_queue_depth.clone(),
        );
        let shard_disk_used_bytes = Family::<ShardLabel, Gauge>::default();
        registry.register(
            "shard_disk_used_bytes",
            "Bytes of extents a shard has written",
            shard_disk_used_bytes.clone(),
        );
        let shard_batches = Family::<ShardLabel, Gauge>::default();
        registry.register(
            "shard_batches",
            "Write batches a shard has committed since start",
            shard_batches.clone(),
        );
        let shard_phase_seconds = Family::<ShardPhaseLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "shard_phase_seconds",
            "Seconds a shard spent per write-path phase since start (verify, place, write, sync, commit, settle_wait)",
            shard_phase_seconds.clone(),
        );
        let files = Gauge::default();
        registry.register("files", "Files known from the chain", files.clone());
        let files_finalized = Gauge::default();
        registry.register(
            "files_finalized",
            "Files whose data is completely stored",
            files_finalized.clone(),
        );
        let log_sync_next_block = Gauge::default();
        registry.register(
            "log_sync_next_block",
            "Next chain block the log sync will read",
            log_sync_next_block.clone(),
        );
        let chain_height = Gauge::default();
        registry.register(
            "chain_height",
            "Height of the embedded chain's head, or the remote chain's last final block",
            chain_height.clone(),
        );
        let log_sync_errors = Counter::default();
        registry.register(
            "log_sync_errors",
            "Failed rounds of tailing a remote chain (each is retried)",
            log_sync_errors.clone(),
        );
        let da_shards_stored = Counter::default();
        registry.register(
            "da_shards_stored",
            "DA shards verified and stored by this DA node",
            da_shards_stored.clone(),
        );
        let da_shards_served = Counter::default();
        registry.register(
            "da_shards_served",
            "DA shards served to retrievers",
            da_shards_served.clone(),
        );
        let da_shards_pruned = Counter::default();
        registry.register(
            "da_shards_pruned",
            "DA shards removed after their retention window",
            da_shards_pruned.clone(),
        );
        let da_blobs_dispersed = Counter::default();
        registry.register(
            "da_blobs_dispersed",
            "Blobs this node dispersed and certified",
            da_blobs_dispersed.clone(),
        );
        Metrics {
            registry,
            ingest_bytes,
            ingest_segments,
            download_bytes,
            download_segments,
            rpc_errors,
            rpc_duration,
            segment_write_duration,
            segment_read_duration,
            shard_queue_depth,
            shard_disk_used_bytes,
            shard_batches,
            shard_phase_seconds,
            files,
            files_finalized,
            log_sync_next_block,
            chain_height,
            log_sync_errors,
            da_shards_stored,
            da_shards_served,
            da_shards_pruned,
            da_blobs_dispersed,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    pub fn error(&self, kind: &str) {
        self.rpc_errors
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name documented in docs/metrics.md is exported, so the document cannot rot.
    #[test]
    fn documented_names_are_exported() {
        let metrics = Metrics::new();
        metrics.error("bad_proof");
        metrics
            .rpc_duration
            .get_or_create(&MethodLabel {
                method: "zgs_getStatus".into(),
            })
            .observe(0.001);
        metrics
            .shard_queue_depth
            .get_or_create(&ShardLabel { shard: "0".into() })
            .set(0);
        metrics
            .shard_disk_used_bytes
            .get_or_create(&ShardLabel { shard: "0".into() })
            .set(0);
        metrics
            .shard_batches
            .get_or_create(&ShardLabel { shard: "0".into() })
            .set(0);
        metrics
            .shard_phase_seconds
            .get_or_create(&ShardPhaseLabel {
                shard: "0".into(),
                phase: "verify".into(),
            })
            .set(0.0);
        let text = metrics.render();
        let doc = include_str!("../../docs/metrics.md");
        let names: Vec<&str> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .collect();
        assert!(
            names.len() >= 10,
            "docs/metrics.md lists the metrics in a table"
        );
        for name in names {
            assert!(
                text.contains(name),
                "documented metric {name} is not exported:\n{text}"
            );
        }
    }
}
