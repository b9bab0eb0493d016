//! BLS keys, proofs of possession, signatures and the attestation message, as thin checked
//! wrappers over `blst::min_pk`. Decoding takes exactly the compressed encoding, then checks the
//! subgroup and refuses the identity, so no other code path sees an unchecked point.

use super::AttestError;
use blst::BLST_ERROR;
use blst::min_pk;
use std::fmt;
use types::H256;

/// Domain separation tag for proofs of possession (IETF BLS draft, PoP ciphersuite, min_pk).
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation tag for signatures (IETF BLS draft, PoP ciphersuite, min_pk).
pub const SIGNATURE_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Bytes of a compressed public key (a G1 point).
pub const PUBLIC_KEY_BYTES: usize = 48;
/// Bytes of a compressed signature (a G2 point).
pub const SIGNATURE_BYTES: usize = 96;
/// Least key material `KeyGen` accepts.
pub const MIN_SEED_BYTES: usize = 32;

/// The first bytes of every attestation message: separates DA attestations from anything else
/// a node's key might sign.
pub const ATTESTATION_DOMAIN: &[u8; 18] = b"ZEROG-DA-ATTEST:V1";
/// Length of an encoded [`AttestationMessage`].
pub const ATTESTATION_MESSAGE_BYTES: usize = ATTESTATION_DOMAIN.len() + 8 + 8 + 4 + 32;

/// Words for blst's error codes.
fn describe(error: BLST_ERROR) -> &'static str {
    match error {
        BLST_ERROR::BLST_SUCCESS => "no error",
        BLST_ERROR::BLST_BAD_ENCODING => "bad encoding",
        BLST_ERROR::BLST_POINT_NOT_ON_CURVE => "point not on the curve",
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => "point not in the prime-order subgroup",
        BLST_ERROR::BLST_AGGR_TYPE_MISMATCH => "aggregate type mismatch",
        BLST_ERROR::BLST_VERIFY_FAIL => "verification failed",
        BLST_ERROR::BLST_PK_IS_INFINITY => "point at infinity",
        BLST_ERROR::BLST_BAD_SCALAR => "bad scalar",
    }
}

/// A BLS secret key. Its `Debug` output hides the key.
pub struct SecretKey(min_pk::SecretKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// `KeyGen` of the IETF BLS draft (HKDF-SHA-256) over at least 32 bytes of secret seed.
    pub fn from_seed(seed: &[u8]) -> Result<SecretKey, AttestError> {
        if seed.len() < MIN_SEED_BYTES {
            return Err(AttestError::SeedTooShort { bytes: seed.len() });
        }
        min_pk::SecretKey::key_gen(seed, &[])
            .map(SecretKey)
            .map_err(|_| AttestError::SeedTooShort { bytes: seed.len() })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.sk_to_pk())
    }

    /// `PopProve`: a signature over the compressed public key under [`POP_DST`].
    pub fn prove_possession(&self) -> ProofOfPossession {
        let public_key = self.public_key().to_bytes();
        ProofOfPossession(self.0.sign(&public_key, POP_DST, &[]))
    }

    /// Signs an attestation under [`SIGNATURE_DST`].
    pub fn sign(&self, message: &AttestationMessage) -> Signature {
        Signature(self.0.sign(&message.to_bytes(), SIGNATURE_DST, &[]))
    }
}

/// A BLS public key: a G1 point in the subgroup, never the identity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(min_pk::PublicKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        write!(f, "PublicKey(0x")?;
        for byte in &bytes[..8] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

impl PublicKey {
    /// Decodes a 48-byte compressed key, checking the curve, the subgroup and non-identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, AttestError> {
        if bytes.len() != PUBLIC_KEY_BYTES {
            return Err(AttestError::MalformedPublicKey {
                reason: "not 48 bytes",
            });
        }
        let key = min_pk::PublicKey::uncompress(bytes).map_err(|error| {
            AttestError::MalformedPublicKey {
                reason: describe(error),
            }
        })?;
        key.validate()
            .map_err(|error| AttestError::MalformedPublicKey {
                reason: describe(error),
            })?;
        Ok(PublicKey(key))
    }

    /// The 48-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_BYTES] {
        self.0.compress()
    }

    pub(crate) fn inner(&self) -> &min_pk::PublicKey {
        &self.0
    }
}

