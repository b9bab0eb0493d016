//! The DA modules: the signer registry (`DA_REGISTRY_ADDRESS`) and the DA entrance
//! (`DA_ENTRANCE_ADDRESS`), zerog's own interfaces (`abi::da_registry`, `abi::da_entrance`).
//!
//! Registry. An account registers once with a BLS12-381 public key, a proof of possession of
//! it (checked here: without it an attacker could register a key derived from others' keys
//! and forge aggregates), an endpoint URL and a stake (the call's value, at least
//! `da_min_stake`). Stake stays locked; leaving is not modelled yet.
//!
//! Epochs and quorums. DA epoch `e` covers blocks `e·L .. (e+1)·L` (`L` = `da_blocks_per_epoch`).
//! Its quorums are a pure function of the chain: the signers registered in blocks before
//! `e·L`, and the hash of block `e·L − 1` as randomness (genesis for epoch 0). Each quorum has
//! `da_quorum_slots` slots, dealt in proportion to stake by systematic sampling: signers are
//! ordered by `keccak(seed ‖ address)`, laid on a line by cumulative stake, and slot `s` goes to
//! whoever covers `offset + s·total/slots` (offset from the seed). A signer with share `p` of
//! the stake gets ⌊p·slots⌋ or ⌈p·slots⌉ slots, so no luck of the draw concentrates slots.
//! Coded shard `i` of a blob belongs to slot `i mod slots`.
//!
//! Entrance. `submitCertificate` records a blob once its quorum has attested: the certificate's
//! epoch must be the current one or at most `da_certificate_window_epochs` older (else stale),
//! the bitmap covers the quorum's distinct signers in address order, its set bits must hold
//! the `signedSlots` it claims, `3·signedSlots ≥ 2·totalSlots`, and the aggregate signature
//! must verify over the set signers' keys for the attestation message (chain id, epoch,
//! quorum, blob id). The fee (`da_blob_fee`) moves to the entrance's balance.

use crate::abi::{da_entrance, da_registry};
use crate::chain::Chain;
use crate::modules::{CallFailure, Effect, Outcome, Revert, decode, not_payable, view};
use crate::receipt::Log;
use crate::submission::Address;
use alloy_primitives::U256;
use alloy_sol_types::{SolCall, SolEvent};
use da::attest::{PublicKey, VerifiedPublicKey};
use merkle::keccak::keccak256;
use std::collections::BTreeMap;
use types::H256;

/// Length of the endpoint URL a signer may register.
pub const MAX_ENDPOINT_BYTES: usize = 256;

/// A registered DA signer. The key was checked against its proof of possession when it
/// registered; state is rebuilt by replay, which checks it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaSigner {
    pub key: VerifiedPublicKey,
    pub pop: da::attest::ProofOfPossession,
    pub endpoint: String,
    pub stake: U256,
    pub registered_block: u64,
}

/// A blob the entrance recorded as available.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedBlob {
    pub commitment: Vec<u8>,
    pub epoch: u64,
    pub quorum: u32,
    pub block_number: u64,
}

/// The DA modules' state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaState {
    pub signers: BTreeMap<Address, DaSigner>,
    blobs: BTreeMap<H256, CertifiedBlob>,
    /// Every certified blob folded in certification order (see `state`): the state root
    /// covers the blobs without hashing all of them at each block.
    pub(crate) blobs_digest: H256,
}

impl DaState {
    /// The blob certified under `blob_id`, if any.
    pub fn blob(&self, blob_id: &H256) -> Option<&CertifiedBlob> {
        self.blobs.get(blob_id)
    }

    /// How many blobs are certified.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Records a certified blob; the caller checked that `blob_id` is new.
    pub(crate) fn certify_blob(&mut self, blob_id: H256, blob: CertifiedBlob) {
        self.blobs_digest = crate::state::fold_blob(self.blobs_digest, blob_id, &blob);
        self.blobs.insert(blob_id, blob);
    }
}

/// One quorum of an epoch: who holds each slot, and the distinct signers in address order
/// (the certificate bitmap's order) with their slot counts and keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    pub epoch: u64,
    pub id: u32,
    pub slots: Vec<Address>,
    pub members: Vec<QuorumMember>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumMember {
    pub address: Address,
    pub key: VerifiedPublicKey,
    pub endpoint: String,
    pub slots: u32,
}

