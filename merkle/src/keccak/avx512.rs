//! AVX-512 kernel: eight messages at once, message `j` in 64-bit lane `j` of each `__m512i`.
//!
//! The 25 state words fit in 25 of the 32 zmm registers. Theta's column parities and its
//! three-way XORs, and chi, are one `vpternlogq` each; rho is `vprolq`. Messages are loaded
//! row-wise (64 contiguous bytes of one message per register) and transposed in registers, which
//! keeps the loads sequential and the shuffle cost to a few percent of the permutation.
//!
//! On Zen 4, which runs 512-bit operations as two 256-bit halves, four lanes in `__m256i` with
//! AVX-512VL (same `vpternlogq`/`vprolq`) measured within noise of this eight-lane kernel; eight
//! lanes stay the choice because they halve the instruction count, which matters on cores with
//! full-width 512-bit units.
#![allow(unsafe_code)]

use super::{Backend, CHUNK_TAIL_WORDS, PAD_FIRST, PAD_LAST, PAIR_WORDS, RATE_WORDS, portable};
use core::arch::x86_64::{
    __m256i, __m512i, _MM_HINT_T0, _mm_prefetch, _mm256_loadu_si256, _mm256_storeu_si256,
    _mm512_castsi256_si512, _mm512_castsi512_si256, _mm512_extracti64x4_epi64, _mm512_inserti64x4,
    _mm512_loadu_si512, _mm512_permutex2var_epi64, _mm512_rol_epi64, _mm512_set1_epi64,
    _mm512_setr_epi64, _mm512_setzero_si512, _mm512_shuffle_i64x2, _mm512_ternarylogic_epi64,
    _mm512_unpackhi_epi64, _mm512_unpacklo_epi64, _mm512_xor_si512,
};
use types::{CHUNK_BYTES, H256};

/// Messages per register.
const LANES: usize = 8;
/// How many groups ahead of the one being hashed to prefetch (two groups = 4 KiB of chunks).
/// The hardware prefetcher already follows a sequential stream well at this kernel's ~2 GB/s;
/// this measured a few percent better than no software prefetch on a 64 MiB buffer, and
/// prefetching further ahead measured no better.
const PREFETCH_GROUPS: usize = 2;

pub(super) fn is_available() -> bool {
    is_x86_feature_detected!("avx512f")
}

pub(super) fn hash_chunks(chunks: &[[u8; CHUNK_BYTES]], out: &mut [H256]) {
    if !is_available() {
        super::unavailable(Backend::Avx512);
    }
    // SAFETY: the kernel's only precondition is its target feature, AVX-512F, which the CPU
    // was just checked to have; it touches memory only through the references it is given.
    unsafe { hash_chunks_kernel(chunks, out) }
}

pub(super) fn hash_pairs(children: &[H256], out: &mut [H256]) {
    if !is_available() {
        super::unavailable(Backend::Avx512);
    }
    // SAFETY: as in `hash_chunks`: AVX-512F was just checked, memory is reached only through
    // the given references.
    unsafe { hash_pairs_kernel(children, out) }
}

