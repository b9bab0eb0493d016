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
pub struct PeerLabel {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabel {
    pub mode: String,
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
    pub io_memory_mode: Family<ModeLabel, Gauge>,
    pub io_memory_desired_bytes: Gauge,
    pub io_memory_planned_bytes: Gauge,
    pub process_pinned_bytes: Gauge,
    pub peers_healthy: Gauge,
    pub repair_missing_segments: Gauge,
    pub repair_pulled_bytes: Counter,
    pub repair_pulled_segments: Counter,
    pub scrubbed_bytes: Counter,
    pub scrubbed_segments: Counter,
    pub segments_damaged: Counter,
    pub peer_errors: Family<PeerLabel, Counter>,
    pub shard_io_memory_bytes: Family<ShardLabel, Gauge>,
    pub shard_io_memory_registered: Family<ShardLabel, Gauge>,
    pub shard_pinned_bytes: Family<ShardLabel, Gauge>,
    pub shard_io_memory_sizes_refused: Family<ShardLabel, Gauge>,
}

/// Counters, in the order `Metrics::new` takes them: name and help.
const COUNTERS: [(&str, &str); 14] = [
    ("ingest_bytes", "Segment bytes acknowledged durable"),
    ("ingest_segments", "Segments acknowledged durable"),
    ("download_bytes", "Segment bytes served to clients"),
    ("download_segments", "Segments served to clients"),
    (
        "log_sync_errors",
        "Failed rounds of tailing a remote chain (each is retried)",
    ),
    (
        "da_shards_stored",
        "DA shards verified and stored by this DA node",
    ),
    ("da_shards_served", "DA shards served to retrievers"),
    (
        "da_shards_pruned",
        "DA shards removed after their retention window",
    ),
    (
        "da_blobs_dispersed",
        "Blobs this node dispersed and certified",
    ),
    (
        "repair_pulled_bytes",
        "Segment bytes pulled from peers and stored",
    ),
    (
        "repair_pulled_segments",
        "Segments pulled from peers and stored",
    ),
    (
        "scrubbed_bytes",
        "Stored segment bytes the scrub re-read and found intact",
    ),
    (
        "scrubbed_segments",
        "Stored segments the scrub re-read and found intact",
    ),
    (
        "segments_damaged",
        "Stored segments found damaged (checksum, root or proof) or missing from a finalized file, dropped and left to repair",
    ),
];
/// Node-wide gauges.
const GAUGES: [(&str, &str); 9] = [
    ("files", "Files known from the chain"),
    ("files_finalized", "Files whose data is completely stored"),
    (
        "log_sync_next_block",
        "Next chain block the log sync will read",
    ),
    (
        "chain_height",
        "Height of the embedded chain's head, or the remote chain's last final block",
    ),
    (
        "dataplane_io_memory_desired_bytes",
        "IO memory each data-plane shard asked for",
    ),
    (
        "dataplane_io_memory_planned_bytes",
        "IO memory each shard first tried to register",
    ),
    (
        "process_pinned_bytes",
        "The process's pinned memory (VmPin) once the data plane started",
    ),
    (
        "peers_healthy",
        "Other storage nodes that answered the last probe",
    ),
    (
        "repair_missing_segments",
        "Segments of this node's shard that files lack: not yet uploaded or pulled, or lost since finalization",
    ),
];
/// Gauges per data-plane shard.
const SHARD_GAUGES: [(&str, &str); 7] = [
    (
        "shard_queue_depth",
        "Requests sent to a shard and not yet answered",
    ),
    (
        "shard_disk_used_bytes",
        "Bytes of extents a shard has written",
    ),
    (
        "shard_batches",
        "Write batches a shard has committed since start",
    ),
    (
        "shard_io_memory_bytes",
        "The IO memory slab a shard runs with",
    ),
    (
        "shard_io_memory_registered",
        "1 when the shard's slab is registered with io_uring, as measured",
    ),
    (
        "shard_pinned_bytes",
        "Memory the kernel pinned for the shard's registrations",
    ),
    (
        "shard_io_memory_sizes_refused",
        "Larger slabs the kernel refused to register for the shard",
    ),
];
/// Latency of one segment's round trip through its shard.
const SEGMENT_LATENCIES: [(&str, &str); 2] = [
    (
        "segment_write_duration_seconds",
        "Shard round trip of one segment write: hash, verify, write, sync",
    ),
    (
        "segment_read_duration_seconds",
        "Shard round trip of one segment read",
    ),
];

/// Registers `metric` under `name` and hands it back for the node to update.
fn add<M: prometheus_client::registry::Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn latency_histogram() -> Histogram {
    // 10 µs .. ~42 s in powers of two: covers a cached read and a slow fsync alike.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 22))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("zerog");
        let [
            ingest_bytes,
            ingest_segments,
            download_bytes,
            download_segments,
            log_sync_errors,
            da_shards_stored,
            da_shards_served,
            da_shards_pruned,
            da_blobs_dispersed,
            repair_pulled_bytes,
            repair_pulled_segments,
            scrubbed_bytes,
            scrubbed_segments,
            segments_damaged,
        ] = COUNTERS.map(|(name, help)| add(&mut registry, name, help, Counter::default()));
        let [
            files,
            files_finalized,
            log_sync_next_block,
            chain_height,
            io_memory_desired_bytes,
            io_memory_planned_bytes,
            process_pinned_bytes,
            peers_healthy,
            repair_missing_segments,
        ] = GAUGES.map(|(name, help)| add(&mut registry, name, help, Gauge::default()));
        let [
            shard_queue_depth,
            shard_disk_used_bytes,
            shard_batches,
            shard_io_memory_bytes,
            shard_io_memory_registered,
            shard_pinned_bytes,
            shard_io_memory_sizes_refused,
        ] = SHARD_GAUGES.map(|(name, help)| add(&mut registry, name, help, Family::default()));
        let [segment_write_duration, segment_read_duration] = SEGMENT_LATENCIES
            .map(|(name, help)| add(&mut registry, name, help, latency_histogram()));
        Metrics {
            ingest_bytes,
            ingest_segments,
            download_bytes,
            download_segments,
            rpc_errors: add(
                &mut registry,
                "rpc_errors",
                "JSON-RPC errors answered, by kind",
                Family::default(),
            ),
            rpc_duration: add(
                &mut registry,
                "rpc_duration_seconds",
                "JSON-RPC call latency by method",
                Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            ),
            segment_write_duration,
            segment_read_duration,
            shard_queue_depth,
            shard_disk_used_bytes,
            shard_batches,
            shard_phase_seconds: add(
                &mut registry,
                "shard_phase_seconds",
                "Seconds a shard spent per write-path phase since start (verify, place, write, sync, commit, settle_wait)",
                Family::default(),
            ),
            files,
            files_finalized,
            log_sync_next_block,
            chain_height,
            log_sync_errors,
            da_shards_stored,
            da_shards_served,
            da_shards_pruned,
            da_blobs_dispersed,
            io_memory_mode: add(
                &mut registry,
                "dataplane_io_memory_mode",
                "1 for the data plane's measured IO memory mode (registered, partial, unregistered, unmeasured)",
                Family::default(),
            ),
            io_memory_desired_bytes,
            io_memory_planned_bytes,
            process_pinned_bytes,
            peers_healthy,
            repair_missing_segments,
            repair_pulled_bytes,
            repair_pulled_segments,
            scrubbed_bytes,
            scrubbed_segments,
            segments_damaged,
            peer_errors: add(
                &mut registry,
                "peer_errors",
                "Failed or false answers of a peer (timeouts, refusals, segments that failed verification)",
                Family::default(),
            ),
            shard_io_memory_bytes,
            shard_io_memory_registered,
            shard_pinned_bytes,
            shard_io_memory_sizes_refused,
            registry,
        }
    }

