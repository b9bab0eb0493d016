//! Where the node learns about files: either the embedded dev chain (chain-lite's state machine
//! plus persistence of its sealed blocks in the node index, replayed at start) or a remote EVM
//! chain tailed over `eth_getLogs` (`remote.rs`), for which the node rebuilds the flow from the
//! Submit events. Both read Flow `Submit` events as Ethereum logs and decode them here.

use crate::index::{FileRecord, Index};
use crate::rpc::RpcError;
use alloy_sol_types::SolEvent;
use chain_lite::abi::flow::Submit;
use chain_lite::{
    Block, Chain, ChainConfig, ChainError, FLOW_ADDRESS, LogEntry, LogFilter, Receipt, Submission,
    TxError,
};
use merkle::file::SubmissionNode;
use merkle::keccak::hash_pair;
use types::{H256, SectorIndex, TxSeq};

/// Chain id of the embedded dev chain (the one Hardhat and the 0G SDKs use for local chains).
pub const DEV_CHAIN_ID: u64 = 31337;

/// Sender recorded for submissions made through `zerog_submit` (no signatures before the
/// Ethereum facade).
const DEV_SENDER: [u8; 20] = [0; 20];
/// Widest block range one log query asks for.
const LOG_QUERY_BLOCKS: u64 = 1000;

/// Meta keys recording which chain a data folder follows, checked at every start.
const META_CHAIN_KIND: &str = "chain_kind";
const META_CHAIN_ID: &str = "chain_id";
const CHAIN_KIND_EMBEDDED: u64 = 1;
const CHAIN_KIND_REMOTE: u64 = 2;
const CHAIN_KIND_VALIDATOR: u64 = 3;

/// Whose chain a data folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderKind {
    /// A `--dev` node's embedded chain.
    Embedded,
    /// A follower of a remote chain (`--chain-rpc`).
    Remote,
    /// A validator's (`zerog validator`).
    Validator,
}

/// Refuses to open a data folder made for another chain: its files, flow and sync progress
/// would be mixed with a different history. A folder without the record is claimed.
pub fn claim_data_folder(index: &Index, kind: FolderKind, chain_id: u64) -> anyhow::Result<()> {
    let kind = match kind {
        FolderKind::Embedded => CHAIN_KIND_EMBEDDED,
        FolderKind::Remote => CHAIN_KIND_REMOTE,
        FolderKind::Validator => CHAIN_KIND_VALIDATOR,
    };
    let describe = |kind: u64, id: u64| match kind {
        CHAIN_KIND_EMBEDDED => format!("the embedded dev chain (chain id {id})"),
        CHAIN_KIND_VALIDATOR => format!("a validator's chain (chain id {id})"),
        _ => format!("a remote chain with chain id {id}"),
    };
    match (index.meta(META_CHAIN_KIND)?, index.meta(META_CHAIN_ID)?) {
        (Some(stored_kind), Some(stored_id)) if (stored_kind, stored_id) != (kind, chain_id) => {
            anyhow::bail!(
                "this data folder follows {}, not {}; use another --data-dir",
                describe(stored_kind, stored_id),
                describe(kind, chain_id)
            )
        }
        (Some(_), Some(_)) => Ok(()),
        _ => {
            index.put_meta(META_CHAIN_KIND, kind)?;
            index.put_meta(META_CHAIN_ID, chain_id)?;
            Ok(())
        }
    }
}

/// The node's view of the chain it follows.
pub enum ChainSource {
    Embedded(Box<EmbeddedChain>),
    Remote(RemoteFlow),
}

impl ChainSource {
    pub fn chain_id(&self) -> u64 {
        match self {
            ChainSource::Embedded(chain) => chain.state().config().chain_id,
            ChainSource::Remote(remote) => remote.chain_id,
        }
    }

    pub fn flow_address(&self) -> [u8; 20] {
        match self {
            ChainSource::Embedded(_) => FLOW_ADDRESS,
            ChainSource::Remote(remote) => remote.flow_address,
        }
    }

