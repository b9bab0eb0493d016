//! codec: Reed-Solomon encoding of a blob into committed shards, and the validity predicate that
//! decodes it again.
//!
//! The code is reed-solomon-simd's low-rate code (`rate::LowRateEncoder`) for every `(k, m)`:
//! it is the one the library's default encoder picks for 1024 + 2048, and fixing it makes the
//! shards a function of `(k, m)` and the payload alone, whatever rate the library would choose.
//! The transforms run on the library's engine interface but in column blocks that stay in cache
//! (module `blocked`), on an AVX-512 GFNI engine where the CPU has one (module `gfni`, chosen
//! by [`EngineKind`]); the bytes are the library's either way.
//!
//! [`Encoder`] lays a payload out ([`crate::blob`]), codes the `k` data shards into `m` recovery
//! shards (systematic: data shards are the blob itself), hashes all `k + m` shards and builds
//! the commitment tree ([`crate::commit`]). It keeps its coder, tree and scratch between blobs,
//! and never builds the blob in memory: every data shard that lies inside the payload is a
//! slice of it, read column block by column block by the coder. The [`EncodedBlob`] it returns
//! borrows the payload and the coder's output, so handing shards out copies nothing either.
//!
//! [`Decoder`] is the validity predicate (ARCHITECTURE.md, `da`). Shards are offered one at a time
//! ([`Retrieval::add`]) and each is verified against the commitment before it is kept; a shard
//! that fails is reported with its reason and never used. With `k` distinct verified shards,
//! [`Retrieval::finish`] computes every shard it does not hold — missing data and recovery
//! shards alike, in one erasure-decoding pass (module `restore`; with all `k` data shards held, by
//! encoding them) — and recomputes the root over all `k + m` shards. That is "decode any `k`,
//! re-encode, compare the root" without a second coding pass. The answer is
//!
//! - [`Decoded::Empty`]`(`[`EmptyReason::NotCodeword`]`)` when the recomputed root differs: the
//!   committed shards are not a Reed-Solomon codeword;
//! - otherwise [`Decoded::Empty`]`(`[`EmptyReason::NonCanonical`]`)` when the (now unique) blob
//!   is not the canonical layout of a payload;
//! - otherwise [`Decoded::Available`] with the payload.
//!
//! The codeword check comes first, so every reader gets the same answer, reason included,
//! whichever `k` verified shards it holds: if the committed set is a codeword all readers decode
//! the same blob; if not, no subset of it re-encodes to the committed root (that would be a
//! BLAKE3 collision). Held shards are not hashed again: their leaves were verified on arrival.

use crate::blob::{DaError, DaParams, DataShardScratch, NonCanonical, check_canonical};
use crate::commit::{
    MerkleTree, ShardCommitment, ShardIndex, ShardProof, ShardRejection, leaf_hash,
};
use blocked::{AlignedBytes, BlockedEncoder};
use engine::CodingEngine;
pub use engine::EngineKind;
use restore::CodewordRestorer;
use thiserror::Error;

mod blocked;
mod engine;
#[cfg(target_arch = "x86_64")]
mod gfni;
mod restore;

/// Encodes payloads into committed shards under one set of parameters, reusing its coder, tree
/// and scratch buffers from blob to blob.
pub struct Encoder {
    params: DaParams,
    coder: BlockedEncoder,
    scratch: DataShardScratch,
    tree: MerkleTree,
}

impl Encoder {
    /// An encoder for `params` on the fastest engine this CPU runs.
    pub fn new(params: DaParams) -> Encoder {
        Encoder::with_engine(params, EngineKind::best()).expect("the best engine is available")
    }

    /// An encoder for `params` on engine `kind`, or `None` where this CPU does not run it.
    pub fn with_engine(params: DaParams, kind: EngineKind) -> Option<Encoder> {
        Some(Encoder {
            params,
            coder: BlockedEncoder::new(
                CodingEngine::of(kind)?,
                params.data_shards(),
                params.recovery_shards(),
            ),
            scratch: DataShardScratch::default(),
            tree: MerkleTree::default(),
        })
    }

    /// The parameters this encoder codes with.
    pub fn params(&self) -> DaParams {
        self.params
    }

    /// The engine this encoder codes on.
    pub fn engine(&self) -> EngineKind {
        self.coder.engine().kind()
    }

    /// Codes `payload` into `k + m` shards and commits to them. Refuses payloads over
    /// [`crate::blob::MAX_PAYLOAD_BYTES`].
    pub fn encode<'a>(&'a mut self, payload: &'a [u8]) -> Result<EncodedBlob<'a>, DaError> {
        let params = self.params;
        let data_shards = params.data_shards();
        let width_bytes = params.shard_width_bytes(payload.len())?;
        let Encoder {
            coder,
            scratch,
            tree,
            ..
        } = self;
        let data = scratch.prepare(payload, width_bytes);
        coder.encode(width_bytes, |index| data.shard(index));
        tree.reset(params.total_shards());
        let leaves = tree.leaves_mut();
        let mut padding_leaf = None;
        for (index, leaf) in leaves[..data_shards].iter_mut().enumerate() {
            let shard = data.shard(index);
            *leaf = if data.is_padding(index) {
                *padding_leaf.get_or_insert_with(|| leaf_hash(shard))
            } else {
                leaf_hash(shard)
            };
        }
        for (recovery_index, leaf) in leaves[data_shards..].iter_mut().enumerate() {
            *leaf = leaf_hash(coder.recovery(recovery_index));
        }
        tree.build();
        let commitment = ShardCommitment::new(tree.root(), params, width_bytes)
            .expect("the canonical width of an accepted payload is within the limit");
        Ok(EncodedBlob {
            commitment,
            data,
            recovery: coder,
            tree,
        })
    }
}

