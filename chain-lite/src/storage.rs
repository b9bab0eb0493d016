//! The storage-node registry (`STORAGE_REGISTRY_ADDRESS`, `abi::storage_registry`): the chain is
//! where storage nodes find each other. A node registers with the endpoint it answers 0G's
//! storage RPC at, the shard of the flow it stores (0G's `shard_id/num_shard`) and a stake (the
//! call's value, at least `storage_min_stake`, locked until it leaves); it may change endpoint or
//! shard, and leaving returns the stake. The registry holds at most `MAX_STORAGE_NODES`, so
//! `nodes()` stays a bounded answer.

use crate::abi::storage_registry;
use crate::chain::Chain;
use crate::modules::{CallFailure, Effect, Outcome, Revert, decode, not_payable, view};
use crate::receipt::Log;
use crate::submission::Address;
use alloy_primitives::U256;
use alloy_sol_types::{SolCall, SolEvent};
use std::collections::BTreeMap;
use types::{H256, ShardConfig};

/// Length of the endpoint URL a node may register.
pub const MAX_STORAGE_ENDPOINT_BYTES: usize = 256;
/// Most nodes the registry holds.
pub const MAX_STORAGE_NODES: usize = 4096;
/// Largest shard count a node may declare: 2^20 shards of the flow.
pub const MAX_NUM_SHARD: u64 = 1 << 20;

/// A registered storage node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageNode {
    pub endpoint: String,
    pub shard: ShardConfig,
    pub stake: U256,
    pub registered_block: u64,
}

/// The registry's state: nodes by account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageRegistryState {
    pub nodes: BTreeMap<Address, StorageNode>,
}

/// What a registry call changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StorageChange {
    Register(StorageNode),
    Update {
        endpoint: String,
        shard: ShardConfig,
    },
    Leave,
}

/// The endpoint and shard of a `register` or `update` call, checked.
fn checked(endpoint: &str, shard_id: u64, num_shard: u64) -> Result<ShardConfig, Revert> {
    if endpoint.is_empty() || endpoint.len() > MAX_STORAGE_ENDPOINT_BYTES {
        return Err(Revert::new(format!(
            "endpoint must be 1 to {MAX_STORAGE_ENDPOINT_BYTES} bytes"
        )));
    }
    if num_shard > MAX_NUM_SHARD {
        return Err(Revert::new(format!(
            "numShard {num_shard} is above the largest, {MAX_NUM_SHARD}"
        )));
    }
    ShardConfig::new(num_shard, shard_id).map_err(|error| Revert::new(error.to_string()))
}

fn record_of(node: Option<&StorageNode>) -> storage_registry::nodeReturn {
    storage_registry::nodeReturn {
        endpoint: node.map(|n| n.endpoint.clone()).unwrap_or_default(),
        shardId: node.map_or(0, |n| n.shard.shard_id),
        numShard: node.map_or(0, |n| n.shard.num_shard),
        stake: node.map_or(U256::ZERO, |n| n.stake),
        registeredBlock: node.map_or(0, |n| n.registered_block),
    }
}

impl Chain {
    /// The registry's record of `address`.
    pub fn storage_node(&self, address: &Address) -> Option<&StorageNode> {
        self.storage.nodes.get(address)
    }

