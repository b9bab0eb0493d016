//! restore: recovers every missing shard of a codeword — data and recovery alike — from any `k`
//! shards in one erasure-decoding pass, built on reed-solomon-simd's public FFT engine.
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
//! engine's chunk layout as is. Tests check the result against the library's encoder on every
//! parameter set they use.

use reed_solomon_simd::engine::utils::xor_within;
use reed_solomon_simd::engine::{
    DefaultEngine, Engine, GF_MODULUS, GF_ORDER, GfElement, ShardsRefMut,
};

/// Reusable state of the one-pass restorer: the SIMD engine, the work buffer (the transform
/// size times the shard width: 128 MiB for a full 1024 + 2048 blob), and the erasure table.
pub(crate) struct CodewordRestorer {
    engine: DefaultEngine,
    work: Vec<[u8; 64]>,
    erasures: Box<[GfElement; GF_ORDER]>,
    /// Which work positions hold a shard (the rest are zeroed).
    written: Vec<bool>,
    layout: Layout,
}

#[derive(Clone, Copy, Default)]
struct Layout {
    data_shards: usize,
    recovery_shards: usize,
    recovery_start: usize,
    chunks_per_shard: usize,
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
    pub(crate) fn new() -> CodewordRestorer {
        CodewordRestorer {
            engine: DefaultEngine::new(),
            work: Vec::new(),
            erasures: vec![0; GF_ORDER]
                .into_boxed_slice()
                .try_into()
                .expect("a GF_ORDER-long vector"),
            written: Vec::new(),
            layout: Layout::default(),
        }
    }

    /// Sets up for a codeword of `k + m` shards of `width_bytes` (a non-zero multiple of 64):
    /// sizes the work buffer and forgets the shards of the last one.
    pub(crate) fn prepare(
        &mut self,
        data_shards: usize,
        recovery_shards: usize,
        width_bytes: usize,
    ) {
        assert!(width_bytes > 0 && width_bytes.is_multiple_of(64));
        let recovery_start = data_shards.next_power_of_two();
        let work_count = (recovery_start + recovery_shards).next_power_of_two();
        let chunks_per_shard = width_bytes / 64;
        self.layout = Layout {
            data_shards,
            recovery_shards,
            recovery_start,
            chunks_per_shard,
        };
        self.work.resize(work_count * chunks_per_shard, [0u8; 64]);
        self.written.clear();
        self.written.resize(work_count, false);
    }

    /// Stores held recovery shard `recovery_index` straight into its work position, so a
    /// recovery shard is copied once on its way in.
    pub(crate) fn put_recovery(&mut self, recovery_index: usize, shard: &[u8]) {
        let layout = self.layout;
        assert!(recovery_index < layout.recovery_shards);
        let position = layout.recovery_start + recovery_index;
        let start = position * layout.chunks_per_shard;
        self.work[start..start + layout.chunks_per_shard]
            .as_flattened_mut()
            .copy_from_slice(shard);
        self.written[position] = true;
    }

    /// Restores the codeword from the held shards: `held[i]` says whether shard `i` is held;
    /// held data shards are read from `blob` (shard `i` at `i × width`), held recovery shards
    /// were given to [`CodewordRestorer::put_recovery`]. Exactly `k` shards must be held.
    /// Afterwards [`CodewordRestorer::shard`] gives every shard that was not held.
    pub(crate) fn restore(&mut self, held: &[bool], blob: &[u8]) {
        let layout = self.layout;
        let Layout {
            data_shards,
            recovery_shards,
            recovery_start,
            chunks_per_shard,
        } = layout;
        let width_bytes = chunks_per_shard * 64;
        assert_eq!(held.len(), data_shards + recovery_shards);
        assert_eq!(blob.len(), data_shards * width_bytes);
        assert_eq!(
            held.iter().filter(|&&present| present).count(),
            data_shards,
            "exactly k shards held"
        );
        let recovery_end = recovery_start + recovery_shards;
        let work_count = self.written.len();

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

        let mut work = ShardsRefMut::new(work_count, chunks_per_shard, &mut self.work);
        let engine = &self.engine;
        let written = &mut self.written;
        for (index, shard) in blob.chunks_exact(width_bytes).enumerate() {
            if held[index] {
                work[index].as_flattened_mut().copy_from_slice(shard);
                written[index] = true;
            }
        }
        for (position, &was_written) in written.iter().enumerate() {
            if was_written {
                engine.mul(&mut work[position], erasures[position]);
            } else {
                work[position].fill([0u8; 64]);
            }
        }

        engine.ifft(&mut work, 0, work_count, recovery_end, 0);
        // Formal derivative in the novel polynomial basis.
        for position in 1..work_count {
            let span = 1 << position.trailing_zeros();
            xor_within(&mut work, position - span, position, span);
        }
        engine.fft(&mut work, 0, work_count, recovery_end, 0);

        for (index, &present) in held.iter().enumerate() {
            if !present {
                let position = layout.position(index);
                engine.mul(&mut work[position], GF_MODULUS - erasures[position]);
            }
        }
    }

    /// Shard `index` of the last restored codeword; meaningful for the shards that were not held.
    pub(crate) fn shard(&self, index: usize) -> &[u8] {
        let layout = self.layout;
        assert!(index < layout.data_shards + layout.recovery_shards);
        let start = layout.position(index) * layout.chunks_per_shard;
        self.work[start..start + layout.chunks_per_shard].as_flattened()
    }
}
