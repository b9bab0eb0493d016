//! restore: recovers every missing shard of a codeword — data and recovery alike — from any `k`
//! shards in one erasure-decoding pass, built on reed-solomon-simd's public FFT engine interface
//! and run one column block at a time like the encoder (module `blocked`).
//!
//! The library's decoder restores only the missing data shards, so a validity check on top of it
//! must decode and then encode again to learn the missing recovery shards. The erasure decoder
//! of the low-rate code (Lin, Han and Chung's FFT-domain Reed-Solomon, as reed-solomon-simd
//! implements it) already evaluates the whole codeword: the last FFT yields, at every erased
//! position, the erased symbol times a known factor from the erasure-locator polynomial. Undoing
//! that factor at the erased recovery positions as well as the erased data positions gives the
//! full codeword for the price of one decode, which is what the predicate needs.
//!
//! Positions in the work buffer are those of the low-rate code: data shard `i` at `i`, recovery
//! shard `j` at `next_power_of_two(k) + j`, zeros in between and after, `next_power_of_two` of
//! the whole as the transform size. Shard widths are multiples of 64, so shard bytes are the
//! engine's chunk layout as is. Every step works on each 64-byte column independently, so the
//! work buffer is one column block of every position (it fits in L2) rather than whole shards
//! (128 MiB for a full 1024 + 2048 blob). Tests check the result against the library's encoder
//! on every parameter set they use.

use super::blocked::{AlignedBytes, block_chunks};
use super::engine::CodingEngine;
use reed_solomon_simd::engine::utils::xor_within;
use reed_solomon_simd::engine::{
    DefaultEngine, Engine, GF_MODULUS, GF_ORDER, GfElement, ShardsRefMut,
};

/// Reusable state of the one-pass restorer: the engine, one column block's work buffer, the
/// recovery shards (held ones in, restored ones out) and the erasure table.
pub(crate) struct CodewordRestorer {
    engine: CodingEngine,
    block: Vec<[u8; 64]>,
    /// Recovery shard `j` at `j × width`.
    recovery: AlignedBytes,
    erasures: Box<[GfElement; GF_ORDER]>,
    layout: Layout,
}

#[derive(Clone, Copy, Default)]
struct Layout {
    data_shards: usize,
    recovery_shards: usize,
    recovery_start: usize,
    work_count: usize,
    width_bytes: usize,
}

impl Layout {
    fn position(&self, index: usize) -> usize {
        if index < self.data_shards {
            index
        } else {
            self.recovery_start + (index - self.data_shards)
        }
    }
}

impl CodewordRestorer {
    pub(crate) fn new(engine: CodingEngine) -> CodewordRestorer {
        CodewordRestorer {
            engine,
            block: Vec::new(),
            recovery: AlignedBytes::default(),
            erasures: vec![0; GF_ORDER]
                .into_boxed_slice()
                .try_into()
                .expect("a GF_ORDER-long vector"),
            layout: Layout::default(),
        }
    }

    /// Sets up for a codeword of `k + m` shards of `width_bytes` (a non-zero multiple of 64).
    pub(crate) fn prepare(
        &mut self,
        data_shards: usize,
        recovery_shards: usize,
        width_bytes: usize,
    ) {
        assert!(width_bytes > 0 && width_bytes.is_multiple_of(64));
        let recovery_start = data_shards.next_power_of_two();
        self.layout = Layout {
            data_shards,
            recovery_shards,
            recovery_start,
            work_count: (recovery_start + recovery_shards).next_power_of_two(),
            width_bytes,
        };
        self.recovery.resize(recovery_shards * width_bytes);
    }

    /// Keeps held recovery shard `recovery_index`.
    pub(crate) fn put_recovery(&mut self, recovery_index: usize, shard: &[u8]) {
        let width_bytes = self.layout.width_bytes;
        assert!(recovery_index < self.layout.recovery_shards && shard.len() == width_bytes);
        let start = recovery_index * width_bytes;
        self.recovery.as_mut_slice()[start..start + width_bytes].copy_from_slice(shard);
    }

