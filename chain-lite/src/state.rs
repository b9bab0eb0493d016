//! The state root: one hash over every module's state, so that two chains that differ anywhere
//! (accounts, flow, rewards, market, epochs, DA registry and blobs, storage registry) disagree
//! on their block headers.
//!
//! Each module writes its state with a fixed canonical encoding (big-endian integers,
//! length-prefixed byte strings, maps in key order) under its own tag, and the root is keccak256
//! of the tags and the per-module hashes. State that only grows with traffic (certified DA
//! blobs) is folded into a running digest when it is written, so sealing a block costs the size
//! of the bounded state, never the size of history.
//!
//! A module added to the chain adds its section here; `tests::every_module_moves_the_root`
//! checks that a change in any section moves the root.

use crate::chain::Chain;
use crate::da::CertifiedBlob;
use alloy_primitives::U256;
use merkle::keccak::keccak256;
use types::H256;

/// Prefix of the state encoding: bump it when a section changes.
const STATE_ENCODING: &[u8] = b"zerog-chain-lite-state-v1";

/// A canonical byte encoding under construction.
#[derive(Default)]
pub(crate) struct Encoder(Vec<u8>);

impl Encoder {
    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn u256(&mut self, value: U256) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes::<32>());
        self
    }

    pub(crate) fn h256(&mut self, value: H256) -> &mut Self {
        self.0.extend_from_slice(value.as_bytes());
        self
    }

    /// Fixed-width bytes (addresses, keys): no length prefix.
    pub(crate) fn fixed(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// Variable-length bytes, prefixed with their length.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.u64(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn hash(&self) -> H256 {
        keccak256(&self.0)
    }
}

/// Folds one newly certified blob into the running digest of all certified blobs.
pub(crate) fn fold_blob(digest: H256, blob_id: H256, blob: &CertifiedBlob) -> H256 {
    Encoder::default()
        .h256(digest)
        .h256(blob_id)
        .bytes(&blob.commitment)
        .u64(blob.epoch)
        .u64(u64::from(blob.quorum))
        .u64(blob.block_number)
        .hash()
}

impl Chain {
    /// keccak256 over every module's state after the executed transactions (the pending block
    /// included). Accounts and the flow have their own header fields and are in here too, so
    /// this one hash answers "do two chains hold the same state".
    pub fn state_root(&self) -> H256 {
        self.state_root_with(crate::chain::accounts_root(&self.accounts))
    }

    /// [`Chain::state_root`] given the accounts root, which sealing computes anyway.
    pub(crate) fn state_root_with(&self, accounts_root: H256) -> H256 {
        let sections = [
            (b"accounts".as_slice(), accounts_root),
            (b"flow", self.flow_digest()),
            (b"market", self.market_digest()),
            (b"rewards", self.rewards_digest()),
            (b"epochs", self.epochs_digest()),
            (b"da", self.da_digest()),
            (b"storage", self.storage_digest()),
        ];
        let mut root = Encoder::default();
        root.fixed(STATE_ENCODING);
        for (tag, digest) in sections {
            root.bytes(tag).h256(digest);
        }
        root.hash()
    }

    fn flow_digest(&self) -> H256 {
        let mut encoder = Encoder::default();
        encoder
            .h256(self.flow.root())
            .u64(self.flow.length().0)
            .u64(self.flow_roots.len() as u64);
        if let Some(last) = self.flow_roots.last() {
            encoder.h256(*last);
        }
        encoder.hash()
    }

    fn market_digest(&self) -> H256 {
        Encoder::default()
            .u256(self.market.padding_fees)
            .u256(self.market.upload_fees)
            .hash()
    }

    fn rewards_digest(&self) -> H256 {
        let mut encoder = Encoder::default();
        encoder.u64(self.rewards.len() as u64);
        for (chunk, pool) in &self.rewards {
            encoder
                .u64(*chunk)
                .u256(pool.total)
                .u256(pool.claimed)
                .u64(pool.start_seconds);
        }
        encoder.hash()
    }