    /// The flow as far as this node knows it: the embedded chain's, or the one rebuilt from the
    /// remote chain's final Submit events.
    pub fn flow(&self) -> &merkle::flow::FlowLog {
        match self {
            ChainSource::Embedded(chain) => chain.flow(),
            ChainSource::Remote(remote) => &remote.flow,
        }
    }

    pub fn flow_context(&self) -> (H256, SectorIndex) {
        let flow = self.flow();
        (flow.root(), flow.length())
    }

    /// Latest block known: the embedded head, or the remote chain's last seen final block.
    pub fn head_number(&self) -> u64 {
        match self {
            ChainSource::Embedded(chain) => chain.head_number(),
            ChainSource::Remote(remote) => remote.finalized.map_or(0, |(number, _)| number),
        }
    }

    /// Hash of block `number` where known (the remote side remembers its last final block).
    pub fn block_hash(&self, number: u64) -> Option<H256> {
        match self {
            ChainSource::Embedded(chain) => chain.block_hash(number),
            ChainSource::Remote(remote) => remote
                .finalized
                .filter(|(final_number, _)| *final_number == number)
                .map(|(_, hash)| hash),
        }
    }
}

/// A remote chain's flow as rebuilt from its Submit events, with what the node knows of it.
pub struct RemoteFlow {
    pub chain_id: u64,
    pub flow_address: [u8; 20],
    pub flow: merkle::flow::FlowLog,
    /// Submissions appended so far: the next one's sequence number.
    pub submissions: u64,
    /// The last final block seen: number and hash.
    pub finalized: Option<(u64, H256)>,
}

impl RemoteFlow {
    /// Rebuilds the flow from the files already synced, in submission order.
    pub fn rebuild(
        chain_id: u64,
        flow_address: [u8; 20],
        files: &[FileRecord],
    ) -> anyhow::Result<RemoteFlow> {
        let mut remote = RemoteFlow {
            chain_id,
            flow_address,
            flow: merkle::flow::FlowLog::new(),
            submissions: 0,
            finalized: None,
        };
        let mut ordered: Vec<&FileRecord> = files.iter().collect();
        ordered.sort_by_key(|record| record.tx_seq);
        for record in ordered {
            remote.append(record)?;
        }
        Ok(remote)
    }

    /// Appends a file announced by the chain, checking that it lands where the chain placed it
    /// and that no submission was skipped. A mismatch means the remote Flow contract does not
    /// follow 0G's layout (or logs were lost): nothing this node stores could be proven then.
    pub fn append(&mut self, record: &FileRecord) -> anyhow::Result<()> {
        let expected_seq = self.submissions;
        anyhow::ensure!(
            record.tx_seq.0 == expected_seq,
            "submission {} arrived but {expected_seq} was expected next: the chain's Submit logs have a gap",
            record.tx_seq
        );
        let placement = self
            .flow
            .append(&record.nodes)
            .map_err(|error| anyhow::anyhow!("submission {}: {error}", record.tx_seq))?;
        anyhow::ensure!(
            placement.start == record.start,
            "submission {} starts at sector {} on chain but at {} in the rebuilt flow",
            record.tx_seq,
            record.start.0,
            placement.start.0
        );
        self.submissions += 1;
        Ok(())
    }
}

pub struct EmbeddedChain {
    chain: Chain,
}

