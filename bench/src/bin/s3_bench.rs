//! S3 gateway benchmark: PUT and GET throughput and p50/p99 latency of 4 KiB, 1 MiB and
//! 256 MiB objects through the S3 gateway of a real `zerog node --dev`, against direct upload
//! and download on the same node in the same run (`client::upload` / `client::download`, the
//! code `zerog upload` and `zerog download` run), reported as gateway/direct ratios.
//!
//! ```sh
//! cargo build --release --bin zerog --bin s3-bench
//! target/release/s3-bench --dir /path/on/the/disk
//! ```
//! The node binary is taken from beside this one and started in a fresh folder under `--dir`.
//! The S3 side signs every request with SigV4 (presigned query strings from `rusty-s3`, sent
//! with `reqwest`), to a bucket with a policy and an ACL that every request's access check
//! evaluates, and holds GET bodies in memory; the direct side uploads from memory and
//! downloads to a file that it syncs, as `zerog download` does. Operations run one at a time,
//! gateway and direct alternating (which goes first alternates too), each object with distinct
//! random bytes (the gateway and the node skip bytes they already hold); every object is read
//! back and compared after its clock stops. Results go to stdout as a Markdown table.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use types::H256;

#[derive(Parser)]
struct Args {
    /// Objects of 4 KiB, each written and read once per side.
    #[arg(long, default_value_t = 200)]
    objects_4kib: usize,
    /// Objects of 1 MiB.
    #[arg(long, default_value_t = 50)]
    objects_1mib: usize,
    /// Objects of 256 MiB.
    #[arg(long, default_value_t = 5)]
    objects_256mib: usize,
    /// Folder on the disk under test; the node's data goes to a fresh folder inside it,
    /// removed at the end.
    #[arg(long, default_value = "./bench-data")]
    dir: PathBuf,
    /// Node shards (default: one per core).
    #[arg(long)]
    shards: Option<usize>,
    /// Print every operation's latency to stderr.
    #[arg(long)]
    each: bool,
}

/// How long a presigned URL stays valid; each is used at once.
const PRESIGN_VALIDITY: Duration = Duration::from_secs(600);
const BUCKET: &str = "bench";

/// `zerog node --dev` with its gateway on a free port; the endpoints and the dev keys it
/// prints.
struct Node {
    /// Killed when dropped.
    _process: harness::Process,
    rpc_url: String,
    s3_url: String,
    keys: harness::S3Keys,
}

fn start_node(data_dir: &Path, shards: Option<usize>) -> anyhow::Result<Node> {
    let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string());
    let process = bench::dev_node(data_dir, shards)?
        .args(["--s3", "127.0.0.1:0"])
        .env("RUST_LOG", log)
        .start()?;
    Ok(Node {
        rpc_url: process.rpc_url()?,
        s3_url: process.s3_url()?,
        keys: process.s3_keys()?,
        _process: process,
    })
}

