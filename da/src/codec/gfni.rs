//! gfni: reed-solomon-simd's FFT engine operations (`Engine::fft`, `ifft`, `mul`) on AVX-512 with
//! GFNI, byte-for-byte the same transforms as the library's engines, on a flat buffer of rows.
//!
//! Multiplying a GF(2^16) element by a constant is a linear map over GF(2): a 16 × 16 bit matrix,
//! or four 8 × 8 blocks between the element's low and high bytes. `vgf2p8affineqb` applies one
//! 8 × 8 bit matrix per 64-bit lane to every byte of a register, and the library keeps each
//! 64-byte chunk as 32 low bytes then 32 high bytes, so one register holds 32 elements as
//! `[lo | hi]`. With `M1 = [lo←lo | hi←hi]` and `M2 = [lo←hi | hi←lo]` (per 256-bit half),
//!
//! ```text
//! x · c = affine(x, M1) ⊕ affine(swap_halves(x), M2)
//! ```
//!
//! two affine instructions, one lane shuffle and an XOR per 32 elements, against eight table
//! shuffles, four masks and shifts for the library's AVX2 lookup. The matrices of all 65 536
//! multipliers are built once from the library's own exp/log tables (2 MiB).
//!
//! The FFT and IFFT walk the same butterflies in the same order as the library (two layers per
//! pass, then a final odd layer), so the output is identical wherever the library defines it;
//! only each radix-4 butterfly is done in registers (four chunks loaded, both layers applied,
//! four chunks stored), and all butterflies of a group, which share their skews and lie in four
//! runs of consecutive rows, are one pass over four slices. A butterfly whose skew is
//! `GF_MODULUS` (multiply by zero, the library's plain XOR) uses the all-zero matrix, which gives
//! the same bytes without a branch.
//!
//! Safety: every `unsafe` here is a SIMD load or store through a pointer made from a `&[u8; 64]`
//! or `&mut [u8; 64]`; a call into this module's `#[target_feature]` functions, which only run
//! once [`Gfni::detect`] has seen AVX-512F, AVX-512BW and GFNI on this CPU; a non-temporal store,
//! which needs its 64 bytes aligned (the `unsafe fn`s that may do one say so, and their callers
//! check); or `sfence`. Non-temporal stores are weakly ordered, so they must be fenced before the
//! memory is touched again, by this thread or another: the functions that stream take a
//! [`StreamFence`], which fences when it is dropped, at the end of the coding call or when it
//! unwinds.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m512i, _mm_sfence, _mm512_gf2p8affine_epi64_epi8, _mm512_loadu_si512, _mm512_set_epi64,
    _mm512_setzero_si512, _mm512_shuffle_i64x2, _mm512_storeu_si512, _mm512_stream_si512,
    _mm512_ternarylogic_epi64, _mm512_xor_si512,
};
use reed_solomon_simd::engine::tables::{self, Skew};
use reed_solomon_simd::engine::{GF_BITS, GF_MODULUS, GF_ORDER, GfElement};
use std::sync::LazyLock;

/// The GF(2) matrix of multiplication by one constant, as the four 8 × 8 blocks
/// `[lo←lo, hi←hi, lo←hi, hi←lo]` in `vgf2p8affineqb`'s row order (the row of output bit `i` in
/// byte `7 - i`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct MulMatrix([u64; 4]);

/// The all-zero matrix: a butterfly with skew `GF_MODULUS` multiplies by zero.
const ZERO_MATRIX: MulMatrix = MulMatrix([0; 4]);

static MATRICES: LazyLock<Box<[MulMatrix]>> = LazyLock::new(build_matrices);

