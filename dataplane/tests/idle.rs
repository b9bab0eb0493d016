//! An idle shard sleeps in the kernel (no busy polling, no timer ticks) and wakes up when the
//! control plane sends it work. Its own test binary, so no other test's shards share the
//! process and blur the CPU accounting.

mod common;

use common::{call, config, data_dir};
use dataplane::{DataPlane, Request, Response};
use std::time::Duration;

/// CPU time (in clock ticks) used so far by this process's shard threads.
fn shard_cpu_ticks() -> u64 {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
    {
        let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        if !comm.starts_with("zerog-shard") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).expect("task stat");
        // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
        let after_comm = &stat[stat.rfind(')').expect("comm is parenthesised") + 2..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        ticks += utime + stime;
    }
    ticks
}

#[test]
fn idle_shards_sleep_and_wake_on_requests() {
    let dir = data_dir();
    let (plane, mut clients) = DataPlane::start(config(dir.path(), 2)).expect("start");
    for client in &mut clients {
        assert!(matches!(call(client, Request::Stats), Response::Stats(_)));
    }
    let before = shard_cpu_ticks();
    std::thread::sleep(Duration::from_millis(600));
    let after = shard_cpu_ticks();
    // A spinning shard would burn ~60 ticks per thread in 600 ms; allow scheduler noise.
    assert!(
        after - before <= 3,
        "idle shards used {} ticks of CPU",
        after - before
    );
    for client in &mut clients {
        assert!(
            matches!(call(client, Request::Stats), Response::Stats(_)),
            "woken after idling"
        );
    }
    plane.shutdown().expect("clean shutdown");
}
