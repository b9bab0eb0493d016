//! The data plane end to end: real glommio executors, real O_DIRECT extents in a temporary
//! directory on the build disk, real redb indexes.

mod common;

use common::{TestFile, call, call_all, config, data_dir, stats};
use dataplane::{BufferMode, DataPlane, DataPlaneConfig, ProofError, Request, Response};
use types::{FlowSegmentIndex, SEGMENT_BYTES, SegmentIndex};

const KIB: usize = 1024;

#[test]
fn segments_read_back_byte_identical() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("start");
    let client = &mut clients[0];
    // Three full segments and a partial one whose last chunk is zero-filled.
    let file = TestFile::new(1, 3 * SEGMENT_BYTES + 5000);
    let writes = (0..file.segments())
        .map(|segment| file.write(segment, 100 + segment))
        .collect();
    let answers = call_all(client, writes);
    for (segment, answer) in answers.into_iter().enumerate() {
        assert_eq!(
            answer,
            Response::Written {
                segment_root: file.segment_root(segment as u64)
            },
            "segment {segment}"
        );
    }
    let reads = (0..file.segments())
        .map(|segment| file.read(segment, 100 + segment))
        .collect();
    for (segment, answer) in call_all(client, reads).into_iter().enumerate() {
        assert_eq!(
            answer,
            Response::Data(file.upload(segment as u64)),
            "segment {segment}"
        );
    }
    assert_eq!(call(client, file.read(9, 109)), Response::NotFound);
    let stats = stats(client);
    assert_eq!(stats.segments_stored, 4);
    assert_eq!(
        stats.payload_bytes_stored,
        (3 * SEGMENT_BYTES + 5120) as u64
    );
    // Records are 4 KiB-aligned: 5120 bytes take 8 KiB; rollover after two 256 KiB records.
    assert_eq!(
        stats.record_bytes_used,
        (3 * SEGMENT_BYTES + 8 * KIB) as u64
    );
    assert_eq!(stats.extents, 2);
    assert!(stats.batches >= 1);
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn duplicates_are_already_stored_and_use_no_space() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("start");
    let client = &mut clients[0];
    let file = TestFile::new(2, SEGMENT_BYTES + 300);
    let root = file.segment_root(1);
    // The same segment twice in one go: one write, one duplicate.
    let answers = call_all(client, vec![file.write(1, 7), file.write(1, 7)]);
    assert_eq!(answers[0], Response::Written { segment_root: root });
    assert_eq!(answers[1], Response::AlreadyStored { segment_root: root });
    let before = stats(client);
    // And again later, from the index.
    assert_eq!(
        call(client, file.write(1, 7)),
        Response::AlreadyStored { segment_root: root }
    );
    let after = stats(client);
    assert_eq!(after.record_bytes_used, before.record_bytes_used);
    assert_eq!(after.segments_stored, 1);
    assert_eq!(after.segments_written, 1);
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn bad_proofs_are_rejected_and_nothing_is_written() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("start");
    let client = &mut clients[0];
    let file = TestFile::new(3, 2 * SEGMENT_BYTES);
    let before = stats(client);

    // Segment 0's data with segment 1's proof.
    let mut wrong_proof = file.write_segment(0, 0);
    wrong_proof.proof = file.tree.proof(SegmentIndex(1)).expect("in range");
    // Tampered data under a genuine proof.
    let mut tampered = file.write_segment(1, 1);
    tampered.data[10] ^= 1;
    // Data of the wrong length.
    let mut short = file.write_segment(1, 1);
    short.data.truncate(4096);
    let answers = call_all(
        client,
        vec![
            Request::Write(wrong_proof),
            Request::Write(tampered),
            Request::Write(short),
        ],
    );
    for answer in &answers {
        assert!(matches!(answer, Response::Rejected(_)), "{answer:?}");
    }
    assert!(matches!(
        answers[2],
        Response::Rejected(ProofError::DataLength { .. })
    ));

    let after = stats(client);
    assert_eq!(after.writes_rejected, 3);
    assert_eq!(
        (
            after.segments_stored,
            after.record_bytes_used,
            after.extents,
            after.batches
        ),
        (
            before.segments_stored,
            before.record_bytes_used,
            before.extents,
            before.batches
        )
    );
    assert_eq!(call(client, file.read(0, 0)), Response::NotFound);
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn restart_recovers_index_and_cursor_without_scanning() {
    let dir = data_dir();
    let first = TestFile::new(4, 3 * SEGMENT_BYTES + 100);
    let second = TestFile::new(5, 40 * KIB);
    {
        let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("start");
        let writes = (0..first.segments())
            .map(|segment| first.write(segment, segment))
            .collect();
        for answer in call_all(&mut clients[0], writes) {
            assert!(matches!(answer, Response::Written { .. }), "{answer:?}");
        }
        plane.shutdown().expect("clean shutdown");
    }
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("restart");
    let client = &mut clients[0];
    let reads = (0..first.segments())
        .map(|segment| first.read(segment, segment))
        .collect();
    for (segment, answer) in call_all(client, reads).into_iter().enumerate() {
        assert_eq!(
            answer,
            Response::Data(first.upload(segment as u64)),
            "segment {segment}"
        );
    }
    let expected: Vec<_> = (0..first.segments())
        .map(|segment| (SegmentIndex(segment), first.segment_root(segment)))
        .collect();
    assert_eq!(
        call(
            client,
            Request::Stored {
                tx_seq: first.tx_seq
            }
        ),
        Response::Stored(expected)
    );
    assert_eq!(
        call(
            client,
            Request::Stored {
                tx_seq: second.tx_seq
            }
        ),
        Response::Stored(vec![])
    );
    let recovered = stats(client);
    assert_eq!(recovered.segments_stored, 4);
    assert_eq!(recovered.segments_written, 0, "counted since start");

    // New writes continue after the recovered cursor and overwrite nothing.
    assert!(matches!(
        call(client, second.write(0, 50)),
        Response::Written { .. }
    ));
    assert_eq!(
        stats(client).record_bytes_used,
        recovered.record_bytes_used + (40 * KIB) as u64
    );
    let reads = (0..first.segments())
        .map(|segment| first.read(segment, segment))
        .collect();
    for (segment, answer) in call_all(client, reads).into_iter().enumerate() {
        assert_eq!(
            answer,
            Response::Data(first.upload(segment as u64)),
            "segment {segment}"
        );
    }
    assert_eq!(
        call(client, second.read(0, 50)),
        Response::Data(second.upload(0))
    );
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn extents_roll_over_when_full() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("start");
    let client = &mut clients[0];
    let file = TestFile::new(6, 5 * SEGMENT_BYTES);
    // One at a time and all together: rollover inside a batch and between batches.
    assert!(matches!(
        call(client, file.write(0, 0)),
        Response::Written { .. }
    ));
    let writes = (1..5).map(|segment| file.write(segment, segment)).collect();
    for answer in call_all(client, writes) {
        assert!(matches!(answer, Response::Written { .. }), "{answer:?}");
    }
    let stats = stats(client);
    assert_eq!(stats.extents, 3, "two records per extent");
    assert_eq!(stats.disk_bytes_allocated, 3 * 2 * SEGMENT_BYTES as u64);
    for extent in 0..3 {
        let path = dir.path().join(format!("shard-0/extent-{extent}.dat"));
        let size = std::fs::metadata(&path).expect("extent exists").len();
        assert_eq!(
            size,
            2 * SEGMENT_BYTES as u64,
            "{} is pre-allocated",
            path.display()
        );
    }
    let reads = (0..5).map(|segment| file.read(segment, segment)).collect();
    for (segment, answer) in call_all(client, reads).into_iter().enumerate() {
        assert_eq!(
            answer,
            Response::Data(file.upload(segment as u64)),
            "segment {segment}"
        );
    }
    // Records really bypass the page cache.
    let flags = common::open_flags(dir.path(), ".dat");
    assert!(!flags.is_empty(), "the shard keeps its extents open");
    assert!(
        flags.iter().all(|flags| flags & O_DIRECT != 0),
        "extents without O_DIRECT: {flags:?}"
    );
    plane.shutdown().expect("clean shutdown");
}

