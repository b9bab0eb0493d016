//! The background scrub: re-reads every stored segment of the node's finalized files at a
//! bounded rate. The owning data-plane shard checks the record's CRC, recomputes the segment
//! root and compares it with the one indexed when the segment was written (which the file's
//! tree, or the proof kept with it, tied to the chain's root), and re-checks a kept proof
//! against the file root. A segment that fails is dropped by its shard and becomes lost here:
//! reads no longer find it, the file stops reporting itself complete, and repair pulls the
//! segment again from a peer.
//!
//! The scrub yields to clients: it waits while the data-plane rings are busy, and reads at
//! most `max_bytes_per_sec`, one segment at a time.

use super::Node;
use dataplane::{Request, Response};
use std::rc::Rc;
use std::time::{Duration, Instant};
use types::{SegmentIndex, TxSeq};

/// Files taken from the table at a time.
const FILES_PER_STEP: usize = 64;
/// A scrub waits while any data-plane ring holds more requests than this.
const BUSY_QUEUE_DEPTH: usize = 16;
/// How long a busy data plane or a failed read holds the scrub back.
const BACK_OFF: Duration = Duration::from_millis(200);

/// The scrub's limits, from the command line.
#[derive(Clone, Debug)]
pub struct ScrubSettings {
    /// Most bytes re-read per second; 0 turns the scrub off.
    pub max_bytes_per_sec: u64,
    /// Pause between two passes over every finalized file.
    pub pause: Duration,
}

/// What one pass found.
#[derive(Debug, Default)]
struct Pass {
    segments: u64,
    bytes: u64,
    damaged: u64,
}

/// Scrubs for as long as the node runs.
pub async fn run(node: Rc<Node>, settings: ScrubSettings) {
    if settings.max_bytes_per_sec == 0 {
        tracing::info!("scrub off");
        return;
    }
    loop {
        tokio::time::sleep(settings.pause).await;
        let started = Instant::now();
        let pass = pass(&node, &settings).await;
        tracing::info!(
            segments = pass.segments,
            bytes = pass.bytes,
            damaged = pass.damaged,
            seconds = started.elapsed().as_secs_f64(),
            "scrub pass done"
        );
    }
}

/// One pass over the finalized files, in tx order.
async fn pass(node: &Node, settings: &ScrubSettings) -> Pass {
    let started = Instant::now();
    let mut pass = Pass::default();
    let mut next = TxSeq(0);
    loop {
        let files = node.files.finalized_from(next, FILES_PER_STEP);
        let Some(last) = files.last() else {
            return pass;
        };
        next = TxSeq(last.0 + 1);
        for tx_seq in files {
            scrub_file(node, tx_seq, settings, started, &mut pass).await;
        }
    }
}

async fn scrub_file(
    node: &Node,
    tx_seq: TxSeq,
    settings: &ScrubSettings,
    started: Instant,
    pass: &mut Pass,
) {
    let Ok((record, layout)) = node.files.get(tx_seq) else {
        return;
    };
    for segment in (0..layout.data_segments).map(SegmentIndex) {
        let Some(flow_segment) = node.files.with_file(tx_seq, |f| f.flow_segment(segment)) else {
            return;
        };
        if !node.position.owns(flow_segment) || node.files.is_lost(tx_seq, segment) {
            continue;
        }
        let shard = node.core_for(flow_segment);
        let request = Request::Scrub {
            tx_seq,
            segment,
            flow_segment,
            file_root: record.root,
            file_size: record.size_bytes,
        };
        let answer = loop {
            while node.shards.queue_depth(shard) > BUSY_QUEUE_DEPTH {
                tokio::time::sleep(BACK_OFF).await;
            }
            match node.shards.call(shard, request.clone()) {
                Ok(answer) => break answer.await,
                Err(_) => tokio::time::sleep(BACK_OFF).await,
            }
        };
        match answer {
            Response::Scrubbed { bytes } => {
                pass.segments += 1;
                pass.bytes += bytes;
                node.metrics.scrubbed_segments.inc();
                node.metrics.scrubbed_bytes.inc_by(bytes);
                super::repair::pace(Some(settings.max_bytes_per_sec), started, pass.bytes).await;
            }
            Response::Damaged(reason) => {
                pass.damaged += 1;
                super::reads::lost(node, tx_seq, segment, &reason);
            }
            Response::NotFound => {
                if node.files.mark_lost(tx_seq, segment) {
                    pass.damaged += 1;
                    tracing::warn!(%tx_seq, %segment, "scrub: a segment of a finalized file is missing here; repair fetches it again");
                    node.metrics.segments_damaged.inc();
                }
            }
            Response::Failed(reason) => {
                tracing::warn!(%tx_seq, %segment, %reason, "scrub: reading a segment failed; it is checked again next pass");
                tokio::time::sleep(BACK_OFF).await;
            }
            other => {
                tracing::error!(%tx_seq, %segment, ?other, "scrub: unexpected shard answer");
            }
        }
    }
}
