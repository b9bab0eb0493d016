//! Receiving a request body: bytes are hashed as they arrive (the S3 checksums the client
//! asked for, and the 0G file tree segment by segment when the length is announced) and kept
//! in memory, or in a spool file that is removed when the upload is done. A body whose length
//! is announced stays in memory whole while the gateway-wide [`MemoryBudget`] has room for it:
//! no spool to write and read back, and its MD5 (for the ETag) is computed once it has
//! arrived, beside the upload to the node. Other bodies stay in memory up to
//! [`MEMORY_SPOOL_BYTES`] and spool past it, with MD5 on a thread of its own as they arrive.
//! The limit on the body is enforced while reading, so an oversized body is refused before it
//! is stored.

use crate::error::{Error, Result};
use crate::store::Checksums;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use s3s::checksum::ChecksumHasher;
#[cfg(any(test, not(target_arch = "x86_64")))]
use s3s::crypto::Md5;
use s3s::crypto::{Checksum, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use types::SEGMENT_BYTES;

/// Bodies up to this size stay in memory without counting against the [`MemoryBudget`].
pub const MEMORY_SPOOL_BYTES: usize = 8 * 1024 * 1024;

/// The bytes of request bodies the gateway holds in memory at once beyond the small ones
/// ([`MEMORY_SPOOL_BYTES`] each); a body that does not fit is spooled instead. Clones share
/// the count.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    limit_bytes: u64,
    used_bytes: Arc<AtomicU64>,
}

impl MemoryBudget {
    pub fn new(limit_bytes: u64) -> MemoryBudget {
        MemoryBudget {
            limit_bytes,
            used_bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Takes `bytes` of the budget until the reservation is dropped, or `None` when that would
    /// pass the limit.
    pub fn reserve(&self, bytes: u64) -> Option<Reservation> {
        self.used_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= self.limit_bytes)
            })
            .ok()?;
        Some(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    /// Bytes reserved now.
    #[cfg(test)]
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes.load(Ordering::Acquire)
    }
}

/// A share of a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget
            .used_bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Which checksums to compute while receiving.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wanted {
    pub crc32: bool,
    pub crc32c: bool,
    pub sha1: bool,
    pub sha256: bool,
    pub crc64nvme: bool,
}

impl Wanted {
    /// The algorithm S3 names (`CRC32`, `CRC32C`, `SHA1`, `SHA256`, `CRC64NVME`).
    pub fn add(&mut self, algorithm: &str) -> Result<()> {
        match algorithm.to_ascii_uppercase().as_str() {
            "CRC32" => self.crc32 = true,
            "CRC32C" => self.crc32c = true,
            "SHA1" => self.sha1 = true,
            "SHA256" => self.sha256 = true,
            "CRC64NVME" => self.crc64nvme = true,
            other => {
                return Err(Error::InvalidArgument {
                    detail: format!("unknown checksum algorithm {other}"),
                });
            }
        }
        Ok(())
    }

    /// Everything a set of given checksums needs.
    pub fn covering(checksums: &Checksums) -> Wanted {
        Wanted {
            crc32: checksums.crc32.is_some(),
            crc32c: checksums.crc32c.is_some(),
            sha1: checksums.sha1.is_some(),
            sha256: checksums.sha256.is_some(),
            crc64nvme: checksums.crc64nvme.is_some(),
        }
    }

    fn hasher(&self) -> ChecksumHasher {
        ChecksumHasher {
            crc32: self.crc32.then(Crc32::new),
            crc32c: self.crc32c.then(Crc32c::new),
            sha1: self.sha1.then(Sha1::new),
            sha256: self.sha256.then(Sha256::new),
            crc64nvme: self.crc64nvme.then(Crc64Nvme::new),
        }
    }
}

/// Where a received body is.
pub enum Spool {
    /// In memory; a large body holds its share of the [`MemoryBudget`] until dropped.
    Memory {
        bytes: Bytes,
        _reservation: Option<Reservation>,
    },
    File {
        source: client::FileSource,
        path: PathBuf,
    },
}

