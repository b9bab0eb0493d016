//! DA across real processes on loopback: one chain node (`--dev`, which also disperses) and six
//! DA nodes that follow its chain, register themselves with BLS keys and stake, and store their
//! slots' shards on their data planes.
//!
//! - A 32 MiB blob (k = 1024, m = 2048) is dispersed with `zerog da put`, sampled with
//!   `zerog da sample`, and after kill -9 of a third of the DA nodes retrieved byte-identical
//!   with `zerog da get`.
//! - A shard that does not match the commitment is refused by the DA node: no signature.
//! - A disperser that commits to shards that are not a codeword (the test plays it) gets a
//!   certificate, and every reader judges the blob empty.
//! - A certificate signed by under two thirds of the slots is refused by chain-lite.
//!
//! Time (2 cores, debug build with the DA crates optimised): about half a minute, most of it
//! moving 96 MiB of coded shards through JSON and base64.

mod common;

use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use chain_lite::abi::{da_entrance, da_registry};
use chain_lite::{DA_ENTRANCE_ADDRESS, DA_REGISTRY_ADDRESS, DEV_ACCOUNTS};
use common::{NodeProcess, Rpc, ZEROG, random_bytes};
use da::attest::{Aggregator, ProofOfPossession, PublicKey, Quorum, QuorumMember, Signature};
use da::blob::DaParams;
use da::commit::{ShardCommitment, ShardIndex, ShardProof, leaf_hash, node_hash};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use types::H256;

const DA_NODES: usize = 6;
const ETHER: u128 = 1_000_000_000_000_000_000;

fn hex_data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn operator_key(n: usize) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&[n as u8 + 0x41; 32].into()).expect("a valid key")
}

