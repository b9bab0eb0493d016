//! Serde helpers: byte strings as `0x`-prefixed hex, as Ethereum JSON shows them.

use serde::{Deserialize, Deserializer, Serializer};

fn decode(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits).map_err(|error| format!("invalid hex: {error}"))
}

pub mod bytes {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        decode(&text).map_err(serde::de::Error::custom)
    }
}

pub mod address {
    use super::*;

    pub fn serialize<S: Serializer>(address: &[u8; 20], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(address)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 20], D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = decode(&text).map_err(serde::de::Error::custom)?;
        <[u8; 20]>::try_from(bytes.as_slice()).map_err(|_| {
            serde::de::Error::custom(format!("an address is 20 bytes, found {}", bytes.len()))
        })
    }
}

/// `U256` as a `0x`-prefixed hex quantity (Ethereum's JSON form for balances).
pub mod u256 {
    use super::*;
    use alloy_primitives::U256;

    pub fn serialize<S: Serializer>(value: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:#x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = text.strip_prefix("0x").unwrap_or(&text);
        U256::from_str_radix(digits, 16)
            .map_err(|error| serde::de::Error::custom(format!("invalid quantity: {error}")))
    }
}
