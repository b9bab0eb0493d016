//! DA in the node: dispersal (`da_putBlob`), the DA-node role (`zerog node --da`:
//! `da_storeShards`, `da_getShards`, registration, pruning) and the chain reads both need.
//!
//! Every chain access goes through Ethereum JSON-RPC (`DaChain`): to the node's own facade when
//! it embeds the chain, to `--chain-rpc` when it follows one. So a DA node and a disperser work
//! the same against zerog's embedded chain or a remote one, and every fact they act on (who
//! holds which slot, which keys, which blobs are certified) is read from the registry and the
//! entrance, never assumed.
//!
//! A DA node signs an attestation only after every shard of its slots in that blob is verified
//! against the commitment and durable on its data plane; a request with a shard it does not
//! hold, a missing shard or a bad proof gets an error and no signature. Shards expire
//! `--da-retention-secs` after they were stored and a background task prunes them.

use crate::node::Node;
use crate::remote::ChainRpc;
use crate::rpc::{Params, RpcError};
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use anyhow::{Context, anyhow, bail};
use chain_lite::abi::{da_entrance, da_registry};
use chain_lite::{Address, DA_ENTRANCE_ADDRESS, DA_REGISTRY_ADDRESS};
use da::attest::{
    Aggregator, AttestationMessage, ProofOfPossession, PublicKey, Quorum, QuorumMember, SecretKey,
    Signature,
};
use da::blob::DaParams;
use da::commit::{BlobId, ShardCommitment, ShardIndex, ShardProof};
use dataplane::{Request, Response, da_shard_for};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use types::H256;

