//! kzg: optional KZG commitments (EIP-4844) over a blob's payload, on BLS12-381 through blst.
//!
//! The functions keep the names and the semantics of the consensus specs'
//! `polynomial-commitments.md` (Deneb): the same canonical-field-element and point checks, the
//! same Fiat–Shamir transcripts (`FSBLOBVERIFY_V1_`, `RCKZGBATCH___V1_`), so commitments and
//! proofs are byte-identical to every Ethereum client's and the official vectors pass.
//! Untrusted input that the spec asserts on is an `Err`; a proof that simply does not verify is
//! `Ok(false)`.
//!
//! The one expensive step, the G1 multi-scalar multiplication over the 4096 setup points, is
//! behind [`G1Msm`]: [`CpuMsm`] runs blst's Pippenger here, and the `compute` pool implements
//! the same trait so a GPU can take the job without this module changing. The trusted setup is
//! the mainnet ceremony output, embedded and parsed once ([`TrustedSetup::mainnet`]).
//! [`commit_payload`] maps arbitrary bytes onto sub-blobs: 31 payload bytes behind a zero byte in
//! each 32-byte element, 126 976 payload bytes per sub-blob, the last one zero-padded.

mod payload;
mod poly;
mod setup;

/// The point and scalar types of the [`G1Msm`] seam, re-exported so implementors (the `compute`
/// pool) use exactly these without depending on the curve crate themselves.
pub use blstrs::{G1Affine, G1Projective, Scalar};
pub use payload::{
    MAX_PAYLOAD_BYTES, PAYLOAD_BYTES_PER_ELEMENT, PAYLOAD_BYTES_PER_SUB_BLOB, commit_payload,
    pack_payload, sub_blob_count,
};
pub use setup::{SETUP_G2_POINTS, TrustedSetup};

use blstrs::{Bls12, G2Prepared, Gt};
use ff::Field;
use group::prime::PrimeCurveAffine;
use group::{Curve, Group};
use pairing::{MillerLoopResult, MultiMillerLoop};
use poly::Opening;
use std::fmt;

/// Field elements in one blob (`FIELD_ELEMENTS_PER_BLOB`).
pub const FIELD_ELEMENTS_PER_BLOB: usize = 4096;
/// Bytes of one encoded field element: big-endian, below the modulus.
pub const BYTES_PER_FIELD_ELEMENT: usize = 32;
/// Bytes of one blob: 4096 × 32 = 128 KiB.
pub const BYTES_PER_BLOB: usize = FIELD_ELEMENTS_PER_BLOB * BYTES_PER_FIELD_ELEMENT;
/// Bytes of a compressed G1 point: a commitment or a proof.
pub const BYTES_PER_G1: usize = 48;
/// Most blobs one batch verification takes: a limit on the work one call can ask for.
pub const MAX_BATCH_BLOBS: usize = 4096;

/// The compressed encoding of the G1 identity (`G1_POINT_AT_INFINITY`), a valid commitment.
pub const G1_POINT_AT_INFINITY: [u8; BYTES_PER_G1] = {
    let mut bytes = [0u8; BYTES_PER_G1];
    bytes[0] = 0xc0;
    bytes
};

/// A KZG commitment as bytes: a compressed G1 point, validated when it is used.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KzgCommitment(pub [u8; BYTES_PER_G1]);

/// A KZG opening proof as bytes: a compressed G1 point, validated when it is used.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KzgProof(pub [u8; BYTES_PER_G1]);

impl fmt::Debug for KzgCommitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KzgCommitment(0x{})", to_hex(&self.0))
    }
}

impl fmt::Debug for KzgProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KzgProof(0x{})", to_hex(&self.0))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Which scalar input was not a canonical field element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarRole {
    /// Element `index` of a blob.
    BlobElement {
        /// Position of the element in the blob, 0..4096.
        index: usize,
    },
    /// The evaluation point z.
    Z,
    /// The claimed value y.
    Y,
}

