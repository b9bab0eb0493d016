//! The storage network under faults, with real processes: a chain-only node and storage nodes
//! that find each other in its registry, as `zerog devnet` runs them. Each test breaks
//! something for real — kill -9 mid-upload, a partition (a second host in a network namespace,
//! cut off with nftables), an empty node joining, a flipped bit in an extent, a full disk (a
//! small loop-mounted ext4) — then lets the network converge and runs the same checker: no
//! acknowledged segment is lost, every byte served verifies against the root the chain
//! recorded, and every node holds every segment it owns of every file.
//!
//! The tests run one at a time (they start several nodes each, and two of them change the
//! machine's network and mounts); they need root, as the test command runs.

mod common;

use common::{NodeProcess, Rpc, random_bytes, segment_json, serial, submit_on_chain};
use harness::{Host, SmallDisk};
use merkle::file::FileTree;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use types::{SEGMENT_BYTES, ShardConfig};

/// How long a network gets to converge after a fault.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(90);

/// Waits (bounded by [`CONVERGE_TIMEOUT`]) until `done` holds, polling; `what` names it.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < CONVERGE_TIMEOUT,
            "{what}: not within {CONVERGE_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A storage node of the network, running or stopped.
struct Member {
    position: ShardConfig,
    key: &'static str,
    dir: PathBuf,
    /// `IP:0`: where it listens.
    listen: String,
    netns: Option<String>,
    extra: Vec<String>,
    process: Option<harness::Process>,
    url: String,
}

impl Member {
    fn start(&mut self, chain_url: &str) {
        let position = self.position.to_string();
        let mut launch = common::zerog()
            .node(&self.dir)
            .args([
                "--rpc",
                &self.listen,
                "--chain-rpc",
                chain_url,
                "--chain-poll-ms",
                "20",
                "--shard-position",
                &position,
                "--chain-key",
                self.key,
                "--peer-probe-ms",
                "100",
                "--repair-interval-ms",
                "50",
                "--repair-grace-ms",
                "0",
                "--peer-quarantine-secs",
                "2",
            ])
            .args(&self.extra);
        if !self.extra.iter().any(|arg| arg == "--extent-mib") {
            launch = launch.args(["--extent-mib", "64"]);
        }
        if let Some(name) = &self.netns {
            launch = launch.in_netns(name);
        }
        let process = launch.start().expect("the storage node starts");
        self.url = process.rpc_url().expect("a node prints its rpc endpoint");
        self.process = Some(process);
    }

    fn rpc(&self) -> Rpc {
        assert!(self.process.is_some(), "{} is not running", self.url);
        Rpc::new(&self.url)
    }

    fn stop(&mut self) {
        self.process
            .take()
            .expect("running")
            .stop()
            .expect("a clean exit");
    }

    fn running(&self) -> bool {
        self.process.is_some()
    }
}

/// A file submitted on the chain, and which nodes acknowledged which of its segments.
struct NetFile {
    tx_seq: u64,
    data: Vec<u8>,
    tree: FileTree,
    first_flow_segment: u64,
    /// (member, segment) pairs a node acknowledged durable.
    acked: Arc<Mutex<BTreeSet<(usize, u64)>>>,
}

impl NetFile {
    fn segments(&self) -> u64 {
        self.tree.layout().data_segments
    }

    fn owns(&self, position: ShardConfig, segment: u64) -> bool {
        position.owns(types::FlowSegmentIndex(self.first_flow_segment + segment))
    }

    fn upload_bytes(&self, segment: u64) -> Vec<u8> {
        let start = segment as usize * SEGMENT_BYTES;
        let end = (start + SEGMENT_BYTES).min(self.data.len());
        let mut bytes = self.data[start..end].to_vec();
        bytes.resize(bytes.len().div_ceil(256) * 256, 0);
        bytes
    }
}

/// A chain-only node and storage nodes that register in its registry.
struct Network {
    dir: tempfile::TempDir,
    chain: NodeProcess,
    members: Vec<Member>,
    files: Vec<NetFile>,
}

impl Network {
    /// The chain on `ip` and, for each position, a storage node on `ip` (not started when its
    /// position is prefixed with `later:`).
    fn start(ip: &str, positions: &[&str]) -> Network {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let listen = format!("{ip}:0");
        let chain = NodeProcess::start_with(
            &dir.path().join("chain"),
            &["--chain-only", "--rpc", &listen],
        );
        let mut network = Network {
            dir,
            chain,
            members: Vec::new(),
            files: Vec::new(),
        };
        for position in positions {
            let (later, position) = match position.strip_prefix("later:") {
                Some(position) => (true, position),
                None => (false, *position),
            };
            let member = network.add_member(position, &listen, None, &[]);
            if !later {
                network.start_member(member);
            }
        }
        network
    }

