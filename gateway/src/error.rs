//! The gateway's one error type and the one place each error becomes an S3 error code and
//! HTTP status (`Error::to_s3`). Handlers return `Error`; the S3 edge converts.

use kvstore::redb;
use s3s::{S3Error, S3ErrorCode};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("bucket {bucket} already exists and is yours")]
    BucketAlreadyOwnedByYou { bucket: String },
    #[error("bucket {bucket} already exists and belongs to another user")]
    BucketAlreadyExists { bucket: String },
    #[error("bucket {bucket} is not empty (objects or multipart uploads remain)")]
    BucketNotEmpty { bucket: String },
    #[error("bucket name {bucket:?} is not valid: {reason}")]
    InvalidBucketName {
        bucket: String,
        reason: &'static str,
    },
    #[error("no object {key:?} in bucket {bucket}")]
    NoSuchKey { bucket: String, key: String },
    /// The newest version of the key is a delete marker: 404 NoSuchKey, saying so.
    #[error("no object {key:?} in bucket {bucket}: it was deleted")]
    KeyDeleted {
        bucket: String,
        key: String,
        marker_version_id: String,
    },
    /// `?torrent` of an object: S3 serves no torrent of it, and answers 404 NoSuchKey.
    #[error("no torrent is served for object {key:?} in bucket {bucket}")]
    NoTorrent { bucket: String, key: String },
    #[error("the version of {key:?} you named does not exist")]
    NoSuchVersion { key: String },
    /// A GET or HEAD of a delete marker by its version id: 405.
    #[error("the version named is a delete marker")]
    DeleteMarkerVersion {
        version_id: String,
        last_modified_ms: u64,
    },
    #[error("object key is longer than {limit} bytes")]
    KeyTooLong { limit: usize },
    #[error("object key {key:?} is refused: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("no multipart upload {upload_id}")]
    NoSuchUpload { upload_id: String },
    #[error("part {part_number}: {reason}")]
    InvalidPart { part_number: i32, reason: String },
    #[error("parts must be listed in ascending order of part number")]
    InvalidPartOrder,
    #[error(
        "part {part_number} is {size_bytes} bytes, below the 5 MiB minimum for all but the last part"
    )]
    EntityTooSmall { part_number: i32, size_bytes: u64 },
    #[error("the body is larger than the limit of {limit_bytes} bytes")]
    EntityTooLarge { limit_bytes: u64 },
    #[error("user metadata is larger than the limit of {limit_bytes} bytes")]
    MetadataTooLarge { limit_bytes: usize },
    #[error("the {what} you specified did not match what was received")]
    BadDigest { what: String },
    #[error("the Content-MD5 you specified is not valid")]
    InvalidDigest,
    #[error("the body ended after {received_bytes} of {expected_bytes} bytes")]
    IncompleteBody {
        expected_bytes: u64,
        received_bytes: u64,
    },
    #[error("the request body could not be read: {detail}")]
    Body { detail: String },
    #[error("at least one of the preconditions you specified did not hold ({condition})")]
    PreconditionFailed { condition: &'static str },
    /// A conditional read whose condition says the client's copy is current: 304, with the
    /// object's ETag and Last-Modified (a cache revalidates with them).
    #[error("not modified")]
    NotModified { etag: String, last_modified_ms: u64 },
    #[error("the range is not satisfiable for an object of {size_bytes} bytes")]
    InvalidRange { size_bytes: u64 },
    #[error("{detail}")]
    InvalidArgument { detail: String },
    #[error("{detail}")]
    InvalidRequest { detail: String },
    #[error("{detail}")]
    AccessDenied { detail: String },
    #[error("the access control list is not valid: {detail}")]
    MalformedAcl { detail: String },
    #[error("{detail}")]
    MalformedPolicy { detail: String },
    #[error("the bucket has no policy")]
    NoSuchBucketPolicy,
    #[error("the bucket has no public access block configuration")]
    NoSuchPublicAccessBlockConfiguration,
    #[error("The CORS configuration does not exist")]
    NoSuchCorsConfiguration,
    /// A preflight request no CORS rule of the bucket allows.
    #[error("{detail}")]
    CorsForbidden { detail: String },
    #[error("{detail}")]
    BadRequest { detail: String },
    #[error("{detail}")]
    MalformedXml { detail: String },
    #[error("the gateway has no credentials: a store's buckets need an owner")]
    NoCredentials,
    #[error("{detail}")]
    AuthorizationQueryParameters { detail: String },
    #[error("Request has expired")]
    RequestExpired,
    #[error("{what} is not implemented by this gateway")]
    NotImplemented { what: String },
    #[error("the storage node failed: {source}")]
    Node { source: Box<client::Error> },
    #[error("the metadata store failed: {source}")]
    Store { source: Box<redb::Error> },
    #[error("the metadata store cannot be opened: {source}")]
    Open { source: Box<kvstore::Error> },
    #[error("a stored record is corrupt: {detail}")]
    Corrupt { detail: String },
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("an internal task failed: {detail}")]
    Task { detail: String },
}

