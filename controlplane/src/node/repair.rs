//! Healing by pull: a node fills in the segments of its shard that it lacks from peers that
//! own them. It learns files from the chain (the log sync), works out which of its own segments
//! of each unfinalized file are missing (once the file is older than a grace period, which
//! leaves the first copy to the uploader), and asks usable peers of the segment's shard for it
//! with `zgs_downloadSegmentWithProofByTxSeq`, the call the CLI downloads with. Every pulled
//! segment goes through the normal upload path: the owning data-plane shard checks its proof
//! against the file root the chain recorded before it writes anything, and the answer comes
//! only once it is durable. A peer whose segment fails that check is quarantined and never
//! causes a bad write.
//!
//! Everything is bounded: files per round, segments in flight, per-peer concurrency, a time
//! limit per request, exponential back-off per file that made no progress, and a share of the
//! data plane: a round waits while client uploads fill the rings, and pulls at most
//! `max_bytes_per_sec`.

use super::Node;
use super::ingest::{self, SegmentUpload};
use super::peers::Peer;
use futures_util::StreamExt;
use merkle::file::Proof;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use types::{SegmentIndex, TxSeq};

/// Largest answer a peer may give for one segment (base64 of 256 KiB, a proof, JSON).
const MAX_SEGMENT_ANSWER_BYTES: usize = 1 << 20;
/// Files looked at per round.
const FILES_PER_ROUND: usize = 16;
/// Longest back-off of a file no peer could help with.
const MAX_FILE_BACKOFF: Duration = Duration::from_secs(300);
/// A round waits while any data-plane ring holds more client requests than this.
const BUSY_QUEUE_DEPTH: usize = 64;

/// Repair's limits, from the command line.
#[derive(Clone, Debug)]
pub struct RepairSettings {
    /// Pause between rounds.
    pub every: Duration,
    /// Age of a file (since this node learned of it) before repair pulls its segments.
    pub grace: Duration,
    /// Segments pulled at once.
    pub segments_in_flight: usize,
    /// Segments asked of one peer at once.
    pub per_peer: usize,
    /// Time a peer has to answer one segment.
    pub request_timeout: Duration,
    /// How long a peer that served a bad segment is not asked again.
    pub quarantine: Duration,
    /// Most bytes pulled per second, `None` for no limit beyond the rings' share.
    pub max_bytes_per_sec: Option<u64>,
}

/// What repair remembers between rounds.
#[derive(Default)]
pub struct Repair {
    /// Files that made no progress: when to try again and the next delay.
    backoff: RefCell<HashMap<TxSeq, (Instant, Duration)>>,
    /// Until when repair rests because this node's storage is full.
    full_until: std::cell::Cell<Option<Instant>>,
    clients: RefCell<HashMap<String, client::Client>>,
}

/// One segment to pull and where from.
struct Pull {
    tx_seq: TxSeq,
    segment: SegmentIndex,
    peer: String,
}

/// How one pull ended.
enum Pulled {
    Stored(u64),
    /// The peer does not have it (or not yet): ask another.
    Absent,
    /// The peer served something false: quarantine it.
    Bad(String),
    /// A timeout, a refused call, a busy data plane: try again later.
    Failed(String),
    /// This node has no room: nothing is the peer's fault, and repair rests a while.
    NoRoom(String),
}

/// How many repair intervals repair rests after this node's storage was full.
const FULL_REST_INTERVALS: u32 = 20;

/// Pulls missing segments for as long as the node runs: a round right after one that stored
/// something (catching up runs back to back), else one per interval.
pub async fn run(node: Rc<Node>, settings: RepairSettings) {
    let mut stored = 0;
    loop {
        if stored == 0 {
            tokio::time::sleep(settings.every).await;
        } else {
            tokio::task::yield_now().await;
        }
        node.metrics
            .repair_missing_segments
            .set(i64::try_from(node.files.missing_count()).unwrap_or(i64::MAX));
        if data_plane_busy(&node) {
            stored = 0;
            continue;
        }
        stored = round(&node, &settings).await;
    }
}

fn data_plane_busy(node: &Node) -> bool {
    (0..node.shards.count()).any(|shard| node.shards.queue_depth(shard) > BUSY_QUEUE_DEPTH)
}

