//! chain-lite on literal cases: submissions, sealing, views, logs and replay.

use alloy_primitives::B256;
use alloy_sol_types::SolEvent;
use chain_lite::abi::flow::Submit;
use chain_lite::{
    Block, Chain, ChainConfig, ChainError, FLOW_ADDRESS, LogEntry, LogFilter, Submission,
    SubmissionError, submission_digest,
};
use merkle::file::{FileTree, SubmissionNode};
use merkle::flow::FlowLog;
use merkle::keccak::keccak256;
use types::{H256, SectorIndex, TxSeq};

const ALICE: [u8; 20] = [0xa1; 20];
const BOB: [u8; 20] = [0xb0; 20];

fn submission_of(data: &[u8]) -> Submission {
    let tree = FileTree::from_bytes(data).expect("non-empty");
    Submission {
        length: data.len() as u64,
        tags: vec![],
        nodes: tree.nodes(),
    }
}

fn node(height: u64) -> SubmissionNode {
    SubmissionNode {
        height,
        root: H256([height as u8; 32]),
    }
}

#[test]
fn genesis_and_first_submissions() {
    let mut chain = Chain::new(ChainConfig::default());
    assert_eq!(chain.head().number(), 0);
    assert_eq!(chain.head().parent_hash(), H256::ZERO);
    assert_eq!(chain.finalized(), chain.head());
    assert_eq!(chain.num_submissions(), 0);
    assert_eq!(chain.flow_context(), (H256::ZERO, SectorIndex(1)));

    // 1000 bytes = 4 chunks: one node of height 2 at sector 4 (aligned to 4).
    let small = submission_of(&[7u8; 1000]);
    let receipt = chain.submit(ALICE, small.clone()).expect("valid");
    assert_eq!(receipt.tx_seq, TxSeq(0));
    assert_eq!(receipt.start, SectorIndex(4));
    assert_eq!((receipt.length, receipt.padding_before), (4, 3));
    assert_eq!(receipt.block_number, 1);
    assert_eq!(receipt.identity, keccak256(small.nodes[0].root.as_bytes()));

    // 300 000 bytes = 1172 chunks, padded to 1280: nodes 10 and 8 at sector 1024.
    let big = submission_of(&vec![3u8; 300_000]);
    assert_eq!(
        big.nodes.iter().map(|n| n.height).collect::<Vec<_>>(),
        vec![10, 8]
    );
    let receipt = chain.submit(BOB, big.clone()).expect("valid");
    assert_eq!(
        (receipt.tx_seq, receipt.start, receipt.length),
        (TxSeq(1), SectorIndex(1024), 1280)
    );

    let block = chain.seal_block(1_000).clone();
    assert_eq!(block.number(), 1);
    assert_eq!(block.parent_hash(), chain.block(0).expect("genesis").hash());
    assert_eq!(block.header.hash, block.header.compute_hash());
    assert_eq!(block.transactions.len(), 2);
    assert_eq!(block.submit_events[1].sender, BOB);
    assert_eq!(
        block.submit_events[1].identity,
        submission_digest(&big.nodes)
    );
    assert_eq!(block.submit_events[1].start_pos, SectorIndex(1024));
    assert_eq!(chain.num_submissions(), 2);
    assert_eq!(block.header.flow_length, 2304);
    assert_eq!(
        chain.flow_context(),
        (block.header.flow_root, SectorIndex(2304))
    );

    // The flow roots are those of an independent FlowLog fed the same nodes.
    let mut flow = FlowLog::new();
    flow.append(&small.nodes).expect("append");
    assert_eq!(chain.flow_root_by_tx_seq(TxSeq(0)), Some(flow.root()));
    flow.append(&big.nodes).expect("append");
    assert_eq!(chain.flow_root_by_tx_seq(TxSeq(1)), Some(flow.root()));
    assert_eq!(chain.flow_root_by_tx_seq(TxSeq(2)), None);

    // Timestamps never go backwards; empty blocks are fine.
    assert_eq!(chain.seal_block(500).timestamp_ms(), 1_000);
    assert_eq!(chain.head().number(), 2);
}