impl Spool {
    pub fn source(&self) -> &dyn client::Source {
        match self {
            Spool::Memory { bytes, .. } => bytes,
            Spool::File { source, .. } => source,
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Spool::File { path, .. } = self {
            // The spool file is scratch space; a failure to remove it leaves garbage only.
            let _ = std::fs::remove_file(path);
        }
    }
}

pub struct Received {
    pub spool: Spool,
    pub size_bytes: u64,
    /// The body's 0G file tree, built while it arrived; `None` for an empty body or one whose
    /// length was not announced (then the upload builds it).
    pub tree: Option<client::FileTree>,
    /// The body's MD5 (what the ETag is made of), possibly still being computed.
    pub md5: Md5Digest,
    pub checksums: Checksums,
}

/// The MD5 of a body, computed on its own thread while the body arrives; the last bytes may
/// still be hashing when `receive` returns, so it finishes beside the upload to the node.
pub enum Md5Digest {
    Known([u8; 16]),
    Pending(tokio::task::JoinHandle<[u8; 16]>),
}

impl Md5Digest {
    pub async fn get(self) -> Result<[u8; 16]> {
        match self {
            Md5Digest::Known(md5) => Ok(md5),
            Md5Digest::Pending(task) => task.await.map_err(|error| Error::Task {
                detail: error.to_string(),
            }),
        }
    }
}

impl Received {
    /// Waits for the MD5 and keeps it: what checking Content-MD5 before storing needs.
    pub async fn wait_md5(&mut self) -> Result<[u8; 16]> {
        let pending = std::mem::replace(&mut self.md5, Md5Digest::Known([0; 16]));
        let md5 = pending.get().await?;
        self.md5 = Md5Digest::Known(md5);
        Ok(md5)
    }
}

/// Bytes handed to the receiving threads at once: a body arrives in chunks of tens of KiB,
/// and handing them over a segment at a time wakes the threads less often while the tree
/// still follows the body closely.
const BATCH_BYTES: usize = SEGMENT_BYTES;
/// Batches queued for the thread that keeps the bytes and builds the tree.
const SINK_QUEUE_BATCHES: usize = 8;
/// Batches queued for the MD5 thread of a body that may spool: MD5 (about 0.8 GB/s on one
/// core) is the slowest pass, and this is how far it may lag behind the rest (8 MiB), in memory
/// held per request. A body kept in memory is hashed after it arrives (see `receive`).
const MD5_QUEUE_BATCHES: usize = 32;

/// Consecutive chunks of a body, about `BATCH_BYTES` together.
type Batch = Vec<Bytes>;

/// Reads `body` to its end, refusing more than `limit_bytes`. A body of announced length that
/// `memory` has room for is kept in memory whole; any other spools past `MEMORY_SPOOL_BYTES`
/// into a fresh file in `spool_dir`. A blocking thread takes every chunk while the next ones
/// are read from the connection, keeps the bytes, computes the checksums in `wanted` and builds
/// the 0G tree (when `expected_bytes` announces the length). MD5 runs on a second thread: for a
/// body that may spool, on the chunks as they arrive, at most `MD5_QUEUE_BATCHES` behind; for a
/// body in memory, in one pass once it has arrived. When this returns, the tree and checksums
/// are known and MD5 finishes beside the upload.
pub async fn receive(
    body: Option<s3s::dto::StreamingBlob>,
    expected_bytes: Option<u64>,
    limit_bytes: u64,
    spool_dir: &Path,
    memory: &MemoryBudget,
    wanted: Wanted,
) -> Result<Received> {
    if let Some(expected) = expected_bytes
        && expected > limit_bytes
    {
        return Err(Error::EntityTooLarge { limit_bytes });
    }
    // MD5 (about 0.8 GB/s here) is the slowest pass over a body. A body that may spool is
    // hashed as it arrives, its chunks waiting for MD5 in a short queue. A body kept in memory
    // is hashed in one pass once it has arrived, beside the upload to the node, so no chunk is
    // held for a lagging MD5 and the budget counts the body once (a 256 MiB PUT measured the
    // same either way on two cores).
    let keep = match expected_bytes {
        Some(expected) if expected > MEMORY_SPOOL_BYTES as u64 => match memory.reserve(expected) {
            Some(reservation) => Keep::Memory {
                capacity_bytes: usize::try_from(expected).expect("a reserved body fits in memory"),
                reservation,
            },
            None => Keep::SpoolPast(MEMORY_SPOOL_BYTES),
        },
        _ => Keep::SpoolPast(MEMORY_SPOOL_BYTES),
    };
    let (sink_batches, sink_queue) = tokio::sync::mpsc::channel::<Batch>(SINK_QUEUE_BATCHES);
    let (md5_batches, md5) = match keep {
        Keep::Memory { .. } => (None, None),
        Keep::SpoolPast(_) => {
            let (md5_batches, md5_queue) = tokio::sync::mpsc::channel::<Batch>(MD5_QUEUE_BATCHES);
            let md5 = tokio::task::spawn_blocking(move || md5_of(md5_queue));
            (Some(md5_batches), Some(md5))
        }
    };
    let sink_dir = spool_dir.to_path_buf();
    let tree = expected_bytes.and_then(TreeHasher::new);
    let sink = tokio::task::spawn_blocking(move || sink(sink_queue, &sink_dir, keep, wanted, tree));
    let mut size_bytes = 0u64;
    let read = async {
        let Some(mut body) = body else {
            return Ok(());
        };
        // False once the sink stopped on an error, which it returns below.
        let hand_off = async |batch: Batch| {
            let md5_took = match &md5_batches {
                Some(md5_batches) => md5_batches.send(batch.clone()).await.is_ok(),
                None => true,
            };
            md5_took && sink_batches.send(batch).await.is_ok()
        };
        let mut batch = Batch::new();
        let mut batch_bytes = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| Error::Body {
                detail: error.to_string(),
            })?;
            size_bytes += chunk.len() as u64;
            if size_bytes > limit_bytes {
                return Err(Error::EntityTooLarge { limit_bytes });
            }
            batch_bytes += chunk.len();
            batch.push(chunk);
            if batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                if !hand_off(std::mem::take(&mut batch)).await {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            hand_off(batch).await;
        }
        Ok(())
    }
    .await;
    drop(sink_batches);
    drop(md5_batches);
    let sunk = sink.await.map_err(|error| Error::Task {
        detail: error.to_string(),
    })?;
    read?;
    let Sunk {
        spool,
        checksums,
        tree,
    } = sunk?;
    if let Some(expected) = expected_bytes
        && expected != size_bytes
    {
        return Err(Error::IncompleteBody {
            expected_bytes: expected,
            received_bytes: size_bytes,
        });
    }
    let md5 = match (md5, &spool) {
        (Some(md5), _) => md5,
        (None, Spool::Memory { bytes, .. }) => {
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || {
                let mut md5 = BodyMd5::default();
                md5.update(&bytes);
                md5.finish()
            })
        }
        (None, Spool::File { .. }) => {
            return Err(Error::Task {
                detail: "a body kept in memory was spooled".to_string(),
            });
        }
    };
    Ok(Received {
        spool,
        size_bytes,
        tree,
        md5: Md5Digest::Pending(md5),
        checksums,
    })
}

