//! blocked: reed-solomon-simd's low-rate encoding, run one column block at a time so the whole
//! transform stays in the core's cache.
//!
//! Every step of the low-rate code (IFFT of the data shards, copies, one FFT per group of
//! recovery shards) works on each 64-byte column of the shards independently. The library runs
//! each step over whole shards: for 1024 + 2048 shards of 32 KiB that is a 64 MiB work buffer
//! swept about fifteen times. Here the shards are cut into column blocks narrow enough that the
//! block's whole work buffer fits in L2 ([`BLOCK_BUDGET_BYTES`]); each block is gathered from
//! the data shards, transformed with the same engine calls as the library's `LowRateEncoder`,
//! and scattered into the recovery shards. Memory then sees one read of the data and one write
//! of the recovery shards, and the bytes are the library's (tests compare them).

use super::engine::{CodingEngine, Fence};

/// The work buffer of one column block: about half of a 2 MiB L2, which measured best on the
/// 1024 + 2048 code (8 columns of 64 bytes across 2048 work positions).
pub(crate) const BLOCK_BUDGET_BYTES: usize = 1 << 20;

/// Columns of 64 bytes per block for a transform over `work_count` positions, at most the
/// shard's own `chunks_per_shard`.
pub(crate) fn block_chunks(work_count: usize, chunks_per_shard: usize) -> usize {
    (BLOCK_BUDGET_BYTES / (work_count * 64)).clamp(1, chunks_per_shard.max(1))
}

/// A byte buffer whose contents start on a 64-byte boundary, so column blocks can be stored
/// into it with non-temporal stores ([`CodingEngine::scatter`]).
#[derive(Default)]
pub(crate) struct AlignedBytes {
    storage: Vec<u8>,
    len: usize,
}

impl AlignedBytes {
    /// Makes the buffer `len` bytes long. What it held before is not kept.
    pub(crate) fn resize(&mut self, len: usize) {
        self.storage.resize(len + 63, 0);
        self.len = len;
    }

    fn start(&self) -> usize {
        if self.storage.is_empty() {
            // Never resized: no contents, and no slack to align them in.
            return 0;
        }
        self.storage.as_ptr().addr().wrapping_neg() % 64
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        let start = self.start();
        &self.storage[start..start + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        let start = self.start();
        &mut self.storage[start..start + self.len]
    }
}

/// The low-rate encoder of `k` data into `m` recovery shards, reusing its buffers.
pub(crate) struct BlockedEncoder {
    engine: CodingEngine,
    data_shards: usize,
    recovery_shards: usize,
    /// Work positions: `m` rounded up to a multiple of the transform size.
    work_count: usize,
    width_bytes: usize,
    block: Vec<[u8; 64]>,
    /// The `m` recovery shards of the last encoding, shard `j` at `j × width`.
    recovery: AlignedBytes,
}

impl BlockedEncoder {
    pub(crate) fn new(engine: CodingEngine, data_shards: usize, recovery_shards: usize) -> Self {
        assert!(data_shards > 0 && recovery_shards > 0);
        BlockedEncoder {
            engine,
            data_shards,
            recovery_shards,
            work_count: recovery_shards.next_multiple_of(data_shards.next_power_of_two()),
            width_bytes: 0,
            block: Vec::new(),
            recovery: AlignedBytes::default(),
        }
    }

    pub(crate) fn engine(&self) -> &CodingEngine {
        &self.engine
    }

    /// Codes the `k` data shards, `data_shard(i)` for `i < k`, each `width_bytes` long (a
    /// non-zero multiple of 64), into the `m` recovery shards, kept for
    /// [`BlockedEncoder::recovery`].
    pub(crate) fn encode<'s>(
        &mut self,
        width_bytes: usize,
        data_shard: impl Fn(usize) -> &'s [u8],
    ) {
        let mut recovery = std::mem::take(&mut self.recovery);
        recovery.resize(self.recovery_shards * width_bytes);
        self.encode_into(width_bytes, data_shard, recovery.as_mut_slice());
        self.recovery = recovery;
        self.width_bytes = width_bytes;
    }

