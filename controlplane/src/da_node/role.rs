//! The DA-node role (`zerog node --da`): registration as a signer, `da_storeShards` and
//! `da_getShards`. A DA node signs an attestation only after every shard of its slots in that
//! blob is verified against the commitment and durable on its data plane; a request with a shard
//! it does not hold, a missing shard or a bad proof gets an error and no signature. Shards
//! expire `--da-retention-secs` after they were stored (the pruner drops them).

use super::chain::DaChain;
use super::{da_error, hex_data, now_unix, through_data_plane};
use crate::node::Node;
use crate::rpc::{BUSY, RpcError};
use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use anyhow::Context;
use chain_lite::abi::da_registry;
use chain_lite::{Address, DA_REGISTRY_ADDRESS};
use client::wire;
use da::attest::{AttestationMessage, PublicKey, SecretKey};
use da::commit::{BlobId, ShardCommitment, ShardIndex, ShardProof};
use dataplane::{Request, Response, da_shard_for};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use types::H256;

/// Blobs whose shard delivery is tracked at once (a disperser may split a member's shards
/// over several `da_storeShards` calls; the signature comes with the call that completes them).
const TRACKED_BLOBS: usize = 1024;
/// Most shards one `da_getShards` call may ask for (about 11 MiB of answer at the widest
/// shards of a 32 MiB blob).
pub const MAX_SHARDS_PER_GET: usize = 256;
/// Largest index a shard can have (k + m ≤ 2^16).
const MAX_SHARD_INDEX: u32 = (da::blob::MAX_TOTAL_SHARDS - 1) as u32;
/// Largest encoded shard proof accepted (a Merkle path over at most 2^16 leaves).
const MAX_PROOF_BYTES: usize = 64 * 32;

/// The DA-node role: the BLS key that signs, the account that registered it, retention.
pub struct DaRole {
    bls: SecretKey,
    public: PublicKey,
    pub address: Address,
    pub retention: Duration,
    /// Most bytes of DA records this node keeps live (`--da-max-mib`).
    quota_bytes: Option<u64>,
    /// Per blob (and epoch, quorum): the shards of this node's slots stored so far.
    held: RefCell<BTreeMap<(BlobId, u64, u32), BTreeSet<u32>>>,
}

/// A `da_storeShards` request, checked against the chain: the blob, and the shards of it this
/// node must hold.
struct Delivery {
    commitment: ShardCommitment,
    epoch: u64,
    quorum_id: u32,
    expected: Vec<u32>,
}

/// Shards that came with a request, by index, each verified against the commitment.
type Received = BTreeMap<u32, (Vec<u8>, ShardProof)>;

