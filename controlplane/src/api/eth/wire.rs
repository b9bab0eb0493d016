//! Ethereum JSON-RPC parameters as the facade reads them: quantities and data (the `client`
//! crate's one reading of the format, its errors mapped to the node's error kinds) and block
//! tags, each error naming the parameter.

use crate::rpc::RpcError;
use serde_json::Value;

/// Most blocks one `eth_getLogs` query may span.
pub const MAX_LOG_BLOCK_RANGE: u64 = 10_000;

pub use client::wire::{data, quantity};

/// A parameter's wire error as the client hears it: a parameter too long is `data_too_large`,
/// anything else `invalid_params`.
fn refused(error: client::wire::WireError) -> RpcError {
    let kind = match error {
        client::wire::WireError::TooLarge { .. } => "data_too_large",
        _ => "invalid_params",
    };
    RpcError::invalid_params(kind, error.to_string())
}

/// Parses a quantity parameter (`"0x1a"`); decimal numbers are refused, as Ethereum nodes do.
pub fn parse_quantity(value: &Value, name: &str) -> Result<u128, RpcError> {
    client::wire::parse_quantity(value, name).map_err(refused)
}

/// Parses `0x`-hex data of any length (`max_bytes` bounds it).
pub fn parse_data(value: &Value, name: &str, max_bytes: usize) -> Result<Vec<u8>, RpcError> {
    client::wire::parse_data(value, name, max_bytes).map_err(refused)
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
    fn parameters_are_refused_with_the_kind_a_client_reads() {
        assert_eq!(parse_quantity(&json!("0x1a"), "n").expect("valid"), 26);
        assert_eq!(
            parse_quantity(&json!("0x01"), "n").err().map(|e| e.kind),
            Some("invalid_params")
        );
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