/// The matrix of every `log_m` in `0..GF_ORDER`, from the library's scalar multiplication, so
/// `mul(x, log_m)` here is the library's for every `x` and `log_m` (including `GF_MODULUS`,
/// which the library's `mul` treats as one).
fn build_matrices() -> Box<[MulMatrix]> {
    let exp_log = tables::get_exp_log();
    (0..GF_ORDER)
        .map(|log_m| {
            let log_m = GfElement::try_from(log_m).expect("log_m < GF_ORDER fits a GfElement");
            // rows[i] bit j: does input bit j reach output bit i.
            let mut rows = [0u16; GF_BITS];
            for input_bit in 0..GF_BITS {
                let column = tables::mul(1 << input_bit, log_m, &exp_log.exp, &exp_log.log);
                for (output_bit, row) in rows.iter_mut().enumerate() {
                    *row |= ((column >> output_bit) & 1) << input_bit;
                }
            }
            let mut blocks = [0u64; 4];
            for bit in 0..8 {
                let shift = 8 * (7 - bit);
                let [low_row_lo, low_row_hi] = rows[bit].to_le_bytes();
                let [high_row_lo, high_row_hi] = rows[bit + 8].to_le_bytes();
                blocks[0] |= u64::from(low_row_lo) << shift;
                blocks[1] |= u64::from(high_row_hi) << shift;
                blocks[2] |= u64::from(low_row_hi) << shift;
                blocks[3] |= u64::from(high_row_lo) << shift;
            }
            MulMatrix(blocks)
        })
        .collect()
}

/// Orders the non-temporal stores made while it lives before anything after it: `sfence` when
/// dropped, at the end of a coding call or while it unwinds. The functions that stream take
/// one, so none can be called without a fence to follow.
pub(crate) struct StreamFence(());

impl StreamFence {
    pub(crate) fn new() -> StreamFence {
        StreamFence(())
    }
}

impl Drop for StreamFence {
    fn drop(&mut self) {
        // SAFETY: SSE, and so `sfence`, is part of x86-64.
        unsafe { _mm_sfence() }
    }
}

/// The GFNI engine. Only [`Gfni::detect`] makes one, on a CPU with the features it needs.
#[derive(Clone, Copy)]
pub(crate) struct Gfni {
    skew: &'static Skew,
    matrices: &'static [MulMatrix],
}

impl Gfni {
    /// Whether this CPU has AVX-512F, AVX-512BW and GFNI.
    pub(crate) fn is_available() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("gfni")
    }

    /// The engine, if this CPU has what it needs ([`Gfni::is_available`]).
    pub(crate) fn detect() -> Option<Gfni> {
        Gfni::is_available().then(|| Gfni {
            skew: tables::get_skew(),
            matrices: &MATRICES,
        })
    }

    /// The multipliers `[m01, m02, m23]` of the radix-4 group at transform row `r` whose rows are
    /// `dist` apart, as the library's transforms index the skew table.
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn group_registers(&self, r: usize, dist: usize, skew_delta: usize) -> [Registers; 3] {
        let base = r + dist + skew_delta - 1;
        let [m01, m02, m23] = [base, base + dist, base + 2 * dist]
            .map(|index| self.butterfly_matrix(self.skew[index]));
        [Registers::of(m01), Registers::of(m02), Registers::of(m23)]
    }

    /// The matrix a butterfly multiplies by: `GF_MODULUS` means zero there.
    fn butterfly_matrix(&self, log_m: GfElement) -> MulMatrix {
        if log_m == GF_MODULUS {
            ZERO_MATRIX
        } else {
            self.matrices[usize::from(log_m)]
        }
    }
}

impl Gfni {
    /// In-place FFT of rows `pos .. pos + size` of `data`, rows of `row_chunks` chunks laid one
    /// after another: the library's `Engine::fft` (same arguments, same bytes) on a flat buffer.
    pub(crate) fn fft(
        &self,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        // SAFETY: a `Gfni` exists only where `detect` saw the target features.
        unsafe {
            self.fft_passes(
                data,
                row_chunks,
                pos,
                size,
                truncated_size,
                skew_delta,
                None,
            )
        }
    }

    /// In-place IFFT, the library's `Engine::ifft` on a flat buffer (see [`Gfni::fft`]).
    pub(crate) fn ifft(
        &self,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
    ) {
        // SAFETY: a `Gfni` exists only where `detect` saw the target features.
        unsafe {
            self.ifft_passes(
                data,
                row_chunks,
                pos,
                size,
                truncated_size,
                skew_delta,
                None,
            )
        }
    }

