//! blob: the byte layout a payload takes before erasure coding, the coding parameters, and the
//! errors of the coding layer.
//!
//! A blob of `k` data shards of `width` bytes each is the `k × width` bytes
//!
//! ```text
//! [ payload length: u64 little-endian (8 bytes) | payload | zero padding ]
//! ```
//!
//! cut into `k` consecutive shards. The width is a pure function of the payload length and `k`
//! ([`DaParams::shard_width_bytes`]): the smallest multiple of [`SHARD_WIDTH_ALIGN_BYTES`] (64)
//! that holds the prefix and the payload. 64 is even, as reed-solomon-simd requires, and is the
//! unit its SIMD kernels work in, so a canonical shard never takes the library's slow path for a
//! partial last chunk. Because the width is canonical and the padding is zero, one payload has
//! exactly one blob: a decoded blob whose prefix claims more bytes than the blob holds, whose
//! width is not the canonical width for the claimed length, or whose padding is not zero is
//! [`NonCanonical`] and a reader treats it as empty ([`check_canonical`]).
//!
//! Payloads are at most [`MAX_PAYLOAD_BYTES`] (32 MiB). With the default 1024 + 2048 shards a
//! full payload gives 32 832-byte shards (32 KiB plus one 64-byte unit for the prefix).

use reed_solomon_simd::engine::DefaultEngine;
use reed_solomon_simd::rate::{LowRate, Rate};
use thiserror::Error;

/// Largest payload a blob carries (32 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 32 << 20;
/// Bytes of the little-endian payload-length prefix at the start of shard 0.
pub const LENGTH_PREFIX_BYTES: usize = 8;
/// Every canonical shard width is a non-zero multiple of this (even, and the SIMD unit of the
/// Reed-Solomon kernels).
pub const SHARD_WIDTH_ALIGN_BYTES: usize = 64;
/// Data shards of the default parameters (`k`).
pub const DEFAULT_DATA_SHARDS: usize = 1024;
/// Recovery shards of the default parameters (`m`; rate `k / (k + m)` = 1/3).
pub const DEFAULT_RECOVERY_SHARDS: usize = 2048;
/// Largest total shard count `k + m` (the field GF(2^16) of reed-solomon-simd).
pub const MAX_TOTAL_SHARDS: usize = 1 << 16;

const _: () = assert!(SHARD_WIDTH_ALIGN_BYTES.is_multiple_of(2));
const _: () = assert!(MAX_PAYLOAD_BYTES as u64 <= u32::MAX as u64);

/// Erasure-coding parameters: `k` data shards and `m` recovery shards; any `k` of the `k + m`
/// coded shards recover the blob. Always valid once constructed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DaParams {
    data_shards: u32,
    recovery_shards: u32,
}

impl Default for DaParams {
    /// 1024 data + 2048 recovery shards (rate 1/3).
    fn default() -> Self {
        DaParams {
            data_shards: DEFAULT_DATA_SHARDS as u32,
            recovery_shards: DEFAULT_RECOVERY_SHARDS as u32,
        }
    }
}

impl DaParams {
    /// Parameters with `data_shards` (k) and `recovery_shards` (m); refused unless both are
    /// non-zero and reed-solomon-simd's low-rate code supports the pair
    /// (`next_power_of_two(k) + m ≤ 65536`). Small values (e.g. 4 + 8) are for tests and small
    /// deployments.
    pub fn new(data_shards: usize, recovery_shards: usize) -> Result<DaParams, DaError> {
        let unsupported = DaError::UnsupportedParams {
            data_shards,
            recovery_shards,
        };
        if data_shards == 0
            || recovery_shards == 0
            || data_shards.saturating_add(recovery_shards) > MAX_TOTAL_SHARDS
            || !<LowRate<DefaultEngine> as Rate<DefaultEngine>>::supports(
                data_shards,
                recovery_shards,
            )
        {
            return Err(unsupported);
        }
        Ok(DaParams {
            data_shards: u32::try_from(data_shards).map_err(|_| unsupported.clone())?,
            recovery_shards: u32::try_from(recovery_shards).map_err(|_| unsupported)?,
        })
    }

