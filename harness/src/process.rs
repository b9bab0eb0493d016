//! Finding the `zerog` binary, starting it, waiting until it has printed its endpoints, and
//! stopping it.
//!
//! `zerog node` and `zerog gateway` print a block when they are ready:
//!
//! ```text
//! zerog node ready
//!   rpc      http://127.0.0.1:41234
//!   …
//!   s3       http://127.0.0.1:41235
//!   s3 keys  access zerog-dev secret zerog-dev-secret-key
//! ```
//!
//! A *field* is an indented line: its label, two or more spaces, its value. A launch names the
//! fields it waits for; a waited-for field printed as `off (…)` is a part that did not start.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The environment variable that names the `zerog` binary to run instead of the one beside the
/// running executable.
pub const BIN_ENV: &str = "ZEROG_BIN";

/// Listen on loopback, on a port the kernel picks: processes of parallel tests never collide.
const ANY_LOOPBACK_PORT: &str = "127.0.0.1:0";
/// Extent files of test nodes, MiB: a node allocates one per shard, so tests keep them small.
const TEST_EXTENT_MIB: &str = "64";
/// How long a process may take to print what a launch waits for (a debug build on a busy
/// machine; a healthy node takes well under a second).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a process may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process that closed its stdout gets to exit before it is reported as running.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How many of the last stderr lines an error quotes.
const STDERR_TAIL_LINES: usize = 40;

/// The `zerog` binary.
#[derive(Clone, Debug)]
pub struct Zerog {
    path: PathBuf,
}

impl Zerog {
    /// The binary at `path`: in the `controlplane` package, `env!("CARGO_BIN_EXE_zerog")`.
    pub fn at(path: impl Into<PathBuf>) -> Zerog {
        Zerog { path: path.into() }
    }

    /// The binary named by `ZEROG_BIN`, else the one beside the running executable: a test
    /// binary runs from `target/<profile>/deps/`, a benchmark from `target/<profile>/`, and
    /// `zerog` is built into `target/<profile>/`. Nothing is built here: when the binary is
    /// missing, the error says which `cargo build` to run.
    pub fn locate() -> Result<Zerog, Error> {
        if let Some(path) = std::env::var_os(BIN_ENV) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(Zerog { path })
            } else {
                Err(Error::BinEnvNotAFile { path })
            };
        }
        let exe = std::env::current_exe().map_err(|source| Error::Io {
            what: "finding the running executable",
            command: String::new(),
            source,
        })?;
        let mut dir = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
        if matches!(
            dir.file_name().and_then(OsStr::to_str),
            Some("deps" | "examples")
        ) && let Some(profile_dir) = dir.parent()
        {
            dir = profile_dir.to_path_buf();
        }
        let path = dir.join(format!("zerog{}", std::env::consts::EXE_SUFFIX));
        if path.is_file() {
            Ok(Zerog { path })
        } else {
            Err(Error::BinaryMissing {
                build: build_command(&dir),
                path,
            })
        }
    }

    /// Where the binary is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `zerog` with no arguments yet, for a command run to completion.
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }

    /// `zerog node --data-dir DIR`, plus `--rpc 127.0.0.1:0` and `--s3 off` unless the launch
    /// gives those flags (a harness node never takes a fixed port). Add `--dev` or
    /// `--chain-rpc URL`, `--da` and any other flag with [`Launch::args`]. Ready once it prints
    /// its `rpc` endpoint, and with `--dev --s3 ADDRESS` also its `s3` endpoint and `s3 keys`.
    pub fn node(&self, data_dir: &Path) -> Launch {
        Launch {
            zerog: self.clone(),
            kind: Kind::Node,
            args: vec!["node".into(), "--data-dir".into(), data_dir.into()],
            defaults: &[("--rpc", ANY_LOOPBACK_PORT), ("--s3", "off")],
            env: Vec::new(),
            stderr_log: None,
            ready_on: vec!["rpc".to_string()],
            timeout: READY_TIMEOUT,
            netns: None,
        }
    }

    /// `zerog validator --genesis GENESIS --key KEY --data-dir DIR`, plus `--rpc 127.0.0.1:0`
    /// unless the launch gives it. Ready once it prints its `rpc` endpoint.
    pub fn validator(&self, genesis: &Path, key: &Path, data_dir: &Path) -> Launch {
        Launch {
            zerog: self.clone(),
            kind: Kind::Validator,
            args: vec![
                "validator".into(),
                "--genesis".into(),
                genesis.into(),
                "--key".into(),
                key.into(),
                "--data-dir".into(),
                data_dir.into(),
            ],
            defaults: &[("--rpc", ANY_LOOPBACK_PORT)],
            env: Vec::new(),
            stderr_log: None,
            ready_on: vec!["rpc".to_string()],
            timeout: READY_TIMEOUT,
            netns: None,
        }
    }

    /// [`Zerog::node`] with 64 MiB extents, the size every test node uses.
    pub fn test_node(&self, data_dir: &Path) -> Launch {
        self.node(data_dir).args(["--extent-mib", TEST_EXTENT_MIB])
    }

    /// `zerog gateway --node NODE_URL --data-dir DIR`, plus `--listen 127.0.0.1:0` unless the
    /// launch gives it; add the keys (`--access-key`, `--secret-key`) with [`Launch::args`].
    /// Ready once it prints its `s3` endpoint.
    pub fn gateway(&self, node_url: &str, data_dir: &Path) -> Launch {
        Launch {
            zerog: self.clone(),
            kind: Kind::Gateway,
            args: vec![
                "gateway".into(),
                "--node".into(),
                node_url.into(),
                "--data-dir".into(),
                data_dir.into(),
            ],
            defaults: &[("--listen", ANY_LOOPBACK_PORT)],
            env: Vec::new(),
            stderr_log: None,
            ready_on: vec!["s3".to_string()],
            timeout: READY_TIMEOUT,
            netns: None,
        }
    }
}

