//! The chain state machine: accounts, execution, pending block, sealing, views and replay.
//!
//! A transaction executes when it is submitted (so the caller gets its receipt, with the tx
//! sequence number and flow position, at once) and joins the pending block; `seal_block` turns
//! the pending block into a final one. Views answer for the executed state, which includes the
//! pending block; the node seals right after submitting, so the two differ only in between.
//! Lookups by transaction hash and logs answer for sealed blocks only, as Ethereum nodes do.
//!
//! Gas and fees: a fixed price per gas (`ChainConfig::gas_price`, also the base fee) and a
//! fixed schedule: 21 000 per transaction, Ethereum's calldata and access-list costs, plus
//! `MODULE_CALL_GAS` for a call into a module. A transaction pays gas used × effective price;
//! the gas fee is burned (one validator, no one to pay it to). Every refusal below happens
//! before any state changes; a revert costs its gas and bumps the nonce and nothing else.

use crate::block::{Block, BlockHeader, HEADER_V2, HEADER_VERSION, Transaction, transactions_root};
use crate::epoch::{
    EpochInputs, EpochRange, EpochStep, Epochs, MAX_EPOCHS_PER_CALL, MineContext, plan_steps,
};
use crate::hex_serde;
use crate::modules::{
    CallFailure, MODULE_CALL_GAS, MarketTotals, REWARD_ADDRESS, Revert, RewardPool, is_module,
    submit_log,
};
use crate::ordered::Prechecked;
use crate::receipt::{LogEntry, LogFilter, Receipt, receipts_root};
use crate::submission::{Address, Submission, SubmissionError, SubmitEvent};
use crate::tx::{SignedTransaction, TX_BASE_GAS, TxError, calldata_gas, decode_transaction};
use alloy_primitives::U256;
use merkle::flow::{FlowError, FlowLog};
use merkle::keccak::keccak256;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use types::{H256, SectorIndex, TxSeq};

/// A funded account at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisAccount {
    #[serde(with = "hex_serde::address")]
    pub address: Address,
    #[serde(with = "hex_serde::u256")]
    pub balance: U256,
}

/// A well-known development key: these are the first accounts of Hardhat and Anvil, which
/// every Ethereum developer's tooling already knows. Never fund them on a shared network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevAccount {
    /// 32-byte secp256k1 key, 0x-hex.
    pub private_key: &'static str,
    pub address: Address,
}

/// The dev accounts `ChainConfig::default()` funds (`tests/accounts.rs` derives each address
/// from its key).
pub const DEV_ACCOUNTS: [DevAccount; 3] = [
    DevAccount {
        private_key: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        address: alloy_primitives::address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
            .0
            .0,
    },
    DevAccount {
        private_key: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        address: alloy_primitives::address!("70997970C51812dc3A010C7d01b50e0d17dc79C8")
            .0
            .0,
    },
    DevAccount {
        private_key: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        address: alloy_primitives::address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
            .0
            .0,
    },
];

/// Balance of each dev account at genesis: one million ether.
pub const DEV_BALANCE_WEI: U256 = alloy_primitives::uint!(1_000_000_000_000_000_000_000_000_U256);

/// Fixed parameters of a chain. Part of what replay must be given identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainConfig {
    pub chain_id: u64,
    pub genesis_timestamp_ms: u64,
    /// Most nodes in one submission (0G's SDKs send at most 4).
    pub max_nodes_per_submission: usize,
    pub max_tags_bytes: usize,
    pub max_transactions_per_block: usize,
    /// Widest block range one `logs` query may cover.
    pub max_log_block_range: u64,
    /// Most events one `logs` query may return, whatever the caller asks.
    pub max_logs: usize,
    /// Balances at genesis (repeated addresses add up).
    pub genesis_accounts: Vec<GenesisAccount>,
    /// Wei per gas: the base fee, and what `eth_gasPrice` answers.
    pub gas_price: u128,
    /// Storage price in wei per 256-byte sector (`Market.pricePerSector`).
    #[serde(with = "hex_serde::u256")]
    pub price_per_sector: U256,
    /// Largest calldata a transaction may carry.
    pub max_calldata_bytes: usize,
    /// `Flow.blocksPerEpoch`: blocks per mining epoch (0 disables epochs; see `epoch`).
    pub blocks_per_epoch: u64,
    /// Seconds over which a reward pool releases its total.
    pub reward_release_seconds: u64,
    /// Who may claim rewards until the Mine module decides it.
    #[serde(with = "address_list")]
    pub reward_claimers: Vec<Address>,
    /// Blocks per DA epoch (quorums are re-dealt each epoch; see `da`).
    pub da_blocks_per_epoch: u64,
    /// Quorums per DA epoch.
    pub da_quorums: u32,
    /// Slots per DA quorum.
    pub da_quorum_slots: u32,
    /// Least stake a DA signer registers with.
    #[serde(with = "hex_serde::u256")]
    pub da_min_stake: U256,
    /// Fee per certified blob.
    #[serde(with = "hex_serde::u256")]
    pub da_blob_fee: U256,
    /// How many epochs back a certificate's epoch may be.
    pub da_certificate_window_epochs: u64,
    /// Least stake a storage node registers with.
    #[serde(with = "hex_serde::u256", default = "default_storage_min_stake")]
    pub storage_min_stake: U256,
}