/// `O_DIRECT` on x86-64 and aarch64 Linux, as `/proc/self/fdinfo` shows it.
#[cfg(target_arch = "x86_64")]
const O_DIRECT: u32 = 0o40000;
#[cfg(target_arch = "aarch64")]
const O_DIRECT: u32 = 0o200000;

#[test]
fn disk_full_fails_only_what_does_not_fit() {
    let dir = data_dir();
    let one_extent = DataPlaneConfig {
        max_disk_bytes: Some(2 * SEGMENT_BYTES as u64),
        ..config(dir.path(), 1)
    };
    let file = TestFile::new(7, 3 * SEGMENT_BYTES + 4 * KIB);
    {
        let (plane, mut clients) = DataPlane::start(one_extent.clone()).expect("start");
        let client = &mut clients[0];
        let answers = call_all(
            client,
            (0..3).map(|segment| file.write(segment, segment)).collect(),
        );
        assert!(
            matches!(answers[0], Response::Written { .. }),
            "{:?}",
            answers[0]
        );
        assert!(
            matches!(answers[1], Response::Written { .. }),
            "{:?}",
            answers[1]
        );
        let Response::StorageFull(reason) = &answers[2] else {
            panic!("expected disk full, got {:?}", answers[2]);
        };
        assert!(reason.starts_with("disk full"), "{reason}");
        // Even a small record no longer fits: the one extent is full.
        assert!(matches!(
            call(client, file.write(3, 3)),
            Response::StorageFull(_)
        ));
        // Nothing half-indexed; what was written still reads back; duplicates still answer.
        let stats = stats(client);
        assert_eq!(
            (stats.segments_stored, stats.extents, stats.writes_failed),
            (2, 1, 2)
        );
        assert_eq!(call(client, file.read(2, 2)), Response::NotFound);
        assert_eq!(
            call(client, file.read(1, 1)),
            Response::Data(file.upload(1))
        );
        assert!(matches!(
            call(client, file.write(0, 0)),
            Response::AlreadyStored { .. }
        ));
        plane.shutdown().expect("clean shutdown");
    }
    // More room after a restart: the refused writes now succeed.
    let larger = DataPlaneConfig {
        max_disk_bytes: Some(4 * SEGMENT_BYTES as u64),
        ..one_extent
    };
    let (plane, mut clients) = DataPlane::start(larger).expect("restart");
    let client = &mut clients[0];
    for answer in call_all(client, vec![file.write(2, 2), file.write(3, 3)]) {
        assert!(matches!(answer, Response::Written { .. }), "{answer:?}");
    }
    for segment in 0..4 {
        assert_eq!(
            call(client, file.read(segment, segment)),
            Response::Data(file.upload(segment))
        );
    }
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn two_shards_own_alternate_flow_segments() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 2)).expect("start");
    assert_eq!(plane.shard_count(), 2);
    assert_buffer_report_is_consistent(&plane);
    let file = TestFile::new(8, 5 * SEGMENT_BYTES);
    // The file starts at flow segment 11: segments 0..5 land on shards 1, 0, 1, 0, 1.
    let flow = |segment: u64| 11 + segment;
    for segment in 0..5 {
        let shard = plane.shard_for(FlowSegmentIndex(flow(segment)));
        assert_eq!(shard, ((11 + segment) % 2) as usize);
        let answer = call(&mut clients[shard], file.write(segment, flow(segment)));
        assert_eq!(
            answer,
            Response::Written {
                segment_root: file.segment_root(segment)
            }
        );
    }
    let per_shard: Vec<u64> = clients
        .iter_mut()
        .map(|client| stats(client).segments_stored)
        .collect();
    assert_eq!(per_shard, vec![2, 3]);
    for (shard, client) in clients.iter_mut().enumerate() {
        let held: Vec<u64> = (0..5)
            .filter(|segment| (11 + segment) % 2 == shard as u64)
            .collect();
        let expected = held
            .iter()
            .map(|segment| (SegmentIndex(*segment), file.segment_root(*segment)))
            .collect();
        assert_eq!(
            call(
                client,
                Request::Stored {
                    tx_seq: file.tx_seq
                }
            ),
            Response::Stored(expected)
        );
        for segment in held {
            assert_eq!(
                call(client, file.read(segment, flow(segment))),
                Response::Data(file.upload(segment))
            );
        }
        assert!(
            dir.path()
                .join(format!("shard-{shard}/index.redb"))
                .exists()
        );
    }
    plane.shutdown().expect("clean shutdown");
}

