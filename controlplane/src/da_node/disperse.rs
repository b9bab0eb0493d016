//! Dispersal (`da_putBlob`): encode on a data-plane shard, send each member of the epoch's
//! quorum exactly the shards of its slots (in calls of at most `STORE_CALL_BYTES`, all members
//! at once), fold the returned BLS signatures into a certificate and, at two thirds of the
//! slots, submit it to the DA entrance. A dev node with no signer on its chain registers itself
//! first, so `zerog da put` works against a plain `zerog node --dev`.

use super::chain::{ChainQuorum, DaChain};
use super::{chain_error, da_error, hex_data};
use crate::node::Node;
use crate::rpc::{BUSY, METHOD_NOT_FOUND, RpcError};
use alloy_sol_types::SolCall;
use anyhow::anyhow;
use chain_lite::DA_ENTRANCE_ADDRESS;
use chain_lite::abi::da_entrance;
use da::attest::{Aggregator, Certificate, Signature};
use da::blob::DaParams;
use da::commit::ShardCommitment;
use dataplane::{DaEncoded, Request, Response};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
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
/// The quorum every blob uses for now.
const QUORUM_ID: u32 = 0;

/// What the quorum signed: the certificate and who failed.
struct Attested {
    certificate: Certificate,
    failures: Vec<String>,
}

/// Encodes, disperses, certifies. With `kzg`, the payload's EIP-4844-shaped KZG commitments
/// are computed on the compute pool (off the control-plane thread) while the blob disperses,
/// and returned with the answer.
pub async fn disperse(
    node: &Node,
    params: DaParams,
    payload: Vec<u8>,
    kzg: bool,
) -> Result<Value, RpcError> {
    // What the flags decide is answered at once, before waiting for the chain.
    if !node.da.disperses() {
        return Err(RpcError::new(
            METHOD_NOT_FOUND,
            "not_a_disperser",
            "this node does not disperse blobs: start it with --da-disperse (and --chain-key)",
        ));
    }
    if !node.da.has_payer() {
        return Err(da_error(
            "no_chain_account",
            "this node has no chain account to pay for the certificate: start it with --chain-key",
        ));
    }
    let chain = node.da.chain().await?;
    let started = Instant::now();
    // The quorum first: parameters that do not suit it are refused before any work.
    let (epoch, quorum) = current_quorum(node, &chain).await?;
    chain_lite::da::check_params_for_quorum(&params, quorum.slots.len())
        .map_err(|reason| da_error("bad_params", reason))?;
    let kzg_job = kzg.then(|| {
        let pool = node.compute.clone();
        let payload = payload.clone();
        tokio::task::spawn_blocking(move || da::kzg::commit_payload(&payload, &*pool))
    });
    let encoded = encode(node, params, payload).await?;
    let encode_ms = started.elapsed().as_millis() as u64;
    let commitment = *encoded.commitment();
    let attested = collect_signatures(&quorum, epoch, &encoded).await?;
    let dispersed_ms = started.elapsed().as_millis() as u64;
    let fee = chain.blob_fee().await.map_err(chain_error)?;
    let call = da_entrance::submitCertificateCall {
        commitment: commitment.to_bytes().to_vec().into(),
        certificate: attested.certificate.to_bytes().into(),
    };
    let receipt = chain
        .send(DA_ENTRANCE_ADDRESS, fee, call.abi_encode())
        .await
        .map_err(|error| da_error("certificate_refused", format!("{error:#}")))?;
    node.metrics.da_blobs_dispersed.inc();
    let kzg_commitments = match kzg_job {
        None => Value::Null,
        Some(job) => {
            let commitments = job
                .await
                .map_err(|error| RpcError::internal(format!("KZG job: {error}")))?
                .map_err(|error| RpcError::internal(format!("KZG commitments: {error}")))?;
            commitments
                .iter()
                .map(|commitment| Value::String(hex_data(&commitment.0)))
                .collect()
        }
    };
    let certificate = &attested.certificate;
    Ok(json!({
        "kzgCommitments": kzg_commitments,
        "blobId": hex_data(&commitment.blob_id().0),
        "commitment": hex_data(&commitment.to_bytes()),
        "epoch": epoch,
        "quorum": QUORUM_ID,
        "signedSlots": certificate.signed_slots,
        "totalSlots": certificate.total_slots,
        "signers": certificate.signers.count(),
        "failures": attested.failures,
        "transactionHash": receipt.transaction_hash,
        "blockNumber": format!("{:#x}", receipt.block_number),
        "encodeMs": encode_ms,
        "disperseMs": dispersed_ms - encode_ms,
        "totalMs": started.elapsed().as_millis() as u64,
    }))
}

