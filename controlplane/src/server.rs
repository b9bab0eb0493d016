//! The HTTP server on the control-plane thread: JSON-RPC on `POST /`, Prometheus text on
//! `GET /metrics`. Connections are served by hyper on the current `LocalSet`, so handlers may
//! hold `Rc`s to the node and never cross threads.

use crate::api;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::rpc::{self, Incoming, RpcError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as Body;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::future::Future;
use std::rc::Rc;
use std::time::Instant;
use tokio::net::TcpListener;

/// Largest request body: a 32 MiB DA blob (`da_putBlob`) in base64 with JSON around it; a full
/// batch of segments is less.
pub const MAX_BODY_BYTES: usize = 48 * 1024 * 1024;
/// Past this many bytes of answers, the remaining calls of a batch are refused.
pub const MAX_BATCH_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// What the server serves: a storage node, or a validator (`zerog validator`).
pub trait Service: 'static {
    fn metrics(&self) -> &Metrics;
    /// The Prometheus text of `GET /metrics`.
    fn render_metrics(&self) -> impl Future<Output = String>;
    /// Runs one JSON-RPC call.
    fn dispatch(
        &self,
        method: &str,
        params: Value,
    ) -> impl Future<Output = Result<api::Reply, RpcError>>;
    /// Every method served, for the metric labels.
    fn methods(&self) -> &'static [&'static str];
}

impl Service for Node {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    async fn render_metrics(&self) -> String {
        self.refresh_shard_gauges().await;
        self.metrics.render()
    }

    async fn dispatch(&self, method: &str, params: Value) -> Result<api::Reply, RpcError> {
        api::dispatch(self, method, params).await
    }

    fn methods(&self) -> &'static [&'static str] {
        api::METHODS
    }
}

pub async fn serve<S: Service>(listener: TcpListener, node: Rc<S>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let node = node.clone();
        tokio::task::spawn_local(async move {
            let service = hyper::service::service_fn(move |request| {
                let node = node.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&*node, request).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

async fn handle<S: Service>(node: &S, request: Request<Body>) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            node.render_metrics().await.into(),
        ),
        (&Method::POST, "/") => {
            let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    let error = if error.is::<http_body_util::LengthLimitError>() {
                        RpcError::new(
                            rpc::INVALID_REQUEST,
                            "body_too_large",
                            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
                        )
                    } else {
                        RpcError::new(
                            rpc::INVALID_REQUEST,
                            "body_truncated",
                            format!("could not read body: {error}"),
                        )
                    };
                    node.metrics().error(error.kind);
                    // The rest of the body is never read, so the connection cannot carry
                    // another request: tell the client not to reuse it.
                    let mut response = json_reply(rpc::failure(Value::Null, &error));
                    response.headers_mut().insert(
                        hyper::header::CONNECTION,
                        hyper::header::HeaderValue::from_static("close"),
                    );
                    return response;
                }
            };
            json_reply(answer(node, &body).await)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "POST / for JSON-RPC, GET /metrics\n".into(),
        ),
    }
}

async fn answer<S: Service>(node: &S, body: &[u8]) -> String {
    match rpc::parse_body(body) {
        Err(error) => {
            node.metrics().error(error.kind);
            rpc::failure(Value::Null, &error)
        }
        // A notification gets no answer: an empty body.
        Ok(Incoming::Single(call)) => answer_one(node, call).await.unwrap_or_default(),
        Ok(Incoming::Batch(calls)) => {
            let mut answers = Vec::with_capacity(calls.len());
            let mut answered_bytes = 0usize;
            for call in calls {
                if answered_bytes > MAX_BATCH_RESPONSE_BYTES {
                    // A small request must not make a huge answer (a batch of shard or segment
                    // reads): the rest of the batch is refused, not executed.
                    let error = RpcError::new(
                        rpc::BUSY,
                        "response_too_large",
                        format!(
                            "the batch's answers passed {MAX_BATCH_RESPONSE_BYTES} bytes; send the rest again"
                        ),
                    );
                    node.metrics().error(error.kind);
                    match call {
                        // A notification gets no answer, refused or not.
                        Ok(rpc::Call { id: None, .. }) => {}
                        Ok(rpc::Call { id: Some(id), .. }) | Err((id, _)) => {
                            answers.push(rpc::failure(id, &error));
                        }
                    }
                    continue;
                }
                if let Some(answer) = answer_one(node, call).await {
                    answered_bytes += answer.len();
                    answers.push(answer);
                }
            }
            if answers.is_empty() {
                // A batch of notifications only: nothing to answer.
                String::new()
            } else {
                format!("[{}]", answers.join(","))
            }
        }
    }
}

/// The answer to one call, as JSON text; `None` for a notification (no id).
async fn answer_one<S: Service>(
    node: &S,
    call: Result<rpc::Call, (Value, RpcError)>,
) -> Option<String> {
    let call = match call {
        Ok(call) => call,
        Err((id, error)) => {
            node.metrics().error(error.kind);
            return Some(rpc::failure(id, &error));
        }
    };
    let started = Instant::now();
    let result = node.dispatch(&call.method, call.params).await;
    let method_label = node
        .methods()
        .iter()
        .find(|known| **known == call.method)
        .copied()
        .unwrap_or("unknown");
    node.metrics()
        .rpc_duration
        .get_or_create(&crate::metrics::MethodLabel {
            method: method_label.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    let id = call.id?;
    Some(match result {
        Ok(api::Reply::Value(value)) => rpc::success(&id, &value.to_string()),
        Ok(api::Reply::Raw(text)) => rpc::success(&id, &text),
        Err(error) => {
            node.metrics().error(error.kind);
            tracing::debug!(method = %call.method, %error, "rpc error");
            rpc::failure(id, &error)
        }
    })
}

fn json_reply(body: String) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, "application/json", body.into())
}

fn reply(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        content_type
            .parse()
            .expect("a static content type is valid"),
    );
    response
}