/// Builds a body's 0G file tree as its bytes arrive: each 256 KiB segment is hashed (the
/// `merkle` crate's SIMD leaf and pair hashing) as soon as it is complete, so the tree is ready
/// when the body ends. It needs the length up front (the last segment's padding depends on
/// it); a body that turns out longer or shorter drops the tree, and `receive` refuses it.
struct TreeHasher {
    builder: client::FileTreeBuilder,
    /// The bytes of the current segment, when a chunk ended inside it.
    segment: Vec<u8>,
}

impl TreeHasher {
    /// `None` for an empty body, which has no tree.
    fn new(size_bytes: u64) -> Option<TreeHasher> {
        Some(TreeHasher {
            builder: client::FileTree::builder(size_bytes).ok()?,
            segment: Vec::new(),
        })
    }

    /// Hashes the segments `bytes` completes; `None` once the bytes do not fit the length.
    fn update(mut self, mut bytes: &[u8]) -> Option<TreeHasher> {
        while !bytes.is_empty() {
            if self.segment.is_empty() && bytes.len() >= SEGMENT_BYTES {
                let (segment, rest) = bytes.split_at(SEGMENT_BYTES);
                self.builder.push_segment(segment).ok()?;
                bytes = rest;
                continue;
            }
            if self.segment.capacity() == 0 {
                self.segment.reserve_exact(SEGMENT_BYTES);
            }
            let taken = (SEGMENT_BYTES - self.segment.len()).min(bytes.len());
            let (head, rest) = bytes.split_at(taken);
            self.segment.extend_from_slice(head);
            bytes = rest;
            if self.segment.len() == SEGMENT_BYTES {
                self.builder.push_segment(&self.segment).ok()?;
                self.segment.clear();
            }
        }
        Some(self)
    }

    /// The tree, when exactly the announced bytes arrived.
    fn finish(mut self) -> Option<client::FileTree> {
        if !self.segment.is_empty() {
            self.builder.push_segment(&self.segment).ok()?;
        }
        self.builder.finish().ok()
    }
}