    /// `k`: data shards, the number of shards any reader needs.
    pub fn data_shards(&self) -> usize {
        self.data_shards as usize
    }

    /// `m`: recovery shards.
    pub fn recovery_shards(&self) -> usize {
        self.recovery_shards as usize
    }

    /// `k + m`: coded shards, the leaves of the commitment tree.
    pub fn total_shards(&self) -> usize {
        self.data_shards() + self.recovery_shards()
    }

    /// The canonical shard width for a payload of `payload_len` bytes: the smallest multiple of
    /// 64 with `k × width ≥ 8 + payload_len`. Refuses payloads over [`MAX_PAYLOAD_BYTES`].
    pub fn shard_width_bytes(&self, payload_len: usize) -> Result<usize, DaError> {
        if payload_len > MAX_PAYLOAD_BYTES {
            return Err(DaError::PayloadTooLarge {
                size_bytes: payload_len as u64,
                max_bytes: MAX_PAYLOAD_BYTES,
            });
        }
        let blob_bytes = LENGTH_PREFIX_BYTES + payload_len;
        Ok(blob_bytes
            .div_ceil(self.data_shards())
            .next_multiple_of(SHARD_WIDTH_ALIGN_BYTES))
    }

    /// The widest canonical shard (the width of a [`MAX_PAYLOAD_BYTES`] payload): the limit a
    /// commitment's width is checked against before any buffer is sized from it.
    pub fn max_shard_width_bytes(&self) -> usize {
        (LENGTH_PREFIX_BYTES + MAX_PAYLOAD_BYTES)
            .div_ceil(self.data_shards())
            .next_multiple_of(SHARD_WIDTH_ALIGN_BYTES)
    }
}

/// Errors of the coding layer. Input from clients and peers ends here, never in a panic.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DaError {
    /// The `(k, m)` pair is not supported by the Reed-Solomon code.
    #[error(
        "unsupported coding parameters: {data_shards} data + {recovery_shards} recovery shards"
    )]
    UnsupportedParams {
        /// Requested `k`.
        data_shards: usize,
        /// Requested `m`.
        recovery_shards: usize,
    },
    /// The payload is larger than a blob may carry.
    #[error("payload of {size_bytes} bytes exceeds the {max_bytes}-byte blob limit")]
    PayloadTooLarge {
        /// Size of the refused payload.
        size_bytes: u64,
        /// [`MAX_PAYLOAD_BYTES`].
        max_bytes: usize,
    },
    /// A commitment names a shard width no canonical blob has under its parameters.
    #[error("shard width {width_bytes} is not a multiple of 64 between 64 and {max_bytes}")]
    InvalidShardWidth {
        /// The width the commitment names.
        width_bytes: usize,
        /// The widest canonical shard for the commitment's `k`.
        max_bytes: usize,
    },
    /// A commitment was made under other parameters than the decoder's.
    #[error("commitment uses {found:?}, the decoder is configured for {expected:?}")]
    ParamsMismatch {
        /// The decoder's parameters.
        expected: DaParams,
        /// The commitment's parameters.
        found: DaParams,
    },
    /// Fewer than `k` distinct shards passed verification.
    #[error("need {needed} verified shards to decode, have {verified}")]
    NotEnoughShards {
        /// `k`.
        needed: usize,
        /// Distinct shards verified so far.
        verified: usize,
    },
    /// A serialized commitment or proof is malformed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why a decoded blob is not the canonical blob of any payload. Such a blob is empty for every
/// reader.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NonCanonical {
    /// The length prefix is larger than [`MAX_PAYLOAD_BYTES`].
    #[error("length prefix {declared_bytes} exceeds the {max_bytes}-byte limit")]
    LengthTooLarge {
        /// The length the prefix declares.
        declared_bytes: u64,
        /// [`MAX_PAYLOAD_BYTES`].
        max_bytes: usize,
    },
    /// The length prefix claims more payload than the blob holds.
    #[error(
        "length prefix {declared_bytes} exceeds the {capacity_bytes} payload bytes the blob holds"
    )]
    LengthExceedsData {
        /// The length the prefix declares.
        declared_bytes: u64,
        /// `k × width − 8`.
        capacity_bytes: usize,
    },
    /// The shard width is not the canonical one for the declared length.
    #[error(
        "shard width {width_bytes} is not the canonical {canonical_bytes} for the declared length"
    )]
    WidthNotCanonical {
        /// The width the blob was coded with.
        width_bytes: usize,
        /// The canonical width for the declared length.
        canonical_bytes: usize,
    },
    /// A padding byte after the payload is not zero.
    #[error("non-zero padding byte at blob offset {offset}")]
    NonZeroPadding {
        /// Offset of the first non-zero padding byte in the blob.
        offset: usize,
    },
}