fn default_storage_min_stake() -> U256 {
    U256::from(10u64).pow(U256::from(18u64))
}

/// Largest calldata accepted by default: 128 KiB (a `batchSubmit` of hundreds of files).
pub const DEFAULT_MAX_CALLDATA_BYTES: usize = 128 * 1024;
/// Default gas price: 1 gwei.
pub const DEFAULT_GAS_PRICE: u128 = 1_000_000_000;
/// Default storage price: 1 gwei per sector (about 0.004 ether per GiB).
pub const DEFAULT_PRICE_PER_SECTOR: u64 = 1_000_000_000;

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            // 0G's Galileo testnet id; zerog's own chain may pick another.
            chain_id: 16_601,
            genesis_timestamp_ms: 0,
            max_nodes_per_submission: 4,
            max_tags_bytes: 4096,
            max_transactions_per_block: 10_000,
            max_log_block_range: 10_000,
            max_logs: 10_000,
            genesis_accounts: DEV_ACCOUNTS
                .iter()
                .map(|account| GenesisAccount {
                    address: account.address,
                    balance: DEV_BALANCE_WEI,
                })
                .collect(),
            gas_price: DEFAULT_GAS_PRICE,
            price_per_sector: U256::from(DEFAULT_PRICE_PER_SECTOR),
            max_calldata_bytes: DEFAULT_MAX_CALLDATA_BYTES,
            blocks_per_epoch: 1_200,
            // 0G releases a pricing chunk's reward over about a year.
            reward_release_seconds: 365 * 24 * 3600,
            reward_claimers: vec![DEV_ACCOUNTS[0].address],
            // One block per epoch: a signer serves from the block after it registered, and a
            // dev chain that seals blocks only for transactions still moves through epochs.
            da_blocks_per_epoch: 1,
            da_quorums: 1,
            da_quorum_slots: 12,
            da_min_stake: U256::from(10u64).pow(U256::from(18u64)),
            da_blob_fee: U256::from(10u64).pow(U256::from(15u64)),
            da_certificate_window_epochs: 256,
            storage_min_stake: default_storage_min_stake(),
        }
    }
}

mod address_list {
    use crate::submission::Address;
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(list: &[Address], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(list.len()))?;
        for address in list {
            seq.serialize_element(&format!("0x{}", hex::encode(address)))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Address>, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|text| {
                let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text))
                    .map_err(serde::de::Error::custom)?;
                <[u8; 20]>::try_from(bytes.as_slice())
                    .map_err(|_| serde::de::Error::custom("an address is 20 bytes"))
            })
            .collect()
    }
}

/// Why `estimate_gas` has no answer: the call reverts, or the sender cannot pay the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    #[error("insufficient funds for transfer: {from} has {balance} wei, cannot send {value} wei")]
    InsufficientFunds {
        from: String,
        balance: U256,
        value: U256,
    },
    #[error(transparent)]
    Reverted(#[from] Revert),
}

/// What a Flow submission produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitReceipt {
    pub tx_seq: TxSeq,
    /// First sector of the file in the flow.
    pub start: SectorIndex,
    /// Sectors occupied (sum of 2^height).
    pub length: u64,
    /// Zero sectors inserted before `start`.
    pub padding_before: u64,
    pub identity: H256,
    /// Flow root right after this submission (`getFlowRootByTxSeq`).
    pub flow_root: H256,
    /// The block the submission is in (the pending one until sealed).
    pub block_number: u64,
    pub transaction_hash: H256,
}

