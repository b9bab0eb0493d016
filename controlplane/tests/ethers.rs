//! ethers v6, unmodified, against the Ethereum facade of a real `zerog node --dev` process: what a
//! wallet or a dapp does with it. `sdk/ethers.cjs` reads the network, blocks (`latest`,
//! `finalized`), fee data and the dev balances; calls every view of Flow, Market and Reward
//! through `ethers.Contract`; estimates and sends a value transfer and waits for it; tries to
//! deploy a contract; submits one sector to Flow and calls the views again; reads the logs; and
//! sends a transaction with a used nonce and one from an unfunded key. It prints one JSON object;
//! this test checks it against the chain's configuration and the node's own `zgs_*` answers.
//! The script's provider runs with ethers' request cache off (`cacheTimeout: -1`): with the
//! default, identical requests within 250 ms share one answer, so the balances read right after
//! `tx.wait()` were at times the ones read before the transaction, never asked of the node.
//!
//! The views are enumerated in [`views`]: every function of chain-lite's module ABIs that answers
//! without changing state, and every view 0G's `FixedPriceFlow` and `FixedPrice` declare (the
//! test checks the table against the official SDK's ABIs, so a view missing here fails). Views
//! about epochs answer for the fresh chain's epoch 0; the access control and ERC-165 views,
//! which chain-lite does not implement, revert as unknown selectors.
//!
//! Every check is collected and all failures are reported together, so one run shows every way
//! ethers and the facade disagree. ethers is pinned in `sdk/package.json`; without
//! `sdk/node_modules` (`npm ci --prefix sdk`) or without `node` on the PATH this test fails, it
//! never skips. Time: about 4 s (node start and the script, which takes about 3.3 s).

mod common;

use alloy_primitives::keccak256;
use alloy_sol_types::SolEvent;
use chain_lite::{
    ChainConfig, DEFAULT_GAS_PRICE, DEV_ACCOUNTS, DEV_BALANCE_WEI, FLOW_ADDRESS, MARKET_ADDRESS,
    MODULE_CALL_GAS, REWARD_ADDRESS, TX_BASE_GAS, U256,
};
use common::{NodeProcess, require_node_js, sdk_with_package};
use serde_json::{Value, json};
use std::fmt::Display;
use std::process::{Command, Stdio};
use std::time::Instant;
use types::H256;

/// `zerog node --dev`'s chain id (Hardhat's and Anvil's, so wallets know it).
const DEV_CHAIN_ID: u64 = 31_337;

