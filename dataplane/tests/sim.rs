//! The whole write path on the simulated disk: real glommio executors, rings, batches,
//! verification, placement, writes, syncs and redb commits, with the extents and the index on
//! a `SimDisk` that fails writes and syncs, tears writes and loses unsynced data at crashes,
//! all decided by a seed. The invariants:
//!
//! - an acknowledged segment survives any crash and reads back, verified against its file;
//! - a failed write, sync or commit acknowledges nothing, and nothing of it is found later;
//! - after a crash the write cursor comes from the index: bytes that unacknowledged batches
//!   left in the extents are written over, and acknowledged records never are.

mod common;

use common::{TestFile, call, call_all, config, stats};
use dataplane::sim::{SimDisk, SimFaults};
use dataplane::{DataPlane, DataPlaneConfig, Request, Response, ShardClient};
use std::collections::BTreeSet;
use std::path::Path;
use types::{SEGMENT_BYTES, SegmentIndex};

/// Where the simulated shards live (a path on the simulated disk only).
const SIM_DIR: &str = "/sim/node";

fn sim_config(max_batch: usize, pipelined: bool) -> DataPlaneConfig {
    DataPlaneConfig {
        max_batch,
        pipelined,
        ..config(Path::new(SIM_DIR), 1)
    }
}

fn start(disk: &SimDisk, config: DataPlaneConfig) -> (DataPlane, Vec<ShardClient>) {
    common::init_logs();
    DataPlane::start_with(config, disk.clone()).expect("the data plane starts on the sim disk")
}

/// Reads `segment` of `file` and checks it as a client would: the bytes uploaded, and a proof
/// that verifies against the file root.
fn assert_reads_back_verified(client: &mut ShardClient, file: &TestFile, segment: u64) {
    let Response::Data(data) = call(client, file.read(segment, segment)) else {
        panic!("segment {segment} of tx {} does not read back", file.tx_seq);
    };
    assert_eq!(data, file.upload(segment), "segment {segment}");
    let proof = file.tree.proof(SegmentIndex(segment)).expect("in range");
    merkle::file::verify_segment(
        &file.tree.root(),
        file.data.len() as u64,
        SegmentIndex(segment),
        &data,
        &proof,
    )
    .expect("the bytes read back verify against the file root");
}

fn stored(client: &mut ShardClient, file: &TestFile) -> BTreeSet<u64> {
    match call(
        client,
        Request::Stored {
            tx_seq: file.tx_seq,
        },
    ) {
        Response::Stored(stored) => stored.into_iter().map(|(segment, _)| segment.0).collect(),
        other => panic!("expected stored segments, got {other:?}"),
    }
}

/// Many seeds: faults of every kind while a file is uploaded in batches, a crash at a seeded
/// point in the middle, a restart. Every acknowledged segment is there and verifies; the rest
/// of the file can then be written after it without touching it.
#[test]
fn acknowledged_segments_survive_crashes_at_any_point() {
    const SEGMENTS: u64 = 24;
    let file = TestFile::new(31, SEGMENTS as usize * SEGMENT_BYTES);
    let mut crashes_mid_run = 0;
    for seed in 0..16u64 {
        let disk = SimDisk::new(seed);
        let config = sim_config(4, seed % 2 == 0);
        let (plane, mut clients) = start(&disk, config.clone());
        let client = &mut clients[0];
        disk.set_faults(SimFaults {
            extent_write_error: 0.03,
            extent_torn_write: 0.03,
            extent_sync_error: 0.03,
            extent_allocate_error: 0.03,
            index_write_error: 0.002,
            index_sync_error: 0.005,
        })
        .expect("valid rates");
        // Somewhere within the run: a 24-segment upload takes on the order of 150 operations.
        disk.crash_after(10 + (seed * 37) % 160);
        let mut acknowledged = BTreeSet::new();
        for round in 0..(SEGMENTS / 8) {
            let segments: Vec<u64> = (round * 8..round * 8 + 8).collect();
            let writes = segments.iter().map(|s| file.write(*s, *s)).collect();
            for (segment, answer) in segments.iter().zip(call_all(client, writes)) {
                match answer {
                    Response::Written { segment_root }
                    | Response::AlreadyStored { segment_root } => {
                        assert_eq!(segment_root, file.segment_root(*segment));
                        acknowledged.insert(*segment);
                    }
                    Response::Failed(_) | Response::StorageFull(_) => {}
                    other => panic!("seed {seed}: segment {segment}: {other:?}"),
                }
            }
        }
        plane
            .shutdown()
            .expect("shards stop cleanly after IO failures");
        if disk.is_down() {
            crashes_mid_run += 1;
        } else {
            disk.crash();
        }
        disk.restart();
        disk.set_faults(SimFaults::NONE).expect("valid rates");

        let (plane, mut clients) = start(&disk, config);
        let client = &mut clients[0];
        let recovered = stored(client, &file);
        assert!(
            recovered.is_superset(&acknowledged),
            "seed {seed}: acknowledged {acknowledged:?}, recovered {recovered:?}"
        );
        for segment in &recovered {
            assert_reads_back_verified(client, &file, *segment);
        }
        let after_crash = stats(client);
        assert_eq!(after_crash.segments_stored, recovered.len() as u64);
        // The rest goes after the cursor the index gives, and overwrites no stored record.
        let missing: Vec<u64> = (0..SEGMENTS).filter(|s| !recovered.contains(s)).collect();
        let writes = missing.iter().map(|s| file.write(*s, *s)).collect();
        for answer in call_all(client, writes) {
            assert!(
                matches!(answer, Response::Written { .. }),
                "seed {seed}: {answer:?}"
            );
        }
        for segment in 0..SEGMENTS {
            assert_reads_back_verified(client, &file, segment);
        }
        let full = stats(client);
        assert_eq!(full.segments_stored, SEGMENTS);
        assert_eq!(
            full.record_bytes_used,
            after_crash.record_bytes_used + missing.len() as u64 * SEGMENT_BYTES as u64,
            "seed {seed}: new records start at the recovered cursor"
        );
        plane.shutdown().expect("clean shutdown");
    }
    assert!(
        crashes_mid_run >= 8,
        "only {crashes_mid_run} of 16 crashes struck mid-run: the crash points need moving"
    );
}