/// The MD5 half of `receive`: MD5 of every batch, in order.
fn md5_of(mut queue: tokio::sync::mpsc::Receiver<Batch>) -> [u8; 16] {
    let mut md5 = BodyMd5::default();
    while let Some(batch) = queue.blocking_recv() {
        for chunk in &batch {
            md5.update(chunk);
        }
    }
    md5.finish()
}

/// MD5 for ETags: RustCrypto's assembly backend on x86-64 (see Cargo.toml), s3s's elsewhere.
#[derive(Default)]
struct BodyMd5(
    #[cfg(target_arch = "x86_64")] md5_asm::Md5,
    #[cfg(not(target_arch = "x86_64"))] Md5,
);

#[cfg(target_arch = "x86_64")]
impl BodyMd5 {
    fn update(&mut self, bytes: &[u8]) {
        md5_asm::Digest::update(&mut self.0, bytes);
    }

    fn finish(self) -> [u8; 16] {
        md5_asm::Digest::finalize(self.0).into()
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl BodyMd5 {
    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(self) -> [u8; 16] {
        self.0.finalize()
    }
}

/// Where the keeping half of `receive` keeps the bytes.
enum Keep {
    /// All of them in memory, in one buffer of the announced length, covered by the
    /// reservation; a body that turns out longer is refused.
    Memory {
        capacity_bytes: usize,
        reservation: Reservation,
    },
    /// In memory up to this many bytes, then in a spool file.
    SpoolPast(usize),
}

/// What the keeping half of `receive` hands back.
struct Sunk {
    spool: Spool,
    checksums: Checksums,
    tree: Option<client::FileTree>,
}

/// Removes a spool file that an error left before it became a `Spool` (which removes it
/// when dropped).
struct SpoolGuard {
    path: PathBuf,
    armed: bool,
}

impl SpoolGuard {
    fn path(&self) -> &Path {
        &self.path
    }

    fn disarm(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }
}

impl Drop for SpoolGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The keeping half of `receive`: keeps every chunk as `keep` says, computes the wanted
/// checksums and builds the 0G tree.
fn sink(
    mut queue: tokio::sync::mpsc::Receiver<Batch>,
    spool_dir: &Path,
    keep: Keep,
    wanted: Wanted,
    mut tree: Option<TreeHasher>,
) -> Result<Sunk> {
    let mut hasher = wanted.hasher();
    let (mut memory, memory_limit_bytes, reservation) = match keep {
        Keep::Memory {
            capacity_bytes,
            reservation,
        } => (
            BytesMut::with_capacity(capacity_bytes),
            capacity_bytes,
            Some(reservation),
        ),
        Keep::SpoolPast(limit_bytes) => (BytesMut::new(), limit_bytes, None),
    };
    let spill = reservation.is_none();
    let mut file: Option<(std::fs::File, SpoolGuard)> = None;
    let io = |operation: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            operation,
            path,
            source,
        }
    };
    while let Some(batch) = queue.blocking_recv() {
        for chunk in batch {
            hasher.update(&chunk);
            tree = tree.and_then(|tree| tree.update(&chunk));
            match &mut file {
                Some((spool, guard)) => spool
                    .write_all(&chunk)
                    .map_err(io("writing", guard.path()))?,
                None if memory.len() + chunk.len() <= memory_limit_bytes => {
                    memory.extend_from_slice(&chunk);
                }
                None if !spill => {
                    // Kept in memory for its announced length, and longer than announced.
                    return Err(Error::IncompleteBody {
                        expected_bytes: memory_limit_bytes as u64,
                        received_bytes: (memory.len() + chunk.len()) as u64,
                    });
                }
                None => {
                    let path = spool_dir.join(format!("{:032x}.spool", rand::random::<u128>()));
                    let mut spool = std::fs::File::create(&path).map_err(io("creating", &path))?;
                    let guard = SpoolGuard { path, armed: true };
                    spool
                        .write_all(&memory)
                        .map_err(io("writing", guard.path()))?;
                    spool
                        .write_all(&chunk)
                        .map_err(io("writing", guard.path()))?;
                    memory = BytesMut::new();
                    file = Some((spool, guard));
                }
            }
        }
    }
    let spool = match file {
        None => Spool::Memory {
            bytes: memory.freeze(),
            _reservation: reservation,
        },
        Some((spool, guard)) => {
            drop(spool);
            let source = client::FileSource::open(guard.path()).map_err(|error| Error::Io {
                operation: "reopening",
                path: guard.path().to_path_buf(),
                source: std::io::Error::other(error.to_string()),
            })?;
            Spool::File {
                source,
                path: guard.disarm(),
            }
        }
    };
    let digest = hasher.finalize();
    Ok(Sunk {
        spool,
        checksums: Checksums {
            crc32: digest.checksum_crc32,
            crc32c: digest.checksum_crc32c,
            sha1: digest.checksum_sha1,
            sha256: digest.checksum_sha256,
            crc64nvme: digest.checksum_crc64nvme,
        },
        tree: tree.and_then(TreeHasher::finish),
    })
}

