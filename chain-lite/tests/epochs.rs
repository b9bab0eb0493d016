//! Flow epochs and the mining context against 0G's `Flow` contract semantics: epochs advance by
//! block count on `makeContext*` and submissions, each emitting `NewEpoch`; `getContext`,
//! `getEpochRange`, `getEpochRangeHistory` and `queryContextAtPosition` answer from what was
//! recorded; replay reproduces all of it.

use alloy_consensus::{SignableTransaction, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolError, SolEvent, SolValue};
use chain_lite::abi::{flow, submit_calldata};
use chain_lite::{
    Address, BLOCK_HASH_WINDOW, Block, Chain, ChainConfig, ChainError, DEV_ACCOUNTS, EMPTY_HASH,
    FLOW_ADDRESS, Log, MAX_EPOCHS_PER_CALL, Receipt, Submission,
};
use merkle::file::FileTree;
use types::H256;

const CAROL: Address = [0xca; 20];

fn config(blocks_per_epoch: u64) -> ChainConfig {
    ChainConfig {
        blocks_per_epoch,
        ..ChainConfig::default()
    }
}

fn submission_of(data: &[u8]) -> Submission {
    let tree = FileTree::from_bytes(data).expect("non-empty");
    Submission {
        length: data.len() as u64,
        tags: vec![],
        nodes: tree.nodes(),
    }
}

