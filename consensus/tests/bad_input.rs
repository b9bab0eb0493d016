//! Bad input from peers and clients: blocks that break a rule are refused by verification
//! with the rule they break; transactions that fail the stateless checks, replays and
//! duplicates are refused by the mempool; nothing panics.

mod common;

use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use chain_lite::{ChainConfig, Prechecked, TxError};
use commonware_consensus::types::{Epoch, Height, Round, View};
use commonware_cryptography::Digestible;
use consensus::{
    AccountState, BlockError, ExecClaim, Genesis, Ledger, MemoryLedger, Mempool, MempoolError,
    MempoolLimits, OrderedBlock, check_block,
};
use futures::executor::block_on;
use types::H256;

fn client() -> PrivateKeySigner {
    PrivateKeySigner::from_slice(&[1; 32]).expect("a valid key")
}

fn transfer(chain: &ChainConfig, nonce: u64) -> Vec<u8> {
    common::transfer(chain, &client(), nonce, [9; 20], U256::from(1u64))
}

/// A block on `parent` with the parent's context shape; the rules under test do not look at
/// the context (marshal's wrapper checks it against consensus before the application).
fn child(
    parent: &OrderedBlock,
    timestamp_ms: u64,
    exec: Option<ExecClaim>,
    transactions: Vec<Vec<u8>>,
) -> OrderedBlock {
    let height = parent.height_u64() + 1;
    let context = consensus::Context {
        round: Round::new(Epoch::zero(), View::new(height)),
        leader: parent.context().leader.clone(),
        parent: (View::new(height - 1), parent.digest()),
    };
    OrderedBlock::new(
        context,
        parent.digest(),
        Height::new(height),
        timestamp_ms,
        exec,
        transactions,
    )
}

struct Fixture {
    genesis: std::sync::Arc<Genesis>,
    parent: OrderedBlock,
    claim: ExecClaim,
}

fn fixture() -> Fixture {
    let genesis = common::genesis();
    let ledger = MemoryLedger::new(genesis.chain().clone());
    let head = block_on(ledger.head()).expect("the ledger answers");
    let claim = ExecClaim {
        height: 0,
        header_hash: head.header_hash,
    };
    let parent = child(&genesis.block(), 1_000, Some(claim), Vec::new());
    Fixture {
        genesis,
        parent,
        claim,
    }
}

fn check(fixture: &Fixture, block: &OrderedBlock) -> Result<Option<ExecClaim>, BlockError> {
    let mempool = Mempool::new(MempoolLimits::DEFAULT);
    check_block(&fixture.genesis, &mempool, block, &fixture.parent)
}

#[test]
fn a_valid_block_passes_and_names_the_claim_left_to_compare() {
    let fixture = fixture();
    let chain = fixture.genesis.chain();
    let same_claim = child(
        &fixture.parent,
        2_000,
        Some(fixture.claim),
        vec![transfer(chain, 0), transfer(chain, 1)],
    );
    assert_eq!(check(&fixture, &same_claim), Ok(None));
    let later = ExecClaim {
        height: 1,
        header_hash: H256([3; 32]),
    };
    let advancing = child(&fixture.parent, 2_000, Some(later), Vec::new());
    assert_eq!(check(&fixture, &advancing), Ok(Some(later)));
}

/// Whether a refusal is the one a case expects.
type Expected = fn(&BlockError) -> bool;