impl Zerog {
    /// `zerog devnet --data-dir DIR`: a chain-only node and storage nodes; add `--nodes`,
    /// `--replicas` and the rest with [`Launch::args`]. Ready once it prints its `rpc` endpoint
    /// (the chain and indexer), which it does after every node is listed.
    pub fn devnet(&self, data_dir: &Path) -> Launch {
        Launch {
            zerog: self.clone(),
            kind: Kind::Devnet,
            args: vec!["devnet".into(), "--data-dir".into(), data_dir.into()],
            defaults: &[("--rpc", ANY_LOOPBACK_PORT)],
            env: Vec::new(),
            stderr_log: None,
            ready_on: vec!["rpc".to_string()],
            timeout: READY_TIMEOUT,
            netns: None,
        }
    }
}

/// The `cargo build` that puts `zerog` into `profile_dir` (`target/<profile>`).
fn build_command(profile_dir: &Path) -> String {
    match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("release") => "cargo build --release --bin zerog".to_string(),
        Some("debug") | None => "cargo build --bin zerog".to_string(),
        Some(profile) => format!("cargo build --profile {profile} --bin zerog"),
    }
}

/// What a launch starts, which decides what it waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Node,
    Gateway,
    Devnet,
    Validator,
}

/// A `zerog` process to start: its flags, its environment and what it must print to be ready.
#[must_use = "a launch does nothing until it is started"]
pub struct Launch {
    zerog: Zerog,
    kind: Kind,
    /// The subcommand and its flags.
    args: Vec<OsString>,
    /// Flags added with their value when the launch does not give them.
    defaults: &'static [(&'static str, &'static str)],
    env: Vec<(OsString, OsString)>,
    /// Where stderr goes instead of on to this process's stderr.
    stderr_log: Option<PathBuf>,
    ready_on: Vec<String>,
    timeout: Duration,
    /// The network namespace it runs in (`ip netns exec`), if not this one.
    netns: Option<String>,
}