/// A signed call from dev account 0 (legacy, EIP-155).
fn signed(chain: &Chain, to: Address, value: U256, input: Vec<u8>) -> Vec<u8> {
    let key: PrivateKeySigner = DEV_ACCOUNTS[0].private_key.parse().expect("dev key");
    let tx = TxLegacy {
        chain_id: Some(chain.config().chain_id),
        nonce: chain.nonce(&DEV_ACCOUNTS[0].address),
        gas_price: chain.gas_price(),
        gas_limit: 500_000,
        to: TxKind::Call(to.into()),
        value,
        input: Bytes::from(input),
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::Legacy(tx.into_signed(signature)).encoded_2718()
}

fn send(chain: &mut Chain, input: Vec<u8>, value: U256) -> Receipt {
    let raw = signed(chain, FLOW_ADDRESS, value, input);
    let receipt = chain.send_raw_transaction(&raw).expect("accepted");
    assert!(receipt.status, "reverted: {receipt:?}");
    receipt
}

fn fee(submission: &Submission) -> U256 {
    U256::from(submission.sectors()) * ChainConfig::default().price_per_sector
}

fn seal_empty(chain: &mut Chain, count: u64) {
    for _ in 0..count {
        let timestamp = chain.head().timestamp_ms() + 1000;
        chain.seal_block(timestamp);
    }
}

fn call(chain: &Chain, input: Vec<u8>) -> Result<Vec<u8>, chain_lite::Revert> {
    chain.call(CAROL, FLOW_ADDRESS, &input, U256::ZERO)
}

fn get_context(chain: &Chain) -> flow::MineContext {
    let out = call(chain, flow::getContextCall {}.abi_encode()).expect("view");
    flow::getContextCall::abi_decode_returns(&out).expect("MineContext")
}

fn new_epochs(logs: &[Log]) -> Vec<flow::NewEpoch> {
    logs.iter()
        .filter(|log| log.topics.first().map(|t| t.0) == Some(flow::NewEpoch::SIGNATURE_HASH.0))
        .map(|log| {
            assert_eq!(log.address, FLOW_ADDRESS);
            let topics: Vec<B256> = log.topics.iter().map(|t| B256::from(t.0)).collect();
            flow::NewEpoch::decode_raw_log(topics, &log.data).expect("NewEpoch decodes")
        })
        .collect()
}

/// keccak256(abi.encode(blockDigest, flowRoot, flowLength)), computed with alloy's encoder.
fn expected_digest(block_digest: H256, root: H256, length: u64) -> B256 {
    alloy_primitives::keccak256(
        (
            B256::from(block_digest.0),
            B256::from(root.0),
            U256::from(length),
        )
            .abi_encode(),
    )
}

#[test]
fn genesis_context_is_the_contracts_initial_one() {
    let chain = Chain::new(config(3));
    assert_eq!(
        EMPTY_HASH.0,
        alloy_primitives::keccak256([0u8; 0]).0,
        "EMPTY_HASH is keccak of nothing"
    );
    let context = get_context(&chain);
    assert_eq!(context.epoch, U256::ZERO);
    assert_eq!(context.mineStart, U256::ZERO);
    assert_eq!(context.flowRoot, B256::ZERO, "the identifier alone");
    assert_eq!(context.flowLength, U256::from(1u64));
    assert_eq!(context.blockDigest.0, EMPTY_HASH.0);
    assert_eq!(context.digest.0, EMPTY_HASH.0);
    assert_eq!(chain.epoch(), 0);
    assert_eq!(chain.epoch_start_position(), 0);
}

#[test]
fn epochs_advance_after_blocks_per_epoch_blocks_with_new_epoch_logs() {
    let mut chain = Chain::new(config(3));
    let alice = DEV_ACCOUNTS[0].address;
    let first = submission_of(&[1u8; 1000]);
    // Block 1: the first submission; epoch 1 starts at block 3, only once block 3 is sealed
    // (the contract's `firstBlock + (epoch + 1) * blocksPerEpoch < block.number`).
    send(&mut chain, submit_calldata(&first, alice), fee(&first));
    chain.seal_block(1000);
    seal_empty(&mut chain, 1); // head 2
    let receipt = send(
        &mut chain,
        flow::makeContextCall {}.abi_encode(),
        U256::ZERO,
    );
    assert!(receipt.logs.is_empty(), "block 3 executes: no epoch yet");
    chain.seal_block(4000); // head 3
    assert_eq!(chain.epoch(), 0);
    let (root, length) = chain.flow_context();
    let before = get_context(&chain);
    assert_eq!(before.epoch, U256::ZERO);

    // Block 4: a submission first starts epoch 1 over the flow as it was, then inserts.
    let second = submission_of(&[2u8; 300]);
    let receipt = send(&mut chain, submit_calldata(&second, alice), fee(&second));
    assert_eq!(receipt.logs.len(), 2, "NewEpoch, then Submit");
    assert_eq!(
        receipt.logs[1].topics[0].0,
        flow::Submit::SIGNATURE_HASH.0,
        "Submit comes after NewEpoch, as the contract's makeContext runs first"
    );
    let events = new_epochs(&receipt.logs);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    let block_digest = chain.block(3).expect("block 3").hash();
    let digest = expected_digest(block_digest, root, length.0);
    assert_eq!(event.sender, alloy_primitives::Address::from(alice));
    assert_eq!(event.index, U256::from(1u64));
    assert_eq!(event.startMerkleRoot, B256::from(root.0));
    assert_eq!(event.submissionIndex, U256::from(1u64));
    assert_eq!(event.flowLength, U256::from(length.0));
    assert_eq!(event.context, digest);
    // sender and index are the indexed topics.
    assert_eq!(receipt.logs[0].topics.len(), 3);
    assert_eq!(
        receipt.logs[0].topics[2].0,
        U256::from(1u64).to_be_bytes::<32>()
    );

    let after = get_context(&chain);
    assert_ne!(after.abi_encode(), before.abi_encode());
    assert_eq!(after.epoch, U256::from(1u64));
    assert_eq!(after.mineStart, U256::from(3u64));
    assert_eq!(after.flowRoot, B256::from(root.0));
    assert_eq!(after.flowLength, U256::from(length.0));
    assert_eq!(after.blockDigest, B256::from(block_digest.0));
    assert_eq!(after.digest, digest);
    assert_eq!(chain.epoch(), 1);
    assert_eq!(chain.epoch_start_position(), length.0);

    // getEpochRange for the recorded digest: [0, length); an unknown digest reads as zero,
    // as the contract's mapping does.
    let out = call(&chain, flow::getEpochRangeCall { digest }.abi_encode()).expect("view");
    let range = flow::getEpochRangeCall::abi_decode_returns(&out).expect("range");
    assert_eq!((range.start, range.end), (0, u128::from(length.0)));
    let out = call(
        &chain,
        flow::getEpochRangeCall {
            digest: B256::repeat_byte(7),
        }
        .abi_encode(),
    )
    .expect("view");
    let range = flow::getEpochRangeCall::abi_decode_returns(&out).expect("range");
    assert_eq!((range.start, range.end), (0, 0));

    // getEpochRangeHistory(0) is that range; index 1 reverts with Solidity's Panic(0x32).
    let out = call(
        &chain,
        flow::getEpochRangeHistoryCall { index: U256::ZERO }.abi_encode(),
    )
    .expect("view");
    let history = flow::getEpochRangeHistoryCall::abi_decode_returns(&out).expect("range");
    assert_eq!(
        (history.start, history.end, history.digest),
        (0, u128::from(length.0), digest)
    );
    let revert = call(
        &chain,
        flow::getEpochRangeHistoryCall {
            index: U256::from(1u64),
        }
        .abi_encode(),
    )
    .expect_err("no second range");
    let panic = alloy_sol_types::Panic::abi_decode(&revert.data).expect("Panic(uint256)");
    assert_eq!(panic.code, U256::from(0x32u64));

    // Within epoch 1's blocks, nothing more starts.
    let receipt = send(
        &mut chain,
        flow::makeContextCall {}.abi_encode(),
        U256::ZERO,
    );
    assert!(receipt.logs.is_empty());
    chain.seal_block(5000);
    assert_eq!(chain.epoch(), 1);
}

#[test]
fn make_context_variants_and_query_context_at_position() {
    let mut chain = Chain::new(config(2));
    let alice = DEV_ACCOUNTS[0].address;
    let file = submission_of(&[3u8; 5000]);
    send(&mut chain, submit_calldata(&file, alice), fee(&file));
    chain.seal_block(1000); // head 1
    seal_empty(&mut chain, 6); // head 7: block 8 may start epochs 1..=3 (blocks 2, 4, 6)
    let (root, length) = chain.flow_context();

    // Through `call`, makeContextWithResult predicts epoch 3 and changes nothing.
    let out = call(&chain, flow::makeContextWithResultCall {}.abi_encode()).expect("call");
    let predicted = flow::makeContextWithResultCall::abi_decode_returns(&out).expect("context");
    assert_eq!(predicted.epoch, U256::from(3u64));
    assert_eq!(predicted.mineStart, U256::from(6u64));
    assert_eq!(chain.epoch(), 0);

    // makeContextFixedTimes(0) starts one epoch (the contract loops while i <= cnt).
    let receipt = send(
        &mut chain,
        flow::makeContextFixedTimesCall { cnt: U256::ZERO }.abi_encode(),
        U256::ZERO,
    );
    let events = new_epochs(&receipt.logs);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].index, U256::from(1u64));
    assert_eq!(chain.epoch(), 1);
    assert_eq!(chain.epoch_start_position(), length.0);

    // makeContextWithResult catches up the rest and returns the context it made.
    let raw = signed(
        &chain,
        FLOW_ADDRESS,
        U256::ZERO,
        flow::makeContextWithResultCall {}.abi_encode(),
    );
    let receipt = chain.send_raw_transaction(&raw).expect("accepted");
    let events = new_epochs(&receipt.logs);
    let indexes: Vec<U256> = events.iter().map(|event| event.index).collect();
    assert_eq!(indexes, [U256::from(2u64), U256::from(3u64)]);
    assert_eq!(get_context(&chain).abi_encode(), predicted.abi_encode());
    assert_eq!(
        predicted.digest,
        expected_digest(chain.block(6).expect("block 6").hash(), root, length.0)
    );
    assert_eq!(chain.epoch_ranges().len(), 3);
    // Later epochs over an unchanged flow record empty ranges at its end.
    assert_eq!(chain.epoch_ranges()[1].start, length.0);
    assert_eq!(chain.epoch_ranges()[2].end, length.0);
    chain.seal_block(9000); // head 8
    assert_eq!(
        chain.epoch_root(0),
        Some(root),
        "the root history keeps epoch roots"
    );

    // queryContextAtPosition: a position in the flow finds epoch 1's range.
    let out = call(
        &chain,
        flow::queryContextAtPositionCall { targetPosition: 5 }.abi_encode(),
    )
    .expect("found");
    let range = flow::queryContextAtPositionCall::abi_decode_returns(&out).expect("range");
    assert_eq!(range.digest.0, chain.epoch_ranges()[0].digest.0);
    assert_eq!((range.start, range.end), (0, u128::from(length.0)));
    let revert = call(
        &chain,
        flow::queryContextAtPositionCall {
            targetPosition: u128::from(length.0),
        }
        .abi_encode(),
    )
    .expect_err("past the flow");
    assert_eq!(revert.reason, "Queried position exceeds upper bound");

    // A position submitted after the last epoch belongs to no context yet, until the epoch
    // that covers it starts (queryContextAtPosition runs makeContext first).
    let more = submission_of(&[4u8; 3000]);
    send(&mut chain, submit_calldata(&more, alice), fee(&more));
    chain.seal_block(10_000); // head 9
    let last = chain.flow_context().1.0 - 1;
    let query = flow::queryContextAtPositionCall {
        targetPosition: u128::from(last),
    }
    .abi_encode();
    let revert = call(&chain, query.clone()).expect_err("not in a context yet");
    assert_eq!(revert.reason, "Can not find proper context");
    chain.seal_block(11_000); // head 10: block 11 may start epoch 5 (block 10)
    let out = call(&chain, query).expect("the planned epoch covers it");
    let range = flow::queryContextAtPositionCall::abi_decode_returns(&out).expect("range");
    assert_eq!(range.end, u128::from(chain.flow_context().1.0));
    assert!(range.start <= u128::from(last));
}

