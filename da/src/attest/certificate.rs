//! Quorums, the aggregate certificate and the aggregator that builds one.
//!
//! A quorum is an ordered list of signers, each with a PoP-verified key and a number of slots,
//! for one epoch. A certificate names the signers by a bitmap over that list and states the
//! signed fraction explicitly (`signed_slots` of `total_slots`) so a reader (a contract, a light
//! client) can see the weight without the quorum at hand; verification recomputes both from the
//! quorum and refuses any difference before it spends a pairing.

use super::keys::{AttestationMessage, PublicKey, SIGNATURE_BYTES, Signature, VerifiedPublicKey};
use super::{AttestError, keys::SIGNATURE_DST};
use blst::BLST_ERROR;
use blst::min_pk;
use std::collections::HashMap;
use types::H256;

/// Most signers one quorum may list: bounds bitmaps, aggregation and decoding.
pub const MAX_QUORUM_SIGNERS: usize = 4096;
/// Version byte of the certificate encoding.
pub const CERTIFICATE_VERSION: u8 = 1;

/// Whether `signed` of `total` slots reach the threshold: `3 · signed ≥ 2 · total`.
pub fn meets_threshold(signed: u64, total: u64) -> bool {
    3 * u128::from(signed) >= 2 * u128::from(total)
}

/// One signer of a quorum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumMember {
    /// The signer's key, registered with a proof of possession.
    pub key: VerifiedPublicKey,
    /// Slots the signer holds (at least one).
    pub slots: u32,
}

/// A quorum's membership for one epoch: the list certificates' bitmaps index.
#[derive(Clone, Debug)]
pub struct Quorum {
    chain_id: u64,
    quorum_id: u32,
    epoch: u64,
    members: Vec<QuorumMember>,
    total_slots: u64,
    index_by_key: HashMap<[u8; 48], usize>,
}

impl Quorum {
    /// Checks and builds a quorum: 1 to [`MAX_QUORUM_SIGNERS`] members, each with at least one
    /// slot, no key twice.
    pub fn new(
        chain_id: u64,
        quorum_id: u32,
        epoch: u64,
        members: Vec<QuorumMember>,
    ) -> Result<Quorum, AttestError> {
        if members.is_empty() {
            return Err(AttestError::EmptyQuorum);
        }
        if members.len() > MAX_QUORUM_SIGNERS {
            return Err(AttestError::TooManySigners {
                signers: members.len(),
                limit: MAX_QUORUM_SIGNERS,
            });
        }
        let mut index_by_key = HashMap::with_capacity(members.len());
        let mut total_slots = 0u64;
        for (index, member) in members.iter().enumerate() {
            if member.slots == 0 {
                return Err(AttestError::ZeroSlots { index });
            }
            total_slots += u64::from(member.slots);
            if let Some(first) = index_by_key.insert(member.key.public_key().to_bytes(), index) {
                return Err(AttestError::DuplicateQuorumKey {
                    first,
                    second: index,
                });
            }
        }
        Ok(Quorum {
            chain_id,
            quorum_id,
            epoch,
            members,
            total_slots,
            index_by_key,
        })
    }

    /// The chain the quorum is registered on.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The quorum's identifier.
    pub fn quorum_id(&self) -> u32 {
        self.quorum_id
    }

    /// The epoch this membership is for.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The ordered signers.
    pub fn members(&self) -> &[QuorumMember] {
        &self.members
    }

    /// Sum of all members' slots.
    pub fn total_slots(&self) -> u64 {
        self.total_slots
    }

    /// Position of `key` in the signer list.
    pub fn signer_index(&self, key: &PublicKey) -> Option<usize> {
        self.index_by_key.get(&key.to_bytes()).copied()
    }

    /// The message this quorum's members sign for `blob_id` in the current epoch.
    pub fn message(&self, blob_id: H256) -> AttestationMessage {
        AttestationMessage {
            chain_id: self.chain_id,
            epoch: self.epoch,
            quorum_id: self.quorum_id,
            blob_id,
        }
    }
}

