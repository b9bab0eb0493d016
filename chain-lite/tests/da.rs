//! The DA modules through signed transactions: signers register with proofs of possession and
//! stake, quorums are dealt per epoch from the registry, and the entrance records a blob only
//! for a valid certificate of at least two thirds of its quorum's slots. Every refusal reverts
//! with a reason and changes nothing.

use alloy_consensus::{SignableTransaction, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolError};
use chain_lite::abi::{da_entrance, da_registry};
use chain_lite::{
    Address, Chain, ChainConfig, DA_ENTRANCE_ADDRESS, DA_REGISTRY_ADDRESS, DEV_ACCOUNTS, Receipt,
};
use da::attest::{Aggregator, SecretKey};
use types::H256;

const ETHER: u64 = 1_000_000_000_000_000_000;

/// A funded account for signer `n` (dev account 0 pays for them).
struct Operator {
    key: PrivateKeySigner,
    bls: SecretKey,
}

impl Operator {
    fn new(n: u8) -> Operator {
        let key = PrivateKeySigner::from_bytes(&[n + 1; 32].into()).expect("a valid key");
        let bls = SecretKey::from_seed(&[n + 100; 32]).expect("seed");
        Operator { key, bls }
    }

    fn address(&self) -> Address {
        self.key.address().into_array()
    }
}

