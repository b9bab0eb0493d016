//! `zerog`: the appliance's one binary. `zerog node` runs a storage node (control plane on one
//! tokio thread, data plane on one glommio executor per core); the other subcommands are
//! clients of a node's JSON-RPC API, and `zerog gateway` serves S3 in front of one.
//!
//! This file only parses the command line (`cli`) and hands each subcommand to its handler:
//! `node::boot` starts a node, `commands` runs the clients and the gateway.
#![forbid(unsafe_code)]

mod api;
mod chain;
mod cli;
mod commands;
mod da_node;
mod index;
mod metrics;
mod node;
mod rpc;
mod server;
mod shards;
mod validator;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    commands::run(cli::Cli::parse().command)
}