/// Lays `payload` out as a whole blob (`k × width` bytes, shard i at `i × width`). The encoder
/// does not build this buffer (it feeds the coder slices of the payload); it is the reference
/// form of the layout, for tests and for callers that want the blob in one piece.
pub fn write_blob(params: &DaParams, payload: &[u8]) -> Result<Vec<u8>, DaError> {
    let width = params.shard_width_bytes(payload.len())?;
    let mut blob = vec![0u8; params.data_shards() * width];
    blob[..LENGTH_PREFIX_BYTES].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    blob[LENGTH_PREFIX_BYTES..LENGTH_PREFIX_BYTES + payload.len()].copy_from_slice(payload);
    Ok(blob)
}

/// Checks that `blob` (all `k` data shards of `width_bytes` each, in order) is the canonical blob
/// of some payload under `params`, and returns that payload. The checks run in a fixed order
/// (limit, capacity, width, padding) so every reader of the same bytes gets the same answer.
pub fn check_canonical<'a>(
    params: &DaParams,
    blob: &'a [u8],
    width_bytes: usize,
) -> Result<&'a [u8], NonCanonical> {
    assert_eq!(
        blob.len(),
        params.data_shards() * width_bytes,
        "a blob is k shards of one width"
    );
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    prefix.copy_from_slice(&blob[..LENGTH_PREFIX_BYTES]);
    let declared_bytes = u64::from_le_bytes(prefix);
    if declared_bytes > MAX_PAYLOAD_BYTES as u64 {
        return Err(NonCanonical::LengthTooLarge {
            declared_bytes,
            max_bytes: MAX_PAYLOAD_BYTES,
        });
    }
    let capacity_bytes = blob.len() - LENGTH_PREFIX_BYTES;
    if declared_bytes > capacity_bytes as u64 {
        return Err(NonCanonical::LengthExceedsData {
            declared_bytes,
            capacity_bytes,
        });
    }
    let payload_len = declared_bytes as usize;
    let canonical_bytes = params
        .shard_width_bytes(payload_len)
        .expect("the declared length was checked against the limit");
    if canonical_bytes != width_bytes {
        return Err(NonCanonical::WidthNotCanonical {
            width_bytes,
            canonical_bytes,
        });
    }
    let payload_end = LENGTH_PREFIX_BYTES + payload_len;
    if let Some(position) = blob[payload_end..].iter().position(|&byte| byte != 0) {
        return Err(NonCanonical::NonZeroPadding {
            offset: payload_end + position,
        });
    }
    Ok(&blob[LENGTH_PREFIX_BYTES..payload_end])
}

/// The `k` data shards of a payload, served from the payload itself where a shard lies wholly
/// inside it, and from three shard-sized scratch buffers otherwise: shard 0 (it carries the
/// prefix), the one shard the payload's end falls inside, and an all-zero shard for the padding
/// shards after it. The encoder feeds these to the coder without ever building the blob.
pub(crate) struct DataShards<'a> {
    payload: &'a [u8],
    width_bytes: usize,
    head: &'a [u8],
    tail: &'a [u8],
    zeros: &'a [u8],
}

/// Reused scratch for [`DataShards`].
#[derive(Default)]
pub(crate) struct DataShardScratch {
    head: Vec<u8>,
    tail: Vec<u8>,
    zeros: Vec<u8>,
}

