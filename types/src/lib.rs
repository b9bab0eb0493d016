//! The thin shared vocabulary of zerog: hashes, indices, sizes and shard configuration.
//!
//! Every crate depends on this one, so it stays small and free of logic beyond conversions.
//! Indices that mean different things get different types (`SectorIndex` is a position in the
//! flow log, `SegmentIndex` a segment of one file, `FlowSegmentIndex` a segment of the flow log),
//! so that a file-relative index can never be passed where a flow position is meant.
#![forbid(unsafe_code)]

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One chunk (0G calls it sector or entry): the leaf unit of every Merkle tree.
pub const CHUNK_BYTES: usize = 256;
/// Chunks per segment, the unit of upload, download and proof.
pub const SEGMENT_CHUNKS: usize = 1024;
/// Bytes per segment (256 KiB).
pub const SEGMENT_BYTES: usize = CHUNK_BYTES * SEGMENT_CHUNKS;
/// log2 of `SEGMENT_CHUNKS`: the height of a full segment's subtree.
pub const SEGMENT_HEIGHT: u32 = SEGMENT_CHUNKS.trailing_zeros();

const _: () = assert!(SEGMENT_BYTES.is_multiple_of(CHUNK_BYTES));
const _: () = assert!(SEGMENT_CHUNKS.is_power_of_two());
const _: () = assert!(1 << SEGMENT_HEIGHT == SEGMENT_CHUNKS);

/// A 32-byte Keccak-256 digest. Serialized as `0x`-prefixed lowercase hex, as 0G's RPC does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct H256(pub [u8; 32]);

impl H256 {
    pub const ZERO: H256 = H256([0u8; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses `0x`-prefixed (or bare) hex of exactly 32 bytes.
    pub fn from_hex(text: &str) -> Result<H256, HexError> {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        if digits.len() != 64 {
            return Err(HexError::Length {
                found_chars: digits.len(),
            });
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits, &mut out).map_err(|_| HexError::NotHex)?;
        Ok(H256(out))
    }

    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

/// Why a string is not a 32-byte hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    Length { found_chars: usize },
    NotHex,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::Length { found_chars } => {
                write!(
                    f,
                    "expected 64 hex digits for a 32-byte hash, found {found_chars}"
                )
            }
            HexError::NotHex => write!(f, "hash contains a character that is not hex"),
        }
    }
}

impl std::error::Error for HexError {}

impl fmt::Debug for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for H256 {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        H256::from_hex(s)
    }
}

impl Serialize for H256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for H256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        H256::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

macro_rules! index_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

index_type!(
    /// Sequence number of a Flow submission (0G's `txSeq`, the contract's `submissionIndex`).
    TxSeq
);
index_type!(
    /// A position in the flow log, counted in sectors (chunks). Position 0 is the identifier.
    SectorIndex
);
index_type!(
    /// A segment of the flow log: sectors `[k * 1024, (k + 1) * 1024)`.
    FlowSegmentIndex
);
index_type!(
    /// A segment of one file, counted from the file's first chunk.
    SegmentIndex
);

impl SectorIndex {
    pub fn flow_segment(self) -> FlowSegmentIndex {
        FlowSegmentIndex(self.0 / SEGMENT_CHUNKS as u64)
    }
}

impl FlowSegmentIndex {
    pub fn first_sector(self) -> SectorIndex {
        SectorIndex(self.0 * SEGMENT_CHUNKS as u64)
    }
}

/// Which flow segments a node (or a data-plane shard) stores: segment k iff
/// `k % num_shard == shard_id`. `num_shard` is a power of two.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardConfig {
    pub num_shard: u64,
    pub shard_id: u64,
}

/// Why a shard configuration is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardConfigError {
    NotPowerOfTwo { num_shard: u64 },
    IdOutOfRange { num_shard: u64, shard_id: u64 },
}

impl fmt::Display for ShardConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardConfigError::NotPowerOfTwo { num_shard } => {
                write!(f, "num_shard must be a power of two, got {num_shard}")
            }
            ShardConfigError::IdOutOfRange {
                num_shard,
                shard_id,
            } => {
                write!(f, "shard_id {shard_id} is not below num_shard {num_shard}")
            }
        }
    }
}

impl std::error::Error for ShardConfigError {}