/// The bytes of one object: a function of the run's seed, the side, the size and the index,
/// so they can be made again to check what comes back.
fn content(run_seed: u64, side: Side, size_bytes: usize, index: usize) -> Vec<u8> {
    let seed = run_seed ^ ((side as u64) << 62) ^ ((size_bytes as u64) << 24) ^ index as u64;
    harness::random_bytes(seed, size_bytes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Gateway = 1,
    Direct = 2,
}

/// Latencies and bytes of one side of one operation.
struct Timings {
    name: String,
    print_each: bool,
    histogram: Histogram<u64>,
    bytes: u64,
    seconds: f64,
}

impl Timings {
    fn new(name: String, print_each: bool) -> anyhow::Result<Timings> {
        Ok(Timings {
            name,
            print_each,
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)?,
            bytes: 0,
            seconds: 0.0,
        })
    }

    fn record(&mut self, elapsed: Duration, bytes: usize) -> anyhow::Result<()> {
        if self.print_each {
            eprintln!("  {}: {:.2} ms", self.name, elapsed.as_secs_f64() * 1e3);
        }
        self.histogram.record((elapsed.as_micros() as u64).max(1))?;
        self.bytes += bytes as u64;
        self.seconds += elapsed.as_secs_f64();
        Ok(())
    }

    fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }

    fn millis(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

struct S3 {
    http: reqwest::Client,
    bucket: Bucket,
    credentials: Credentials,
}

impl S3 {
    async fn create_bucket(&self) -> anyhow::Result<()> {
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(PRESIGN_VALIDITY);
        let response = self.http.put(url).send().await?;
        check(response, "CreateBucket").await?;
        Ok(())
    }

    /// Gives the bucket a policy of three statements and a bucket ACL, so that the access
    /// check of every request evaluates a policy as a production bucket's would (a Deny is
    /// looked for before the owner's rights apply); the benchmark's keys match none of the
    /// statements' prefixes but the last, which names its user.
    async fn protect_bucket(&self, user: &str) -> anyhow::Result<()> {
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Sid":"keep","Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::{BUCKET}/keep/*"}},
                {{"Sid":"public","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{BUCKET}/public/*"}},
                {{"Sid":"owner","Effect":"Allow","Principal":{{"AWS":"{user}"}},"Action":"s3:*","Resource":["arn:aws:s3:::{BUCKET}","arn:aws:s3:::{BUCKET}/*"]}}
            ]}}"#
        );
        let mut action = self.bucket.put_object(Some(&self.credentials), "");
        action.query_mut().insert("policy", "");
        let url = action.sign(PRESIGN_VALIDITY);
        let response = self.http.put(url).body(policy).send().await?;
        check(response, "PutBucketPolicy").await?;
        let mut action = self.bucket.put_object(Some(&self.credentials), "");
        action.query_mut().insert("acl", "");
        let url = action.sign(PRESIGN_VALIDITY);
        let response = self
            .http
            .put(url)
            .header("x-amz-acl", "authenticated-read")
            .send()
            .await?;
        check(response, "PutBucketAcl").await?;
        Ok(())
    }

    async fn put(&self, key: &str, body: Bytes) -> anyhow::Result<()> {
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(PRESIGN_VALIDITY);
        let response = self.http.put(url).body(body).send().await?;
        check(response, "PutObject").await?;
        Ok(())
    }

    async fn get(&self, key: &str, size_bytes: usize) -> anyhow::Result<Vec<u8>> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(PRESIGN_VALIDITY);
        let mut response = check(self.http.get(url).send().await?, "GetObject").await?;
        let mut body = Vec::with_capacity(size_bytes);
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

async fn check(response: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("{what} answered {status}: {text}");
    }
    Ok(response)
}

/// One size: N PUTs and N uploads alternating, then N GETs and N downloads alternating.
struct Run<'a> {
    s3: &'a S3,
    node: &'a client::Client,
    payer: &'a client::Payer,
    download_path: &'a Path,
    run_seed: u64,
    print_each: bool,
}

struct Row {
    label: &'static str,
    count: usize,
    gateway_put: Timings,
    direct_put: Timings,
    gateway_get: Timings,
    direct_get: Timings,
}

impl Run<'_> {
    fn timings(&self, what: &str, label: &str) -> anyhow::Result<Timings> {
        Timings::new(format!("{label} {what}"), self.print_each)
    }

    async fn measure(
        &self,
        label: &'static str,
        size_bytes: usize,
        count: usize,
    ) -> anyhow::Result<Row> {
        let mut gateway_put = self.timings("gateway PUT", label)?;
        let mut direct_put = self.timings("direct PUT", label)?;
        let mut roots: Vec<H256> = Vec::with_capacity(count);
        for index in 0..count {
            let key = format!("{size_bytes}/{index}");
            let gateway_bytes =
                Bytes::from(content(self.run_seed, Side::Gateway, size_bytes, index));
            let direct_bytes = Bytes::from(content(self.run_seed, Side::Direct, size_bytes, index));
            for side in order(index) {
                match side {
                    Side::Gateway => {
                        let started = Instant::now();
                        self.s3
                            .put(&key, gateway_bytes.clone())
                            .await
                            .with_context(|| format!("PUT {key}"))?;
                        gateway_put.record(started.elapsed(), size_bytes)?;
                    }
                    Side::Direct => {
                        let started = Instant::now();
                        let uploaded = client::upload(
                            self.node,
                            &direct_bytes,
                            self.payer,
                            &client::NoProgress,
                        )
                        .await
                        .with_context(|| format!("direct upload {label} {index}"))?;
                        direct_put.record(started.elapsed(), size_bytes)?;
                        if uploaded.already_stored {
                            bail!("direct upload {label} {index}: the node already held it");
                        }
                        roots.push(uploaded.file.root);
                    }
                }
            }
        }
        let mut gateway_get = self.timings("gateway GET", label)?;
        let mut direct_get = self.timings("direct GET", label)?;
        for (index, root) in roots.iter().enumerate() {
            let key = format!("{size_bytes}/{index}");
            for side in order(index) {
                match side {
                    Side::Gateway => {
                        let started = Instant::now();
                        let body = self
                            .s3
                            .get(&key, size_bytes)
                            .await
                            .with_context(|| format!("GET {key}"))?;
                        gateway_get.record(started.elapsed(), size_bytes)?;
                        if body != content(self.run_seed, Side::Gateway, size_bytes, index) {
                            bail!("GET {key} returned other bytes than were put");
                        }
                    }
                    Side::Direct => {
                        let started = Instant::now();
                        let size = client::download(
                            self.node,
                            *root,
                            self.download_path,
                            &client::NoProgress,
                        )
                        .await
                        .with_context(|| format!("direct download {label} {index}"))?;
                        direct_get.record(started.elapsed(), size_bytes)?;
                        let read = std::fs::read(self.download_path)?;
                        if size != size_bytes as u64
                            || read != content(self.run_seed, Side::Direct, size_bytes, index)
                        {
                            bail!("direct download {label} {index} returned other bytes");
                        }
                    }
                }
            }
        }
        let _ = std::fs::remove_file(self.download_path);
        Ok(Row {
            label,
            count,
            gateway_put,
            direct_put,
            gateway_get,
            direct_get,
        })
    }
}

/// Which side goes first alternates, so neither always meets the state the other left.
fn order(index: usize) -> [Side; 2] {
    if index.is_multiple_of(2) {
        [Side::Gateway, Side::Direct]
    } else {
        [Side::Direct, Side::Gateway]
    }
}

fn print_row(label: &str, operation: &str, count: usize, gateway: &Timings, direct: &Timings) {
    println!(
        "| {label} | {operation} | {count} | {:.1} | {:.1} | **{:.2}×** | {:.1} / {:.1} | {:.1} / {:.1} |",
        gateway.megabytes_per_second(),
        direct.megabytes_per_second(),
        gateway.megabytes_per_second() / direct.megabytes_per_second(),
        gateway.millis(0.5),
        gateway.millis(0.99),
        direct.millis(0.5),
        direct.millis(0.99),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run_seed: u64 = rand::random();
    let folder = args.dir.join(format!("s3-bench-{run_seed:016x}"));
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let result = bench(&args, &folder, run_seed).await;
    let _ = std::fs::remove_dir_all(&folder);
    result
}

async fn bench(args: &Args, folder: &Path, run_seed: u64) -> anyhow::Result<()> {
    let node = start_node(&folder.join("node"), args.shards)?;
    let endpoint = node.s3_url.parse().context("the gateway's URL")?;
    let s3 = S3 {
        http: reqwest::Client::new(),
        bucket: Bucket::new(endpoint, UrlStyle::Path, BUCKET, "us-east-1")?,
        credentials: Credentials::new(&node.keys.access, &node.keys.secret),
    };
    s3.create_bucket().await?;
    s3.protect_bucket(&node.keys.access).await?;
    let direct = client::Client::new(&node.rpc_url)?;
    let payer = client::Payer::from_hex(chain_lite::DEV_ACCOUNTS[0].private_key)?;
    let run = Run {
        s3: &s3,
        node: &direct,
        payer: &payer,
        download_path: &folder.join("download.bin"),
        run_seed,
        print_each: args.each,
    };
    // The node allocates each shard's first extent on its first write; that one-off cost is
    // kept out of both sides' clocks.
    let warm_up = 1024 * 1024;
    s3.put(
        "warm-up",
        Bytes::from(content(run_seed, Side::Gateway, warm_up, usize::MAX)),
    )
    .await
    .context("warm-up PUT")?;
    client::upload(
        &direct,
        &Bytes::from(content(run_seed, Side::Direct, warm_up, usize::MAX)),
        &payer,
        &client::NoProgress,
    )
    .await
    .context("warm-up upload")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "node {} (gateway {}), {cores} cores, data in {}",
        node.rpc_url,
        node.s3_url,
        folder.display()
    );
    let sizes = [
        ("4 KiB", 4 * 1024, args.objects_4kib),
        ("1 MiB", 1024 * 1024, args.objects_1mib),
        ("256 MiB", 256 * 1024 * 1024, args.objects_256mib),
    ];
    let mut rows = Vec::new();
    for (label, size_bytes, count) in sizes {
        if count == 0 {
            continue;
        }
        let started = Instant::now();
        let row = run.measure(label, size_bytes, count).await?;
        eprintln!(
            "{label}: {count} objects each way in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        rows.push(row);
    }
    println!(
        "| object | op | n | gateway MB/s | direct MB/s | gateway/direct | gateway p50 / p99 ms | direct p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in &rows {
        print_row(
            row.label,
            "PUT",
            row.count,
            &row.gateway_put,
            &row.direct_put,
        );
    }
    for row in &rows {
        print_row(
            row.label,
            "GET",
            row.count,
            &row.gateway_get,
            &row.direct_get,
        );
    }
    Ok(())
}
