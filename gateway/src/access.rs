//! Who may do what. s3s calls [`Access::check`] for every request once its signature is
//! verified (or found absent), before the operation's input is read; the bucket's state comes
//! from the store's memory, so the check reads nothing from disk.
//!
//! The order of the decision, for a request to a bucket:
//! 1. the bucket must exist (404 NoSuchBucket, whoever asks);
//! 2. a Deny of the bucket policy that matches the request refuses it, the owner's included;
//! 3. the bucket's owner may do anything with the bucket and its objects;
//! 4. an Allow of the policy allows (not, while the policy is public and the bucket's
//!    PublicAccessBlock restricts public buckets, to anyone but the owner);
//! 5. the bucket's ACL: READ lists it, WRITE writes and deletes its objects, READ_ACP and
//!    WRITE_ACP read and write its ACL;
//! 6. reading an object, or its ACL, is decided by the object's owner and ACL once the object
//!    is read ([`ObjectCheck`], applied by the handler);
//! 7. everything else (policy, CORS, versioning, PublicAccessBlock, deleting the bucket) is
//!    the owner's alone.
//!
//! Grants to everyone and to every signed request count for nothing while the bucket's
//! PublicAccessBlock ignores public ACLs. Operations whose object is named in their body
//! (DeleteObjects, a form upload) are decided per object by their handler.

use crate::acl::Permission;
use crate::error::Error;
use crate::policy::{Effect, PolicyAction};
use crate::store::{BucketRecord, BucketState, ObjectRecord, Store};
use s3s::S3Result;
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use std::sync::Arc;

/// What an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    ListBucket,
    GetObject,
    PutObject,
    DeleteObject,
    GetBucketAcl,
    PutBucketAcl,
    GetObjectAcl,
    PutObjectAcl,
    /// Only the bucket's owner.
    OwnerOnly,
    /// Any signed request (ListBuckets, CreateBucket).
    Signed,
    /// Decided by the handler, per object named in the body.
    PerObject,
}

impl Action {
    /// The action of an s3s operation.
    pub fn of(operation: &str) -> Action {
        match operation {
            "ListObjects"
            | "ListObjectsV2"
            | "ListObjectVersions"
            | "ListMultipartUploads"
            | "HeadBucket"
            | "GetBucketLocation" => Action::ListBucket,
            "GetObject" | "HeadObject" | "GetObjectAttributes" | "GetObjectTorrent" => {
                Action::GetObject
            }
            "PutObject"
            | "CopyObject"
            | "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload"
            | "AbortMultipartUpload"
            | "ListParts" => Action::PutObject,
            "DeleteObject" => Action::DeleteObject,
            "GetBucketAcl" => Action::GetBucketAcl,
            "PutBucketAcl" => Action::PutBucketAcl,
            "GetObjectAcl" => Action::GetObjectAcl,
            "PutObjectAcl" => Action::PutObjectAcl,
            "ListBuckets" | "CreateBucket" => Action::Signed,
            "DeleteObjects" | "PostObject" => Action::PerObject,
            _ => Action::OwnerOnly,
        }
    }

    fn policy_action(self) -> Option<PolicyAction> {
        match self {
            Action::ListBucket => Some(PolicyAction::ListBucket),
            Action::GetObject => Some(PolicyAction::GetObject),
            Action::PutObject => Some(PolicyAction::PutObject),
            Action::DeleteObject => Some(PolicyAction::DeleteObject),
            _ => None,
        }
    }
}

/// What the bucket says about a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// Up to the object: its owner, or a grant of this permission in its ACL.
    Object(Permission),
}

/// The bucket's decision on `action` by `user` (`None`: anonymous) on `key` (none for an
/// action on the bucket itself).
pub fn decide(
    bucket: &str,
    state: &BucketState,
    user: Option<&str>,
    action: Action,
    key: Option<&str>,
) -> Decision {
    let record = &state.record;
    let block = record.block();
    let policy_verdict = match (&state.policy, action.policy_action()) {
        (Some(policy), Some(policy_action)) => {
            let resource = match key {
                Some(key) => format!("{bucket}/{key}"),
                None => bucket.to_string(),
            };
            policy.evaluate(user, policy_action, &resource)
        }
        _ => None,
    };
    if policy_verdict == Some(Effect::Deny) {
        return Decision::Deny;
    }
    if user == Some(record.owner.as_str()) {
        return Decision::Allow;
    }
    let restricted = block.restrict_public_buckets
        && state
            .policy
            .as_ref()
            .is_some_and(|policy| policy.is_public());
    if policy_verdict == Some(Effect::Allow) && !restricted {
        return Decision::Allow;
    }
    let acl = record.acl();
    let granted = |permission| acl.allows(user, permission, block.ignore_public_acls);
    let allowed = match action {
        Action::ListBucket => granted(Permission::Read),
        Action::PutObject | Action::DeleteObject => granted(Permission::Write),
        Action::GetBucketAcl => granted(Permission::ReadAcp),
        Action::PutBucketAcl => granted(Permission::WriteAcp),
        Action::GetObject => return Decision::Object(Permission::Read),
        Action::GetObjectAcl => return Decision::Object(Permission::ReadAcp),
        Action::PutObjectAcl => return Decision::Object(Permission::WriteAcp),
        Action::Signed => user.is_some(),
        Action::OwnerOnly | Action::PerObject => false,
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny
    }
}