#[target_feature(enable = "avx512f")]
fn hash_chunks_kernel(chunks: &[[u8; CHUNK_BYTES]], out: &mut [H256]) {
    let (groups, rest) = chunks.as_chunks::<LANES>();
    let (out_groups, out_rest) = out.as_chunks_mut::<LANES>();
    for (index, (group, digests)) in groups.iter().zip(out_groups).enumerate() {
        if let Some(ahead) = groups.get(index + PREFETCH_GROUPS) {
            prefetch(ahead.as_flattened());
        }
        hash_chunk_group(group, digests);
    }
    // A short tail still runs through the kernel, padded with zero chunks, as long as that
    // beats hashing it one message at a time (one 8-lane pass costs about two scalar hashes).
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

#[target_feature(enable = "avx512f")]
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

/// Eight chunks: a full first block, then 120 bytes plus padding.
#[target_feature(enable = "avx512f")]
fn hash_chunk_group(group: &[[u8; CHUNK_BYTES]; LANES], digests: &mut [H256; LANES]) {
    // words[w] holds message word w of all eight chunks.
    let mut words = [_mm512_setzero_si512(); CHUNK_BYTES / 8];
    for (block, columns) in words.as_chunks_mut::<LANES>().0.iter_mut().enumerate() {
        let mut rows = [_mm512_setzero_si512(); LANES];
        for (row, chunk) in rows.iter_mut().zip(group) {
            *row = load_512(&chunk.as_chunks::<64>().0[block]);
        }
        *columns = transpose(rows);
    }

    let mut state = [_mm512_setzero_si512(); 25];
    state[..RATE_WORDS].copy_from_slice(&words[..RATE_WORDS]);
    keccak_f1600(&mut state);
    for (slot, word) in state.iter_mut().zip(&words[RATE_WORDS..]) {
        *slot = _mm512_xor_si512(*slot, *word);
    }
    state[CHUNK_TAIL_WORDS] = _mm512_xor_si512(state[CHUNK_TAIL_WORDS], splat(PAD_FIRST));
    state[RATE_WORDS - 1] = _mm512_xor_si512(state[RATE_WORDS - 1], splat(PAD_LAST));
    keccak_f1600(&mut state);
    store_digests(&state, digests);
}

/// Eight inner nodes: one block of two 32-byte children plus padding.
#[target_feature(enable = "avx512f")]
fn hash_pair_group(children: &[H256; 2 * LANES], digests: &mut [H256; LANES]) {
    let mut rows = [_mm512_setzero_si512(); LANES];
    for (row, pair) in rows.iter_mut().zip(children.as_chunks::<2>().0) {
        let left = _mm512_castsi256_si512(load_256(&pair[0].0));
        *row = _mm512_inserti64x4::<1>(left, load_256(&pair[1].0));
    }
    let mut state = [_mm512_setzero_si512(); 25];
    state[..PAIR_WORDS].copy_from_slice(&transpose(rows));
    state[PAIR_WORDS] = splat(PAD_FIRST);
    state[RATE_WORDS - 1] = splat(PAD_LAST);
    keccak_f1600(&mut state);
    store_digests(&state, digests);
}

/// 8x8 transpose of 64-bit words: `rows[j]` = eight words of message `j` in, `out[w]` = word
/// `w` of all eight messages out. Three stages of eight shuffles each.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose(rows: [__m512i; LANES]) -> [__m512i; LANES] {
    let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
    // Pairs of messages: t0 = [r0[0] r1[0] r0[2] r1[2] r0[4] r1[4] r0[6] r1[6]], t1 the odd words.
    let t0 = _mm512_unpacklo_epi64(r0, r1);
    let t1 = _mm512_unpackhi_epi64(r0, r1);
    let t2 = _mm512_unpacklo_epi64(r2, r3);
    let t3 = _mm512_unpackhi_epi64(r2, r3);
    let t4 = _mm512_unpacklo_epi64(r4, r5);
    let t5 = _mm512_unpackhi_epi64(r4, r5);
    let t6 = _mm512_unpacklo_epi64(r6, r7);
    let t7 = _mm512_unpackhi_epi64(r6, r7);
    // Quads: u0 = [r0..r3 word 0, r0..r3 word 4], u2 words 2 and 6, u1 words 1 and 5, ...
    let low = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    let high = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    let u0 = _mm512_permutex2var_epi64(t0, low, t2);
    let u2 = _mm512_permutex2var_epi64(t0, high, t2);
    let u1 = _mm512_permutex2var_epi64(t1, low, t3);
    let u3 = _mm512_permutex2var_epi64(t1, high, t3);
    let u4 = _mm512_permutex2var_epi64(t4, low, t6);
    let u6 = _mm512_permutex2var_epi64(t4, high, t6);
    let u5 = _mm512_permutex2var_epi64(t5, low, t7);
    let u7 = _mm512_permutex2var_epi64(t5, high, t7);
    // Octets: the low 256 bits of two quads give word w, the high 256 bits word w + 4.
    [
        _mm512_shuffle_i64x2::<0x44>(u0, u4),
        _mm512_shuffle_i64x2::<0x44>(u1, u5),
        _mm512_shuffle_i64x2::<0x44>(u2, u6),
        _mm512_shuffle_i64x2::<0x44>(u3, u7),
        _mm512_shuffle_i64x2::<0xEE>(u0, u4),
        _mm512_shuffle_i64x2::<0xEE>(u1, u5),
        _mm512_shuffle_i64x2::<0xEE>(u2, u6),
        _mm512_shuffle_i64x2::<0xEE>(u3, u7),
    ]
}

