//! Files to and from a node: an upload hashes the file into its 0G tree, submits it to the
//! Flow contract (signed, through [`crate::chain`]), sends the segments with their proofs in
//! parallel batches and waits for finalization; a download verifies every segment's proof with
//! the same `merkle::file::verify_segment` the node uses before a byte is written.

use crate::chain::{Chain, Payer, Receipt};
use crate::network::{self, StorageNode};
use crate::{Client, Error, Phase, Progress, Source};
use alloy_primitives::U256;
use alloy_sol_types::{SolCall, SolEvent};
use bytes::Bytes;
use chain_lite::abi::{flow, market};
use futures_util::{Stream, StreamExt};
use merkle::file::{FileLayout, FileTree, Proof};
use serde_json::{Value, json};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};
use types::{FlowSegmentIndex, H256, SEGMENT_BYTES, SegmentIndex};

/// Segments per upload request (1 MiB of data).
const SEGMENTS_PER_REQUEST: usize = 4;
/// Requests in flight at once, per upload or download.
pub const PARALLEL_REQUESTS: usize = 8;
/// Retries of a request the node answered with "busy".
const MAX_BUSY_RETRIES: u32 = 50;
/// How long to wait for the node to index a submission or finalize a file.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// A stored file as the node knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub root: H256,
    pub tx_seq: u64,
    pub size_bytes: u64,
}

pub struct Uploaded {
    pub file: FileRef,
    /// The node held the same bytes, finalized, before this upload: nothing was sent.
    pub already_stored: bool,
}

/// Uploads `source` as one 0G file: hash, submit (unless the network already knows the root),
/// upload the segments, wait for finalization.
pub async fn upload(
    client: &Client,
    source: &dyn Source,
    payer: &Payer,
    progress: &dyn Progress,
) -> Result<Uploaded, Error> {
    upload_replicated(client, source, payer, progress, 1).await
}

/// [`upload`] onto `replicas` nodes of every shard of the network `client` indexes.
pub async fn upload_replicated(
    client: &Client,
    source: &dyn Source,
    payer: &Payer,
    progress: &dyn Progress,
    replicas: usize,
) -> Result<Uploaded, Error> {
    if source.size() == 0 {
        return Err(Error::EmptyFile);
    }
    let tree = build_tree(source, progress)?;
    upload_tree_replicated(client, source, &tree, payer, progress, replicas).await
}

/// [`upload`] with the file's tree already built (the gateway hashes a body while it
/// arrives): the same submission and segments, without a pass over `source` to hash it. The
/// tree must be `source`'s; a tree of another size is refused, and the nodes refuse segments
/// whose proofs do not lead to the root the tree submitted.
pub async fn upload_with_tree(
    client: &Client,
    source: &dyn Source,
    tree: &FileTree,
    payer: &Payer,
    progress: &dyn Progress,
) -> Result<Uploaded, Error> {
    upload_tree_replicated(client, source, tree, payer, progress, 1).await
}

/// The upload itself. `client` is the chain (the Flow submission goes there) and an indexer of
/// the network; the segments go to `replicas` nodes of every shard it lists, each node getting
/// the segments of its shard, and the upload ends when every chosen node has finalized the file.
async fn upload_tree_replicated(
    client: &Client,
    source: &dyn Source,
    tree: &FileTree,
    payer: &Payer,
    progress: &dyn Progress,
    replicas: usize,
) -> Result<Uploaded, Error> {
    let size = source.size();
    if size == 0 {
        return Err(Error::EmptyFile);
    }
    if tree.size_bytes() != size {
        return Err(Error::TreeSize {
            tree_bytes: tree.size_bytes(),
            source_bytes: size,
        });
    }
    let nodes = network::select(&network::storage_nodes(client).await?, replicas)?;
    let root = tree.root();
    let file = |tx_seq| FileRef {
        root,
        tx_seq,
        size_bytes: size,
    };
    let info = client.call("zgs_getFileInfo", json!([root, false])).await?;
    let tx_seq = match info.pointer("/tx/seq").and_then(Value::as_u64) {
        Some(tx_seq) => {
            if all_finalized(&nodes, tx_seq).await? {
                return Ok(Uploaded {
                    file: file(tx_seq),
                    already_stored: true,
                });
            }
            tx_seq
        }
        None => submit_signed(client, tree, payer).await?,
    };
    progress.start(Phase::Upload, size * nodes.len() as u64);
    for node in &nodes {
        let info = wait_for(&node.client, tx_seq, false).await?;
        let start = start_entry_index(&info)?;
        let first = types::SectorIndex(start).flow_segment();
        upload_segments(node, first, source, tree, tx_seq, progress).await?;
    }
    for node in &nodes {
        wait_for(&node.client, tx_seq, true).await?;
    }
    progress.finish();
    Ok(Uploaded {
        file: file(tx_seq),
        already_stored: false,
    })
}

