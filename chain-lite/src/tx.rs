//! Signed Ethereum transactions: decoding `eth_sendRawTransaction` payloads, sender recovery
//! and the checks that need no state (size, type, chain id, signature, calldata).
//!
//! Blocks keep the raw signed bytes, not a re-encoding: the hash is keccak of those bytes
//! (what every Ethereum tool computes), and replay decodes them again with the same code.
//! Accepted: legacy with an EIP-155 chain id, EIP-2930 (type 1) and EIP-1559 (type 2).
//! Refused: pre-155 legacy (replayable on any chain), blob and EIP-7702 types, and contract
//! creation (there is no EVM).

use crate::submission::Address;
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Eip2718Error};
use alloy_primitives::U256;
use merkle::keccak::keccak256;
use types::H256;

/// Gas every transaction pays before it does anything (Ethereum's).
pub const TX_BASE_GAS: u64 = 21_000;
/// Calldata gas per zero byte and per non-zero byte (Ethereum's, EIP-2028).
pub const CALLDATA_ZERO_BYTE_GAS: u64 = 4;
pub const CALLDATA_NONZERO_BYTE_GAS: u64 = 16;
/// Access-list gas per address and per storage key (EIP-2930): charged although chain-lite has
/// no storage to warm, so gas matches what wallets estimate for the same bytes.
pub const ACCESS_LIST_ADDRESS_GAS: u64 = 2_400;
pub const ACCESS_LIST_STORAGE_KEY_GAS: u64 = 1_900;
/// Raw bytes a transaction may have beyond its calldata (signature, fields, access list).
pub const RAW_OVERHEAD_BYTES: usize = 16 * 1024;

/// Why a signed transaction was refused. Nothing changes on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction is {bytes} bytes; at most {max} are accepted")]
    TooLarge { bytes: usize, max: usize },
    #[error("malformed transaction: {reason}")]
    Malformed { reason: String },
    #[error("transaction type {tx_type} is not supported (legacy, 1 and 2 are)")]
    UnsupportedType { tx_type: u8 },
    #[error("legacy transaction without an EIP-155 chain id: it could be replayed on any chain")]
    Unprotected,
    #[error("wrong chain id: this chain is {expected}, the transaction is for {got}")]
    WrongChainId { expected: u64, got: u64 },
    #[error("invalid signature: {reason}")]
    BadSignature { reason: String },
    #[error("contract creation is not supported: chain-lite has no EVM")]
    ContractCreation,
    #[error("calldata is {bytes} bytes; at most {max} are accepted")]
    CalldataTooLarge { bytes: usize, max: usize },
    #[error("already known: transaction {hash} was executed before")]
    AlreadyKnown { hash: H256 },
    #[error("nonce too low: expected {expected}, got {got}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error("nonce too high: expected {expected}, got {got}; gaps are refused, not queued")]
    NonceTooHigh { expected: u64, got: u64 },
    #[error("gas price too low: offered at most {offered} wei, the chain's price is {required}")]
    GasPriceTooLow { offered: u128, required: u128 },
    #[error("intrinsic gas too low: gas limit {gas_limit}, at least {required} needed")]
    IntrinsicGasTooLow { gas_limit: u64, required: u64 },
    #[error(
        "insufficient funds: 0x{} has {balance} wei, value plus gas limit × price is {required}",
        hex::encode(address)
    )]
    InsufficientFunds {
        address: Address,
        balance: U256,
        required: U256,
    },
    #[error("malformed calldata: {reason}")]
    MalformedCalldata { reason: String },
    #[error("the pending block already holds {max} transactions")]
    BlockFull { max: usize },
}

/// A decoded, signature-checked transaction and the facts execution needs from it.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedTransaction {
    /// keccak256 of the raw bytes: the Ethereum transaction hash.
    pub hash: H256,
    pub from: Address,
    pub to: Address,
    pub nonce: u64,
    pub value: U256,
    pub input: Vec<u8>,
    pub gas_limit: u64,
    /// What the sender pays per gas at `base_fee` (legacy and type 1: the gas price; type 2:
    /// base fee plus the tip, capped by the max fee).
    pub effective_gas_price: u128,
    /// Gas before execution: base, calldata and access list.
    pub intrinsic_gas: u64,
    /// The decoded envelope, for the facade's `eth_getTransactionByHash` (v, r, s, fields).
    pub envelope: TxEnvelope,
}

