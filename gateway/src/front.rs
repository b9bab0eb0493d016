//! What the gateway does to a raw HTTP request before s3s sees it, where s3s 0.14.1 has no
//! hook of its own: it refuses presigned URLs that S3 would refuse before any signature check
//! (`X-Amz-Expires` over a week or negative), lets an `UNSIGNED-PAYLOAD` object body come
//! without a Content-Length (chunked transfer encoding), prepares browser form uploads
//! (`${filename}` in the key, the policy's field conditions answered with S3's code), answers
//! CORS preflights (`OPTIONS`, which s3s does not route) and gives the answers to cross-origin
//! requests their CORS headers. Every refusal here is an [`Error`], mapped to its S3 code in
//! `error.rs` like any other.

use crate::error::Error;
use crate::store::Store;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The longest validity S3 gives a presigned URL: seven days.
const MAX_PRESIGNED_EXPIRES_SECS: i64 = 7 * 24 * 60 * 60;

/// Most bytes of a form upload read ahead of its file, to find its fields: s3s's own limit on
/// the fields of a form is the same.
pub const FORM_FIELDS_LIMIT_BYTES: usize = 256 * 1024;

/// Marks a PutObject or UploadPart whose body came without a length: `announced_length` in
/// `s3.rs` then treats the Content-Length s3s was shown as absent.
#[derive(Clone, Copy, Debug)]
pub struct LengthUnknown;

/// A request S3 refuses before looking at its signature, as the error to answer it with.
pub fn refuse_early(parts: &http::request::Parts) -> Option<Error> {
    let query = parts.uri.query()?;
    let presigned = query_value(query, "X-Amz-Signature").is_some()
        || query_value(query, "X-Amz-Algorithm").is_some();
    let expires = query_value(query, "X-Amz-Expires")?;
    if !presigned {
        return None;
    }
    let detail = match expires.parse::<i64>() {
        Err(_) => "X-Amz-Expires should be a number",
        Ok(seconds) if seconds < 0 => "X-Amz-Expires must be non-negative",
        Ok(seconds) if seconds > MAX_PRESIGNED_EXPIRES_SECS => {
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        }
        Ok(_) => return None,
    };
    Some(Error::AuthorizationQueryParameters {
        detail: detail.to_string(),
    })
}

/// The value of the first query parameter `name` (not percent-decoded).
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// Query parameters that make a PUT of an object path something other than an upload of its
/// body (they carry an XML document, which s3s reads whole and needs the length of).
const BODY_SUBRESOURCES: [&str; 4] = ["acl", "tagging", "retention", "legal-hold"];

/// s3s refuses an `UNSIGNED-PAYLOAD` body without a Content-Length (411), though S3 takes it
/// with chunked transfer encoding, as it takes the streaming modes. For an object upload
/// (PutObject, UploadPart) the request is marked [`LengthUnknown`] and shown to s3s with a
/// Content-Length of 0, which s3s uses for nothing else on this path; the gateway then reads
/// the body to its end, however long, under its usual limit.
pub fn mark_unknown_length(parts: &mut http::request::Parts) {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let unsigned = header("x-amz-content-sha256") == Some("UNSIGNED-PAYLOAD");
    let chunked = header("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    let is_upload = parts.method == http::Method::PUT
        && header("content-length").is_none()
        && header("x-amz-copy-source").is_none()
        && object_path(parts.uri.path())
        && !parts.uri.query().is_some_and(|query| {
            query.split('&').any(|pair| {
                let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                BODY_SUBRESOURCES.contains(&name)
            })
        });
    if unsigned && chunked && is_upload {
        parts
            .headers
            .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(0));
        parts.extensions.insert(LengthUnknown);
    }
}

/// Whether a path-style path names an object (`/bucket/key…`).
fn object_path(path: &str) -> bool {
    path.trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
}

/// The bucket a path-style path names, if any.
fn path_bucket(path: &str) -> Option<&str> {
    let bucket = path.trim_start_matches('/').split('/').next().unwrap_or("");
    (!bucket.is_empty()).then_some(bucket)
}

/// The answer to a CORS preflight (`OPTIONS`), from the bucket's rules: 200 with the CORS
/// headers of the first rule that allows the origin, method and headers asked for, 403 when
/// none does or the bucket has none, 400 without an `Origin` or a method.
pub fn preflight(parts: &http::request::Parts, store: &Store) -> s3s::HttpResponse {
    let Some(bucket) = path_bucket(parts.uri.path()) else {
        return Error::BadRequest {
            detail: "a preflight names a bucket or an object".into(),
        }
        .to_http_response();
    };
    let Some(state) = store.cached_bucket(bucket) else {
        return Error::NoSuchBucket {
            bucket: bucket.to_string(),
        }
        .to_http_response();
    };
    match crate::cors::preflight(state.record.cors.as_deref(), &parts.headers) {
        Ok(headers) => {
            let mut response = s3s::HttpResponse::new(s3s::Body::empty());
            *response.headers_mut() = headers;
            response
        }
        Err(error) => error.to_http_response(),
    }
}