    fn epochs_digest(&self) -> H256 {
        let mut encoder = Encoder::default();
        self.epochs.encode(&mut encoder);
        encoder.hash()
    }

    fn da_digest(&self) -> H256 {
        let mut encoder = Encoder::default();
        encoder.u64(self.da.signers.len() as u64);
        for (address, signer) in &self.da.signers {
            encoder
                .fixed(address)
                .fixed(&signer.key.public_key().to_bytes())
                .fixed(&signer.pop.to_bytes())
                .bytes(signer.endpoint.as_bytes())
                .u256(signer.stake)
                .u64(signer.registered_block);
        }
        encoder
            .u64(self.da.blob_count() as u64)
            .h256(self.da.blobs_digest);
        encoder.hash()
    }

    fn storage_digest(&self) -> H256 {
        let mut encoder = Encoder::default();
        encoder.u64(self.storage.nodes.len() as u64);
        for (address, node) in &self.storage.nodes {
            encoder
                .fixed(address)
                .bytes(node.endpoint.as_bytes())
                .u64(node.shard.shard_id)
                .u64(node.shard.num_shard)
                .u256(node.stake)
                .u64(node.registered_block);
        }
        encoder.hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Account, ChainConfig};
    use crate::da::DaSigner;
    use crate::modules::RewardPool;
    use crate::storage::StorageNode;
    use types::ShardConfig;

    fn mutated(change: impl FnOnce(&mut Chain)) -> H256 {
        let mut chain = Chain::new(ChainConfig::default());
        change(&mut chain);
        chain.state_root()
    }

    /// Two validators that diverge in any module must disagree on the state root.
    #[test]
    fn every_module_moves_the_root() {
        let base = mutated(|_| {});
        assert_eq!(base, mutated(|_| {}), "the root is a function of the state");
        type Change = Box<dyn FnOnce(&mut Chain)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "accounts",
                Box::new(|chain| {
                    chain.accounts.insert(
                        [7; 20],
                        Account {
                            balance: U256::from(1u64),
                            nonce: 0,
                        },
                    );
                }),
            ),
            (
                "flow",
                Box::new(|chain| chain.flow_roots.push(H256([1; 32]))),
            ),
            (
                "market",
                Box::new(|chain| chain.market.upload_fees = U256::from(1u64)),
            ),
            (
                "rewards",
                Box::new(|chain| {
                    chain.rewards.insert(
                        0,
                        RewardPool {
                            total: U256::from(5u64),
                            claimed: U256::ZERO,
                            start_seconds: 0,
                        },
                    );
                }),
            ),
            ("epochs", Box::new(|chain| chain.epochs.start_position = 4)),
            (
                "da signers",
                Box::new(|chain| {
                    let secret =
                        da::attest::SecretKey::from_seed(&[3; 32]).expect("a 32-byte seed");
                    let key =
                        da::attest::verify_pop(&secret.public_key(), &secret.prove_possession())
                            .expect("a key's own proof verifies");
                    chain.da.signers.insert(
                        [9; 20],
                        DaSigner {
                            key,
                            pop: secret.prove_possession(),
                            endpoint: "http://signer".to_string(),
                            stake: U256::from(1u64),
                            registered_block: 1,
                        },
                    );
                }),
            ),
            (
                "da blobs",
                Box::new(|chain| {
                    let blob = CertifiedBlob {
                        commitment: vec![1, 2, 3],
                        epoch: 0,
                        quorum: 0,
                        block_number: 1,
                    };
                    chain.da.certify_blob(H256([2; 32]), blob);
                }),
            ),
            (
                "storage registry",
                Box::new(|chain| {
                    chain.storage.nodes.insert(
                        [4; 20],
                        StorageNode {
                            endpoint: "http://node".to_string(),
                            shard: ShardConfig {
                                num_shard: 1,
                                shard_id: 0,
                            },
                            stake: U256::from(1u64),
                            registered_block: 1,
                        },
                    );
                }),
            ),
        ];
        for (module, change) in changes {
            assert_ne!(
                base,
                mutated(change),
                "a change in {module} must move the root"
            );
        }
    }
}