/// A coded and committed blob: the commitment, every shard and its proof. Borrows the payload
/// and the encoder's buffers; nothing is copied out unless the caller does.
pub struct EncodedBlob<'a> {
    commitment: ShardCommitment,
    data: crate::blob::DataShards<'a>,
    recovery: &'a BlockedEncoder,
    tree: &'a MerkleTree,
}

impl EncodedBlob<'_> {
    /// The commitment readers verify shards against.
    pub fn commitment(&self) -> &ShardCommitment {
        &self.commitment
    }

    /// Coded shard `index` (data shards `0..k`, recovery shards `k..k+m`).
    ///
    /// Panics if `index ≥ k + m`: indices come from the caller's own loop over this blob.
    pub fn shard(&self, index: ShardIndex) -> &[u8] {
        let data_shards = self.commitment.params().data_shards();
        let index = index.as_usize();
        if index < data_shards {
            self.data.shard(index)
        } else {
            self.recovery.recovery(index - data_shards)
        }
    }

    /// The Merkle proof of shard `index`. Panics if `index ≥ k + m`.
    pub fn proof(&self, index: ShardIndex) -> ShardProof {
        self.tree.proof(index)
    }

    /// All `k + m` shards in index order.
    pub fn shards(&self) -> impl Iterator<Item = (ShardIndex, &[u8])> + '_ {
        (0..self.commitment.params().total_shards()).map(|index| {
            let index = ShardIndex(index as u32);
            (index, self.shard(index))
        })
    }
}

/// What a reader concludes about a committed blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// The blob is valid; this is its payload.
    Available(&'a [u8]),
    /// The blob is defined as empty, for every reader alike.
    Empty(EmptyReason),
}

/// Why a committed blob is empty.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EmptyReason {
    /// The committed shards are not a Reed-Solomon codeword: re-encoding any `k` of them does not
    /// reproduce the committed root.
    #[error("the committed shards are not a codeword")]
    NotCodeword,
    /// The shards are a codeword, but the blob they carry is not a canonical payload layout.
    #[error("the blob is not canonical: {0}")]
    NonCanonical(NonCanonical),
}

/// Whether an offered shard was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Verified and kept.
    Kept,
    /// Not needed: `k` shards are already held. It was not verified.
    Surplus,
}

/// Decodes committed blobs under one set of parameters; keeps its coders, buffers and tree from
/// blob to blob: about (1 + m/k) × the largest blob it has decoded (3× at 1024 + 2048), the
/// blob itself and its recovery shards.
pub struct Decoder {
    params: DaParams,
    restorer: CodewordRestorer,
    encoder: BlockedEncoder,
    /// The `k` data shards, i.e. the blob, in order. Held recovery shards go straight to the
    /// restorer.
    blob: AlignedBytes,
    /// Which of the `k + m` shards are held.
    held: Vec<bool>,
    held_count: usize,
    tree: MerkleTree,
}

impl Decoder {
    /// A decoder for `params` on the fastest engine this CPU runs.
    pub fn new(params: DaParams) -> Decoder {
        Decoder::with_engine(params, EngineKind::best()).expect("the best engine is available")
    }

    /// A decoder for `params` on engine `kind`, or `None` where this CPU does not run it.
    pub fn with_engine(params: DaParams, kind: EngineKind) -> Option<Decoder> {
        Some(Decoder {
            params,
            restorer: CodewordRestorer::new(CodingEngine::of(kind)?),
            encoder: BlockedEncoder::new(
                CodingEngine::of(kind)?,
                params.data_shards(),
                params.recovery_shards(),
            ),
            blob: AlignedBytes::default(),
            held: Vec::new(),
            held_count: 0,
            tree: MerkleTree::default(),
        })
    }

    /// The parameters this decoder expects.
    pub fn params(&self) -> DaParams {
        self.params
    }