impl fmt::Display for ScalarRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarRole::BlobElement { index } => write!(f, "blob element {index}"),
            ScalarRole::Z => f.write_str("evaluation point z"),
            ScalarRole::Y => f.write_str("claimed value y"),
        }
    }
}

/// Which G1 input was not a valid point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointRole {
    /// A commitment.
    Commitment,
    /// A proof.
    Proof,
}

impl fmt::Display for PointRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PointRole::Commitment => "commitment",
            PointRole::Proof => "proof",
        })
    }
}

/// A multi-scalar multiplication that could not be computed (a worker or device failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("G1 multi-scalar multiplication failed: {reason}")]
pub struct MsmError {
    /// What went wrong, in words.
    pub reason: String,
}

/// Everything the KZG functions refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KzgError {
    /// A 32-byte input is not below the BLS12-381 scalar modulus.
    #[error("{role} is not a canonical field element (it is not below the BLS12-381 modulus)")]
    NonCanonicalScalar {
        /// Which input.
        role: ScalarRole,
    },
    /// A 48-byte input is not the compressed encoding of a G1 subgroup point.
    #[error(
        "{role} {index} is not a valid compressed G1 point (bad encoding, not on the curve or \
         not in the subgroup)"
    )]
    InvalidPoint {
        /// Commitment or proof.
        role: PointRole,
        /// Position in a batch; 0 for a single input.
        index: usize,
    },
    /// The inputs of a batch verification have different lengths.
    #[error(
        "batch inputs differ in length: {blobs} blobs, {commitments} commitments, {proofs} proofs"
    )]
    BatchLengthMismatch {
        /// Blobs given.
        blobs: usize,
        /// Commitments given.
        commitments: usize,
        /// Proofs given.
        proofs: usize,
    },
    /// A batch larger than [`MAX_BATCH_BLOBS`].
    #[error("batch of {blobs} blobs exceeds the limit of {MAX_BATCH_BLOBS}")]
    BatchTooLarge {
        /// Blobs given.
        blobs: usize,
    },
    /// A payload larger than [`MAX_PAYLOAD_BYTES`].
    #[error("payload of {bytes} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes")]
    PayloadTooLarge {
        /// Payload length.
        bytes: usize,
    },
    /// The trusted setup text is malformed or holds an invalid point.
    #[error("trusted setup: {reason}")]
    TrustedSetup {
        /// What is wrong with it.
        reason: String,
    },
    /// The multi-scalar multiplication backend failed.
    #[error(transparent)]
    Msm(#[from] MsmError),
}

/// A G1 multi-scalar multiplication `Σ scalars[i] · points[i]`: the seam between the KZG
/// functions and whatever computes them (the CPU here, the `compute` pool's workers or a GPU).
/// Callers pass slices of equal length; the setup's points are
/// [`TrustedSetup::g1_lagrange_brp`], so an implementation may recognise that slice and keep the
/// points resident on its device.
pub trait G1Msm {
    /// Computes `Σ scalars[i] · points[i]`; the identity for empty input.
    fn g1_msm(&self, points: &[G1Affine], scalars: &[Scalar]) -> Result<G1Projective, MsmError>;
}

/// The CPU MSM: blst's Pippenger over affine points (which blst spreads over its own worker
/// threads when the machine has several cores).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuMsm;

/// Below this many points a plain double-and-add sum beats setting up Pippenger.
const NAIVE_MSM_MAX_POINTS: usize = 8;

impl G1Msm for CpuMsm {
    fn g1_msm(&self, points: &[G1Affine], scalars: &[Scalar]) -> Result<G1Projective, MsmError> {
        if points.len() != scalars.len() {
            return Err(MsmError {
                reason: format!("{} points but {} scalars", points.len(), scalars.len()),
            });
        }
        Ok(cpu_g1_msm(points, scalars))
    }
}