/// The CORS headers the answer to this request gets: for a request with an `Origin` to a
/// bucket whose rules allow that origin and method (a presigned request like any other).
pub fn cors_headers(parts: &http::request::Parts, store: &Store) -> Option<http::HeaderMap> {
    parts.headers.get(http::header::ORIGIN)?;
    let state = store.cached_bucket(path_bucket(parts.uri.path())?)?;
    crate::cors::actual(state.record.cors.as_deref()?, &parts.method, &parts.headers)
}

/// A browser form upload (POST of `multipart/form-data` to a bucket): its bucket and boundary.
pub struct FormUpload {
    bucket: String,
    boundary: String,
}

impl FormUpload {
    pub fn of(parts: &http::request::Parts) -> Option<FormUpload> {
        if parts.method != http::Method::POST {
            return None;
        }
        let path = parts.uri.path().trim_start_matches('/');
        let bucket = path.strip_suffix('/').unwrap_or(path);
        if bucket.is_empty() || bucket.contains('/') {
            return None;
        }
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)?
            .to_str()
            .ok()?;
        let mut parameters = content_type.split(';').map(str::trim);
        if !parameters
            .next()?
            .eq_ignore_ascii_case("multipart/form-data")
        {
            return None;
        }
        let boundary = parameters.find_map(|parameter| {
            let (name, value) = parameter.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| value.trim().trim_matches('"').to_string())
        })?;
        if boundary.is_empty() {
            return None;
        }
        Some(FormUpload {
            bucket: bucket.to_string(),
            boundary,
        })
    }

    /// Reads the form's fields (everything before its file) and returns the body to give
    /// s3s: the fields as sent, but for `${filename}` in the key replaced by the file's name,
    /// then the rest of the body as it comes. The policy's `eq` and `starts-with` conditions
    /// are checked here against the fields as S3 checks them (after that substitution), and a
    /// failed one is 403 AccessDenied, as S3 answers it; s3s checks the signature, the expiry,
    /// the content-length range and the fields the policy does not cover.
    pub async fn prepare<B>(
        self,
        mut body: B,
        parts: &mut http::request::Parts,
    ) -> Result<Prefixed<B>, Error>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
    {
        let mut buffer = BytesMut::new();
        let parsed = loop {
            match parse_fields(&buffer, &self.boundary) {
                Parse::Done(form) => break Some(form),
                Parse::Invalid => break None,
                Parse::Incomplete if buffer.len() > FORM_FIELDS_LIMIT_BYTES => break None,
                Parse::Incomplete => {}
            }
            match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => buffer.extend_from_slice(&data),
                    Err(_) => break None,
                },
                // An error or an early end is s3s's to report, from what was read.
                Some(Err(_)) | None => break None,
            }
        };
        let mut prefix = buffer.freeze();
        if let Some(mut form) = parsed {
            if let Some(rewritten) = form.substitute_filename(&prefix) {
                let grown = rewritten.len() as i64 - prefix.len() as i64;
                adjust_content_length(parts, grown);
                prefix = rewritten;
                // The fields after the key moved.
                match parse_fields(&prefix, &self.boundary) {
                    Parse::Done(moved) => form = moved,
                    Parse::Incomplete | Parse::Invalid => return Ok(Prefixed::with(prefix, body)),
                }
            }
            form.check_policy(&prefix, &self.bucket)?;
            // s3s reads no `tagging` field; tags the gateway does not keep are refused, as
            // they are on every other object write.
            if form.value(&prefix, "tagging").is_some() {
                return Err(Error::NotImplemented {
                    what: "object tagging (the form's tagging field)".into(),
                });
            }
        }
        Ok(Prefixed::with(prefix, body))
    }
}

/// Moves the request's Content-Length by `delta` bytes (a rewritten form field).
fn adjust_content_length(parts: &mut http::request::Parts, delta: i64) {
    let length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i64>().ok());
    if let Some(length) = length
        && let Ok(adjusted) = u64::try_from(length + delta)
    {
        parts.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(adjusted),
        );
    }
}

/// The fields of a form found before its file part.
struct Form {
    /// Name (lower case), and where the value lies in the buffer.
    fields: Vec<(String, std::ops::Range<usize>)>,
    /// The file part's `filename`.
    filename: String,
}

