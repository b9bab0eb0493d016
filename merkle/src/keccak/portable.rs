//! One message at a time on plain `u64`s: the fallback for CPUs without SIMD kernels, the
//! reference the SIMD kernels are tested against, and the tail of batches too short for a
//! SIMD register.

use super::{CHUNK_TAIL_WORDS, PAD_FIRST, PAD_LAST, PAIR_WORDS, RATE_WORDS};
use types::{CHUNK_BYTES, H256};

#[inline(always)]
fn xor3(a: u64, b: u64, c: u64) -> u64 {
    a ^ b ^ c
}

#[inline(always)]
fn xor5(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    a ^ b ^ c ^ d ^ e
}

#[inline(always)]
fn chi(a: u64, b: u64, c: u64) -> u64 {
    a ^ (!b & c)
}

#[inline(always)]
fn rol<const L: i32, const R: i32>(x: u64) -> u64 {
    x.rotate_left(L as u32)
}

#[inline(always)]
fn iota(x: u64, rc: u64) -> u64 {
    x ^ rc
}

/// Keccak-f[1600] on one state.
pub(super) fn keccak_f1600(a: &mut [u64; 25]) {
    keccak_f1600!(a);
}

/// XORs little-endian message words into the first state words.
#[inline(always)]
fn absorb(state: &mut [u64; 25], words: &[[u8; 8]]) {
    for (slot, word) in state.iter_mut().zip(words) {
        *slot ^= u64::from_le_bytes(*word);
    }
}

/// The digest: the first 32 bytes of the state, little-endian.
#[inline(always)]
fn squeeze(state: &[u64; 25]) -> H256 {
    let mut digest = [0u8; 32];
    for (bytes, word) in digest.as_chunks_mut::<8>().0.iter_mut().zip(state) {
        *bytes = word.to_le_bytes();
    }
    H256(digest)
}

/// keccak of one 256-byte chunk: a full first block, then 120 bytes plus padding.
pub(super) fn hash_chunk(chunk: &[u8; CHUNK_BYTES]) -> H256 {
    let words = chunk.as_chunks::<8>().0;
    let mut state = [0u64; 25];
    absorb(&mut state, &words[..RATE_WORDS]);
    keccak_f1600(&mut state);
    absorb(&mut state, &words[RATE_WORDS..]);
    state[CHUNK_TAIL_WORDS] ^= PAD_FIRST;
    state[RATE_WORDS - 1] ^= PAD_LAST;
    keccak_f1600(&mut state);
    squeeze(&state)
}

/// keccak(left ‖ right): one block of 64 message bytes plus padding.
pub(super) fn hash_pair(left: &H256, right: &H256) -> H256 {
    let mut state = [0u64; 25];
    let words = left
        .0
        .as_chunks::<8>()
        .0
        .iter()
        .chain(right.0.as_chunks::<8>().0);
    for (slot, word) in state.iter_mut().zip(words) {
        *slot = u64::from_le_bytes(*word);
    }
    state[PAIR_WORDS] ^= PAD_FIRST;
    state[RATE_WORDS - 1] ^= PAD_LAST;
    keccak_f1600(&mut state);
    squeeze(&state)
}

pub(super) fn hash_chunks(chunks: &[[u8; CHUNK_BYTES]], out: &mut [H256]) {
    for (chunk, slot) in chunks.iter().zip(out) {
        *slot = hash_chunk(chunk);
    }
}

pub(super) fn hash_pairs(children: &[H256], out: &mut [H256]) {
    for (pair, slot) in children.as_chunks::<2>().0.iter().zip(out) {
        *slot = hash_pair(&pair[0], &pair[1]);
    }
}