    /// Publishes what the data plane measured of its IO memory at start (it never changes).
    pub fn publish_io_memory(&self, report: &dataplane::BufferReport) {
        let bytes = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.io_memory_mode
            .get_or_create(&ModeLabel {
                mode: report.mode.label().to_string(),
            })
            .set(1);
        self.io_memory_desired_bytes
            .set(bytes(report.desired_bytes_per_shard as u64));
        self.io_memory_planned_bytes
            .set(bytes(report.planned_bytes_per_shard as u64));
        if let Some(pinned) = report.process_pinned_bytes_after {
            self.process_pinned_bytes.set(bytes(pinned));
        }
        for shard in &report.shards {
            let label = ShardLabel {
                shard: shard.shard.to_string(),
            };
            self.shard_io_memory_bytes
                .get_or_create(&label)
                .set(bytes(shard.io_memory_bytes as u64));
            self.shard_io_memory_registered
                .get_or_create(&label)
                .set(i64::from(shard.mode.is_registered()));
            self.shard_pinned_bytes
                .get_or_create(&label)
                .set(bytes(shard.pinned_bytes));
            self.shard_io_memory_sizes_refused
                .get_or_create(&label)
                .set(i64::from(shard.sizes_refused));
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// Counts an error of the peer at `url`.
    pub fn peer_error(&self, url: &str) {
        self.peer_errors
            .get_or_create(&PeerLabel {
                peer: url.to_string(),
            })
            .inc();
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
        metrics
            .io_memory_mode
            .get_or_create(&ModeLabel {
                mode: "registered".into(),
            })
            .set(1);
        metrics.peer_error("http://peer");
        for family in [
            &metrics.shard_io_memory_bytes,
            &metrics.shard_io_memory_registered,
            &metrics.shard_pinned_bytes,
            &metrics.shard_io_memory_sizes_refused,
        ] {
            family
                .get_or_create(&ShardLabel { shard: "0".into() })
                .set(0);
        }
        let text = metrics.render();
        let doc = include_str!("../../docs/metrics.md");
        // A validator's own metrics follow under their heading (checked with the validator).
        let node_section = doc.split("\n## Validators").next().unwrap_or(doc);
        let names: Vec<&str> = node_section
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
