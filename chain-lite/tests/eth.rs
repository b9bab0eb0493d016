//! Signed Ethereum transactions against chain-lite: accounts, transfers, the Flow, Market and
//! Reward modules through ABI calldata, every refusal leaving state unchanged, views through
//! `call`, log filters and replay. Transactions are signed with alloy's local signer and the
//! fixed dev keys, as a wallet would sign them.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address as AlloyAddress, B256, Bytes, Signature, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolError, SolEvent};
use chain_lite::abi::{flow, market, reward};
use chain_lite::{
    Address, Block, Chain, ChainConfig, ChainError, DEV_ACCOUNTS, DEV_BALANCE_WEI, FLOW_ADDRESS,
    LogFilter, MARKET_ADDRESS, MODULE_CALL_GAS, REWARD_ADDRESS, Submission, Transaction, TxError,
    calldata_gas,
};
use merkle::file::FileTree;
use types::{H256, TxSeq};

const BOB: Address = [0xb0; 20];

fn signer(index: usize) -> PrivateKeySigner {
    DEV_ACCOUNTS[index].private_key.parse().expect("dev key")
}

fn config() -> ChainConfig {
    ChainConfig {
        reward_release_seconds: 100,
        ..ChainConfig::default()
    }
}

fn gas_price() -> u128 {
    config().gas_price
}

/// A signed EIP-155 legacy transaction's raw bytes.
fn legacy(
    key: &PrivateKeySigner,
    chain_id: Option<u64>,
    nonce: u64,
    to: Address,
    value: U256,
    input: Vec<u8>,
    gas_limit: u64,
) -> Vec<u8> {
    let tx = TxLegacy {
        chain_id,
        nonce,
        gas_price: gas_price(),
        gas_limit,
        to: TxKind::Call(to.into()),
        value,
        input: Bytes::from(input),
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::Legacy(tx.into_signed(signature)).encoded_2718()
}

fn eip1559(
    key: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: U256,
    input: Vec<u8>,
) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: config().chain_id,
        nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 2 * gas_price(),
        max_priority_fee_per_gas: 7,
        to: TxKind::Call(to.into()),
        value,
        input: Bytes::from(input),
        access_list: Default::default(),
    };
    let signature = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::Eip1559(tx.into_signed(signature)).encoded_2718()
}

fn call_tx(index: usize, nonce: u64, to: Address, value: U256, input: Vec<u8>) -> Vec<u8> {
    legacy(
        &signer(index),
        Some(config().chain_id),
        nonce,
        to,
        value,
        input,
        500_000,
    )
}

fn submission_of(data: &[u8]) -> Submission {
    let tree = FileTree::from_bytes(data).expect("non-empty");
    Submission {
        length: data.len() as u64,
        tags: vec![],
        nodes: tree.nodes(),
    }
}

fn abi_submission(submission: &Submission, submitter: Address) -> flow::Submission {
    flow::Submission {
        data: chain_lite::abi::submission_data(submission),
        submitter: submitter.into(),
    }
}

fn submit_calldata(submission: &Submission) -> Vec<u8> {
    chain_lite::abi::submit_calldata(submission, DEV_ACCOUNTS[0].address)
}

fn fee(submission: &Submission) -> U256 {
    U256::from(submission.sectors()) * config().price_per_sector
}

fn revert_reason(data: &[u8]) -> String {
    alloy_sol_types::Revert::abi_decode(data)
        .expect("Error(string)")
        .reason
}

/// Everything a refused transaction must leave alone, including the hash the next seal gets:
/// (accounts, flow root, submissions, pending transactions, next block hash).
type Snapshot = (Vec<(Address, U256, u64)>, H256, u64, usize, H256);

fn snapshot(chain: &Chain) -> Snapshot {
    let accounts = chain
        .accounts()
        .map(|(address, account)| (*address, account.balance, account.nonce))
        .collect();
    let mut sealed = chain.clone();
    let next = sealed.seal_block(1_000_000).hash();
    (
        accounts,
        chain.flow_context().0,
        chain.num_submissions(),
        chain.pending_transactions().len(),
        next,
    )
}

#[test]
fn dev_accounts_match_their_keys_and_are_funded() {
    let chain = Chain::new(config());
    for (index, account) in DEV_ACCOUNTS.iter().enumerate() {
        assert_eq!(signer(index).address(), AlloyAddress::from(account.address));
        assert_eq!(chain.balance(&account.address), DEV_BALANCE_WEI);
        assert_eq!(chain.nonce(&account.address), 0);
    }
    assert_eq!(
        DEV_BALANCE_WEI,
        U256::from(10u64).pow(U256::from(24u64)),
        "one million ether"
    );
}