    /// `x *= log_m`, the library's `Engine::mul`.
    pub(crate) fn mul(&self, x: &mut [[u8; 64]], log_m: GfElement) {
        // SAFETY: a `Gfni` exists only where `detect` saw the target features.
        unsafe { mul_chunks(x, self.matrices[usize::from(log_m)]) }
    }

    /// Copies `rows` to `destination` (64-byte aligned, `rows.len() × 64` bytes) with
    /// non-temporal stores, which skip reading the destination's lines into the cache first:
    /// the scatter of a column block into 2048 recovery shards is otherwise bound by those
    /// reads. `_fence` orders them before anything that follows it.
    pub(crate) fn stream_rows(
        &self,
        _fence: &StreamFence,
        destination: &mut [u8],
        rows: &[[u8; 64]],
    ) {
        assert_eq!(destination.len(), rows.len() * 64);
        assert!(destination.as_ptr().addr().is_multiple_of(64));
        let (destination, rest) = destination.as_chunks_mut::<64>();
        assert!(rest.is_empty());
        // SAFETY: a `Gfni` exists only where `detect` saw the target features, and the
        // destination was just checked to be 64-byte aligned.
        unsafe { store_rows(destination, rows, true) }
    }

    /// Rows `first .. first + 4 × dist` as four runs of `dist` rows.
    fn quarters(
        data: &mut [[u8; 64]],
        row_chunks: usize,
        first: usize,
        dist: usize,
    ) -> [&mut [[u8; 64]]; 4] {
        let run = dist * row_chunks;
        let group = &mut data[first * row_chunks..first * row_chunks + 4 * run];
        let (s01, s23) = group.split_at_mut(2 * run);
        let (s0, s1) = s01.split_at_mut(run);
        let (s2, s3) = s23.split_at_mut(run);
        [s0, s1, s2, s3]
    }

    /// Rows `first .. first + 2 × dist` as two runs of `dist` rows.
    fn halves(
        data: &mut [[u8; 64]],
        row_chunks: usize,
        first: usize,
        dist: usize,
    ) -> (&mut [[u8; 64]], &mut [[u8; 64]]) {
        let run = dist * row_chunks;
        data[first * row_chunks..first * row_chunks + 2 * run].split_at_mut(run)
    }

    /// The FFT; with `outputs`, its last pass stores transform row `i` into `outputs[i]`
    /// (non-temporal where every output is 64-byte aligned) instead of back into `data`.
    #[allow(clippy::too_many_arguments)] // the library's five transform arguments, plus two
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn fft_passes(
        &self,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
        mut outputs: Option<&mut [&mut [u8]]>,
    ) {
        // The last pass writes the outputs of the groups it runs, which cover the rows below
        // the truncation.
        assert!(
            outputs
                .as_deref()
                .is_none_or(|outputs| outputs.len() <= truncated_size)
        );
        let stream = outputs.as_deref().is_some_and(|outputs| {
            outputs
                .iter()
                .all(|output| output.as_ptr().addr().is_multiple_of(64))
        });
        let mut dist4 = size;
        let mut dist = size >> 2;
        while dist != 0 {
            let last = dist == 1;
            let mut r = 0;
            while r < truncated_size {
                let [m01, m02, m23] = self.group_registers(r, dist, skew_delta);
                let [s0, s1, s2, s3] = Self::quarters(data, row_chunks, pos + r, dist);
                match outputs.as_deref_mut() {
                    Some(outputs) if last => {
                        let mut targets = outputs.iter_mut().skip(r).map(|output| &mut **output);
                        let targets = [(); 4].map(|()| targets.next());
                        // SAFETY: `stream` is set only when every output is 64-byte aligned.
                        unsafe {
                            fft_two_layers_out(s0, s1, s2, s3, m01, m23, m02, targets, stream)
                        };
                    }
                    _ => two_layers::<false>([s0, s1, s2, s3], m01, m23, m02),
                }
                r += dist4;
            }
            dist4 = dist;
            dist >>= 2;
        }
        if dist4 == 2 {
            let mut r = 0;
            while r < truncated_size {
                let m = Registers::of(self.butterfly_matrix(self.skew[r + skew_delta]));
                let (x, y) = Self::halves(data, row_chunks, pos + r, 1);
                fft_one_layer(x, y, m);
                r += 2;
            }
        }
        // Outputs the radix-4 passes did not write: after an odd last layer, or a transform
        // of one row.
        if let Some(outputs) = outputs
            && (dist4 == 2 || size == 1)
        {
            for (row, output) in outputs.iter_mut().enumerate() {
                let start = (pos + row) * row_chunks;
                let source = &data[start..start + row_chunks];
                let (output, rest) = output.as_chunks_mut::<64>();
                assert!(rest.is_empty());
                // SAFETY: `stream` is set only when every output is 64-byte aligned.
                unsafe { store_rows(output, source, stream) };
            }
        }
    }