/// Why the chain refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("invalid submission: {source}")]
    InvalidSubmission {
        #[source]
        source: SubmissionError,
    },
    #[error("the flow refused the submission: {source}")]
    Flow {
        #[source]
        source: FlowError,
    },
    #[error("the pending block already holds {max} transactions")]
    BlockFull { max: usize },
    #[error("log range {from_block}..={to_block} is inverted")]
    LogRangeInverted { from_block: u64, to_block: u64 },
    #[error("log range {from_block}..={to_block} spans more than {max_blocks} blocks")]
    LogRangeTooLarge {
        from_block: u64,
        to_block: u64,
        max_blocks: u64,
    },
    #[error(
        "more than {max_logs} logs in blocks {from_block}..={to_block}; query a narrower range"
    )]
    TooManyLogs {
        from_block: u64,
        to_block: u64,
        max_logs: usize,
    },
    #[error(
        "the pending block holds {transactions} transactions: an ordered block executes on its own"
    )]
    PendingNotEmpty { transactions: usize },
    #[error("replay: block {number}: {reason}")]
    Replay { number: u64, reason: String },
}

/// An account's balance and next nonce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub balance: U256,
    pub nonce: u64,
}

/// A sealed transaction where it sits, with its receipt.
#[derive(Clone, Copy, Debug)]
pub struct TransactionLookup<'a> {
    pub block: &'a Block,
    pub index: usize,
    pub transaction: &'a Transaction,
    pub receipt: &'a Receipt,
}

/// The chain: sealed blocks, the pending block, accounts and module state.
#[derive(Clone, Debug)]
pub struct Chain {
    config: ChainConfig,
    blocks: Vec<Block>,
    pending_transactions: Vec<Transaction>,
    pending_receipts: Vec<Receipt>,
    pending_events: Vec<SubmitEvent>,
    pub(crate) flow: FlowLog,
    /// `rootByTxSeq`: the flow root right after each submission.
    pub(crate) flow_roots: Vec<H256>,
    /// Ordered, so the accounts root is a plain fold.
    pub(crate) accounts: BTreeMap<Address, Account>,
    pub(crate) rewards: BTreeMap<u64, RewardPool>,
    pub(crate) market: MarketTotals,
    /// Flow epochs and the mining context.
    pub(crate) epochs: Epochs,
    /// DA signers and certified blobs.
    pub(crate) da: crate::da::DaState,
    /// Registered storage nodes.
    pub(crate) storage: crate::storage::StorageRegistryState,
    /// Transaction hash → (block number, index), pending included (for replay protection).
    transactions_by_hash: HashMap<H256, (u64, usize)>,
    blocks_by_hash: HashMap<H256, u64>,
}

impl Chain {
    /// A chain with its genesis block (number 0, no transactions) sealed.
    pub fn new(config: ChainConfig) -> Chain {
        Chain::with_genesis_version(config, HEADER_VERSION)
    }

    /// A chain whose genesis header has `version` (replay of a data folder sealed at v2).
    fn with_genesis_version(config: ChainConfig, version: u8) -> Chain {
        let flow = FlowLog::new();
        let epochs = Epochs::new(flow.root(), flow.length().0);
        let mut accounts: BTreeMap<Address, Account> = BTreeMap::new();
        for genesis in &config.genesis_accounts {
            let account = accounts.entry(genesis.address).or_default();
            account.balance = account.balance.saturating_add(genesis.balance);
        }
        let header = BlockHeader {
            version,
            number: 0,
            parent_hash: H256::ZERO,
            timestamp_ms: config.genesis_timestamp_ms,
            transactions_root: transactions_root(&[]),
            flow_root: flow.root(),
            flow_length: flow.length().0,
            num_submissions: 0,
            receipts_root: receipts_root(&[]),
            accounts_root: accounts_root(&accounts),
            gas_used: 0,
            state_root: H256::ZERO,
            consensus_digest: H256::ZERO,
            hash: H256::ZERO,
        };
        let genesis = Block {
            header,
            transactions: Vec::new(),
            receipts: Vec::new(),
            submit_events: Vec::new(),
        };
        let mut chain = Chain {
            config,
            blocks: vec![genesis],
            pending_transactions: Vec::new(),
            pending_receipts: Vec::new(),
            pending_events: Vec::new(),
            flow,
            flow_roots: Vec::new(),
            accounts,
            rewards: BTreeMap::new(),
            market: MarketTotals::default(),
            epochs,
            da: crate::da::DaState::default(),
            storage: crate::storage::StorageRegistryState::default(),
            transactions_by_hash: HashMap::new(),
            blocks_by_hash: HashMap::new(),
        };
        let state_root = chain.state_root();
        let header = &mut chain.blocks[0].header;
        if version >= HEADER_VERSION {
            header.state_root = state_root;
        }
        header.hash = header.compute_hash();
        chain.blocks_by_hash.insert(header.hash, 0);
        chain
    }