/// `Σ scalars[i] · points[i]` on this thread (and blst's pool). The slices have equal length.
pub fn cpu_g1_msm(points: &[G1Affine], scalars: &[Scalar]) -> G1Projective {
    assert_eq!(points.len(), scalars.len(), "one scalar per point");
    if points.len() <= NAIVE_MSM_MAX_POINTS {
        return points
            .iter()
            .zip(scalars)
            .fold(G1Projective::identity(), |sum, (point, scalar)| {
                sum + G1Projective::from(point) * scalar
            });
    }
    // blst's Pippenger takes affine points without the identity (it has no affine encoding
    // for it) and scalars as 32 little-endian bytes; the identity contributes nothing.
    let mut affine = Vec::with_capacity(points.len());
    let mut scalar_bytes = Vec::with_capacity(points.len() * BYTES_PER_FIELD_ELEMENT);
    for (point, scalar) in points.iter().zip(scalars) {
        if bool::from(point.is_identity()) {
            continue;
        }
        affine.push(*AsRef::<blst::blst_p1_affine>::as_ref(point));
        scalar_bytes.extend_from_slice(&scalar.to_bytes_le());
    }
    if affine.is_empty() {
        return G1Projective::identity();
    }
    let sum = blst::MultiPoint::mult(affine.as_slice(), &scalar_bytes, 255);
    let mut out = G1Projective::identity();
    *out.as_mut() = sum;
    out
}

/// `validate_kzg_g1` + decoding: the identity encoding, or a compressed point in the subgroup.
fn decode_g1(
    bytes: &[u8; BYTES_PER_G1],
    role: PointRole,
    index: usize,
) -> Result<G1Affine, KzgError> {
    if *bytes == G1_POINT_AT_INFINITY {
        return Ok(G1Affine::identity());
    }
    // `from_compressed` checks the encoding, the curve equation and the subgroup; the identity
    // is only acceptable in its one canonical encoding, handled above.
    Option::<G1Affine>::from(G1Affine::from_compressed(bytes))
        .filter(|point| !bool::from(point.is_identity()))
        .ok_or(KzgError::InvalidPoint { role, index })
}

fn compress(point: &G1Projective) -> [u8; BYTES_PER_G1] {
    point.to_affine().to_compressed()
}

/// `pairing_check`: `e(a₁, b₁) · e(a₂, b₂) = 1`.
fn pairing_product_is_one(terms: [(&G1Affine, &G2Prepared); 2]) -> bool {
    let product = Bls12::multi_miller_loop(&terms).final_exponentiation();
    product == Gt::identity()
}

/// `blob_to_kzg_commitment`: the commitment to a blob of 4096 canonical field elements.
pub fn blob_to_kzg_commitment(
    blob: &[u8; BYTES_PER_BLOB],
    msm: &dyn G1Msm,
) -> Result<KzgCommitment, KzgError> {
    let polynomial = poly::blob_to_polynomial(blob)?;
    let setup = TrustedSetup::mainnet();
    let commitment = msm.g1_msm(setup.g1_lagrange_brp(), &polynomial)?;
    Ok(KzgCommitment(compress(&commitment)))
}

/// `compute_kzg_proof_impl`: the proof for p(z) and the value y.
fn compute_proof_impl(
    polynomial: &[Scalar],
    z: Scalar,
    msm: &dyn G1Msm,
) -> Result<(KzgProof, Scalar), KzgError> {
    let setup = TrustedSetup::mainnet();
    let (y, quotient) = poly::quotient(polynomial, z, setup.roots_of_unity_brp());
    let proof = msm.g1_msm(setup.g1_lagrange_brp(), &quotient)?;
    Ok((KzgProof(compress(&proof)), y))
}

/// `compute_kzg_proof`: the proof that the blob's polynomial takes value y at z, and y
/// (big-endian).
pub fn compute_kzg_proof(
    blob: &[u8; BYTES_PER_BLOB],
    z: &[u8; BYTES_PER_FIELD_ELEMENT],
    msm: &dyn G1Msm,
) -> Result<(KzgProof, [u8; BYTES_PER_FIELD_ELEMENT]), KzgError> {
    let polynomial = poly::blob_to_polynomial(blob)?;
    let z = poly::scalar_from_bytes(z, ScalarRole::Z)?;
    let (proof, y) = compute_proof_impl(&polynomial, z, msm)?;
    Ok((proof, y.to_bytes_be()))
}

