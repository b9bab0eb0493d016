//! The CLI's side: upload, download, info and status over the node's JSON-RPC API, exactly as
//! any 0G client would use it. Downloads verify every segment's proof with the same
//! `merkle::file::verify_segment` the node uses on upload.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolEvent};
use anyhow::{Context, bail};
use chain_lite::abi::{flow, market};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use merkle::file::{FileTree, Proof};
use serde_json::{Value, json};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};
use types::{H256, SEGMENT_BYTES, SegmentIndex};

/// Segments per upload request (1 MiB of data).
const SEGMENTS_PER_REQUEST: usize = 4;
/// Requests in flight at once.
const PARALLEL_REQUESTS: usize = 8;
/// Retries of a request the node answered with "busy".
const MAX_BUSY_RETRIES: u32 = 50;
/// How long to wait for the node to index a submission or finalize a file.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

pub struct Client {
    http: reqwest::Client,
    url: String,
}

/// A JSON-RPC error answered by the node.
#[derive(Debug, thiserror::Error)]
#[error("node error {code}: {message}")]
pub struct NodeError {
    pub code: i64,
    pub message: String,
    pub kind: String,
}

impl Client {
    pub fn new(url: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            http,
            url: url.to_string(),
        })
    }

    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.call_raw(method, params.to_string()).await
    }

    /// A call whose params are JSON text already (segments: see `segment_json`).
    pub async fn call_raw(&self, method: &str, params: String) -> anyhow::Result<Value> {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
        let response = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the node at {} (is `zerog node` running?)",
                    self.url
                )
            })?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .with_context(|| format!("{method}: node answered HTTP {status} without JSON"))?;
        if let Some(error) = value.get("error") {
            let kind = match error.get("data") {
                Some(Value::Object(data)) => data
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                Some(Value::String(data)) if data == "already uploaded and finalized" => {
                    "already_finalized".to_string()
                }
                _ => String::new(),
            };
            return Err(NodeError {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                kind,
            }
            .into());
        }
        Ok(value.get("result").cloned().unwrap_or(Value::Null))
    }
}

fn progress(total_bytes: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn node_error_kind(error: &anyhow::Error) -> Option<&str> {
    error.downcast_ref::<NodeError>().map(|e| e.kind.as_str())
}

pub struct Uploaded {
    pub root: H256,
    pub tx_seq: u64,
    pub already_stored: bool,
}

pub async fn upload(
    client: &Client,
    path: &Path,
    key: &PrivateKeySigner,
    quiet: bool,
) -> anyhow::Result<Uploaded> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    if size == 0 {
        bail!(
            "{} is empty: 0G files hold at least one byte",
            path.display()
        );
    }
    let tree =
        build_tree(&file, size, quiet).with_context(|| format!("hashing {}", path.display()))?;
    let root = tree.root();
    let info = client.call("zgs_getFileInfo", json!([root, false])).await?;
    let tx_seq = if let Some(tx_seq) = info.pointer("/tx/seq").and_then(Value::as_u64) {
        if info.get("finalized") == Some(&Value::Bool(true)) {
            return Ok(Uploaded {
                root,
                tx_seq,
                already_stored: true,
            });
        }
        tx_seq
    } else {
        submit_signed(client, &tree, key)
            .await
            .context("submitting the file to the Flow contract")?
    };
    wait_for(client, tx_seq, false).await?;

    let layout = *tree.layout();
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        progress(size, "upload")
    };
    let requests: Vec<Vec<u64>> = (0..layout.data_segments)
        .collect::<Vec<_>>()
        .chunks(SEGMENTS_PER_REQUEST)
        .map(<[u64]>::to_vec)
        .collect();
    let tree = &tree;
    let file = &file;
    let bar_ref = &bar;
    let mut results = futures_util::stream::iter(requests)
        .map(|indices| async move {
            let mut segments = Vec::with_capacity(indices.len());
            let mut bytes = 0;
            for &index in &indices {
                let length = layout.segment_upload_bytes(index) as usize;
                let mut data = vec![0u8; length];
                let real = layout.segment_data_bytes(index) as usize;
                file.read_exact_at(&mut data[..real], index * SEGMENT_BYTES as u64)
                    .with_context(|| format!("reading segment {index}"))?;
                bytes += real as u64;
                segments.push(segment_json(
                    root,
                    &data,
                    index,
                    &tree.proof(SegmentIndex(index))?,
                    size,
                ));
            }
            upload_request(client, &segments, tx_seq).await?;
            bar_ref.inc(bytes);
            anyhow::Ok(())
        })
        .buffer_unordered(PARALLEL_REQUESTS);
    while let Some(result) = results.next().await {
        result?;
    }
    drop(results);
    bar.finish_and_clear();
    wait_for(client, tx_seq, true).await?;
    Ok(Uploaded {
        root,
        tx_seq,
        already_stored: false,
    })
}