/// Whether every one of `nodes` holds tx `tx_seq` finalized.
async fn all_finalized(nodes: &[StorageNode], tx_seq: u64) -> Result<bool, Error> {
    for node in nodes {
        let info = node
            .client
            .call("zgs_getFileInfoByTxSeq", json!([tx_seq]))
            .await?;
        if info.get("finalized") != Some(&Value::Bool(true)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Uploads to `node` the segments of the file (starting at flow segment `first`) that its shard
/// holds, a few per request, several requests at once.
async fn upload_segments(
    node: &StorageNode,
    first: FlowSegmentIndex,
    source: &dyn Source,
    tree: &FileTree,
    tx_seq: u64,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let layout = *tree.layout();
    let root = tree.root();
    let size = layout.size_bytes;
    let owned: Vec<u64> = (0..layout.data_segments)
        .filter(|index| node.owns(FlowSegmentIndex(first.0 + index)))
        .collect();
    // Requests own their indices: a future that borrowed them would not be `Send` for every
    // lifetime, which the S3 gateway's handlers need.
    let requests: Vec<Vec<u64>> = owned
        .chunks(SEGMENTS_PER_REQUEST)
        .map(<[u64]>::to_vec)
        .collect();
    let mut results = futures_util::stream::iter(requests)
        .map(|indices| async move {
            let mut segments = Vec::with_capacity(indices.len());
            let mut bytes = 0;
            for index in indices {
                let data = segment_bytes(source, &layout, index)?;
                let proof = tree
                    .proof(SegmentIndex(index))
                    .map_err(|source| Error::Merkle { source })?;
                segments.push(segment_json(root, &data, index, &proof, size));
                bytes += layout.segment_data_bytes(index);
            }
            upload_request(&node.client, &segments, tx_seq).await?;
            progress.advance(bytes);
            Ok::<(), Error>(())
        })
        .buffer_unordered(PARALLEL_REQUESTS);
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(())
}

/// What a client uploads for segment `index`: its bytes, zero-filled to whole chunks; borrowed
/// from the source when it is in memory and needs no fill.
fn segment_bytes<'a>(
    source: &'a dyn Source,
    layout: &FileLayout,
    index: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, Error> {
    let start = index * SEGMENT_BYTES as u64;
    let data_bytes = layout.segment_data_bytes(index);
    let upload_bytes = layout.segment_upload_bytes(index);
    if upload_bytes == data_bytes
        && let Some(all) = source.in_memory()
        && let Some(slice) = usize::try_from(start)
            .ok()
            .and_then(|from| all.get(from..from + upload_bytes as usize))
    {
        return Ok(std::borrow::Cow::Borrowed(slice));
    }
    let mut buffer = vec![0u8; upload_bytes as usize];
    source
        .read_at(&mut buffer[..data_bytes as usize], start)
        .map_err(|source| Error::Read {
            what: format!("segment {index}"),
            source,
        })?;
    Ok(std::borrow::Cow::Owned(buffer))
}

/// Submits the file to the Flow contract as any wallet would: a signed EIP-1559 transaction
/// paying sectors × `pricePerSector`. Returns the tx seq from the receipt's Submit log.
async fn submit_signed(client: &Client, tree: &FileTree, payer: &Payer) -> Result<u64, Error> {
    let chain = Chain::connect(client.clone()).await?;
    let market_word = chain
        .view(chain_lite::FLOW_ADDRESS, &flow::marketCall {}.abi_encode())
        .await?;
    let market =
        flow::marketCall::abi_decode_returns(&market_word).map_err(|error| Error::Answer {
            what: "market()",
            detail: error.to_string(),
        })?;
    let price_word = chain
        .view(
            market.into_array(),
            &market::pricePerSectorCall {}.abi_encode(),
        )
        .await?;
    let price = market::pricePerSectorCall::abi_decode_returns(&price_word).map_err(|error| {
        Error::Answer {
            what: "pricePerSector()",
            detail: error.to_string(),
        }
    })?;
    let nodes = tree
        .try_nodes()
        .map_err(|source| Error::Merkle { source })?;
    let sectors: u64 = nodes.iter().map(|node| 1u64 << node.height).sum();
    let submission = chain_lite::Submission {
        length: tree.size_bytes(),
        tags: Vec::new(),
        nodes,
    };
    let calldata = chain_lite::abi::submit_calldata(&submission, payer.address());
    let fee = U256::from(sectors).saturating_mul(price);
    let receipt = chain
        .send(payer, chain_lite::FLOW_ADDRESS, fee, calldata)
        .await?;
    submit_log_tx_seq(&receipt)
}

/// The receipt may carry NewEpoch logs before the Submit log: pick Submit by its topic.
fn submit_log_tx_seq(receipt: &Receipt) -> Result<u64, Error> {
    let bad = |detail: &str| Error::Answer {
        what: "the Submit log",
        detail: detail.to_string(),
    };
    let log = receipt
        .logs
        .iter()
        .find(|log| log.topics.first().map(|topic| topic.0) == Some(flow::Submit::SIGNATURE_HASH.0))
        .ok_or_else(|| bad("the receipt has no Submit log"))?;
    let topics = log
        .topics
        .iter()
        .map(|topic| alloy_primitives::B256::from(topic.0));
    let event = flow::Submit::decode_raw_log(topics, &log.data).map_err(|error| Error::Answer {
        what: "the Submit log",
        detail: error.to_string(),
    })?;
    u64::try_from(event.submissionIndex).map_err(|_| bad("submissionIndex does not fit 64 bits"))
}

/// One `SegmentWithProof` as JSON text. Written by hand because serde_json escapes strings
/// byte by byte, which for a segment's base64 costs more than encoding it; base64 never needs
/// escaping.
fn segment_json(root: H256, data: &[u8], index: u64, proof: &Proof, file_size: u64) -> String {
    let proof = serde_json::to_string(proof).expect("a proof always serializes");
    let data = base64_simd::STANDARD.encode_to_string(data);
    format!(
        r#"{{"root":"{root}","data":"{data}","index":{index},"proof":{proof},"fileSize":{file_size}}}"#
    )
}

/// Sends one batch; segments the node already holds (an earlier, interrupted upload) count as
/// done, and a busy node is retried with backoff.
async fn upload_request(client: &Client, segments: &[String], tx_seq: u64) -> Result<(), Error> {
    let params = format!("[[{}],{tx_seq}]", segments.join(","));
    let mut attempt = 0;
    loop {
        match client
            .call_raw("zgs_uploadSegmentsByTxSeq", params.clone())
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) => match error.node_kind() {
                Some("already_finalized") => return Ok(()),
                Some("duplicate_segment") => {
                    // Some of the batch is stored; send the rest one by one.
                    if segments.len() == 1 {
                        return Ok(());
                    }
                    for segment in segments {
                        Box::pin(upload_request(
                            client,
                            std::slice::from_ref(segment),
                            tx_seq,
                        ))
                        .await?;
                    }
                    return Ok(());
                }
                Some("busy") if attempt < MAX_BUSY_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10))))
                        .await;
                }
                _ => return Err(error),
            },
        }
    }
}