#[test]
fn blocks_that_break_a_rule_are_refused_with_the_rule() {
    let fixture = fixture();
    let chain = fixture.genesis.chain();
    let claim = Some(fixture.claim);
    let cases: Vec<(&str, OrderedBlock, Expected)> = vec![
        (
            "timestamp not after the parent's",
            child(&fixture.parent, 1_000, claim, Vec::new()),
            |error| matches!(error, BlockError::TimestampNotAfterParent { .. }),
        ),
        (
            "a transaction twice",
            child(
                &fixture.parent,
                2_000,
                claim,
                vec![transfer(chain, 0), transfer(chain, 0)],
            ),
            |error| matches!(error, BlockError::DuplicateTransaction { .. }),
        ),
        (
            "a transaction of another chain",
            child(
                &fixture.parent,
                2_000,
                claim,
                vec![
                    transfer(chain, 0),
                    transfer(
                        &ChainConfig {
                            chain_id: 1,
                            ..chain.clone()
                        },
                        1,
                    ),
                ],
            ),
            |error| {
                matches!(
                    error,
                    BlockError::TransactionRefused { index: 1, error, .. }
                        if matches!(**error, TxError::WrongChainId { .. })
                )
            },
        ),
        (
            "bytes that are no transaction",
            child(&fixture.parent, 2_000, claim, vec![vec![0xf8, 0x01, 0x02]]),
            |error| {
                matches!(
                    error,
                    BlockError::TransactionRefused { error, .. }
                        if matches!(**error, TxError::Malformed { .. })
                )
            },
        ),
        (
            "more transactions than the limit",
            child(
                &fixture.parent,
                2_000,
                claim,
                (0..=fixture.genesis.limits().max_transactions)
                    .map(|index| index.to_be_bytes().to_vec())
                    .collect(),
            ),
            |error| matches!(error, BlockError::TooManyTransactions { .. }),
        ),
        (
            "no execution claim",
            child(&fixture.parent, 2_000, None, Vec::new()),
            |error| matches!(error, BlockError::MissingExecClaim),
        ),
        (
            "a claim of its own height",
            child(
                &fixture.parent,
                2_000,
                Some(ExecClaim {
                    height: 2,
                    header_hash: H256([1; 32]),
                }),
                Vec::new(),
            ),
            |error| matches!(error, BlockError::ClaimNotBelowBlock { .. }),
        ),
        (
            "another header for the parent's claimed height",
            child(
                &fixture.parent,
                2_000,
                Some(ExecClaim {
                    height: 0,
                    header_hash: H256([1; 32]),
                }),
                Vec::new(),
            ),
            |error| matches!(error, BlockError::ClaimDiffersFromParent { height: 0 }),
        ),
    ];
    for (name, block, expected) in cases {
        match check(&fixture, &block) {
            Err(error) => assert!(expected(&error), "{name}: refused for {error}"),
            Ok(claim) => panic!("{name}: accepted (claim {claim:?})"),
        }
    }
    // A claim below the parent's.
    let advanced = child(
        &fixture.parent,
        2_000,
        Some(ExecClaim {
            height: 1,
            header_hash: H256([2; 32]),
        }),
        Vec::new(),
    );
    let regressing = child(&advanced, 3_000, claim, Vec::new());
    let mempool = Mempool::new(MempoolLimits::DEFAULT);
    assert!(matches!(
        check_block(&fixture.genesis, &mempool, &regressing, &advanced),
        Err(BlockError::ClaimRegresses {
            claimed: 0,
            parent: 1
        })
    ));
    // A block at height 0 that is not the genesis.
    let genesis_block = fixture.genesis.block();
    assert_eq!(
        check_block(&fixture.genesis, &mempool, &genesis_block, &genesis_block),
        Err(BlockError::Genesis)
    );
}

/// An account at `nonce` with more than any test spends.
fn rich(nonce: u64) -> AccountState {
    AccountState {
        nonce,
        balance: U256::from(u128::MAX),
        height: 0,
    }
}

#[test]
fn the_mempool_refuses_replays_duplicates_gaps_and_overflow() {
    let chain = ChainConfig::default();
    let chain = ChainConfig {
        genesis_accounts: common::genesis().chain().genesis_accounts.clone(),
        ..chain
    };
    let prechecked = |nonce: u64| Prechecked::new(&chain, transfer(&chain, nonce)).expect("valid");
    let limits = MempoolLimits {
        max_transactions: 4,
        max_bytes: 1024 * 1024,
        max_per_sender: 3,
    };
    let mut mempool = Mempool::new(limits);
    let sender = client().address().into_array();
    assert!(mempool.insert(prechecked(5), rich(5)).is_ok());
    assert_eq!(mempool.pending_nonce(&sender), Some(6));
    assert!(matches!(
        mempool.insert(prechecked(5), rich(5)),
        Err(MempoolError::AlreadyKnown { .. })
    ));
    assert!(matches!(
        mempool.insert(prechecked(4), rich(5)),
        Err(MempoolError::NonceTooLow {
            expected: 5,
            got: 4
        })
    ));
    assert!(matches!(
        mempool.insert(prechecked(8), rich(5)),
        Err(MempoolError::NonceTooFarAhead { .. })
    ));
    // Another transaction with a pending nonce (different bytes, same nonce).
    let other = common::transfer(&chain, &client(), 5, [8; 20], U256::from(2u64));
    assert!(matches!(
        mempool.insert(Prechecked::new(&chain, other).expect("valid"), rich(5)),
        Err(MempoolError::NonceTaken { nonce: 5 })
    ));
    assert!(mempool.insert(prechecked(7), rich(5)).is_ok());
    // A gap does not count toward the pending nonce.
    assert_eq!(mempool.pending_nonce(&sender), Some(6));
    assert!(mempool.insert(prechecked(6), rich(5)).is_ok());
    assert_eq!(mempool.pending_nonce(&sender), Some(8));
    let second = PrivateKeySigner::from_slice(&[2; 32]).expect("a valid key");
    let fill = |nonce| {
        Prechecked::new(
            &chain,
            common::transfer(&chain, &second, nonce, [9; 20], U256::from(1u64)),
        )
        .expect("valid")
    };
    assert!(mempool.insert(fill(0), rich(0)).is_ok());
    assert!(matches!(
        mempool.insert(fill(1), rich(0)),
        Err(MempoolError::Full { .. })
    ));
    // Selection takes consecutive nonces per sender, from the account nonce on.
    let selected = mempool.select(&Default::default(), &Default::default(), 100, 1 << 20);
    let nonces: Vec<(u64, [u8; 20])> = selected
        .iter()
        .map(|p| (p.transaction().nonce, p.transaction().from))
        .collect();
    assert_eq!(nonces.len(), 4, "{nonces:?}");
}