/// A bitmap over a quorum's signer list: bit i set means signer i signed. Bits are packed
/// least-significant first (signer 0 is bit 0 of byte 0); unused high bits of the last byte are
/// zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerBitmap {
    bytes: Vec<u8>,
    len: usize,
}

impl SignerBitmap {
    /// An empty bitmap over `len` signers.
    pub fn new(len: usize) -> SignerBitmap {
        SignerBitmap {
            bytes: vec![0; len.div_ceil(8)],
            len,
        }
    }

    /// Number of signers the bitmap covers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it covers no signers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether signer `index` is set; false past the end.
    pub fn get(&self, index: usize) -> bool {
        index < self.len && self.bytes[index / 8] & (1 << (index % 8)) != 0
    }

    /// Sets signer `index`. Panics past the end: callers check the index against the quorum.
    pub fn set(&mut self, index: usize) {
        assert!(index < self.len, "signer {index} is outside the bitmap");
        self.bytes[index / 8] |= 1 << (index % 8);
    }

    /// The set signers, in order.
    pub fn signers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|index| self.get(*index))
    }

    /// Number of set signers.
    pub fn count(&self) -> usize {
        self.bytes
            .iter()
            .map(|byte| byte.count_ones() as usize)
            .sum()
    }

    /// The packed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Rebuilds a bitmap of `len` signers from packed bytes; refuses a wrong length or a set
    /// padding bit (so each bitmap has exactly one encoding).
    pub fn from_bytes(len: usize, bytes: &[u8]) -> Result<SignerBitmap, AttestError> {
        if bytes.len() != len.div_ceil(8) {
            return Err(AttestError::MalformedCertificate {
                reason: format!(
                    "bitmap of {len} signers takes {} bytes, got {}",
                    len.div_ceil(8),
                    bytes.len()
                ),
            });
        }
        if !len.is_multiple_of(8) && bytes[bytes.len() - 1] >> (len % 8) != 0 {
            return Err(AttestError::MalformedCertificate {
                reason: "bitmap has bits set past its last signer".into(),
            });
        }
        Ok(SignerBitmap {
            bytes: bytes.to_vec(),
            len,
        })
    }
}

/// Proof that at least two thirds of a quorum's slots attest to a blob in an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The blob attested to.
    pub blob_id: H256,
    /// The quorum's epoch the signatures were made in.
    pub epoch: u64,
    /// The quorum that signed.
    pub quorum_id: u32,
    /// Which of the quorum's signers signed.
    pub signers: SignerBitmap,
    /// Slots held by the signers in the bitmap.
    pub signed_slots: u64,
    /// Slots in the whole quorum.
    pub total_slots: u64,
    /// The sum of the signers' signatures over the attestation message.
    pub aggregate_signature: Signature,
}

/// Fixed part of the encoding: version, blob id, epoch, quorum id, signer count, the two slot
/// counts and the signature.
const CERTIFICATE_FIXED_BYTES: usize = 1 + 32 + 8 + 4 + 4 + 8 + 8 + SIGNATURE_BYTES;