/// Submits the file to the Flow contract as any wallet would: a signed EIP-1559 transaction
/// paying sectors × `pricePerSector`, through `eth_sendRawTransaction`. Returns the tx seq
/// from the receipt's Submit log.
async fn submit_signed(
    client: &Client,
    tree: &FileTree,
    key: &PrivateKeySigner,
) -> anyhow::Result<u64> {
    let quantity = |value: &Value, what: &str| -> anyhow::Result<u128> {
        let text = value
            .as_str()
            .with_context(|| format!("{what} is not a quantity"))?;
        u128::from_str_radix(text.trim_start_matches("0x"), 16)
            .with_context(|| format!("{what}: {text}"))
    };
    let flow = format!("0x{}", hex::encode(chain_lite::FLOW_ADDRESS));
    let market_word = client
        .call(
            "eth_call",
            json!([{ "to": flow, "data": hex_call(&flow::marketCall {}.abi_encode()) }, "latest"]),
        )
        .await?;
    let market = format!(
        "0x{}",
        market_word
            .as_str()
            .context("market() answer")?
            .get(26..)
            .context("market() answer")?
    );
    let price = quantity(
        &client
            .call("eth_call", json!([{ "to": market, "data": hex_call(&market::pricePerSectorCall {}.abi_encode()) }, "latest"]))
            .await?,
        "pricePerSector",
    )?;
    let chain_id = quantity(&client.call("eth_chainId", json!([])).await?, "eth_chainId")?;
    let sender = format!("0x{}", hex::encode(key.address()));
    let nonce = quantity(
        &client
            .call("eth_getTransactionCount", json!([sender, "pending"]))
            .await?,
        "nonce",
    )?;
    let gas_price = quantity(
        &client.call("eth_gasPrice", json!([])).await?,
        "eth_gasPrice",
    )?;
    let nodes = tree.nodes();
    let sectors: u128 = nodes.iter().map(|node| 1u128 << node.height).sum();
    let submission = chain_lite::Submission {
        length: tree.size_bytes(),
        tags: Vec::new(),
        nodes: nodes.clone(),
    };
    let calldata = chain_lite::abi::submit_calldata(&submission, key.address().into_array());
    let gas_limit = quantity(
        &client
            .call("eth_estimateGas", json!([{ "from": sender, "to": flow, "data": hex_call(&calldata), "value": format!("{:#x}", sectors * price) }]))
            .await?,
        "eth_estimateGas",
    )?;
    let transaction = TxEip1559 {
        chain_id: u64::try_from(chain_id).context("chain id")?,
        nonce: u64::try_from(nonce).context("nonce")?,
        gas_limit: u64::try_from(gas_limit).context("gas")?,
        max_fee_per_gas: gas_price,
        max_priority_fee_per_gas: 0,
        to: TxKind::Call(chain_lite::FLOW_ADDRESS.into()),
        value: U256::from(sectors * price),
        input: calldata.into(),
        access_list: Default::default(),
    };
    let signature = key
        .sign_hash_sync(&transaction.signature_hash())
        .context("signing the submission")?;
    let raw = TxEnvelope::Eip1559(transaction.into_signed(signature)).encoded_2718();
    let hash = client
        .call("eth_sendRawTransaction", json!([hex_call(&raw)]))
        .await?;
    // The node seals a block once the transactions ready with this one are in; poll briefly.
    let mut receipt = Value::Null;
    for attempt in 0..200u64 {
        receipt = client
            .call("eth_getTransactionReceipt", json!([hash]))
            .await?;
        if !receipt.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(attempt.min(20) + 1)).await;
    }
    if receipt.get("status") != Some(&json!("0x1")) {
        bail!("the Flow submission {hash} reverted: {receipt}");
    }
    // The receipt may carry NewEpoch logs before the Submit log: pick Submit by its topic.
    let submit_topic = format!("{:#x}", flow::Submit::SIGNATURE_HASH);
    let log = receipt["logs"]
        .as_array()
        .and_then(|logs| {
            logs.iter()
                .find(|log| log["topics"][0].as_str() == Some(submit_topic.as_str()))
        })
        .context("the receipt has no Submit log")?;
    let topics = log["topics"]
        .as_array()
        .context("log topics")?
        .iter()
        .map(|topic| {
            topic
                .as_str()
                .and_then(|t| t.parse::<alloy_primitives::B256>().ok())
                .context("log topic")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let data = hex::decode(
        log["data"]
            .as_str()
            .context("log data")?
            .trim_start_matches("0x"),
    )
    .context("log data")?;
    let event = flow::Submit::decode_raw_log(topics, &data).context("decoding the Submit log")?;
    u64::try_from(event.submissionIndex).context("submissionIndex does not fit 64 bits")
}

fn hex_call(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
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
async fn upload_request(client: &Client, segments: &[String], tx_seq: u64) -> anyhow::Result<()> {
    let params = format!("[[{}],{tx_seq}]", segments.join(","));
    let mut attempt = 0;
    loop {
        match client
            .call_raw("zgs_uploadSegmentsByTxSeq", params.clone())
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) => match node_error_kind(&error) {
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
async fn wait_for(client: &Client, tx_seq: u64, finalized: bool) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        let info = client
            .call("zgs_getFileInfoByTxSeq", json!([tx_seq]))
            .await?;
        if !info.is_null() && (!finalized || info.get("finalized") == Some(&Value::Bool(true))) {
            return Ok(info);
        }
        if started.elapsed() > WAIT_LIMIT {
            bail!(
                "tx {tx_seq} is not {} after {} s",
                if finalized {
                    "finalized"
                } else {
                    "indexed by the node"
                },
                WAIT_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

fn build_tree(file: &std::fs::File, size: u64, quiet: bool) -> anyhow::Result<FileTree> {
    let mut builder = FileTree::builder(size)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        progress(size, "hash  ")
    };
    // Read several segments per syscall; the builder takes them one at a time.
    const READ_SEGMENTS: usize = 16;
    let mut buffer = vec![0u8; READ_SEGMENTS * SEGMENT_BYTES];
    let mut offset = 0u64;
    while offset < size {
        let length = ((size - offset) as usize).min(buffer.len());
        file.read_exact_at(&mut buffer[..length], offset)?;
        for segment in buffer[..length].chunks(SEGMENT_BYTES) {
            builder.push_segment(segment)?;
        }
        offset += length as u64;
        bar.inc(length as u64);
    }
    bar.finish_and_clear();
    Ok(builder.finish()?)
}

pub async fn download(client: &Client, root: H256, out: &Path, quiet: bool) -> anyhow::Result<u64> {
    let info = client.call("zgs_getFileInfo", json!([root, true])).await?;
    if info.is_null() {
        bail!("no file with root {root} is known to the node");
    }
    if info.get("finalized") != Some(&Value::Bool(true)) {
        bail!("file {root} is not completely uploaded yet (finalized = false)");
    }
    let tx_seq = info
        .pointer("/tx/seq")
        .and_then(Value::as_u64)
        .context("file info without tx.seq")?;
    let size = info
        .pointer("/tx/size")
        .and_then(Value::as_u64)
        .context("file info without tx.size")?;
    let layout = merkle::file::FileLayout::new(size)?;
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    file.set_len(size)
        .with_context(|| format!("cannot size {}", partial.display()))?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        progress(size, "download")
    };
    let file_ref = &file;
    let bar_ref = &bar;
    let mut results = futures_util::stream::iter(0..layout.data_segments)
        .map(|index| async move {
            let answer = client
                .call(
                    "zgs_downloadSegmentWithProofByTxSeq",
                    json!([tx_seq, index]),
                )
                .await?;
            if answer.is_null() {
                bail!("the node does not hold segment {index} of {root}");
            }
            let data = base64_simd::STANDARD
                .decode_to_vec(
                    answer
                        .get("data")
                        .and_then(Value::as_str)
                        .context("segment without data")?,
                )
                .context("segment data is not base64")?;
            let proof: Proof =
                serde_json::from_value(answer.get("proof").cloned().unwrap_or(Value::Null))
                    .context("segment without a valid proof")?;
            merkle::file::verify_segment(&root, size, SegmentIndex(index), &data, &proof)
                .with_context(|| format!("segment {index} failed verification"))?;
            let real = layout.segment_data_bytes(index) as usize;
            file_ref
                .write_all_at(&data[..real], index * SEGMENT_BYTES as u64)
                .with_context(|| format!("writing segment {index}"))?;
            bar_ref.inc(real as u64);
            anyhow::Ok(())
        })
        .buffer_unordered(PARALLEL_REQUESTS);
    while let Some(result) = results.next().await {
        if let Err(error) = result {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    }
    drop(results);
    file.sync_all()
        .with_context(|| format!("syncing {}", partial.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("renaming to {}", out.display()))?;
    bar.finish_and_clear();
    Ok(size)
}