    /// Rebuilds a chain from its sealed blocks (genesis first), re-executing every transaction
    /// and checking each block's header, receipts and events against what execution produces.
    pub fn replay(config: ChainConfig, blocks: Vec<Block>) -> Result<Chain, ChainError> {
        let mut blocks = blocks.into_iter();
        let genesis = blocks.next().ok_or(ChainError::Replay {
            number: 0,
            reason: "no genesis block".to_string(),
        })?;
        check_version(&genesis)?;
        let mut chain = Chain::with_genesis_version(config, genesis.header.version);
        if genesis != chain.blocks[0] {
            return Err(ChainError::Replay {
                number: 0,
                reason: "genesis differs from this configuration's".to_string(),
            });
        }
        for stored in blocks {
            let number = stored.header.number;
            let mismatch = |reason: &str| ChainError::Replay {
                number,
                reason: reason.to_string(),
            };
            if number != chain.head().number() + 1 {
                return Err(mismatch("block numbers are not consecutive"));
            }
            check_version(&stored)?;
            for transaction in &stored.transactions {
                let refused = |error: &dyn std::fmt::Display| ChainError::Replay {
                    number,
                    reason: format!("transaction refused: {error}"),
                };
                match transaction {
                    Transaction::FlowSubmit { sender, submission } => {
                        chain
                            .submit(*sender, submission.clone())
                            .map_err(|error| refused(&error))?;
                    }
                    Transaction::Signed { raw } => {
                        chain
                            .send_raw_transaction(raw)
                            .map_err(|error| refused(&error))?;
                    }
                }
            }
            let sealed = chain.seal(
                stored.header.timestamp_ms,
                stored.header.version,
                stored.header.consensus_digest,
            );
            if sealed.header.timestamp_ms != stored.header.timestamp_ms {
                return Err(mismatch("timestamp goes backwards"));
            }
            if sealed.submit_events != stored.submit_events {
                return Err(mismatch("events differ from re-execution"));
            }
            if sealed.receipts != stored.receipts {
                return Err(mismatch("receipts differ from re-execution"));
            }
            if sealed.header != stored.header {
                return Err(mismatch("header differs from re-execution"));
            }
        }
        Ok(chain)
    }

    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    fn check_block_space(&self) -> Result<(), ChainError> {
        if self.pending_transactions.len() >= self.config.max_transactions_per_block {
            return Err(ChainError::BlockFull {
                max: self.config.max_transactions_per_block,
            });
        }
        Ok(())
    }

    /// Validates and executes an unsigned dev Flow submission into the pending block: no fee,
    /// no gas, no nonce (`zerog_submit`). Its receipt carries the same `Submit` log a signed
    /// `submit` would.
    pub fn submit(
        &mut self,
        sender: Address,
        submission: Submission,
    ) -> Result<SubmitReceipt, ChainError> {
        self.check_block_space()?;
        submission
            .validate(
                self.config.max_nodes_per_submission,
                self.config.max_tags_bytes,
            )
            .map_err(|source| ChainError::InvalidSubmission { source })?;
        let transaction = Transaction::FlowSubmit {
            sender,
            submission: submission.clone(),
        };
        let before = self.flow.length().0;
        // As the contract's `submit`: `makeContext` first, then the insert.
        let steps = self.plan_epochs(MAX_EPOCHS_PER_CALL);
        let event = self
            .append_submission(sender, submission)
            .map_err(|source| ChainError::Flow { source })?;
        let mut logs = self.apply_epochs(sender, steps);
        logs.push(submit_log(&event));
        let transaction_hash = transaction.hash();
        let receipt = SubmitReceipt {
            tx_seq: event.submission_index,
            start: event.start_pos,
            length: event.length,
            padding_before: event.start_pos.0 - before,
            identity: event.identity,
            flow_root: self.flow.root(),
            block_number: self.head().number() + 1,
            transaction_hash,
        };
        self.push_pending(
            transaction,
            sender,
            crate::modules::FLOW_ADDRESS,
            true,
            0,
            0,
            logs,
            Vec::new(),
        );
        Ok(receipt)
    }

    /// The epochs `makeContext` would start in the block being built, at most `limit`.
    pub(crate) fn plan_epochs(&self, limit: u64) -> Vec<EpochStep> {
        let inputs = EpochInputs {
            blocks_per_epoch: self.config.blocks_per_epoch,
            block_number: self.head().number() + 1,
            blocks: &self.blocks,
            flow_root: self.flow.root(),
            flow_length: self.flow.length().0,
            submission_index: self.num_submissions(),
        };
        plan_steps(&self.epochs, &inputs, limit)
    }