impl Error {
    /// The S3 error code (which implies the HTTP status) and message for this error: the one
    /// mapping of the gateway.
    pub fn to_s3(&self) -> S3Error {
        let code = match self {
            Error::NoSuchBucket { .. } => S3ErrorCode::NoSuchBucket,
            Error::BucketAlreadyOwnedByYou { .. } => S3ErrorCode::BucketAlreadyOwnedByYou,
            Error::BucketAlreadyExists { .. } => S3ErrorCode::BucketAlreadyExists,
            Error::BucketNotEmpty { .. } => S3ErrorCode::BucketNotEmpty,
            Error::InvalidBucketName { .. } => S3ErrorCode::InvalidBucketName,
            Error::NoSuchKey { .. } | Error::KeyDeleted { .. } | Error::NoTorrent { .. } => {
                S3ErrorCode::NoSuchKey
            }
            Error::NoSuchVersion { .. } => S3ErrorCode::NoSuchVersion,
            Error::DeleteMarkerVersion { .. } => S3ErrorCode::MethodNotAllowed,
            Error::KeyTooLong { .. } => S3ErrorCode::KeyTooLongError,
            Error::InvalidKey { .. } => S3ErrorCode::InvalidArgument,
            Error::NoSuchUpload { .. } => S3ErrorCode::NoSuchUpload,
            Error::InvalidPart { .. } => S3ErrorCode::InvalidPart,
            Error::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
            Error::EntityTooSmall { .. } => S3ErrorCode::EntityTooSmall,
            Error::EntityTooLarge { .. } => S3ErrorCode::EntityTooLarge,
            Error::MetadataTooLarge { .. } => S3ErrorCode::MetadataTooLarge,
            Error::BadDigest { .. } => S3ErrorCode::BadDigest,
            Error::InvalidDigest => S3ErrorCode::InvalidDigest,
            Error::IncompleteBody { .. } | Error::Body { .. } => S3ErrorCode::IncompleteBody,
            Error::PreconditionFailed { .. } => S3ErrorCode::PreconditionFailed,
            Error::NotModified { .. } => S3ErrorCode::NotModified,
            Error::InvalidRange { .. } => S3ErrorCode::InvalidRange,
            Error::InvalidArgument { .. } => S3ErrorCode::InvalidArgument,
            Error::InvalidRequest { .. } => S3ErrorCode::InvalidRequest,
            Error::AccessDenied { .. } => S3ErrorCode::AccessDenied,
            Error::MalformedAcl { .. } => S3ErrorCode::MalformedACLError,
            Error::MalformedPolicy { .. } => S3ErrorCode::MalformedPolicy,
            Error::NoSuchBucketPolicy => S3ErrorCode::NoSuchBucketPolicy,
            Error::NoSuchPublicAccessBlockConfiguration => {
                S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into())
            }
            Error::NoSuchCorsConfiguration => S3ErrorCode::NoSuchCORSConfiguration,
            Error::CorsForbidden { .. } => S3ErrorCode::Custom("AccessForbidden".into()),
            Error::BadRequest { .. } => S3ErrorCode::Custom("BadRequest".into()),
            Error::MalformedXml { .. } => S3ErrorCode::MalformedXML,
            Error::AuthorizationQueryParameters { .. } => {
                S3ErrorCode::AuthorizationQueryParametersError
            }
            Error::RequestExpired => S3ErrorCode::AccessDenied,
            Error::NotImplemented { .. } => S3ErrorCode::NotImplemented,
            // A node that cannot be reached is a transient condition clients retry.
            Error::Node { source } => match source.as_ref() {
                client::Error::Unreachable { .. } => S3ErrorCode::ServiceUnavailable,
                client::Error::Node(node) if node.kind == "busy" => S3ErrorCode::SlowDown,
                _ => S3ErrorCode::InternalError,
            },
            Error::Store { .. }
            | Error::NoCredentials
            | Error::Open { .. }
            | Error::Corrupt { .. }
            | Error::Io { .. }
            | Error::Task { .. } => S3ErrorCode::InternalError,
        };
        if matches!(
            code,
            S3ErrorCode::InternalError | S3ErrorCode::ServiceUnavailable
        ) {
            tracing::error!(error = %self, "request failed");
        }
        let mut error = S3Error::with_message(code, self.to_string());
        // Codes s3s does not know carry their status here.
        let status = match self {
            Error::NoSuchPublicAccessBlockConfiguration => Some(http::StatusCode::NOT_FOUND),
            Error::CorsForbidden { .. } => Some(http::StatusCode::FORBIDDEN),
            Error::BadRequest { .. } => Some(http::StatusCode::BAD_REQUEST),
            _ => None,
        };
        if let Some(status) = status {
            error.set_status_code(status);
        }
        if let Some(headers) = self.response_headers() {
            error.set_headers(headers);
        }
        error
    }

    /// Headers an error answer carries beyond the XML body (which s3s replaces its own headers
    /// with, so the content type is among them).
    fn response_headers(&self) -> Option<http::HeaderMap> {
        let mut headers = http::HeaderMap::new();
        match self {
            Error::NotModified {
                etag,
                last_modified_ms,
            } => {
                insert_header(&mut headers, http::header::ETAG, &format!("\"{etag}\""));
                insert_header(
                    &mut headers,
                    http::header::LAST_MODIFIED,
                    &http_date(*last_modified_ms),
                );
            }
            Error::KeyDeleted {
                marker_version_id, ..
            } => {
                insert_header(&mut headers, DELETE_MARKER.clone(), "true");
                insert_header(&mut headers, VERSION_ID.clone(), marker_version_id);
            }
            Error::DeleteMarkerVersion {
                version_id,
                last_modified_ms,
            } => {
                insert_header(&mut headers, DELETE_MARKER.clone(), "true");
                insert_header(&mut headers, VERSION_ID.clone(), version_id);
                insert_header(
                    &mut headers,
                    http::header::LAST_MODIFIED,
                    &http_date(*last_modified_ms),
                );
            }
            _ => return None,
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
        Some(headers)
    }
}

