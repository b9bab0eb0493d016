//! DA-node storage on a shard: the request and answer types of the DA requests, the routing
//! rule for DA shards, encoding into an owned result, and the layout of a DA record.
//!
//! Key decision: a DA shard is stored as one extent record `shard bytes ‖ proof siblings`, with
//! one CRC32C over both, so a read hands a retriever everything it needs to verify the shard
//! against the blob's commitment (the proof's index is the shard index). The record goes
//! through the same write path as segments: verified on the shard that stores it (BLAKE3 leaf
//! hashing), written with O_DIRECT, `fdatasync`ed and indexed in the batch's one redb commit
//! before it is answered.
//!
//! Retention: every DA entry carries its expiry in unix seconds. `DaPrune { now_unix_s }`
//! removes the entries with `expires_at_unix_s <= now_unix_s` from the index; until then an
//! expired entry is still served (its expiry travels with the answer, so the control plane can
//! hide it if it wants an exact cut-off). Extents are append-only: pruned records become dead
//! space, which `ShardStats` reports; nothing compacts extents yet.

use da::blob::{DaError, DaParams, LENGTH_PREFIX_BYTES};
use da::codec::Encoder;
use da::commit::{BlobId, ShardCommitment, ShardIndex, ShardProof, ShardRejection, tree_depth};

/// Largest DA record (shard bytes and proof siblings): 4 MiB. A shard of a full 32 MiB payload
/// fits when `k ≥ 8` (the default `k = 1024` gives 32 832-byte shards); a record is also never
/// larger than one extent. Larger shards are refused with [`DaRejection::RecordTooLarge`].
pub const MAX_DA_RECORD_BYTES: usize = 4 << 20;
/// Encoders a shard keeps, one per [`DaParams`], reused from blob to blob. An encoder holds
/// the coder's work buffers (about `(k + m) × width` bytes after a large blob), so only a
/// few are kept; the least recently used one goes first.
pub const MAX_DA_ENCODERS: usize = 2;
/// Most entries one `DaPrune` removes (one index commit); [`DaPruned::more`] says whether
/// expired entries remain for another call.
pub const MAX_DA_PRUNE_ENTRIES: usize = 1 << 16;

const SIBLING_BYTES: usize = 32;

const _: () = assert!(MAX_DA_RECORD_BYTES.is_multiple_of(crate::RECORD_ALIGNMENT as usize));

/// The shard that stores coded shard `index` of `blob` among `shards`: the blob's offset (its
/// id's first 8 bytes, little-endian, mod `shards`) plus the index, mod `shards`. The shards of
/// one blob go round-robin over all shards, and since the offset is a hash, a node that holds
/// the same few indices of every blob still spreads them over its shards.
pub fn da_shard_for(blob: &BlobId, index: ShardIndex, shards: usize) -> usize {
    assert!(shards > 0, "a data plane has at least one shard");
    let shards = shards as u64;
    let offset = u64::from_le_bytes(blob.0[..8].try_into().expect("an 8-byte slice"));
    ((offset % shards + u64::from(index.0) % shards) % shards) as usize
}

/// One coded shard to store, with its proof against the blob's commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaPutShard {
    pub commitment: ShardCommitment,
    pub index: ShardIndex,
    pub data: Vec<u8>,
    pub proof: ShardProof,
    /// End of the retention window, unix seconds: `DaPrune` removes the shard from then on.
    pub expires_at_unix_s: u64,
}

/// What one `DaPrune` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DaPruned {
    /// Entries removed from the index.
    pub shards: u64,
    /// Their shard bytes.
    pub payload_bytes: u64,
    /// Their extent bytes (4 KiB-aligned records, proofs included), now dead space.
    pub record_bytes: u64,
    /// Whether expired entries remain past [`MAX_DA_PRUNE_ENTRIES`]: call again.
    pub more: bool,
}

/// Why a DA request was refused. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DaRejection {
    /// The payload cannot be encoded (too large).
    #[error("cannot encode the payload: {0}")]
    Encode(DaError),
    /// The shard does not verify against the commitment (index, width, proof or bytes).
    #[error("shard rejected: {0}")]
    Shard(ShardRejection),
    /// The shard and its proof make a record larger than this data plane stores.
    #[error(
        "shard {index}: a record of {record_bytes} bytes (shard and proof) exceeds this data plane's limit of {max_bytes}"
    )]
    RecordTooLarge {
        index: u32,
        record_bytes: usize,
        max_bytes: usize,
    },
}