#[test]
fn old_epoch_starts_get_empty_digests_and_catch_up_is_bounded() {
    let mut chain = Chain::new(config(10));
    // Head 8300, so block 8301 executes: epochs k start at block 10k < 8301 (k ≤ 830); those
    // with 10k + 8191 < 8301 (k ≤ 10) are past the block-hash window.
    seal_empty(&mut chain, 8300);
    let receipt = send(
        &mut chain,
        flow::makeContextCall {}.abi_encode(),
        U256::ZERO,
    );
    let events = new_epochs(&receipt.logs);
    assert_eq!(events.len(), 830);
    assert_eq!(BLOCK_HASH_WINDOW, 8191);
    assert!(
        events[..10]
            .iter()
            .all(|event| event.context.0 == EMPTY_HASH.0)
    );
    assert!(
        events[10..]
            .iter()
            .all(|event| event.context.0 != EMPTY_HASH.0)
    );
    assert_eq!(chain.epoch_ranges().len(), 820);
    assert_eq!(
        chain.epoch_ranges()[0].digest.0,
        expected_digest(
            chain.block(110).expect("block 110").hash(),
            chain.flow_context().0,
            1
        )
        .0
    );

    // No gas limits chain-lite: one call starts at most MAX_EPOCHS_PER_CALL epochs.
    let mut chain = Chain::new(config(1));
    seal_empty(&mut chain, MAX_EPOCHS_PER_CALL + 10);
    let receipt = send(
        &mut chain,
        flow::makeContextCall {}.abi_encode(),
        U256::ZERO,
    );
    assert_eq!(new_epochs(&receipt.logs).len() as u64, MAX_EPOCHS_PER_CALL);
    let receipt = send(
        &mut chain,
        flow::makeContextCall {}.abi_encode(),
        U256::ZERO,
    );
    assert_eq!(new_epochs(&receipt.logs).len(), 10);

    // blocksPerEpoch = 0 disables epochs rather than looping forever.
    let mut chain = Chain::new(config(0));
    seal_empty(&mut chain, 5);
    let receipt = send(
        &mut chain,
        flow::makeContextCall {}.abi_encode(),
        U256::ZERO,
    );
    assert!(receipt.logs.is_empty());
    assert_eq!(chain.epoch(), 0);
}