    pub(crate) fn plan_storage_registry(
        &self,
        from: Address,
        selector: [u8; 4],
        input: &[u8],
        value: U256,
    ) -> Result<Outcome, CallFailure> {
        let change = |change: StorageChange| {
            Ok(Outcome {
                output: Vec::new(),
                effect: Effect::Storage(change),
            })
        };
        let registered = self.storage.nodes.get(&from);
        let not_registered = || {
            Revert::new(format!(
                "0x{} is not a registered storage node",
                hex::encode(from)
            ))
        };
        match selector {
            storage_registry::registerCall::SELECTOR => {
                let call: storage_registry::registerCall = decode(input)?;
                if registered.is_some() {
                    return Err(Revert::new(format!(
                        "0x{} is already a storage node: call update to change it",
                        hex::encode(from)
                    ))
                    .into());
                }
                if self.storage.nodes.len() >= MAX_STORAGE_NODES {
                    return Err(Revert::new(format!(
                        "the registry is full ({MAX_STORAGE_NODES} nodes)"
                    ))
                    .into());
                }
                let min_stake = self.config().storage_min_stake;
                if value < min_stake {
                    return Err(Revert::new(format!(
                        "stake {value} wei is below the minimum of {min_stake} wei"
                    ))
                    .into());
                }
                let shard = checked(&call.endpoint, call.shardId, call.numShard)?;
                change(StorageChange::Register(StorageNode {
                    endpoint: call.endpoint,
                    shard,
                    stake: value,
                    registered_block: self.head().number() + 1,
                }))
            }
            storage_registry::updateCall::SELECTOR => {
                let call: storage_registry::updateCall = decode(input)?;
                not_payable(value, "update(string,uint64,uint64)")?;
                registered.ok_or_else(not_registered)?;
                let shard = checked(&call.endpoint, call.shardId, call.numShard)?;
                change(StorageChange::Update {
                    endpoint: call.endpoint,
                    shard,
                })
            }
            storage_registry::leaveCall::SELECTOR => {
                decode::<storage_registry::leaveCall>(input)?;
                not_payable(value, "leave()")?;
                registered.ok_or_else(not_registered)?;
                change(StorageChange::Leave)
            }
            storage_registry::nodeCall::SELECTOR => {
                let call: storage_registry::nodeCall = decode(input)?;
                not_payable(value, "node(address)")?;
                let node = self.storage.nodes.get(&call.account.into_array());
                view(storage_registry::nodeCall::abi_encode_returns(&record_of(
                    node,
                )))
            }
            storage_registry::nodesCall::SELECTOR => {
                decode::<storage_registry::nodesCall>(input)?;
                not_payable(value, "nodes()")?;
                let nodes = &self.storage.nodes;
                view(storage_registry::nodesCall::abi_encode_returns(
                    &storage_registry::nodesReturn {
                        accounts: nodes.keys().map(|address| (*address).into()).collect(),
                        endpoints: nodes.values().map(|node| node.endpoint.clone()).collect(),
                        shardIds: nodes.values().map(|node| node.shard.shard_id).collect(),
                        numShards: nodes.values().map(|node| node.shard.num_shard).collect(),
                    },
                ))
            }
            storage_registry::nodeCountCall::SELECTOR => {
                decode::<storage_registry::nodeCountCall>(input)?;
                not_payable(value, "nodeCount()")?;
                view(storage_registry::nodeCountCall::abi_encode_returns(
                    &U256::from(self.storage.nodes.len()),
                ))
            }
            other => Err(crate::modules::unknown_selector(other)),
        }
    }

    pub(crate) fn apply_storage(&mut self, from: Address, change: StorageChange) -> Vec<Log> {
        let registry = crate::modules::STORAGE_REGISTRY_ADDRESS;
        let data = match change {
            StorageChange::Register(node) => {
                self.move_value(from, registry, node.stake);
                let data = storage_registry::NodeRegistered {
                    node: from.into(),
                    endpoint: node.endpoint.clone(),
                    shardId: node.shard.shard_id,
                    numShard: node.shard.num_shard,
                    stake: node.stake,
                }
                .encode_log_data();
                self.storage.nodes.insert(from, node);
                data
            }
            StorageChange::Update { endpoint, shard } => {
                let data = storage_registry::NodeUpdated {
                    node: from.into(),
                    endpoint: endpoint.clone(),
                    shardId: shard.shard_id,
                    numShard: shard.num_shard,
                }
                .encode_log_data();
                if let Some(node) = self.storage.nodes.get_mut(&from) {
                    node.endpoint = endpoint;
                    node.shard = shard;
                }
                data
            }
            StorageChange::Leave => {
                let stake = self
                    .storage
                    .nodes
                    .remove(&from)
                    .map_or(U256::ZERO, |node| node.stake);
                self.move_value(registry, from, stake);
                storage_registry::NodeLeft {
                    node: from.into(),
                    stake,
                }
                .encode_log_data()
            }
        };
        vec![Log {
            address: registry,
            topics: data.topics().iter().map(|topic| H256(topic.0)).collect(),
            data: data.data.to_vec(),
        }]
    }
}