/// A blob encoded on a shard, owned: the commitment, every coded shard and its proof.
///
/// Data shards are served from the payload itself (the code is systematic), so the payload
/// moves into the result uncopied; only shard 0 (it carries the length prefix), the shard the
/// payload ends inside and the recovery shards are copies. Proofs are kept as one flat list
/// of sibling hashes.
#[derive(Clone, PartialEq, Eq)]
pub struct DaEncoded {
    commitment: ShardCommitment,
    payload: Vec<u8>,
    /// Data shard 0.
    head: Vec<u8>,
    /// The data shard the payload ends inside, when that is not shard 0 and the payload does
    /// not end on a shard boundary; empty otherwise.
    tail: Vec<u8>,
    /// A zero shard, when the blob has padding shards; empty otherwise.
    zeros: Vec<u8>,
    /// Recovery shards `k..k+m`, back to back.
    recovery: Vec<u8>,
    /// Siblings of every shard's proof, `depth` per shard, in shard order.
    siblings: Vec<[u8; SIBLING_BYTES]>,
}

impl std::fmt::Debug for DaEncoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaEncoded")
            .field("commitment", &self.commitment)
            .field("payload_bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl DaEncoded {
    /// Encodes `payload` with `encoder` and copies out what the encoder keeps.
    pub(crate) fn encode(encoder: &mut Encoder, payload: Vec<u8>) -> Result<DaEncoded, DaError> {
        let encoded = encoder.encode(&payload)?;
        let commitment = *encoded.commitment();
        let params = commitment.params();
        let width = commitment.shard_width_bytes();
        let (data_shards, total_shards) = (params.data_shards(), params.total_shards());
        let layout = DataLayout {
            payload_bytes: payload.len(),
            width,
        };
        let head = encoded.shard(ShardIndex(0)).to_vec();
        let tail = match layout.tail_index() {
            Some(index) if index < data_shards => encoded.shard(shard_index(index)).to_vec(),
            _ => Vec::new(),
        };
        let zeros = if layout.has_padding_shards(data_shards) {
            vec![0u8; width]
        } else {
            Vec::new()
        };
        let mut recovery = Vec::with_capacity(params.recovery_shards() * width);
        for index in data_shards..total_shards {
            recovery.extend_from_slice(encoded.shard(shard_index(index)));
        }
        let depth = tree_depth(total_shards);
        let mut siblings = Vec::with_capacity(total_shards * depth);
        for index in 0..total_shards {
            let proof = encoded.proof(shard_index(index));
            debug_assert_eq!(proof.siblings().len(), depth);
            siblings.extend_from_slice(proof.siblings());
        }
        Ok(DaEncoded {
            commitment,
            payload,
            head,
            tail,
            zeros,
            recovery,
            siblings,
        })
    }

    /// The commitment readers verify shards against.
    pub fn commitment(&self) -> &ShardCommitment {
        &self.commitment
    }

    /// The blob's id (derived from the commitment).
    pub fn blob_id(&self) -> BlobId {
        self.commitment.blob_id()
    }

    /// Bytes in every coded shard.
    pub fn shard_width_bytes(&self) -> usize {
        self.commitment.shard_width_bytes()
    }

    /// `k + m`.
    pub fn shard_count(&self) -> usize {
        self.commitment.params().total_shards()
    }

    /// The payload that was encoded.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Coded shard `index` (data shards `0..k`, recovery shards `k..k+m`).
    ///
    /// Panics if `index ≥ k + m`: indices come from the caller's loop over this blob.
    pub fn shard(&self, index: ShardIndex) -> &[u8] {
        let params = self.commitment.params();
        let width = self.shard_width_bytes();
        let index = index.as_usize();
        assert!(index < params.total_shards(), "shard {index} out of range");
        if index >= params.data_shards() {
            let start = (index - params.data_shards()) * width;
            return &self.recovery[start..start + width];
        }
        let layout = DataLayout {
            payload_bytes: self.payload.len(),
            width,
        };
        let (start, end) = (index * width, (index + 1) * width);
        if index == 0 {
            &self.head
        } else if end <= layout.blob_bytes() {
            &self.payload[start - LENGTH_PREFIX_BYTES..end - LENGTH_PREFIX_BYTES]
        } else if start >= layout.blob_bytes() {
            &self.zeros
        } else {
            &self.tail
        }
    }

    /// The proof of shard `index` against [`DaEncoded::commitment`]. Panics if `index ≥ k + m`.
    pub fn proof(&self, index: ShardIndex) -> ShardProof {
        let position = index.as_usize();
        assert!(
            position < self.shard_count(),
            "shard {position} out of range"
        );
        let depth = tree_depth(self.shard_count());
        ShardProof::new(
            index,
            self.siblings[position * depth..(position + 1) * depth].to_vec(),
        )
    }

    /// All `k + m` shards in index order.
    pub fn shards(&self) -> impl Iterator<Item = (ShardIndex, &[u8])> + '_ {
        (0..self.shard_count()).map(|index| {
            let index = shard_index(index);
            (index, self.shard(index))
        })
    }

    /// What `DaPut` takes for shard `index`, with a copy of its bytes.
    pub fn put(&self, index: ShardIndex, expires_at_unix_s: u64) -> DaPutShard {
        DaPutShard {
            commitment: self.commitment,
            index,
            data: self.shard(index).to_vec(),
            proof: self.proof(index),
            expires_at_unix_s,
        }
    }
}