#[test]
fn unsigned_submissions_start_epochs_too() {
    let mut chain = Chain::new(config(1));
    let sender = [0x5e; 20];
    chain
        .submit(sender, submission_of(&[1u8; 10]))
        .expect("valid");
    chain.seal_block(1000); // head 1
    seal_empty(&mut chain, 1); // head 2: block 3 starts epochs 1 and 2
    chain
        .submit(sender, submission_of(&[2u8; 10]))
        .expect("valid");
    let block = chain.seal_block(3000).clone();
    let logs = &block.receipts[0].logs;
    let events = new_epochs(logs);
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|event| event.sender == alloy_primitives::Address::from(sender))
    );
    assert_eq!(events[1].submissionIndex, U256::from(1u64));
    assert_eq!(logs[2].topics[0].0, flow::Submit::SIGNATURE_HASH.0);
    // The node's log sync reads Submit events apart from the receipts: unchanged.
    assert_eq!(block.submit_events.len(), 1);
}

fn chain_with_epochs() -> Chain {
    let mut chain = Chain::new(config(2));
    let alice = DEV_ACCOUNTS[0].address;
    for round in 0..6u8 {
        let file = submission_of(&vec![round + 1; 700 * usize::from(round + 1)]);
        send(&mut chain, submit_calldata(&file, alice), fee(&file));
        if round % 2 == 0 {
            chain
                .submit([round; 20], submission_of(&[round; 40]))
                .expect("valid");
        }
        let timestamp = chain.head().timestamp_ms() + 1000;
        chain.seal_block(timestamp);
        seal_empty(&mut chain, u64::from(round % 3));
    }
    send(
        &mut chain,
        flow::makeContextCall {}.abi_encode(),
        U256::ZERO,
    );
    chain.seal_block(chain.head().timestamp_ms() + 1000);
    chain
}

