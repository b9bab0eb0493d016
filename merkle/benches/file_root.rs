//! File-root build: GB/s per core of our multi-buffer tree vs a single-lane tree with the sha3
//! crate over the same bytes. Target ≥ 3×.
//!
//! Both trees are the full binary Merkle tree over a 64 MiB buffer of random bytes (262144
//! chunks, a power of two, so no padding rule is involved) and are built in the same order:
//! segment by segment (1024 leaves → segment root, with the segment's levels staying in L1/L2),
//! then the tree over the 256 segment roots. Only the hash calls differ: ours hashes whole
//! levels with `hash_chunks` / `hash_pairs`, the baseline one chunk and one pair at a time with
//! `sha3::Keccak256`. Both roots are checked equal before anything is timed.
//!
//! The `hash_chunks` and `hash_pairs` groups time the raw batch kernels per backend, on the
//! 64 MiB buffer (streaming from memory) and on one segment (in cache).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use merkle::keccak::{self, Backend};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use sha3::{Digest, Keccak256};
use std::hint::black_box;
use std::time::Duration;
use types::{CHUNK_BYTES, H256, SEGMENT_BYTES, SEGMENT_CHUNKS};

const FILE_BYTES: usize = 64 << 20;

fn random_file() -> Vec<u8> {
    let mut data = vec![0u8; FILE_BYTES];
    StdRng::seed_from_u64(0x0f11_e500).fill_bytes(&mut data);
    data
}

/// The root over a power-of-two level, hashing into `scratch` and back (each at least half
/// as long as `level`); both buffers are clobbered.
fn root_of<'a>(
    mut level: &'a mut [H256],
    mut scratch: &'a mut [H256],
    hash_pairs: impl Fn(&[H256], &mut [H256]),
) -> H256 {
    let mut width = level.len();
    while width > 1 {
        hash_pairs(&level[..width], &mut scratch[..width / 2]);
        width /= 2;
        std::mem::swap(&mut level, &mut scratch);
    }
    level[0]
}

/// Segment roots, then the tree over them; `hash_chunks` and `hash_pairs` do all the hashing.
fn file_root(
    data: &[u8],
    hash_chunks: impl Fn(&[u8], &mut [H256]),
    hash_pairs: impl Fn(&[H256], &mut [H256]) + Copy,
) -> H256 {
    let segments = data.len() / SEGMENT_BYTES;
    let mut segment_roots = Vec::with_capacity(segments);
    let mut leaves = vec![H256::ZERO; SEGMENT_CHUNKS];
    let mut scratch = vec![H256::ZERO; SEGMENT_CHUNKS.max(segments) / 2];
    for segment in data.chunks_exact(SEGMENT_BYTES) {
        hash_chunks(segment, &mut leaves);
        segment_roots.push(root_of(&mut leaves, &mut scratch, hash_pairs));
    }
    root_of(&mut segment_roots, &mut scratch, hash_pairs)
}

fn ours(data: &[u8], backend: Backend) -> H256 {
    file_root(
        data,
        |chunks, out| keccak::hash_chunks_with(backend, chunks, out),
        move |children, out| keccak::hash_pairs_with(backend, children, out),
    )
}

fn sha3_chunks(data: &[u8], out: &mut [H256]) {
    for (chunk, slot) in data.chunks_exact(CHUNK_BYTES).zip(out) {
        *slot = H256(Keccak256::digest(chunk).into());
    }
}

fn sha3_pairs(children: &[H256], out: &mut [H256]) {
    for (pair, slot) in children.chunks_exact(2).zip(out) {
        let mut hasher = Keccak256::new();
        hasher.update(pair[0].0);
        hasher.update(pair[1].0);
        *slot = H256(hasher.finalize().into());
    }
}

fn baseline(data: &[u8]) -> H256 {
    file_root(data, sha3_chunks, sha3_pairs)
}

fn benches(c: &mut Criterion) {
    let data = random_file();
    let expected = baseline(&data);
    for backend in keccak::available_backends() {
        assert_eq!(
            ours(&data, backend),
            expected,
            "{backend:?} file root differs from sha3"
        );
    }
    eprintln!(
        "keccak backends: {:?} (default {:?})",
        keccak::available_backends(),
        keccak::backend()
    );

    let mut group = c.benchmark_group("file_root_64MiB");
    group.throughput(Throughput::Bytes(FILE_BYTES as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("sha3", |b| b.iter(|| baseline(black_box(&data))));
    for backend in keccak::available_backends() {
        group.bench_function(BenchmarkId::new("ours", backend.name()), |b| {
            b.iter(|| ours(black_box(&data), backend))
        });
    }
    group.finish();

    let mut leaves = vec![H256::ZERO; FILE_BYTES / CHUNK_BYTES];
    let mut group = c.benchmark_group("hash_chunks_64MiB");
    group.throughput(Throughput::Bytes(FILE_BYTES as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("sha3", |b| {
        b.iter(|| sha3_chunks(black_box(&data), &mut leaves))
    });
    for backend in keccak::available_backends() {
        group.bench_function(BenchmarkId::new("ours", backend.name()), |b| {
            b.iter(|| keccak::hash_chunks_with(backend, black_box(&data), &mut leaves))
        });
    }
    group.finish();

    // One segment stays in L2 across iterations: the kernels without memory in the way.
    let segment = &data[..SEGMENT_BYTES];
    let mut segment_leaves = vec![H256::ZERO; SEGMENT_CHUNKS];
    let mut group = c.benchmark_group("hash_chunks_in_cache");
    group.throughput(Throughput::Bytes(SEGMENT_BYTES as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    group.bench_function("sha3", |b| {
        b.iter(|| sha3_chunks(black_box(segment), &mut segment_leaves))
    });
    for backend in keccak::available_backends() {
        group.bench_function(BenchmarkId::new("ours", backend.name()), |b| {
            b.iter(|| keccak::hash_chunks_with(backend, black_box(segment), &mut segment_leaves))
        });
    }
    group.finish();

    // A segment's worth of inner nodes: 1024 children → 512 parents, 64 bytes hashed each.
    let children = &leaves[..SEGMENT_CHUNKS];
    let mut parents = vec![H256::ZERO; SEGMENT_CHUNKS / 2];
    let mut group = c.benchmark_group("hash_pairs_in_cache");
    group.throughput(Throughput::Bytes((SEGMENT_CHUNKS * 32) as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    group.bench_function("sha3", |b| {
        b.iter(|| sha3_pairs(black_box(children), &mut parents))
    });
    for backend in keccak::available_backends() {
        group.bench_function(BenchmarkId::new("ours", backend.name()), |b| {
            b.iter(|| keccak::hash_pairs_with(backend, black_box(children), &mut parents))
        });
    }
    group.finish();
}

criterion_group!(file_root_benches, benches);
criterion_main!(file_root_benches);