const DELETE_MARKER: http::HeaderName = http::HeaderName::from_static("x-amz-delete-marker");
const VERSION_ID: http::HeaderName = http::HeaderName::from_static("x-amz-version-id");

fn insert_header(headers: &mut http::HeaderMap, name: http::HeaderName, value: &str) {
    if let Ok(value) = http::HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// An HTTP date (RFC 9110 IMF-fixdate) of a time in milliseconds since the Unix epoch.
pub(crate) fn http_date(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let mut out = Vec::new();
    match s3s::dto::Timestamp::from(time).format(s3s::dto::TimestampFormat::HttpDate, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

impl Error {
    /// The HTTP answer for this error, for the layer in front of s3s (s3s answers the rest).
    pub(crate) fn to_http_response(&self) -> s3s::HttpResponse {
        match self.to_s3().to_http_response() {
            Ok(response) => response,
            Err(_) => {
                let mut response = s3s::HttpResponse::new(s3s::Body::empty());
                *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }
}

impl From<Error> for S3Error {
    fn from(error: Error) -> S3Error {
        error.to_s3()
    }
}

/// Every redb error kind converts into the store error.
macro_rules! store_error {
    ($($kind:ty),*) => {$(
        impl From<$kind> for Error {
            fn from(error: $kind) -> Error {
                Error::Store { source: Box::new(error.into()) }
            }
        }
    )*};
}
impl From<client::Error> for Error {
    fn from(error: client::Error) -> Error {
        Error::Node {
            source: Box::new(error),
        }
    }
}

impl From<kvstore::Error> for Error {
    fn from(error: kvstore::Error) -> Error {
        Error::Open {
            source: Box::new(error),
        }
    }
}

impl From<redb::Error> for Error {
    fn from(error: redb::Error) -> Error {
        Error::Store {
            source: Box::new(error),
        }
    }
}

store_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub type Result<T, E = Error> = std::result::Result<T, E>;
