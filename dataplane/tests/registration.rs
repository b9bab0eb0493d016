//! IO memory is sized by what the kernel grants, measured, and start-up never fails for want
//! of it. Its own test binary: it lowers the process's memlock limit, and its thread gives up
//! `CAP_IPC_LOCK`, so that registrations are charged and can be refused.

mod common;

use common::{TestFile, call, config};
use dataplane::sim::SimDisk;
use dataplane::{BufferMode, DataPlane, DataPlaneConfig, Response};
use glommio::LocalExecutorBuilder;
use kernel_bypass::{GLOMMIO_MIN_IO_MEMORY_BYTES, REGISTRATIONS_PER_EXECUTOR};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
use std::path::Path;
use std::sync::mpsc;
use types::SEGMENT_BYTES;

const MIB: usize = 1 << 20;
/// The memlock limit the test runs under (the one of the machine it was written on).
const LIMIT_BYTES: u64 = 8 << 20;

/// An executor from this thread that keeps `io_memory` bytes registered (charged three times
/// against the user's memlock) until the returned sender is dropped. The kernel releases the
/// charges of closed rings in the background, so a refused registration is retried a while.
fn squat(io_memory: usize) -> (mpsc::Sender<()>, glommio::ExecutorJoinHandle<()>) {
    for _ in 0..100 {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (measured_tx, measured_rx) = mpsc::channel();
        let join = LocalExecutorBuilder::default()
            .io_memory(io_memory)
            .spawn(move || async move {
                let registration = kernel_bypass::executor_registration().expect("measurable");
                let registered = registration.is_registered();
                measured_tx
                    .send(registration.pinned_bytes)
                    .expect("test waits");
                if registered {
                    // Blocks this executor's thread: it only has to hold its registration.
                    let _ = release_rx.recv();
                }
            })
            .expect("squatter starts");
        let pinned = measured_rx.recv().expect("squatter measured");
        if pinned > 0 {
            assert_eq!(pinned, io_memory as u64 * REGISTRATIONS_PER_EXECUTOR);
            return (release_tx, join);
        }
        join.join().expect("refused squatter ends");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("a squatter of {io_memory} bytes never registered");
}

fn two_shards(desired: usize) -> DataPlaneConfig {
    DataPlaneConfig {
        io_memory_bytes_per_shard: Some(desired),
        ..config(Path::new("/sim/registration"), 2)
    }
}

/// Writes and reads a segment on every shard: the plane works whatever its buffers.
fn assert_serves(plane: &DataPlane, clients: &mut [dataplane::ShardClient], tx_seq: u64) {
    let file = TestFile::new(tx_seq, 2 * SEGMENT_BYTES);
    for segment in 0..2 {
        let client = &mut clients[plane.shard_for(types::FlowSegmentIndex(segment))];
        assert!(matches!(
            call(client, file.write(segment, segment)),
            Response::Written { .. }
        ));
        assert_eq!(
            call(client, file.read(segment, segment)),
            Response::Data(file.upload(segment))
        );
    }
}

#[test]
fn refused_registrations_fall_back_to_smaller_slabs_then_to_none() {
    common::init_logs();
    let limit = getrlimit(Resource::Memlock);
    if limit.current.is_none_or(|current| current > LIMIT_BYTES) {
        setrlimit(
            Resource::Memlock,
            Rlimit {
                current: Some(LIMIT_BYTES),
                maximum: limit.maximum,
            },
        )
        .expect("lowering the soft memlock limit is always allowed");
    }
    let mut sets = capabilities(None).expect("capabilities");
    sets.effective.remove(CapabilitySet::IPC_LOCK);
    set_capabilities(None, sets).expect("dropping a capability is always allowed");
    let limit_bytes = getrlimit(Resource::Memlock).current.expect("limited now");

    // 1. A squatter holds 3 MiB of the limit, which the plan (made from the limit alone)
    // does not know: 8 MiB less a quarter of headroom over 2 shards x 3 rings plans 1 MiB per
    // shard, and the second shard cannot have it.
    let (release, squatter) = squat(MIB);
    let disk = SimDisk::new(1);
    let (plane, mut clients) =
        DataPlane::start_with(two_shards(4 * MIB), disk.clone()).expect("start");
    let report = plane.buffer_report().clone();
    assert!(!report.ipc_lock);
    assert_eq!(report.memlock_limit_bytes, Some(limit_bytes));
    assert_eq!(report.desired_bytes_per_shard, 4 * MIB);
    assert_eq!(report.planned_bytes_per_shard, MIB);
    let second = &report.shards[1];
    assert!(second.sizes_refused > 0, "{report:#?}");
    assert!(second.io_memory_bytes < MIB, "{report:#?}");
    for shard in &report.shards {
        if let BufferMode::Registered { bytes_per_shard } = shard.mode {
            assert_eq!(bytes_per_shard, shard.io_memory_bytes);
            assert_eq!(shard.pinned_bytes, 3 * bytes_per_shard as u64);
        }
    }
    assert!(
        report.pinned_bytes + 3 * MIB as u64 <= limit_bytes,
        "what was granted fits the limit: {report:#?}"
    );
    assert_serves(&plane, &mut clients, 1);
    plane.shutdown().expect("clean shutdown");
    drop(release);
    squatter.join().expect("squatter ends");

    // 2. A squatter takes all but 224 KiB: room for the shards' rings (the kernel charges
    // those too, some 40 KiB an executor), not for glommio's minimum slab three times, so both
    // shards run unregistered after halving down to it. Start-up succeeds.
    let nearly_all = (limit_bytes as usize - 224 * 1024) / 3 / 4096 * 4096;
    let (release, squatter) = squat(nearly_all);
    let (plane, mut clients) =
        DataPlane::start_with(two_shards(MIB), disk.clone()).expect("start without pinning");
    let report = plane.buffer_report().clone();
    assert_eq!(report.mode.label(), "unregistered", "{report:#?}");
    assert_eq!(report.pinned_bytes, 0);
    for shard in &report.shards {
        assert_eq!(shard.io_memory_bytes, GLOMMIO_MIN_IO_MEMORY_BYTES);
        assert_eq!(shard.registered_rings, 0);
    }
    // The first shard walked the ladder from the plan; the second started where it ended.
    assert_eq!(report.shards[0].sizes_refused, 4, "{report:#?}");
    assert_eq!(report.shards[1].sizes_refused, 0, "{report:#?}");
    let stats = common::stats(&mut clients[0]);
    assert_eq!(stats.buffer_mode.label(), "unregistered");
    assert_serves(&plane, &mut clients, 2);
    plane.shutdown().expect("clean shutdown");
    drop(release);
    squatter.join().expect("squatter ends");
}