#[test]
fn submissions_are_validated_like_the_contract() {
    let mut chain = Chain::new(ChainConfig::default());
    let invalid = |source| Err(ChainError::InvalidSubmission { source });
    let base = Submission {
        length: 1000,
        tags: vec![],
        nodes: vec![node(2)],
    };
    assert!(chain.submit(ALICE, base.clone()).is_ok());

    let mut empty = base.clone();
    empty.length = 0;
    assert_eq!(
        chain.submit(ALICE, empty),
        invalid(SubmissionError::ZeroLength)
    );
    let mut no_nodes = base.clone();
    no_nodes.nodes.clear();
    assert_eq!(
        chain.submit(ALICE, no_nodes),
        invalid(SubmissionError::NoNodes)
    );
    let mut unordered = base.clone();
    unordered.length = 5 * 256;
    unordered.nodes = vec![node(0), node(2)];
    assert_eq!(
        chain.submit(ALICE, unordered),
        invalid(SubmissionError::HeightsNotDecreasing {
            index: 1,
            height: 2,
            previous: 0
        })
    );
    // 1000 bytes pad to 4 chunks, not 8.
    let mut too_big = base.clone();
    too_big.nodes = vec![node(3)];
    assert_eq!(
        chain.submit(ALICE, too_big),
        invalid(SubmissionError::SizeMismatch {
            length_bytes: 1000,
            expected_chunks: 4,
            found_chunks: 8
        })
    );
    let mut tagged = base.clone();
    tagged.tags = vec![0; 4097];
    assert_eq!(
        chain.submit(ALICE, tagged),
        invalid(SubmissionError::TagsTooLong {
            bytes: 4097,
            max: 4096
        })
    );
    let mut high = base.clone();
    high.nodes = vec![node(64)];
    assert_eq!(
        chain.submit(ALICE, high),
        invalid(SubmissionError::NodeTooHigh {
            index: 0,
            height: 64
        })
    );
    let mut many = base;
    many.length = 31 * 256;
    many.nodes = vec![node(4), node(3), node(2), node(1), node(0)];
    assert_eq!(
        chain.submit(ALICE, many),
        invalid(SubmissionError::TooManyNodes { count: 5, max: 4 })
    );
    // Refused submissions change nothing.
    assert_eq!(chain.num_submissions(), 1);
    assert_eq!(chain.pending_transactions().len(), 1);
}

#[test]
fn pending_block_has_a_limit() {
    let config = ChainConfig {
        max_transactions_per_block: 2,
        ..ChainConfig::default()
    };
    let mut chain = Chain::new(config);
    let submission = Submission {
        length: 1,
        tags: vec![],
        nodes: vec![node(0)],
    };
    chain.submit(ALICE, submission.clone()).expect("first");
    chain.submit(ALICE, submission.clone()).expect("second");
    assert_eq!(
        chain.submit(ALICE, submission.clone()),
        Err(ChainError::BlockFull { max: 2 })
    );
    chain.seal_block(1);
    assert!(chain.submit(ALICE, submission).is_ok());
}

fn busy_chain() -> Chain {
    let config = ChainConfig {
        max_log_block_range: 5,
        max_logs: 3,
        ..ChainConfig::default()
    };
    let mut chain = Chain::new(config);
    for block in 1..=6u64 {
        for index in 0..block % 3 {
            let data = vec![(block * 10 + index) as u8; 100 + 3000 * block as usize];
            let mut submission = submission_of(&data);
            submission.tags = vec![block as u8, index as u8];
            chain.submit(ALICE, submission).expect("valid");
        }
        chain.seal_block(block * 1000);
    }
    chain
}

/// The Flow `Submit` logs of blocks `from..=to`, as the node's log sync asks for them.
fn submit_logs(chain: &Chain, from: u64, to: u64, max: usize) -> Result<Vec<LogEntry>, ChainError> {
    let filter = LogFilter {
        from_block: from,
        to_block: to,
        addresses: vec![FLOW_ADDRESS],
        topics: vec![Some(vec![H256(Submit::SIGNATURE_HASH.0)])],
    };
    chain.filter_logs(&filter, max)
}

