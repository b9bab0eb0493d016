//! `zerog da put | get | sample`: the DA client.
//!
//! `put` hands the blob to a node (`da_putBlob`), which encodes it on its data plane, disperses
//! the shards to the epoch's quorum, aggregates the signatures and records the certificate.
//! `get` and `sample` trust nobody but the chain: they read the blob's commitment from the DA
//! entrance and the holders of each slot from the registry, then fetch shards from the holders
//! and verify every shard against the commitment before using it. `get` decodes any `k`
//! verified shards and applies the validity predicate (a blob that is not a codeword, or not a
//! canonical payload, is empty for every reader); `sample` checks `s` random shards and prints
//! the bound on being fooled.

use crate::da_node::chain::{ChainQuorum, DaChain};
use crate::da_node::role::MAX_SHARDS_PER_GET;
use anyhow::{Context, anyhow, bail};
use da::blob::{DaParams, MAX_PAYLOAD_BYTES};
use da::codec::{Decoded, Decoder};
use da::commit::{BlobId, ShardCommitment, ShardIndex, ShardProof};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use types::H256;

/// Time a node may take to encode, disperse and certify one blob.
const PUT_TIMEOUT: Duration = Duration::from_secs(600);
/// Time one DA node may take to answer a shard request.
const GET_TIMEOUT: Duration = Duration::from_secs(60);

pub fn parse_blob_id(text: &str) -> anyhow::Result<BlobId> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes: [u8; 32] = hex::decode(digits)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| anyhow!("a blob id is 32 bytes of hex, not {text:?}"))?;
    Ok(BlobId(bytes))
}

/// Sends `file` to the node at `rpc` for dispersal; the node's answer.
pub async fn put(
    rpc: &str,
    file: &Path,
    params: DaParams,
    kzg: bool,
    quiet: bool,
) -> anyhow::Result<Value> {
    let payload = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        bail!(
            "{} is {} bytes; a blob holds at most {MAX_PAYLOAD_BYTES}",
            file.display(),
            payload.len()
        );
    }
    // The request body, sent in pieces so the bar follows the bytes on the wire.
    let options = json!({
        "dataShards": params.data_shards(),
        "recoveryShards": params.recovery_shards(),
        "kzg": kzg,
    });
    let mut body = br#"{"jsonrpc":"2.0","id":1,"method":"da_putBlob","params":[""#.to_vec();
    body.extend_from_slice(base64_simd::STANDARD.encode_to_string(&payload).as_bytes());
    body.extend_from_slice(format!("\",{options}]}}").as_bytes());
    let total = body.len() as u64;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg:12} {bar:40} {bytes}/{total_bytes} [{elapsed}]")
                .expect("a valid progress template"),
        );
        bar.set_message("sending");
        bar
    };
    let pieces: Vec<Vec<u8>> = body.chunks(1 << 20).map(<[u8]>::to_vec).collect();
    let sent = bar.clone();
    let stream = futures_util::stream::iter(pieces.into_iter().map(move |piece| {
        sent.inc(piece.len() as u64);
        Ok::<_, std::io::Error>(piece)
    }));
    let http = reqwest::Client::builder().timeout(PUT_TIMEOUT).build()?;
    let request = http
        .post(rpc)
        .header("content-type", "application/json")
        .header("content-length", total)
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    // Once the body is out, the node encodes, disperses and certifies in one go.
    tokio::pin!(request);
    let mut sending = true;
    let response = loop {
        tokio::select! {
            response = &mut request => break response,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if sending && bar.position() >= total {
                    sending = false;
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                            .expect("a valid progress template"),
                    );
                    bar.set_message(format!(
                        "encoding into {}+{} shards, dispersing to the quorum, certifying",
                        params.data_shards(),
                        params.recovery_shards()
                    ));
                    bar.enable_steady_tick(Duration::from_millis(100));
                }
            }
        }
    };
    bar.finish_and_clear();
    let answer: Value = response
        .with_context(|| format!("cannot reach {rpc}"))?
        .json()
        .await
        .context("the node's answer is not JSON")?;
    if let Some(error) = answer.get("error") {
        bail!(
            "da_putBlob: {}",
            error["message"].as_str().unwrap_or("failed")
        );
    }
    Ok(answer["result"].clone())
}