/// A node that stores shard 1/2 of the flow: its odd flow segments spread over both cores,
/// each keeps its proof, and proofs survive a restart (the node cannot rebuild them from
/// segment roots it never sees).
#[test]
fn a_node_of_half_the_flow_spreads_its_segments_and_keeps_their_proofs() {
    let dir = data_dir();
    let position = types::ShardConfig::new(2, 1).expect("valid");
    let start = || {
        DataPlane::start(DataPlaneConfig {
            position,
            ..config(dir.path(), 2)
        })
        .expect("start")
    };
    let (plane, mut clients) = start();
    let file = TestFile::new(21, 8 * SEGMENT_BYTES);
    // The file starts at flow segment 10: this node owns its segments 1, 3, 5, 7 (flow 11, 13,
    // 15, 17), numbered 5, 6, 7, 8 among the node's own: cores 1, 0, 1, 0.
    let owned: Vec<u64> = (0..8).filter(|segment| (10 + segment) % 2 == 1).collect();
    let cores: Vec<usize> = owned
        .iter()
        .map(|segment| plane.shard_for(FlowSegmentIndex(10 + segment)))
        .collect();
    assert_eq!(cores, [1, 0, 1, 0]);
    for &segment in &owned {
        let core = plane.shard_for(FlowSegmentIndex(10 + segment));
        assert_eq!(
            call(&mut clients[core], file.write(segment, 10 + segment)),
            Response::Written {
                segment_root: file.segment_root(segment)
            }
        );
    }
    plane.shutdown().expect("clean shutdown");
    let (plane, mut clients) = start();
    for &segment in &owned {
        let core = plane.shard_for(FlowSegmentIndex(10 + segment));
        let proof = file.tree.proof(SegmentIndex(segment)).expect("in range");
        assert_eq!(
            call(
                &mut clients[core],
                Request::Proof {
                    tx_seq: file.tx_seq,
                    segment: SegmentIndex(segment)
                }
            ),
            Response::Proof(Some(Box::new(proof)))
        );
        assert_eq!(
            call(&mut clients[core], file.read(segment, 10 + segment)),
            Response::Data(file.upload(segment))
        );
    }
    // A segment it does not hold has no proof here.
    assert_eq!(
        call(
            &mut clients[0],
            Request::Proof {
                tx_seq: file.tx_seq,
                segment: SegmentIndex(0)
            }
        ),
        Response::Proof(None)
    );
    plane.shutdown().expect("clean shutdown");
}