#[test]
fn logs_by_range_with_limits() {
    let chain = busy_chain();
    // Blocks 1..=6 hold 1, 2, 0, 1, 2, 0 submissions.
    let logs = submit_logs(&chain, 1, 2, 10).expect("in range");
    let numbers: Vec<u64> = logs.iter().map(|entry| entry.block_number).collect();
    assert_eq!(numbers, vec![1, 2, 2]);
    let seqs: Vec<u64> = logs
        .iter()
        .map(|entry| {
            let topics: Vec<B256> = entry.log.topics.iter().map(|t| B256::from(t.0)).collect();
            let event = Submit::decode_raw_log(topics, &entry.log.data).expect("a Submit log");
            u64::try_from(event.submissionIndex).expect("small")
        })
        .collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    assert_eq!(submit_logs(&chain, 3, 3, 10).expect("empty block"), vec![]);
    // Past the head reads as the head; a range wholly past it is empty.
    assert_eq!(submit_logs(&chain, 5, 9, 10).expect("clamped").len(), 2);
    assert_eq!(submit_logs(&chain, 100, 101, 10).expect("future"), vec![]);
    assert_eq!(
        submit_logs(&chain, 2, 1, 10),
        Err(ChainError::LogRangeInverted {
            from_block: 2,
            to_block: 1
        })
    );
    assert_eq!(
        submit_logs(&chain, 0, 5, 10),
        Err(ChainError::LogRangeTooLarge {
            from_block: 0,
            to_block: 5,
            max_blocks: 5
        })
    );
    assert_eq!(
        submit_logs(&chain, 1, 2, 2),
        Err(ChainError::TooManyLogs {
            from_block: 1,
            to_block: 2,
            max_logs: 2
        })
    );
    // The configured cap wins over a larger request.
    assert_eq!(
        submit_logs(&chain, 1, 5, 100),
        Err(ChainError::TooManyLogs {
            from_block: 1,
            to_block: 5,
            max_logs: 3
        })
    );
}

#[test]
fn replay_rebuilds_identical_state_through_serde() {
    let chain = busy_chain();
    let json = serde_json::to_string(chain.blocks()).expect("blocks serialize");
    let blocks: Vec<Block> = serde_json::from_str(&json).expect("blocks parse");
    let replayed = Chain::replay(chain.config().clone(), blocks.clone()).expect("replay");
    assert_eq!(replayed.blocks(), chain.blocks());
    assert_eq!(replayed.head().hash(), chain.head().hash());
    assert_eq!(replayed.flow_context(), chain.flow_context());
    assert_eq!(replayed.num_submissions(), chain.num_submissions());
    for seq in 0..chain.num_submissions() {
        assert_eq!(
            replayed.flow_root_by_tx_seq(TxSeq(seq)),
            chain.flow_root_by_tx_seq(TxSeq(seq))
        );
    }

    // A tampered block is refused: its events no longer match re-execution.
    let mut tampered = blocks.clone();
    tampered[2].submit_events[0].start_pos = SectorIndex(1);
    assert!(matches!(
        Chain::replay(chain.config().clone(), tampered),
        Err(ChainError::Replay { number: 2, .. })
    ));
    // So is a header that does not follow from its transactions.
    let mut tampered = blocks.clone();
    tampered[4].header.timestamp_ms += 1;
    assert!(matches!(
        Chain::replay(chain.config().clone(), tampered),
        Err(ChainError::Replay { number: 4, .. })
    ));
    // And a gap in the numbering.
    let mut gap = blocks.clone();
    gap.remove(3);
    assert!(matches!(
        Chain::replay(chain.config().clone(), gap),
        Err(ChainError::Replay { number: 4, .. })
    ));
    // A different configuration has a different genesis.
    let other = ChainConfig {
        genesis_timestamp_ms: 5,
        ..chain.config().clone()
    };
    assert!(matches!(
        Chain::replay(other, blocks),
        Err(ChainError::Replay { number: 0, .. })
    ));
}

#[test]
fn block_json_shape() {
    let mut chain = Chain::new(ChainConfig::default());
    chain
        .submit(
            ALICE,
            Submission {
                length: 1,
                tags: vec![0xab],
                nodes: vec![node(0)],
            },
        )
        .expect("valid");
    let block = chain.seal_block(7).clone();
    let json = serde_json::to_value(&block).expect("serializes");
    assert_eq!(json["header"]["number"], 1);
    assert_eq!(json["header"]["timestampMs"], 7);
    assert_eq!(json["transactions"][0]["kind"], "flowSubmit");
    assert_eq!(
        json["transactions"][0]["sender"],
        format!("0x{}", "a1".repeat(20))
    );
    assert_eq!(json["transactions"][0]["submission"]["tags"], "0xab");
    assert_eq!(json["submitEvents"][0]["submissionIndex"], 0);
}
