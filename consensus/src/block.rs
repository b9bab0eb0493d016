//! The ordered block: what consensus agrees on, and its canonical encoding.
//!
//! A block carries raw signed transactions, not executed results: execution happens after
//! finality (see the crate header). Its digest is keccak256 over a domain tag, the header
//! fields and the transactions root (keccak256 over the transaction hashes, as chain-lite's
//! header computes it), so the digest of a block is computed once, when it is built or decoded.
//! The encoding is canonical (one byte string per block) and versioned; decoding takes
//! [`BlockLimits`] and refuses a block past them before it allocates for it.

use crate::{Context, Digest};
use bytes::{Buf as _, BufMut};
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, MaxEncodeSize, Read, ReadExt, Write,
    varint::UInt,
};
use commonware_consensus::{BoundedBlock, CertifiableBlock, Heightable, types::Height};
use commonware_cryptography::{Digestible, Hasher, Keccak256};
use types::H256;

/// The encoding version of [`OrderedBlock`]; decoding refuses any other.
pub const BLOCK_VERSION: u8 = 1;
/// Domain tag of the block digest.
const DIGEST_DOMAIN: &[u8] = b"zerog-consensus-block-v1";

/// The most a block may hold. Every validator must use the same limits: a block one validator
/// decodes and another refuses would split their votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    pub max_transactions: u32,
    /// Largest raw transaction.
    pub max_transaction_bytes: u32,
    /// Sum of the raw transactions of one block.
    pub max_block_bytes: u32,
}

impl BlockLimits {
    /// 10 000 transactions (chain-lite's `max_transactions_per_block` by default), 8 MiB of
    /// transactions, each at most chain-lite's default calldata limit plus its overhead.
    pub const DEFAULT: BlockLimits = BlockLimits {
        max_transactions: 10_000,
        max_transaction_bytes: (chain_lite::DEFAULT_MAX_CALLDATA_BYTES
            + chain_lite::RAW_OVERHEAD_BYTES) as u32,
        max_block_bytes: 8 * 1024 * 1024,
    };
}

impl Default for BlockLimits {
    fn default() -> Self {
        BlockLimits::DEFAULT
    }
}

/// The executed header a proposer claims: chain-lite's header hash after executing the
/// finalized block at `height` (the lagged execution root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecClaim {
    pub height: u64,
    pub header_hash: H256,
}

/// A block as consensus orders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderedBlock {
    context: Context,
    parent: Digest,
    height: Height,
    timestamp_ms: u64,
    /// `None` only in the genesis block.
    exec: Option<ExecClaim>,
    transactions: Vec<Vec<u8>>,
    /// keccak256 of each raw transaction (its Ethereum hash), in order.
    transaction_hashes: Vec<H256>,
    transaction_bytes: usize,
    digest: Digest,
}

impl OrderedBlock {
    /// Builds a block and computes its digest.
    pub fn new(
        context: Context,
        parent: Digest,
        height: Height,
        timestamp_ms: u64,
        exec: Option<ExecClaim>,
        transactions: Vec<Vec<u8>>,
    ) -> OrderedBlock {
        let transaction_hashes: Vec<H256> = transactions
            .iter()
            .map(|raw| H256(Keccak256::hash(&[raw]).0))
            .collect();
        let transaction_bytes = transactions.iter().map(Vec::len).sum();
        let digest = compute_digest(
            &context,
            &parent,
            height,
            timestamp_ms,
            exec,
            &transaction_hashes,
        );
        OrderedBlock {
            context,
            parent,
            height,
            timestamp_ms,
            exec,
            transactions,
            transaction_hashes,
            transaction_bytes,
            digest,
        }
    }

    pub fn context(&self) -> &Context {
        &self.context
    }

    pub fn parent_digest(&self) -> Digest {
        self.parent
    }

    pub fn height_u64(&self) -> u64 {
        self.height.get()
    }

    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    pub fn exec(&self) -> Option<ExecClaim> {
        self.exec
    }

    pub fn transactions(&self) -> &[Vec<u8>] {
        &self.transactions
    }

    pub fn transaction_hashes(&self) -> &[H256] {
        &self.transaction_hashes
    }

    /// Sum of the raw transactions' sizes.
    pub fn transaction_bytes(&self) -> usize {
        self.transaction_bytes
    }

    /// The digest as chain-lite's header records it (`consensus_digest`).
    pub fn digest_h256(&self) -> H256 {
        H256(self.digest.0)
    }
}

