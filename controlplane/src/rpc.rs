//! JSON-RPC 2.0 envelopes and the error vocabulary of the node's API.
//!
//! The envelope handling is ours (single and batch requests, notifications); method dispatch lives
//! in `api.rs`. Every error a client can cause maps to one `RpcError` with a code, a message that
//! says what is wrong, and a machine-readable `data.kind`, so scripts and the CLI can tell a
//! duplicate segment from a bad proof without parsing prose.

use serde::Serialize;
use serde_json::{Value, json};

/// JSON-RPC 2.0 standard codes.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Server-defined: the node is temporarily unable to take more (rings full, shutting down).
pub const BUSY: i64 = -32001;
/// Server-defined: the node has no room for the data (its disk or its cap is full); nothing
/// was written, and reads go on.
pub const STORAGE_FULL: i64 = -32002;

/// Most requests in one JSON-RPC batch.
pub const MAX_BATCH_REQUESTS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    /// Stable machine-readable kind, also the `kind` label of the error metric.
    pub kind: &'static str,
    /// Overrides `data` entirely where 0G clients match on a bare string.
    pub data_override: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, kind: &'static str, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            kind,
            data_override: None,
        }
    }

    pub fn invalid_params(kind: &'static str, message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, kind, message)
    }

    /// JSON-RPC's "method not found", naming the method.
    pub fn method_not_found(method: &str) -> RpcError {
        RpcError::new(
            METHOD_NOT_FOUND,
            "method_not_found",
            format!("Method not found: {method}"),
        )
    }

    pub fn internal(message: impl Into<String>) -> RpcError {
        RpcError::new(INTERNAL_ERROR, "internal", message)
    }

    /// The error 0G nodes return for a file that is complete; the official SDK treats it as
    /// success when it sees `data == "already uploaded and finalized"`.
    pub fn already_finalized() -> RpcError {
        RpcError {
            code: INVALID_PARAMS,
            message: "Invalid params: already uploaded and finalized".to_string(),
            kind: "already_finalized",
            data_override: Some(Value::String("already uploaded and finalized".to_string())),
        }
    }

    fn to_json(&self) -> Value {
        let data = self
            .data_override
            .clone()
            .unwrap_or_else(|| json!({ "kind": self.kind }));
        json!({ "code": self.code, "message": self.message, "data": data })
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

/// One parsed call: method, params and the id to answer with (`None` for a notification).
#[derive(Debug)]
pub struct Call {
    pub id: Option<Value>,
    pub method: String,
    pub params: Value,
}

/// The body of an HTTP request, classified.
pub enum Incoming {
    Single(Result<Call, (Value, RpcError)>),
    Batch(Vec<Result<Call, (Value, RpcError)>>),
}

/// Parses a request body; a body that is not JSON at all is answered with one parse error.
pub fn parse_body(body: &[u8]) -> Result<Incoming, RpcError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        RpcError::new(PARSE_ERROR, "parse_error", format!("Parse error: {error}"))
    })?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(RpcError::new(
                    INVALID_REQUEST,
                    "invalid_request",
                    "empty batch",
                ));
            }
            if items.len() > MAX_BATCH_REQUESTS {
                return Err(RpcError::new(
                    INVALID_REQUEST,
                    "batch_too_large",
                    format!(
                        "batch of {} requests exceeds the limit of {MAX_BATCH_REQUESTS}",
                        items.len()
                    ),
                ));
            }
            Ok(Incoming::Batch(items.into_iter().map(parse_call).collect()))
        }
        other => Ok(Incoming::Single(parse_call(other))),
    }
}

fn parse_call(value: Value) -> Result<Call, (Value, RpcError)> {
    let Value::Object(mut object) = value else {
        return Err((
            Value::Null,
            RpcError::new(
                INVALID_REQUEST,
                "invalid_request",
                "request must be a JSON object",
            ),
        ));
    };
    let id = object.remove("id");
    let answer_id = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((
            answer_id,
            RpcError::new(
                INVALID_REQUEST,
                "invalid_request",
                "\"jsonrpc\" must be \"2.0\"",
            ),
        ));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        _ => {
            return Err((
                answer_id,
                RpcError::new(
                    INVALID_REQUEST,
                    "invalid_request",
                    "\"method\" must be a string",
                ),
            ));
        }
    };
    let params = object.remove("params").unwrap_or(Value::Array(Vec::new()));
    if !matches!(params, Value::Array(_) | Value::Object(_)) {
        return Err((
            answer_id,
            RpcError::invalid_params("invalid_params", "\"params\" must be an array or object"),
        ));
    }
    Ok(Call { id, method, params })
}

/// A success answer around `result`, which is JSON text already.
pub fn success(id: &Value, result: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)
}

