//! Ethereum JSON-RPC wire formats: quantities, data, block tags and log filters, parsed with
//! errors that name the parameter. Shapes follow the Ethereum execution API that ethers v6
//! speaks: quantities are `0x`-prefixed hex without leading zeros, data is `0x`-prefixed hex.

use crate::rpc::RpcError;
use serde_json::Value;

/// Most blocks one `eth_getLogs` query may span.
pub const MAX_LOG_BLOCK_RANGE: u64 = 10_000;

/// `0x`-hex quantity: `0x0`, `0x1a`.
pub fn quantity(value: u128) -> Value {
    Value::String(format!("{value:#x}"))
}

/// `0x`-hex data.
pub fn data(bytes: &[u8]) -> Value {
    Value::String(format!("0x{}", hex::encode(bytes)))
}

/// Parses a quantity parameter (`"0x1a"`); decimal numbers are refused, as Ethereum nodes do.
pub fn parse_quantity(value: &Value, name: &str) -> Result<u128, RpcError> {
    let text = value.as_str().ok_or_else(|| {
        RpcError::invalid_params(
            "invalid_params",
            format!("{name} must be a 0x-hex quantity string"),
        )
    })?;
    let digits = text.strip_prefix("0x").ok_or_else(|| {
        RpcError::invalid_params(
            "invalid_params",
            format!("{name} must start with 0x, got {text:?}"),
        )
    })?;
    if digits.is_empty() || digits.len() > 32 || (digits.len() > 1 && digits.starts_with('0')) {
        return Err(RpcError::invalid_params(
            "invalid_params",
            format!(
                "{name} is not a valid quantity: {text:?} (no leading zeros, at most 128 bits)"
            ),
        ));
    }
    u128::from_str_radix(digits, 16).map_err(|_| {
        RpcError::invalid_params("invalid_params", format!("{name} is not hex: {text:?}"))
    })
}

/// Parses `0x`-hex data of any length (`max_bytes` bounds it).
pub fn parse_data(value: &Value, name: &str, max_bytes: usize) -> Result<Vec<u8>, RpcError> {
    let text = value.as_str().ok_or_else(|| {
        RpcError::invalid_params("invalid_params", format!("{name} must be 0x-hex data"))
    })?;
    let digits = text.strip_prefix("0x").ok_or_else(|| {
        RpcError::invalid_params("invalid_params", format!("{name} must start with 0x"))
    })?;
    if digits.len() > max_bytes * 2 {
        return Err(RpcError::invalid_params(
            "data_too_large",
            format!(
                "{name} is {} bytes, the limit is {max_bytes}",
                digits.len() / 2
            ),
        ));
    }
    hex::decode(digits).map_err(|error| {
        RpcError::invalid_params("invalid_params", format!("{name} is not hex: {error}"))
    })
}

/// A block named by number or by tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockTag {
    Number(u64),
    Earliest,
    Latest,
    Safe,
    Finalized,
    Pending,
}

impl BlockTag {
    pub fn parse(value: &Value, name: &str) -> Result<BlockTag, RpcError> {
        match value.as_str() {
            Some("earliest") => Ok(BlockTag::Earliest),
            Some("latest") => Ok(BlockTag::Latest),
            Some("safe") => Ok(BlockTag::Safe),
            Some("finalized") => Ok(BlockTag::Finalized),
            Some("pending") => Ok(BlockTag::Pending),
            _ => {
                let number = parse_quantity(value, name)?;
                u64::try_from(number).map(BlockTag::Number).map_err(|_| {
                    RpcError::invalid_params("invalid_params", format!("{name} is past any block"))
                })
            }
        }
    }

    /// The block number this tag means on a chain whose head is `head` and whose latest final
    /// block is `finalized`. `pending` reads as the head: blocks are sealed at once.
    pub fn resolve(self, head: u64, finalized: u64) -> u64 {
        match self {
            BlockTag::Number(number) => number,
            BlockTag::Earliest => 0,
            BlockTag::Latest | BlockTag::Pending => head,
            BlockTag::Safe | BlockTag::Finalized => finalized,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_round_trip_and_refuse_what_ethereum_refuses() {
        assert_eq!(quantity(0), json!("0x0"));
        assert_eq!(quantity(26), json!("0x1a"));
        assert_eq!(parse_quantity(&json!("0x1a"), "n").expect("valid"), 26);
        for bad in [
            json!("1a"),
            json!("0x"),
            json!("0x01"),
            json!(26),
            json!("0xzz"),
        ] {
            assert!(parse_quantity(&bad, "n").is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn data_is_bounded() {
        assert_eq!(
            parse_data(&json!("0x0102"), "d", 2).expect("valid"),
            vec![1, 2]
        );
        assert_eq!(
            parse_data(&json!("0x010203"), "d", 2).err().map(|e| e.kind),
            Some("data_too_large")
        );
        assert!(parse_data(&json!("0x0"), "d", 2).is_err());
        assert_eq!(data(&[0xab]), json!("0xab"));
    }

    #[test]
    fn block_tags_resolve() {
        let tag = |value: Value| {
            BlockTag::parse(&value, "block")
                .expect("valid")
                .resolve(9, 8)
        };
        assert_eq!(tag(json!("latest")), 9);
        assert_eq!(tag(json!("pending")), 9);
        assert_eq!(tag(json!("finalized")), 8);
        assert_eq!(tag(json!("safe")), 8);
        assert_eq!(tag(json!("earliest")), 0);
        assert_eq!(tag(json!("0x5")), 5);
        assert!(BlockTag::parse(&json!("soon"), "block").is_err());
    }
}