/// Whatever the machine grants, the report says what was measured: a registered shard's slab
/// is pinned once per ring, the modes add up, and a charged limit was respected.
fn assert_buffer_report_is_consistent(plane: &DataPlane) {
    let report = plane.buffer_report();
    assert_eq!(report.shards.len(), plane.shard_count());
    assert_eq!(
        report.desired_bytes_per_shard,
        dataplane::default_io_memory_bytes(16)
    );
    assert!(report.planned_bytes_per_shard <= report.desired_bytes_per_shard);
    for shard in &report.shards {
        assert!(shard.io_memory_bytes <= report.planned_bytes_per_shard);
        match &shard.mode {
            BufferMode::Registered { bytes_per_shard } => {
                assert_eq!(*bytes_per_shard, shard.io_memory_bytes);
                assert_eq!(
                    shard.registered_rings,
                    kernel_bypass::REGISTRATIONS_PER_EXECUTOR
                );
                assert_eq!(
                    shard.pinned_bytes,
                    shard.io_memory_bytes as u64 * shard.registered_rings
                );
            }
            BufferMode::Unregistered { .. } => assert_eq!(shard.pinned_bytes, 0),
            other => panic!("shard {}: {other}", shard.shard),
        }
    }
    assert_eq!(
        report.pinned_bytes,
        report
            .shards
            .iter()
            .map(|shard| shard.pinned_bytes)
            .sum::<u64>()
    );
    if let (false, Some(limit)) = (report.ipc_lock, report.memlock_limit_bytes) {
        assert!(
            report.pinned_bytes <= limit,
            "{} pinned bytes exceed the charged limit of {limit}",
            report.pinned_bytes
        );
    }
    // The process pins at least what the shards registered while they run.
    if let Some(after) = report.process_pinned_bytes_after {
        assert!(after >= report.pinned_bytes, "VmPin {after} < {report:?}");
    }
    assert_eq!(plane.buffer_mode(), &report.mode);
}