/// Checks each checksum the client gave against what was computed.
pub fn verify_checksums(given: &Checksums, computed: &Checksums) -> Result<()> {
    let pairs = [
        ("CRC32", &given.crc32, &computed.crc32),
        ("CRC32C", &given.crc32c, &computed.crc32c),
        ("SHA1", &given.sha1, &computed.sha1),
        ("SHA256", &given.sha256, &computed.sha256),
        ("CRC64NVME", &given.crc64nvme, &computed.crc64nvme),
    ];
    for (name, given, computed) in pairs {
        if let Some(given) = given
            && Some(given) != computed.as_ref()
        {
            return Err(Error::BadDigest {
                what: format!("x-amz-checksum-{}", name.to_ascii_lowercase()),
            });
        }
    }
    Ok(())
}

/// Checks `Content-MD5` (base64 of the 16-byte digest).
pub fn verify_content_md5(content_md5: Option<&str>, md5: &[u8; 16]) -> Result<()> {
    let Some(given) = content_md5 else {
        return Ok(());
    };
    let decoded = base64_simd::STANDARD
        .decode_to_vec(given.trim())
        .map_err(|_| Error::InvalidDigest)?;
    if decoded.len() != 16 {
        return Err(Error::InvalidDigest);
    }
    if decoded != md5 {
        return Err(Error::BadDigest {
            what: "Content-MD5".into(),
        });
    }
    Ok(())
}

/// Most bytes [`drain`] reads from a refused request's body.
const DRAIN_LIMIT_BYTES: usize = 1 << 20;

