//! What every validator of a network must agree on before the first block: the chain's
//! configuration, the validator set and the block limits, and the keys that derive from a seed.

use crate::block::{BlockLimits, OrderedBlock};
use crate::{Context, Digest, Finalization, PrivateKey, PublicKey, Scheme};
use chain_lite::ChainConfig;
use commonware_codec::{ReadExt as _, Write as _};
use commonware_consensus::types::{Epoch, Height, Round, View};
use commonware_cryptography::{Hasher, Keccak256, Signer as _};
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;
use rand_core::CryptoRng;

/// Domain of the validator signatures; the chain id is appended, so votes of one chain never
/// count on another.
const NAMESPACE: &[u8] = b"zerog-chain-lite-consensus-";
/// Domain of the hash that names a genesis.
const GENESIS_DOMAIN: &[u8] = b"zerog-consensus-genesis-v1";
/// Domain of validator keys derived from a seed.
const KEY_DOMAIN: &[u8] = b"zerog-validator-key-v1";

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("a network needs at least one validator")]
    NoValidators,
    #[error("validator {key} is listed twice")]
    DuplicateValidator { key: String },
    #[error("the chain configuration does not serialize: {reason}")]
    Config { reason: String },
    #[error(
        "block limits allow {limit} transactions but chain-lite seals at most {chain} per block"
    )]
    LimitsAboveChain { limit: u32, chain: usize },
    #[error(
        "block limits allow a {transaction}-byte transaction but only {block} bytes of transactions per block"
    )]
    TransactionAboveBlock { transaction: u32, block: u32 },
}

/// A network's genesis: chain configuration, validators (ordered by key, which fixes the
/// round-robin leader order) and block limits. Its [`Genesis::hash`] is the parent of the
/// genesis block, so validators that disagree on any of it disagree on every block.
#[derive(Clone, Debug)]
pub struct Genesis {
    chain: ChainConfig,
    validators: Set<PublicKey>,
    limits: BlockLimits,
    hash: Digest,
}