#[test]
fn value_transfers_legacy_eip1559_and_eip2930() {
    let mut chain = Chain::new(config());
    let alice = DEV_ACCOUNTS[0].address;
    let price = gas_price();

    let raw = call_tx(0, 0, BOB, U256::from(1_000u64), vec![]);
    let receipt = chain.send_raw_transaction(&raw).expect("accepted");
    assert!(receipt.status);
    assert_eq!(receipt.gas_used, 21_000);
    assert_eq!(receipt.effective_gas_price, price);
    assert_eq!((receipt.from, receipt.to), (alice, BOB));
    assert_eq!(receipt.transaction_hash, merkle::keccak::keccak256(&raw));
    assert_eq!(chain.balance(&BOB), U256::from(1_000u64));
    let spent = U256::from(1_000u64) + U256::from(21_000u64) * U256::from(price);
    assert_eq!(chain.balance(&alice), DEV_BALANCE_WEI - spent);
    assert_eq!(chain.nonce(&alice), 1);

    // EIP-1559: pays base fee plus the tip (capped by the max fee); calldata costs gas.
    let raw1559 = eip1559(&signer(0), 1, BOB, U256::from(5u64), vec![0, 1, 2]);
    let receipt = chain.send_raw_transaction(&raw1559).expect("accepted");
    assert_eq!(receipt.effective_gas_price, price + 7);
    assert_eq!(receipt.gas_used, 21_000 + 4 + 16 + 16);
    assert_eq!(receipt.cumulative_gas_used, 21_000 + 21_036);
    assert_eq!(receipt.transaction_index, 1);

    // EIP-2930 (type 1) is accepted too.
    let tx = TxEip2930 {
        chain_id: config().chain_id,
        nonce: 0,
        gas_price: price,
        gas_limit: 21_000,
        to: TxKind::Call(BOB.into()),
        value: U256::from(1u64),
        input: Bytes::new(),
        access_list: Default::default(),
    };
    let signature = signer(1)
        .sign_hash_sync(&tx.signature_hash())
        .expect("signs");
    let raw2930 = TxEnvelope::Eip2930(tx.into_signed(signature)).encoded_2718();
    assert!(
        chain
            .send_raw_transaction(&raw2930)
            .expect("accepted")
            .status
    );
    assert_eq!(chain.balance(&BOB), U256::from(1_006u64));

    // Lookups answer for sealed blocks only.
    let hash = merkle::keccak::keccak256(&raw1559);
    assert!(chain.transaction_by_hash(&hash).is_none());
    let block = chain.seal_block(5_000).clone();
    assert_eq!(block.receipts.len(), 3);
    assert_eq!(block.header.gas_used, 3 * 21_000 + 36);
    let found = chain.transaction_by_hash(&hash).expect("sealed");
    assert_eq!((found.block.number(), found.index), (1, 1));
    assert_eq!(found.transaction, &Transaction::Signed { raw: raw1559 });
    assert_eq!(found.receipt.block_number, 1);
    assert_eq!(
        chain.block_by_hash(&block.hash()).map(Block::number),
        Some(1)
    );
    assert!(chain.transaction_by_block_and_index(1, 2).is_some());
    assert!(chain.transaction_by_block_and_index(1, 3).is_none());
}

#[test]
fn flow_submit_matches_the_unsigned_path_and_pays_the_fee() {
    let mut signed = Chain::new(config());
    let mut unsigned = Chain::new(config());
    let alice = DEV_ACCOUNTS[0].address;
    let files = [vec![7u8; 1000], vec![3u8; 300_000], vec![9u8; 5]];
    for (nonce, data) in files.iter().enumerate() {
        let submission = submission_of(data);
        let calldata = submit_calldata(&submission);
        let value = fee(&submission);
        // eth_call predicts the return values the transaction then produces.
        let predicted = signed
            .call(alice, FLOW_ADDRESS, &calldata, value)
            .expect("would succeed");
        let predicted = flow::submitCall::abi_decode_returns(&predicted).expect("returns");
        let estimate = signed
            .estimate_gas(alice, Some(FLOW_ADDRESS), &calldata, value)
            .expect("estimates");

        let raw = call_tx(0, nonce as u64, FLOW_ADDRESS, value, calldata.clone());
        let receipt = signed.send_raw_transaction(&raw).expect("accepted");
        let old = unsigned.submit(alice, submission.clone()).expect("valid");
        assert!(receipt.status, "{:?}", revert_reason(&receipt.revert_data));
        assert_eq!(receipt.gas_used, estimate);
        assert_eq!(estimate, 21_000 + calldata_gas(&calldata) + MODULE_CALL_GAS);
        assert_eq!(receipt.logs.len(), 1);
        let log = &receipt.logs[0];
        assert_eq!(log.address, FLOW_ADDRESS);
        assert_eq!(log.topics[0].0, flow::Submit::SIGNATURE_HASH.0);
        let topics: Vec<B256> = log.topics.iter().map(|t| B256::from(t.0)).collect();
        let event = flow::Submit::decode_raw_log(topics, &log.data).expect("Submit decodes");
        assert_eq!(event.sender, AlloyAddress::from(alice));
        assert_eq!(event.identity.0, submission.digest().0);
        assert_eq!(event.submissionIndex, U256::from(old.tx_seq.0));
        assert_eq!(event.startPos, U256::from(old.start.0));
        assert_eq!(event.length, U256::from(old.length));
        assert_eq!(event.submission.length, U256::from(submission.length));
        assert_eq!(predicted.index, U256::from(old.tx_seq.0));
        assert_eq!(predicted.startIndex, U256::from(old.start.0));
        assert_eq!(predicted.digest.0, old.identity.0);
        assert_eq!(signed.flow_context(), unsigned.flow_context());
    }
    // The unsigned path's receipts carry the same log.
    let signed_block = signed.seal_block(1_000).clone();
    let unsigned_block = unsigned.seal_block(1_000).clone();
    assert_eq!(signed_block.submit_events, unsigned_block.submit_events);
    assert_eq!(
        signed_block.receipts[1].logs,
        unsigned_block.receipts[1].logs
    );
    assert_eq!(signed.num_submissions(), 3);
    assert_eq!(
        signed.flow_root_by_tx_seq(TxSeq(2)),
        unsigned.flow_root_by_tx_seq(TxSeq(2))
    );
    // All fees reached the Reward module; the market split them padding/upload.
    let total_fee: U256 = files.iter().map(|data| fee(&submission_of(data))).sum();
    assert_eq!(signed.reward_balance(), total_fee);
    let totals = signed.market_totals();
    assert_eq!(totals.padding_fees + totals.upload_fees, total_fee);
    assert!(
        totals.padding_fees > U256::ZERO,
        "the first file is padded by 3 sectors"
    );
    assert_eq!(
        signed.reward_pool(0).map(|pool| pool.total),
        Some(total_fee)
    );
}