    /// Starts planned epochs; returns their `NewEpoch` logs.
    pub(crate) fn apply_epochs(
        &mut self,
        sender: Address,
        steps: Vec<EpochStep>,
    ) -> Vec<crate::receipt::Log> {
        steps
            .into_iter()
            .map(|step| self.epochs.apply(sender, step))
            .collect()
    }

    /// Appends a checked submission to the flow and records its root and `Submit` event.
    pub(crate) fn append_submission(
        &mut self,
        sender: Address,
        submission: Submission,
    ) -> Result<SubmitEvent, FlowError> {
        let placement = self.flow.append(&submission.nodes)?;
        let tx_seq = TxSeq(self.flow_roots.len() as u64);
        self.flow_roots.push(self.flow.root());
        let event = SubmitEvent {
            sender,
            identity: submission.digest(),
            submission_index: tx_seq,
            start_pos: placement.start,
            length: placement.end.0 - placement.start.0,
            submission,
        };
        self.pending_events.push(event.clone());
        Ok(event)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_pending(
        &mut self,
        transaction: Transaction,
        from: Address,
        to: Address,
        status: bool,
        gas_used: u64,
        effective_gas_price: u128,
        logs: Vec<crate::receipt::Log>,
        revert_data: Vec<u8>,
    ) -> Receipt {
        let index = self.pending_transactions.len();
        let block_number = self.head().number() + 1;
        let cumulative_gas_used = self
            .pending_receipts
            .last()
            .map_or(0, |last| last.cumulative_gas_used)
            + gas_used;
        let transaction_hash = transaction.hash();
        let receipt = Receipt {
            transaction_hash,
            transaction_index: index as u64,
            block_number,
            from,
            to,
            status,
            gas_used,
            cumulative_gas_used,
            effective_gas_price,
            logs,
            revert_data,
        };
        // The first of identical unsigned submissions keeps the hash (they share it).
        self.transactions_by_hash
            .entry(transaction_hash)
            .or_insert((block_number, index));
        self.pending_transactions.push(transaction);
        self.pending_receipts.push(receipt.clone());
        receipt
    }

    /// Decodes a raw signed transaction with this chain's parameters (no state checks).
    pub fn decode_transaction(&self, raw: &[u8]) -> Result<SignedTransaction, TxError> {
        decode_transaction(
            raw,
            self.config.chain_id,
            self.config.gas_price,
            self.config.max_calldata_bytes,
        )
    }

    /// `eth_sendRawTransaction`: checks and executes a signed transaction into the pending
    /// block. `Err` means refused with nothing changed; `Ok` carries the receipt, which may be
    /// a revert (status 0: gas charged, nonce bumped, nothing else).
    pub fn send_raw_transaction(&mut self, raw: &[u8]) -> Result<Receipt, TxError> {
        self.check_space_for_signed()?;
        let tx = self.decode_transaction(raw)?;
        self.execute_checked(Prechecked {
            raw: raw.to_vec(),
            tx,
        })
    }

    fn check_space_for_signed(&self) -> Result<(), TxError> {
        if self.pending_transactions.len() >= self.config.max_transactions_per_block {
            return Err(TxError::BlockFull {
                max: self.config.max_transactions_per_block,
            });
        }
        Ok(())
    }

    /// Executes a transaction that passed the stateless checks into the pending block: the
    /// checks that need state (replay, nonce, balance, calldata a module can decode), then the
    /// call. `Err` means refused with nothing changed.
    pub(crate) fn execute_checked(&mut self, prechecked: Prechecked) -> Result<Receipt, TxError> {
        self.check_space_for_signed()?;
        let Prechecked { raw, tx } = prechecked;
        if self.transactions_by_hash.contains_key(&tx.hash) {
            return Err(TxError::AlreadyKnown { hash: tx.hash });
        }
        let account = self.account(&tx.from);
        if tx.nonce < account.nonce {
            return Err(TxError::NonceTooLow {
                expected: account.nonce,
                got: tx.nonce,
            });
        }
        if tx.nonce > account.nonce {
            return Err(TxError::NonceTooHigh {
                expected: account.nonce,
                got: tx.nonce,
            });
        }
        if tx.gas_limit < tx.intrinsic_gas {
            return Err(TxError::IntrinsicGasTooLow {
                gas_limit: tx.gas_limit,
                required: tx.intrinsic_gas,
            });
        }
        let price = U256::from(tx.effective_gas_price);
        let required = tx
            .value
            .saturating_add(U256::from(tx.gas_limit).saturating_mul(price));
        if account.balance < required {
            return Err(TxError::InsufficientFunds {
                address: tx.from,
                balance: account.balance,
                required,
            });
        }
        let needed = tx.intrinsic_gas
            + if is_module(&tx.to) {
                MODULE_CALL_GAS
            } else {
                0
            };
        let planned = self.plan(tx.from, tx.to, &tx.input, tx.value);
        // Calldata a module cannot decode is refused like bad RLP: nothing executes.
        if let Err(CallFailure::BadAbi(reason)) = &planned {
            return Err(TxError::MalformedCalldata {
                reason: reason.clone(),
            });
        }
        let (status, gas_used, logs, revert_data) = if tx.gas_limit < needed {
            let revert = Revert::new(format!(
                "out of gas: the call needs {needed}, the gas limit is {}",
                tx.gas_limit
            ));
            (false, tx.gas_limit, Vec::new(), revert.data)
        } else {
            match planned {
                Ok(outcome) => (
                    true,
                    needed,
                    self.apply(tx.from, outcome.effect),
                    Vec::new(),
                ),
                Err(CallFailure::Revert(revert)) => (false, needed, Vec::new(), revert.data),
                // Handled above.
                Err(CallFailure::BadAbi(_)) => (false, needed, Vec::new(), Vec::new()),
            }
        };
        // The gas fee is burned (see the module header); balance covers it (checked above).
        let account = self.accounts.entry(tx.from).or_default();
        account.balance -= U256::from(gas_used) * price;
        account.nonce += 1;
        Ok(self.push_pending(
            Transaction::Signed { raw },
            tx.from,
            tx.to,
            status,
            gas_used,
            tx.effective_gas_price,
            logs,
            revert_data,
        ))
    }

    /// `eth_call`: runs a call against the executed state and changes nothing. Calldata that
    /// does not decode reverts here (there is no transaction to refuse).
    pub fn call(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        value: U256,
    ) -> Result<Vec<u8>, Revert> {
        match self.plan(from, to, data, value) {
            Ok(outcome) => Ok(outcome.output),
            Err(CallFailure::Revert(revert)) => Err(revert),
            Err(CallFailure::BadAbi(reason)) => Err(Revert::new(reason)),
        }
    }

    /// `eth_estimateGas`: the gas the call would use (exact: the schedule is fixed), or why it
    /// would revert. Contract creation (`to` = None) is refused.
    pub fn estimate_gas(
        &self,
        from: Address,
        to: Option<Address>,
        data: &[u8],
        value: U256,
    ) -> Result<u64, EstimateError> {
        let to = to.ok_or_else(|| {
            Revert::new("contract creation is not supported: chain-lite has no EVM")
        })?;
        let balance = self.balance(&from);
        if value > balance {
            // Not a revert: the transaction could never be included, as geth reports it.
            return Err(EstimateError::InsufficientFunds {
                from: format!("0x{}", hex::encode(from)),
                balance,
                value,
            });
        }
        self.call(from, to, data, value)?;
        let module = if is_module(&to) { MODULE_CALL_GAS } else { 0 };
        Ok(TX_BASE_GAS + calldata_gas(data) + module)
    }

    /// Wei per gas (`eth_gasPrice`; also the base fee of every block).
    pub fn gas_price(&self) -> u128 {
        self.config.gas_price
    }

    /// Balance after the executed transactions (pending included).
    pub fn balance(&self, address: &Address) -> U256 {
        self.accounts
            .get(address)
            .map_or(U256::ZERO, |account| account.balance)
    }

    /// The next nonce `address` must use (pending included: `eth_getTransactionCount` for
    /// both `latest` and `pending` while blocks are sealed at once).
    pub fn nonce(&self, address: &Address) -> u64 {
        self.accounts
            .get(address)
            .map_or(0, |account| account.nonce)
    }

    pub fn account(&self, address: &Address) -> Account {
        self.accounts.get(address).cloned().unwrap_or_default()
    }

    /// Every account with a balance or nonce, in address order.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    pub(crate) fn move_value(&mut self, from: Address, to: Address, value: U256) {
        if value.is_zero() || from == to {
            return;
        }
        // Callers checked the balance; saturating keeps a bug from minting money.
        let source = self.accounts.entry(from).or_default();
        let moved = value.min(source.balance);
        source.balance -= moved;
        let target = self.accounts.entry(to).or_default();
        target.balance = target.balance.saturating_add(moved);
    }

