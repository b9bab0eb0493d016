//! Requests the gateway refuses before reading their body, sent with `Expect: 100-continue`
//! (as botocore sends every PutObject and UploadPart) over one keep-alive connection written
//! by hand (raw HTTP/1.1, SigV4 header signatures), and what that connection is good for
//! afterwards. This is what `refuse_before_body` in `src/s3.rs` guards with its drain.
//!
//! Without the drain, hyper answers the refusal without `100 Continue` and, once the handler
//! has dropped the body, reads whatever the socket holds at that moment as that body. A client
//! that waited for `100 Continue` and got the final status sends no body, so that is either
//! nothing (hyper then closes the connection, though the response did not say
//! `connection: close`) or, when the client was quicker than the gateway's connection task,
//! the first bytes of its next request: a one-byte body eats the `P` of `PUT`, the rest is
//! parsed as a `UT` request, and its signature fails. That is the 403 SignatureDoesNotMatch one
//! boto3 run saw for `../escape` after `a/../b`. With the drain, reading the body makes hyper
//! send `100 Continue`, the client sends the body, and the drain consumes it: the next request
//! starts where the client started it. A client that does not wait sends the body anyway; the
//! drain consumes that too, where hyper alone discards only what one read of the socket holds
//! and closes the connection otherwise.
//!
//! Whatever answers before the body is read to its end (s3s refusing a signature, a length over
//! the limit, a body too large to drain) makes the gateway add `connection: close` to the
//! response (`ClosesUnreadRequests` in `src/lib.rs`): the client then knows not to reuse the
//! connection, and the gateway closes it.

mod common;

use common::{ACCESS_KEY, DevNode, SECRET_KEY, random_bytes};
use hmac::{Hmac, Mac};
use s3s::crypto::{Checksum, Md5};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const REGION: &str = "us-east-1";
/// Larger than what hyper reads from a socket at once (the gateway caps its read buffer at
/// 64 KiB) and smaller than what the gateway drains (1 MiB), so the HTTP layer cannot discard
/// it by itself: only a drain keeps the connection usable after such a body.
const LARGE_BODY_BYTES: usize = 200 * 1024;
/// How long a read or a write may wait for the gateway. A connection left out of step makes the
/// gateway wait for bytes that never come, or a write wait for a gateway that stopped reading;
/// this turns such a hang into a failure.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Larger than what the gateway drains of a refused body (1 MiB): past it the gateway gives the
/// connection up.
const UNDRAINED_BODY_BYTES: usize = 2 * 1024 * 1024;

/// HMAC-SHA256, the step SigV4 derives its signing key and signature with.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// A request to sign and send. `path` and `query` are sent and signed as given, so they hold
/// only characters that need no percent-encoding (`a/../b` included: S3 signs the path as
/// sent, without removing dot segments).
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    /// Sent with `Expect: 100-continue`, as botocore sends every PutObject and UploadPart.
    expect_continue: bool,
    body: &'a [u8],
}

impl Request<'_> {
    /// The request line and headers, signed with the test's credentials.
    fn head(&self, host: &str) -> Vec<u8> {
        self.head_signed_by(host, ACCESS_KEY, SECRET_KEY)
    }

    /// The request line and headers, signed with SigV4 in the `Authorization` header (payload
    /// hash included, as botocore signs over plain HTTP) by `access_key` with `secret_key`.
    fn head_signed_by(&self, host: &str, access_key: &str, secret_key: &str) -> Vec<u8> {
        let now = time::OffsetDateTime::now_utc();
        let date = format!(
            "{:04}{:02}{:02}",
            now.year(),
            u8::from(now.month()),
            now.day()
        );
        let amz_date = format!(
            "{date}T{:02}{:02}{:02}Z",
            now.hour(),
            now.minute(),
            now.second()
        );
        let payload_hash = hex::encode(Sha256::digest(self.body));
        let mut query = self.query.to_vec();
        query.sort();
        let query = query
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        let signed_headers = "host;x-amz-content-sha256;x-amz-date";
        let canonical_request = format!(
            "{}\n{}\n{query}\nhost:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n\n{signed_headers}\n{payload_hash}",
            self.method, self.path
        );
        let scope = format!("{date}/{REGION}/s3/aws4_request");
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
        for part in [REGION, "s3", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        let target = if query.is_empty() {
            self.path.to_string()
        } else {
            format!("{}?{query}", self.path)
        };
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nhost: {host}\r\nx-amz-date: {amz_date}\r\nx-amz-content-sha256: {payload_hash}\r\nauthorization: AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}\r\ncontent-length: {}\r\n",
            self.method,
            self.body.len()
        );
        if self.expect_continue {
            head.push_str("expect: 100-continue\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// A response head: the status and the headers, names in lower case.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the server announced that it closes the connection after this response.
    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"))
    }
}