    /// [`BlockedEncoder::encode`] into `recovery` (`m × width_bytes` bytes, recovery shard `j`
    /// at `j × width_bytes`; streamed into where it is 64-byte aligned) instead of the encoder's
    /// own buffer.
    pub(crate) fn encode_into<'s>(
        &mut self,
        width_bytes: usize,
        data_shard: impl Fn(usize) -> &'s [u8],
        recovery: &mut [u8],
    ) {
        assert!(width_bytes > 0 && width_bytes.is_multiple_of(64));
        let (k, m, work_count) = (self.data_shards, self.recovery_shards, self.work_count);
        assert_eq!(recovery.len(), m * width_bytes);
        let engine = &self.engine;
        let chunks_per_shard = width_bytes / 64;
        let columns = block_chunks(work_count, chunks_per_shard);
        self.block.resize(work_count * columns, [0u8; 64]);

        // Orders the recovery shards' non-temporal stores when this call ends, or unwinds.
        let fence = engine.fence();
        let mut first_column = 0;
        while first_column < chunks_per_shard {
            let columns = columns.min(chunks_per_shard - first_column);
            let bytes = first_column * 64..(first_column + columns) * 64;
            // Per block, a few thousand slice references: nothing beside the block's work.
            let inputs: Vec<&[u8]> = (0..k)
                .map(|index| &data_shard(index)[bytes.clone()])
                .collect();
            let mut outputs: Vec<&mut [u8]> = recovery
                .chunks_exact_mut(width_bytes)
                .map(|shard| &mut shard[bytes.clone()])
                .collect();
            encode_block(
                engine,
                &fence,
                &mut self.block[..work_count * columns],
                columns,
                &inputs,
                &mut outputs,
            );
            first_column += columns;
        }
    }

    /// Recovery shard `index` (< m) of the last encoding.
    pub(crate) fn recovery(&self, index: usize) -> &[u8] {
        assert!(index < self.recovery_shards);
        &self.recovery.as_slice()[index * self.width_bytes..(index + 1) * self.width_bytes]
    }
}

/// One column block of the low-rate encoder: `inputs` are the `k` data shards' bytes in the
/// block's columns, `outputs` the `m` recovery shards'; `block` is the work buffer of
/// `m.next_multiple_of(k.next_power_of_two())` rows of `columns` chunks. The GFNI engine fuses
/// the copies in and out into its first and last passes; otherwise the steps are the library's
/// `LowRateEncoder::encode` as written.
fn encode_block(
    engine: &CodingEngine,
    fence: &Fence,
    block: &mut [[u8; 64]],
    columns: usize,
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
) {
    #[cfg(target_arch = "x86_64")]
    if let (CodingEngine::Gfni(gfni), Fence::Stream(fence)) = (engine, fence) {
        gfni.encode_block(fence, block, columns, inputs, outputs);
        return;
    }
    let (k, m) = (inputs.len(), outputs.len());
    let size = k.next_power_of_two();
    for (row, input) in block.chunks_exact_mut(columns).zip(inputs) {
        row.as_flattened_mut().copy_from_slice(input);
    }
    block[k * columns..size * columns].fill([0u8; 64]);
    engine.ifft(block, columns, 0, size, k, 0);
    let mut group_start = size;
    while group_start < m {
        block.copy_within(0..size * columns, group_start * columns);
        group_start += size;
    }
    let mut group_start = 0;
    while group_start < m {
        let count = (m - group_start).min(size);
        engine.fft(block, columns, group_start, size, count, group_start + size);
        group_start += size;
    }
    for (row, output) in block.chunks_exact(columns).zip(outputs.iter_mut()) {
        engine.scatter(fence, output, row);
    }
}