/// Polls until the node knows the tx (and, with `finalized`, has all its data).
async fn wait_for(client: &Client, tx_seq: u64, finalized: bool) -> Result<Value, Error> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        let info = client
            .call("zgs_getFileInfoByTxSeq", json!([tx_seq]))
            .await?;
        if !info.is_null() && (!finalized || info.get("finalized") == Some(&Value::Bool(true))) {
            return Ok(info);
        }
        if started.elapsed() > WAIT_LIMIT {
            return Err(Error::Timeout {
                what: format!(
                    "tx {tx_seq} to be {}",
                    if finalized {
                        "finalized"
                    } else {
                        "indexed by the node"
                    }
                ),
                seconds: WAIT_LIMIT.as_secs(),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// The 0G Merkle tree of `source`, read several segments per call.
pub fn build_tree(source: &dyn Source, progress: &dyn Progress) -> Result<FileTree, Error> {
    let size = source.size();
    let mut builder = FileTree::builder(size).map_err(|source| Error::Merkle { source })?;
    progress.start(Phase::Hash, size);
    const READ_SEGMENTS: usize = 16;
    let mut buffer = vec![0u8; READ_SEGMENTS * SEGMENT_BYTES];
    let mut offset = 0u64;
    while offset < size {
        let length = ((size - offset) as usize).min(buffer.len());
        source
            .read_at(&mut buffer[..length], offset)
            .map_err(|source| Error::Read {
                what: format!("bytes at offset {offset}"),
                source,
            })?;
        for segment in buffer[..length].chunks(SEGMENT_BYTES) {
            builder
                .push_segment(segment)
                .map_err(|source| Error::Merkle { source })?;
        }
        offset += length as u64;
        progress.advance(length as u64);
    }
    progress.finish();
    builder.finish().map_err(|source| Error::Merkle { source })
}

/// The finalized file with this root, or `None` when the node does not know it.
pub async fn locate(client: &Client, root: H256) -> Result<Option<FileRef>, Error> {
    let info = client.call("zgs_getFileInfo", json!([root, true])).await?;
    if info.is_null() {
        return Ok(None);
    }
    if info.get("finalized") != Some(&Value::Bool(true)) {
        return Err(Error::NotFinalized { root });
    }
    file_ref(root, &info).map(Some)
}

fn file_ref(root: H256, info: &Value) -> Result<FileRef, Error> {
    let field = |pointer: &str, what: &'static str| {
        info.pointer(pointer)
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::Answer {
                what,
                detail: info.to_string(),
            })
    };
    Ok(FileRef {
        root,
        tx_seq: field("/tx/seq", "file info tx.seq")?,
        size_bytes: field("/tx/size", "file info tx.size")?,
    })
}

/// Downloads one segment of `file` with its proof, verifies it against the file root and
/// returns the segment's real bytes (the padding past the end of the file cut off).
pub async fn read_segment(client: &Client, file: &FileRef, index: u64) -> Result<Bytes, Error> {
    let layout = FileLayout::new(file.size_bytes).map_err(|source| Error::Merkle { source })?;
    let answer = client
        .call(
            "zgs_downloadSegmentWithProofByTxSeq",
            json!([file.tx_seq, index]),
        )
        .await?;
    if answer.is_null() {
        return Err(Error::MissingSegment {
            root: file.root,
            index,
        });
    }
    let bad = |detail: &str| Error::Answer {
        what: "a downloaded segment",
        detail: detail.to_string(),
    };
    let mut data = base64_simd::STANDARD
        .decode_to_vec(
            answer
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("no data"))?,
        )
        .map_err(|_| bad("data is not base64"))?;
    let proof: Proof = serde_json::from_value(answer.get("proof").cloned().unwrap_or(Value::Null))
        .map_err(|_| bad("no valid proof"))?;
    merkle::file::verify_segment(
        &file.root,
        file.size_bytes,
        SegmentIndex(index),
        &data,
        &proof,
    )
    .map_err(|source| Error::Verification {
        root: file.root,
        index,
        source,
    })?;
    data.truncate(layout.segment_data_bytes(index) as usize);
    Ok(Bytes::from(data))
}