#[test]
fn a_shard_layout_change_is_refused() {
    let dir = data_dir();
    let (plane, clients) = DataPlane::start(config(dir.path(), 2)).expect("start");
    drop(clients);
    plane.shutdown().expect("clean shutdown");
    let error =
        DataPlane::start(config(dir.path(), 1)).expect_err("one shard over a two-shard dir");
    assert!(error.to_string().contains("shard 0 of 2"), "{error}");
}

#[test]
fn shutdown_answers_what_was_queued() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("start");
    let client = &mut clients[0];
    let file = TestFile::new(9, 8 * SEGMENT_BYTES);
    for segment in 0..8 {
        client
            .try_send(segment, file.write(segment, segment))
            .expect("room");
    }
    plane.shutdown().expect("clean shutdown");
    let mut answers = Vec::new();
    client.drain(&mut answers);
    assert_eq!(answers.len(), 8);
    assert!(
        answers
            .iter()
            .all(|(_, answer)| matches!(answer, Response::Written { .. }))
    );
    assert!(client.is_closed());
}

#[test]
fn a_misrouted_segment_stops_the_shard() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 2)).expect("start");
    let file = TestFile::new(10, SEGMENT_BYTES);
    // Flow segment 1 belongs to shard 1: shard 0 must refuse to touch it.
    clients[0].try_send(0, file.read(0, 1)).expect("room");
    // The stopping shard wakes its waiting client, which then finds it closed.
    assert!(
        clients[0].wait(common::ANSWER_TIMEOUT),
        "the shard did not signal its stop"
    );
    let mut answers = Vec::new();
    clients[0].drain(&mut answers);
    assert!(answers.is_empty());
    assert!(clients[0].is_closed());
    // The other shard is unaffected.
    assert!(matches!(
        common::call(&mut clients[1], file.read(0, 1)),
        Response::NotFound
    ));
    let error = plane.shutdown().expect_err("shard 0 panicked");
    assert!(error.to_string().contains("shard 0"), "{error}");
}

