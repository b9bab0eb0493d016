//! A blocking JSON-RPC client for tests: every method panics, naming the method and the answer,
//! when the node does not answer as asked. Benchmarks keep their own async client.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long one request may take (a whole batch of segments on a slow disk).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Rpc::wait_indexed`] waits for a transaction.
const INDEX_TIMEOUT: Duration = Duration::from_secs(30);

/// A node's JSON-RPC endpoint (and its `/metrics` beside it).
pub struct Rpc {
    http: reqwest::blocking::Client,
    url: String,
}

impl Rpc {
    /// A client for the endpoint at `url` (`http://127.0.0.1:PORT`).
    ///
    /// # Panics
    /// When the HTTP client cannot be built.
    pub fn new(url: &str) -> Rpc {
        let http = reqwest::blocking::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("an HTTP client");
        Rpc {
            http,
            url: url.to_string(),
        }
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The whole JSON-RPC answer (result or error).
    pub fn raw(&self, method: &str, params: Value) -> Value {
        self.post(
            json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
                .to_string()
                .into_bytes(),
        )
    }

    /// The whole JSON-RPC answer, or why none came (the node is gone, the answer is not
    /// JSON): for a client that outlives the node it talks to.
    pub fn try_raw(&self, method: &str, params: Value) -> Result<Value, String> {
        self.http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(
                json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
                    .to_string(),
            )
            .send()
            .and_then(reqwest::blocking::Response::json)
            .map_err(|error| format!("the node at {} did not answer: {error}", self.url))
    }

    /// Posts `body` as it is and returns the JSON answer.
    ///
    /// # Panics
    /// When the node does not answer or the answer is not JSON.
    pub fn post(&self, body: Vec<u8>) -> Value {
        self.http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap_or_else(|error| panic!("the node at {} does not answer: {error}", self.url))
            .json()
            .unwrap_or_else(|error| panic!("the node at {} answered no JSON: {error}", self.url))
    }

    /// The call's result.
    ///
    /// # Panics
    /// When the node answers with an error.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let answer = self.raw(method, params);
        if let Some(error) = answer.get("error") {
            panic!("{method} failed: {error}");
        }
        answer["result"].clone()
    }

    /// The error's `data.kind` (or `already_finalized` for 0G's bare string).
    ///
    /// # Panics
    /// When the call succeeds or its error has no kind.
    pub fn error_kind(&self, method: &str, params: Value) -> String {
        let answer = self.raw(method, params);
        let error = answer
            .get("error")
            .unwrap_or_else(|| panic!("{method} should fail: {answer}"));
        match &error["data"] {
            Value::String(text) if text == "already uploaded and finalized" => {
                "already_finalized".to_string()
            }
            data => data["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("error without kind: {error}"))
                .to_string(),
        }
    }

    /// The node's Prometheus text.
    ///
    /// # Panics
    /// When `/metrics` does not answer.
    pub fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .and_then(reqwest::blocking::Response::text)
            .unwrap_or_else(|error| panic!("{}/metrics does not answer: {error}", self.url))
    }

    /// One sample of the metrics: `name` is the metric with its labels, as printed.
    ///
    /// # Panics
    /// When the sample is missing or not a number.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.metrics();
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .map(|value| {
                value
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("metric {name} is not a number: {value}"))
            })
            .unwrap_or_else(|| panic!("metric {name} missing:\n{text}"))
    }

    /// Waits until the node knows tx `tx_seq` and returns its file info.
    ///
    /// # Panics
    /// When it does not within 30 s.
    pub fn wait_indexed(&self, tx_seq: u64) -> Value {
        let started = Instant::now();
        loop {
            let info = self.call("zgs_getFileInfoByTxSeq", json!([tx_seq]));
            if !info.is_null() {
                return info;
            }
            assert!(
                started.elapsed() < INDEX_TIMEOUT,
                "tx {tx_seq} never indexed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