/// A final response.
struct Response {
    head: Head,
    body: Vec<u8>,
    /// The interim (1xx) statuses received before it.
    interim: Vec<u16>,
}

impl Response {
    /// The S3 error code of an error body.
    fn code(&self) -> Option<&str> {
        let text = std::str::from_utf8(&self.body).ok()?;
        let start = text.find("<Code>")? + "<Code>".len();
        let end = start + text[start..].find("</Code>")?;
        Some(&text[start..end])
    }

    fn describe(&self) -> String {
        format!(
            "{} {:?} (interim {:?}, connection: {:?})",
            self.head.status,
            self.code(),
            self.interim,
            self.head.header("connection")
        )
    }
}

/// What reading from the connection gave.
enum Answer {
    Response(Response),
    /// The server closed the connection before sending any byte of a response.
    Closed,
}

/// One keep-alive connection to the gateway.
struct Connection {
    host: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    fn open(endpoint: &str) -> Connection {
        let host = endpoint
            .strip_prefix("http://")
            .expect("the gateway serves plain HTTP")
            .trim_end_matches('/')
            .to_string();
        let stream = TcpStream::connect(&host).expect("the gateway accepts connections");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("a read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("a write timeout");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let writer = stream.try_clone().expect("a second handle on the socket");
        Connection {
            host,
            reader: BufReader::new(stream),
            writer,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// Sends the request head and the body in one write, without waiting for `100 Continue`.
    fn send(&mut self, request: &Request) -> std::io::Result<()> {
        let mut bytes = request.head(&self.host);
        bytes.extend_from_slice(request.body);
        self.write(&bytes)
    }

    /// Sends a request with its body and reads the final response.
    fn exchange(&mut self, request: &Request) -> std::io::Result<Answer> {
        self.send(request)?;
        self.read_response()
    }

    /// The next response head, interim or final; `None` when the connection was closed first.
    fn read_head(&mut self) -> std::io::Result<Option<Head>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let mut parts = line.split_whitespace();
        let version = parts.next().unwrap_or_default();
        let status = parts.next().and_then(|status| status.parse::<u16>().ok());
        let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("not a status line: {line:?}"),
            ));
        };
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end_matches(['\r', '\n']);
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').ok_or_else(|| {
                std::io::Error::new(ErrorKind::InvalidData, format!("bad header {header:?}"))
            })?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        Ok(Some(Head { status, headers }))
    }

    /// The body of a final response to anything but HEAD.
    fn read_body(&mut self, head: &Head) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        if head.status == 204 || head.status == 304 {
            return Ok(body);
        }
        if let Some(length) = head.header("content-length") {
            let length = length
                .parse::<usize>()
                .map_err(|error| std::io::Error::new(ErrorKind::InvalidData, error))?;
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        } else if head
            .header("transfer-encoding")
            .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line)?;
                let size = line.trim().split(';').next().unwrap_or_default();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|error| std::io::Error::new(ErrorKind::InvalidData, error))?;
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                line.clear();
                self.reader.read_line(&mut line)?;
                if size == 0 {
                    break;
                }
            }
        } else {
            self.reader.read_to_end(&mut body)?;
        }
        Ok(body)
    }

    /// The next final response, skipping interim ones.
    fn read_response(&mut self) -> std::io::Result<Answer> {
        let mut interim = Vec::new();
        loop {
            let Some(head) = self.read_head()? else {
                return Ok(Answer::Closed);
            };
            if (100..200).contains(&head.status) {
                interim.push(head.status);
                continue;
            }
            let body = self.read_body(&head)?;
            return Ok(Answer::Response(Response {
                head,
                body,
                interim,
            }));
        }
    }

    /// Whether the server ended the connection: end of stream, or a reset where it closed the
    /// connection with bytes of ours still unread (the rest of a body it refused).
    fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(read) => read == 0,
            Err(error) => error.kind() == ErrorKind::ConnectionReset,
        }
    }

    /// Sends `head`, then `body`: right behind the head or, when `wait_for_continue`, only once
    /// the server asked for it with `100 Continue`, and not at all when a final status came
    /// first (as botocore does). Returns the final response. The body is written from a thread
    /// of its own while the response is read: a server that refuses a body stops reading it
    /// and may answer and close the connection before it has all been written, and then the
    /// write fails, which is that refusal and not this exchange's failure.
    fn exchange_with_body_aside(
        &mut self,
        head: &[u8],
        body: &[u8],
        wait_for_continue: bool,
        context: &str,
    ) -> Response {
        let mut body_writer = self.writer.try_clone().expect("a handle for the body");
        let write_body = move || {
            let _ = body_writer
                .write_all(body)
                .and_then(|()| body_writer.flush());
        };
        std::thread::scope(|scope| {
            self.write(head)
                .unwrap_or_else(|error| panic!("{context}: the head was not sent: {error}"));
            if !wait_for_continue {
                scope.spawn(write_body);
                return match self.read_response() {
                    Ok(Answer::Response(response)) => response,
                    Ok(Answer::Closed) => panic!("{context}: closed before an answer"),
                    Err(error) => panic!("{context}: no answer: {error}"),
                };
            }
            let first = self
                .read_head()
                .unwrap_or_else(|error| panic!("{context}: no answer to the head: {error}"))
                .unwrap_or_else(|| panic!("{context}: the connection closed before an answer"));
            if first.status == 100 {
                // Invited: the body goes, and the final status follows it.
                scope.spawn(write_body);
                match self.read_response() {
                    Ok(Answer::Response(mut response)) => {
                        response.interim.insert(0, 100);
                        response
                    }
                    Ok(Answer::Closed) => panic!("{context}: closed after 100 Continue"),
                    Err(error) => panic!("{context}: no final answer after the body: {error}"),
                }
            } else {
                // A final status instead of 100: the body is not sent.
                let body = self
                    .read_body(&first)
                    .unwrap_or_else(|error| panic!("{context}: unreadable response: {error}"));
                Response {
                    head: first,
                    body,
                    interim: Vec::new(),
                }
            }
        })
    }

    /// Asserts that the server ends the connection after `response`, which announced it, and
    /// opens a new one: what a client does after `connection: close`.
    fn reopen_after_close(&mut self, response: &Response, context: &str) {
        assert!(
            response.head.closes(),
            "{context}: the answer did not say `connection: close`: {}",
            response.describe()
        );
        assert!(
            self.closed_by_server(),
            "{context}: `connection: close` announced but the connection stayed open"
        );
        *self = Connection::open(&format!("http://{}", self.host));
    }
}

