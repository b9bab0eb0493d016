//! The one place that starts real `zerog` processes — nodes of every kind and standalone S3
//! gateways — for the integration tests and the benchmarks, with the helpers they share.
//!
//! Key decision: a process is ready when it has *printed* its endpoints (`  rpc      http://…`),
//! never when a port happens to answer or a sleep has passed. `zerog` binds its listeners before
//! it prints them, so the printed line is both the readiness signal and the only way to learn a
//! port the kernel chose (`127.0.0.1:0`). The binary is found, never built: a test that runs
//! cargo races the build that is running it, so a missing binary is an [`Error`] that says which
//! `cargo build` to run. Starting and stopping return `Result`s (a benchmark reports them; a test
//! calls `expect`, and [`Error`]'s `Debug` is its message); the test helpers ([`Rpc`], [`cli`],
//! [`sdk_with_package`], …) panic with a clear message instead, because a failed check is a
//! failed test.

mod cli;
mod data;
mod faults;
mod process;
mod rpc;
mod workspace;

pub use cli::{cli, cli_fails};
pub use data::{SEED_ENV, random_bytes, segment_json, test_seed, verified_segment};
pub use faults::{Host, SmallDisk};
pub use process::{BIN_ENV, Error, Launch, Process, S3Keys, Transcript, Zerog};
pub use rpc::Rpc;
pub use workspace::{require_node_js, sdk_with_package, workspace_root};
