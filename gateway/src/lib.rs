//! gateway: an S3-compatible front for a zerog node. The key decision: the gateway reaches the
//! node only through its public JSON-RPC API (the `client` crate), like any other 0G client,
//! so it can front a remote node. Object bytes become 0G storage files (Merkle roots, signed
//! Flow submissions, proofs verified on every read); everything S3 adds on top (buckets, keys,
//! ETags, content types, user metadata, multipart state, which file ranges make an object)
//! lives in an embedded redb store. s3s parses the protocol and checks SigV4 (header,
//! presigned query and aws-chunked streaming with trailers); `error.rs` maps every error to its
//! S3 code in one place. See docs/gateway.md.
#![forbid(unsafe_code)]

mod access;
mod acl;
mod body;
mod bucket_config;
mod cors;
mod error;
mod front;
mod policy;
mod s3;
mod store;
mod versioning;

pub use error::Error;
pub use s3::{Limits, validate_key};
pub use store::SpaceStats;

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Largest request head (request line and headers) a connection may send.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The dev credentials `zerog node --dev` starts its gateway with.
pub const DEV_ACCESS_KEY: &str = "zerog-dev";
pub const DEV_SECRET_KEY: &str = "zerog-dev-secret-key";

#[derive(Clone, Debug)]
pub struct Config {
    /// The node's JSON-RPC URL.
    pub node_url: String,
    /// Holds `meta.redb` and the spool folder for bodies too large to keep in memory.
    pub data_dir: PathBuf,
    /// Access key id → secret key. Requests signed with anything else are refused, and
    /// anonymous requests are denied.
    pub credentials: Vec<(String, String)>,
    /// The private key (0x-hex) that signs and pays the Flow submissions of stored objects.
    pub payer_key: String,
    pub region: String,
    pub limits: Limits,
}

/// Serves S3 on `listener` until `shutdown` completes.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let spool_dir = config.data_dir.join("spool");
    std::fs::create_dir_all(&spool_dir).map_err(|source| Error::Io {
        operation: "creating",
        path: spool_dir.clone(),
        source,
    })?;
    // Spool files belong to requests that died with an earlier process.
    if let Ok(entries) = std::fs::read_dir(&spool_dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let first_user = config
        .credentials
        .first()
        .map(|(access, _)| access.clone())
        .ok_or(Error::NoCredentials)?;
    let store = Arc::new(store::Store::open(
        &config.data_dir.join("meta.redb"),
        &first_user,
    )?);
    let node = client::Client::new(&config.node_url)?;
    let payer = client::Payer::from_hex(&config.payer_key)?;
    let gateway = s3::Gateway::new(
        store.clone(),
        node,
        payer,
        spool_dir,
        config.limits.clone(),
        config.region.clone(),
        config
            .credentials
            .iter()
            .map(|(access, _)| access.clone())
            .collect(),
    );
    let mut builder = S3ServiceBuilder::new(gateway);
    let mut auth = SimpleAuth::new();
    for (access, secret) in &config.credentials {
        auth.register(access.clone(), secret.clone().into());
    }
    builder.set_auth(auth);
    builder.set_access(access::Access::new(store.clone()));
    let store_for_front = store.clone();
    builder.set_route(SpaceRoute { store });
    builder.set_validation(BucketNames);
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        s3s_config(&config.limits),
    ))));
    let service = ClosesUnreadRequests {
        inner: builder.build(),
        store: store_for_front,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting an S3 connection failed");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        // Without it a small response (head, then body) waits out the client's delayed ACK:
        // 40 ms per 4 KiB GET.
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.max_buf_size(MAX_HEADER_BYTES);
            let connection = http.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "S3 connection ended with an error");
            }
        });
    }
}

/// s3s's own limits: the fields of a form upload are read ahead by the front layer under the
/// same bound, and its file is held in memory by s3s, so it gets a limit of its own.
fn s3s_config(limits: &Limits) -> s3s::config::S3Config {
    let mut config = s3s::config::S3Config::default();
    config.post_object_max_file_size = limits.max_form_upload_bytes.min(limits.max_object_bytes);
    config.form_max_field_size = front::FORM_FIELDS_LIMIT_BYTES;
    config.form_max_fields_size = front::FORM_FIELDS_LIMIT_BYTES;
    config.form_max_parts = FORM_MAX_PARTS;
    config
}

/// Most parts (fields and the file) of a form upload.
const FORM_MAX_PARTS: usize = 200;

