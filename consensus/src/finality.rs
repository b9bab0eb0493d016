//! What a node that follows validators without being one checks: a finality proof.
//!
//! A finalization certificate signs the digest of an ordered block, not an executed header.
//! The executed header comes in through the block's execution claim: 2f+1 validators voted
//! for the block only after comparing its claim with their own execution of that height. So a
//! finalized ordered block together with its certificate proves the executed header hash of
//! the height it claims, and that header's parent links prove every header below it.

use crate::block::{ExecClaim, OrderedBlock};
use crate::genesis::{Genesis, verify_finalization};
use crate::{Digest, Finalization};
use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::Heightable as _;
use commonware_cryptography::Digestible as _;
use commonware_cryptography::certificate::Verifier as _;

/// Why a finality proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalityError {
    #[error("the ordered block does not decode: {reason}")]
    Block { reason: String },
    #[error("the finalization certificate does not decode: {reason}")]
    Certificate { reason: String },
    #[error("the certificate finalizes block {certified}, not the block given ({given})")]
    OtherBlock { certified: Digest, given: Digest },
    #[error("the certificate is not signed by a quorum of this genesis' validators")]
    Signatures,
    #[error("the finalized block at height {height} claims no executed height")]
    NoClaim { height: u64 },
}

/// A finalized ordered block and the certificate that finalized it, as a validator stores
/// them and serves them to followers.
#[derive(Clone, Debug)]
pub struct FinalityProof {
    pub block: OrderedBlock,
    pub finalization: Finalization,
}