/// Time a disperser allows one DA node to store one call's shards.
const STORE_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest `da_storeShards` request a disperser sends (the node's body limit is 48 MiB).
const STORE_CALL_BYTES: usize = 8 << 20;
/// Largest `da_storeShards` answer a disperser reads.
const STORE_ANSWER_BYTES: usize = 64 << 10;
/// Once two thirds have signed, how long the disperser still waits for the others.
const STRAGGLER_GRACE: Duration = Duration::from_secs(2);
/// Time allowed for a transaction's receipt to appear.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Quorums kept in the cache (they never change once their epoch has started).
const QUORUM_CACHE: usize = 64;

/// The chain as DA sees it, over JSON-RPC.
pub struct DaChain {
    rpc: ChainRpc,
    /// The account that pays for registrations and certificates; `None`: read-only.
    key: Option<PrivateKeySigner>,
    chain_id: u64,
    quorums: RefCell<BTreeMap<(u64, u32), Rc<ChainQuorum>>>,
    /// Serialises this node's transactions so nonces never collide.
    sending: tokio::sync::Mutex<()>,
    /// Whether this node serves `da_putBlob` (`--da-disperse`, or `--dev`).
    disperse: bool,
}

/// A quorum as read from the registry, keys re-checked against their proofs of possession.
pub struct ChainQuorum {
    pub quorum: Quorum,
    /// Slot `s` → holder's address.
    pub slots: Vec<Address>,
    /// Members in the quorum's (address) order, with their endpoints.
    pub members: Vec<(Address, String)>,
}

impl ChainQuorum {
    /// Coded shards held by member `member`: those whose slot (`index mod slots`) it holds.
    pub fn shards_of(&self, member: usize, total_shards: usize) -> Vec<ShardIndex> {
        let address = self.members[member].0;
        let slots = self.slots.len();
        (0..total_shards)
            .filter(|index| self.slots[index % slots] == address)
            .map(|index| ShardIndex(index as u32))
            .collect()
    }

    pub fn member_index(&self, address: &Address) -> Option<usize> {
        self.members
            .iter()
            .position(|(member, _)| member == address)
    }
}

/// A certified blob's record on the entrance.
pub struct BlobRecord {
    pub commitment: ShardCommitment,
    pub epoch: u64,
    pub quorum: u32,
}

fn hex_data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// A 0x quantity that must fit 64 bits (gas, nonces).
fn quantity(value: &Value, what: &str) -> anyhow::Result<u64> {
    crate::remote::parse_quantity(value, what)
}

impl DaChain {
    pub async fn connect(
        url: &str,
        key: Option<PrivateKeySigner>,
        disperse: bool,
    ) -> anyhow::Result<DaChain> {
        let rpc = ChainRpc::new(url)?;
        let chain_id = rpc.chain_id().await?;
        Ok(DaChain {
            rpc,
            key,
            chain_id,
            quorums: RefCell::new(BTreeMap::new()),
            sending: tokio::sync::Mutex::new(()),
            disperse,
        })
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn address(&self) -> Option<Address> {
        self.key.as_ref().map(|key| key.address().into_array())
    }

    async fn view(&self, to: Address, input: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let answer = self
            .rpc
            .call(
                "eth_call",
                json!([{ "to": hex_data(&to), "data": hex_data(&input) }, "latest"]),
            )
            .await?;
        crate::remote::parse_bytes(&answer, "eth_call result")
    }

    /// The DA epoch the next block belongs to.
    pub async fn current_epoch(&self) -> anyhow::Result<u64> {
        Ok(self.epoch_and_window().await?.0)
    }

    /// The current DA epoch and how many epochs back certificates may be.
    pub async fn epoch_and_window(&self) -> anyhow::Result<(u64, u64)> {
        let out = self
            .view(DA_REGISTRY_ADDRESS, da_registry::epochCall {}.abi_encode())
            .await?;
        let epoch = da_registry::epochCall::abi_decode_returns(&out).context("decoding epoch()")?;
        Ok((epoch.current, epoch.certificateWindow))
    }

    /// Quorum `id` of `epoch`, with keys checked against their proofs of possession.
    pub async fn quorum(&self, epoch: u64, id: u32) -> anyhow::Result<Rc<ChainQuorum>> {
        if let Some(quorum) = self.quorums.borrow().get(&(epoch, id)) {
            return Ok(quorum.clone());
        }
        let out = self
            .view(
                DA_REGISTRY_ADDRESS,
                da_registry::quorumSlotsCall {
                    epochNumber: epoch,
                    quorumId: id,
                }
                .abi_encode(),
            )
            .await?;
        let slots: Vec<Address> = da_registry::quorumSlotsCall::abi_decode_returns(&out)
            .context("decoding quorumSlots")?
            .into_iter()
            .map(|address| address.into_array())
            .collect();
        if slots.is_empty() {
            bail!("epoch {epoch} has no quorum {id} (no signers registered before it began)");
        }
        let mut counts: BTreeMap<Address, u32> = BTreeMap::new();
        for holder in &slots {
            *counts.entry(*holder).or_default() += 1;
        }
        let mut members = Vec::with_capacity(counts.len());
        let mut keys = Vec::with_capacity(counts.len());
        for (address, slot_count) in counts {
            let record = self.signer(address).await?;
            let key = PublicKey::from_bytes(&record.pubkey)
                .with_context(|| format!("signer 0x{}", hex::encode(address)))?;
            let pop = ProofOfPossession::from_bytes(&record.pop)
                .with_context(|| format!("signer 0x{}", hex::encode(address)))?;
            let key = da::attest::verify_pop(&key, &pop)
                .with_context(|| format!("signer 0x{}", hex::encode(address)))?;
            keys.push(QuorumMember {
                key,
                slots: slot_count,
            });
            members.push((address, record.endpoint));
        }
        let quorum = Rc::new(ChainQuorum {
            quorum: Quorum::new(self.chain_id, id, epoch, keys)?,
            slots,
            members,
        });
        let mut cache = self.quorums.borrow_mut();
        if cache.len() >= QUORUM_CACHE {
            let oldest = *cache.keys().next().expect("the cache is not empty");
            cache.remove(&oldest);
        }
        cache.insert((epoch, id), quorum.clone());
        Ok(quorum)
    }

    /// The entrance's record of a blob, or `None` if it is not certified.
    pub async fn blob(&self, blob_id: &BlobId) -> anyhow::Result<Option<BlobRecord>> {
        let out = self
            .view(
                DA_ENTRANCE_ADDRESS,
                da_entrance::blobInfoCall {
                    blobId: blob_id.0.into(),
                }
                .abi_encode(),
            )
            .await?;
        let info = da_entrance::blobInfoCall::abi_decode_returns(&out).context("blobInfo")?;
        if info.commitment.is_empty() {
            return Ok(None);
        }
        Ok(Some(BlobRecord {
            commitment: ShardCommitment::from_bytes(&info.commitment)?,
            epoch: info.epoch,
            quorum: info.quorumId,
        }))
    }

    /// The registry's record of `address` (zero stake: not registered).
    pub async fn signer(&self, address: Address) -> anyhow::Result<da_registry::signerReturn> {
        let out = self
            .view(
                DA_REGISTRY_ADDRESS,
                da_registry::signerCall {
                    account: address.into(),
                }
                .abi_encode(),
            )
            .await?;
        da_registry::signerCall::abi_decode_returns(&out).context("decoding signer")
    }

    /// Signs and sends a call from this node's account; waits for its receipt and fails on a
    /// revert with the chain's reason.
    pub async fn send(&self, to: Address, value: U256, input: Vec<u8>) -> anyhow::Result<Value> {
        let key = self.key.as_ref().ok_or_else(|| {
            anyhow!("this node has no chain account: start it with --chain-key to pay for DA")
        })?;
        let sender = hex_data(key.address().as_slice());
        let call = json!({ "from": sender, "to": hex_data(&to), "data": hex_data(&input), "value": format!("{value:#x}") });
        let hash = {
            let _turn = self.sending.lock().await;
            let gas_price = quantity(
                &self.rpc.call("eth_gasPrice", json!([])).await?,
                "eth_gasPrice",
            )?;
            let gas = quantity(
                &self.rpc.call("eth_estimateGas", json!([call])).await?,
                "eth_estimateGas",
            )?;
            let nonce = quantity(
                &self
                    .rpc
                    .call("eth_getTransactionCount", json!([sender, "pending"]))
                    .await?,
                "nonce",
            )?;
            let transaction = TxEip1559 {
                chain_id: self.chain_id,
                nonce,
                gas_limit: gas,
                max_fee_per_gas: u128::from(gas_price),
                max_priority_fee_per_gas: 0,
                to: TxKind::Call(to.into()),
                value,
                input: Bytes::from(input),
                access_list: Default::default(),
            };
            let signature = key
                .sign_hash_sync(&transaction.signature_hash())
                .context("signing")?;
            let raw = TxEnvelope::Eip1559(transaction.into_signed(signature)).encoded_2718();
            self.rpc
                .call("eth_sendRawTransaction", json!([hex_data(&raw)]))
                .await?
        };
        let started = Instant::now();
        let mut delay = Duration::from_millis(1);
        loop {
            let receipt = self
                .rpc
                .call("eth_getTransactionReceipt", json!([hash]))
                .await?;
            if !receipt.is_null() {
                if receipt["status"] != json!("0x1") {
                    // Receipts carry no reason: replaying the call shows the one it hits now.
                    let reason = match self.rpc.call("eth_call", json!([call, "latest"])).await {
                        Err(error) => format!("{error:#}"),
                        Ok(_) => "no reason given".to_string(),
                    };
                    bail!("transaction {hash} reverted: {reason}");
                }
                return Ok(receipt);
            }
            if started.elapsed() > RECEIPT_TIMEOUT {
                bail!("no receipt for {hash} after {}s", RECEIPT_TIMEOUT.as_secs());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }
}

/// Blobs whose shard delivery is tracked at once (a disperser may split a member's shards
/// over several `da_storeShards` calls; the signature comes with the call that completes them).
const TRACKED_BLOBS: usize = 1024;
/// Data-plane requests one DA call keeps in flight (the rings hold 1024 per shard).
const IN_FLIGHT: usize = 256;

/// The DA-node role of `zerog node --da`.
pub struct DaRole {
    bls: SecretKey,
    public: PublicKey,
    address: Address,
    retention: Duration,
    /// Most bytes of DA records this node keeps live (`--da-max-mib`).
    quota_bytes: Option<u64>,
    /// Per blob (and epoch, quorum): the shards of this node's slots stored so far.
    held: RefCell<BTreeMap<(BlobId, u64, u32), std::collections::BTreeSet<u32>>>,
}

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
        chain
            .send(
                DA_REGISTRY_ADDRESS,
                stake,
                da_registry::registerSignerCall {
                    pubkey: self.public.to_bytes().to_vec().into(),
                    pop: self.bls.prove_possession().to_bytes().to_vec().into(),
                    endpoint: endpoint.to_string(),
                }
                .abi_encode(),
            )
            .await
            .context("registering as a DA signer")?;
        Ok(true)
    }
}

fn da_error(kind: &'static str, error: impl std::fmt::Display) -> RpcError {
    RpcError::invalid_params(kind, error.to_string())
}

fn chain_error(error: anyhow::Error) -> RpcError {
    RpcError::internal(format!("chain: {error:#}"))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// `da_*` methods.
pub async fn dispatch(node: &Node, method: &str, mut params: Params) -> Result<Value, RpcError> {
    match method {
        "da_putBlob" => {
            params.at_most(2)?;
            let payload: String = params.required(0, "payload")?;
            let options: Option<Value> = params.optional(1, "options")?;
            let payload = base64_simd::STANDARD
                .decode_to_vec(payload.as_bytes())
                .map_err(|_| da_error("bad_payload", "payload is not standard base64"))?;
            let shards_option = |name: &str, default: usize| -> Result<usize, RpcError> {
                match options.as_ref().and_then(|options| options.get(name)) {
                    None | Some(Value::Null) => Ok(default),
                    Some(value) => value
                        .as_u64()
                        .map(|n| n as usize)
                        .ok_or_else(|| da_error("bad_params", format!("{name} must be a number"))),
                }
            };
            let params = DaParams::new(
                shards_option("dataShards", da::blob::DEFAULT_DATA_SHARDS)?,
                shards_option("recoveryShards", da::blob::DEFAULT_RECOVERY_SHARDS)?,
            )
            .map_err(|error| da_error("bad_params", error))?;
            let kzg = match options.as_ref().and_then(|options| options.get("kzg")) {
                None | Some(Value::Null) => false,
                Some(Value::Bool(kzg)) => *kzg,
                Some(_) => return Err(da_error("bad_params", "kzg must be true or false")),
            };
            disperse(node, params, payload, kzg).await
        }
        "da_storeShards" => {
            params.at_most(1)?;
            let request: Value = params.required(0, "request")?;
            store_shards(node, &request).await
        }
        "da_getShards" => {
            params.at_most(2)?;
            let blob: H256 = params.required(0, "blobId")?;
            let indices: Vec<u32> = params.required(1, "indices")?;
            get_shards(node, BlobId(blob.0), &indices).await
        }
        "da_status" => {
            params.at_most(0)?;
            let role = node.da_role()?;
            Ok(json!({
                "signer": hex_data(&role.address),
                "publicKey": hex_data(&role.public.to_bytes()),
                "retentionSecs": role.retention.as_secs(),
            }))
        }
        _ => Err(RpcError::new(
            crate::rpc::METHOD_NOT_FOUND,
            "method_not_found",
            format!("Method not found: {method}"),
        )),
    }
}

/// Most shards one `da_getShards` call may ask for (about 11 MiB of answer at the widest
/// shards of a 32 MiB blob).
pub const MAX_SHARDS_PER_GET: usize = 256;
/// Largest index a shard can have (k + m ≤ 2^16).
const MAX_SHARD_INDEX: u32 = (da::blob::MAX_TOTAL_SHARDS - 1) as u32;

/// Sends `requests` to the data plane with at most [`IN_FLIGHT`] unanswered, in order;
/// the answers in the same order.
async fn through_data_plane(
    node: &Node,
    requests: impl IntoIterator<Item = (usize, Request)>,
) -> Result<Vec<Response>, RpcError> {
    let mut pending = std::collections::VecDeque::new();
    let mut answers = Vec::new();
    for (shard, request) in requests {
        if pending.len() >= IN_FLIGHT {
            let future: crate::shards::ResponseFuture =
                pending.pop_front().expect("the window is not empty");
            answers.push(future.await);
        }
        let future = node
            .shards
            .call(shard, request)
            .map_err(|_| RpcError::new(crate::rpc::BUSY, "busy", "data plane queue full; retry"))?;
        pending.push_back(future);
    }
    for future in pending {
        answers.push(future.await);
    }
    Ok(answers)
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

async fn store_shards(node: &Node, request: &Value) -> Result<Value, RpcError> {
    let role = node.da_role()?;
    let chain = node.da_chain()?;
    let commitment = crate::remote::parse_bytes(&request["commitment"], "commitment")
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
    let (current, window) = chain.epoch_and_window().await.map_err(chain_error)?;
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
    let expected: Vec<u32> = quorum
        .shards_of(member, total)
        .iter()
        .map(|index| index.0)
        .collect();
    let shards = request["shards"]
        .as_array()
        .ok_or_else(|| da_error("bad_params", "shards must be a list"))?;
    let mut received: BTreeMap<u32, (Vec<u8>, ShardProof)> = BTreeMap::new();
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
        let proof = crate::remote::parse_bytes(&shard["proof"], "proof")
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
    // Every shard is checked against the commitment before anything is written.
    for (index, (data, proof)) in &received {
        commitment
            .verify_shard(ShardIndex(*index), data, proof)
            .map_err(|error| da_error("bad_shard", format!("shard {index}: {error}")))?;
    }
    if let Some(quota) = role.quota_bytes {
        let incoming: u64 = received
            .values()
            .map(|(data, _)| data.len() as u64 + 4096)
            .sum();
        let live = da_live_bytes(node).await?;
        if live + incoming > quota {
            return Err(RpcError::new(
                crate::rpc::BUSY,
                "da_quota",
                format!(
                    "storing {incoming} more bytes would pass this node's DA quota of {quota} bytes ({live} live)"
                ),
            ));
        }
    }
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
    let mut earliest_expiry = u64::MAX;
    for (index, answer) in indices.iter().zip(answers) {
        match answer {
            Response::DaStored => earliest_expiry = earliest_expiry.min(expires),
            Response::DaAlreadyStored { expires_at_unix_s } => {
                earliest_expiry = earliest_expiry.min(expires_at_unix_s);
            }
            Response::DaRejected(reason) => {
                return Err(da_error("bad_shard", format!("shard {index}: {reason}")));
            }
            Response::Failed(reason) => {
                return Err(RpcError::internal(format!(
                    "storing shard {index}: {reason}"
                )));
            }
            other => {
                return Err(RpcError::internal(format!(
                    "storing shard {index}: unexpected answer {other:?}"
                )));
            }
        }
    }
    node.metrics.da_shards_stored.inc_by(indices.len() as u64);
    // Sign once every shard of this node's slots is stored (in this call or earlier ones).
    let held_count = {
        let mut held = role.held.borrow_mut();
        let key = (blob, epoch, quorum_id);
        if !held.contains_key(&key) && held.len() >= TRACKED_BLOBS {
            let oldest = *held.keys().next().expect("the map is full");
            held.remove(&oldest);
        }
        let set = held.entry(key).or_default();
        set.extend(indices.iter().copied());
        set.len()
    };
    let complete = held_count == expected.len();
    let signature = complete.then(|| {
        role.held.borrow_mut().remove(&(blob, epoch, quorum_id));
        let message = AttestationMessage {
            chain_id: chain.chain_id(),
            epoch,
            quorum_id,
            blob_id: H256(blob.0),
        };
        hex_data(&role.bls.sign(&message).to_bytes())
    });
    Ok(json!({
        "signer": hex_data(&role.address),
        "publicKey": hex_data(&role.public.to_bytes()),
        "signature": signature,
        "stored": indices.len(),
        "held": held_count,
        "expected": expected.len(),
        "expiresAt": (earliest_expiry != u64::MAX).then_some(earliest_expiry),
    }))
}

async fn get_shards(node: &Node, blob: BlobId, indices: &[u32]) -> Result<Value, RpcError> {
    node.da_role()?;
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

/// Encodes on a data-plane shard, sends each quorum member its shards, aggregates the
/// signatures and records the certificate on the chain.
///
/// With `kzg`, the payload's EIP-4844-shaped KZG commitments are computed on the compute pool
/// (off the control-plane thread) while the blob disperses, and returned with the answer.
async fn disperse(
    node: &Node,
    params: DaParams,
    payload: Vec<u8>,
    kzg: bool,
) -> Result<Value, RpcError> {
    let chain = node.da_chain()?;
    if !chain.disperse {
        return Err(RpcError::new(
            crate::rpc::METHOD_NOT_FOUND,
            "not_a_disperser",
            "this node does not disperse blobs: start it with --da-disperse (and --chain-key)",
        ));
    }
    if chain.address().is_none() {
        return Err(da_error(
            "no_chain_account",
            "this node has no chain account to pay for the certificate: start it with --chain-key",
        ));
    }
    let started = Instant::now();
    // The quorum first: parameters that do not suit it are refused before any work.
    let epoch = chain.current_epoch().await.map_err(chain_error)?;
    let quorum_id = 0;
    let quorum = chain
        .quorum(epoch, quorum_id)
        .await
        .map_err(|error| da_error("no_quorum", format!("{error:#}")))?;
    chain_lite::da::check_params_for_quorum(&params, quorum.slots.len())
        .map_err(|reason| da_error("bad_params", reason))?;
    let kzg_commitments = if kzg {
        let pool = node.compute();
        let payload = payload.clone();
        Some(tokio::task::spawn_blocking(move || {
            da::kzg::commit_payload(&payload, &*pool)
        }))
    } else {
        None
    };
    let shard = node.next_encoding_shard();
    let encoded = match node
        .shards
        .call(shard, Request::DaEncode { params, payload })
        .map_err(|_| RpcError::new(crate::rpc::BUSY, "busy", "data plane queue full; retry"))?
        .await
    {
        Response::DaEncoded(encoded) => encoded,
        Response::DaRejected(reason) => return Err(da_error("bad_payload", reason)),
        other => {
            return Err(RpcError::internal(format!(
                "encoding: unexpected answer {other:?}"
            )));
        }
    };
    let encode_ms = started.elapsed().as_millis() as u64;
    let commitment = *encoded.commitment();
    let blob = commitment.blob_id();
    let total = commitment.params().total_shards();
    // Each member gets its shards in calls of at most STORE_CALL_BYTES (one after another),
    // all members at once; the last call that completes a member's slots brings its signature.
    let encoded = &encoded;
    let deliveries = quorum.members.iter().enumerate().map(|(member, (_, endpoint))| {
        let indices = quorum.shards_of(member, total);
        async move {
            let result = async {
                let rpc = ChainRpc::with_timeout(endpoint, STORE_TIMEOUT)?
                    .with_response_limit(STORE_ANSWER_BYTES);
                let per_call = (STORE_CALL_BYTES / (commitment.shard_width_bytes() * 4 / 3 + 1024)).max(1);
                let mut signature = None;
                for chunk in indices.chunks(per_call) {
                    let shards: Vec<Value> = chunk
                        .iter()
                        .map(|index| {
                            json!({
                                "index": index.0,
                                "data": base64_simd::STANDARD.encode_to_string(encoded.shard(*index)),
                                "proof": hex_data(&encoded.proof(*index).to_bytes()),
                            })
                        })
                        .collect();
                    let body = json!([{
                        "commitment": hex_data(&commitment.to_bytes()),
                        "epoch": epoch,
                        "quorum": quorum_id,
                        "shards": shards,
                    }]);
                    let answer = rpc.call("da_storeShards", body).await?;
                    signature = answer.get("signature").filter(|value| !value.is_null()).cloned();
                }
                let signature = signature
                    .ok_or_else(|| anyhow!("stored its shards but gave no signature"))?;
                let bytes = crate::remote::parse_bytes(&signature, "signature")?;
                Ok::<_, anyhow::Error>(Signature::from_bytes(&bytes)?)
            }
            .await;
            (member, endpoint.clone(), result)
        }
    });
    let mut deliveries: futures_util::stream::FuturesUnordered<_> = deliveries.collect();
    let mut aggregator = Aggregator::new(&quorum.quorum, H256(blob.0));
    let mut failures = Vec::new();
    // Past the threshold, stragglers get a short grace period, not the whole timeout.
    let mut grace: Option<tokio::time::Instant> = None;
    loop {
        let next = match grace {
            None => futures_util::StreamExt::next(&mut deliveries).await,
            Some(deadline) => {
                match tokio::time::timeout_at(
                    deadline,
                    futures_util::StreamExt::next(&mut deliveries),
                )
                .await
                {
                    Ok(next) => next,
                    Err(_) => {
                        failures.push(format!(
                            "{} members had not answered within the grace period",
                            deliveries.len()
                        ));
                        break;
                    }
                }
            }
        };
        let Some((member, endpoint, result)) = next else {
            break;
        };
        match result.map(|signature| aggregator.add(member, &signature)) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failures.push(format!("{endpoint}: {error}")),
            Err(error) => failures.push(format!("{endpoint}: {error:#}")),
        }
        if grace.is_none() && aggregator.meets_threshold() {
            grace = Some(tokio::time::Instant::now() + STRAGGLER_GRACE);
        }
    }
    drop(deliveries);
    let dispersed_ms = started.elapsed().as_millis() as u64;
    let signed_slots = aggregator.signed_slots();
    let total_slots = quorum.quorum.total_slots();
    let certificate = aggregator.finish().map_err(|error| {
        da_error(
            "not_enough_signatures",
            format!(
                "{signed_slots} of {total_slots} slots attested ({error}); failures: {}",
                failures.join("; ")
            ),
        )
    })?;
    let fee = {
        let out = chain
            .view(
                DA_ENTRANCE_ADDRESS,
                da_entrance::blobFeeCall {}.abi_encode(),
            )
            .await
            .map_err(chain_error)?;
        da_entrance::blobFeeCall::abi_decode_returns(&out)
            .map_err(|error| RpcError::internal(format!("blobFee: {error}")))?
    };
    let receipt = chain
        .send(
            DA_ENTRANCE_ADDRESS,
            fee,
            da_entrance::submitCertificateCall {
                commitment: commitment.to_bytes().to_vec().into(),
                certificate: certificate.to_bytes().into(),
            }
            .abi_encode(),
        )
        .await
        .map_err(|error| da_error("certificate_refused", format!("{error:#}")))?;
    node.metrics.da_blobs_dispersed.inc();
    let kzg_commitments = match kzg_commitments {
        None => Value::Null,
        Some(job) => {
            let commitments = job
                .await
                .map_err(|error| RpcError::internal(format!("KZG job: {error}")))?
                .map_err(|error| RpcError::internal(format!("KZG commitments: {error}")))?;
            Value::Array(
                commitments
                    .iter()
                    .map(|commitment| Value::String(hex_data(&commitment.0)))
                    .collect(),
            )
        }
    };
    Ok(json!({
        "kzgCommitments": kzg_commitments,
        "blobId": hex_data(&blob.0),
        "commitment": hex_data(&commitment.to_bytes()),
        "epoch": epoch,
        "quorum": quorum_id,
        "signedSlots": certificate.signed_slots,
        "totalSlots": certificate.total_slots,
        "signers": certificate.signers.count(),
        "failures": failures,
        "transactionHash": receipt["transactionHash"],
        "blockNumber": receipt["blockNumber"],
        "encodeMs": encode_ms,
        "disperseMs": dispersed_ms - encode_ms,
        "totalMs": started.elapsed().as_millis() as u64,
    }))
}

/// Prunes expired shards on every data-plane shard, forever, every `period`.
pub async fn run_pruner(node: Rc<Node>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let now = now_unix();
        for shard in 0..node.shards.count() {
            loop {
                let Ok(future) = node
                    .shards
                    .call(shard, Request::DaPrune { now_unix_s: now })
                else {
                    break;
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
                            break;
                        }
                    }
                    other => {
                        tracing::warn!(shard, ?other, "DA prune failed; retried next period");
                        break;
                    }
                }
            }
        }
    }
}
