//! Field arithmetic of EIP-4844 over blobs in evaluation form: canonical decoding, the
//! Fiat–Shamir challenges, barycentric evaluation and the quotient polynomial. Every division of
//! a blob-sized loop goes through one batch inversion, which is what keeps proofs fast.

use super::{
    BYTES_PER_BLOB, BYTES_PER_FIELD_ELEMENT, FIELD_ELEMENTS_PER_BLOB, KzgError, ScalarRole,
};
use blstrs::Scalar;
use ff::Field;
use sha2::{Digest, Sha256};

/// Domain separator of `compute_challenge`.
pub(crate) const FIAT_SHAMIR_PROTOCOL_DOMAIN: &[u8; 16] = b"FSBLOBVERIFY_V1_";
/// Domain separator of the random linear combination in `verify_kzg_proof_batch`.
pub(crate) const RANDOM_CHALLENGE_KZG_BATCH_DOMAIN: &[u8; 16] = b"RCKZGBATCH___V1_";

/// `bytes_to_bls_field`: a big-endian 32-byte integer that must be below the modulus.
pub(crate) fn scalar_from_bytes(
    bytes: &[u8; BYTES_PER_FIELD_ELEMENT],
    role: ScalarRole,
) -> Result<Scalar, KzgError> {
    Option::from(Scalar::from_bytes_be(bytes)).ok_or(KzgError::NonCanonicalScalar { role })
}

/// `blob_to_polynomial`: the blob's 4096 elements, each canonical.
pub(crate) fn blob_to_polynomial(blob: &[u8; BYTES_PER_BLOB]) -> Result<Vec<Scalar>, KzgError> {
    blob.chunks_exact(BYTES_PER_FIELD_ELEMENT)
        .enumerate()
        .map(|(index, element)| {
            let element: &[u8; BYTES_PER_FIELD_ELEMENT] =
                element.try_into().expect("chunks_exact yields 32 bytes");
            scalar_from_bytes(element, ScalarRole::BlobElement { index })
        })
        .collect()
}

/// `hash_to_bls_field`: SHA-256 of the transcript, read big-endian and reduced modulo r.
fn hash_to_scalar(hasher: Sha256) -> Scalar {
    let digest = hasher.finalize();
    // digest = high·2^128 + low, and both halves are below r, so each decodes canonically.
    let mut high = [0u8; 32];
    high[16..].copy_from_slice(&digest[..16]);
    let mut low = [0u8; 32];
    low[16..].copy_from_slice(&digest[16..]);
    let high = Option::<Scalar>::from(Scalar::from_bytes_be(&high)).expect("128-bit value < r");
    let low = Option::<Scalar>::from(Scalar::from_bytes_be(&low)).expect("128-bit value < r");
    let two_pow_128 =
        Option::<Scalar>::from(Scalar::from_u64s_le(&[0, 0, 1, 0])).expect("2^128 < r");
    high * two_pow_128 + low
}

/// `compute_challenge`: the evaluation point bound to a blob and its commitment.
pub(crate) fn compute_challenge(blob: &[u8; BYTES_PER_BLOB], commitment: &[u8; 48]) -> Scalar {
    let mut hasher = Sha256::new();
    hasher.update(FIAT_SHAMIR_PROTOCOL_DOMAIN);
    hasher.update((FIELD_ELEMENTS_PER_BLOB as u128).to_be_bytes());
    hasher.update(blob);
    hasher.update(commitment);
    hash_to_scalar(hasher)
}

/// One opening of the batch check, as it enters the transcript.
pub(crate) struct Opening<'a> {
    pub(crate) commitment: &'a [u8; 48],
    pub(crate) z: Scalar,
    pub(crate) y: Scalar,
    pub(crate) proof: &'a [u8; 48],
}