/// `compute_blob_kzg_proof`: the proof at the Fiat–Shamir point of (blob, commitment). The
/// commitment is validated but not checked against the blob.
pub fn compute_blob_kzg_proof(
    blob: &[u8; BYTES_PER_BLOB],
    commitment: &KzgCommitment,
    msm: &dyn G1Msm,
) -> Result<KzgProof, KzgError> {
    decode_g1(&commitment.0, PointRole::Commitment, 0)?;
    let polynomial = poly::blob_to_polynomial(blob)?;
    let challenge = poly::compute_challenge(blob, &commitment.0);
    let (proof, _) = compute_proof_impl(&polynomial, challenge, msm)?;
    Ok(proof)
}

/// `verify_kzg_proof_impl`: `e(C - [y]₁, -[1]₂) · e(π, [τ]₂ - [z]₂) = 1`, computed as
/// `e(C - [y]₁ + z·π, -[1]₂) · e(π, [τ]₂) = 1` so both G2 inputs are fixed and prepared once.
fn verify_proof_impl(commitment: &G1Affine, z: Scalar, y: Scalar, proof: &G1Affine) -> bool {
    let setup = TrustedSetup::mainnet();
    let proof_projective = G1Projective::from(proof);
    let left = (G1Projective::from(commitment) - G1Projective::generator() * y
        + proof_projective * z)
        .to_affine();
    pairing_product_is_one([
        (&left, &setup.neg_g2_generator_prepared),
        (proof, &setup.tau_g2_prepared),
    ])
}

/// `verify_kzg_proof`: whether `proof` shows that the committed polynomial takes value `y` at
/// `z`. Invalid encodings are errors; a wrong proof is `Ok(false)`.
pub fn verify_kzg_proof(
    commitment: &KzgCommitment,
    z: &[u8; BYTES_PER_FIELD_ELEMENT],
    y: &[u8; BYTES_PER_FIELD_ELEMENT],
    proof: &KzgProof,
) -> Result<bool, KzgError> {
    let commitment = decode_g1(&commitment.0, PointRole::Commitment, 0)?;
    let z = poly::scalar_from_bytes(z, ScalarRole::Z)?;
    let y = poly::scalar_from_bytes(y, ScalarRole::Y)?;
    let proof = decode_g1(&proof.0, PointRole::Proof, 0)?;
    Ok(verify_proof_impl(&commitment, z, y, &proof))
}

/// `verify_blob_kzg_proof`: whether `proof` opens `commitment` to `blob` at the Fiat–Shamir
/// point.
pub fn verify_blob_kzg_proof(
    blob: &[u8; BYTES_PER_BLOB],
    commitment: &KzgCommitment,
    proof: &KzgProof,
) -> Result<bool, KzgError> {
    let commitment_point = decode_g1(&commitment.0, PointRole::Commitment, 0)?;
    let polynomial = poly::blob_to_polynomial(blob)?;
    let challenge = poly::compute_challenge(blob, &commitment.0);
    let y = poly::evaluate(
        &polynomial,
        challenge,
        TrustedSetup::mainnet().roots_of_unity_brp(),
    );
    let proof = decode_g1(&proof.0, PointRole::Proof, 0)?;
    Ok(verify_proof_impl(&commitment_point, challenge, y, &proof))
}