    /// Starts retrieving the blob `commitment` commits to. Refuses a commitment made under other
    /// parameters.
    pub fn begin(&mut self, commitment: &ShardCommitment) -> Result<Retrieval<'_>, DaError> {
        if commitment.params() != self.params {
            return Err(DaError::ParamsMismatch {
                expected: self.params,
                found: commitment.params(),
            });
        }
        let width_bytes = commitment.shard_width_bytes();
        let data_shards = self.params.data_shards();
        self.blob.resize(data_shards * width_bytes);
        self.restorer
            .prepare(data_shards, self.params.recovery_shards(), width_bytes);
        self.held.clear();
        self.held.resize(self.params.total_shards(), false);
        self.held_count = 0;
        self.tree.reset(self.params.total_shards());
        Ok(Retrieval {
            decoder: self,
            commitment: *commitment,
        })
    }

    /// Offers every shard of `shards` in turn (stopping once `k` are held) and finishes. Returns
    /// the verdict and the shards rejected on the way, with their reasons.
    pub fn decode<'a, 'b>(
        &'a mut self,
        commitment: &ShardCommitment,
        shards: impl IntoIterator<Item = (ShardIndex, &'b [u8], &'b ShardProof)>,
    ) -> Result<(Decoded<'a>, Vec<(ShardIndex, ShardRejection)>), DaError> {
        let mut retrieval = self.begin(commitment)?;
        let mut rejected = Vec::new();
        for (index, shard, proof) in shards {
            if retrieval.is_ready() {
                break;
            }
            if let Err(reason) = retrieval.add(index, shard, proof) {
                rejected.push((index, reason));
            }
        }
        Ok((retrieval.finish()?, rejected))
    }
}

/// One blob being retrieved: verified shards accumulate until `k` are held.
pub struct Retrieval<'a> {
    decoder: &'a mut Decoder,
    commitment: ShardCommitment,
}

impl<'a> Retrieval<'a> {
    /// Verifies `shard` as coded shard `index` and keeps it. A shard that fails verification, or
    /// repeats an index already held, is rejected with the reason and never used; once `k`
    /// shards are held further ones are [`Added::Surplus`] and not looked at.
    pub fn add(
        &mut self,
        index: ShardIndex,
        shard: &[u8],
        proof: &ShardProof,
    ) -> Result<Added, ShardRejection> {
        if self.is_ready() {
            return Ok(Added::Surplus);
        }
        let leaf = self.commitment.verify_shard(index, shard, proof)?;
        let decoder = &mut *self.decoder;
        let position = index.as_usize();
        if decoder.held[position] {
            return Err(ShardRejection::Duplicate { index: index.0 });
        }
        let width_bytes = shard.len();
        let data_shards = decoder.params.data_shards();
        if position < data_shards {
            decoder.blob.as_mut_slice()[position * width_bytes..(position + 1) * width_bytes]
                .copy_from_slice(shard);
        } else {
            decoder.restorer.put_recovery(position - data_shards, shard);
        }
        decoder.held[position] = true;
        decoder.held_count += 1;
        decoder.tree.leaves_mut()[position] = leaf;
        Ok(Added::Kept)
    }

    /// Distinct verified shards held.
    pub fn verified_count(&self) -> usize {
        self.decoder.held_count
    }

    /// Whether `k` verified shards are held, so [`Retrieval::finish`] can decide.
    pub fn is_ready(&self) -> bool {
        self.decoder.held_count >= self.decoder.params.data_shards()
    }

    /// Decides the blob from the `k` verified shards held: complete the codeword, compare the
    /// root, check the layout (see the module docs). Errs only when fewer than `k` are held.
    pub fn finish(self) -> Result<Decoded<'a>, DaError> {
        let Retrieval {
            decoder,
            commitment,
        } = self;
        let data_shards = decoder.params.data_shards();
        let recovery_shards = decoder.params.recovery_shards();
        if decoder.held_count < data_shards {
            return Err(DaError::NotEnoughShards {
                needed: data_shards,
                verified: decoder.held_count,
            });
        }
        let width_bytes = commitment.shard_width_bytes();
        let Decoder {
            restorer,
            encoder,
            blob,
            held,
            tree,
            ..
        } = decoder;
        let leaves = tree.leaves_mut();
        let blob = blob.as_mut_slice();

        if held[..data_shards].iter().all(|&present| present) {
            // The blob is complete: encoding it gives the recovery shards, cheaper than decoding.
            // They go where the restorer keeps recovery shards, so the decoder holds one set.
            encoder.encode_into(
                width_bytes,
                |index| &blob[index * width_bytes..(index + 1) * width_bytes],
                restorer.recovery_shards_mut(),
            );
            for (recovery_index, leaf) in leaves[data_shards..].iter_mut().enumerate() {
                *leaf = leaf_hash(restorer.recovery_shard(recovery_index));
            }
        } else {
            restorer.restore(held, blob);
            for (index, shard) in blob.chunks_exact(width_bytes).enumerate() {
                if !held[index] {
                    leaves[index] = leaf_hash(shard);
                }
            }
            for recovery_index in 0..recovery_shards {
                if !held[data_shards + recovery_index] {
                    leaves[data_shards + recovery_index] =
                        leaf_hash(restorer.recovery_shard(recovery_index));
                }
            }
        }
        tree.build();
        if tree.root() != *commitment.root() {
            return Ok(Decoded::Empty(EmptyReason::NotCodeword));
        }
        let blob: &'a [u8] = blob;
        match check_canonical(&commitment.params(), blob, width_bytes) {
            Ok(payload) => Ok(Decoded::Available(payload)),
            Err(reason) => Ok(Decoded::Empty(EmptyReason::NonCanonical(reason))),
        }
    }
}