impl Quorum {
    /// The quorum as `da::attest` verifies certificates against it.
    pub fn attest_quorum(
        &self,
        chain_id: u64,
    ) -> Result<da::attest::Quorum, da::attest::AttestError> {
        da::attest::Quorum::new(
            chain_id,
            self.id,
            self.epoch,
            self.members
                .iter()
                .map(|member| da::attest::QuorumMember {
                    key: member.key,
                    slots: member.slots,
                })
                .collect(),
        )
    }
}

/// Whether coding parameters suit a quorum of `slots` slots: the shards held by the honest
/// signers a certificate implies (at least ⌈2S/3⌉ signed slots, of which at most ⌊S/3⌋ may
/// lie) must be enough to decode, i.e. `(⌈2S/3⌉ − ⌊S/3⌋) · ⌊(k+m)/S⌋ ≥ k`. Otherwise a valid
/// certificate would not imply that the blob can be recovered (with fewer shards than slots,
/// slots would even hold nothing and sign for free).
pub fn check_params_for_quorum(params: &da::blob::DaParams, slots: usize) -> Result<(), String> {
    if slots == 0 {
        return Err("the quorum has no slots".to_string());
    }
    let total = params.total_shards();
    let honest_slots = (2 * slots).div_ceil(3) - slots / 3;
    let recoverable = honest_slots * (total / slots);
    if recoverable < params.data_shards() {
        return Err(format!(
            "{}+{} shards over {slots} slots: the honest third of slots a certificate implies holds              {recoverable} shards, fewer than the {} needed to decode",
            params.data_shards(),
            params.recovery_shards(),
            params.data_shards()
        ));
    }
    Ok(())
}

/// Deals `slots` slots to `signers` (address, stake) in proportion to stake; see the module
/// header. Empty when nobody has stake.
pub fn assign_slots(signers: &[(Address, U256)], seed: &H256, slots: u32) -> Vec<Address> {
    let total = signers
        .iter()
        .fold(U256::ZERO, |sum, (_, stake)| sum.saturating_add(*stake));
    if total.is_zero() || slots == 0 {
        return Vec::new();
    }
    let mut ordered: Vec<(H256, Address, U256)> = signers
        .iter()
        .filter(|(_, stake)| !stake.is_zero())
        .map(|(address, stake)| {
            let mut preimage = seed.0.to_vec();
            preimage.extend_from_slice(address);
            (keccak256(&preimage), *address, *stake)
        })
        .collect();
    ordered.sort();
    let offset = U256::from_be_bytes(keccak256(&seed.0).0) % total;
    let step_total = U256::from(slots);
    let mut assigned = Vec::with_capacity(slots as usize);
    for slot in 0..slots {
        // The point of slot s: offset + s·total/slots, wrapped; computed in one division so
        // rounding never drifts.
        let point = (offset + U256::from(slot) * total / step_total) % total;
        let mut cumulative = U256::ZERO;
        for (_, address, stake) in &ordered {
            cumulative += *stake;
            if point < cumulative {
                assigned.push(*address);
                break;
            }
        }
    }
    assigned
}

impl Chain {
    /// The DA epoch of the block being built.
    pub fn da_epoch(&self) -> u64 {
        (self.head().number() + 1) / self.config().da_blocks_per_epoch.max(1)
    }

    /// Quorum `id` of DA epoch `epoch`, or `None` when the epoch has not started yet, the
    /// quorum does not exist or nobody was registered before the epoch began.
    pub fn da_quorum(&self, epoch: u64, id: u32) -> Option<Quorum> {
        let config = self.config();
        if id >= config.da_quorums || epoch > self.da_epoch() {
            return None;
        }
        let first_block = epoch.checked_mul(config.da_blocks_per_epoch.max(1))?;
        let seed_block = self.block(first_block.saturating_sub(1))?;
        let mut preimage = seed_block.hash().0.to_vec();
        preimage.extend_from_slice(&epoch.to_be_bytes());
        preimage.extend_from_slice(&id.to_be_bytes());
        let seed = keccak256(&preimage);
        let eligible: Vec<(Address, U256)> = self
            .da
            .signers
            .iter()
            .filter(|(_, signer)| signer.registered_block < first_block)
            .map(|(address, signer)| (*address, signer.stake))
            .collect();
        let slots = assign_slots(&eligible, &seed, config.da_quorum_slots);
        if slots.is_empty() {
            return None;
        }
        let mut counts: BTreeMap<Address, u32> = BTreeMap::new();
        for holder in &slots {
            *counts.entry(*holder).or_default() += 1;
        }
        let members = counts
            .into_iter()
            .map(|(address, slots)| {
                let signer = &self.da.signers[&address];
                QuorumMember {
                    address,
                    key: signer.key,
                    endpoint: signer.endpoint.clone(),
                    slots,
                }
            })
            .collect();
        Some(Quorum {
            epoch,
            id,
            slots,
            members,
        })
    }

