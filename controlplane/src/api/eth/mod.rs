//! The Ethereum JSON-RPC facade over the embedded chain: what ethers v6 and the 0G SDK call.
//!
//! chain-lite has no EVM and no historical state: reads answer for the head state (blocks are
//! sealed and final at once, so `latest`, `pending`, `safe` and `finalized` agree), and a query
//! for the state at an older block says so instead of answering wrongly. Reverts come back as
//! geth does (code 3, message `execution reverted: …`, data = the ABI-encoded reason), which is
//! how ethers decodes them; refused transactions carry geth's wording (`nonce too low`,
//! `insufficient funds`) because ethers maps errors by message.

pub mod wire;

use crate::node::Node;
use crate::rpc::{Params, RpcError};
use alloy_consensus::Transaction as _;
use chain_lite::{
    Address, Block, LogEntry, LogFilter, Receipt, Transaction, TransactionLookup, U256,
};
use serde_json::{Value, json};
use std::future::Future;
use types::H256;
use wire::{BlockTag, data, parse_data, parse_quantity, quantity};

/// geth's code for a reverted call.
pub const EXECUTION_REVERTED: i64 = 3;
/// geth's code for a transaction the pool refuses.
pub const TRANSACTION_REFUSED: i64 = -32000;
/// Most reward percentiles one `eth_feeHistory` takes (geth's limit).
const MAX_REWARD_PERCENTILES: usize = 100;
/// Most logs one `eth_getLogs` answers.
pub const MAX_LOGS: usize = 10_000;
/// Block gas limit reported in block headers (chain-lite limits transactions per block instead).
const BLOCK_GAS_LIMIT: u128 = 30_000_000;
/// keccak(rlp([])): the `sha3Uncles` of a block without uncles.
const EMPTY_UNCLES_HASH: &str =
    "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347";

/// The executed chain as the facade reads it.
pub trait EthChain {
    fn state(&self) -> &chain_lite::Chain;
    fn head_number(&self) -> u64;
    fn finalized_number(&self) -> u64;
}

impl EthChain for crate::chain::EmbeddedChain {
    fn state(&self) -> &chain_lite::Chain {
        crate::chain::EmbeddedChain::state(self)
    }

    fn head_number(&self) -> u64 {
        crate::chain::EmbeddedChain::head_number(self)
    }

    fn finalized_number(&self) -> u64 {
        crate::chain::EmbeddedChain::finalized_number(self)
    }
}

/// What serves the facade: a `--dev` node (transactions executed into its pending block) or a
/// validator (transactions into its mempool, executed once final).
pub trait EthNode {
    type Chain: EthChain;
    fn eth_chain(&self) -> Result<std::cell::Ref<'_, Self::Chain>, RpcError>;
    /// Accepts a signed transaction; its hash.
    fn send_raw_transaction(&self, raw: Vec<u8>) -> impl Future<Output = Result<H256, RpcError>>;
    /// The sender's next nonce counting transactions not yet in a block, where the node keeps
    /// such (`None`: the state's nonce is it).
    fn pending_nonce(
        &self,
        address: Address,
    ) -> impl Future<Output = Result<Option<u64>, RpcError>>;
}

impl EthNode for Node {
    type Chain = crate::chain::EmbeddedChain;

    fn eth_chain(&self) -> Result<std::cell::Ref<'_, Self::Chain>, RpcError> {
        self.embedded()
    }

    async fn send_raw_transaction(&self, raw: Vec<u8>) -> Result<H256, RpcError> {
        crate::node::producer::send_raw_transaction(self, &raw)
            .map(|receipt| receipt.transaction_hash)
    }

    async fn pending_nonce(&self, _address: Address) -> Result<Option<u64>, RpcError> {
        // The pending block is part of the state: its nonces are the state's.
        Ok(None)
    }
}