#[test]
fn fee_too_low_reverts_with_a_reason_and_costs_only_gas() {
    let mut chain = Chain::new(config());
    let alice = DEV_ACCOUNTS[0].address;
    let submission = submission_of(&[1u8; 4096]);
    let calldata = submit_calldata(&submission);
    let short = fee(&submission) - U256::from(1u64);
    let reverted = chain
        .call(alice, FLOW_ADDRESS, &calldata, short)
        .expect_err("reverts");
    assert!(
        reverted.reason.starts_with("not enough fee"),
        "{}",
        reverted.reason
    );
    assert!(
        chain
            .estimate_gas(alice, Some(FLOW_ADDRESS), &calldata, short)
            .is_err()
    );

    let raw = call_tx(0, 0, FLOW_ADDRESS, short, calldata.clone());
    let receipt = chain.send_raw_transaction(&raw).expect("executed");
    assert!(!receipt.status);
    assert_eq!(receipt.status_code(), 0);
    assert!(receipt.logs.is_empty());
    assert_eq!(receipt.revert_data, reverted.data);
    let reason = revert_reason(&receipt.revert_data);
    assert_eq!(
        reason,
        format!(
            "not enough fee: {} wei due (16 sectors at {} wei), {short} wei paid",
            fee(&submission),
            config().price_per_sector
        )
    );
    // Error(string) selector, as ethers expects.
    assert_eq!(receipt.revert_data[..4], [0x08, 0xc3, 0x79, 0xa0]);
    let gas = U256::from(receipt.gas_used) * U256::from(gas_price());
    assert_eq!(chain.balance(&alice), DEV_BALANCE_WEI - gas);
    assert_eq!(chain.nonce(&alice), 1);
    assert_eq!(chain.num_submissions(), 0);
    assert_eq!(chain.reward_balance(), U256::ZERO);

    // Too little gas for the module call: out of gas, the whole limit is used.
    let raw = legacy(
        &signer(0),
        Some(config().chain_id),
        1,
        FLOW_ADDRESS,
        fee(&submission),
        calldata.clone(),
        21_000 + calldata_gas(&calldata),
    );
    let receipt = chain.send_raw_transaction(&raw).expect("executed");
    assert!(!receipt.status);
    assert!(revert_reason(&receipt.revert_data).starts_with("out of gas"));
    assert_eq!(receipt.gas_used, 21_000 + calldata_gas(&calldata));
    assert_eq!(chain.num_submissions(), 0);
}