fn shard_index(index: usize) -> ShardIndex {
    ShardIndex(u32::try_from(index).expect("k + m is at most 65536"))
}

/// Where a payload's bytes fall among the data shards (see `da::blob`): the blob is the length
/// prefix, the payload and zero padding, cut into shards of `width`.
struct DataLayout {
    payload_bytes: usize,
    width: usize,
}

impl DataLayout {
    fn blob_bytes(&self) -> usize {
        LENGTH_PREFIX_BYTES + self.payload_bytes
    }

    /// The data shard past 0 that the payload ends inside, if it ends inside one.
    fn tail_index(&self) -> Option<usize> {
        let index = self.blob_bytes() / self.width;
        (index > 0 && !self.blob_bytes().is_multiple_of(self.width)).then_some(index)
    }

    fn has_padding_shards(&self, data_shards: usize) -> bool {
        self.blob_bytes().div_ceil(self.width) < data_shards
    }
}

/// The encoders of one shard, one per parameter set, least recently used first.
#[derive(Default)]
pub(crate) struct EncoderCache {
    encoders: Vec<(DaParams, Encoder)>,
}

impl EncoderCache {
    /// Encodes `payload` under `params`, reusing (or making) the encoder for them.
    pub(crate) fn encode(
        &mut self,
        params: DaParams,
        payload: Vec<u8>,
    ) -> Result<DaEncoded, DaRejection> {
        let position = match self.encoders.iter().position(|(p, _)| *p == params) {
            Some(position) => position,
            None => {
                if self.encoders.len() >= MAX_DA_ENCODERS {
                    self.encoders.remove(0);
                }
                self.encoders.push((params, Encoder::new(params)));
                self.encoders.len() - 1
            }
        };
        let entry = self.encoders.remove(position);
        self.encoders.push(entry);
        let (_, encoder) = self
            .encoders
            .last_mut()
            .expect("the encoder was just pushed");
        DaEncoded::encode(encoder, payload).map_err(DaRejection::Encode)
    }

    #[cfg(test)]
    fn params(&self) -> Vec<DaParams> {
        self.encoders.iter().map(|(params, _)| *params).collect()
    }
}

/// Bytes of the record of a shard of `data_bytes` with a proof of `siblings` hashes.
pub(crate) fn record_length(data_bytes: usize, siblings: usize) -> usize {
    data_bytes + SIBLING_BYTES * siblings
}

/// CRC32C of a record: the shard bytes, then the proof's siblings.
pub(crate) fn record_crc(data: &[u8], siblings: &[[u8; SIBLING_BYTES]]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(data), siblings.as_flattened())
}