/// The current epoch and its quorum. A chain with no signer yet has no quorum: a dev node
/// becomes its chain's signer then; any other node says what to start.
async fn current_quorum(node: &Node, chain: &DaChain) -> Result<(u64, Rc<ChainQuorum>), RpcError> {
    let epoch = chain.epoch_and_window().await.map_err(chain_error)?.0;
    match chain.quorum(epoch, QUORUM_ID).await {
        Ok(quorum) => return Ok((epoch, quorum)),
        Err(error) if !error.is::<super::chain::NoSigners>() => {
            return Err(da_error("no_quorum", format!("{error:#}")));
        }
        Err(error) => {
            let registered = super::setup::register_dev_signer(node)
                .await
                .map_err(|error| da_error("no_quorum", format!("{error:#}")))?;
            if !registered {
                return Err(da_error(
                    "no_quorum",
                    format!(
                        "{error}: start a DA node that registers on this chain \
                         (`zerog node --da --chain-key KEY --chain-rpc URL`) and retry"
                    ),
                ));
            }
        }
    }
    // Registered in the head block: the epoch of the next block counts it (dev chains deal a
    // new epoch every block), and with no other signer it holds every slot.
    let epoch = chain.epoch_and_window().await.map_err(chain_error)?.0;
    let quorum = chain
        .quorum(epoch, QUORUM_ID)
        .await
        .map_err(|error| da_error("no_quorum", format!("{error:#}")))?;
    Ok((epoch, quorum))
}

/// Codes the payload on the next data-plane shard (round robin).
async fn encode(node: &Node, params: DaParams, payload: Vec<u8>) -> Result<DaEncoded, RpcError> {
    let shard = node.da.next_encoding_shard(node.shards.count());
    let answer = node
        .shards
        .call(shard, Request::DaEncode { params, payload })
        .map_err(|_| RpcError::new(BUSY, "busy", "data plane queue full; retry"))?
        .await;
    match answer {
        Response::DaEncoded(encoded) => Ok(*encoded),
        Response::DaRejected(reason) => Err(da_error("bad_payload", reason)),
        other => Err(RpcError::internal(format!(
            "encoding: unexpected answer {other:?}"
        ))),
    }
}

/// Sends every member its shards at once and aggregates the signatures as they come; past the
/// threshold, stragglers get a short grace period, not the whole timeout.
async fn collect_signatures(
    quorum: &ChainQuorum,
    epoch: u64,
    encoded: &DaEncoded,
) -> Result<Attested, RpcError> {
    let commitment = encoded.commitment();
    let total = commitment.params().total_shards();
    let mut deliveries: FuturesUnordered<_> = quorum
        .members
        .iter()
        .enumerate()
        .map(|(member, (_, endpoint))| {
            let indices: Vec<u32> = quorum
                .shards_of(member, total)
                .iter()
                .map(|index| index.0)
                .collect();
            async move {
                let result = deliver(endpoint, epoch, encoded, &indices).await;
                (member, endpoint.clone(), result)
            }
        })
        .collect();
    let mut aggregator = Aggregator::new(&quorum.quorum, H256(commitment.blob_id().0));
    let mut failures = Vec::new();
    let mut grace: Option<tokio::time::Instant> = None;
    loop {
        let next = match grace {
            None => deliveries.next().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, deliveries.next()).await {
                Ok(next) => next,
                Err(_) => {
                    failures.push(format!(
                        "{} members had not answered within the grace period",
                        deliveries.len()
                    ));
                    break;
                }
            },
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
    let (signed_slots, total_slots) = (aggregator.signed_slots(), quorum.quorum.total_slots());
    let certificate = aggregator.finish().map_err(|error| {
        da_error(
            "not_enough_signatures",
            format!(
                "{signed_slots} of {total_slots} slots attested ({error}); failures: {}",
                failures.join("; ")
            ),
        )
    })?;
    Ok(Attested {
        certificate,
        failures,
    })
}

/// Sends one member its shards (`indices`), one call after another; the call that completes
/// its slots brings its signature.
async fn deliver(
    endpoint: &str,
    epoch: u64,
    encoded: &DaEncoded,
    indices: &[u32],
) -> anyhow::Result<Signature> {
    let commitment: &ShardCommitment = encoded.commitment();
    let rpc = client::Client::build(endpoint, "DA node", STORE_TIMEOUT)?
        .with_response_limit(STORE_ANSWER_BYTES);
    let per_call = (STORE_CALL_BYTES / (commitment.shard_width_bytes() * 4 / 3 + 1024)).max(1);
    let mut signature = None;
    for chunk in indices.chunks(per_call) {
        let shards: Vec<Value> = chunk
            .iter()
            .map(|&index| {
                let index = da::commit::ShardIndex(index);
                json!({
                    "index": index.0,
                    "data": base64_simd::STANDARD.encode_to_string(encoded.shard(index)),
                    "proof": hex_data(&encoded.proof(index).to_bytes()),
                })
            })
            .collect();
        let body = json!([{
            "commitment": hex_data(&commitment.to_bytes()),
            "epoch": epoch,
            "quorum": QUORUM_ID,
            "shards": shards,
        }]);
        let answer = rpc.call("da_storeShards", body).await?;
        signature = answer
            .get("signature")
            .filter(|value| !value.is_null())
            .cloned();
    }
    let signature = signature.ok_or_else(|| anyhow!("stored its shards but gave no signature"))?;
    let bytes = client::wire::parse_data(&signature, "signature", 1024)?;
    Ok(Signature::from_bytes(&bytes)?)
}