#[test]
fn every_refusal_leaves_state_unchanged() {
    let mut chain = Chain::new(config());
    let id = config().chain_id;
    let key = signer(0);
    // One accepted transaction first, so the replay and nonce-low cases have something to hit.
    let first = call_tx(0, 0, BOB, U256::from(1u64), vec![]);
    chain.send_raw_transaction(&first).expect("accepted");
    let before = snapshot(&chain);
    let refuse = |chain: &mut Chain, raw: &[u8]| -> TxError {
        chain.send_raw_transaction(raw).expect_err("refused")
    };

    assert_eq!(
        refuse(&mut chain, &first),
        TxError::AlreadyKnown {
            hash: merkle::keccak::keccak256(&first)
        }
    );
    let low = call_tx(0, 0, BOB, U256::from(2u64), vec![]);
    let error = refuse(&mut chain, &low);
    assert_eq!(
        error,
        TxError::NonceTooLow {
            expected: 1,
            got: 0
        }
    );
    assert_eq!(error.to_string(), "nonce too low: expected 1, got 0");
    assert_eq!(
        refuse(&mut chain, &call_tx(0, 5, BOB, U256::from(1u64), vec![])),
        TxError::NonceTooHigh {
            expected: 1,
            got: 5
        }
    );
    assert_eq!(
        refuse(
            &mut chain,
            &legacy(&key, Some(id + 1), 1, BOB, U256::ZERO, vec![], 21_000)
        ),
        TxError::WrongChainId {
            expected: id,
            got: id + 1
        }
    );
    assert_eq!(
        refuse(
            &mut chain,
            &legacy(&key, None, 1, BOB, U256::ZERO, vec![], 21_000)
        ),
        TxError::Unprotected
    );
    // An unfunded key: insufficient funds for gas.
    let poor = PrivateKeySigner::from_bytes(&B256::repeat_byte(0x42)).expect("key");
    assert!(matches!(
        refuse(
            &mut chain,
            &legacy(&poor, Some(id), 0, BOB, U256::ZERO, vec![], 21_000)
        ),
        TxError::InsufficientFunds { .. }
    ));
    // A funded one sending more than it has.
    assert!(matches!(
        refuse(&mut chain, &call_tx(0, 1, BOB, DEV_BALANCE_WEI, vec![])),
        TxError::InsufficientFunds { .. }
    ));
    assert_eq!(
        refuse(
            &mut chain,
            &legacy(&key, Some(id), 1, BOB, U256::ZERO, vec![1], 21_000)
        ),
        TxError::IntrinsicGasTooLow {
            gas_limit: 21_000,
            required: 21_016
        }
    );
    // A bad signature: a high s (EIP-2) and an s that recovers no key.
    let tx = TxLegacy {
        chain_id: Some(id),
        nonce: 1,
        gas_price: gas_price(),
        gas_limit: 21_000,
        to: TxKind::Call(BOB.into()),
        value: U256::ZERO,
        input: Bytes::new(),
    };
    let good = key.sign_hash_sync(&tx.signature_hash()).expect("signs");
    let high_s = Signature::new(
        good.r(),
        alloy_primitives::U256::from_be_bytes(
            alloy_consensus::crypto::SECP256K1N_HALF.to_be_bytes::<32>(),
        ) * U256::from(2u64)
            - good.s()
            + U256::from(1u64),
        !good.v(),
    );
    let bad = TxEnvelope::Legacy(tx.clone().into_signed(high_s)).encoded_2718();
    assert!(matches!(
        refuse(&mut chain, &bad),
        TxError::BadSignature { .. }
    ));
    let zero_r = Signature::new(U256::ZERO, good.s(), good.v());
    let bad = TxEnvelope::Legacy(tx.into_signed(zero_r)).encoded_2718();
    assert!(matches!(
        refuse(&mut chain, &bad),
        TxError::BadSignature { .. }
    ));
    // A flipped bit in s recovers no key or some unfunded stranger, who cannot pay the gas.
    let mut tampered = call_tx(1, 0, BOB, U256::from(1u64), vec![]);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        refuse(&mut chain, &tampered),
        TxError::BadSignature { .. } | TxError::InsufficientFunds { .. }
    ));
    // Malformed RLP: truncated, trailing bytes, garbage, empty, unsupported types.
    let good_raw = call_tx(0, 1, BOB, U256::from(1u64), vec![]);
    for malformed in [
        good_raw[..good_raw.len() - 3].to_vec(),
        [good_raw.clone(), vec![0]].concat(),
        vec![0xc0],
        vec![0xff; 40],
        vec![],
    ] {
        assert!(
            matches!(refuse(&mut chain, &malformed), TxError::Malformed { .. }),
            "{malformed:02x?}: {:?}",
            chain.send_raw_transaction(&malformed)
        );
    }
    assert!(matches!(
        refuse(&mut chain, &[&[0x03][..], &good_raw[..]].concat()),
        TxError::Malformed { .. } | TxError::UnsupportedType { .. }
    ));
    // Malformed ABI for a module: refused before execution, not a revert.
    let mut garbage = flow::submitCall::SELECTOR.to_vec();
    garbage.extend_from_slice(&[0xee; 40]);
    assert!(matches!(
        refuse(
            &mut chain,
            &call_tx(0, 1, FLOW_ADDRESS, U256::ZERO, garbage)
        ),
        TxError::MalformedCalldata { .. }
    ));
    // Oversized calldata: past the limit and past the raw bound.
    let limit = config().max_calldata_bytes;
    assert_eq!(
        refuse(
            &mut chain,
            &legacy(
                &key,
                Some(id),
                1,
                BOB,
                U256::ZERO,
                vec![0; limit + 1],
                10_000_000
            )
        ),
        TxError::CalldataTooLarge {
            bytes: limit + 1,
            max: limit
        }
    );
    assert!(matches!(
        refuse(&mut chain, &vec![0u8; limit + 20_000]),
        TxError::TooLarge { .. }
    ));
    // Gas price below the chain's.
    let cheap = TxLegacy {
        chain_id: Some(id),
        nonce: 1,
        gas_price: gas_price() - 1,
        gas_limit: 21_000,
        to: TxKind::Call(BOB.into()),
        value: U256::ZERO,
        input: Bytes::new(),
    };
    let signature = key.sign_hash_sync(&cheap.signature_hash()).expect("signs");
    assert!(matches!(
        refuse(
            &mut chain,
            &TxEnvelope::Legacy(cheap.into_signed(signature)).encoded_2718()
        ),
        TxError::GasPriceTooLow { .. }
    ));
    // Contract creation.
    let create = TxLegacy {
        chain_id: Some(id),
        nonce: 1,
        gas_price: gas_price(),
        gas_limit: 100_000,
        to: TxKind::Create,
        value: U256::ZERO,
        input: Bytes::from(vec![0x60, 0x00]),
    };
    let signature = key.sign_hash_sync(&create.signature_hash()).expect("signs");
    assert_eq!(
        refuse(
            &mut chain,
            &TxEnvelope::Legacy(create.into_signed(signature)).encoded_2718()
        ),
        TxError::ContractCreation
    );

    assert_eq!(snapshot(&chain), before);
    // And the chain still takes the next valid transaction.
    assert!(
        chain
            .send_raw_transaction(&good_raw)
            .expect("accepted")
            .status
    );
}

