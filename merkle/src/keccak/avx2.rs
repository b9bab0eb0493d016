//! AVX2 kernel: four messages at once, message `j` in 64-bit lane `j` of each `__m256i`.
//!
//! AVX2 has neither a three-input logic instruction nor a 64-bit rotate, so XORs are chained,
//! chi is `andnot` + `xor`, and rotations are two shifts and an OR, except the byte-sized
//! rotations (8 and 56) which are a single byte shuffle. Messages are loaded 32 bytes per
//! register and transposed 4x4 in registers.
#![allow(unsafe_code)]

use super::{Backend, CHUNK_TAIL_WORDS, PAD_FIRST, PAD_LAST, PAIR_WORDS, RATE_WORDS, portable};
use core::arch::x86_64::{
    __m256i, _MM_HINT_T0, _mm_prefetch, _mm256_andnot_si256, _mm256_loadu_si256, _mm256_or_si256,
    _mm256_permute2x128_si256, _mm256_set1_epi64x, _mm256_setr_epi8, _mm256_setzero_si256,
    _mm256_shuffle_epi8, _mm256_slli_epi64, _mm256_srli_epi64, _mm256_storeu_si256,
    _mm256_unpackhi_epi64, _mm256_unpacklo_epi64, _mm256_xor_si256,
};
use types::{CHUNK_BYTES, H256};

/// Messages per register.
const LANES: usize = 4;
/// How many groups ahead to prefetch: the same 4 KiB distance as the AVX-512 kernel, whose
/// groups are twice as big.
const PREFETCH_GROUPS: usize = 4;

pub(super) fn is_available() -> bool {
    is_x86_feature_detected!("avx2")
}

pub(super) fn hash_chunks(chunks: &[[u8; CHUNK_BYTES]], out: &mut [H256]) {
    if !is_available() {
        super::unavailable(Backend::Avx2);
    }
    // SAFETY: the kernel's only precondition is its target feature, AVX2, which the CPU was
    // just checked to have; it touches memory only through the references it is given.
    unsafe { hash_chunks_kernel(chunks, out) }
}

pub(super) fn hash_pairs(children: &[H256], out: &mut [H256]) {
    if !is_available() {
        super::unavailable(Backend::Avx2);
    }
    // SAFETY: as in `hash_chunks`: AVX2 was just checked, memory is reached only through the
    // given references.
    unsafe { hash_pairs_kernel(children, out) }
}

#[target_feature(enable = "avx2")]
fn hash_chunks_kernel(chunks: &[[u8; CHUNK_BYTES]], out: &mut [H256]) {
    let (groups, rest) = chunks.as_chunks::<LANES>();
    let (out_groups, out_rest) = out.as_chunks_mut::<LANES>();
    for (index, (group, digests)) in groups.iter().zip(out_groups).enumerate() {
        if let Some(ahead) = groups.get(index + PREFETCH_GROUPS) {
            prefetch(ahead.as_flattened());
        }
        hash_chunk_group(group, digests);
    }
    // A tail of two or three chunks still beats the scalar path when padded to four.
    if rest.len() >= 2 {
        let mut group = [[0u8; CHUNK_BYTES]; LANES];
        group[..rest.len()].copy_from_slice(rest);
        let mut digests = [H256::ZERO; LANES];
        hash_chunk_group(&group, &mut digests);
        out_rest.copy_from_slice(&digests[..rest.len()]);
    } else {
        portable::hash_chunks(rest, out_rest);
    }
}

#[target_feature(enable = "avx2")]
fn hash_pairs_kernel(children: &[H256], out: &mut [H256]) {
    let (groups, rest) = children.as_chunks::<{ 2 * LANES }>();
    let (out_groups, out_rest) = out.as_chunks_mut::<LANES>();
    for (group, digests) in groups.iter().zip(out_groups) {
        hash_pair_group(group, digests);
    }
    if rest.len() >= 4 {
        let mut group = [H256::ZERO; 2 * LANES];
        group[..rest.len()].copy_from_slice(rest);
        let mut digests = [H256::ZERO; LANES];
        hash_pair_group(&group, &mut digests);
        out_rest.copy_from_slice(&digests[..out_rest.len()]);
    } else {
        portable::hash_pairs(rest, out_rest);
    }
}

/// Four chunks: a full first block, then 120 bytes plus padding.
#[target_feature(enable = "avx2")]
fn hash_chunk_group(group: &[[u8; CHUNK_BYTES]; LANES], digests: &mut [H256; LANES]) {
    // words[w] holds message word w of all four chunks.
    let mut words = [_mm256_setzero_si256(); CHUNK_BYTES / 8];
    for (block, columns) in words.as_chunks_mut::<LANES>().0.iter_mut().enumerate() {
        let mut rows = [_mm256_setzero_si256(); LANES];
        for (row, chunk) in rows.iter_mut().zip(group) {
            *row = load_256(&chunk.as_chunks::<32>().0[block]);
        }
        *columns = transpose(rows);
    }

    let mut state = [_mm256_setzero_si256(); 25];
    state[..RATE_WORDS].copy_from_slice(&words[..RATE_WORDS]);
    keccak_f1600(&mut state);
    for (slot, word) in state.iter_mut().zip(&words[RATE_WORDS..]) {
        *slot = _mm256_xor_si256(*slot, *word);
    }
    state[CHUNK_TAIL_WORDS] = _mm256_xor_si256(state[CHUNK_TAIL_WORDS], splat(PAD_FIRST));
    state[RATE_WORDS - 1] = _mm256_xor_si256(state[RATE_WORDS - 1], splat(PAD_LAST));
    keccak_f1600(&mut state);
    store_digests(&state, digests);
}