/// Decodes a 96-byte compressed G2 signature, checking the subgroup and non-identity.
fn decode_signature(bytes: &[u8]) -> Result<min_pk::Signature, AttestError> {
    if bytes.len() != SIGNATURE_BYTES {
        return Err(AttestError::MalformedSignature {
            reason: "not 96 bytes",
        });
    }
    let signature =
        min_pk::Signature::uncompress(bytes).map_err(|error| AttestError::MalformedSignature {
            reason: describe(error),
        })?;
    signature
        .validate(true)
        .map_err(|error| AttestError::MalformedSignature {
            reason: describe(error),
        })?;
    Ok(signature)
}

/// A BLS signature over an attestation (or an aggregate of several): a G2 subgroup point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub(crate) min_pk::Signature);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        write!(f, "Signature(0x")?;
        for byte in &bytes[..8] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

impl Signature {
    /// Decodes a 96-byte compressed signature, checking the subgroup and non-identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Signature, AttestError> {
        decode_signature(bytes).map(Signature)
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_BYTES] {
        self.0.compress()
    }

    /// Whether this is `key`'s signature over `message`.
    pub fn verify(&self, key: &PublicKey, message: &AttestationMessage) -> bool {
        self.0
            .verify(true, &message.to_bytes(), SIGNATURE_DST, &[], &key.0, true)
            == BLST_ERROR::BLST_SUCCESS
    }
}

/// A proof of possession: the key's signature over itself under [`POP_DST`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ProofOfPossession(min_pk::Signature);

impl ProofOfPossession {
    /// Decodes a 96-byte compressed proof, checking the subgroup and non-identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<ProofOfPossession, AttestError> {
        decode_signature(bytes).map(ProofOfPossession)
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_BYTES] {
        self.0.compress()
    }
}

/// A public key whose proof of possession verified. Only [`verify_pop`] makes one, and quorums
/// take only these, so every key in an aggregate belongs to someone who holds its secret.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedPublicKey(PublicKey);

impl VerifiedPublicKey {
    /// The key itself.
    pub fn public_key(&self) -> &PublicKey {
        &self.0
    }
}

/// `PopVerify`: registers `key` if `proof` is its signature over itself; refuses it otherwise.
pub fn verify_pop(
    key: &PublicKey,
    proof: &ProofOfPossession,
) -> Result<VerifiedPublicKey, AttestError> {
    let result = proof
        .0
        .verify(true, &key.to_bytes(), POP_DST, &[], &key.0, true);
    if result == BLST_ERROR::BLST_SUCCESS {
        Ok(VerifiedPublicKey(*key))
    } else {
        Err(AttestError::BadProofOfPossession)
    }
}

/// What a DA node signs: that it holds its shards of blob `blob_id` for `epoch`, as a member of
/// quorum `quorum_id` on chain `chain_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttestationMessage {
    /// The chain the quorum is registered on.
    pub chain_id: u64,
    /// The epoch the quorum's membership belongs to.
    pub epoch: u64,
    /// The quorum.
    pub quorum_id: u32,
    /// The blob's identifier (its commitment root).
    pub blob_id: H256,
}

impl AttestationMessage {
    /// The canonical encoding, 70 bytes: [`ATTESTATION_DOMAIN`] ‖ chain id (u64 BE) ‖ epoch
    /// (u64 BE) ‖ quorum id (u32 BE) ‖ blob id (32 bytes).
    pub fn to_bytes(&self) -> [u8; ATTESTATION_MESSAGE_BYTES] {
        let mut out = [0u8; ATTESTATION_MESSAGE_BYTES];
        let domain = ATTESTATION_DOMAIN.len();
        out[..domain].copy_from_slice(ATTESTATION_DOMAIN);
        out[domain..domain + 8].copy_from_slice(&self.chain_id.to_be_bytes());
        out[domain + 8..domain + 16].copy_from_slice(&self.epoch.to_be_bytes());
        out[domain + 16..domain + 20].copy_from_slice(&self.quorum_id.to_be_bytes());
        out[domain + 20..].copy_from_slice(self.blob_id.as_bytes());
        out
    }
}
