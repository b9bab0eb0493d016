//! Keccak-256 for the Merkle trees. Batch entry points hash many fixed-size messages at once.
//!
//! Every Merkle node is the hash of a fixed-size message: a leaf hashes one 256-byte chunk (two
//! Keccak blocks), an inner node hashes two 32-byte children (one block). Hashing one message at
//! a time leaves most of a SIMD unit idle, so the batch functions hash several messages side by
//! side, one message per SIMD lane ("multi-buffer"): state word `w` of lane `j` is the `w`-th
//! little-endian `u64` of message `j`. The kernels live in fenced submodules, the only places in
//! this crate allowed to use `unsafe`:
//!
//! - `avx512`: 8 messages per `__m512i`, with `vpternlogq` for theta and chi and `vprolq` for
//!   the rotations;
//! - `avx2`: 4 messages per `__m256i`;
//! - `portable`: one message at a time on `u64`s, for CPUs without either and for the last few
//!   messages of a batch that do not fill a SIMD register.
//!
//! The backend is picked once at run time ([`backend`]); tests and benchmarks can force one with
//! [`hash_chunks_with`] and [`hash_pairs_with`].

use sha3::{Digest, Keccak256};
use std::sync::OnceLock;
use types::{CHUNK_BYTES, H256};

/// Bytes absorbed per Keccak-f[1600] call for Keccak-256 (1600 bits minus twice 256).
const RATE_BYTES: usize = 136;
/// Rate in 64-bit words: the first 17 state words take message bytes.
const RATE_WORDS: usize = RATE_BYTES / 8;
/// Message words of a chunk that land in its second block (256 - 136 = 120 bytes).
const CHUNK_TAIL_WORDS: usize = (CHUNK_BYTES - RATE_BYTES) / 8;
/// Message words of an inner node (two 32-byte children).
const PAIR_WORDS: usize = 8;
/// Keccak's pad10*1 with the original Keccak domain byte: 0x01 right after the message...
const PAD_FIRST: u64 = 0x01;
/// ...and 0x80 in the last byte of the rate, i.e. the top byte of word 16.
const PAD_LAST: u64 = 0x80 << 56;

const _: () = assert!(RATE_WORDS == 17);
const _: () = assert!(CHUNK_TAIL_WORDS == 15);
const _: () = assert!(CHUNK_BYTES.is_multiple_of(8) && CHUNK_BYTES > RATE_BYTES);

/// Iota's round constants (facts of the Keccak specification).
const ROUND_CONSTANTS: [u64; 24] = [
    0x0000_0000_0000_0001,
    0x0000_0000_0000_8082,
    0x8000_0000_0000_808a,
    0x8000_0000_8000_8000,
    0x0000_0000_0000_808b,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8009,
    0x0000_0000_0000_008a,
    0x0000_0000_0000_0088,
    0x0000_0000_8000_8009,
    0x0000_0000_8000_000a,
    0x0000_0000_8000_808b,
    0x8000_0000_0000_008b,
    0x8000_0000_0000_8089,
    0x8000_0000_0000_8003,
    0x8000_0000_0000_8002,
    0x8000_0000_0000_0080,
    0x0000_0000_0000_800a,
    0x8000_0000_8000_000a,
    0x8000_0000_8000_8081,
    0x8000_0000_0000_8080,
    0x0000_0000_8000_0001,
    0x8000_0000_8000_8008,
];

