//! Attestations and certificates as a DA client relies on them: a two-thirds certificate
//! verifies and survives its byte encoding; every way of cheating the count, the keys, the
//! signatures or the epoch is refused with the error that names it.

use blstrs::{G1Affine, G1Projective};
use da::attest::{
    ATTESTATION_DOMAIN, Aggregator, AttestError, AttestationMessage, Certificate,
    MAX_QUORUM_SIGNERS, ProofOfPossession, PublicKey, Quorum, QuorumMember, SIGNATURE_DST,
    SecretKey, Signature, SignerBitmap, meets_threshold, verify_pop,
};
use types::H256;

const CHAIN_ID: u64 = 16600;
const QUORUM_ID: u32 = 3;
const EPOCH: u64 = 42;

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32]).expect("32-byte seed")
}

fn register(secret: &SecretKey) -> da::attest::VerifiedPublicKey {
    verify_pop(&secret.public_key(), &secret.prove_possession()).expect("an honest PoP verifies")
}

/// Signers 0..n with the given slots, and their secret keys.
fn quorum(slots: &[u32], epoch: u64) -> (Quorum, Vec<SecretKey>) {
    let secrets: Vec<SecretKey> = (0..slots.len()).map(|i| secret(i as u8 + 1)).collect();
    let members = secrets
        .iter()
        .zip(slots)
        .map(|(secret, slots)| QuorumMember {
            key: register(secret),
            slots: *slots,
        })
        .collect();
    let quorum = Quorum::new(CHAIN_ID, QUORUM_ID, epoch, members).expect("valid quorum");
    (quorum, secrets)
}

fn blob_id(byte: u8) -> H256 {
    H256([byte; 32])
}

/// A certificate from the given signers, built through the aggregator without its threshold
/// check (so tests can make under-threshold certificates to hand to `verify`).
fn certificate(
    quorum: &Quorum,
    secrets: &[SecretKey],
    signers: &[usize],
    blob: H256,
) -> Certificate {
    let message = quorum.message(blob);
    let mut aggregator = Aggregator::new(quorum, blob);
    let mut bitmap = SignerBitmap::new(quorum.members().len());
    let mut signed_slots = 0;
    let mut aggregate: Option<G2Sum> = None;
    for &index in signers {
        let signature = secrets[index].sign(&message);
        aggregator.add(index, &signature).expect("honest signature");
        bitmap.set(index);
        signed_slots += u64::from(quorum.members()[index].slots);
        aggregate = Some(match aggregate {
            None => G2Sum(signature),
            Some(sum) => sum.plus(&signature),
        });
    }
    Certificate {
        blob_id: blob,
        epoch: quorum.epoch(),
        quorum_id: quorum.quorum_id(),
        signers: bitmap,
        signed_slots,
        total_slots: quorum.total_slots(),
        aggregate_signature: aggregate.expect("at least one signer").0,
    }
}

/// Sums signatures through their G2 points, independently of the aggregator.
struct G2Sum(Signature);

impl G2Sum {
    fn plus(self, other: &Signature) -> G2Sum {
        let a = blstrs::G2Affine::from_compressed(&self.0.to_bytes()).expect("valid point");
        let b = blstrs::G2Affine::from_compressed(&other.to_bytes()).expect("valid point");
        let sum =
            blstrs::G2Affine::from(blstrs::G2Projective::from(a) + blstrs::G2Projective::from(b));
        G2Sum(Signature::from_bytes(&sum.to_compressed()).expect("a sum of signatures"))
    }
}