impl FinalityProof {
    /// The block's and the certificate's canonical encodings.
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.block.encode().to_vec(),
            self.finalization.encode().to_vec(),
        )
    }

    /// Decodes a proof within the genesis' limits and checks it: the certificate finalizes
    /// this block and carries a quorum of the genesis' validators. Returns the executed header
    /// the block claims, which the proof makes final.
    pub fn verify(
        genesis: &Genesis,
        block: &[u8],
        finalization: &[u8],
    ) -> Result<ExecClaim, FinalityError> {
        let block =
            OrderedBlock::decode_cfg(bytes::Bytes::copy_from_slice(block), &genesis.limits())
                .map_err(|error| FinalityError::Block {
                    reason: error.to_string(),
                })?;
        let finalization = Finalization::decode_cfg(
            bytes::Bytes::copy_from_slice(finalization),
            &genesis.verifier().certificate_codec_config(),
        )
        .map_err(|error| FinalityError::Certificate {
            reason: error.to_string(),
        })?;
        let given = block.digest();
        if finalization.proposal.payload != given {
            return Err(FinalityError::OtherBlock {
                certified: finalization.proposal.payload,
                given,
            });
        }
        // Batch verification draws its coefficients from the thread's CSPRNG: a forger must
        // not know them.
        if !verify_finalization(genesis, &finalization, &mut rand::rng()) {
            return Err(FinalityError::Signatures);
        }
        block.exec().ok_or(FinalityError::NoClaim {
            height: block.height().get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockLimits;
    use crate::{Context, PrivateKey, validator_keys};
    use commonware_consensus::simplex::types::{Finalize, Proposal};
    use commonware_consensus::types::{Epoch, Height, Round, View};
    use commonware_cryptography::Signer as _;
    use commonware_parallel::Sequential;
    use commonware_utils::iter::NonEmpty;
    use types::H256;

    fn network(seed: u8) -> (Genesis, Vec<PrivateKey>) {
        let keys = validator_keys(&[seed; 32], 4);
        let genesis = Genesis::new(
            chain_lite::ChainConfig::default(),
            keys.iter().map(|key| key.public_key()).collect(),
            BlockLimits::DEFAULT,
        )
        .expect("a genesis");
        (genesis, keys)
    }

    fn block(genesis: &Genesis, claim: Option<ExecClaim>) -> OrderedBlock {
        let parent = genesis.block();
        let context = Context {
            round: Round::new(Epoch::zero(), View::new(1)),
            leader: genesis.validators().iter().next().expect("four").clone(),
            parent: (View::zero(), parent.digest()),
        };
        OrderedBlock::new(
            context,
            parent.digest(),
            Height::new(1),
            parent.timestamp_ms() + 1,
            claim,
            vec![vec![1, 2, 3]],
        )
    }

    /// The certificate `signers` of `keys` make for `block`.
    fn certify(
        genesis: &Genesis,
        keys: &[PrivateKey],
        signers: usize,
        block: &OrderedBlock,
    ) -> Option<Finalization> {
        let proposal = Proposal::new(
            Round::new(Epoch::zero(), View::new(1)),
            View::zero(),
            block.digest(),
        );
        let votes: Vec<_> = keys
            .iter()
            .take(signers)
            .map(|key| {
                let scheme = genesis.signer(key.clone()).expect("a validator");
                Finalize::sign(&scheme, proposal.clone()).expect("signs")
            })
            .collect();
        let votes = NonEmpty::try_new(votes.into_iter())?;
        Finalization::from_owned_finalizes(&genesis.verifier(), votes, &Sequential).ok()
    }

    const CLAIM: ExecClaim = ExecClaim {
        height: 0,
        header_hash: H256([7; 32]),
    };

    #[test]
    fn a_quorum_certificate_proves_the_claimed_header() {
        let (genesis, keys) = network(1);
        let block = block(&genesis, Some(CLAIM));
        let proof = FinalityProof {
            finalization: certify(&genesis, &keys, 3, &block).expect("three of four"),
            block,
        };
        let (block, certificate) = proof.encode();
        assert_eq!(
            FinalityProof::verify(&genesis, &block, &certificate),
            Ok(CLAIM)
        );
    }

    #[test]
    fn forged_or_foreign_proofs_are_refused() {
        let (genesis, keys) = network(1);
        let claimed = block(&genesis, Some(CLAIM));
        let certificate = certify(&genesis, &keys, 3, &claimed).expect("three of four");
        let (block_bytes, certificate_bytes) = FinalityProof {
            block: claimed.clone(),
            finalization: certificate.clone(),
        }
        .encode();

        // A block with another claim under the same certificate.
        let lie = ExecClaim {
            height: 0,
            header_hash: H256([8; 32]),
        };
        let other = block(&genesis, Some(lie)).encode().to_vec();
        assert!(matches!(
            FinalityProof::verify(&genesis, &other, &certificate_bytes),
            Err(FinalityError::OtherBlock { .. })
        ));

        // Signed by the validators of another network.
        let (foreign, foreign_keys) = network(2);
        let theirs = block(&foreign, Some(CLAIM));
        let (theirs_block, theirs_certificate) = FinalityProof {
            finalization: certify(&foreign, &foreign_keys, 3, &theirs).expect("their quorum"),
            block: theirs,
        }
        .encode();
        assert!(
            FinalityProof::verify(&genesis, &theirs_block, &theirs_certificate).is_err(),
            "another network's proof"
        );

        // Too few signers.
        assert!(certify(&genesis, &keys, 2, &claimed).is_none());

        // A flipped bit anywhere in the certificate: refused, never a panic.
        for index in 0..certificate_bytes.len() {
            let mut flipped = certificate_bytes.clone();
            flipped[index] ^= 0x10;
            assert!(
                FinalityProof::verify(&genesis, &block_bytes, &flipped).is_err(),
                "bit flipped at byte {index}"
            );
        }
        // Truncated block bytes.
        assert!(matches!(
            FinalityProof::verify(
                &genesis,
                &block_bytes[..block_bytes.len() - 1],
                &certificate_bytes
            ),
            Err(FinalityError::Block { .. })
        ));

        // A finalized block without a claim proves no executed header.
        let unclaimed = block(&genesis, None);
        let (unclaimed_block, unclaimed_certificate) = FinalityProof {
            finalization: certify(&genesis, &keys, 3, &unclaimed).expect("three of four"),
            block: unclaimed,
        }
        .encode();
        assert_eq!(
            FinalityProof::verify(&genesis, &unclaimed_block, &unclaimed_certificate),
            Err(FinalityError::NoClaim { height: 1 })
        );
    }
}