    pub fn da_blob(&self, blob_id: &H256) -> Option<&CertifiedBlob> {
        self.da.blob(blob_id)
    }

    pub fn da_signer(&self, address: &Address) -> Option<&DaSigner> {
        self.da.signers.get(address)
    }

    pub(crate) fn plan_da_registry(
        &self,
        from: Address,
        selector: [u8; 4],
        input: &[u8],
        value: U256,
    ) -> Result<Outcome, CallFailure> {
        match selector {
            da_registry::registerSignerCall::SELECTOR => {
                let call: da_registry::registerSignerCall = decode(input)?;
                if self.da.signers.contains_key(&from) {
                    return Err(Revert::new(format!(
                        "0x{} is already a DA signer",
                        hex::encode(from)
                    ))
                    .into());
                }
                let min_stake = self.config().da_min_stake;
                if value < min_stake {
                    return Err(Revert::new(format!(
                        "stake {value} wei is below the minimum of {min_stake} wei"
                    ))
                    .into());
                }
                if call.endpoint.is_empty() || call.endpoint.len() > MAX_ENDPOINT_BYTES {
                    return Err(Revert::new(format!(
                        "endpoint must be 1 to {MAX_ENDPOINT_BYTES} bytes"
                    ))
                    .into());
                }
                let refused = |error: da::attest::AttestError| {
                    Revert::new(format!("BLS key refused: {error}"))
                };
                let key = PublicKey::from_bytes(&call.pubkey).map_err(refused)?;
                let pop = da::attest::ProofOfPossession::from_bytes(&call.pop).map_err(refused)?;
                if self
                    .da
                    .signers
                    .values()
                    .any(|signer| signer.key.public_key() == &key)
                {
                    return Err(Revert::new("this BLS key is already registered").into());
                }
                let key = da::attest::verify_pop(&key, &pop).map_err(refused)?;
                Ok(Outcome {
                    output: Vec::new(),
                    effect: Effect::DaRegister {
                        signer: Box::new(DaSigner {
                            key,
                            pop,
                            endpoint: call.endpoint,
                            stake: value,
                            registered_block: self.head().number() + 1,
                        }),
                    },
                })
            }
            da_registry::signerCall::SELECTOR => {
                let call: da_registry::signerCall = decode(input)?;
                not_payable(value, "signer(address)")?;
                let signer = self.da.signers.get(&call.account.into_array());
                view(da_registry::signerCall::abi_encode_returns(
                    &da_registry::signerReturn {
                        pubkey: signer
                            .map(|s| s.key.public_key().to_bytes().to_vec())
                            .unwrap_or_default()
                            .into(),
                        pop: signer
                            .map(|s| s.pop.to_bytes().to_vec())
                            .unwrap_or_default()
                            .into(),
                        endpoint: signer.map(|s| s.endpoint.clone()).unwrap_or_default(),
                        stake: signer.map_or(U256::ZERO, |s| s.stake),
                        registeredBlock: signer.map_or(0, |s| s.registered_block),
                    },
                ))
            }
            da_registry::signerCountCall::SELECTOR => {
                decode::<da_registry::signerCountCall>(input)?;
                not_payable(value, "signerCount()")?;
                view(da_registry::signerCountCall::abi_encode_returns(
                    &U256::from(self.da.signers.len()),
                ))
            }
            da_registry::epochCall::SELECTOR => {
                decode::<da_registry::epochCall>(input)?;
                not_payable(value, "epoch()")?;
                view(da_registry::epochCall::abi_encode_returns(
                    &da_registry::epochReturn {
                        current: self.da_epoch(),
                        blocksPerEpoch: self.config().da_blocks_per_epoch,
                        certificateWindow: self.config().da_certificate_window_epochs,
                    },
                ))
            }
            da_registry::quorumSlotsCall::SELECTOR => {
                let call: da_registry::quorumSlotsCall = decode(input)?;
                not_payable(value, "quorumSlots(uint64,uint32)")?;
                let slots = self
                    .da_quorum(call.epochNumber, call.quorumId)
                    .map(|quorum| quorum.slots)
                    .unwrap_or_default();
                view(da_registry::quorumSlotsCall::abi_encode_returns(
                    &slots.into_iter().map(Into::into).collect::<Vec<_>>(),
                ))
            }
            da_registry::quorumCountCall::SELECTOR => {
                decode::<da_registry::quorumCountCall>(input)?;
                not_payable(value, "quorumCount()")?;
                view(da_registry::quorumCountCall::abi_encode_returns(
                    &self.config().da_quorums,
                ))
            }
            other => Err(crate::modules::unknown_selector(other)),
        }
    }

