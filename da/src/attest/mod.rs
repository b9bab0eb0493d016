//! attest: what DA nodes sign and how their signatures become a certificate.
//!
//! BLS12-381 in the "minimal public key" variant (48-byte G1 keys, 96-byte G2 signatures) with
//! the proof-of-possession ciphersuite of the IETF BLS draft, through blst's safe API. A key
//! enters a quorum only as a [`VerifiedPublicKey`], which [`verify_pop`] alone produces: that is
//! what makes the cheap aggregate check (one pairing against the sum of the signers' keys) safe
//! against rogue-key attacks. A node signs an [`AttestationMessage`] for a blob; an
//! [`Aggregator`] checks each signature as it arrives and folds it into a [`Certificate`]: the
//! signer bitmap over the quorum's ordered signer list, the signed and total slot counts
//! (stated explicitly, checked against the bitmap) and one aggregate signature. A certificate
//! is valid when at least two thirds of the slots signed. Every decoder checks subgroups and
//! refuses the identity.

mod certificate;
mod keys;

pub use certificate::{
    Aggregator, CERTIFICATE_VERSION, Certificate, MAX_QUORUM_SIGNERS, Quorum, QuorumMember,
    SignerBitmap, meets_threshold,
};
pub use keys::{
    ATTESTATION_DOMAIN, ATTESTATION_MESSAGE_BYTES, AttestationMessage, MIN_SEED_BYTES, POP_DST,
    PUBLIC_KEY_BYTES, ProofOfPossession, PublicKey, SIGNATURE_BYTES, SIGNATURE_DST, SecretKey,
    Signature, VerifiedPublicKey, verify_pop,
};

/// Everything attestation and certificate handling refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    /// Key material shorter than [`MIN_SEED_BYTES`].
    #[error("key seed of {bytes} bytes is too short: at least {MIN_SEED_BYTES} are required")]
    SeedTooShort {
        /// Length given.
        bytes: usize,
    },
    /// Bytes that are not a valid public key.
    #[error("malformed public key: {reason}")]
    MalformedPublicKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bytes that are not a valid signature (or proof of possession).
    #[error("malformed signature: {reason}")]
    MalformedSignature {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A proof of possession that does not verify: the key is refused (rogue-key defence).
    #[error("proof of possession does not verify for this public key; the key is refused")]
    BadProofOfPossession,
    /// A quorum without signers.
    #[error("a quorum needs at least one signer")]
    EmptyQuorum,
    /// A quorum larger than [`MAX_QUORUM_SIGNERS`], or a certificate claiming one.
    #[error("{signers} signers exceed the limit of {limit}")]
    TooManySigners {
        /// Signers given.
        signers: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A quorum member holding no slot.
    #[error("quorum member {index} holds no slot")]
    ZeroSlots {
        /// The member's position.
        index: usize,
    },
    /// The same key twice in one quorum.
    #[error("quorum members {first} and {second} have the same public key")]
    DuplicateQuorumKey {
        /// First position.
        first: usize,
        /// Second position.
        second: usize,
    },
    /// A signer index outside the quorum's list.
    #[error("signer {index} is not in the quorum (it has {signers} signers)")]
    UnknownSigner {
        /// Index given.
        index: usize,
        /// Quorum size.
        signers: usize,
    },
    /// A second signature from a signer already counted.
    #[error("signer {index} has already signed")]
    DuplicateSigner {
        /// The signer.
        index: usize,
    },
    /// A signer's signature that does not verify for the message.
    #[error("signature of signer {index} does not verify for this attestation")]
    BadSignature {
        /// The signer.
        index: usize,
    },
    /// A certificate for another quorum.
    #[error("certificate is for quorum {certificate}, not quorum {quorum}")]
    WrongQuorum {
        /// The certificate's quorum.
        certificate: u32,
        /// The quorum checked against.
        quorum: u32,
    },
    /// A certificate from an epoch that has passed.
    #[error("certificate is for epoch {certificate}, but the quorum is at epoch {current}: stale")]
    StaleEpoch {
        /// The certificate's epoch.
        certificate: u64,
        /// The quorum's epoch.
        current: u64,
    },
    /// A certificate from an epoch that has not started.
    #[error("certificate is for epoch {certificate}, ahead of the quorum's epoch {current}")]
    FutureEpoch {
        /// The certificate's epoch.
        certificate: u64,
        /// The quorum's epoch.
        current: u64,
    },
    /// A bitmap whose length is not the quorum's signer count.
    #[error("signer bitmap covers {bitmap} signers, the quorum has {signers}")]
    BitmapLength {
        /// Bits in the bitmap.
        bitmap: usize,
        /// Quorum size.
        signers: usize,
    },
    /// A stated total that is not the quorum's slot count.
    #[error("certificate states {certificate} total slots, the quorum has {quorum}")]
    TotalSlotsMismatch {
        /// The certificate's total.
        certificate: u64,
        /// The quorum's total.
        quorum: u64,
    },
    /// A stated signed fraction that is not the bitmap's slot sum.
    #[error("certificate states {stated} signed slots, its bitmap's signers hold {bitmap}")]
    SignedSlotsMismatch {
        /// The certificate's signed slots.
        stated: u64,
        /// Slots of the signers set in the bitmap.
        bitmap: u64,
    },
    /// No signer at all.
    #[error("certificate has no signers")]
    NoSigners,
    /// Fewer than two thirds of the slots signed.
    #[error("{signed} of {total} slots signed, below the threshold of two thirds")]
    BelowThreshold {
        /// Slots signed.
        signed: u64,
        /// Slots in the quorum.
        total: u64,
    },
    /// An aggregate signature that does not verify for the bitmap's keys.
    #[error("aggregate signature does not verify for the signers in the bitmap")]
    BadAggregateSignature,
    /// Certificate bytes that do not decode.
    #[error("malformed certificate: {reason}")]
    MalformedCertificate {
        /// What is wrong with it.
        reason: String,
    },
}