#[test]
fn wake_ups_are_never_lost() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 2)).expect("start");
    // Alternate single round trips (the shard falls asleep between them), bursts (it is awake
    // while more arrive) and pauses of varying length around the moment it parks.
    for round in 0..600u64 {
        let client = &mut clients[(round % 2) as usize];
        let burst = 1 + (round % 5) as usize;
        let answers = call_all(client, vec![Request::Stats; burst]);
        assert!(
            answers
                .iter()
                .all(|answer| matches!(answer, Response::Stats(_)))
        );
        if round % 7 == 0 {
            std::thread::sleep(std::time::Duration::from_micros(round % 200));
        }
    }
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn bytes_of_a_crashed_batch_are_overwritten_after_restart() {
    use std::os::unix::fs::FileExt;
    let dir = data_dir();
    let file = TestFile::new(11, 2 * SEGMENT_BYTES);
    {
        let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("start");
        assert!(matches!(
            call(&mut clients[0], file.write(0, 0)),
            Response::Written { .. }
        ));
        plane.shutdown().expect("clean shutdown");
    }
    // What a batch that crashed before its index commit leaves behind: bytes past the
    // committed end of extent 0, and an allocated next extent that nothing points into.
    let shard_dir = dir.path().join("shard-0");
    let extent = std::fs::OpenOptions::new()
        .write(true)
        .open(shard_dir.join("extent-0.dat"))
        .expect("extent 0");
    extent
        .write_all_at(&vec![0xff; SEGMENT_BYTES], SEGMENT_BYTES as u64)
        .expect("garbage");
    std::fs::write(shard_dir.join("extent-1.dat"), vec![0xee; 8192]).expect("leftover extent");

    let (plane, mut clients) = DataPlane::start(config(dir.path(), 1)).expect("restart");
    let client = &mut clients[0];
    assert_eq!(
        stats(client).extents,
        2,
        "the leftover extent counts as allocated"
    );
    assert!(matches!(
        call(client, file.write(1, 1)),
        Response::Written { .. }
    ));
    let stats = stats(client);
    assert_eq!(
        stats.record_bytes_used,
        2 * SEGMENT_BYTES as u64,
        "written over the garbage"
    );
    assert_eq!(stats.extents, 2);
    for segment in 0..2 {
        assert_eq!(
            call(client, file.read(segment, segment)),
            Response::Data(file.upload(segment))
        );
    }
    plane.shutdown().expect("clean shutdown");
}

/// Batches of two, so that a few requests sent together make several batches: the second is
/// issued while the first settles (in the pipelined mode).
fn small_batches(dir: &std::path::Path, pipelined: bool) -> DataPlaneConfig {
    DataPlaneConfig {
        max_batch: 2,
        pipelined,
        ..config(dir, 1)
    }
}

#[test]
fn a_write_of_a_settling_key_waits_for_the_first_and_uses_no_space() {
    for pipelined in [true, false] {
        let dir = data_dir();
        let (plane, mut clients) =
            DataPlane::start(small_batches(dir.path(), pipelined)).expect("start");
        let client = &mut clients[0];
        let file = TestFile::new(21, 3 * SEGMENT_BYTES);
        // Batches [0, 1], [0, 1], [2, 0]: the second batch is hashed in well under the time it
        // takes the first to settle, so its keys are found in flight, not in the index.
        let answers = call_all(
            client,
            [0, 1, 0, 1, 2, 0]
                .into_iter()
                .map(|segment| file.write(segment, segment))
                .collect(),
        );
        let written = |segment| Response::Written {
            segment_root: file.segment_root(segment),
        };
        let already = |segment| Response::AlreadyStored {
            segment_root: file.segment_root(segment),
        };
        assert_eq!(
            answers,
            vec![
                written(0),
                written(1),
                already(0),
                already(1),
                written(2),
                already(0)
            ],
            "pipelined: {pipelined}"
        );
        let stats = stats(client);
        assert_eq!(stats.pipelined, pipelined);
        assert_eq!(stats.segments_stored, 3);
        assert_eq!(stats.segments_written, 3);
        assert_eq!(stats.record_bytes_used, 3 * SEGMENT_BYTES as u64);
        for segment in 0..3 {
            assert_eq!(
                call(client, file.read(segment, segment)),
                Response::Data(file.upload(segment))
            );
        }
        plane.shutdown().expect("clean shutdown");
    }
}

#[test]
fn reads_and_queries_see_writes_that_are_still_settling() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(DataPlaneConfig {
        max_batch: 1,
        ..small_batches(dir.path(), true)
    })
    .expect("start");
    let client = &mut clients[0];
    let file = TestFile::new(22, 2 * SEGMENT_BYTES);
    // One request per batch: each read and query comes while the write before it settles.
    let answers = call_all(
        client,
        vec![
            file.write(0, 0),
            file.read(0, 0),
            file.write(1, 1),
            Request::Stored {
                tx_seq: file.tx_seq,
            },
            file.read(1, 1),
        ],
    );
    assert!(matches!(answers[0], Response::Written { .. }));
    assert_eq!(answers[1], Response::Data(file.upload(0)));
    assert!(matches!(answers[2], Response::Written { .. }));
    assert_eq!(
        answers[3],
        Response::Stored(vec![
            (SegmentIndex(0), file.segment_root(0)),
            (SegmentIndex(1), file.segment_root(1)),
        ])
    );
    assert_eq!(answers[4], Response::Data(file.upload(1)));
    plane.shutdown().expect("clean shutdown");
}