/// Decodes a Flow `Submit` log (its topics and data, as `eth_getLogs` returns them) into the
/// file it announces.
pub fn file_from_submit_log(
    topics: &[H256],
    data: &[u8],
    block_number: u64,
) -> Result<FileRecord, ChainError> {
    let topics: Vec<alloy_primitives::B256> = topics
        .iter()
        .map(|topic| alloy_primitives::B256::from(topic.0))
        .collect();
    let event = Submit::decode_raw_log(topics, data).map_err(|error| ChainError::Replay {
        number: block_number,
        reason: format!("undecodable Submit log: {error}"),
    })?;
    let as_u64 = |value: alloy_primitives::U256, what: &str| {
        u64::try_from(value).map_err(|_| ChainError::Replay {
            number: block_number,
            reason: format!("Submit log {what} does not fit 64 bits"),
        })
    };
    let mut nodes = Vec::with_capacity(event.submission.nodes.len());
    for node in &event.submission.nodes {
        nodes.push(SubmissionNode {
            height: as_u64(node.height, "node height")?,
            root: H256(node.root.0),
        });
    }
    let size_bytes = as_u64(event.submission.length, "length")?;
    if size_bytes == 0 || size_bytes > chain_lite::MAX_SUBMISSION_BYTES {
        // A remote chain is not trusted to have checked what chain-lite checks.
        return Err(ChainError::Replay {
            number: block_number,
            reason: format!(
                "a Submit log announces {size_bytes} bytes; a file holds 1 to {} bytes",
                chain_lite::MAX_SUBMISSION_BYTES
            ),
        });
    }
    Ok(FileRecord {
        tx_seq: TxSeq(as_u64(event.submissionIndex, "submissionIndex")?),
        root: root_from_nodes(&nodes),
        size_bytes,
        start: SectorIndex(as_u64(event.startPos, "startPos")?),
        nodes,
        block_number,
        finalized: false,
    })
}

/// The file root from submission nodes: the last node's root, folded right to left.
pub fn root_from_nodes(nodes: &[SubmissionNode]) -> H256 {
    let mut nodes = nodes.iter().rev();
    let Some(last) = nodes.next() else {
        return H256::ZERO;
    };
    nodes.fold(last.root, |right, node| hash_pair(&node.root, &right))
}

impl EmbeddedChain {
    /// Replays persisted blocks; on a new node, seals and persists genesis.
    pub fn open(index: &Index, encoded_blocks: &[Vec<u8>]) -> anyhow::Result<EmbeddedChain> {
        let config = ChainConfig {
            chain_id: DEV_CHAIN_ID,
            ..ChainConfig::default()
        };
        if encoded_blocks.is_empty() {
            let chain = Chain::new(config);
            index.put_block(0, &serde_json::to_vec(chain.head())?)?;
            return Ok(EmbeddedChain { chain });
        }
        let blocks = encoded_blocks
            .iter()
            .enumerate()
            .map(|(number, bytes)| {
                serde_json::from_slice::<Block>(bytes)
                    .map_err(|error| anyhow::anyhow!("stored block {number} is corrupt: {error}"))
            })
            .collect::<anyhow::Result<Vec<Block>>>()?;
        Ok(EmbeddedChain {
            chain: Chain::replay(config, blocks)?,
        })
    }

    pub fn head_number(&self) -> u64 {
        self.chain.head().number()
    }

    pub fn finalized_number(&self) -> u64 {
        self.chain.finalized().number()
    }

    pub fn block_hash(&self, number: u64) -> Option<H256> {
        self.chain.block(number).map(Block::hash)
    }

    pub fn flow(&self) -> &merkle::flow::FlowLog {
        self.chain.flow()
    }

    /// The state machine, for the read-only views of the Ethereum facade.
    pub fn state(&self) -> &Chain {
        &self.chain
    }

    /// Executes a signed transaction into the pending block. A revert is a receipt with status
    /// 0, not an error. The block producer seals and persists the pending block soon after.
    pub fn execute_raw(&mut self, raw: &[u8]) -> Result<Receipt, TxError> {
        self.chain.send_raw_transaction(raw)
    }

    /// Seals and persists the pending block if it holds any transaction; its number.
    pub fn seal_pending(&mut self, index: &Index) -> Option<u64> {
        if self.chain.pending_transactions().is_empty() {
            return None;
        }
        Some(self.seal_and_persist(index))
    }

    fn seal_and_persist(&mut self, index: &Index) -> u64 {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or(0);
        let block = self.chain.seal_block(now_ms);
        let encoded = serde_json::to_vec(block).expect("a block always serializes");
        if let Err(error) = index.put_block(block.number(), &encoded) {
            // The in-memory chain is now ahead of the disk; continuing would announce files a
            // restart forgets. Stop before anything else depends on it.
            tracing::error!(%error, "cannot persist a sealed block; stopping");
            std::process::exit(70);
        }
        block.number()
    }