pub async fn dispatch<N: EthNode>(
    node: &N,
    method: &str,
    mut params: Params,
) -> Result<Value, RpcError> {
    let chain_id = node.eth_chain()?.state().config().chain_id;
    match method {
        "eth_chainId" => Ok(quantity(u128::from(chain_id))),
        "net_version" => Ok(Value::String(chain_id.to_string())),
        "eth_blockNumber" => Ok(quantity(u128::from(node.eth_chain()?.head_number()))),
        "eth_gasPrice" => Ok(quantity(node.eth_chain()?.state().gas_price())),
        "eth_maxPriorityFeePerGas" => Ok(quantity(0)),
        "eth_syncing" => Ok(Value::Bool(false)),
        "eth_accounts" => Ok(json!([])),
        "eth_getBalance" => {
            let address = parse_address(&params.required::<Value>(0, "address")?, "address")?;
            check_head_state(node, params.optional::<Value>(1, "block")?)?;
            Ok(u256_quantity(node.eth_chain()?.state().balance(&address)))
        }
        "eth_getTransactionCount" => {
            let address = parse_address(&params.required::<Value>(0, "address")?, "address")?;
            let block = params.optional::<Value>(1, "block")?;
            let pending = block.as_ref().is_some_and(|tag| tag == "pending");
            check_head_state(node, block)?;
            if pending && let Some(nonce) = node.pending_nonce(address).await? {
                return Ok(quantity(u128::from(nonce)));
            }
            let nonce = node.eth_chain()?.state().nonce(&address);
            Ok(quantity(u128::from(nonce)))
        }
        "eth_getCode" => {
            let address = parse_address(&params.required::<Value>(0, "address")?, "address")?;
            // Modules are native: report a one-byte placeholder so tools see a contract there.
            Ok(Value::String(if chain_lite::is_module(&address) {
                "0xfe".into()
            } else {
                "0x".into()
            }))
        }
        "eth_getBlockByNumber"
        | "eth_getBlockByHash"
        | "eth_getTransactionByHash"
        | "eth_getTransactionReceipt" => history(node, method, &mut params),
        "eth_feeHistory" => fee_history(node, &mut params),
        "eth_call" => {
            let call = CallRequest::parse(&params.required::<Value>(0, "transaction")?)?;
            check_head_state(node, params.optional::<Value>(1, "block")?)?;
            let to = call.to.ok_or_else(|| {
                RpcError::invalid_params(
                    "invalid_params",
                    "eth_call needs \"to\": no contracts can be created",
                )
            })?;
            let chain = node.eth_chain()?;
            match chain.state().call(call.from, to, &call.data, call.value) {
                Ok(output) => Ok(data(&output)),
                Err(revert) => Err(reverted(&revert)),
            }
        }
        "eth_estimateGas" => {
            let call = CallRequest::parse(&params.required::<Value>(0, "transaction")?)?;
            let chain = node.eth_chain()?;
            match chain
                .state()
                .estimate_gas(call.from, call.to, &call.data, call.value)
            {
                Ok(gas) => Ok(quantity(u128::from(gas))),
                Err(chain_lite::EstimateError::Reverted(revert)) => Err(reverted(&revert)),
                Err(refused) => Err(RpcError::new(
                    TRANSACTION_REFUSED,
                    "transaction_refused",
                    refused.to_string(),
                )),
            }
        }
        "eth_sendRawTransaction" => {
            let raw = parse_data(
                &params.required::<Value>(0, "transaction")?,
                "transaction",
                MAX_RAW_TRANSACTION_BYTES,
            )?;
            let hash = node.send_raw_transaction(raw).await?;
            Ok(Value::String(hash.to_hex()))
        }
        "eth_getLogs" => get_logs(node, &params.required::<Value>(0, "filter")?),
        _ => Err(RpcError::method_not_found(method)),
    }
}