pub fn failure(id: Value, error: &RpcError) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() }).to_string()
}

/// Positional parameters with typed extraction and errors that name the parameter.
pub struct Params {
    values: Vec<Value>,
    method: String,
}

impl Params {
    pub fn new(method: &str, params: Value) -> Result<Params, RpcError> {
        match params {
            Value::Array(values) => Ok(Params {
                values,
                method: method.to_string(),
            }),
            Value::Object(_) => Err(RpcError::invalid_params(
                "invalid_params",
                format!("{method} takes positional parameters (an array)"),
            )),
            _ => Ok(Params {
                values: Vec::new(),
                method: method.to_string(),
            }),
        }
    }

    /// Parameter `index` (named `name` in errors), required.
    pub fn required<T: serde::de::DeserializeOwned>(
        &mut self,
        index: usize,
        name: &str,
    ) -> Result<T, RpcError> {
        match self.values.get_mut(index).map(std::mem::take) {
            None | Some(Value::Null) => Err(RpcError::invalid_params(
                "missing_param",
                format!("{}: missing parameter {index} ({name})", self.method),
            )),
            Some(value) => self.decode(value, index, name),
        }
    }

    /// Parameter `index`, optional (absent or null gives `None`).
    pub fn optional<T: serde::de::DeserializeOwned>(
        &mut self,
        index: usize,
        name: &str,
    ) -> Result<Option<T>, RpcError> {
        match self.values.get_mut(index).map(std::mem::take) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => self.decode(value, index, name).map(Some),
        }
    }

    pub fn at_most(&self, count: usize) -> Result<(), RpcError> {
        if self.values.len() > count {
            return Err(RpcError::invalid_params(
                "invalid_params",
                format!(
                    "{} takes at most {count} parameters, got {}",
                    self.method,
                    self.values.len()
                ),
            ));
        }
        Ok(())
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        value: Value,
        index: usize,
        name: &str,
    ) -> Result<T, RpcError> {
        T::deserialize(value).map_err(|error| {
            RpcError::invalid_params(
                "invalid_params",
                format!(
                    "{}: parameter {index} ({name}) is invalid: {error}",
                    self.method
                ),
            )
        })
    }
}

/// Serializes a handler's result.
pub fn to_value<T: Serialize>(value: T) -> Result<Value, RpcError> {
    serde_json::to_value(value)
        .map_err(|error| RpcError::internal(format!("could not encode result: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_json_and_bad_envelopes() {
        assert_eq!(
            parse_body(b"{nope").err().map(|e| e.code),
            Some(PARSE_ERROR)
        );
        assert_eq!(
            parse_body(b"[]").err().map(|e| e.code),
            Some(INVALID_REQUEST)
        );
        let Ok(Incoming::Single(Err((_, error)))) =
            parse_body(br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#)
        else {
            panic!("a wrong version must be an invalid request");
        };
        assert_eq!(error.code, INVALID_REQUEST);
        let Ok(Incoming::Single(Err((id, error)))) =
            parse_body(br#"{"jsonrpc":"2.0","id":7,"method":"x","params":3}"#)
        else {
            panic!("scalar params must be rejected");
        };
        assert_eq!((id, error.code), (json!(7), INVALID_PARAMS));
    }

    #[test]
    fn parses_batches_within_the_limit() {
        let one = r#"{"jsonrpc":"2.0","id":1,"method":"zgs_getStatus"}"#;
        let body = format!("[{}]", vec![one; MAX_BATCH_REQUESTS].join(","));
        assert!(
            matches!(parse_body(body.as_bytes()), Ok(Incoming::Batch(calls)) if calls.len() == MAX_BATCH_REQUESTS)
        );
        let body = format!("[{}]", vec![one; MAX_BATCH_REQUESTS + 1].join(","));
        assert_eq!(
            parse_body(body.as_bytes()).err().map(|e| e.kind),
            Some("batch_too_large")
        );
    }

    #[test]
    fn params_name_what_is_wrong() {
        let mut params = Params::new("zgs_getFileInfo", json!(["0x12"])).expect("array params");
        let error = params
            .required::<types::H256>(0, "root")
            .expect_err("short hash");
        assert!(
            error.message.contains("parameter 0 (root)"),
            "{}",
            error.message
        );
        let error = params.required::<u64>(1, "txSeq").expect_err("missing");
        assert_eq!(error.kind, "missing_param");
    }

    #[test]
    fn finalized_error_matches_what_the_sdk_looks_for() {
        let value: Value =
            serde_json::from_str(&failure(json!(1), &RpcError::already_finalized())).expect("JSON");
        assert_eq!(
            value["error"]["data"],
            json!("already uploaded and finalized")
        );
        assert!(
            value["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Invalid params"))
        );
    }
}