/// The random scalar r of `verify_kzg_proof_batch`, hashed from every opening.
pub(crate) fn compute_batch_challenge(openings: &[Opening<'_>]) -> Scalar {
    let mut hasher = Sha256::new();
    hasher.update(RANDOM_CHALLENGE_KZG_BATCH_DOMAIN);
    hasher.update((FIELD_ELEMENTS_PER_BLOB as u64).to_be_bytes());
    hasher.update((openings.len() as u64).to_be_bytes());
    for opening in openings {
        hasher.update(opening.commitment);
        hasher.update(opening.z.to_bytes_be());
        hasher.update(opening.y.to_bytes_be());
        hasher.update(opening.proof);
    }
    hash_to_scalar(hasher)
}

/// `compute_powers`: 1, x, x², … (n terms).
pub(crate) fn powers(x: Scalar, n: usize) -> Vec<Scalar> {
    let mut out = Vec::with_capacity(n);
    let mut current = Scalar::ONE;
    for _ in 0..n {
        out.push(current);
        current *= x;
    }
    out
}

/// Replaces every element by its inverse with one field inversion (Montgomery's trick).
/// Precondition: no element is zero.
fn batch_invert(values: &mut [Scalar]) {
    let mut prefix = Vec::with_capacity(values.len());
    let mut running = Scalar::ONE;
    for value in values.iter() {
        prefix.push(running);
        running *= value;
    }
    let mut inverse =
        Option::<Scalar>::from(running.invert()).expect("batch_invert is never given a zero");
    for (value, before) in values.iter_mut().zip(prefix).rev() {
        let next = inverse * *value;
        *value = inverse * before;
        inverse = next;
    }
}

/// Where `z` sits in the domain, if it is one of the roots of unity.
fn domain_index(z: Scalar, roots_brp: &[Scalar]) -> Option<usize> {
    // Only a root of unity satisfies z^4096 = 1; twelve squarings rule out almost every z.
    let mut power = z;
    for _ in 0..FIELD_ELEMENTS_PER_BLOB.trailing_zeros() {
        power = power.square();
    }
    if power != Scalar::ONE {
        return None;
    }
    roots_brp.iter().position(|root| *root == z)
}

/// `evaluate_polynomial_in_evaluation_form` when z is outside the domain, given the inverses
/// `1 / (z - ω_i)`: `(z^N - 1) / N · Σ p_i ω_i / (z - ω_i)`.
fn evaluate_outside_domain(
    polynomial: &[Scalar],
    z: Scalar,
    roots_brp: &[Scalar],
    inverse_differences: &[Scalar],
) -> Scalar {
    let mut sum = Scalar::ZERO;
    for ((value, root), inverse) in polynomial.iter().zip(roots_brp).zip(inverse_differences) {
        sum += *value * root * inverse;
    }
    let width = Scalar::from(FIELD_ELEMENTS_PER_BLOB as u64);
    let inverse_width = Option::<Scalar>::from(width.invert()).expect("4096 is not zero mod r");
    sum * (z.pow_vartime([FIELD_ELEMENTS_PER_BLOB as u64]) - Scalar::ONE) * inverse_width
}

/// `evaluate_polynomial_in_evaluation_form(polynomial, z)`.
pub(crate) fn evaluate(polynomial: &[Scalar], z: Scalar, roots_brp: &[Scalar]) -> Scalar {
    if let Some(index) = domain_index(z, roots_brp) {
        return polynomial[index];
    }
    let mut inverse_differences: Vec<Scalar> = roots_brp.iter().map(|root| z - root).collect();
    batch_invert(&mut inverse_differences);
    evaluate_outside_domain(polynomial, z, roots_brp, &inverse_differences)
}

/// The value y = p(z) and the quotient `q(x) = (p(x) - y) / (x - z)` in evaluation form, as
/// `compute_kzg_proof_impl` defines them (including `compute_quotient_eval_within_domain`).
pub(crate) fn quotient(
    polynomial: &[Scalar],
    z: Scalar,
    roots_brp: &[Scalar],
) -> (Scalar, Vec<Scalar>) {
    match domain_index(z, roots_brp) {
        None => {
            // 1 / (z - ω_i) serves the evaluation; its negation 1 / (ω_i - z) the quotient.
            let mut inverse_differences: Vec<Scalar> =
                roots_brp.iter().map(|root| z - root).collect();
            batch_invert(&mut inverse_differences);
            let y = evaluate_outside_domain(polynomial, z, roots_brp, &inverse_differences);
            let quotient = polynomial
                .iter()
                .zip(&inverse_differences)
                .map(|(value, inverse)| (y - value) * inverse)
                .collect();
            (y, quotient)
        }
        Some(m) => {
            let y = polynomial[m];
            // For i ≠ m: 1 / (ω_i - z). Slot m holds a placeholder 1 so the batch has no zero.
            let mut inverse_differences: Vec<Scalar> = roots_brp
                .iter()
                .enumerate()
                .map(|(i, root)| if i == m { Scalar::ONE } else { *root - z })
                .collect();
            batch_invert(&mut inverse_differences);
            let mut quotient = Vec::with_capacity(polynomial.len());
            // q(z) = Σ_{i≠m} (p_i - y) ω_i / (z (z - ω_i)) = -(1/z) Σ_{i≠m} (p_i - y) ω_i / (ω_i - z).
            let mut at_z = Scalar::ZERO;
            for (i, ((value, root), inverse)) in polynomial
                .iter()
                .zip(roots_brp)
                .zip(&inverse_differences)
                .enumerate()
            {
                if i == m {
                    quotient.push(Scalar::ZERO);
                    continue;
                }
                let shifted = *value - y;
                quotient.push(shifted * inverse);
                at_z += shifted * root * inverse;
            }
            let inverse_z = Option::<Scalar>::from(z.invert()).expect("a root of unity is not 0");
            quotient[m] = -(at_z * inverse_z);
            (y, quotient)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kzg::TrustedSetup;

    /// A polynomial of low degree in coefficient form, evaluated directly.
    fn horner(coefficients: &[Scalar], x: Scalar) -> Scalar {
        coefficients
            .iter()
            .rev()
            .fold(Scalar::ZERO, |acc, coefficient| acc * x + coefficient)
    }

    #[test]
    fn barycentric_evaluation_agrees_with_the_coefficient_form() {
        let roots = TrustedSetup::mainnet().roots_of_unity_brp();
        let coefficients: Vec<Scalar> = (1..=5u64).map(|c| Scalar::from(c * 1_000_003)).collect();
        let evaluations: Vec<Scalar> = roots
            .iter()
            .map(|root| horner(&coefficients, *root))
            .collect();
        for z in [Scalar::from(12345u64), Scalar::from(u64::MAX), roots[17]] {
            assert_eq!(evaluate(&evaluations, z, roots), horner(&coefficients, z));
        }
    }

    #[test]
    fn the_quotient_times_x_minus_z_recovers_p_minus_y_inside_and_outside_the_domain() {
        let roots = TrustedSetup::mainnet().roots_of_unity_brp();
        let coefficients: Vec<Scalar> = (1..=7u64).map(|c| Scalar::from(c * 7919)).collect();
        let evaluations: Vec<Scalar> = roots
            .iter()
            .map(|root| horner(&coefficients, *root))
            .collect();
        for z in [Scalar::from(99u64), roots[5]] {
            let (y, quotient) = quotient(&evaluations, z, roots);
            assert_eq!(y, horner(&coefficients, z));
            // q is a polynomial of degree 5; check it at a point outside the domain.
            let x = Scalar::from(424242u64);
            let q_at_x = evaluate(&quotient, x, roots);
            assert_eq!(q_at_x * (x - z), horner(&coefficients, x) - y);
        }
    }

    #[test]
    fn batch_inversion_inverts_each_element() {
        let mut values: Vec<Scalar> = (1..50u64).map(Scalar::from).collect();
        batch_invert(&mut values);
        for (k, inverse) in (1..50u64).zip(&values) {
            assert_eq!(Scalar::from(k) * inverse, Scalar::ONE);
        }
    }
}