#[test]
fn every_view_answers_through_call() {
    let mut chain = Chain::new(config());
    let alice = DEV_ACCOUNTS[0].address;
    let submission = submission_of(&[5u8; 2000]);
    let raw = call_tx(
        0,
        0,
        FLOW_ADDRESS,
        fee(&submission),
        submit_calldata(&submission),
    );
    assert!(chain.send_raw_transaction(&raw).expect("accepted").status);
    chain.seal_block(10_000);
    let before = snapshot(&chain);
    let call = |to: Address, data: Vec<u8>| chain.call(alice, to, &data, U256::ZERO);

    let out = call(FLOW_ADDRESS, flow::marketCall {}.abi_encode()).expect("market");
    assert_eq!(
        flow::marketCall::abi_decode_returns(&out).expect("decodes"),
        AlloyAddress::from(MARKET_ADDRESS)
    );
    let one = U256::from(1u64);
    let out = call(FLOW_ADDRESS, flow::numSubmissionsCall {}.abi_encode()).expect("view");
    assert_eq!(
        flow::numSubmissionsCall::abi_decode_returns(&out).expect("u256"),
        one
    );
    let out = call(FLOW_ADDRESS, flow::submissionIndexCall {}.abi_encode()).expect("view");
    assert_eq!(
        flow::submissionIndexCall::abi_decode_returns(&out).expect("u256"),
        one
    );
    let root = chain.flow_root_by_tx_seq(TxSeq(0)).expect("root");
    let out = call(
        FLOW_ADDRESS,
        flow::getFlowRootByTxSeqCall { txSeq: U256::ZERO }.abi_encode(),
    )
    .expect("view");
    assert_eq!(
        flow::getFlowRootByTxSeqCall::abi_decode_returns(&out)
            .expect("bytes32")
            .0,
        root.0
    );
    let out = call(
        FLOW_ADDRESS,
        flow::getFlowRootByTxSeqCall { txSeq: one }.abi_encode(),
    )
    .expect("view");
    assert_eq!(
        flow::getFlowRootByTxSeqCall::abi_decode_returns(&out).expect("bytes32"),
        B256::ZERO
    );
    let out = call(FLOW_ADDRESS, flow::computeFlowRootCall {}.abi_encode()).expect("view");
    assert_eq!(
        flow::computeFlowRootCall::abi_decode_returns(&out)
            .expect("bytes32")
            .0,
        chain.flow_context().0.0
    );
    let out = call(FLOW_ADDRESS, flow::treeCall {}.abi_encode()).expect("view");
    let tree = flow::treeCall::abi_decode_returns(&out).expect("tree");
    assert_eq!(tree.currentLength, U256::from(chain.flow_context().1.0));
    // Epoch 0 from genesis: no epoch has started yet (see `tests/epochs.rs`).
    for data in [
        flow::epochCall {}.abi_encode(),
        flow::epochStartPositionCall {}.abi_encode(),
        flow::firstBlockCall {}.abi_encode(),
        flow::deployDelayCall {}.abi_encode(),
    ] {
        let out = call(FLOW_ADDRESS, data).expect("view");
        assert_eq!(
            flow::epochCall::abi_decode_returns(&out).expect("u256"),
            U256::ZERO
        );
    }
    let out = call(FLOW_ADDRESS, flow::blocksPerEpochCall {}.abi_encode()).expect("view");
    assert_eq!(
        flow::blocksPerEpochCall::abi_decode_returns(&out).expect("u256"),
        U256::from(config().blocks_per_epoch)
    );
    let out = call(FLOW_ADDRESS, flow::pausedCall {}.abi_encode()).expect("view");
    assert!(!flow::pausedCall::abi_decode_returns(&out).expect("bool"));
    let out = call(FLOW_ADDRESS, flow::rootHistoryCall {}.abi_encode()).expect("view");
    assert_eq!(
        flow::rootHistoryCall::abi_decode_returns(&out).expect("address"),
        AlloyAddress::ZERO
    );
    // The context views answer; makeContext* through `call` predict and change nothing.
    let out = call(FLOW_ADDRESS, flow::getContextCall {}.abi_encode()).expect("view");
    let context = flow::getContextCall::abi_decode_returns(&out).expect("context");
    assert_eq!(context.epoch, U256::ZERO);
    assert_eq!(context.flowLength, U256::from(1u64));
    let out = call(
        FLOW_ADDRESS,
        flow::makeContextWithResultCall {}.abi_encode(),
    )
    .expect("call");
    let predicted = flow::makeContextWithResultCall::abi_decode_returns(&out).expect("context");
    assert_eq!(predicted.epoch, context.epoch);
    assert_eq!(predicted.digest, context.digest);
    call(FLOW_ADDRESS, flow::makeContextCall {}.abi_encode()).expect("call");
    call(
        FLOW_ADDRESS,
        flow::getEpochRangeCall { digest: B256::ZERO }.abi_encode(),
    )
    .expect("view");
    let revert = call(
        FLOW_ADDRESS,
        flow::getEpochRangeHistoryCall { index: U256::ZERO }.abi_encode(),
    )
    .expect_err("no epoch range yet");
    assert!(revert.reason.contains("out-of-bounds"), "{}", revert.reason);
    let revert = call(
        FLOW_ADDRESS,
        flow::queryContextAtPositionCall { targetPosition: 0 }.abi_encode(),
    )
    .expect_err("no context yet");
    assert_eq!(revert.reason, "Can not find proper context");
    assert_eq!(revert_reason(&revert.data), revert.reason);

    let out = call(MARKET_ADDRESS, market::pricePerSectorCall {}.abi_encode()).expect("view");
    assert_eq!(
        market::pricePerSectorCall::abi_decode_returns(&out).expect("u256"),
        config().price_per_sector
    );
    let out = call(MARKET_ADDRESS, market::flowCall {}.abi_encode()).expect("view");
    assert_eq!(
        market::flowCall::abi_decode_returns(&out).expect("address"),
        AlloyAddress::from(FLOW_ADDRESS)
    );
    let out = call(MARKET_ADDRESS, market::rewardCall {}.abi_encode()).expect("view");
    assert_eq!(
        market::rewardCall::abi_decode_returns(&out).expect("address"),
        AlloyAddress::from(REWARD_ADDRESS)
    );
    let out = call(REWARD_ADDRESS, reward::releaseSecondsCall {}.abi_encode()).expect("view");
    assert_eq!(
        reward::releaseSecondsCall::abi_decode_returns(&out).expect("u256"),
        U256::from(100u64)
    );
    let out = call(
        REWARD_ADDRESS,
        reward::rewardsCall {
            pricingIndex: U256::ZERO,
        }
        .abi_encode(),
    )
    .expect("view");
    let pool = reward::rewardsCall::abi_decode_returns(&out).expect("pool");
    assert_eq!(pool.total, fee(&submission));

    let revert = call(FLOW_ADDRESS, vec![0xde, 0xad, 0xbe, 0xef]).expect_err("unknown");
    assert_eq!(revert.reason, "unknown selector 0xdeadbeef");
    let revert = chain
        .call(
            alice,
            FLOW_ADDRESS,
            &flow::marketCall {}.abi_encode(),
            U256::from(1u64),
        )
        .expect_err("views are not payable");
    assert!(revert.reason.contains("not payable"));
    // A submit through call predicts but does not execute.
    let data = submit_calldata(&submission);
    chain
        .call(alice, FLOW_ADDRESS, &data, fee(&submission))
        .expect("would succeed");
    assert_eq!(snapshot(&chain), before);
}