/// One round: plan pulls over the files due, run them with bounded concurrency (in all and
/// per peer), and record which files made no progress. The segments it stored.
async fn round(node: &Node, settings: &RepairSettings) -> u64 {
    let now = Instant::now();
    if node
        .repair
        .full_until
        .get()
        .is_some_and(|until| now < until)
    {
        return 0;
    }
    let peers: Vec<Peer> = node
        .peers
        .list()
        .into_iter()
        .filter(|peer| peer.usable(now))
        .collect();
    if peers.is_empty() {
        return 0;
    }
    let due: Vec<TxSeq> = node
        .files
        .needing_repair(settings.grace, FILES_PER_ROUND * 4)
        .into_iter()
        .filter(|tx_seq| {
            node.repair
                .backoff
                .borrow()
                .get(tx_seq)
                .is_none_or(|(until, _)| *until <= now)
        })
        .take(FILES_PER_ROUND)
        .collect();
    let pulls = plan(node, &due, &peers, settings);
    let permits: HashMap<String, Rc<tokio::sync::Semaphore>> = peers
        .iter()
        .map(|peer| {
            let permits = tokio::sync::Semaphore::new(settings.per_peer.max(1));
            (peer.url.clone(), Rc::new(permits))
        })
        .collect();
    let mut progressed: HashMap<TxSeq, bool> = due.iter().map(|tx| (*tx, false)).collect();
    let started = Instant::now();
    let mut pulled_bytes = 0u64;
    let mut stored = 0u64;
    let mut no_room = false;
    let mut running = futures_util::stream::iter(pulls)
        .map(|pull| {
            let permits = permits.get(&pull.peer).cloned();
            async move {
                // Every planned peer has its permits; the pull waits for one of its own.
                let _permit = match &permits {
                    Some(permits) => permits.acquire().await.ok(),
                    None => None,
                };
                let outcome = pull_one(node, &pull, settings).await;
                (pull, outcome)
            }
        })
        .buffer_unordered(settings.segments_in_flight.max(1));
    while let Some((pull, outcome)) = running.next().await {
        match outcome {
            Pulled::Stored(bytes) => {
                stored += 1;
                progressed.insert(pull.tx_seq, true);
                pulled_bytes += bytes;
                node.metrics.repair_pulled_bytes.inc_by(bytes);
                node.metrics.repair_pulled_segments.inc();
                pace(settings.max_bytes_per_sec, started, pulled_bytes).await;
            }
            Pulled::Absent => {}
            Pulled::Bad(reason) => {
                tracing::warn!(peer = %pull.peer, tx_seq = %pull.tx_seq, segment = %pull.segment, %reason, "a peer served a segment that failed verification");
                node.peers.quarantine(&pull.peer, settings.quarantine);
                node.metrics.peer_error(&pull.peer);
            }
            Pulled::NoRoom(reason) => {
                if !no_room {
                    tracing::warn!(%reason, rest_ms = (settings.every * FULL_REST_INTERVALS).as_millis(), "storage full: repair rests");
                }
                no_room = true;
            }
            Pulled::Failed(reason) => {
                tracing::debug!(peer = %pull.peer, tx_seq = %pull.tx_seq, segment = %pull.segment, %reason, "pull failed; retried");
                node.peers.count_error(&pull.peer);
                node.metrics.peer_error(&pull.peer);
            }
        }
    }
    if no_room {
        // The files are not to blame: no back-off, only a rest until space may have returned.
        node.repair
            .full_until
            .set(Some(Instant::now() + settings.every * FULL_REST_INTERVALS));
        return 0;
    }
    let mut backoff = node.repair.backoff.borrow_mut();
    for (tx_seq, moved) in progressed {
        if moved {
            backoff.remove(&tx_seq);
        } else {
            let delay = backoff.get(&tx_seq).map_or(settings.every, |(_, delay)| {
                (*delay * 2).min(MAX_FILE_BACKOFF)
            });
            backoff.insert(tx_seq, (Instant::now() + delay, delay));
        }
    }
    stored
}