/// The final response to `request`, panicking with what happened instead: the failure this
/// file guards against shows up here as a 403, a closed connection or unreadable bytes.
fn answer(connection: &mut Connection, request: &Request, context: &str) -> Response {
    match connection.exchange(request) {
        Ok(Answer::Response(response)) => response,
        Ok(Answer::Closed) => panic!(
            "{context}: the gateway closed the connection instead of answering {} {}",
            request.method, request.path
        ),
        Err(error) => panic!(
            "{context}: {} {} got no response on the connection: {error}",
            request.method, request.path
        ),
    }
}

fn put<'a>(path: &'a str, body: &'a [u8], expect_continue: bool) -> Request<'a> {
    Request {
        method: "PUT",
        path,
        query: &[],
        expect_continue,
        body,
    }
}

fn get(path: &str) -> Request<'_> {
    Request {
        method: "GET",
        path,
        query: &[],
        expect_continue: false,
        body: &[],
    }
}

/// Stores `body` at `path` and reads it back, both on `connection`: proof that the connection
/// is still in step after whatever came before.
fn put_and_get_back(connection: &mut Connection, path: &str, body: &[u8], context: &str) {
    let stored = answer(connection, &put(path, body, true), context);
    assert_eq!(stored.head.status, 200, "{context}: {}", stored.describe());
    // The body was read to its end, so the connection stays.
    assert!(!stored.head.closes(), "{context}: {}", stored.describe());
    let etag = format!("\"{}\"", hex::encode(Md5::checksum(body)));
    assert_eq!(stored.head.header("etag"), Some(etag.as_str()), "{context}");
    let read = answer(connection, &get(path), context);
    assert_eq!(read.head.status, 200, "{context}: {}", read.describe());
    assert!(read.body == body, "{context}: {path} read back differs");
}

