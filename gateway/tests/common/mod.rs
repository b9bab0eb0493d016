//! Starts real `zerog` processes (a dev node with its built-in S3 gateway, or a node and a
//! standalone `zerog gateway`) on free loopback ports, and finds the real S3 clients that
//! `scripts/test` installs: awscli and boto3 in a Python venv, s3cmd and rclone from Debian.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

pub const ACCESS_KEY: &str = "zerog-dev";
pub const SECRET_KEY: &str = "zerog-dev-secret-key";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gateway sits inside the workspace")
        .to_path_buf()
}

/// The `zerog` binary of this build. It belongs to another package, so it is built here
/// (a no-op when `cargo test --workspace` already built it) and found beside the test binary.
pub fn zerog() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "controlplane", "--bin", "zerog"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the zerog binary failed");
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("tests run from target/<profile>/deps");
        let binary = profile_dir.join("zerog");
        assert!(binary.is_file(), "{} was not built", binary.display());
        binary
    })
}

/// A running `zerog` process whose stdout announces its endpoints.
pub struct Process {
    child: Child,
    pub lines: Vec<String>,
}

impl Process {
    fn spawn(args: &[&str], until: &str) -> Process {
        let mut child = Command::new(zerog())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the zerog binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut reader = BufReader::new(stdout).lines();
        let mut lines = Vec::new();
        loop {
            let line = reader
                .next()
                .unwrap_or_else(|| panic!("zerog exited before printing {until:?}: {lines:?}"))
                .expect("stdout is readable");
            let done = line.trim_start().starts_with(until);
            lines.push(line);
            if done {
                break;
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader {});
        Process { child, lines }
    }

    /// The value printed after `name` (`  s3       http://...`).
    pub fn field(&self, name: &str) -> String {
        self.lines
            .iter()
            .find_map(|line| {
                let rest = line.trim_start().strip_prefix(name)?;
                rest.starts_with(' ').then(|| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} line in {:?}", self.lines))
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `zerog node --dev` with its built-in gateway, both on free loopback ports.
pub struct DevNode {
    pub process: Process,
    pub rpc: String,
    pub s3: String,
}

impl DevNode {
    pub fn start(data_dir: &Path) -> DevNode {
        let data = data_dir.to_str().expect("utf-8 path");
        let process = Process::spawn(
            &[
                "node",
                "--dev",
                "--rpc",
                "127.0.0.1:0",
                "--s3",
                "127.0.0.1:0",
                "--extent-mib",
                "64",
                "--data-dir",
                data,
            ],
            "s3 keys",
        );
        let rpc = process.field("rpc");
        let s3 = process.field("s3");
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
        let node = Process::spawn(
            &[
                "node",
                "--dev",
                "--rpc",
                "127.0.0.1:0",
                "--s3",
                "off",
                "--extent-mib",
                "64",
                "--data-dir",
                node_dir.to_str().expect("utf-8 path"),
            ],
            "flow",
        );
        let rpc = node.field("rpc");
        let gateway = start_gateway(&rpc, gateway_dir);
        let s3 = gateway.field("s3");
        Separate {
            node,
            gateway,
            rpc,
            s3,
        }
    }
}

pub fn start_gateway(rpc: &str, data_dir: &Path) -> Process {
    Process::spawn(
        &[
            "gateway",
            "--node",
            rpc,
            "--listen",
            "127.0.0.1:0",
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
        ],
        "s3",
    )
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

/// Runs a Python script of `tests/clients/` with the venv's interpreter against `endpoint`.
pub fn python_script(script: &str, endpoint: &str, args: &[&str]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    run_ok(
        Command::new(venv_bin("python"))
            .arg(path)
            .args(args)
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
    let mut command = Command::new(venv_bin("aws"));
    command
        .args(["--endpoint-url", endpoint])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    command
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(seed: u64, size: usize) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = vec![0u8; size];
    rng.fill_bytes(&mut data);
    data
}