/// The S3 service, made to end the connection after answering a request whose body it did not
/// read to its end. Such an answer leaves the connection out of step: hyper either closes it
/// without having said so (the client may already be writing its next request into it) or, for
/// a request with `Expect: 100-continue` whose client waited and so sent no body, takes the
/// start of the client's next request for the rest of the body. `Connection: close` in the
/// response tells the client not to reuse the connection, and makes hyper close it once the
/// response is written. This covers every path that answers before the body: s3s's own
/// refusals (signature, access), limits decided from the headers, and bodies too large to
/// drain (`refuse_before_body` in `s3.rs` drains small ones, so that their connection stays).
/// Only the request body counts: a response body, however long it streams, is not involved.
///
/// The same service is where the front layer (`front.rs`) runs: CORS preflights are answered
/// here, requests S3 refuses early are refused here, and the rest reach s3s prepared and come
/// back with their CORS headers.
#[derive(Clone)]
struct ClosesUnreadRequests {
    inner: s3s::service::S3Service,
    /// The buckets' CORS rules, for the front layer.
    store: Arc<store::Store>,
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for ClosesUnreadRequests {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<s3s::HttpResponse, s3s::HttpError>> + Send + 'static>>;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let body = ReadToEnd::new(body);
        let read = body.read.clone();
        let inner = self.inner.clone();
        let store = self.store.clone();
        Box::pin(async move {
            if parts.method == http::Method::OPTIONS {
                let mut response = front::preflight(&parts, &store);
                close_unless_read(&read, response.headers_mut());
                return Ok(response);
            }
            let cors = front::cors_headers(&parts, &store);
            let prepared = match front::refuse_early(&parts) {
                Some(error) => Err(error),
                None => {
                    front::mark_unknown_length(&mut parts);
                    match front::FormUpload::of(&parts) {
                        Some(form) => form.prepare(body, &mut parts).await,
                        None => Ok(front::Prefixed::unread(body)),
                    }
                }
            };
            let mut response = match prepared {
                Ok(body) => {
                    let request = http::Request::from_parts(parts, s3s::Body::http_body(body));
                    inner.call(request).await?
                }
                Err(error) => error.to_http_response(),
            };
            if let Some(cors) = cors {
                response.headers_mut().extend(cors);
            }
            close_unless_read(&read, response.headers_mut());
            Ok(response)
        })
    }
}

/// Adds `Connection: close` unless the request body was read to its end.
fn close_unless_read(read: &AtomicBool, headers: &mut http::HeaderMap) {
    if !read.load(Ordering::Acquire) {
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
}

/// A request body that records, in `read`, whether it was read to its end: its last byte or
/// its end of stream was yielded, or it had no bytes to begin with (a request without a body,
/// or with `Content-Length: 0`).
struct ReadToEnd<B> {
    inner: B,
    read: Arc<AtomicBool>,
}

impl<B: hyper::body::Body> ReadToEnd<B> {
    fn new(inner: B) -> ReadToEnd<B> {
        let read = Arc::new(AtomicBool::new(inner.is_end_stream()));
        ReadToEnd { inner, read }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for ReadToEnd<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // A body with a known length is at its end once its last byte is out, whether or not
        // the reader polls again for the end of stream (the decoder behind it has then
        // consumed the whole message); a chunked one only at the end of stream.
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => false,
        };
        if ended {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A gateway on its own multi-thread tokio runtime (s3s needs `Send` futures; the node's
/// control plane is a single-thread runtime), in its own thread.
pub struct Running {
    pub address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

impl Running {
    /// Stops accepting connections and waits for the thread.
    pub fn stop(mut self) -> Result<(), Error> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), Error> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| Error::Task {
                detail: "the gateway thread panicked".into(),
            })?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Err(error) = self.stop_inner() {
            tracing::error!(%error, "the S3 gateway stopped with an error");
        }
    }
}

/// Binds `listen` and runs the gateway in a new thread with `worker_threads` workers. Safe to
/// call from inside another runtime: the gateway's runtime is built in its own thread.
pub fn spawn(config: Config, listen: SocketAddr, worker_threads: usize) -> Result<Running, Error> {
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let io = |operation: &'static str, what: String| {
        move |source| Error::Io {
            operation,
            path: PathBuf::from(what),
            source,
        }
    };
    let thread = std::thread::Builder::new()
        .name("s3-gateway".into())
        .spawn(move || {
            let started = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(worker_threads.max(1))
                .thread_name("s3-gateway")
                .enable_all()
                .build()
                .map_err(io("starting the runtime of", "the S3 gateway".into()))
                .and_then(|runtime| {
                    let listener = runtime
                        .block_on(tokio::net::TcpListener::bind(listen))
                        .map_err(io("listening on", listen.to_string()))?;
                    let address = listener
                        .local_addr()
                        .map_err(io("reading the address of", listen.to_string()))?;
                    Ok((runtime, listener, address))
                });
            let (runtime, listener) = match started {
                Ok((runtime, listener, address)) => {
                    let _ = ready_tx.send(Ok(address));
                    (runtime, listener)
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return Ok(());
                }
            };
            runtime.block_on(serve(config, listener, async {
                let _ = shutdown_rx.await;
            }))
        })
        .map_err(io("starting the thread of", "the S3 gateway".into()))?;
    let address = match ready_rx.recv() {
        Ok(Ok(address)) => address,
        Ok(Err(error)) => {
            let _ = thread.join();
            return Err(error);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(Error::Task {
                detail: "the gateway thread stopped before it listened".into(),
            });
        }
    };
    Ok(Running {
        address,
        shutdown: Some(shutdown_tx),
        thread: Some(thread),
    })
}

/// The first segment of the space route's path, which is no bucket name.
const SPACE_SEGMENT: &str = "_zerog";

/// S3's bucket names, and the space route's first segment: s3s checks the name before it
/// matches routes, so without it `/_zerog/space` is refused as an invalid bucket name.
/// CreateBucket refuses it (`s3.rs`), so no bucket ever has it.
struct BucketNames;

impl s3s::validation::NameValidation for BucketNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        name == SPACE_SEGMENT || s3s::path::check_bucket_name(name)
    }
}

