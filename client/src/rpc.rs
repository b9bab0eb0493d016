//! JSON-RPC 2.0 over HTTP to a zerog node or any Ethereum chain: one request per call, a time
//! limit per call and a cap on how much of an answer is read, so a slow or hostile peer can
//! neither hang its caller nor fill its memory.

use crate::error::{Error, NodeError};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Time allowed for one call to a node unless the caller sets another: the largest batch of
/// segments a node takes is answered in well under a second, so this only ends calls to a node
/// that has stopped answering.
pub const NODE_CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Time allowed for one call to a chain: reads and log queries.
pub const CHAIN_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read unless the caller sets another: a full page of logs or a batch of
/// segments fits.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A JSON-RPC endpoint. Cheap to clone (the HTTP connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: Arc<str>,
    /// What the endpoint is, for error messages: "node", "chain", "DA node".
    peer: &'static str,
    max_response_bytes: usize,
}

impl Client {
    /// A zerog (or 0G) node's storage API.
    pub fn new(url: &str) -> Result<Client, Error> {
        Client::build(url, "node", NODE_CALL_TIMEOUT)
    }

    /// An Ethereum chain's JSON-RPC (a zerog node's facade included).
    pub fn chain(url: &str) -> Result<Client, Error> {
        Client::build(url, "chain", CHAIN_CALL_TIMEOUT)
    }

    /// An endpoint named `peer` in errors whose calls may take up to `timeout` (DA nodes that
    /// store megabytes of shards in one call).
    pub fn build(url: &str, peer: &'static str, timeout: Duration) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|source| Error::HttpClient { source })?;
        Ok(Client {
            http,
            url: url.into(),
            peer,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// The same endpoint, reading at most `bytes` of any answer.
    pub fn with_response_limit(mut self, bytes: usize) -> Client {
        self.max_response_bytes = bytes;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        self.call_raw(method, params.to_string()).await
    }

    /// A call whose params are JSON text already (segments, whose base64 serde_json would
    /// escape byte by byte).
    pub async fn call_raw(&self, method: &str, params: String) -> Result<Value, Error> {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
        let mut response = self
            .http
            .post(&*self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|source| self.unreachable(source))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|source| self.unreachable(source))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(Error::AnswerTooLarge {
                    method: method.to_string(),
                    url: self.url.to_string(),
                    max_bytes: self.max_response_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let mut reply: Value = serde_json::from_slice(&body).map_err(|source| Error::NotJson {
            method: method.to_string(),
            status,
            detail: source.to_string(),
        })?;
        if let Some(error) = reply.get("error") {
            return Err(Error::Node(node_error(method, error)));
        }
        match reply.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(Error::NotJson {
                method: method.to_string(),
                status,
                detail: "the answer has neither result nor error".to_string(),
            }),
        }
    }

    fn unreachable(&self, source: reqwest::Error) -> Error {
        Error::Unreachable {
            peer: self.peer,
            url: self.url.to_string(),
            source,
        }
    }
}

/// A JSON-RPC error object as a typed error: its stable `data.kind` when the peer is a zerog
/// node (0G's bare "already uploaded and finalized" string included).
fn node_error(method: &str, error: &Value) -> NodeError {
    let kind = match error.get("data") {
        Some(Value::Object(data)) => data
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        Some(Value::String(data)) if data == "already uploaded and finalized" => {
            "already_finalized".to_string()
        }
        _ => String::new(),
    };
    NodeError {
        method: method.to_string(),
        code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("(no message)")
            .to_string(),
        kind,
    }
}