    pub(crate) fn plan_da_entrance(
        &self,
        selector: [u8; 4],
        input: &[u8],
        value: U256,
    ) -> Result<Outcome, CallFailure> {
        match selector {
            da_entrance::submitCertificateCall::SELECTOR => {
                let call: da_entrance::submitCertificateCall = decode(input)?;
                let fee = self.config().da_blob_fee;
                if value != fee {
                    return Err(Revert::new(format!(
                        "the DA fee is {fee} wei, {value} wei was sent"
                    ))
                    .into());
                }
                let commitment = da::commit::ShardCommitment::from_bytes(&call.commitment)
                    .map_err(|error| Revert::new(format!("bad commitment: {error}")))?;
                let blob_id = H256(commitment.blob_id().0);
                let certificate = da::attest::Certificate::from_bytes(
                    &call.certificate,
                    da::attest::MAX_QUORUM_SIGNERS,
                )
                .map_err(|error| Revert::new(format!("bad certificate: {error}")))?;
                if certificate.blob_id != blob_id {
                    return Err(Revert::new(format!(
                        "the certificate is for blob {}, the commitment is blob {blob_id}",
                        certificate.blob_id
                    ))
                    .into());
                }
                if self.da.blob(&blob_id).is_some() {
                    return Err(Revert::new(format!("blob {blob_id} is already certified")).into());
                }
                let current = self.da_epoch();
                let window = self.config().da_certificate_window_epochs;
                let epoch = certificate.epoch;
                if epoch > current {
                    return Err(Revert::new(format!(
                        "epoch {epoch} has not started (current {current})"
                    ))
                    .into());
                }
                if current - epoch > window {
                    return Err(Revert::new(format!(
                        "stale epoch {epoch}: certificates are accepted for epochs {}..={current}",
                        current.saturating_sub(window)
                    ))
                    .into());
                }
                let quorum_id = certificate.quorum_id;
                let quorum = self.da_quorum(epoch, quorum_id).ok_or_else(|| {
                    Revert::new(format!("epoch {epoch} has no quorum {quorum_id}"))
                })?;
                check_params_for_quorum(&commitment.params(), quorum.slots.len()).map_err(
                    |reason| Revert::new(format!("coding parameters refused: {reason}")),
                )?;
                quorum
                    .attest_quorum(self.config().chain_id)
                    .and_then(|quorum| certificate.verify(&quorum))
                    .map_err(|error| Revert::new(format!("certificate refused: {error}")))?;
                Ok(Outcome {
                    output: Vec::new(),
                    effect: Effect::DaCertify {
                        blob_id,
                        blob: CertifiedBlob {
                            commitment: call.commitment.to_vec(),
                            epoch,
                            quorum: quorum_id,
                            block_number: self.head().number() + 1,
                        },
                        signed_slots: certificate.signed_slots,
                        total_slots: certificate.total_slots,
                        value,
                    },
                })
            }
            da_entrance::isAvailableCall::SELECTOR => {
                let call: da_entrance::isAvailableCall = decode(input)?;
                not_payable(value, "isAvailable(bytes32)")?;
                view(da_entrance::isAvailableCall::abi_encode_returns(
                    &self.da.blob(&H256(call.blobId.0)).is_some(),
                ))
            }
            da_entrance::blobInfoCall::SELECTOR => {
                let call: da_entrance::blobInfoCall = decode(input)?;
                not_payable(value, "blobInfo(bytes32)")?;
                let blob = self.da.blob(&H256(call.blobId.0));
                view(da_entrance::blobInfoCall::abi_encode_returns(
                    &da_entrance::blobInfoReturn {
                        commitment: blob
                            .map(|b| b.commitment.clone())
                            .unwrap_or_default()
                            .into(),
                        epoch: blob.map_or(0, |b| b.epoch),
                        quorumId: blob.map_or(0, |b| b.quorum),
                        blockNumber: blob.map_or(0, |b| b.block_number),
                    },
                ))
            }
            da_entrance::blobFeeCall::SELECTOR => {
                decode::<da_entrance::blobFeeCall>(input)?;
                not_payable(value, "blobFee()")?;
                view(da_entrance::blobFeeCall::abi_encode_returns(
                    &self.config().da_blob_fee,
                ))
            }
            other => Err(crate::modules::unknown_selector(other)),
        }
    }

