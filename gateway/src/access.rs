//! Who may do what: s3s calls [`Access::check`] for every request once its signature is
//! verified (or found absent), before the operation's input is read. A request to a bucket
//! that does not exist is answered 404 NoSuchBucket here, whoever sends it, before any access
//! decision.

use crate::error::Error;
use crate::store::Store;
use s3s::S3Result;
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use std::sync::Arc;

pub struct Access {
    store: Arc<Store>,
}

impl Access {
    pub fn new(store: Arc<Store>) -> Access {
        Access { store }
    }
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let bucket = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.as_ref()),
        };
        if let Some(bucket) = bucket
            && cx.s3_op().name() != "CreateBucket"
            && self.store.cached_bucket(bucket).is_none()
        {
            return Err(Error::NoSuchBucket {
                bucket: bucket.to_string(),
            }
            .into());
        }
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(Error::AccessDenied {
                detail: "Access Denied".into(),
            }
            .into()),
        }
    }
}