impl Certificate {
    /// The canonical encoding: version (1) ‖ blob id (32) ‖ epoch (u64 BE) ‖ quorum id
    /// (u32 BE) ‖ signer count n (u32 BE) ‖ bitmap (⌈n/8⌉ bytes) ‖ signed slots (u64 BE) ‖
    /// total slots (u64 BE) ‖ aggregate signature (96, compressed G2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CERTIFICATE_FIXED_BYTES + self.signers.as_bytes().len());
        out.push(CERTIFICATE_VERSION);
        out.extend_from_slice(self.blob_id.as_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.quorum_id.to_be_bytes());
        let signer_count =
            u32::try_from(self.signers.len()).expect("a bitmap never exceeds MAX_QUORUM_SIGNERS");
        out.extend_from_slice(&signer_count.to_be_bytes());
        out.extend_from_slice(self.signers.as_bytes());
        out.extend_from_slice(&self.signed_slots.to_be_bytes());
        out.extend_from_slice(&self.total_slots.to_be_bytes());
        out.extend_from_slice(&self.aggregate_signature.to_bytes());
        out
    }

    /// Decodes [`Certificate::to_bytes`]'s format, refusing more than `max_signers` signers,
    /// trailing bytes, an unknown version and a signature outside the subgroup. The result is
    /// well-formed, not yet verified: see [`Certificate::verify`].
    pub fn from_bytes(bytes: &[u8], max_signers: usize) -> Result<Certificate, AttestError> {
        let malformed = |reason: String| AttestError::MalformedCertificate { reason };
        if bytes.len() < CERTIFICATE_FIXED_BYTES {
            return Err(malformed(format!(
                "{} bytes is shorter than the {CERTIFICATE_FIXED_BYTES}-byte minimum",
                bytes.len()
            )));
        }
        let mut reader = Reader { bytes };
        let version = reader.take::<1>()[0];
        if version != CERTIFICATE_VERSION {
            return Err(malformed(format!("unknown version {version}")));
        }
        let blob_id = H256(reader.take::<32>());
        let epoch = u64::from_be_bytes(reader.take::<8>());
        let quorum_id = u32::from_be_bytes(reader.take::<4>());
        let signer_count = u32::from_be_bytes(reader.take::<4>()) as usize;
        if signer_count > max_signers {
            return Err(AttestError::TooManySigners {
                signers: signer_count,
                limit: max_signers,
            });
        }
        let bitmap_bytes = signer_count.div_ceil(8);
        let expected = CERTIFICATE_FIXED_BYTES + bitmap_bytes;
        if bytes.len() != expected {
            return Err(malformed(format!(
                "{} bytes, expected {expected} for {signer_count} signers",
                bytes.len()
            )));
        }
        let signers = SignerBitmap::from_bytes(signer_count, reader.take_slice(bitmap_bytes))?;
        let signed_slots = u64::from_be_bytes(reader.take::<8>());
        let total_slots = u64::from_be_bytes(reader.take::<8>());
        let aggregate_signature = Signature::from_bytes(&reader.take::<SIGNATURE_BYTES>())?;
        Ok(Certificate {
            blob_id,
            epoch,
            quorum_id,
            signers,
            signed_slots,
            total_slots,
            aggregate_signature,
        })
    }

    /// Verifies the certificate against the quorum it claims: same quorum and epoch, a bitmap
    /// over exactly the quorum's signers, stated slot counts equal to the quorum's total and
    /// the bitmap's sum, at least two thirds of the slots, and the aggregate signature over the
    /// attestation message for the set signers' keys (fast aggregate verify, sound because every
    /// key came with a proof of possession).
    pub fn verify(&self, quorum: &Quorum) -> Result<(), AttestError> {
        if self.quorum_id != quorum.quorum_id {
            return Err(AttestError::WrongQuorum {
                certificate: self.quorum_id,
                quorum: quorum.quorum_id,
            });
        }
        if self.epoch < quorum.epoch {
            return Err(AttestError::StaleEpoch {
                certificate: self.epoch,
                current: quorum.epoch,
            });
        }
        if self.epoch > quorum.epoch {
            return Err(AttestError::FutureEpoch {
                certificate: self.epoch,
                current: quorum.epoch,
            });
        }
        if self.signers.len() != quorum.members.len() {
            return Err(AttestError::BitmapLength {
                bitmap: self.signers.len(),
                signers: quorum.members.len(),
            });
        }
        if self.total_slots != quorum.total_slots {
            return Err(AttestError::TotalSlotsMismatch {
                certificate: self.total_slots,
                quorum: quorum.total_slots,
            });
        }
        let bitmap_slots: u64 = self
            .signers
            .signers()
            .map(|index| u64::from(quorum.members[index].slots))
            .sum();
        if self.signed_slots != bitmap_slots {
            return Err(AttestError::SignedSlotsMismatch {
                stated: self.signed_slots,
                bitmap: bitmap_slots,
            });
        }
        if self.signers.count() == 0 {
            return Err(AttestError::NoSigners);
        }
        if !meets_threshold(self.signed_slots, self.total_slots) {
            return Err(AttestError::BelowThreshold {
                signed: self.signed_slots,
                total: self.total_slots,
            });
        }
        let keys: Vec<&min_pk::PublicKey> = self
            .signers
            .signers()
            .map(|index| quorum.members[index].key.public_key().inner())
            .collect();
        let message = quorum.message(self.blob_id).to_bytes();
        let result =
            self.aggregate_signature
                .0
                .fast_aggregate_verify(true, &message, SIGNATURE_DST, &keys);
        if result != BLST_ERROR::BLST_SUCCESS {
            return Err(AttestError::BadAggregateSignature);
        }
        Ok(())
    }
}