impl Launch {
    /// Runs the process in the network namespace `name` (a [`crate::Host`]'s), through
    /// `ip netns exec`, which execs it: the process id is still zerog's.
    pub fn in_netns(mut self, name: &str) -> Launch {
        self.netns = Some(name.to_string());
        self
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Launch {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    /// An environment variable of the process. `RUST_LOG` is `warn` unless set here.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launch {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Writes the process's stderr (its log) to the file at `path`, created or truncated,
    /// instead of passing it on: for a test that reads the log.
    pub fn stderr_to(mut self, path: &Path) -> Launch {
        self.stderr_log = Some(path.to_path_buf());
        self
    }

    /// Also wait for the field `label` before the process counts as ready.
    pub fn ready_on(mut self, label: &str) -> Launch {
        self.ready_on.push(label.to_string());
        self
    }

    /// How long to wait for readiness (default two minutes).
    pub fn ready_timeout(mut self, timeout: Duration) -> Launch {
        self.timeout = timeout;
        self
    }

    /// Starts the process and waits until it has printed every field it is waited for. Its
    /// stdout is read to the end (so it never blocks on a full pipe) and kept; its stderr goes
    /// on to this process's stderr (or to the [`Launch::stderr_to`] file), and its last lines
    /// into the errors.
    pub fn start(self) -> Result<Process, Error> {
        let mut args = self.args.clone();
        for (flag, value) in self.defaults {
            if flag_value(&self.args, flag).is_none() {
                args.extend([OsString::from(flag), OsString::from(value)]);
            }
        }
        let mut ready_on = self.ready_on;
        if self.kind == Kind::Node && node_serves_s3(&args) {
            ready_on.extend(["s3".to_string(), "s3 keys".to_string()]);
        }
        let command = std::iter::once(OsStr::new("zerog"))
            .chain(args.iter().map(OsString::as_os_str))
            .map(OsStr::to_string_lossy)
            .collect::<Vec<_>>()
            .join(" ");
        let stderr = match &self.stderr_log {
            None => Stdio::piped(),
            Some(path) => std::fs::File::create(path)
                .map_err(|source| Error::Io {
                    what: "creating the stderr file of",
                    command: command.clone(),
                    source,
                })?
                .into(),
        };
        let mut command_to_run = match &self.netns {
            None => Command::new(&self.zerog.path),
            Some(name) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", name]).arg(&self.zerog.path);
                ip
            }
        };
        let mut child = command_to_run
            .args(&args)
            .env("RUST_LOG", "warn")
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|source| Error::Spawn {
                path: self.zerog.path.clone(),
                source,
            })?;
        tracing::debug!(%command, pid = child.id(), "started");
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut process = Process {
            child,
            command,
            printed: Arc::default(),
            stderr_tail: Arc::default(),
            stderr_reader: None,
            stderr_log: self.stderr_log,
        };
        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = stdout {
            let printed = Arc::clone(&process.printed);
            process.spawn_reader("zerog stdout", move || {
                for_each_line(stdout, |line| {
                    lock(&printed).push(line.clone());
                    // Nobody listens once the process is ready; the lines are still kept.
                    let _ = sender.send(line);
                });
            })?;
        }
        if let Some(stderr) = stderr {
            let tail = Arc::clone(&process.stderr_tail);
            let reader = process.spawn_reader("zerog stderr", move || {
                for_each_line(stderr, |line| {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                    let mut tail = lock(&tail);
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                });
            })?;
            process.stderr_reader = Some(reader);
        }
        process.wait_ready(&lines, ready_on, self.timeout)?;
        tracing::debug!(command = %process.command, "ready");
        Ok(process)
    }
}

/// The value given to `flag` (`--flag VALUE` or `--flag=VALUE`), the last one if repeated.
fn flag_value<'a>(args: &'a [OsString], flag: &str) -> Option<&'a OsStr> {
    let mut found = None;
    for (at, arg) in args.iter().enumerate() {
        if arg == flag {
            found = args.get(at + 1).map(OsString::as_os_str);
        } else if let Some(value) = arg
            .to_str()
            .and_then(|arg| arg.strip_prefix(flag)?.strip_prefix('='))
        {
            found = Some(OsStr::new(value));
        }
    }
    found
}

/// Whether `zerog node ARGS` starts its built-in S3 gateway: with `--dev` and `--s3` not `off`.
fn node_serves_s3(args: &[OsString]) -> bool {
    args.iter().any(|arg| arg == "--dev")
        && flag_value(args, "--s3").is_some_and(|value| value != "off")
}

