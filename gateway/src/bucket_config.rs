//! The operations on what a bucket says about access: ACLs (of the bucket and of its objects),
//! the bucket policy, the PublicAccessBlock configuration and the CORS rules. Each change is one store
//! transaction that reads the bucket as committed, so a PublicAccessBlock set meanwhile is
//! never bypassed. Who may call each is decided in `access.rs` (and, for an object's ACL,
//! by the object: [`ObjectCheck`]).

use crate::access::{self, Action, Decision, ObjectCheck};
use crate::acl::{self, Acl, Permission};
use crate::cors;
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::s3::{Gateway, bucket_grants, check_public_acl, requester};
use crate::store::{BucketRecord, PublicAccessBlock};
use s3s::dto;
use s3s::{S3Request, S3Response, S3Result};
use std::collections::BTreeSet;

/// The ACL a PutBucketAcl or PutObjectAcl gives: from exactly one of a canned ACL, grant
/// headers or an `AccessControlPolicy` body.
fn acl_of_request(
    canned: Option<&str>,
    policy: Option<&dto::AccessControlPolicy>,
    grants: &[(Permission, Option<&str>)],
    owner: &str,
    bucket_owner: &str,
    users: &BTreeSet<String>,
) -> Result<Acl> {
    let from_grants = Acl::from_grant_headers(grants, users)?;
    match (canned, policy, from_grants) {
        (Some(canned), None, None) => Acl::canned(canned, owner, bucket_owner),
        (None, Some(policy), None) => Acl::from_policy(policy, owner, users),
        (None, None, Some(acl)) => Ok(acl),
        (None, None, None) => Err(Error::InvalidRequest {
            detail: "an ACL is needed: x-amz-acl, x-amz-grant-* headers or an AccessControlPolicy"
                .into(),
        }),
        _ => Err(Error::InvalidRequest {
            detail: "give one of x-amz-acl, x-amz-grant-* headers or an AccessControlPolicy".into(),
        }),
    }
}

fn block_of(config: &dto::PublicAccessBlockConfiguration) -> PublicAccessBlock {
    PublicAccessBlock {
        block_public_acls: config.block_public_acls.unwrap_or(false),
        ignore_public_acls: config.ignore_public_acls.unwrap_or(false),
        block_public_policy: config.block_public_policy.unwrap_or(false),
        restrict_public_buckets: config.restrict_public_buckets.unwrap_or(false),
    }
}

impl Gateway {
    pub(crate) async fn get_bucket_acl_op(
        &self,
        req: S3Request<dto::GetBucketAclInput>,
    ) -> S3Result<S3Response<dto::GetBucketAclOutput>> {
        let state = self.bucket_state(&req.input.bucket)?;
        Ok(S3Response::new(dto::GetBucketAclOutput {
            owner: Some(acl::owner(&state.record.owner)),
            grants: Some(state.record.acl().to_dto()),
        }))
    }