/// A dev node with its gateway, one connection to it, and bucket `alpha` made on it.
fn start() -> (tempfile::TempDir, DevNode, Connection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("node"));
    let mut connection = Connection::open(&node.s3);
    let made = answer(&mut connection, &put("/alpha", &[], false), "CreateBucket");
    assert_eq!(made.head.status, 200, "CreateBucket: {}", made.describe());
    (dir, node, connection)
}

#[test]
fn a_put_refused_before_its_body_keeps_the_connection_when_the_body_comes_anyway() {
    let (_dir, _node, mut connection) = start();
    // One byte is what the boto3 suite sends (written with the head, hyper alone would discard
    // it too); the large body is one hyper cannot discard on its own (see LARGE_BODY_BYTES).
    for (round, body) in [b"x".to_vec(), random_bytes(1, LARGE_BODY_BYTES)]
        .iter()
        .enumerate()
    {
        // The boto3 run that failed: `a/../b` refused, then `../escape` on the same connection.
        for key in ["a/../b", "../escape"] {
            let context = format!("PUT {key} with {} body bytes sent at once", body.len());
            let path = format!("/alpha/{key}");
            let refused = answer(&mut connection, &put(&path, body, true), &context);
            assert_eq!(
                (refused.head.status, refused.code()),
                (400, Some("InvalidArgument")),
                "{context}: {}",
                refused.describe()
            );
            assert!(
                !refused.head.closes(),
                "{context}: the gateway gave up the connection: {}",
                refused.describe()
            );
        }
        put_and_get_back(
            &mut connection,
            &format!("/alpha/good-{round}"),
            &random_bytes(10 + round as u64, 1000),
            &format!("a good PUT after refused bodies of {} bytes", body.len()),
        );
    }
}

#[test]
fn an_upload_part_refused_before_its_body_keeps_the_connection_when_the_body_comes_anyway() {
    let (_dir, _node, mut connection) = start();
    let body = random_bytes(2, LARGE_BODY_BYTES);
    let part = Request {
        method: "PUT",
        path: "/alpha/multi",
        query: &[("partNumber", "1"), ("uploadId", "no-such-upload")],
        expect_continue: true,
        body: &body,
    };
    let context = "UploadPart of an unknown upload, body sent at once";
    let refused = answer(&mut connection, &part, context);
    assert_eq!(
        (refused.head.status, refused.code()),
        (404, Some("NoSuchUpload")),
        "{context}: {}",
        refused.describe()
    );
    assert!(!refused.head.closes(), "{context}: {}", refused.describe());
    put_and_get_back(
        &mut connection,
        "/alpha/after-part",
        b"after a refused part",
        "a good PUT after a refused UploadPart",
    );
}

#[test]
fn a_put_refused_before_its_body_answers_a_client_that_waits_for_100_continue() {
    let (_dir, _node, mut connection) = start();
    for (round, size) in [1, LARGE_BODY_BYTES].into_iter().enumerate() {
        let body = random_bytes(3 + round as u64, size);
        let context = format!("PUT a/../b with {size} body bytes, waiting for 100 Continue");
        let head = put("/alpha/a/../b", &body, true).head(&connection.host);
        let refused = connection.exchange_with_body_aside(&head, &body, true, &context);
        assert_eq!(
            (refused.head.status, refused.code()),
            (400, Some("InvalidArgument")),
            "{context}: {}",
            refused.describe()
        );
        if refused.head.closes() {
            // What a client relies on once the server announced a close: the stream ends
            // there, so the client opens a new connection instead of writing into a dead one.
            connection.reopen_after_close(&refused, &context);
        }
        // Either way the next request on the (possibly new) connection gets its own answer: a
        // server that kept the connection must not take this request for the refused body.
        put_and_get_back(
            &mut connection,
            &format!("/alpha/waited-{round}"),
            &random_bytes(20 + round as u64, 500),
            &format!("{context}, then a good PUT"),
        );
    }
}

/// Sends `head` with `body` (right behind it, or after waiting for `100 Continue`), expects the
/// refusal `expected` (status and S3 code) with the connection closed by the gateway, then
/// checks that a good PUT of `after_key` and its GET work on a new connection.
#[allow(clippy::too_many_arguments)] // one refusal scenario, spelled out at each call
fn refused_then_closed(
    connection: &mut Connection,
    head: &[u8],
    body: &[u8],
    wait_for_continue: bool,
    expected: (u16, &str),
    after_key: &str,
    after_body: &[u8],
    context: &str,
) {
    let refused = connection.exchange_with_body_aside(head, body, wait_for_continue, context);
    assert_eq!(
        (refused.head.status, refused.code()),
        (expected.0, Some(expected.1)),
        "{context}: {}",
        refused.describe()
    );
    connection.reopen_after_close(&refused, context);
    put_and_get_back(
        connection,
        after_key,
        after_body,
        &format!("{context}, then a good PUT on a new connection"),
    );
}

