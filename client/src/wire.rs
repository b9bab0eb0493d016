//! Ethereum JSON-RPC wire values, both ways: `0x`-hex quantities without leading zeros and
//! `0x`-hex data, as the Ethereum execution API defines them. The node's facade parses its
//! clients' parameters with these functions and every client parses the answers of a node or a
//! chain with them, so there is one reading of the format.

use serde_json::Value;
use types::H256;

/// Why a wire value was refused; `what` names the parameter or answer field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{what} must be a 0x-hex string, got {got}")]
    NotHexString { what: String, got: String },
    #[error(
        "{what} is not a valid quantity: {got} (0x-hex, no leading zeros, at most {bits} bits)"
    )]
    BadQuantity {
        what: String,
        got: String,
        bits: u32,
    },
    #[error("{what} is not hex: {got}")]
    NotHex { what: String, got: String },
    #[error("{what} is {bytes} bytes, the limit is {max_bytes}")]
    TooLarge {
        what: String,
        bytes: usize,
        max_bytes: usize,
    },
    #[error("{what} must be {expected} bytes, got {bytes}")]
    WrongLength {
        what: String,
        expected: usize,
        bytes: usize,
    },
}

/// `0x`-hex quantity: `0x0`, `0x1a`.
pub fn quantity(value: u128) -> Value {
    Value::String(format!("{value:#x}"))
}

/// `0x`-hex data.
pub fn data(bytes: &[u8]) -> Value {
    Value::String(hex_data(bytes))
}

/// `0x`-hex text of `bytes`.
pub fn hex_data(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn hex_digits<'a>(value: &'a Value, what: &str) -> Result<&'a str, WireError> {
    value
        .as_str()
        .and_then(|text| text.strip_prefix("0x"))
        .ok_or_else(|| WireError::NotHexString {
            what: what.to_string(),
            got: value.to_string(),
        })
}

/// A quantity (`"0x1a"`) of at most 128 bits; decimal numbers and leading zeros are refused,
/// as Ethereum nodes refuse them.
pub fn parse_quantity(value: &Value, what: &str) -> Result<u128, WireError> {
    let digits = hex_digits(value, what)?;
    let bad = || WireError::BadQuantity {
        what: what.to_string(),
        got: value.to_string(),
        bits: 128,
    };
    if digits.is_empty() || digits.len() > 32 || (digits.len() > 1 && digits.starts_with('0')) {
        return Err(bad());
    }
    u128::from_str_radix(digits, 16).map_err(|_| bad())
}

/// A quantity parameter that must fit 64 bits (block numbers, nonces, gas, chain ids).
pub fn parse_u64(value: &Value, what: &str) -> Result<u64, WireError> {
    narrow(parse_quantity(value, what)?, value, what)
}

/// A quantity in another node's or chain's answer: as [`parse_quantity`], but leading zeros
/// are read past (some providers write them), so a client is strict only where it must be.
pub fn read_quantity(value: &Value, what: &str) -> Result<u128, WireError> {
    let digits = hex_digits(value, what)?;
    let significant = digits.trim_start_matches('0');
    if digits.is_empty() || significant.len() > 32 {
        return Err(WireError::BadQuantity {
            what: what.to_string(),
            got: value.to_string(),
            bits: 128,
        });
    }
    if significant.is_empty() {
        return Ok(0);
    }
    u128::from_str_radix(significant, 16).map_err(|_| WireError::BadQuantity {
        what: what.to_string(),
        got: value.to_string(),
        bits: 128,
    })
}

/// A 64-bit quantity in an answer (see [`read_quantity`]).
pub fn read_u64(value: &Value, what: &str) -> Result<u64, WireError> {
    narrow(read_quantity(value, what)?, value, what)
}

fn narrow(wide: u128, value: &Value, what: &str) -> Result<u64, WireError> {
    u64::try_from(wide).map_err(|_| WireError::BadQuantity {
        what: what.to_string(),
        got: value.to_string(),
        bits: 64,
    })
}

/// `0x`-hex data of at most `max_bytes`.
pub fn parse_data(value: &Value, what: &str, max_bytes: usize) -> Result<Vec<u8>, WireError> {
    let digits = hex_digits(value, what)?;
    if digits.len() > max_bytes.saturating_mul(2) {
        return Err(WireError::TooLarge {
            what: what.to_string(),
            bytes: digits.len() / 2,
            max_bytes,
        });
    }
    hex::decode(digits).map_err(|error| WireError::NotHex {
        what: what.to_string(),
        got: error.to_string(),
    })
}

/// `0x`-hex data of exactly `N` bytes.
pub fn parse_fixed<const N: usize>(value: &Value, what: &str) -> Result<[u8; N], WireError> {
    let bytes = parse_data(value, what, N)?;
    let length = bytes.len();
    bytes.try_into().map_err(|_| WireError::WrongLength {
        what: what.to_string(),
        expected: N,
        bytes: length,
    })
}

/// A 32-byte hash.
pub fn parse_hash(value: &Value, what: &str) -> Result<H256, WireError> {
    parse_fixed::<32>(value, what).map(H256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_round_trip_and_refuse_what_ethereum_refuses() {
        assert_eq!(quantity(0), json!("0x0"));
        assert_eq!(quantity(26), json!("0x1a"));
        assert_eq!(parse_quantity(&json!("0x1a"), "n"), Ok(26));
        assert_eq!(parse_quantity(&json!("0x0"), "n"), Ok(0));
        for bad in [
            json!("1a"),
            json!("0x"),
            json!("0x01"),
            json!(26),
            json!("0xzz"),
            json!(format!("0x1{}", "0".repeat(32))),
        ] {
            assert!(parse_quantity(&bad, "n").is_err(), "{bad} must be refused");
        }
        assert_eq!(parse_u64(&json!("0xffffffffffffffff"), "n"), Ok(u64::MAX));
        // Answers are read past leading zeros, parameters are not.
        assert_eq!(read_quantity(&json!("0x001a"), "n"), Ok(26));
        assert_eq!(read_quantity(&json!("0x000"), "n"), Ok(0));
        assert_eq!(read_u64(&json!("0x01"), "n"), Ok(1));
        assert!(read_quantity(&json!("0x"), "n").is_err());
        assert!(read_quantity(&json!("1a"), "n").is_err());
        assert!(read_u64(&json!("0x10000000000000000"), "n").is_err());
        assert!(matches!(
            parse_u64(&json!("0x10000000000000000"), "n"),
            Err(WireError::BadQuantity { bits: 64, .. })
        ));
    }

    #[test]
    fn data_is_bounded_and_hashes_are_exact() {
        assert_eq!(parse_data(&json!("0x0102"), "d", 2), Ok(vec![1, 2]));
        assert!(matches!(
            parse_data(&json!("0x010203"), "d", 2),
            Err(WireError::TooLarge { bytes: 3, .. })
        ));
        assert!(parse_data(&json!("0x0"), "d", 2).is_err());
        assert!(parse_data(&json!("0102"), "d", 2).is_err());
        assert_eq!(data(&[0xab]), json!("0xab"));
        assert!(parse_hash(&json!("0x00"), "h").is_err());
        let hash = format!("0x{}", "ab".repeat(32));
        assert_eq!(parse_hash(&json!(hash), "h").map(|h| h.0), Ok([0xab; 32]));
    }
}