/// Reads and discards up to [`DRAIN_LIMIT_BYTES`] of the body of a request refused before its
/// body was read, so the connection is in step for the client's next request. The first read
/// makes hyper send `100 Continue` to a client that waits for it, which then sends the body; a
/// client that did not wait has sent it already. A larger body is left to the HTTP layer,
/// which closes the connection after the response.
pub async fn drain(body: Option<s3s::dto::StreamingBlob>) {
    let Some(mut body) = body else { return };
    let mut read = 0;
    while read <= DRAIN_LIMIT_BYTES {
        match body.next().await {
            Some(Ok(chunk)) => read += chunk.len(),
            Some(Err(_)) | None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset, so a misplaced segment changes the root.
    fn bytes(size: usize) -> Vec<u8> {
        (0..size)
            .map(|index| (index * 31 + index / 251) as u8)
            .collect()
    }

    fn hashed_in_chunks(
        data: &[u8],
        announced: u64,
        chunk_bytes: usize,
    ) -> Option<client::FileTree> {
        let mut tree = TreeHasher::new(announced);
        for chunk in data.chunks(chunk_bytes) {
            tree = tree.and_then(|tree| tree.update(chunk));
        }
        tree.and_then(TreeHasher::finish)
    }

    #[test]
    fn tree_built_while_receiving_equals_the_tree_of_the_whole_body() {
        // One chunk, a partial last segment, whole segments, and past 4 MiB (no tail nodes).
        let sizes = [
            1,
            4096,
            SEGMENT_BYTES,
            SEGMENT_BYTES + 1,
            3 * SEGMENT_BYTES - 7,
            5 * 1024 * 1024 + 3,
        ];
        // Chunks smaller than, equal to and larger than a segment, none aligned to a chunk.
        let chunk_sizes = [1000, 65_536, SEGMENT_BYTES, 300_001, 2 * SEGMENT_BYTES + 5];
        for size in sizes {
            let data = bytes(size);
            let whole = client::FileTree::from_bytes(&data).expect("a non-empty body");
            for chunk_bytes in chunk_sizes {
                let tree = hashed_in_chunks(&data, size as u64, chunk_bytes)
                    .unwrap_or_else(|| panic!("size {size}, chunks of {chunk_bytes}: no tree"));
                assert_eq!(tree, whole, "size {size}, chunks of {chunk_bytes}");
            }
        }
    }

    #[test]
    fn a_body_of_another_length_than_announced_has_no_tree() {
        let data = bytes(SEGMENT_BYTES + 10);
        for announced in [SEGMENT_BYTES as u64 + 9, SEGMENT_BYTES as u64 + 11, 1] {
            assert!(
                hashed_in_chunks(&data, announced, 65_536).is_none(),
                "{announced}"
            );
        }
        assert!(TreeHasher::new(0).is_none(), "an empty body has no tree");
    }

    fn streaming(data: &[u8]) -> s3s::dto::StreamingBlob {
        let chunks: Vec<std::result::Result<Bytes, std::io::Error>> = data
            .chunks(100_000)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        s3s::dto::StreamingBlob::wrap(futures_util::stream::iter(chunks))
    }

    /// Receives `data` announced with its length, as every S3 client sends a PUT.
    async fn receive_announced(data: &[u8], spool_dir: &Path, budget: &MemoryBudget) -> Received {
        let size = Some(data.len() as u64);
        receive(
            Some(streaming(data)),
            size,
            u64::MAX,
            spool_dir,
            budget,
            Wanted::default(),
        )
        .await
        .expect("a good body")
    }

    fn spool_files(dir: &Path) -> usize {
        std::fs::read_dir(dir).expect("the spool folder").count()
    }

    #[test]
    fn the_memory_budget_counts_reservations_until_they_are_dropped() {
        let budget = MemoryBudget::new(100);
        let first = budget.reserve(60).expect("within the limit");
        assert!(budget.reserve(41).is_none(), "past the limit");
        let second = budget.reserve(40).expect("exactly the limit");
        assert_eq!(budget.used_bytes(), 100);
        drop(first);
        assert_eq!(budget.used_bytes(), 40);
        assert!(
            budget.clone().reserve(60).is_some(),
            "clones share the count"
        );
        drop(second);
        assert_eq!(budget.used_bytes(), 0);
        assert!(budget.reserve(u64::MAX).is_none(), "no overflow");
    }

    /// A large body of announced length stays in memory while the budget has room for it,
    /// holding its share until the upload is done; past the budget it is spooled, and either
    /// way the same bytes come back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_body_stays_in_memory_within_the_budget_and_spools_past_it() {
        let spool_dir = tempfile::tempdir().expect("a temporary folder");
        let data = bytes(MEMORY_SPOOL_BYTES + 3 * SEGMENT_BYTES + 17);
        let size = data.len() as u64;
        let budget = MemoryBudget::new(2 * size - 1);
        let held = receive_announced(&data, spool_dir.path(), &budget).await;
        assert!(matches!(held.spool, Spool::Memory { .. }));
        assert_eq!(budget.used_bytes(), size);
        assert_eq!(spool_files(spool_dir.path()), 0);
        assert_eq!(held.spool.source().in_memory(), Some(&data[..]));

        // `held` leaves room for half another such body: the next one spools.
        let spooled = receive_announced(&data, spool_dir.path(), &budget).await;
        assert!(matches!(spooled.spool, Spool::File { .. }));
        assert_eq!(spool_files(spool_dir.path()), 1);
        let mut read_back = vec![0u8; data.len()];
        spooled
            .spool
            .source()
            .read_at(&mut read_back, 0)
            .expect("the spool reads back");
        assert!(read_back == data);
        assert_eq!(held.md5.get().await.expect("md5"), Md5::checksum(&data));
        drop(spooled);
        assert_eq!(spool_files(spool_dir.path()), 0, "the spool is removed");
        drop(held.spool);
        assert_eq!(budget.used_bytes(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_longer_than_announced_is_refused_and_releases_its_memory() {
        let spool_dir = tempfile::tempdir().expect("a temporary folder");
        let data = bytes(MEMORY_SPOOL_BYTES + 2 * SEGMENT_BYTES);
        let budget = MemoryBudget::new(u64::MAX);
        let announced = data.len() as u64 - 1000;
        let refused = receive(
            Some(streaming(&data)),
            Some(announced),
            u64::MAX,
            spool_dir.path(),
            &budget,
            Wanted::default(),
        )
        .await;
        assert!(
            matches!(
                refused,
                Err(Error::IncompleteBody { expected_bytes, .. }) if expected_bytes == announced
            ),
            "{:?}",
            refused.err()
        );
        assert_eq!(budget.used_bytes(), 0);
        assert_eq!(spool_files(spool_dir.path()), 0);
    }
}