impl Genesis {
    pub fn new(
        chain: ChainConfig,
        validators: Vec<PublicKey>,
        limits: BlockLimits,
    ) -> Result<Genesis, GenesisError> {
        if validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        if limits.max_transactions as usize > chain.max_transactions_per_block {
            return Err(GenesisError::LimitsAboveChain {
                limit: limits.max_transactions,
                chain: chain.max_transactions_per_block,
            });
        }
        // A transaction the mempool admits must fit in a block, or it waits forever.
        if limits.max_transaction_bytes > limits.max_block_bytes {
            return Err(GenesisError::TransactionAboveBlock {
                transaction: limits.max_transaction_bytes,
                block: limits.max_block_bytes,
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(key) = validators.iter().find(|key| !seen.insert(*key)) {
            return Err(GenesisError::DuplicateValidator {
                key: key.to_string(),
            });
        }
        let validators = Set::from_iter_dedup(validators);
        let config_json = serde_json::to_vec(&chain).map_err(|error| GenesisError::Config {
            reason: error.to_string(),
        })?;
        let mut hasher = Keccak256::default();
        hasher.update(GENESIS_DOMAIN);
        hasher.update(&(config_json.len() as u64).to_be_bytes());
        hasher.update(&config_json);
        hasher.update(&(validators.len() as u64).to_be_bytes());
        for key in validators.iter() {
            hasher.update(key.as_ref());
        }
        hasher.update(&limits.max_transactions.to_be_bytes());
        hasher.update(&limits.max_transaction_bytes.to_be_bytes());
        hasher.update(&limits.max_block_bytes.to_be_bytes());
        let hash = hasher.finalize().1;
        Ok(Genesis {
            chain,
            validators,
            limits,
            hash,
        })
    }

    pub fn chain(&self) -> &ChainConfig {
        &self.chain
    }

    pub fn validators(&self) -> &Set<PublicKey> {
        &self.validators
    }

    pub fn limits(&self) -> BlockLimits {
        self.limits
    }

    /// keccak256 over the configuration, the validators and the limits.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// The namespace of every consensus signature of this chain.
    pub fn namespace(&self) -> Vec<u8> {
        let mut namespace = NAMESPACE.to_vec();
        namespace.extend_from_slice(&self.chain.chain_id.to_be_bytes());
        namespace
    }

    /// The block at height 0: no transactions, chain-lite's genesis timestamp, the genesis hash
    /// as its parent. Marshal starts from it and simplex builds view 1 on it.
    pub fn block(&self) -> OrderedBlock {
        let leader = self
            .validators
            .iter()
            .next()
            .expect("a genesis has at least one validator (checked in Genesis::new)")
            .clone();
        let context = Context {
            round: Round::new(Epoch::zero(), View::zero()),
            leader,
            parent: (View::zero(), self.hash),
        };
        OrderedBlock::new(
            context,
            self.hash,
            Height::zero(),
            self.chain.genesis_timestamp_ms,
            None,
            Vec::new(),
        )
    }

    /// The signing scheme of validator `key`, or `None` if it is not a validator.
    pub fn signer(&self, key: PrivateKey) -> Option<Scheme> {
        Scheme::signer(&self.namespace(), self.validators.clone(), key)
    }

    /// A scheme that verifies certificates of this chain without signing (for followers).
    pub fn verifier(&self) -> Scheme {
        Scheme::verifier(&self.namespace(), self.validators.clone())
    }
}

/// Checks that a finalization certificate carries a quorum of valid signatures of this
/// genesis' validators. What it proves: the block of `finalization.proposal.payload` is final
/// at its round (and, through that block's execution claim, an executed header of an earlier
/// height).
pub fn verify_finalization(
    genesis: &Genesis,
    finalization: &Finalization,
    rng: &mut impl CryptoRng,
) -> bool {
    finalization.verify(rng, &genesis.verifier(), &Sequential)
}

/// `count` validator keys derived from `seed`: keccak256(domain, seed, index) as each ed25519
/// key's secret. Keep the seed as secret as the keys.
pub fn validator_keys(seed: &[u8; 32], count: u32) -> Vec<PrivateKey> {
    (0..count)
        .map(|index| {
            let secret = Keccak256::hash(&[KEY_DOMAIN, seed, &index.to_be_bytes()]);
            let mut bytes = Vec::with_capacity(32);
            secret.write(&mut bytes);
            PrivateKey::read(&mut bytes::Bytes::from(bytes))
                .expect("any 32 bytes are an ed25519 secret key")
        })
        .collect()
}

/// The public keys of `keys`, in order.
pub fn public_keys(keys: &[PrivateKey]) -> Vec<PublicKey> {
    keys.iter().map(|key| key.public_key()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Digestible;

    #[test]
    fn keys_and_genesis_are_deterministic_and_commit_to_everything() {
        let keys = validator_keys(&[1; 32], 4);
        assert_eq!(
            public_keys(&keys),
            public_keys(&validator_keys(&[1; 32], 4))
        );
        assert_ne!(
            public_keys(&keys),
            public_keys(&validator_keys(&[2; 32], 4))
        );
        let validators = public_keys(&keys);
        let genesis = Genesis::new(
            ChainConfig::default(),
            validators.clone(),
            BlockLimits::DEFAULT,
        )
        .expect("genesis");
        let again = Genesis::new(
            ChainConfig::default(),
            validators.iter().rev().cloned().collect(),
            BlockLimits::DEFAULT,
        )
        .expect("genesis");
        assert_eq!(
            genesis.hash(),
            again.hash(),
            "validator order does not matter"
        );
        assert_eq!(genesis.block().digest(), again.block().digest());
        let other_chain = Genesis::new(
            ChainConfig {
                chain_id: 7,
                ..ChainConfig::default()
            },
            validators.clone(),
            BlockLimits::DEFAULT,
        )
        .expect("genesis");
        assert_ne!(genesis.block().digest(), other_chain.block().digest());
        assert!(genesis.signer(keys[2].clone()).is_some());
        assert!(
            genesis
                .signer(validator_keys(&[3; 32], 1)[0].clone())
                .is_none()
        );
        let mut twice = validators.clone();
        twice.push(validators[0].clone());
        match Genesis::new(ChainConfig::default(), twice, BlockLimits::DEFAULT) {
            Err(GenesisError::DuplicateValidator { key }) => {
                assert_eq!(key, validators[0].to_string(), "the error names the key");
            }
            other => panic!("a validator listed twice: {other:?}"),
        }
        let oversized = BlockLimits {
            max_transaction_bytes: BlockLimits::DEFAULT.max_block_bytes + 1,
            ..BlockLimits::DEFAULT
        };
        assert!(matches!(
            Genesis::new(ChainConfig::default(), validators, oversized),
            Err(GenesisError::TransactionAboveBlock { .. })
        ));
    }
}