    /// A member, not started yet.
    fn add_member(
        &mut self,
        position: &str,
        listen: &str,
        netns: Option<&str>,
        extra: &[&str],
    ) -> usize {
        let n = self.members.len();
        self.members.push(Member {
            position: position.parse().expect("a shard position"),
            key: chain_lite::DEV_ACCOUNTS[n].private_key,
            dir: self.dir.path().join(format!("node-{n}")),
            listen: listen.to_string(),
            netns: netns.map(str::to_string),
            extra: extra.iter().map(|arg| arg.to_string()).collect(),
            process: None,
            url: String::new(),
        });
        n
    }

    fn start_member(&mut self, member: usize) {
        let chain_url = self.chain.url.clone();
        self.members[member].start(&chain_url);
    }

    fn chain(&self) -> Rpc {
        self.chain.rpc()
    }

    /// Running nodes the chain's indexer lists.
    fn listed(&self) -> usize {
        self.chain().call("indexer_getShardedNodes", json!([]))["trusted"]
            .as_array()
            .map_or(0, Vec::len)
    }

    /// Submits a file of `size` random bytes on the chain; its index in `files`.
    fn submit(&mut self, seed: u64, size: usize) -> usize {
        let data = random_bytes(seed, size);
        let tree = FileTree::from_bytes(&data).expect("a tree");
        let tx_seq = submit_on_chain(&self.chain(), &tree);
        let info = self.chain().call("zgs_getFileInfoByTxSeq", json!([tx_seq]));
        let first_flow_segment = info["tx"]["startEntryIndex"].as_u64().expect("start") / 1024;
        self.files.push(NetFile {
            tx_seq,
            data,
            tree,
            first_flow_segment,
            acked: Arc::default(),
        });
        self.files.len() - 1
    }

    /// Uploads every segment `member` owns of `file`, one call each, recording the acks. A
    /// segment repair pulled first is refused as stored already: that is no ack.
    fn upload_owned(&self, file: usize, member: usize) {
        let (file, node) = (&self.files[file], &self.members[member]);
        let rpc = node.rpc();
        rpc.wait_indexed(file.tx_seq);
        for segment in (0..file.segments()).filter(|s| file.owns(node.position, *s)) {
            match upload_one(&rpc, file, member, segment) {
                Ok(()) => {}
                Err(error)
                    if error.starts_with("duplicate_segment")
                        || error.contains("already uploaded and finalized") => {}
                Err(error) => panic!("{} refused segment {segment}: {error}", node.url),
            }
        }
    }

    /// Waits until every running node reports every file complete.
    fn wait_converged(&self) {
        for node in self.members.iter().filter(|node| node.running()) {
            let rpc = node.rpc();
            for file in &self.files {
                wait_until(
                    &format!("{} finalizes tx {}", node.url, file.tx_seq),
                    || rpc.call("zgs_checkFileFinalized", json!([file.tx_seq])) == json!(true),
                );
            }
        }
    }