    /// The IFFT; with `inputs`, transform row `i` is first taken to be `inputs[i]` (zeros past
    /// the last input), read by the first pass itself instead of copied into `data` before it.
    #[allow(clippy::too_many_arguments)] // the library's five transform arguments, plus two
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn ifft_passes(
        &self,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        pos: usize,
        size: usize,
        truncated_size: usize,
        skew_delta: usize,
        inputs: Option<&[&[u8]]>,
    ) {
        let mut dist = 1;
        let mut dist4 = 4;
        if let Some(inputs) = inputs {
            // Groups past the truncation are zero-filled: no input may lie there.
            assert!(inputs.len() <= truncated_size && truncated_size <= size);
            let row = |index: usize| (pos + index) * row_chunks..(pos + index + 1) * row_chunks;
            if size < 4 {
                for index in 0..size {
                    let target = &mut data[row(index)];
                    match inputs.get(index) {
                        Some(input) => target.as_flattened_mut().copy_from_slice(input),
                        None => target.fill([0; 64]),
                    }
                }
            } else {
                let mut r = 0;
                while r < size {
                    let [s0, s1, s2, s3] = Self::quarters(data, row_chunks, pos + r, 1);
                    if r < truncated_size {
                        let [m01, m02, m23] = self.group_registers(r, 1, skew_delta);
                        let sources = [0, 1, 2, 3].map(|j| {
                            inputs.get(r + j).map(|input| {
                                let (chunks, rest) = input.as_chunks::<64>();
                                assert!(rest.is_empty() && chunks.len() == row_chunks);
                                chunks
                            })
                        });
                        ifft_two_layers_in(s0, s1, s2, s3, m01, m23, m02, sources);
                    } else {
                        // The library leaves groups past the truncation as they are: the
                        // inputs, which are zeros there.
                        for rows in [s0, s1, s2, s3] {
                            rows.fill([0; 64]);
                        }
                    }
                    r += 4;
                }
                dist = 4;
                dist4 = 16;
            }
        }
        while dist4 <= size {
            let mut r = 0;
            while r < truncated_size {
                let [m01, m02, m23] = self.group_registers(r, dist, skew_delta);
                let [s0, s1, s2, s3] = Self::quarters(data, row_chunks, pos + r, dist);
                two_layers::<true>([s0, s1, s2, s3], m01, m23, m02);
                r += dist4;
            }
            dist = dist4;
            dist4 <<= 2;
        }
        if dist < size {
            let m = Registers::of(self.butterfly_matrix(self.skew[dist + skew_delta - 1]));
            let (x, y) = Self::halves(data, row_chunks, pos, dist);
            ifft_one_layer(x, y, m);
        }
    }

    /// The IFFT of rows `0 .. size` whose rows are first `inputs` (zeros past them), truncated
    /// at `inputs.len()`: the first pass reads the inputs itself instead of having them copied
    /// into `data` first.
    pub(crate) fn ifft_from(
        &self,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        size: usize,
        inputs: &[&[u8]],
    ) {
        // SAFETY: a `Gfni` exists only where `detect` saw the target features.
        unsafe { self.ifft_passes(data, row_chunks, 0, size, inputs.len(), 0, Some(inputs)) }
    }