/// Shards fetched from one holder: (index, bytes, proof), or why none came.
async fn fetch(
    endpoint: &str,
    blob: &BlobId,
    width: usize,
    indices: &[ShardIndex],
) -> anyhow::Result<Vec<(ShardIndex, Vec<u8>, ShardProof)>> {
    // An honest answer is base64 shards and hex proofs; a holder that sends more is cut off.
    let per_shard = width * 4 / 3 + 4 * da::commit::MAX_TREE_DEPTH * 32 + 256;
    let node = client::Client::build(endpoint, "DA node", GET_TIMEOUT)?
        .with_response_limit(per_shard * MAX_SHARDS_PER_GET + 4096);
    let mut out = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(MAX_SHARDS_PER_GET) {
        let answer = node
            .call(
                "da_getShards",
                json!([
                    H256(blob.0),
                    chunk.iter().map(|index| index.0).collect::<Vec<_>>()
                ]),
            )
            .await?;
        let shards = answer
            .as_array()
            .ok_or_else(|| anyhow!("da_getShards answered something other than a list"))?;
        for shard in shards.iter().filter(|shard| !shard.is_null()) {
            let index = shard["index"]
                .as_u64()
                .and_then(|index| u32::try_from(index).ok())
                .ok_or_else(|| anyhow!("a shard without an index"))?;
            let data = shard["data"]
                .as_str()
                .and_then(|data| base64_simd::STANDARD.decode_to_vec(data.as_bytes()).ok())
                .ok_or_else(|| anyhow!("shard {index}: data is not base64"))?;
            let proof = shard["proof"]
                .as_str()
                .and_then(|proof| proof.strip_prefix("0x"))
                .and_then(|proof| hex::decode(proof).ok())
                .and_then(|bytes| ShardProof::from_bytes(&bytes).ok())
                .ok_or_else(|| anyhow!("shard {index}: malformed proof"))?;
            out.push((ShardIndex(index), data, proof));
        }
    }
    Ok(out)
}

/// What `get` concluded.
pub struct Retrieved {
    pub payload: Option<Vec<u8>>,
    pub empty_reason: Option<String>,
    pub verified: usize,
    pub rejected: Vec<String>,
    pub unreachable: Vec<String>,
}

async fn certified(
    chain: &DaChain,
    blob: &BlobId,
) -> anyhow::Result<(ShardCommitment, std::rc::Rc<ChainQuorum>)> {
    let record = chain.blob(blob).await?.ok_or_else(|| {
        anyhow!(
            "blob 0x{} is not certified on the chain",
            hex::encode(blob.0)
        )
    })?;
    let quorum = chain.quorum(record.epoch, record.quorum).await?;
    Ok((record.commitment, quorum))
}

/// Retrieves a certified blob: fetches shards from holders (in rounds, until `k` verify),
/// verifies each, decodes and applies the validity predicate.
pub async fn get(chain_url: &str, blob: &BlobId, quiet: bool) -> anyhow::Result<Retrieved> {
    let chain = DaChain::connect(chain_url, None).await?;
    let (commitment, quorum) = certified(&chain, blob).await?;
    let params = commitment.params();
    let width = commitment.shard_width_bytes();
    let total = params.total_shards();
    let needed = params.data_shards();
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(needed as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} shards verified {msg}")
                .expect("a valid progress template"),
        );
        bar
    };
    let mut decoder = Decoder::new(params);
    let mut retrieval = decoder.begin(&commitment)?;
    let mut rejected = Vec::new();
    let mut unreachable = Vec::new();
    let mut members = (0..quorum.members.len()).collect::<Vec<_>>().into_iter();
    while !retrieval.is_ready() {
        // Ask enough holders at once to cover what is still missing.
        let mut round = Vec::new();
        let mut planned = 0;
        for member in members.by_ref() {
            let indices = quorum.shards_of(member, total);
            planned += indices.len();
            round.push((member, indices));
            if retrieval.verified_count() + planned >= needed {
                break;
            }
        }
        if round.is_empty() {
            break;
        }
        let fetches = round.iter().map(|(member, indices)| {
            let endpoint = quorum.members[*member].1.clone();
            async move {
                (
                    endpoint.clone(),
                    fetch(&endpoint, blob, width, indices).await,
                )
            }
        });
        for (endpoint, result) in futures_util::future::join_all(fetches).await {
            match result {
                Err(error) => unreachable.push(format!("{endpoint}: {error:#}")),
                Ok(shards) => {
                    for (index, data, proof) in shards {
                        match retrieval.add(index, &data, &proof) {
                            Ok(_) => bar.set_position(retrieval.verified_count() as u64),
                            Err(reason) => {
                                rejected.push(format!("{endpoint}: shard {}: {reason}", index.0))
                            }
                        }
                    }
                }
            }
        }
    }
    bar.finish_and_clear();
    let verified = retrieval.verified_count();
    if !retrieval.is_ready() {
        bail!(
            "only {verified} of the {needed} shards needed verified; unreachable: [{}]; rejected: [{}]",
            unreachable.join("; "),
            rejected.join("; ")
        );
    }
    let (payload, empty_reason) = match retrieval.finish()? {
        Decoded::Available(payload) => (Some(payload.to_vec()), None),
        Decoded::Empty(reason) => (None, Some(reason.to_string())),
    };
    Ok(Retrieved {
        payload,
        empty_reason,
        verified,
        rejected,
        unreachable,
    })
}