    /// The checker, once converged: every running node serves every segment it owns of every
    /// file, with a proof against the root the chain recorded, and no segment it does not own;
    /// every segment a node acknowledged is among them.
    fn check(&self) {
        self.wait_converged();
        let chain = self.chain();
        for file in &self.files {
            let info = chain.call("zgs_getFileInfoByTxSeq", json!([file.tx_seq]));
            let root: types::H256 =
                serde_json::from_value(info["tx"]["dataMerkleRoot"].clone()).expect("a root");
            let mut served = BTreeSet::new();
            for (n, node) in self.members.iter().enumerate() {
                if !node.running() {
                    continue;
                }
                let rpc = node.rpc();
                for segment in 0..file.segments() {
                    let answer = rpc.call(
                        "zgs_downloadSegmentWithProofByTxSeq",
                        json!([file.tx_seq, segment]),
                    );
                    if !file.owns(node.position, segment) {
                        assert_eq!(
                            answer,
                            Value::Null,
                            "{} serves segment {segment} of tx {}, which it does not own",
                            node.url,
                            file.tx_seq
                        );
                        continue;
                    }
                    assert!(
                        !answer.is_null(),
                        "{} lacks segment {segment} of tx {}, which it owns",
                        node.url,
                        file.tx_seq
                    );
                    let bytes = verified_segment(&answer, &root, file, segment)
                        .unwrap_or_else(|error| panic!("{}: {error}", node.url));
                    assert!(
                        bytes == file.upload_bytes(segment),
                        "{} serves other bytes for segment {segment} of tx {}",
                        node.url,
                        file.tx_seq
                    );
                    served.insert((n, segment));
                }
            }
            let acked = file.acked.lock().unwrap_or_else(PoisonError::into_inner);
            for (member, segment) in acked.iter() {
                if self.members[*member].running() {
                    assert!(
                        served.contains(&(*member, *segment)),
                        "node {member} acknowledged segment {segment} of tx {} and lost it",
                        file.tx_seq
                    );
                }
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for member in &mut self.members {
            drop(member.process.take());
        }
    }
}

/// Uploads one segment; on success records the ack. The node's error kind otherwise.
fn upload_one(rpc: &Rpc, file: &NetFile, member: usize, segment: u64) -> Result<(), String> {
    let answer = rpc.try_raw(
        "zgs_uploadSegmentsByTxSeq",
        json!([[segment_json(&file.tree, &file.data, segment)], file.tx_seq]),
    )?;
    if answer.get("error").is_some() {
        return Err(format!(
            "{}: {}",
            answer["error"]["data"]["kind"].as_str().unwrap_or("?"),
            answer["error"]["message"]
        ));
    }
    file.acked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert((member, segment));
    Ok(())
}

/// The bytes of a downloaded segment, once its proof verifies against `root`.
fn verified_segment(
    answer: &Value,
    root: &types::H256,
    file: &NetFile,
    segment: u64,
) -> Result<Vec<u8>, String> {
    common::verified_segment(answer, root, file.data.len() as u64, segment)
        .map_err(|error| format!("tx {}: {error}", file.tx_seq))
}

/// The bytes a node serves of a segment without a proof (an unfinalized file), `None` when it
/// does not hold it.
fn raw_segment(rpc: &Rpc, file: &NetFile, segment: u64) -> Option<Vec<u8>> {
    let answer = rpc.call(
        "zgs_downloadSegmentByTxSeq",
        json!([
            file.tx_seq,
            segment * types::SEGMENT_CHUNKS as u64,
            ((segment + 1) * types::SEGMENT_CHUNKS as u64)
                .min(file.data.len().div_ceil(types::CHUNK_BYTES) as u64)
        ]),
    );
    answer.as_str().map(|data| {
        base64_simd::STANDARD
            .decode_to_vec(data)
            .expect("base64 data")
    })
}

/// Kill -9 an owner while two clients upload to it; restart it: every segment it acknowledged
/// is there and intact, the clients finish, and the file finalizes there.
#[test]
fn an_owner_killed_mid_upload_keeps_what_it_acknowledged_and_finalizes_after_restart() {
    let _serial = serial();
    let mut network = Network::start("127.0.0.1", &["0/2", "1/2"]);
    let file = network.submit(101, 48 * SEGMENT_BYTES + 3);
    network.upload_owned(file, 1);
    let owner = Rpc::new(&network.members[0].url);
    owner.wait_indexed(network.files[file].tx_seq);
    let position = network.members[0].position;
    let owned: Vec<u64> = (0..network.files[file].segments())
        .filter(|s| network.files[file].owns(position, *s))
        .collect();

    // Two clients, each sending its half one segment a call, until the node goes away.
    let process = network.members[0].process.take().expect("running");
    std::thread::scope(|scope| {
        for client in 0..2 {
            let (owner, file, owned) = (&owner, &network.files[file], &owned);
            scope.spawn(move || {
                for segment in owned.iter().skip(client).step_by(2) {
                    if upload_one(owner, file, 0, *segment).is_err() {
                        return;
                    }
                }
            });
        }
        wait_until("the owner acknowledges 6 segments", || {
            network.files[file].acked.lock().expect("acks").len() >= 6
        });
        process.kill9().expect("kill -9");
    });
    let acked: Vec<u64> = network.files[file]
        .acked
        .lock()
        .expect("acks")
        .iter()
        .filter(|(member, _)| *member == 0)
        .map(|(_, segment)| *segment)
        .collect();
    assert!(
        acked.len() < owned.len(),
        "the kill came after the last upload"
    );

    // Restarted, it holds every acknowledged segment, intact, before anyone sends it more.
    network.start_member(0);
    let rpc = network.members[0].rpc();
    rpc.wait_indexed(network.files[file].tx_seq);
    for segment in &acked {
        assert!(
            raw_segment(&rpc, &network.files[file], *segment)
                == Some(network.files[file].upload_bytes(*segment)),
            "acknowledged segment {segment} did not survive kill -9"
        );
    }
    // The clients resume: what is stored is refused as a duplicate, the rest is taken.
    for segment in &owned {
        match upload_one(&rpc, &network.files[file], 0, *segment) {
            Ok(()) => {}
            Err(error) if error.starts_with("duplicate_segment") => {}
            Err(error) => panic!("segment {segment}: {error}"),
        }
    }
    network.check();
}

/// A node on a second host is cut off from the chain and its peers while files are uploaded
/// to the rest; once the partition heals it learns the files and pulls its shard of them.
#[test]
fn a_node_cut_off_from_its_peers_converges_after_the_partition_heals() {
    let _serial = serial();
    let host = Host::create();
    let mut network = Network::start(host.gateway_ip(), &["0/2", "1/2"]);
    let listen = format!("{}:0", host.ip());
    let isolated = network.add_member("0/2", &listen, Some(host.name()), &[]);
    network.start_member(isolated);
    wait_until("the indexer lists all three nodes", || {
        network.listed() == 3
    });
    let before = network.submit(201, 5 * SEGMENT_BYTES);
    network.upload_owned(before, 0);
    network.upload_owned(before, 1);
    network.wait_converged();

    host.cut();
    wait_until("the indexer drops the node it cannot reach", || {
        network.listed() == 2
    });
    let during = [
        network.submit(202, 9 * SEGMENT_BYTES + 11),
        network.submit(203, 1),
    ];
    for file in during {
        network.upload_owned(file, 0);
        network.upload_owned(file, 1);
    }
    // Still cut off: it cannot have them.
    assert_eq!(network.listed(), 2);
    host.heal();
    wait_until("the indexer lists the node again", || network.listed() == 3);
    network.check();
    assert!(
        network.members[isolated]
            .rpc()
            .metric("zerog_repair_pulled_segments_total")
            >= 5.0
    );
}

/// A node that joins empty pulls every segment of its shard of every file from its peer.
#[test]
fn a_node_that_joins_empty_pulls_its_whole_shard() {
    let _serial = serial();
    let mut network = Network::start("127.0.0.1", &["0/2", "1/2", "later:0/2"]);
    for (seed, size) in [
        (301, 1),
        (302, 3 * SEGMENT_BYTES + 5),
        (303, 17 * SEGMENT_BYTES),
    ] {
        let file = network.submit(seed, size);
        network.upload_owned(file, 0);
        network.upload_owned(file, 1);
    }
    network.wait_converged();
    network.start_member(2);
    network.check();
    let owned: u64 = network
        .files
        .iter()
        .map(|file| {
            (0..file.segments())
                .filter(|s| file.owns(network.members[2].position, *s))
                .count() as u64
        })
        .sum();
    assert_eq!(
        network.members[2]
            .rpc()
            .metric("zerog_repair_pulled_segments_total"),
        owned as f64,
        "the new node pulled exactly its shard"
    );
}

/// The records of `segments` of `file` in the extents under `data_dir`: (extent, offset).
fn find_records(data_dir: &Path, file: &NetFile, segments: &[u64]) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    for shard in std::fs::read_dir(data_dir.join("shards")).expect("the shards folder") {
        let shard = shard.expect("an entry").path();
        for extent in std::fs::read_dir(&shard).expect("a shard folder") {
            let extent = extent.expect("an entry").path();
            if extent.extension().and_then(|e| e.to_str()) != Some("dat") {
                continue;
            }
            let bytes = std::fs::read(&extent).expect("read an extent");
            for segment in segments {
                let head = &file.upload_bytes(*segment)[..4096];
                if let Some(at) = bytes.chunks(4096).position(|block| block == head) {
                    found.push((extent.clone(), at as u64 * 4096));
                }
            }
        }
    }
    assert_eq!(found.len(), segments.len(), "every record found once");
    found
}

/// One flipped bit in each of two records of a stopped node: a client read finds one, the
/// scrub the other; neither is ever served, and both are pulled again from the replica.
#[test]
fn a_flipped_byte_is_never_served_and_the_segment_is_pulled_again() {
    use std::os::unix::fs::FileExt;
    let _serial = serial();
    let mut network = Network::start("127.0.0.1", &["0/1", "0/1"]);
    let file = network.submit(401, 8 * SEGMENT_BYTES);
    network.upload_owned(file, 0);
    network.upload_owned(file, 1);
    network.wait_converged();

    network.members[0].stop();
    let damaged = [2u64, 5];
    for (extent, offset) in find_records(&network.members[0].dir, &network.files[file], &damaged) {
        let handle = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&extent)
            .expect("open the extent");
        let mut byte = [0u8; 1];
        handle.read_exact_at(&mut byte, offset + 777).expect("read");
        handle
            .write_all_at(&[byte[0] ^ 0x04], offset + 777)
            .expect("flip a bit");
        handle.sync_all().expect("sync");
    }
    network.members[0]
        .extra
        .extend(["--scrub-pause-ms", "0", "--scrub-max-mbps", "1000"].map(String::from));
    network.start_member(0);
    let rpc = network.members[0].rpc();
    rpc.wait_indexed(network.files[file].tx_seq);
    // A read of a damaged segment gets nothing (or, once repaired, the right bytes): never the
    // flipped ones.
    let answer = rpc.call(
        "zgs_downloadSegmentWithProofByTxSeq",
        json!([network.files[file].tx_seq, damaged[0]]),
    );
    if !answer.is_null() {
        let root = network.files[file].tree.root();
        verified_segment(&answer, &root, &network.files[file], damaged[0])
            .expect("a served segment verifies");
    }
    // Segment 5 is read by nobody: only the scrub can find it.
    wait_until("both damaged segments are found", || {
        rpc.metric("zerog_segments_damaged_total") >= 2.0
    });
    network.check();
    assert!(rpc.metric("zerog_repair_pulled_segments_total") >= 2.0);
    assert!(rpc.metric("zerog_scrubbed_segments_total") >= 1.0);
}