/// s3s refuses a bad signature, or an unknown access key, before the gateway's handler runs,
/// so no drain consumes the body. A client waiting for `100 Continue` gets the 403 instead
/// and sends no body; the gateway must say and do `connection: close`, or it takes the
/// client's next request for that body.
#[test]
fn a_put_with_a_bad_signature_ends_the_connection_of_a_client_that_waits_for_100_continue() {
    let (_dir, _node, mut connection) = start();
    let body = random_bytes(5, 1000);
    let request = put("/alpha/forged", &body, true);
    for (access_key, secret_key, code) in [
        (ACCESS_KEY, "not-the-secret-key", "SignatureDoesNotMatch"),
        // s3s's SimpleAuth answers an unknown key id with NotSignedUp (AWS says
        // InvalidAccessKeyId); either way it is refused before the handler runs.
        ("no-such-access-key", SECRET_KEY, "NotSignedUp"),
    ] {
        let context = format!("PUT signed by {access_key} with a wrong secret or key id");
        let head = request.head_signed_by(&connection.host, access_key, secret_key);
        refused_then_closed(
            &mut connection,
            &head,
            &body,
            true,
            (403, code),
            "/alpha/after-forged",
            b"after a forged signature",
            &context,
        );
    }
}

/// A refused body larger than the drain reads: the gateway reads 1 MiB of it and gives up the
/// connection, and must say so, whether the body came right behind the head or was invited.
#[test]
fn a_refused_put_with_a_body_too_large_to_drain_ends_the_connection() {
    let (_dir, _node, mut connection) = start();
    let body = random_bytes(6, UNDRAINED_BODY_BYTES);
    for wait_for_continue in [false, true] {
        let context = format!(
            "PUT a/../b with {UNDRAINED_BODY_BYTES} body bytes (waiting for 100 Continue: \
             {wait_for_continue})"
        );
        let head = put("/alpha/a/../b", &body, true).head(&connection.host);
        refused_then_closed(
            &mut connection,
            &head,
            &body,
            wait_for_continue,
            (400, "InvalidArgument"),
            "/alpha/after-undrained",
            b"after a body too large to drain",
            &context,
        );
    }
}

/// A body whose announced length is over the gateway's limit is refused (400 EntityTooLarge,
/// as S3 answers it) from its `Content-Length`, before a byte of it is read. The limit of the
/// dev node's gateway is fixed at 5 GiB, so this runs a gateway of its own, in this process,
/// with a 1 MiB limit, in front of the dev node.
#[test]
fn a_body_announced_over_the_limit_ends_the_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("node"));
    let limit_bytes = 1024 * 1024;
    let config = gateway::Config {
        node_url: node.rpc.clone(),
        data_dir: dir.path().join("gateway"),
        credentials: vec![(ACCESS_KEY.to_string(), SECRET_KEY.to_string())],
        // The dev node's own gateway pays with this account too; it gets no request here, so
        // their transactions cannot race for a nonce.
        payer_key: chain_lite::DEV_ACCOUNTS[1].private_key.to_string(),
        region: REGION.to_string(),
        limits: gateway::Limits {
            max_object_bytes: limit_bytes,
            ..gateway::Limits::default()
        },
    };
    let listen = "127.0.0.1:0".parse().expect("a socket address");
    let running = gateway::spawn(config, listen, 2).expect("the gateway starts");
    let mut connection = Connection::open(&format!("http://{}", running.address));
    let made = answer(&mut connection, &put("/alpha", &[], false), "CreateBucket");
    assert_eq!(made.head.status, 200, "CreateBucket: {}", made.describe());
    let body = random_bytes(7, limit_bytes as usize + 1);
    for wait_for_continue in [true, false] {
        let context = format!(
            "PUT of {} bytes over a {limit_bytes}-byte limit (waiting for 100 Continue: \
             {wait_for_continue})",
            body.len()
        );
        let head = put("/alpha/too-large", &body, true).head(&connection.host);
        refused_then_closed(
            &mut connection,
            &head,
            &body,
            wait_for_continue,
            (400, "EntityTooLarge"),
            "/alpha/within-limit",
            b"within the limit",
            &context,
        );
    }
    running.stop().expect("the gateway stops");
}