/// The pulls of a round: each missing segment of the due files (at most a budget of them),
/// from the usable peer of its shard with the fewest pulls planned so far (fewer errors, then
/// lower latency, break ties). How many run at once is bounded when they run.
fn plan(node: &Node, due: &[TxSeq], peers: &[Peer], settings: &RepairSettings) -> Vec<Pull> {
    let mut ordered: Vec<&Peer> = peers.iter().collect();
    ordered.sort_by_key(|peer| (peer.errors, peer.latency_ms));
    let mut load: HashMap<&str, usize> = HashMap::new();
    let budget = settings.segments_in_flight.max(1) * 4;
    let mut pulls = Vec::new();
    for &tx_seq in due {
        let missing = node
            .files
            .with_file(tx_seq, |file| {
                file.missing(node.position, budget - pulls.len())
                    .into_iter()
                    .map(|segment| (segment, file.flow_segment(segment)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for (segment, flow_segment) in missing {
            let peer = ordered
                .iter()
                .filter(|peer| peer.shard.owns(flow_segment))
                .min_by_key(|peer| load.get(peer.url.as_str()).copied().unwrap_or(0));
            let Some(peer) = peer else {
                continue;
            };
            *load.entry(peer.url.as_str()).or_default() += 1;
            pulls.push(Pull {
                tx_seq,
                segment,
                peer: peer.url.clone(),
            });
        }
        if pulls.len() >= budget {
            break;
        }
    }
    pulls
}

/// Keeps a rate of `bytes` since `started` under `max_bytes_per_sec` (no limit for `None`).
pub(super) async fn pace(max_bytes_per_sec: Option<u64>, started: Instant, bytes: u64) {
    let Some(rate) = max_bytes_per_sec.filter(|rate| *rate > 0) else {
        return;
    };
    let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
    let elapsed = started.elapsed();
    if due > elapsed {
        tokio::time::sleep(due - elapsed).await;
    }
}

/// Asks one peer for one segment and stores it through the upload path.
async fn pull_one(node: &Node, pull: &Pull, settings: &RepairSettings) -> Pulled {
    let Some((record, _)) = node.files.get(pull.tx_seq).ok() else {
        return Pulled::Absent;
    };
    let rpc = match peer_client(node, &pull.peer, settings) {
        Ok(rpc) => rpc,
        Err(error) => return Pulled::Failed(error.to_string()),
    };
    let answer = match rpc
        .call(
            "zgs_downloadSegmentWithProofByTxSeq",
            json!([pull.tx_seq.0, pull.segment.0]),
        )
        .await
    {
        Ok(Value::Null) => return Pulled::Absent,
        Ok(answer) => answer,
        // A peer that has not finalized the file refuses proofs: not an error of the peer.
        Err(client::Error::Node(error)) if error.kind == "not_finalized" => return Pulled::Absent,
        Err(error) => return Pulled::Failed(error.to_string()),
    };
    let decoded = (|| {
        let data = base64_simd::STANDARD
            .decode_to_vec(answer.get("data")?.as_str()?.as_bytes())
            .ok()?;
        let proof: Proof = serde_json::from_value(answer.get("proof")?.clone()).ok()?;
        Some((data, proof))
    })();
    let Some((data, proof)) = decoded else {
        return Pulled::Bad("the answer is not a segment with a proof".to_string());
    };
    let bytes = data.len() as u64;
    let upload = SegmentUpload {
        root: record.root,
        data,
        index: pull.segment.0,
        proof,
        file_size: record.size_bytes,
    };
    match ingest::upload(node, pull.tx_seq, vec![upload]).await {
        Ok(()) => Pulled::Stored(bytes),
        Err(error) => match error.kind {
            // Stored meanwhile (by the uploader, or an earlier pull): progress all the same.
            "duplicate_segment" | "already_finalized" => Pulled::Stored(0),
            "bad_proof" | "data_length" => Pulled::Bad(error.message),
            "storage_full" => Pulled::NoRoom(error.message),
            _ => Pulled::Failed(error.message),
        },
    }
}

/// The JSON-RPC client of a peer, built once.
fn peer_client(
    node: &Node,
    url: &str,
    settings: &RepairSettings,
) -> Result<client::Client, client::Error> {
    if let Some(rpc) = node.repair.clients.borrow().get(url) {
        return Ok(rpc.clone());
    }
    let rpc = client::Client::build(url, "storage node", settings.request_timeout)?
        .with_response_limit(MAX_SEGMENT_ANSWER_BYTES);
    node.repair
        .clients
        .borrow_mut()
        .insert(url.to_string(), rpc.clone());
    Ok(rpc)
}