    pub(crate) async fn put_bucket_acl_op(
        &self,
        req: S3Request<dto::PutBucketAclInput>,
    ) -> S3Result<S3Response<dto::PutBucketAclOutput>> {
        let input = req.input;
        let users = self.users.clone();
        let bucket = input.bucket.clone();
        self.store(move |store| {
            store.update_bucket(&bucket, |record| {
                let grants = bucket_grants(
                    input.grant_full_control.as_deref(),
                    input.grant_read.as_deref(),
                    input.grant_read_acp.as_deref(),
                    input.grant_write.as_deref(),
                    input.grant_write_acp.as_deref(),
                );
                let acl = acl_of_request(
                    input.acl.as_ref().map(dto::BucketCannedACL::as_str),
                    input.access_control_policy.as_ref(),
                    &grants,
                    &record.owner,
                    &record.owner,
                    &users,
                )?;
                check_public_acl(record, &acl)?;
                record.acl = Some(acl);
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(dto::PutBucketAclOutput {}))
    }

    pub(crate) async fn get_object_acl_op(
        &self,
        req: S3Request<dto::GetObjectAclInput>,
    ) -> S3Result<S3Response<dto::GetObjectAclOutput>> {
        let user = requester(&req);
        let check = req.extensions.get::<ObjectCheck>().map(|check| check.0);
        let input = req.input;
        let state = self.bucket_state(&input.bucket)?;
        let record = self
            .object_for(
                user.as_deref(),
                &input.bucket,
                &input.key,
                input.version_id.as_deref(),
                check,
            )
            .await?;
        let owner = record
            .owner
            .clone()
            .unwrap_or_else(|| state.record.owner.clone());
        let grants = record.acl.clone().unwrap_or_else(|| Acl::private(&owner));
        Ok(S3Response::new(dto::GetObjectAclOutput {
            owner: Some(acl::owner(&owner)),
            grants: Some(grants.to_dto()),
            ..Default::default()
        }))
    }

    pub(crate) async fn put_object_acl_op(
        &self,
        req: S3Request<dto::PutObjectAclInput>,
    ) -> S3Result<S3Response<dto::PutObjectAclOutput>> {
        let user = requester(&req);
        let check = req.extensions.get::<ObjectCheck>().map(|check| check.0);
        let input = req.input;
        let users = self.users.clone();
        let bucket_name = input.bucket.clone();
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let writer = user.clone();
        let version = input.version_id.clone();
        let updated = self
            .store(move |store| {
                store.update_object(
                    &bucket,
                    &key,
                    version.as_deref(),
                    |bucket_record, record| {
                        if let Some(permission) = check
                            && !access::object_allows(
                                bucket_record,
                                record,
                                writer.as_deref(),
                                permission,
                            )
                        {
                            return Err(access::denied());
                        }
                        let owner = record
                            .owner
                            .clone()
                            .unwrap_or_else(|| bucket_record.owner.clone());
                        let grants = [
                            (Permission::FullControl, input.grant_full_control.as_deref()),
                            (Permission::Read, input.grant_read.as_deref()),
                            (Permission::ReadAcp, input.grant_read_acp.as_deref()),
                            (Permission::Write, input.grant_write.as_deref()),
                            (Permission::WriteAcp, input.grant_write_acp.as_deref()),
                        ];
                        let acl = acl_of_request(
                            input.acl.as_ref().map(dto::ObjectCannedACL::as_str),
                            input.access_control_policy.as_ref(),
                            &grants,
                            &owner,
                            &bucket_record.owner,
                            &users,
                        )?;
                        check_public_acl(bucket_record, &acl)?;
                        record.acl = Some(acl);
                        Ok(())
                    },
                )
            })
            .await;
        match updated {
            Ok(()) => Ok(S3Response::new(dto::PutObjectAclOutput::default())),
            // Whether the object exists is only for those who may list the bucket.
            Err(missing @ Error::NoSuchKey { .. }) if check.is_some() => {
                let state = self.bucket_state(&bucket_name)?;
                match access::decide(
                    &bucket_name,
                    &state,
                    user.as_deref(),
                    Action::ListBucket,
                    None,
                ) {
                    Decision::Allow => Err(missing.into()),
                    _ => Err(access::denied().into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn get_bucket_policy_op(
        &self,
        req: S3Request<dto::GetBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::GetBucketPolicyOutput>> {
        let state = self.bucket_state(&req.input.bucket)?;
        let policy = state
            .record
            .policy
            .clone()
            .ok_or(Error::NoSuchBucketPolicy)?;
        Ok(S3Response::new(dto::GetBucketPolicyOutput {
            policy: Some(policy),
        }))
    }

    pub(crate) async fn put_bucket_policy_op(
        &self,
        req: S3Request<dto::PutBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::PutBucketPolicyOutput>> {
        let input = req.input;
        let policy = Policy::parse(&input.policy, &input.bucket, Some(&self.users))?;
        let bucket = input.bucket.clone();
        self.store(move |store| {
            store.update_bucket(&bucket, |record| {
                if policy.is_public() && record.block().block_public_policy {
                    return Err(Error::AccessDenied {
                        detail:
                            "Access Denied: the bucket's PublicAccessBlock blocks public policies"
                                .into(),
                    });
                }
                record.policy = Some(input.policy);
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(dto::PutBucketPolicyOutput {}))
    }

    pub(crate) async fn delete_bucket_policy_op(
        &self,
        req: S3Request<dto::DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketPolicyOutput>> {
        let bucket = req.input.bucket;
        self.store(move |store| {
            store.update_bucket(&bucket, |record| {
                record.policy = None;
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(dto::DeleteBucketPolicyOutput {}))
    }

    pub(crate) async fn get_bucket_policy_status_op(
        &self,
        req: S3Request<dto::GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<dto::GetBucketPolicyStatusOutput>> {
        let state = self.bucket_state(&req.input.bucket)?;
        let policy = state.policy.as_ref().ok_or(Error::NoSuchBucketPolicy)?;
        Ok(S3Response::new(dto::GetBucketPolicyStatusOutput {
            policy_status: Some(dto::PolicyStatus {
                is_public: Some(policy.is_public()),
            }),
        }))
    }

    pub(crate) async fn get_bucket_cors_op(
        &self,
        req: S3Request<dto::GetBucketCorsInput>,
    ) -> S3Result<S3Response<dto::GetBucketCorsOutput>> {
        let state = self.bucket_state(&req.input.bucket)?;
        let rules = state
            .record
            .cors
            .as_deref()
            .ok_or(Error::NoSuchCorsConfiguration)?;
        Ok(S3Response::new(dto::GetBucketCorsOutput {
            cors_rules: Some(cors::rules_to_dto(rules)),
        }))
    }

    pub(crate) async fn put_bucket_cors_op(
        &self,
        req: S3Request<dto::PutBucketCorsInput>,
    ) -> S3Result<S3Response<dto::PutBucketCorsOutput>> {
        let input = req.input;
        let rules = cors::rules_of(&input.cors_configuration)?;
        let bucket = input.bucket;
        self.store(move |store| {
            store.update_bucket(&bucket, |record| {
                record.cors = Some(rules);
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(dto::PutBucketCorsOutput {}))
    }

    pub(crate) async fn delete_bucket_cors_op(
        &self,
        req: S3Request<dto::DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketCorsOutput>> {
        let bucket = req.input.bucket;
        self.store(move |store| {
            store.update_bucket(&bucket, |record| {
                record.cors = None;
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(dto::DeleteBucketCorsOutput {}))
    }

    pub(crate) async fn get_public_access_block_op(
        &self,
        req: S3Request<dto::GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<dto::GetPublicAccessBlockOutput>> {
        let state = self.bucket_state(&req.input.bucket)?;
        let block = state
            .record
            .public_access_block
            .ok_or(Error::NoSuchPublicAccessBlockConfiguration)?;
        Ok(S3Response::new(dto::GetPublicAccessBlockOutput {
            public_access_block_configuration: Some(dto::PublicAccessBlockConfiguration {
                block_public_acls: Some(block.block_public_acls),
                ignore_public_acls: Some(block.ignore_public_acls),
                block_public_policy: Some(block.block_public_policy),
                restrict_public_buckets: Some(block.restrict_public_buckets),
            }),
        }))
    }

    pub(crate) async fn put_public_access_block_op(
        &self,
        req: S3Request<dto::PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<dto::PutPublicAccessBlockOutput>> {
        let input = req.input;
        let block = block_of(&input.public_access_block_configuration);
        let bucket = input.bucket;
        self.store(move |store| {
            store.update_bucket(&bucket, |record| {
                record.public_access_block = Some(block);
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(dto::PutPublicAccessBlockOutput {}))
    }

    pub(crate) async fn delete_public_access_block_op(
        &self,
        req: S3Request<dto::DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<dto::DeletePublicAccessBlockOutput>> {
        let bucket = req.input.bucket;
        self.store(move |store| {
            store.update_bucket(&bucket, |record: &mut BucketRecord| {
                record.public_access_block = None;
                Ok(())
            })
        })
        .await?;
        Ok(S3Response::new(dto::DeletePublicAccessBlockOutput {}))
    }
}