/// Each kind of fault alone, on every operation of its kind: the writes it strikes are
/// answered `Failed`, and after a crash and restart none of them is found, the segment
/// written before is intact, and the cursor stands right after it.
#[test]
fn each_failed_write_sync_or_commit_acknowledges_nothing() {
    let kinds = [
        (
            "extent write",
            SimFaults {
                extent_write_error: 1.0,
                ..SimFaults::NONE
            },
        ),
        (
            "torn extent write",
            SimFaults {
                extent_torn_write: 1.0,
                ..SimFaults::NONE
            },
        ),
        (
            "extent sync",
            SimFaults {
                extent_sync_error: 1.0,
                ..SimFaults::NONE
            },
        ),
        (
            "index write",
            SimFaults {
                index_write_error: 1.0,
                ..SimFaults::NONE
            },
        ),
        (
            "index sync",
            SimFaults {
                index_sync_error: 1.0,
                ..SimFaults::NONE
            },
        ),
    ];
    for (seed, (kind, faults)) in kinds.into_iter().enumerate() {
        let disk = SimDisk::new(seed as u64);
        let file = TestFile::new(40 + seed as u64, 5 * SEGMENT_BYTES);
        let config = sim_config(8, true);
        let (plane, mut clients) = start(&disk, config.clone());
        let client = &mut clients[0];
        assert!(matches!(
            call(client, file.write(0, 0)),
            Response::Written { .. }
        ));
        disk.set_faults(faults).expect("valid rates");
        let writes = (1..5).map(|s| file.write(s, s)).collect();
        for answer in call_all(client, writes) {
            assert!(
                matches!(answer, Response::Failed(_) | Response::StorageFull(_)),
                "{kind}: {answer:?}"
            );
        }
        disk.set_faults(SimFaults::NONE).expect("valid rates");
        plane.shutdown().expect("clean shutdown");
        disk.crash();
        disk.restart();

        let (plane, mut clients) = start(&disk, config);
        let client = &mut clients[0];
        assert_eq!(stored(client, &file), BTreeSet::from([0]), "{kind}");
        for segment in 1..5 {
            assert_eq!(
                call(client, file.read(segment, segment)),
                Response::NotFound
            );
        }
        assert_reads_back_verified(client, &file, 0);
        assert_eq!(
            stats(client).record_bytes_used,
            SEGMENT_BYTES as u64,
            "{kind}: the cursor is the index's"
        );
        let writes = (1..5).map(|s| file.write(s, s)).collect();
        for answer in call_all(client, writes) {
            assert!(
                matches!(answer, Response::Written { .. }),
                "{kind}: {answer:?}"
            );
        }
        for segment in 0..5 {
            assert_reads_back_verified(client, &file, segment);
        }
        assert_eq!(stats(client).record_bytes_used, 5 * SEGMENT_BYTES as u64);
        plane.shutdown().expect("clean shutdown");
    }
}