/// `GET /_zerog/space` (signed, like every request): the space accounting as JSON. Bucket
/// names cannot contain `_`, so the path never shadows a bucket.
struct SpaceRoute {
    store: Arc<store::Store>,
}

#[async_trait::async_trait]
impl s3s::route::S3Route for SpaceRoute {
    fn is_match(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        _headers: &http::HeaderMap,
        _extensions: &mut http::Extensions,
    ) -> bool {
        method == http::Method::GET && uri.path() == "/_zerog/space"
    }

    async fn call(
        &self,
        _req: s3s::S3Request<s3s::Body>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::Body>> {
        let store = self.store.clone();
        let space = tokio::task::spawn_blocking(move || store.space())
            .await
            .map_err(|error| Error::Task {
                detail: error.to_string(),
            })??;
        let json = serde_json::to_string(&space).expect("stats always serialize");
        let mut response = s3s::S3Response::new(s3s::Body::from(json));
        response.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full, StreamBody};

    fn read_flag<B: hyper::body::Body>(body: &ReadToEnd<B>) -> bool {
        body.read.load(Ordering::Acquire)
    }

    /// A body of `chunks` frames whose length is not announced, as a chunked request's is.
    fn chunked(
        chunks: usize,
    ) -> impl hyper::body::Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let frames = (0..chunks)
            .map(|_| Ok(hyper::body::Frame::data(Bytes::from_static(b"chunk"))))
            .collect::<Vec<_>>();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[test]
    fn a_request_without_body_bytes_counts_as_read() {
        assert!(read_flag(&ReadToEnd::new(Empty::<Bytes>::new())));
        assert!(read_flag(&ReadToEnd::new(Full::new(Bytes::new()))));
    }

    #[tokio::test]
    async fn a_body_of_known_length_is_read_once_its_last_byte_is_out() {
        let mut body = ReadToEnd::new(Full::new(Bytes::from_static(b"body")));
        assert!(!read_flag(&body));
        let frame = body.frame().await.expect("a frame").expect("no error");
        assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"body")));
        assert!(
            read_flag(&body),
            "read without polling for the end of stream"
        );
    }

    #[tokio::test]
    async fn a_chunked_body_is_read_at_its_end_of_stream_only() {
        let mut body = ReadToEnd::new(chunked(2));
        body.frame().await.expect("a frame").expect("no error");
        assert!(!read_flag(&body), "one chunk of two is not the whole body");
        body.frame().await.expect("a frame").expect("no error");
        assert!(!read_flag(&body), "the end of stream has not been seen yet");
        assert!(body.frame().await.is_none());
        assert!(read_flag(&body));
    }

    #[test]
    fn only_an_unread_body_closes_the_connection() {
        let mut headers = http::HeaderMap::new();
        close_unless_read(&AtomicBool::new(true), &mut headers);
        assert!(headers.get(http::header::CONNECTION).is_none());
        close_unless_read(&AtomicBool::new(false), &mut headers);
        assert_eq!(
            headers.get(http::header::CONNECTION),
            Some(&http::HeaderValue::from_static("close"))
        );
    }
}
