//! Faults for multi-process tests, made with the kernel's own tools (the test command installs
//! them; they need root): a second host (a network namespace joined to this one by a veth
//! pair), a partition between the two (nftables drops every packet on the pair), and a small
//! disk (an ext4 image, loop-mounted) that fills up for real. Each is undone when dropped.
//! Like the other test helpers, these panic with the failing command and its stderr.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs `program ARGS…` to success, feeding `stdin`; panics with its stderr otherwise.
fn run(program: &str, args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|error| {
        panic!("cannot run {program} (the test command installs it): {error}")
    });
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .unwrap_or_else(|error| panic!("writing to {program}: {error}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("waiting for {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Names unique to this process and to each host it makes.
fn next_tag() -> (u32, u32) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    (std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A second host: a network namespace with one veth link to this one. Processes started with
/// [`crate::Launch::in_netns`] live there; this side reaches them at [`Host::ip`], they reach
/// this side at [`Host::gateway_ip`] (so processes that must talk to them listen there, not on
/// 127.0.0.1).
pub struct Host {
    name: String,
    outer_link: String,
    inner_link: String,
    ip: String,
    gateway_ip: String,
}

impl Host {
    /// Creates the namespace and its link, both up.
    ///
    /// # Panics
    /// When `ip` fails (not root, no namespaces).
    pub fn create() -> Host {
        let (pid, n) = next_tag();
        let tag = format!("{}{n}", pid % 100_000);
        // A /24 per host, from the process id and a counter: leftovers of an earlier run
        // never share one.
        let subnet = format!("10.{}.{}", 100 + (pid % 100), (pid / 100 + n * 7) % 250);
        let host = Host {
            name: format!("zgt{tag}"),
            outer_link: format!("zgo{tag}"),
            inner_link: format!("zgi{tag}"),
            ip: format!("{subnet}.2"),
            gateway_ip: format!("{subnet}.1"),
        };
        run("ip", &["netns", "add", &host.name], None);
        run(
            "ip",
            &[
                "link",
                "add",
                &host.outer_link,
                "type",
                "veth",
                "peer",
                "name",
                &host.inner_link,
                "netns",
                &host.name,
            ],
            None,
        );
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", host.gateway_ip),
                "dev",
                &host.outer_link,
            ],
            None,
        );
        run("ip", &["link", "set", &host.outer_link, "up"], None);
        let inside = |args: &[&str]| {
            run("ip", &[&["-n", host.name.as_str()], args].concat(), None);
        };
        inside(&[
            "addr",
            "add",
            &format!("{}/24", host.ip),
            "dev",
            &host.inner_link,
        ]);
        inside(&["link", "set", &host.inner_link, "up"]);
        inside(&["link", "set", "lo", "up"]);
        host
    }

    /// The namespace's name, for [`crate::Launch::in_netns`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's address: processes inside listen here.
    pub fn ip(&self) -> &str {
        &self.ip
    }

    /// This side's address on the link: what processes inside reach.
    pub fn gateway_ip(&self) -> &str {
        &self.gateway_ip
    }

    /// Cuts the host off: every packet in or out of its link is dropped (silently, as a
    /// partition looks: connections time out rather than being refused).
    pub fn cut(&self) {
        self.cut_keeping(&[]);
    }

    /// [`Host::cut`], but for TCP connections from this side to `ports` of the host: a test
    /// still reads the state of processes inside (their JSON-RPC) while they and the processes
    /// on this side cannot reach each other on any other port.
    pub fn cut_keeping(&self, ports: &[u16]) {
        let (accept_in, accept_out) = if ports.is_empty() {
            (String::new(), String::new())
        } else {
            let set = ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!(
                    "iifname \"{}\" tcp dport {{ {set} }} accept; ",
                    self.inner_link
                ),
                format!(
                    "oifname \"{}\" tcp sport {{ {set} }} accept; ",
                    self.inner_link
                ),
            )
        };
        let rules = format!(
            "table inet zerog_partition {{\n\
             chain input {{ type filter hook input priority 0; {accept_in}iifname \"{link}\" drop; }}\n\
             chain output {{ type filter hook output priority 0; {accept_out}oifname \"{link}\" drop; }}\n\
             }}\n",
            link = self.inner_link
        );
        run(
            "ip",
            &["netns", "exec", &self.name, "nft", "-f", "-"],
            Some(&rules),
        );
    }

    /// Ends the partition.
    pub fn heal(&self) {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.name,
                "nft",
                "delete",
                "table",
                "inet",
                "zerog_partition",
            ],
            None,
        );
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it the other end.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// A small ext4 filesystem in an image file, loop-mounted: a disk that really fills up.
pub struct SmallDisk {
    mount_point: PathBuf,
    image: PathBuf,
}

impl SmallDisk {
    /// Makes a `mib` MiB image beside `mount_point` and mounts it there.
    ///
    /// # Panics
    /// When `mkfs.ext4` or `mount` fails (not root, no loop devices).
    pub fn mount(mount_point: &Path, mib: u64) -> SmallDisk {
        let image = mount_point.with_extension("img");
        let file = std::fs::File::create(&image)
            .unwrap_or_else(|error| panic!("creating {}: {error}", image.display()));
        file.set_len(mib << 20)
            .unwrap_or_else(|error| panic!("sizing {}: {error}", image.display()));
        drop(file);
        std::fs::create_dir_all(mount_point)
            .unwrap_or_else(|error| panic!("creating {}: {error}", mount_point.display()));
        let image_arg = image.to_str().expect("a UTF-8 path");
        let mount_arg = mount_point.to_str().expect("a UTF-8 path");
        run("mkfs.ext4", &["-q", "-F", image_arg], None);
        run("mount", &["-o", "loop", image_arg, mount_arg], None);
        SmallDisk {
            mount_point: mount_point.to_path_buf(),
            image,
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Bytes free for an unprivileged writer, from `df`.
    pub fn free_bytes(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.mount_point)
            .output()
            .unwrap_or_else(|error| panic!("cannot run df: {error}"));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "df printed no free space for {}",
                    self.mount_point.display()
                )
            })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process killed a moment ago may still hold a file open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
        let _ = std::fs::remove_file(&self.image);
    }
}