fn compute_digest(
    context: &Context,
    parent: &Digest,
    height: Height,
    timestamp_ms: u64,
    exec: Option<ExecClaim>,
    transaction_hashes: &[H256],
) -> Digest {
    let mut hasher = Keccak256::default();
    hasher.update(DIGEST_DOMAIN);
    let mut context_bytes = Vec::with_capacity(context.encode_size());
    context.write(&mut context_bytes);
    hasher.update(&context_bytes);
    hasher.update(parent.as_ref());
    hasher.update(&height.get().to_be_bytes());
    hasher.update(&timestamp_ms.to_be_bytes());
    match exec {
        None => {
            hasher.update(&[0]);
        }
        Some(claim) => {
            hasher.update(&[1]);
            hasher.update(&claim.height.to_be_bytes());
            hasher.update(claim.header_hash.as_bytes());
        }
    }
    let mut hashes = Vec::with_capacity(transaction_hashes.len() * 32);
    for hash in transaction_hashes {
        hashes.extend_from_slice(hash.as_bytes());
    }
    let transactions_root = Keccak256::hash(&[&hashes]);
    hasher.update(&(transaction_hashes.len() as u64).to_be_bytes());
    hasher.update(transactions_root.as_ref());
    hasher.finalize().1
}

impl Write for OrderedBlock {
    fn write(&self, writer: &mut impl BufMut) {
        BLOCK_VERSION.write(writer);
        self.context.write(writer);
        self.parent.write(writer);
        self.height.write(writer);
        self.timestamp_ms.write(writer);
        match self.exec {
            None => 0u8.write(writer),
            Some(claim) => {
                1u8.write(writer);
                claim.height.write(writer);
                writer.put_slice(claim.header_hash.as_bytes());
            }
        }
        UInt(self.transactions.len() as u32).write(writer);
        for raw in &self.transactions {
            UInt(raw.len() as u32).write(writer);
            writer.put_slice(raw);
        }
    }
}

impl EncodeSize for OrderedBlock {
    fn encode_size(&self) -> usize {
        let exec = match self.exec {
            None => 1,
            Some(_) => 1 + u64::SIZE + 32,
        };
        let transactions: usize = self
            .transactions
            .iter()
            .map(|raw| UInt(raw.len() as u32).encode_size() + raw.len())
            .sum();
        u8::SIZE
            + self.context.encode_size()
            + Digest::SIZE
            + self.height.encode_size()
            + u64::SIZE
            + exec
            + UInt(self.transactions.len() as u32).encode_size()
            + transactions
    }
}

impl Read for OrderedBlock {
    type Cfg = BlockLimits;

    fn read_cfg(reader: &mut impl Buf, limits: &BlockLimits) -> Result<Self, CodecError> {
        let version = u8::read(reader)?;
        if version != BLOCK_VERSION {
            return Err(CodecError::Invalid("OrderedBlock", "unknown block version"));
        }
        let context = Context::read(reader)?;
        let parent = Digest::read(reader)?;
        let height = Height::read(reader)?;
        let timestamp_ms = u64::read(reader)?;
        let exec = match u8::read(reader)? {
            0 => None,
            1 => {
                let height = u64::read(reader)?;
                let hash = <[u8; 32]>::read(reader)?;
                Some(ExecClaim {
                    height,
                    header_hash: H256(hash),
                })
            }
            other => return Err(CodecError::InvalidEnum(other)),
        };
        let count: u32 = UInt::read(reader)?.into();
        if count > limits.max_transactions {
            return Err(CodecError::InvalidLength(count as usize));
        }
        // Each transaction takes at least its length byte: never reserve past the input.
        let mut transactions = Vec::with_capacity((count as usize).min(reader.remaining()));
        let mut total: usize = 0;
        for _ in 0..count {
            let length: u32 = UInt::read(reader)?.into();
            if length > limits.max_transaction_bytes {
                return Err(CodecError::InvalidLength(length as usize));
            }
            total = total.saturating_add(length as usize);
            if total > limits.max_block_bytes as usize {
                return Err(CodecError::Invalid(
                    "OrderedBlock",
                    "transactions exceed the block byte limit",
                ));
            }
            if reader.remaining() < length as usize {
                return Err(CodecError::EndOfBuffer);
            }
            let mut raw = vec![0u8; length as usize];
            reader.copy_to_slice(&mut raw);
            transactions.push(raw);
        }
        Ok(OrderedBlock::new(
            context,
            parent,
            height,
            timestamp_ms,
            exec,
            transactions,
        ))
    }
}

impl Digestible for OrderedBlock {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        self.digest
    }
}

impl Heightable for OrderedBlock {
    fn height(&self) -> Height {
        self.height
    }
}

impl commonware_consensus::Block for OrderedBlock {
    fn parent(&self) -> Digest {
        self.parent
    }
}

impl CertifiableBlock for OrderedBlock {
    type Context = Context;