#[test]
fn selectors_and_topics_are_the_sdks() {
    // As ethers computes them from the SDK's FixedPriceFlow and FixedPrice ABIs.
    assert_eq!(flow::submitCall::SELECTOR, [0xbc, 0x8c, 0x11, 0xf8]);
    assert_eq!(flow::batchSubmitCall::SELECTOR, [0x49, 0xaa, 0x33, 0x95]);
    assert_eq!(flow::marketCall::SELECTOR, [0x80, 0xf5, 0x56, 0x05]);
    assert_eq!(flow::numSubmissionsCall::SELECTOR, [0x77, 0xe1, 0x98, 0x24]);
    assert_eq!(
        flow::getFlowRootByTxSeqCall::SELECTOR,
        [0x6d, 0x7a, 0xd0, 0xfc]
    );
    assert_eq!(flow::getContextCall::SELECTOR, [0x12, 0x7f, 0x0f, 0x07]);
    assert_eq!(
        flow::makeContextWithResultCall::SELECTOR,
        [0xb4, 0x64, 0xb5, 0x3e]
    );
    assert_eq!(flow::epochCall::SELECTOR, [0x90, 0x0c, 0xf0, 0xcf]);
    assert_eq!(flow::treeCall::SELECTOR, [0xfd, 0x54, 0xb2, 0x28]);
    assert_eq!(
        market::pricePerSectorCall::SELECTOR,
        [0x61, 0xec, 0x50, 0x82]
    );
    assert_eq!(market::chargeFeeCall::SELECTOR, [0xda, 0x6e, 0xb3, 0x6a]);
    assert_eq!(
        hex::encode(flow::Submit::SIGNATURE_HASH),
        "167ce04d2aa1981994d3a31695da0d785373335b1078cec239a1a3a2c7675555"
    );
    assert_eq!(
        hex::encode(flow::NewEpoch::SIGNATURE_HASH),
        "bc8a3fd82465d43f1709e44ed882f7e1af0147274196ef1ec009f5d52ff4e993"
    );
}