    /// Reward pool of pricing chunk `index` (8 GiB of flow), if any fee reached it.
    pub fn reward_pool(&self, index: u64) -> Option<&RewardPool> {
        self.rewards.get(&index)
    }

    /// The Reward module's balance: fees credited and not yet claimed.
    pub fn reward_balance(&self) -> U256 {
        self.balance(&REWARD_ADDRESS)
    }

    /// Fees recorded by the market, split between padding and upload sectors.
    pub fn market_totals(&self) -> &MarketTotals {
        &self.market
    }

    /// Block time modules see: the last sealed block's, in seconds (the pending block has no
    /// timestamp until it is sealed).
    pub(crate) fn now_seconds(&self) -> u64 {
        self.head().timestamp_ms() / 1000
    }

    /// Seals the pending block (possibly empty). Timestamps never go backwards: an earlier
    /// `timestamp_ms` than the parent's is raised to the parent's.
    pub fn seal_block(&mut self, timestamp_ms: u64) -> &Block {
        self.seal(timestamp_ms, HEADER_VERSION, H256::ZERO)
    }

    /// Seals the pending block with a header of `version` that names `consensus_digest`.
    pub(crate) fn seal(
        &mut self,
        timestamp_ms: u64,
        version: u8,
        consensus_digest: H256,
    ) -> &Block {
        let accounts_root = accounts_root(&self.accounts);
        let state_root = if version >= HEADER_VERSION {
            self.state_root_with(accounts_root)
        } else {
            H256::ZERO
        };
        let parent = &self.blocks[self.blocks.len() - 1].header;
        let transactions = std::mem::take(&mut self.pending_transactions);
        let receipts = std::mem::take(&mut self.pending_receipts);
        let mut header = BlockHeader {
            version,
            number: parent.number + 1,
            parent_hash: parent.hash,
            timestamp_ms: timestamp_ms.max(parent.timestamp_ms),
            transactions_root: transactions_root(&transactions),
            flow_root: self.flow.root(),
            flow_length: self.flow.length().0,
            num_submissions: self.flow_roots.len() as u64,
            receipts_root: receipts_root(&receipts),
            accounts_root,
            gas_used: receipts.last().map_or(0, |last| last.cumulative_gas_used),
            state_root,
            consensus_digest,
            hash: H256::ZERO,
        };
        header.hash = header.compute_hash();
        let submit_events = std::mem::take(&mut self.pending_events);
        self.blocks_by_hash.insert(header.hash, header.number);
        self.blocks.push(Block {
            header,
            transactions,
            receipts,
            submit_events,
        });
        &self.blocks[self.blocks.len() - 1]
    }

