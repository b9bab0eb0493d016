//! Starts real `zerog` processes through `harness` (a dev node with its built-in S3 gateway, or
//! a node and a standalone `zerog gateway`) on free loopback ports, and finds the real S3 clients
//! that `scripts/test` installs: awscli and boto3 in a Python venv, s3cmd and rclone from Debian.
//! The `zerog` binary belongs to another package: it is looked up beside the test binary (or in
//! `ZEROG_BIN`), never built here; `cargo build --bin zerog` builds it.
#![allow(dead_code)]

pub use harness::random_bytes;
use harness::{Process, Zerog, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const ACCESS_KEY: &str = "zerog-dev";
pub const SECRET_KEY: &str = "zerog-dev-secret-key";

fn zerog() -> Zerog {
    Zerog::locate().expect("the zerog binary")
}

/// `zerog node --dev` with its built-in gateway, both on free loopback ports.
pub struct DevNode {
    pub process: Process,
    pub rpc: String,
    pub s3: String,
}

impl DevNode {
    pub fn start(data_dir: &Path) -> DevNode {
        let process = zerog()
            .test_node(data_dir)
            .args(["--dev", "--s3", "127.0.0.1:0"])
            .start()
            .expect("the dev node and its gateway start");
        let rpc = process.rpc_url().expect("the node's rpc endpoint");
        let s3 = process.s3_url().expect("the gateway's endpoint");
        assert!(s3.starts_with("http://"), "the gateway did not start: {s3}");
        DevNode { process, rpc, s3 }
    }
}

/// A node without a gateway and a standalone `zerog gateway` in front of it.
pub struct Separate {
    pub node: Process,
    pub gateway: Process,
    pub rpc: String,
    pub s3: String,
}

impl Separate {
    pub fn start(node_dir: &Path, gateway_dir: &Path) -> Separate {
        Separate::start_with(node_dir, gateway_dir, &[])
    }

    /// A node and a gateway started with the test keys and `gateway_args` more.
    pub fn start_with(node_dir: &Path, gateway_dir: &Path, gateway_args: &[&str]) -> Separate {
        let node = zerog()
            .test_node(node_dir)
            .arg("--dev")
            .start()
            .expect("the node starts");
        let rpc = node.rpc_url().expect("the node's rpc endpoint");
        let gateway = start_gateway_with(&rpc, gateway_dir, gateway_args);
        let s3 = gateway.s3_url().expect("the gateway's endpoint");
        Separate {
            node,
            gateway,
            rpc,
            s3,
        }
    }
}

pub fn start_gateway(rpc: &str, data_dir: &Path) -> Process {
    start_gateway_with(rpc, data_dir, &[])
}

pub fn start_gateway_with(rpc: &str, data_dir: &Path, args: &[&str]) -> Process {
    zerog()
        .gateway(rpc, data_dir)
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .args(args)
        .start()
        .expect("the gateway starts")
}

/// The Python venv `scripts/test` installs awscli and boto3 into. Tests fail here, never
/// skip, when it is missing.
pub fn venv_bin(program: &str) -> PathBuf {
    let path = workspace_root()
        .join("target/s3-clients/venv/bin")
        .join(program);
    assert!(
        path.is_file(),
        "{} is missing: run ./scripts/test (it installs awscli and boto3, pinned, into target/s3-clients/venv)",
        path.display()
    );
    path
}

/// A Debian program (`s3cmd`, `rclone`); fails with the install hint when missing.
pub fn system_program(program: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join(program);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "{program} is not installed: run ./scripts/test (it installs s3cmd and rclone with apt-get)"
    );
}

/// Runs a command, returning its output; panics with both streams on failure.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("the client runs");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a command that must fail; returns its stderr and stdout.
pub fn run_fails(command: &mut Command) -> String {
    let output = command.output().expect("the client runs");
    assert!(
        !output.status.success(),
        "{command:?} should have failed:\nstdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )
}

/// Runs a Python script of `tests/clients/` with the venv's interpreter against `endpoint`.
pub fn python_script(script: &str, endpoint: &str, args: &[&str]) -> Output {
    python_script_with(script, endpoint, args, &[])
}

/// [`python_script`] with more environment variables.
pub fn python_script_with(
    script: &str,
    endpoint: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    run_ok(
        Command::new(venv_bin("python"))
            .arg(path)
            .args(args)
            .envs(env.iter().copied())
            .env("S3_ENDPOINT", endpoint)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    )
}

/// The awscli with credentials for `endpoint`.
pub fn aws(endpoint: &str) -> Command {
    aws_as(endpoint, ACCESS_KEY, SECRET_KEY)
}

/// The awscli signing as another user.
pub fn aws_as(endpoint: &str, access_key: &str, secret_key: &str) -> Command {
    let mut command = Command::new(venv_bin("aws"));
    command
        .args(["--endpoint-url", endpoint])
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    command
}