fn address(bytes: [u8; 20]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn zero_hash() -> Value {
    json!(H256::ZERO)
}

/// What ethers must get from one call.
#[derive(Clone, Debug)]
enum Expect {
    /// This value, as ethers decodes it (numbers as decimal strings, tuples as arrays).
    Value(Value),
    /// A revert (ethers' `CALL_EXCEPTION`) with this reason, decoded from `Error(string)`.
    Reverts(String),
}

fn value(value: Value) -> Expect {
    Expect::Value(value)
}

fn number(n: impl Display) -> Expect {
    Expect::Value(Value::String(n.to_string()))
}

/// `MineContext` of epoch 0: `[epoch, mineStart, flowRoot, flowLength, blockDigest, digest]`.
fn genesis_context() -> Value {
    let empty_hash = format!("0x{}", hex::encode(chain_lite::EMPTY_HASH.0));
    json!(["0", "0", zero_hash(), "1", empty_hash, empty_hash])
}

/// A function of 0G's contract that chain-lite does not implement.
fn unknown_selector(function: &str) -> Expect {
    let hash = keccak256(function.as_bytes());
    Expect::Reverts(format!("unknown selector 0x{}", hex::encode(&hash[..4])))
}

/// One call of the table: before and after the script's one-sector Flow submission.
struct View {
    module: &'static str,
    function: &'static str,
    args: Value,
    before: Expect,
    after: Expect,
}

fn same(module: &'static str, function: &'static str, args: Value, expect: Expect) -> View {
    View {
        module,
        function,
        args,
        before: expect.clone(),
        after: expect,
    }
}

/// What the test knows before reading the views: the node's flow context around the
/// submission and the reward pool the submission must have created.
struct Context {
    /// The sender as ethers writes addresses (EIP-55 checksum), for call arguments.
    sender: String,
    flow_root_before: Value,
    flow_length_before: Value,
    flow_root_after: Value,
    flow_length_after: Value,
    /// `rewards(0)` after the submission: [total, released, claimed, startTime].
    pool_after: Value,
    /// Whether any of the pool was released when the views ran (a claim can succeed).
    released_after: bool,
}

/// Every view of Flow, Market and Reward with what ethers must read.
fn views(ctx: &Context) -> Vec<View> {
    let config = ChainConfig::default();
    let zero_address = json!(address([0; 20]));
    let role = json!([zero_hash()]);
    let role_member = json!([zero_hash(), 0]);
    let has_role = json!([zero_hash(), ctx.sender]);
    let erc165 = json!(["0x01ffc9a7"]);
    let claim = json!([0, ctx.sender, zero_hash()]);
    let empty = || json!([]);
    vec![
        View {
            module: "Flow",
            function: "numSubmissions()",
            args: empty(),
            before: number(0),
            after: number(1),
        },
        View {
            module: "Flow",
            function: "submissionIndex()",
            args: empty(),
            before: number(0),
            after: number(1),
        },
        View {
            module: "Flow",
            function: "getFlowRootByTxSeq(uint256)",
            args: json!([0]),
            before: value(zero_hash()),
            after: value(ctx.flow_root_after.clone()),
        },
        same(
            "Flow",
            "getFlowRootByTxSeq(uint256)",
            json!([1]),
            value(zero_hash()),
        ),
        View {
            module: "Flow",
            function: "computeFlowRoot()",
            args: empty(),
            before: value(ctx.flow_root_before.clone()),
            after: value(ctx.flow_root_after.clone()),
        },
        View {
            module: "Flow",
            function: "tree()",
            args: empty(),
            before: value(json!([ctx.flow_length_before.to_string(), "0"])),
            after: value(json!([ctx.flow_length_after.to_string(), "0"])),
        },
        same(
            "Flow",
            "market()",
            empty(),
            value(json!(address(MARKET_ADDRESS))),
        ),
        same("Flow", "epoch()", empty(), number(0)),
        same("Flow", "epochStartPosition()", empty(), number(0)),
        same(
            "Flow",
            "blocksPerEpoch()",
            empty(),
            number(config.blocks_per_epoch),
        ),
        same("Flow", "firstBlock()", empty(), number(0)),
        same("Flow", "deployDelay()", empty(), number(0)),
        same("Flow", "paused()", empty(), value(json!(false))),
        same("Flow", "rootHistory()", empty(), value(zero_address)),
        // A fresh dev chain is in epoch 0 (1200 blocks per epoch), before and after one
        // submission: the genesis context (flow of the identifier alone, no block digest yet).
        same("Flow", "getContext()", empty(), value(genesis_context())),
        same("Flow", "makeContext()", empty(), value(json!([]))),
        same(
            "Flow",
            "makeContextWithResult()",
            empty(),
            value(genesis_context()),
        ),
        same(
            "Flow",
            "makeContextFixedTimes(uint256)",
            json!([1]),
            value(json!([])),
        ),
        // An unknown digest reads as the contract's empty mapping entry.
        same(
            "Flow",
            "getEpochRange(bytes32)",
            json!([zero_hash()]),
            value(json!(["0", "0"])),
        ),
        // No epoch has ended: the history is empty, as Solidity reports an index past the end.
        same(
            "Flow",
            "getEpochRangeHistory(uint256)",
            json!([0]),
            Expect::Reverts("Panic due to ARRAY_RANGE_ERROR(50)".to_string()),
        ),
        same(
            "Flow",
            "queryContextAtPosition(uint128)",
            json!([0]),
            Expect::Reverts("Can not find proper context".to_string()),
        ),
        same(
            "Flow",
            "DEFAULT_ADMIN_ROLE()",
            empty(),
            unknown_selector("DEFAULT_ADMIN_ROLE()"),
        ),
        same(
            "Flow",
            "PAUSER_ROLE()",
            empty(),
            unknown_selector("PAUSER_ROLE()"),
        ),
        same(
            "Flow",
            "getRoleAdmin(bytes32)",
            role.clone(),
            unknown_selector("getRoleAdmin(bytes32)"),
        ),
        same(
            "Flow",
            "getRoleMember(bytes32,uint256)",
            role_member.clone(),
            unknown_selector("getRoleMember(bytes32,uint256)"),
        ),
        same(
            "Flow",
            "getRoleMemberCount(bytes32)",
            role.clone(),
            unknown_selector("getRoleMemberCount(bytes32)"),
        ),
        same(
            "Flow",
            "hasRole(bytes32,address)",
            has_role.clone(),
            unknown_selector("hasRole(bytes32,address)"),
        ),
        same(
            "Flow",
            "supportsInterface(bytes4)",
            erc165.clone(),
            unknown_selector("supportsInterface(bytes4)"),
        ),
        same(
            "Market",
            "pricePerSector()",
            empty(),
            number(config.price_per_sector),
        ),
        same(
            "Market",
            "flow()",
            empty(),
            value(json!(address(FLOW_ADDRESS))),
        ),
        same(
            "Market",
            "reward()",
            empty(),
            value(json!(address(REWARD_ADDRESS))),
        ),
        same(
            "Market",
            "chargeFee(uint256,uint256,uint256)",
            json!([0, 1, 0]),
            Expect::Reverts(
                "chargeFee is internal: the Flow module charges fees as it executes submissions"
                    .to_string(),
            ),
        ),
        same(
            "Market",
            "DEFAULT_ADMIN_ROLE()",
            empty(),
            unknown_selector("DEFAULT_ADMIN_ROLE()"),
        ),
        same(
            "Market",
            "PARAMS_ADMIN_ROLE()",
            empty(),
            unknown_selector("PARAMS_ADMIN_ROLE()"),
        ),
        same(
            "Market",
            "getRoleAdmin(bytes32)",
            role.clone(),
            unknown_selector("getRoleAdmin(bytes32)"),
        ),
        same(
            "Market",
            "getRoleMember(bytes32,uint256)",
            role_member,
            unknown_selector("getRoleMember(bytes32,uint256)"),
        ),
        same(
            "Market",
            "getRoleMemberCount(bytes32)",
            role,
            unknown_selector("getRoleMemberCount(bytes32)"),
        ),
        same(
            "Market",
            "hasRole(bytes32,address)",
            has_role,
            unknown_selector("hasRole(bytes32,address)"),
        ),
        same(
            "Market",
            "supportsInterface(bytes4)",
            erc165,
            unknown_selector("supportsInterface(bytes4)"),
        ),
        View {
            module: "Reward",
            function: "rewards(uint256)",
            args: json!([0]),
            before: value(json!(["0", "0", "0", "0"])),
            after: value(ctx.pool_after.clone()),
        },
        same(
            "Reward",
            "rewards(uint256)",
            json!([1]),
            value(json!(["0", "0", "0", "0"])),
        ),
        same(
            "Reward",
            "releaseSeconds()",
            empty(),
            number(config.reward_release_seconds),
        ),
        View {
            module: "Reward",
            function: "claimMineReward(uint256,address,bytes32)",
            args: claim,
            before: Expect::Reverts("pricing chunk 0 has no reward".to_string()),
            // The sender is the configured claimer: a static call succeeds once any is released.
            after: if ctx.released_after {
                value(json!([]))
            } else {
                Expect::Reverts("pricing chunk 0 has nothing released to claim yet".to_string())
            },
        },
    ]
}

/// Failed checks, reported together at the end.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn eq(&mut self, what: &str, got: &Value, want: &Value) {
        self.check(got == want, || format!("{what}: got {got}, want {want}"));
    }

    /// An `attempt` of the script failed with ethers' error `code`.
    fn refused(&mut self, what: &str, got: &Value, code: &str) {
        self.check(got["ok"] == false && got["code"] == code, || {
            format!("{what}: ethers must fail with {code}, got {got}")
        });
    }
}