enum Parse {
    Done(Form),
    Incomplete,
    Invalid,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + from)
}

/// Parses `multipart/form-data` from the start of `buffer` up to the headers of the part named
/// `file` (S3 ignores the fields after it).
fn parse_fields(buffer: &[u8], boundary: &str) -> Parse {
    let delimiter = format!("--{boundary}");
    let Some(first) = find(buffer, delimiter.as_bytes(), 0) else {
        return Parse::Incomplete;
    };
    let mut at = first + delimiter.len();
    let mut fields = Vec::new();
    loop {
        if buffer.len() < at + 2 {
            return Parse::Incomplete;
        }
        if &buffer[at..at + 2] == b"--" {
            // The end of the form, and no file in it.
            return Parse::Invalid;
        }
        if &buffer[at..at + 2] != b"\r\n" {
            return Parse::Invalid;
        }
        let headers_start = at + 2;
        let Some(headers_end) = find(buffer, b"\r\n\r\n", headers_start) else {
            return Parse::Incomplete;
        };
        let headers = String::from_utf8_lossy(&buffer[headers_start..headers_end]);
        let Some((name, filename)) = content_disposition(&headers) else {
            return Parse::Invalid;
        };
        let value_start = headers_end + 4;
        if name == "file" {
            return Parse::Done(Form {
                fields,
                filename: filename.unwrap_or_default(),
            });
        }
        let ending = format!("\r\n{delimiter}");
        let Some(value_end) = find(buffer, ending.as_bytes(), value_start) else {
            return Parse::Incomplete;
        };
        fields.push((name, value_start..value_end));
        at = value_end + ending.len();
    }
}

/// The `name` (lower case) and `filename` of a part's Content-Disposition.
fn content_disposition(headers: &str) -> Option<(String, Option<String>)> {
    let line = headers.lines().find(|line| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let (_, value) = line.split_once(':')?;
    let mut name = None;
    let mut filename = None;
    for parameter in value.split(';').map(str::trim) {
        if let Some((key, quoted)) = parameter.split_once('=') {
            let unquoted = quoted.trim().trim_matches('"').to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "name" => name = Some(unquoted.to_ascii_lowercase()),
                "filename" => filename = Some(unquoted),
                _ => {}
            }
        }
    }
    Some((name?, filename))
}