/// A node on a small disk that fills up: uploads get a clear "storage full" error, what it
/// stored still reads back, and once space returns it pulls what it missed from its replica.
#[test]
fn a_full_disk_is_a_clear_error_reads_go_on_and_the_node_converges_once_space_returns() {
    let _serial = serial();
    let mut network = Network::start("127.0.0.1", &["0/1"]);
    let disk = SmallDisk::mount(&network.dir.path().join("small"), 64);
    let small = network.add_member(
        "0/1",
        "127.0.0.1:0",
        None,
        &["--shards", "1", "--extent-mib", "16"],
    );
    network.members[small].dir = disk.path().join("node");
    network.start_member(small);
    let first = network.submit(501, 3 * SEGMENT_BYTES);
    network.upload_owned(first, 0);
    network.upload_owned(first, small);
    network.wait_converged();

    // Room for the extent in use and a little more, not for another 16 MiB extent.
    let ballast_path = disk.path().join("ballast");
    let keep = 8u64 << 20;
    let fill = usize::try_from(disk.free_bytes().saturating_sub(keep)).expect("fits memory");
    std::fs::write(&ballast_path, vec![1u8; fill]).expect("fill the disk");
    assert!(disk.free_bytes() < 16 << 20, "the disk is nearly full");

    let big = network.submit(502, 80 * SEGMENT_BYTES);
    network.upload_owned(big, 0);
    let rpc = network.members[small].rpc();
    rpc.wait_indexed(network.files[big].tx_seq);
    let mut refused = None;
    for segment in 0..network.files[big].segments() {
        match upload_one(&rpc, &network.files[big], small, segment) {
            Ok(()) => {}
            Err(error) if error.starts_with("duplicate_segment") => {}
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    let refused = refused.expect("the small disk cannot take 20 MiB more");
    assert!(
        refused.starts_with("storage_full") && refused.contains("storage full"),
        "{refused}"
    );
    // Reads go on: the first file is still served with proofs.
    let root = network.files[first].tree.root();
    for segment in 0..network.files[first].segments() {
        let answer = rpc.call(
            "zgs_downloadSegmentWithProofByTxSeq",
            json!([network.files[first].tx_seq, segment]),
        );
        verified_segment(&answer, &root, &network.files[first], segment)
            .expect("a stored segment reads back while the disk is full");
    }
    assert_eq!(
        rpc.call("zgs_checkFileFinalized", json!([network.files[big].tx_seq])),
        json!(false)
    );

    std::fs::remove_file(&ballast_path).expect("free the space");
    network.check();
    drop(network);
    drop(disk);
}