/// Splits a record read back (already CRC-checked) into the shard bytes and its proof.
pub(crate) fn split_record(
    mut record: Vec<u8>,
    data_bytes: usize,
    index: ShardIndex,
) -> (Vec<u8>, ShardProof) {
    assert!(
        record.len() >= data_bytes && (record.len() - data_bytes).is_multiple_of(SIBLING_BYTES),
        "a DA record is the shard and whole sibling hashes"
    );
    let siblings = record[data_bytes..]
        .chunks_exact(SIBLING_BYTES)
        .map(|chunk| chunk.try_into().expect("a 32-byte chunk"))
        .collect();
    record.truncate(data_bytes);
    (record, ShardProof::new(index, siblings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(bytes: usize) -> Vec<u8> {
        (0..bytes).map(|i| (i * 7 % 251) as u8 + 1).collect()
    }

    #[test]
    fn owned_shards_and_proofs_equal_the_encoders() {
        let params = DaParams::new(4, 8).expect("params");
        let mut cache = EncoderCache::default();
        let mut direct = Encoder::new(params);
        // Lengths around shard boundaries: no tail, a tail, padding shards, one shard only.
        for bytes in [0usize, 1, 55, 56, 57, 120, 247, 248, 249, 700, 5000] {
            let data = payload(bytes);
            let owned = cache.encode(params, data.clone()).expect("encode");
            let expected = direct.encode(&data).expect("encode");
            assert_eq!(owned.commitment(), expected.commitment(), "{bytes} bytes");
            assert_eq!(owned.shard_count(), 12);
            for (index, shard) in expected.shards() {
                assert_eq!(owned.shard(index), shard, "{bytes} bytes, shard {index:?}");
                assert_eq!(owned.proof(index), expected.proof(index));
                assert!(
                    owned
                        .commitment()
                        .verify_shard(index, owned.shard(index), &owned.proof(index))
                        .is_ok()
                );
            }
            assert_eq!(owned.payload(), &data[..]);
        }
    }

    #[test]
    fn the_encoder_cache_keeps_the_most_recent_params() {
        let mut cache = EncoderCache::default();
        let small = DaParams::new(4, 8).expect("params");
        let medium = DaParams::new(16, 32).expect("params");
        let large = DaParams::new(32, 64).expect("params");
        for params in [small, medium, small, large] {
            cache.encode(params, payload(100)).expect("encode");
        }
        assert_eq!(cache.params(), vec![small, large]);
        let too_large = cache.encode(small, vec![0; da::blob::MAX_PAYLOAD_BYTES + 1]);
        assert!(matches!(
            too_large,
            Err(DaRejection::Encode(DaError::PayloadTooLarge { .. }))
        ));
    }

    #[test]
    fn routing_spreads_a_blob_round_robin_from_its_offset() {
        let blob = BlobId([3; 32]);
        let offset = (u64::from_le_bytes([3; 8]) % 4) as usize;
        for index in 0..16u32 {
            assert_eq!(
                da_shard_for(&blob, ShardIndex(index), 4),
                (offset + index as usize) % 4
            );
        }
        assert_eq!(da_shard_for(&blob, ShardIndex(u32::MAX), 1), 0);
        // Two blobs with different ids start at different shards (for these ids).
        let (first, second) = (BlobId([0; 32]), BlobId([1; 32]));
        assert_ne!(
            da_shard_for(&first, ShardIndex(0), 3),
            da_shard_for(&second, ShardIndex(0), 3)
        );
    }

    #[test]
    fn records_split_back_into_shard_and_proof() {
        let siblings = vec![[1u8; 32], [2u8; 32]];
        let mut record = vec![9u8; 100];
        record.extend_from_slice(siblings.as_flattened());
        assert_eq!(record.len(), record_length(100, 2));
        assert_eq!(
            record_crc(&record[..100], &siblings),
            crc32c::crc32c(&record)
        );
        let (data, proof) = split_record(record, 100, ShardIndex(5));
        assert_eq!(data, vec![9u8; 100]);
        assert_eq!(proof, ShardProof::new(ShardIndex(5), siblings));
    }
}