/// An extent that cannot be allocated fails the records that need it ("disk full") and only
/// those; the extent is given back.
#[test]
fn a_refused_allocation_fails_only_the_records_that_need_the_new_extent() {
    let disk = SimDisk::new(9);
    let file = TestFile::new(50, 4 * SEGMENT_BYTES);
    let (plane, mut clients) = start(&disk, sim_config(8, true));
    let client = &mut clients[0];
    assert!(matches!(
        call(client, file.write(0, 0)),
        Response::Written { .. }
    ));
    disk.set_faults(SimFaults {
        extent_allocate_error: 1.0,
        ..SimFaults::NONE
    })
    .expect("valid rates");
    // Two records per extent: segment 1 fits extent 0, segments 2 and 3 need extent 1.
    let answers = call_all(client, (1..4).map(|s| file.write(s, s)).collect());
    assert!(
        matches!(answers[0], Response::Written { .. }),
        "{:?}",
        answers[0]
    );
    for answer in &answers[1..] {
        let Response::StorageFull(reason) = answer else {
            panic!("expected disk full, got {answer:?}");
        };
        assert!(reason.starts_with("disk full"), "{reason}");
    }
    let after = stats(client);
    assert_eq!((after.segments_stored, after.extents), (2, 1));
    plane.shutdown().expect("clean shutdown");
    assert!(
        !disk
            .files()
            .iter()
            .any(|path| path.ends_with("extent-1.dat"))
    );
}

/// A batch whose bytes are synced but whose commit fails leaves them in the extents; after a
/// crash the cursor comes from the index, so the next records go over them.
#[test]
fn the_write_cursor_comes_from_the_index_not_the_extents() {
    let disk = SimDisk::new(11);
    let first = TestFile::new(60, 4 * SEGMENT_BYTES);
    let second = TestFile::new(61, 2 * SEGMENT_BYTES);
    let config = sim_config(8, false);
    let (plane, mut clients) = start(&disk, config.clone());
    let client = &mut clients[0];
    for answer in call_all(client, vec![first.write(0, 0), first.write(1, 1)]) {
        assert!(matches!(answer, Response::Written { .. }), "{answer:?}");
    }
    // Segments 2 and 3 reach extent 1 and are synced; their commit fails.
    disk.set_faults(SimFaults {
        index_sync_error: 1.0,
        ..SimFaults::NONE
    })
    .expect("valid rates");
    for answer in call_all(client, vec![first.write(2, 2), first.write(3, 3)]) {
        assert!(matches!(answer, Response::Failed(_)), "{answer:?}");
    }
    plane.shutdown().expect("clean shutdown");
    disk.crash();
    disk.restart();
    disk.set_faults(SimFaults::NONE).expect("valid rates");
    let extent_1 = Path::new(SIM_DIR).join("shard-0/extent-1.dat");
    assert_eq!(
        disk.peek(&extent_1, 0, 4096)
            .expect("extent 1 survived the crash"),
        first.upload(2)[..4096],
        "the uncommitted batch's synced bytes are on the disk"
    );

    let (plane, mut clients) = start(&disk, config);
    let client = &mut clients[0];
    let recovered = stats(client);
    assert_eq!(recovered.segments_stored, 2);
    assert_eq!(recovered.record_bytes_used, 2 * SEGMENT_BYTES as u64);
    assert_eq!(
        recovered.extents, 2,
        "the leftover extent counts as allocated"
    );
    for answer in call_all(client, vec![second.write(0, 10), second.write(1, 11)]) {
        assert!(matches!(answer, Response::Written { .. }), "{answer:?}");
    }
    assert_eq!(
        disk.peek(&extent_1, 0, 4096).expect("extent 1"),
        second.upload(0)[..4096],
        "placed at the index's cursor, over the uncommitted bytes"
    );
    let after = stats(client);
    assert_eq!(
        (after.record_bytes_used, after.extents),
        (4 * SEGMENT_BYTES as u64, 2)
    );
    for segment in 0..2 {
        assert_reads_back_verified(client, &first, segment);
    }
    for segment in 2..4 {
        assert_eq!(
            call(client, first.read(segment, segment)),
            Response::NotFound
        );
    }
    for (segment, flow_segment) in [(0, 10), (1, 11)] {
        assert_eq!(
            call(client, second.read(segment, flow_segment)),
            Response::Data(second.upload(segment))
        );
    }
    plane.shutdown().expect("clean shutdown");
}

/// One write at a time, batches settled one after another: the same seed gives the same
/// answers and the same faults, a different seed others.
#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed: u64| {
        let disk = SimDisk::new(seed);
        disk.set_faults(SimFaults {
            extent_write_error: 0.1,
            extent_torn_write: 0.1,
            extent_sync_error: 0.1,
            extent_allocate_error: 0.1,
            ..SimFaults::NONE
        })
        .expect("valid rates");
        let file = TestFile::new(70, 12 * SEGMENT_BYTES);
        let (plane, mut clients) = start(&disk, sim_config(1, false));
        let answers: Vec<bool> = (0..12)
            .map(|segment| {
                matches!(
                    call(&mut clients[0], file.write(segment, segment)),
                    Response::Written { .. }
                )
            })
            .collect();
        plane.shutdown().expect("clean shutdown");
        (answers, disk.stats())
    };
    let first = run(5);
    assert_eq!(first, run(5));
    assert!(
        first.0.contains(&true) && first.0.contains(&false),
        "{first:?}"
    );
    assert_ne!(first.0, run(6).0);
}