    /// The latest sealed block.
    pub fn head(&self) -> &Block {
        &self.blocks[self.blocks.len() - 1]
    }

    /// The latest final block: with one validator, every sealed block is final.
    pub fn finalized(&self) -> &Block {
        self.head()
    }

    pub fn block(&self, number: u64) -> Option<&Block> {
        usize::try_from(number)
            .ok()
            .and_then(|index| self.blocks.get(index))
    }

    pub fn block_by_hash(&self, hash: &H256) -> Option<&Block> {
        self.blocks_by_hash
            .get(hash)
            .and_then(|number| self.block(*number))
    }

    /// A sealed transaction by hash, with its block and receipt (`eth_getTransactionByHash`,
    /// `eth_getTransactionReceipt`). Pending transactions are not found until sealed.
    pub fn transaction_by_hash(&self, hash: &H256) -> Option<TransactionLookup<'_>> {
        let (number, index) = *self.transactions_by_hash.get(hash)?;
        let block = self.block(number)?;
        Some(TransactionLookup {
            block,
            index,
            transaction: block.transactions.get(index)?,
            receipt: block.receipts.get(index)?,
        })
    }

    /// A sealed transaction by block number and index (`eth_getTransactionByBlockNumberAndIndex`).
    pub fn transaction_by_block_and_index(
        &self,
        number: u64,
        index: usize,
    ) -> Option<TransactionLookup<'_>> {
        let block = self.block(number)?;
        Some(TransactionLookup {
            block,
            index,
            transaction: block.transactions.get(index)?,
            receipt: block.receipts.get(index)?,
        })
    }

    /// All sealed blocks, genesis first (what the node persists).
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Transactions executed but not yet sealed.
    pub fn pending_transactions(&self) -> &[Transaction] {
        &self.pending_transactions
    }

    /// `getFlowRootByTxSeq`: the flow root right after submission `tx_seq`.
    pub fn flow_root_by_tx_seq(&self, tx_seq: TxSeq) -> Option<H256> {
        usize::try_from(tx_seq.0)
            .ok()
            .and_then(|index| self.flow_roots.get(index))
            .copied()
    }

    /// `numSubmissions`.
    pub fn num_submissions(&self) -> u64 {
        self.flow_roots.len() as u64
    }

    /// Flow root and length (sectors, identifier and padding included), as `getFlowContext`.
    pub fn flow_context(&self) -> (H256, SectorIndex) {
        (self.flow.root(), self.flow.length())
    }

    /// `Flow.epoch()`: the current mining epoch (advanced by Flow calls, see `epoch`).
    pub fn epoch(&self) -> u64 {
        self.epochs.epoch
    }

    /// `Flow.epochStartPosition()`: where the next epoch's flow range starts.
    pub fn epoch_start_position(&self) -> u64 {
        self.epochs.start_position
    }

    /// `Flow.getContext()`: the mining context of the current epoch.
    pub fn mine_context(&self) -> MineContext {
        self.epochs.context
    }

    /// `Flow.getEpochRange(digest)`: the flow range of the epoch with that context digest.
    pub fn epoch_range(&self, digest: &H256) -> Option<EpochRange> {
        self.epochs.range(digest)
    }

    /// `Flow.getEpochRangeHistory`: every recorded epoch range, oldest first.
    pub fn epoch_ranges(&self) -> &[EpochRange] {
        &self.epochs.ranges
    }

    /// `rootHistory.at(index)`: the flow root that started epoch `index + 1`, for the last
    /// `ROOT_HISTORY_WINDOW` epochs.
    pub fn epoch_root(&self, index: u64) -> Option<H256> {
        self.epochs.root_at(index)
    }

    /// The flow log itself, for placement and proofs.
    pub fn flow(&self) -> &FlowLog {
        &self.flow
    }

    fn check_log_range(&self, from_block: u64, to_block: u64) -> Result<(), ChainError> {
        if from_block > to_block {
            return Err(ChainError::LogRangeInverted {
                from_block,
                to_block,
            });
        }
        let max_blocks = self.config.max_log_block_range;
        if to_block - from_block >= max_blocks {
            return Err(ChainError::LogRangeTooLarge {
                from_block,
                to_block,
                max_blocks,
            });
        }
        Ok(())
    }

    /// `eth_getLogs`: Ethereum logs of sealed blocks matching `filter` (`to_block` past the
    /// head is read as the head), at most `max_logs` (and the configured cap); a query that
    /// would return more fails rather than truncating silently.
    pub fn filter_logs(
        &self,
        filter: &LogFilter,
        max_logs: usize,
    ) -> Result<Vec<LogEntry>, ChainError> {
        let (from_block, to_block) = (filter.from_block, filter.to_block);
        self.check_log_range(from_block, to_block)?;
        let max_logs = max_logs.min(self.config.max_logs);
        let last = to_block.min(self.head().number());
        let mut entries = Vec::new();
        for number in from_block..=last {
            let Some(block) = self.block(number) else {
                break;
            };
            let mut log_index = 0u64;
            for receipt in &block.receipts {
                for log in &receipt.logs {
                    if filter.matches(log) {
                        if entries.len() == max_logs {
                            return Err(ChainError::TooManyLogs {
                                from_block,
                                to_block,
                                max_logs,
                            });
                        }
                        entries.push(LogEntry {
                            log: log.clone(),
                            block_number: number,
                            block_hash: block.hash(),
                            transaction_hash: receipt.transaction_hash,
                            transaction_index: receipt.transaction_index,
                            log_index,
                        });
                    }
                    log_index += 1;
                }
            }
        }
        Ok(entries)
    }
}

/// keccak256 over (address, balance, nonce) of every account in address order.
/// Refuses a stored block whose header version this build cannot seal.
fn check_version(block: &Block) -> Result<(), ChainError> {
    match block.header.version {
        HEADER_V2 | HEADER_VERSION => Ok(()),
        other => Err(ChainError::Replay {
            number: block.header.number,
            reason: format!(
                "header version {other} is not one this build reads ({HEADER_V2} or {HEADER_VERSION})"
            ),
        }),
    }
}

pub(crate) fn accounts_root(accounts: &BTreeMap<Address, Account>) -> H256 {
    let mut encoded = Vec::with_capacity(accounts.len() * 60);
    for (address, account) in accounts {
        encoded.extend_from_slice(address);
        encoded.extend_from_slice(&account.balance.to_be_bytes::<32>());
        encoded.extend_from_slice(&account.nonce.to_be_bytes());
    }
    keccak256(&encoded)
}
