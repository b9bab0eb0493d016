//! The EIP-4844 trusted setup: the mainnet KZG ceremony output, embedded in the binary (no IO),
//! parsed and validated once on first use. It also holds the evaluation domain (the 4096-th roots
//! of unity in bit-reversed order) because every function that reads the setup needs it.

use super::{FIELD_ELEMENTS_PER_BLOB, KzgError};
use blstrs::{G1Affine, G2Affine, G2Prepared, Scalar};
use ff::Field;
use group::prime::PrimeCurveAffine;
use std::sync::OnceLock;

/// The mainnet setup in c-kzg's text format: the G1 and G2 counts, 4096 Lagrange-form G1 points
/// (natural order), 65 monomial G2 points and then 4096 monomial G1 points, one hex point a line.
const MAINNET_SETUP_TEXT: &str = include_str!("../../testdata/kzg/trusted_setup.txt");

/// Number of G2 points in the setup: `[τ^i]₂` for i in 0..65 (EIP-7594 uses the higher powers).
pub const SETUP_G2_POINTS: usize = 65;

const G1_COMPRESSED_BYTES: usize = 48;
const G2_COMPRESSED_BYTES: usize = 96;

/// `PRIMITIVE_ROOT_OF_UNITY` of the spec: a generator of the scalar field's multiplicative group.
const PRIMITIVE_ROOT_OF_UNITY: u64 = 7;

/// The BLS12-381 scalar field modulus r, as four little-endian 64-bit limbs.
const MODULUS_LIMBS: [u64; 4] = [
    0xffff_ffff_0000_0001,
    0x53bd_a402_fffe_5bfe,
    0x3339_d808_09a1_d805,
    0x73ed_a753_299d_7d48,
];

/// A parsed, validated KZG trusted setup for 4096-element blobs.
pub struct TrustedSetup {
    /// `[L_i(τ)]₁` in bit-reversed order, so that blob element i pairs with point i.
    g1_lagrange_brp: Vec<G1Affine>,
    /// `[τ^i]₂` for i in 0..65.
    g2_monomial: Vec<G2Affine>,
    /// `[τ]₂` prepared for the pairing of `verify_kzg_proof`.
    pub(crate) tau_g2_prepared: G2Prepared,
    /// `-[τ]₂` prepared, for the batch check.
    pub(crate) neg_tau_g2_prepared: G2Prepared,
    /// `[1]₂` and `-[1]₂` prepared.
    pub(crate) g2_generator_prepared: G2Prepared,
    pub(crate) neg_g2_generator_prepared: G2Prepared,
    /// The 4096-th roots of unity `ω^i`, bit-reversed like the points.
    roots_of_unity_brp: Vec<Scalar>,
}

impl TrustedSetup {
    /// The mainnet EIP-4844 setup, parsed and checked the first time it is asked for.
    pub fn mainnet() -> &'static TrustedSetup {
        static MAINNET: OnceLock<TrustedSetup> = OnceLock::new();
        MAINNET.get_or_init(|| {
            TrustedSetup::parse(MAINNET_SETUP_TEXT)
                .expect("the embedded mainnet setup is the ceremony output, checked by the vectors")
        })
    }

    /// Parses a setup in c-kzg's text format and validates every point it uses: each G1
    /// Lagrange point and each G2 point must decode, lie in its prime-order subgroup and not be
    /// the identity, and the first G2 point must be the generator. The trailing monomial G1
    /// points (a newer addition to the format, unused by EIP-4844) are counted, not decoded.
    pub fn parse(text: &str) -> Result<TrustedSetup, KzgError> {
        let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
        let mut header = |what: &'static str, expected: usize| -> Result<(), KzgError> {
            let line = lines.next().ok_or(KzgError::TrustedSetup {
                reason: format!("missing the {what} count"),
            })?;
            match line.parse::<usize>() {
                Ok(count) if count == expected => Ok(()),
                _ => Err(KzgError::TrustedSetup {
                    reason: format!("{what} count is {line:?}, expected {expected}"),
                }),
            }
        };
        header("G1 point", FIELD_ELEMENTS_PER_BLOB)?;
        header("G2 point", SETUP_G2_POINTS)?;

        let mut g1_lagrange = Vec::with_capacity(FIELD_ELEMENTS_PER_BLOB);
        for index in 0..FIELD_ELEMENTS_PER_BLOB {
            let line = lines.next().ok_or_else(|| KzgError::TrustedSetup {
                reason: format!("only {index} of {FIELD_ELEMENTS_PER_BLOB} Lagrange G1 points"),
            })?;
            let bytes: [u8; G1_COMPRESSED_BYTES] =
                decode_hex(line).ok_or_else(|| KzgError::TrustedSetup {
                    reason: format!("Lagrange G1 point {index} is not 48 bytes of hex"),
                })?;
            let point = Option::<G1Affine>::from(G1Affine::from_compressed(&bytes))
                .filter(|point| !bool::from(point.is_identity()))
                .ok_or_else(|| KzgError::TrustedSetup {
                    reason: format!("Lagrange G1 point {index} is not a valid subgroup point"),
                })?;
            g1_lagrange.push(point);
        }

        let mut g2_monomial = Vec::with_capacity(SETUP_G2_POINTS);
        for index in 0..SETUP_G2_POINTS {
            let line = lines.next().ok_or_else(|| KzgError::TrustedSetup {
                reason: format!("only {index} of {SETUP_G2_POINTS} G2 points"),
            })?;
            let bytes: [u8; G2_COMPRESSED_BYTES] =
                decode_hex(line).ok_or_else(|| KzgError::TrustedSetup {
                    reason: format!("G2 point {index} is not 96 bytes of hex"),
                })?;
            let point = Option::<G2Affine>::from(G2Affine::from_compressed(&bytes))
                .filter(|point| !bool::from(point.is_identity()))
                .ok_or_else(|| KzgError::TrustedSetup {
                    reason: format!("G2 point {index} is not a valid subgroup point"),
                })?;
            g2_monomial.push(point);
        }
        if g2_monomial[0] != G2Affine::generator() {
            return Err(KzgError::TrustedSetup {
                reason: "the first G2 point is not the generator".into(),
            });
        }

        let trailing = lines.count();
        if trailing != 0 && trailing != FIELD_ELEMENTS_PER_BLOB {
            return Err(KzgError::TrustedSetup {
                reason: format!(
                    "{trailing} lines after the G2 points, expected none or \
                     {FIELD_ELEMENTS_PER_BLOB} monomial G1 points"
                ),
            });
        }

        let g1_lagrange_brp = bit_reversal_permutation(&g1_lagrange);
        let roots_of_unity_brp = bit_reversal_permutation(&roots_of_unity(FIELD_ELEMENTS_PER_BLOB));
        let tau = g2_monomial[1];
        let generator = G2Affine::generator();
        Ok(TrustedSetup {
            tau_g2_prepared: G2Prepared::from(tau),
            neg_tau_g2_prepared: G2Prepared::from(-tau),
            g2_generator_prepared: G2Prepared::from(generator),
            neg_g2_generator_prepared: G2Prepared::from(-generator),
            g1_lagrange_brp,
            g2_monomial,
            roots_of_unity_brp,
        })
    }

    /// The Lagrange-form G1 points in bit-reversed order: the points a blob's elements are
    /// multiplied with (`KZG_SETUP_G1_LAGRANGE` after `bit_reversal_permutation`).
    pub fn g1_lagrange_brp(&self) -> &[G1Affine] {
        &self.g1_lagrange_brp
    }

    /// The monomial G2 points `[τ^i]₂`, i in 0..65.
    pub fn g2_monomial(&self) -> &[G2Affine] {
        &self.g2_monomial
    }

    /// The evaluation domain: the 4096-th roots of unity in bit-reversed order.
    pub fn roots_of_unity_brp(&self) -> &[Scalar] {
        &self.roots_of_unity_brp
    }
}