/// Calls `each` with every line of `stream` (lossy UTF-8, without the line end) until it ends.
fn for_each_line(stream: impl Read, mut each: impl FnMut(String)) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => return,
            Ok(_) => {
                while buffer
                    .last()
                    .is_some_and(|byte| matches!(byte, b'\n' | b'\r'))
                {
                    buffer.pop();
                }
                each(String::from_utf8_lossy(&buffer).into_owned());
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The label and value of a field line (`  label    value`); `None` for any other line.
fn parse_field(line: &str) -> Option<(&str, &str)> {
    let line = line.strip_prefix("  ")?.trim_end();
    let split = line.find("  ")?;
    let (label, value) = (line[..split].trim(), line[split..].trim());
    (!label.is_empty()).then_some((label, value))
}

/// The S3 credentials a dev node prints (`  s3 keys  access … secret …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Keys {
    pub access: String,
    pub secret: String,
}

/// A running `zerog` process. Dropping it kills it (SIGKILL) and reaps it.
pub struct Process {
    child: Child,
    command: String,
    printed: Arc<Mutex<Vec<String>>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
    stderr_log: Option<PathBuf>,
}

impl Process {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with (`zerog node …`).
    pub fn command_line(&self) -> &str {
        &self.command
    }

    /// Every line it has printed on stdout so far.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.printed).clone()
    }

    /// The value of the field `label` it printed (`rpc`, `s3`, `s3 keys`, `flow`, …); every
    /// field its launch waited for is there.
    pub fn field(&self, label: &str) -> Option<String> {
        lock(&self.printed).iter().find_map(|line| {
            parse_field(line)
                .filter(|(printed, _)| *printed == label)
                .map(|(_, value)| value.to_string())
        })
    }

    /// The node's JSON-RPC endpoint (`rpc`).
    pub fn rpc_url(&self) -> Result<String, Error> {
        self.require("rpc")
    }

    /// The S3 endpoint (`s3`) of a gateway, or of a dev node's built-in gateway.
    pub fn s3_url(&self) -> Result<String, Error> {
        self.require("s3")
    }

    /// The S3 credentials a dev node prints for its built-in gateway (`s3 keys`).
    pub fn s3_keys(&self) -> Result<S3Keys, Error> {
        let value = self.require("s3 keys")?;
        match value.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["access", access, "secret", secret] => Ok(S3Keys {
                access: access.to_string(),
                secret: secret.to_string(),
            }),
            _ => Err(Error::Malformed {
                command: self.command.clone(),
                label: "s3 keys",
                value,
            }),
        }
    }

    fn require(&self, label: &'static str) -> Result<String, Error> {
        self.field(label).ok_or_else(|| Error::MissingField {
            command: self.command.clone(),
            label,
            transcript: self.transcript(),
        })
    }

    /// SIGKILL: no chance to flush or clean up. Returns once the process is reaped.
    pub fn kill9(mut self) -> Result<(), Error> {
        self.child
            .kill()
            .and_then(|()| self.child.wait())
            .map_err(|source| Error::Io {
                what: "killing",
                command: self.command.clone(),
                source,
            })?;
        tracing::debug!(command = %self.command, "killed");
        Ok(())
    }

    /// SIGTERM, then wait (bounded) for a clean exit: status 0.
    pub fn stop(mut self) -> Result<(), Error> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).map_err(|errno| {
            Error::Io {
                what: "sending SIGTERM to",
                command: self.command.clone(),
                source: errno.into(),
            }
        })?;
        let Some(status) = self.wait_exit(STOP_TIMEOUT)? else {
            return Err(Error::StopTimeout {
                command: self.command.clone(),
                waited: STOP_TIMEOUT,
                transcript: self.transcript(),
            });
        };
        if !status.success() {
            return Err(Error::UncleanExit {
                command: self.command.clone(),
                status,
                transcript: self.transcript(),
            });
        }
        tracing::debug!(command = %self.command, "stopped");
        Ok(())
    }

    fn spawn_reader(
        &self,
        name: &str,
        read: impl FnOnce() + Send + 'static,
    ) -> Result<JoinHandle<()>, Error> {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(read)
            .map_err(|source| Error::Io {
                what: "starting a thread to read the output of",
                command: self.command.clone(),
                source,
            })
    }

    /// Waits until the process has printed every field in `missing`.
    fn wait_ready(
        &mut self,
        lines: &mpsc::Receiver<String>,
        mut missing: Vec<String>,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        while !missing.is_empty() {
            let line = match lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::NotReady {
                        command: self.command.clone(),
                        missing,
                        waited: timeout,
                        transcript: self.transcript(),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = match self.wait_exit(EXIT_GRACE)? {
                        Some(status) => status.to_string(),
                        None => "its stdout closed, it still runs".to_string(),
                    };
                    return Err(Error::ExitedEarly {
                        command: self.command.clone(),
                        status,
                        transcript: self.transcript(),
                    });
                }
            };
            let Some((label, value)) = parse_field(&line) else {
                continue;
            };
            if let Some(at) = missing.iter().position(|waited| waited == label) {
                if value.starts_with("off") {
                    return Err(Error::Off {
                        command: self.command.clone(),
                        label: label.to_string(),
                        value: value.to_string(),
                        transcript: self.transcript(),
                    });
                }
                missing.swap_remove(at);
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit; `None` if it still runs. Once it has
    /// exited, its stderr is read to the end, so the transcript is whole.
    fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.child.try_wait().map_err(|source| Error::Io {
                what: "waiting for",
                command: self.command.clone(),
                source,
            })?;
            if let Some(status) = exited {
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn transcript(&self) -> Transcript {
        let stderr = match &self.stderr_log {
            None => lock(&self.stderr_tail).iter().cloned().collect(),
            Some(path) => {
                let log = std::fs::read(path).unwrap_or_default();
                let log = String::from_utf8_lossy(&log);
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..];
                tail.iter().map(|line| line.to_string()).collect()
            }
        };
        Transcript {
            stdout: self.lines(),
            stderr,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a process printed, for an error message: all of stdout, the end of stderr.
#[derive(Clone, Default)]
pub struct Transcript {
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stdout.is_empty() && self.stderr.is_empty() {
            return write!(f, "; it printed nothing");
        }
        for (name, lines) in [("stdout", &self.stdout), ("stderr (its end)", &self.stderr)] {
            if !lines.is_empty() {
                write!(f, "\n{name}:")?;
                for line in lines {
                    write!(f, "\n  | {line}")?;
                }
            }
        }
        Ok(())
    }
}

/// Why a `zerog` process could not be found, started, made ready or stopped. Its `Debug` is
/// its message, so a test's `expect` prints what happened and what the process printed.
#[derive(thiserror::Error)]
pub enum Error {
    #[error("no zerog binary at {}: run `{build}` first (or set {BIN_ENV} to a zerog binary)", path.display())]
    BinaryMissing { path: PathBuf, build: String },
    #[error("{BIN_ENV} names {}, which is not a file", path.display())]
    BinEnvNotAFile { path: PathBuf },
    #[error("cannot run {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{command}` exited before it was ready ({status}){transcript}")]
    ExitedEarly {
        command: String,
        status: String,
        transcript: Transcript,
    },
    #[error("`{command}` did not print {missing:?} within {waited:?}{transcript}")]
    NotReady {
        command: String,
        missing: Vec<String>,
        waited: Duration,
        transcript: Transcript,
    },
    #[error("`{command}` started without its {label}: `{label}  {value}`{transcript}")]
    Off {
        command: String,
        label: String,
        value: String,
        transcript: Transcript,
    },
    #[error("`{command}` printed no `{label}` field{transcript}")]
    MissingField {
        command: String,
        label: &'static str,
        transcript: Transcript,
    },
    #[error("`{command}` printed a `{label}` field that does not parse: {value}")]
    Malformed {
        command: String,
        label: &'static str,
        value: String,
    },
    #[error("`{command}` exited with {status} after SIGTERM{transcript}")]
    UncleanExit {
        command: String,
        status: ExitStatus,
        transcript: Transcript,
    },
    #[error("`{command}` did not exit within {waited:?} of SIGTERM{transcript}")]
    StopTimeout {
        command: String,
        waited: Duration,
        transcript: Transcript,
    },
    #[error("{what} `{command}`: {source}")]
    Io {
        what: &'static str,
        command: String,
        source: std::io::Error,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_labels_and_values_two_spaces_apart() {
        assert_eq!(
            parse_field("  rpc      http://127.0.0.1:5678"),
            Some(("rpc", "http://127.0.0.1:5678"))
        );
        assert_eq!(
            parse_field("  s3 keys  access a secret b"),
            Some(("s3 keys", "access a secret b"))
        );
        assert_eq!(
            parse_field("  s3       off (cannot listen)"),
            Some(("s3", "off (cannot listen)"))
        );
        assert_eq!(parse_field("zerog node ready"), None);
        assert_eq!(parse_field("  dev account 0x12 key 0x34"), None);
    }

    #[test]
    fn defaults_yield_to_flags_the_launch_gives() {
        let args: Vec<OsString> = ["--dev", "--s3", "127.0.0.1:0", "--rpc=0.0.0.0:1"]
            .map(OsString::from)
            .into();
        assert_eq!(flag_value(&args, "--s3"), Some(OsStr::new("127.0.0.1:0")));
        assert_eq!(flag_value(&args, "--rpc"), Some(OsStr::new("0.0.0.0:1")));
        assert_eq!(flag_value(&args, "--listen"), None);
        assert!(node_serves_s3(&args));
        let off: Vec<OsString> = ["--dev", "--s3", "off"].map(OsString::from).into();
        assert!(!node_serves_s3(&off));
        let follower: Vec<OsString> = ["--chain-rpc", "http://x", "--s3", "127.0.0.1:0"]
            .map(OsString::from)
            .into();
        assert!(!node_serves_s3(&follower));
    }

    #[test]
    fn the_missing_binary_error_says_what_to_build() {
        assert_eq!(
            build_command(Path::new("/w/target/debug")),
            "cargo build --bin zerog"
        );
        assert_eq!(
            build_command(Path::new("/w/target/release")),
            "cargo build --release --bin zerog"
        );
        assert_eq!(
            build_command(Path::new("/w/target/profiling")),
            "cargo build --profile profiling --bin zerog"
        );
    }

    #[test]
    fn a_process_that_exits_before_it_is_ready_is_an_error_with_its_output() {
        let launch =
            sh_launch("echo 'zerog node ready'; echo '  data     x'; echo broken >&2; exit 3");
        let error = launch.start().err().expect("exits before it is ready");
        let message = error.to_string();
        assert!(matches!(error, Error::ExitedEarly { .. }), "{message}");
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.contains("  | zerog node ready"), "{message}");
        assert!(message.contains("  | broken"), "{message}");
    }

    #[test]
    fn a_part_printed_off_is_an_error() {
        let launch =
            sh_launch("echo '  rpc      http://x'; echo '  s3       off (busy)'; sleep 30");
        let error = launch.ready_on("s3").start().err().expect("s3 is off");
        assert!(matches!(error, Error::Off { .. }), "{error}");
    }

    #[test]
    fn fields_are_read_and_the_process_stops_cleanly() {
        let launch = sh_launch(
            "trap 'exit 0' TERM; echo '  rpc      http://127.0.0.1:1'; \
             echo '  s3 keys  access a secret b'; while :; do sleep 0.01; done",
        );
        let process = launch.ready_on("s3 keys").start().expect("ready");
        assert_eq!(process.rpc_url().expect("rpc"), "http://127.0.0.1:1");
        assert_eq!(
            process.s3_keys().expect("keys"),
            S3Keys {
                access: "a".to_string(),
                secret: "b".to_string()
            }
        );
        assert!(matches!(
            process.s3_url(),
            Err(Error::MissingField { label: "s3", .. })
        ));
        process.stop().expect("a clean exit");
    }

    #[test]
    fn stderr_can_go_to_a_file_and_into_the_error() {
        let log = std::env::temp_dir().join(format!("harness-stderr-{}.log", std::process::id()));
        let launch = sh_launch("echo 'log line one' >&2; echo 'log line two' >&2; exit 4");
        let error = launch.stderr_to(&log).start().err().expect("exits");
        let message = error.to_string();
        let written = std::fs::read_to_string(&log).expect("the log file");
        std::fs::remove_file(&log).expect("remove the log file");
        assert_eq!(written, "log line one\nlog line two\n");
        assert!(message.contains("  | log line two"), "{message}");
    }

    /// `sh -c SCRIPT` standing in for a node: ready once it prints `rpc`.
    fn sh_launch(script: &str) -> Launch {
        Launch {
            zerog: Zerog::at("sh"),
            kind: Kind::Node,
            args: vec!["-c".into(), script.into()],
            defaults: &[],
            env: Vec::new(),
            stderr_log: None,
            ready_on: vec!["rpc".to_string()],
            timeout: Duration::from_secs(20),
            netns: None,
        }
    }
}