/// Four inner nodes: one block of two 32-byte children plus padding.
#[target_feature(enable = "avx2")]
fn hash_pair_group(children: &[H256; 2 * LANES], digests: &mut [H256; LANES]) {
    let mut lefts = [_mm256_setzero_si256(); LANES];
    let mut rights = [_mm256_setzero_si256(); LANES];
    for ((left, right), pair) in lefts
        .iter_mut()
        .zip(&mut rights)
        .zip(children.as_chunks::<2>().0)
    {
        *left = load_256(&pair[0].0);
        *right = load_256(&pair[1].0);
    }
    let mut state = [_mm256_setzero_si256(); 25];
    state[..LANES].copy_from_slice(&transpose(lefts));
    state[LANES..PAIR_WORDS].copy_from_slice(&transpose(rights));
    state[PAIR_WORDS] = splat(PAD_FIRST);
    state[RATE_WORDS - 1] = splat(PAD_LAST);
    keccak_f1600(&mut state);
    store_digests(&state, digests);
}

/// 4x4 transpose of 64-bit words (its own inverse): `rows[j]` word `w` becomes `out[w]` lane
/// `j`.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose(rows: [__m256i; LANES]) -> [__m256i; LANES] {
    let [r0, r1, r2, r3] = rows;
    // t0 = [r0[0] r1[0] r0[2] r1[2]], t1 = [r0[1] r1[1] r0[3] r1[3]], and likewise for r2, r3.
    let t0 = _mm256_unpacklo_epi64(r0, r1);
    let t1 = _mm256_unpackhi_epi64(r0, r1);
    let t2 = _mm256_unpacklo_epi64(r2, r3);
    let t3 = _mm256_unpackhi_epi64(r2, r3);
    [
        _mm256_permute2x128_si256::<0x20>(t0, t2),
        _mm256_permute2x128_si256::<0x20>(t1, t3),
        _mm256_permute2x128_si256::<0x31>(t0, t2),
        _mm256_permute2x128_si256::<0x31>(t1, t3),
    ]
}

/// Writes the first four state words of each lane as that lane's digest.
#[inline]
#[target_feature(enable = "avx2")]
fn store_digests(state: &[__m256i; 25], digests: &mut [H256; LANES]) {
    let rows = transpose([state[0], state[1], state[2], state[3]]);
    for (digest, row) in digests.iter_mut().zip(rows) {
        store_256(&mut digest.0, row);
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn load_256(bytes: &[u8; 32]) -> __m256i {
    // SAFETY: `bytes` is 32 readable bytes, and the unaligned load needs no alignment.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store_256(bytes: &mut [u8; 32], value: __m256i) {
    // SAFETY: `bytes` is 32 writable bytes, and the unaligned store needs no alignment.
    unsafe { _mm256_storeu_si256(bytes.as_mut_ptr().cast(), value) }
}

/// Asks for the cache lines of `bytes` ahead of use, so the loads of a later group do not
/// wait on memory.
#[inline]
#[target_feature(enable = "avx2")]
fn prefetch(bytes: &[u8]) {
    for line in bytes.chunks(64) {
        _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn splat(word: u64) -> __m256i {
    _mm256_set1_epi64x(word as i64)
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor3(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
    _mm256_xor_si256(_mm256_xor_si256(a, b), c)
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor5(a: __m256i, b: __m256i, c: __m256i, d: __m256i, e: __m256i) -> __m256i {
    // Two independent chains shorten the dependency path from four XORs to three.
    _mm256_xor_si256(
        _mm256_xor_si256(a, b),
        _mm256_xor_si256(_mm256_xor_si256(c, d), e),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn chi(a: __m256i, b: __m256i, c: __m256i) -> __m256i {
    // andnot(b, c) = !b & c.
    _mm256_xor_si256(a, _mm256_andnot_si256(b, c))
}

#[inline]
#[target_feature(enable = "avx2")]
fn rol<const L: i32, const R: i32>(x: __m256i) -> __m256i {
    // Rotations by whole bytes are a byte shuffle inside each 64-bit lane: one instruction
    // instead of three.
    if L == 8 {
        let bytes = _mm256_setr_epi8(
            7, 0, 1, 2, 3, 4, 5, 6, 15, 8, 9, 10, 11, 12, 13, 14, 7, 0, 1, 2, 3, 4, 5, 6, 15, 8, 9,
            10, 11, 12, 13, 14,
        );
        _mm256_shuffle_epi8(x, bytes)
    } else if L == 56 {
        let bytes = _mm256_setr_epi8(
            1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8, 1, 2, 3, 4, 5, 6, 7, 0, 9, 10,
            11, 12, 13, 14, 15, 8,
        );
        _mm256_shuffle_epi8(x, bytes)
    } else {
        _mm256_or_si256(_mm256_slli_epi64::<L>(x), _mm256_srli_epi64::<R>(x))
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn iota(x: __m256i, rc: u64) -> __m256i {
    _mm256_xor_si256(x, splat(rc))
}

#[target_feature(enable = "avx2")]
fn keccak_f1600(a: &mut [__m256i; 25]) {
    keccak_f1600!(a);
}