    pub(crate) fn apply_da_register(&mut self, from: Address, signer: DaSigner) -> Vec<Log> {
        self.move_value(from, crate::modules::DA_REGISTRY_ADDRESS, signer.stake);
        let data = da_registry::SignerRegistered {
            signer: from.into(),
            pubkey: signer.key.public_key().to_bytes().to_vec().into(),
            endpoint: signer.endpoint.clone(),
            stake: signer.stake,
        }
        .encode_log_data();
        self.da.signers.insert(from, signer);
        vec![Log {
            address: crate::modules::DA_REGISTRY_ADDRESS,
            topics: data.topics().iter().map(|topic| H256(topic.0)).collect(),
            data: data.data.to_vec(),
        }]
    }

    pub(crate) fn apply_da_certify(
        &mut self,
        from: Address,
        blob_id: H256,
        blob: CertifiedBlob,
        signed_slots: u64,
        total_slots: u64,
        value: U256,
    ) -> Vec<Log> {
        self.move_value(from, crate::modules::DA_ENTRANCE_ADDRESS, value);
        let data = da_entrance::BlobCertified {
            blobId: blob_id.0.into(),
            epoch: blob.epoch,
            quorumId: blob.quorum,
            commitment: blob.commitment.clone().into(),
            signedSlots: signed_slots,
            totalSlots: total_slots,
        }
        .encode_log_data();
        self.da.certify_blob(blob_id, blob);
        vec![Log {
            address: crate::modules::DA_ENTRANCE_ADDRESS,
            topics: data.topics().iter().map(|topic| H256(topic.0)).collect(),
            data: data.data.to_vec(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(n: u8) -> Address {
        let mut address = [0u8; 20];
        address[19] = n;
        address
    }

    #[test]
    fn slots_follow_stake_and_are_deterministic() {
        let seed = H256([7; 32]);
        let equal: Vec<(Address, U256)> = (1..=6).map(|n| (address(n), U256::from(10))).collect();
        let slots = assign_slots(&equal, &seed, 12);
        assert_eq!(slots.len(), 12);
        for n in 1..=6 {
            assert_eq!(slots.iter().filter(|a| **a == address(n)).count(), 2);
        }
        assert_eq!(slots, assign_slots(&equal, &seed, 12));
        assert_ne!(slots, assign_slots(&equal, &H256([8; 32]), 12));
        // Stake 3:1 over 8 slots: 6 and 2.
        let weighted = vec![(address(1), U256::from(30)), (address(2), U256::from(10))];
        let slots = assign_slots(&weighted, &seed, 8);
        assert_eq!(slots.iter().filter(|a| **a == address(1)).count(), 6);
        assert!(assign_slots(&[], &seed, 8).is_empty());
        assert!(assign_slots(&[(address(1), U256::ZERO)], &seed, 8).is_empty());
    }

    #[test]
    fn coding_parameters_must_let_the_honest_third_decode() {
        let params = |k, m| da::blob::DaParams::new(k, m).expect("params");
        assert!(check_params_for_quorum(&params(1024, 2048), 12).is_ok());
        assert!(check_params_for_quorum(&params(16, 32), 12).is_ok());
        assert!(check_params_for_quorum(&params(4, 8), 12).is_ok());
        // Fewer shards than slots: most slots would hold nothing.
        assert!(check_params_for_quorum(&params(1, 1), 12).is_err());
        // Rate 2/3: the honest third holds a third of the shards, fewer than k.
        assert!(check_params_for_quorum(&params(2048, 1024), 12).is_err());
        assert!(check_params_for_quorum(&params(4, 8), 0).is_err());
    }

    #[test]
    fn uneven_shares_get_floor_or_ceiling() {
        for seed_byte in 0..32u8 {
            let seed = H256([seed_byte; 32]);
            let signers: Vec<(Address, U256)> = (1..=7)
                .map(|n| (address(n), U256::from(u64::from(n) * 13)))
                .collect();
            let total: u64 = (1..=7u64).map(|n| n * 13).sum();
            let slots = assign_slots(&signers, &seed, 20);
            for (who, stake) in &signers {
                let got = slots.iter().filter(|a| *a == who).count() as f64;
                let share = stake.to::<u64>() as f64 / total as f64 * 20.0;
                assert!(
                    got >= share.floor() && got <= share.ceil(),
                    "{got} vs {share}"
                );
            }
        }
    }
}