/// Whether the object's owner or ACL gives `permission` to `user`.
pub fn object_allows(
    bucket: &BucketRecord,
    record: &ObjectRecord,
    user: Option<&str>,
    permission: Permission,
) -> bool {
    let owner = record.owner.as_deref().unwrap_or(&bucket.owner);
    if user == Some(owner) {
        return true;
    }
    record
        .acl
        .as_ref()
        .is_some_and(|acl| acl.allows(user, permission, bucket.block().ignore_public_acls))
}

/// Left in a request's extensions by [`Access::check`] when the object decides: the handler
/// reads the object and applies [`object_allows`] with this permission.
#[derive(Clone, Copy, Debug)]
pub struct ObjectCheck(pub Permission);

pub fn denied() -> Error {
    Error::AccessDenied {
        detail: "Access Denied".into(),
    }
}

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
        let action = Action::of(cx.s3_op().name());
        let user = cx.credentials().map(|c| c.access_key.clone());
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => {
                return match user {
                    Some(_) => Ok(()),
                    None => Err(denied().into()),
                };
            }
            S3Path::Bucket { bucket } => (bucket.to_string(), None),
            S3Path::Object { bucket, key } => (bucket.to_string(), Some(key.to_string())),
        };
        if cx.s3_op().name() == "CreateBucket" {
            return match user {
                Some(_) => Ok(()),
                None => Err(denied().into()),
            };
        }
        let Some(state) = self.store.cached_bucket(&bucket) else {
            return Err(Error::NoSuchBucket { bucket }.into());
        };
        if action == Action::PerObject {
            return Ok(());
        }
        match decide(&bucket, &state, user.as_deref(), action, key.as_deref()) {
            Decision::Allow => Ok(()),
            Decision::Deny => Err(denied().into()),
            Decision::Object(permission) => {
                cx.extensions_mut().insert(ObjectCheck(permission));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Acl;
    use crate::policy::Policy;
    use crate::store::PublicAccessBlock;

    fn state(acl: Option<&str>, policy: Option<&str>, block: PublicAccessBlock) -> BucketState {
        let mut record = BucketRecord::new("alice", 0);
        record.acl = acl.map(|canned| Acl::canned(canned, "alice", "alice").expect("canned"));
        record.public_access_block = Some(block);
        BucketState {
            policy: policy.map(|text| Policy::parse(text, "b", None).expect("policy")),
            record,
        }
    }

    #[test]
    fn the_owner_may_do_anything_but_what_a_deny_forbids() {
        let bucket = state(
            None,
            Some(
                r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/keep/*"}}"#,
            ),
            PublicAccessBlock::default(),
        );
        let owner = |action, key| decide("b", &bucket, Some("alice"), action, key);
        assert_eq!(owner(Action::OwnerOnly, None), Decision::Allow);
        assert_eq!(owner(Action::GetObject, Some("keep/x")), Decision::Allow);
        assert_eq!(owner(Action::DeleteObject, Some("keep/x")), Decision::Deny);
        assert_eq!(owner(Action::DeleteObject, Some("other")), Decision::Allow);
        assert_eq!(
            decide("b", &bucket, Some("bob"), Action::OwnerOnly, None),
            Decision::Deny
        );
        assert_eq!(
            decide("b", &bucket, None, Action::Signed, None),
            Decision::Deny
        );
    }

    #[test]
    fn acls_decide_for_others_and_public_access_block_limits_them() {
        let open = state(
            Some("public-read-write"),
            None,
            PublicAccessBlock::default(),
        );
        assert_eq!(
            decide("b", &open, None, Action::ListBucket, None),
            Decision::Allow
        );
        assert_eq!(
            decide("b", &open, None, Action::PutObject, Some("k")),
            Decision::Allow
        );
        assert_eq!(
            decide("b", &open, None, Action::PutBucketAcl, None),
            Decision::Deny
        );
        assert_eq!(
            decide("b", &open, None, Action::GetObject, Some("k")),
            Decision::Object(Permission::Read)
        );
        let ignored = state(
            Some("public-read-write"),
            None,
            PublicAccessBlock {
                ignore_public_acls: true,
                ..PublicAccessBlock::default()
            },
        );
        assert_eq!(
            decide("b", &ignored, None, Action::ListBucket, None),
            Decision::Deny
        );
        let public_policy = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}}"#;
        let restricted = state(
            None,
            Some(public_policy),
            PublicAccessBlock {
                restrict_public_buckets: true,
                ..PublicAccessBlock::default()
            },
        );
        assert_eq!(
            decide("b", &restricted, Some("bob"), Action::ListBucket, None),
            Decision::Deny
        );
        let unrestricted = state(None, Some(public_policy), PublicAccessBlock::default());
        assert_eq!(
            decide("b", &unrestricted, Some("bob"), Action::ListBucket, None),
            Decision::Allow
        );
    }

    #[test]
    fn operations_map_to_what_they_need() {
        assert_eq!(Action::of("HeadObject"), Action::GetObject);
        assert_eq!(Action::of("UploadPart"), Action::PutObject);
        assert_eq!(Action::of("ListObjectVersions"), Action::ListBucket);
        assert_eq!(Action::of("PutBucketPolicy"), Action::OwnerOnly);
        assert_eq!(Action::of("DeleteObjects"), Action::PerObject);
    }
}
