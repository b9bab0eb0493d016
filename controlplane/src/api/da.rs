//! The `da_*` methods: `da_putBlob` (dispersal, on nodes that disperse), `da_storeShards` and
//! `da_getShards` (the DA-node role), `da_status`.

use crate::da_node::{disperse, role};
use crate::node::Node;
use crate::rpc::{Params, RpcError};
use client::wire::hex_data;
use da::blob::DaParams;
use da::commit::BlobId;
use serde_json::{Value, json};
use types::H256;

pub async fn dispatch(node: &Node, method: &str, mut params: Params) -> Result<Value, RpcError> {
    match method {
        "da_putBlob" => {
            params.at_most(2)?;
            let payload: String = params.required(0, "payload")?;
            let options: Option<Value> = params.optional(1, "options")?;
            let payload = base64_simd::STANDARD
                .decode_to_vec(payload.as_bytes())
                .map_err(|_| bad("bad_payload", "payload is not standard base64"))?;
            let (params, kzg) = put_options(options.as_ref())?;
            disperse::disperse(node, params, payload, kzg).await
        }
        "da_storeShards" => {
            params.at_most(1)?;
            let request: Value = params.required(0, "request")?;
            role::store_shards(node, &request).await
        }
        "da_getShards" => {
            params.at_most(2)?;
            let blob: H256 = params.required(0, "blobId")?;
            let indices: Vec<u32> = params.required(1, "indices")?;
            role::get_shards(node, BlobId(blob.0), &indices).await
        }
        "da_status" => {
            params.at_most(0)?;
            let role = node.da.role()?;
            Ok(json!({
                "signer": hex_data(&role.address),
                "publicKey": hex_data(&role.public_key().to_bytes()),
                "retentionSecs": role.retention.as_secs(),
            }))
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

/// `da_putBlob`'s options: `{dataShards, recoveryShards, kzg}`, each optional.
fn put_options(options: Option<&Value>) -> Result<(DaParams, bool), RpcError> {
    let shards_option = |name: &str, default: usize| -> Result<usize, RpcError> {
        match options.and_then(|options| options.get(name)) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| bad("bad_params", format!("{name} must be a number"))),
        }
    };
    let params = DaParams::new(
        shards_option("dataShards", da::blob::DEFAULT_DATA_SHARDS)?,
        shards_option("recoveryShards", da::blob::DEFAULT_RECOVERY_SHARDS)?,
    )
    .map_err(|error| bad("bad_params", error))?;
    let kzg = match options.and_then(|options| options.get("kzg")) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(kzg)) => *kzg,
        Some(_) => return Err(bad("bad_params", "kzg must be true or false")),
    };
    Ok((params, kzg))
}

fn bad(kind: &'static str, error: impl std::fmt::Display) -> RpcError {
    RpcError::invalid_params(kind, error.to_string())
}