#[test]
fn replay_through_serde_reproduces_epochs_and_logs() {
    let chain = chain_with_epochs();
    assert!(chain.epoch() >= 4, "epoch {}", chain.epoch());
    let json = serde_json::to_string(chain.blocks()).expect("serializes");
    let blocks: Vec<Block> = serde_json::from_str(&json).expect("parses");
    let replayed = Chain::replay(chain.config().clone(), blocks.clone()).expect("replays");
    assert_eq!(replayed.blocks(), chain.blocks());
    assert_eq!(replayed.epoch(), chain.epoch());
    assert_eq!(
        replayed.epoch_start_position(),
        chain.epoch_start_position()
    );
    assert_eq!(replayed.mine_context(), chain.mine_context());
    assert_eq!(replayed.epoch_ranges(), chain.epoch_ranges());
    assert_eq!(
        get_context(&replayed).abi_encode(),
        get_context(&chain).abi_encode()
    );
    for index in 0..chain.epoch() {
        assert_eq!(replayed.epoch_root(index), chain.epoch_root(index));
    }

    // A NewEpoch log that does not follow from execution is refused.
    let (number, position) = blocks
        .iter()
        .find_map(|block| {
            block
                .receipts
                .iter()
                .position(|receipt| !new_epochs(&receipt.logs).is_empty())
                .map(|position| (block.number(), position))
        })
        .expect("a block with a NewEpoch");
    let mut tampered = blocks.clone();
    let index = usize::try_from(number).expect("small");
    let last = tampered[index].receipts[position].logs[0].data.len() - 1;
    tampered[index].receipts[position].logs[0].data[last] ^= 1;
    assert!(matches!(
        Chain::replay(chain.config().clone(), tampered),
        Err(ChainError::Replay { number: n, .. }) if n == number
    ));
    // Replayed with another epoch length, the same blocks do not reproduce.
    assert!(Chain::replay(config(3), blocks).is_err());
}
