//! Bucket versioning: Put/GetBucketVersioning and ListObjectVersions. How versions are kept is
//! the store's (`store/versions.rs`); reads, writes and deletes of objects name versions in
//! `s3.rs`.

use crate::acl;
use crate::error::Error;
use crate::s3::{Gateway, url_encode, url_encoding};
use crate::store::{NULL_VERSION, Version, VersionListed, Versioning};
use s3s::dto::{self, ETag, Timestamp};
use s3s::{S3Request, S3Response, S3Result};
use std::time::{Duration, UNIX_EPOCH};

fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

fn shown(version_id: Option<&str>) -> String {
    version_id.unwrap_or(NULL_VERSION).to_string()
}

impl Gateway {
    pub(crate) async fn get_bucket_versioning_op(
        &self,
        req: S3Request<dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
        let state = self.bucket_state(&req.input.bucket)?;
        let status = match state.record.versioning {
            // A bucket that never had versioning answers without a status.
            Versioning::Unversioned => None,
            Versioning::Enabled => Some(dto::BucketVersioningStatus::ENABLED),
            Versioning::Suspended => Some(dto::BucketVersioningStatus::SUSPENDED),
        };
        Ok(S3Response::new(dto::GetBucketVersioningOutput {
            status: status.map(dto::BucketVersioningStatus::from_static),
            mfa_delete: None,
        }))
    }

    pub(crate) async fn put_bucket_versioning_op(
        &self,
        req: S3Request<dto::PutBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::PutBucketVersioningOutput>> {
        let input = req.input;
        let configuration = &input.versioning_configuration;
        if configuration
            .mfa_delete
            .as_ref()
            .is_some_and(|mfa| mfa.as_str() == dto::MFADelete::ENABLED)
        {
            return Err(Error::NotImplemented {
                what: "MFA delete".into(),
            }
            .into());
        }
        let versioning = match configuration.status.as_ref().map(|s| s.as_str()) {
            Some(dto::BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(dto::BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            _ => {
                return Err(Error::MalformedXml {
                    detail: "the versioning status must be Enabled or Suspended".into(),
                }
                .into());
            }
        };
        let bucket = input.bucket;
        self.store(move |store| {
            store.update_bucket(&bucket, |record| {
                record.versioning = versioning;
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(dto::PutBucketVersioningOutput {}))
    }

    pub(crate) async fn list_object_versions_op(
        &self,
        req: S3Request<dto::ListObjectVersionsInput>,
    ) -> S3Result<S3Response<dto::ListObjectVersionsOutput>> {
        let input = req.input;
        let max = self.max_keys(input.max_keys);
        let url = url_encoding(input.encoding_type.as_ref())?;
        let encode = |text: &str| {
            if url {
                url_encode(text)
            } else {
                text.to_string()
            }
        };
        let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = nonempty(&input.delimiter);
        let key_marker = nonempty(&input.key_marker);
        let version_marker = nonempty(&input.version_id_marker);
        if version_marker.is_some() && key_marker.is_none() {
            return Err(Error::InvalidArgument {
                detail: "A version-id marker cannot be specified without a key marker.".into(),
            }
            .into());
        }
        let listing = {
            let (bucket, prefix, delimiter, key_marker, version_marker) = (
                input.bucket.clone(),
                prefix.clone(),
                delimiter.clone(),
                key_marker.clone(),
                version_marker.clone(),
            );
            self.store(move |store| {
                store.versions(
                    &bucket,
                    &prefix,
                    delimiter.as_deref(),
                    key_marker.as_deref(),
                    version_marker.as_deref(),
                    max,
                )
            })
            .await?
        };
        let bucket_owner = self.bucket_owner(&input.bucket);
        let (next_key, next_version) = match (listing.truncated, listing.entries.last()) {
            (true, Some(VersionListed::Prefix(prefix))) => (Some(encode(prefix)), None),
            (true, Some(VersionListed::Version { key, version, .. })) => {
                let id = match version {
                    Version::Object(record) => record.version_id.as_deref(),
                    Version::DeleteMarker(marker) => marker.version_id.as_deref(),
                };
                (Some(encode(key)), Some(shown(id)))
            }
            _ => (None, None),
        };
        let mut versions = Vec::new();
        let mut delete_markers = Vec::new();
        let mut common_prefixes = Vec::new();
        for entry in listing.entries {
            match entry {
                VersionListed::Prefix(prefix) => common_prefixes.push(dto::CommonPrefix {
                    prefix: Some(encode(&prefix)),
                }),
                VersionListed::Version {
                    key,
                    version: Version::Object(record),
                    is_latest,
                } => versions.push(dto::ObjectVersion {
                    key: Some(encode(&key)),
                    version_id: Some(shown(record.version_id.as_deref())),
                    is_latest: Some(is_latest),
                    e_tag: Some(ETag::Strong(record.etag.clone())),
                    size: Some(record.size_bytes as i64),
                    last_modified: Some(timestamp(record.last_modified_ms)),
                    owner: Some(acl::owner(record.owner.as_deref().unwrap_or(&bucket_owner))),
                    storage_class: Some(dto::ObjectVersionStorageClass::from_static(
                        dto::ObjectVersionStorageClass::STANDARD,
                    )),
                    ..Default::default()
                }),
                VersionListed::Version {
                    key,
                    version: Version::DeleteMarker(marker),
                    is_latest,
                } => delete_markers.push(dto::DeleteMarkerEntry {
                    key: Some(encode(&key)),
                    version_id: Some(shown(marker.version_id.as_deref())),
                    is_latest: Some(is_latest),
                    last_modified: Some(timestamp(marker.last_modified_ms)),
                    owner: Some(acl::owner(marker.owner.as_deref().unwrap_or(&bucket_owner))),
                }),
            }
        }
        Ok(S3Response::new(dto::ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(encode(&prefix)),
            delimiter: delimiter.as_deref().map(encode),
            key_marker: Some(key_marker.as_deref().map(encode).unwrap_or_default()),
            version_id_marker: Some(version_marker.unwrap_or_default()),
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            max_keys: Some(max as i32),
            is_truncated: Some(listing.truncated),
            encoding_type: input.encoding_type,
            versions: Some(versions),
            delete_markers: Some(delete_markers),
            common_prefixes: Some(common_prefixes),
            ..Default::default()
        }))
    }
}