impl ShardConfig {
    /// A node that stores everything.
    pub const ALL: ShardConfig = ShardConfig {
        num_shard: 1,
        shard_id: 0,
    };

    pub fn new(num_shard: u64, shard_id: u64) -> Result<ShardConfig, ShardConfigError> {
        if !num_shard.is_power_of_two() {
            return Err(ShardConfigError::NotPowerOfTwo { num_shard });
        }
        if shard_id >= num_shard {
            return Err(ShardConfigError::IdOutOfRange {
                num_shard,
                shard_id,
            });
        }
        Ok(ShardConfig {
            num_shard,
            shard_id,
        })
    }

    pub fn owns(&self, segment: FlowSegmentIndex) -> bool {
        segment.0 % self.num_shard == self.shard_id
    }

    /// Whether this is a node that stores every segment (`0/1`).
    pub fn is_all(&self) -> bool {
        self.num_shard == 1
    }
}

/// 0G's `shard_position` notation: `ID/NUM`.
impl fmt::Display for ShardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.shard_id, self.num_shard)
    }
}

/// Why `ID/NUM` text is not a shard position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardPositionError {
    Syntax { text: String },
    Invalid(ShardConfigError),
}

impl fmt::Display for ShardPositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardPositionError::Syntax { text } => write!(
                f,
                "{text:?} is not a shard position: write ID/NUM, e.g. 0/1 (everything) or 1/4"
            ),
            ShardPositionError::Invalid(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ShardPositionError {}

impl std::str::FromStr for ShardConfig {
    type Err = ShardPositionError;

    fn from_str(text: &str) -> Result<ShardConfig, ShardPositionError> {
        let syntax = || ShardPositionError::Syntax {
            text: text.to_string(),
        };
        let (id, num) = text.split_once('/').ok_or_else(syntax)?;
        let id: u64 = id.trim().parse().map_err(|_| syntax())?;
        let num: u64 = num.trim().parse().map_err(|_| syntax())?;
        ShardConfig::new(num, id).map_err(ShardPositionError::Invalid)
    }
}

/// Number of 256-byte chunks that hold `size_bytes` bytes (the last one zero-filled).
pub fn chunks_for_bytes(size_bytes: u64) -> u64 {
    size_bytes.div_ceil(CHUNK_BYTES as u64)
}

/// Number of segments that hold `size_bytes` bytes.
pub fn segments_for_bytes(size_bytes: u64) -> u64 {
    size_bytes.div_ceil(SEGMENT_BYTES as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_hex_round_trip() {
        let hash = H256([0xab; 32]);
        let text = serde_json::to_string(&hash).expect("serializes");
        assert_eq!(text, format!("\"0x{}\"", "ab".repeat(32)));
        let back: H256 = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, hash);
    }

    #[test]
    fn hash_hex_rejects_bad_input() {
        assert_eq!(
            H256::from_hex("0x12"),
            Err(HexError::Length { found_chars: 2 })
        );
        assert_eq!(H256::from_hex(&"zz".repeat(32)), Err(HexError::NotHex));
    }

    #[test]
    fn shard_config_validates_and_routes() {
        assert!(ShardConfig::new(3, 0).is_err());
        assert!(ShardConfig::new(4, 4).is_err());
        let config = ShardConfig::new(4, 1).expect("valid");
        assert!(config.owns(FlowSegmentIndex(5)));
        assert!(!config.owns(FlowSegmentIndex(6)));
        assert_eq!(
            serde_json::to_string(&config).expect("serializes"),
            r#"{"numShard":4,"shardId":1}"#
        );
        assert_eq!("1/4".parse::<ShardConfig>(), Ok(config));
        assert_eq!(config.to_string(), "1/4");
        assert_eq!("0/1".parse::<ShardConfig>(), Ok(ShardConfig::ALL));
        for bad in ["1", "a/2", "1/3", "2/2", "1/-2", ""] {
            assert!(bad.parse::<ShardConfig>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_round_up() {
        assert_eq!(chunks_for_bytes(1), 1);
        assert_eq!(chunks_for_bytes(256), 1);
        assert_eq!(chunks_for_bytes(257), 2);
        assert_eq!(segments_for_bytes(SEGMENT_BYTES as u64 + 1), 2);
        assert_eq!(SectorIndex(2049).flow_segment(), FlowSegmentIndex(2));
    }
}
