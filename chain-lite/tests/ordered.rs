//! Blocks ordered by a consensus engine: stateless prechecks, deterministic dropping of what the
//! state refuses, headers that commit to the whole state and to the consensus block, and
//! headers of the version before (v2) that keep replaying.

mod common;

use alloy_consensus::{SignableTransaction, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use chain_lite::{
    BodyError, Chain, ChainConfig, HEADER_V2, HEADER_VERSION, OrderedTransaction, Prechecked,
    TxError,
};
use common::{ETHER, dev_key};
use types::H256;

/// A transfer of `value` wei from dev account `from` at `nonce` to `to`.
fn transfer(config: &ChainConfig, from: usize, nonce: u64, to: [u8; 20], value: U256) -> Vec<u8> {
    let tx = TxLegacy {
        chain_id: Some(config.chain_id),
        nonce,
        gas_price: config.gas_price,
        gas_limit: 21_000,
        to: TxKind::Call(to.into()),
        value,
        input: Bytes::new(),
    };
    let signature = dev_key(from)
        .sign_hash_sync(&tx.signature_hash())
        .expect("signs");
    TxEnvelope::Legacy(tx.into_signed(signature)).encoded_2718()
}

fn raw(bytes: Vec<u8>) -> OrderedTransaction {
    OrderedTransaction::Raw(bytes)
}

#[test]
fn prechecks_refuse_what_no_state_could_accept() {
    let config = ChainConfig::default();
    let good = transfer(&config, 0, 0, [1; 20], U256::from(1u64));
    let checked = Prechecked::new(&config, good.clone()).expect("a signed transfer passes");
    assert_eq!(
        checked.transaction().from,
        dev_key(0).address().into_array()
    );
    assert_eq!(checked.raw(), good.as_slice());

    let other_chain = ChainConfig {
        chain_id: config.chain_id + 1,
        ..config.clone()
    };
    let foreign = transfer(&other_chain, 0, 0, [1; 20], U256::from(1u64));
    assert!(matches!(
        Prechecked::new(&config, foreign),
        Err(TxError::WrongChainId { .. })
    ));
    assert!(matches!(
        Prechecked::new(&config, vec![0xf8, 0x01, 0x02]),
        Err(TxError::Malformed { .. })
    ));
    // A signature changed in transit recovers someone else, or nothing: never the signer.
    let mut forged = good;
    let last = forged.len() - 2;
    forged[last] ^= 0x55;
    if let Ok(forged) = Prechecked::new(&config, forged) {
        assert_ne!(forged.transaction().from, checked.transaction().from);
    }
}

#[test]
fn an_ordered_block_drops_what_the_state_refuses_and_replays() {
    let config = ChainConfig::default();
    let mut chain = Chain::new(config.clone());
    let first = transfer(&config, 0, 0, [1; 20], U256::from(ETHER));
    let transactions = vec![
        raw(first.clone()),
        // A nonce gap: dropped.
        raw(transfer(&config, 0, 5, [1; 20], U256::from(1u64))),
        // The same transaction again: dropped as already known.
        raw(first.clone()),
        // More than the sender holds: dropped.
        raw(transfer(&config, 1, 0, [2; 20], U256::MAX >> 1)),
        // Not a transaction at all: dropped.
        raw(vec![1, 2, 3]),
        // The sender's next nonce, after the drops: included.
        OrderedTransaction::Prechecked(Box::new(
            Prechecked::new(&config, transfer(&config, 0, 1, [1; 20], U256::from(2u64)))
                .expect("passes"),
        )),
    ];
    let digest = H256([0xab; 32]);
    let (block, dropped) = chain
        .execute_ordered(1_000, digest, transactions.clone())
        .expect("executes");
    let block = block.clone();
    assert_eq!(block.transactions.len(), 2);
    assert_eq!(block.header.version, HEADER_VERSION);
    assert_eq!(block.header.consensus_digest, digest);
    assert_eq!(
        dropped.iter().map(|d| d.index).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(matches!(dropped[0].error, TxError::NonceTooHigh { .. }));
    assert!(matches!(dropped[1].error, TxError::AlreadyKnown { .. }));
    assert!(matches!(
        dropped[2].error,
        TxError::InsufficientFunds { .. }
    ));
    assert!(matches!(dropped[3].error, TxError::Malformed { .. }));
    assert_eq!(chain.balance(&[1; 20]), U256::from(ETHER + 2));

    // Another validator executing the same ordered block reaches the same header.
    let mut other = Chain::new(config.clone());
    let (same, _) = other
        .execute_ordered(1_000, digest, transactions)
        .expect("executes");
    assert_eq!(same.header, block.header);

    // The sealed blocks replay like any other.
    let replayed = Chain::replay(config, chain.blocks().to_vec()).expect("replays");
    assert_eq!(replayed.head().header, block.header);
    assert_eq!(replayed.state_root(), chain.state_root());
}

#[test]
fn an_ordered_block_needs_an_empty_pending_block() {
    let config = ChainConfig::default();
    let mut chain = Chain::new(config.clone());
    chain
        .send_raw_transaction(&transfer(&config, 0, 0, [1; 20], U256::from(1u64)))
        .expect("accepted");
    let before = chain.state_root();
    assert!(chain.execute_ordered(1, H256::ZERO, Vec::new()).is_err());
    assert_eq!(chain.state_root(), before, "a refusal changes nothing");
}

#[test]
fn the_header_commits_to_the_state_and_the_consensus_block() {
    let config = ChainConfig::default();
    let mut chain = Chain::new(config.clone());
    assert_eq!(chain.head().header.state_root, chain.state_root());
    let mut other = chain.clone();
    let one = chain
        .execute_ordered(1, H256([1; 32]), Vec::new())
        .expect("executes")
        .0
        .clone();
    let two = other
        .execute_ordered(1, H256([2; 32]), Vec::new())
        .expect("executes")
        .0
        .clone();
    assert_eq!(one.header.state_root, two.header.state_root);
    assert_ne!(
        one.hash(),
        two.hash(),
        "the consensus digest is in the hash"
    );

    // A block stored with a state root other than execution's is refused by replay.
    let mut blocks = chain.blocks().to_vec();
    blocks[1].header.state_root = H256([9; 32]);
    blocks[1].header.hash = blocks[1].header.compute_hash();
    assert!(Chain::replay(config, blocks).is_err());
}

/// A data folder sealed before header versions existed holds v2 headers: serialized without
/// `version`, `stateRoot` or `consensusDigest`. They replay, and blocks sealed after them are v3.
#[test]
fn v2_headers_replay_and_new_blocks_are_v3() {
    let config = ChainConfig::default();
    let mut chain = Chain::new(config.clone());
    common::send(
        &mut chain,
        &dev_key(0),
        [1; 20],
        U256::from(5u64),
        Vec::new(),
    );
    // Rewrite the blocks as the previous release stored them.
    let mut parent = H256::ZERO;
    let v2_blocks: Vec<chain_lite::Block> = chain
        .blocks()
        .iter()
        .map(|block| {
            let mut json = serde_json::to_value(block).expect("serializes");
            let header = json["header"].as_object_mut().expect("an object");
            header.remove("version");
            header.remove("stateRoot");
            header.remove("consensusDigest");
            let mut old: chain_lite::Block = serde_json::from_value(json).expect("reads");
            assert_eq!(old.header.version, HEADER_V2);
            old.header.state_root = H256::ZERO;
            old.header.parent_hash = parent;
            old.header.hash = old.header.compute_hash();
            parent = old.header.hash;
            old
        })
        .collect();
    // v2 hashes are the previous release's: the same fields under the v2 tag.
    assert_ne!(v2_blocks[1].hash(), chain.blocks()[1].hash());
    let mut upgraded = Chain::replay(config.clone(), v2_blocks.clone()).expect("v2 replays");
    let next = upgraded
        .execute_ordered(10_000, H256::ZERO, Vec::new())
        .expect("executes")
        .0
        .clone();
    assert_eq!(next.header.version, HEADER_VERSION);
    assert_eq!(next.parent_hash(), v2_blocks[1].hash());
    Chain::replay(config.clone(), upgraded.blocks().to_vec()).expect("mixed versions replay");

    let mut unknown = v2_blocks;
    unknown[1].header.version = 9;
    assert!(
        Chain::replay(config, unknown).is_err(),
        "an unknown version"
    );
}

#[test]
fn a_block_body_checks_against_its_header() {
    let config = ChainConfig::default();
    let mut chain = Chain::new(config.clone());
    let transactions = vec![
        raw(transfer(&config, 0, 0, [1; 20], U256::from(5u64))),
        raw(transfer(&config, 1, 0, [2; 20], U256::from(6u64))),
    ];
    let (block, _) = chain
        .execute_ordered(1_000, H256([0xab; 32]), transactions)
        .expect("executes");
    let block = block.clone();
    assert_eq!(block.check_body(), Ok(()));
    assert_eq!(chain.blocks()[0].check_body(), Ok(()), "genesis");

    let mut header = block.clone();
    header.header.flow_length += 1;
    assert!(matches!(header.check_body(), Err(BodyError::Hash { .. })));

    let mut dropped = block.clone();
    dropped.transactions.pop();
    assert!(matches!(
        dropped.check_body(),
        Err(BodyError::Transactions { .. })
    ));

    let mut value = block.clone();
    value.receipts[0].status = false;
    assert!(matches!(
        value.check_body(),
        Err(BodyError::Receipts { .. })
    ));
    let mut logs = block.clone();
    logs.receipts[1].logs.push(chain_lite::Log {
        address: [9; 20],
        topics: vec![H256([1; 32])],
        data: vec![1],
    });
    assert!(matches!(logs.check_body(), Err(BodyError::Receipts { .. })));
    let mut fewer = block;
    fewer.receipts.pop();
    assert!(matches!(
        fewer.check_body(),
        Err(BodyError::Receipts { .. })
    ));
}