    fn context(&self) -> Context {
        self.context.clone()
    }
}

impl BoundedBlock for OrderedBlock {
    fn max_encode_size(limits: &BlockLimits) -> usize {
        let per_transaction = UInt::<u32>::MAX_ENCODE_SIZE;
        u8::SIZE
            + Context::MAX_ENCODE_SIZE
            + Digest::SIZE
            + Height::MAX_ENCODE_SIZE
            + u64::SIZE
            + 1
            + u64::SIZE
            + 32
            + UInt::<u32>::MAX_ENCODE_SIZE
            + limits.max_transactions as usize * per_transaction
            + limits.max_block_bytes as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Decode, Encode};
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_cryptography::{Signer as _, ed25519};

    fn sample(transactions: Vec<Vec<u8>>) -> OrderedBlock {
        let leader = ed25519::PrivateKey::from_seed(7).public_key();
        let context = Context {
            round: Round::new(Epoch::zero(), View::new(3)),
            leader,
            parent: (View::new(2), Digest::from([9u8; 32])),
        };
        OrderedBlock::new(
            context,
            Digest::from([9u8; 32]),
            Height::new(2),
            1_000,
            Some(ExecClaim {
                height: 1,
                header_hash: H256([5; 32]),
            }),
            transactions,
        )
    }

    #[test]
    fn a_block_round_trips_and_its_digest_covers_every_field() {
        let block = sample(vec![vec![1, 2, 3], vec![4; 300]]);
        let bytes = block.encode();
        assert_eq!(bytes.len(), block.encode_size());
        let decoded = OrderedBlock::decode_cfg(bytes, &BlockLimits::DEFAULT).expect("decodes");
        assert_eq!(decoded, block);
        assert_eq!(decoded.digest(), block.digest());
        let other = sample(vec![vec![1, 2, 3], vec![4; 299]]);
        assert_ne!(other.digest(), block.digest());
        let mut later = sample(vec![vec![1, 2, 3], vec![4; 300]]);
        later.timestamp_ms += 1;
        let later = OrderedBlock::new(
            later.context.clone(),
            later.parent,
            later.height,
            later.timestamp_ms,
            later.exec,
            later.transactions.clone(),
        );
        assert_ne!(later.digest(), block.digest());
    }

    #[test]
    fn malformed_and_oversized_blocks_are_refused_without_panicking() {
        let block = sample(vec![vec![1; 100], vec![2; 100], vec![3; 100]]);
        let bytes = block.encode().to_vec();
        // Every truncation fails cleanly.
        for cut in 0..bytes.len() {
            assert!(
                OrderedBlock::decode_cfg(
                    bytes::Bytes::copy_from_slice(&bytes[..cut]),
                    &BlockLimits::DEFAULT
                )
                .is_err()
            );
        }
        // Trailing bytes are refused (one encoding per block).
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            OrderedBlock::decode_cfg(bytes::Bytes::from(longer.clone()), &BlockLimits::DEFAULT)
                .is_err()
        );
        // Another version.
        let mut version = bytes.clone();
        version[0] = 2;
        assert!(
            OrderedBlock::decode_cfg(bytes::Bytes::from(version.clone()), &BlockLimits::DEFAULT)
                .is_err()
        );
        let few = BlockLimits {
            max_transactions: 2,
            ..BlockLimits::DEFAULT
        };
        assert!(matches!(
            OrderedBlock::decode_cfg(bytes::Bytes::from(bytes.clone()), &few),
            Err(CodecError::InvalidLength(3))
        ));
        let small = BlockLimits {
            max_transaction_bytes: 99,
            ..BlockLimits::DEFAULT
        };
        assert!(OrderedBlock::decode_cfg(bytes::Bytes::from(bytes.clone()), &small).is_err());
        let tight = BlockLimits {
            max_block_bytes: 250,
            ..BlockLimits::DEFAULT
        };
        assert!(OrderedBlock::decode_cfg(bytes::Bytes::from(bytes.clone()), &tight).is_err());
        // A count far beyond the buffer allocates nothing and fails.
        let huge = BlockLimits {
            max_transactions: u32::MAX,
            max_transaction_bytes: u32::MAX,
            max_block_bytes: u32::MAX,
        };
        let mut lying = sample(Vec::new()).encode().to_vec();
        lying.pop();
        UInt(u32::MAX).write(&mut lying);
        assert!(OrderedBlock::decode_cfg(bytes::Bytes::from(lying.clone()), &huge).is_err());
        assert!(
            OrderedBlock::max_encode_size(&BlockLimits::DEFAULT) >= block.encode_size(),
            "the bound covers a real block"
        );
    }
}