#[test]
fn batch_submit_is_all_or_nothing() {
    let mut chain = Chain::new(config());
    let alice = DEV_ACCOUNTS[0].address;
    let a = submission_of(&[1u8; 100]);
    let b = submission_of(&[2u8; 70_000]);
    let call = flow::batchSubmitCall {
        submissions: vec![abi_submission(&a, alice), abi_submission(&b, alice)],
    }
    .abi_encode();
    let total = fee(&a) + fee(&b);
    // One wei short: nothing is submitted.
    let receipt = chain
        .send_raw_transaction(&call_tx(
            0,
            0,
            FLOW_ADDRESS,
            total - U256::from(1u64),
            call.clone(),
        ))
        .expect("executed");
    assert!(!receipt.status);
    assert_eq!(chain.num_submissions(), 0);
    // Paid with a surplus: both land, the surplus is kept by the Reward module.
    let receipt = chain
        .send_raw_transaction(&call_tx(0, 1, FLOW_ADDRESS, total + U256::from(9u64), call))
        .expect("executed");
    assert!(receipt.status);
    assert_eq!(receipt.logs.len(), 2);
    assert_eq!(chain.num_submissions(), 2);
    assert_eq!(chain.reward_balance(), total + U256::from(9u64));
}

#[test]
fn rewards_release_linearly_and_only_claimers_claim() {
    let mut chain = Chain::new(config());
    let claimer = DEV_ACCOUNTS[0].address;
    let submission = submission_of(&[8u8; 1 << 16]);
    let paid = fee(&submission);
    chain
        .send_raw_transaction(&call_tx(
            1,
            0,
            FLOW_ADDRESS,
            paid,
            submit_calldata(&submission),
        ))
        .expect("accepted");
    chain.seal_block(0);
    let claim = |pricing_index: u64| {
        reward::claimMineRewardCall {
            pricingIndex: U256::from(pricing_index),
            beneficiary: BOB.into(),
            minerId: B256::repeat_byte(1),
        }
        .abi_encode()
    };
    // Nothing released at the start.
    let revert = chain
        .call(claimer, REWARD_ADDRESS, &claim(0), U256::ZERO)
        .expect_err("nothing yet");
    assert!(revert.reason.contains("nothing released"));
    // 40 of 100 seconds later, 40 % is released.
    chain.seal_block(40_000);
    let receipt = chain
        .send_raw_transaction(&call_tx(0, 0, REWARD_ADDRESS, U256::ZERO, claim(0)))
        .expect("executed");
    assert!(receipt.status, "{}", revert_reason(&receipt.revert_data));
    let first = paid * U256::from(40u64) / U256::from(100u64);
    assert_eq!(chain.balance(&BOB), first);
    assert_eq!(receipt.logs.len(), 1);
    assert_eq!(
        receipt.logs[0].topics[0].0,
        reward::DistributeReward::SIGNATURE_HASH.0
    );
    // Someone else may not claim.
    let receipt = chain
        .send_raw_transaction(&call_tx(2, 0, REWARD_ADDRESS, U256::ZERO, claim(0)))
        .expect("executed");
    assert!(!receipt.status);
    assert!(revert_reason(&receipt.revert_data).contains("may not claim"));
    // After the release period the rest.
    chain.seal_block(500_000);
    chain
        .send_raw_transaction(&call_tx(0, 1, REWARD_ADDRESS, U256::ZERO, claim(0)))
        .expect("executed");
    assert_eq!(chain.balance(&BOB), paid);
    assert_eq!(chain.reward_balance(), U256::ZERO);
    assert_eq!(chain.reward_pool(0).map(|pool| pool.claimed), Some(paid));
}