    /// Files announced by Submit events of final blocks from `from_block` on (at most about
    /// `max_logs`), and the next block to read. The events are read as Ethereum logs of the
    /// Flow address, exactly what `eth_getLogs` returns, and decoded with the contract's ABI:
    /// tailing a remote chain is this code with an RPC client in place of `filter_logs`.
    pub fn submissions_since(
        &self,
        from_block: u64,
        max_logs: usize,
    ) -> Result<(Vec<FileRecord>, u64), ChainError> {
        let finalized = self.finalized_number();
        if from_block > finalized {
            return Ok((Vec::new(), from_block));
        }
        let mut to_block = finalized.min(from_block + LOG_QUERY_BLOCKS - 1);
        let submit_topic = H256(Submit::SIGNATURE_HASH.0);
        let logs = loop {
            let filter = LogFilter {
                from_block,
                to_block,
                addresses: vec![FLOW_ADDRESS],
                topics: vec![Some(vec![submit_topic])],
            };
            match self.chain.filter_logs(&filter, max_logs) {
                Ok(logs) => break logs,
                Err(ChainError::TooManyLogs { .. }) if to_block > from_block => {
                    to_block = from_block + (to_block - from_block) / 2;
                }
                // One block holds more Submit logs than a query may return (batchSubmit makes
                // that possible): read that block whole, or the sync would stop here forever.
                Err(ChainError::TooManyLogs { .. }) => break self.block_logs(from_block, &filter),
                Err(error) => return Err(error),
            }
        };
        let files = logs
            .iter()
            .map(|entry| {
                file_from_submit_log(&entry.log.topics, &entry.log.data, entry.block_number)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((files, to_block + 1))
    }

    /// Every log of block `number` that `filter` matches, without the per-query limit.
    fn block_logs(&self, number: u64, filter: &LogFilter) -> Vec<LogEntry> {
        let Some(block) = self.chain.block(number) else {
            return Vec::new();
        };
        let mut entries = Vec::new();
        for receipt in &block.receipts {
            for log in receipt.logs.iter().filter(|log| filter.matches(log)) {
                entries.push(LogEntry {
                    log: log.clone(),
                    block_number: number,
                    block_hash: block.hash(),
                    transaction_hash: receipt.transaction_hash,
                    transaction_index: receipt.transaction_index,
                    log_index: entries.len() as u64,
                });
            }
        }
        entries
    }

    /// Executes a submission, seals it into a block and persists the block before answering.
    pub fn submit_and_seal(
        &mut self,
        index: &Index,
        submission: Submission,
    ) -> Result<(TxSeq, SectorIndex, u64), RpcError> {
        let receipt = self.chain.submit(DEV_SENDER, submission).map_err(|error| {
            RpcError::invalid_params("bad_submission", format!("submission refused: {error}"))
        })?;
        let block = self.seal_and_persist(index);
        Ok((receipt.tx_seq, receipt.start, block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_folder_keeps_the_kind_of_chain_it_was_claimed_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::open(&dir.path().join("node.redb")).expect("index");
        claim_data_folder(&index, FolderKind::Embedded, DEV_CHAIN_ID).expect("claimed");
        claim_data_folder(&index, FolderKind::Embedded, DEV_CHAIN_ID).expect("same kind");
        let error = claim_data_folder(&index, FolderKind::Validator, DEV_CHAIN_ID)
            .expect_err("a dev folder is not a validator's");
        assert!(error.to_string().contains("embedded dev chain"), "{error}");
    }

    #[test]
    fn root_from_nodes_matches_the_file_tree() {
        for size in [1usize, 4096, 300 * 1024, 5 * 256 * 1024 + 7] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
            let tree = merkle::file::FileTree::from_bytes(&data).expect("tree");
            assert_eq!(root_from_nodes(&tree.nodes()), tree.root(), "size {size}");
        }
    }
}