    /// Restores the codeword from the held shards: `held[i]` says whether shard `i` is held;
    /// held data shards are read from `blob` (shard `i` at `i × width`), held recovery shards
    /// were given to [`CodewordRestorer::put_recovery`]. Exactly `k` shards must be held.
    /// Afterwards every data shard that was not held is in `blob`, and
    /// [`CodewordRestorer::recovery_shard`] gives every recovery shard.
    pub(crate) fn restore(&mut self, held: &[bool], blob: &mut [u8]) {
        let layout = self.layout;
        let Layout {
            data_shards,
            recovery_shards,
            recovery_start,
            work_count,
            width_bytes,
        } = layout;
        assert_eq!(held.len(), data_shards + recovery_shards);
        assert_eq!(blob.len(), data_shards * width_bytes);
        assert_eq!(
            held.iter().filter(|&&present| present).count(),
            data_shards,
            "exactly k shards held"
        );
        let recovery_end = recovery_start + recovery_shards;

        // Erasure locator: 1 at every position that is not known, including the positions past
        // the code, 0 at held shards and at the zero positions between data and recovery.
        let erasures = &mut *self.erasures;
        erasures.fill(1);
        erasures[data_shards..recovery_start].fill(0);
        for (index, &present) in held.iter().enumerate() {
            if present {
                erasures[layout.position(index)] = 0;
            }
        }
        DefaultEngine::eval_poly(erasures, GF_ORDER);

        let chunks_per_shard = width_bytes / 64;
        let columns = block_chunks(work_count, chunks_per_shard);
        self.block.resize(work_count * columns, [0u8; 64]);
        let engine = &self.engine;
        let recovery = self.recovery.as_mut_slice();
        // Orders the restored shards' non-temporal stores when this call ends, or unwinds.
        let fence = engine.fence();
        let mut first_column = 0;
        while first_column < chunks_per_shard {
            let columns = columns.min(chunks_per_shard - first_column);
            let bytes = first_column * 64..(first_column + columns) * 64;
            let block = &mut self.block[..work_count * columns];
            block.fill([0u8; 64]);
            let row = |position: usize| position * columns..(position + 1) * columns;
            for (index, &present) in held.iter().enumerate() {
                if !present {
                    continue;
                }
                let shard_start = if index < data_shards {
                    &blob[index * width_bytes..]
                } else {
                    &recovery[(index - data_shards) * width_bytes..]
                };
                let position = layout.position(index);
                let row = &mut block[row(position)];
                row.as_flattened_mut()
                    .copy_from_slice(&shard_start[bytes.clone()]);
                engine.mul(row, erasures[position]);
            }

            engine.ifft(block, columns, 0, work_count, recovery_end, 0);
            // Formal derivative in the novel polynomial basis, as the library's decoder takes it.
            let mut work = ShardsRefMut::new(work_count, columns, block);
            for position in 1..work_count {
                let span = 1 << position.trailing_zeros();
                xor_within(&mut work, position - span, position, span);
            }
            engine.fft(block, columns, 0, work_count, recovery_end, 0);

            for (index, &present) in held.iter().enumerate() {
                if present {
                    continue;
                }
                let position = layout.position(index);
                let row = &mut block[row(position)];
                engine.mul(row, GF_MODULUS - erasures[position]);
                let shard_start = if index < data_shards {
                    &mut blob[index * width_bytes..]
                } else {
                    &mut recovery[(index - data_shards) * width_bytes..]
                };
                engine.scatter(&fence, &mut shard_start[bytes.clone()], row);
            }
            first_column += columns;
        }
    }

    /// All `m` recovery shards (shard `j` at `j × width`), for a caller that computes them
    /// another way: the decoder encodes them when it holds every data shard.
    pub(crate) fn recovery_shards_mut(&mut self) -> &mut [u8] {
        self.recovery.as_mut_slice()
    }

    /// Recovery shard `recovery_index`: held, or restored by the last
    /// [`CodewordRestorer::restore`].
    pub(crate) fn recovery_shard(&self, recovery_index: usize) -> &[u8] {
        let width_bytes = self.layout.width_bytes;
        assert!(recovery_index < self.layout.recovery_shards);
        &self.recovery.as_slice()[recovery_index * width_bytes..(recovery_index + 1) * width_bytes]
    }
}