/// Writes the first four state words of each lane as that lane's digest: a 4x8 transpose.
#[inline]
#[target_feature(enable = "avx512f")]
fn store_digests(state: &[__m512i; 25], digests: &mut [H256; LANES]) {
    // t0 = [s0[0] s1[0] s0[2] s1[2] ...]: the first half of even lanes' digests, t1 of odd ones.
    let t0 = _mm512_unpacklo_epi64(state[0], state[1]);
    let t1 = _mm512_unpackhi_epi64(state[0], state[1]);
    let t2 = _mm512_unpacklo_epi64(state[2], state[3]);
    let t3 = _mm512_unpackhi_epi64(state[2], state[3]);
    let first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    let second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    // Each result holds two whole digests, of lanes (0, 2), (4, 6), (1, 3) and (5, 7).
    let lanes_0_2 = _mm512_permutex2var_epi64(t0, first, t2);
    let lanes_4_6 = _mm512_permutex2var_epi64(t0, second, t2);
    let lanes_1_3 = _mm512_permutex2var_epi64(t1, first, t3);
    let lanes_5_7 = _mm512_permutex2var_epi64(t1, second, t3);
    for (lane, pair) in [
        (0, lanes_0_2),
        (4, lanes_4_6),
        (1, lanes_1_3),
        (5, lanes_5_7),
    ] {
        store_256(&mut digests[lane].0, _mm512_castsi512_si256(pair));
        store_256(
            &mut digests[lane + 2].0,
            _mm512_extracti64x4_epi64::<1>(pair),
        );
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load_512(bytes: &[u8; 64]) -> __m512i {
    // SAFETY: `bytes` is 64 readable bytes, and the unaligned load needs no alignment.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn load_256(bytes: &[u8; 32]) -> __m256i {
    // SAFETY: `bytes` is 32 readable bytes, and the unaligned load needs no alignment.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn store_256(bytes: &mut [u8; 32], value: __m256i) {
    // SAFETY: `bytes` is 32 writable bytes, and the unaligned store needs no alignment.
    unsafe { _mm256_storeu_si256(bytes.as_mut_ptr().cast(), value) }
}

/// Asks for the cache lines of `bytes` ahead of use, so the loads of a later group do not
/// wait on memory.
#[inline]
#[target_feature(enable = "avx512f")]
fn prefetch(bytes: &[u8]) {
    for line in bytes.chunks(64) {
        _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn splat(word: u64) -> __m512i {
    _mm512_set1_epi64(word as i64)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn xor3(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
    // 0x96 is the truth table of a ^ b ^ c.
    _mm512_ternarylogic_epi64::<0x96>(a, b, c)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn xor5(a: __m512i, b: __m512i, c: __m512i, d: __m512i, e: __m512i) -> __m512i {
    xor3(xor3(a, b, c), d, e)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn chi(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
    // 0xD2 is the truth table of a ^ (!b & c) (a = 0xF0, b = 0xCC, c = 0xAA).
    _mm512_ternarylogic_epi64::<0xD2>(a, b, c)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn rol<const L: i32, const R: i32>(x: __m512i) -> __m512i {
    _mm512_rol_epi64::<L>(x)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn iota(x: __m512i, rc: u64) -> __m512i {
    _mm512_xor_si512(x, splat(rc))
}

#[target_feature(enable = "avx512f")]
fn keccak_f1600(a: &mut [__m512i; 25]) {
    keccak_f1600!(a);
}