impl DataShardScratch {
    /// Fills the scratch for `payload` at `width_bytes` (the canonical width, already checked)
    /// and returns the shard view.
    pub(crate) fn prepare<'a>(
        &'a mut self,
        payload: &'a [u8],
        width_bytes: usize,
    ) -> DataShards<'a> {
        let blob_bytes = LENGTH_PREFIX_BYTES + payload.len();
        for buffer in [&mut self.head, &mut self.tail, &mut self.zeros] {
            buffer.clear();
            buffer.resize(width_bytes, 0);
        }
        self.head[..LENGTH_PREFIX_BYTES].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        let head_payload = payload.len().min(width_bytes - LENGTH_PREFIX_BYTES);
        self.head[LENGTH_PREFIX_BYTES..LENGTH_PREFIX_BYTES + head_payload]
            .copy_from_slice(&payload[..head_payload]);
        let tail_index = blob_bytes / width_bytes;
        if tail_index > 0 && !blob_bytes.is_multiple_of(width_bytes) {
            let tail_start = tail_index * width_bytes - LENGTH_PREFIX_BYTES;
            let tail_payload = &payload[tail_start..];
            self.tail[..tail_payload.len()].copy_from_slice(tail_payload);
        }
        DataShards {
            payload,
            width_bytes,
            head: &self.head,
            tail: &self.tail,
            zeros: &self.zeros,
        }
    }
}

impl<'a> DataShards<'a> {
    /// Data shard `index` (< k) of the blob.
    pub(crate) fn shard(&self, index: usize) -> &'a [u8] {
        let start = index * self.width_bytes;
        let end = start + self.width_bytes;
        let blob_bytes = LENGTH_PREFIX_BYTES + self.payload.len();
        if index == 0 {
            self.head
        } else if end <= blob_bytes {
            &self.payload[start - LENGTH_PREFIX_BYTES..end - LENGTH_PREFIX_BYTES]
        } else if start >= blob_bytes {
            self.zeros
        } else {
            self.tail
        }
    }

    /// Whether data shard `index` is all padding (every such shard is the same zero shard).
    pub(crate) fn is_padding(&self, index: usize) -> bool {
        index > 0 && index * self.width_bytes >= LENGTH_PREFIX_BYTES + self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_is_the_smallest_aligned_width_that_holds_the_blob() {
        let params = DaParams::new(4, 8).expect("supported params");
        for payload_len in [0usize, 1, 247, 248, 249, 1000, 4096, 100_000] {
            let width = params
                .shard_width_bytes(payload_len)
                .expect("within the limit");
            assert!(width.is_multiple_of(SHARD_WIDTH_ALIGN_BYTES) && width > 0);
            assert!(4 * width >= LENGTH_PREFIX_BYTES + payload_len);
            if width > SHARD_WIDTH_ALIGN_BYTES {
                let narrower = width - SHARD_WIDTH_ALIGN_BYTES;
                assert!(4 * narrower < LENGTH_PREFIX_BYTES + payload_len);
            }
        }
    }

    #[test]
    fn data_shards_match_the_written_blob() {
        let params = DaParams::new(4, 8).expect("supported params");
        let mut scratch = DataShardScratch::default();
        for payload_len in [0usize, 1, 55, 56, 57, 120, 247, 248, 249, 700, 1000] {
            let payload: Vec<u8> = (0..payload_len).map(|i| (i % 251) as u8 + 1).collect();
            let blob = write_blob(&params, &payload).expect("within the limit");
            let width = params
                .shard_width_bytes(payload_len)
                .expect("within the limit");
            let shards = scratch.prepare(&payload, width);
            for index in 0..4 {
                let expected = &blob[index * width..(index + 1) * width];
                assert_eq!(
                    shards.shard(index),
                    expected,
                    "len {payload_len} shard {index}"
                );
                assert_eq!(
                    shards.is_padding(index),
                    expected.iter().all(|&b| b == 0) && index > 0,
                    "len {payload_len} shard {index}"
                );
            }
            assert_eq!(
                check_canonical(&params, &blob, width).expect("written blobs are canonical"),
                &payload[..]
            );
        }
    }

    #[test]
    fn params_outside_the_code_are_refused() {
        assert!(DaParams::new(0, 4).is_err());
        assert!(DaParams::new(4, 0).is_err());
        assert!(DaParams::new(40_000, 40_000).is_err());
        assert_eq!(
            DaParams::new(1024, 2048).expect("supported params"),
            DaParams::default()
        );
    }
}
