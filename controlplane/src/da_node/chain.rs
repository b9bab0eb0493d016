//! The chain as DA sees it, over Ethereum JSON-RPC (the node's own facade when it embeds the
//! chain, `--chain-rpc` when it follows one): the signer registry's quorums, with every key
//! re-checked against its proof of possession, the entrance's blob records, and transactions
//! from the node's account through the one chain client.

use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use anyhow::{Context, anyhow};
use chain_lite::abi::{da_entrance, da_registry};
use chain_lite::{Address, DA_ENTRANCE_ADDRESS, DA_REGISTRY_ADDRESS};
use client::chain::Receipt;
use client::{Chain, Payer};
use da::attest::{ProofOfPossession, PublicKey, Quorum, QuorumMember};
use da::commit::{BlobId, ShardCommitment, ShardIndex};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Quorums kept in the cache (they never change once their epoch has started).
const QUORUM_CACHE: usize = 64;

/// The chain as DA reads and pays it.
pub struct DaChain {
    chain: Chain,
    /// The account that pays for registrations and certificates; `None`: read-only.
    payer: Option<Rc<Payer>>,
    quorums: RefCell<BTreeMap<(u64, u32), Rc<ChainQuorum>>>,
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

/// The registry dealt no slots: nobody registered as a signer before the epoch began.
#[derive(Debug, thiserror::Error)]
#[error("epoch {epoch} has no quorum {id} (no signers registered before it began)")]
pub struct NoSigners {
    pub epoch: u64,
    pub id: u32,
}

/// A certified blob's record on the entrance.
pub struct BlobRecord {
    pub commitment: ShardCommitment,
    pub epoch: u64,
    pub quorum: u32,
}

impl DaChain {
    pub async fn connect(url: &str, payer: Option<Rc<Payer>>) -> anyhow::Result<DaChain> {
        let chain = Chain::connect(client::Client::chain(url)?).await?;
        Ok(DaChain {
            chain,
            payer,
            quorums: RefCell::new(BTreeMap::new()),
        })
    }

    pub fn chain_id(&self) -> u64 {
        self.chain.chain_id()
    }

    /// The paying account's address, if this node has one.
    pub fn address(&self) -> Option<Address> {
        self.payer.as_deref().map(Payer::address)
    }

    /// The current DA epoch (the one the next block belongs to) and how many epochs back
    /// certificates may be.
    pub async fn epoch_and_window(&self) -> anyhow::Result<(u64, u64)> {
        let out = self
            .chain
            .view(DA_REGISTRY_ADDRESS, &da_registry::epochCall {}.abi_encode())
            .await?;
        let epoch = da_registry::epochCall::abi_decode_returns(&out).context("decoding epoch()")?;
        Ok((epoch.current, epoch.certificateWindow))
    }

    /// Quorum `id` of `epoch`, with keys checked against their proofs of possession.
    pub async fn quorum(&self, epoch: u64, id: u32) -> anyhow::Result<Rc<ChainQuorum>> {
        if let Some(quorum) = self.quorums.borrow().get(&(epoch, id)) {
            return Ok(quorum.clone());
        }
        let call = da_registry::quorumSlotsCall {
            epochNumber: epoch,
            quorumId: id,
        };
        let out = self
            .chain
            .view(DA_REGISTRY_ADDRESS, &call.abi_encode())
            .await?;
        let slots: Vec<Address> = da_registry::quorumSlotsCall::abi_decode_returns(&out)
            .context("decoding quorumSlots")?
            .into_iter()
            .map(|address| address.into_array())
            .collect();
        if slots.is_empty() {
            return Err(NoSigners { epoch, id }.into());
        }
        let mut counts: BTreeMap<Address, u32> = BTreeMap::new();
        for holder in &slots {
            *counts.entry(*holder).or_default() += 1;
        }
        let mut members = Vec::with_capacity(counts.len());
        let mut keys = Vec::with_capacity(counts.len());
        for (address, slot_count) in counts {
            let record = self.signer(address).await?;
            let who = || format!("signer 0x{}", hex::encode(address));
            let key = PublicKey::from_bytes(&record.pubkey).with_context(who)?;
            let pop = ProofOfPossession::from_bytes(&record.pop).with_context(who)?;
            let key = da::attest::verify_pop(&key, &pop).with_context(who)?;
            keys.push(QuorumMember {
                key,
                slots: slot_count,
            });
            members.push((address, record.endpoint));
        }
        let quorum = Rc::new(ChainQuorum {
            quorum: Quorum::new(self.chain_id(), id, epoch, keys)?,
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
        let call = da_entrance::blobInfoCall {
            blobId: blob_id.0.into(),
        };
        let out = self
            .chain
            .view(DA_ENTRANCE_ADDRESS, &call.abi_encode())
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

    /// The entrance's fee for one certificate.
    pub async fn blob_fee(&self) -> anyhow::Result<U256> {
        let out = self
            .chain
            .view(
                DA_ENTRANCE_ADDRESS,
                &da_entrance::blobFeeCall {}.abi_encode(),
            )
            .await?;
        da_entrance::blobFeeCall::abi_decode_returns(&out).context("decoding blobFee()")
    }

    /// The registry's record of `address` (zero stake: not registered).
    pub async fn signer(&self, address: Address) -> anyhow::Result<da_registry::signerReturn> {
        let call = da_registry::signerCall {
            account: address.into(),
        };
        let out = self
            .chain
            .view(DA_REGISTRY_ADDRESS, &call.abi_encode())
            .await?;
        da_registry::signerCall::abi_decode_returns(&out).context("decoding signer")
    }

    /// Signs and sends a call from this node's account; waits for its receipt and fails on a
    /// revert with the chain's reason.
    pub async fn send(&self, to: Address, value: U256, input: Vec<u8>) -> anyhow::Result<Receipt> {
        let payer = self.payer.as_ref().ok_or_else(|| {
            anyhow!("this node has no chain account: start it with --chain-key to pay for DA")
        })?;
        Ok(self.chain.send(payer, to, value, input).await?)
    }
}