#[test]
fn the_mempool_admits_only_what_a_sender_can_pay_for() {
    let chain = ChainConfig::default();
    let cost = |value: u64| U256::from(value) + U256::from(21_000 * chain.gas_price);
    let transfer = |nonce, value: u64| {
        Prechecked::new(
            &chain,
            common::transfer(&chain, &client(), nonce, [8; 20], U256::from(value)),
        )
        .expect("valid")
    };
    let mut mempool = Mempool::new(MempoolLimits::DEFAULT);
    // Enough for the first two transfers, one wei short of the third.
    let account = AccountState {
        nonce: 0,
        balance: cost(10) + cost(20) + cost(30) - U256::from(1u64),
        height: 0,
    };
    assert!(mempool.insert(transfer(0, 10), account).is_ok());
    assert!(mempool.insert(transfer(1, 20), account).is_ok());
    match mempool.insert(transfer(2, 30), account) {
        Err(MempoolError::InsufficientFunds { balance, required }) => {
            assert_eq!(balance, account.balance);
            assert_eq!(required, cost(10) + cost(20) + cost(30));
        }
        other => panic!("expected insufficient funds, got {other:?}"),
    }
    // An account with nothing is refused outright.
    let poor = AccountState {
        nonce: 0,
        balance: U256::ZERO,
        height: 0,
    };
    let mut empty = Mempool::new(MempoolLimits::DEFAULT);
    assert!(matches!(
        empty.insert(transfer(0, 0), poor),
        Err(MempoolError::InsufficientFunds { .. })
    ));

    // Later nonces that arrived first never keep an earlier one out: the earlier one is
    // admitted and the later ones it leaves unpaid are evicted.
    let mut gapped = Mempool::new(MempoolLimits::DEFAULT);
    let two = AccountState {
        balance: cost(10) + cost(20),
        ..account
    };
    assert!(gapped.insert(transfer(1, 10), two).is_ok());
    assert!(gapped.insert(transfer(2, 10), two).is_ok());
    assert_eq!(gapped.len(), 2);
    assert!(
        gapped.insert(transfer(0, 20), two).is_ok(),
        "nonce 0 comes first"
    );
    assert_eq!(gapped.len(), 2, "nonce 2 no longer paid for: evicted");
    let sender = client().address().into_array();
    assert_eq!(gapped.pending_nonce(&sender), Some(2));
}

#[test]
fn undecodable_blocks_never_panic() {
    use commonware_codec::{Decode, Encode};
    let fixture = fixture();
    let block = child(
        &fixture.parent,
        2_000,
        Some(fixture.claim),
        vec![transfer(fixture.genesis.chain(), 0)],
    );
    let bytes = block.encode().to_vec();
    let limits = fixture.genesis.limits();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..2_000 {
        let mut mutated = bytes.clone();
        for _ in 0..1 + round % 8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % mutated.len();
            mutated[at] ^= (state >> 32) as u8 | 1;
        }
        if let Ok(decoded) = OrderedBlock::decode_cfg(bytes::Bytes::from(mutated.clone()), &limits)
        {
            // Whatever decodes re-encodes to the same bytes (one encoding per block).
            assert_eq!(decoded.encode().to_vec(), mutated);
        }
    }
}