/// Expands to Keccak-f[1600] over `$a: [V; 25]` (index `x + 5 y`), for any lane type `V`.
///
/// One definition serves every backend so that the scalar path, which the tests trust, and the
/// SIMD paths cannot drift apart. The expansion calls functions that each backend module
/// defines for its own lane type: `xor3(a, b, c)`, `xor5(..)`, `chi(a, b, c) = a ^ (!b & c)`,
/// `rol::<L, R>(x)` (rotate left by `L`, with `R = 64 - L` for backends that build rotations
/// from two shifts, because stable Rust cannot compute `64 - L` in a const generic) and
/// `iota(x, rc)`.
///
/// Theta's `D[x] = C[x-1] ^ rol(C[x+1], 1)` is folded into one three-way XOR per lane, which
/// is a single `vpternlogq` on AVX-512. Rho and pi are fused: output row `y` of pi reads lane
/// `(x + 3 y, x)` of the input, so each row of chi can be computed as soon as its five inputs
/// are rotated, and the new state is written in natural order (no register shuffling between
/// rounds).
macro_rules! keccak_f1600 {
    ($a:ident) => {
        for rc in $crate::keccak::ROUND_CONSTANTS {
            let c0 = xor5($a[0], $a[5], $a[10], $a[15], $a[20]);
            let c1 = xor5($a[1], $a[6], $a[11], $a[16], $a[21]);
            let c2 = xor5($a[2], $a[7], $a[12], $a[17], $a[22]);
            let c3 = xor5($a[3], $a[8], $a[13], $a[18], $a[23]);
            let c4 = xor5($a[4], $a[9], $a[14], $a[19], $a[24]);
            let r0 = rol::<1, 63>(c0);
            let r1 = rol::<1, 63>(c1);
            let r2 = rol::<1, 63>(c2);
            let r3 = rol::<1, 63>(c3);
            let r4 = rol::<1, 63>(c4);

            let b00 = xor3($a[0], c4, r1);
            let b10 = rol::<44, 20>(xor3($a[6], c0, r2));
            let b20 = rol::<43, 21>(xor3($a[12], c1, r3));
            let b30 = rol::<21, 43>(xor3($a[18], c2, r4));
            let b40 = rol::<14, 50>(xor3($a[24], c3, r0));
            let e0 = iota(chi(b00, b10, b20), rc);
            let e1 = chi(b10, b20, b30);
            let e2 = chi(b20, b30, b40);
            let e3 = chi(b30, b40, b00);
            let e4 = chi(b40, b00, b10);

            let b01 = rol::<28, 36>(xor3($a[3], c2, r4));
            let b11 = rol::<20, 44>(xor3($a[9], c3, r0));
            let b21 = rol::<3, 61>(xor3($a[10], c4, r1));
            let b31 = rol::<45, 19>(xor3($a[16], c0, r2));
            let b41 = rol::<61, 3>(xor3($a[22], c1, r3));
            let e5 = chi(b01, b11, b21);
            let e6 = chi(b11, b21, b31);
            let e7 = chi(b21, b31, b41);
            let e8 = chi(b31, b41, b01);
            let e9 = chi(b41, b01, b11);

            let b02 = rol::<1, 63>(xor3($a[1], c0, r2));
            let b12 = rol::<6, 58>(xor3($a[7], c1, r3));
            let b22 = rol::<25, 39>(xor3($a[13], c2, r4));
            let b32 = rol::<8, 56>(xor3($a[19], c3, r0));
            let b42 = rol::<18, 46>(xor3($a[20], c4, r1));
            let e10 = chi(b02, b12, b22);
            let e11 = chi(b12, b22, b32);
            let e12 = chi(b22, b32, b42);
            let e13 = chi(b32, b42, b02);
            let e14 = chi(b42, b02, b12);

            let b03 = rol::<27, 37>(xor3($a[4], c3, r0));
            let b13 = rol::<36, 28>(xor3($a[5], c4, r1));
            let b23 = rol::<10, 54>(xor3($a[11], c0, r2));
            let b33 = rol::<15, 49>(xor3($a[17], c1, r3));
            let b43 = rol::<56, 8>(xor3($a[23], c2, r4));
            let e15 = chi(b03, b13, b23);
            let e16 = chi(b13, b23, b33);
            let e17 = chi(b23, b33, b43);
            let e18 = chi(b33, b43, b03);
            let e19 = chi(b43, b03, b13);

            let b04 = rol::<62, 2>(xor3($a[2], c1, r3));
            let b14 = rol::<55, 9>(xor3($a[8], c2, r4));
            let b24 = rol::<39, 25>(xor3($a[14], c3, r0));
            let b34 = rol::<41, 23>(xor3($a[15], c4, r1));
            let b44 = rol::<2, 62>(xor3($a[21], c0, r2));
            let e20 = chi(b04, b14, b24);
            let e21 = chi(b14, b24, b34);
            let e22 = chi(b24, b34, b44);
            let e23 = chi(b34, b44, b04);
            let e24 = chi(b44, b04, b14);

            *$a = [
                e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14, e15, e16, e17,
                e18, e19, e20, e21, e22, e23, e24,
            ];
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

/// A Keccak implementation for the batch functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// 8 messages at once in 512-bit registers (x86-64 with AVX-512F).
    Avx512,
    /// 4 messages at once in 256-bit registers (x86-64 with AVX2).
    Avx2,
    /// One message at a time; runs everywhere.
    Portable,
}

impl Backend {
    /// Every backend, fastest first.
    pub const ALL: [Backend; 3] = [Backend::Avx512, Backend::Avx2, Backend::Portable];

    /// A short lowercase name, for logs and benchmark labels.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Avx512 => "avx512",
            Backend::Avx2 => "avx2",
            Backend::Portable => "portable",
        }
    }

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => avx512::is_available(),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => avx2::is_available(),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx512 | Backend::Avx2 => false,
            Backend::Portable => true,
        }
    }
}

