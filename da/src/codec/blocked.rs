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

/// One column block of the low-rate encoder, the library's `LowRateEncoder::encode` step by
/// step: `inputs` are the `k` data shards' bytes in the block's columns, `outputs` the `m`
/// recovery shards'; `block` is the work buffer of `m.next_multiple_of(k.next_power_of_two())`
/// rows of `columns` chunks. The engine reads the inputs and writes the outputs within its
/// first and last passes where it can (the GFNI engine does).
fn encode_block(
    engine: &CodingEngine,
    fence: &Fence,
    block: &mut [[u8; 64]],
    columns: usize,
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
) {
    let size = inputs.len().next_power_of_two();
    assert_eq!(block.len(), outputs.len().next_multiple_of(size) * columns);
    engine.ifft_from(block, columns, size, inputs);
    // Every group of recovery shards is transformed from the IFFT's result.
    let mut group_start = size;
    while group_start < outputs.len() {
        block.copy_within(0..size * columns, group_start * columns);
        group_start += size;
    }
    for (group, outputs) in outputs.chunks_mut(size).enumerate() {
        engine.fft_skew_end_into(fence, block, columns, group * size, size, outputs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::EngineKind;
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};
    use reed_solomon_simd::engine::NoSimd;
    use reed_solomon_simd::rate::{LowRateEncoder, RateEncoder};

    /// Every shape of an encoder block on every engine: transform sizes 1, 2, 4, 2·4^j and 4^j;
    /// a last group of one to three rows and partial groups past the truncation; fewer recovery
    /// than data shards; aligned outputs (streamed by the GFNI engine) and unaligned ones; a
    /// work buffer full of garbage, which must be overwritten or zeroed wherever the library's
    /// encoder copies or zero-pads.
    #[test]
    fn a_block_codes_as_the_library_encoder_on_every_engine_and_alignment() {
        let shapes = [
            (1usize, 2usize),
            (2, 1),
            (2, 7),
            (3, 5),
            (4, 4),
            (8, 3),
            (16, 3),
            (16, 18),
            (16, 40),
            (17, 5),
            (64, 67),
            (64, 128),
            (100, 7),
            (257, 300),
            (1024, 1025),
        ];
        let mut rng = StdRng::seed_from_u64(5);
        for (k, m) in shapes {
            for columns in [1usize, 3] {
                let width = columns * 64;
                let data: Vec<Vec<u8>> = (0..k)
                    .map(|_| {
                        let mut shard = vec![0u8; width];
                        rng.fill_bytes(&mut shard);
                        shard
                    })
                    .collect();
                let mut library = LowRateEncoder::new(k, m, width, NoSimd::new(), None)
                    .expect("supported parameters");
                for shard in &data {
                    library.add_original_shard(shard).expect("k shards");
                }
                let expected: Vec<Vec<u8>> = library
                    .encode()
                    .expect("k shards added")
                    .recovery_iter()
                    .map(<[u8]>::to_vec)
                    .collect();
                for kind in EngineKind::available() {
                    let engine = CodingEngine::of(kind).expect("an available engine");
                    for offset in [0usize, 8] {
                        let mut storage = vec![0u8; m * width + 128];
                        let start = storage.as_ptr().addr().wrapping_neg() % 64 + offset;
                        let recovery = &mut storage[start..start + m * width];
                        let inputs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                        let mut outputs: Vec<&mut [u8]> =
                            recovery.chunks_exact_mut(width).collect();
                        let size = k.next_power_of_two();
                        let mut block = vec![[0xA5u8; 64]; m.next_multiple_of(size) * columns];
                        {
                            let fence = engine.fence();
                            encode_block(
                                &engine,
                                &fence,
                                &mut block,
                                columns,
                                &inputs,
                                &mut outputs,
                            );
                        }
                        for (index, shard) in recovery.chunks_exact(width).enumerate() {
                            assert!(
                                shard == expected[index],
                                "{kind:?} k {k} m {m} columns {columns} offset {offset}: \
                                 recovery shard {index}"
                            );
                        }
                    }
                }
            }
        }
    }
}