/// A decimal string of the script as a U256.
fn wei(value: &Value) -> U256 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a decimal string"));
    U256::from_str_radix(text, 10).unwrap_or_else(|_| panic!("{text} is not decimal"))
}

fn lower(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_lowercase()
}

fn run_script(sdk: &std::path::Path, url: &str) -> Value {
    let mut command = Command::new("node");
    command
        .arg(sdk.join("ethers.cjs"))
        .args(["--rpc", url, "--key", DEV_ACCOUNTS[0].private_key]);
    for account in &DEV_ACCOUNTS[1..] {
        command.args(["--account", &address(account.address)]);
    }
    let started = Instant::now();
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("node runs sdk/ethers.cjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("sdk/ethers.cjs ran {:?}", started.elapsed());
    let out: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("sdk/ethers.cjs printed no JSON ({error}): {stdout}"));
    if let Some(error) = out.get("error") {
        panic!(
            "sdk/ethers.cjs failed: {}",
            error.as_str().unwrap_or_default()
        );
    }
    assert!(
        output.status.success(),
        "sdk/ethers.cjs exited with {}",
        output.status
    );
    out
}

#[test]
fn ethers_v6_reads_sends_value_and_calls_every_module_view() {
    let sdk = sdk_with_package("ethers");
    require_node_js();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(&dir.path().join("node"));
    let rpc = node.rpc();
    let context_before = rpc.call("zgs_getFlowContext", json!([]));
    let out = run_script(&sdk, &node.url);
    let context_after = rpc.call("zgs_getFlowContext", json!([]));

    let mut problems = Problems::default();
    let p = &mut problems;
    let sender = address(DEV_ACCOUNTS[0].address);
    let gas_price = U256::from(DEFAULT_GAS_PRICE);

    // Every read must reach the node: with ethers' default 250 ms request cache a balance read
    // right after `tx.wait()` can be the answer to the same read made before the transaction.
    p.eq(
        "the script's provider has ethers' request cache off (cacheTimeout)",
        &out["cacheTimeout"],
        &json!(-1),
    );

    // The chain: id, blocks (final at once), fees, funded accounts, module code.
    p.eq(
        "getNetwork().chainId",
        &out["network"]["chainId"],
        &json!(DEV_CHAIN_ID.to_string()),
    );
    p.eq(
        "getBlock('latest').number",
        &out["latest"]["number"],
        &out["blockNumber"],
    );
    p.eq(
        "getBlock('finalized') is the latest block",
        &out["finalized"]["hash"],
        &out["latest"]["hash"],
    );
    p.eq(
        "getFeeData().gasPrice",
        &out["feeData"]["gasPrice"],
        &json!(DEFAULT_GAS_PRICE.to_string()),
    );
    p.eq(
        "getFeeData().maxPriorityFeePerGas",
        &out["feeData"]["maxPriorityFeePerGas"],
        &json!("0"),
    );
    // ethers: maxFeePerGas = 2 × the latest base fee + the priority fee.
    p.eq(
        "getFeeData().maxFeePerGas",
        &out["feeData"]["maxFeePerGas"],
        &json!((2 * DEFAULT_GAS_PRICE).to_string()),
    );
    let accounts = out["accounts"].as_object().expect("accounts");
    for account in DEV_ACCOUNTS {
        let key = address(account.address);
        let got = accounts
            .iter()
            .find(|(name, _)| name.to_lowercase() == key)
            .map(|(_, got)| got.clone())
            .unwrap_or(Value::Null);
        p.eq(
            &format!("dev account {key}"),
            &got,
            &json!({ "balance": DEV_BALANCE_WEI.to_string(), "nonce": 0, "pendingNonce": 0 }),
        );
    }
    for module in [FLOW_ADDRESS, MARKET_ADDRESS, REWARD_ADDRESS] {
        let code = out["code"][address(module)].as_str().unwrap_or_default();
        p.check(code.len() > 2, || {
            format!("getCode({}) must be non-empty: {code:?}", address(module))
        });
    }

    // The ABIs we call with are 0G's: every selector of ours is the SDK's, same outputs.
    for module in ["Flow", "Market"] {
        p.eq(
            &format!("{module}: our fragments differing from the SDK's ABI"),
            &out["abi"][module]["mismatched"],
            &json!([]),
        );
    }

    // A value transfer, mined, with exact balances and gas.
    let transfer = &out["transfer"];
    let receipt = &transfer["receipt"];
    let recipient = lower(&transfer["to"]);
    p.eq(
        "estimateGas(transfer)",
        &transfer["estimateGas"],
        &json!(TX_BASE_GAS.to_string()),
    );
    p.eq(
        "the wallet's transaction type (EIP-1559)",
        &transfer["sent"]["type"],
        &json!(2),
    );
    p.eq(
        "transfer chain id",
        &transfer["sent"]["chainId"],
        &json!(DEV_CHAIN_ID.to_string()),
    );
    p.eq("transfer receipt status", &receipt["status"], &json!(1));
    p.eq(
        "transfer receipt type (must be the transaction's type)",
        &receipt["type"],
        &transfer["sent"]["type"],
    );
    p.eq(
        "transfer receipt from",
        &json!(lower(&receipt["from"])),
        &json!(sender),
    );
    p.eq(
        "transfer receipt to",
        &json!(lower(&receipt["to"])),
        &json!(recipient),
    );
    p.eq(
        "transfer receipt contractAddress",
        &receipt["contractAddress"],
        &Value::Null,
    );
    p.eq(
        "transfer gasUsed",
        &receipt["gasUsed"],
        &json!(TX_BASE_GAS.to_string()),
    );
    // Base fee plus a zero tip.
    p.eq(
        "transfer effectiveGasPrice",
        &receipt["gasPrice"],
        &json!(gas_price.to_string()),
    );
    let gas_paid = wei(&receipt["gasUsed"]) * wei(&receipt["gasPrice"]);
    p.eq(
        "transfer receipt fee",
        &receipt["fee"],
        &json!(gas_paid.to_string()),
    );
    let sent = wei(&transfer["value"]);
    p.eq(
        "recipient balance before",
        &transfer["recipientBalanceBefore"],
        &json!("0"),
    );
    p.eq(
        "recipient balance after",
        &transfer["recipientBalanceAfter"],
        &json!(sent.to_string()),
    );
    p.eq(
        "sender balance after = before - value - gasUsed × effectiveGasPrice",
        &transfer["senderBalanceAfter"],
        &json!((wei(&transfer["senderBalanceBefore"]) - sent - gas_paid).to_string()),
    );
    p.eq(
        "sender nonce after the transfer",
        &transfer["senderNonceAfter"],
        &json!(transfer["senderNonceBefore"].as_u64().unwrap_or(u64::MAX) + 1),
    );
    let lookup = &transfer["lookup"];
    p.eq(
        "getTransaction: fields and signature hash back to the transaction",
        &lookup["rehashes"],
        &json!(true),
    );
    p.eq(
        "getTransaction().from",
        &json!(lower(&lookup["from"])),
        &json!(sender),
    );
    p.eq(
        "getTransaction().value",
        &lookup["value"],
        &transfer["value"],
    );
    p.eq(
        "getTransaction().blockNumber",
        &lookup["blockNumber"],
        &receipt["blockNumber"],
    );
    p.check(lookup["confirmations"].as_u64().unwrap_or(0) >= 1, || {
        format!("transfer confirmations: {}", lookup["confirmations"])
    });
    let block = &transfer["block"];
    p.eq(
        "the transfer's block hash",
        &block["hash"],
        &receipt["blockHash"],
    );
    p.check(
        block["transactions"]
            .as_array()
            .is_some_and(|txs| txs.contains(&transfer["hash"])),
        || format!("the transfer's block lists it: {block}"),
    );

    // Contract creation is refused, clearly, and changes nothing.
    let deploy = &out["deploy"];
    let creation = "contract creation is not supported";
    p.check(
        deploy["factory"]["ok"] == false
            && deploy["factory"]["code"] == "CALL_EXCEPTION"
            && deploy["factory"]["reason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with(creation)),
        || {
            format!(
                "ContractFactory.deploy() must fail (estimateGas reverts) saying \"{creation}\": {}",
                deploy["factory"]
            )
        },
    );
    // ethers has no code for this refusal (UNKNOWN_ERROR); the node's message must say it.
    p.check(
        deploy["rawCreation"]["ok"] == false
            && deploy["rawCreation"]["rpcMessage"]
                .as_str()
                .is_some_and(|message| message.starts_with(creation)),
        || {
            format!(
                "a creation transaction must be refused saying \"{creation}\": {}",
                deploy["rawCreation"]
            )
        },
    );
    p.eq(
        "nonce unchanged by refused deployments",
        &deploy["nonceUnchanged"],
        &json!(true),
    );

    // A one-sector Flow submission through ethers.Contract.
    let submit = &out["submit"];
    let fee = wei(&submit["fee"]);
    let submit_receipt = &submit["receipt"];
    p.eq(
        "submit fee = 1 sector × pricePerSector",
        &submit["fee"],
        &json!(ChainConfig::default().price_per_sector.to_string()),
    );
    p.eq(
        "submit receipt status",
        &submit_receipt["status"],
        &json!(1),
    );
    p.eq(
        "submit receipt type (must be the transaction's type)",
        &submit_receipt["type"],
        &json!(2),
    );
    p.eq("submit receipt logs", &submit_receipt["logs"], &json!(1));
    let submit_gas = wei(&submit_receipt["gasUsed"]);
    p.check(
        submit_gas > U256::from(TX_BASE_GAS + MODULE_CALL_GAS),
        || format!("submit gasUsed {submit_gas}: base, calldata and the module call"),
    );
    p.eq(
        "sender balance after submit = before - fee - gas",
        &submit["senderBalanceAfter"],
        &json!(
            (wei(&submit["senderBalanceBefore"])
                - fee
                - submit_gas * wei(&submit_receipt["gasPrice"]))
            .to_string()
        ),
    );
    p.eq(
        "Reward module balance after submit = before + fee",
        &submit["rewardBalanceAfter"],
        &json!((wei(&submit["rewardBalanceBefore"]) + fee).to_string()),
    );
    let root: H256 = serde_json::from_value(submit["root"].clone()).expect("root");
    let identity =
        chain_lite::submission_digest(&[merkle::file::SubmissionNode { root, height: 0 }]);
    let submit_event = json!({
        "name": "Submit",
        "args": [
            sender,
            identity,
            "0",
            context_before[1].to_string(),
            "1",
            ["256", "0x", [[root, "0"]]],
        ],
    });
    let lowercase_sender = |event: &Value| {
        let mut event = event.clone();
        event["args"][0] = json!(lower(&event["args"][0]));
        event
    };
    p.eq(
        "the receipt's Submit event, decoded by ethers",
        &json!(
            submit["events"]
                .as_array()
                .map(|events| events.iter().map(lowercase_sender).collect::<Vec<_>>())
        ),
        &json!([submit_event]),
    );
    // The storage side saw the submission that ethers sent.
    let info = rpc.wait_indexed(0);
    p.eq(
        "zgs_getFileInfoByTxSeq(0).tx.dataMerkleRoot",
        &info["tx"]["dataMerkleRoot"],
        &json!(root),
    );

    // Logs over the whole range: the one Submit, found by address and by topics.
    let logs = &out["logs"];
    p.eq(
        "Submit topic",
        &logs["submitTopic"],
        &json!(format!(
            "0x{}",
            hex::encode(chain_lite::abi::flow::Submit::SIGNATURE_HASH)
        )),
    );
    p.eq(
        "getLogs(0..latest)",
        &json!(logs["all"].as_array().map(|all| {
            all.iter()
                .map(|log| {
                    json!([
                        lower(&log["address"]),
                        log["topic0"],
                        log["transactionHash"]
                    ])
                })
                .collect::<Vec<_>>()
        })),
        &json!([[
            address(FLOW_ADDRESS),
            logs["submitTopic"],
            submit_receipt["hash"]
        ]]),
    );
    p.eq(
        "Flow.queryFilter(Submit)",
        &json!(
            logs["flowSubmit"]
                .as_array()
                .map(|events| events.iter().map(lowercase_sender).collect::<Vec<_>>())
        ),
        &json!([{
            "name": "Submit",
            "args": submit_event["args"],
            "transactionHash": submit_receipt["hash"],
        }]),
    );
    p.eq(
        "getLogs(Flow, Submit, sender)",
        &logs["bySender"],
        &json!(1),
    );
    p.eq(
        "getLogs(Flow, Submit, another sender)",
        &logs["byOtherSender"],
        &json!(0),
    );

    // Refusals, mapped to ethers' codes.
    let refusals = &out["refusals"];
    p.refused(
        "a transfer reusing nonce 0",
        &refusals["nonceReused"],
        "NONCE_EXPIRED",
    );
    p.refused(
        "a transfer from an unfunded key with its gas limit set (eth_sendRawTransaction)",
        &refusals["unfundedWithGasLimit"],
        "INSUFFICIENT_FUNDS",
    );
    p.refused(
        "a transfer from an unfunded key as a wallet sends it (eth_estimateGas first)",
        &refusals["unfundedWallet"],
        "INSUFFICIENT_FUNDS",
    );
    p.eq(
        "sender nonce unchanged by refusals",
        &refusals["senderNonceUnchanged"],
        &json!(true),
    );
    p.eq(
        "unfunded account untouched",
        &json!([refusals["unfundedBalance"], refusals["unfundedNonce"]]),
        &json!(["0", 0]),
    );

    // Every view, before and after the submission.
    let release_seconds = ChainConfig::default().reward_release_seconds;
    let start = submit["parentBlock"]["timestamp"].as_u64().unwrap_or(0);
    let now = submit["block"]["timestamp"].as_u64().unwrap_or(0);
    let released = fee * U256::from(now.saturating_sub(start)) / U256::from(release_seconds);
    let ctx = Context {
        sender: alloy_primitives::Address::from(DEV_ACCOUNTS[0].address).to_checksum(None),
        flow_root_before: context_before[0].clone(),
        flow_length_before: context_before[1].clone(),
        flow_root_after: context_after[0].clone(),
        flow_length_after: context_after[1].clone(),
        pool_after: json!([
            fee.to_string(),
            released.to_string(),
            "0",
            start.to_string()
        ]),
        released_after: !released.is_zero(),
    };
    let table = views(&ctx);
    for (phase, key) in [("before", "views"), ("after submit", "viewsAfterSubmit")] {
        let results = out[key].as_array().expect("views");
        for view in &table {
            let found: Vec<&Value> = results
                .iter()
                .filter(|result| {
                    result["module"] == view.module
                        && result["function"] == view.function
                        && result["args"] == view.args
                })
                .collect();
            let name = format!("{}.{}{} {phase}", view.module, view.function, view.args);
            let [result] = found[..] else {
                p.0.push(format!(
                    "{name}: sdk/ethers.cjs must call it exactly once, called {} times",
                    found.len()
                ));
                continue;
            };
            let expect = if phase == "before" {
                &view.before
            } else {
                &view.after
            };
            match expect {
                Expect::Value(want) => p
                    .check(result["ok"] == true && result["value"] == *want, || {
                        format!("{name}: want {want}, got {result}")
                    }),
                Expect::Reverts(reason) => p.check(
                    result["ok"] == false
                        && result["code"] == "CALL_EXCEPTION"
                        && result["reason"] == reason.as_str(),
                    || format!("{name}: want a revert with reason {reason:?}, got {result}"),
                ),
            }
        }
        for result in results {
            p.check(
                table.iter().any(|view| {
                    result["module"] == view.module
                        && result["function"] == view.function
                        && result["args"] == view.args
                }),
                || format!("{phase}: a call the table does not expect: {result}"),
            );
        }
    }
    // The table covers every view 0G's contracts declare.
    for module in ["Flow", "Market"] {
        for sdk_view in out["abi"][module]["views"].as_array().expect("SDK views") {
            p.check(
                table
                    .iter()
                    .any(|view| view.module == module && view.function == sdk_view),
                || format!("{module}.{sdk_view}: a view of 0G's ABI missing from the table"),
            );
        }
    }

    eprintln!("ethers test took {:?}", started.elapsed());
    if !problems.0.is_empty() {
        eprintln!(
            "sdk/ethers.cjs printed:\n{}",
            serde_json::to_string_pretty(&out).expect("json")
        );
    }
    assert!(
        problems.0.is_empty(),
        "ethers v6 against the node's Ethereum facade: {} problem(s):\n- {}",
        problems.0.len(),
        problems.0.join("\n- ")
    );
    node.stop();
}