#[test]
fn pipelined_batches_place_records_apart_and_restart_from_the_index() {
    let dir = data_dir();
    let file = TestFile::new(23, 9 * SEGMENT_BYTES);
    {
        let (plane, mut clients) =
            DataPlane::start(small_batches(dir.path(), true)).expect("start");
        // Five batches back to back, each issued while the one before settles, rolling over
        // the two-record extents: no two records may share space.
        let writes = (0..9).map(|segment| file.write(segment, segment)).collect();
        for answer in call_all(&mut clients[0], writes) {
            assert!(matches!(answer, Response::Written { .. }), "{answer:?}");
        }
        let stats = stats(&mut clients[0]);
        assert_eq!(stats.record_bytes_used, 9 * SEGMENT_BYTES as u64);
        assert_eq!(stats.extents, 5);
        plane.shutdown().expect("clean shutdown");
    }
    // What two unsettled batches leave behind at a crash: bytes past the committed end of the
    // last extent, and an extent each that they allocated and nothing points into.
    let shard_dir = dir.path().join("shard-0");
    {
        use std::os::unix::fs::FileExt;
        let last = std::fs::OpenOptions::new()
            .write(true)
            .open(shard_dir.join("extent-4.dat"))
            .expect("extent 4");
        last.write_all_at(&vec![0xff; SEGMENT_BYTES], SEGMENT_BYTES as u64)
            .expect("garbage");
    }
    for extent in [5, 6] {
        std::fs::write(
            shard_dir.join(format!("extent-{extent}.dat")),
            vec![0xee; 2 * SEGMENT_BYTES],
        )
        .expect("leftover extent");
    }
    let (plane, mut clients) = DataPlane::start(small_batches(dir.path(), true)).expect("restart");
    let client = &mut clients[0];
    let recovered = stats(client);
    assert_eq!(recovered.segments_stored, 9);
    assert_eq!(
        recovered.extents, 7,
        "both leftover extents count as allocated"
    );
    let more = TestFile::new(24, 3 * SEGMENT_BYTES);
    let writes = (0..3).map(|segment| more.write(segment, segment)).collect();
    for answer in call_all(client, writes) {
        assert!(matches!(answer, Response::Written { .. }), "{answer:?}");
    }
    let after = stats(client);
    assert_eq!(
        after.record_bytes_used,
        12 * SEGMENT_BYTES as u64,
        "the cursor came from the index: the garbage was written over, then the leftovers reused"
    );
    assert_eq!(after.extents, 7);
    let reads = (0..9)
        .map(|segment| file.read(segment, segment))
        .chain((0..3).map(|segment| more.read(segment, segment)))
        .collect();
    let expected: Vec<_> = (0..9)
        .map(|segment| Response::Data(file.upload(segment)))
        .chain((0..3).map(|segment| Response::Data(more.upload(segment))))
        .collect();
    assert_eq!(call_all(client, reads), expected);
    plane.shutdown().expect("clean shutdown");
}

/// Where the record of `segment` of `file` starts in `extent`: its first bytes, found.
fn record_offset(extent: &std::path::Path, file: &TestFile, segment: u64) -> u64 {
    let bytes = std::fs::read(extent).expect("read the extent");
    let needle = &file.upload(segment)[..256];
    bytes
        .windows(needle.len())
        .step_by(4096)
        .position(|window| window == needle)
        .map(|at| at as u64 * 4096)
        .expect("the record is in the extent")
}