/// Decodes and checks a raw signed transaction against `chain_id`, the chain's fixed gas
/// price `base_fee` and the calldata limit. Stateless: nonce, balance and replay are the
/// chain's checks.
pub fn decode_transaction(
    raw: &[u8],
    chain_id: u64,
    base_fee: u128,
    max_calldata_bytes: usize,
) -> Result<SignedTransaction, TxError> {
    // Bound the work before decoding: a payload past this cannot pass the calldata limit.
    let max_raw = max_calldata_bytes.saturating_add(RAW_OVERHEAD_BYTES);
    if raw.len() > max_raw {
        return Err(TxError::TooLarge {
            bytes: raw.len(),
            max: max_raw,
        });
    }
    let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|error| match error {
        // alloy reports some broken legacy and typed bodies as an unexpected type: only a
        // type byte we do not know (not a list, not 0..=2) is really an unsupported type.
        Eip2718Error::UnexpectedType(tx_type)
            if tx_type > 2 && raw.first().is_some_and(|first| *first < 0xc0) =>
        {
            TxError::UnsupportedType { tx_type }
        }
        other => TxError::Malformed {
            reason: other.to_string(),
        },
    })?;
    match &envelope {
        TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_) => {}
        other => {
            return Err(TxError::UnsupportedType {
                tx_type: other.tx_type() as u8,
            });
        }
    }
    let got = envelope.chain_id().ok_or(TxError::Unprotected)?;
    if got != chain_id {
        return Err(TxError::WrongChainId {
            expected: chain_id,
            got,
        });
    }
    let from = recover_sender(&envelope)?;
    let to = envelope.to().ok_or(TxError::ContractCreation)?;
    let input = envelope.input().to_vec();
    if input.len() > max_calldata_bytes {
        return Err(TxError::CalldataTooLarge {
            bytes: input.len(),
            max: max_calldata_bytes,
        });
    }
    // The most the sender agreed to pay per gas; below the chain's price it cannot be included.
    let offered = envelope.max_fee_per_gas();
    if offered < base_fee {
        return Err(TxError::GasPriceTooLow {
            offered,
            required: base_fee,
        });
    }
    let effective_gas_price = match &envelope {
        TxEnvelope::Eip1559(signed) => {
            let tx = signed.tx();
            base_fee.saturating_add(
                tx.max_priority_fee_per_gas
                    .min(tx.max_fee_per_gas.saturating_sub(base_fee)),
            )
        }
        _ => offered,
    };
    let mut intrinsic_gas = TX_BASE_GAS.saturating_add(calldata_gas(&input));
    if let Some(list) = envelope.access_list() {
        for item in list.iter() {
            intrinsic_gas = intrinsic_gas
                .saturating_add(ACCESS_LIST_ADDRESS_GAS)
                .saturating_add(
                    ACCESS_LIST_STORAGE_KEY_GAS.saturating_mul(item.storage_keys.len() as u64),
                );
        }
    }
    Ok(SignedTransaction {
        hash: keccak256(raw),
        from,
        to: to.into_array(),
        nonce: envelope.nonce(),
        value: envelope.value(),
        input,
        gas_limit: envelope.gas_limit(),
        effective_gas_price,
        intrinsic_gas,
        envelope,
    })
}

/// Ethereum's calldata gas: 4 per zero byte, 16 per other byte.
pub fn calldata_gas(data: &[u8]) -> u64 {
    data.iter()
        .map(|byte| {
            if *byte == 0 {
                CALLDATA_ZERO_BYTE_GAS
            } else {
                CALLDATA_NONZERO_BYTE_GAS
            }
        })
        .sum()
}

/// secp256k1's group order halved: EIP-2 refuses signatures with a larger `s` (malleable).
const HALF_ORDER: U256 = U256::from_be_bytes([
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// The sender: public-key recovery with libsecp256k1, then keccak of the key. Recovery is the
/// most expensive step of a transaction (several times the rest together), and libsecp256k1
/// recovers a few times faster than the pure-Rust curve, which sets the chain's throughput.
fn recover_sender(envelope: &TxEnvelope) -> Result<Address, TxError> {
    let bad = |reason: &str| TxError::BadSignature {
        reason: reason.to_string(),
    };
    let signature = envelope.signature();
    if signature.s() > HALF_ORDER {
        return Err(bad("s is in the upper half of the curve order (EIP-2)"));
    }
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&signature.s().to_be_bytes::<32>());
    let recovery_id = secp256k1::ecdsa::RecoveryId::try_from(i32::from(signature.v()))
        .map_err(|_| bad("invalid recovery id"))?;
    let recoverable = secp256k1::ecdsa::RecoverableSignature::from_compact(&compact, recovery_id)
        .map_err(|error| bad(&error.to_string()))?;
    let message = secp256k1::Message::from_digest(envelope.signature_hash().0);
    let key = secp256k1::SECP256K1
        .recover_ecdsa(&message, &recoverable)
        .map_err(|error| bad(&error.to_string()))?;
    let digest = keccak256(&key.serialize_uncompressed()[1..]);
    Ok(digest.0[12..]
        .try_into()
        .expect("a keccak digest has 32 bytes"))
}