/// `verify_blob_kzg_proof_batch`: all blobs against their commitments and proofs with one
/// pairing check over a random linear combination. True for an empty batch.
pub fn verify_blob_kzg_proof_batch(
    blobs: &[&[u8; BYTES_PER_BLOB]],
    commitments: &[KzgCommitment],
    proofs: &[KzgProof],
    msm: &dyn G1Msm,
) -> Result<bool, KzgError> {
    if blobs.len() != commitments.len() || blobs.len() != proofs.len() {
        return Err(KzgError::BatchLengthMismatch {
            blobs: blobs.len(),
            commitments: commitments.len(),
            proofs: proofs.len(),
        });
    }
    if blobs.len() > MAX_BATCH_BLOBS {
        return Err(KzgError::BatchTooLarge { blobs: blobs.len() });
    }
    if blobs.is_empty() {
        return Ok(true);
    }
    let roots = TrustedSetup::mainnet().roots_of_unity_brp();
    let mut openings = Vec::with_capacity(blobs.len());
    let mut commitment_points = Vec::with_capacity(blobs.len());
    let mut proof_points = Vec::with_capacity(blobs.len());
    for (index, ((blob, commitment), proof)) in
        blobs.iter().zip(commitments).zip(proofs).enumerate()
    {
        commitment_points.push(decode_g1(&commitment.0, PointRole::Commitment, index)?);
        let polynomial = poly::blob_to_polynomial(blob)?;
        let z = poly::compute_challenge(blob, &commitment.0);
        let y = poly::evaluate(&polynomial, z, roots);
        proof_points.push(decode_g1(&proof.0, PointRole::Proof, index)?);
        openings.push(Opening {
            commitment: &commitment.0,
            z,
            y,
            proof: &proof.0,
        });
    }
    if openings.len() == 1 {
        let opening = &openings[0];
        return Ok(verify_proof_impl(
            &commitment_points[0],
            opening.z,
            opening.y,
            &proof_points[0],
        ));
    }
    verify_kzg_proof_batch(&openings, &commitment_points, &proof_points, msm)
}

/// `verify_kzg_proof_batch`: with r from the transcript,
/// `e(Σ rⁱπᵢ, -[τ]₂) · e(Σ rⁱ(Cᵢ - [yᵢ]₁) + Σ rⁱzᵢπᵢ, [1]₂) = 1`.
fn verify_kzg_proof_batch(
    openings: &[Opening<'_>],
    commitments: &[G1Affine],
    proofs: &[G1Affine],
    msm: &dyn G1Msm,
) -> Result<bool, KzgError> {
    let r = poly::compute_batch_challenge(openings);
    let r_powers = poly::powers(r, openings.len());
    let proof_lincomb = msm.g1_msm(proofs, &r_powers)?;
    // Σ rⁱ Cᵢ + Σ (rⁱ zᵢ) πᵢ - [Σ rⁱ yᵢ]₁ as one MSM over commitments, proofs and the generator.
    let mut points = Vec::with_capacity(2 * openings.len() + 1);
    let mut scalars = Vec::with_capacity(2 * openings.len() + 1);
    let mut y_sum = Scalar::ZERO;
    for (((opening, commitment), proof), r_power) in
        openings.iter().zip(commitments).zip(proofs).zip(&r_powers)
    {
        points.push(*commitment);
        scalars.push(*r_power);
        points.push(*proof);
        scalars.push(opening.z * r_power);
        y_sum += opening.y * r_power;
    }
    points.push(G1Affine::generator());
    scalars.push(-y_sum);
    let right = msm.g1_msm(&points, &scalars)?;
    let setup = TrustedSetup::mainnet();
    Ok(pairing_product_is_one([
        (&proof_lincomb.to_affine(), &setup.neg_tau_g2_prepared),
        (&right.to_affine(), &setup.g2_generator_prepared),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_msm_equals_the_naive_sum_including_identity_points() {
        let setup = TrustedSetup::mainnet();
        let mut points = setup.g1_lagrange_brp()[..40].to_vec();
        points[3] = G1Affine::identity();
        let scalars: Vec<Scalar> = (0..40u64)
            .map(|i| Scalar::from(i * i + 11).square())
            .collect();
        let naive = points
            .iter()
            .zip(&scalars)
            .fold(G1Projective::identity(), |sum, (point, scalar)| {
                sum + G1Projective::from(point) * scalar
            });
        assert_eq!(CpuMsm.g1_msm(&points, &scalars), Ok(naive));
        assert_eq!(CpuMsm.g1_msm(&[], &[]), Ok(G1Projective::identity()));
        assert!(CpuMsm.g1_msm(&points, &scalars[1..]).is_err());
    }
}