impl DaRole {
    pub fn new(
        seed: &[u8],
        address: Address,
        retention: Duration,
        quota_bytes: Option<u64>,
    ) -> anyhow::Result<DaRole> {
        let bls = SecretKey::from_seed(seed).context("the DA BLS key")?;
        let public = bls.public_key();
        Ok(DaRole {
            bls,
            public,
            address,
            retention,
            quota_bytes,
            held: RefCell::new(BTreeMap::new()),
        })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Registers this node on the chain unless its account already is a signer; an account
    /// registered with another BLS key is an error (its signatures would all be refused).
    pub async fn register(
        &self,
        chain: &DaChain,
        endpoint: &str,
        stake: U256,
    ) -> anyhow::Result<bool> {
        let record = chain.signer(self.address).await?;
        if !record.stake.is_zero() {
            anyhow::ensure!(
                record.pubkey.as_ref() == self.public.to_bytes(),
                "account 0x{} is registered with another BLS key; start with that key's seed \
                 (--da-bls-seed or the data folder's da-bls.seed) or use another --chain-key",
                hex::encode(self.address)
            );
            if record.endpoint != endpoint {
                tracing::warn!(registered = %record.endpoint, %endpoint, "this DA node is registered with another endpoint; dispersers use the registered one");
            }
            return Ok(false);
        }
        let call = da_registry::registerSignerCall {
            pubkey: self.public.to_bytes().to_vec().into(),
            pop: self.bls.prove_possession().to_bytes().to_vec().into(),
            endpoint: endpoint.to_string(),
        };
        chain
            .send(DA_REGISTRY_ADDRESS, stake, call.abi_encode())
            .await
            .context("registering as a DA signer")?;
        Ok(true)
    }

    /// Records that `indices` of a blob are stored; the signature once every shard of this
    /// node's slots is (in this call or earlier ones), and how many are held.
    fn attest_if_complete(
        &self,
        chain_id: u64,
        delivery: &Delivery,
        indices: &[u32],
    ) -> (Option<String>, usize) {
        let blob = delivery.commitment.blob_id();
        let key = (blob, delivery.epoch, delivery.quorum_id);
        let held_count = {
            let mut held = self.held.borrow_mut();
            if !held.contains_key(&key) && held.len() >= TRACKED_BLOBS {
                let oldest = *held.keys().next().expect("the map is full");
                held.remove(&oldest);
            }
            let set = held.entry(key).or_default();
            set.extend(indices.iter().copied());
            set.len()
        };
        if held_count != delivery.expected.len() {
            return (None, held_count);
        }
        self.held.borrow_mut().remove(&key);
        let message = AttestationMessage {
            chain_id,
            epoch: delivery.epoch,
            quorum_id: delivery.quorum_id,
            blob_id: H256(blob.0),
        };
        (
            Some(hex_data(&self.bls.sign(&message).to_bytes())),
            held_count,
        )
    }
}

/// `da_storeShards`: verifies every shard of the request against the commitment, stores them
/// durably and signs once this node holds all the shards of its slots.
pub async fn store_shards(node: &Node, request: &Value) -> Result<Value, RpcError> {
    let role = node.da.role()?;
    let chain = node.da.chain().await?;
    let (delivery, received) = checked_delivery(&chain, &role, request).await?;
    if let Some(quota) = role.quota_bytes {
        let incoming: u64 = received
            .values()
            .map(|(data, _)| data.len() as u64 + 4096)
            .sum();
        let live = da_live_bytes(node).await?;
        if live + incoming > quota {
            return Err(RpcError::new(
                BUSY,
                "da_quota",
                format!(
                    "storing {incoming} more bytes would pass this node's DA quota of {quota} bytes ({live} live)"
                ),
            ));
        }
    }
    let indices: Vec<u32> = received.keys().copied().collect();
    let earliest_expiry = write_shards(node, &role, delivery.commitment, received).await?;
    node.metrics.da_shards_stored.inc_by(indices.len() as u64);
    let (signature, held_count) = role.attest_if_complete(chain.chain_id(), &delivery, &indices);
    Ok(json!({
        "signer": hex_data(&role.address),
        "publicKey": hex_data(&role.public.to_bytes()),
        "signature": signature,
        "stored": indices.len(),
        "held": held_count,
        "expected": delivery.expected.len(),
        "expiresAt": earliest_expiry,
    }))
}

/// Parses a `da_storeShards` request and checks it against the chain (epoch window, quorum,
/// this node's slots) and every shard against the commitment, before anything is written.
async fn checked_delivery(
    chain: &DaChain,
    role: &DaRole,
    request: &Value,
) -> Result<(Delivery, Received), RpcError> {
    let commitment = wire::parse_data(&request["commitment"], "commitment", 1024)
        .map_err(|error| da_error("bad_commitment", error))
        .and_then(|bytes| {
            ShardCommitment::from_bytes(&bytes).map_err(|error| da_error("bad_commitment", error))
        })?;
    let epoch = request["epoch"]
        .as_u64()
        .ok_or_else(|| da_error("bad_params", "epoch must be a number"))?;
    let quorum_id = request["quorum"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| da_error("bad_params", "quorum must be a 32-bit number"))?;
    let expected = slots_held(chain, role, &commitment, epoch, quorum_id).await?;
    let shards = request["shards"]
        .as_array()
        .ok_or_else(|| da_error("bad_params", "shards must be a list"))?;
    let received = parse_shards(shards, &expected)?;
    for (index, (data, proof)) in &received {
        commitment
            .verify_shard(ShardIndex(*index), data, proof)
            .map_err(|error| da_error("bad_shard", format!("shard {index}: {error}")))?;
    }
    let delivery = Delivery {
        commitment,
        epoch,
        quorum_id,
        expected,
    };
    Ok((delivery, received))
}

/// The shard indices this node holds of a blob with `commitment` in quorum `quorum_id` of
/// `epoch`, once the epoch is known to be current enough and the parameters suit the quorum.
async fn slots_held(
    chain: &DaChain,
    role: &DaRole,
    commitment: &ShardCommitment,
    epoch: u64,
    quorum_id: u32,
) -> Result<Vec<u32>, RpcError> {
    let (current, window) = chain.epoch_and_window().await.map_err(super::chain_error)?;
    if epoch > current {
        return Err(da_error(
            "future_epoch",
            format!("epoch {epoch} has not started (current {current})"),
        ));
    }
    if current - epoch > window {
        return Err(da_error(
            "stale_epoch",
            format!(
                "epoch {epoch} is stale: shards are taken for epochs {}..={current}",
                current.saturating_sub(window)
            ),
        ));
    }
    let quorum = chain
        .quorum(epoch, quorum_id)
        .await
        .map_err(|error| da_error("no_quorum", format!("{error:#}")))?;
    chain_lite::da::check_params_for_quorum(&commitment.params(), quorum.slots.len())
        .map_err(|reason| da_error("bad_params", reason))?;
    let member = quorum.member_index(&role.address).ok_or_else(|| {
        da_error(
            "not_in_quorum",
            format!(
                "0x{} holds no slot of quorum {quorum_id} in epoch {epoch}",
                hex::encode(role.address)
            ),
        )
    })?;
    let total = commitment.params().total_shards();
    Ok(quorum
        .shards_of(member, total)
        .iter()
        .map(|index| index.0)
        .collect())
}

/// The request's shards by index: each one of `expected`, decoded, none twice.
fn parse_shards(shards: &[Value], expected: &[u32]) -> Result<Received, RpcError> {
    let mut received = BTreeMap::new();
    for shard in shards {
        let index = shard["index"]
            .as_u64()
            .and_then(|index| u32::try_from(index).ok())
            .ok_or_else(|| da_error("bad_params", "a shard index must be a 32-bit number"))?;
        if expected.binary_search(&index).is_err() {
            return Err(da_error(
                "wrong_shards",
                format!(
                    "shard {index} is not in this signer's slots (it holds {} shards of this blob)",
                    expected.len()
                ),
            ));
        }
        let data = shard["data"]
            .as_str()
            .and_then(|data| base64_simd::STANDARD.decode_to_vec(data.as_bytes()).ok())
            .ok_or_else(|| da_error("bad_params", format!("shard {index}: data is not base64")))?;
        let proof = wire::parse_data(&shard["proof"], "proof", MAX_PROOF_BYTES)
            .ok()
            .and_then(|bytes| ShardProof::from_bytes(&bytes).ok())
            .ok_or_else(|| da_error("bad_proof", format!("shard {index}: malformed proof")))?;
        if received.insert(index, (data, proof)).is_some() {
            return Err(da_error(
                "duplicate_shard",
                format!("shard {index} appears twice"),
            ));
        }
    }
    Ok(received)
}

/// Stores verified shards on their data-plane shards; the earliest expiry among them (a shard
/// stored before keeps its first expiry), `None` for an empty delivery.
async fn write_shards(
    node: &Node,
    role: &DaRole,
    commitment: ShardCommitment,
    received: Received,
) -> Result<Option<u64>, RpcError> {
    let expires = now_unix() + role.retention.as_secs();
    let blob = commitment.blob_id();
    let shard_count = node.shards.count();
    let indices: Vec<u32> = received.keys().copied().collect();
    let requests = received.into_iter().map(|(index, (data, proof))| {
        let put = dataplane::DaPutShard {
            commitment,
            index: ShardIndex(index),
            data,
            proof,
            expires_at_unix_s: expires,
        };
        (
            da_shard_for(&blob, ShardIndex(index), shard_count),
            Request::DaPut(put),
        )
    });
    let answers = through_data_plane(node, requests).await?;
    let mut earliest_expiry = None;
    for (index, answer) in indices.iter().zip(answers) {
        let expiry = match answer {
            Response::DaStored => expires,
            Response::DaAlreadyStored { expires_at_unix_s } => expires_at_unix_s,
            Response::DaRejected(reason) => {
                return Err(da_error("bad_shard", format!("shard {index}: {reason}")));
            }
            Response::Failed(reason) => {
                return Err(RpcError::internal(format!(
                    "storing shard {index}: {reason}"
                )));
            }
            Response::StorageFull(reason) => {
                return Err(RpcError::new(
                    crate::rpc::STORAGE_FULL,
                    "storage_full",
                    format!("storage full: shard {index} was not stored ({reason})"),
                ));
            }
            other => {
                return Err(RpcError::internal(format!(
                    "storing shard {index}: unexpected answer {other:?}"
                )));
            }
        };
        earliest_expiry =
            Some(earliest_expiry.map_or(expiry, |earliest: u64| earliest.min(expiry)));
    }
    Ok(earliest_expiry)
}

/// Live DA record bytes on this node's data plane.
async fn da_live_bytes(node: &Node) -> Result<u64, RpcError> {
    let requests = (0..node.shards.count()).map(|shard| (shard, Request::Stats));
    let mut live = 0;
    for answer in through_data_plane(node, requests).await? {
        match answer {
            Response::Stats(stats) => live += stats.da_record_bytes_live,
            other => {
                return Err(RpcError::internal(format!(
                    "shard statistics: unexpected answer {other:?}"
                )));
            }
        }
    }
    Ok(live)
}

/// `da_getShards`: the shards of `blob` this node holds (`null` for one it does not).
pub async fn get_shards(node: &Node, blob: BlobId, indices: &[u32]) -> Result<Value, RpcError> {
    node.da.role()?;
    if indices.len() > MAX_SHARDS_PER_GET {
        return Err(da_error(
            "too_many_shards",
            format!(
                "at most {MAX_SHARDS_PER_GET} shards per call, {} asked",
                indices.len()
            ),
        ));
    }
    let mut distinct = indices.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if let Some(bad) = distinct.iter().find(|index| **index > MAX_SHARD_INDEX) {
        return Err(da_error("bad_index", format!("no blob has a shard {bad}")));
    }
    let shard_count = node.shards.count();
    let requests = distinct.iter().map(|&index| {
        (
            da_shard_for(&blob, ShardIndex(index), shard_count),
            Request::DaGet {
                blob,
                index: ShardIndex(index),
            },
        )
    });
    let answers = through_data_plane(node, requests).await?;
    let mut out = Vec::with_capacity(answers.len());
    for (index, answer) in distinct.iter().zip(answers) {
        out.push(match answer {
            Response::DaShard { data, proof, .. } => {
                node.metrics.da_shards_served.inc();
                json!({
                    "index": index,
                    "data": base64_simd::STANDARD.encode_to_string(&data),
                    "proof": hex_data(&proof.to_bytes()),
                })
            }
            Response::NotFound => Value::Null,
            Response::Failed(reason) => {
                return Err(RpcError::internal(format!(
                    "reading shard {index}: {reason}"
                )));
            }
            other => {
                return Err(RpcError::internal(format!(
                    "reading shard {index}: unexpected answer {other:?}"
                )));
            }
        });
    }
    Ok(Value::Array(out))
}