/// Blocks, transactions and receipts by number or hash.
fn history<N: EthNode>(node: &N, method: &str, params: &mut Params) -> Result<Value, RpcError> {
    match method {
        "eth_getBlockByNumber" => {
            let tag = BlockTag::parse(&params.required::<Value>(0, "block")?, "block")?;
            let full = params
                .optional::<bool>(1, "fullTransactions")?
                .unwrap_or(false);
            let chain = node.eth_chain()?;
            let number = tag.resolve(chain.head_number(), chain.finalized_number());
            Ok(chain
                .state()
                .block(number)
                .map(|block| block_json(chain.state(), block, full))
                .unwrap_or(Value::Null))
        }
        "eth_getBlockByHash" => {
            let hash: H256 = params.required(0, "blockHash")?;
            let full = params
                .optional::<bool>(1, "fullTransactions")?
                .unwrap_or(false);
            let chain = node.eth_chain()?;
            Ok(chain
                .state()
                .block_by_hash(&hash)
                .map(|block| block_json(chain.state(), block, full))
                .unwrap_or(Value::Null))
        }
        "eth_getTransactionByHash" => {
            let hash: H256 = params.required(0, "transactionHash")?;
            let chain = node.eth_chain()?;
            Ok(chain
                .state()
                .transaction_by_hash(&hash)
                .map(|lookup| transaction_json(chain.state(), &lookup))
                .unwrap_or(Value::Null))
        }
        "eth_getTransactionReceipt" => {
            let hash: H256 = params.required(0, "transactionHash")?;
            let chain = node.eth_chain()?;
            Ok(chain
                .state()
                .transaction_by_hash(&hash)
                .map(|lookup| {
                    let kind = transaction_type(chain.state(), lookup.transaction);
                    receipt_json(lookup.block, lookup.receipt, kind)
                })
                .unwrap_or(Value::Null))
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

/// Largest raw transaction accepted: calldata limit plus envelope.
const MAX_RAW_TRANSACTION_BYTES: usize =
    chain_lite::DEFAULT_MAX_CALLDATA_BYTES + chain_lite::RAW_OVERHEAD_BYTES;

fn reverted(revert: &chain_lite::Revert) -> RpcError {
    RpcError {
        code: EXECUTION_REVERTED,
        message: revert.to_string(),
        kind: "execution_reverted",
        data_override: Some(data(&revert.data)),
    }
}

fn check_head_state<N: EthNode>(node: &N, block: Option<Value>) -> Result<(), RpcError> {
    let Some(block) = block else { return Ok(()) };
    let tag = BlockTag::parse(&block, "block")?;
    let chain = node.eth_chain()?;
    let head = chain.head_number();
    let number = tag.resolve(head, chain.finalized_number());
    if number != head {
        return Err(RpcError::invalid_params(
            "historical_state",
            format!(
                "state at block {number} is not kept: this node answers for the head ({head}) only"
            ),
        ));
    }
    Ok(())
}

fn parse_address(value: &Value, name: &str) -> Result<Address, RpcError> {
    let bytes = parse_data(value, name, 20)?;
    bytes
        .try_into()
        .map_err(|_| RpcError::invalid_params("invalid_params", format!("{name} must be 20 bytes")))
}

fn address_json(address: &Address) -> Value {
    data(address)
}

fn u256_quantity(value: U256) -> Value {
    Value::String(format!("{value:#x}"))
}

/// The call object of `eth_call` / `eth_estimateGas`.
struct CallRequest {
    from: Address,
    to: Option<Address>,
    data: Vec<u8>,
    value: U256,
}

impl CallRequest {
    fn parse(value: &Value) -> Result<CallRequest, RpcError> {
        let object = value.as_object().ok_or_else(|| {
            RpcError::invalid_params("invalid_params", "the transaction must be an object")
        })?;
        let field = |name: &str| object.get(name).filter(|v| !v.is_null());
        let from = field("from")
            .map(|v| parse_address(v, "from"))
            .transpose()?
            .unwrap_or([0; 20]);
        let to = field("to").map(|v| parse_address(v, "to")).transpose()?;
        let input = field("input").or_else(|| field("data"));
        let data = input
            .map(|v| parse_data(v, "data", chain_lite::DEFAULT_MAX_CALLDATA_BYTES))
            .transpose()?
            .unwrap_or_default();
        let value = match field("value") {
            Some(v) => {
                let text = v.as_str().ok_or_else(|| {
                    RpcError::invalid_params("invalid_params", "value must be a quantity")
                })?;
                U256::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|_| {
                    RpcError::invalid_params(
                        "invalid_params",
                        format!("value is not a quantity: {text}"),
                    )
                })?
            }
            None => U256::ZERO,
        };
        Ok(CallRequest {
            from,
            to,
            data,
            value,
        })
    }
}

fn block_json(chain: &chain_lite::Chain, block: &Block, full: bool) -> Value {
    let transactions: Vec<Value> = block
        .transactions
        .iter()
        .enumerate()
        .map(|(index, transaction)| {
            if full {
                let lookup = TransactionLookup {
                    block,
                    index,
                    transaction,
                    receipt: &block.receipts[index],
                };
                transaction_json(chain, &lookup)
            } else {
                Value::String(transaction.hash().to_hex())
            }
        })
        .collect();
    let header = &block.header;
    json!({
        "number": quantity(u128::from(header.number)),
        "hash": header.hash,
        "parentHash": header.parent_hash,
        "nonce": "0x0000000000000000",
        "sha3Uncles": EMPTY_UNCLES_HASH,
        "logsBloom": data(&[0u8; 256]),
        "transactionsRoot": header.transactions_root,
        // v3 headers commit to every module's state; v2 headers only to the accounts.
        "stateRoot": if header.version >= chain_lite::HEADER_VERSION {
            header.state_root
        } else {
            header.accounts_root
        },
        "receiptsRoot": header.receipts_root,
        "miner": data(&[0u8; 20]),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "size": quantity(0),
        "gasLimit": quantity(BLOCK_GAS_LIMIT),
        "gasUsed": quantity(u128::from(header.gas_used)),
        "timestamp": quantity(u128::from(header.timestamp_ms / 1000)),
        "transactions": transactions,
        "uncles": [],
        "baseFeePerGas": quantity(chain.gas_price()),
        "mixHash": H256::ZERO,
    })
}

fn transaction_json(chain: &chain_lite::Chain, lookup: &TransactionLookup<'_>) -> Value {
    let receipt = lookup.receipt;
    let mut value = json!({
        "hash": receipt.transaction_hash,
        "blockHash": lookup.block.hash(),
        "blockNumber": quantity(u128::from(lookup.block.number())),
        "transactionIndex": quantity(lookup.index as u128),
        "from": address_json(&receipt.from),
        "to": address_json(&receipt.to),
    });
    let Transaction::Signed { raw } = lookup.transaction else {
        // The dev chain's unsigned Flow submission: no signature and no gas; placeholders keep
        // the shape every client parses.
        value["chainId"] = quantity(u128::from(chain.config().chain_id));
        value["r"] = quantity(0);
        value["s"] = quantity(0);
        value["v"] = quantity(27);
        value["type"] = quantity(0);
        value["nonce"] = quantity(0);
        value["gas"] = quantity(0);
        value["gasPrice"] = quantity(0);
        value["value"] = quantity(0);
        value["input"] = Value::String("0x".into());
        return value;
    };
    let Ok(signed) = chain.decode_transaction(raw) else {
        return value;
    };
    let envelope = &signed.envelope;
    let signature = envelope.signature();
    value["type"] = quantity(u128::from(u8::from(envelope.tx_type())));
    value["nonce"] = quantity(u128::from(signed.nonce));
    value["gas"] = quantity(u128::from(signed.gas_limit));
    value["value"] = u256_quantity(signed.value);
    value["input"] = data(&signed.input);
    value["gasPrice"] = quantity(signed.effective_gas_price);
    value["chainId"] = quantity(u128::from(envelope.chain_id().unwrap_or(0)));
    value["r"] = u256_quantity(signature.r());
    value["s"] = u256_quantity(signature.s());
    let parity = u128::from(signature.v());
    if envelope.is_legacy() {
        let v = envelope
            .chain_id()
            .map_or(27 + parity, |id| u128::from(id) * 2 + 35 + parity);
        value["v"] = quantity(v);
    } else {
        value["v"] = quantity(parity);
        value["yParity"] = quantity(parity);
        value["maxFeePerGas"] = quantity(envelope.max_fee_per_gas());
        value["maxPriorityFeePerGas"] = quantity(envelope.max_priority_fee_per_gas().unwrap_or(0));
        let access_list: Vec<Value> = envelope
            .access_list()
            .map(|list| {
                list.iter()
                    .map(|item| {
                        let keys: Vec<Value> = item
                            .storage_keys
                            .iter()
                            .map(|key| data(key.as_slice()))
                            .collect();
                        json!({ "address": data(item.address.as_slice()), "storageKeys": keys })
                    })
                    .collect()
            })
            .unwrap_or_default();
        value["accessList"] = Value::Array(access_list);
    }
    value
}

/// EIP-2718 type of a transaction in a block (the dev chain's unsigned submission counts as 0).
fn transaction_type(chain: &chain_lite::Chain, transaction: &Transaction) -> u8 {
    match transaction {
        Transaction::Signed { raw } => chain
            .decode_transaction(raw)
            .map(|signed| u8::from(signed.envelope.tx_type()))
            .unwrap_or(0),
        _ => 0,
    }
}

fn receipt_json(block: &Block, receipt: &Receipt, transaction_type: u8) -> Value {
    let first_log_index: usize = block.receipts[..receipt.transaction_index as usize]
        .iter()
        .map(|earlier| earlier.logs.len())
        .sum();
    let logs: Vec<Value> = receipt
        .logs
        .iter()
        .enumerate()
        .map(|(offset, log)| {
            log_json(&LogEntry {
                log: log.clone(),
                block_number: block.number(),
                block_hash: block.hash(),
                transaction_hash: receipt.transaction_hash,
                transaction_index: receipt.transaction_index,
                log_index: (first_log_index + offset) as u64,
            })
        })
        .collect();
    json!({
        "transactionHash": receipt.transaction_hash,
        "transactionIndex": quantity(u128::from(receipt.transaction_index)),
        "blockHash": block.hash(),
        "blockNumber": quantity(u128::from(block.number())),
        "from": address_json(&receipt.from),
        "to": address_json(&receipt.to),
        "cumulativeGasUsed": quantity(u128::from(receipt.cumulative_gas_used)),
        "gasUsed": quantity(u128::from(receipt.gas_used)),
        "effectiveGasPrice": quantity(receipt.effective_gas_price),
        "contractAddress": null,
        "logs": logs,
        "logsBloom": data(&[0u8; 256]),
        "type": quantity(u128::from(transaction_type)),
        "status": quantity(u128::from(receipt.status_code())),
    })
}

fn log_json(entry: &LogEntry) -> Value {
    json!({
        "address": address_json(&entry.log.address),
        "topics": entry.log.topics,
        "data": data(&entry.log.data),
        "blockNumber": quantity(u128::from(entry.block_number)),
        "blockHash": entry.block_hash,
        "transactionHash": entry.transaction_hash,
        "transactionIndex": quantity(u128::from(entry.transaction_index)),
        "logIndex": quantity(u128::from(entry.log_index)),
        "removed": false,
    })
}

fn get_logs<N: EthNode>(node: &N, filter: &Value) -> Result<Value, RpcError> {
    let object = filter.as_object().ok_or_else(|| {
        RpcError::invalid_params("invalid_params", "the filter must be an object")
    })?;
    let chain = node.eth_chain()?;
    let (head, finalized) = (chain.head_number(), chain.finalized_number());
    let (from_block, to_block) =
        if let Some(hash) = object.get("blockHash").filter(|v| !v.is_null()) {
            let hash: H256 = serde_json::from_value(hash.clone()).map_err(|error| {
                RpcError::invalid_params("invalid_params", format!("blockHash: {error}"))
            })?;
            let number = chain
                .state()
                .block_by_hash(&hash)
                .map(Block::number)
                .ok_or_else(|| {
                    RpcError::invalid_params("unknown_block", format!("no block with hash {hash}"))
                })?;
            (number, number)
        } else {
            let bound = |name: &str, default: u64| -> Result<u64, RpcError> {
                match object.get(name).filter(|v| !v.is_null()) {
                    Some(value) => Ok(BlockTag::parse(value, name)?.resolve(head, finalized)),
                    None => Ok(default),
                }
            };
            (bound("fromBlock", head)?, bound("toBlock", head)?)
        };
    if from_block > to_block {
        return Err(RpcError::invalid_params(
            "invalid_params",
            format!("fromBlock {from_block} is after toBlock {to_block}"),
        ));
    }
    if to_block - from_block >= wire::MAX_LOG_BLOCK_RANGE {
        return Err(RpcError::invalid_params(
            "log_range_too_large",
            format!(
                "blocks {from_block}..={to_block} span more than {} blocks; query a smaller range",
                wire::MAX_LOG_BLOCK_RANGE
            ),
        ));
    }
    let addresses = match object.get("address").filter(|v| !v.is_null()) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| parse_address(item, "address"))
            .collect::<Result<_, _>>()?,
        Some(single) => vec![parse_address(single, "address")?],
    };
    let topics = match object.get("topics").filter(|v| !v.is_null()) {
        None => Vec::new(),
        Some(Value::Array(positions)) => positions
            .iter()
            .map(|position| match position {
                Value::Null => Ok(None),
                Value::Array(choices) => choices
                    .iter()
                    .map(|choice| serde_json::from_value::<H256>(choice.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                single => {
                    serde_json::from_value::<H256>(single.clone()).map(|topic| Some(vec![topic]))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                RpcError::invalid_params("invalid_params", format!("topics: {error}"))
            })?,
        Some(_) => {
            return Err(RpcError::invalid_params(
                "invalid_params",
                "topics must be an array",
            ));
        }
    };
    let filter = LogFilter {
        from_block,
        to_block,
        addresses,
        topics,
    };
    let logs = chain
        .state()
        .filter_logs(&filter, MAX_LOGS)
        .map_err(|error| match error {
            chain_lite::ChainError::TooManyLogs { .. } => RpcError::invalid_params(
                "too_many_logs",
                format!("more than {MAX_LOGS} logs match; query a smaller block range"),
            ),
            other => RpcError::invalid_params("invalid_params", other.to_string()),
        })?;
    Ok(Value::Array(logs.iter().map(log_json).collect()))
}

fn fee_history<N: EthNode>(node: &N, params: &mut Params) -> Result<Value, RpcError> {
    let count_value = params.required::<Value>(0, "blockCount")?;
    let count = match &count_value {
        Value::Number(number) => number.as_u64().map(u128::from),
        other => parse_quantity(other, "blockCount").ok(),
    }
    .ok_or_else(|| RpcError::invalid_params("invalid_params", "blockCount must be a quantity"))?
    .clamp(1, 1024) as u64;
    let newest = BlockTag::parse(&params.required::<Value>(1, "newestBlock")?, "newestBlock")?;
    let percentiles: Vec<f64> = params.optional(2, "rewardPercentiles")?.unwrap_or_default();
    if percentiles.len() > MAX_REWARD_PERCENTILES
        || percentiles.windows(2).any(|pair| pair[0] > pair[1])
        || percentiles.iter().any(|p| !(0.0..=100.0).contains(p))
    {
        return Err(RpcError::invalid_params(
            "invalid_params",
            format!(
                "rewardPercentiles must be at most {MAX_REWARD_PERCENTILES} rising values in 0..=100"
            ),
        ));
    }
    let chain = node.eth_chain()?;
    let newest = newest
        .resolve(chain.head_number(), chain.finalized_number())
        .min(chain.head_number());
    let oldest = newest.saturating_sub(count - 1);
    let blocks = newest - oldest + 1;
    let gas_price = quantity(chain.state().gas_price());
    let mut answer = json!({
        "oldestBlock": quantity(u128::from(oldest)),
        "baseFeePerGas": vec![gas_price; blocks as usize + 1],
        "gasUsedRatio": (oldest..=newest)
            .map(|number| chain.state().block(number).map_or(0.0, |b| b.header.gas_used as f64 / BLOCK_GAS_LIMIT as f64))
            .collect::<Vec<f64>>(),
    });
    if !percentiles.is_empty() {
        answer["reward"] = json!(vec![vec![quantity(0); percentiles.len()]; blocks as usize]);
    }
    Ok(answer)
}