/// The fastest backend this CPU supports, detected on first use and cached.
pub fn backend() -> Backend {
    static DETECTED: OnceLock<Backend> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        Backend::ALL
            .into_iter()
            .find(|candidate| candidate.is_available())
            .unwrap_or(Backend::Portable)
    })
}

/// Every backend this CPU supports, fastest first (always ends with `Portable`).
pub fn available_backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|candidate| candidate.is_available())
        .collect()
}

/// Keccak-256 of arbitrary bytes.
pub fn keccak256(data: &[u8]) -> H256 {
    H256(Keccak256::digest(data).into())
}

/// Hashes consecutive 256-byte chunks: `out[i] = keccak(data[256 i .. 256 (i + 1)])`.
///
/// Panics if `data.len() != out.len() * 256` (a caller bug, never client input).
pub fn hash_chunks(data: &[u8], out: &mut [H256]) {
    hash_chunks_with(backend(), data, out);
}

/// [`hash_chunks`] on a chosen backend.
///
/// Panics if the backend is not available on this CPU, or on a length mismatch.
pub fn hash_chunks_with(backend: Backend, data: &[u8], out: &mut [H256]) {
    assert_eq!(
        data.len(),
        out.len() * CHUNK_BYTES,
        "hash_chunks: length mismatch"
    );
    let (chunks, rest) = data.as_chunks::<CHUNK_BYTES>();
    debug_assert!(rest.is_empty());
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => avx512::hash_chunks(chunks, out),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => avx2::hash_chunks(chunks, out),
        #[cfg(not(target_arch = "x86_64"))]
        Backend::Avx512 | Backend::Avx2 => unavailable(backend),
        Backend::Portable => portable::hash_chunks(chunks, out),
    }
}

/// Hashes consecutive pairs: `out[i] = keccak(children[2 i] ‖ children[2 i + 1])`.
///
/// Panics if `children.len() != out.len() * 2` (a caller bug, never client input).
pub fn hash_pairs(children: &[H256], out: &mut [H256]) {
    hash_pairs_with(backend(), children, out);
}

/// [`hash_pairs`] on a chosen backend.
///
/// Panics if the backend is not available on this CPU, or on a length mismatch.
pub fn hash_pairs_with(backend: Backend, children: &[H256], out: &mut [H256]) {
    assert_eq!(children.len(), out.len() * 2, "hash_pairs: length mismatch");
    match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => avx512::hash_pairs(children, out),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => avx2::hash_pairs(children, out),
        #[cfg(not(target_arch = "x86_64"))]
        Backend::Avx512 | Backend::Avx2 => unavailable(backend),
        Backend::Portable => portable::hash_pairs(children, out),
    }
}

/// keccak(left ‖ right).
pub fn hash_pair(left: &H256, right: &H256) -> H256 {
    portable::hash_pair(left, right)
}

