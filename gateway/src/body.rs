//! Receiving a request body: bytes are hashed as they arrive (the S3 checksums the client
//! asked for, the 0G file tree segment by segment when the length is announced, and MD5 for
//! the ETag on a thread of its own, which may finish beside the upload) and kept in memory up
//! to a threshold, past it in a spool file that is removed when the upload is done. The limit
//! on the body is enforced while reading, so an oversized body is refused before it is stored.

use crate::error::{Error, Result};
use crate::store::Checksums;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use types::SEGMENT_BYTES;

/// Bodies up to this size stay in memory.
pub const MEMORY_SPOOL_BYTES: usize = 8 * 1024 * 1024;

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
    Memory(Bytes),
    File {
        source: client::FileSource,
        path: PathBuf,
    },
}

impl Spool {
    pub fn source(&self) -> &dyn client::Source {
        match self {
            Spool::Memory(bytes) => bytes,
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
/// Batches queued for the MD5 thread: MD5 (about 0.7 GB/s on one core) is the slowest pass,
/// and this is how far it may lag behind the rest (8 MiB), in memory held per request.
const MD5_QUEUE_BATCHES: usize = 32;

/// Consecutive chunks of a body, about `BATCH_BYTES` together.
type Batch = Vec<Bytes>;

/// Reads `body` to its end, refusing more than `limit_bytes`, spooling past
/// `MEMORY_SPOOL_BYTES` into a fresh file in `spool_dir`. Two blocking threads take every
/// chunk while the next ones are read from the connection: one keeps the bytes, computes the
/// checksums in `wanted` and builds the 0G tree (when `expected_bytes` announces the length),
/// the other computes MD5. When this returns, the tree and checksums are known and MD5 is at
/// most `MD5_QUEUE_BATCHES` batches from done, so the upload is the only pass over the bytes
/// left.
pub async fn receive(
    body: Option<s3s::dto::StreamingBlob>,
    expected_bytes: Option<u64>,
    limit_bytes: u64,
    spool_dir: &Path,
    wanted: Wanted,
) -> Result<Received> {
    if let Some(expected) = expected_bytes
        && expected > limit_bytes
    {
        return Err(Error::EntityTooLarge { limit_bytes });
    }
    let (sink_batches, sink_queue) = tokio::sync::mpsc::channel::<Batch>(SINK_QUEUE_BATCHES);
    let (md5_batches, md5_queue) = tokio::sync::mpsc::channel::<Batch>(MD5_QUEUE_BATCHES);
    let sink_dir = spool_dir.to_path_buf();
    let tree = expected_bytes.and_then(TreeHasher::new);
    let sink = tokio::task::spawn_blocking(move || sink(sink_queue, &sink_dir, wanted, tree));
    let md5 = tokio::task::spawn_blocking(move || md5_of(md5_queue));
    let mut size_bytes = 0u64;
    let read = async {
        let Some(mut body) = body else {
            return Ok(());
        };
        // False once the sink stopped on an error, which it returns below.
        let hand_off = async |batch: Batch| {
            md5_batches.send(batch.clone()).await.is_ok() && sink_batches.send(batch).await.is_ok()
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
    let mut md5 = Md5::new();
    while let Some(batch) = queue.blocking_recv() {
        for chunk in &batch {
            md5.update(chunk);
        }
    }
    md5.finalize()
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

/// The keeping half of `receive`: keeps every chunk in memory or, past `MEMORY_SPOOL_BYTES`,
/// in a spool file, computes the wanted checksums and builds the 0G tree.
fn sink(
    mut queue: tokio::sync::mpsc::Receiver<Batch>,
    spool_dir: &Path,
    wanted: Wanted,
    mut tree: Option<TreeHasher>,
) -> Result<Sunk> {
    let mut hasher = wanted.hasher();
    let mut memory = BytesMut::new();
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
                None if memory.len() + chunk.len() <= MEMORY_SPOOL_BYTES => {
                    memory.extend_from_slice(&chunk);
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
        None => Spool::Memory(memory.freeze()),
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
}