#[test]
fn a_damaged_segment_is_never_served_and_is_dropped_so_it_can_be_written_again() {
    use std::os::unix::fs::FileExt;
    let dir = data_dir();
    let position = types::ShardConfig::new(2, 1).expect("valid");
    let start = || {
        DataPlane::start(DataPlaneConfig {
            position,
            extent_bytes: 8 * SEGMENT_BYTES as u64,
            ..config(dir.path(), 1)
        })
        .expect("start")
    };
    let file = TestFile::new(22, 4 * SEGMENT_BYTES);
    // From flow segment 10 on, this node owns the file's segments 1 and 3.
    let scrub = |segment: u64| Request::Scrub {
        tx_seq: file.tx_seq,
        segment: SegmentIndex(segment),
        flow_segment: FlowSegmentIndex(10 + segment),
        file_root: file.tree.root(),
        file_size: file.data.len() as u64,
    };
    let (plane, mut clients) = start();
    for segment in [1, 3] {
        assert!(matches!(
            call(&mut clients[0], file.write(segment, 10 + segment)),
            Response::Written { .. }
        ));
    }
    assert_eq!(
        call(&mut clients[0], scrub(1)),
        Response::Scrubbed {
            bytes: SEGMENT_BYTES as u64
        }
    );
    plane.shutdown().expect("clean shutdown");

    // One flipped bit in each record while the node is down.
    let extent_path = dir.path().join("shard-0").join("extent-0.dat");
    let offsets = [1, 3].map(|segment| record_offset(&extent_path, &file, segment));
    let extent = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&extent_path)
        .expect("extent 0");
    for offset in offsets {
        let mut byte = [0u8; 1];
        extent
            .read_exact_at(&mut byte, offset + 1000)
            .expect("read");
        extent
            .write_all_at(&[byte[0] ^ 0x10], offset + 1000)
            .expect("flip a bit");
    }
    extent.sync_all().expect("sync");
    drop(extent);

    let (plane, mut clients) = start();
    // A scrub finds one, a client read the other: neither is served, both are dropped.
    let scrubbed = call(&mut clients[0], scrub(1));
    assert!(
        matches!(&scrubbed, Response::Damaged(reason) if reason.contains("checksum mismatch")),
        "{scrubbed:?}"
    );
    let read = call(&mut clients[0], file.read(3, 13));
    assert!(
        matches!(&read, Response::Damaged(reason) if reason.contains("checksum mismatch")),
        "{read:?}"
    );
    for segment in [1, 3] {
        assert_eq!(
            call(&mut clients[0], file.read(segment, 10 + segment)),
            Response::NotFound
        );
        assert_eq!(
            call(
                &mut clients[0],
                Request::Proof {
                    tx_seq: file.tx_seq,
                    segment: SegmentIndex(segment)
                }
            ),
            Response::Proof(None)
        );
    }
    assert_eq!(
        call(
            &mut clients[0],
            Request::Stored {
                tx_seq: file.tx_seq
            }
        ),
        Response::Stored(Vec::new())
    );
    let after = stats(&mut clients[0]);
    assert_eq!(after.segments_stored, 0);
    assert_eq!(after.payload_bytes_stored, 0);
    assert_eq!(after.segments_dropped, 2);
    assert_eq!(after.segment_record_bytes_dead, 2 * SEGMENT_BYTES as u64);
    // A fresh copy is written in the damaged one's place.
    assert!(matches!(
        call(&mut clients[0], file.write(1, 11)),
        Response::Written { .. }
    ));
    assert_eq!(
        call(&mut clients[0], file.read(1, 11)),
        Response::Data(file.upload(1))
    );
    plane.shutdown().expect("clean shutdown");

    // The drop and the fresh copy are durable.
    let (plane, mut clients) = start();
    assert_eq!(
        call(&mut clients[0], file.read(1, 11)),
        Response::Data(file.upload(1))
    );
    assert_eq!(call(&mut clients[0], file.read(3, 13)), Response::NotFound);
    assert_eq!(
        call(&mut clients[0], scrub(1)),
        Response::Scrubbed {
            bytes: SEGMENT_BYTES as u64
        }
    );
    let last = stats(&mut clients[0]);
    assert_eq!((last.segments_stored, last.segments_dropped), (1, 2));
    assert_eq!(
        (last.segments_scrubbed, last.scrubbed_bytes),
        (1, SEGMENT_BYTES as u64)
    );
    plane.shutdown().expect("clean shutdown");
}