/// `compute_roots_of_unity(order)`: the powers of `7^((r - 1) / order)`.
fn roots_of_unity(order: usize) -> Vec<Scalar> {
    assert!(order.is_power_of_two(), "the domain size is a power of two");
    let shift = order.trailing_zeros();
    // (r - 1) / order is (r - 1) shifted right: r - 1 ends in 32 zero bits and order ≤ 2^32.
    assert!(shift <= 32, "BLS12-381's scalar field has 2-adicity 32");
    let mut exponent = MODULUS_LIMBS;
    exponent[0] -= 1;
    if shift > 0 {
        for limb in 0..4 {
            let high = if limb + 1 < 4 {
                exponent[limb + 1] << (64 - shift)
            } else {
                0
            };
            exponent[limb] = (exponent[limb] >> shift) | high;
        }
    }
    let root = Scalar::from(PRIMITIVE_ROOT_OF_UNITY).pow_vartime(exponent);
    let mut powers = Vec::with_capacity(order);
    let mut current = Scalar::ONE;
    for _ in 0..order {
        powers.push(current);
        current *= root;
    }
    assert!(current == Scalar::ONE, "ω^order = 1");
    powers
}

/// `bit_reversal_permutation`: element i of the result is element `reverse_bits(i)` of `items`.
fn bit_reversal_permutation<T: Copy>(items: &[T]) -> Vec<T> {
    assert!(items.len().is_power_of_two() && items.len() > 1);
    let bits = items.len().trailing_zeros();
    (0..items.len())
        .map(|index| items[index.reverse_bits() >> (usize::BITS - bits)])
        .collect()
}

/// Decodes exactly `N` bytes of hex (an optional `0x` prefix allowed); `None` otherwise.
pub(crate) fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.strip_prefix("0x").unwrap_or(text).as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let nibble = |digit: u8| -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            b'A'..=b'F' => Some(digit - b'A' + 10),
            _ => None,
        }
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_is_the_4096th_roots_of_unity_and_no_smaller_group() {
        let roots = roots_of_unity(FIELD_ELEMENTS_PER_BLOB);
        let omega = roots[1];
        assert_eq!(
            omega.pow_vartime([FIELD_ELEMENTS_PER_BLOB as u64]),
            Scalar::ONE
        );
        assert_ne!(
            omega.pow_vartime([FIELD_ELEMENTS_PER_BLOB as u64 / 2]),
            Scalar::ONE
        );
    }

    #[test]
    fn bit_reversal_is_an_involution_that_swaps_1_and_half() {
        let items: Vec<u32> = (0..16).collect();
        let permuted = bit_reversal_permutation(&items);
        assert_eq!(permuted[1], 8);
        assert_eq!(permuted[3], 12);
        assert_eq!(bit_reversal_permutation(&permuted), items);
    }

    #[test]
    fn a_truncated_or_corrupted_setup_is_refused() {
        let truncated: String = MAINNET_SETUP_TEXT
            .lines()
            .take(100)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(matches!(
            TrustedSetup::parse(&truncated),
            Err(KzgError::TrustedSetup { .. })
        ));
        let wrong_count = MAINNET_SETUP_TEXT.replacen("4096", "4095", 1);
        assert!(TrustedSetup::parse(&wrong_count).is_err());
    }

    #[test]
    fn hex_decoding_is_exact() {
        assert_eq!(decode_hex::<2>("0xA0ff"), Some([0xa0, 0xff]));
        assert_eq!(decode_hex::<2>("a0f"), None);
        assert_eq!(decode_hex::<1>("zz"), None);
    }
}