/// The panic for forcing a backend this CPU lacks: a caller bug (tests and benchmarks should
/// iterate [`available_backends`]).
#[cold]
#[track_caller]
fn unavailable(backend: Backend) -> ! {
    panic!(
        "keccak backend {} is not available on this CPU (available: {:?})",
        backend.name(),
        available_backends()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng, rngs::StdRng};

    fn reference(data: &[u8]) -> H256 {
        H256(Keccak256::digest(data).into())
    }

    fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        bytes
    }

    fn random_hashes(rng: &mut StdRng, count: usize) -> Vec<H256> {
        (0..count).map(|_| H256(rng.r#gen())).collect()
    }

    /// Batch sizes that exercise empty input, every remainder modulo 4 and 8, and batches large
    /// enough to run many full SIMD groups.
    fn batch_sizes() -> impl Iterator<Item = usize> {
        (0..=37).chain([64, 100, 257, 1024, 1031])
    }

    #[test]
    fn fixed_vectors() {
        assert_eq!(
            keccak256(b""),
            H256::from_hex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
                .expect("valid hex")
        );
        let z0 = H256::from_hex("d397b3b043d87fcd6fad1291ff0bfd16401c274896d8c63a923727f077b8e0b5")
            .expect("valid hex");
        assert_eq!(keccak256(&[0u8; CHUNK_BYTES]), z0);
        for backend in available_backends() {
            let mut out = [H256::ZERO; 9];
            hash_chunks_with(backend, &[0u8; 9 * CHUNK_BYTES], &mut out);
            assert!(out.iter().all(|leaf| *leaf == z0), "{backend:?}");
            // Z1 = keccak(Z0 ‖ Z0), the root of two zero chunks.
            let z1 = reference(&[z0.0, z0.0].concat());
            let mut parents = [H256::ZERO; 9];
            hash_pairs_with(backend, &[z0; 18], &mut parents);
            assert!(parents.iter().all(|parent| *parent == z1), "{backend:?}");
        }
    }

    #[test]
    fn detection_is_consistent() {
        let backends = available_backends();
        assert_eq!(backends.first(), Some(&backend()));
        assert_eq!(backends.last(), Some(&Backend::Portable));
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(
                backends.contains(&Backend::Avx512),
                is_x86_feature_detected!("avx512f")
            );
            assert_eq!(
                backends.contains(&Backend::Avx2),
                is_x86_feature_detected!("avx2")
            );
        }
    }

    #[test]
    fn unavailable_backend_panics() {
        for backend in Backend::ALL {
            if backend.is_available() {
                continue;
            }
            let result = std::panic::catch_unwind(|| {
                let mut out = [H256::ZERO; 8];
                hash_chunks_with(backend, &[0u8; 8 * CHUNK_BYTES], &mut out);
            });
            assert!(result.is_err(), "{backend:?} should refuse to run");
        }
    }

    #[test]
    #[should_panic(expected = "keccak backend avx512 is not available on this CPU")]
    fn unavailable_message_names_the_backend() {
        unavailable(Backend::Avx512);
    }

    #[test]
    fn chunks_match_sha3_on_every_backend() {
        let mut rng = StdRng::seed_from_u64(0x5eed_c4a9);
        for count in batch_sizes() {
            let data = random_bytes(&mut rng, count * CHUNK_BYTES);
            let expected: Vec<H256> = data.chunks_exact(CHUNK_BYTES).map(reference).collect();
            let mut portable_out = vec![H256::ZERO; count];
            hash_chunks_with(Backend::Portable, &data, &mut portable_out);
            assert_eq!(portable_out, expected, "portable, {count} chunks");
            for backend in available_backends() {
                let mut out = vec![H256::ZERO; count];
                hash_chunks_with(backend, &data, &mut out);
                assert_eq!(out, expected, "{backend:?}, {count} chunks");
            }
            let mut out = vec![H256::ZERO; count];
            hash_chunks(&data, &mut out);
            assert_eq!(out, expected, "default backend, {count} chunks");
        }
    }

    #[test]
    fn pairs_match_sha3_on_every_backend() {
        let mut rng = StdRng::seed_from_u64(0x9a1f_0b2c);
        for count in batch_sizes() {
            let children = random_hashes(&mut rng, 2 * count);
            let expected: Vec<H256> = children
                .chunks_exact(2)
                .map(|pair| reference(&[pair[0].0, pair[1].0].concat()))
                .collect();
            let mut portable_out = vec![H256::ZERO; count];
            hash_pairs_with(Backend::Portable, &children, &mut portable_out);
            assert_eq!(portable_out, expected, "portable, {count} pairs");
            for backend in available_backends() {
                let mut out = vec![H256::ZERO; count];
                hash_pairs_with(backend, &children, &mut out);
                assert_eq!(out, expected, "{backend:?}, {count} pairs");
            }
            let mut out = vec![H256::ZERO; count];
            hash_pairs(&children, &mut out);
            assert_eq!(out, expected, "default backend, {count} pairs");
            for (pair, parent) in children.chunks_exact(2).zip(&expected) {
                assert_eq!(hash_pair(&pair[0], &pair[1]), *parent);
            }
        }
    }

    /// Inputs that differ in a single bit must land in the right output lane: catches lane
    /// mix-ups in the transposes that random batches might average away.
    #[test]
    fn single_bit_flips_stay_in_their_lane() {
        for backend in available_backends() {
            for lane in 0..8 {
                for bit in [0, 7, 8 * 135, 8 * 136, 8 * 255 + 7] {
                    let mut data = vec![0u8; 8 * CHUNK_BYTES];
                    data[lane * CHUNK_BYTES + bit / 8] ^= 1 << (bit % 8);
                    let mut out = [H256::ZERO; 8];
                    hash_chunks_with(backend, &data, &mut out);
                    for (index, leaf) in out.iter().enumerate() {
                        let chunk = &data[index * CHUNK_BYTES..(index + 1) * CHUNK_BYTES];
                        assert_eq!(*leaf, reference(chunk), "{backend:?} lane {lane} bit {bit}");
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "length mismatch")]
    fn chunk_length_mismatch_panics() {
        let mut out = [H256::ZERO; 2];
        hash_chunks(&[0u8; 300], &mut out);
    }

    #[test]
    #[should_panic(expected = "length mismatch")]
    fn pair_length_mismatch_panics() {
        let mut out = [H256::ZERO; 2];
        hash_pairs(&[H256::ZERO; 3], &mut out);
    }
}