impl Form {
    fn value<'a>(&self, buffer: &'a [u8], name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, range)| &buffer[range.clone()])
    }

    /// The buffer with `${filename}` in the key replaced by the file's name (its last path
    /// segment, as browsers send it), when the key holds it.
    fn substitute_filename(&self, buffer: &Bytes) -> Option<Bytes> {
        const PLACEHOLDER: &str = "${filename}";
        let (_, range) = self.fields.iter().find(|(field, _)| field == "key")?;
        let key = std::str::from_utf8(&buffer[range.clone()]).ok()?;
        if !key.contains(PLACEHOLDER) {
            return None;
        }
        let name = self
            .filename
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&self.filename);
        let key = key.replace(PLACEHOLDER, name);
        let mut out = BytesMut::with_capacity(buffer.len() + key.len());
        out.extend_from_slice(&buffer[..range.start]);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&buffer[range.end..]);
        Some(out.freeze())
    }

    /// The policy's `eq` and `starts-with` conditions against the fields. A form without a
    /// policy, or with one that does not parse, is left to s3s (which refuses the latter).
    fn check_policy(&self, buffer: &[u8], url_bucket: &str) -> Result<(), Error> {
        use s3s::post_policy::{PostPolicy, PostPolicyCondition};
        let Some(policy) = self
            .value(buffer, "policy")
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .and_then(|raw| PostPolicy::from_base64(raw.trim()).ok())
        else {
            return Ok(());
        };
        let text = |field: &str| -> Option<String> {
            if field == "bucket" {
                return Some(url_bucket.to_string());
            }
            self.value(buffer, field)
                .map(|raw| String::from_utf8_lossy(raw).into_owned())
        };
        for condition in &policy.conditions {
            let (operator, field, expected, holds) = match condition {
                PostPolicyCondition::Eq { field, value } => (
                    "eq",
                    field,
                    value,
                    text(field).as_deref() == Some(value.as_str()),
                ),
                PostPolicyCondition::StartsWith { field, prefix } => (
                    "starts-with",
                    field,
                    prefix,
                    text(field).unwrap_or_default().starts_with(prefix.as_str()),
                ),
                PostPolicyCondition::ContentLengthRange { .. } => continue,
            };
            if !holds {
                return Err(Error::AccessDenied {
                    detail: format!(
                        "Invalid according to Policy: Policy Condition failed: [\"{operator}\", \"${field}\", \"{expected}\"]"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A body whose first bytes were read ahead and are given back first.
pub struct Prefixed<B> {
    prefix: Option<Bytes>,
    inner: B,
}

impl<B> Prefixed<B> {
    /// The body as it is, nothing read ahead.
    pub fn unread(inner: B) -> Prefixed<B> {
        Prefixed {
            prefix: None,
            inner,
        }
    }

    fn with(prefix: Bytes, inner: B) -> Prefixed<B> {
        Prefixed {
            prefix: (!prefix.is_empty()).then_some(prefix),
            inner,
        }
    }
}

impl<B: hyper::body::Body<Data = Bytes> + Unpin> hyper::body::Body for Prefixed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, B::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(prefix))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let mut hint = self.inner.size_hint();
        if let Some(prefix) = &self.prefix {
            let extra = prefix.len() as u64;
            hint.set_lower(hint.lower() + extra);
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper + extra);
            }
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("a request").into_parts().0
    }

    #[test]
    fn presigned_urls_valid_for_over_a_week_or_negative_are_refused() {
        let url = |expires: &str| {
            format!(
                "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={expires}&X-Amz-Signature=00"
            )
        };
        for refused in ["604801", "-1", "soon"] {
            assert!(
                matches!(
                    refuse_early(&parts("GET", &url(refused), &[])),
                    Some(Error::AuthorizationQueryParameters { .. })
                ),
                "{refused}"
            );
        }
        for valid in ["0", "604800"] {
            assert!(
                refuse_early(&parts("GET", &url(valid), &[])).is_none(),
                "{valid}"
            );
        }
        // Not a presigned URL: the parameter is the client's business.
        assert!(refuse_early(&parts("GET", "/b/k?X-Amz-Expires=9999999", &[])).is_none());
    }

    #[test]
    fn only_unsigned_chunked_object_uploads_are_marked() {
        let unsigned = [
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("transfer-encoding", "chunked"),
        ];
        let mut upload = parts("PUT", "/b/k?partNumber=1&uploadId=u", &unsigned);
        mark_unknown_length(&mut upload);
        assert!(upload.extensions.get::<LengthUnknown>().is_some());
        assert_eq!(upload.headers[http::header::CONTENT_LENGTH], "0");
        for (method, uri) in [("PUT", "/b/k?acl"), ("PUT", "/b"), ("POST", "/b/k")] {
            let mut other = parts(method, uri, &unsigned);
            mark_unknown_length(&mut other);
            assert!(
                other.extensions.get::<LengthUnknown>().is_none(),
                "{method} {uri}"
            );
        }
        let mut signed = parts(
            "PUT",
            "/b/k",
            &[
                ("x-amz-content-sha256", "abc"),
                ("transfer-encoding", "chunked"),
            ],
        );
        mark_unknown_length(&mut signed);
        assert!(signed.extensions.get::<LengthUnknown>().is_none());
    }

    fn form(fields: &[(&str, &str)], filename: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--XX\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!("--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\r\nDATA\r\n--XX--\r\n")
                .as_bytes(),
        );
        body
    }

    #[test]
    fn form_fields_are_found_before_the_file_and_filename_substituted() {
        let body = form(
            &[("Key", "up/${filename}"), ("acl", "private")],
            "C:\\dir\\a b.txt",
        );
        let Parse::Done(parsed) = parse_fields(&body, "XX") else {
            panic!("a complete form parses");
        };
        assert_eq!(parsed.filename, "C:\\dir\\a b.txt");
        let buffer = Bytes::from(body.clone());
        let rewritten = parsed
            .substitute_filename(&buffer)
            .expect("the key changes");
        let Parse::Done(again) = parse_fields(&rewritten, "XX") else {
            panic!("the rewritten form parses");
        };
        assert_eq!(again.value(&rewritten, "key"), Some(&b"up/a b.txt"[..]));
        assert_eq!(again.value(&rewritten, "acl"), Some(&b"private"[..]));
        // Cut anywhere before the file's headers end, the form is not complete yet.
        let file_headers_end = find(&body, b"filename", 0).expect("the file part");
        assert!(matches!(
            parse_fields(&body[..file_headers_end], "XX"),
            Parse::Incomplete
        ));
        assert!(matches!(parse_fields(b"--XX--\r\n", "XX"), Parse::Invalid));
        let plain = form(&[("key", "fixed")], "f");
        let Parse::Done(parsed) = parse_fields(&plain, "XX") else {
            panic!("parses");
        };
        assert!(parsed.substitute_filename(&Bytes::from(plain)).is_none());
    }
}