/// Reads fixed-size fields front to back; the caller has checked the total length.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take_slice(&mut self, len: usize) -> &'a [u8] {
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        head
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        self.take_slice(N)
            .try_into()
            .expect("take_slice returns exactly N bytes")
    }
}

/// Collects signatures for one blob from one quorum into a certificate. Each signature is
/// checked when it arrives, so one bad signer cannot spoil the aggregate.
pub struct Aggregator<'q> {
    quorum: &'q Quorum,
    message: AttestationMessage,
    signers: SignerBitmap,
    signed_slots: u64,
    aggregate: Option<min_pk::AggregateSignature>,
}

impl<'q> Aggregator<'q> {
    /// Starts collecting for `blob_id` in the quorum's current epoch.
    pub fn new(quorum: &'q Quorum, blob_id: H256) -> Aggregator<'q> {
        Aggregator {
            quorum,
            message: quorum.message(blob_id),
            signers: SignerBitmap::new(quorum.members.len()),
            signed_slots: 0,
            aggregate: None,
        }
    }

    /// The message every signer must have signed.
    pub fn message(&self) -> &AttestationMessage {
        &self.message
    }

    /// Adds signer `index`'s signature: refused if the index is not in the quorum, the signer
    /// already signed, or the signature does not verify under the signer's key.
    pub fn add(&mut self, index: usize, signature: &Signature) -> Result<(), AttestError> {
        let member = self
            .quorum
            .members
            .get(index)
            .ok_or(AttestError::UnknownSigner {
                index,
                signers: self.quorum.members.len(),
            })?;
        if self.signers.get(index) {
            return Err(AttestError::DuplicateSigner { index });
        }
        if !signature.verify(member.key.public_key(), &self.message) {
            return Err(AttestError::BadSignature { index });
        }
        match &mut self.aggregate {
            None => self.aggregate = Some(min_pk::AggregateSignature::from_signature(&signature.0)),
            Some(aggregate) => aggregate
                .add_signature(&signature.0, false)
                .expect("without a group check, adding a signature cannot fail"),
        }
        self.signers.set(index);
        self.signed_slots += u64::from(member.slots);
        Ok(())
    }

    /// Slots signed so far.
    pub fn signed_slots(&self) -> u64 {
        self.signed_slots
    }

    /// Whether the signatures so far reach two thirds of the slots.
    pub fn meets_threshold(&self) -> bool {
        self.aggregate.is_some() && meets_threshold(self.signed_slots, self.quorum.total_slots)
    }

    /// The certificate, if the threshold is reached.
    pub fn finish(self) -> Result<Certificate, AttestError> {
        let Some(aggregate) = self.aggregate else {
            return Err(AttestError::NoSigners);
        };
        if !meets_threshold(self.signed_slots, self.quorum.total_slots) {
            return Err(AttestError::BelowThreshold {
                signed: self.signed_slots,
                total: self.quorum.total_slots,
            });
        }
        Ok(Certificate {
            blob_id: self.message.blob_id,
            epoch: self.message.epoch,
            quorum_id: self.message.quorum_id,
            signers: self.signers,
            signed_slots: self.signed_slots,
            total_slots: self.quorum.total_slots,
            aggregate_signature: Signature(aggregate.to_signature()),
        })
    }
}