    /// The FFT of rows `pos .. pos + size` with the skew of the group ending there (the
    /// library's `fft_skew_end`), truncated at `outputs.len()`: the last pass writes transform
    /// row `i` into `outputs[i]` (non-temporal where every output is aligned, ordered by
    /// `_fence`) instead of back into `data`.
    pub(crate) fn fft_skew_end_into(
        &self,
        _fence: &StreamFence,
        data: &mut [[u8; 64]],
        row_chunks: usize,
        pos: usize,
        size: usize,
        outputs: &mut [&mut [u8]],
    ) {
        let count = outputs.len();
        // SAFETY: a `Gfni` exists only where `detect` saw the target features.
        unsafe {
            self.fft_passes(
                data,
                row_chunks,
                pos,
                size,
                count,
                pos + size,
                Some(outputs),
            )
        }
    }
}

/// One multiplier's matrices as the two registers of the module docs.
#[derive(Clone, Copy)]
struct Registers {
    same_half: __m512i,
    other_half: __m512i,
}

impl Registers {
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn of(matrix: MulMatrix) -> Registers {
        let [lo_lo, hi_hi, lo_hi, hi_lo] = matrix.0.map(|block| block as i64);
        Registers {
            same_half: _mm512_set_epi64(hi_hi, hi_hi, hi_hi, hi_hi, lo_lo, lo_lo, lo_lo, lo_lo),
            other_half: _mm512_set_epi64(hi_lo, hi_lo, hi_lo, hi_lo, lo_hi, lo_hi, lo_hi, lo_hi),
        }
    }
}

/// The two affine products whose XOR is `x · c`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn products(x: __m512i, m: Registers) -> (__m512i, __m512i) {
    let swapped = _mm512_shuffle_i64x2::<0b01_00_11_10>(x, x);
    (
        _mm512_gf2p8affine_epi64_epi8::<0>(x, m.same_half),
        _mm512_gf2p8affine_epi64_epi8::<0>(swapped, m.other_half),
    )
}

/// `x ⊕ y · c`, as one three-way XOR.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn mul_add(x: __m512i, y: __m512i, m: Registers) -> __m512i {
    let (a, b) = products(y, m);
    _mm512_ternarylogic_epi64::<0x96>(x, a, b)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn load(chunk: &[u8; 64]) -> __m512i {
    // SAFETY: the pointer comes from a reference to 64 bytes; loadu needs no alignment.
    unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn store(chunk: &mut [u8; 64], value: __m512i) {
    // SAFETY: the pointer comes from a mutable reference to 64 bytes; storeu needs no alignment.
    unsafe { _mm512_storeu_si512(chunk.as_mut_ptr().cast(), value) }
}

#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn mul_chunks(x: &mut [[u8; 64]], matrix: MulMatrix) {
    let m = Registers::of(matrix);
    for chunk in x {
        let (a, b) = products(load(chunk), m);
        store(chunk, _mm512_xor_si512(a, b));
    }
}

/// Two FFT layers on four chunks: `(x0, x2)` and `(x1, x3)` with `m02`, then `(x0, x1)` with
/// `m01` and `(x2, x3)` with `m23`; each butterfly is `x ^= y · c; y ^= x`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn fft4(x: [__m512i; 4], m01: Registers, m23: Registers, m02: Registers) -> [__m512i; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = x;
    x0 = mul_add(x0, x2, m02);
    x2 = _mm512_xor_si512(x2, x0);
    x1 = mul_add(x1, x3, m02);
    x3 = _mm512_xor_si512(x3, x1);
    x0 = mul_add(x0, x1, m01);
    x1 = _mm512_xor_si512(x1, x0);
    x2 = mul_add(x2, x3, m23);
    x3 = _mm512_xor_si512(x3, x2);
    [x0, x1, x2, x3]
}

/// Two IFFT layers on four chunks: `(x0, x1)` with `m01` and `(x2, x3)` with `m23`, then
/// `(x0, x2)` and `(x1, x3)` with `m02`; each butterfly is `y ^= x; x ^= y · c`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn ifft4(x: [__m512i; 4], m01: Registers, m23: Registers, m02: Registers) -> [__m512i; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = x;
    x1 = _mm512_xor_si512(x1, x0);
    x0 = mul_add(x0, x1, m01);
    x3 = _mm512_xor_si512(x3, x2);
    x2 = mul_add(x2, x3, m23);
    x2 = _mm512_xor_si512(x2, x0);
    x0 = mul_add(x0, x2, m02);
    x3 = _mm512_xor_si512(x3, x1);
    x1 = mul_add(x1, x3, m02);
    [x0, x1, x2, x3]
}