fn signed(
    chain: &Chain,
    key: &PrivateKeySigner,
    to: Address,
    value: U256,
    input: Vec<u8>,
) -> Vec<u8> {
    let tx = TxLegacy {
        chain_id: Some(chain.config().chain_id),
        nonce: chain.nonce(&key.address().into_array()),
        gas_price: chain.gas_price(),
        gas_limit: 500_000,
        to: TxKind::Call(to.into()),
        value,
        input: Bytes::from(input),
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::Legacy(tx.into_signed(signature)).encoded_2718()
}

fn send(
    chain: &mut Chain,
    key: &PrivateKeySigner,
    to: Address,
    value: U256,
    input: Vec<u8>,
) -> Receipt {
    let raw = signed(chain, key, to, value, input);
    let receipt = chain.send_raw_transaction(&raw).expect("accepted");
    let timestamp = chain.head().timestamp_ms() + 1000;
    chain.seal_block(timestamp);
    receipt
}

fn dev_key() -> PrivateKeySigner {
    DEV_ACCOUNTS[0].private_key.parse().expect("dev key")
}

fn register_call(operator: &Operator, pop_from: &SecretKey, endpoint: &str) -> Vec<u8> {
    da_registry::registerSignerCall {
        pubkey: operator.bls.public_key().to_bytes().to_vec().into(),
        pop: pop_from.prove_possession().to_bytes().to_vec().into(),
        endpoint: endpoint.to_string(),
    }
    .abi_encode()
}

fn revert_reason(receipt: &Receipt) -> String {
    assert!(!receipt.status, "expected a revert: {receipt:?}");
    let data = receipt.revert_data.clone();
    alloy_sol_types::Revert::abi_decode(&data)
        .map(|revert| revert.reason)
        .unwrap_or_else(|_| format!("undecodable revert {data:?}"))
}

/// A chain with `count` registered operators and one block sealed after them.
fn chain_with_signers(config: ChainConfig, count: u8) -> (Chain, Vec<Operator>) {
    let mut chain = Chain::new(config);
    let operators: Vec<Operator> = (0..count).map(Operator::new).collect();
    for operator in &operators {
        let receipt = send(
            &mut chain,
            &dev_key(),
            operator.address(),
            U256::from(10 * ETHER),
            Vec::new(),
        );
        assert!(receipt.status);
    }
    for (n, operator) in operators.iter().enumerate() {
        let receipt = send(
            &mut chain,
            &operator.key,
            DA_REGISTRY_ADDRESS,
            U256::from(ETHER),
            register_call(
                operator,
                &operator.bls,
                &format!("http://127.0.0.1:{}", 9000 + n),
            ),
        );
        assert!(receipt.status, "{}", revert_reason(&receipt));
    }
    (chain, operators)
}

fn commitment() -> (Vec<u8>, H256) {
    let params = da::blob::DaParams::new(4, 8).expect("params");
    let mut encoder = da::codec::Encoder::new(params);
    let encoded = encoder.encode(b"a blob for the entrance").expect("encodes");
    let commitment = encoded.commitment();
    (commitment.to_bytes().to_vec(), H256(commitment.blob_id().0))
}

/// A certificate signed by the quorum members at `signers` (indices into its member list).
fn certificate(
    chain: &Chain,
    operators: &[Operator],
    blob_id: H256,
    epoch: u64,
    signers: &[usize],
) -> Vec<u8> {
    let quorum = chain.da_quorum(epoch, 0).expect("a quorum");
    let attest_quorum = quorum
        .attest_quorum(chain.config().chain_id)
        .expect("quorum");
    let mut aggregator = Aggregator::new(&attest_quorum, blob_id);
    for &index in signers {
        let member = &quorum.members[index];
        let operator = operators
            .iter()
            .find(|operator| operator.address() == member.address)
            .expect("a member is an operator");
        let signature = operator.bls.sign(aggregator.message());
        aggregator
            .add(index, &signature)
            .expect("a valid signature");
    }
    aggregator
        .finish()
        .map(|c| c.to_bytes())
        .unwrap_or_else(|_| {
            // Under the threshold the aggregator refuses to finish; build the certificate by hand
            // so the chain's own check is what refuses it.
            let mut bitmap = da::attest::SignerBitmap::new(quorum.members.len());
            let mut signed_slots = 0u64;
            let mut aggregate: Option<da::attest::Signature> = None;
            for &index in signers {
                bitmap.set(index);
                signed_slots += u64::from(quorum.members[index].slots);
                let operator = operators
                    .iter()
                    .find(|operator| operator.address() == quorum.members[index].address)
                    .expect("operator");
                let signature = operator.bls.sign(&attest_quorum.message(blob_id));
                aggregate = Some(match aggregate {
                    None => signature,
                    Some(sum) => add_signatures(&sum, &signature),
                });
            }
            da::attest::Certificate {
                blob_id,
                epoch,
                quorum_id: 0,
                signers: bitmap,
                signed_slots,
                total_slots: attest_quorum.total_slots(),
                aggregate_signature: aggregate.expect("at least one signer"),
            }
            .to_bytes()
        })
}

/// The sum of two signatures (what an aggregator computes), through blst directly.
fn add_signatures(a: &da::attest::Signature, b: &da::attest::Signature) -> da::attest::Signature {
    let parse = |s: &da::attest::Signature| {
        blst::min_pk::Signature::from_bytes(&s.to_bytes()).expect("a valid signature")
    };
    let (a, b) = (parse(a), parse(b));
    let sum = blst::min_pk::AggregateSignature::aggregate(&[&a, &b], true).expect("aggregates");
    da::attest::Signature::from_bytes(&sum.to_signature().to_bytes()).expect("valid")
}

fn submit_certificate(
    chain: &mut Chain,
    commitment: &[u8],
    certificate: Vec<u8>,
    value: U256,
) -> Receipt {
    send(
        chain,
        &dev_key(),
        DA_ENTRANCE_ADDRESS,
        value,
        da_entrance::submitCertificateCall {
            commitment: commitment.to_vec().into(),
            certificate: certificate.into(),
        }
        .abi_encode(),
    )
}

fn is_available(chain: &Chain, blob_id: H256) -> bool {
    let out = chain
        .call(
            [0; 20],
            DA_ENTRANCE_ADDRESS,
            &da_entrance::isAvailableCall {
                blobId: blob_id.0.into(),
            }
            .abi_encode(),
            U256::ZERO,
        )
        .expect("view");
    da_entrance::isAvailableCall::abi_decode_returns(&out).expect("bool")
}

#[test]
fn signers_register_and_quorums_are_dealt_by_stake() {
    let (chain, operators) = chain_with_signers(ChainConfig::default(), 6);
    let epoch = chain.da_epoch();
    let quorum = chain.da_quorum(epoch, 0).expect("quorum");
    assert_eq!(quorum.slots.len(), 12);
    assert_eq!(quorum.members.len(), 6);
    assert!(quorum.members.iter().all(|member| member.slots == 2));
    // Members are in address order: the certificate bitmap's order.
    assert!(
        quorum
            .members
            .windows(2)
            .all(|pair| pair[0].address < pair[1].address)
    );
    // The same answer through the ABI view, and a signer's record.
    let out = chain
        .call(
            [0; 20],
            DA_REGISTRY_ADDRESS,
            &da_registry::quorumSlotsCall {
                epochNumber: epoch,
                quorumId: 0,
            }
            .abi_encode(),
            U256::ZERO,
        )
        .expect("view");
    let slots = da_registry::quorumSlotsCall::abi_decode_returns(&out).expect("addresses");
    assert_eq!(
        slots.iter().map(|a| a.into_array()).collect::<Vec<_>>(),
        quorum.slots
    );
    let out = chain
        .call(
            [0; 20],
            DA_REGISTRY_ADDRESS,
            &da_registry::signerCall {
                account: operators[2].address().into(),
            }
            .abi_encode(),
            U256::ZERO,
        )
        .expect("view");
    let record = da_registry::signerCall::abi_decode_returns(&out).expect("record");
    assert_eq!(record.endpoint, "http://127.0.0.1:9002");
    assert_eq!(record.stake, U256::from(ETHER));
    assert_eq!(
        record.pubkey.as_ref(),
        operators[2].bls.public_key().to_bytes()
    );
    // An epoch that has not started has no quorum; nor does an epoch before anyone registered.
    assert!(chain.da_quorum(epoch + 1, 0).is_none());
    assert!(chain.da_quorum(1, 0).is_none());
    assert!(chain.da_quorum(epoch, 1).is_none());
    assert_eq!(
        chain
            .da_signer(&operators[0].address())
            .expect("signer")
            .stake,
        U256::from(ETHER)
    );
}

#[test]
fn registration_refusals_change_nothing() {
    let (mut chain, operators) = chain_with_signers(ChainConfig::default(), 2);
    let newcomer = Operator::new(7);
    send(
        &mut chain,
        &dev_key(),
        newcomer.address(),
        U256::from(10 * ETHER),
        Vec::new(),
    );
    let before = chain.balance(&newcomer.address());
    let cases: Vec<(Vec<u8>, U256, &str)> = vec![
        // A rogue key: the proof of possession is someone else's.
        (
            register_call(&newcomer, &operators[0].bls, "http://x"),
            U256::from(ETHER),
            "proof of possession",
        ),
        (
            register_call(&newcomer, &newcomer.bls, "http://x"),
            U256::from(ETHER / 2),
            "below the minimum",
        ),
        (
            register_call(&newcomer, &newcomer.bls, ""),
            U256::from(ETHER),
            "endpoint",
        ),
        (
            da_registry::registerSignerCall {
                pubkey: vec![0xff; 48].into(),
                pop: newcomer.bls.prove_possession().to_bytes().to_vec().into(),
                endpoint: "http://x".into(),
            }
            .abi_encode(),
            U256::from(ETHER),
            "malformed public key",
        ),
        // Someone else's key, with a valid proof for it: already registered.
        (
            register_call(&operators[1], &operators[1].bls, "http://x"),
            U256::from(ETHER),
            "already registered",
        ),
    ];
    for (input, value, expected) in cases {
        let receipt = send(&mut chain, &newcomer.key, DA_REGISTRY_ADDRESS, value, input);
        let reason = revert_reason(&receipt);
        assert!(
            reason.contains(expected),
            "{reason} should mention {expected}"
        );
        assert!(chain.da_signer(&newcomer.address()).is_none());
    }
    // Only gas was spent.
    assert!(before - chain.balance(&newcomer.address()) < U256::from(ETHER / 100));
    // An operator cannot register twice.
    let receipt = send(
        &mut chain,
        &operators[0].key,
        DA_REGISTRY_ADDRESS,
        U256::from(ETHER),
        register_call(&newcomer, &newcomer.bls, "http://x"),
    );
    assert!(revert_reason(&receipt).contains("already a DA signer"));
}

#[test]
fn certificates_record_blobs_only_with_two_thirds_of_the_slots() {
    let config = ChainConfig {
        da_certificate_window_epochs: 4,
        ..ChainConfig::default()
    };
    let fee = config.da_blob_fee;
    let (mut chain, operators) = chain_with_signers(config, 6);
    let (commitment, blob_id) = commitment();
    let epoch = chain.da_epoch();
    assert!(!is_available(&chain, blob_id));

    // 3 of 6 signers (6 of 12 slots) is under two thirds.
    let under = certificate(&chain, &operators, blob_id, epoch, &[0, 1, 2]);
    let receipt = submit_certificate(&mut chain, &commitment, under, fee);
    assert!(
        revert_reason(&receipt).contains("certificate refused"),
        "{}",
        revert_reason(&receipt)
    );
    assert!(!is_available(&chain, blob_id));

    // 4 of 6 (8 of 12): enough. Wrong fee first, then a certificate for another blob.
    let good = certificate(&chain, &operators, blob_id, epoch, &[0, 2, 3, 5]);
    let receipt = submit_certificate(&mut chain, &commitment, good.clone(), U256::ZERO);
    assert!(revert_reason(&receipt).contains("DA fee"));
    let other = H256([9; 32]);
    let wrong_blob = certificate(&chain, &operators, other, epoch, &[0, 2, 3, 5]);
    let receipt = submit_certificate(&mut chain, &commitment, wrong_blob, fee);
    assert!(revert_reason(&receipt).contains("the certificate is for blob"));
    // A tampered fraction is refused before any pairing.
    let mut tampered = good.clone();
    let signed_at = tampered.len() - 96 - 16;
    tampered[signed_at + 7] = 12;
    let receipt = submit_certificate(&mut chain, &commitment, tampered, fee);
    assert!(revert_reason(&receipt).contains("certificate refused"));
    let receipt = submit_certificate(&mut chain, &commitment, good.clone(), fee);
    assert!(receipt.status, "{}", revert_reason(&receipt));
    assert!(is_available(&chain, blob_id));
    assert_eq!(chain.balance(&DA_ENTRANCE_ADDRESS), fee);
    let blob = chain.da_blob(&blob_id).expect("recorded");
    assert_eq!(blob.epoch, epoch);
    assert_eq!(blob.commitment, commitment);
    // Twice is refused.
    let receipt = submit_certificate(&mut chain, &commitment, good, fee);
    assert!(revert_reason(&receipt).contains("already certified"));

    // A certificate whose epoch fell out of the window is stale.
    let params = da::blob::DaParams::new(4, 8).expect("params");
    let mut encoder = da::codec::Encoder::new(params);
    let second = encoder.encode(b"another blob").expect("encodes");
    let second_commitment = second.commitment().to_bytes().to_vec();
    let second_id = H256(second.commitment().blob_id().0);
    let old_epoch = chain.da_epoch();
    let late = certificate(
        &chain,
        &operators,
        second_id,
        old_epoch,
        &[0, 1, 2, 3, 4, 5],
    );
    for _ in 0..6 {
        let timestamp = chain.head().timestamp_ms() + 1000;
        chain.seal_block(timestamp);
    }
    let receipt = submit_certificate(&mut chain, &second_commitment, late, fee);
    assert!(
        revert_reason(&receipt).contains("stale epoch"),
        "{}",
        revert_reason(&receipt)
    );
    assert!(!is_available(&chain, second_id));
}

#[test]
fn replay_rebuilds_the_registry_and_the_certified_blobs() {
    let (mut chain, operators) = chain_with_signers(ChainConfig::default(), 6);
    let (commitment, blob_id) = commitment();
    let epoch = chain.da_epoch();
    let good = certificate(&chain, &operators, blob_id, epoch, &[0, 1, 2, 3, 4, 5]);
    let fee = chain.config().da_blob_fee;
    assert!(submit_certificate(&mut chain, &commitment, good, fee).status);
    let blocks: Vec<chain_lite::Block> = (0..=chain.head().number())
        .map(|number| chain.block(number).expect("block").clone())
        .collect();
    let replayed = Chain::replay(ChainConfig::default(), blocks).expect("replays");
    assert!(is_available(&replayed, blob_id));
    assert_eq!(replayed.da_quorum(epoch, 0), chain.da_quorum(epoch, 0));
}