#[test]
fn a_two_thirds_certificate_verifies_and_survives_its_encoding() {
    let (quorum, secrets) = quorum(&[1, 2, 3, 4], EPOCH);
    let blob = blob_id(7);
    let message = quorum.message(blob);
    let mut aggregator = Aggregator::new(&quorum, blob);
    for index in [3, 1, 2] {
        aggregator
            .add(index, &secrets[index].sign(&message))
            .expect("honest signature");
    }
    assert_eq!(aggregator.signed_slots(), 9);
    assert!(aggregator.meets_threshold());
    let certificate = aggregator.finish().expect("9 of 10 slots");
    assert_eq!(
        certificate.signers.signers().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!((certificate.signed_slots, certificate.total_slots), (9, 10));
    assert_eq!(certificate.verify(&quorum), Ok(()));

    let bytes = certificate.to_bytes();
    let decoded = Certificate::from_bytes(&bytes, MAX_QUORUM_SIGNERS).expect("round trip");
    assert_eq!(decoded, certificate);
    assert_eq!(decoded.verify(&quorum), Ok(()));
    // The aggregator's certificate equals one summed independently.
    assert_eq!(
        self::certificate(&quorum, &secrets, &[3, 1, 2], blob).aggregate_signature,
        certificate.aggregate_signature
    );
}

#[test]
fn the_threshold_is_two_thirds_of_slots_not_of_signers() {
    assert!(meets_threshold(2, 3));
    assert!(!meets_threshold(1, 2));
    assert!(meets_threshold(7, 10));
    assert!(!meets_threshold(6, 10));

    let (quorum, secrets) = quorum(&[1, 2, 3, 4], EPOCH);
    let blob = blob_id(8);
    // Three of four signers but only 6 of 10 slots.
    let mut aggregator = Aggregator::new(&quorum, blob);
    for index in [0, 1, 2] {
        aggregator
            .add(index, &secrets[index].sign(aggregator.message()))
            .expect("honest signature");
    }
    assert!(!aggregator.meets_threshold());
    assert_eq!(
        aggregator.finish(),
        Err(AttestError::BelowThreshold {
            signed: 6,
            total: 10
        })
    );
    let under = certificate(&quorum, &secrets, &[0, 1, 2], blob);
    assert_eq!(
        under.verify(&quorum),
        Err(AttestError::BelowThreshold {
            signed: 6,
            total: 10
        })
    );
    // Two of four signers holding 7 of 10 slots is enough.
    assert_eq!(
        certificate(&quorum, &secrets, &[2, 3], blob).verify(&quorum),
        Ok(())
    );
    // Exactly two thirds passes.
    let (even, even_secrets) = quorum_of_three();
    assert_eq!(
        certificate(&even, &even_secrets, &[0, 2], blob).verify(&even),
        Ok(())
    );
}

fn quorum_of_three() -> (Quorum, Vec<SecretKey>) {
    quorum(&[1, 1, 1], EPOCH)
}

#[test]
fn a_certificate_whose_stated_fraction_differs_from_its_bitmap_is_refused() {
    let (quorum, secrets) = quorum(&[1, 2, 3, 4], EPOCH);
    let good = certificate(&quorum, &secrets, &[1, 2, 3], blob_id(9));

    let mut inflated = good.clone();
    inflated.signed_slots = 10;
    assert_eq!(
        inflated.verify(&quorum),
        Err(AttestError::SignedSlotsMismatch {
            stated: 10,
            bitmap: 9
        })
    );
    let mut wrong_total = good.clone();
    wrong_total.total_slots = 12;
    assert_eq!(
        wrong_total.verify(&quorum),
        Err(AttestError::TotalSlotsMismatch {
            certificate: 12,
            quorum: 10
        })
    );
    let mut short_bitmap = good.clone();
    short_bitmap.signers = SignerBitmap::new(3);
    assert_eq!(
        short_bitmap.verify(&quorum),
        Err(AttestError::BitmapLength {
            bitmap: 3,
            signers: 4
        })
    );
    let mut empty = good;
    empty.signers = SignerBitmap::new(4);
    empty.signed_slots = 0;
    assert_eq!(empty.verify(&quorum), Err(AttestError::NoSigners));
}

#[test]
fn bad_signatures_are_refused_on_arrival_and_in_the_aggregate() {
    let (quorum, secrets) = quorum(&[1, 2, 3, 4], EPOCH);
    let blob = blob_id(10);
    let mut aggregator = Aggregator::new(&quorum, blob);
    // A signature over another blob.
    let other_blob = secrets[1].sign(&quorum.message(blob_id(11)));
    assert_eq!(
        aggregator.add(1, &other_blob),
        Err(AttestError::BadSignature { index: 1 })
    );
    // Signer 2's valid signature presented as signer 1's.
    let signer_two = secrets[2].sign(aggregator.message());
    assert_eq!(
        aggregator.add(1, &signer_two),
        Err(AttestError::BadSignature { index: 1 })
    );
    assert_eq!(
        aggregator.add(4, &signer_two),
        Err(AttestError::UnknownSigner {
            index: 4,
            signers: 4
        })
    );
    assert_eq!(
        aggregator.signed_slots(),
        0,
        "refused signatures count nothing"
    );

    // An aggregate for another blob, relabelled.
    let mut relabelled = certificate(&quorum, &secrets, &[1, 2, 3], blob_id(11));
    relabelled.blob_id = blob;
    assert_eq!(
        relabelled.verify(&quorum),
        Err(AttestError::BadAggregateSignature)
    );
    // A bitmap claiming a signer who did not sign (with the fraction adjusted to match).
    let mut padded = certificate(&quorum, &secrets, &[2, 3], blob);
    padded.signers.set(0);
    padded.signed_slots += 1;
    assert_eq!(
        padded.verify(&quorum),
        Err(AttestError::BadAggregateSignature)
    );
}

#[test]
fn a_rogue_key_without_proof_of_possession_is_refused_at_registration() {
    let victim = secret(50);
    let attacker = secret(51);
    // The attacker announces pk_rogue = pk_attacker - pk_victim, whose secret nobody knows.
    let point = |key: &PublicKey| {
        G1Projective::from(G1Affine::from_compressed(&key.to_bytes()).expect("valid key"))
    };
    let rogue_point = G1Affine::from(point(&attacker.public_key()) - point(&victim.public_key()));
    let rogue = PublicKey::from_bytes(&rogue_point.to_compressed()).expect("a valid group element");

    // Without PoP the attack works: the attacker's signature alone passes as {victim, rogue}.
    let message = AttestationMessage {
        chain_id: CHAIN_ID,
        epoch: EPOCH,
        quorum_id: QUORUM_ID,
        blob_id: blob_id(12),
    };
    let forged = attacker.sign(&message);
    let as_blst =
        |key: &PublicKey| blst::min_pk::PublicKey::from_bytes(&key.to_bytes()).expect("valid key");
    let (victim_key, rogue_key) = (as_blst(&victim.public_key()), as_blst(&rogue));
    let forged_blst =
        blst::min_pk::Signature::from_bytes(&forged.to_bytes()).expect("valid signature");
    assert_eq!(
        forged_blst.fast_aggregate_verify(
            true,
            &message.to_bytes(),
            SIGNATURE_DST,
            &[&victim_key, &rogue_key]
        ),
        blst::BLST_ERROR::BLST_SUCCESS,
        "the attack this test defends against"
    );

    // Registration needs a PoP for the rogue key itself, which the attacker cannot make.
    let attempts = [
        attacker.prove_possession(),
        victim.prove_possession(),
        ProofOfPossession::from_bytes(&forged.to_bytes()).expect("a valid G2 point"),
    ];
    for attempt in &attempts {
        assert_eq!(
            verify_pop(&rogue, attempt),
            Err(AttestError::BadProofOfPossession)
        );
    }
    // And a PoP proves only its own key.
    assert_eq!(
        verify_pop(&victim.public_key(), &attacker.prove_possession()),
        Err(AttestError::BadProofOfPossession)
    );
    // A signature over the key under the signing DST is not a PoP (domain separation).
    let pop_shaped = attacker.sign(&message);
    assert_eq!(
        verify_pop(
            &attacker.public_key(),
            &ProofOfPossession::from_bytes(&pop_shaped.to_bytes()).expect("valid point")
        ),
        Err(AttestError::BadProofOfPossession)
    );
}

#[test]
fn duplicate_signers_and_duplicate_keys_are_refused() {
    let (quorum, secrets) = quorum(&[1, 2, 3, 4], EPOCH);
    let mut aggregator = Aggregator::new(&quorum, blob_id(13));
    let signature = secrets[3].sign(aggregator.message());
    aggregator.add(3, &signature).expect("first signature");
    assert_eq!(
        aggregator.add(3, &signature),
        Err(AttestError::DuplicateSigner { index: 3 })
    );
    assert_eq!(aggregator.signed_slots(), 4, "counted once");

    let key = register(&secrets[0]);
    let twice = vec![
        QuorumMember { key, slots: 1 },
        QuorumMember {
            key: register(&secrets[1]),
            slots: 1,
        },
        QuorumMember { key, slots: 5 },
    ];
    assert_eq!(
        Quorum::new(CHAIN_ID, QUORUM_ID, EPOCH, twice).map(|_| ()),
        Err(AttestError::DuplicateQuorumKey {
            first: 0,
            second: 2
        })
    );
    assert_eq!(
        Quorum::new(
            CHAIN_ID,
            QUORUM_ID,
            EPOCH,
            vec![QuorumMember { key, slots: 0 }]
        )
        .map(|_| ()),
        Err(AttestError::ZeroSlots { index: 0 })
    );
    assert_eq!(
        Quorum::new(CHAIN_ID, QUORUM_ID, EPOCH, vec![]).map(|_| ()),
        Err(AttestError::EmptyQuorum)
    );
    assert_eq!(quorum.signer_index(&secrets[2].public_key()), Some(2));
    assert_eq!(quorum.signer_index(&secret(99).public_key()), None);
}

#[test]
fn certificates_and_signatures_from_another_epoch_or_quorum_are_refused() {
    let (old, secrets) = quorum(&[1, 2, 3, 4], EPOCH);
    let blob = blob_id(14);
    let certificate = certificate(&old, &secrets, &[1, 2, 3], blob);
    assert_eq!(certificate.verify(&old), Ok(()));

    let (current, _) = quorum(&[1, 2, 3, 4], EPOCH + 1);
    assert_eq!(
        certificate.verify(&current),
        Err(AttestError::StaleEpoch {
            certificate: EPOCH,
            current: EPOCH + 1
        })
    );
    let (previous, _) = quorum(&[1, 2, 3, 4], EPOCH - 1);
    assert_eq!(
        certificate.verify(&previous),
        Err(AttestError::FutureEpoch {
            certificate: EPOCH,
            current: EPOCH - 1
        })
    );
    // A signature made in the old epoch does not count in the new one.
    let stale_signature = secrets[1].sign(&old.message(blob));
    let mut aggregator = Aggregator::new(&current, blob);
    assert_eq!(
        aggregator.add(1, &stale_signature),
        Err(AttestError::BadSignature { index: 1 })
    );
    // Same members under another quorum id.
    let other_quorum =
        Quorum::new(CHAIN_ID, QUORUM_ID + 1, EPOCH, old.members().to_vec()).expect("valid quorum");
    assert_eq!(
        certificate.verify(&other_quorum),
        Err(AttestError::WrongQuorum {
            certificate: QUORUM_ID,
            quorum: QUORUM_ID + 1
        })
    );
    // Another chain's quorum with the same id and epoch: the message differs, so does the check.
    let other_chain =
        Quorum::new(CHAIN_ID + 1, QUORUM_ID, EPOCH, old.members().to_vec()).expect("valid quorum");
    assert_eq!(
        certificate.verify(&other_chain),
        Err(AttestError::BadAggregateSignature)
    );
}

/// The first small x whose compressed encoding decodes to a curve point outside the subgroup.
fn off_subgroup_bytes<const N: usize>(
    decode: impl Fn(&[u8]) -> Result<(), AttestError>,
) -> [u8; N] {
    for x in 1u8..=255 {
        let mut bytes = [0u8; N];
        bytes[0] = 0x80;
        bytes[N - 1] = x;
        if let Err(
            AttestError::MalformedPublicKey { reason } | AttestError::MalformedSignature { reason },
        ) = decode(&bytes)
            && reason.contains("subgroup")
        {
            return bytes;
        }
    }
    panic!("no off-subgroup point among the first 255 x coordinates");
}

#[test]
fn malformed_keys_signatures_and_certificates_are_refused() {
    let malformed_key = |reason: &str| AttestError::MalformedPublicKey {
        reason: match reason {
            "length" => "not 48 bytes",
            "infinity" => "point at infinity",
            _ => unreachable!(),
        },
    };
    let key = secret(1).public_key().to_bytes();
    assert_eq!(
        PublicKey::from_bytes(&key[..47]),
        Err(malformed_key("length"))
    );
    let mut infinity = [0u8; 48];
    infinity[0] = 0xc0;
    assert_eq!(
        PublicKey::from_bytes(&infinity),
        Err(malformed_key("infinity"))
    );
    off_subgroup_bytes::<48>(|bytes| PublicKey::from_bytes(bytes).map(|_| ()));
    let mut uncompressed_flag = key;
    uncompressed_flag[0] &= 0x7f;
    assert!(PublicKey::from_bytes(&uncompressed_flag).is_err());

    let signature = secret(1).sign(&AttestationMessage {
        chain_id: CHAIN_ID,
        epoch: EPOCH,
        quorum_id: QUORUM_ID,
        blob_id: blob_id(15),
    });
    assert!(Signature::from_bytes(&signature.to_bytes()[1..]).is_err());
    let mut infinity = [0u8; 96];
    infinity[0] = 0xc0;
    assert_eq!(
        Signature::from_bytes(&infinity),
        Err(AttestError::MalformedSignature {
            reason: "point at infinity"
        })
    );
    off_subgroup_bytes::<96>(|bytes| Signature::from_bytes(bytes).map(|_| ()));
    assert_eq!(
        SecretKey::from_seed(&[7; 31]).map(|_| ()),
        Err(AttestError::SeedTooShort { bytes: 31 })
    );

    let (quorum, secrets) = quorum(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], EPOCH);
    let good = certificate(&quorum, &secrets, &[0, 1, 2, 3, 4, 5, 6, 9], blob_id(16)).to_bytes();
    assert!(Certificate::from_bytes(&good, MAX_QUORUM_SIGNERS).is_ok());
    let refuses = |bytes: &[u8]| Certificate::from_bytes(bytes, MAX_QUORUM_SIGNERS).is_err();
    assert!(refuses(&good[..good.len() - 1]), "truncated");
    assert!(refuses(&[&good[..], &[0]].concat()), "trailing byte");
    let mut version = good.clone();
    version[0] = 2;
    assert!(refuses(&version), "unknown version");
    // Ten signers take two bitmap bytes; bit 10 of the second byte is padding.
    let bitmap_at = 1 + 32 + 8 + 4 + 4;
    let mut padding = good.clone();
    padding[bitmap_at + 1] |= 0x04;
    assert!(refuses(&padding), "padding bit set");
    let mut bad_signature = good.clone();
    let signature_at = good.len() - 96;
    bad_signature[signature_at..].copy_from_slice(&infinity);
    assert!(refuses(&bad_signature), "identity signature");
    assert_eq!(
        Certificate::from_bytes(&good, 8),
        Err(AttestError::TooManySigners {
            signers: 10,
            limit: 8
        })
    );
}

#[test]
fn the_attestation_message_has_its_documented_layout() {
    let message = AttestationMessage {
        chain_id: 0x0102030405060708,
        epoch: 0x1112131415161718,
        quorum_id: 0x21222324,
        blob_id: blob_id(0xab),
    };
    let bytes = message.to_bytes();
    let domain = ATTESTATION_DOMAIN.len();
    assert_eq!(&bytes[..domain], ATTESTATION_DOMAIN);
    assert_eq!(bytes[domain..domain + 8], message.chain_id.to_be_bytes());
    assert_eq!(bytes[domain + 8..domain + 16], message.epoch.to_be_bytes());
    assert_eq!(
        bytes[domain + 16..domain + 20],
        message.quorum_id.to_be_bytes()
    );
    assert_eq!(bytes[domain + 20..], [0xab; 32]);
}