/// [`fft4`], or [`ifft4`] when `INVERSE`, over four rows in place.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn two_layers<const INVERSE: bool>(
    rows: [&mut [[u8; 64]]; 4],
    m01: Registers,
    m23: Registers,
    m02: Registers,
) {
    let [s0, s1, s2, s3] = rows;
    let rows = s0
        .iter_mut()
        .zip(s1.iter_mut())
        .zip(s2.iter_mut())
        .zip(s3.iter_mut());
    for (((c0, c1), c2), c3) in rows {
        let x = [load(c0), load(c1), load(c2), load(c3)];
        let [x0, x1, x2, x3] = if INVERSE {
            ifft4(x, m01, m23, m02)
        } else {
            fft4(x, m01, m23, m02)
        };
        store(c0, x0);
        store(c1, x1);
        store(c2, x2);
        store(c3, x3);
    }
}

/// [`fft4`] over four rows, results to `targets` (a missing target's row is dropped).
///
/// # Safety
///
/// With `stream`, every target starts on a 64-byte boundary.
#[allow(clippy::too_many_arguments)] // four rows, three multipliers, where the rows go
#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn fft_two_layers_out(
    s0: &[[u8; 64]],
    s1: &[[u8; 64]],
    s2: &[[u8; 64]],
    s3: &[[u8; 64]],
    m01: Registers,
    m23: Registers,
    m02: Registers,
    targets: [Option<&mut [u8]>; 4],
    stream: bool,
) {
    let mut targets = targets.map(|target| {
        target.map(|target| {
            let (chunks, rest) = target.as_chunks_mut::<64>();
            assert!(rest.is_empty() && chunks.len() == s0.len());
            chunks
        })
    });
    for chunk in 0..s0.len() {
        let x = [&s0[chunk], &s1[chunk], &s2[chunk], &s3[chunk]].map(|c| load(c));
        let y = fft4(x, m01, m23, m02);
        for (target, value) in targets.iter_mut().zip(y) {
            if let Some(target) = target {
                // SAFETY: the caller's promise about `stream` covers every chunk of a target.
                unsafe { store_to(&mut target[chunk], value, stream) };
            }
        }
    }
}

/// [`ifft4`] of `sources` (a missing source is a row of zeros) into four rows.
#[allow(clippy::too_many_arguments)] // four rows, three multipliers, where the rows come from
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn ifft_two_layers_in(
    s0: &mut [[u8; 64]],
    s1: &mut [[u8; 64]],
    s2: &mut [[u8; 64]],
    s3: &mut [[u8; 64]],
    m01: Registers,
    m23: Registers,
    m02: Registers,
    sources: [Option<&[[u8; 64]]>; 4],
) {
    for chunk in 0..s0.len() {
        let x = sources.map(|source| match source {
            Some(source) => load(&source[chunk]),
            None => _mm512_setzero_si512(),
        });
        let [x0, x1, x2, x3] = ifft4(x, m01, m23, m02);
        store(&mut s0[chunk], x0);
        store(&mut s1[chunk], x1);
        store(&mut s2[chunk], x2);
        store(&mut s3[chunk], x3);
    }
}

/// Stores `value`, non-temporally when `stream` (the caller checked `chunk` is aligned).
///
/// # Safety
///
/// With `stream`, `chunk` starts on a 64-byte boundary.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn store_to(chunk: &mut [u8; 64], value: __m512i, stream: bool) {
    if stream {
        // SAFETY: the caller promises `chunk` is 64-byte aligned, as the stream store requires.
        unsafe { _mm512_stream_si512(chunk.as_mut_ptr().cast(), value) }
    } else {
        store(chunk, value);
    }
}

/// Copies `rows` into `targets`.
///
/// # Safety
///
/// With `stream`, `targets` starts on a 64-byte boundary.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn store_rows(targets: &mut [[u8; 64]], rows: &[[u8; 64]], stream: bool) {
    for (target, row) in targets.iter_mut().zip(rows) {
        // SAFETY: every chunk of an aligned run of chunks is aligned.
        unsafe { store_to(target, load(row), stream) };
    }
}