fn random_u64() -> impl FnMut() -> u64 {
    use std::io::Read;
    let mut random = std::fs::File::open("/dev/urandom").ok();
    move || {
        let mut bytes = [0u8; 8];
        if let Some(file) = random.as_mut()
            && file.read_exact(&mut bytes).is_ok()
        {
            return u64::from_le_bytes(bytes);
        }
        // /dev/urandom always exists on Linux; a clock-based fallback keeps sampling going.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// What `sample` found.
pub struct Sampled {
    pub params: DaParams,
    pub asked: usize,
    pub verified: usize,
    pub failures: Vec<String>,
}

/// Samples `samples` random shards of a certified blob from their holders.
pub async fn sample(chain_url: &str, blob: &BlobId, samples: usize) -> anyhow::Result<Sampled> {
    if samples == 0 {
        bail!("sampling needs at least one shard");
    }
    let chain = DaChain::connect(chain_url, None).await?;
    let (commitment, quorum) = certified(&chain, blob).await?;
    let params = commitment.params();
    let width = commitment.shard_width_bytes();
    let indices = da::sample::choose_indices(&params, samples, random_u64());
    let slots = quorum.slots.len();
    let mut by_member: Vec<Vec<ShardIndex>> = vec![Vec::new(); quorum.members.len()];
    for index in &indices {
        let holder = quorum.slots[index.as_usize() % slots];
        let member = quorum
            .member_index(&holder)
            .expect("every slot holder is a quorum member");
        by_member[member].push(*index);
    }
    let fetches = by_member
        .iter()
        .enumerate()
        .filter(|(_, indices)| !indices.is_empty())
        .map(|(member, indices)| {
            let endpoint = quorum.members[member].1.clone();
            async move {
                (
                    endpoint.clone(),
                    indices.clone(),
                    fetch(&endpoint, blob, width, indices).await,
                )
            }
        });
    // Each asked index counts once, however often a holder sends it.
    let mut verified = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for (endpoint, asked, result) in futures_util::future::join_all(fetches).await {
        match result {
            Err(error) => failures.push(format!(
                "{endpoint}: {} shards unreachable: {error:#}",
                asked.len()
            )),
            Ok(shards) => {
                let mut answered = std::collections::BTreeSet::new();
                for (index, data, proof) in shards {
                    if !asked.contains(&index) {
                        failures.push(format!(
                            "{endpoint}: sent shard {} it was not asked for",
                            index.0
                        ));
                        continue;
                    }
                    if !answered.insert(index) {
                        failures.push(format!("{endpoint}: sent shard {} twice", index.0));
                        continue;
                    }
                    match commitment.verify_shard(index, &data, &proof) {
                        Ok(_) => {
                            verified.insert(index);
                        }
                        Err(reason) => {
                            failures.push(format!("{endpoint}: shard {}: {reason}", index.0))
                        }
                    }
                }
                if answered.len() < asked.len() {
                    failures.push(format!(
                        "{endpoint}: {} of {} shards missing",
                        asked.len() - answered.len(),
                        asked.len()
                    ));
                }
            }
        }
    }
    Ok(Sampled {
        params,
        asked: indices.len(),
        verified: verified.len(),
        failures,
    })
}
