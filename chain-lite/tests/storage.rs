//! The storage-node registry through signed transactions: nodes register with an endpoint, a
//! shard of the flow and stake; they update and leave (getting the stake back); every refusal
//! reverts with a reason and changes nothing; replay rebuilds the same registry.

mod common;

use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use chain_lite::abi::storage_registry;
use chain_lite::{Chain, ChainConfig, STORAGE_REGISTRY_ADDRESS};
use common::{ETHER, dev_key, revert_reason, send};

fn register(endpoint: &str, shard_id: u64, num_shard: u64) -> Vec<u8> {
    storage_registry::registerCall {
        endpoint: endpoint.to_string(),
        shardId: shard_id,
        numShard: num_shard,
    }
    .abi_encode()
}

fn nodes(chain: &Chain) -> storage_registry::nodesReturn {
    let output = chain
        .call(
            [0; 20],
            STORAGE_REGISTRY_ADDRESS,
            &storage_registry::nodesCall {}.abi_encode(),
            U256::ZERO,
        )
        .expect("a view");
    storage_registry::nodesCall::abi_decode_returns(&output).expect("decodes")
}

#[test]
fn nodes_register_update_and_leave_and_bad_calls_change_nothing() {
    let mut chain = Chain::new(ChainConfig::default());
    let (alice, bob) = (dev_key(1), dev_key(2));
    let stake = U256::from(ETHER);

    // Refusals first: none registers anything.
    for (input, value, reason) in [
        (
            register("http://a", 0, 2),
            U256::from(1u64),
            "below the minimum",
        ),
        (register("", 0, 2), stake, "endpoint must be 1 to 256 bytes"),
        (
            register(&"x".repeat(257), 0, 2),
            stake,
            "endpoint must be 1 to 256 bytes",
        ),
        (register("http://a", 0, 3), stake, "power of two"),
        (register("http://a", 2, 2), stake, "not below num_shard"),
        (register("http://a", 0, 1 << 21), stake, "above the largest"),
    ] {
        let receipt = send(&mut chain, &alice, STORAGE_REGISTRY_ADDRESS, value, input);
        assert!(revert_reason(&receipt).contains(reason), "{receipt:?}");
    }
    let leave = storage_registry::leaveCall {}.abi_encode();
    let receipt = send(
        &mut chain,
        &alice,
        STORAGE_REGISTRY_ADDRESS,
        U256::ZERO,
        leave.clone(),
    );
    assert!(revert_reason(&receipt).contains("not a registered storage node"));
    assert!(nodes(&chain).accounts.is_empty());

    let before = chain.balance(&alice.address().into_array());
    for (key, endpoint, shard) in [(&alice, "http://a", 0), (&bob, "http://b", 1)] {
        let receipt = send(
            &mut chain,
            key,
            STORAGE_REGISTRY_ADDRESS,
            stake,
            register(endpoint, shard, 2),
        );
        assert!(receipt.status, "{}", revert_reason(&receipt));
    }
    // Listed in address order, each with its endpoint and shard.
    let listed = nodes(&chain);
    let mut expected = vec![
        (alice.address(), "http://a".to_string(), 0, 2),
        (bob.address(), "http://b".to_string(), 1, 2),
    ];
    expected.sort_by_key(|(address, ..)| *address);
    let got: Vec<_> = (0..listed.accounts.len())
        .map(|i| {
            (
                listed.accounts[i],
                listed.endpoints[i].clone(),
                listed.shardIds[i],
                listed.numShards[i],
            )
        })
        .collect();
    assert_eq!(got, expected);
    let again = send(
        &mut chain,
        &alice,
        STORAGE_REGISTRY_ADDRESS,
        stake,
        register("http://a", 0, 2),
    );
    assert!(revert_reason(&again).contains("already a storage node"));

    let update = storage_registry::updateCall {
        endpoint: "http://a2".to_string(),
        shardId: 1,
        numShard: 4,
    }
    .abi_encode();
    let receipt = send(
        &mut chain,
        &alice,
        STORAGE_REGISTRY_ADDRESS,
        U256::ZERO,
        update,
    );
    assert!(receipt.status, "{}", revert_reason(&receipt));
    let record = chain
        .storage_node(&alice.address().into_array())
        .expect("registered");
    assert_eq!(record.endpoint, "http://a2");
    assert_eq!(record.shard.to_string(), "1/4");

    let receipt = send(
        &mut chain,
        &alice,
        STORAGE_REGISTRY_ADDRESS,
        U256::ZERO,
        leave,
    );
    assert!(receipt.status, "{}", revert_reason(&receipt));
    assert!(chain.storage_node(&alice.address().into_array()).is_none());
    // Alice paid gas for every call, but her stake came back.
    let after = chain.balance(&alice.address().into_array());
    let gas: U256 = U256::from(chain.gas_price()) * U256::from(2_000_000u64);
    assert!(
        after + gas > before && after < before,
        "before {before}, after {after}"
    );
    let listed = nodes(&chain);
    assert_eq!(listed.endpoints, vec!["http://b".to_string()]);
    assert_eq!((listed.shardIds[0], listed.numShards[0]), (1, 2));

    // Replay rebuilds the same registry.
    let blocks = (0..=chain.head().number())
        .map(|number| chain.block(number).expect("sealed").clone())
        .collect();
    let replayed = Chain::replay(ChainConfig::default(), blocks).expect("replays");
    assert_eq!(nodes(&replayed).endpoints, vec!["http://b".to_string()]);
}