/// Signs (with the client's signer) and sends a call from `key` through the chain node; waits
/// for the receipt.
fn send(chain: &Rpc, key: &PrivateKeySigner, to: [u8; 20], value: U256, input: Vec<u8>) -> Value {
    let payer = client::Payer::new(key.clone());
    let nonce = chain.call(
        "eth_getTransactionCount",
        json!([payer.address_hex(), "pending"]),
    );
    let transaction = client::chain::Transaction {
        nonce: client::wire::read_u64(&nonce, "nonce").expect("a quantity"),
        gas_limit: 1_000_000,
        max_fee_per_gas: 2_000_000_000,
        to,
        value,
        input,
    };
    let raw = payer.sign(31337, &transaction).expect("signs");
    let hash = chain.call("eth_sendRawTransaction", json!([hex_data(&raw)]));
    let started = Instant::now();
    loop {
        let receipt = chain.call("eth_getTransactionReceipt", json!([hash]));
        if !receipt.is_null() {
            return receipt;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no receipt");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Gives `operator` 10 ether from the first dev account.
fn fund(chain: &Rpc, operator: &PrivateKeySigner) {
    let funder: PrivateKeySigner = DEV_ACCOUNTS[0].private_key.parse().expect("dev key");
    let receipt = send(
        chain,
        &funder,
        operator.address().into_array(),
        U256::from(10 * ETHER),
        Vec::new(),
    );
    assert_eq!(receipt["status"], json!("0x1"));
}

/// `zerog da put FILE` through `chain_url`: the blob id and everything it printed.
fn da_put(chain_url: &str, input: &std::path::Path) -> (String, String) {
    let put = zerog(&[
        "da",
        "put",
        "--quiet",
        input.to_str().expect("utf-8"),
        "--rpc",
        chain_url,
    ]);
    let stdout = String::from_utf8_lossy(&put.stdout).to_string();
    assert!(
        put.status.success(),
        "da put failed: {stdout} {}",
        String::from_utf8_lossy(&put.stderr)
    );
    let blob_id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("blob "))
        .expect("da put prints the blob id")
        .to_string();
    (blob_id, stdout)
}

/// `zerog da get` succeeds and writes exactly `payload`.
fn da_get_equals(chain_url: &str, blob_id: &str, output: &std::path::Path, payload: &[u8]) {
    let get = zerog(&[
        "da",
        "get",
        "--quiet",
        blob_id,
        "-o",
        output.to_str().expect("utf-8"),
        "--rpc",
        chain_url,
    ]);
    assert!(
        get.status.success(),
        "da get failed: {} {}",
        String::from_utf8_lossy(&get.stdout),
        String::from_utf8_lossy(&get.stderr)
    );
    assert!(
        std::fs::read(output).expect("output") == payload,
        "retrieved bytes differ"
    );
}

fn view(chain: &Rpc, to: [u8; 20], input: Vec<u8>) -> Vec<u8> {
    let out = chain.call(
        "eth_call",
        json!([{ "to": hex_data(&to), "data": hex_data(&input) }, "latest"]),
    );
    hex::decode(out.as_str().expect("hex").trim_start_matches("0x")).expect("hex")
}

fn zerog(args: &[&str]) -> std::process::Output {
    Command::new(ZEROG).args(args).output().expect("zerog runs")
}

fn wait_registered(node: &NodeProcess) {
    let rpc = node.rpc();
    let started = Instant::now();
    loop {
        let answer = rpc.raw("da_status", json!([]));
        if answer.get("result").is_some() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "DA node at {} never registered: {answer}",
            node.url
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The quorum of `epoch` as the chain deals it: slot holders, members in address order with
/// endpoints, and the `da::attest` quorum with PoP-checked keys.
struct ChainQuorum {
    slots: Vec<[u8; 20]>,
    members: Vec<([u8; 20], String)>,
    quorum: Quorum,
}

fn quorum(chain: &Rpc, epoch: u64) -> ChainQuorum {
    let out = view(
        chain,
        DA_REGISTRY_ADDRESS,
        da_registry::quorumSlotsCall {
            epochNumber: epoch,
            quorumId: 0,
        }
        .abi_encode(),
    );
    let slots: Vec<[u8; 20]> = da_registry::quorumSlotsCall::abi_decode_returns(&out)
        .expect("slots")
        .into_iter()
        .map(|a| a.into_array())
        .collect();
    let mut distinct = slots.clone();
    distinct.sort();
    distinct.dedup();
    let mut members = Vec::new();
    let mut keys = Vec::new();
    for address in distinct {
        let out = view(
            chain,
            DA_REGISTRY_ADDRESS,
            da_registry::signerCall {
                account: address.into(),
            }
            .abi_encode(),
        );
        let record = da_registry::signerCall::abi_decode_returns(&out).expect("signer");
        let key = da::attest::verify_pop(
            &PublicKey::from_bytes(&record.pubkey).expect("key"),
            &ProofOfPossession::from_bytes(&record.pop).expect("pop"),
        )
        .expect("registered keys have valid proofs");
        keys.push(QuorumMember {
            key,
            slots: slots.iter().filter(|s| **s == address).count() as u32,
        });
        members.push((address, record.endpoint));
    }
    ChainQuorum {
        slots,
        members,
        quorum: Quorum::new(31337, 0, epoch, keys).expect("quorum"),
    }
}

fn current_epoch(chain: &Rpc) -> u64 {
    let out = view(
        chain,
        DA_REGISTRY_ADDRESS,
        da_registry::epochCall {}.abi_encode(),
    );
    da_registry::epochCall::abi_decode_returns(&out)
        .expect("epoch")
        .current
}

/// A commitment to arbitrary shards (the honest tree shape), with their proofs.
fn commit_to(params: DaParams, shards: &[Vec<u8>]) -> (ShardCommitment, Vec<ShardProof>) {
    let width = shards.len().next_power_of_two();
    let mut level: Vec<[u8; 32]> = shards.iter().map(|shard| leaf_hash(shard)).collect();
    level.resize(width, [0; 32]);
    let mut levels = vec![level];
    while levels.last().expect("a level").len() > 1 {
        let next = levels
            .last()
            .expect("a level")
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
        levels.push(next);
    }
    let root = levels.last().expect("a level")[0];
    let proofs = (0..shards.len())
        .map(|leaf| {
            let siblings = levels[..levels.len() - 1]
                .iter()
                .enumerate()
                .map(|(height, nodes)| nodes[(leaf >> height) ^ 1])
                .collect();
            ShardProof::new(ShardIndex(leaf as u32), siblings)
        })
        .collect();
    let commitment = ShardCommitment::new(root, params, shards[0].len()).expect("commitment");
    (commitment, proofs)
}

fn store_request(
    commitment: &ShardCommitment,
    epoch: u64,
    shards: &[Vec<u8>],
    proofs: &[ShardProof],
    indices: &[usize],
) -> Value {
    json!([{
        "commitment": hex_data(&commitment.to_bytes()),
        "epoch": epoch,
        "quorum": 0,
        "shards": indices.iter().map(|&i| json!({
            "index": i,
            "data": base64_simd::STANDARD.encode_to_string(&shards[i]),
            "proof": hex_data(&proofs[i].to_bytes()),
        })).collect::<Vec<_>>(),
    }])
}

fn submit_certificate(chain: &Rpc, commitment: &ShardCommitment, certificate: Vec<u8>) -> Value {
    let fee = view(
        chain,
        DA_ENTRANCE_ADDRESS,
        da_entrance::blobFeeCall {}.abi_encode(),
    );
    let fee = da_entrance::blobFeeCall::abi_decode_returns(&fee).expect("fee");
    let payer: PrivateKeySigner = DEV_ACCOUNTS[1].private_key.parse().expect("dev key");
    send(
        chain,
        &payer,
        DA_ENTRANCE_ADDRESS,
        fee,
        da_entrance::submitCertificateCall {
            commitment: commitment.to_bytes().to_vec().into(),
            certificate: certificate.into(),
        }
        .abi_encode(),
    )
}

#[test]
fn blobs_disperse_survive_a_third_of_nodes_down_and_bad_encodings_read_as_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain_node = NodeProcess::start(&dir.path().join("chain"));
    let chain = chain_node.rpc();
    for n in 0..DA_NODES {
        fund(&chain, &operator_key(n));
    }
    let mut da_nodes: Vec<Option<NodeProcess>> = (0..DA_NODES)
        .map(|n| {
            let key = hex_data(&operator_key(n).to_bytes().0);
            Some(NodeProcess::start_da(
                &dir.path().join(format!("da-{n}")),
                &chain_node.url,
                &key,
            ))
        })
        .collect();
    for node in da_nodes.iter().flatten() {
        wait_registered(node);
    }
    let count = view(
        &chain,
        DA_REGISTRY_ADDRESS,
        da_registry::signerCountCall {}.abi_encode(),
    );
    assert_eq!(
        da_registry::signerCountCall::abi_decode_returns(&count).expect("count"),
        U256::from(DA_NODES)
    );

    // A 32 MiB blob with the default 1024 + 2048 shards, through the CLI.
    let payload = random_bytes(41, 32 << 20);
    let input = dir.path().join("blob.bin");
    std::fs::write(&input, &payload).expect("write blob");
    let (blob_id, _) = da_put(&chain_node.url, &input);
    let out = zerog(&[
        "da",
        "sample",
        &blob_id,
        "--samples",
        "40",
        "--rpc",
        &chain_node.url,
    ]);
    let sampled = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "sample failed: {sampled} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sampled.contains("40 of 40 sampled shards available"),
        "{sampled}"
    );

    // Coding parameters whose honest third of slots could not decode are refused up front.
    let refused = zerog(&[
        "da",
        "put",
        "--quiet",
        "--data-shards",
        "1",
        "--recovery-shards",
        "1",
        input.to_str().expect("utf-8"),
        "--rpc",
        &chain_node.url,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("fewer than the 1 needed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A small blob with KZG commitments over its payload, computed on the node's compute pool:
    // the same as `da::kzg` computes here.
    let small = random_bytes(42, 300_000);
    let small_path = dir.path().join("small.bin");
    std::fs::write(&small_path, &small).expect("write blob");
    let put = zerog(&[
        "da",
        "put",
        "--quiet",
        "--kzg",
        "--data-shards",
        "16",
        "--recovery-shards",
        "32",
        small_path.to_str().expect("utf-8"),
        "--rpc",
        &chain_node.url,
    ]);
    let stdout = String::from_utf8_lossy(&put.stdout).to_string();
    assert!(put.status.success(), "da put --kzg failed: {stdout}");
    let printed: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("kzg "))
        .collect();
    let expected: Vec<String> = da::kzg::commit_payload(&small, &da::kzg::CpuMsm)
        .expect("commitments")
        .iter()
        .map(|commitment| hex_data(&commitment.0))
        .collect();
    assert_eq!(expected.len(), 3, "300 000 bytes span three sub-blobs");
    assert_eq!(printed, expected);

    // kill -9 a third of the DA nodes; the blob still comes back byte for byte.
    for n in [1, 4] {
        da_nodes[n].take().expect("running").kill9();
    }
    da_get_equals(
        &chain_node.url,
        &blob_id,
        &dir.path().join("blob.out"),
        &payload,
    );
    let out = zerog(&[
        "da",
        "sample",
        &blob_id,
        "--samples",
        "40",
        "--rpc",
        &chain_node.url,
    ]);
    assert!(
        !out.status.success(),
        "sampling with holders down must not claim availability"
    );

    // The rest plays a disperser by hand, against the four live nodes' slots.
    let params = DaParams::new(16, 32).expect("params");
    let epoch = current_epoch(&chain);
    let dealt = quorum(&chain, epoch);
    let slots = dealt.slots.len();
    let indices_of = |member: usize| -> Vec<usize> {
        (0..params.total_shards())
            .filter(|i| dealt.slots[i % slots] == dealt.members[member].0)
            .collect()
    };
    let live: Vec<usize> = (0..dealt.members.len())
        .filter(|&member| {
            da_nodes
                .iter()
                .flatten()
                .any(|node| node.url == dealt.members[member].1)
        })
        .collect();
    assert_eq!(live.len(), DA_NODES - 2);

    // An honest encoding with one recovery shard flipped, committed as if it were right.
    let mut encoder = da::codec::Encoder::new(params);
    let honest = encoder
        .encode(b"a blob that is not a codeword")
        .expect("encodes");
    let mut shards: Vec<Vec<u8>> = honest.shards().map(|(_, shard)| shard.to_vec()).collect();
    let last = shards.len() - 1;
    shards[last][0] ^= 0x55;
    let (commitment, proofs) = commit_to(params, &shards);

    // A DA node refuses a shard that does not match the commitment, and signs nothing.
    let member = live[0];
    let node = Rpc::new(&dealt.members[member].1);
    let indices = indices_of(member);
    let mut tampered = shards.clone();
    tampered[indices[0]][1] ^= 1;
    assert_eq!(
        node.error_kind(
            "da_storeShards",
            store_request(&commitment, epoch, &tampered, &proofs, &indices)
        ),
        "bad_shard"
    );
    // Nor for an epoch that has not started.
    assert_eq!(
        node.error_kind(
            "da_storeShards",
            store_request(&commitment, epoch + 5, &shards, &proofs, &indices)
        ),
        "future_epoch"
    );
    // A node without --da holds no shards.
    assert_eq!(
        chain.error_kind("da_getShards", json!([hex_data(&[0; 32]), [0]])),
        "not_a_da_node"
    );
    // Nor does it take shards of slots it does not hold.
    let foreign = indices_of(live[1]);
    assert_eq!(
        node.error_kind(
            "da_storeShards",
            store_request(&commitment, epoch, &shards, &proofs, &foreign)
        ),
        "wrong_shards"
    );

    let blob = H256(commitment.blob_id().0);
    let mut signatures = Vec::new();
    for &member in &live {
        let answer = Rpc::new(&dealt.members[member].1).call(
            "da_storeShards",
            store_request(&commitment, epoch, &shards, &proofs, &indices_of(member)),
        );
        let signature = hex::decode(
            answer["signature"]
                .as_str()
                .expect("hex")
                .trim_start_matches("0x"),
        )
        .expect("hex");
        signatures.push((
            member,
            Signature::from_bytes(&signature).expect("signature"),
        ));
    }
    // Three of six members hold half the slots: chain-lite refuses that certificate.
    let mut under = Aggregator::new(&dealt.quorum, blob);
    for (member, signature) in signatures.iter().take(3) {
        under.add(*member, signature).expect("valid signature");
    }
    assert!(!under.meets_threshold());
    let mut certificate = {
        let mut all = Aggregator::new(&dealt.quorum, blob);
        for (member, signature) in &signatures {
            all.add(*member, signature).expect("valid signature");
        }
        all.finish()
            .expect("four of six members hold two thirds of the slots")
    };
    let full_bitmap = certificate.signers.clone();
    let full_signature = certificate.aggregate_signature;
    let mut bitmap = da::attest::SignerBitmap::new(dealt.members.len());
    let mut signed_slots = 0;
    let mut partial = None;
    for (member, signature) in signatures.iter().take(3) {
        bitmap.set(*member);
        signed_slots += u64::from(dealt.quorum.members()[*member].slots);
        partial = Some(match partial {
            None => *signature,
            Some(sum) => add_signatures(&sum, signature),
        });
    }
    certificate.signers = bitmap;
    certificate.signed_slots = signed_slots;
    certificate.aggregate_signature = partial.expect("three signers");
    let refused = submit_certificate(&chain, &commitment, certificate.to_bytes());
    assert_eq!(refused["status"], json!("0x0"), "{refused}");
    let available = view(
        &chain,
        DA_ENTRANCE_ADDRESS,
        da_entrance::isAvailableCall {
            blobId: blob.0.into(),
        }
        .abi_encode(),
    );
    assert!(!da_entrance::isAvailableCall::abi_decode_returns(&available).expect("bool"));

    // With all four live signatures the certificate stands, and every reader finds the blob
    // empty: its committed shards are not a codeword.
    certificate.signers = full_bitmap;
    certificate.signed_slots = signatures
        .iter()
        .map(|(member, _)| u64::from(dealt.quorum.members()[*member].slots))
        .sum();
    certificate.aggregate_signature = full_signature;
    let accepted = submit_certificate(&chain, &commitment, certificate.to_bytes());
    assert_eq!(accepted["status"], json!("0x1"), "{accepted}");
    let output = dir.path().join("empty.out");
    let get = zerog(&[
        "da",
        "get",
        "--quiet",
        &hex_data(&blob.0),
        "-o",
        output.to_str().expect("utf-8"),
        "--rpc",
        &chain_node.url,
    ]);
    let stderr = String::from_utf8_lossy(&get.stderr);
    assert!(!get.status.success());
    assert!(stderr.contains("empty by the validity rule"), "{stderr}");
    assert!(stderr.contains("not a codeword"), "{stderr}");
    assert!(!output.exists(), "nothing is written for an empty blob");

    for node in da_nodes.into_iter().flatten() {
        node.stop();
    }
    chain_node.stop();
}

/// One DA node holding every slot receives a full blob's 3 072 shards in several calls
/// (each under the request limit) and signs with the call that completes them.
#[test]
fn a_node_holding_every_slot_takes_a_full_blob_in_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain_node = NodeProcess::start(&dir.path().join("chain"));
    let chain = chain_node.rpc();
    let operator = operator_key(9);
    fund(&chain, &operator);
    let key = hex_data(&operator.to_bytes().0);
    let da_node = NodeProcess::start_da(&dir.path().join("da"), &chain_node.url, &key);
    wait_registered(&da_node);
    let payload = random_bytes(43, 32 << 20);
    let input = dir.path().join("blob.bin");
    std::fs::write(&input, &payload).expect("write blob");
    let (blob_id, stdout) = da_put(&chain_node.url, &input);
    assert!(stdout.contains("certified by 12 of 12 slots"), "{stdout}");
    da_get_equals(
        &chain_node.url,
        &blob_id,
        &dir.path().join("blob.out"),
        &payload,
    );
    da_node.stop();
    chain_node.stop();
}

/// A newcomer's first DA commands against a plain `zerog node --dev` (no `--da`, no other DA
/// node): the dev node registers itself as the chain's signer on the first dispersal, holds
/// every slot, and `da get` and `da sample` read the blob back. A node that is not a dev node
/// says what to start instead.
#[test]
fn a_plain_dev_node_serves_da_from_its_first_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProcess::start(&dir.path().join("dev"));
    let payload = random_bytes(44, 300_000);
    let input = dir.path().join("blob.bin");
    std::fs::write(&input, &payload).expect("write blob");
    let (blob_id, stdout) = da_put(&node.url, &input);
    assert!(stdout.contains("certified by 12 of 12 slots"), "{stdout}");
    da_get_equals(&node.url, &blob_id, &dir.path().join("blob.out"), &payload);
    let sample = zerog(&["da", "sample", &blob_id, "--rpc", &node.url]);
    assert!(
        sample.status.success(),
        "da sample failed: {}",
        String::from_utf8_lossy(&sample.stderr)
    );
    let status = node.rpc().call("da_status", json!([]));
    assert_eq!(
        status["signer"],
        json!(hex_data(&DEV_ACCOUNTS[0].address)),
        "the dev node is its chain's DA signer: {status}"
    );
    // A second blob goes to the same signer, without registering again.
    std::fs::write(&input, random_bytes(45, 1000)).expect("write blob");
    let (_, stdout) = da_put(&node.url, &input);
    assert!(stdout.contains("certified by 12 of 12 slots"), "{stdout}");
    // After a restart (at the address it registered) the node is still its chain's signer: it
    // serves the first blob and takes a third.
    let address = node.url.trim_start_matches("http://").to_string();
    node.stop();
    let node = NodeProcess::start_with(&dir.path().join("dev"), &["--rpc", &address]);
    da_get_equals(&node.url, &blob_id, &dir.path().join("again.out"), &payload);
    std::fs::write(&input, random_bytes(46, 2000)).expect("write blob");
    let (_, stdout) = da_put(&node.url, &input);
    assert!(stdout.contains("certified by 12 of 12 slots"), "{stdout}");

    // A follower that disperses, on a chain without DA nodes, names what to start.
    let empty_chain = NodeProcess::start(&dir.path().join("empty-chain"));
    let disperser = NodeProcess::spawn(
        &dir.path().join("disperser"),
        &[
            "--chain-rpc",
            &empty_chain.url,
            "--da-disperse",
            "--chain-key",
            DEV_ACCOUNTS[2].private_key,
        ],
    );
    let refused = zerog(&[
        "da",
        "put",
        "--quiet",
        input.to_str().expect("utf-8"),
        "--rpc",
        &disperser.url,
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "no quorum, no dispersal");
    assert!(
        stderr.contains("no signers registered") && stderr.contains("zerog node --da"),
        "{stderr}"
    );
    disperser.stop();
    empty_chain.stop();
    node.stop();
}

/// The sum of two BLS signatures (what an aggregator computes), through blst.
fn add_signatures(a: &Signature, b: &Signature) -> Signature {
    let parse = |s: &Signature| blst::min_pk::Signature::from_bytes(&s.to_bytes()).expect("valid");
    let (a, b) = (parse(a), parse(b));
    let sum = blst::min_pk::AggregateSignature::aggregate(&[&a, &b], true).expect("aggregates");
    Signature::from_bytes(&sum.to_signature().to_bytes()).expect("valid")
}