/// Bytes `[offset, offset + length)` of `file`, verified segment by segment, in order, with
/// up to `PARALLEL_REQUESTS` segments in flight. Owns what it needs, so it can feed an HTTP
/// response body.
pub fn read_range(
    client: Client,
    file: FileRef,
    offset: u64,
    length: u64,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    let end = offset.saturating_add(length).min(file.size_bytes);
    let segment_bytes = SEGMENT_BYTES as u64;
    let segments = if offset >= end {
        0..0
    } else {
        offset / segment_bytes..end.div_ceil(segment_bytes)
    };
    futures_util::stream::iter(segments)
        .map(move |index| {
            let client = client.clone();
            async move {
                let data = read_segment(&client, &file, index).await?;
                let start = index * segment_bytes;
                let from = offset.saturating_sub(start) as usize;
                let to = ((end - start) as usize).min(data.len());
                Ok(data.slice(from..to))
            }
        })
        .buffered(PARALLEL_REQUESTS)
}

/// Downloads the finalized file with `root` to `out` (through `out.partial`, renamed when
/// every segment is verified and synced), each segment from a node that holds it: the holders
/// the indexer at `client` names, or `client` itself. Returns its size.
pub async fn download(
    client: &Client,
    root: H256,
    out: &Path,
    progress: &dyn Progress,
) -> Result<u64, Error> {
    let holders = network::holders(client, root).await?;
    let (file, first) = locate_on(&holders, root).await?;
    let size = file.size_bytes;
    let layout = FileLayout::new(size).map_err(|source| Error::Merkle { source })?;
    // Each segment from a holder of its shard, the holders taking turns.
    let sources: Vec<&Client> = (0..layout.data_segments)
        .map(|index| {
            let owners: Vec<&StorageNode> = holders
                .iter()
                .filter(|node| node.owns(FlowSegmentIndex(first.0 + index)))
                .collect();
            owners
                .get(index as usize % owners.len().max(1))
                .map(|node| &node.client)
                .ok_or(Error::MissingSegment { root, index })
        })
        .collect::<Result<_, _>>()?;
    let partial = out.with_extension("partial");
    let io = |operation: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            operation,
            path,
            source,
        }
    };
    let output = std::fs::File::create(&partial).map_err(io("creating", &partial))?;
    output.set_len(size).map_err(io("sizing", &partial))?;
    progress.start(Phase::Download, size);
    let output_ref = &output;
    let partial_ref = &partial;
    let sources_ref = &sources;
    let mut results = futures_util::stream::iter(0..layout.data_segments)
        .map(|index| async move {
            let data = read_segment(sources_ref[index as usize], &file, index).await?;
            output_ref
                .write_all_at(&data, index * SEGMENT_BYTES as u64)
                .map_err(io("writing", partial_ref))?;
            progress.advance(data.len() as u64);
            Ok::<(), Error>(())
        })
        .buffer_unordered(PARALLEL_REQUESTS);
    while let Some(result) = results.next().await {
        if let Err(error) = result {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    }
    drop(results);
    output.sync_all().map_err(io("syncing", &partial))?;
    std::fs::rename(&partial, out).map_err(io("renaming to", out))?;
    progress.finish();
    Ok(size)
}

/// The finalized file `root` as its first holder knows it, and the flow segment it starts at.
async fn locate_on(
    holders: &[StorageNode],
    root: H256,
) -> Result<(FileRef, FlowSegmentIndex), Error> {
    let node = holders.first().ok_or(Error::UnknownFile { root })?;
    let info = node
        .client
        .call("zgs_getFileInfo", json!([root, true]))
        .await?;
    if info.is_null() {
        return Err(Error::UnknownFile { root });
    }
    if info.get("finalized") != Some(&Value::Bool(true)) {
        return Err(Error::NotFinalized { root });
    }
    let start = start_entry_index(&info)?;
    Ok((
        file_ref(root, &info)?,
        types::SectorIndex(start).flow_segment(),
    ))
}

/// The first flow sector of a file, from its `zgs_getFileInfo` answer.
fn start_entry_index(info: &Value) -> Result<u64, Error> {
    info.pointer("/tx/startEntryIndex")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Answer {
            what: "file info tx.startEntryIndex",
            detail: info.to_string(),
        })
}