/// One FFT layer on two rows: `x ^= y · c; y ^= x`.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn fft_one_layer(x: &mut [[u8; 64]], y: &mut [[u8; 64]], m: Registers) {
    for (cx, cy) in x.iter_mut().zip(y.iter_mut()) {
        let vx = mul_add(load(cx), load(cy), m);
        store(cx, vx);
        store(cy, _mm512_xor_si512(load(cy), vx));
    }
}

/// One IFFT layer on two rows: `y ^= x; x ^= y · c`.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
fn ifft_one_layer(x: &mut [[u8; 64]], y: &mut [[u8; 64]], m: Registers) {
    for (cx, cy) in x.iter_mut().zip(y.iter_mut()) {
        let vx = load(cx);
        let vy = _mm512_xor_si512(load(cy), vx);
        store(cy, vy);
        store(cx, mul_add(vx, vy, m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};
    use reed_solomon_simd::engine::{Engine, NoSimd, ShardsRefMut};

    fn random_chunks(count: usize, seed: u64) -> Vec<[u8; 64]> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut chunks = vec![[0u8; 64]; count];
        for chunk in &mut chunks {
            rng.fill_bytes(chunk);
        }
        chunks
    }

    #[test]
    fn mul_matches_the_library_for_every_multiplier() {
        let Some(gfni) = Gfni::detect() else {
            eprintln!("no AVX-512 with GFNI here; the dispatch tests cover the other engine");
            return;
        };
        let reference = NoSimd::new();
        for log_m in 0..=GF_MODULUS {
            let mut ours = random_chunks(1, u64::from(log_m));
            let mut theirs = ours.clone();
            gfni.mul(&mut ours, log_m);
            reference.mul(&mut theirs, log_m);
            assert_eq!(ours, theirs, "log_m {log_m}");
        }
    }

    #[test]
    fn transforms_match_the_library_at_every_size_truncation_and_skew() {
        let Some(gfni) = Gfni::detect() else {
            eprintln!("no AVX-512 with GFNI here; the dispatch tests cover the other engine");
            return;
        };
        let reference = NoSimd::new();
        let chunks_per_shard = 2;
        let mut seed = 0;
        // Skew 0 and 1 reach the table's `GF_MODULUS` entries (a multiply by zero), which the
        // other offsets miss; the test checks that some transform met one.
        let mut zero_skews_seen = 0;
        for size in [1usize, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096] {
            for truncated_size in [1, size / 2, size.saturating_sub(1), size] {
                if truncated_size == 0 {
                    continue;
                }
                for skew_delta in [0, 1, size, 3 * size, 16_384] {
                    zero_skews_seen += (skew_delta..skew_delta + size)
                        .filter(|&index| gfni.skew[index] == GF_MODULUS)
                        .count();
                    seed += 1;
                    let offset = 2;
                    let shard_count = offset + size;
                    let input = random_chunks(shard_count * chunks_per_shard, seed);
                    for inverse in [false, true] {
                        let (mut ours, mut theirs) = (input.clone(), input.clone());
                        let mut theirs_ref =
                            ShardsRefMut::new(shard_count, chunks_per_shard, &mut theirs);
                        if inverse {
                            gfni.ifft(
                                &mut ours,
                                chunks_per_shard,
                                offset,
                                size,
                                truncated_size,
                                skew_delta,
                            );
                            reference.ifft(
                                &mut theirs_ref,
                                offset,
                                size,
                                truncated_size,
                                skew_delta,
                            );
                        } else {
                            gfni.fft(
                                &mut ours,
                                chunks_per_shard,
                                offset,
                                size,
                                truncated_size,
                                skew_delta,
                            );
                            reference.fft(
                                &mut theirs_ref,
                                offset,
                                size,
                                truncated_size,
                                skew_delta,
                            );
                        }
                        assert!(
                            ours == theirs,
                            "inverse {inverse} size {size} truncated {truncated_size} skew {skew_delta}"
                        );
                    }
                }
            }
        }
        assert!(zero_skews_seen > 0, "no transform multiplied by zero");
    }
}