fn signed_busy_chain() -> Chain {
    let mut chain = Chain::new(ChainConfig {
        max_log_block_range: 5,
        ..config()
    });
    let mut nonce = [0u64; 3];
    for block in 1..=5u64 {
        for (index, nonce) in nonce.iter_mut().enumerate() {
            let raw = if (block as usize + index).is_multiple_of(2) {
                let submission = submission_of(&vec![block as u8; 500 * block as usize + index]);
                call_tx(
                    index,
                    *nonce,
                    FLOW_ADDRESS,
                    fee(&submission),
                    submit_calldata(&submission),
                )
            } else {
                eip1559(&signer(index), *nonce, BOB, U256::from(block), vec![])
            };
            chain.send_raw_transaction(&raw).expect("accepted");
            *nonce += 1;
        }
        if block == 3 {
            chain
                .submit([0xa1; 20], submission_of(&[4u8; 10]))
                .expect("unsigned");
        }
        chain.seal_block(block * 1000);
    }
    chain
}

#[test]
fn logs_filter_by_address_and_topics() {
    let chain = signed_busy_chain();
    let submit_topic = H256(flow::Submit::SIGNATURE_HASH.0);
    let all = chain
        .filter_logs(
            &LogFilter {
                from_block: 1,
                to_block: 5,
                ..LogFilter::default()
            },
            100,
        )
        .expect("in range");
    assert_eq!(all.len() as u64, chain.num_submissions());
    assert!(all.iter().all(|entry| entry.log.address == FLOW_ADDRESS));
    assert_eq!(all[0].block_hash, chain.block(1).expect("block").hash());
    // By the sender topic (indexed, left-padded address).
    let mut sender = [0u8; 32];
    sender[12..].copy_from_slice(&DEV_ACCOUNTS[1].address);
    let by_sender = chain
        .filter_logs(
            &LogFilter {
                from_block: 1,
                to_block: 5,
                addresses: vec![FLOW_ADDRESS],
                topics: vec![Some(vec![submit_topic]), Some(vec![H256(sender)])],
            },
            100,
        )
        .expect("in range");
    // Account 1 submits in the odd blocks.
    assert_eq!(by_sender.len(), 3);
    assert_eq!(
        by_sender.iter().map(|e| e.block_number).collect::<Vec<_>>(),
        vec![1, 3, 5]
    );
    let none = chain
        .filter_logs(
            &LogFilter {
                from_block: 1,
                to_block: 5,
                addresses: vec![MARKET_ADDRESS],
                ..LogFilter::default()
            },
            100,
        )
        .expect("in range");
    assert!(none.is_empty());
    assert!(matches!(
        chain.filter_logs(
            &LogFilter {
                from_block: 0,
                to_block: 5,
                ..LogFilter::default()
            },
            100
        ),
        Err(ChainError::LogRangeTooLarge { .. })
    ));
    assert!(matches!(
        chain.filter_logs(
            &LogFilter {
                from_block: 1,
                to_block: 5,
                ..LogFilter::default()
            },
            2
        ),
        Err(ChainError::TooManyLogs { max_logs: 2, .. })
    ));
}

#[test]
fn replay_of_signed_blocks_through_serde_is_identical() {
    let chain = signed_busy_chain();
    let json = serde_json::to_string(chain.blocks()).expect("serializes");
    let blocks: Vec<Block> = serde_json::from_str(&json).expect("parses");
    let replayed = Chain::replay(chain.config().clone(), blocks.clone()).expect("replays");
    assert_eq!(replayed.blocks(), chain.blocks());
    let accounts = |chain: &Chain| {
        chain
            .accounts()
            .map(|(address, account)| (*address, account.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(accounts(&replayed), accounts(&chain));
    assert_eq!(replayed.flow_context(), chain.flow_context());
    assert_eq!(replayed.reward_pool(0), chain.reward_pool(0));
    assert_eq!(replayed.market_totals(), chain.market_totals());
    let json = serde_json::to_value(&blocks[1]).expect("serializes");
    assert_eq!(json["transactions"][0]["kind"], "signed");
    assert!(json["receipts"][0]["effectiveGasPrice"].is_string());

    // A receipt that does not follow from the transactions is refused.
    let mut tampered = blocks.clone();
    tampered[2].receipts[0].gas_used += 1;
    assert!(matches!(
        Chain::replay(chain.config().clone(), tampered),
        Err(ChainError::Replay { number: 2, .. })
    ));
    // So is a signed transaction that no longer verifies.
    let mut tampered = blocks.clone();
    if let Transaction::Signed { raw } = &mut tampered[3].transactions[1] {
        let last = raw.len() - 1;
        raw[last] ^= 1;
    }
    assert!(matches!(
        Chain::replay(chain.config().clone(), tampered),
        Err(ChainError::Replay { number: 3, .. })
    ));
    // And a genesis with other balances.
    let other = ChainConfig {
        genesis_accounts: vec![],
        ..chain.config().clone()
    };
    assert!(matches!(
        Chain::replay(other, blocks),
        Err(ChainError::Replay { number: 0, .. })
    ));
}
