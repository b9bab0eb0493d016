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

mod common;

use common::{ACCESS_KEY, DevNode, SECRET_KEY, random_bytes};
use s3s::crypto::{Checksum, Md5, Sha256};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const REGION: &str = "us-east-1";
/// Larger than what hyper reads from a socket at once (the gateway caps its read buffer at
/// 64 KiB) and smaller than what the gateway drains (1 MiB), so the HTTP layer cannot discard
/// it by itself: only a drain keeps the connection usable after such a body.
const LARGE_BODY_BYTES: usize = 200 * 1024;
/// How long a read may wait for the gateway. A connection left out of step makes the gateway
/// wait for bytes that never come; this turns that hang into a failure.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// HMAC-SHA256 (RFC 2104) over the SHA-256 that s3s itself uses.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::checksum(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(&block.map(|byte| byte ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(&block.map(|byte| byte ^ 0x5c));
    outer.update(&inner);
    outer.finalize()
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
    /// The request line and headers, signed with SigV4 in the `Authorization` header (payload
    /// hash included, as botocore signs over plain HTTP).
    fn head(&self, host: &str) -> Vec<u8> {
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
        let payload_hash = hex::encode(Sha256::checksum(self.body));
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
            hex::encode(Sha256::checksum(canonical_request.as_bytes()))
        );
        let mut key = hmac_sha256(format!("AWS4{SECRET_KEY}").as_bytes(), date.as_bytes());
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
            "{} {target} HTTP/1.1\r\nhost: {host}\r\nx-amz-date: {amz_date}\r\nx-amz-content-sha256: {payload_hash}\r\nauthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, SignedHeaders={signed_headers}, Signature={signature}\r\ncontent-length: {}\r\n",
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
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("a read timeout");
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

    /// Whether the server closed the connection cleanly: end of stream, nothing left unread.
    fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0))
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
        let request = put("/alpha/a/../b", &body, true);
        let head = request.head(&connection.host);
        connection.write(&head).expect("the head is sent");
        let first = connection
            .read_head()
            .unwrap_or_else(|error| panic!("{context}: no answer to the head: {error}"))
            .unwrap_or_else(|| panic!("{context}: the connection closed before an answer"));
        let refused = if first.status == 100 {
            // Invited: the body goes, and the refusal follows it.
            connection.write(&body).expect("the body is sent");
            match connection.read_response() {
                Ok(Answer::Response(response)) => response,
                Ok(Answer::Closed) => panic!("{context}: closed after 100 Continue"),
                Err(error) => panic!("{context}: no final answer after the body: {error}"),
            }
        } else {
            // A final status instead of 100: the client must not send the body, as botocore
            // does not.
            let body = connection
                .read_body(&first)
                .unwrap_or_else(|error| panic!("{context}: unreadable response: {error}"));
            Response {
                head: first,
                body,
                interim: Vec::new(),
            }
        };
        assert_eq!(
            (refused.head.status, refused.code()),
            (400, Some("InvalidArgument")),
            "{context}: {}",
            refused.describe()
        );
        if refused.head.closes() {
            // What a client relies on once the server announced a close: the stream ends
            // there, so the client opens a new connection instead of writing into a dead one.
            assert!(
                connection.closed_by_server(),
                "{context}: `connection: close` announced but the connection stayed open"
            );
            connection = Connection::open(&format!("http://{}", connection.host));
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
