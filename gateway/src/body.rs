//! Receiving a request body: bytes are hashed as they arrive (MD5 for the ETag, the S3
//! checksums the client asked for) and kept in memory up to a threshold, past it in a spool
//! file that is removed when the upload is done. The limit on the body is enforced while
//! reading, so an oversized body is refused before it is stored.

use crate::error::{Error, Result};
use crate::store::Checksums;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Known once `receive` computed it (when Content-MD5 has to be checked before anything
    /// is stored); otherwise `Received::md5` computes it, beside the upload to the node.
    md5: Option<[u8; 16]>,
    pub checksums: Checksums,
}

impl Received {
    /// The body's MD5 (what the ETag is made of), computed on a blocking thread if `receive`
    /// left it.
    pub async fn md5(&self) -> Result<[u8; 16]> {
        if let Some(md5) = self.md5 {
            return Ok(md5);
        }
        let spool = match &self.spool {
            Spool::Memory(bytes) => Ok(bytes.clone()),
            Spool::File { path, .. } => Err(path.clone()),
        };
        tokio::task::spawn_blocking(move || match spool {
            Ok(bytes) => {
                let mut md5 = Md5::new();
                md5.update(&bytes);
                Ok(md5.finalize())
            }
            Err(path) => md5_of_file(&path),
        })
        .await
        .map_err(|error| Error::Task {
            detail: error.to_string(),
        })?
    }
}

/// Block size of reading a spool file back for its MD5.
const MD5_READ_BYTES: usize = 1024 * 1024;

fn md5_of_file(path: &Path) -> Result<[u8; 16]> {
    use std::io::Read;
    let io = |operation: &'static str| {
        move |source| Error::Io {
            operation,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = std::fs::File::open(path).map_err(io("opening"))?;
    let mut md5 = Md5::new();
    let mut buffer = vec![0u8; MD5_READ_BYTES];
    loop {
        let read = file.read(&mut buffer).map_err(io("reading"))?;
        if read == 0 {
            return Ok(md5.finalize());
        }
        md5.update(&buffer[..read]);
    }
}

/// Chunks queued between the task reading a body and the thread that hashes and keeps it.
const SINK_QUEUE_CHUNKS: usize = 16;

/// Reads `body` to its end, refusing more than `limit_bytes`, spooling past
/// `MEMORY_SPOOL_BYTES` into a fresh file in `spool_dir`. The bytes are hashed and kept on a
/// blocking thread while the next ones are read from the connection. MD5 (the slowest hash,
/// about 0.7 GB/s) is computed here only with `md5_now`; otherwise `Received::md5` computes it
/// while the bytes are uploaded.
pub async fn receive(
    body: Option<s3s::dto::StreamingBlob>,
    expected_bytes: Option<u64>,
    limit_bytes: u64,
    spool_dir: &Path,
    wanted: Wanted,
    md5_now: bool,
) -> Result<Received> {
    if let Some(expected) = expected_bytes
        && expected > limit_bytes
    {
        return Err(Error::EntityTooLarge { limit_bytes });
    }
    let (chunks, queue) = tokio::sync::mpsc::channel::<Bytes>(SINK_QUEUE_CHUNKS);
    let sink_dir = spool_dir.to_path_buf();
    let sink = tokio::task::spawn_blocking(move || sink(queue, &sink_dir, wanted, md5_now));
    let mut size_bytes = 0u64;
    let read = async {
        let Some(mut body) = body else {
            return Ok(());
        };
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| Error::Body {
                detail: error.to_string(),
            })?;
            size_bytes += chunk.len() as u64;
            if size_bytes > limit_bytes {
                return Err(Error::EntityTooLarge { limit_bytes });
            }
            if chunks.send(chunk).await.is_err() {
                // The sink stopped on an error, which it returns below.
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(chunks);
    let sunk = sink.await.map_err(|error| Error::Task {
        detail: error.to_string(),
    })?;
    read?;
    let (spool, md5, checksums) = sunk?;
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
        md5,
        checksums,
    })
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

/// The blocking half of `receive`: hashes every chunk and keeps it in memory or, past
/// `MEMORY_SPOOL_BYTES`, in a spool file.
fn sink(
    mut queue: tokio::sync::mpsc::Receiver<Bytes>,
    spool_dir: &Path,
    wanted: Wanted,
    md5_now: bool,
) -> Result<(Spool, Option<[u8; 16]>, Checksums)> {
    let mut md5 = md5_now.then(Md5::new);
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
    while let Some(chunk) = queue.blocking_recv() {
        if let Some(md5) = &mut md5 {
            md5.update(&chunk);
        }
        hasher.update(&chunk);
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
    Ok((
        spool,
        md5.map(Md5::finalize),
        Checksums {
            crc32: digest.checksum_crc32,
            crc32c: digest.checksum_crc32c,
            sha1: digest.checksum_sha1,
            sha256: digest.checksum_sha256,
            crc64nvme: digest.checksum_crc64nvme,
        },
    ))
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
